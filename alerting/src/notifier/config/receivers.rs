//! Receivers: named sets of integration entries (the kinds registered in
//! [`crate::notifier::send`]) with Alertmanager's defaults, global fallbacks and checks.
//! Other Alertmanager receiver kinds are rejected, never silently ignored.

use std::collections::HashSet;

use serde_yaml_ng::Value;

use super::error::ConfigError;
use super::global::GlobalConfig;
use super::locate::Locator;
use crate::notifier::send::{KEYS, Receiver};

/// The receiver kinds Strata delivers to, as a list for messages.
pub fn supported_kinds() -> String {
    KEYS.join(", ")
}

/// Rejects receiver kinds Strata does not deliver to (any `*_configs` key not registered)
/// at their key, before the typed parse would call them unknown.
pub(super) fn reject_unsupported(raw: &Value, loc: &Locator<'_>) -> Result<(), ConfigError> {
    let list = raw.get("receivers").and_then(Value::as_sequence);
    for (i, r) in list.into_iter().flatten().enumerate() {
        let keys = r.as_mapping().into_iter().flat_map(|m| m.keys());
        let kind = keys
            .filter_map(Value::as_str)
            .find(|k| k.ends_with("_configs") && !KEYS.contains(k));
        if let Some(kind) = kind {
            let msg = format!(
                "{kind} is not supported by Strata (supported: {})",
                supported_kinds()
            );
            return Err(loc.err(&format!("receivers[{i}].{kind}"), msg));
        }
    }
    Ok(())
}

/// Checks the receivers, applies global fallbacks; returns the receiver names.
pub(super) fn resolve(
    receivers: &mut [Receiver],
    global: &GlobalConfig,
    loc: &Locator<'_>,
) -> Result<HashSet<String>, ConfigError> {
    let mut names = HashSet::new();
    for (i, r) in receivers.iter_mut().enumerate() {
        let p = format!("receivers[{i}]");
        if r.name.is_empty() {
            return Err(loc.err(&p, "missing name in receiver"));
        }
        if !names.insert(r.name.clone()) {
            let msg = format!("notification config name {:?} is not unique", r.name);
            return Err(loc.err_at(&p, &format!("{p}.name"), msg));
        }
        r.resolve_integrations(global)
            .map_err(|(entry, e)| match &e.field {
                Some(f) => {
                    let at = format!("{p}.{entry}.{f}");
                    loc.err_at(&at, &at, &e.msg)
                }
                None => loc.err(&format!("{p}.{entry}"), &e.msg),
            })?;
    }
    Ok(names)
}
