//! Strata's HTTP surface (axum): remote write, lifecycle endpoints and self-metrics today;
//! the Prometheus HTTP API v1, Alertmanager API v2 and the UI join here as they are built.
//! Handlers only translate HTTP to calls on storage/ingest/engine and back; they hold no
//! logic of their own.

mod acks;
mod admin;
mod alertmanager;
mod body;
mod distributor;
mod error;
mod exemplars;
mod explain;
mod federate;
mod lifecycle;
mod metadata;
mod openapi;
mod otlp;
mod params;
mod parse_query;
pub mod pushgateway;
mod query;
mod read;
mod rules;
mod self_metrics;
mod series;
pub mod serve;
mod sql;
mod status;
mod targets;
mod ui;
pub mod web_config;
mod write;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use parking_lot::RwLock;
use strata_alerting::rules::{RuleManager, Sender};
use strata_engine::Engine;
use strata_ingest::scrape::ScrapeManager;
use strata_storage::Db;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use params::parse_selector;
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
    /// `global.external_labels` (added by `/federate`).
    pub external_labels: Vec<(String, String)>,
    /// Alert push URLs of the configured Alertmanagers (`/api/v1/alertmanagers`).
    pub alertmanagers: Vec<String>,
    /// Query engine settings (`--query.*` flags).
    pub engine: EngineOptions,
    /// Remote-write requests decoded and appended at once (`--web.remote-write.max-concurrency`;
    /// 0 means the default, 4).
    pub remote_write_max_concurrency: usize,
    /// `--storage.remote.read-sample-limit` (0: no limit).
    pub remote_read_sample_limit: usize,
    /// `--storage.remote.read-concurrent-limit` (0: no limit).
    pub remote_read_concurrent_limit: usize,
    /// `--storage.remote.read-max-bytes-in-frame`: bytes of a streamed remote-read frame.
    pub remote_read_max_bytes_in_frame: usize,
    /// `--web.enable-otlp-receiver`.
    pub enable_otlp_receiver: bool,
    /// `--enable-feature=otlp-deltatocumulative`: delta OTLP sums and histograms are
    /// accumulated into cumulative ones (else refused).
    pub otlp_delta_to_cumulative: bool,
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
    rules: OnceLock<Arc<RuleManager>>,
    pub(crate) sender: OnceLock<Arc<Sender>>,
    pub(crate) remote_write: OnceLock<Arc<strata_remote::write::RemoteWrite>>,
    /// The front door's forwarding of remote writes to ingesters, when this node is one.
    pub(crate) distributor: OnceLock<Arc<strata_ingest::distributor::Distributor>>,
    pub(crate) pushgateway: OnceLock<Arc<strata_ingest::pushgateway::PushStore>>,
    pub(crate) notifier: OnceLock<Arc<strata_alerting::notifier::Notifier>>,
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
    /// Label limits applied to remote write (`global.label_*limit`; replaced on reload).
    pub(crate) write_limits: RwLock<strata_ingest::remote_write::Limits>,
    /// The configuration's `otlp` section.
    pub(crate) otlp: RwLock<strata_config::OtlpConfig>,
    /// The OTLP receiver's delta-to-cumulative streams (with `otlp-deltatocumulative`).
    pub(crate) otlp_delta: Option<Arc<strata_ingest::otlp::DeltaToCumulative>>,
    /// Slots for remote-write requests in progress (their bodies are read after a slot).
    pub(crate) write_slots: tokio::sync::Semaphore,
    pub(crate) read_slots: tokio::sync::Semaphore,
}

impl AppState {
    /// State for a server whose storage is still opening.
    pub fn new(build: BuildInfo, info: ServerInfo) -> Arc<Self> {
        let write_slots = match info.remote_write_max_concurrency {
            0 => 4,
            n => n,
        };
        let read_slots = match info.remote_read_concurrent_limit {
            0 => tokio::sync::Semaphore::MAX_PERMITS,
            n => n,
        };
        let otlp_delta = info
            .otlp_delta_to_cumulative
            .then(|| Arc::new(strata_ingest::otlp::DeltaToCumulative::default()));
        Arc::new(AppState {
            config_yaml: RwLock::new(info.config_yaml.clone()),
            info,
            scrape: OnceLock::new(),
            rules: OnceLock::new(),
            sender: OnceLock::new(),
            remote_write: OnceLock::new(),
            distributor: OnceLock::new(),
            pushgateway: OnceLock::new(),
            notifier: OnceLock::new(),
            reload: OnceLock::new(),
            quit: tokio::sync::Notify::new(),
            db: OnceLock::new(),
            engine: OnceLock::new(),
            ready: AtomicBool::new(false),
            build,
            started: Instant::now(),
            counters: self_metrics::HttpCounters::default(),
            metadata: metadata::MetadataStore::default(),
            write_limits: RwLock::new(Default::default()),
            otlp: RwLock::new(Default::default()),
            otlp_delta,
            write_slots: tokio::sync::Semaphore::new(write_slots),
            read_slots: tokio::sync::Semaphore::new(read_slots),
        })
    }

    /// Hands over the opened storage and marks the server ready (WAL replay is done).
    pub fn set_ready(&self, db: Arc<Db>) {
        let _ = self.set_ready_with(db, Ok::<_, std::convert::Infallible>);
    }

    /// As [`AppState::set_ready`], the engine made by `make` from the one over `db` (a
    /// querier distributes its queries); the engine.
    pub fn set_ready_with<E>(
        &self,
        db: Arc<Db>,
        make: impl FnOnce(Engine) -> Result<Engine, E>,
    ) -> Result<Arc<Engine>, E> {
        let engine = Arc::new(make(Engine::new(db.clone(), self.info.engine.clone()))?);
        let _ = self.engine.set(engine.clone());
        let _ = self.db.set(db);
        self.ready.store(true, Ordering::Release);
        Ok(engine)
    }

    /// Sets the configuration's `otlp` section (at start and reload).
    pub fn set_otlp(&self, c: strata_config::OtlpConfig) {
        *self.otlp.write() = c;
    }

    /// Sets the label limits remote write applies (from `global`, at start and reload).
    pub fn set_write_limits(&self, l: strata_ingest::remote_write::Limits) {
        *self.write_limits.write() = l;
    }

    /// Hands over the scrape manager (targets and metadata APIs).
    pub fn set_scrape_manager(&self, m: Arc<ScrapeManager>) {
        let _ = self.scrape.set(m);
    }

    /// Hands over the rule manager (rules and alerts APIs).
    pub fn set_rule_manager(&self, m: Arc<RuleManager>) {
        let _ = self.rules.set(m);
    }

    /// Hands over the remote-write queues (`/metrics`).
    pub fn set_remote_write(&self, r: Arc<strata_remote::write::RemoteWrite>) {
        let _ = self.remote_write.set(r);
    }

    /// Makes this node a front door: `POST /api/v1/write` forwards to the ingesters.
    pub fn set_distributor(&self, d: Arc<strata_ingest::distributor::Distributor>) {
        let _ = self.distributor.set(d);
    }

    /// Hands over the Alertmanager sender (`/api/v1/alertmanagers`, `/metrics`).
    pub fn set_alert_sender(&self, s: Arc<Sender>) {
        let _ = self.sender.set(s);
    }

    /// Hands over the built-in notifier (Alertmanager API v2, `/metrics`).
    pub fn set_notifier(&self, n: Arc<strata_alerting::notifier::Notifier>) {
        let _ = self.notifier.set(n);
    }

    /// Hands over the push gateway's groups (`/metrics/job/...`).
    pub fn set_pushgateway(&self, p: Arc<strata_ingest::pushgateway::PushStore>) {
        let _ = self.pushgateway.set(p);
    }

    /// The running rule groups (none before the rule manager starts).
    pub(crate) fn rule_groups(&self) -> Vec<Arc<strata_alerting::rules::Group>> {
        self.rules.get().map(|m| m.groups()).unwrap_or_default()
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

/// The document's fixed part; every path comes from the handlers' annotations (the push
/// routes, served by one wildcard route, are listed here in their common form).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(pushgateway::push_put, pushgateway::push_post, pushgateway::push_delete),
    info(
        title = "Strata",
        description = "Prometheus HTTP API v1 (query, metadata, targets, rules, status, admin), Alertmanager API v2, remote write, push gateway, SQL, federation and lifecycle endpoints of Strata.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "query", description = "PromQL evaluation and parsing"),
        (name = "metadata", description = "Series, labels and metric metadata"),
        (name = "targets", description = "Scrape targets"),
        (name = "rules", description = "Rules, alerts and Alertmanagers"),
        (name = "status", description = "Server status"),
        (name = "admin", description = "TSDB administration (--web.enable-admin-api)"),
        (name = "write", description = "Ingestion"),
        (name = "federation", description = "Federation"),
        (name = "lifecycle", description = "Health, readiness, reload, self-metrics"),
        (name = "pushgateway", description = "Pushgateway API for short-lived jobs"),
        (name = "sql", description = "SQL over the metrics"),
        (name = "alertmanager", description = "Alertmanager API v2 of the built-in notifier (--alertmanager.config.file)"),
        (name = "docs", description = "This document")
    )
)]
struct ApiDoc;

/// Every documented route; the admin ones only when enabled (the document always has them).
fn api_routes(admin: bool) -> OpenApiRouter<Arc<AppState>> {
    use utoipa::OpenApi;
    let mut r = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(lifecycle::healthy))
        .routes(routes!(lifecycle::ready))
        .routes(routes!(lifecycle::reload))
        .routes(routes!(lifecycle::quit))
        .routes(routes!(self_metrics::metrics))
        .routes(routes!(write::remote_write))
        .routes(routes!(read::remote_read))
        .routes(routes!(otlp::otlp_metrics))
        .routes(routes!(series::series))
        .routes(routes!(series::label_names))
        .routes(routes!(series::label_values))
        .routes(routes!(metadata::metadata))
        .routes(routes!(query::query))
        .routes(routes!(query::query_range))
        .routes(routes!(explain::explain))
        .routes(routes!(targets::targets))
        .routes(routes!(targets::targets_metadata))
        .routes(routes!(parse_query::parse_query))
        .routes(routes!(exemplars::query_exemplars))
        .routes(routes!(rules::rules))
        .routes(routes!(rules::alerts))
        .routes(routes!(rules::alertmanagers))
        .routes(routes!(federate::federate))
        .routes(routes!(sql::sql))
        .routes(routes!(alertmanager::get_alerts, alertmanager::post_alerts))
        .routes(routes!(alertmanager::get_groups))
        .routes(routes!(
            alertmanager::get_silences,
            alertmanager::post_silence
        ))
        .routes(routes!(
            alertmanager::get_silence,
            alertmanager::delete_silence
        ))
        .routes(routes!(acks::get_acks, acks::post_ack))
        .routes(routes!(acks::delete_ack))
        .routes(routes!(alertmanager::status))
        .routes(routes!(alertmanager::receivers))
        .routes(routes!(status::buildinfo))
        .routes(routes!(status::flags))
        .routes(routes!(status::config))
        .routes(routes!(status::runtimeinfo))
        .routes(routes!(status::walreplay))
        .routes(routes!(status::tsdb))
        .routes(routes!(status::format_query))
        .routes(routes!(openapi_json))
        .routes(routes!(docs));
    if admin {
        r = r
            .routes(routes!(admin::delete_series))
            .routes(routes!(admin::clean_tombstones))
            .routes(routes!(admin::snapshot));
    }
    r
}

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_document() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = api_routes(true).split_for_parts();
        let mut s = doc.to_pretty_json().unwrap_or_default();
        s.push('\n');
        s
    })
    .clone()
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "docs",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document", body = Object, content_type = "application/json"))
)]
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
}

/// `GET /api/v1/docs`.
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = "docs",
    summary = "A page listing the operations of the document",
    responses((status = 200, description = "HTML page", body = String, content_type = "text/html"))
)]
async fn docs() -> axum::response::Html<&'static str> {
    openapi::docs_page().await
}

/// The router with every route. A panic in a handler answers 500 with Prometheus's error
/// body ([`serve::catch_panic_layer`]).
pub fn router(state: Arc<AppState>) -> Router {
    let (r, _) = api_routes(state.info.enable_admin_api).split_for_parts();
    let r = r.merge(pushgateway::push_routes()).merge(ui::routes());
    let cors = cors_layer(&state.info.cors_origin);
    r.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        unavailable_until_ready,
    ))
    .layer(DefaultBodyLimit::max(
        strata_ingest::remote_write::MAX_DECOMPRESSED,
    ))
    .layer(tower_http::compression::CompressionLayer::new().gzip(true))
    .layer(cors)
    .layer(serve::catch_panic_layer())
    .with_state(state)
}

/// As Prometheus, the HTTP API answers 503 until storage is open (WAL replay done); only
/// the WAL replay progress is served meanwhile. A client that takes any 200 (say
/// `buildinfo`) as "up" then never sees a query fail for a storage that is not there yet.
async fn unavailable_until_ready(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    if path.starts_with("/api/v1/")
        && path != "/api/v1/status/walreplay"
        && !state.ready.load(Ordering::Acquire)
    {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
        )
            .into_response();
    }
    next.run(req).await
}

pub use strata_grammar::format_rfc3339 as rfc3339;

/// Wraps the router with basic authentication and security headers (`--web.config.file`).
pub fn with_security(r: Router, sec: Arc<web_config::WebSecurity>) -> Router {
    r.layer(axum::middleware::from_fn_with_state(
        sec,
        web_config::security_layer,
    ))
}

/// CORS as Prometheus's `--web.cors.origin`: an anchored regex of allowed origins.
fn cors_layer(origin: &str) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let re = regex::Regex::new(&format!("^(?:{origin})$")).ok();
    CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_api_answers_503_until_storage_is_ready() {
        let build = BuildInfo {
            version: "0",
            revision: "0",
        };
        let state = AppState::new(build, ServerInfo::default());
        let status = |path: &'static str| {
            let r = router(state.clone());
            async move {
                let req = Request::get(path).body(Body::empty()).unwrap();
                r.oneshot(req).await.unwrap().status().as_u16()
            }
        };
        assert_eq!(status("/api/v1/status/buildinfo").await, 503);
        assert_eq!(status("/api/v1/query?query=1").await, 503);
        assert_eq!(status("/-/healthy").await, 200);
        assert_ne!(status("/api/v1/status/walreplay").await, 503);
        state.ready.store(true, Ordering::Release);
        assert_eq!(status("/api/v1/status/buildinfo").await, 200);
    }
}
