//! The top-level [`Config`]: loading (file or string), the post-parse
//! validation and defaulting Prometheus performs in `Config.UnmarshalYAML`
//! (global inheritance, duplicate names, rule file patterns), the embedded
//! default configuration and YAML serialization for `/api/v1/status/config`.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::alerting::AlertingConfig;
use crate::error::{ConfigError, Position};
use crate::extra::{OtlpConfig, RuntimeConfig, StorageConfig, TracingConfig};
use crate::global::GlobalConfig;
use crate::http_client::join_dir;
use crate::labels::NameValidationScheme;
use crate::locate;
use crate::remote::{RemoteReadConfig, RemoteWriteConfig};
use crate::scrape::{ScrapeConfig, ScrapeSpec};

/// Strata's built-in configuration, used when no file is given: scrape the
/// server's own `/metrics` every 15s. `{port}` is replaced by the listen port.
pub const DEFAULT_CONFIG: &str = r#"# Strata embedded default configuration.
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  # Strata scrapes its own /metrics endpoint.
  - job_name: prometheus
    scrape_interval: 15s
    static_configs:
      - targets: ["localhost:{port}"]
"#;

/// Origin reported in errors about the embedded default.
const EMBEDDED_ORIGIN: &str = "<embedded default config>";

/// A loaded, validated `prometheus.yml` with every default applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// `global`.
    pub global: GlobalConfig,
    /// `runtime` (accepted, not acted upon).
    #[serde(skip_serializing_if = "RuntimeConfig::is_empty")]
    pub runtime: RuntimeConfig,
    /// `alerting`.
    #[serde(skip_serializing_if = "AlertingConfig::is_empty")]
    pub alerting: AlertingConfig,
    /// `rule_files`: paths or globs (`*` only in the last element).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    /// `scrape_config_files`: globs of files holding more `scrape_configs`
    /// (kept as written; not read by this crate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_config_files: Vec<String>,
    /// `scrape_configs`, resolved against `global`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `storage`.
    #[serde(skip_serializing_if = "StorageConfig::is_empty")]
    pub storage: StorageConfig,
    /// `tracing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    /// `remote_write`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// `remote_read`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
    /// `otlp`.
    pub otlp: OtlpConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Option<GlobalConfig>,
    #[serde(default)]
    runtime: Option<RuntimeConfig>,
    #[serde(default)]
    alerting: Option<AlertingConfig>,
    #[serde(default)]
    rule_files: Option<Vec<String>>,
    #[serde(default)]
    scrape_config_files: Option<Vec<String>>,
    #[serde(default)]
    scrape_configs: Option<Vec<Option<ScrapeSpec>>>,
    #[serde(default)]
    storage: Option<StorageConfig>,
    #[serde(default)]
    tracing: Option<TracingConfig>,
    #[serde(default)]
    remote_write: Option<Vec<Option<RemoteWriteConfig>>>,
    #[serde(default)]
    remote_read: Option<Vec<Option<RemoteReadConfig>>>,
    #[serde(default)]
    otlp: Option<OtlpConfig>,
}

/// Prometheus's `patRulePath`.
static RULE_PATH: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[^*]*(\*[^/]*)?$").ok());

/// Builds post-parse errors with the best position found in the text.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn err(&self, position: Option<Position>, path: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            position,
            path,
            message,
        }
    }

    /// Position of the first line containing `needle`.
    fn find_text(&self, needle: &str) -> Option<Position> {
        self.text.lines().enumerate().find_map(|(i, l)| {
            l.find(needle).map(|c| Position {
                line: i + 1,
                column: c + 1,
            })
        })
    }
}

impl Config {
    /// Reads and parses `path`; relative file paths inside the config are
    /// made relative to the file's directory, as Prometheus does.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::from_yaml_str(&text, &path.display().to_string())?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            cfg.set_directory(dir);
        }
        Ok(cfg)
    }

    /// Parses configuration text. `origin` (usually the file name) prefixes
    /// every error message.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: Option<RawConfig> =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::from_yaml(origin, &e))?;
        let raw = match raw {
            Some(r) => r,
            None => {
                serde_yaml_ng::from_str("{}").map_err(|e| ConfigError::from_yaml(origin, &e))?
            }
        };
        Config::from_raw(raw, &Ctx { text, origin })
    }

    /// The embedded default configuration ([`DEFAULT_CONFIG`]) for a server
    /// listening on `listen_port`.
    pub fn default_embedded(listen_port: u16) -> Config {
        let text = DEFAULT_CONFIG.replace("{port}", &listen_port.to_string());
        Config::from_yaml_str(&text, EMBEDDED_ORIGIN)
            .unwrap_or_else(|e| unreachable!("the embedded default config must parse: {e}"))
    }

    /// The resolved configuration as YAML, secrets shown as `<secret>`
    /// (what `/api/v1/status/config` returns). The output parses back into
    /// an equal configuration, secrets aside.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml_ng::to_string(self).map_err(|e| ConfigError::Serialize(e.to_string()))
    }

    /// The scrape config of job `job_name`.
    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job_name)
    }

    /// Joins relative file paths with `dir` (rule files, SD files, TLS and
    /// credential files, log files).
    pub fn set_directory(&mut self, dir: &Path) {
        join_dir(dir, &mut self.global.query_log_file);
        join_dir(dir, &mut self.global.scrape_failure_log_file);
        self.rule_files.iter_mut().for_each(|f| join_dir(dir, f));
        self.scrape_config_files
            .iter_mut()
            .for_each(|f| join_dir(dir, f));
        for s in &mut self.scrape_configs {
            s.set_directory(dir);
        }
        for a in &mut self.alerting.alertmanagers {
            a.service_discovery.set_directory(dir);
            a.http_client.set_directory(dir);
        }
        for r in &mut self.remote_write {
            r.http_client.set_directory(dir);
        }
        for r in &mut self.remote_read {
            r.http_client.set_directory(dir);
        }
    }

    fn from_raw(raw: RawConfig, ctx: &Ctx<'_>) -> Result<Config, ConfigError> {
        let mut global = raw.global.unwrap_or_default();
        global.expand_external_labels();
        let rule_files = raw.rule_files.unwrap_or_default();
        let scrape_config_files = raw.scrape_config_files.unwrap_or_default();
        for (what, list, key) in [
            ("rule file", &rule_files, "rule_files"),
            (
                "scrape config file",
                &scrape_config_files,
                "scrape_config_files",
            ),
        ] {
            for (i, f) in list.iter().enumerate() {
                if !RULE_PATH.as_ref().is_some_and(|r| r.is_match(f)) {
                    return Err(ctx.err(
                        ctx.find_text(f),
                        format!("{key}[{i}]"),
                        format!("invalid {what} path {f:?}"),
                    ));
                }
            }
        }

        let mut scrape_configs = Vec::new();
        for (i, spec) in raw
            .scrape_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let path = format!("scrape_configs[{i}]");
            let Some(spec) = spec else {
                return Err(ctx.err(None, path, "empty or null scrape config section".into()));
            };
            let job = spec.config.job_name.clone();
            let occurrence = scrape_configs
                .iter()
                .filter(|s: &&ScrapeConfig| s.job_name == job)
                .count();
            let job_pos = locate::find_nth(ctx.text, "job_name", Some(&job), occurrence);
            if occurrence > 0 {
                return Err(ctx.err(
                    job_pos,
                    format!("{path}.job_name"),
                    format!("found multiple scrape configs with job name {job:?}"),
                ));
            }
            let resolved = spec.resolve(&global).map_err(|e| {
                ctx.err(
                    job_pos.map(|p| locate::find_in_job(ctx.text, p, e.field)),
                    format!("{path}.{} (job {job:?})", e.field),
                    e.message,
                )
            })?;
            scrape_configs.push(resolved);
        }

        let alerting = raw.alerting.unwrap_or_default();
        let remote_write = collect(raw.remote_write, "remote_write", "remote write", ctx)?;
        let remote_read = collect(raw.remote_read, "remote_read", "remote read", ctx)?;

        if global.metric_name_validation_scheme == NameValidationScheme::Legacy {
            let scheme = NameValidationScheme::Legacy;
            let lists = alerting
                .alert_relabel_configs
                .iter()
                .map(|r| ("alerting.alert_relabel_configs", r))
                .chain(alerting.alertmanagers.iter().flat_map(|a| {
                    a.relabel_configs
                        .iter()
                        .chain(&a.alert_relabel_configs)
                        .map(|r| ("alerting.alertmanagers", r))
                }))
                .chain(remote_write.iter().flat_map(|w| {
                    w.write_relabel_configs
                        .iter()
                        .map(|r| ("remote_write.write_relabel_configs", r))
                }));
            for (path, rc) in lists {
                rc.validate(scheme)
                    .map_err(|m| ctx.err(None, path.to_owned(), m))?;
            }
        }

        Ok(Config {
            global,
            runtime: raw.runtime.unwrap_or_default(),
            alerting,
            rule_files,
            scrape_config_files,
            scrape_configs,
            storage: raw.storage.unwrap_or_default(),
            tracing: raw.tracing,
            remote_write,
            remote_read,
            otlp: raw.otlp.unwrap_or_default(),
        })
    }
}

/// Remote endpoints that have a `name`, checked for nulls and duplicates.
trait Named {
    fn name(&self) -> &str;
}

impl Named for RemoteWriteConfig {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for RemoteReadConfig {
    fn name(&self) -> &str {
        &self.name
    }
}

fn collect<T: Named>(
    items: Option<Vec<Option<T>>>,
    key: &str,
    what: &str,
    ctx: &Ctx<'_>,
) -> Result<Vec<T>, ConfigError> {
    let mut out: Vec<T> = Vec::new();
    for (i, item) in items.unwrap_or_default().into_iter().enumerate() {
        let Some(item) = item else {
            return Err(ctx.err(
                locate::find_nth(ctx.text, key, None, 0),
                format!("{key}[{i}]"),
                format!("empty or null {what} config section"),
            ));
        };
        let name = item.name();
        let seen = out.iter().filter(|o| o.name() == name).count();
        if !name.is_empty() && seen > 0 {
            return Err(ctx.err(
                locate::find_nth(ctx.text, "name", Some(name), seen),
                format!("{key}[{i}].name"),
                format!("found multiple {what} configs with job name {name:?}"),
            ));
        }
        out.push(item);
    }
    Ok(out)
}
