//! One endpoint's HTTP client: a batch of samples becomes a snappy-compressed remote-write
//! 1.0 `WriteRequest`, POSTed with Prometheus's headers; recoverable failures (network
//! errors, 5xx, 429 when `retry_on_http_429`) are retried with exponential backoff between
//! `min_backoff` and `max_backoff` (a `Retry-After` stretches the wait), unrecoverable ones
//! (other 4xx) drop the batch, as Prometheus does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};
use strata_config::RemoteWriteConfig;
use strata_ingest::histogram_proto::Histogram;
use strata_ingest::http_client::HttpClient;
use strata_ingest::remote_write::{Label, MetricMetadata, Sample, WriteRequest, encode};

use super::RemoteError;
use super::metrics::QueueMetrics;

/// A series' labels as sent (after external labels and relabeling), sorted by name.
pub(super) type SeriesLabels = Arc<Vec<Label>>;

/// One sample to send.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) labels: SeriesLabels,
    pub(super) t: i64,
    pub(super) v: f64,
    /// A native histogram sample (`v` unused), sent with `send_native_histograms`.
    pub(super) h: Option<Arc<strata_vocab::FloatHistogram>>,
    /// An exemplar (`v` its value, `t` its time), sent with `send_exemplars`: its labels.
    pub(super) ex: Option<Arc<Vec<Label>>>,
}

impl Item {
    /// A float sample.
    pub(super) fn float(labels: SeriesLabels, t: i64, v: f64) -> Self {
        Item {
            labels,
            t,
            v,
            h: None,
            ex: None,
        }
    }
}

/// `prometheus.Exemplar` as the sender writes it.
#[derive(Clone, PartialEq, prost::Message)]
struct ExemplarOut {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(double, tag = "2")]
    value: f64,
    #[prost(int64, tag = "3")]
    timestamp: i64,
}

/// `prometheus.TimeSeries` as the sender writes it: floats and native histograms.
#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeriesOut {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    exemplars: Vec<ExemplarOut>,
    #[prost(message, repeated, tag = "4")]
    histograms: Vec<Histogram>,
}

/// `prometheus.WriteRequest` as the sender writes it.
#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequestOut {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeriesOut>,
}

/// How a send ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The receiver took the batch.
    Sent,
    /// Refused for good (4xx): dropped.
    Failed,
    /// The queue is stopping: the batch was not sent.
    Stopped,
}

/// The client of one endpoint.
pub(super) struct Client {
    http: HttpClient,
    url: String,
    headers: HeaderMap,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    retry_429: bool,
    age_limit: Option<Duration>,
    /// Remote Write 2.0 (`protobuf_message: io.prometheus.write.v2.Request`).
    v2: bool,
    /// 2.0 with `metadata_config.send`: the families' metadata, attached to their series,
    /// from this source, refreshed every `send_interval`.
    metadata: Option<(super::MetadataSource, Duration)>,
    families: parking_lot::Mutex<(Option<std::time::Instant>, Arc<Families>)>,
}

/// Metadata by metric family name.
type Families = std::collections::HashMap<String, MetricMetadata>;

impl Client {
    /// The client of `cfg`.
    pub(super) fn new(
        cfg: &RemoteWriteConfig,
        name: &str,
        metadata: &super::MetadataSource,
    ) -> Result<Client, RemoteError> {
        let http = HttpClient::new(&cfg.http_client, name)
            .map_err(|e| RemoteError::Config(e.to_string()))?;
        let headers = super::header_map(&cfg.headers)?;
        let q = &cfg.queue_config;
        Ok(Client {
            http,
            url: cfg.url.to_string(),
            headers,
            timeout: cfg.remote_timeout.into(),
            min_backoff: q.min_backoff.into(),
            max_backoff: q.max_backoff.into(),
            retry_429: q.retry_on_http_429,
            age_limit: (!q.sample_age_limit.is_zero()).then(|| q.sample_age_limit.into()),
            v2: cfg.protobuf_message == strata_ingest::remote_write::v2::PROTO,
            metadata: cfg
                .metadata_config
                .send
                .then(|| (metadata.clone(), cfg.metadata_config.send_interval.into())),
            families: parking_lot::Mutex::new((None, Arc::new(Families::new()))),
        })
    }

    /// Sends `batch` until it is taken or refused for good; counts into `m`. Once `stop` is
    /// set a failed attempt is not retried (the batch stays unsent, before the queue's saved
    /// position), but a send is always tried once: a queue that stops while the receiver
    /// answers finishes its round.
    pub(super) async fn send(
        &self,
        mut batch: Vec<Item>,
        m: &QueueMetrics,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Outcome {
        let mut backoff = self.min_backoff;
        let mut attempt = 0u32;
        let mut body: Option<Vec<u8>> = None;
        // The whole send, retries and pauses included (Prometheus's `dataOutDuration`):
        // after an outage it makes the desired shards jump to catch up.
        let begin = Instant::now();
        loop {
            // `sample_age_limit`: samples that grew too old while retrying are dropped.
            if let Some(limit) = self.age_limit {
                let oldest = now_ms() - limit.as_millis() as i64;
                let before = batch.len();
                batch.retain(|i| i.t >= oldest);
                if batch.len() < before {
                    m.dropped
                        .fetch_add((before - batch.len()) as u64, Ordering::Relaxed);
                    body = None;
                }
                if batch.is_empty() {
                    return Outcome::Sent;
                }
            }
            let bytes = body.get_or_insert_with(|| self.encode(&batch)).clone();
            let size = bytes.len() as u64;
            let started = Instant::now();
            let outcome = self.attempt(bytes, attempt, backoff).await;
            m.observe_send(started.elapsed());
            let n = batch.len() as u64;
            let wait = match outcome {
                Attempt::Taken => {
                    let ex = batch.iter().filter(|i| i.ex.is_some()).count() as u64;
                    m.samples.fetch_add(n - ex, Ordering::Relaxed);
                    m.exemplars.fetch_add(ex, Ordering::Relaxed);
                    m.bytes.fetch_add(size, Ordering::Relaxed);
                    let newest = batch.iter().map(|i| i.t).max().unwrap_or(0);
                    m.highest_sent_ms.fetch_max(newest, Ordering::Relaxed);
                    m.add_busy(begin.elapsed());
                    return Outcome::Sent;
                }
                Attempt::Refused(code) => {
                    tracing::error!(url = %self.url, status = code, samples = n,
                        "remote write refused a batch; dropping it (non-recoverable)");
                    m.failed.fetch_add(n, Ordering::Relaxed);
                    m.add_busy(begin.elapsed());
                    return Outcome::Failed;
                }
                Attempt::Retry(wait) => wait,
            };
            if !pause(wait, stop).await {
                return Outcome::Stopped;
            }
            m.retried.fetch_add(n, Ordering::Relaxed);
            attempt += 1;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }

    /// Sends metadata (a 1.0 request without series) until it is taken, refused for good,
    /// or the queue stops while it fails.
    pub(super) async fn send_metadata(
        &self,
        md: Vec<MetricMetadata>,
        m: &QueueMetrics,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Outcome {
        let n = md.len() as u64;
        let body = encode(&WriteRequest {
            timeseries: Vec::new(),
            metadata: md,
        });
        let mut backoff = self.min_backoff;
        let mut attempt = 0u32;
        loop {
            let wait = match self.attempt(body.clone(), attempt, backoff).await {
                Attempt::Taken => {
                    m.metadata.fetch_add(n, Ordering::Relaxed);
                    m.metadata_bytes
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    return Outcome::Sent;
                }
                Attempt::Refused(code) => {
                    tracing::error!(url = %self.url, status = code, "remote write refused metadata; dropping it");
                    m.metadata_failed.fetch_add(n, Ordering::Relaxed);
                    return Outcome::Failed;
                }
                Attempt::Retry(wait) => wait,
            };
            if !pause(wait, stop).await {
                return Outcome::Stopped;
            }
            m.metadata_retried.fetch_add(n, Ordering::Relaxed);
            attempt += 1;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }

    /// The request body of `batch` in the queue's protocol.
    fn encode(&self, batch: &[Item]) -> Vec<u8> {
        let raw = if self.v2 {
            prost::Message::encode_to_vec(&request_v2(batch, &self.families()))
        } else {
            prost::Message::encode_to_vec(&request(batch))
        };
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }

    /// One POST of `body` and what it came to: taken; refused for good (4xx, and 429
    /// unless `retry_on_http_429`); or to be retried after `Retry-After` or `backoff`.
    async fn attempt(&self, body: Vec<u8>, attempt: u32, backoff: Duration) -> Attempt {
        match self.post(body, attempt).await {
            Ok(s) if s.is_success() => Attempt::Taken,
            Ok(s) => {
                let code = s.as_u16();
                if (400..500).contains(&code) && !(code == 429 && self.retry_429) {
                    return Attempt::Refused(code);
                }
                tracing::warn!(url = %self.url, status = code, "remote write failed; retrying");
                Attempt::Retry(s.retry_after.unwrap_or(backoff))
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "remote write failed; retrying");
                Attempt::Retry(backoff)
            }
        }
    }

    /// The families' metadata for 2.0 series (empty without `metadata_config.send`),
    /// taken from the source at most every `send_interval`.
    fn families(&self) -> Arc<Families> {
        let Some((source, every)) = &self.metadata else {
            return Arc::new(Families::new());
        };
        let mut cached = self.families.lock();
        if cached.0.is_none_or(|at| at.elapsed() >= *every) {
            let list = source.read().as_ref().map(|f| f()).unwrap_or_default();
            let map: Families = list
                .into_iter()
                .map(|m| (m.metric_family_name.clone(), m))
                .collect();
            *cached = (Some(std::time::Instant::now()), Arc::new(map));
        }
        cached.1.clone()
    }

    async fn post(&self, body: Vec<u8>, attempt: u32) -> Result<Status, String> {
        let auth = self.http.request_headers().map_err(|e| e.to_string())?;
        let mut req = self
            .http
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .headers(auth)
            .headers(self.headers.clone())
            .header(CONTENT_ENCODING, "snappy")
            .body(body);
        req = if self.v2 {
            req.header(
                CONTENT_TYPE,
                concat!(
                    "application/x-protobuf;proto=",
                    "io.prometheus.write.v2.Request"
                ),
            )
            .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        } else {
            req.header(CONTENT_TYPE, "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        };
        if attempt > 0 {
            req = req.header("Retry-Attempt", attempt.to_string());
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .map(|d| d.min(Duration::from_secs(300)));
        let status = resp.status();
        // Drain the body so the connection is reused.
        let _ = resp.bytes().await;
        Ok(Status {
            code: status,
            retry_after,
        })
    }
}

/// What one send attempt came to.
enum Attempt {
    /// The receiver took it.
    Taken,
    /// Refused for good, with this status.
    Refused(u16),
    /// Retry after this long.
    Retry(Duration),
}

/// Waits `wait` before a retry; `false` (at once) when the queue is stopping.
async fn pause(wait: Duration, stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    let mut stop = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// An HTTP answer: its status and `Retry-After`.
struct Status {
    code: reqwest::StatusCode,
    retry_after: Option<Duration>,
}

impl Status {
    fn is_success(&self) -> bool {
        self.code.is_success()
    }

    fn as_u16(&self) -> u16 {
        self.code.as_u16()
    }
}

/// The request of a batch: consecutive samples of one series share a `TimeSeries`.
fn request(batch: &[Item]) -> WriteRequestOut {
    let mut timeseries: Vec<TimeSeriesOut> = Vec::new();
    let mut last: Option<&SeriesLabels> = None;
    for i in batch {
        let same = last.is_some_and(|l| Arc::ptr_eq(l, &i.labels));
        if !same {
            timeseries.push(TimeSeriesOut {
                labels: i.labels.as_ref().clone(),
                samples: Vec::new(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
            last = Some(&i.labels);
        }
        if let Some(ts) = timeseries.last_mut() {
            match (&i.h, &i.ex) {
                (_, Some(ex)) => ts.exemplars.push(ExemplarOut {
                    labels: ex.as_ref().clone(),
                    value: i.v,
                    timestamp: i.t,
                }),
                (Some(h), None) => ts.histograms.push(Histogram::from_float(i.t, h)),
                (None, None) => ts.samples.push(Sample {
                    value: i.v,
                    timestamp: i.t,
                }),
            }
        }
    }
    WriteRequestOut { timeseries }
}

/// The 2.0 request of a batch: one symbols table, label references per series, and each
/// series' family metadata from `families`.
fn request_v2(batch: &[Item], families: &Families) -> strata_ingest::remote_write::v2::Request {
    use strata_ingest::remote_write::ExemplarV2;
    use strata_ingest::remote_write::v2::{Metadata, Request, Symbols, TimeSeries as TimeSeriesV2};
    let mut symbols = Symbols::default();
    let mut timeseries: Vec<TimeSeriesV2> = Vec::new();
    let mut last: Option<&SeriesLabels> = None;
    for i in batch {
        if !last.is_some_and(|l| Arc::ptr_eq(l, &i.labels)) {
            let labels_refs = i
                .labels
                .iter()
                .flat_map(|l| [symbols.get(&l.name), symbols.get(&l.value)])
                .collect();
            let name = i
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map_or("", |l| l.value.as_str());
            let metadata = families.get(name).map(|m| Metadata {
                r#type: m.r#type,
                help_ref: symbols.get(&m.help),
                unit_ref: symbols.get(&m.unit),
            });
            timeseries.push(TimeSeriesV2 {
                labels_refs,
                samples: Vec::new(),
                histograms: Vec::new(),
                exemplars: Vec::new(),
                metadata,
            });
            last = Some(&i.labels);
        }
        if let Some(ts) = timeseries.last_mut() {
            match (&i.h, &i.ex) {
                (_, Some(ex)) => ts.exemplars.push(ExemplarV2 {
                    labels_refs: ex
                        .iter()
                        .flat_map(|l| [symbols.get(&l.name), symbols.get(&l.value)])
                        .collect(),
                    value: i.v,
                    timestamp: i.t,
                }),
                (Some(h), None) => ts.histograms.push(Histogram::from_float(i.t, h)),
                (None, None) => ts.samples.push(Sample {
                    value: i.v,
                    timestamp: i.t,
                }),
            }
        }
    }
    Request {
        symbols: symbols.into_list(),
        timeseries,
    }
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2.0 request decodes (with the receiver's decoder) to the batch it was made from.
    #[test]
    fn a_v2_request_round_trips_through_the_receiver() {
        let a: SeriesLabels = Arc::new(vec![
            Label {
                name: "__name__".into(),
                value: "m".into(),
            },
            Label {
                name: "job".into(),
                value: "x".into(),
            },
        ]);
        let b: SeriesLabels = Arc::new(vec![
            Label {
                name: "__name__".into(),
                value: "m".into(),
            },
            Label {
                name: "job".into(),
                value: "y".into(),
            },
        ]);
        let batch = vec![
            Item {
                labels: a.clone(),
                t: 1000,
                v: 1.0,
                h: None,
                ex: None,
            },
            Item {
                labels: a,
                t: 2000,
                v: 2.0,
                h: None,
                ex: None,
            },
            Item {
                labels: b.clone(),
                t: 1000,
                v: 3.0,
                h: None,
                ex: None,
            },
            Item {
                labels: b.clone(),
                t: 2000,
                v: 0.0,
                h: Some(Arc::new(strata_vocab::FloatHistogram {
                    count: 3.0,
                    sum: 4.5,
                    positive: vec![(0, 1.0), (3, 2.0)],
                    ..Default::default()
                })),
                ex: None,
            },
            Item {
                labels: b,
                t: 2500,
                v: 0.25,
                h: None,
                ex: Some(Arc::new(vec![Label {
                    name: "trace_id".into(),
                    value: "abc".into(),
                }])),
            },
        ];
        // 1.0: the histogram rides in `TimeSeries.histograms` and decodes back.
        let v1 = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&request(&batch)))
            .expect("snappy");
        let d1 =
            strata_ingest::remote_write::decode_bounded(&v1, &Default::default()).expect("decodes");
        assert_eq!(d1.batch[1].histograms.len(), 1);
        assert_eq!(d1.exemplars.len(), 1);
        assert_eq!(d1.exemplars[0].0.get("job"), Some("y"));
        assert_eq!(d1.exemplars[0].1.labels.get("trace_id"), Some("abc"));
        assert_eq!(
            (d1.exemplars[0].1.ts, d1.exemplars[0].1.value),
            (2500, 0.25)
        );
        assert_eq!(
            d1.batch[1].histograms[0].1.positive,
            vec![(0, 1.0), (3, 2.0)]
        );
        let req = request_v2(&batch, &Families::new());
        assert_eq!(req.symbols[0], "");
        assert_eq!(
            req.symbols,
            ["", "__name__", "m", "job", "x", "y", "trace_id", "abc"]
        );
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&req))
            .expect("snappy");
        let d =
            strata_ingest::remote_write::v2::decode(&body, &Default::default()).expect("decodes");
        assert_eq!(d.samples, 3);
        assert_eq!(d.histograms, 1);
        assert_eq!(d.batch.len(), 2);
        assert_eq!(d.batch[0].samples, vec![(1000, 1.0), (2000, 2.0)]);
        assert_eq!(d.batch[1].labels.get("job"), Some("y"));
        assert_eq!(d.batch[1].histograms[0].1.count, 3.0);
        assert_eq!(d.exemplars.len(), 1);
        assert_eq!(d.exemplars[0].1.labels.get("trace_id"), Some("abc"));
        assert_eq!(d.exemplars[0].0.get("job"), Some("y"));
    }
}
