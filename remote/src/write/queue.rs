//! One endpoint's queue. A reader follows the WAL from the queue's saved position: series
//! records give labels (external labels added, then `write_relabel_configs`), sample
//! records are spread over the shards by series (so each series is sent in order), and
//! after each read every shard sends what it holds and confirms; only then is the position
//! saved and the WAL segments before it released. A receiver that is down holds the
//! reader (shards retry), so nothing is skipped, and a restart resumes at the saved
//! position: a sample is sent at least once, and a receiver that stores samples by series
//! and timestamp (Prometheus, VictoriaMetrics, Strata) stores it once.
//!
//! The number of shards follows Prometheus's calculation between reads: the time a sample
//! takes to send times the rate samples arrive (plus a share of the backlog), within
//! `min_shards..=max_shards`, changed only when it moves by more than 30%.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use strata_config::RemoteWriteConfig;
use strata_ingest::relabel::{LabelSet, process};
use strata_ingest::remote_write::Label;
use strata_storage::Db;
use strata_storage::wal::{Record, WalPosition, WalTail};
use tokio::sync::{mpsc, oneshot, watch};

use super::metrics::QueueMetrics;
use super::position;
use super::send::{Client, Item, Outcome, SeriesLabels};

/// Bytes of WAL records read at a time.
const READ_BYTES: usize = 4 << 20;
/// Wait between reads when the WAL has nothing new.
const POLL: Duration = Duration::from_millis(250);
/// How often the shard count is reconsidered.
const RESHARD_EVERY: Duration = Duration::from_secs(10);

/// What a shard is told.
enum Msg {
    /// Samples to send, in order.
    Items(Vec<Item>),
    /// Send everything held, then answer.
    Flush(oneshot::Sender<()>),
}

/// A running queue: its reader task and the handle to stop it.
pub(super) struct Queue {
    pub(super) key: String,
    pub(super) cfg: RemoteWriteConfig,
    pub(super) external: Vec<(String, String)>,
    pub(super) metrics: Arc<QueueMetrics>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    md_task: Option<tokio::task::JoinHandle<()>>,
}

impl Queue {
    /// Starts the queue of `cfg` (keyed `key`) reading the WAL of `env`'s storage;
    /// `external` labels are added to every series that lacks them.
    pub(super) fn start(
        key: String,
        cfg: RemoteWriteConfig,
        client: Client,
        external: Vec<(String, String)>,
        env: &super::QueueEnv,
    ) -> Queue {
        let metrics = Arc::new(QueueMetrics::default());
        let q = &cfg.queue_config;
        metrics
            .shards_min
            .store(q.min_shards.max(1), Ordering::Relaxed);
        metrics
            .shards_max
            .store(q.max_shards.max(q.min_shards).max(1), Ordering::Relaxed);
        let (stop, stop_rx) = watch::channel(false);
        let reader = Reader {
            key: key.clone(),
            cfg: cfg.clone(),
            client: Arc::new(client),
            db: env.db.clone(),
            file: position::path(&env.data_dir, &key),
            external: external.clone(),
            metrics: metrics.clone(),
            stop: stop_rx,
            pins: env.pins.clone(),
        };
        let md_task = (cfg.metadata_config.send
            && cfg.protobuf_message != strata_ingest::remote_write::v2::PROTO)
            .then(|| {
                tokio::spawn(metadata_loop(
                    cfg.metadata_config.clone(),
                    reader.client.clone(),
                    env.metadata.clone(),
                    metrics.clone(),
                    reader.stop.clone(),
                ))
            });
        let task = tokio::spawn(reader.run());
        Queue {
            key,
            cfg,
            external,
            metrics,
            stop,
            task: Some(task),
            md_task,
        }
    }

    /// Stops the queue: shards give up their retries, the reader saves where it got to.
    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(t) = self.md_task.take() {
            let _ = t.await;
        }
    }
}

struct Reader {
    key: String,
    cfg: RemoteWriteConfig,
    client: Arc<Client>,
    db: Arc<Db>,
    file: PathBuf,
    external: Vec<(String, String)>,
    metrics: Arc<QueueMetrics>,
    stop: watch::Receiver<bool>,
    pins: Arc<super::Pins>,
}

/// The shards of a queue.
struct Shards {
    senders: Vec<mpsc::Sender<Msg>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Reader {
    async fn run(self) {
        if let Err(e) = self.follow().await {
            tracing::error!(queue = %self.key, error = %e, "remote write queue stopped");
        }
    }

    /// Labels of a WAL series as sent, or `None` when relabeling drops it.
    fn labels_of(&self, pairs: Vec<(String, String)>) -> Option<SeriesLabels> {
        let mut set: LabelSet = pairs.into_iter().collect();
        for (k, v) in &self.external {
            set.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !process(&mut set, &self.cfg.write_relabel_configs) || set.is_empty() {
            return None;
        }
        Some(Arc::new(
            set.into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
        ))
    }

    async fn follow(&self) -> Result<(), String> {
        let dir = self.db.wal_dir().to_path_buf();
        let start = match position::load(&self.file) {
            Some(p) => p,
            // A new queue sends what is written from now on, as Prometheus's does.
            None => WalTail::end(&dir).map_err(|e| e.to_string())?,
        };
        let (mut tail, known) = tokio::task::block_in_place(|| WalTail::open(&dir, start))
            .map_err(|e| e.to_string())?;
        let mut series: HashMap<u32, Option<SeriesLabels>> = HashMap::new();
        for r in known {
            if let Record::Series(list) = r {
                for (id, pairs) in list {
                    series.insert(id, self.labels_of(pairs));
                }
            }
        }
        self.pins.set(&self.key, Some(start.segment));
        let q = &self.cfg.queue_config;
        let per_send = q.max_samples_per_send.max(1) as usize;
        let mut n_shards = q.min_shards.max(1) as usize;
        let mut shards = self.spawn_shards(n_shards, per_send);
        let mut saved = start;
        let mut last_reshard = Instant::now();
        let mut rate = Rates::default();
        loop {
            if *self.stop.borrow() {
                break;
            }
            let read =
                tokio::task::block_in_place(|| tail.read(READ_BYTES)).map_err(|e| e.to_string())?;
            self.metrics
                .segments_skipped
                .store(tail.skipped_segments, Ordering::Relaxed);
            self.metrics
                .segment
                .store(read.end.segment, Ordering::Relaxed);
            if read.checkpoint {
                // The checkpoint lists every series still alive: forget the others.
                series.clear();
            }
            let mut per_shard: Vec<Vec<Item>> = vec![Vec::new(); n_shards];
            let mut count = 0u64;
            for rec in read.records {
                match rec {
                    Record::Series(list) => {
                        for (id, pairs) in list {
                            series.insert(id, self.labels_of(pairs));
                        }
                    }
                    Record::Samples(samples) => {
                        for (id, t, v) in samples {
                            match series.get(&id) {
                                Some(Some(labels)) => {
                                    per_shard[id as usize % n_shards].push(Item::float(
                                        labels.clone(),
                                        t,
                                        v,
                                    ));
                                    count += 1;
                                    self.metrics.highest_read_ms.fetch_max(t, Ordering::Relaxed);
                                }
                                _ => {
                                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    // Sent with `send_native_histograms` (false by default, as in
                    // Prometheus).
                    Record::Histograms(hs) if self.cfg.send_native_histograms => {
                        for (id, t, h) in hs {
                            match series.get(&id) {
                                Some(Some(labels)) => {
                                    per_shard[id as usize % n_shards].push(Item {
                                        labels: labels.clone(),
                                        t,
                                        v: 0.0,
                                        h: Some(h),
                                        ex: None,
                                    });
                                    count += 1;
                                    self.metrics.highest_read_ms.fetch_max(t, Ordering::Relaxed);
                                }
                                _ => {
                                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    // Sent with `send_exemplars` (a checkpoint contributes only its series).
                    Record::Exemplars(es) if self.cfg.send_exemplars => {
                        for e in es {
                            let hash = {
                                use std::hash::{Hash, Hasher};
                                let mut h = std::collections::hash_map::DefaultHasher::new();
                                e.series.hash(&mut h);
                                h.finish()
                            };
                            match self.labels_of(e.series) {
                                Some(labels) => {
                                    let ex = e
                                        .labels
                                        .into_iter()
                                        .map(|(name, value)| Label { name, value })
                                        .collect();
                                    per_shard[hash as usize % n_shards].push(Item {
                                        labels,
                                        t: e.ts,
                                        v: e.value,
                                        h: None,
                                        ex: Some(Arc::new(ex)),
                                    });
                                    count += 1;
                                }
                                None => {
                                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    Record::Tombstones(_) | Record::Histograms(_) | Record::Exemplars(_) => {}
                }
            }
            rate.read(count);
            if count > 0 {
                self.metrics
                    .pending
                    .fetch_add(count as i64, Ordering::Relaxed);
                let mut sent_all = true;
                'dispatch: for (s, items) in per_shard.into_iter().enumerate() {
                    for chunk in chunks(items, per_send) {
                        if shards.senders[s].send(Msg::Items(chunk)).await.is_err() {
                            // A shard ends only when the queue stops.
                            sent_all = false;
                            break 'dispatch;
                        }
                    }
                }
                if !sent_all {
                    break;
                }
                // Every shard sends what it holds; then everything before `end` is out.
                let mut acks = Vec::new();
                for tx in &shards.senders {
                    let (ack, done) = oneshot::channel();
                    if tx.send(Msg::Flush(ack)).await.is_ok() {
                        acks.push(done);
                    }
                }
                let mut all = true;
                for a in acks {
                    all &= a.await.is_ok();
                }
                if !all {
                    // A shard gave up (stopping while the receiver fails): the position
                    // stays before this read, which is sent again after a restart.
                    break;
                }
            }
            if read.end != saved {
                if let Err(e) = position::save(&self.file, read.end) {
                    tracing::warn!(queue = %self.key, error = %e, "cannot save the remote write position");
                }
                saved = read.end;
                self.pins.set(&self.key, Some(saved.segment));
            }
            if last_reshard.elapsed() >= RESHARD_EVERY {
                let desired = rate.desired(&self.metrics, n_shards, last_reshard.elapsed());
                let desired = desired.clamp(
                    self.metrics.shards_min.load(Ordering::Relaxed) as usize,
                    self.metrics.shards_max.load(Ordering::Relaxed) as usize,
                );
                self.metrics
                    .shards_desired
                    .store(desired as u64, Ordering::Relaxed);
                if desired != n_shards {
                    // All shards are idle here (flushed): swap them.
                    shards.close().await;
                    n_shards = desired;
                    shards = self.spawn_shards(n_shards, per_send);
                    tracing::info!(queue = %self.key, shards = n_shards, "remote write resharded");
                }
                last_reshard = Instant::now();
            }
            if count == 0 {
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
        shards.close().await;
        self.metrics.pending.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn spawn_shards(&self, n: usize, per_send: usize) -> Shards {
        self.metrics.shards.store(n as u64, Ordering::Relaxed);
        // Capacity in messages of up to `per_send` samples: about `capacity` samples.
        let cap = (self.cfg.queue_config.capacity as usize / per_send).max(2);
        let mut senders = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(cap);
            senders.push(tx);
            tasks.push(tokio::spawn(shard(
                rx,
                self.client.clone(),
                self.metrics.clone(),
                self.stop.clone(),
                per_send,
            )));
        }
        Shards { senders, tasks }
    }
}

impl Shards {
    async fn close(self) {
        drop(self.senders);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// `items` cut into runs of at most `n`.
fn chunks(mut items: Vec<Item>, n: usize) -> Vec<Vec<Item>> {
    let mut out = Vec::new();
    while items.len() > n {
        let rest = items.split_off(n);
        out.push(items);
        items = rest;
    }
    if !items.is_empty() {
        out.push(items);
    }
    out
}

/// One shard: batches of up to `per_send` samples, sent one after the other.
async fn shard(
    mut rx: mpsc::Receiver<Msg>,
    client: Arc<Client>,
    m: Arc<QueueMetrics>,
    stop: watch::Receiver<bool>,
    per_send: usize,
) {
    let mut held: Vec<Item> = Vec::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Items(items) => {
                held.extend(items);
                while held.len() >= per_send {
                    let rest = held.split_off(per_send);
                    let batch = std::mem::replace(&mut held, rest);
                    if !send(&client, batch, &m, &stop).await {
                        return;
                    }
                }
            }
            Msg::Flush(ack) => {
                if !held.is_empty() {
                    let batch = std::mem::take(&mut held);
                    if !send(&client, batch, &m, &stop).await {
                        return;
                    }
                }
                let _ = ack.send(());
            }
        }
    }
}

/// Sends one batch; `false` when the queue is stopping.
async fn send(
    client: &Client,
    batch: Vec<Item>,
    m: &QueueMetrics,
    stop: &watch::Receiver<bool>,
) -> bool {
    let n = batch.len() as i64;
    let outcome = client.send(batch, m, stop).await;
    if outcome == Outcome::Stopped {
        return false;
    }
    m.pending.fetch_sub(n, Ordering::Relaxed);
    true
}

/// Samples read per second, smoothed (Prometheus's `ewmaRate`, weight 0.2).
#[derive(Default)]
struct Rates {
    read_since: u64,
    rate_in: f64,
    sent_before: u64,
    send_secs_before: f64,
}

impl Rates {
    fn read(&mut self, n: u64) {
        self.read_since += n;
    }

    /// The shard count Prometheus's `calculateDesiredShards` asks for after `elapsed`.
    fn desired(&mut self, m: &QueueMetrics, current: usize, elapsed: Duration) -> usize {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let inst = self.read_since as f64 / secs;
        self.read_since = 0;
        self.rate_in = if self.rate_in == 0.0 {
            inst
        } else {
            0.2 * inst + 0.8 * self.rate_in
        };
        let sent = m.samples.load(Ordering::Relaxed) + m.failed.load(Ordering::Relaxed);
        let (send_secs, _) = m.send_totals();
        let out = sent.saturating_sub(self.sent_before) as f64;
        let busy = send_secs - self.send_secs_before;
        self.sent_before = sent;
        self.send_secs_before = send_secs;
        if out <= 0.0 {
            return current;
        }
        let time_per_sample = busy / out;
        let pending = m.pending.load(Ordering::Relaxed).max(0) as f64;
        let desired = time_per_sample * (self.rate_in + 0.05 * pending);
        let desired = desired.ceil().max(1.0) as usize;
        // Within 30% of the current count: keep it.
        let lo = current as f64 * 0.7;
        let hi = current as f64 * 1.3;
        if (desired as f64) >= lo && (desired as f64) <= hi {
            current
        } else {
            desired
        }
    }
}

/// The position a queue of `cfg` keyed `key` would start at (for tests and tools).
pub fn saved_position(data_dir: &std::path::Path, key: &str) -> Option<WalPosition> {
    position::load(&position::path(data_dir, key))
}

/// Sends the metadata of the scraped (and received) metric families every
/// `send_interval`, in requests of at most `max_samples_per_send` entries, as Prometheus's
/// metadata watcher does.
async fn metadata_loop(
    cfg: strata_config::MetadataConfig,
    client: Arc<Client>,
    source: super::MetadataSource,
    m: Arc<QueueMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let every: Duration = cfg.send_interval.into();
    let per_send = cfg.max_samples_per_send.max(1) as usize;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every.max(Duration::from_secs(1))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let source = source.read().clone();
        let Some(f) = source else { continue };
        let list = f();
        for chunk in list.chunks(per_send) {
            if client.send_metadata(chunk.to_vec(), &m, &stop).await == Outcome::Stopped {
                return;
            }
        }
    }
}
