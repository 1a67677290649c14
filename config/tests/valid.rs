//! Valid configurations: Prometheus's own `conf.good.yml` (trimmed to the
//! discovery mechanisms Strata supports), a realistic full file, the embedded
//! default, Prometheus's defaults, and `to_yaml` round trips.

use std::path::Path;

use strata_config::{
    ByteSize, Config, DownsampleConfig, Duration, KubernetesRole, NameEscapingScheme,
    NameValidationScheme, RelabelAction, RetentionRule, ScrapeProtocol,
};

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("tests/testdata")
    .join(name)
}

fn parse_file(name: &str) -> Config {
    let path = testdata(name);
    let text = std::fs::read_to_string(&path).expect("read testdata");
    match Config::from_yaml_str(&text, name) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// to_yaml -> parse -> to_yaml is a fixpoint and the configs are equal
/// (secrets aside, which serialize as `<secret>`).
fn assert_round_trip(cfg: &Config) {
    let yaml = cfg.to_yaml().expect("serialize");
    let again = match Config::from_yaml_str(&yaml, "roundtrip.yml") {
        Ok(c) => c,
        Err(e) => panic!("{e}\n---\n{yaml}"),
    };
    assert_eq!(again.to_yaml().expect("serialize"), yaml);
    let mut a = cfg.clone();
    let mut b = again;
    for c in [&mut a, &mut b] {
        for s in &mut c.scrape_configs {
            if let Some(ba) = &mut s.http_client.basic_auth {
                ba.password = Default::default();
            }
            if let Some(au) = &mut s.http_client.authorization {
                au.credentials = Default::default();
            }
            for h in &mut s.service_discovery.http_sd_configs {
                if let Some(au) = &mut h.http_client.authorization {
                    au.credentials = Default::default();
                }
            }
            for k in &mut s.service_discovery.kubernetes_sd_configs {
                if let Some(ba) = &mut k.http_client.basic_auth {
                    ba.password = Default::default();
                }
            }
        }
        for a in &mut c.alerting.alertmanagers {
            if let Some(ba) = &mut a.http_client.basic_auth {
                ba.password = Default::default();
            }
        }
        for r in &mut c.remote_read {
            if let Some(o) = &mut r.http_client.oauth2 {
                o.client_secret = Default::default();
            }
        }
        for w in &mut c.remote_write {
            // The password inside the URL is redacted as xxxxx.
            w.url = strata_config::Url::parse(&w.url.redacted()).expect("url");
        }
    }
    assert_eq!(a, b);
}

#[test]
fn prometheus_conf_good() {
    let c = parse_file("conf.good.yml");
    assert_eq!(c.global.scrape_interval, secs(15));
    assert_eq!(c.global.scrape_timeout, secs(10));
    assert_eq!(c.global.evaluation_interval, secs(30));
    assert_eq!(
        c.global.external_labels.get("monitor").map(String::as_str),
        Some("codelab")
    );
    assert_eq!(c.rule_files, ["first.rules", "my/*.rules"]);
    assert_eq!(c.remote_write.len(), 2);
    assert_eq!(c.remote_write[0].remote_timeout, secs(30));
    assert!(!c.remote_write[0].http_client.enable_http2);
    assert_eq!(
        c.remote_read[1]
            .required_matchers
            .get("job")
            .map(String::as_str),
        Some("special")
    );

    let jobs: Vec<&str> = c
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(
        jobs,
        [
            "prometheus",
            "service-x",
            "service-z",
            "service-kubernetes",
            "service-kubernetes-namespaces",
            "0123service-xxx",
            "badfederation",
            "測試"
        ]
    );

    let p = c.scrape_config("prometheus").expect("job");
    assert!(p.honor_labels);
    assert!(p.honor_timestamps);
    assert_eq!(p.scrape_interval, secs(15));
    assert_eq!(p.scrape_timeout, secs(10));
    assert_eq!(p.metrics_path, "/metrics");
    assert_eq!(p.scheme, "http");
    assert_eq!(
        p.service_discovery.file_sd_configs[0].refresh_interval,
        secs(600)
    );
    assert_eq!(
        p.service_discovery.file_sd_configs[1].refresh_interval,
        secs(300)
    );
    let rc = &p.relabel_configs;
    assert_eq!(rc[0].regex.as_str(), "(.*)some-[regex]");
    assert_eq!(rc[0].replacement, "foo-${1}");
    assert_eq!(rc[1].regex.as_str(), "(.*)");
    assert_eq!(rc[1].separator, ";");
    assert_eq!(rc[1].replacement, "$1");
    assert_eq!(rc[1].action, RelabelAction::Replace);
    assert_eq!(
        rc[3].regex.as_str(),
        "",
        "explicit null regex is the empty regex"
    );
    let auth = p
        .http_client
        .authorization
        .as_ref()
        .expect("bearer_token_file");
    assert_eq!(auth.kind, "Bearer");
    assert_eq!(auth.credentials_file, "valid_token_file");

    let x = c.scrape_config("service-x").expect("job");
    assert_eq!((x.scrape_interval, x.scrape_timeout), (secs(50), secs(5)));
    assert_eq!(x.sample_limit, 1000);
    assert_eq!(
        x.http_client
            .basic_auth
            .as_ref()
            .map(|b| b.password.expose()),
        Some("multiline\nmysecret\ntest")
    );
    assert_eq!(x.relabel_configs[1].action, RelabelAction::HashMod);
    assert_eq!(x.relabel_configs[1].modulus, 8);
    assert!(x.relabel_configs[2].regex.regex().is_match("1"));
    assert!(
        !x.relabel_configs[2].regex.regex().is_match("11"),
        "anchored"
    );

    let z = c.scrape_config("service-z").expect("job");
    assert_eq!(
        z.http_client
            .authorization
            .as_ref()
            .map(|a| a.credentials.expose()),
        Some("mysecret")
    );
    let k = &c.scrape_config("service-kubernetes").expect("job");
    let ksd = &k.service_discovery.kubernetes_sd_configs[0];
    assert_eq!(ksd.role, KubernetesRole::Endpoints);
    assert_eq!(
        ksd.api_server.as_ref().map(|u| u.as_str()),
        Some("https://localhost:1234")
    );
    assert!(
        !c.scrape_config("badfederation")
            .expect("job")
            .honor_timestamps
    );
    assert_eq!(c.alerting.alertmanagers[0].scheme, "https");
    assert_eq!(
        c.alerting.alertmanagers[0].service_discovery.static_configs[0]
            .targets
            .len(),
        3
    );
    assert_round_trip(&c);
}

#[test]
fn realistic_full_config() {
    let c = parse_file("full.yml");
    let g = &c.global;
    assert_eq!(g.rule_query_offset, secs(10));
    assert_eq!(g.body_size_limit, ByteSize(64 << 20));
    assert_eq!(g.scrape_protocols.as_ref().map(Vec::len), Some(2));

    let strata = c.scrape_config("strata").expect("job");
    assert_eq!(strata.scrape_interval, secs(15));
    assert_eq!(
        strata.scrape_timeout,
        secs(15),
        "min(global timeout 20s, interval 15s)"
    );
    assert_eq!(strata.sample_limit, 50_000, "inherited from global");
    assert_eq!(strata.body_size_limit, ByteSize(64 << 20));
    assert_eq!(
        strata.scrape_protocols,
        [
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4
        ]
    );

    let node = c.scrape_config("node").expect("job");
    assert_eq!(node.scrape_timeout, secs(20));
    assert_eq!(node.sample_limit, 10_000);
    assert_eq!(node.body_size_limit, ByteSize(1 << 30));
    assert_eq!(node.params["collect[]"], ["cpu", "meminfo"]);
    assert!(
        node.always_scrape_classic_histograms,
        "scrape_classic_histograms alias"
    );
    assert_eq!(
        node.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusText0_0_4)
    );
    assert!(!node.http_client.follow_redirects);
    assert!(!node.http_client.enable_http2);
    assert!(node.http_client.tls_config.insecure_skip_verify);
    assert_eq!(
        node.http_client.proxy.proxy_url.as_ref().map(|u| u.host()),
        Some("proxy.internal")
    );
    let hsd = &node.service_discovery.http_sd_configs[0];
    assert_eq!(hsd.refresh_interval, secs(120));
    assert_eq!(
        hsd.http_client
            .authorization
            .as_ref()
            .map(|a| a.kind.as_str()),
        Some("Token")
    );
    assert_eq!(
        node.metric_relabel_configs[1].action,
        RelabelAction::KeepEqual
    );

    let pods = c.scrape_config("kubernetes-pods").expect("job");
    let k = &pods.service_discovery.kubernetes_sd_configs[0];
    assert_eq!(k.role, KubernetesRole::Pod);
    assert!(k.namespaces.own_namespace);
    assert_eq!(k.selectors[0].label, "app=web");
    assert!(k.attach_metadata.node);

    let am = &c.alerting.alertmanagers[0];
    assert_eq!((am.timeout, am.path_prefix.as_str()), (secs(5), "/am"));
    assert_eq!(am.relabel_configs[0].regex.as_str(), r"am-(\d+):.*");

    let rw = &c.remote_write[0];
    assert_eq!(rw.queue_config.capacity, 20_000);
    assert_eq!(rw.queue_config.max_shards, 10);
    assert_eq!(
        rw.queue_config.min_shards, 1,
        "unset queue fields keep defaults"
    );
    assert_eq!(rw.queue_config.max_backoff, secs(10));
    assert_eq!(rw.metadata_config.send_interval, secs(120));
    assert!(rw.metadata_config.send);
    assert_eq!(
        rw.url.as_str(),
        "https://user:pa55@remote.example.com/api/v1/write"
    );

    let rr = &c.remote_read[0];
    assert!(rr.filter_external_labels);
    assert_eq!(rr.remote_timeout, secs(60));
    assert_eq!(
        rr.http_client
            .oauth2
            .as_ref()
            .map(|o| o.client_secret.expose()),
        Some("topsecret")
    );

    let tsdb = c.storage.tsdb.as_ref().expect("tsdb");
    assert_eq!(tsdb.out_of_order_time_window, secs(1800));
    assert_eq!(
        c.storage.exemplars.as_ref().map(|e| e.max_exemplars),
        Some(200_000)
    );
    assert_eq!(
        c.tracing.as_ref().map(|t| t.endpoint.as_str()),
        Some("otel-collector:4317")
    );
    assert_eq!(c.otlp.promote_resource_attributes.len(), 2);
    assert_round_trip(&c);
}

#[test]
fn secrets_are_redacted_in_yaml() {
    let yaml = parse_file("full.yml").to_yaml().expect("serialize");
    for secret in ["hunter2", "s3cr3t", "topsecret", "pa55"] {
        assert!(!yaml.contains(secret), "{secret} leaked:\n{yaml}");
    }
    assert!(yaml.contains("password: <secret>"), "{yaml}");
    assert!(
        yaml.contains("https://user:xxxxx@remote.example.com/api/v1/write"),
        "{yaml}"
    );
}

#[test]
fn embedded_default() {
    let c = Config::default_embedded(9091);
    assert_eq!(c.scrape_configs.len(), 1);
    let job = &c.scrape_configs[0];
    assert_eq!(job.job_name, "prometheus");
    assert_eq!(job.scrape_interval, secs(15));
    assert_eq!(job.scrape_timeout, secs(10));
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(
        job.service_discovery.static_configs[0].targets,
        ["localhost:9091"]
    );
    assert!(strata_config::DEFAULT_CONFIG.contains("{port}"));
    assert_round_trip(&c);
}

#[test]
fn prometheus_defaults() {
    for text in ["", "# only a comment\n", "global:\n", "{}"] {
        let c = Config::from_yaml_str(text, "empty.yml").expect("empty config is valid");
        assert_eq!(c, Config::default(), "{text:?}");
        assert_eq!(c.global.scrape_interval, secs(60));
        assert_eq!(c.global.scrape_timeout, secs(10));
        assert_eq!(c.global.evaluation_interval, secs(60));
        assert_eq!(
            c.global.metric_name_validation_scheme,
            NameValidationScheme::Utf8
        );
    }

    let c = Config::from_yaml_str(
        "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: j\n",
        "t.yml",
    )
    .expect("valid");
    assert_eq!(
        c.global.scrape_timeout,
        secs(5),
        "timeout capped at interval"
    );
    let j = &c.scrape_configs[0];
    assert_eq!((j.scrape_interval, j.scrape_timeout), (secs(5), secs(5)));
    assert_eq!(j.metrics_path, "/metrics");
    assert_eq!(j.scheme, "http");
    assert!(j.honor_timestamps && !j.honor_labels && j.enable_compression);
    assert!(j.http_client.follow_redirects && j.http_client.enable_http2);
    assert_eq!(j.scrape_protocols, ScrapeProtocol::DEFAULT);
    assert_eq!(j.metric_name_escaping_scheme, NameEscapingScheme::AllowUtf8);

    let c = Config::from_yaml_str(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 3s\n    scrape_native_histograms: true\n",
        "t.yml",
    )
    .expect("valid");
    let j = &c.scrape_configs[0];
    assert_eq!(j.scrape_timeout, secs(3), "min(global 10s, interval 3s)");
    assert_eq!(j.scrape_protocols, ScrapeProtocol::PROTO_FIRST);

    let c = Config::from_yaml_str(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [am:9093]}]\nremote_read:\n  - url: http://r/read\nscrape_configs:\n  - job_name: j\n    relabel_configs:\n      - {source_labels: [a], target_label: b}\n    file_sd_configs: [{files: [x.json]}]\n    http_sd_configs: [{url: http://sd/}]\n",
        "t.yml",
    )
    .expect("valid");
    let am = &c.alerting.alertmanagers[0];
    assert_eq!((am.scheme.as_str(), am.timeout), ("http", secs(10)));
    assert_eq!(c.remote_read[0].chunked_read_limit, 50_000_000);
    let j = &c.scrape_configs[0];
    assert_eq!(
        j.service_discovery.file_sd_configs[0].refresh_interval,
        secs(300)
    );
    assert_eq!(
        j.service_discovery.http_sd_configs[0].refresh_interval,
        secs(60)
    );
    assert_eq!(j.relabel_configs[0].regex.as_str(), "(.*)");
}

#[test]
fn load_joins_relative_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("prometheus.yml");
    std::fs::write(
        &path,
        "rule_files: [rules/*.yml, /abs/x.yml]\nscrape_configs:\n  - job_name: j\n    file_sd_configs: [{files: [t/*.json]}]\n",
    )
    .expect("write");
    let c = Config::load(&path).expect("valid");
    assert_eq!(
        c.rule_files,
        [
            dir.path()
                .join("rules/*.yml")
                .to_string_lossy()
                .into_owned(),
            "/abs/x.yml".into()
        ]
    );
    assert_eq!(
        c.scrape_configs[0].service_discovery.file_sd_configs[0].files,
        [dir.path().join("t/*.json").to_string_lossy().into_owned()]
    );
}

#[test]
fn external_labels_expand_environment() {
    // The variable is read, not set (set_var is unsafe in edition 2024).
    let var = "STRATA_CONFIG_TEST_REGION";
    let c = Config::from_yaml_str(
        &format!("global:\n  external_labels:\n    region: ${{{var}}}-x\n    cost: $$5\n"),
        "t.yml",
    )
    .expect("valid");
    let region = std::env::var(var).unwrap_or_default();
    assert_eq!(c.global.external_labels["region"], format!("{region}-x"));
    assert_eq!(c.global.external_labels["cost"], "$5");
}

#[test]
fn tsdb_downsample_and_retention_rules() {
    let text = r#"
storage:
  tsdb:
    out_of_order_time_window: 10m
    downsample:
      after: 40h
      retention_5m: 90d
      retention_1h: 1y
    retention_rules:
      - matchers: ['{__name__=~"debug_.*"}', 'up{job="x"}']
        raw: 2d
        retention_5m: 30d
        retention_1h: 400d
      - matchers: [node_cpu_seconds_total, '{"utf8.name", env!="dev"}']
        raw: 7d
      - matchers: ['{job="batch"}']
        retention_1h: 2y
"#;
    let c = Config::from_yaml_str(text, "t.yml").unwrap_or_else(|e| panic!("{e}"));
    let day = |d: u64| secs(d * 86_400);
    let tsdb = c.storage.tsdb.as_ref().expect("tsdb");
    assert_eq!(tsdb.out_of_order_time_window, secs(600));
    assert_eq!(
        tsdb.downsample,
        Some(DownsampleConfig {
            after: secs(40 * 3600),
            retention_5m: Some(day(90)),
            retention_1h: Some(day(365)),
        })
    );
    assert_eq!(
        tsdb.retention_rules,
        [
            RetentionRule {
                matchers: vec![r#"{__name__=~"debug_.*"}"#.into(), r#"up{job="x"}"#.into()],
                raw: Some(day(2)),
                retention_5m: Some(day(30)),
                retention_1h: Some(day(400)),
            },
            RetentionRule {
                matchers: vec![
                    "node_cpu_seconds_total".into(),
                    r#"{"utf8.name", env!="dev"}"#.into()
                ],
                raw: Some(day(7)),
                retention_5m: None,
                retention_1h: None,
            },
            RetentionRule {
                matchers: vec![r#"{job="batch"}"#.into()],
                raw: None,
                retention_5m: None,
                retention_1h: Some(day(730)),
            },
        ]
    );

    // /api/v1/status/config shows the new settings.
    let yaml = c.to_yaml().expect("serialize");
    for want in [
        "    downsample:\n      after: 1d16h\n      retention_5m: 90d\n      retention_1h: 1y\n",
        "    retention_rules:\n    - matchers:\n      - '{__name__=~\"debug_.*\"}'\n      - up{job=\"x\"}\n      raw: 2d\n      retention_5m: 30d\n      retention_1h: 400d\n",
        "    - matchers:\n      - '{job=\"batch\"}'\n      retention_1h: 2y\n",
    ] {
        assert!(yaml.contains(want), "missing {want:?} in\n{yaml}");
    }
    assert_round_trip(&c);
}

#[test]
fn tsdb_downsample_optional_parts() {
    let c = Config::from_yaml_str(
        "storage:\n  tsdb:\n    downsample:\n      after: 2h\n      retention_5m:\n",
        "t.yml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tsdb = c.storage.tsdb.as_ref().expect("tsdb");
    assert_eq!(
        tsdb.downsample,
        Some(DownsampleConfig {
            after: secs(7200),
            retention_5m: None,
            retention_1h: None,
        })
    );
    assert!(tsdb.retention_rules.is_empty());
    let yaml = c.to_yaml().expect("serialize");
    assert!(
        yaml.contains("storage:\n  tsdb:\n    downsample:\n      after: 2h\notlp:"),
        "{yaml}"
    );
    assert!(!yaml.contains("retention_rules"), "{yaml}");
    assert_round_trip(&c);

    // Neither setting: nothing new is serialized.
    let c = Config::from_yaml_str(
        "storage:\n  tsdb:\n    out_of_order_time_window: 5m\n",
        "t.yml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let yaml = c.to_yaml().expect("serialize");
    assert!(
        !yaml.contains("downsample") && !yaml.contains("retention_rules"),
        "{yaml}"
    );
    assert!(!c.storage.is_empty());
}
