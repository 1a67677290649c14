//! [`ConfigError`]: why an Alertmanager configuration could not be read, parsed or written.

/// Errors of loading, validating and serializing an Alertmanager configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{origin}: {source}")]
    Io {
        /// The file.
        origin: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid configuration. `message` starts with the field path.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        /// The file (or other origin) the text came from.
        origin: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `field.path: what is wrong`.
        message: String,
    },
    /// The configuration could not be written as YAML.
    #[error("cannot serialize configuration: {0}")]
    Serialize(String),
}

impl ConfigError {
    /// Converts a `serde_yaml_ng` error, keeping its position and dropping its own
    /// ` at line L column C` suffix.
    pub(super) fn from_yaml(origin: &str, e: &serde_yaml_ng::Error) -> ConfigError {
        let msg = e.to_string();
        let (line, column, message) = match e.location() {
            Some(l) => {
                let suffix = format!(" at line {} column {}", l.line(), l.column());
                let msg = msg.strip_suffix(&suffix).unwrap_or(&msg).to_owned();
                (l.line(), l.column(), msg)
            }
            None => (1, 1, msg),
        };
        ConfigError::Invalid {
            origin: origin.to_owned(),
            line,
            column,
            message,
        }
    }
}
