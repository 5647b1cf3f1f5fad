//! Where a config error points, and the fix texts every check shares.
//!
//! An error names the file, the server and the key it concerns ([`Ctx::error_at`]); for TOML
//! the key's line and column are looked up in the parsed document (its spans) and added to
//! the problem. Errors are built from typed information only: the parsers' own errors (a TOML
//! syntax error's message and span; serde_json's category, line and column), our own key and
//! type checks (`raw/toml.rs`) and the validate functions. Serde's wording is never rewritten.
//! The one place a serde message could still arrive is [`Ctx::serde_error`], which the key
//! and type checks make unreachable in practice; it keeps the message with anything quoted
//! dropped (a quoted part may be a value, and values may be secrets).
//!
//! The [`ConfigError`] type itself is defined in `crate::error` (see there why).

use std::ops::Range;
use std::path::Path;

use serde_json::error::Category;
use toml::de::DeTable;

use super::suggest::closest;
use crate::error::ConfigError;

/// What is wrong, and what to do about it: a [`ConfigError`] before it knows where it is.
/// The shared checks return this; their caller places it with [`Ctx::error_at`].
pub(super) type Problem = (String, String);

/// The fix for a value that is not a duration; `KEY` is replaced by the key.
pub(super) const DURATION_FIX: &str =
    "use a duration like \"30s\" or \"2m\" (units: ms, s, m, h), e.g. KEY = \"30s\"";

/// Where errors point: the file, and for TOML the text and its parsed document (to find the
/// line and column of a key).
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub file: Option<&'a Path>,
    pub toml: Option<(&'a str, &'a DeTable<'a>)>,
}

impl Ctx<'_> {
    /// An error about the key at `path` (e.g. `["servers", "x", "url"]`): the server and
    /// key are taken from the path and, in a TOML document, the key's position is added.
    pub fn error_at(&self, path: &[&str], problem: String, fix: String) -> ConfigError {
        let err = self.located(path, problem, fix);
        match self.toml {
            Some((text, doc)) => match key_offset(doc, path) {
                Some(offset) => at_offset(err, text, offset),
                None => err,
            },
            None => err,
        }
    }

    /// An error about the value at `span` of a TOML document (a wrong type, a bad array
    /// item), for the key at `path`.
    pub fn error_at_span(
        &self,
        path: &[&str],
        span: Range<usize>,
        problem: String,
        fix: String,
    ) -> ConfigError {
        let err = self.located(path, problem, fix);
        match self.toml {
            Some((text, _)) => at_offset(err, text, span.start),
            None => err,
        }
    }

    /// An error in server `server`, at `key` when given.
    pub fn server_error(
        &self,
        server: &str,
        key: Option<&str>,
        problem: String,
        fix: String,
    ) -> ConfigError {
        let mut path = vec!["servers", server];
        path.extend(key);
        self.error_at(&path, problem, fix)
    }

    /// A serde error from reading the (already checked) TOML document into the raw structs:
    /// the last resort if a raw struct and its key list (`raw/toml.rs`) ever disagree. The
    /// key is found from the span; the message loses anything quoted.
    pub fn serde_error(&self, e: &toml::de::Error) -> ConfigError {
        let mut path = Vec::new();
        if let (Some(span), Some((_, doc))) = (e.span(), self.toml) {
            path_at(doc, &span, &mut path);
        }
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let problem = format!("invalid value: {}", sanitize(e.message()));
        let fix = "see the documentation of this key".to_string();
        match e.span() {
            Some(span) => self.error_at_span(&path, span, problem, fix),
            None => self.located(&path, problem, fix),
        }
    }

    fn located(&self, path: &[&str], problem: String, fix: String) -> ConfigError {
        let mut err = ConfigError::new(problem, fix).with_file(self.file);
        let (server, key) = server_and_key(path);
        err.server = server;
        err.key = key;
        err
    }
}

/// A TOML syntax error, from the parser's message and span.
pub(super) fn toml_syntax_error(
    e: &toml::de::Error,
    text: &str,
    file: Option<&Path>,
) -> ConfigError {
    let err = ConfigError::new(
        format!("TOML syntax error: {}", e.message().trim()),
        "fix the TOML syntax at that position",
    )
    .with_file(file);
    match e.span() {
        Some(span) => at_offset(err, text, span.start),
        None => err,
    }
}

/// A JSON syntax error, from serde_json's category, line and column.
///
/// serde_json does not give its reason ("expected `:`") apart from its `Display`, which is
/// the reason followed by ` at line L column C` when there is a position: that suffix, built
/// again from [`serde_json::Error::line`] and [`column`](serde_json::Error::column), is
/// taken off, and the position added in our form.
pub(super) fn json_syntax_error(e: &serde_json::Error, file: Option<&Path>) -> ConfigError {
    let text = e.to_string();
    let reason = text
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&text);
    let fix = match e.classify() {
        Category::Eof => "the file ends before the JSON does: close every { and [ it opens",
        _ => "fix the JSON syntax at that position",
    };
    let err = ConfigError::new(format!("JSON syntax error: {reason}"), fix).with_file(file);
    if e.line() > 0 {
        err.at(e.line(), e.column())
    } else {
        err
    }
}

/// What to do about the unknown key `key` where `known` are the keys read: the closest
/// known key if one is close enough ("did you mean"), and the list.
pub(super) fn unknown_key_fix(key: &str, known: &[&str]) -> String {
    let list = quoted(known, '\'');
    match closest(key, known) {
        Some(s) => format!("did you mean '{s}'? Known keys: {list}"),
        None if known.is_empty() => "remove it".to_string(),
        None => format!("remove it, or use one of the known keys: {list}"),
    }
}

/// What to do about the unknown value `value` where `known` are the values accepted.
pub(super) fn one_of_fix(value: &str, known: &[&str]) -> String {
    let list = quoted(known, '"');
    match closest(value, known) {
        Some(s) => format!("did you mean \"{s}\"? Use one of {list}"),
        None => format!("use one of {list}"),
    }
}

/// `known`, each between `quote`s, separated by commas.
fn quoted(known: &[&str], quote: char) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("{quote}{k}{quote}")).collect();
    quoted.join(", ")
}

/// `["servers", name, key...]` → (server, key); other paths → (None, dotted path).
fn server_and_key(path: &[&str]) -> (Option<String>, Option<String>) {
    match path {
        ["servers", server, rest @ ..] => (
            Some(server.to_string()),
            (!rest.is_empty()).then(|| rest.join(".")),
        ),
        [] => (None, None),
        _ => (None, Some(path.join("."))),
    }
}

fn at_offset(err: ConfigError, text: &str, offset: usize) -> ConfigError {
    let (line, column) = line_column(text, offset);
    err.at(line, column)
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The byte offset of the last key of `path` in the document, if it is there.
fn key_offset(doc: &DeTable<'_>, path: &[&str]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let (key, value) = doc.iter().find(|(k, _)| k.get_ref() == first)?;
    if rest.is_empty() {
        return Some(key.span().start);
    }
    match value.get_ref().as_table() {
        Some(table) => key_offset(table, rest).or(Some(key.span().start)),
        None => Some(key.span().start),
    }
}

/// The key path a span points at: the key whose own span is exactly `span`, else the deepest
/// key whose key or value contains `span.start`.
fn path_at(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    exact_key(table, span, path) || containing_key(table, span, path)
}

fn exact_key(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if key.span() == *span {
            return true;
        }
        if let Some(child) = value.get_ref().as_table()
            && exact_key(child, span, path)
        {
            return true;
        }
        path.pop();
    }
    false
}

/// Arrays are not descended into: a span inside `args = [...]` is reported at `args`.
fn containing_key(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    let contains = |r: Range<usize>| r.start <= span.start && span.start < r.end.max(r.start + 1);
    for (key, value) in table.iter() {
        let here = contains(key.span()) || contains(value.span());
        path.push(key.get_ref().to_string());
        if let Some(child) = value.get_ref().as_table()
            && containing_key(child, span, path)
        {
            return true;
        }
        if here {
            return true;
        }
        path.pop();
    }
    false
}

/// Drops anything quoted from a message, in case it holds a value.
fn sanitize(message: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    for c in message.chars() {
        match (quote, c) {
            (None, '"' | '`') => {
                quote = Some(c);
                out.push_str("<…>");
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) => out.push(c),
            _ => {}
        }
    }
    out
}
