//! Service discovery: providers that turn `static_configs`, `file_sd_configs`,
//! `http_sd_configs` and `kubernetes_sd_configs` into [`TargetGroup`]s for a job's scrape pool. Every provider sends its
//! full current set of groups whenever it changes; a provider that fails (unreadable file,
//! HTTP error) logs it and keeps its last good set, as Prometheus does.

mod file;
mod http;
mod kubernetes;

use strata_config::ServiceDiscoveryConfigs;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::IngestError;
use crate::relabel::LabelSet;
pub use crate::scrape::target::TargetGroup;

/// An update from provider `provider` of generation `generation`: its whole set of groups.
#[derive(Debug)]
pub struct Update {
    pub generation: u64,
    pub provider: usize,
    pub groups: Vec<TargetGroup>,
}

/// The number of providers `sd` declares (the static ones count as one).
pub fn provider_count(sd: &ServiceDiscoveryConfigs) -> usize {
    1 + sd.file_sd_configs.len() + sd.http_sd_configs.len() + sd.kubernetes_sd_configs.len()
}

/// Starts the providers of one job. They run until aborted (job change or removal).
pub fn spawn(
    sd: &ServiceDiscoveryConfigs,
    job: &str,
    generation: u64,
    tx: mpsc::Sender<Update>,
) -> Result<Vec<JoinHandle<()>>, IngestError> {
    let mut clients = Vec::new();
    for h in &sd.http_sd_configs {
        clients.push(crate::http_client::HttpClient::new(&h.http_client, job)?);
    }
    let mut handles = Vec::new();
    let groups: Vec<TargetGroup> = sd
        .static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: i.to_string(),
            targets: sc
                .targets
                .iter()
                .map(|t| LabelSet::from([("__address__".to_string(), t.clone())]))
                .collect(),
            labels: sc.labels.clone(),
        })
        .collect();
    let stx = tx.clone();
    handles.push(tokio::spawn(async move {
        let _ = stx
            .send(Update {
                generation,
                provider: 0,
                groups,
            })
            .await;
    }));
    let mut provider = 1;
    for f in &sd.file_sd_configs {
        handles.push(tokio::spawn(file::run(
            f.clone(),
            job.to_owned(),
            generation,
            provider,
            tx.clone(),
        )));
        provider += 1;
    }
    for (h, client) in sd.http_sd_configs.iter().zip(clients) {
        handles.push(tokio::spawn(http::run(
            h.clone(),
            client,
            job.to_owned(),
            generation,
            provider,
            tx.clone(),
        )));
        provider += 1;
    }
    for k in &sd.kubernetes_sd_configs {
        handles.push(tokio::spawn(kubernetes::run(
            k.clone(),
            job.to_owned(),
            generation,
            provider,
            tx.clone(),
        )));
        provider += 1;
    }
    Ok(handles)
}

/// The JSON/YAML shape of file_sd and http_sd: `[{targets: [...], labels: {...}}]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<LabelSet>,
}

/// Groups from a decoded list; `source_prefix:index` names each, `extra` labels are added.
fn to_groups(raw: Vec<RawGroup>, source_prefix: &str, extra: (&str, &str)) -> Vec<TargetGroup> {
    raw.into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut labels = g.labels.unwrap_or_default();
            labels.insert(extra.0.to_owned(), extra.1.to_owned());
            TargetGroup {
                source: format!("{source_prefix}:{i}"),
                targets: g
                    .targets
                    .into_iter()
                    .map(|t| LabelSet::from([("__address__".to_string(), t)]))
                    .collect(),
                labels,
            }
        })
        .collect()
}
