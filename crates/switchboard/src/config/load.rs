//! Reading and validating config files (TOML and the JSON shapes of other MCP clients).
//!
//! Loading happens in two steps, so that new keys are easy to add:
//!
//! 1. **Parse** into raw structs, one per table ([`RawConfig`], [`RawServer`]), all fields
//!    optional, unknown keys rejected (`deny_unknown_fields`). TOML is parsed with spans, so
//!    every serde error is mapped back to the file, line, server and key it concerns, and its
//!    text is rewritten into a [`ConfigError`] problem and fix (serde's own text would echo
//!    values, which may be secrets).
//! 2. **Validate** each raw table with one function per table ([`validate_config`],
//!    [`validate_servers`], [`validate_server`]) into the public [`Config`] types.
//!
//! To add a key: add an `Option` field to the raw struct of its table, and read it in that
//! table's validate function. Unknown-key errors list the struct's fields automatically.
//! A new table gets its own raw struct and validate function.
//!
//! JSON files (see `json.rs`) are tolerant of other clients' keys; they are converted into
//! the same [`RawServer`] and validated by the same [`validate_server`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeTable;

use super::suggest::closest;
use super::template::{self, is_valid_header_name};
use super::{
    CatalogConfig, CollisionPolicy, Config, ConfigError, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LIST_TIMEOUT, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TIMEOUT,
    DEFAULT_TOOL_CALL_TIMEOUT, HttpConnections, MAX_NAME_LENGTH_RANGE, PrefixMode, ReconnectPolicy,
    RegistrationConfig, RegistrationPolicy, ServerConfig, SessionMode, SessionsConfig, ToolFilter,
    ToolOverride, TransportKind,
};

impl Config {
    /// Reads and validates a config file. `.json` files are read as `mcpServers` (Claude
    /// Desktop, Cursor) or `servers` (VS Code) documents; anything else as Switchboard TOML.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, &e))?;
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut config = if is_json {
            Config::from_json_str(&text, Some(path))?
        } else {
            Config::from_toml_str(&text, Some(path))?
        };
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses Switchboard TOML; `origin` names the source in error messages (and becomes
    /// [`Config::source`]).
    pub fn from_toml_str(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| {
            let (problem, fix) = (
                format!("TOML syntax error: {}", e.message().trim()),
                "fix the TOML syntax at that position".to_string(),
            );
            let err = ConfigError::new(problem, fix).with_file(origin);
            match e.span() {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    err.at(line, column)
                }
                None => err,
            }
        })?;
        let ctx = Ctx {
            file: origin,
            toml: Some((text, doc.get_ref())),
        };
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
            .map_err(|e| ctx.toml_error(&e))?;
        let mut config = validate_config(&ctx, raw)?;
        config.source = origin.map(Path::to_path_buf);
        Ok(config)
    }

    /// Parses an `mcpServers` / VS Code `servers` JSON document (see `json.rs` for the
    /// shapes accepted and the tolerance rules); `origin` names the source in error messages
    /// (and becomes [`Config::source`]).
    pub fn from_json_str(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let ctx = Ctx {
            file: origin,
            toml: None,
        };
        let mut config = super::json::parse(&ctx, text)?;
        config.source = origin.map(Path::to_path_buf);
        Ok(config)
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    use std::io::ErrorKind;
    let (problem, fix) = match e.kind() {
        ErrorKind::NotFound => (
            "the config file does not exist".to_string(),
            "create it, or pass the path of an existing config file".to_string(),
        ),
        ErrorKind::PermissionDenied => (
            "the config file cannot be read: permission denied".to_string(),
            "make the file readable by this user".to_string(),
        ),
        ErrorKind::InvalidData => (
            "the config file is not valid UTF-8 text".to_string(),
            "save the file as UTF-8".to_string(),
        ),
        ErrorKind::IsADirectory => (
            "the config path is a directory".to_string(),
            "pass the path of a config file, e.g. switchboard.toml".to_string(),
        ),
        _ => (
            format!("the config file cannot be read: {e}"),
            "check that the path is a readable file".to_string(),
        ),
    };
    ConfigError::new(problem, fix).with_file(Some(path))
}

// ---------------------------------------------------------------------------------------------
// Raw tables

/// The top-level table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub servers: BTreeMap<String, RawServer>,
    /// String values only: they are substituted into header and env values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub catalog: Option<RawCatalog>,
    pub sessions: Option<RawSessions>,
    pub on_server_registration_error: Option<String>,
    pub retry_skipped_servers: Option<bool>,
    pub discovery: Option<super::discovery::RawDiscovery>,
}

/// The `[sessions]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSessions {
    pub reaper_interval: Option<String>,
}

/// One `[servers.NAME.reconnect]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconnect {
    pub max_attempts: Option<i64>,
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
}

/// The `[catalog]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    pub separator: Option<String>,
    pub prefix: Option<String>,
    pub max_name_length: Option<i64>,
    pub collisions: Option<String>,
}

/// One `[servers.NAME.tool_overrides.ORIGINAL]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToolOverride {
    pub alias: Option<String>,
    pub description: Option<String>,
}

/// One `[servers.NAME]` table. Durations and the transport are strings here and parsed in
/// [`validate_server`], so their errors can say what form is accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub transport: Option<String>,
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub connect_timeout: Option<String>,
    pub list_timeout: Option<String>,
    pub tool_call_timeout: Option<String>,
    pub http_connections: Option<String>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub tool_overrides: Option<BTreeMap<String, RawToolOverride>>,
    pub session_mode: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub max_sessions: Option<i64>,
    pub reconnect: Option<RawReconnect>,
    pub enabled: Option<bool>,
    pub on_server_registration_error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Error context

/// Where errors point: the file, and for TOML the parsed document (to find a key's line).
pub(super) struct Ctx<'a> {
    pub file: Option<&'a Path>,
    pub toml: Option<(&'a str, &'a DeTable<'a>)>,
}

impl Ctx<'_> {
    /// An error located at `path` (e.g. `["servers", "x", "url"]`) when the document is TOML.
    /// The server and key are taken from the path.
    pub fn error_at(&self, path: &[&str], problem: String, fix: String) -> ConfigError {
        let mut err = ConfigError::new(problem, fix).with_file(self.file);
        let (server, key) = server_and_key(path);
        err.server = server;
        err.key = key;
        if let Some((text, doc)) = self.toml
            && let Some(offset) = key_offset(doc, path)
        {
            let (line, column) = line_column(text, offset);
            err = err.at(line, column);
        }
        err
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

    /// Maps a serde error from deserializing the TOML document into a [`ConfigError`].
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let Some((text, doc)) = self.toml else {
            return ConfigError::new(sanitize(e.message()), "").with_file(self.file);
        };
        let mut path = Vec::new();
        if let Some(span) = e.span() {
            path_at(doc, &span, &mut path);
        }
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let (problem, fix) = explain_serde_message(e.message(), &path);
        let (server, key) = server_and_key(&path);
        let mut err = ConfigError::new(problem, fix).with_file(self.file);
        err.server = server;
        err.key = key;
        if let Some(span) = e.span() {
            let (line, column) = line_column(text, span.start);
            err = err.at(line, column);
        }
        err
    }
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

/// The key path an error span points at: the key whose own span is exactly `span` (unknown
/// keys are reported there), else the deepest key whose key or value contains `span.start`.
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

/// Arrays are not descended into: an error inside `args = [...]` is reported at `args`.
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

// ---------------------------------------------------------------------------------------------
// Rewriting serde messages

/// Turns a serde/toml deserialization message into (problem, fix), without echoing values.
fn explain_serde_message(message: &str, path: &[&str]) -> (String, String) {
    let last = path.last().copied().unwrap_or("");
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return explain_unknown_key(rest, path);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
        let found = found
            .split(['"', '`'])
            .next()
            .unwrap_or(found)
            .trim()
            .trim_end_matches(" value");
        let expected = toml_type(expected);
        let what = if last.is_empty() {
            "the document".to_string()
        } else {
            format!("'{last}'")
        };
        let problem = format!("{what} must be {expected}, not {}", found_type(found));
        return (problem, type_fix(last, expected));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let mut parts = rest.split('`').skip(1).step_by(2);
        let value = parts.next().unwrap_or("");
        let known: Vec<&str> = parts.collect();
        let problem = format!("'{last}' has the unknown value \"{value}\"");
        return (problem, one_of_fix(value, &known));
    }
    (
        format!("invalid value: {}", sanitize(message)),
        "see the documentation of this key".to_string(),
    )
}

/// `rest` is serde's text after "unknown field ": "`x`, expected one of `a`, `b`". When
/// `path` locates the key, the error's server and key say where it is and the problem does
/// not repeat them.
fn explain_unknown_key(rest: &str, path: &[&str]) -> (String, String) {
    let mut parts = rest.split('`').skip(1).step_by(2);
    let key = parts.next().unwrap_or("");
    let known: Vec<&str> = parts.collect();
    let problem = if path.is_empty() {
        format!("unknown key '{key}'")
    } else {
        "unknown key".to_string()
    };
    (problem, unknown_key_fix(key, &known))
}

/// What to do about the unknown key `key` where `known` are the keys read: the closest
/// known key if one is close enough ("did you mean"), and the list.
pub(super) fn unknown_key_fix(key: &str, known: &[&str]) -> String {
    let list = known
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(key, known) {
        Some(s) => format!("did you mean '{s}'? Known keys: {list}"),
        None if known.is_empty() => "remove it".to_string(),
        None => format!("remove it, or use one of the known keys: {list}"),
    }
}

pub(super) fn one_of_fix(value: &str, known: &[&str]) -> String {
    let list = known
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(value, known) {
        Some(s) => format!("did you mean \"{s}\"? Use one of {list}"),
        None => format!("use one of {list}"),
    }
}

/// serde's "expected ..." phrase in TOML words.
fn toml_type(expected: &str) -> &'static str {
    if expected.contains("map") || expected.starts_with("struct") {
        "a table"
    } else if expected.contains("sequence") {
        "an array"
    } else if expected.contains("bool") {
        "true or false"
    } else if expected.contains("string") || expected.contains("path") {
        "a string"
    } else if expected.contains("integer") || expected.contains("float") {
        "a number"
    } else {
        "another type"
    }
}

/// serde's `Unexpected` kind (value stripped) in TOML words.
fn found_type(found: &str) -> &'static str {
    match found {
        "string" | "char" => "a string",
        "integer" | "floating point" => "a number",
        "boolean" => "true/false",
        "map" => "a table",
        "sequence" => "an array",
        _ => "another type",
    }
}

fn type_fix(key: &str, expected: &str) -> String {
    if key.ends_with("_timeout") {
        return DURATION_FIX.replace("KEY", key);
    }
    let key = if key.is_empty() { "KEY" } else { key };
    match expected {
        "a table" => format!("write it as a table, e.g. {key} = {{ NAME = \"value\" }}"),
        "an array" => format!("write it as an array, e.g. {key} = [\"a\", \"b\"]"),
        "true or false" => format!("write {key} = true or {key} = false"),
        "a string" => format!("put the value in quotes: {key} = \"...\""),
        _ => format!("write {key} as {expected}"),
    }
}

const DURATION_FIX: &str =
    "use a duration like \"30s\" or \"2m\" (units: ms, s, m, h), e.g. KEY = \"30s\"";

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

// ---------------------------------------------------------------------------------------------
// Validation, one function per table

/// The top-level table.
pub(super) fn validate_config(ctx: &Ctx<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    Ok(Config {
        servers: validate_servers(ctx, raw.servers)?,
        variables: raw.variables,
        catalog: validate_catalog(ctx, raw.catalog.unwrap_or_default())?,
        sessions: validate_sessions(ctx, raw.sessions.unwrap_or_default())?,
        registration: RegistrationConfig {
            on_error: match raw.on_server_registration_error {
                Some(value) => registration_policy(ctx, &["on_server_registration_error"], &value)?,
                None => RegistrationPolicy::default(),
            },
            retry_skipped: raw.retry_skipped_servers.unwrap_or(true),
        },
        discovery: match raw.discovery {
            Some(d) => Some(Box::new(super::discovery::validate_discovery(ctx, d)?)),
            None => None,
        },
        source: None,
        warnings: Vec::new(),
    })
}

/// An `on_server_registration_error` value, at `path` (top level or in a server table).
fn registration_policy(
    ctx: &Ctx<'_>,
    path: &[&str],
    value: &str,
) -> Result<RegistrationPolicy, ConfigError> {
    one_of(value, &RegistrationPolicy::ALL).ok_or_else(|| {
        ctx.error_at(
            path,
            format!("unknown registration policy \"{value}\""),
            one_of_fix(value, &names(&RegistrationPolicy::ALL)),
        )
    })
}

/// The `[catalog]` table.
fn validate_catalog(ctx: &Ctx<'_>, raw: RawCatalog) -> Result<CatalogConfig, ConfigError> {
    let err =
        |key: &str, problem: String, fix: String| ctx.error_at(&["catalog", key], problem, fix);
    let mut catalog = CatalogConfig::default();
    if let Some(separator) = raw.separator {
        if separator.is_empty() || separator.len() > 8 || !is_valid_server_name(&separator) {
            return Err(err(
                "separator",
                format!("the separator {separator:?} is not usable in tool names"),
                "model providers accept only letters, digits, '_' and '-' in tool names; use 1 to \
                 8 of those, e.g. separator = \"__\""
                    .to_string(),
            ));
        }
        catalog.separator = separator;
    }
    if let Some(prefix) = raw.prefix {
        catalog.prefix = one_of(&prefix, &PrefixMode::ALL).ok_or_else(|| {
            err(
                "prefix",
                format!("unknown prefix mode \"{prefix}\""),
                one_of_fix(&prefix, &names(&PrefixMode::ALL)),
            )
        })?;
    }
    if let Some(policy) = raw.collisions {
        catalog.collisions = one_of(&policy, &CollisionPolicy::ALL).ok_or_else(|| {
            err(
                "collisions",
                format!("unknown collision policy \"{policy}\""),
                one_of_fix(&policy, &names(&CollisionPolicy::ALL)),
            )
        })?;
    }
    if let Some(length) = raw.max_name_length {
        let range = MAX_NAME_LENGTH_RANGE;
        catalog.max_name_length = usize::try_from(length)
            .ok()
            .filter(|l| range.contains(l))
            .ok_or_else(|| {
                err(
                    "max_name_length",
                    format!("'max_name_length' is {length}, outside {}..={}", range.start(), range.end()),
                    "use 64 (OpenAI's and Anthropic's limit) or, for providers that allow more, e.g. 128"
                        .to_string(),
                )
            })?;
    }
    Ok(catalog)
}

/// The `[sessions]` table.
fn validate_sessions(ctx: &Ctx<'_>, raw: RawSessions) -> Result<SessionsConfig, ConfigError> {
    let mut sessions = SessionsConfig::default();
    if let Some(value) = raw.reaper_interval {
        sessions.reaper_interval =
            parse_duration("reaper_interval", &value).map_err(|(problem, fix)| {
                ctx.error_at(&["sessions", "reaper_interval"], problem, fix)
            })?;
    }
    Ok(sessions)
}

/// `session_mode`, `session_idle_timeout`, `max_sessions` and `[servers.NAME.reconnect]`.
fn validate_session_keys(
    ctx: &Ctx<'_>,
    server: &str,
    raw: &RawServer,
) -> Result<(SessionMode, Duration, usize, ReconnectPolicy), ConfigError> {
    let err = |path: &[&str], problem: String, fix: String| {
        let mut full = vec!["servers", server];
        full.extend(path);
        ctx.error_at(&full, problem, fix)
    };
    let mode = match raw.session_mode.as_deref() {
        None => SessionMode::default(),
        Some(value) => one_of(value, &SessionMode::ALL).ok_or_else(|| {
            err(
                &["session_mode"],
                format!("unknown session mode \"{value}\""),
                one_of_fix(value, &names(&SessionMode::ALL)),
            )
        })?,
    };
    let duration = |path: &[&str], value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(v) => parse_duration(path[path.len() - 1], v)
            .map_err(|(problem, fix)| err(path, problem, fix)),
    };
    let idle = duration(
        &["session_idle_timeout"],
        &raw.session_idle_timeout,
        DEFAULT_SESSION_IDLE_TIMEOUT,
    )?;
    let max_sessions = match raw.max_sessions {
        None => DEFAULT_MAX_SESSIONS,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            return Err(err(
                &["max_sessions"],
                format!("'max_sessions' is {n}; it must be at least 1"),
                "use a positive number, e.g. max_sessions = 100".to_string(),
            ));
        }
    };
    let mut reconnect = ReconnectPolicy::default();
    if let Some(r) = &raw.reconnect {
        if let Some(n) = r.max_attempts {
            reconnect.max_attempts =
                u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                    err(
                        &["reconnect", "max_attempts"],
                        format!("'max_attempts' is {n}; it must be at least 1"),
                        "use a small positive number, e.g. max_attempts = 2".to_string(),
                    )
                })?;
        }
        reconnect.initial_backoff = duration(
            &["reconnect", "initial_backoff"],
            &r.initial_backoff,
            reconnect.initial_backoff,
        )?;
        reconnect.max_backoff = duration(
            &["reconnect", "max_backoff"],
            &r.max_backoff,
            reconnect.max_backoff,
        )?;
        if reconnect.max_backoff < reconnect.initial_backoff {
            return Err(err(
                &["reconnect", "max_backoff"],
                "'max_backoff' is shorter than 'initial_backoff'".to_string(),
                "make max_backoff at least as long as initial_backoff".to_string(),
            ));
        }
    }
    Ok((mode, idle, max_sessions, reconnect))
}

fn one_of<T: Copy>(value: &str, all: &[(T, &'static str)]) -> Option<T> {
    all.iter().find(|(_, name)| *name == value).map(|(t, _)| *t)
}

fn names<T>(all: &[(T, &'static str)]) -> Vec<&'static str> {
    all.iter().map(|(_, name)| *name).collect()
}

/// The `[servers]` table: names, then each server.
fn validate_servers(
    ctx: &Ctx<'_>,
    raw: BTreeMap<String, RawServer>,
) -> Result<BTreeMap<String, ServerConfig>, ConfigError> {
    let mut servers = BTreeMap::new();
    for (name, server) in raw {
        check_server_name(ctx, &name)?;
        let server = validate_server(ctx, &name, server)?;
        servers.insert(name, server);
    }
    Ok(servers)
}

/// Whether `name` is usable as a server name: non-empty, only `[A-Za-z0-9_-]`.
pub(crate) fn is_valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `name` with every character outside `[A-Za-z0-9_-]` replaced by `_` (`server` if empty).
pub(crate) fn normalise_server_name(name: &str) -> String {
    if name.is_empty() {
        return "server".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn check_server_name(ctx: &Ctx<'_>, name: &str) -> Result<(), ConfigError> {
    if is_valid_server_name(name) {
        return Ok(());
    }
    const WHY: &str = "server names prefix the names of their tools, so they may contain only \
                       letters, digits, '_' and '-'";
    let err = if name.is_empty() {
        ctx.server_error(
            name,
            None,
            "a server has an empty name".to_string(),
            format!("{WHY}; name it, e.g. [servers.my_server]"),
        )
    } else {
        let bad: String = name
            .chars()
            .filter(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .take(1)
            .collect();
        ctx.server_error(
            name,
            None,
            format!("the server name contains {bad:?}, which is not allowed"),
            format!(
                "{WHY}; rename it, e.g. [servers.{}]",
                normalise_server_name(name)
            ),
        )
    };
    Err(err)
}

/// Parses a transport name as written in TOML (`stdio`, `sse`, `streamable-http`).
fn parse_transport(name: &str) -> Option<TransportKind> {
    [
        TransportKind::Stdio,
        TransportKind::Sse,
        TransportKind::StreamableHttp,
    ]
    .into_iter()
    .find(|t| t.as_str() == name)
}

/// One `[servers.NAME]` table (also used for servers read from JSON).
pub(super) fn validate_server(
    ctx: &Ctx<'_>,
    name: &str,
    raw: RawServer,
) -> Result<ServerConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| {
        ctx.server_error(name, (!key.is_empty()).then_some(key), problem, fix)
    };

    let explicit = match raw.transport.as_deref() {
        None => None,
        Some(t) => Some(parse_transport(t).ok_or_else(|| {
            err(
                "transport",
                format!("unknown transport \"{t}\""),
                one_of_fix(t, &["stdio", "sse", "streamable-http"]),
            )
        })?),
    };

    let transport = match (explicit, &raw.command, &raw.url) {
        (Some(t), _, _) => t,
        (None, Some(_), Some(_)) => {
            return Err(err(
                "url",
                "the server has both 'command' and 'url'".to_string(),
                "a server is either a program to run over stdio ('command') or an HTTP endpoint \
                 ('url'); remove one of them, or make two servers"
                    .to_string(),
            ));
        }
        (None, Some(_), None) => TransportKind::Stdio,
        (None, None, Some(url)) => TransportKind::for_url(url),
        (None, None, None) => {
            return Err(err(
                "",
                "the server has neither 'command' nor 'url'".to_string(),
                "add 'command' (a program to run over stdio, e.g. \"npx\") or 'url' (an http(s) \
                 endpoint, e.g. \"http://127.0.0.1:3001/mcp\")"
                    .to_string(),
            ));
        }
    };

    // Keys that do not apply to the transport.
    let present = |key: &str| match key {
        "command" => raw.command.is_some(),
        "args" => raw.args.is_some(),
        "env" => raw.env.is_some(),
        "cwd" => raw.cwd.is_some(),
        "url" => raw.url.is_some(),
        "headers" => raw.headers.is_some(),
        "http_connections" => raw.http_connections.is_some(),
        _ => false,
    };
    let (not_applicable, needed): (&[&str], &str) = match transport {
        TransportKind::Stdio => (&["url", "headers", "http_connections"], "command"),
        TransportKind::Sse => (
            &["command", "args", "env", "cwd", "http_connections"],
            "url",
        ),
        TransportKind::StreamableHttp => (&["command", "args", "env", "cwd"], "url"),
    };
    if let Some(key) = not_applicable.iter().find(|k| present(k)) {
        let (kind, fix) = if transport == TransportKind::Stdio {
            (
                "URL servers (sse, streamable-http)",
                "remove it; a stdio server is started with 'command', 'args', 'env' and 'cwd'",
            )
        } else {
            (
                "stdio servers",
                "remove it; an HTTP server is reached with 'url' and 'headers'",
            )
        };
        return Err(err(
            key,
            format!("'{key}' only applies to {kind}, but this server uses {transport}"),
            fix.to_string(),
        ));
    }
    if !present(needed) {
        return Err(err(
            needed,
            format!("transport {transport} needs '{needed}', which is missing"),
            if needed == "url" {
                "add url = \"http://HOST:PORT/PATH\"".to_string()
            } else {
                "add command = \"PROGRAM\" (and args = [...] if it takes arguments)".to_string()
            },
        ));
    }

    if let Some(command) = &raw.command
        && command.trim().is_empty()
    {
        return Err(err(
            "command",
            "'command' is empty".to_string(),
            "set it to the program to run, e.g. command = \"npx\"".to_string(),
        ));
    }
    if let Some(url) = &raw.url {
        check_url(url).map_err(|(problem, fix)| err("url", problem, fix))?;
    }
    if let Some(headers) = &raw.headers {
        check_headers(headers).map_err(|(problem, fix)| err("headers", problem, fix))?;
    }
    if let Some(env) = &raw.env {
        check_env(env).map_err(|(problem, fix)| err("env", problem, fix))?;
    }

    let http_connections = match raw.http_connections.as_deref() {
        None => HttpConnections::default(),
        Some("keep-alive") => HttpConnections::KeepAlive,
        Some("per-request") => HttpConnections::PerRequest,
        Some(other) => {
            return Err(err(
                "http_connections",
                format!("unknown connection policy \"{other}\""),
                one_of_fix(other, &["keep-alive", "per-request"]),
            ));
        }
    };

    let (session_mode, session_idle_timeout, max_sessions, reconnect) =
        validate_session_keys(ctx, name, &raw)?;
    let tool_filter = validate_filter(ctx, name, raw.include, raw.exclude)?;
    let tool_overrides = validate_overrides(ctx, name, raw.tool_overrides.unwrap_or_default())?;

    let duration = |key: &str, value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(v) => parse_duration(key, v).map_err(|(problem, fix)| err(key, problem, fix)),
    };

    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        connect_timeout: duration(
            "connect_timeout",
            &raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
        )?,
        list_timeout: duration("list_timeout", &raw.list_timeout, DEFAULT_LIST_TIMEOUT)?,
        tool_call_timeout: duration(
            "tool_call_timeout",
            &raw.tool_call_timeout,
            DEFAULT_TOOL_CALL_TIMEOUT,
        )?,
        command: raw.command,
        args: raw.args.unwrap_or_default(),
        env: raw.env.unwrap_or_default(),
        cwd: raw.cwd.map(PathBuf::from),
        url: raw.url,
        headers: raw.headers.unwrap_or_default(),
        http_connections,
        tool_overrides,
        tool_filter,
        session_mode,
        session_idle_timeout,
        max_sessions,
        reconnect,
        enabled: raw.enabled.unwrap_or(true),
        on_registration_error: match raw.on_server_registration_error.as_deref() {
            Some(value) => Some(registration_policy(
                ctx,
                &["servers", name, "on_server_registration_error"],
                value,
            )?),
            None => None,
        },
    })
}

/// `include` / `exclude`: at most one of them; patterns non-empty; duplicates dropped.
fn validate_filter(
    ctx: &Ctx<'_>,
    server: &str,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
) -> Result<ToolFilter, ConfigError> {
    let check = |key: &str, mut patterns: Vec<String>| {
        if patterns.iter().any(|p| p.trim().is_empty()) {
            return Err(ctx.server_error(
                server,
                Some(key),
                format!("'{key}' has an empty pattern"),
                "remove it; patterns are tool names, aliases or globs like \"search_*\""
                    .to_string(),
            ));
        }
        patterns.sort();
        patterns.dedup();
        Ok(patterns)
    };
    match (include, exclude) {
        (Some(_), Some(_)) => Err(ctx.server_error(
            server,
            Some("exclude"),
            "'include' and 'exclude' are both set".to_string(),
            "use one of them: 'include' lists the tools to expose, 'exclude' the tools to hide"
                .to_string(),
        )),
        (Some(include), None) => Ok(ToolFilter::Include(check("include", include)?)),
        (None, Some(exclude)) => Ok(ToolFilter::Exclude(check("exclude", exclude)?)),
        (None, None) => Ok(ToolFilter::All),
    }
}

/// `[servers.NAME.tool_overrides.ORIGINAL]`: aliases must be usable names and must not take
/// the name of another overridden tool or another alias. (Clashes with tools the server
/// lists are found when the catalogue is built.) Empty values mean "keep the original".
fn validate_overrides(
    ctx: &Ctx<'_>,
    server: &str,
    raw: BTreeMap<String, RawToolOverride>,
) -> Result<BTreeMap<String, ToolOverride>, ConfigError> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let overrides: BTreeMap<String, ToolOverride> = raw
        .into_iter()
        .map(|(tool, o)| {
            let o = ToolOverride {
                alias: non_empty(o.alias).filter(|alias| *alias != tool),
                description: non_empty(o.description),
            };
            (tool, o)
        })
        .collect();
    let mut aliases: BTreeMap<&str, &str> = BTreeMap::new();
    for (tool, o) in &overrides {
        let Some(alias) = o.alias.as_deref() else {
            continue;
        };
        let err = |problem: String, fix: String| {
            ctx.error_at(
                &["servers", server, "tool_overrides", tool, "alias"],
                problem,
                fix,
            )
        };
        if !is_valid_server_name(alias) {
            return Err(err(
                format!("the alias {alias:?} contains characters model providers reject"),
                format!(
                    "use only letters, digits, '_' and '-', e.g. alias = \"{}\"",
                    normalise_server_name(alias)
                ),
            ));
        }
        if overrides.contains_key(alias) {
            return Err(err(
                format!(
                    "the alias '{alias}' of tool '{tool}' is the name of the server's tool '{alias}'"
                ),
                "choose an alias that is not the name of another tool of this server".to_string(),
            ));
        }
        if let Some(other) = aliases.insert(alias, tool) {
            return Err(err(
                format!("the tools '{other}' and '{tool}' both have the alias '{alias}'"),
                "give each tool its own alias".to_string(),
            ));
        }
    }
    Ok(overrides)
}

/// A duration string (`"30s"`, `"2m"`, `"500ms"`, `"1h"`); zero is rejected.
pub(super) fn parse_duration(key: &str, value: &str) -> Result<Duration, (String, String)> {
    let fix = || DURATION_FIX.replace("KEY", key);
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d.is_zero() => Err((format!("'{key}' is zero"), fix())),
        Ok(d) => Ok(d),
        Err(_) => Err((format!("'{key}' is not a duration: \"{value}\""), fix())),
    }
}

/// The URL must parse and be http or https. Messages never include the URL (it may carry
/// credentials or tokens in its query).
fn check_url(url: &str) -> Result<(), (String, String)> {
    check_url_with(url, "url = \"http://127.0.0.1:3001/mcp\"")
}

/// [`check_url`], with `example` a good value written as the user would write it where this
/// URL came from (a config key, a command-line flag).
pub(super) fn check_url_with(url: &str, example: &str) -> Result<(), (String, String)> {
    let fix = format!("write a full http(s) URL, e.g. {example}");
    // `127.0.0.1:3001/mcp` does not parse, and `localhost:3001` parses with the scheme
    // `localhost`: both lack the `http://` in front.
    if !url.contains("://") {
        return Err((
            "the URL has no scheme".to_string(),
            format!("add http:// (or https://) in front, e.g. {example}"),
        ));
    }
    match url::Url::parse(url) {
        Err(e) => Err((format!("the URL is not valid ({e})"), fix)),
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err((
            format!(
                "the URL uses the scheme '{}'; only http and https are supported",
                u.scheme()
            ),
            fix,
        )),
    }
}

/// Header names must be HTTP tokens and unique ignoring case; values must be well-formed
/// templates. Messages name headers, never values.
pub(super) fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in headers {
        if !is_valid_header_name(name) {
            return Err((
                format!("{name:?} is not a valid HTTP header name"),
                "use only letters, digits and !#$%&'*+-.^_`|~ in header names".to_string(),
            ));
        }
        if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err((
                format!("the headers '{other}' and '{name}' differ only in case"),
                "HTTP header names are case-insensitive; keep one of them".to_string(),
            ));
        }
        template::check_syntax(&format!("header '{name}'"), value)
            .map_err(|e| (e.to_string(), template_fix()))?;
    }
    Ok(())
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err((
                format!("{name:?} is not a valid environment variable name"),
                "environment variable names must be non-empty and contain no '=' or NUL"
                    .to_string(),
            ));
        }
        template::check_syntax(&format!("env '{name}'"), value)
            .map_err(|e| (e.to_string(), template_fix()))?;
    }
    Ok(())
}

fn template_fix() -> String {
    "close every ${ with }, e.g. ${token} or ${env:NAME}".to_string()
}

#[cfg(test)]
mod tests;
