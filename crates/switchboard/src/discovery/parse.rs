//! Turning a registry's answer into entries: one display name and a server (or why there
//! is none) per listed server.
//!
//! Two shapes are read:
//!
//! - **A365 lists**: `{"mcpServers": [ {...}, ... ]}` or a bare array, entries with
//!   `mcpServerName`, `mcpServerUniqueName` and (v2) `url`, `headers`, `audience`, `scope`,
//!   `publisher`. Without a `url` (always, in v1) the URL is
//!   `{endpoint}/agents/servers/{mcpServerUniqueName}`. `audience`, `scope` and `publisher`
//!   are not used (per-audience token exchange is not supported); they are logged at debug.
//! - **`mcpServers` documents** (kind `url` only): the JSON config shape of Claude Desktop,
//!   Cursor and VS Code, each entry read by the same parser as a config file
//!   ([`Config::from_json_str`]), one entry at a time so that one bad entry fails alone.
//!   Strict JSON is read entry by entry; a JSONC file (comments) is read whole.
//!
//! A document that is not JSON, or has no list where one is expected, is malformed (the
//! whole discovery fails). A bad *entry* (no URL, not http(s), a bad header) is a failure of
//! that entry only.
//!
//! Trust: values the registry sends are literals. Header values are escaped (`$` → `$$`) so
//! the connect-time templating never expands `${env:...}` from a registry's answer, and a
//! remotely fetched document may not start local programs (`command` entries fail).

use serde_json::{Map, Value};

use super::fetch::join_segments;
use crate::config::template::is_valid_header_name;
use crate::config::{A365Api, Config, ServerConfig, TransportKind, is_http_url};

/// One listed server.
#[derive(Debug)]
pub(super) struct Entry {
    pub display_name: String,
    /// The server with an empty name (names are given once all entries are known), or why
    /// this entry cannot be registered.
    pub server: Result<ServerConfig, String>,
}

/// A malformed answer: why.
pub(super) type Malformed = String;

/// An A365 answer. `endpoint` is the base of fallback URLs.
pub(super) fn a365(body: &str, api: A365Api, endpoint: &str) -> Result<Vec<Entry>, Malformed> {
    let doc: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    let items = entry_list(doc)?;
    Ok(items
        .iter()
        .map(|item| a365_entry(item, api, Some(endpoint)))
        .collect())
}

/// A `kind = "url"` document; `remote` when it came over HTTP.
pub(super) fn document(body: &str, remote: bool) -> Result<Vec<Entry>, Malformed> {
    let doc: Value = match serde_json::from_str(body) {
        Ok(doc) => doc,
        // Not strict JSON: maybe JSONC, which the config parser reads (and words errors for).
        Err(_) => {
            let config = Config::from_json_str(body, None).map_err(|e| e.to_string())?;
            return Ok(config
                .servers
                .into_values()
                .map(|server| {
                    let display_name = server.name.clone();
                    json_entry(display_name, Ok(server), remote)
                })
                .collect());
        }
    };
    if doc.is_array() || doc.get("mcpServers").is_some_and(Value::is_array) {
        let items = entry_list(doc)?;
        return Ok(items
            .iter()
            .map(|item| a365_entry(item, A365Api::V2, None))
            .collect());
    }
    let Value::Object(top) = doc else {
        return Err("the document is not a JSON object".to_string());
    };
    let tables = [
        ("mcpServers", top.get("mcpServers")),
        ("servers", top.get("servers")),
        ("mcp.servers", top.get("mcp").and_then(|m| m.get("servers"))),
    ];
    let mut entries = Vec::new();
    for (key, table) in tables {
        match table {
            None => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    entries.push(json_entry(name.clone(), parse_one(name, value), remote));
                }
            }
            Some(_) => return Err(format!("'{key}' is not a JSON object")),
        }
    }
    Ok(entries)
}

/// The entries of `{"mcpServers": [...]}` or `[...]`.
fn entry_list(doc: Value) -> Result<Vec<Value>, Malformed> {
    match doc {
        Value::Array(items) => Ok(items),
        Value::Object(mut top) => match top.remove("mcpServers") {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err("'mcpServers' is not an array".to_string()),
            None => Err("the answer has no 'mcpServers' list".to_string()),
        },
        _ => Err("the answer is not a JSON object or array".to_string()),
    }
}

fn a365_entry(item: &Value, api: A365Api, endpoint: Option<&str>) -> Entry {
    let Some(obj) = item.as_object() else {
        return Entry {
            display_name: super::display_name(None, None),
            server: Err("the registry's entry is not a JSON object".to_string()),
        };
    };
    let text = |key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let name = text("mcpServerName");
    let unique = text("mcpServerUniqueName");
    let url = match api {
        A365Api::V1 => None,
        A365Api::V2 => text("url").map(str::to_string),
    }
    .or_else(|| {
        let (endpoint, unique) = (endpoint?, unique?);
        join_segments(endpoint, &["agents", "servers", unique]).map(String::from)
    });
    let display_name = super::display_name(name, url.as_deref());
    let server = a365_server(obj, api, url);
    if server.is_ok()
        && ["audience", "scope", "publisher"]
            .iter()
            .any(|k| obj.contains_key(*k))
    {
        tracing::debug!(server = %display_name, "ignoring audience/scope/publisher of a discovered server");
    }
    Entry {
        display_name,
        server,
    }
}

fn a365_server(
    obj: &Map<String, Value>,
    api: A365Api,
    url: Option<String>,
) -> Result<ServerConfig, String> {
    let Some(url) = url else {
        return Err(
            "the registry gave no URL for it (neither 'url' nor 'mcpServerUniqueName')".to_string(),
        );
    };
    if !is_http_url(&url) {
        return Err("the registry gave a URL that is not a valid http(s) URL".to_string());
    }
    let mut server = ServerConfig::url(String::new(), url);
    server.transport = TransportKind::StreamableHttp;
    if api == A365Api::V2 {
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(headers)) => {
                for (name, value) in headers {
                    let Some(value) = value.as_str() else {
                        return Err(format!("the registry's header '{name}' is not a string"));
                    };
                    if !is_valid_header_name(name) {
                        return Err(format!(
                            "the registry gave the invalid header name {name:?}"
                        ));
                    }
                    server.headers.insert(name.clone(), literal(value));
                }
            }
            Some(_) => return Err("the registry's 'headers' is not a JSON object".to_string()),
        }
    }
    Ok(server)
}

/// One entry of an `mcpServers` document, read by the config's JSON parser.
fn parse_one(name: &str, value: &Value) -> Result<ServerConfig, String> {
    let mut one = Map::new();
    one.insert(name.to_string(), value.clone());
    let doc = Value::Object(Map::from_iter([(
        "mcpServers".to_string(),
        Value::Object(one),
    )]));
    let config = Config::from_json_str(&doc.to_string(), None).map_err(|e| e.to_string())?;
    config
        .servers
        .into_values()
        .next()
        .ok_or_else(|| "the entry is not a server".to_string())
}

/// Applies the trust rules to an `mcpServers` entry.
fn json_entry(name: String, server: Result<ServerConfig, String>, remote: bool) -> Entry {
    let server = server.and_then(|mut server| {
        if remote {
            if server.transport == TransportKind::Stdio {
                return Err(
                    "a document fetched over HTTP may list only URL servers, but this \
                            entry has a 'command' (stdio servers are accepted from local files \
                            only)"
                        .to_string(),
                );
            }
            for value in server.headers.values_mut() {
                *value = literal(value);
            }
        }
        server.name = String::new();
        Ok(server)
    });
    let url = server.as_ref().ok().and_then(|s| s.url.as_deref());
    let display_name = super::display_name(Some(name.as_str()).filter(|n| !n.is_empty()), url);
    Entry {
        display_name,
        server,
    }
}

/// A registry's value as a template that renders to itself.
fn literal(value: &str) -> String {
    value.replace('$', "$$")
}
