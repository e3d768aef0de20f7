//! error: config problems that name the file, the line where known, and the key path.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config or zone file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Column (1-based, in characters) where known: TOML syntax errors.
    pub column: Option<usize>,
    /// Key path such as `pools.us-east.endpoints[1].weight`; empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError::new(file, "", message)
    }
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one pass, so an operator fixes them all at once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn one(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something valid but worth an operator's attention (`geosteer check` prints these).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Warning {
    pub key: String,
    pub message: String,
    /// A fact about the config, not a problem in it (the failover bound,
    /// the quorum arithmetic): logged at INFO at start-up only, printed as
    /// `note:`. A warning proper is logged at WARN on every load.
    pub note: bool,
}

impl Warning {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            key: key.into(),
            message: message.into(),
            note: false,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.note { "note" } else { "warning" };
        write!(f, "{kind}: {}: {}", self.key, self.message)
    }
}
