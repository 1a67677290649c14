//! The HTTP server loop shared by every listener of the process (the web listener, with or
//! without TLS, and the push gateway's): the bounds that keep a client from holding the
//! server.
//!
//! - At most [`ServeOptions::max_connections`] connections at once (`--web.max-connections`):
//!   a slot is taken *before* `accept`, so past the cap new connections wait in the kernel's
//!   backlog instead of costing a task, buffers and a file descriptor each. The slot is held
//!   by the connection, TLS handshake included.
//! - A request's header must arrive within [`ServeOptions::read_header_timeout`]
//!   (`--web.read-header-timeout`). hyper starts that clock whenever the connection waits for
//!   a request, so it bounds a fresh connection that sends nothing and an idle keep-alive
//!   connection between two requests as well: it is the idle timeout too.
//! - On stop, the listener closes, idle connections close at once, in-flight requests get
//!   [`ServeOptions::shutdown_grace`] to finish, and then every connection left is dropped:
//!   a client that stalls mid-request, or never reads its response, cannot hold SIGTERM.
//! - A panic in a handler is an HTTP 500 with Prometheus's error body ([`catch_panic_layer`]),
//!   never a dropped connection with no answer.
//!
//! [`raise_fd_limit`] raises `RLIMIT_NOFILE` as Go's runtime does for Prometheus.
//!
//! This module owns connections, not routes: what a request does is the router's business.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_http::catch_panic::CatchPanicLayer;

/// Default of [`ServeOptions::max_connections`] (`--web.max-connections`). Prometheus
/// defaults to 512; 4096 leaves room for a thousand idle or slow clients beside the health
/// checks, scrapes and queries that must still get in, and stays far below the file
/// descriptor limit once [`raise_fd_limit`] has run.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Default of [`ServeOptions::read_header_timeout`] (`--web.read-header-timeout`).
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`ServeOptions::shutdown_grace`]: how long in-flight requests may run once
/// the server is asked to stop.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Default of [`ServeOptions::tls_handshake_timeout`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (out of file descriptors, say) before the next one, so a
/// persistent error does not spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The bounds of one server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; more wait in the listen backlog. At least 1.
    pub max_connections: usize,
    /// Time allowed for a request's header, counted from when the connection starts waiting
    /// for it (so it bounds idle keep-alive connections too); `None` for no bound.
    pub read_header_timeout: Option<Duration>,
    /// Time in-flight requests get after the stop signal before their connections drop.
    pub shutdown_grace: Duration,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_header_timeout: Some(DEFAULT_READ_HEADER_TIMEOUT),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` (TLS first when `tls` is set) until `stop` completes, then
/// shuts down within [`ServeOptions::shutdown_grace`]. `app` is wrapped in
/// [`catch_panic_layer`], so whatever layers it carries (authentication included) a panic
/// becomes a 500.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    opts: ServeOptions,
    stop: impl Future<Output = ()> + Send,
) {
    let app = app.layer(catch_panic_layer());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.read_header_timeout);
    let conn = Arc::new(ConnConfig {
        http,
        app,
        tls,
        tls_handshake_timeout: opts.tls_handshake_timeout,
    });
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let (stop_conns, conns_stop) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let next = async {
            let slot = slots.clone().acquire_owned().await;
            (slot, listener.accept().await)
        };
        tokio::select! {
            () = &mut stop => break,
            Some(done) = conns.join_next() => log_task_end(done),
            (slot, accepted) = next => {
                // The semaphore is never closed.
                let Ok(slot) = slot else { break };
                match accepted {
                    Ok((tcp, peer)) => {
                        conns.spawn(connection(conn.clone(), tcp, peer, slot, conns_stop.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        drop(slot);
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        }
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = stop_conns.send(true);
    let drained = tokio::time::timeout(opts.shutdown_grace, async {
        while let Some(done) = conns.join_next().await {
            log_task_end(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            grace = ?opts.shutdown_grace,
            "requests still running after the shutdown grace period; closing their connections"
        );
        conns.shutdown().await;
    }
}

/// What every connection of one server shares.
struct ConnConfig {
    http: http1::Builder,
    app: Router,
    tls: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until either side closes or the
/// server stops. `_slot` is its place under the connection cap.
async fn connection(
    cfg: Arc<ConnConfig>,
    tcp: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    // As Go's net package does: responses are written whole, Nagle only adds latency.
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = &cfg.tls else {
        return http(&cfg, tcp, peer, stop).await;
    };
    let handshake = tokio::time::timeout(cfg.tls_handshake_timeout, acceptor.accept(tcp));
    let stream = tokio::select! {
        r = handshake => r,
        () = stopped(&mut stop) => return,
    };
    match stream {
        Ok(Ok(stream)) => http(&cfg, stream, peer, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// HTTP/1.1 on an established stream; on stop, finishes the request in flight (the caller
/// bounds how long) and closes.
async fn http<I>(cfg: &ConnConfig, io: I, peer: SocketAddr, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(cfg.app.clone());
    let conn = cfg.http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Completes once the server is stopping (or gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "a connection task panicked");
    }
}

/// The response to a panic caught in a handler.
pub type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response;

/// Catches a panic in the wrapped service: HTTP 500 with Prometheus's error body
/// (`errorType` `internal`), logged at error level, and the server goes on.
pub fn catch_panic_layer() -> CatchPanicLayer<PanicHandler> {
    CatchPanicLayer::custom(panic_response as PanicHandler)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = if let Some(s) = panic.downcast_ref::<String>() {
        s.as_str()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else {
        "unknown panic"
    };
    tracing::error!(panic = %detail, "a request handler panicked");
    crate::error::error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        &format!("internal server error: {detail}"),
    )
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go's runtime does at start for
/// Prometheus: the soft default (often 1024) is far below what a server with thousands of
/// connections and open blocks needs. Returns the soft limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_error_envelope() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(catch_panic_layer());
        let req = Request::get("/boom").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "internal");
        assert!(v["error"].as_str().unwrap().contains("boom"), "{v}");
    }

    #[tokio::test]
    async fn stop_returns_within_the_grace_period_with_a_stalled_client() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ServeOptions {
            shutdown_grace: Duration::from_millis(200),
            ..ServeOptions::default()
        };
        let (tx, mut rx) = watch::channel(false);
        let app = Router::new().route("/", axum::routing::post(|body: String| async { body }));
        let server = tokio::spawn(serve(listener, None, app, opts, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        // A request whose body never comes.
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after the grace period")
            .unwrap();
    }
}
