//! One target's scrape loop: a jittered schedule aligned to the interval, the HTTP fetch
//! (content negotiation, gzip, timeout, body size limit), parsing, the scrape cache,
//! `honor_labels`/`honor_timestamps`, `metric_relabel_configs`, sample and label limits,
//! staleness markers, and the synthetic `up` and `scrape_*` series.
//!
//! Native histograms come from protobuf bodies when `scrape_native_histograms` is on: the
//! body is split ([`crate::pushgateway::render::transcode_proto`]) into text for the float
//! series and native histogram samples, which go through the same cache, label resolution,
//! relabeling and limits, plus the bucket limit and minimum bucket factor. A vanished
//! native histogram series gets a float staleness marker (Prometheus writes a stale
//! histogram; both end the series for queries).
//!
//! A failed scrape (HTTP error, timeout, malformed body, limit exceeded) appends none of its
//! samples: `up` is 0, the series of the previous scrape get staleness markers, and the error
//! is shown on the targets API. It never affects other targets or the process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use strata_config::ScrapeConfig;
use strata_storage::{Appender as _, Db, Labels, SeriesSamples};
use tokio::sync::watch;

use super::buffers;
use super::cache::{DROPPED, ScrapeCache};
use super::native;
use super::target::Target;
use crate::exposition::{self, Entry, Format, MetricType, Parser};
use crate::http_client::HttpClient;
use crate::pushgateway::render::NativeSample;
use crate::relabel::{self, LabelSet};

/// The value of a staleness marker (Prometheus's `StaleNaN`).
pub use strata_storage::STALE_NAN;

/// Settings shared by every loop of a job.
pub struct JobSettings {
    pub cfg: Arc<ScrapeConfig>,
    pub client: HttpClient,
    /// The `Accept` header built from `scrape_protocols`.
    pub accept: String,
    /// `--enable-feature=type-and-unit-labels`.
    pub type_and_unit_labels: bool,
}

/// Health of a target, as the targets API shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HealthState {
    #[default]
    Unknown,
    Up,
    Down,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

/// The outcome of the last scrape.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub state: HealthState,
    /// Wall-clock start of the last scrape, ms since the epoch.
    pub last_scrape_ms: Option<i64>,
    pub last_duration: f64,
    pub last_error: String,
    pub last_samples: u64,
}

/// TYPE/HELP/UNIT of one metric family as exposed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricMeta {
    pub kind: Option<MetricType>,
    pub help: String,
    pub unit: String,
}

/// The metadata of the family a sample named `name` belongs to: its own name, or the name
/// without a suffix the family's type gives its samples (`_bucket`, `_total`, …).
fn family_of<'a, S: std::hash::BuildHasher>(
    md: &'a std::collections::HashMap<String, MetricMeta, S>,
    name: &str,
) -> Option<&'a MetricMeta> {
    if let Some(m) = md.get(name) {
        return Some(m);
    }
    const SUFFIXES: [&str; 8] = [
        "_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum", "_info",
    ];
    SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find_map(|base| md.get(base))
}

/// A target and what its loop reports (read by the targets and metadata APIs).
pub struct TargetState {
    pub job: String,
    pub target: Target,
    pub health: Mutex<Health>,
    pub metadata: Mutex<HashMap<String, MetricMeta>>,
}

/// How a loop ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    Running,
    /// The target is gone: its series get staleness markers.
    Vanished,
    /// The server shuts down: nothing is written.
    Shutdown,
}

/// Wall-clock time (ms).
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Names of the synthetic series, in report order.
const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

struct Loop {
    target: Arc<TargetState>,
    db: Arc<Db>,
    cache: ScrapeCache,
    /// Head ids of the report series (resolved on first use).
    report_ids: [Option<u32>; 5],
    iter: u32,
    /// The iteration whose series are the "previous scrape" for staleness.
    prev_iter: u32,
    /// The format of the body in `body`.
    format: Format,
    body: Vec<u8>,
    /// Capacity to reserve for the next body (the last one's size and a little).
    body_hint: usize,
    pending: Vec<(u32, i64, f64)>,
    /// Native histograms of the body in `body` (protobuf scrapes only).
    natives: Vec<NativeSample>,
    /// The job's (or target's) `convert_classic_histograms_to_nhcb` and
    /// `always_scrape_classic_histograms`, for the body in `body`.
    nhcb: Option<bool>,
    /// Native histogram samples staged for appending.
    pending_hist: Vec<SeriesSamples>,
    /// Exemplars of this scrape's samples (OpenMetrics), by head id, staged for appending.
    pending_ex: Vec<(u32, strata_storage::Exemplar)>,
    /// Exemplars of a protobuf body, and those staged (by series labels) for appending.
    proto_ex: Vec<super::proto_exemplars::ScrapedExemplar>,
    pending_ex_labeled: Vec<(Labels, strata_storage::Exemplar)>,
    /// The labels of the native histogram series in the cache, by head id (histograms are
    /// appended by labels).
    hist_labels: HashMap<u32, Labels>,
    last_t: i64,
    /// `--enable-feature=type-and-unit-labels` (from the job's settings).
    type_and_unit_labels: bool,
}

/// Exemplars taken from one protobuf body at most (the body is bounded by
/// `body_size_limit`; this bounds what its exemplars hold).
const MAX_PROTO_EXEMPLARS: usize = 100_000;
/// What one scrape produced.
#[derive(Default)]
struct Outcome {
    scraped: u64,
    post_relabel: u64,
    added: u64,
}

/// Runs the loop until `stop` leaves [`StopMode::Running`].
pub async fn run(
    target: Arc<TargetState>,
    mut settings: watch::Receiver<Arc<JobSettings>>,
    db: Arc<Db>,
    mut stop: watch::Receiver<StopMode>,
) {
    let mut lp = Loop {
        target,
        db,
        cache: ScrapeCache::default(),
        report_ids: [None; 5],
        iter: 0,
        prev_iter: 0,
        format: Format::PromText,
        body: Vec::new(),
        body_hint: 0,
        pending: Vec::new(),
        natives: Vec::new(),
        nhcb: None,
        pending_hist: Vec::new(),
        pending_ex: Vec::new(),
        proto_ex: Vec::new(),
        pending_ex_labeled: Vec::new(),
        hist_labels: HashMap::new(),
        last_t: i64::MIN,
        type_and_unit_labels: false,
    };
    let interval = lp.target.target.interval;
    let interval_ms = interval.as_millis().max(1) as i64;
    // Jitter: a stable per-target offset within the interval, so targets spread out.
    let offset = (lp.target.target.hash() % interval_ms as u64) as i64;
    let now = wall_ms();
    let mut next_wall = now - now.rem_euclid(interval_ms) + offset;
    if next_wall < now {
        next_wall += interval_ms;
    }
    loop {
        let wait = Duration::from_millis((next_wall - wall_ms()).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|m| *m != StopMode::Running) => break,
        }
        let actual = wall_ms();
        // Timestamps on the ideal grid give perfectly regular series (better compression);
        // a late tick (overload) uses the real time and re-bases the grid.
        let t = if (actual - next_wall).abs() <= 25 {
            next_wall
        } else {
            actual
        };
        let s = settings.borrow_and_update().clone();
        lp.scrape(&s, t).await;
        next_wall += interval_ms;
        let now = wall_ms();
        if next_wall <= now {
            next_wall = now - (now - offset).rem_euclid(interval_ms) + interval_ms;
        }
    }
    if *stop.borrow() == StopMode::Vanished {
        lp.end_of_run();
    }
}

impl Loop {
    async fn scrape(&mut self, s: &JobSettings, t: i64) {
        let started = Instant::now();
        self.type_and_unit_labels = s.type_and_unit_labels;
        self.iter = self.iter.wrapping_add(1).max(1);
        let res = match self.fetch(s).await {
            Ok(format) => self.ingest(s, format, t),
            Err(e) => Err(e),
        };
        let duration = started.elapsed().as_secs_f64();
        let (up, outcome, err) = match res {
            Ok(o) => (1.0, o, String::new()),
            Err(e) => {
                self.pending.clear();
                self.pending_hist.clear();
                self.pending_ex.clear();
                self.pending_ex_labeled.clear();
                (0.0, Outcome::default(), e)
            }
        };
        // Staleness: whatever the previous scrape had and this one lacks (a failed scrape
        // counts as empty).
        let mut gone = Vec::new();
        self.cache.vanished(self.prev_iter, self.iter, &mut gone);
        for id in gone {
            self.pending.push((id, t, STALE_NAN));
        }
        self.prev_iter = self.iter;
        let report = [
            up,
            duration,
            outcome.scraped as f64,
            outcome.post_relabel as f64,
            outcome.added as f64,
        ];
        for (i, v) in report.into_iter().enumerate() {
            if let Some(id) = self.report_id(i) {
                self.pending.push((id, t, v));
            }
        }
        self.flush(Some(&s.cfg));
        self.flush_histograms();
        self.flush_exemplars();
        self.natives.clear();
        buffers::STAGED.put(std::mem::take(&mut self.pending));
        // The body is not kept between scrapes (a quarter MB per target would be resident
        // for nothing): it goes back to the pool the few scrapes running at once share,
        // and the next one is reserved at about this one's size.
        self.body_hint = self.body.len() + self.body.len() / 8;
        buffers::BODIES.put(std::mem::take(&mut self.body));
        self.last_t = t;
        if self.iter.is_multiple_of(8) {
            self.cache.sweep(self.iter);
            if !self.hist_labels.is_empty() {
                let live: std::collections::HashSet<u32> = self.cache.ids().collect();
                self.hist_labels.retain(|id, _| live.contains(id));
            }
        }
        let mut h = self.target.health.lock();
        h.state = if up == 1.0 {
            HealthState::Up
        } else {
            HealthState::Down
        };
        h.last_scrape_ms = Some(t);
        h.last_duration = duration;
        h.last_samples = outcome.scraped;
        if !err.is_empty() {
            tracing::debug!(job = %self.target.job, url = %self.target.target.url, error = %err, "scrape failed");
        }
        h.last_error = err;
    }

    /// Fetches the body into `self.body`; returns its format.
    async fn fetch(&mut self, s: &JobSettings) -> Result<Format, String> {
        let tgt = &self.target.target;
        let headers = s.client.request_headers().map_err(|e| e.to_string())?;
        let mut req = s
            .client
            .client
            .get(&tgt.url)
            .headers(headers)
            .header(reqwest::header::ACCEPT, &s.accept)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", tgt.timeout.as_secs_f64()),
            )
            .timeout(tgt.timeout);
        if !s.cfg.enable_compression {
            req = req.header(reqwest::header::ACCEPT_ENCODING, "identity");
        }
        let mut resp = req.send().await.map_err(describe_reqwest)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {}", resp.status()));
        }
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let is_proto = |ct: &str| ct.starts_with("application/vnd.google.protobuf");
        let mut proto = is_proto(&ct);
        let format = match Format::from_content_type(&ct) {
            Some(f) => f,
            None if proto => Format::PromText,
            None => match s.cfg.fallback_scrape_protocol {
                Some(p) if format!("{p:?}").starts_with("OpenMetrics") => Format::OpenMetrics,
                Some(strata_config::ScrapeProtocol::PrometheusProto) => {
                    proto = true;
                    Format::PromText
                }
                Some(_) => Format::PromText,
                None if ct.is_empty() => Format::PromText,
                None => {
                    return Err(format!(
                        "received unsupported Content-Type {ct:?} and no fallback_scrape_protocol specified for target"
                    ));
                }
            },
        };
        let limit = s.cfg.body_size_limit.0;
        if self.body.capacity() == 0 {
            self.body = buffers::BODIES.take();
        }
        self.body.clear();
        self.body.reserve(self.body_hint);
        while let Some(chunk) = resp.chunk().await.map_err(describe_reqwest)? {
            if limit > 0 && (self.body.len() + chunk.len()) as u64 > limit {
                return Err(format!(
                    "body size limit exceeded: the body is larger than {limit} bytes"
                ));
            }
            self.body.extend_from_slice(&chunk);
        }
        self.natives.clear();
        let labels = &self.target.target.labels;
        let keep_classic = native::bool_label(
            labels,
            native::ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS_LABEL,
            s.cfg.always_scrape_classic_histograms,
        );
        self.nhcb = native::bool_label(
            labels,
            native::CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB_LABEL,
            s.cfg.convert_classic_histograms_to_nhcb,
        )
        .then_some(keep_classic);
        if proto {
            // Protobuf (delimited MetricFamily) is transcoded to text, timestamps kept;
            // native histograms are set aside when they are scraped.
            let native_on = native::bool_label(
                labels,
                native::SCRAPE_NATIVE_HISTOGRAMS_LABEL,
                s.cfg.scrape_native_histograms,
            );
            let t =
                crate::pushgateway::render::transcode_proto(&self.body, native_on, keep_classic)
                    .map_err(|e| format!("invalid protobuf body: {e}"))?;
            self.proto_ex = super::proto_exemplars::extract(&self.body, MAX_PROTO_EXEMPLARS);
            self.body = t.text;
            self.natives = t.natives;
        }
        Ok(format)
    }

    /// Parses the body and stages its samples in `pending`.
    fn ingest(&mut self, s: &JobSettings, format: Format, t: i64) -> Result<Outcome, String> {
        let cfg = &s.cfg;
        if self.pending.capacity() == 0 {
            self.pending = buffers::STAGED.take();
        }
        let body = std::mem::take(&mut self.body);
        self.format = format;
        let res = self.ingest_body(cfg, &body, format, t);
        self.body = body;
        if res.is_err() {
            self.pending.clear();
            self.pending_hist.clear();
            self.pending_ex.clear();
            self.pending_ex_labeled.clear();
            self.cache.revert(self.iter);
        }
        res
    }

    fn ingest_body(
        &mut self,
        cfg: &ScrapeConfig,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<Outcome, String> {
        let mut p = Parser::new(body, format);
        let mut out = Outcome::default();
        let iter = self.iter;
        let prev_iter = self.prev_iter;
        let mut nhcb = self
            .nhcb
            .map(|keep_classic| native::NhcbConverter::new(keep_classic, &self.natives));
        while let Some(e) = p.next() {
            let e = e.map_err(|e| e.to_string())?;
            if let Some(c) = nhcb.as_mut() {
                match &e {
                    Entry::Sample {
                        series,
                        value,
                        timestamp,
                        ..
                    } => {
                        if c.on_sample(series, *value, *timestamp) {
                            continue;
                        }
                    }
                    Entry::Type { name, kind } => c.on_type(name, *kind == MetricType::Histogram),
                    _ => c.on_other(),
                }
            }
            match e {
                Entry::Sample {
                    series,
                    value,
                    timestamp,
                    exemplar,
                } => {
                    out.scraped += 1;
                    let ts = match timestamp {
                        Some(ts) if cfg.honor_timestamps => ts,
                        _ => t,
                    };
                    let key = super::cache::key(series);
                    // Explicit timestamps exempt a series from staleness (unless tracked).
                    let explicit = timestamp.is_some()
                        && cfg.honor_timestamps
                        && !cfg.track_timestamps_staleness;
                    if let Some(id) = self.cache.observe(key, iter, prev_iter, explicit) {
                        if id != DROPPED {
                            self.pending.push((id, ts, value));
                            self.stage_exemplar(id, exemplar, ts)?;
                        }
                        continue;
                    }
                    let id = match self.resolve(cfg, series)? {
                        None => DROPPED,
                        Some(labels) => {
                            out.added += 1;
                            self.db.series_ref(&labels).map_err(|e| e.to_string())?
                        }
                    };
                    self.cache.insert(key, id, iter, explicit);
                    if id != DROPPED {
                        self.pending.push((id, ts, value));
                        self.stage_exemplar(id, exemplar, ts)?;
                    }
                }
                Entry::Type { name, kind } => self.meta(name, |m| m.kind = Some(kind)),
                Entry::Help { name, text } => self.meta(name, |m| {
                    if m.help != text {
                        m.help = text.into_owned();
                    }
                }),
                Entry::Unit { name, unit } => self.meta(name, |m| {
                    if m.unit != unit {
                        m.unit = unit.to_owned();
                    }
                }),
            }
        }
        let natives = std::mem::take(&mut self.natives);
        let hist = self.ingest_natives(cfg, &natives, t, &mut out);
        self.natives = natives;
        self.stage_proto_exemplars(cfg, t)?;
        let mut bucket_limit = hist?;
        if let Some(mut c) = nhcb {
            c.finish();
            bucket_limit = self
                .ingest_natives(cfg, &c.out, t, &mut out)?
                .or(bucket_limit);
        }
        self.cache.end_scrape();
        out.post_relabel = (self.pending.len() + self.pending_hist.len()) as u64;
        if cfg.sample_limit > 0 && out.post_relabel > cfg.sample_limit {
            return Err(format!(
                "sample limit exceeded: {} samples, limit {}",
                out.post_relabel, cfg.sample_limit
            ));
        }
        // As in Prometheus, a sample limit hit takes precedence over a bucket limit hit.
        if let Some(e) = bucket_limit {
            return Err(e.to_string());
        }
        Ok(out)
    }

    /// Stages the native histograms of a protobuf scrape in `pending_hist`, as
    /// [`Loop::ingest_body`] stages float samples: cached by series, resolved and
    /// relabeled once, counted as scraped samples, limited in resolution and buckets.
    /// Returns the bucket-limit hit, if any (the scrape fails then, after counting).
    fn ingest_natives(
        &mut self,
        cfg: &ScrapeConfig,
        natives: &[NativeSample],
        t: i64,
        out: &mut Outcome,
    ) -> Result<Option<native::BucketLimitExceeded>, String> {
        let (iter, prev_iter) = (self.iter, self.prev_iter);
        let max_schema = native::pick_schema(cfg.native_histogram_min_bucket_factor);
        let mut bucket_limit = None;
        for n in natives {
            out.scraped += 1;
            let ts = match n.timestamp_ms {
                Some(ts) if cfg.honor_timestamps => ts,
                _ => t,
            };
            let key = super::cache::histogram_key(n.series.as_bytes());
            let explicit =
                n.timestamp_ms.is_some() && cfg.honor_timestamps && !cfg.track_timestamps_staleness;
            let id = match self.cache.observe(key, iter, prev_iter, explicit) {
                Some(id) => id,
                None => {
                    let id = match self.resolve(cfg, n.series.as_bytes())? {
                        None => DROPPED,
                        Some(labels) => {
                            out.added += 1;
                            let id = self.db.series_ref(&labels).map_err(|e| e.to_string())?;
                            self.hist_labels.insert(id, labels);
                            id
                        }
                    };
                    self.cache.insert(key, id, iter, explicit);
                    id
                }
            };
            if id == DROPPED {
                continue;
            }
            let labels = match self.hist_labels.get(&id) {
                Some(l) => l.clone(),
                None => match self.resolve(cfg, n.series.as_bytes())? {
                    Some(l) => {
                        self.hist_labels.insert(id, l.clone());
                        l
                    }
                    None => continue,
                },
            };
            let mut h = n.histogram.clone();
            if let Err(e) =
                native::apply_limits(&mut h, max_schema, cfg.native_histogram_bucket_limit)
            {
                bucket_limit = Some(e);
                continue;
            }
            self.pending_hist.push(SeriesSamples {
                labels,
                samples: Vec::new(),
                histograms: vec![(ts, Arc::new(h))],
            });
        }
        Ok(bucket_limit)
    }

    /// Stages a sample's exemplar: without a timestamp of its own it takes the sample's (and
    /// compares equal to itself at later scrapes). Its labels are not relabeled.
    fn stage_exemplar(
        &mut self,
        id: u32,
        exemplar: Option<exposition::RawExemplar<'_>>,
        ts: i64,
    ) -> Result<(), String> {
        let Some(e) = exemplar else {
            return Ok(());
        };
        let pairs = exposition::parse_label_set(e.labels).map_err(|m| format!("exemplar: {m}"))?;
        self.pending_ex.push((
            id,
            strata_storage::Exemplar {
                labels: Labels::from_pairs(pairs),
                value: e.value,
                ts: e.timestamp.unwrap_or(ts),
                has_ts: e.timestamp.is_some(),
            },
        ));
        Ok(())
    }

    /// Stages the exemplars of a protobuf body by their series' labels (relabeled as the
    /// samples are; those of dropped series go). As Prometheus: one without a timestamp
    /// takes its sample's, a native histogram's without one is dropped.
    fn stage_proto_exemplars(&mut self, cfg: &ScrapeConfig, t: i64) -> Result<(), String> {
        for e in std::mem::take(&mut self.proto_ex) {
            if e.native && e.timestamp_ms.is_none() {
                continue;
            }
            let Some(series) = self.resolve(cfg, e.series.as_bytes())? else {
                continue;
            };
            let sample_ts = match e.sample_timestamp_ms {
                Some(ts) if cfg.honor_timestamps => ts,
                _ => t,
            };
            self.pending_ex_labeled.push((
                series,
                strata_storage::Exemplar {
                    labels: Labels::from_pairs(e.labels),
                    value: e.value,
                    ts: e.timestamp_ms.unwrap_or(sample_ts),
                    has_ts: e.timestamp_ms.is_some(),
                },
            ));
        }
        Ok(())
    }

    /// Appends the staged exemplars (after their samples).
    fn flush_exemplars(&mut self) {
        if !self.pending_ex.is_empty() {
            let batch = std::mem::take(&mut self.pending_ex);
            if let Err(e) = self.db.append_exemplar_refs(&batch) {
                tracing::warn!(job = %self.target.job, error = %e, "exemplar append failed");
            }
            self.pending_ex = batch;
            self.pending_ex.clear();
        }
        if !self.pending_ex_labeled.is_empty() {
            let batch = std::mem::take(&mut self.pending_ex_labeled);
            if let Err(e) = self.db.append_exemplars(&batch) {
                tracing::warn!(job = %self.target.job, error = %e, "exemplar append failed");
            }
        }
    }

    /// Appends the staged native histogram samples.
    fn flush_histograms(&mut self) {
        if self.pending_hist.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending_hist);
        if let Err(e) = self.db.append(&batch) {
            tracing::warn!(job = %self.target.job, error = %e, "append failed");
        }
    }

    fn meta(&self, name: &str, f: impl FnOnce(&mut MetricMeta)) {
        let mut md = self.target.metadata.lock();
        match md.get_mut(name) {
            Some(m) => f(m),
            None => {
                let mut m = MetricMeta::default();
                f(&mut m);
                md.insert(name.to_owned(), m);
            }
        }
    }

    /// The labels of a newly seen series: parsed, merged with the target's labels, metric
    /// relabeled and checked against the label limits. `None` when relabeling drops it.
    fn resolve(&self, cfg: &ScrapeConfig, series: &[u8]) -> Result<Option<Labels>, String> {
        let (name, pairs) = exposition::parse_series(series)?;
        let mut lb: LabelSet = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if self.type_and_unit_labels {
            // Prometheus `schema.Metadata.AddToLabels`: the family's declared type (not
            // unknown) and unit replace any such labels the exposition wrote.
            let md = self.target.metadata.lock();
            if let Some(m) = family_of(&md, &name) {
                if let Some(kind) = m.kind.filter(|k| *k != MetricType::Unknown) {
                    lb.insert("__type__".into(), kind.as_str().into());
                }
                if !m.unit.is_empty() {
                    lb.insert("__unit__".into(), m.unit.clone());
                }
            }
        }
        lb.insert("__name__".into(), name);
        merge_target_labels(
            &mut lb,
            self.target.target.public_labels(),
            cfg.honor_labels,
        );
        if !relabel::process(&mut lb, &cfg.metric_relabel_configs) || !lb.contains_key("__name__") {
            return Ok(None);
        }
        check_label_limits(&lb, cfg)?;
        Ok(Some(Labels::from_pairs(lb)))
    }

    fn report_id(&mut self, i: usize) -> Option<u32> {
        if let Some(id) = self.report_ids[i] {
            return Some(id);
        }
        let mut pairs: Vec<(&str, &str)> = self.target.target.public_labels().collect();
        pairs.push(("__name__", REPORT_NAMES[i]));
        match self.db.series_ref(&Labels::from_pairs(pairs)) {
            Ok(id) => {
                self.report_ids[i] = Some(id);
                Some(id)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a scrape report series");
                None
            }
        }
    }

    /// Appends `pending`. Ids whose series head GC removed meanwhile are resolved again
    /// (with `cfg`'s rules) and their samples appended under the new ids.
    fn flush(&mut self, cfg: Option<&ScrapeConfig>) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        match self.db.append_refs(&pending) {
            Ok((_, unknown)) if unknown.is_empty() => {}
            Ok((_, unknown)) => {
                if let Some(cfg) = cfg {
                    self.reresolve(cfg, &pending, &unknown);
                }
            }
            Err(e) => tracing::warn!(job = %self.target.job, error = %e, "append failed"),
        }
        self.pending = pending;
        self.pending.clear();
    }

    fn reresolve(&mut self, cfg: &ScrapeConfig, pending: &[(u32, i64, f64)], unknown: &[u32]) {
        let unknown: std::collections::HashSet<u32> = unknown.iter().copied().collect();
        let mut remap: HashMap<u32, u32> = HashMap::new();
        // The cache keeps only hashes: find the series texts again in this scrape's body.
        let body = std::mem::take(&mut self.body);
        let mut p = Parser::new(&body, self.format);
        while let Some(e) = p.next() {
            let Ok(Entry::Sample { series, .. }) = e else {
                continue;
            };
            let key = super::cache::key(series);
            let Some(old) = self.cache.get(key).map(|e| e.id) else {
                continue;
            };
            if !unknown.contains(&old) || remap.contains_key(&old) {
                continue;
            }
            let resolved = self
                .resolve(cfg, series)
                .ok()
                .flatten()
                .and_then(|l| self.db.series_ref(&l).ok());
            if let Some(id) = resolved {
                remap.insert(old, id);
                if let Some(e) = self.cache.get_mut(key) {
                    e.id = id;
                }
            }
        }
        self.body = body;
        // Entries still naming a removed series (not in this scrape) are forgotten.
        self.cache
            .retain(|e| !unknown.contains(&e.id) || remap.contains_key(&e.id));
        for i in 0..REPORT_NAMES.len() {
            if let Some(old) = self.report_ids[i].filter(|id| unknown.contains(id)) {
                self.report_ids[i] = None;
                if let Some(id) = self.report_id(i) {
                    remap.insert(old, id);
                }
            }
        }
        let retry: Vec<(u32, i64, f64)> = pending
            .iter()
            .filter_map(|(id, t, v)| remap.get(id).map(|n| (*n, *t, *v)))
            .collect();
        if !retry.is_empty()
            && let Err(e) = self.db.append_refs(&retry)
        {
            tracing::warn!(job = %self.target.job, error = %e, "append failed");
        }
    }

    fn end_of_run(&mut self) {
        let t = wall_ms().max(self.last_t.saturating_add(1));
        let mut ids = Vec::new();
        self.cache.seen_in(self.prev_iter, &mut ids);
        ids.extend(self.report_ids.iter().flatten().copied());
        self.pending = ids.into_iter().map(|id| (id, t, STALE_NAN)).collect();
        self.flush(None);
    }
}

/// Target labels over scraped labels: with `honor_labels` the scraped ones win; otherwise
/// the target's win and a clashing scraped label is kept as `exported_<name>`.
fn merge_target_labels<'a>(
    lb: &mut LabelSet,
    target: impl Iterator<Item = (&'a str, &'a str)>,
    honor: bool,
) {
    let mut clashes = Vec::new();
    for (n, v) in target {
        match lb.get(n) {
            Some(_) if honor => {}
            Some(existing) => {
                clashes.push((n.to_owned(), existing.clone()));
                lb.insert(n.to_owned(), v.to_owned());
            }
            None => {
                if !v.is_empty() {
                    lb.insert(n.to_owned(), v.to_owned());
                }
            }
        }
    }
    for (n, v) in clashes {
        let mut name = n;
        loop {
            name = format!("exported_{name}");
            if let std::collections::btree_map::Entry::Vacant(e) = lb.entry(name.clone()) {
                e.insert(v);
                break;
            }
        }
    }
}

fn check_label_limits(lb: &LabelSet, cfg: &ScrapeConfig) -> Result<(), String> {
    if cfg.label_limit > 0 && lb.len() as u64 > cfg.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
            lb.get("__name__").map(String::as_str).unwrap_or(""),
            lb.len(),
            cfg.label_limit
        ));
    }
    for (n, v) in lb {
        if cfg.label_name_length_limit > 0 && n.len() as u64 > cfg.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (label name: {n}, length: {}, limit: {})",
                n.len(),
                cfg.label_name_length_limit
            ));
        }
        if cfg.label_value_length_limit > 0 && v.len() as u64 > cfg.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (label name: {n}, value: {v:?}, length: {}, limit: {})",
                v.len(),
                cfg.label_value_length_limit
            ));
        }
    }
    Ok(())
}

fn describe_reqwest(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "context deadline exceeded (scrape timeout)".into();
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ls(p: &[(&str, &str)]) -> LabelSet {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn target_labels_win_unless_honored() {
        let target = [("instance", "h:1"), ("job", "node")];
        let mut lb = ls(&[("__name__", "m"), ("job", "batch"), ("exported_job", "x")]);
        merge_target_labels(&mut lb, target.iter().copied(), false);
        assert_eq!(
            lb,
            ls(&[
                ("__name__", "m"),
                ("exported_exported_job", "batch"),
                ("exported_job", "x"),
                ("instance", "h:1"),
                ("job", "node")
            ])
        );
        let mut lb = ls(&[("__name__", "m"), ("job", "batch")]);
        merge_target_labels(&mut lb, target.iter().copied(), true);
        assert_eq!(
            lb,
            ls(&[("__name__", "m"), ("instance", "h:1"), ("job", "batch")])
        );
    }
}
