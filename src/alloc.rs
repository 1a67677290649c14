//! The global allocator and when it gives memory back to the OS.
//!
//! mimalloc returns freed memory to the OS far better than glibc's malloc after the large
//! transient allocations of block cuts and compactions. It is built without transparent
//! huge pages (feature `no_thp`, see Cargo.toml).
//!
//! How long freed pages stay committed (the purge delay) is a trade between memory and
//! query latency, so it follows what the server is doing:
//! - while queries run (one started in the last [`BUSY_FOR`]), [`BUSY_DELAY_MS`]: purging
//!   at once made every query fault in fresh zeroed pages for its buffers (40% of query
//!   CPU), and at 500 ms the purge of a large query's memory landed inside the following
//!   queries (a small query after a large one took 2–40 ms instead of 0.7);
//! - otherwise (scraping, remote write, background work), [`IDLE_DELAY_MS`]: the churn of
//!   scrape bodies and parse buffers is returned quickly (RSS per scraped series was 1.45 KB
//!   with 3 s and 1.28 KB with 500 ms).
//!
//! The purge itself runs on a thread of its own: the madvise calls of a large purge take
//! tens of milliseconds and must not stall a runtime worker that serves queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Purge delay while queries run (ms).
const BUSY_DELAY_MS: i64 = 3_000;
/// Purge delay while no query runs (ms).
const IDLE_DELAY_MS: i64 = 500;
/// How long after the last query started the server still counts as busy.
const BUSY_FOR: Duration = Duration::from_secs(10);
/// How often the purge thread returns expired pages and looks at the query counter.
const TICK: Duration = Duration::from_millis(250);

#[allow(unsafe_code)]
fn set_purge_delay(ms: i64) {
    // SAFETY: mi_option_set only stores an integer option; 15 is `mi_option_purge_delay`
    // in the bundled mimalloc v3 header, whose value is a delay in milliseconds. mimalloc
    // reads it each time it schedules a purge, so a change applies to later frees.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as std::os::raw::c_long) };
}

/// Sets the allocator's options before anything else runs (the idle delay).
pub(crate) fn tune() {
    set_purge_delay(IDLE_DELAY_MS);
}

/// The purge delay for a server whose last query started `since_query` ago (`None`: never).
fn delay_for(since_query: Option<Duration>) -> i64 {
    match since_query {
        Some(d) if d < BUSY_FOR => BUSY_DELAY_MS,
        _ => IDLE_DELAY_MS,
    }
}

/// Starts the purge thread. `queries` counts the queries started so far (the engine's
/// counter).
#[allow(unsafe_code)]
pub(crate) fn spawn_purge_thread(queries: Arc<AtomicU64>) {
    let spawned = std::thread::Builder::new()
        .name("strata-purge".into())
        .spawn(move || {
            let mut seen = 0u64;
            let mut last_query: Option<Instant> = None;
            let mut delay = IDLE_DELAY_MS;
            loop {
                std::thread::sleep(TICK);
                let n = queries.load(Ordering::Relaxed);
                if n != seen {
                    seen = n;
                    last_query = Some(Instant::now());
                }
                let want = delay_for(last_query.map(|t| t.elapsed()));
                if want != delay {
                    delay = want;
                    set_purge_delay(delay);
                }
                // SAFETY: mi_collect takes no pointer; `false` only purges what has expired.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the memory purge thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_long_only_shortly_after_a_query() {
        assert_eq!(delay_for(None), IDLE_DELAY_MS);
        assert_eq!(delay_for(Some(Duration::from_secs(1))), BUSY_DELAY_MS);
        assert_eq!(
            delay_for(Some(BUSY_FOR + Duration::from_millis(1))),
            IDLE_DELAY_MS
        );
    }
}
