//! The errors about what a user wrote: a config that cannot be used ([`ConfigError`]) and a
//! header or env template that cannot be rendered ([`TemplateError`]).
//!
//! They are defined below the `config` layer, which produces them, so that [`super::Error`]
//! can hold them without `error` depending on `config`. Their texts are what people read when
//! they fix a file: keep them stable (tests assert them).

use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with where and what to do about it.
///
/// Messages never contain header or env values, nor variable values: those hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// The server the problem is in, if it is in one.
    pub server: Option<String>,
    /// The offending key, e.g. `url` or `connect_timeout`.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl ConfigError {
    /// An error with no location yet; add it with the `with_*` / [`at`](Self::at) helpers.
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            server: None,
            key: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn with_file(mut self, file: Option<&Path>) -> Self {
        self.file = file.map(|f| f.to_path_buf());
        self
    }

    pub fn with_server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds the 1-based line and column to the problem, as ` (line L, column C)`.
    ///
    /// The position is part of the text rather than a field of its own: a bigger
    /// `ConfigError` would make every `Result<_, crate::Error>` trip clippy's
    /// `result_large_err`.
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.problem
            .push_str(&format!(" (line {line}, column {column})"));
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(&file.display().to_string());
            out.push_str(": ");
        }
        match (&self.server, &self.key) {
            (Some(s), Some(k)) => out.push_str(&format!("server '{s}', key '{k}': ")),
            (Some(s), None) => out.push_str(&format!("server '{s}': ")),
            (None, Some(k)) => out.push_str(&format!("key '{k}': ")),
            (None, None) => {}
        }
        out.push_str(&self.problem);
        if !self.fix.is_empty() {
            // The fix is a new sentence.
            out.push_str(". ");
            let mut chars = self.fix.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
        out
    }
}

/// A header or env template that cannot be rendered (see `config::template`). Errors name
/// fields and variables, never values: those are secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "{field} uses the unknown variable '{variable}'; define it in [variables] or pass it with the connection (write $$ for a literal '$')"
    )]
    UnknownVariable { field: String, variable: String },
    #[error("{field} uses the environment variable '{variable}', which is not set")]
    UnsetEnv { field: String, variable: String },
    #[error("{field} has a malformed placeholder at byte {position}; write $$ for a literal '$'")]
    Syntax { field: String, position: usize },
    #[error(
        "{field} contains a line break after substitution; header and env values must be one line"
    )]
    LineBreak { field: String },
    /// A header name that is not an HTTP token (RFC 9110: letters, digits and ``!#$%&'*+-.^_`|~``).
    #[error(
        "header name {header:?} is not a valid HTTP header name; use only letters, digits and !#$%&'*+-.^_`|~"
    )]
    InvalidHeaderName { header: String },
}
