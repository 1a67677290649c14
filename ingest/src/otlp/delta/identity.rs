//! A stream's identity, as the Collector's `identity.Stream`: the resource's attributes,
//! the scope (name, version, attributes), the metric (name, unit, type, monotonicity) and
//! the point's attributes. Attributes are taken in key order, so senders that order them
//! differently still make one stream. Each part is written out unambiguously (lengths
//! before contents) and hashed to 128 bits with a per-server random seed: what a stream
//! costs in memory does not depend on how many attributes make it.

use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::otlp::proto::{AnyValue, InstrumentationScope, KeyValue, Value};

/// A stream's (or a part's) identity.
pub(super) type Id = u128;

/// Hashes the parts of identities with one seed, reusing one buffer.
pub(super) struct Hasher {
    seed: u64,
    buf: Vec<u8>,
}

/// The metric types a delta stream can be.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Sum,
    Histogram,
    Exponential,
}

impl Hasher {
    pub(super) fn new(seed: u64) -> Hasher {
        Hasher {
            seed,
            buf: Vec::new(),
        }
    }

    fn digest(&mut self) -> Id {
        let id = xxh3_128_with_seed(&self.buf, self.seed);
        self.buf.clear();
        id
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(b);
    }

    fn id(&mut self, id: Id) {
        self.buf.extend_from_slice(&id.to_le_bytes());
    }

    fn attrs(&mut self, attrs: &[KeyValue]) {
        let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        self.buf
            .extend_from_slice(&(sorted.len() as u64).to_le_bytes());
        for kv in sorted {
            self.bytes(kv.key.as_bytes());
            self.value(kv.value.as_ref());
        }
    }

    fn value(&mut self, v: Option<&AnyValue>) {
        match v.and_then(|v| v.value.as_ref()) {
            None => self.buf.push(0),
            Some(Value::StringValue(s)) => {
                self.buf.push(1);
                self.bytes(s.as_bytes());
            }
            Some(Value::BoolValue(b)) => self.buf.extend_from_slice(&[2, u8::from(*b)]),
            Some(Value::IntValue(i)) => {
                self.buf.push(3);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Some(Value::DoubleValue(d)) => {
                self.buf.push(4);
                self.buf.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            Some(Value::ArrayValue(a)) => {
                self.buf.push(5);
                self.buf
                    .extend_from_slice(&(a.values.len() as u64).to_le_bytes());
                for x in &a.values {
                    self.value(Some(x));
                }
            }
            Some(Value::KvlistValue(l)) => {
                self.buf.push(6);
                self.attrs(&l.values);
            }
            Some(Value::BytesValue(b)) => {
                self.buf.push(7);
                self.bytes(b);
            }
        }
    }

    /// A resource, by its attributes.
    pub(super) fn resource(&mut self, attrs: &[KeyValue]) -> Id {
        self.attrs(attrs);
        self.digest()
    }

    /// An instrumentation scope of a resource.
    pub(super) fn scope(&mut self, resource: Id, scope: Option<&InstrumentationScope>) -> Id {
        self.id(resource);
        match scope {
            None => self.buf.push(0),
            Some(s) => {
                self.buf.push(1);
                self.bytes(s.name.as_bytes());
                self.bytes(s.version.as_bytes());
                self.attrs(&s.attributes);
            }
        }
        self.digest()
    }

    /// A metric of a scope.
    pub(super) fn metric(
        &mut self,
        scope: Id,
        name: &str,
        unit: &str,
        kind: Kind,
        monotonic: bool,
    ) -> Id {
        self.id(scope);
        self.bytes(name.as_bytes());
        self.bytes(unit.as_bytes());
        self.buf
            .extend_from_slice(&[kind as u8, u8::from(monotonic)]);
        self.digest()
    }

    /// A stream of a metric: the point's attributes.
    pub(super) fn stream(&mut self, metric: Id, attrs: &[KeyValue]) -> Id {
        self.id(metric);
        self.attrs(attrs);
        self.digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
        }
    }

    #[test]
    fn attribute_order_does_not_matter_but_every_part_does() {
        let mut h = Hasher::new(7);
        let r = h.resource(&[kv("service.name", "a")]);
        let s = h.scope(r, None);
        let m = h.metric(s, "requests", "1", Kind::Sum, true);
        let ab = h.stream(m, &[kv("a", "1"), kv("b", "2")]);
        assert_eq!(ab, h.stream(m, &[kv("b", "2"), kv("a", "1")]));
        assert_ne!(ab, h.stream(m, &[kv("a", "12")]));
        assert_ne!(m, h.metric(s, "requests", "1", Kind::Sum, false));
        assert_ne!(m, h.metric(s, "requests", "1", Kind::Histogram, true));
        let other = h.resource(&[kv("service.name", "b")]);
        assert_ne!(s, h.scope(other, None));
        // Lengths keep parts apart: ("ab", "") is not ("a", "b").
        assert_ne!(h.stream(m, &[kv("ab", "")]), h.stream(m, &[kv("a", "b")]));
    }
}
