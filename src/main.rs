//! The `strata` binary: flags (Prometheus's names), configuration, storage, HTTP server,
//! background maintenance and graceful shutdown. It wires the crates together and holds no
//! logic of its own beyond that.

mod alloc;
mod compact_cmd;
mod flags;
mod retention;
mod sql_cli;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use parking_lot::RwLock;
use strata_alerting::notifier::{Notifier, NotifierOptions};
use strata_alerting::rules::{AlertSink, ManagerOptions, RuleContext, RuleManager, Sender};
use strata_api::{AppState, BuildInfo, EngineOptions, ReloadFn, ServerInfo};
use strata_ingest::scrape::ScrapeManager;
use strata_storage::{Db, Options};
use tracing_subscriber::EnvFilter;

use crate::flags::Flags;

fn main() -> std::process::ExitCode {
    alloc::tune();
    let mut flags = Flags::parse();
    if let Some(cmd) = flags.command.take() {
        return std::process::ExitCode::from(tools::run(cmd));
    }
    init_tracing(&flags.log_level, false);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(flags)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("strata: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logging at `level` (`--log.level`): to stdout for the server, as before; to stderr for
/// tools whose stdout is their output.
pub(crate) fn init_tracing(level: &str, to_stderr: bool) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // The gossip library warns once per undecodable datagram: a peer sending garbage
    // would flood the log. Its errors stay; all of it with --log.level=debug.
    let filter = match level {
        "debug" | "trace" => filter,
        _ => match "chitchat=error".parse() {
            Ok(d) => filter.add_directive(d),
            Err(_) => filter,
        },
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if to_stderr {
        fmt.with_writer(std::io::stderr).init();
    } else {
        fmt.init();
    }
}

async fn run(flags: Flags) -> Result<(), String> {
    if let Err(e) = regex::Regex::new(&format!("^(?:{})$", flags.cors_origin)) {
        return Err(format!("--web.cors.origin={}: {e}", flags.cors_origin));
    }
    let addr: SocketAddr = flags
        .listen_address
        .parse()
        .map_err(|e| format!("--web.listen-address={}: {e}", flags.listen_address))?;
    let config = match &flags.config_file {
        Some(p) => strata_config::Config::load(p).map_err(|e| e.to_string())?,
        None => strata_config::Config::default_embedded(addr.port()),
    };
    warn_unacted(&config);
    for w in flags.unacted_cluster_flags() {
        tracing::warn!("{w}");
    }
    let cluster = match &flags.alertmanager_config_file {
        Some(_) => flags.cluster_options()?,
        None => None,
    };
    let mut opts = Options::new(&flags.tsdb_path);
    opts.retention_time_ms = flags.retention_time_ms()?;
    opts.retention_size_bytes = flags.retention_size_bytes()?;
    opts.max_future_ms = match Flags::duration_ms(
        "storage.tsdb.too-far-in-future.time-window",
        &flags.too_far_in_future,
    )? {
        0 => None,
        ms => Some(ms),
    };
    if let Some(w) = config
        .storage
        .tsdb
        .as_ref()
        .map(|t| t.out_of_order_time_window.as_millis())
        && w > 0
    {
        opts.ooo_window_ms = w as i64;
        opts.exemplar_ooo_window_ms = w as i64;
    }
    opts.max_exemplars = max_exemplars(&config);
    retention::apply(&config, &mut opts)?;
    opts.replica_labels = flags.query_replica_label.clone();
    if let Some(p) = &flags.objstore_config_file {
        let (spec, prefix) = bucket_spec(p).map_err(|e| format!("--objstore.config-file: {e}"))?;
        opts.bucket = Some(strata_storage::bucket::node::BucketOptions {
            spec,
            prefix,
            external_labels: config
                .global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cache_bytes: Flags::byte_size("objstore.cache-size", &flags.objstore_cache_size)?
                as u64,
            sync_interval: Duration::from_millis(
                Flags::duration_ms("objstore.sync-interval", &flags.objstore_sync_interval)?
                    .max(1000) as u64,
            ),
            read_all: flags.objstore_read_all_blocks,
        });
    }
    let notifier = match &flags.alertmanager_config_file {
        Some(p) => Some(
            Notifier::open(NotifierOptions {
                config_file: p.clone(),
                state_dir: flags.tsdb_path.join("alertmanager"),
                external_url: flags.external_url(addr.port()),
            })
            .map_err(|e| format!("--alertmanager.config.file: {e}"))?,
        ),
        None => None,
    };
    tracing::info!(config = ?flags.config_file, data = %flags.tsdb_path.display(),
        retention_ms = ?opts.retention_time_ms, retention_bytes = ?opts.retention_size_bytes,
        scrape_jobs = config.scrape_configs.len(), "starting Strata");

    let info = ServerInfo {
        flags: flags.as_map(),
        config_yaml: config.to_yaml().unwrap_or_default(),
        start_time_rfc3339: flags::rfc3339_now(),
        retention: flags.retention_time.clone(),
        enable_admin_api: flags.enable_admin_api,
        enable_lifecycle: flags.enable_lifecycle,
        external_labels: config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        alertmanagers: alertmanager_urls(&config),
        cors_origin: flags.cors_origin.clone(),
        engine: EngineOptions {
            lookback: flags.lookback_delta_ms()?,
            timeout: std::time::Duration::from_millis(flags.query_timeout_ms()?.max(1) as u64),
            max_samples: flags.query_max_samples,
            max_memory: Flags::byte_size("query.max-memory", &flags.query_max_memory)?,
            // 0 (the default) means half of --query.max-memory, not "no limit".
            max_memory_per_query: match flags.query_max_memory_per_query.trim() {
                "0" | "" => 0,
                v => Flags::byte_size("query.max-memory-per-query", v)?,
            },
            sql_max_result_bytes: Flags::byte_size(
                "query.sql-max-result-bytes",
                &flags.query_sql_max_result_bytes,
            )?,
            max_concurrency: flags.query_max_concurrency,
            compute_threads: strata_engine::compute::default_threads(),
            default_subquery_step: config.global.evaluation_interval.as_millis() as i64,
            type_and_unit_labels: flags.type_and_unit_labels()?,
            selection_parts: (flags.query_debug_selection_parts > 0)
                .then_some(flags.query_debug_selection_parts),
        },
        remote_write_max_concurrency: flags.remote_write_max_concurrency.max(1),
        remote_read_sample_limit: flags.remote_read_sample_limit,
        remote_read_concurrent_limit: flags.remote_read_concurrent_limit,
        remote_read_max_bytes_in_frame: flags.remote_read_max_bytes_in_frame,
        enable_otlp_receiver: flags.enable_otlp_receiver,
        otlp_delta_to_cumulative: flags.otlp_delta_to_cumulative(),
    };
    if flags.objstore_config_file.is_none() {
        for (set, f) in [
            (flags.objstore_read_all_blocks, "--objstore.read-all-blocks"),
            (
                flags.objstore_cache_size != "256MB",
                "--objstore.cache-size",
            ),
            (
                flags.objstore_sync_interval != "1m",
                "--objstore.sync-interval",
            ),
        ] {
            if set {
                tracing::warn!("{f} has no effect without --objstore.config-file");
            }
        }
    }
    if flags.distributor_ingester.is_empty() {
        for (set, f) in [
            (
                flags.distributor_replication_factor != 3,
                "--distributor.replication-factor",
            ),
            (
                flags.distributor_remote_timeout != "30s",
                "--distributor.remote-timeout",
            ),
        ] {
            if set {
                tracing::warn!("{f} has no effect without --distributor.ingester");
            }
        }
    }
    if flags.otlp_delta_to_cumulative() && !flags.enable_otlp_receiver {
        tracing::warn!(
            "--enable-feature=otlp-deltatocumulative has no effect without --web.enable-otlp-receiver"
        );
    }
    let state = AppState::new(
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("STRATA_REVISION").unwrap_or("unknown"),
        },
        info,
    );
    state.set_write_limits(write_limits(&config));
    state.set_otlp(config.otlp.clone());
    let web = match &flags.web_config_file {
        Some(p) => Some(strata_api::web_config::WebConfig::load(p)?),
        None => None,
    };
    let tls = match &web {
        Some(w) => w.tls_acceptor()?,
        None => None,
    };
    if flags.max_connections == 0 {
        return Err("--web.max-connections must be at least 1".into());
    }
    let serve_opts = strata_api::serve::ServeOptions {
        max_connections: flags.max_connections,
        read_header_timeout: u64::try_from(Flags::duration_ms(
            "web.read-header-timeout",
            &flags.read_header_timeout,
        )?)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis),
        ..strata_api::serve::ServeOptions::default()
    };
    match strata_api::serve::raise_fd_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    let mut app = strata_api::router(state.clone());
    if let Some(w) = &web {
        app = strata_api::with_security(app, strata_api::web_config::WebSecurity::new(w));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let shutdown = async move {
        let _ = server_stop.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(strata_api::serve::serve(
        listener,
        tls,
        app,
        serve_opts.clone(),
        shutdown,
    ));

    // Storage opens (WAL replay) while the server already answers /-/healthy.
    let db = Db::open(opts.clone())
        .await
        .map_err(|e| format!("opening storage: {e}"))?;
    // The push gateway's store needs no storage: in place before the server says it is
    // ready, so a push right after readiness is not refused.
    let push_file = flags
        .pushgateway_persistence_file
        .clone()
        .unwrap_or_else(|| flags.tsdb_path.join("pushgateway.json"));
    let push_store = strata_ingest::pushgateway::PushStore::open(
        Some(push_file),
        Flags::duration_ms("pushgateway.group-ttl", &flags.pushgateway_group_ttl)?,
    )?;
    state.set_pushgateway(push_store.clone());
    // Its port answers before the server says it is ready, as the store is in place.
    let push_server = match &flags.pushgateway_listen_address {
        Some(a) => {
            let paddr: SocketAddr = a
                .parse()
                .map_err(|e| format!("--pushgateway.listen-address={a}: {e}"))?;
            let l = tokio::net::TcpListener::bind(paddr)
                .await
                .map_err(|e| format!("cannot listen on {paddr}: {e}"))?;
            tracing::info!(addr = %paddr, "push gateway listening");
            let mut app = strata_api::pushgateway::pushgateway_router(state.clone());
            if let Some(w) = &web {
                app = strata_api::with_security(app, strata_api::web_config::WebSecurity::new(w));
            }
            let mut st = stop_rx.clone();
            Some(tokio::spawn(strata_api::serve::serve(
                l,
                None,
                app,
                serve_opts.clone(),
                async move {
                    let _ = st.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let workers = distributed_workers(&flags)?;
    // Bound now, so that a port in use stops the start; it serves once the engine is made.
    let worker = match &flags.distributed_listen_address {
        Some(a) => {
            let waddr: SocketAddr = a
                .parse()
                .map_err(|e| format!("--distributed.listen-address={a}: {e}"))?;
            let w = strata_engine::distributed::BoundWorker::bind(waddr)
                .await
                .map_err(|e| format!("cannot listen on {waddr}: {e}"))?;
            tracing::info!(addr = %w.local_addr(), "worker of distributed queries listening");
            Some(w)
        }
        None => None,
    };
    // Writes are forwarded and reads see the ingesters and remote reads before the node
    // says it is ready.
    let ingesters = Ingesters::from_flags(&flags)?;
    if let Some(d) = &ingesters.distributor {
        state.set_distributor(d.clone());
    }
    db.set_external(remote_readers(&config, &ingesters)?);

    let scrape =
        ScrapeManager::new(db.clone()).with_type_and_unit_labels(flags.type_and_unit_labels()?);
    scrape.apply(&config).map_err(|e| e.to_string())?;
    state.set_scrape_manager(scrape.clone());

    let remote = strata_remote::write::RemoteWrite::new(db.clone(), flags.tsdb_path.clone());
    remote.apply(&config).await.map_err(|e| e.to_string())?;
    state.set_remote_write(remote.clone());
    {
        let st = state.clone();
        remote.set_metadata_source(Arc::new(move || st.metadata_list()));
    }
    // Ready once the remote-write queues follow the WAL: a queue sends what is written
    // from its start on, so a sample accepted after readiness is never skipped.
    let engine = state.set_ready_with(db.clone(), |e| {
        cluster_engine(e, &flags, &ingesters, workers)
    })?;
    let worker_task = match worker {
        Some(w) => {
            let env = engine.worker_env();
            let mut st = stop_rx.clone();
            Some(tokio::spawn(async move {
                let stop = async move {
                    let _ = st.wait_for(|s| *s).await;
                };
                if let Err(e) = w.serve(env, stop).await {
                    tracing::error!(error = %e, "the worker of distributed queries stopped");
                }
            }))
        }
        None => None,
    };

    let sender = Sender::new(flags.notification_queue_capacity);
    sender.apply(&config)?;
    state.set_alert_sender(sender.clone());
    if let Some(n) = &notifier {
        if let Some(c) = &cluster {
            n.join_cluster(c, stop_rx.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        sender.set_notifier(Some(n.clone()));
        state.set_notifier(n.clone());
        tokio::spawn(n.clone().maintain(stop_rx.clone()));
    }
    let sender_task = tokio::spawn(sender.clone().run(stop_rx.clone()));
    let engine = state.engine().map_err(|e| e.to_string())?;
    let engine_activity = engine.queries_started();
    let ctx = Arc::new(RuleContext {
        engine,
        db: db.clone(),
        external_labels: RwLock::new(Default::default()),
        external_url: flags.external_url(addr.port()),
        resend_delay: Flags::duration_ms("rules.alert.resend-delay", &flags.resend_delay)?,
        sinks: RwLock::new(vec![sender.clone() as Arc<dyn AlertSink>]),
    });
    let rules = RuleManager::new(
        ctx,
        ManagerOptions {
            outage_tolerance: Flags::duration_ms(
                "rules.alert.for-outage-tolerance",
                &flags.for_outage_tolerance,
            )?,
            grace_period: Flags::duration_ms(
                "rules.alert.for-grace-period",
                &flags.for_grace_period,
            )?,
        },
    );
    let rule_files = RuleManager::load(&config).map_err(|e| format!("loading rules: {e}"))?;
    rules.apply(&config, rule_files).await;
    state.set_rule_manager(rules.clone());

    let persist_every = Flags::duration_ms(
        "pushgateway.persistence.interval",
        &flags.pushgateway_persistence_interval,
    )?;
    let push_persist = tokio::spawn(push_store.clone().persist_loop(
        Duration::from_millis(persist_every.max(0) as u64),
        stop_rx.clone(),
    ));
    let push_interval = Arc::new(std::sync::atomic::AtomicI64::new(
        config.global.scrape_interval.as_millis() as i64,
    ));
    let push_task = tokio::spawn(strata_ingest::pushgateway::ingest::run(
        push_store.clone(),
        db.clone(),
        push_interval.clone(),
        stop_rx.clone(),
    ));

    let reload = reload_fn(
        flags.config_file.clone(),
        addr.port(),
        Services {
            scrape: scrape.clone(),
            rules: rules.clone(),
            sender: sender.clone(),
            notifier: notifier.clone(),
            push_interval,
            remote: remote.clone(),
            db: db.clone(),
            ingesters: ingesters.clone(),
        },
        state.clone(),
    );
    state.set_reload(reload.clone());
    tokio::spawn(sighup_loop(reload, stop_rx.clone()));
    tracing::info!("server is ready to receive web requests");

    let fsync = tokio::spawn(wal_sync_loop(
        db.clone(),
        opts.wal_fsync_interval,
        stop_rx.clone(),
    ));
    let maint = tokio::spawn(maintenance_loop(db.clone(), stop_rx.clone()));
    alloc::spawn_purge_thread(engine_activity);

    tokio::select! {
        _ = wait_for_signal() => tracing::info!("received termination signal, stopping"),
        _ = state.quit.notified() => tracing::info!("stop requested through /-/quit"),
    }
    state.set_not_ready();
    scrape.shutdown().await;
    rules.shutdown().await;
    let _ = stop_tx.send(true);
    if let Some(p) = notifier.as_ref().and_then(|n| n.cluster()) {
        p.leave().await;
    }
    let _ = server.await;
    if let Some(w) = worker_task {
        let _ = w.await;
    }
    let _ = sender_task.await;
    let _ = push_task.await;
    if let Some(p) = push_server {
        let _ = p.await;
    }
    // No push can arrive any more: write what the last interval changed.
    let _ = push_persist.await;
    match tokio::task::spawn_blocking(move || push_store.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "persisting push groups at shutdown failed"),
        Err(e) => tracing::error!(error = %e, "persisting push groups at shutdown failed"),
    }
    // Everything is in the WAL: the queues save where they got to.
    remote.stop().await;
    let _ = fsync.await;
    let _ = maint.await;
    db.close()
        .await
        .map_err(|e| format!("closing storage: {e}"))?;
    tracing::info!("storage closed; bye");
    Ok(())
}

/// Prometheus's `global` label limits, applied to remote write.
fn write_limits(config: &strata_config::Config) -> strata_ingest::remote_write::Limits {
    let g = &config.global;
    let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    strata_ingest::remote_write::Limits {
        label_limit: n(g.label_limit),
        label_name_length_limit: n(g.label_name_length_limit),
        label_value_length_limit: n(g.label_value_length_limit),
    }
}

/// Warns about the settings of `config` that are accepted (so an unchanged prometheus.yml
/// loads) but have no effect yet. (The remote-write queues warn about their own.)
fn warn_unacted(config: &strata_config::Config) {
    if config.otlp.promote_scope_metadata {
        tracing::warn!(
            "otlp.promote_scope_metadata has no effect: otel_scope_* labels are not added yet"
        );
    }
}

/// The storage's external source for the `remote_read` entries of `config` (none without
/// entries).
fn remote_readers(
    config: &strata_config::Config,
    ingesters: &Ingesters,
) -> Result<Option<Arc<dyn strata_storage::ExternalSource>>, String> {
    let mut remote_read = config.remote_read.clone();
    remote_read.extend(ingesters.remote_read.iter().cloned());
    Ok(
        strata_remote::read::RemoteReaders::new(&remote_read, &config.global.external_labels)
            .map_err(|e| e.to_string())?
            .map(|r| r as Arc<dyn strata_storage::ExternalSource>),
    )
}

/// Alert push URLs of the statically configured Alertmanagers.
fn alertmanager_urls(config: &strata_config::Config) -> Vec<String> {
    let mut out = Vec::new();
    for am in &config.alerting.alertmanagers {
        let prefix = am.path_prefix.trim_end_matches('/');
        for sc in &am.service_discovery.static_configs {
            for t in &sc.targets {
                out.push(format!("{}://{t}{prefix}/api/v2/alerts", am.scheme));
            }
        }
    }
    out
}

/// `storage.exemplars.max_exemplars` (Prometheus's default 100000 when the section is
/// absent; 0 or less keeps none).
fn max_exemplars(config: &strata_config::Config) -> i64 {
    config
        .storage
        .exemplars
        .as_ref()
        .map_or(100_000, |e| e.max_exemplars)
}

/// What a reload reconfigures.
#[derive(Clone)]
struct Services {
    scrape: Arc<ScrapeManager>,
    rules: Arc<RuleManager>,
    sender: Arc<Sender>,
    notifier: Option<Arc<Notifier>>,
    push_interval: Arc<std::sync::atomic::AtomicI64>,
    remote: Arc<strata_remote::write::RemoteWrite>,
    db: Arc<Db>,
    ingesters: Ingesters,
}

/// Reloads the configuration: the file and its rule files are parsed and checked in full
/// first, so a bad file changes nothing; then applied to the scrape manager (unchanged jobs
/// and targets keep running), the Alertmanager sender, the built-in notifier and the rule
/// manager (unchanged groups keep their state).
fn reload_fn(
    path: Option<std::path::PathBuf>,
    port: u16,
    services: Services,
    state: Arc<AppState>,
) -> ReloadFn {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    Arc::new(move || {
        let (path, s, state, lock) = (path.clone(), services.clone(), state.clone(), lock.clone());
        Box::pin(async move {
            let _g = lock.lock().await;
            let config = match &path {
                Some(p) => strata_config::Config::load(p).map_err(|e| e.to_string())?,
                None => strata_config::Config::default_embedded(port),
            };
            let rule_files =
                RuleManager::load(&config).map_err(|e| format!("loading rules: {e}"))?;
            let readers = remote_readers(&config, &s.ingesters)?;
            warn_unacted(&config);
            retention::check_reload(&config, s.db.options())?;
            let am = match &s.notifier {
                Some(n) => Some(
                    n.load_config()
                        .map_err(|e| format!("--alertmanager.config.file: {e}"))?,
                ),
                None => None,
            };
            if let (Some(n), Some(am)) = (&s.notifier, am) {
                n.apply(am).await;
            }
            s.scrape.apply(&config).map_err(|e| e.to_string())?;
            s.remote.apply(&config).await.map_err(|e| e.to_string())?;
            s.db.set_external(readers);
            let kept = s.db.exemplars.resize(max_exemplars(&config));
            tracing::debug!(kept, "exemplar storage sized");
            s.sender.apply(&config)?;
            s.rules.apply(&config, rule_files).await;
            s.push_interval.store(
                config.global.scrape_interval.as_millis() as i64,
                std::sync::atomic::Ordering::Relaxed,
            );
            *state.config_yaml.write() = config.to_yaml().unwrap_or_default();
            state.set_write_limits(write_limits(&config));
            state.set_otlp(config.otlp.clone());
            tracing::info!(jobs = config.scrape_configs.len(), "configuration reloaded");
            Ok(())
        })
    })
}

/// SIGHUP reloads the configuration, as in Prometheus.
async fn sighup_loop(reload: ReloadFn, mut stop: tokio::sync::watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            let hangup = tokio::select! {
                _ = hup.recv() => true,
                _ = stop.wait_for(|s| *s) => false,
            };
            if !hangup {
                return;
            }
            if let Err(e) = reload().await {
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reload, stop.wait_for(|s| *s).await);
    }
}

/// Scraped samples are fsynced at least this often (other appends at every group commit).
const SCRAPED_FSYNC_EVERY: Duration = Duration::from_secs(1);

/// Group commit: every `every`, fsyncs the WAL when an acknowledged append (remote write,
/// push, rules) is waiting, and at least every [`SCRAPED_FSYNC_EVERY`] when only scraped
/// samples are. Nothing runs on the blocking pool when there is nothing to sync.
async fn wal_sync_loop(db: Arc<Db>, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if db.wal_fsync_failed() {
            // A segment's fsync failed elsewhere (rotation): same rule as below.
            tracing::error!("a WAL fsync failed: exiting so that the restart replays the WAL");
            eprintln!("strata: a WAL fsync failed; exiting");
            std::process::exit(3);
        }
        let scraped_too = last.elapsed() >= SCRAPED_FSYNC_EVERY.max(every);
        if !db.wal_sync_due(scraped_too) {
            continue;
        }
        last = std::time::Instant::now();
        let d = db.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || d.sync_wal()).await {
            // After a failed fsync the kernel may have dropped the dirty pages and a retry
            // would report success for data that is gone ("fsyncgate"): fail loudly, and
            // let the restart replay what the WAL really holds.
            tracing::error!(error = %e, "WAL fsync failed: exiting so that the restart replays the WAL");
            eprintln!("strata: WAL fsync failed: {e}; exiting");
            std::process::exit(3);
        }
    }
}

async fn maintenance_loop(db: Arc<Db>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = db.wait_for_work() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        db.probe_wal();
        if let Err(e) = db.maintain().await {
            tracing::error!(error = %e, "storage maintenance failed");
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The bucket of a Thanos object storage file, and its prefix (its unacted keys warned).
fn bucket_spec(
    path: &std::path::Path,
) -> Result<(strata_storage::bucket::BucketSpec, String), String> {
    use strata_config::BucketConfig;
    use strata_storage::bucket::BucketSpec;
    let c = strata_config::ObjstoreConfig::load(path).map_err(|e| e.to_string())?;
    for k in &c.unacted {
        tracing::warn!(file = %path.display(), "objstore {k} is accepted but has no effect in Strata");
    }
    let spec = match c.bucket {
        BucketConfig::S3(s) => BucketSpec::S3 {
            bucket: s.bucket,
            endpoint: s.endpoint,
            region: s.region,
            access_key: s.access_key,
            secret_key: s.secret_key.expose().to_owned(),
            session_token: s.session_token.expose().to_owned(),
            insecure: s.insecure,
            virtual_hosted: s.virtual_hosted,
            max_retries: s.max_retries,
        },
        BucketConfig::Filesystem { directory } => BucketSpec::Filesystem { directory },
    };
    Ok((spec, c.prefix))
}

/// The bucket of `--objstore.config-file`, its reads cached up to `cache_bytes`.
pub(crate) fn open_bucket(
    path: &std::path::Path,
    cache_bytes: u64,
) -> Result<strata_storage::bucket::Bucket, String> {
    let (spec, prefix) = bucket_spec(path)?;
    strata_storage::bucket::Bucket::open(&spec, &prefix, cache_bytes)
        .map_err(|e| format!("--objstore.config-file={}: {e}", path.display()))
}

/// The workers of `--distributed.worker`, checked against `--distributor.ingester`.
fn distributed_workers(flags: &Flags) -> Result<Vec<url::Url>, String> {
    if flags.distributed_worker.is_empty() {
        return Ok(Vec::new());
    }
    let workers = flags
        .distributed_worker
        .iter()
        .map(|w| {
            url::Url::parse(w)
                .ok()
                .filter(|u| u.scheme() == "http" && u.host().is_some() && u.port().is_some())
                .ok_or_else(|| format!("--distributed.worker={w}: give http://host:port"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if workers.len() != flags.distributor_ingester.len() {
        return Err(format!(
            "{} --distributed.worker for {} --distributor.ingester: give one worker per ingester, in the same order",
            workers.len(),
            flags.distributor_ingester.len()
        ));
    }
    Ok(workers)
}

/// The engine, distributing its queries over `workers` when there are any.
fn cluster_engine(
    e: strata_engine::Engine,
    flags: &Flags,
    ingesters: &Ingesters,
    workers: Vec<url::Url>,
) -> Result<strata_engine::Engine, String> {
    if workers.is_empty() {
        return Ok(e);
    }
    let e = e
        .with_cluster(flags.distributor_ingester.clone(), workers)
        .map_err(|e| e.to_string())?;
    if let (Some(c), Some(d)) = (e.coordinator(), &ingesters.distributor) {
        let d = d.clone();
        c.set_gaps(Arc::new(move |mint, maxt| d.gaps().overlaps(mint, maxt)));
        c.set_attempt_timeout(Duration::from_millis(
            Flags::duration_ms(
                "distributor.remote-timeout",
                &flags.distributor_remote_timeout,
            )?
            .max(1) as u64,
        ));
    }
    tracing::info!(workers = ?flags.distributed_worker, "querier: PromQL queries run on the ingesters' workers");
    Ok(e)
}

/// The ingest tier behind a front door (`--distributor.*`): the forwarding of writes, and
/// a remote-read entry per ingester (`read_recent`, external labels not filtered) for queries.
#[derive(Clone, Default)]
struct Ingesters {
    distributor: Option<Arc<strata_ingest::distributor::Distributor>>,
    remote_read: Vec<strata_config::RemoteReadConfig>,
}

impl Ingesters {
    fn from_flags(flags: &Flags) -> Result<Ingesters, String> {
        if flags.distributor_ingester.is_empty() {
            return Ok(Ingesters::default());
        }
        let timeout = Flags::duration_ms(
            "distributor.remote-timeout",
            &flags.distributor_remote_timeout,
        )?
        .max(1);
        if flags.distributor_replication_factor == 0 {
            return Err("--distributor.replication-factor must be at least 1".into());
        }
        let mut yaml = String::from("remote_read:\n");
        for (i, u) in flags.distributor_ingester.iter().enumerate() {
            let u = u.trim_end_matches('/');
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "--distributor.ingester={u}: give a base URL, http://host:port"
                ));
            }
            yaml.push_str(&format!(
                "  - url: \"{u}/api/v1/read\"\n    name: ingester-{i}\n    read_recent: true\n    filter_external_labels: false\n    remote_timeout: {timeout}ms\n"
            ));
        }
        let parsed = strata_config::Config::from_yaml_str(&yaml, "--distributor.ingester")
            .map_err(|e| e.to_string())?;
        let remote_read = parsed.remote_read;
        if flags.distributor_replication_factor > flags.distributor_ingester.len() {
            tracing::warn!(
                replication_factor = flags.distributor_replication_factor,
                ingesters = flags.distributor_ingester.len(),
                "fewer ingesters than the replication factor: every series goes to every ingester"
            );
        }
        let d = strata_ingest::distributor::Distributor::new(
            &strata_ingest::distributor::DistributorOptions {
                ingesters: flags.distributor_ingester.clone(),
                replication_factor: flags.distributor_replication_factor,
                timeout: Duration::from_millis(timeout as u64),
                gaps_file: Some(flags.tsdb_path.join("distributor-gaps.json")),
            },
        )?;
        tracing::info!(ingesters = ?flags.distributor_ingester, replication_factor = d.ring().replication_factor(),
            quorum = d.ring().quorum(), "front door: remote writes go to the ingesters");
        Ok(Ingesters {
            distributor: Some(Arc::new(d)),
            remote_read,
        })
    }
}
