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

/// What an error's text must be: all of it, its start or end, a part of it, or anything.
#[derive(Debug, Clone, Copy)]
pub(super) enum Text {
    Is(&'static str),
    Starts(&'static str),
    Ends(&'static str),
    Has(&'static str),
    Any,
}

impl Text {
    /// Asserts that `text` reads so; a failure names `case` (the document being checked).
    pub(super) fn check(self, text: &str, case: &str) {
        let ok = match self {
            Text::Is(t) => text == t,
            Text::Starts(t) => text.starts_with(t),
            Text::Ends(t) => text.ends_with(t),
            Text::Has(t) => text.contains(t),
            Text::Any => true,
        };
        assert!(ok, "{case:?}: {text:?} does not match {self:?}");
    }
}

/// Reads `doc`, which must fail at `server`, `key` and (when given) `line`, with `problem`
/// (without its position) and `fix` (never empty); a failed check names `doc`. Returns the
/// error for further checks.
pub(super) fn toml_err_says(
    doc: &str,
    (server, key, line): (Option<&str>, Option<&str>, Option<usize>),
    problem: Text,
    fix: Text,
) -> ConfigError {
    let err = toml(doc).expect_err(doc);
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)), "{doc:?}: {err}");
    assert_eq!(
        (err.server.as_deref(), err.key.as_deref()),
        (server, key),
        "{doc:?}: {err}"
    );
    assert!(!err.fix.is_empty(), "{doc:?}: no fix: {err}");
    if line.is_some() {
        assert_eq!(line_of(&err), line, "{doc:?}: {err}");
    }
    problem.check(problem_of(&err), doc);
    fix.check(&err.fix, doc);
    err
}
