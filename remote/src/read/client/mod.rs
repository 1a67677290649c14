//! Remote read, client side: the `remote_read` entries of the configuration as the
//! storage's external source (`strata_storage::ExternalSource`), so PromQL, SQL and the
//! series API see remote series merged with local ones, as Prometheus's fan-out storage
//! does. Per entry, as Prometheus: a selection lacking one of its `required_matchers`
//! (equality) is not sent; with `read_recent: false` (the default) a selection the local
//! storage covers (from its oldest sample on) is not sent; with `filter_external_labels`
//! (the default) the local `global.external_labels` are added as equality matchers and
//! removed from the series returned. As Prometheus, it asks for `STREAMED_XOR_CHUNKS`,
//! then `SAMPLES`, and decodes what the remote chose ([`super::decode`]; frames at most
//! `chunked_read_limit` bytes; the answer at most [`decode::MAX_ANSWER_BYTES`], its body
//! read no further than that: a larger one is an error). A remote that streams chunks
//! Strata cannot decode (those of Prometheus 3's XOR2 and start-time encodings) is asked
//! again for `SAMPLES`. A remote that fails or times out (`remote_timeout`) leaves the
//! local answer, with a warning in the log. Answers are kept for a few seconds, so the
//! label-range parts of one query ask once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use prost::Message;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap};
use strata_config::RemoteReadConfig;
use strata_ingest::http_client::HttpClient;
use strata_storage::{ExternalSource, Labels, MatchOp, Matcher, SeriesSamples};

use super::decode::{self, ClientError, Streamed};
use super::proto::{LabelMatcher, MatchType, Query, ReadRequest, ResponseType};
use crate::write::RemoteError;

/// The response types asked for, in order (Prometheus's `AcceptedResponseTypes`).
const ACCEPTED: [ResponseType; 2] = [ResponseType::StreamedXorChunks, ResponseType::Samples];
/// How long an answer is reused for the same selection.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Answers kept.
const CACHE_ENTRIES: usize = 16;

struct Entry {
    name: String,
    url: String,
    http: HttpClient,
    headers: HeaderMap,
    timeout: Duration,
    required: Vec<(String, String)>,
    read_recent: bool,
    filter_external: bool,
    /// `chunked_read_limit`: bytes of a streamed answer's frame.
    frame_limit: u64,
    /// Bytes of an answer taken, [`decode::MAX_ANSWER_BYTES`]: of a `SAMPLES` answer
    /// decompressed (its compressed body is read only as far as an answer of this size can
    /// reach), of a streamed answer's body.
    answer_limit: usize,
}

type Cached = (String, Instant, Arc<Vec<SeriesSamples>>);

/// The `remote_read` endpoints.
pub struct RemoteReaders {
    entries: Vec<Entry>,
    external: Vec<(String, String)>,
    cache: Mutex<Vec<Cached>>,
}

impl RemoteReaders {
    /// The readers of `configs`; `external` are the local `global.external_labels`.
    /// `None` when there is no entry.
    pub fn new(
        configs: &[RemoteReadConfig],
        external: &BTreeMap<String, String>,
    ) -> Result<Option<Arc<RemoteReaders>>, RemoteError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for c in configs {
            let name = if c.name.is_empty() {
                c.url.to_string()
            } else {
                c.name.clone()
            };
            let http = HttpClient::new(&c.http_client, &name)
                .map_err(|e| RemoteError::Config(e.to_string()))?;
            let headers = crate::write::header_map(&c.headers)?;
            entries.push(Entry {
                name,
                url: c.url.to_string(),
                http,
                headers,
                timeout: c.remote_timeout.into(),
                required: c
                    .required_matchers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                read_recent: c.read_recent,
                filter_external: c.filter_external_labels,
                frame_limit: c.chunked_read_limit,
                answer_limit: decode::MAX_ANSWER_BYTES,
            });
        }
        Ok(Some(Arc::new(RemoteReaders {
            entries,
            external: external
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cache: Mutex::new(Vec::new()),
        })))
    }

    /// What `e` answers for the selection, or why not: asked for [`ACCEPTED`], and again
    /// for `SAMPLES` when the streamed answer holds chunks Strata cannot decode.
    async fn ask(
        &self,
        e: &Entry,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesSamples>, ClientError> {
        match self.ask_for(e, matchers, mint, maxt, &ACCEPTED).await {
            Err(err @ ClientError::UnsupportedChunk { .. }) => {
                tracing::debug!(error = %err, "asking again for SAMPLES");
                self.ask_for(e, matchers, mint, maxt, &[ResponseType::Samples])
                    .await
            }
            other => other,
        }
    }

    /// What `e` answers for the selection accepting `accepted`.
    async fn ask_for(
        &self,
        e: &Entry,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        accepted: &[ResponseType],
    ) -> Result<Vec<SeriesSamples>, ClientError> {
        let mut wire: Vec<LabelMatcher> = matchers
            .iter()
            .map(|m| LabelMatcher {
                r#type: match m.op {
                    MatchOp::Equal => MatchType::Eq,
                    MatchOp::NotEqual => MatchType::Neq,
                    MatchOp::Regex => MatchType::Re,
                    MatchOp::NotRegex => MatchType::Nre,
                } as i32,
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect();
        if e.filter_external {
            for (k, v) in &self.external {
                wire.push(LabelMatcher {
                    r#type: MatchType::Eq as i32,
                    name: k.clone(),
                    value: v.clone(),
                });
            }
        }
        let req = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: mint,
                end_timestamp_ms: maxt,
                matchers: wire,
                hints: None,
            }],
            accepted_response_types: accepted.iter().map(|t| *t as i32).collect(),
        };
        let http = |x: &dyn std::fmt::Display| ClientError::Http(x.to_string());
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .map_err(|x| http(&x))?;
        let auth = e.http.request_headers().map_err(|x| http(&x))?;
        let mut resp = e
            .http
            .client
            .post(&e.url)
            .timeout(e.timeout)
            .headers(auth)
            .headers(e.headers.clone())
            .header(CONTENT_ENCODING, "snappy")
            // As Prometheus: no gzip around a stream of frames.
            .header(ACCEPT_ENCODING, "snappy")
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .map_err(|x| http(&x))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(256)])
                    .trim_end()
                    .to_owned(),
            });
        }
        let added: Vec<&str> = if e.filter_external {
            self.external.iter().map(|(k, _)| k.as_str()).collect()
        } else {
            Vec::new()
        };
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !decode::is_streamed(&content_type)? {
            let bytes = sampled_body(&mut resp, e.answer_limit).await?;
            return decode::sampled(&bytes, &added);
        }
        let mut streamed = Streamed::new(&e.name, e.frame_limit, &added, mint, maxt);
        let mut received = 0usize;
        while let Some(part) = resp.chunk().await.map_err(|x| http(&x))? {
            received = received.saturating_add(part.len());
            if received > e.answer_limit {
                return Err(ClientError::TooLarge {
                    size: received,
                    limit: e.answer_limit,
                });
            }
            streamed.push(&part)?;
        }
        streamed.finish()
    }

    async fn select_all(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        local_oldest: Option<i64>,
    ) -> Arc<Vec<SeriesSamples>> {
        let key = format!("{matchers:?}|{mint}|{maxt}");
        {
            let mut cache = self.cache.lock();
            cache.retain(|(_, at, _)| at.elapsed() < CACHE_TTL);
            if let Some((_, _, v)) = cache.iter().find(|(k, _, _)| *k == key) {
                return v.clone();
            }
        }
        let mut merged: BTreeMap<Labels, SeriesSamples> = BTreeMap::new();
        // Every remote asked at once: a query waits for the slowest, not for their sum.
        let asked = self.entries.iter().filter(|e| {
            let required = e.required.iter().all(|(n, v)| {
                matchers
                    .iter()
                    .any(|m| m.op == MatchOp::Equal && m.name == *n && m.value == *v)
            });
            let covered = !e.read_recent && local_oldest.is_some_and(|o| mint >= o);
            required && !covered
        });
        let answers = futures::future::join_all(
            asked.map(|e| async move { (e, self.ask(e, matchers, mint, maxt).await) }),
        )
        .await;
        for (e, answer) in answers {
            match answer {
                Ok(series) => {
                    for s in series {
                        let e = merged.entry(s.labels).or_default();
                        e.samples.extend(s.samples);
                        e.histograms.extend(s.histograms);
                    }
                }
                Err(why) => {
                    tracing::warn!(remote = %e.name, error = %why, "remote read failed; answering without it");
                }
            }
        }
        let out: Vec<SeriesSamples> = merged
            .into_iter()
            .map(|(labels, mut s)| {
                s.samples.sort_by_key(|x| x.0);
                s.samples.dedup_by_key(|x| x.0);
                s.histograms.sort_by_key(|x| x.0);
                s.histograms.dedup_by_key(|x| x.0);
                s.labels = labels;
                s
            })
            .collect();
        let out = Arc::new(out);
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.remove(0);
        }
        cache.push((key, Instant::now(), out.clone()));
        out
    }
}

/// The snappy body of a `SAMPLES` answer, refused (without reading on) once it says or
/// shows it decompresses to more than `limit` bytes: its header's length, its
/// `Content-Length`, or the bytes received past the most an answer of `limit` bytes
/// compresses to.
async fn sampled_body(resp: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, ClientError> {
    let max_body = snap::raw::max_compress_len(limit);
    let too_large = |size: usize| ClientError::TooLarge { size, limit };
    if let Some(n) = resp.content_length() {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max_body {
            return Err(too_large(n));
        }
    }
    let mut body = Vec::new();
    let mut header_checked = false;
    while let Some(part) = resp
        .chunk()
        .await
        .map_err(|x| ClientError::Http(x.to_string()))?
    {
        if body.len().saturating_add(part.len()) > max_body {
            return Err(too_large(body.len().saturating_add(part.len())));
        }
        body.extend_from_slice(&part);
        if !header_checked && let Ok(n) = snap::raw::decompress_len(&body) {
            if n > limit {
                return Err(too_large(n));
            }
            header_checked = true;
        }
    }
    Ok(body)
}

impl ExternalSource for RemoteReaders {
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        mint: i64,
        maxt: i64,
        local_oldest: Option<i64>,
    ) -> BoxFuture<'a, Vec<SeriesSamples>> {
        async move {
            self.select_all(matchers, mint, maxt, local_oldest)
                .await
                .as_ref()
                .clone()
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
