//! Deserialization helpers: Go `yaml.v2` leniency (scalars read into strings keep their
//! text, as in `days_of_month: [1, -1]` or `match: {code: 500}`; an empty (`null`) block
//! means the default) and Alertmanager's URL check.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A YAML scalar read as its text.
struct Lenient(String);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lenient, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of scalars as strings.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Option::<Vec<Lenient>>::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|l| l.0).collect())
}

/// A map of scalars as strings.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let v = Option::<BTreeMap<String, Lenient>>::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(|(k, l)| (k, l.0))
        .collect())
}

/// `T::default()` for an explicit `null`.
pub(crate) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An `http`/`https` URL with a host (or `<secret>`, as a configuration written by
/// [`super::Config::to_yaml`] has it).
pub(crate) fn url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    check_url(&s).map_err(de::Error::custom)?;
    Ok(Some(s))
}

/// Alertmanager's URL check: scheme `http` or `https` and a host.
pub(crate) fn check_url(s: &str) -> Result<(), String> {
    if s == super::secret::SECRET_TOKEN {
        return Ok(());
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("unsupported scheme \"\" for URL {s:?}"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.rsplit('@').next().unwrap_or_default().is_empty() {
        return Err("missing host for URL".to_owned());
    }
    Ok(())
}
