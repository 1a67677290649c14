//! Targets: what service discovery hands over ([`TargetGroup`]) and what the scrape
//! manager makes of it with the job's settings and `relabel_configs` (Prometheus's
//! `PopulateLabels`): `job`, `__address__`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__` and `__param_*` defaults, relabeling,
//! `__meta_*` removal, `instance` defaulting to the address, and the scrape URL.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use strata_config::{Duration, ScrapeConfig};

use crate::relabel::{self, LabelSet};

/// A group of targets from one discovery source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (e.g. `file.json:0`).
    pub source: String,
    /// One label set per target (each holds at least `__address__`).
    pub targets: Vec<LabelSet>,
    /// Labels common to every target of the group.
    pub labels: LabelSet,
}

/// A target after relabeling.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Every label kept after relabeling, `__`-prefixed ones included.
    pub labels: LabelSet,
    /// The labels before relabeling (`discoveredLabels` in the targets API).
    pub discovered: LabelSet,
    /// The scrape URL.
    pub url: String,
    /// The scrape interval and timeout (from `__scrape_interval__` / `__scrape_timeout__`).
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
}

impl Target {
    /// The labels attached to every scraped series: those not starting with `__`.
    pub fn public_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels
            .iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Identity of a target within its job: its labels and its URL. A target whose hash
    /// survives a discovery update or reload keeps its scrape loop.
    pub fn hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.labels.hash(&mut h);
        self.url.hash(&mut h);
        h.finish()
    }
}

/// What relabeling made of one discovered target.
#[derive(Debug, PartialEq)]
pub enum Populated {
    /// A target to scrape.
    Active(Target),
    /// Dropped by `relabel_configs` (listed as a dropped target).
    Dropped(LabelSet),
}

/// Prometheus's `PopulateLabels` for one target of a group.
pub fn populate(
    group: &TargetGroup,
    target: &LabelSet,
    cfg: &ScrapeConfig,
) -> Result<Populated, String> {
    let mut lb: LabelSet = group.labels.clone();
    for (k, v) in target {
        lb.insert(k.clone(), v.clone());
    }
    let defaults = [
        ("job", cfg.job_name.clone()),
        ("__scrape_interval__", cfg.scrape_interval.to_string()),
        ("__scrape_timeout__", cfg.scrape_timeout.to_string()),
        ("__metrics_path__", cfg.metrics_path.clone()),
        ("__scheme__", cfg.scheme.clone()),
    ];
    for (k, v) in defaults {
        if lb.get(k).is_none_or(|x| x.is_empty()) {
            lb.insert(k.to_owned(), v);
        }
    }
    for (k, v) in &cfg.params {
        let name = format!("__param_{k}");
        if let Some(first) = v.first()
            && lb.get(&name).is_none_or(|x| x.is_empty())
        {
            lb.insert(name, first.clone());
        }
    }
    lb.retain(|_, v| !v.is_empty());
    let discovered = lb.clone();
    if !relabel::process(&mut lb, &cfg.relabel_configs) {
        return Ok(Populated::Dropped(discovered));
    }
    let addr = match lb.get("__address__") {
        Some(a) if !a.is_empty() => a.clone(),
        _ => return Err("no address".into()),
    };
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let interval = parse_dur(&lb, "__scrape_interval__", "scrape interval")?;
    let timeout = parse_dur(&lb, "__scrape_timeout__", "scrape timeout")?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            lb["__scrape_timeout__"], lb["__scrape_interval__"]
        ));
    }
    lb.retain(|k, _| !k.starts_with("__meta_"));
    if lb.get("instance").is_none_or(|v| v.is_empty()) {
        lb.insert("instance".into(), addr.clone());
    }
    let url = scrape_url(&lb, &addr, cfg);
    Ok(Populated::Active(Target {
        labels: lb,
        discovered,
        url,
        interval: interval.as_std(),
        timeout: timeout.as_std(),
    }))
}

fn parse_dur(lb: &LabelSet, name: &str, what: &str) -> Result<Duration, String> {
    let v = lb.get(name).map(String::as_str).unwrap_or("");
    Duration::parse(v).map_err(|e| format!("error parsing {what}: {e}"))
}

fn scrape_url(lb: &LabelSet, addr: &str, cfg: &ScrapeConfig) -> String {
    let scheme = lb.get("__scheme__").map(String::as_str).unwrap_or("http");
    let path = lb
        .get("__metrics_path__")
        .map(String::as_str)
        .unwrap_or("/metrics");
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for (k, v) in lb {
        // As Prometheus's `Target.URL`: the label replaces the first value only (it was
        // set from it), a parameter of several values keeps the others.
        if let Some(p) = k.strip_prefix("__param_") {
            match params.get_mut(p).and_then(|vs| vs.first_mut()) {
                Some(first) => *first = v.clone(),
                None => {
                    params.insert(p.to_owned(), vec![v.clone()]);
                }
            }
        }
    }
    let mut url = format!("{scheme}://{addr}{path}");
    if !params.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, vs) in &params {
            for v in vs {
                q.append_pair(k, v);
            }
        }
        url.push(if path.contains('?') { '&' } else { '?' });
        url.push_str(&q.finish());
    }
    url
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> ScrapeConfig {
        let text = format!("scrape_configs:\n- job_name: j\n{yaml}");
        let c = strata_config::Config::from_yaml_str(&text, "test.yml").expect("valid config");
        c.scrape_configs[0].clone()
    }

    fn group(addr: &str, extra: &[(&str, &str)]) -> (TargetGroup, LabelSet) {
        let mut t = LabelSet::new();
        t.insert("__address__".into(), addr.into());
        for (k, v) in extra {
            t.insert(k.to_string(), v.to_string());
        }
        let g = TargetGroup {
            source: "0".into(),
            targets: vec![t.clone()],
            labels: [("env".to_string(), "prod".to_string())].into(),
        };
        (g, t)
    }

    #[test]
    fn defaults_instance_and_url() {
        let cfg = job("  params:\n    module: [http_2xx]\n");
        let (g, t) = group("host:9100", &[("__meta_x", "y")]);
        let Populated::Active(tg) = populate(&g, &t, &cfg).unwrap() else {
            panic!("active expected")
        };
        let public: Vec<_> = tg.public_labels().collect();
        assert_eq!(
            public,
            vec![("env", "prod"), ("instance", "host:9100"), ("job", "j")]
        );
        assert_eq!(tg.url, "http://host:9100/metrics?module=http_2xx");
        assert_eq!(tg.discovered.get("__meta_x").map(String::as_str), Some("y"));
        assert!(!tg.labels.contains_key("__meta_x"));
    }

    #[test]
    fn a_parameter_of_several_values_keeps_them_all() {
        // `/federate` jobs list several `match[]`; relabeling `__param_` changes the first.
        let cfg = job("  params:\n    'match[]': ['{job=\"a\"}', '{job=\"b\"}']\n");
        let (g, t) = group("host:9090", &[]);
        let Populated::Active(tg) = populate(&g, &t, &cfg).unwrap() else {
            panic!("active expected")
        };
        assert_eq!(
            tg.url,
            "http://host:9090/metrics?match%5B%5D=%7Bjob%3D%22a%22%7D&match%5B%5D=%7Bjob%3D%22b%22%7D"
        );
        let cfg = job(
            "  params:\n    'match[]': ['{job=\"a\"}', '{job=\"b\"}']\n  relabel_configs:\n  - target_label: __param_match[]\n    replacement: up\n",
        );
        let Populated::Active(tg) = populate(&g, &t, &cfg).unwrap() else {
            panic!("active expected")
        };
        assert_eq!(
            tg.url,
            "http://host:9090/metrics?match%5B%5D=up&match%5B%5D=%7Bjob%3D%22b%22%7D"
        );
    }

    #[test]
    fn relabel_drops_and_rewrites() {
        let cfg = job(
            "  relabel_configs:\n  - source_labels: [__meta_keep]\n    regex: 'yes'\n    action: keep\n  - source_labels: [__address__]\n    target_label: __param_target\n  - target_label: __address__\n    replacement: prober:9115\n  - source_labels: [__param_target]\n    target_label: instance\n",
        );
        let (g, t) = group("example.com", &[("__meta_keep", "no")]);
        assert!(matches!(populate(&g, &t, &cfg), Ok(Populated::Dropped(_))));
        let (g, t) = group("example.com", &[("__meta_keep", "yes")]);
        let Populated::Active(tg) = populate(&g, &t, &cfg).unwrap() else {
            panic!("active expected")
        };
        assert_eq!(tg.url, "http://prober:9115/metrics?target=example.com");
        assert_eq!(tg.labels["instance"], "example.com");
    }

    #[test]
    fn bad_targets_are_errors() {
        let cfg = job("  scrape_interval: 10s\n  scrape_timeout: 5s\n");
        let (g, t) = group("host/path", &[]);
        assert!(
            populate(&g, &t, &cfg)
                .unwrap_err()
                .contains("not a valid hostname")
        );
        let (g, t) = group("h:1", &[("__scrape_timeout__", "20s")]);
        assert!(populate(&g, &t, &cfg).unwrap_err().contains("greater than"));
    }
}
