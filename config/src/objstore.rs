//! The object storage configuration file (`--objstore.config-file`), in the format of
//! Thanos's `objstore` library, so a bucket file written for Thanos, Cortex or Mimir
//! tooling loads unchanged:
//!
//! ```yaml
//! type: S3            # or FILESYSTEM (case does not matter, as in Thanos)
//! config:
//!   bucket: metrics
//!   endpoint: s3.eu-west-1.amazonaws.com   # host[:port], no scheme
//!   region: eu-west-1
//!   access_key: ...
//!   secret_key: ...
//!   insecure: false                        # true: plain HTTP
//! prefix: cluster-a                        # optional: objects under this path
//! ```
//!
//! Other providers (GCS, AZURE, SWIFT, COS, ...) are refused with a clear error. Thanos's S3
//! keys that Strata accepts but does not act on (`sse_config`, `http_config`, `part_size`,
//! ...) are listed in [`ObjstoreConfig::unacted`] so the binary can warn about them; any
//! other key is an error at its line, as Thanos's strict YAML decoding makes it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ConfigError, Position};
use crate::locate;
use crate::secret::Secret;

/// A parsed object storage configuration.
#[derive(Debug, Clone)]
pub struct ObjstoreConfig {
    /// The bucket.
    pub bucket: BucketConfig,
    /// Path prefix of every object (empty: the bucket's root).
    pub prefix: String,
    /// Keys given that Strata accepts but does not act on.
    pub unacted: Vec<String>,
}

/// Which store, and how to reach it.
#[derive(Debug, Clone)]
pub enum BucketConfig {
    /// An S3-compatible service (AWS, MinIO, Ceph, moto, ...).
    S3(S3Config),
    /// A directory of the local filesystem (tests, single machines, NFS).
    Filesystem {
        /// The directory.
        directory: PathBuf,
    },
}

/// `type: S3`.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// `host[:port]`: the scheme comes from `insecure`.
    pub endpoint: String,
    /// Empty: `us-east-1` (the region S3-compatible servers ignore).
    pub region: String,
    /// Empty (with `secret_key`): credentials from the environment (`AWS_*`, instance
    /// metadata), as Thanos's credential chain.
    pub access_key: String,
    pub secret_key: Secret,
    pub session_token: Secret,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Virtual-hosted-style addressing (`bucket_lookup_type: virtual-hosted`); path
    /// style otherwise (`auto` and `path`), which every S3-compatible server accepts.
    pub virtual_hosted: bool,
    /// Retries of a failed request (Thanos's `max_retries`; 0: the client's default).
    pub max_retries: usize,
}

/// Thanos's S3 keys Strata accepts without acting on them.
const S3_UNACTED: &[&str] = &[
    "aws_sdk_auth",
    "signature_version2",
    "put_user_metadata",
    "http_config",
    "trace",
    "list_objects_version",
    "send_content_md5",
    "disable_multipart",
    "part_size",
    "sse_config",
    "sts_endpoint",
];

/// The providers of Thanos's `objstore` Strata does not implement.
const OTHER_PROVIDERS: &[&str] = &[
    "GCS",
    "AZURE",
    "SWIFT",
    "COS",
    "ALIYUNOSS",
    "BOS",
    "OCI",
    "OBS",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<C> {
    /// Checked before (through [`Kind`]).
    #[serde(rename = "type")]
    _kind: String,
    #[serde(default = "none")]
    config: Option<C>,
    #[serde(default)]
    prefix: String,
}

fn none<C>() -> Option<C> {
    None
}

/// Only `type` (the rest is decoded by the provider's own struct).
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    session_token: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    bucket_lookup_type: Option<String>,
    #[serde(default)]
    max_retries: usize,
    #[serde(default)]
    aws_sdk_auth: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    signature_version2: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    put_user_metadata: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    http_config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    trace: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    list_objects_version: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    send_content_md5: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    disable_multipart: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    part_size: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    sse_config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    sts_endpoint: Option<serde_yaml_ng::Value>,
}

impl RawS3 {
    fn given_unacted(&self) -> Vec<&'static str> {
        let set = [
            self.aws_sdk_auth.is_some(),
            self.signature_version2.is_some(),
            self.put_user_metadata.is_some(),
            self.http_config.is_some(),
            self.trace.is_some(),
            self.list_objects_version.is_some(),
            self.send_content_md5.is_some(),
            self.disable_multipart.is_some(),
            self.part_size.is_some(),
            self.sse_config.is_some(),
            self.sts_endpoint.is_some(),
        ];
        S3_UNACTED
            .iter()
            .zip(set)
            .filter(|(_, given)| *given)
            .map(|(k, _)| *k)
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilesystem {
    #[serde(default)]
    directory: String,
}

impl ObjstoreConfig {
    /// Reads and parses `path`; a relative `directory` of a FILESYSTEM bucket is taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<ObjstoreConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = ObjstoreConfig::from_yaml_str(&text, &path.display().to_string())?;
        if let BucketConfig::Filesystem { directory } = &mut c.bucket
            && directory.is_relative()
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            *directory = dir.join(&*directory);
        }
        Ok(c)
    }

    /// Parses configuration text; `origin` (the file name) prefixes errors.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<ObjstoreConfig, ConfigError> {
        let yaml = |e: serde_yaml_ng::Error| ConfigError::from_yaml(origin, &e);
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            position: locate::find_nth(text, key, None, 0),
            path: key.to_owned(),
            message,
        };
        let kind: Option<Kind> = serde_yaml_ng::from_str(text).map_err(yaml)?;
        let kind = kind.and_then(|k| k.kind).unwrap_or_default();
        match kind.to_ascii_uppercase().as_str() {
            "S3" => {
                let raw: Raw<RawS3> = serde_yaml_ng::from_str(text).map_err(yaml)?;
                let s3 = raw
                    .config
                    .ok_or_else(|| invalid("config", "an S3 bucket needs a config".into()))?;
                let unacted = s3
                    .given_unacted()
                    .into_iter()
                    .map(|k| format!("config.{k}"))
                    .collect();
                if s3.bucket.is_empty() {
                    return Err(invalid("bucket", "no S3 bucket given".into()));
                }
                if s3.endpoint.is_empty() {
                    return Err(invalid("endpoint", "no S3 endpoint given".into()));
                }
                if s3.endpoint.contains("://") {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "{:?} has a scheme: give host[:port] and set `insecure: true` for plain HTTP",
                            s3.endpoint
                        ),
                    ));
                }
                if s3.access_key.is_empty() != s3.secret_key.is_empty() {
                    return Err(invalid(
                        if s3.access_key.is_empty() {
                            "secret_key"
                        } else {
                            "access_key"
                        },
                        "access_key and secret_key must be given together".into(),
                    ));
                }
                let virtual_hosted = match s3.bucket_lookup_type.as_deref() {
                    None | Some("auto") | Some("path") => false,
                    Some("virtual-hosted") => true,
                    Some(other) => {
                        return Err(invalid(
                            "bucket_lookup_type",
                            format!("{other:?}: must be auto, path or virtual-hosted"),
                        ));
                    }
                };
                Ok(ObjstoreConfig {
                    bucket: BucketConfig::S3(S3Config {
                        bucket: s3.bucket,
                        endpoint: s3.endpoint,
                        region: s3.region,
                        access_key: s3.access_key,
                        secret_key: Secret::new(s3.secret_key),
                        session_token: Secret::new(s3.session_token),
                        insecure: s3.insecure,
                        virtual_hosted,
                        max_retries: s3.max_retries,
                    }),
                    prefix: clean_prefix(&raw.prefix),
                    unacted,
                })
            }
            "FILESYSTEM" => {
                let raw: Raw<RawFilesystem> = serde_yaml_ng::from_str(text).map_err(yaml)?;
                let directory = raw.config.map(|c| c.directory).unwrap_or_default();
                if directory.is_empty() {
                    return Err(invalid(
                        "directory",
                        "no directory given for the FILESYSTEM bucket".into(),
                    ));
                }
                Ok(ObjstoreConfig {
                    bucket: BucketConfig::Filesystem {
                        directory: PathBuf::from(directory),
                    },
                    prefix: clean_prefix(&raw.prefix),
                    unacted: Vec::new(),
                })
            }
            "" => Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                position: Some(Position { line: 1, column: 1 }),
                path: "type".into(),
                message: "no bucket type given (S3 or FILESYSTEM)".into(),
            }),
            other => {
                let why = if OTHER_PROVIDERS.contains(&other) {
                    format!(
                        "{kind} is a Thanos object storage provider that Strata does not support (supported: S3, FILESYSTEM)"
                    )
                } else {
                    format!("unknown bucket type {kind:?} (supported: S3, FILESYSTEM)")
                };
                Err(invalid("type", why))
            }
        }
    }
}

/// The prefix without leading or trailing slashes.
fn clean_prefix(p: &str) -> String {
    p.trim_matches('/').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn s3_with_thanos_keys() {
        let c = ObjstoreConfig::from_yaml_str(
            "type: s3\nconfig:\n  bucket: metrics\n  endpoint: 127.0.0.1:9000\n  access_key: a\n  secret_key: b\n  insecure: true\n  part_size: 1000\nprefix: /team-a/\n",
            "bucket.yml",
        )
        .unwrap();
        let BucketConfig::S3(s3) = &c.bucket else {
            panic!("not S3")
        };
        assert_eq!(s3.bucket, "metrics");
        assert_eq!(s3.endpoint, "127.0.0.1:9000");
        assert!(s3.insecure && !s3.virtual_hosted);
        assert_eq!(s3.secret_key.expose(), "b");
        assert_eq!(c.prefix, "team-a");
        assert_eq!(c.unacted, vec!["config.part_size".to_owned()]);
    }

    #[test]
    fn filesystem_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.yml");
        std::fs::write(&p, "type: FILESYSTEM\nconfig:\n  directory: bucket\n").unwrap();
        let c = ObjstoreConfig::load(&p).unwrap();
        let BucketConfig::Filesystem { directory } = c.bucket else {
            panic!("not FILESYSTEM")
        };
        assert_eq!(directory, dir.path().join("bucket"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "type: S3\nconfig:\n  bucket: m\n  endpoint: x\n  colour: red\n",
                "bucket.yml:5:",
                "colour",
            ),
            ("type: S3\nconfig:\n  bucket: m\n", "bucket.yml", "endpoint"),
            (
                "type: S3\nconfig:\n  bucket: m\n  endpoint: http://x:9000\n",
                "bucket.yml:4:",
                "scheme",
            ),
            (
                "type: S3\nconfig:\n  bucket: m\n  endpoint: x\n  access_key: a\n",
                "bucket.yml:5:",
                "together",
            ),
            ("type: GCS\nconfig:\n  bucket: m\n", "bucket.yml:1:", "GCS"),
            ("type: FILESYSTEM\nconfig: {}\n", "bucket.yml", "directory"),
            ("config:\n  bucket: m\n", "bucket.yml:1:", "type"),
            ("type: S3\nconfig:\n  bucket: [\n", "bucket.yml:", ""),
        ];
        for (text, at, word) in cases {
            let e = ObjstoreConfig::from_yaml_str(text, "bucket.yml")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(word), "{text:?}: {e}");
        }
    }
}
