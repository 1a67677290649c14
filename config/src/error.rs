//! [`ConfigError`]: every failure to read, parse or validate a configuration,
//! carrying the file (origin), the best known line/column and the field path.

use std::fmt;
use std::path::PathBuf;

use crate::discovery::UNSUPPORTED_SD_KEYS;

/// A 1-based line and column in the configuration text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax error, unknown key, wrong type, bad value (duration,
    /// regex, URL, ...) or a rule Prometheus checks while unmarshalling.
    /// `message` starts with the field path (`scrape_configs[0]: ...`).
    #[error("{origin}:{position}: {message}")]
    Parse {
        /// File name (or other origin) of the text.
        origin: String,
        /// Where the error was detected.
        position: Position,
        /// What is wrong, prefixed with the field path when known.
        message: String,
    },
    /// A rule checked after parsing (duplicate job names, timeout greater
    /// than interval, ...). `position` is the best known location.
    #[error("{origin}:{}{path}: {message}", position.map(|p| format!("{p}: ")).unwrap_or_else(|| " ".to_owned()))]
    Invalid {
        /// File name (or other origin) of the text.
        origin: String,
        /// Best known location, if any.
        position: Option<Position>,
        /// Field path, e.g. `scrape_configs[2] (job "node")`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration could not be serialized.
    #[error("serializing configuration: {0}")]
    Serialize(String),
}

impl ConfigError {
    /// The line of the error, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Parse { position, .. } => Some(position.line),
            ConfigError::Invalid { position, .. } => position.map(|p| p.line),
            _ => None,
        }
    }

    /// Builds a [`ConfigError::Parse`] from a serde_yaml_ng error.
    pub(crate) fn from_yaml(origin: &str, err: &serde_yaml_ng::Error) -> Self {
        let text = err.to_string();
        let (position, message) = match err.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let msg = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
                (
                    Position {
                        line: loc.line(),
                        column: loc.column(),
                    },
                    msg,
                )
            }
            None => (Position { line: 1, column: 1 }, text),
        };
        ConfigError::Parse {
            origin: origin.to_owned(),
            position,
            message: explain_unsupported(message),
        }
    }
}

/// Turns `unknown field `consul_sd_configs`` into a clear "not supported".
fn explain_unsupported(message: String) -> String {
    let Some(start) = message.find("unknown field `") else {
        return message;
    };
    let rest = &message[start + "unknown field `".len()..];
    let Some(end) = rest.find('`') else {
        return message;
    };
    let field = &rest[..end];
    if UNSUPPORTED_SD_KEYS.contains(&field) {
        format!(
            "{}{field} is a Prometheus service discovery mechanism that Strata does not support \
             (supported: static_configs, file_sd_configs, http_sd_configs, kubernetes_sd_configs)",
            &message[..start]
        )
    } else if matches!(field, "sigv4" | "azuread" | "google_iam") {
        format!(
            "{}{field} authentication is a Prometheus feature that Strata does not support",
            &message[..start]
        )
    } else {
        message
    }
}
