//! Command-line flags, named as Prometheus names them.

use std::path::PathBuf;

use clap::Parser;

/// Strata: a Prometheus-compatible monitoring and analytics engine.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
pub(crate) struct Flags {
    /// Prometheus configuration file. Without it, an embedded default scrapes Strata itself.
    #[arg(long = "config.file")]
    pub(crate) config_file: Option<PathBuf>,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub(crate) tsdb_path: PathBuf,
    /// How long to retain samples in storage (e.g. 15d, 12h; 0 keeps them forever unless a
    /// size limit is set).
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    pub(crate) retention_time: String,
    /// Object storage for blocks, in Thanos's format (`type: S3` or `FILESYSTEM`): the node
    /// uploads its blocks and reads its history back from the bucket; the local data
    /// directory keeps the recent blocks (bounded by the retention flags).
    #[arg(long = "objstore.config-file")]
    pub(crate) objstore_config_file: Option<PathBuf>,
    /// Makes this node a front door and querier of an ingest tier: an ingester's base URL
    /// (`http://host:port` of a `strata` node), repeated per ingester. Remote writes are
    /// forwarded to each series' `--distributor.replication-factor` ingesters by a hash
    /// ring and acknowledged once a majority has them in its WAL; queries read the
    /// ingesters (remote read) beside local data.
    #[arg(long = "distributor.ingester")]
    pub(crate) distributor_ingester: Vec<String>,
    /// Ingesters each series is written to (with `--distributor.ingester`).
    #[arg(long = "distributor.replication-factor", default_value_t = 3)]
    pub(crate) distributor_replication_factor: usize,
    /// Bound of one forward or read to an ingester (with `--distributor.ingester`).
    #[arg(long = "distributor.remote-timeout", default_value = "30s")]
    pub(crate) distributor_remote_timeout: String,
    /// Runs this node's worker of distributed queries (Arrow Flight over gRPC, on a port
    /// of its own, `host:port`): a querier with `--distributed.worker` sends it the reads
    /// and partial aggregations of its PromQL queries, run over this node's storage. Give
    /// it an address only the cluster reaches.
    #[arg(long = "distributed.listen-address")]
    pub(crate) distributed_listen_address: Option<String>,
    /// With `--distributor.ingester`: the worker (`http://host:port` of its
    /// `--distributed.listen-address`) of each ingester, repeated in the same order.
    /// PromQL queries then run on the ingesters, each series read once, from the ingester
    /// the front door wrote it to first; the querier merges. When a worker cannot answer,
    /// the query is answered by remote reads of the ingesters.
    #[arg(long = "distributed.worker")]
    pub(crate) distributed_worker: Vec<String>,
    /// A label that tells HA replicas apart (repeatable; Thanos's flag): series differing
    /// only in these labels are merged at query time — one replica's samples, its gaps
    /// filled from the others — and returned without them.
    #[arg(long = "query.replica-label")]
    pub(crate) query_replica_label: Vec<String>,
    /// Bound of the cache of pages read from object storage.
    #[arg(long = "objstore.cache-size", default_value = "256MB")]
    pub(crate) objstore_cache_size: String,
    /// Read every block of the bucket, not only this node's own: a store / querier over
    /// the history of all nodes (their series carry their external labels; merge HA
    /// replicas with --query.replica-label).
    #[arg(long = "objstore.read-all-blocks")]
    pub(crate) objstore_read_all_blocks: bool,
    /// How often the node lists the bucket for its blocks.
    #[arg(long = "objstore.sync-interval", default_value = "1m")]
    pub(crate) objstore_sync_interval: String,
    /// Maximum number of bytes blocks and WAL may use (e.g. 512MB, 10GB). Oldest blocks go first.
    #[arg(long = "storage.tsdb.retention.size")]
    pub(crate) retention_size: Option<String>,
    /// Samples stamped more than this ahead of the wall clock are refused as out of
    /// bounds (scrape, remote write, push, rules); 0 accepts any future time.
    #[arg(
        long = "storage.tsdb.too-far-in-future.time-window",
        default_value = "10m"
    )]
    pub(crate) too_far_in_future: String,
    /// Maximum number of remote-write requests decoded and appended at once; more wait
    /// (up to 10s, then 503 so the sender retries).
    #[arg(long = "web.remote-write.max-concurrency", default_value_t = 4)]
    pub(crate) remote_write_max_concurrency: usize,
    /// Maximum overall number of samples to return via the remote read interface, in a
    /// single query (0 means no limit).
    #[arg(
        long = "storage.remote.read-sample-limit",
        default_value_t = 50_000_000
    )]
    pub(crate) remote_read_sample_limit: usize,
    /// Maximum number of concurrent remote read calls (0 means no limit).
    #[arg(long = "storage.remote.read-concurrent-limit", default_value_t = 10)]
    pub(crate) remote_read_concurrent_limit: usize,
    /// Maximum number of bytes of a frame's message in a streamed (STREAMED_XOR_CHUNKS)
    /// remote read response; a frame holds at least one sample. Note that client might
    /// have limit on frame size as well. 1MB as recommended by protobuf by default.
    #[arg(
        long = "storage.remote.read-max-bytes-in-frame",
        default_value_t = strata_remote::read::DEFAULT_MAX_BYTES_IN_FRAME
    )]
    pub(crate) remote_read_max_bytes_in_frame: usize,
    /// Address to listen on for UI, API and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub(crate) listen_address: String,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub(crate) lookback_delta: String,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub(crate) query_timeout: String,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub(crate) query_max_samples: u64,
    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub(crate) query_max_concurrency: usize,
    /// Testing: cut every PromQL selection into this many label-range partitions (0: by
    /// work and cores), so conformance scripts exercise partitioned plans.
    #[arg(long = "query.debug-selection-parts", default_value_t = 0, hide = true)]
    pub(crate) query_debug_selection_parts: usize,
    /// Memory all running queries may reserve together (PromQL relations, SQL sorts, hash
    /// tables and results), e.g. 1GB, 512MB; 0 for no limit. A query that would need more
    /// fails with a 422 instead of growing the process.
    #[arg(long = "query.max-memory", default_value = "1GB")]
    pub(crate) query_max_memory: String,
    /// Memory one query may reserve (e.g. 256MB); default half of --query.max-memory, so
    /// that one query cannot take the memory every other query needs.
    #[arg(long = "query.max-memory-per-query", default_value = "0")]
    pub(crate) query_max_memory_per_query: String,
    /// Largest SQL result /api/v1/sql returns, in bytes of Arrow buffers (e.g. 64MB; 0 for
    /// no cap). A larger result stops the query with a 422.
    #[arg(long = "query.sql-max-result-bytes", default_value = "64MB")]
    pub(crate) query_sql_max_result_bytes: String,
    /// Comma-separated Prometheus feature names to enable. `type-and-unit-labels` adds
    /// `__type__` and `__unit__` labels from the scraped metadata; `otlp-deltatocumulative`
    /// has the OTLP receiver accumulate delta sums and histograms into cumulative ones
    /// (else it refuses them); the PromQL features Prometheus keeps behind flags are always
    /// on here; others are refused.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub(crate) enable_feature: Vec<String>,
    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    pub(crate) enable_admin_api: bool,
    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub(crate) enable_lifecycle: bool,
    /// Path to a web configuration file (exporter-toolkit format) enabling TLS, basic
    /// authentication and security headers.
    #[arg(long = "web.config.file")]
    pub(crate) web_config_file: Option<PathBuf>,
    /// Regex for CORS origin. It is fully anchored.
    #[arg(long = "web.cors.origin", default_value = ".*")]
    pub(crate) cors_origin: String,
    /// Maximum number of simultaneous connections per listener; more wait in the listen
    /// backlog. Prometheus defaults to 512; 4096 lets a thousand idle clients coexist with
    /// health checks, scrapes and queries.
    #[arg(long = "web.max-connections", default_value_t = strata_api::serve::DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: usize,
    /// Maximum time to read a request's header; it also bounds how long an idle keep-alive
    /// connection stays open. 0 disables it.
    #[arg(long = "web.read-header-timeout", default_value = "30s")]
    pub(crate) read_header_timeout: String,
    /// Accept OTLP metrics on /api/v1/otlp/v1/metrics.
    #[arg(long = "web.enable-otlp-receiver")]
    pub(crate) enable_otlp_receiver: bool,
    /// Accepted for compatibility: the remote-write receiver is always on.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub(crate) enable_remote_write_receiver: bool,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    pub(crate) log_level: String,
    /// The URL under which Strata is reachable from outside (alert generator URLs and
    /// links). Default: http://<hostname>:<port>.
    #[arg(long = "web.external-url")]
    pub(crate) external_url: Option<String>,
    /// Max time to tolerate a Strata outage for restoring "for" state of alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub(crate) for_outage_tolerance: String,
    /// Minimum duration between alert and restored "for" state. Only alerts with a
    /// configured "for" greater than the grace period are restored.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub(crate) for_grace_period: String,
    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub(crate) resend_delay: String,
    /// The capacity of the queue for pending Alertmanager notifications.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10_000
    )]
    pub(crate) notification_queue_capacity: usize,
    /// Alertmanager configuration file of the built-in notifier (routes, receivers,
    /// inhibition). Without it the notifier is off and alerts go only to the
    /// `alerting.alertmanagers` of the configuration file.
    #[arg(long = "alertmanager.config.file")]
    pub(crate) alertmanager_config_file: Option<PathBuf>,
    /// Listen address (HOST:PORT, UDP) of the notifier's cluster gossip: silences and the
    /// notification log shared with the `--cluster.peer`s, each notification sent once by
    /// the cluster. Empty (the default; Alertmanager's is 0.0.0.0:9094) disables
    /// clustering.
    #[arg(long = "cluster.listen-address", default_value = "")]
    pub(crate) cluster_listen_address: String,
    /// Address (HOST:PORT) peers reach this node's gossip on. Default: the listen address,
    /// or when that is unspecified (0.0.0.0) the local address towards the first peer.
    #[arg(long = "cluster.advertise-address")]
    pub(crate) cluster_advertise_address: Option<String>,
    /// Initial peers (HOST:PORT of their --cluster.listen-address; may be repeated).
    #[arg(long = "cluster.peer")]
    pub(crate) cluster_peer: Vec<String>,
    /// Time to wait between peers to send notifications (a node at position n in the
    /// member list waits n times this).
    #[arg(long = "cluster.peer-timeout", default_value = "15s")]
    pub(crate) cluster_peer_timeout: String,
    /// Interval between sending gossip messages.
    #[arg(long = "cluster.gossip-interval", default_value = "200ms")]
    pub(crate) cluster_gossip_interval: String,
    /// Interval between merges of every member's whole state (the changes are merged as
    /// they arrive).
    #[arg(long = "cluster.pushpull-interval", default_value = "1m")]
    pub(crate) cluster_pushpull_interval: String,
    /// Maximum time to wait for cluster connections to settle before evaluating
    /// notifications.
    #[arg(long = "cluster.settle-timeout", default_value = "1m")]
    pub(crate) cluster_settle_timeout: String,
    /// File holding the cluster's shared key (at least 16 bytes; a Strata extension):
    /// gossiped silences, notification log entries, acknowledgements and members are
    /// authenticated with HMAC-SHA256 under it, and nodes without it are ignored.
    #[arg(long = "cluster.key-file")]
    pub(crate) cluster_key_file: Option<PathBuf>,
    /// Also serve the push gateway as a drop-in Pushgateway on this address (HOST:PORT):
    /// its whole API, with `/metrics` exposing the pushed groups.
    #[arg(long = "pushgateway.listen-address")]
    pub(crate) pushgateway_listen_address: Option<String>,
    /// File the pushed groups are kept in (default: pushgateway.json in the data directory).
    #[arg(long = "pushgateway.persistence.file")]
    pub(crate) pushgateway_persistence_file: Option<PathBuf>,
    /// The minimum interval at which the persistence file is rewritten after a change (as
    /// the Pushgateway's `--persistence.interval`); also written at graceful shutdown, so a
    /// crash loses at most one interval of pushes.
    #[arg(long = "pushgateway.persistence.interval", default_value = "5m")]
    pub(crate) pushgateway_persistence_interval: String,
    /// Delete push groups not pushed to for this long (e.g. 24h; 0 keeps them forever, as
    /// the Pushgateway does).
    #[arg(long = "pushgateway.group-ttl", default_value = "0s")]
    pub(crate) pushgateway_group_ttl: String,
    /// Offline tools: `check config`, `check rules`, `test rules`.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// Offline tools, as `promtool`'s.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check the resources for validity.
    #[command(subcommand)]
    Check(Check),
    /// Unit testing.
    #[command(subcommand)]
    Test(Test),
    /// SQL against a data directory, read-only (works beside a running server). Without a
    /// query: an interactive prompt.
    Sql {
        /// The SQL statement.
        query: Option<String>,
        /// The data directory.
        #[arg(long = "storage.tsdb.path", default_value = "data/")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: crate::sql_cli::SqlFormat,
    },
    /// Compact the bucket (`--objstore.config-file`): merge blocks, apply retention,
    /// delete replaced blocks. One compactor at a time: a lease in the bucket decides, and
    /// a compactor that finds it held exits with status 3.
    Compact(crate::compact_cmd::CompactArgs),
}

/// `strata check ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Check {
    /// Check if the config files are valid (and the rule files they list).
    Config {
        /// The configuration files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check if the rule files are valid.
    Rules {
        /// The rule files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Make lint warnings (duplicate rules) fatal.
        #[arg(long = "lint-fatal")]
        lint_fatal: bool,
    },
    /// Check if Alertmanager configuration files are valid (as `amtool check-config`).
    AlertmanagerConfig {
        /// The Alertmanager configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `strata test ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Test {
    /// Unit tests for rules (`promtool test rules` files).
    Rules {
        /// The unit test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

impl Flags {
    /// Retention time in ms; `None` for "0" (no time limit).
    pub(crate) fn retention_time_ms(&self) -> Result<Option<i64>, String> {
        let d = strata_config::Duration::parse(&self.retention_time)
            .map_err(|e| format!("--storage.tsdb.retention.time={}: {e}", self.retention_time))?;
        Ok(match d.as_millis() {
            0 => None,
            ms => Some(ms as i64),
        })
    }

    /// Retention size in bytes.
    pub(crate) fn retention_size_bytes(&self) -> Result<Option<u64>, String> {
        self.retention_size
            .as_deref()
            .map(|s| {
                strata_config::ByteSize::parse(s)
                    .map(|b| b.0)
                    .map_err(|e| format!("--storage.tsdb.retention.size={s}: {e}"))
            })
            .transpose()
    }

    /// Every flag with its value, as `/api/v1/status/flags` shows them.
    pub(crate) fn as_map(&self) -> std::collections::BTreeMap<String, String> {
        let opt = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        [
            ("config.file", opt(&self.config_file)),
            ("storage.tsdb.path", self.tsdb_path.display().to_string()),
            ("storage.tsdb.retention.time", self.retention_time.clone()),
            (
                "storage.tsdb.retention.size",
                self.retention_size.clone().unwrap_or_else(|| "0B".into()),
            ),
            ("web.listen-address", self.listen_address.clone()),
            ("query.lookback-delta", self.lookback_delta.clone()),
            ("query.timeout", self.query_timeout.clone()),
            ("query.max-samples", self.query_max_samples.to_string()),
            (
                "storage.remote.read-sample-limit",
                self.remote_read_sample_limit.to_string(),
            ),
            (
                "storage.remote.read-concurrent-limit",
                self.remote_read_concurrent_limit.to_string(),
            ),
            (
                "storage.remote.read-max-bytes-in-frame",
                self.remote_read_max_bytes_in_frame.to_string(),
            ),
            (
                "query.max-concurrency",
                self.query_max_concurrency.to_string(),
            ),
            ("query.max-memory", self.query_max_memory.clone()),
            ("query.replica-label", self.query_replica_label.join(",")),
            ("distributor.ingester", self.distributor_ingester.join(",")),
            (
                "distributed.listen-address",
                self.distributed_listen_address.clone().unwrap_or_default(),
            ),
            ("distributed.worker", self.distributed_worker.join(",")),
            (
                "distributor.replication-factor",
                self.distributor_replication_factor.to_string(),
            ),
            (
                "distributor.remote-timeout",
                self.distributor_remote_timeout.clone(),
            ),
            ("objstore.config-file", opt(&self.objstore_config_file)),
            ("objstore.cache-size", self.objstore_cache_size.clone()),
            (
                "objstore.sync-interval",
                self.objstore_sync_interval.clone(),
            ),
            (
                "objstore.read-all-blocks",
                self.objstore_read_all_blocks.to_string(),
            ),
            (
                "query.max-memory-per-query",
                self.query_max_memory_per_query.clone(),
            ),
            (
                "query.sql-max-result-bytes",
                self.query_sql_max_result_bytes.clone(),
            ),
            ("enable-feature", self.enable_feature.join(",")),
            ("web.enable-admin-api", self.enable_admin_api.to_string()),
            ("web.enable-lifecycle", self.enable_lifecycle.to_string()),
            ("web.enable-remote-write-receiver", "true".to_string()),
            (
                "web.enable-otlp-receiver",
                self.enable_otlp_receiver.to_string(),
            ),
            ("web.cors.origin", self.cors_origin.clone()),
            ("web.max-connections", self.max_connections.to_string()),
            ("web.read-header-timeout", self.read_header_timeout.clone()),
            ("web.config.file", opt(&self.web_config_file)),
            ("log.level", self.log_level.clone()),
            (
                "web.external-url",
                self.external_url.clone().unwrap_or_default(),
            ),
            (
                "rules.alert.for-outage-tolerance",
                self.for_outage_tolerance.clone(),
            ),
            (
                "rules.alert.for-grace-period",
                self.for_grace_period.clone(),
            ),
            ("rules.alert.resend-delay", self.resend_delay.clone()),
            (
                "pushgateway.listen-address",
                self.pushgateway_listen_address.clone().unwrap_or_default(),
            ),
            (
                "pushgateway.persistence.file",
                opt(&self.pushgateway_persistence_file),
            ),
            (
                "pushgateway.persistence.interval",
                self.pushgateway_persistence_interval.clone(),
            ),
            ("pushgateway.group-ttl", self.pushgateway_group_ttl.clone()),
            (
                "alertmanager.config.file",
                opt(&self.alertmanager_config_file),
            ),
            (
                "alertmanager.notification-queue-capacity",
                self.notification_queue_capacity.to_string(),
            ),
            (
                "cluster.listen-address",
                self.cluster_listen_address.clone(),
            ),
            (
                "cluster.advertise-address",
                self.cluster_advertise_address.clone().unwrap_or_default(),
            ),
            ("cluster.peer", self.cluster_peer.join(",")),
            ("cluster.peer-timeout", self.cluster_peer_timeout.clone()),
            (
                "cluster.gossip-interval",
                self.cluster_gossip_interval.clone(),
            ),
            (
                "cluster.pushpull-interval",
                self.cluster_pushpull_interval.clone(),
            ),
            (
                "cluster.settle-timeout",
                self.cluster_settle_timeout.clone(),
            ),
            ("cluster.key-file", opt(&self.cluster_key_file)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Whether `--enable-feature` names `feature` (one Strata has: see
    /// [`type_and_unit_labels`](Self::type_and_unit_labels), which checks every name).
    fn feature(&self, feature: &str) -> bool {
        self.enable_feature.iter().any(|f| f.trim() == feature)
    }

    /// Whether `--enable-feature=otlp-deltatocumulative` is given.
    pub(crate) fn otlp_delta_to_cumulative(&self) -> bool {
        self.feature(OTLP_DELTA_TO_CUMULATIVE)
    }

    /// Whether `--enable-feature` turns on the type-and-unit labels, checking every name:
    /// Prometheus's PromQL features and exemplar storage are always on in Strata (accepted;
    /// `storage.exemplars.max_exemplars: 0` turns exemplars off), a feature Strata
    /// does not have is an error naming it.
    pub(crate) fn type_and_unit_labels(&self) -> Result<bool, String> {
        const ALWAYS_ON: [&str; 7] = [
            "exemplar-storage",
            "promql-experimental-functions",
            "promql-delayed-name-removal",
            "promql-extended-range-selectors",
            "promql-binop-fill-modifiers",
            "promql-duration-expr",
            "promql-at-modifier",
        ];
        let mut on = false;
        for f in self
            .enable_feature
            .iter()
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
        {
            match f {
                "type-and-unit-labels" => on = true,
                OTLP_DELTA_TO_CUMULATIVE => {}
                f if ALWAYS_ON.contains(&f) => {
                    tracing::info!(feature = f, "always enabled in Strata");
                }
                other => {
                    return Err(format!(
                        "--enable-feature: unknown or unsupported feature {other:?} (supported: type-and-unit-labels, {OTLP_DELTA_TO_CUMULATIVE}, {})",
                        ALWAYS_ON.join(", ")
                    ));
                }
            }
        }
        Ok(on)
    }

    /// A byte-size flag (`1GB`, `512MiB`, or plain bytes); 0 means no limit (`usize::MAX`).
    pub(crate) fn byte_size(name: &str, value: &str) -> Result<usize, String> {
        let bytes = match value.parse::<u64>() {
            Ok(n) => n,
            Err(_) => strata_config::ByteSize::parse(value)
                .map(|b| b.0)
                .map_err(|e| format!("--{name}={value}: {e}"))?,
        };
        Ok(match bytes {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        })
    }

    /// Query timeout in ms.
    pub(crate) fn query_timeout_ms(&self) -> Result<i64, String> {
        strata_config::Duration::parse(&self.query_timeout)
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("--query.timeout={}: {e}", self.query_timeout))
    }

    /// A duration flag in ms.
    pub(crate) fn duration_ms(name: &str, value: &str) -> Result<i64, String> {
        strata_config::Duration::parse(value)
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("--{name}={value}: {e}"))
    }

    /// `--web.external-url`, or `http://<hostname>:<port>`, without a trailing slash.
    pub(crate) fn external_url(&self, port: u16) -> String {
        let url = match &self.external_url {
            Some(u) => u.clone(),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_else(|| "localhost".into());
                format!("http://{host}:{port}")
            }
        };
        url.trim_end_matches('/').to_owned()
    }

    /// The notifier's cluster settings (`None`: `--cluster.listen-address` is empty),
    /// checked: durations parsed, addresses resolved.
    pub(crate) fn cluster_options(
        &self,
    ) -> Result<Option<strata_alerting::notifier::cluster::ClusterOptions>, String> {
        if self.cluster_listen_address.trim().is_empty() {
            return Ok(None);
        }
        let dur = |name: &str, v: &str| {
            Self::duration_ms(name, v).map(|ms| std::time::Duration::from_millis(ms as u64))
        };
        let opts = strata_alerting::notifier::cluster::ClusterOptions {
            listen_address: self.cluster_listen_address.trim().to_owned(),
            advertise_address: self.cluster_advertise_address.clone(),
            peers: self.cluster_peer.clone(),
            peer_timeout: dur("cluster.peer-timeout", &self.cluster_peer_timeout)?,
            gossip_interval: dur("cluster.gossip-interval", &self.cluster_gossip_interval)?,
            pushpull_interval: dur("cluster.pushpull-interval", &self.cluster_pushpull_interval)?,
            settle_timeout: dur("cluster.settle-timeout", &self.cluster_settle_timeout)?,
            key_file: self.cluster_key_file.clone(),
        };
        opts.resolve().map_err(|e| e.to_string())?;
        opts.seal().map_err(|e| e.to_string())?;
        Ok(Some(opts))
    }

    /// The `--cluster.*` flags given a value other than their default while they cannot
    /// act: clustering is off (no `--cluster.listen-address`), or there is no notifier to
    /// cluster (no `--alertmanager.config.file`).
    pub(crate) fn unacted_cluster_flags(&self) -> Vec<String> {
        let enabled = !self.cluster_listen_address.trim().is_empty();
        if enabled {
            return if self.alertmanager_config_file.is_none() {
                vec![
                    "--cluster.listen-address has no effect without --alertmanager.config.file"
                        .into(),
                ]
            } else {
                Vec::new()
            };
        }
        let set = [
            (
                "cluster.advertise-address",
                self.cluster_advertise_address.is_some(),
            ),
            ("cluster.peer", !self.cluster_peer.is_empty()),
            ("cluster.peer-timeout", self.cluster_peer_timeout != "15s"),
            (
                "cluster.gossip-interval",
                self.cluster_gossip_interval != "200ms",
            ),
            (
                "cluster.pushpull-interval",
                self.cluster_pushpull_interval != "1m",
            ),
            (
                "cluster.settle-timeout",
                self.cluster_settle_timeout != "1m",
            ),
            ("cluster.key-file", self.cluster_key_file.is_some()),
        ];
        set.into_iter()
            .filter(|(_, given)| *given)
            .map(|(f, _)| format!("--{f} has no effect without --cluster.listen-address"))
            .collect()
    }

    /// Lookback delta in ms (used by the query engine).
    pub(crate) fn lookback_delta_ms(&self) -> Result<i64, String> {
        strata_config::Duration::parse(&self.lookback_delta)
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("--query.lookback-delta={}: {e}", self.lookback_delta))
    }
}

/// The feature accumulating delta OTLP sums and histograms into cumulative ones.
const OTLP_DELTA_TO_CUMULATIVE: &str = "otlp-deltatocumulative";

/// The current time as RFC 3339 (UTC, second precision).
pub(crate) fn rfc3339_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    strata_api::rfc3339(ms, false)
}
