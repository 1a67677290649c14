//! `strata distributor`: the front door of a sharded, replicated ingest tier (see
//! `strata_ingest::distributor`). It holds no data: it forwards remote writes to the
//! ingesters (`strata` nodes) by a hash ring with a replication factor, acknowledging once
//! a majority of each series' ingesters has it in its WAL.

use std::net::SocketAddr;
use std::time::Duration;

use strata_ingest::distributor::{Distributor, DistributorOptions};

use crate::flags::Flags;

/// Flags of `strata distributor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DistributorArgs {
    /// Address to listen on for remote write.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9091")]
    listen_address: String,
    /// An ingester's base URL (`http://host:port` of a `strata` node); repeat per ingester.
    #[arg(long = "distributor.ingester", required = true)]
    ingesters: Vec<String>,
    /// Ingesters each series is written to; a write is acknowledged when a majority of
    /// them have it.
    #[arg(long = "distributor.replication-factor", default_value_t = 3)]
    replication_factor: usize,
    /// Bound of one forward to an ingester.
    #[arg(long = "distributor.remote-timeout", default_value = "30s")]
    remote_timeout: String,
    /// Requests read and forwarded at once; more wait up to 10 s, then 503.
    #[arg(long = "web.remote-write.max-concurrency", default_value_t = 16)]
    max_concurrency: usize,
    /// Connections served at once.
    #[arg(long = "web.max-connections", default_value_t = 4096)]
    max_connections: usize,
    /// Log level.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
}

/// Runs the front door until SIGTERM/SIGINT; returns the exit status.
pub(crate) fn run(args: DistributorArgs) -> u8 {
    let filter = tracing_subscriber::EnvFilter::try_new(args.log_level.as_str())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata distributor: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("strata distributor: {e}");
            1
        }
    }
}

async fn serve(args: DistributorArgs) -> Result<(), String> {
    let addr: SocketAddr = args
        .listen_address
        .parse()
        .map_err(|e| format!("--web.listen-address={}: {e}", args.listen_address))?;
    for u in &args.ingesters {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!(
                "--distributor.ingester={u}: give a base URL, http://host:port"
            ));
        }
    }
    if args.replication_factor == 0 {
        return Err("--distributor.replication-factor must be at least 1".into());
    }
    if args.replication_factor > args.ingesters.len() {
        tracing::warn!(
            replication_factor = args.replication_factor,
            ingesters = args.ingesters.len(),
            "fewer ingesters than the replication factor: every series goes to every ingester"
        );
    }
    let timeout = Duration::from_millis(
        Flags::duration_ms("distributor.remote-timeout", &args.remote_timeout)?.max(1) as u64,
    );
    let d = Distributor::new(&DistributorOptions {
        ingesters: args.ingesters.clone(),
        replication_factor: args.replication_factor,
        timeout,
    })?;
    tracing::info!(ingesters = ?args.ingesters, replication_factor = d.ring().replication_factor(),
        quorum = d.ring().quorum(), %addr, "distributor listening");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let app = strata_api::distributor_router(d, args.max_concurrency);
    let opts = strata_api::serve::ServeOptions {
        max_connections: args.max_connections.max(1),
        ..Default::default()
    };
    strata_api::serve::serve(listener, None, app, opts, crate::wait_for_signal()).await;
    Ok(())
}
