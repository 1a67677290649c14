//! Pull-based scraping: targets from service discovery, relabeled into scrape pools, each
//! target scraped by its own loop into storage through the series-id fast path.

mod buffers;
mod cache;
pub mod manager;
pub mod native;
mod proto_exemplars;
pub mod scrape_loop;
pub mod target;

pub use manager::{PoolStatus, ScrapeManager};
pub use scrape_loop::{Health, HealthState, MetricMeta, STALE_NAN, TargetState};
pub use target::{Target, TargetGroup};
