//! Strata's HTTP surface (axum): remote write, lifecycle endpoints and self-metrics today;
//! the Prometheus HTTP API v1, Alertmanager API v2 and the UI join here as they are built.
//! Handlers only translate HTTP to calls on storage/ingest/engine and back; they hold no
//! logic of their own.

mod admin;
mod error;
mod lifecycle;
mod metadata;
mod params;
mod query;
mod self_metrics;
mod series;
mod status;
mod targets;
mod write;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use parking_lot::RwLock;
use strata_engine::Engine;
use strata_ingest::scrape::ScrapeManager;
use strata_storage::Db;

pub use error::ApiError;
pub use strata_engine::EngineOptions;

/// Build information shown on `/metrics` and the status endpoints.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

/// What the status endpoints report about this process.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// Every flag and its value, as `/api/v1/status/flags` shows them.
    pub flags: std::collections::BTreeMap<String, String>,
    /// The loaded configuration as YAML (secrets hidden).
    pub config_yaml: String,
    /// Start time, RFC 3339.
    pub start_time_rfc3339: String,
    /// Retention as text, e.g. `15d`.
    pub retention: String,
    /// Whether `/api/v1/admin/*` is served.
    pub enable_admin_api: bool,
    /// Whether `/-/reload` and `/-/quit` are served (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// `--web.cors.origin`: anchored regex of origins allowed by CORS.
    pub cors_origin: String,
    /// Query engine settings (`--query.*` flags).
    pub engine: EngineOptions,
}

/// Reloads the configuration (`/-/reload`, SIGHUP); the error is shown to the caller.
pub type ReloadFn = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// Shared state of every handler.
pub struct AppState {
    pub info: ServerInfo,
    /// The loaded configuration as YAML (replaced on reload).
    pub config_yaml: RwLock<String>,
    scrape: OnceLock<Arc<ScrapeManager>>,
    reload: OnceLock<ReloadFn>,
    /// Asked to stop by `/-/quit`.
    pub quit: tokio::sync::Notify,
    db: OnceLock<Arc<Db>>,
    engine: OnceLock<Arc<Engine>>,
    ready: AtomicBool,
    pub build: BuildInfo,
    pub started: Instant,
    pub(crate) counters: self_metrics::HttpCounters,
    pub(crate) metadata: metadata::MetadataStore,
}

impl AppState {
    /// State for a server whose storage is still opening.
    pub fn new(build: BuildInfo, info: ServerInfo) -> Arc<Self> {
        Arc::new(AppState {
            config_yaml: RwLock::new(info.config_yaml.clone()),
            info,
            scrape: OnceLock::new(),
            reload: OnceLock::new(),
            quit: tokio::sync::Notify::new(),
            db: OnceLock::new(),
            engine: OnceLock::new(),
            ready: AtomicBool::new(false),
            build,
            started: Instant::now(),
            counters: self_metrics::HttpCounters::default(),
            metadata: metadata::MetadataStore::default(),
        })
    }

    /// Hands over the opened storage and marks the server ready (WAL replay is done).
    pub fn set_ready(&self, db: Arc<Db>) {
        let _ = self
            .engine
            .set(Arc::new(Engine::new(db.clone(), self.info.engine.clone())));
        let _ = self.db.set(db);
        self.ready.store(true, Ordering::Release);
    }

    /// Hands over the scrape manager (targets and metadata APIs).
    pub fn set_scrape_manager(&self, m: Arc<ScrapeManager>) {
        let _ = self.scrape.set(m);
    }

    /// Installs the configuration reload used by `/-/reload`.
    pub fn set_reload(&self, f: ReloadFn) {
        let _ = self.reload.set(f);
    }

    /// Every scrape pool's status (none before the scrape manager starts).
    pub(crate) fn scrape_pools(
        &self,
    ) -> Vec<(String, Arc<RwLock<strata_ingest::scrape::PoolStatus>>)> {
        self.scrape.get().map(|m| m.pools()).unwrap_or_default()
    }

    /// Marks the server not ready (shutting down).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// The query engine, once storage is ready.
    pub fn engine(&self) -> Result<Arc<Engine>, ApiError> {
        self.db()?;
        self.engine
            .get()
            .cloned()
            .ok_or_else(|| ApiError::Unavailable("query engine is not ready".into()))
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
    let mut r = Router::new()
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
        .route("/api/v1/metadata", get(metadata::metadata))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/targets/metadata", get(targets::targets_metadata))
        .route("/-/reload", post(lifecycle::reload).put(lifecycle::reload))
        .route("/-/quit", post(lifecycle::quit).put(lifecycle::quit))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/walreplay", get(status::walreplay))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route(
            "/api/v1/format_query",
            get(status::format_query).post(status::format_query),
        );
    if state.info.enable_admin_api {
        r = r
            .route(
                "/api/v1/admin/tsdb/delete_series",
                post(admin::delete_series).put(admin::delete_series),
            )
            .route(
                "/api/v1/admin/tsdb/clean_tombstones",
                post(admin::clean_tombstones).put(admin::clean_tombstones),
            )
            .route(
                "/api/v1/admin/tsdb/snapshot",
                post(admin::snapshot).put(admin::snapshot),
            );
    }
    let cors = cors_layer(&state.info.cors_origin);
    r.layer(DefaultBodyLimit::max(
        strata_ingest::remote_write::MAX_DECOMPRESSED,
    ))
    .layer(tower_http::compression::CompressionLayer::new().gzip(true))
    .layer(cors)
    .with_state(state)
}

/// CORS as Prometheus's `--web.cors.origin`: an anchored regex of allowed origins.
fn cors_layer(origin: &str) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let re = regex::Regex::new(&format!("^(?:{origin})$")).ok();
    CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ORIGIN,
        ])
        .expose_headers([header::DATE])
        .allow_origin(AllowOrigin::predicate(move |o: &HeaderValue, _| {
            o.to_str()
                .ok()
                .is_some_and(|o| re.as_ref().is_some_and(|r| r.is_match(o)))
        }))
}
