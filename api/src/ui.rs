//! The web UI: plain HTML, CSS and JavaScript modules (no build step, no CDN) embedded in
//! the binary and served on the main port — the expression browser at `/graph` (with
//! Prometheus's URL scheme `g0.expr`, `g0.tab`, `g0.range_input`, …), `/alerts`, `/rules`,
//! `/targets`, `/silences`, `/status` (also `/flags`, `/config`, `/tsdb-status`), and
//! `/` redirecting to `/graph`. The pages talk to the HTTP APIs only.
//!
//! With `STRATA_UI_DIR=<dir>` in the environment the assets are read from that directory
//! on every request instead (for UI development without rebuilding).

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Embedded assets: (file name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../ui/index.html"),
    ),
    (
        "acks.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/acks.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../ui/app.css"),
    ),
    (
        "graph.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/graph.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/chart.js"),
    ),
    (
        "histogram.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/histogram.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages.js"),
    ),
    (
        "util.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/util.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../ui/favicon.svg"),
    ),
];

/// Pages the single-page app renders (each gets `index.html`).
const PAGES: &[&str] = &[
    "/graph",
    "/alerts",
    "/rules",
    "/targets",
    "/silences",
    "/status",
    "/flags",
    "/config",
    "/tsdb-status",
    "/service-discovery",
];

fn asset(name: &str) -> Response {
    let Some((_, ctype, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if let Ok(dir) = std::env::var("STRATA_UI_DIR") {
        match std::fs::read(std::path::Path::new(&dir).join(name)) {
            Ok(b) => return ([(header::CONTENT_TYPE, *ctype)], b).into_response(),
            Err(e) => {
                return (StatusCode::NOT_FOUND, format!("{dir}/{name}: {e}\n")).into_response();
            }
        }
    }
    (
        [
            (header::CONTENT_TYPE, *ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("index.html")
}

async fn static_file(Path(name): Path<String>) -> Response {
    asset(&name)
}

/// The UI routes (merged into the main router; not part of the API document).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/graph") }))
        .route("/static/{name}", get(static_file))
        .route("/favicon.ico", get(|| async { asset("favicon.svg") }));
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r
}
