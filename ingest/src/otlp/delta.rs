//! Delta-to-cumulative (`--enable-feature=otlp-deltatocumulative`): delta sums, explicit-
//! bucket histograms and exponential histograms are added up per stream in memory and
//! handed to the translation as cumulative ones, as Prometheus does by running the
//! Collector's `deltatocumulative` processor in front of its OTLP translator.
//!
//! The Collector's rules: a stream (see `identity`) starts with its first point, which is
//! passed on as it is; each later point is added to the stream's value (see `add`) and
//! passed on as that value, with the stream's start time. A point not later than the last
//! one is dropped as out of order (a retried request adds nothing twice); one starting
//! before the stream is dropped (another writer of the same stream); one starting after the
//! last point's end (points were lost in between) still adds: the total stays the sum of
//! what arrived. Exemplars stay with their point. A point flagged as having no recorded
//! value is passed on as it is (a staleness marker) and does not touch the stream. As with
//! the Collector in front of Prometheus, streams are updated before the request is
//! translated and stored: a request refused afterwards (another metric of unspecified
//! temporality, a WAL write failing) has still moved its streams on, and its retry is
//! dropped as out of order.
//!
//! Bounded: a stream not seen for `max_stale` (5m) is forgotten (looked for at most every
//! minute, and when the limit is reached), at most `max_streams` (100k) streams and
//! `max_bytes` (256 MiB, estimated) are held; a point of a new stream past either limit, or
//! one that would grow its stream past the bytes, is dropped (its stream forgotten) and
//! reported as rejected in the response's partial success. One lock per server, taken once
//! per request.

mod add;
mod identity;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use self::add::{Acc, Added, DeltaPoint};
use self::identity::{Hasher, Id, Kind};
use super::proto::{CUMULATIVE, DELTA, Data, ExportMetricsServiceRequest, FLAG_NO_RECORDED_VALUE};

/// Limits of the accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaConfig {
    /// A stream not seen for this long is forgotten (the Collector's `max_stale`).
    pub max_stale: Duration,
    /// Most streams held (the Collector's `max_streams`).
    pub max_streams: usize,
    /// Most bytes (estimated) held.
    pub max_bytes: usize,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig {
            max_stale: Duration::from_secs(300),
            max_streams: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// How often forgotten streams are looked for (and at most `max_stale`).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often, at most, a full accumulator looks for streams to forget.
const SWEEP_WHEN_FULL_EVERY: Duration = Duration::from_secs(1);
/// What a stream's entry costs besides its value's heap (key, entry, map overhead).
const STREAM_BYTES: usize = 64 + std::mem::size_of::<(Id, Stream)>();
/// Distinct reasons kept per request.
const MAX_ERRORS: usize = 8;

/// Why a point was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error(
        "delta-to-cumulative: the limit of {0} streams is reached, points of new streams are dropped"
    )]
    StreamLimit(usize),
    #[error(
        "delta-to-cumulative: the memory limit of {0} bytes is reached, points of new or growing streams are dropped"
    )]
    MemoryLimit(usize),
    #[error(
        "delta-to-cumulative: out of order: dropped a point at time {sample} ns, the stream is already at {last} ns"
    )]
    OutOfOrder { last: u64, sample: u64 },
    #[error(
        "delta-to-cumulative: dropped a point starting at {sample} ns, its stream starts at {start} ns (several processes sending the same stream?)"
    )]
    OlderStart { start: u64, sample: u64 },
}

/// What one request's pass dropped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Points dropped.
    pub dropped: usize,
    /// The first few distinct reasons.
    pub errors: Vec<Dropped>,
}

impl Applied {
    fn refuse(&mut self, why: Dropped) -> bool {
        self.dropped += 1;
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&why) {
            self.errors.push(why);
        }
        false
    }
}

/// The accumulator's state, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeltaStats {
    pub streams: usize,
    pub bytes: usize,
    pub dropped_total: u64,
    pub evicted_total: u64,
}

#[derive(Debug)]
struct Stream {
    start: u64,
    time: u64,
    seen: Instant,
    acc: Acc,
    bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<Id, Stream>,
    bytes: usize,
    last_sweep: Option<Instant>,
}

/// The per-server accumulator of delta streams.
#[derive(Debug)]
pub struct DeltaToCumulative {
    cfg: DeltaConfig,
    seed: u64,
    state: Mutex<State>,
    dropped: AtomicU64,
    evicted: AtomicU64,
}

impl Default for DeltaToCumulative {
    fn default() -> Self {
        DeltaToCumulative::new(DeltaConfig::default())
    }
}

impl DeltaToCumulative {
    pub fn new(cfg: DeltaConfig) -> DeltaToCumulative {
        use std::hash::BuildHasher;
        DeltaToCumulative {
            cfg,
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            state: Mutex::new(State::default()),
            dropped: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Streams and bytes held, points dropped and streams forgotten so far.
    pub fn stats(&self) -> DeltaStats {
        let st = self.state.lock();
        DeltaStats {
            streams: st.streams.len(),
            bytes: st.bytes,
            dropped_total: self.dropped.load(Ordering::Relaxed),
            evicted_total: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// Makes the delta sums and histograms of `req` cumulative, dropping the points that
    /// cannot be (see the module's documentation).
    pub fn apply(&self, req: &mut ExportMetricsServiceRequest) -> Applied {
        self.apply_at(req, Instant::now())
    }

    /// [`apply`](Self::apply) at `now`.
    pub(crate) fn apply_at(&self, req: &mut ExportMetricsServiceRequest, now: Instant) -> Applied {
        let mut applied = Applied::default();
        let mut h = Hasher::new(self.seed);
        let mut st = self.state.lock();
        let due = st.last_sweep.is_none_or(|t| {
            now.saturating_duration_since(t) >= SWEEP_EVERY.min(self.cfg.max_stale)
        });
        if due {
            self.sweep(&mut st, now);
        }
        let mut pass = Pass {
            acc: self,
            st: &mut st,
            h: &mut h,
            applied: &mut applied,
            now,
        };
        for rm in &mut req.resource_metrics {
            let resource = pass
                .h
                .resource(rm.resource.as_ref().map_or(&[], |r| &r.attributes));
            for sm in &mut rm.scope_metrics {
                let scope = pass.h.scope(resource, sm.scope.as_ref());
                for m in &mut sm.metrics {
                    let (name, unit) = (&m.name, &m.unit);
                    match &mut m.data {
                        Some(Data::Sum(s)) if s.aggregation_temporality == DELTA => {
                            let id = pass.h.metric(scope, name, unit, Kind::Sum, s.is_monotonic);
                            s.data_points.retain_mut(|p| pass.point(id, p));
                            s.aggregation_temporality = CUMULATIVE;
                        }
                        Some(Data::Histogram(x)) if x.aggregation_temporality == DELTA => {
                            let id = pass.h.metric(scope, name, unit, Kind::Histogram, false);
                            x.data_points.retain_mut(|p| pass.point(id, p));
                            x.aggregation_temporality = CUMULATIVE;
                        }
                        Some(Data::ExponentialHistogram(x))
                            if x.aggregation_temporality == DELTA =>
                        {
                            let id = pass.h.metric(scope, name, unit, Kind::Exponential, false);
                            x.data_points.retain_mut(|p| pass.point(id, p));
                            x.aggregation_temporality = CUMULATIVE;
                        }
                        _ => {}
                    }
                }
            }
        }
        self.dropped
            .fetch_add(applied.dropped as u64, Ordering::Relaxed);
        applied
    }

    /// Forgets the streams not seen for `max_stale`.
    fn sweep(&self, st: &mut State, now: Instant) {
        st.last_sweep = Some(now);
        let before = st.streams.len();
        let mut freed = 0;
        let max = self.cfg.max_stale;
        st.streams.retain(|_, s| {
            let keep = now.saturating_duration_since(s.seen) < max;
            if !keep {
                freed += s.bytes;
            }
            keep
        });
        st.bytes -= freed;
        self.evicted
            .fetch_add((before - st.streams.len()) as u64, Ordering::Relaxed);
    }

    /// Makes room for a new stream of `bytes`, if the limits allow.
    fn room(&self, st: &mut State, now: Instant, bytes: usize) -> Result<(), Dropped> {
        let full = |st: &State| {
            if st.streams.len() >= self.cfg.max_streams {
                Err(Dropped::StreamLimit(self.cfg.max_streams))
            } else if st.bytes + bytes > self.cfg.max_bytes {
                Err(Dropped::MemoryLimit(self.cfg.max_bytes))
            } else {
                Ok(())
            }
        };
        if full(st).is_err()
            && st
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_WHEN_FULL_EVERY)
        {
            self.sweep(st, now);
        }
        full(st)
    }
}

/// One request's pass over its delta points.
struct Pass<'a> {
    acc: &'a DeltaToCumulative,
    st: &'a mut State,
    h: &'a mut Hasher,
    applied: &'a mut Applied,
    now: Instant,
}

impl Pass<'_> {
    /// Makes `p` (of metric `metric`) cumulative; false to drop it.
    fn point<P: DeltaPoint>(&mut self, metric: Id, p: &mut P) -> bool {
        if p.flags() & FLAG_NO_RECORDED_VALUE != 0 {
            return true;
        }
        let id = self.h.stream(metric, p.attributes());
        let cfg = &self.acc.cfg;
        let now = self.now;
        // A stream not seen for max_stale is gone, whether or not a sweep took it yet.
        if let Some(s) = self.st.streams.get(&id)
            && now.saturating_duration_since(s.seen) >= cfg.max_stale
        {
            let bytes = s.bytes;
            self.st.streams.remove(&id);
            self.st.bytes -= bytes;
            self.acc.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let Some(s) = self.st.streams.get_mut(&id) else {
            let acc = p.first();
            let bytes = STREAM_BYTES + acc.heap_bytes();
            if let Err(why) = self.acc.room(self.st, now, bytes) {
                return self.applied.refuse(why);
            }
            self.st.bytes += bytes;
            self.st.streams.insert(
                id,
                Stream {
                    start: p.start(),
                    time: p.time(),
                    seen: now,
                    acc,
                    bytes,
                },
            );
            return true;
        };
        s.seen = now;
        if p.start() < s.start {
            return self.applied.refuse(Dropped::OlderStart {
                start: s.start,
                sample: p.start(),
            });
        }
        if p.time() <= s.time {
            return self.applied.refuse(Dropped::OutOfOrder {
                last: s.time,
                sample: p.time(),
            });
        }
        if p.add_to(&mut s.acc) == Added::Reset {
            s.start = p.start();
        }
        s.time = p.time();
        let before = s.bytes;
        s.bytes = STREAM_BYTES + s.acc.heap_bytes();
        self.st.bytes = self.st.bytes - before + s.bytes;
        if self.st.bytes > cfg.max_bytes {
            // Grown past the limit: forget the stream rather than hold more.
            let bytes = s.bytes;
            self.st.streams.remove(&id);
            self.st.bytes -= bytes;
            return self.applied.refuse(Dropped::MemoryLimit(cfg.max_bytes));
        }
        p.set_from(&s.acc, s.start);
        true
    }
}

#[cfg(test)]
mod tests;
