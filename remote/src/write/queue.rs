//! One endpoint's queue. A reader follows the WAL from the queue's saved position: series
//! records give labels (external labels added, then `write_relabel_configs`), sample
//! records are spread over the shards by series (so each series is sent in order) in
//! batches of `max_samples_per_send` through channels of `capacity` samples, the reader
//! waiting while a shard's channel is full (so a slow receiver holds the reader, not
//! memory: at most `capacity + 2 × max_samples_per_send` samples a shard are pending), and
//! after each read every shard sends what it holds and confirms; only then is the position
//! saved and the WAL segments before it released. A receiver that is down holds the reader
//! (shards retry), so nothing is skipped while the WAL keeps the segments the queue needs
//! (up to its bound: past it the oldest go, and the queue counts them as skipped), and a
//! restart resumes at the saved position: a sample is sent at least once, and a receiver
//! that stores samples by series and timestamp (Prometheus, VictoriaMetrics, Strata) stores
//! it once.
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
            let mut d = Dispatch::new(&shards, &self.metrics, per_send);
            let mut open = true;
            'records: for rec in read.records {
                match rec {
                    Record::Series(list) => {
                        for (id, pairs) in list {
                            series.insert(id, self.labels_of(pairs));
                        }
                    }
                    Record::Samples(samples) => {
                        for (id, t, v) in samples {
                            let Some(Some(labels)) = series.get(&id) else {
                                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            self.metrics.highest_read_ms.fetch_max(t, Ordering::Relaxed);
                            let item = Item::float(labels.clone(), t, v);
                            if !d.push(id as usize % n_shards, item).await {
                                open = false;
                                break 'records;
                            }
                        }
                    }
                    // Sent with `send_native_histograms` (false by default, as in
                    // Prometheus).
                    Record::Histograms(hs) if self.cfg.send_native_histograms => {
                        for (id, t, h) in hs {
                            let Some(Some(labels)) = series.get(&id) else {
                                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            self.metrics.highest_read_ms.fetch_max(t, Ordering::Relaxed);
                            let item = Item {
                                labels: labels.clone(),
                                t,
                                v: 0.0,
                                h: Some(h),
                                ex: None,
                            };
                            if !d.push(id as usize % n_shards, item).await {
                                open = false;
                                break 'records;
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
                            let Some(labels) = self.labels_of(e.series) else {
                                self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            let ex = e
                                .labels
                                .into_iter()
                                .map(|(name, value)| Label { name, value })
                                .collect();
                            let item = Item {
                                labels,
                                t: e.ts,
                                v: e.value,
                                h: None,
                                ex: Some(Arc::new(ex)),
                            };
                            if !d.push(hash as usize % n_shards, item).await {
                                open = false;
                                break 'records;
                            }
                        }
                    }
                    Record::Tombstones(_) | Record::Histograms(_) | Record::Exemplars(_) => {}
                }
            }
            let count = d.count;
            rate.read(count);
            // Every shard sends what it holds; then everything before `end` is out. A shard
            // that ended (the queue stops while the receiver fails) leaves the position
            // before this read, which is sent again after a restart.
            if !open || (count > 0 && !d.flush().await) {
                break;
            }
            if read.end != saved {
                if let Err(e) = position::save(&self.file, read.end) {
                    tracing::warn!(queue = %self.key, error = %e, "cannot save the remote write position");
                }
                saved = read.end;
                self.pins.set(&self.key, Some(saved.segment));
            }
            if last_reshard.elapsed() >= RESHARD_EVERY {
                // How far behind the newest sample stored the queue has sent (Prometheus's
                // `highestTimestamp - highestSentTimestamp`): the backlog to catch up on.
                let newest = self.db.head.max_time();
                let sent = self.metrics.highest_sent_ms.load(Ordering::Relaxed);
                let delay_s = if newest == i64::MIN || sent <= 0 {
                    0.0
                } else {
                    (newest.saturating_sub(sent)).max(0) as f64 / 1e3
                };
                let desired =
                    rate.desired(&self.metrics, n_shards, last_reshard.elapsed(), delay_s);
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
        // `capacity` samples in batches of `per_send` (at least one, as Prometheus's
        // `newQueue`). With the batch a shard sends and the one the reader waits to hand
        // over, a shard holds at most `capacity + 2 × per_send` samples (`3 × per_send`
        // when `capacity` is smaller than `per_send`).
        let cap = (self.cfg.queue_config.capacity as usize / per_send).max(1);
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

/// The items of one read on their way to the shards: each shard's next batch is staged
/// here and handed over once it is full, waiting while the shard's channel is full, so the
/// reader goes only as fast as the shards send.
struct Dispatch<'a> {
    shards: &'a Shards,
    metrics: &'a QueueMetrics,
    per_send: usize,
    staged: Vec<Vec<Item>>,
    /// Items pushed.
    count: u64,
}

impl<'a> Dispatch<'a> {
    fn new(shards: &'a Shards, metrics: &'a QueueMetrics, per_send: usize) -> Self {
        Dispatch {
            shards,
            metrics,
            per_send,
            staged: vec![Vec::new(); shards.senders.len()],
            count: 0,
        }
    }

    /// Stages `item` for shard `s`, handing the batch over once it holds `per_send`;
    /// `false` when the shard has ended (the queue stops).
    async fn push(&mut self, s: usize, item: Item) -> bool {
        self.count += 1;
        self.staged[s].push(item);
        if self.staged[s].len() < self.per_send {
            return true;
        }
        let batch = std::mem::take(&mut self.staged[s]);
        self.hand(s, batch).await
    }

    /// Hands `batch` to shard `s`: pending from now on.
    async fn hand(&self, s: usize, batch: Vec<Item>) -> bool {
        self.metrics
            .pending
            .fetch_add(batch.len() as i64, Ordering::Relaxed);
        self.shards.senders[s].send(Msg::Items(batch)).await.is_ok()
    }

    /// Hands over the partial batches and waits until every shard has sent what it holds;
    /// `false` when a shard ended first.
    async fn flush(mut self) -> bool {
        for s in 0..self.staged.len() {
            let batch = std::mem::take(&mut self.staged[s]);
            if !batch.is_empty() && !self.hand(s, batch).await {
                return false;
            }
        }
        let mut acks = Vec::new();
        for tx in &self.shards.senders {
            let (ack, done) = oneshot::channel();
            if tx.send(Msg::Flush(ack)).await.is_err() {
                return false;
            }
            acks.push(done);
        }
        let mut all = true;
        for a in acks {
            all &= a.await.is_ok();
        }
        all
    }
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

    /// The shard count Prometheus's `calculateDesiredShards` asks for after `elapsed`, the
    /// queue being `delay_s` seconds behind the newest sample stored.
    fn desired(
        &mut self,
        m: &QueueMetrics,
        current: usize,
        elapsed: Duration,
        delay_s: f64,
    ) -> usize {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let inst = self.read_since as f64 / secs;
        self.read_since = 0;
        self.rate_in = if self.rate_in == 0.0 {
            inst
        } else {
            0.2 * inst + 0.8 * self.rate_in
        };
        let sent = m.samples.load(Ordering::Relaxed) + m.failed.load(Ordering::Relaxed);
        let send_secs = m.busy_secs();
        let out = sent.saturating_sub(self.sent_before) as f64;
        let busy = send_secs - self.send_secs_before;
        self.sent_before = sent;
        self.send_secs_before = send_secs;
        if out <= 0.0 {
            return current;
        }
        let time_per_sample = busy / out;
        // The backlog as Prometheus counts it (`dataPending`: the delay times the rate
        // samples come in), not only what the queue holds in memory, which its channels
        // bound: after an outage the WAL holds the backlog. 5% of it a second is caught up.
        let held = m.pending.load(Ordering::Relaxed).max(0) as f64;
        let pending = (delay_s * self.rate_in).max(held);
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

#[cfg(test)]
mod reshard_tests {
    use super::*;

    /// After an outage, as Prometheus's `calculateDesiredShards`: the batches that waited
    /// through it count their whole send time, and the delay behind the newest sample is
    /// the backlog, so the desired shards jump (they used to stay put: the backlog sits in
    /// the WAL, not in the queue's bounded channels).
    #[test]
    fn an_outage_makes_the_desired_shards_jump() {
        let m = QueueMetrics::default();
        let mut r = Rates::default();
        // A steady second: 10k samples read and sent, 1 s busy over 10 shards.
        r.read(10_000);
        m.samples.fetch_add(10_000, Ordering::Relaxed);
        m.add_busy(Duration::from_secs(1));
        let steady = r.desired(&m, 1, Duration::from_secs(1), 0.0);
        assert_eq!(steady, 1);
        // The receiver was down 90 s: one batch of 2,000 finally went through.
        r.read(0);
        m.samples.fetch_add(2_000, Ordering::Relaxed);
        m.add_busy(Duration::from_secs(90));
        let after = r.desired(&m, 1, Duration::from_secs(10), 90.0);
        assert!(after > 50, "{after}");
        // Caught up and fast again: back down.
        r.read(100_000);
        m.samples.fetch_add(100_000, Ordering::Relaxed);
        m.add_busy(Duration::from_millis(500));
        assert_eq!(r.desired(&m, after, Duration::from_secs(10), 0.0), 1);
    }
}
