//! Load-time checks the integrations share: Alertmanager's "exactly one of `x` and `x_file`"
//! rules and the `global.http_config` fallback.

use serde_yaml_ng::Value;

use super::integration::FieldError;
use crate::notifier::config::GlobalConfig;

/// Exactly one of `name` and `name_file` set.
pub(super) fn exactly_one(inline: bool, file: bool, name: &str) -> Result<(), FieldError> {
    match (inline, file) {
        (false, false) => Err(FieldError::entry(format!(
            "one of {name} or {name}_file must be configured"
        ))),
        (true, true) => Err(FieldError::at(
            name,
            format!("at most one of {name} & {name}_file must be configured"),
        )),
        _ => Ok(()),
    }
}

/// The entry's `http_config`, else the global one.
pub(super) fn inherit_http(own: &mut Option<Value>, global: &GlobalConfig) {
    if own.is_none() {
        own.clone_from(&global.http_config);
    }
}
