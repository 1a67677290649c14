//! `kubernetes_sd_configs` with the `kube` crate: list+watch (kube-runtime's watcher and
//! reflector stores) of nodes, services, pods or endpoints (with the services and pods they
//! point at), turned into target groups with Prometheus's `__meta_kubernetes_*` labels.
//!
//! Every change of a watched object rebuilds the role's groups from the stores (debounced
//! by 100 ms) and sends them when they differ. Roles: `node`, `pod`, `service`, `endpoints`,
//! `endpointslice`, `ingress` (networking.k8s.io/v1). `attach_metadata: {node: true}` adds
//! the node's `__meta_kubernetes_node_*` labels to pod groups and to endpoint(slice)
//! targets (nodes are then watched too); `attach_metadata: {namespace: true}` adds the
//! namespace's `__meta_kubernetes_namespace_label_*`/`_annotation_*` labels to the groups
//! of every namespaced role (namespaces are then watched too).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use strata_config::{KubernetesRole, KubernetesSdConfig};
use tokio::sync::mpsc;

use super::{TargetGroup, Update};
use crate::relabel::LabelSet;

const P: &str = "__meta_kubernetes_";

pub(super) async fn run(
    cfg: KubernetesSdConfig,
    job: String,
    generation: u64,
    provider: usize,
    tx: mpsc::Sender<Update>,
) {
    let send = |groups: Vec<TargetGroup>| {
        tx.send(Update {
            generation,
            provider,
            groups,
        })
    };
    let client = match make_client(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(job = %job, error = %e, "kubernetes_sd: cannot build the API client");
            let _ = send(Vec::new()).await;
            return;
        }
    };
    let namespaces = namespaces(&cfg);
    let (changed_tx, mut changed) = mpsc::channel::<()>(1);
    let mut stores = Stores::default();
    let sel = |role: KubernetesRole| {
        let mut w = watcher::Config::default();
        for s in cfg.selectors.iter().filter(|s| s.role == role) {
            if !s.label.is_empty() {
                w = w.labels(&s.label);
            }
            if !s.field.is_empty() {
                w = w.fields(&s.field);
            }
        }
        w
    };
    let attach_node = cfg.attach_metadata.node
        && matches!(
            cfg.role,
            KubernetesRole::Pod | KubernetesRole::Endpoints | KubernetesRole::EndpointSlice
        );
    if attach_node {
        stores.nodes.push(watch(
            Api::<Node>::all(client.clone()),
            sel(KubernetesRole::Node),
            &changed_tx,
        ));
    }
    let attach_namespace = cfg.attach_metadata.namespace && cfg.role != KubernetesRole::Node;
    if attach_namespace {
        stores.namespaces.push(watch(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            &changed_tx,
        ));
    }
    match cfg.role {
        KubernetesRole::Ingress => {
            for ns in &namespaces {
                stores.ingresses.push(watch(
                    api(&client, ns),
                    sel(KubernetesRole::Ingress),
                    &changed_tx,
                ));
            }
        }
        KubernetesRole::Node => {
            stores.nodes.push(watch(
                Api::<Node>::all(client.clone()),
                sel(KubernetesRole::Node),
                &changed_tx,
            ));
        }
        // Namespaced roles; endpoints and endpointslice also need the services and pods
        // their addresses point at.
        role @ (KubernetesRole::Pod
        | KubernetesRole::Service
        | KubernetesRole::Endpoints
        | KubernetesRole::EndpointSlice) => {
            use KubernetesRole::*;
            for ns in &namespaces {
                if role == Endpoints {
                    stores
                        .endpoints
                        .push(watch(api(&client, ns), sel(Endpoints), &changed_tx));
                }
                if role == EndpointSlice {
                    stores
                        .slices
                        .push(watch(api(&client, ns), sel(EndpointSlice), &changed_tx));
                }
                if role != Pod {
                    stores
                        .services
                        .push(watch(api(&client, ns), sel(Service), &changed_tx));
                }
                if role != Service {
                    stores
                        .pods
                        .push(watch(api(&client, ns), sel(Pod), &changed_tx));
                }
            }
        }
    }
    drop(changed_tx);
    let mut last: Option<Vec<TargetGroup>> = None;
    while changed.recv().await.is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        while changed.try_recv().is_ok() {}
        let mut groups = stores.groups(cfg.role);
        if attach_node {
            stores.attach_nodes(&mut groups);
        }
        if attach_namespace {
            stores.attach_namespaces(&mut groups);
        }
        if last.as_ref() != Some(&groups) {
            last = Some(groups.clone());
            if send(groups).await.is_err() {
                return;
            }
        }
    }
}

async fn make_client(cfg: &KubernetesSdConfig) -> Result<Client, String> {
    let mut config = if let Some(url) = &cfg.api_server {
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("api_server: {e}"))?;
        let mut c = kube::Config::new(uri);
        let h = &cfg.http_client;
        if let Some(a) = &h.authorization {
            let token = if a.credentials_file.is_empty() {
                a.credentials.expose().to_owned()
            } else {
                std::fs::read_to_string(&a.credentials_file)
                    .map_err(|e| format!("reading {}: {e}", a.credentials_file))?
                    .trim()
                    .to_owned()
            };
            c.auth_info.token = Some(token.into());
        }
        if let Some(b) = &h.basic_auth {
            c.auth_info.username = Some(b.username.clone());
            c.auth_info.password = Some(b.password.expose().to_owned().into());
        }
        c.accept_invalid_certs = h.tls_config.insecure_skip_verify;
        if !h.tls_config.ca_file.is_empty() {
            let pem = std::fs::read(&h.tls_config.ca_file)
                .map_err(|e| format!("reading {}: {e}", h.tls_config.ca_file))?;
            c.root_cert = Some(pem_to_der(&pem));
        }
        c
    } else if !cfg.kubeconfig_file.is_empty() {
        let kc = kube::config::Kubeconfig::read_from(&cfg.kubeconfig_file)
            .map_err(|e| format!("kubeconfig_file {}: {e}", cfg.kubeconfig_file))?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| e.to_string())?
    } else {
        kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
    };
    config.read_timeout = None;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// DER certificates of a PEM bundle.
fn pem_to_der(pem: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            inside = true;
            cur.clear();
        } else if line.starts_with("-----END") {
            inside = false;
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(cur.trim()) {
                out.push(der);
            }
        } else if inside {
            cur.push_str(line.trim());
        }
    }
    out
}

/// `None` = all namespaces.
fn namespaces(cfg: &KubernetesSdConfig) -> Vec<Option<String>> {
    let mut names: Vec<Option<String>> = cfg.namespaces.names.iter().cloned().map(Some).collect();
    if cfg.namespaces.own_namespace
        && let Ok(ns) =
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    {
        names.push(Some(ns.trim().to_owned()));
    }
    if names.is_empty() {
        names.push(None);
    }
    names
}

fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Starts a reflector for `api`; every event pings `changed`.
fn watch<K>(api: Api<K>, cfg: watcher::Config, changed: &mpsc::Sender<()>) -> Store<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    <K as kube::Resource>::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let changed = changed.clone();
    let stream = watcher(api, cfg).default_backoff().reflect(writer);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = &ev {
                tracing::warn!(error = %e, "kubernetes_sd: watch error (retrying)");
            }
            if changed.try_send(()).is_err() && changed.is_closed() {
                return;
            }
        }
    });
    reader
}

#[derive(Default)]
struct Stores {
    nodes: Vec<Store<Node>>,
    pods: Vec<Store<Pod>>,
    services: Vec<Store<Service>>,
    endpoints: Vec<Store<Endpoints>>,
    slices: Vec<Store<EndpointSlice>>,
    ingresses: Vec<Store<Ingress>>,
    namespaces: Vec<Store<Namespace>>,
}

fn all<K: kube::Resource + Clone>(stores: &[Store<K>]) -> Vec<Arc<K>>
where
    <K as kube::Resource>::DynamicType: Eq + std::hash::Hash + Clone,
{
    stores.iter().flat_map(|s| s.state()).collect()
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn ins(l: &mut LabelSet, k: impl Into<String>, v: impl Into<String>) {
    l.insert(k.into(), v.into());
}

/// `<prefix>label_<name>`, `<prefix>labelpresent_<name>`, and the same for annotations.
fn object_labels(l: &mut LabelSet, prefix: &str, meta: &ObjectMeta) {
    for (k, v) in meta.labels.iter().flatten() {
        let n = sanitize(k);
        ins(l, format!("{prefix}label_{n}"), v.clone());
        ins(l, format!("{prefix}labelpresent_{n}"), "true");
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let n = sanitize(k);
        ins(l, format!("{prefix}annotation_{n}"), v.clone());
        ins(l, format!("{prefix}annotationpresent_{n}"), "true");
    }
}

fn name_ns(meta: &ObjectMeta) -> (String, String) {
    (
        meta.name.clone().unwrap_or_default(),
        meta.namespace.clone().unwrap_or_default(),
    )
}

fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Stores {
    fn groups(&self, role: KubernetesRole) -> Vec<TargetGroup> {
        let mut out: Vec<TargetGroup> = match role {
            KubernetesRole::Node => all(&self.nodes).iter().map(|n| node_group(n)).collect(),
            KubernetesRole::Pod => all(&self.pods).iter().map(|p| pod_group(p)).collect(),
            KubernetesRole::Ingress => all(&self.ingresses)
                .iter()
                .map(|i| ingress_group(i))
                .collect(),
            KubernetesRole::Service => all(&self.services)
                .iter()
                .map(|s| service_group(s))
                .collect(),
            KubernetesRole::Endpoints | KubernetesRole::EndpointSlice => {
                let services: BTreeMap<(String, String), Arc<Service>> = all(&self.services)
                    .into_iter()
                    .map(|s| (name_ns(&s.metadata), s))
                    .collect();
                let pods: BTreeMap<(String, String), Arc<Pod>> = all(&self.pods)
                    .into_iter()
                    .map(|p| (name_ns(&p.metadata), p))
                    .collect();
                if role == KubernetesRole::Endpoints {
                    all(&self.endpoints)
                        .iter()
                        .map(|e| endpoints_group(e, &services, &pods))
                        .collect()
                } else {
                    all(&self.slices)
                        .iter()
                        .map(|e| endpointslice_group(e, &services, &pods))
                        .collect()
                }
            }
        };
        out.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

impl Stores {
    /// `attach_metadata.node`: the node's name, labels and annotations on pod groups (by
    /// `pod_node_name`) and on endpoint targets (by the address's node or its pod's node).
    fn attach_nodes(&self, groups: &mut [TargetGroup]) {
        let nodes: BTreeMap<String, LabelSet> = all(&self.nodes)
            .iter()
            .map(|n| (n.metadata.name.clone().unwrap_or_default(), node_meta(n)))
            .collect();
        let node_of = |l: &LabelSet| {
            [
                "endpoint_node_name",
                "endpointslice_endpoint_node_name",
                "pod_node_name",
            ]
            .iter()
            .find_map(|k| l.get(&format!("{P}{k}")))
            .and_then(|n| nodes.get(n))
        };
        for g in groups {
            if let Some(m) = node_of(&g.labels) {
                g.labels.extend(m.clone());
            }
            for t in &mut g.targets {
                if let Some(m) = node_of(t) {
                    t.extend(m.clone());
                }
            }
        }
    }
}

impl Stores {
    /// `attach_metadata.namespace`: the labels and annotations of each group's namespace.
    fn attach_namespaces(&self, groups: &mut [TargetGroup]) {
        let namespaces: BTreeMap<String, LabelSet> = all(&self.namespaces)
            .iter()
            .map(|n| {
                let mut l = LabelSet::new();
                object_labels(&mut l, &format!("{P}namespace_"), &n.metadata);
                (n.metadata.name.clone().unwrap_or_default(), l)
            })
            .collect();
        for g in groups {
            if let Some(m) = g
                .labels
                .get(&format!("{P}namespace"))
                .and_then(|ns| namespaces.get(ns))
            {
                g.labels.extend(m.clone());
            }
        }
    }
}

/// `__meta_kubernetes_node_name` and the node's labels and annotations.
fn node_meta(n: &Node) -> LabelSet {
    let mut l = LabelSet::new();
    ins(
        &mut l,
        format!("{P}node_name"),
        n.metadata.name.clone().unwrap_or_default(),
    );
    object_labels(&mut l, &format!("{P}node_"), &n.metadata);
    l
}

/// Prometheus's ingress role: one target per rule host × path, `https` when a TLS entry
/// covers the host (wildcards match one label).
fn ingress_group(i: &Ingress) -> TargetGroup {
    let (name, ns) = name_ns(&i.metadata);
    let mut labels = LabelSet::new();
    ins(&mut labels, format!("{P}namespace"), ns.clone());
    ins(&mut labels, format!("{P}ingress_name"), name.clone());
    object_labels(&mut labels, &format!("{P}ingress_"), &i.metadata);
    let spec = i.spec.as_ref();
    if let Some(c) = spec.and_then(|s| s.ingress_class_name.clone()) {
        ins(&mut labels, format!("{P}ingress_class_name"), c);
    }
    let tls_hosts: Vec<String> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|t| t.hosts.clone().unwrap_or_default())
        .collect();
    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = rule.host.clone().unwrap_or_default();
        let scheme = if tls_hosts.iter().any(|p| host_matches(p, &host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<String> = match rule.http.as_ref() {
            Some(h) => h
                .paths
                .iter()
                .map(|p| {
                    p.path
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/".into())
                })
                .collect(),
            None => vec!["/".into()],
        };
        for path in paths {
            let mut t = LabelSet::new();
            ins(&mut t, "__address__", host.clone());
            ins(&mut t, format!("{P}ingress_scheme"), scheme);
            ins(&mut t, format!("{P}ingress_host"), host.clone());
            ins(&mut t, format!("{P}ingress_path"), path);
            targets.push(t);
        }
    }
    TargetGroup {
        source: format!("ingress/{ns}/{name}"),
        targets,
        labels,
    }
}

/// Prometheus's `matchesHostnamePattern`: `*.example.com` matches exactly one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len() && p.len() > 1 && p[0] == "*" && p[1..] == h[1..]
}

fn node_group(n: &Node) -> TargetGroup {
    let name = n.metadata.name.clone().unwrap_or_default();
    let mut labels = LabelSet::new();
    ins(&mut labels, format!("{P}node_name"), name.clone());
    if let Some(p) = n.spec.as_ref().and_then(|s| s.provider_id.clone()) {
        ins(&mut labels, format!("{P}node_provider_id"), p);
    }
    object_labels(&mut labels, &format!("{P}node_"), &n.metadata);
    let status = n.status.as_ref();
    let addrs = status.and_then(|s| s.addresses.clone()).unwrap_or_default();
    let mut by_type: BTreeMap<String, String> = BTreeMap::new();
    for a in &addrs {
        by_type
            .entry(a.type_.clone())
            .or_insert_with(|| a.address.clone());
    }
    let mut targets = Vec::new();
    let preferred = [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "LegacyHostIP",
        "Hostname",
    ];
    if let Some(addr) = preferred.iter().find_map(|t| by_type.get(*t)) {
        let port = status
            .and_then(|s| s.daemon_endpoints.as_ref())
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .map(|k| k.port)
            .unwrap_or(10250);
        let mut t = LabelSet::new();
        ins(&mut t, "__address__", join_host_port(addr, port));
        ins(&mut t, "instance", name.clone());
        for (ty, a) in &by_type {
            ins(
                &mut t,
                format!("{P}node_address_{}", sanitize(ty)),
                a.clone(),
            );
        }
        targets.push(t);
    }
    TargetGroup {
        source: format!("node/{name}"),
        targets,
        labels,
    }
}

fn pod_labels(p: &Pod) -> LabelSet {
    let (name, ns) = name_ns(&p.metadata);
    let mut l = LabelSet::new();
    ins(&mut l, format!("{P}namespace"), ns);
    ins(&mut l, format!("{P}pod_name"), name);
    object_labels(&mut l, &format!("{P}pod_"), &p.metadata);
    let status = p.status.as_ref();
    if let Some(s) = status {
        ins(
            &mut l,
            format!("{P}pod_ip"),
            s.pod_ip.clone().unwrap_or_default(),
        );
        ins(
            &mut l,
            format!("{P}pod_host_ip"),
            s.host_ip.clone().unwrap_or_default(),
        );
        ins(
            &mut l,
            format!("{P}pod_phase"),
            s.phase.clone().unwrap_or_default(),
        );
        let ready = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.to_lowercase())
            .unwrap_or_else(|| "unknown".into());
        ins(&mut l, format!("{P}pod_ready"), ready);
    }
    if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
        ins(&mut l, format!("{P}pod_node_name"), n);
    }
    ins(
        &mut l,
        format!("{P}pod_uid"),
        p.metadata.uid.clone().unwrap_or_default(),
    );
    if let Some(o) = p
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        ins(&mut l, format!("{P}pod_controller_kind"), o.kind.clone());
        ins(&mut l, format!("{P}pod_controller_name"), o.name.clone());
    }
    l.retain(|_, v| !v.is_empty());
    l
}

/// Container-level targets of a pod: one per container port, or one per container without
/// ports (address without a port).
fn pod_targets(p: &Pod) -> Vec<LabelSet> {
    let Some(ip) = p
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .filter(|i| !i.is_empty())
    else {
        return Vec::new();
    };
    let Some(spec) = p.spec.as_ref() else {
        return Vec::new();
    };
    let ids: BTreeMap<String, String> = p
        .status
        .as_ref()
        .map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .map(|c| (c.name.clone(), c.container_id.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let containers = spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, true)));
    for (c, init) in containers {
        let mut base = LabelSet::new();
        ins(&mut base, format!("{P}pod_container_name"), c.name.clone());
        ins(
            &mut base,
            format!("{P}pod_container_image"),
            c.image.clone().unwrap_or_default(),
        );
        ins(
            &mut base,
            format!("{P}pod_container_init"),
            init.to_string(),
        );
        if let Some(id) = ids.get(&c.name).filter(|i| !i.is_empty()) {
            ins(&mut base, format!("{P}pod_container_id"), id.clone());
        }
        let ports = c.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            let mut t = base.clone();
            ins(&mut t, "__address__", ip.clone());
            out.push(t);
        }
        for port in ports {
            let mut t = base.clone();
            ins(
                &mut t,
                "__address__",
                join_host_port(&ip, port.container_port),
            );
            ins(
                &mut t,
                format!("{P}pod_container_port_number"),
                port.container_port.to_string(),
            );
            ins(
                &mut t,
                format!("{P}pod_container_port_name"),
                port.name.clone().unwrap_or_default(),
            );
            ins(
                &mut t,
                format!("{P}pod_container_port_protocol"),
                port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            out.push(t);
        }
    }
    for t in &mut out {
        t.retain(|_, v| !v.is_empty());
    }
    out
}

fn pod_group(p: &Pod) -> TargetGroup {
    let (name, ns) = name_ns(&p.metadata);
    TargetGroup {
        source: format!("pod/{ns}/{name}"),
        targets: pod_targets(p),
        labels: pod_labels(p),
    }
}

fn service_labels(s: &Service) -> LabelSet {
    let (name, ns) = name_ns(&s.metadata);
    let mut l = LabelSet::new();
    ins(&mut l, format!("{P}namespace"), ns);
    ins(&mut l, format!("{P}service_name"), name);
    object_labels(&mut l, &format!("{P}service_"), &s.metadata);
    if let Some(spec) = &s.spec {
        let ty = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        if ty == "ExternalName" {
            ins(
                &mut l,
                format!("{P}service_external_name"),
                spec.external_name.clone().unwrap_or_default(),
            );
        } else {
            ins(
                &mut l,
                format!("{P}service_cluster_ip"),
                spec.cluster_ip.clone().unwrap_or_default(),
            );
        }
        ins(&mut l, format!("{P}service_type"), ty);
    }
    l.retain(|_, v| !v.is_empty());
    l
}

fn service_group(s: &Service) -> TargetGroup {
    let (name, ns) = name_ns(&s.metadata);
    let targets = s
        .spec
        .iter()
        .flat_map(|sp| sp.ports.iter().flatten())
        .map(|port| {
            let mut t = LabelSet::new();
            ins(
                &mut t,
                "__address__",
                format!("{name}.{ns}.svc:{}", port.port),
            );
            ins(
                &mut t,
                format!("{P}service_port_number"),
                port.port.to_string(),
            );
            if let Some(n) = port.name.clone().filter(|n| !n.is_empty()) {
                ins(&mut t, format!("{P}service_port_name"), n);
            }
            ins(
                &mut t,
                format!("{P}service_port_protocol"),
                port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            t
        })
        .collect();
    TargetGroup {
        source: format!("svc/{ns}/{name}"),
        targets,
        labels: service_labels(s),
    }
}

fn endpoints_group(
    e: &Endpoints,
    services: &BTreeMap<(String, String), Arc<Service>>,
    pods: &BTreeMap<(String, String), Arc<Pod>>,
) -> TargetGroup {
    let (name, ns) = name_ns(&e.metadata);
    let mut labels = LabelSet::new();
    ins(&mut labels, format!("{P}namespace"), ns.clone());
    ins(&mut labels, format!("{P}endpoints_name"), name.clone());
    object_labels(&mut labels, &format!("{P}endpoints_"), &e.metadata);
    if let Some(svc) = services.get(&(name.clone(), ns.clone())) {
        labels.extend(service_labels(svc));
    }
    let mut targets = Vec::new();
    for subset in e.subsets.iter().flatten() {
        let addrs = subset.addresses.iter().flatten().map(|a| (a, true)).chain(
            subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false)),
        );
        for (addr, ready) in addrs {
            for port in subset.ports.iter().flatten() {
                let mut t = LabelSet::new();
                ins(&mut t, "__address__", join_host_port(&addr.ip, port.port));
                ins(&mut t, format!("{P}endpoint_ready"), ready.to_string());
                ins(
                    &mut t,
                    format!("{P}endpoint_port_name"),
                    port.name.clone().unwrap_or_default(),
                );
                ins(
                    &mut t,
                    format!("{P}endpoint_port_protocol"),
                    port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                if let Some(h) = &addr.hostname {
                    ins(&mut t, format!("{P}endpoint_hostname"), h.clone());
                }
                if let Some(n) = &addr.node_name {
                    ins(&mut t, format!("{P}endpoint_node_name"), n.clone());
                }
                if let Some(r) = &addr.target_ref {
                    let kind = r.kind.clone().unwrap_or_default();
                    let tname = r.name.clone().unwrap_or_default();
                    ins(
                        &mut t,
                        format!("{P}endpoint_address_target_kind"),
                        kind.clone(),
                    );
                    ins(
                        &mut t,
                        format!("{P}endpoint_address_target_name"),
                        tname.clone(),
                    );
                    if kind == "Pod"
                        && let Some(pod) =
                            pods.get(&(tname, r.namespace.clone().unwrap_or_else(|| ns.clone())))
                    {
                        add_pod_target_labels(&mut t, pod, port.port);
                    }
                }
                t.retain(|_, v| !v.is_empty());
                targets.push(t);
            }
        }
    }
    labels.retain(|_, v| !v.is_empty());
    TargetGroup {
        source: format!("endpoints/{ns}/{name}"),
        targets,
        labels,
    }
}

/// Pod labels (and the matching container port's) for an address that targets a pod.
fn add_pod_target_labels(t: &mut LabelSet, pod: &Pod, port: i32) {
    t.extend(pod_labels(pod));
    if let Some(pt) = pod_targets(pod)
        .into_iter()
        .find(|pt| pt.get(&format!("{P}pod_container_port_number")) == Some(&port.to_string()))
    {
        for (k, v) in pt {
            if k != "__address__" {
                t.insert(k, v);
            }
        }
    }
}

fn endpointslice_group(
    e: &EndpointSlice,
    services: &BTreeMap<(String, String), Arc<Service>>,
    pods: &BTreeMap<(String, String), Arc<Pod>>,
) -> TargetGroup {
    let (name, ns) = name_ns(&e.metadata);
    let q = format!("{P}endpointslice_");
    let mut labels = LabelSet::new();
    ins(&mut labels, format!("{P}namespace"), ns.clone());
    ins(&mut labels, format!("{q}name"), name.clone());
    ins(
        &mut labels,
        format!("{q}address_type"),
        e.address_type.clone(),
    );
    object_labels(&mut labels, &q, &e.metadata);
    let svc_name = e
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .cloned();
    if let Some(svc) = svc_name.and_then(|n| services.get(&(n, ns.clone()))) {
        labels.extend(service_labels(svc));
    }
    let mut targets = Vec::new();
    for ep in e.endpoints.iter().flatten() {
        for addr in &ep.addresses {
            for port in e.ports.iter().flatten() {
                let Some(number) = port.port else { continue };
                let mut t = LabelSet::new();
                ins(&mut t, "__address__", join_host_port(addr, number));
                ins(&mut t, format!("{q}port"), number.to_string());
                ins(
                    &mut t,
                    format!("{q}port_name"),
                    port.name.clone().unwrap_or_default(),
                );
                ins(
                    &mut t,
                    format!("{q}port_protocol"),
                    port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                ins(
                    &mut t,
                    format!("{q}port_app_protocol"),
                    port.app_protocol.clone().unwrap_or_default(),
                );
                if let Some(c) = &ep.conditions {
                    for (k, v) in [
                        ("ready", c.ready),
                        ("serving", c.serving),
                        ("terminating", c.terminating),
                    ] {
                        if let Some(v) = v {
                            ins(&mut t, format!("{q}endpoint_conditions_{k}"), v.to_string());
                        }
                    }
                }
                ins(
                    &mut t,
                    format!("{q}endpoint_hostname"),
                    ep.hostname.clone().unwrap_or_default(),
                );
                ins(
                    &mut t,
                    format!("{q}endpoint_node_name"),
                    ep.node_name.clone().unwrap_or_default(),
                );
                ins(
                    &mut t,
                    format!("{q}endpoint_zone"),
                    ep.zone.clone().unwrap_or_default(),
                );
                if let Some(r) = &ep.target_ref {
                    let kind = r.kind.clone().unwrap_or_default();
                    let tname = r.name.clone().unwrap_or_default();
                    ins(&mut t, format!("{q}address_target_kind"), kind.clone());
                    ins(&mut t, format!("{q}address_target_name"), tname.clone());
                    if kind == "Pod"
                        && let Some(pod) =
                            pods.get(&(tname, r.namespace.clone().unwrap_or_else(|| ns.clone())))
                    {
                        add_pod_target_labels(&mut t, pod, number);
                    }
                }
                t.retain(|_, v| !v.is_empty());
                targets.push(t);
            }
        }
    }
    labels.retain(|_, v| !v.is_empty());
    TargetGroup {
        source: format!("endpointslice/{ns}/{name}"),
        targets,
        labels,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Against a local fake API server that serves list and watch of pods.
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    use super::*;

    fn pod(name: &str, ip: &str, rv: &str) -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default","uid":"uid-{name}","resourceVersion":"{rv}","labels":{{"app.kubernetes.io/name":"web"}},"annotations":{{"prometheus.io/scrape":"true"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-rs","uid":"x","controller":true}}]}},"spec":{{"nodeName":"node-1","containers":[{{"name":"app","image":"img:1","ports":[{{"name":"http","containerPort":8080,"protocol":"TCP"}}]}},{{"name":"sidecar","image":"side:2"}}]}},"status":{{"phase":"Running","podIP":"{ip}","hostIP":"192.168.0.1","conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
        )
    }

    /// Serves `GET …/pods` (a list holding `initial`) and `…/pods?watch=…` (the events
    /// pushed into `events`, streamed as they come).
    fn fake_api(initial: String, events: Arc<Mutex<Vec<String>>>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let initial = initial.clone();
                let events = events.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut w = conn;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        if path.contains("watch=true") {
                            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                            let mut sent = 0;
                            loop {
                                let batch: Vec<String> = events.lock().unwrap()[sent..].to_vec();
                                for ev in batch {
                                    let body = format!("{ev}\n");
                                    let chunk = format!("{:x}\r\n{body}\r\n", body.len());
                                    if w.write_all(chunk.as_bytes()).is_err() {
                                        return;
                                    }
                                    let _ = w.flush();
                                    sent += 1;
                                }
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                        let body = format!(
                            r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"1"}},"items":[{initial}]}}"#
                        );
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if w.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    async fn recv(rx: &mut mpsc::Receiver<Update>) -> Update {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("provider alive")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pod_role_lists_and_watches() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let port = fake_api(pod("web-1", "10.0.0.5", "1"), events.clone());
        let cfg: KubernetesSdConfig = serde_yaml_ng::from_str(&format!(
            "role: pod\napi_server: http://127.0.0.1:{port}\nnamespaces:\n  names: [default]\n"
        ))
        .unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(cfg, "k8s".into(), 7, 2, tx));
        let mut u = recv(&mut rx).await;
        while u.groups.is_empty() {
            u = recv(&mut rx).await;
        }
        assert_eq!((u.generation, u.provider), (7, 2));
        assert_eq!(u.groups.len(), 1);
        let g = &u.groups[0];
        assert_eq!(g.source, "pod/default/web-1");
        let want = [
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_pod_name", "web-1"),
            ("__meta_kubernetes_pod_ip", "10.0.0.5"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_node_name", "node-1"),
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"),
            (
                "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true",
            ),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            ("__meta_kubernetes_pod_controller_name", "web-rs"),
        ];
        for (k, v) in want {
            assert_eq!(g.labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(
            g.targets.len(),
            2,
            "one per port, one for the portless container"
        );
        let t = &g.targets[0];
        assert_eq!(t["__address__"], "10.0.0.5:8080");
        assert_eq!(t["__meta_kubernetes_pod_container_name"], "app");
        assert_eq!(t["__meta_kubernetes_pod_container_port_name"], "http");
        assert_eq!(t["__meta_kubernetes_pod_container_port_number"], "8080");
        assert_eq!(g.targets[1]["__address__"], "10.0.0.5");

        // A pod added, then the first deleted, through the watch.
        events.lock().unwrap().push(format!(
            r#"{{"type":"ADDED","object":{}}}"#,
            pod("web-2", "10.0.0.6", "2")
        ));
        let mut u = recv(&mut rx).await;
        while u.groups.len() != 2 {
            u = recv(&mut rx).await;
        }
        assert_eq!(u.groups[1].source, "pod/default/web-2");
        events.lock().unwrap().push(format!(
            r#"{{"type":"DELETED","object":{}}}"#,
            pod("web-1", "10.0.0.5", "3")
        ));
        let mut u = recv(&mut rx).await;
        while u.groups.len() != 1 {
            u = recv(&mut rx).await;
        }
        assert_eq!(u.groups[0].source, "pod/default/web-2");
        task.abort();
    }

    #[test]
    fn node_service_and_endpoints_labels() {
        let node: Node = serde_json::from_str(r#"{"metadata":{"name":"n1","labels":{"zone":"a"}},"spec":{"providerID":"aws:///i-1"},"status":{"addresses":[{"type":"Hostname","address":"n1.local"},{"type":"InternalIP","address":"10.1.0.1"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}"#).unwrap();
        let g = node_group(&node);
        assert_eq!(g.targets[0]["__address__"], "10.1.0.1:10250");
        assert_eq!(g.targets[0]["instance"], "n1");
        assert_eq!(
            g.targets[0]["__meta_kubernetes_node_address_Hostname"],
            "n1.local"
        );
        assert_eq!(g.labels["__meta_kubernetes_node_label_zone"], "a");
        assert_eq!(g.labels["__meta_kubernetes_node_provider_id"], "aws:///i-1");

        let svc: Service = serde_json::from_str(r#"{"metadata":{"name":"web","namespace":"prod","labels":{"tier":"fe"}},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.9","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#).unwrap();
        let g = service_group(&svc);
        assert_eq!(g.targets[0]["__address__"], "web.prod.svc:80");
        assert_eq!(g.targets[0]["__meta_kubernetes_service_port_name"], "http");
        assert_eq!(
            g.labels["__meta_kubernetes_service_cluster_ip"],
            "10.96.0.9"
        );
        assert_eq!(g.labels["__meta_kubernetes_service_label_tier"], "fe");

        let pod: Pod =
            serde_json::from_str(&pod("web-1", "10.0.0.5", "1").replace("\"default\"", "\"prod\""))
                .unwrap();
        let ep: Endpoints = serde_json::from_str(r#"{"metadata":{"name":"web","namespace":"prod"},"subsets":[{"addresses":[{"ip":"10.0.0.5","nodeName":"node-1","targetRef":{"kind":"Pod","name":"web-1","namespace":"prod"}}],"notReadyAddresses":[{"ip":"10.0.0.7"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]}"#).unwrap();
        let services = BTreeMap::from([(("web".to_string(), "prod".to_string()), Arc::new(svc))]);
        let pods = BTreeMap::from([(("web-1".to_string(), "prod".to_string()), Arc::new(pod))]);
        let g = endpoints_group(&ep, &services, &pods);
        assert_eq!(g.labels["__meta_kubernetes_endpoints_name"], "web");
        assert_eq!(g.labels["__meta_kubernetes_service_name"], "web");
        assert_eq!(g.targets.len(), 2);
        let t = &g.targets[0];
        assert_eq!(t["__address__"], "10.0.0.5:8080");
        assert_eq!(t["__meta_kubernetes_endpoint_ready"], "true");
        assert_eq!(t["__meta_kubernetes_endpoint_address_target_kind"], "Pod");
        assert_eq!(t["__meta_kubernetes_pod_name"], "web-1");
        assert_eq!(t["__meta_kubernetes_pod_container_name"], "app");
        assert_eq!(g.targets[1]["__meta_kubernetes_endpoint_ready"], "false");
    }

    #[test]
    fn ingress_targets_and_node_metadata() {
        let ing: Ingress = serde_json::from_str(r#"{"metadata":{"name":"shop","namespace":"prod","labels":{"app":"shop"},"annotations":{"a/b":"c"}},"spec":{"ingressClassName":"nginx","tls":[{"hosts":["*.example.com"]}],"rules":[{"host":"www.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}},{"path":"/api","pathType":"Prefix","backend":{"service":{"name":"api","port":{"number":80}}}}]}},{"host":"plain.test"}]}}"#).unwrap();
        let g = ingress_group(&ing);
        assert_eq!(g.source, "ingress/prod/shop");
        assert_eq!(g.labels["__meta_kubernetes_ingress_name"], "shop");
        assert_eq!(g.labels["__meta_kubernetes_ingress_class_name"], "nginx");
        assert_eq!(g.labels["__meta_kubernetes_ingress_label_app"], "shop");
        assert_eq!(g.labels["__meta_kubernetes_ingress_annotation_a_b"], "c");
        assert_eq!(g.targets.len(), 3);
        assert_eq!(g.targets[0]["__address__"], "www.example.com");
        assert_eq!(g.targets[0]["__meta_kubernetes_ingress_scheme"], "https");
        assert_eq!(g.targets[1]["__meta_kubernetes_ingress_path"], "/api");
        assert_eq!(g.targets[2]["__meta_kubernetes_ingress_scheme"], "http");
        assert_eq!(g.targets[2]["__meta_kubernetes_ingress_path"], "/");
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));

        let node: Node =
            serde_json::from_str(r#"{"metadata":{"name":"node-1","labels":{"zone":"a"}}}"#)
                .unwrap();
        let mut groups = vec![pod_group(
            &serde_json::from_str::<Pod>(&pod("web-1", "10.0.0.5", "1")).unwrap(),
        )];
        let mut stores = Stores::default();
        let (reader, mut writer) = reflector::store::<Node>();
        writer.apply_watcher_event(&watcher::Event::Apply(node));
        stores.nodes.push(reader);
        stores.attach_nodes(&mut groups);
        assert_eq!(groups[0].labels["__meta_kubernetes_node_name"], "node-1");
        assert_eq!(groups[0].labels["__meta_kubernetes_node_label_zone"], "a");

        let ns: Namespace =
            serde_json::from_str(r#"{"metadata":{"name":"default","labels":{"team":"core"}}}"#)
                .unwrap();
        let (reader, mut writer) = reflector::store::<Namespace>();
        writer.apply_watcher_event(&watcher::Event::Apply(ns));
        stores.namespaces.push(reader);
        stores.attach_namespaces(&mut groups);
        assert_eq!(
            groups[0].labels["__meta_kubernetes_namespace_label_team"],
            "core"
        );
        assert_eq!(
            groups[0].labels["__meta_kubernetes_namespace_labelpresent_team"],
            "true"
        );
    }

    #[test]
    fn endpointslice_labels() {
        let svc: Service = serde_json::from_str(r#"{"metadata":{"name":"web","namespace":"prod"},"spec":{"clusterIP":"10.96.0.9","ports":[{"port":80}]}}"#).unwrap();
        let pod: Pod =
            serde_json::from_str(&pod("web-1", "10.0.0.5", "1").replace("\"default\"", "\"prod\""))
                .unwrap();
        let es: EndpointSlice = serde_json::from_str(r#"{"metadata":{"name":"web-abc","namespace":"prod","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.5"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-1","zone":"z1","targetRef":{"kind":"Pod","name":"web-1","namespace":"prod"}}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}"#).unwrap();
        let services = BTreeMap::from([(("web".to_string(), "prod".to_string()), Arc::new(svc))]);
        let pods = BTreeMap::from([(("web-1".to_string(), "prod".to_string()), Arc::new(pod))]);
        let g = endpointslice_group(&es, &services, &pods);
        assert_eq!(g.source, "endpointslice/prod/web-abc");
        assert_eq!(g.labels["__meta_kubernetes_endpointslice_name"], "web-abc");
        assert_eq!(
            g.labels["__meta_kubernetes_endpointslice_address_type"],
            "IPv4"
        );
        assert_eq!(g.labels["__meta_kubernetes_service_name"], "web");
        let t = &g.targets[0];
        assert_eq!(t["__address__"], "10.0.0.5:8080");
        assert_eq!(t["__meta_kubernetes_endpointslice_port_name"], "http");
        assert_eq!(
            t["__meta_kubernetes_endpointslice_endpoint_conditions_ready"],
            "true"
        );
        assert_eq!(
            t["__meta_kubernetes_endpointslice_endpoint_conditions_terminating"],
            "false"
        );
        assert_eq!(t["__meta_kubernetes_endpointslice_endpoint_zone"], "z1");
        assert_eq!(
            t["__meta_kubernetes_endpointslice_address_target_kind"],
            "Pod"
        );
        assert_eq!(t["__meta_kubernetes_pod_container_name"], "app");
    }
}
