//! Writing secrets as Alertmanager does in `/api/v2/status`: set secret fields, and secret
//! keys inside opaque blocks, become `<secret>`.

use serde::{Serialize, Serializer};

/// Alertmanager's stand-in for a secret value when it writes a configuration out.
pub const SECRET_TOKEN: &str = "<secret>";

/// Keys whose values are secrets inside opaque blocks (`http_config`, `global` extras).
const SECRET_KEYS: &str = "password credentials bearer_token client_secret key \
    smtp_auth_password smtp_auth_secret opsgenie_api_key wechat_api_secret victorops_api_key \
    rocketchat_token rocketchat_token_id";

/// Writes a set secret as `<secret>`.
pub(crate) fn secret<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|_| SECRET_TOKEN).serialize(s)
}

/// Writes an opaque block with the values of [`SECRET_KEYS`] replaced by `<secret>`.
pub(crate) fn masked<S: Serializer>(
    v: &Option<serde_yaml_ng::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.as_ref().map(mask).serialize(s)
}

/// `v` with secrets (by key, at any depth) replaced by `<secret>`.
pub(crate) fn mask(v: &serde_yaml_ng::Value) -> serde_yaml_ng::Value {
    use serde_yaml_ng::Value;
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| match k.as_str() {
                    Some(name)
                        if SECRET_KEYS.split_whitespace().any(|k| k == name) && !v.is_null() =>
                    {
                        (k.clone(), Value::String(SECRET_TOKEN.to_owned()))
                    }
                    _ => (k.clone(), mask(v)),
                })
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(mask).collect()),
        other => other.clone(),
    }
}
