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
//!   ignored too, but becomes a [`Config::warnings`] entry naming the file, server and key,
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

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::load::{
    Ctx, RawServer, is_valid_server_name, normalise_server_name, unknown_key_fix, validate_server,
};
use super::suggest::closest;
use super::{Config, ConfigError, ConfigWarning};

/// Where servers live in the shapes we read.
const SERVER_TABLES: &[&str] = &["mcpServers", "servers", "mcp"];

/// The keys of a server entry that Switchboard reads (see [`raw_server`]).
const SERVER_KEYS: &[&str] = &[
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

pub(super) fn parse(ctx: &Ctx<'_>, text: &str) -> Result<Config, ConfigError> {
    let stripped = strip_jsonc(text);
    let doc: Value = serde_json::from_str(&stripped).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .rfind(" at line ")
            .map_or(msg.as_str(), |i| &msg[..i])
            .to_string();
        let mut err = ConfigError::new(
            format!("JSON syntax error: {msg}"),
            "fix the JSON syntax at that position",
        )
        .with_file(ctx.file);
        if e.line() > 0 {
            err = err.at(e.line(), e.column());
        }
        err
    })?;
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

    let names = assign_names(entries.iter().map(|(n, _)| n.as_str()));
    let mut servers = BTreeMap::new();
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    for ((original, value), name) in entries.iter().zip(names) {
        if name != *original {
            tracing::debug!(original = %original, name = %name, "renamed server from JSON config");
        }
        let with_server = |e: ConfigError| e.with_server(original.clone());
        let Value::Object(obj) = value else {
            return Err(with_server(
                ConfigError::new(
                    "the server is not a JSON object",
                    "write \"NAME\": {\"command\": \"...\"} or \"NAME\": {\"url\": \"...\"}",
                )
                .with_file(ctx.file),
            ));
        };
        let (raw, unknown) = raw_server(obj).map_err(|(key, problem, fix)| {
            let mut e = with_server(ConfigError::new(problem, fix).with_file(ctx.file));
            e.key = Some(key.to_string());
            e
        })?;
        warnings.extend(unknown.into_iter().map(|key| {
            with_server(
                ConfigError::new("unknown key, ignored", unknown_key_fix(key, SERVER_KEYS))
                    .with_file(ctx.file)
                    .with_key(key),
            )
        }));
        let server = validate_server(ctx, &name, raw).map_err(|mut e| {
            e.server = Some(original.clone());
            e
        })?;
        servers.insert(name, server);
    }
    Ok(Config {
        servers,
        variables: BTreeMap::new(),
        catalog: Default::default(),
        sessions: Default::default(),
        registration: Default::default(),
        discovery: None,
        source: None,
        warnings,
    })
}

/// Maps original names to unique valid server names (see the module docs).
/// Returns one name per input, in input order.
fn assign_names<'a>(originals: impl Iterator<Item = &'a str>) -> Vec<String> {
    let originals: Vec<&str> = originals.collect();
    let mut order: Vec<usize> = (0..originals.len()).collect();
    order.sort_by_key(|&i| (originals[i], i));
    let mut taken = BTreeSet::new();
    let mut names = vec![String::new(); originals.len()];
    // Valid names first, so they keep their name.
    let mut rest = Vec::new();
    for &i in &order {
        let name = originals[i];
        if is_valid_server_name(name) && taken.insert(name.to_string()) {
            names[i] = name.to_string();
        } else {
            rest.push(i);
        }
    }
    for i in rest {
        let base = normalise_server_name(originals[i]);
        let mut candidate = base.clone();
        let mut n = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        names[i] = candidate;
    }
    names
}

type FieldError = (&'static str, String, String);

/// Converts one server object into a [`RawServer`], ignoring keys we do not use. Also
/// returns the keys that are neither ours nor another client's (see the module docs).
fn raw_server(obj: &Map<String, Value>) -> Result<(RawServer, Vec<&str>), FieldError> {
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
            other => unknown.push(other),
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
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    bytes[i] = b' ';
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let end = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |e| i + 2 + e + 2);
                for byte in &mut bytes[i..end] {
                    if *byte != b'\n' {
                        *byte = b' ';
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Trailing commas: a comma followed (after whitespace) by `}` or `]`, outside strings.
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i += 1;
    }
    // Only ASCII bytes outside strings were replaced by spaces, whole comments included, so
    // the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests;
