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
//! turning their answers into servers live in the engine's `discovery` module; this file
//! checks the table ([`validate_discovery`]) into a [`DiscoveryConfig`] (`types.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::checks::{
    UrlWording, check_headers, check_http_url, check_template, one_of, parse_duration,
};
use crate::config::diagnostics::{Ctx, Problem, one_of_fix};
use crate::config::raw::RawDiscovery;
use crate::config::types::{A365Api, DEFAULT_DISCOVERY_TIMEOUT, DiscoveryConfig, RegistryKind};
use crate::error::ConfigError;

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
        check_http_url(&endpoint, &registry_url("endpoint"))
            .map_err(|(p, f)| err("endpoint", p, f))?;
        // A non-blank value for `key`, or an error saying what to set it to.
        let filled = |key: &str, value: Option<String>, what: &str| {
            let value = value.unwrap_or_default();
            if value.trim().is_empty() {
                return Err(err(
                    key,
                    format!("'{key}' is empty"),
                    format!("set it to {what}"),
                ));
            }
            Ok(value)
        };
        let agent_id = filled(
            "agent_id",
            raw.agent_id,
            "the agent's id (the agentic app id), e.g. agent_id = \"my-agent\"",
        )?;
        let auth_token = filled(
            "auth_token",
            raw.auth_token,
            "a template for the token, e.g. auth_token = \"${env:A365_TOKEN}\"",
        )?;
        check_template("'auth_token'", &auth_token).map_err(|(p, f)| err("auth_token", p, f))?;
        let api = match raw.api.as_deref() {
            None => A365Api::default(),
            Some(value) => one_of(value, &A365Api::ALL, "A365 api")
                .map_err(|(problem, fix)| err("api", problem, fix))?,
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

/// How URL problems are worded for the key `key` of `[discovery]`.
fn registry_url(key: &str) -> UrlWording<'_> {
    UrlWording {
        subject: match key {
            "endpoint" => "'endpoint'",
            _ => "'url'",
        },
        example: match key {
            "endpoint" => "endpoint = \"https://registry.example.com\"",
            _ => "url = \"https://registry.example.com\"",
        },
    }
}

/// Where a `kind = "url"` document is: (location, whether it is fetched over HTTP).
/// http(s) and `file://` URLs are kept as written; a path is made absolute against the
/// config file's directory.
fn document_location(value: &str, file: Option<&Path>) -> Result<(String, bool), Problem> {
    let fix = "write an http(s) URL, a file:// URL or a path, e.g. \
               url = \"https://registry.example.com/mcpServers.json\" or url = \"servers.json\""
        .to_string();
    if value.trim().is_empty() {
        return Err(("'url' is empty".to_string(), fix));
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        check_http_url(value, &registry_url("url"))?;
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
