//! What the config tests share: a TOML document in a known file, and reading an error's
//! location back.

use std::path::Path;

use crate::config::{Config, ConfigError};

pub(super) const FILE: &str = "/etc/switchboard.toml";

pub(super) fn toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Some(Path::new(FILE)))
}

pub(super) fn toml_err(text: &str) -> ConfigError {
    toml(text).expect_err("expected a ConfigError")
}

/// Asserts the error's file, server and key, and returns it for further checks.
pub(super) fn assert_err(err: &ConfigError, server: Option<&str>, key: Option<&str>) {
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)), "{err}");
    assert_eq!(err.server.as_deref(), server, "{err}");
    assert_eq!(err.key.as_deref(), key, "{err}");
    assert!(!err.fix.is_empty(), "no fix: {err}");
}

/// The problem without its ` (line L, column C)` suffix.
pub(super) fn problem_of(err: &ConfigError) -> &str {
    err.problem
        .rfind(" (line ")
        .map_or(err.problem.as_str(), |i| &err.problem[..i])
}

/// The (line, column) in the problem's suffix.
pub(super) fn pos_of(err: &ConfigError) -> Option<(usize, usize)> {
    let rest = &err.problem[err.problem.rfind(" (line ")? + 7..];
    let (line, rest) = rest.split_once(", column ")?;
    let column = rest.strip_suffix(')')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

pub(super) fn line_of(err: &ConfigError) -> Option<usize> {
    pos_of(err).map(|(l, _)| l)
}
