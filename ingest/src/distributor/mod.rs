//! The front door of a sharded, replicated ingest tier (a distributor, as Cortex and Mimir
//! call it): it takes remote-write 1.0 requests, sends each series to the
//! `replication_factor` ingesters the hash ring gives its label set, and acknowledges only
//! when a majority of every series' ingesters have answered 2xx — each ingester answers
//! 2xx once the samples are in its WAL, so an acknowledged sample survives the loss of any
//! minority of its ingesters.
//!
//! - Series are forwarded as the bytes they came in ([`wire`]): native histograms,
//!   exemplars and metadata pass through untouched. Metadata goes with the series to their
//!   ingesters; a request of metadata only goes to every ingester (a majority must take it).
//! - A series short of its quorum fails the request: 400 with the ingester's reason when
//!   one of its ingesters refused the data (a client error: Prometheus drops the batch, as
//!   it would against one server), else 503, which senders retry; a retry re-sends to
//!   every replica, and ingesters keep one sample per series and timestamp.
//! - Bounded: the body (decompressed at most [`crate::remote_write::MAX_DECOMPRESSED`]),
//!   requests in flight (the HTTP layer's slots), and each forward (`timeout`).

pub mod gaps;
pub use strata_ring as ring;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ring::Ring;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum DistributorError {
    /// The body is not a remote-write 1.0 request.
    #[error("malformed remote-write request: {0}")]
    Malformed(&'static str),
    /// Not snappy, or too large once decompressed.
    #[error("{0}")]
    Body(String),
    /// An ingester refused series (4xx): the reason it gave.
    #[error("ingester {ingester} refused the request: {message}")]
    Refused { ingester: String, message: String },
    /// Series short of their quorum because ingesters failed or are unreachable.
    #[error("{series} series reached fewer than {quorum} of their ingesters: {reason}")]
    Unavailable {
        series: usize,
        quorum: usize,
        reason: String,
    },
}

/// How the front door is set up.
#[derive(Debug, Clone)]
pub struct DistributorOptions {
    /// Base URLs of the ingesters (`http://host:port`).
    pub ingesters: Vec<String>,
    pub replication_factor: usize,
    /// Bound of one forward.
    pub timeout: Duration,
    /// Where the spans of samples each ingester missed are kept ([`gaps`]).
    pub gaps_file: Option<std::path::PathBuf>,
}

/// Counters (on the front door's `/metrics`).
#[derive(Debug, Default)]
pub struct DistributorMetrics {
    pub requests: AtomicU64,
    pub series: AtomicU64,
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
    /// Forwards that failed, per ingester (index as in the options).
    pub forward_failures: Vec<AtomicU64>,
}

/// The front door.
pub struct Distributor {
    ring: Ring,
    urls: Vec<String>,
    client: reqwest::Client,
    timeout: Duration,
    gaps: gaps::Gaps,
    pub metrics: DistributorMetrics,
}

/// What one ingester answered.
enum Answer {
    Ok,
    Refused(String),
    Failed(String),
}

impl Distributor {
    /// A front door over `o.ingesters`.
    pub fn new(o: &DistributorOptions) -> Result<Distributor, String> {
        if o.ingesters.is_empty() {
            return Err("no ingesters given".into());
        }
        let client = reqwest::Client::builder()
            .timeout(o.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Distributor {
            ring: Ring::new(&o.ingesters, o.replication_factor),
            urls: o
                .ingesters
                .iter()
                .map(|u| format!("{}/api/v1/write", u.trim_end_matches('/')))
                .collect(),
            client,
            timeout: o.timeout,
            gaps: gaps::Gaps::new(&o.ingesters, o.gaps_file.clone()),
            metrics: DistributorMetrics {
                forward_failures: o.ingesters.iter().map(|_| AtomicU64::new(0)).collect(),
                ..Default::default()
            },
        })
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The spans of samples each ingester may lack (forwards to it that failed).
    pub fn gaps(&self) -> &gaps::Gaps {
        &self.gaps
    }

    /// The ingesters' write URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Forwards a snappy-compressed remote-write 1.0 body; `Ok` when every series has its
    /// quorum.
    pub async fn push(&self, body: &[u8]) -> Result<(), DistributorError> {
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let raw = crate::remote_write::decompress(body)
            .map_err(|e| DistributorError::Body(e.to_string()))?;
        let split = wire::split(&raw)?;
        self.forward(
            &raw,
            &split.series,
            !split.metadata.is_empty(),
            false,
            |idx| {
                wire::frame(
                    &raw,
                    idx.iter().map(|&i| &split.series[i].1),
                    &split.metadata,
                )
            },
        )
        .await
    }

    /// Forwards a snappy-compressed remote-write 2.0 body (each ingester gets the whole
    /// symbols table and its series, as they came); when every series has its quorum, the
    /// float samples, histograms and exemplars the request carried.
    pub async fn push_v2(&self, body: &[u8]) -> Result<(usize, usize, usize), DistributorError> {
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let raw = crate::remote_write::decompress(body)
            .map_err(|e| DistributorError::Body(e.to_string()))?;
        let split = wire::split_v2(&raw)?;
        self.forward(&raw, &split.series, false, true, |idx| {
            wire::frame_v2(
                &raw,
                &split.symbols,
                idx.iter().map(|&i| &split.series[i].1),
            )
        })
        .await?;
        Ok(split.written)
    }

    /// Sends each ingester the request `frame` makes of its series (indexes into `series`)
    /// and checks every series' quorum; a request of metadata only (`metadata`, no series)
    /// goes to every ingester.
    async fn forward(
        &self,
        raw: &[u8],
        series: &[(u64, std::ops::Range<usize>)],
        metadata: bool,
        v2: bool,
        frame: impl Fn(&[usize]) -> Vec<u8>,
    ) -> Result<(), DistributorError> {
        self.metrics
            .series
            .fetch_add(series.len() as u64, Ordering::Relaxed);
        // Per series its owners; per ingester its series.
        let mut owners: Vec<Vec<usize>> = Vec::with_capacity(series.len());
        let mut per: Vec<Vec<usize>> = vec![Vec::new(); self.urls.len()];
        let mut o = Vec::new();
        for (i, (h, _)) in series.iter().enumerate() {
            self.ring.owners(*h, &mut o);
            for &ing in &o {
                per[ing].push(i);
            }
            owners.push(o.clone());
        }
        // A request of metadata only (Prometheus sends metadata in requests of its own)
        // goes to every ingester, acknowledged by a majority of them.
        let metadata_only = series.is_empty() && metadata;
        let frame = &frame;
        let sends = per.iter().enumerate().map(|(ing, idx)| async move {
            if idx.is_empty() && !metadata_only {
                return Answer::Ok;
            }
            self.send(ing, frame(idx), v2).await
        });
        let answers = futures::future::join_all(sends).await;
        for (i, a) in answers.iter().enumerate() {
            if !matches!(a, Answer::Ok) {
                self.metrics.forward_failures[i].fetch_add(1, Ordering::Relaxed);
                // The ingester lacks these samples (if the others took them).
                let span = per[i]
                    .iter()
                    .filter_map(|&k| {
                        wire::time_span(&raw[series[k].1.clone()], v2)
                            .ok()
                            .flatten()
                    })
                    .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
                if let Some(span) = span {
                    self.gaps.record(i, span);
                }
            }
        }
        let quorum = self.ring.quorum();
        let mut short = 0usize;
        let mut refused: Option<(usize, String)> = None;
        let mut failed: Option<(usize, String)> = None;
        for os in &owners {
            let acks = os
                .iter()
                .filter(|&&i| matches!(answers[i], Answer::Ok))
                .count();
            if acks >= quorum.min(os.len()) {
                continue;
            }
            short += 1;
            for &i in os {
                match &answers[i] {
                    Answer::Refused(m) if refused.is_none() => refused = Some((i, m.clone())),
                    Answer::Failed(m) if failed.is_none() => failed = Some((i, m.clone())),
                    _ => {}
                }
            }
        }
        if metadata_only {
            let acks = answers.iter().filter(|a| matches!(a, Answer::Ok)).count();
            if acks < self.urls.len() / 2 + 1 {
                short = 1;
                for (i, a) in answers.iter().enumerate() {
                    match a {
                        Answer::Refused(m) if refused.is_none() => refused = Some((i, m.clone())),
                        Answer::Failed(m) if failed.is_none() => failed = Some((i, m.clone())),
                        _ => {}
                    }
                }
            }
        }
        if short == 0 {
            return Ok(());
        }
        if let Some((i, message)) = refused {
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(DistributorError::Refused {
                ingester: self.urls[i].clone(),
                message,
            });
        }
        self.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
        let reason = failed
            .map(|(i, m)| format!("{}: {m}", self.urls[i]))
            .unwrap_or_default();
        Err(DistributorError::Unavailable {
            series: short,
            quorum,
            reason,
        })
    }

    async fn send(&self, ing: usize, body: Vec<u8>, v2: bool) -> Answer {
        let (content_type, version) = if v2 {
            (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "2.0.0",
            )
        } else {
            ("application/x-protobuf", "0.1.0")
        };
        let r = self
            .client
            .post(&self.urls[ing])
            .header("Content-Encoding", "snappy")
            .header("Content-Type", content_type)
            .header("X-Prometheus-Remote-Write-Version", version)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => Answer::Ok,
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                Answer::Refused(format!("{status}: {}", text.trim()))
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                Answer::Failed(format!("{status}: {}", text.trim()))
            }
            Err(e) => Answer::Failed(e.to_string()),
        }
    }
}
