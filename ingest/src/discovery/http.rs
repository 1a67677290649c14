//! `http_sd_configs`: target groups fetched as JSON from a URL every `refresh_interval`
//! (HTTP 200 with `application/json` required). Each group carries `__meta_url`.

use std::time::Duration;

use strata_config::HttpSdConfig;
use tokio::sync::mpsc;

use super::{RawGroup, TargetGroup, Update, to_groups};
use crate::http_client::HttpClient;

pub(super) async fn run(
    cfg: HttpSdConfig,
    client: HttpClient,
    job: String,
    generation: u64,
    provider: usize,
    tx: mpsc::Sender<Update>,
) {
    let mut last: Option<Vec<TargetGroup>> = None;
    loop {
        match fetch(&cfg, &client).await {
            Ok(groups) => {
                if last.as_ref() != Some(&groups) {
                    last = Some(groups.clone());
                    let u = Update {
                        generation,
                        provider,
                        groups,
                    };
                    if tx.send(u).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::error!(job = %job, url = %cfg.url.redacted(), error = %e, "http_sd: refresh failed");
                if last.is_none() {
                    // Report an empty set once so the pool does not wait for this provider.
                    last = Some(Vec::new());
                    let u = Update {
                        generation,
                        provider,
                        groups: Vec::new(),
                    };
                    if tx.send(u).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(cfg.refresh_interval.as_std().max(Duration::from_secs(1))).await;
    }
}

async fn fetch(cfg: &HttpSdConfig, client: &HttpClient) -> Result<Vec<TargetGroup>, String> {
    let headers = client.request_headers().map_err(|e| e.to_string())?;
    let resp = client
        .client
        .get(cfg.url.as_str())
        .headers(headers)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            "X-Prometheus-Refresh-Interval-Seconds",
            cfg.refresh_interval.as_std().as_secs().to_string(),
        )
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(format!("unsupported content type {ct:?}"));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let raw: Vec<RawGroup> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let url = cfg.url.as_str().to_owned();
    Ok(to_groups(raw, &url, ("__meta_url", &url)))
}
