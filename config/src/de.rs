//! Deserialization helpers: a raw (field-by-field, unknown keys rejected)
//! struct is deserialized first and then converted/validated, inside the
//! mapping visitor, so serde_yaml_ng attaches the mapping's line, column and
//! path to validation errors.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

/// Deserializes `R` from a mapping and converts it with `T::try_from`.
pub(crate) fn via<'de, D, R, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
    T: TryFrom<R, Error = String>,
{
    struct V<R, T>(PhantomData<fn() -> (R, T)>);
    impl<'de, R, T> Visitor<'de> for V<R, T>
    where
        R: Deserialize<'de>,
        T: TryFrom<R, Error = String>,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(A::Error::custom)
        }
    }
    d.deserialize_map(V(PhantomData))
}

/// Implements `Deserialize` for `$t` through raw type `$r` (see [`via`]).
macro_rules! deserialize_via {
    ($t:ty, $r:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::de::via::<D, $r, $t>(d)
            }
        }
    };
}
pub(crate) use deserialize_via;

/// Rejects `null` entries of a list with `message`.
pub(crate) fn no_nulls<T>(items: Option<Vec<Option<T>>>, message: &str) -> Result<Vec<T>, String> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ok_or_else(|| message.to_owned()))
        .collect()
}

/// Deserializes a string scalar and converts it with `parse`, inside the
/// visitor so that errors point at the scalar itself.
pub(crate) fn parse_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, parse })
}
