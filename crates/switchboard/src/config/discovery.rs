//! The `[discovery]` table: where the list of servers comes from when it is not written in
//! the config itself.
//!
//! ```toml
//! [discovery]
//! kind = "a365"                       # or "url"
//! endpoint = "https://agent365.svc.cloud.microsoft"
//! agent_id = "my-agent"
//! auth_token = "${env:A365_TOKEN}"    # templated, rendered at discovery time
//! api = "v2"                          # or "v1"; default "v2"
//! refresh_interval = "5m"             # optional: discover again periodically
//! request_timeout = "30s"             # optional, default 30s
//!
//! [discovery.server_auth."Mail Server"]   # matched case-insensitively on the display name
//! Authorization = "Bearer ${env:MAIL_TOKEN}"
//! ```
//!
//! `kind = "url"` takes `url` (http(s), `file://` or a path, relative to the config file) and,
//! for http(s), `headers` (templated). The registry kinds' wire formats and the rules for
//! turning their answers into servers live in the engine's `discovery` module; this file only
//! reads and checks the table (same two steps as the rest of the loader: a raw struct with
//! `deny_unknown_fields`, then [`validate_discovery`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::load::{Ctx, check_headers, one_of_fix, parse_duration};
use super::template;

/// How long one discovery request may take, unless `request_timeout` says otherwise.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The validated `[discovery]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Which registry is asked, and how.
    pub registry: RegistryKind,
    /// Extra headers (templates) for discovered servers, keyed by display name as written in
    /// the file; matched case-insensitively. They win over headers the registry supplies.
    pub server_auth: BTreeMap<String, BTreeMap<String, String>>,
    /// Discover again this often; `None`: only at start.
    pub refresh_interval: Option<Duration>,
    /// The limit for one discovery request (connect, answer and body).
    pub request_timeout: Duration,
}

/// `kind`: the registry and its settings.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryKind {
    /// The Agent 365 tooling gateway.
    A365 {
        /// Base URL, e.g. `https://agent365.svc.cloud.microsoft`.
        endpoint: String,
        agent_id: String,
        /// A template (`${env:A365_TOKEN}`), rendered for each discovery request.
        auth_token: String,
        api: A365Api,
    },
    /// Any http(s) URL or local file holding an `mcpServers` document.
    Url {
        /// `http(s)://...`, `file://...` or an absolute path (relative paths are resolved
        /// against the config file's directory when the config is loaded).
        url: String,
        /// Header templates sent with an http(s) request.
        headers: BTreeMap<String, String>,
    },
}

/// `api`: which A365 discovery endpoint is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum A365Api {
    /// `GET {endpoint}/agents/{agent_id}/mcpServers` (names only).
    V1,
    /// `GET {endpoint}/agents/v2/{agent_id}/mcpServers` (URLs, headers, audiences).
    #[default]
    V2,
}

impl A365Api {
    pub const ALL: [(A365Api, &'static str); 2] = [(A365Api::V1, "v1"), (A365Api::V2, "v2")];
}

impl DiscoveryConfig {
    /// The stable name the registry goes by in errors and health: `a365` or `discovery`.
    pub fn registry_name(&self) -> &'static str {
        match self.registry {
            RegistryKind::A365 { .. } => "a365",
            RegistryKind::Url { .. } => "discovery",
        }
    }
}

// Debug by hand: templates may be literal secrets, so values are never printed.
impl std::fmt::Debug for DiscoveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth: BTreeMap<&str, Vec<&str>> = self
            .server_auth
            .iter()
            .map(|(name, headers)| (name.as_str(), headers.keys().map(String::as_str).collect()))
            .collect();
        f.debug_struct("DiscoveryConfig")
            .field("registry", &self.registry)
            .field("server_auth", &auth)
            .field("refresh_interval", &self.refresh_interval)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Debug for RegistryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryKind::A365 {
                endpoint,
                agent_id,
                api,
                ..
            } => f
                .debug_struct("A365")
                .field("endpoint", endpoint)
                .field("agent_id", agent_id)
                .field("auth_token", &"***")
                .field("api", api)
                .finish(),
            RegistryKind::Url { headers, .. } => f
                .debug_struct("Url")
                .field("url", &"***")
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw table and validation

/// The `[discovery]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscovery {
    pub kind: Option<String>,
    pub endpoint: Option<String>,
    pub agent_id: Option<String>,
    pub auth_token: Option<String>,
    pub api: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub refresh_interval: Option<String>,
    pub request_timeout: Option<String>,
    pub server_auth: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

const KINDS: [&str; 2] = ["a365", "url"];

/// The `[discovery]` table.
pub(super) fn validate_discovery(
    ctx: &Ctx<'_>,
    raw: RawDiscovery,
) -> Result<DiscoveryConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| {
        let mut path = vec!["discovery"];
        path.extend(key.split('.').filter(|k| !k.is_empty()));
        ctx.error_at(&path, problem, fix)
    };

    let kind = raw.kind.as_deref().ok_or_else(|| {
        err(
            "",
            "the [discovery] table has no 'kind'".to_string(),
            "add kind = \"a365\" (the Agent 365 tooling gateway) or kind = \"url\" (an \
             mcpServers JSON document at a URL or in a file)"
                .to_string(),
        )
    })?;
    if !KINDS.contains(&kind) {
        return Err(err(
            "kind",
            format!("unknown discovery kind \"{kind}\""),
            one_of_fix(kind, &KINDS),
        ));
    }

    // Keys of the other kind.
    let present = |key: &str| match key {
        "endpoint" => raw.endpoint.is_some(),
        "agent_id" => raw.agent_id.is_some(),
        "auth_token" => raw.auth_token.is_some(),
        "api" => raw.api.is_some(),
        "url" => raw.url.is_some(),
        "headers" => raw.headers.is_some(),
        _ => false,
    };
    let (foreign, needed): (&[&str], &[&str]) = match kind {
        "a365" => (&["url", "headers"], &["endpoint", "agent_id", "auth_token"]),
        _ => (&["endpoint", "agent_id", "auth_token", "api"], &["url"]),
    };
    if let Some(key) = foreign.iter().find(|k| present(k)) {
        let other = if kind == "a365" { "url" } else { "a365" };
        return Err(err(
            key,
            format!("'{key}' only applies to kind = \"{other}\", but this is kind = \"{kind}\""),
            "remove it, or change 'kind'".to_string(),
        ));
    }
    if let Some(key) = needed.iter().find(|k| !present(k)) {
        let example = match *key {
            "endpoint" => "endpoint = \"https://agent365.svc.cloud.microsoft\"",
            "agent_id" => "agent_id = \"YOUR-AGENT-ID\"",
            "auth_token" => "auth_token = \"${env:A365_TOKEN}\"",
            _ => "url = \"https://registry.example.com/mcpServers.json\" or url = \"servers.json\"",
        };
        return Err(err(
            key,
            format!("kind = \"{kind}\" needs '{key}', which is missing"),
            format!("add {example}"),
        ));
    }

    let registry = if kind == "a365" {
        let endpoint = raw.endpoint.unwrap_or_default();
        check_http_url("endpoint", &endpoint).map_err(|(p, f)| err("endpoint", p, f))?;
        let agent_id = raw.agent_id.unwrap_or_default();
        if agent_id.trim().is_empty() {
            return Err(err(
                "agent_id",
                "'agent_id' is empty".to_string(),
                "set it to the agent's id (the agentic app id), e.g. agent_id = \"my-agent\""
                    .to_string(),
            ));
        }
        let auth_token = raw.auth_token.unwrap_or_default();
        if auth_token.trim().is_empty() {
            return Err(err(
                "auth_token",
                "'auth_token' is empty".to_string(),
                "set it to a template for the token, e.g. auth_token = \"${env:A365_TOKEN}\""
                    .to_string(),
            ));
        }
        template::check_syntax("'auth_token'", &auth_token).map_err(|e| {
            err(
                "auth_token",
                e.to_string(),
                "close every ${ with }, e.g. ${token} or ${env:NAME}".to_string(),
            )
        })?;
        let api = match raw.api.as_deref() {
            None => A365Api::default(),
            Some(value) => A365Api::ALL
                .iter()
                .find(|(_, name)| *name == value)
                .map(|(api, _)| *api)
                .ok_or_else(|| {
                    err(
                        "api",
                        format!("unknown A365 api \"{value}\""),
                        one_of_fix(value, &["v1", "v2"]),
                    )
                })?,
        };
        RegistryKind::A365 {
            endpoint,
            agent_id,
            auth_token,
            api,
        }
    } else {
        let url = raw.url.unwrap_or_default();
        let (url, is_http) =
            document_location(&url, ctx.file).map_err(|(p, f)| err("url", p, f))?;
        let headers = raw.headers.unwrap_or_default();
        if !headers.is_empty() && !is_http {
            return Err(err(
                "headers",
                "'headers' only applies to an http(s) 'url', but 'url' is a file".to_string(),
                "remove 'headers'".to_string(),
            ));
        }
        check_headers(&headers).map_err(|(p, f)| err("headers", p, f))?;
        RegistryKind::Url { url, headers }
    };

    let duration = |key: &str, value: &str| {
        parse_duration(key, value).map_err(|(problem, fix)| err(key, problem, fix))
    };
    let refresh_interval = match raw.refresh_interval.as_deref() {
        Some(value) => Some(duration("refresh_interval", value)?),
        None => None,
    };
    let request_timeout = match raw.request_timeout.as_deref() {
        Some(value) => duration("request_timeout", value)?,
        None => DEFAULT_DISCOVERY_TIMEOUT,
    };

    let server_auth = raw.server_auth.unwrap_or_default();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, headers) in &server_auth {
        let at = |problem: String, fix: String| {
            ctx.error_at(&["discovery", "server_auth", name], problem, fix)
        };
        if name.trim().is_empty() {
            return Err(at(
                "a server_auth entry has an empty server name".to_string(),
                "key it by the discovered server's name, e.g. [discovery.server_auth.\"Mail\"]"
                    .to_string(),
            ));
        }
        if let Some(other) = seen.insert(name.to_lowercase(), name) {
            return Err(at(
                format!("the server_auth entries '{other}' and '{name}' differ only in case"),
                "server names are matched ignoring case; keep one of them".to_string(),
            ));
        }
        check_headers(headers).map_err(|(p, f)| at(p, f))?;
    }

    Ok(DiscoveryConfig {
        registry,
        server_auth,
        refresh_interval,
        request_timeout,
    })
}

/// An http(s) URL. Messages never include the URL (it may carry credentials).
fn check_http_url(key: &str, value: &str) -> Result<(), (String, String)> {
    let fix = format!("write a full http(s) URL, e.g. {key} = \"https://registry.example.com\"");
    match url::Url::parse(value) {
        Err(e) => Err((format!("'{key}' is not a valid URL ({e})"), fix)),
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err((
            format!(
                "'{key}' uses the scheme '{}'; only http and https are supported",
                u.scheme()
            ),
            fix,
        )),
    }
}

/// Where a `kind = "url"` document is: (location, whether it is fetched over HTTP).
/// http(s) and `file://` URLs are kept as written; a path is made absolute against the
/// config file's directory.
fn document_location(value: &str, file: Option<&Path>) -> Result<(String, bool), (String, String)> {
    let fix = "write an http(s) URL, a file:// URL or a path, e.g. \
               url = \"https://registry.example.com/mcpServers.json\" or url = \"servers.json\""
        .to_string();
    if value.trim().is_empty() {
        return Err(("'url' is empty".to_string(), fix));
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        check_http_url("url", value)?;
        return Ok((value.to_string(), true));
    }
    if lower.starts_with("file://") {
        return match url::Url::parse(value).ok().map(|u| u.to_file_path()) {
            Some(Ok(_)) => Ok((value.to_string(), false)),
            _ => Err((
                "'url' is not a usable file:// URL (it needs an absolute path)".to_string(),
                fix,
            )),
        };
    }
    if let Ok(u) = url::Url::parse(value)
        && u.scheme().len() > 1
    {
        return Err((
            format!(
                "'url' uses the scheme '{}'; only http, https and file are supported",
                u.scheme()
            ),
            fix,
        ));
    }
    let path = Path::new(value);
    let path = match file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    Ok((path.to_string_lossy().into_owned(), false))
}

#[cfg(test)]
mod tests;
