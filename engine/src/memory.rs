//! Query memory: the pool every query reserves from, and the per-query [`Budget`] PromQL
//! kernels ask before their buffers grow.
//!
//! One DataFusion [`RuntimeEnv`] per engine ([`runtime`]) holds a bounded pool of
//! `--query.max-memory` bytes ([`EngineOptions::max_memory`](crate::EngineOptions::max_memory)),
//! shared by the PromQL and SQL sessions: SQL operators (sorts, hash tables, join build
//! sides) reserve from it through DataFusion, PromQL relations through their query's
//! [`Budget`]. Spilling to disk is off, so an operator that needs more than the pool has
//! fails with [`EngineError::OutOfMemory`] instead of growing the process.
//!
//! A [`Budget`] counts two things before anything is allocated: points (rows of a relation,
//! raw samples, per-step accumulators) against `--query.max-samples`, and their bytes
//! against the pool. Both count what the query holds at once: a node's inputs are released
//! once it has produced its output, as Prometheus counts the samples "in memory". It must
//! not allocate itself; kernels ask, then allocate what they were granted.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

use crate::error::{EngineError, Result};

/// Bytes of one row of a [`Rows`](crate::model::Rows) relation: series `u32`, ts `i64`,
/// value `f64`.
pub const POINT_BYTES: usize = 20;
/// Bytes of one raw sample as storage returns it: `(i64, f64)`.
pub const SAMPLE_BYTES: usize = 16;
/// Default of `--query.max-memory`: 1 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 1 << 30;

/// The runtime shared by every PromQL and SQL query of an engine: a pool of `max_memory`
/// bytes (first come, first served; its errors name the largest consumers) and no disk
/// spilling.
pub fn runtime(max_memory: usize) -> Arc<RuntimeEnv> {
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
        GreedyMemoryPool::new(max_memory.max(1)),
        top,
    ));
    let built = RuntimeEnvBuilder::new()
        .with_memory_pool(pool.clone())
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc();
    built.unwrap_or_else(|_| {
        // Only a disk or cache manager that cannot start fails the builder, and a disabled
        // disk manager with the default caches always starts; should that change, the
        // default runtime still gets the bounded pool.
        Arc::new(RuntimeEnv {
            memory_pool: pool,
            ..RuntimeEnv::default()
        })
    })
}

/// One query's share of the shared pool: it reserves through the shared pool (so all
/// running queries together stay within `--query.max-memory`) and, on its own, never past
/// `limit` (`--query.max-memory-per-query`): one hostile query cannot take the whole pool
/// and fail every other query with it.
#[derive(Debug)]
pub struct QueryPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

/// A fresh [`QueryPool`] of `limit` bytes over `shared` (0: the shared pool's limit).
pub fn query_pool(shared: &Arc<dyn MemoryPool>, limit: usize) -> Arc<dyn MemoryPool> {
    let limit = match (limit, pool_limit(shared)) {
        (0, 0) => usize::MAX,
        (0, n) => n,
        (l, 0) => l,
        (l, n) => l.min(n),
    };
    Arc::new(QueryPool {
        shared: shared.clone(),
        limit,
        used: std::sync::atomic::AtomicUsize::new(0),
    })
}

/// A runtime for one SQL query: the shared runtime's settings (no spilling) with a
/// [`QueryPool`] of `limit` bytes over its pool.
pub fn query_runtime(shared: &Arc<RuntimeEnv>, limit: usize) -> Arc<RuntimeEnv> {
    let pool = query_pool(&shared.memory_pool, limit);
    RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .unwrap_or_else(|_| shared.clone())
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "query pool of {} bytes over {}", self.limit, self.shared)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used
            .fetch_add(additional, std::sync::atomic::Ordering::AcqRel);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used
            .fetch_sub(shrink, std::sync::atomic::Ordering::AcqRel);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::common::Result<()> {
        let used = self.used.load(std::sync::atomic::Ordering::Acquire);
        if used.saturating_add(additional) > self.limit {
            return Err(datafusion::error::DataFusionError::ResourcesExhausted(
                format!(
                    "{} wants {additional} more bytes and the query holds {used} of its {} (--query.max-memory-per-query)",
                    reservation.consumer().name(),
                    self.limit
                ),
            ));
        }
        self.shared.try_grow(reservation, additional)?;
        self.used
            .fetch_add(additional, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// The size of `pool` in bytes (0 when it has no finite limit).
pub fn pool_limit(pool: &Arc<dyn MemoryPool>) -> usize {
    match pool.memory_limit() {
        MemoryLimit::Finite(n) => n,
        MemoryLimit::Infinite | MemoryLimit::Unknown => 0,
    }
}

/// What one query holds: points against `--query.max-samples`, bytes against the pool.
#[derive(Debug)]
pub struct Budget {
    max_points: u64,
    points: AtomicU64,
    pool: Arc<dyn MemoryPool>,
    bytes: MemoryReservation,
}

impl Budget {
    /// A budget of `max_points` points whose bytes come out of `pool`.
    pub fn new(pool: &Arc<dyn MemoryPool>, max_points: u64, name: &str) -> Budget {
        Budget {
            max_points,
            points: AtomicU64::new(0),
            pool: pool.clone(),
            bytes: MemoryConsumer::new(name).register(pool),
        }
    }

    /// Points held now.
    pub fn points(&self) -> u64 {
        self.points.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes.size()
    }

    /// Points the query may still take.
    pub fn points_left(&self) -> usize {
        usize::try_from(self.max_points.saturating_sub(self.points())).unwrap_or(usize::MAX)
    }

    /// Bytes the pool has left for anyone.
    pub fn bytes_left(&self) -> usize {
        match self.pool.memory_limit() {
            MemoryLimit::Finite(n) => n.saturating_sub(self.pool.reserved()),
            MemoryLimit::Infinite | MemoryLimit::Unknown => usize::MAX,
        }
    }

    /// The size of the pool the bytes come from.
    pub fn pool_limit(&self) -> usize {
        pool_limit(&self.pool)
    }

    /// Takes `points` points of `unit` bytes each without checking the limits: for room
    /// that already exists (a few rows a relation holds past its charge).
    pub fn force(&self, points: usize, unit: usize) {
        self.points.fetch_add(points as u64, Ordering::Relaxed);
        self.bytes.grow(points.saturating_mul(unit));
    }

    /// Takes `points` points of `unit` bytes each, or fails without taking anything.
    pub fn charge(&self, points: usize, unit: usize) -> Result<()> {
        self.grant(points, points, unit).map(|_| ())
    }

    /// Takes `bytes` bytes (no points), or fails without taking anything.
    pub fn charge_bytes(&self, bytes: usize, what: &str) -> Result<()> {
        self.bytes
            .try_grow(bytes)
            .map_err(|_| self.out_of_memory(bytes, what))
    }

    /// Takes at least `min` and at most `pref` points of `unit` bytes each, as many as the
    /// limits leave, and returns how many it took. Growing buffers ask for double and take
    /// what is left near the limits, so the last growth before a limit is not refused.
    pub fn grant(&self, min: usize, pref: usize, unit: usize) -> Result<usize> {
        let pref = pref.max(min);
        let mut cur = self.points.load(Ordering::Relaxed);
        let taken = loop {
            let left = self.max_points.saturating_sub(cur);
            if (min as u64) > left {
                return Err(EngineError::TooManySamples);
            }
            let want = (pref as u64).min(left);
            match self.points.compare_exchange_weak(
                cur,
                cur + want,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break want,
                Err(now) => cur = now,
            }
        };
        let mut granted = taken as usize;
        if granted == 0 {
            return Ok(0);
        }
        if self.bytes.try_grow(granted.saturating_mul(unit)).is_err() {
            // Take what the pool has left, if that is enough.
            let left = pool_limit(&self.pool).saturating_sub(self.pool.reserved()) / unit.max(1);
            let fallback = left.min(granted).max(min);
            let ok = fallback > 0 && self.bytes.try_grow(fallback.saturating_mul(unit)).is_ok();
            if !ok && min > 0 {
                self.give_back_points(granted);
                return Err(self.out_of_memory(min.saturating_mul(unit), "query buffers"));
            }
            let kept = if ok { fallback } else { 0 };
            self.give_back_points(granted - kept);
            granted = kept;
        }
        Ok(granted)
    }

    /// Gives back `points` points of `unit` bytes each.
    pub fn release(&self, points: usize, unit: usize) {
        self.give_back_points(points);
        self.release_bytes(points.saturating_mul(unit));
    }

    /// Gives back `bytes` bytes (never more than are held).
    pub fn release_bytes(&self, bytes: usize) {
        let n = bytes.min(self.bytes.size());
        // A concurrent release may have shrunk it meanwhile: then keep the bytes (erring on
        // the side of holding too much), never panic.
        let _ = self.bytes.try_shrink(n);
    }

    /// Takes `points` points of `unit` bytes, given back when the guard drops: for
    /// scratch buffers that live as long as one kernel.
    pub fn hold(&self, points: usize, unit: usize) -> Result<Held<'_>> {
        self.charge(points, unit)?;
        Ok(Held {
            budget: self,
            points,
            bytes: points.saturating_mul(unit),
        })
    }

    /// Takes `bytes` bytes (no points), given back when the guard drops: for scratch
    /// that is not made of points (sort permutations).
    pub fn hold_bytes(&self, bytes: usize, what: &str) -> Result<Held<'_>> {
        self.charge_bytes(bytes, what)?;
        Ok(Held {
            budget: self,
            points: 0,
            bytes,
        })
    }

    /// A reservation of `bytes` from the query's pool share that outlives the budget (the
    /// bytes a result takes while it is rendered), or the out-of-memory error naming `what`.
    pub fn reserve(&self, bytes: usize, what: &str) -> Result<MemoryReservation> {
        let r = MemoryConsumer::new(format!("PromQL {what}")).register(&self.pool);
        r.try_grow(bytes)
            .map_err(|_| self.out_of_memory(bytes, what))?;
        Ok(r)
    }

    fn give_back_points(&self, points: usize) {
        let _ = self
            .points
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(points as u64))
            });
    }

    fn out_of_memory(&self, bytes: usize, what: &str) -> EngineError {
        let limit = pool_limit(&self.pool);
        EngineError::OutOfMemory {
            limit,
            detail: format!(
                "{what} need {bytes} more bytes; the query holds {}, running queries {} in all",
                self.bytes.size(),
                self.pool.reserved()
            ),
        }
    }
}

/// A storage read charged to a query's [`Budget`] as it decodes (raw samples, one point of
/// [`SAMPLE_BYTES`] each), so a selection larger than the limits stops before it is held.
pub struct ReadBudget<'a> {
    budget: &'a Budget,
    taken: std::sync::atomic::AtomicUsize,
    refusal: std::sync::Mutex<Option<EngineError>>,
}

impl<'a> ReadBudget<'a> {
    /// A read charged to `budget`.
    pub fn new(budget: &'a Budget) -> Self {
        ReadBudget {
            budget,
            taken: std::sync::atomic::AtomicUsize::new(0),
            refusal: std::sync::Mutex::new(None),
        }
    }

    /// The read's outcome with the samples it holds charged (given back by the caller once
    /// walked); on failure what was charged is given back, and a refusal becomes the
    /// budget's own error (too many samples, or out of memory).
    pub fn finish<T>(self, r: strata_storage::Result<T>) -> Result<(T, usize)> {
        let taken = self.taken.into_inner();
        match r {
            Ok(v) => Ok((v, taken)),
            Err(e) => {
                self.budget.release(taken, SAMPLE_BYTES);
                let refusal = self.refusal.into_inner().ok().flatten();
                Err(match (e, refusal) {
                    (strata_storage::StorageError::ReadRefused, Some(why)) => why,
                    (e, _) => e.into(),
                })
            }
        }
    }
}

impl strata_storage::ReadCharge for ReadBudget<'_> {
    fn charge(&self, samples: usize) -> bool {
        match self.budget.charge(samples, SAMPLE_BYTES) {
            Ok(()) => {
                self.taken.fetch_add(samples, Ordering::Relaxed);
                true
            }
            Err(e) => {
                if let Ok(mut r) = self.refusal.lock() {
                    r.get_or_insert(e);
                }
                false
            }
        }
    }
}

/// Points and bytes held by a [`Budget`] until dropped.
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a Budget,
    points: usize,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back_points(self.points);
        self.budget.release_bytes(self.bytes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn budget(points: u64, bytes: usize) -> (Arc<RuntimeEnv>, Budget) {
        let rt = runtime(bytes);
        let b = Budget::new(&rt.memory_pool, points, "test");
        (rt, b)
    }

    #[test]
    fn points_past_the_limit_are_refused_before_anything_is_taken() {
        let (_rt, b) = budget(100, 1 << 20);
        b.charge(60, 8).unwrap();
        assert!(matches!(b.charge(41, 8), Err(EngineError::TooManySamples)));
        assert_eq!((b.points(), b.bytes()), (60, 480));
        b.charge(40, 8).unwrap();
        b.release(100, 8);
        assert_eq!((b.points(), b.bytes()), (0, 0));
    }

    #[test]
    fn a_growing_buffer_gets_what_is_left_near_the_limits() {
        let (_rt, b) = budget(100, 1 << 20);
        b.charge(90, 1).unwrap();
        assert_eq!(b.grant(1, 64, 1).unwrap(), 10);
        assert!(b.grant(1, 64, 1).is_err());
        // Bytes: a pool of 1000 bytes holds 50 points of 20 bytes.
        let (_rt, b) = budget(1_000_000, 1000);
        assert_eq!(b.grant(10, 64, 20).unwrap(), 50);
        assert_eq!(b.points(), 50);
        let e = b.grant(1, 1, 20).unwrap_err();
        assert!(
            matches!(e, EngineError::OutOfMemory { limit: 1000, .. }),
            "{e}"
        );
        assert_eq!(b.points(), 50, "points of a refused grant are given back");
    }

    #[test]
    fn queries_share_the_pool_and_give_it_back() {
        let rt = runtime(1000);
        let a = Budget::new(&rt.memory_pool, u64::MAX, "a");
        let b = Budget::new(&rt.memory_pool, u64::MAX, "b");
        a.charge(40, 20).unwrap();
        assert!(b.charge(11, 20).is_err());
        {
            let _held = b.hold(10, 20).unwrap();
            assert_eq!(rt.memory_pool.reserved(), 1000);
        }
        assert_eq!(rt.memory_pool.reserved(), 800);
        drop(a);
        assert_eq!(
            rt.memory_pool.reserved(),
            0,
            "a finished query frees its bytes"
        );
        b.release(1000, 20);
        assert_eq!(b.points(), 0);
    }

    #[test]
    fn one_query_cannot_take_the_whole_pool() {
        let rt = runtime(1000);
        let q1 = query_pool(&rt.memory_pool, 600);
        let q2 = query_pool(&rt.memory_pool, 600);
        let r1 = MemoryConsumer::new("q1").register(&q1);
        let r2 = MemoryConsumer::new("q2").register(&q2);
        assert!(r1.try_grow(700).is_err(), "past the per-query share");
        r1.try_grow(600).expect("within the share");
        assert!(
            r2.try_grow(500).is_err(),
            "past what the shared pool has left"
        );
        r2.try_grow(400).expect("the rest of the pool");
        assert_eq!(rt.memory_pool.reserved(), 1000);
        drop(r1);
        assert_eq!(rt.memory_pool.reserved(), 400);
        assert_eq!(q1.reserved(), 0);
    }
}
