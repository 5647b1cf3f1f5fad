//! Reading the JSON config files of other MCP clients, unchanged.
//!
//! People already have their servers in Claude Desktop / Cursor files (`{"mcpServers": {...}}`)
//! or VS Code's `.vscode/mcp.json` (`{"servers": {...}, "inputs": [...]}`); Switchboard must
//! read those as they are. The rules, deliberately more tolerant than for Switchboard TOML:
//!
//! - Servers are taken from `mcpServers` (Claude Desktop, Cursor), `servers` (VS Code
//!   `mcp.json`) and `mcp.servers` (VS Code `settings.json`); when several are present they
//!   are merged. Other top-level keys (`inputs`, ...) are ignored. A file with none of them is
//!   an empty config, unless a top-level key looks like a misspelling of one (`mcpServer`),
//!   which is an error.
//! - JSON with comments and trailing commas (VS Code writes JSONC) is accepted.
//! - Per server: `command`, `args`, `env`, `cwd`, `url` (or Windsurf's `serverUrl`), `headers`,
//!   `type` (or `transport`): `stdio`, `sse`, `http` / `streamable-http` / `streamableHttp` /
//!   `streamable_http` (case-insensitive; `http` means Streamable HTTP), `disabled: true`
//!   (→ `enabled: false`) and `enabled`. Keys other clients use that Switchboard does not
//!   (`autoApprove`, `alwaysAllow`, `timeout`, `envFile`, `description`, ...; see
//!   [`OTHER_CLIENTS_KEYS`]) are ignored and named in a `debug` log. Any other key is
//!   ignored too, but becomes a [`Config::warnings`](crate::config::Config::warnings) entry naming the file, server and key,
//!   with the closest key Switchboard reads (`"arg"` → did you mean `args`?): a typo there
//!   would otherwise start a server without its arguments, which may then wait forever.
//! - Numbers and booleans in `args` and `env` are turned into strings; empty `args`, `env`
//!   and `headers` count as absent (so `"env": {}` next to a `url` is fine).
//! - Values are kept as written. `${env:NAME}` in `env`/`headers` is resolved by the
//!   templating at connect time; VS Code's `${input:ID}` is not supported yet and is reported
//!   then as the unknown variable `input:ID`.
//! - Impossible servers (no `command` and no `url`, a `url` that is not http(s), both
//!   `command` and `url` without a `type`, ...) are rejected by the same validation as TOML.
//!   Errors name the server as written in the file.
//! - Server names: characters outside `[A-Za-z0-9_-]` are replaced with `_` ("my server" →
//!   `my_server`, "github.com/x" → `github_com_x`; an empty name becomes `server`). Names that
//!   are already valid are never changed; a normalised name that collides with another gets
//!   `_2`, `_3`, ... (in the sorted order of the original names). Each rename is logged at
//!   `debug`.
//!
//! This file reads the document into [`RawServer`]s (and the unknown keys of each); the
//! naming, the warnings and the validation happen in `validate/mod.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::RawServer;
use crate::config::diagnostics::{Ctx, json_syntax_error};
use crate::config::suggest::closest;
use crate::error::ConfigError;

/// Where servers live in the shapes we read.
const SERVER_TABLES: &[&str] = &["mcpServers", "servers", "mcp"];

/// The keys of a server entry that Switchboard reads (see [`raw_server`]).
pub(in crate::config) const SERVER_KEYS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "serverUrl",
    "headers",
    "type",
    "transport",
    "disabled",
    "enabled",
];

/// Keys of server entries that other MCP clients (Claude Desktop, Cursor, VS Code, Cline,
/// Windsurf, Gemini CLI) read and Switchboard does not: ignored without a warning.
const OTHER_CLIENTS_KEYS: &[&str] = &[
    "alwaysAllow",
    "authProviderType",
    "autoApprove",
    "description",
    "dev",
    "disabledTools",
    "envFile",
    "excludeTools",
    "gallery",
    "includeTools",
    "name",
    "networkTimeout",
    "oauth",
    "timeout",
    "transportType",
    "trust",
    "version",
    "watchPaths",
];

/// One server entry of a JSON document.
pub(in crate::config) struct JsonServer {
    /// The name as written in the file (errors name the server so).
    pub name: String,
    /// The entry as a raw server, with the keys that are neither Switchboard's nor another
    /// client's (in the entry's order); or why the entry cannot be read.
    pub entry: Result<(RawServer, Vec<String>), ConfigError>,
}

/// Reads a JSON document's server entries, in the order of the file (`mcpServers`, then
/// `servers`, then `mcp.servers` when several are present, as they appear). Syntax errors,
/// a server table that is not an object and a misspelt server table fail the whole file.
pub(in crate::config) fn read(ctx: &Ctx<'_>, text: &str) -> Result<Vec<JsonServer>, ConfigError> {
    let stripped = strip_jsonc(text);
    let doc: Value =
        serde_json::from_str(&stripped).map_err(|e| json_syntax_error(&e, ctx.file))?;
    let Value::Object(top) = doc else {
        return Err(ConfigError::new(
            "the top level of the file is not a JSON object",
            "write {\"mcpServers\": {\"NAME\": {\"command\": \"...\"}}}",
        )
        .with_file(ctx.file));
    };

    // Collect (original name, server object) from every place servers may be.
    let mut entries: Vec<(String, &Value)> = Vec::new();
    let mut found_any = false;
    for (key, value) in &top {
        let servers = match key.as_str() {
            "mcpServers" | "servers" => Some((key.clone(), value)),
            "mcp" => value.get("servers").map(|s| ("mcp.servers".to_string(), s)),
            _ => None,
        };
        match servers {
            Some((_, Value::Object(map))) => {
                found_any = true;
                entries.extend(map.iter().map(|(name, v)| (name.clone(), v)));
            }
            Some((key, _)) => {
                return Err(ConfigError::new(
                    format!("'{key}' is not a JSON object"),
                    format!("write \"{key}\": {{\"NAME\": {{\"command\": \"...\"}}}}"),
                )
                .with_file(ctx.file)
                .with_key(key));
            }
            None if key != "mcp" => {
                if let Some(known) = closest(key, SERVER_TABLES)
                    && !top.contains_key(known)
                {
                    return Err(ConfigError::new(
                        format!("unknown top-level key '{key}'"),
                        format!("did you mean '{known}'?"),
                    )
                    .with_file(ctx.file)
                    .with_key(key.clone()));
                }
                tracing::debug!(key = %key, "ignoring top-level JSON key");
            }
            None => {}
        }
    }
    if !found_any {
        tracing::debug!("no 'mcpServers' or 'servers' object in the JSON file; no servers");
    }

    Ok(entries
        .into_iter()
        .map(|(name, value)| {
            let in_server = |e: ConfigError| e.with_file(ctx.file).with_server(name.clone());
            let entry = match value {
                Value::Object(obj) => raw_server(obj).map_err(|(key, problem, fix)| {
                    in_server(ConfigError::new(problem, fix).with_key(key))
                }),
                _ => Err(in_server(ConfigError::new(
                    "the server is not a JSON object",
                    "write \"NAME\": {\"command\": \"...\"} or \"NAME\": {\"url\": \"...\"}",
                ))),
            };
            JsonServer { name, entry }
        })
        .collect())
}

type FieldError = (&'static str, String, String);

/// Converts one server object into a [`RawServer`], ignoring keys we do not use. Also
/// returns the keys that are neither ours nor another client's (see the module docs).
fn raw_server(obj: &Map<String, Value>) -> Result<(RawServer, Vec<String>), FieldError> {
    let mut raw = RawServer::default();
    let mut ignored = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in obj {
        match key.as_str() {
            "command" => raw.command = Some(string("command", value)?),
            "args" => raw.args = non_empty(string_array("args", value)?),
            "env" => raw.env = non_empty(string_map("env", value, true)?),
            "cwd" => raw.cwd = Some(string("cwd", value)?),
            "url" => raw.url = Some(string("url", value)?),
            "serverUrl" if !obj.contains_key("url") => {
                raw.url = Some(string("serverUrl", value)?);
            }
            "headers" => raw.headers = non_empty(string_map("headers", value, false)?),
            "type" => raw.transport = Some(transport("type", value)?),
            "transport" if !obj.contains_key("type") => {
                raw.transport = Some(transport("transport", value)?);
            }
            "disabled" => {
                if boolean("disabled", value)? {
                    raw.enabled = Some(false);
                }
            }
            "enabled" if !obj.contains_key("disabled") => {
                raw.enabled = Some(boolean("enabled", value)?);
            }
            "serverUrl" | "transport" | "enabled" => ignored.push(key.as_str()),
            other if OTHER_CLIENTS_KEYS.contains(&other) => ignored.push(other),
            other => unknown.push(other.to_string()),
        }
    }
    if !ignored.is_empty() {
        tracing::debug!(keys = ?ignored, "ignoring server keys Switchboard does not use");
    }
    Ok((raw, unknown))
}

fn non_empty<T: IsEmpty>(v: T) -> Option<T> {
    (!v.is_empty()).then_some(v)
}

trait IsEmpty {
    fn is_empty(&self) -> bool;
}
impl<T> IsEmpty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}
impl<K, V> IsEmpty for BTreeMap<K, V> {
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(key: &'static str, expected: &str, found: &Value, example: &str) -> FieldError {
    (
        key,
        format!("'{key}' must be {expected}, not {}", json_type(found)),
        format!("write it as \"{key}\": {example}"),
    )
}

fn string(key: &'static str, v: &Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(wrong_type(key, "a string", v, "\"...\"")),
    }
}

fn boolean(key: &'static str, v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong_type(key, "true or false", v, "true")),
    }
}

/// A string, or a number/boolean turned into one.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_array(key: &'static str, v: &Value) -> Result<Vec<String>, FieldError> {
    let example = "[\"-y\", \"package\"]";
    let Value::Array(items) = v else {
        return Err(wrong_type(key, "an array of strings", v, example));
    };
    items
        .iter()
        .map(|item| {
            scalar(item).ok_or_else(|| {
                (
                    key,
                    format!("'{key}' must contain only strings, not {}", json_type(item)),
                    format!("write it as \"{key}\": {example}"),
                )
            })
        })
        .collect()
}

/// An object of strings; values are never echoed. `scalars` also accepts numbers and booleans.
fn string_map(
    key: &'static str,
    v: &Value,
    scalars: bool,
) -> Result<BTreeMap<String, String>, FieldError> {
    let example = "{\"NAME\": \"value\"}";
    let Value::Object(map) = v else {
        return Err(wrong_type(key, "an object of strings", v, example));
    };
    map.iter()
        .map(|(name, value)| {
            let s = if scalars {
                scalar(value)
            } else {
                value.as_str().map(str::to_string)
            };
            s.map(|s| (name.clone(), s)).ok_or_else(|| {
                (
                    key,
                    format!(
                        "the value of '{name}' in '{key}' must be a string, not {}",
                        json_type(value)
                    ),
                    format!("write it as \"{key}\": {example}"),
                )
            })
        })
        .collect()
}

/// Maps the `type` names other clients use to ours.
fn transport(key: &'static str, v: &Value) -> Result<String, FieldError> {
    let t = string(key, v)?;
    let canonical = match t.to_ascii_lowercase().as_str() {
        "stdio" => "stdio",
        "sse" => "sse",
        "http" | "streamable-http" | "streamablehttp" | "streamable_http" => "streamable-http",
        _ => {
            return Err((
                key,
                format!("unknown transport type \"{t}\""),
                "use one of \"stdio\", \"sse\", \"http\" (Streamable HTTP)".to_string(),
            ));
        }
    };
    Ok(canonical.to_string())
}

/// Blanks out `//` and `/* */` comments and trailing commas outside strings, keeping every
/// byte offset (and so serde_json's line/column) where it was.
fn strip_jsonc(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    // Comments first: a comment may stand between a trailing comma and its `}` or `]`.
    outside_strings(&mut bytes, |bytes, i| match (bytes[i], bytes.get(i + 1)) {
        (b'/', Some(b'/')) => {
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |e| i + e);
            bytes[i..end].fill(b' ');
            end
        }
        (b'/', Some(b'*')) => {
            let end = bytes[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(bytes.len(), |e| i + 2 + e + 2);
            for byte in &mut bytes[i..end] {
                if *byte != b'\n' {
                    *byte = b' ';
                }
            }
            end
        }
        _ => i + 1,
    });
    // Trailing commas: a comma followed (after whitespace) by `}` or `]`.
    outside_strings(&mut bytes, |bytes, i| {
        if bytes[i] == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i + 1
    });
    // Only ASCII bytes outside strings were replaced by spaces, whole comments included, so
    // the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

/// Calls `visit(bytes, i)` at each byte outside JSON strings; it returns where to go on.
fn outside_strings(bytes: &mut [u8], mut visit: impl FnMut(&mut [u8], usize) -> usize) {
    let mut i = 0;
    while i < bytes.len() {
        i = if bytes[i] == b'"' {
            string_end(bytes, i)
        } else {
            visit(bytes, i)
        };
    }
}

/// Where the string opened by the quote at `start` ends (just past its closing quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests;
