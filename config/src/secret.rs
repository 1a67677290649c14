//! Secret strings (passwords, tokens, keys): usable by the runtime, but shown
//! as `<secret>` by `Debug` and by serialization (`/api/v1/status/config`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text Prometheus prints instead of a secret.
pub(crate) const SECRET_TOKEN: &str = "<secret>";

/// A secret value. Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_TOKEN)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(SECRET_TOKEN)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(|s| Secret(s.unwrap_or_default()))
    }
}
