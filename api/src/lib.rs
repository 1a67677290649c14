//! Strata's HTTP surface (axum): remote write, lifecycle endpoints and self-metrics today;
//! the Prometheus HTTP API v1, Alertmanager API v2 and the UI join here as they are built.
//! Handlers only translate HTTP to calls on storage/ingest/engine and back; they hold no
//! logic of their own.

mod error;
mod lifecycle;
mod params;
mod self_metrics;
mod series;
mod write;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use strata_storage::Db;

pub use error::ApiError;

/// Build information shown on `/metrics` and the status endpoints.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

/// Shared state of every handler.
pub struct AppState {
    db: OnceLock<Arc<Db>>,
    ready: AtomicBool,
    pub build: BuildInfo,
    pub started: Instant,
    pub(crate) counters: self_metrics::HttpCounters,
}

impl AppState {
    /// State for a server whose storage is still opening.
    pub fn new(build: BuildInfo) -> Arc<Self> {
        Arc::new(AppState {
            db: OnceLock::new(),
            ready: AtomicBool::new(false),
            build,
            started: Instant::now(),
            counters: self_metrics::HttpCounters::default(),
        })
    }

    /// Hands over the opened storage and marks the server ready (WAL replay is done).
    pub fn set_ready(&self, db: Arc<Db>) {
        let _ = self.db.set(db);
        self.ready.store(true, Ordering::Release);
    }

    /// Marks the server not ready (shutting down).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// Storage, once ready.
    pub fn db(&self) -> Result<&Arc<Db>, ApiError> {
        if !self.ready.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable(
                "storage is not ready (WAL replay in progress)".into(),
            ));
        }
        self.db
            .get()
            .ok_or_else(|| ApiError::Unavailable("storage is not ready".into()))
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/-/healthy",
            get(lifecycle::healthy).head(lifecycle::healthy),
        )
        .route("/-/ready", get(lifecycle::ready).head(lifecycle::ready))
        .route("/metrics", get(self_metrics::metrics))
        .route("/api/v1/write", post(write::remote_write))
        .route("/api/v1/series", get(series::series).post(series::series))
        .route(
            "/api/v1/labels",
            get(series::label_names).post(series::label_names),
        )
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .layer(DefaultBodyLimit::max(
            strata_ingest::remote_write::MAX_DECOMPRESSED,
        ))
        .with_state(state)
}
