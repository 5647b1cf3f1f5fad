//! Getting the registry's answer: one HTTP GET (or one file read), classified into [`Error`]
//! by status code and error type.
//!
//! | outcome                               | error                                        |
//! |---------------------------------------|----------------------------------------------|
//! | HTTP 401 / 403                        | [`Error::RegistryAuth`] (with `WWW-Authenticate`) |
//! | any other non-2xx status              | [`Error::Discovery`] with `status` set       |
//! | connect error, broken body, timeout   | [`Error::Unreachable`] (server = registry)   |
//! | a file that cannot be read            | [`Error::Unreachable`]                       |
//!
//! A malformed body is classified by the parser (`parse.rs`). Messages never contain the
//! token, header values or the request URL (reqwest's own message would show the URL).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};

use crate::config::template::{self, Variables};
use crate::config::{A365Api, ConfigError, DiscoveryConfig, RegistryKind};
use crate::error::{Error, describe_chain};
use crate::transport::headers::header_map;

/// `User-Agent` of discovery requests.
pub const DISCOVERY_USER_AGENT: &str = concat!("switchboard/", env!("CARGO_PKG_VERSION"));

/// The registry's answer.
pub(super) struct Fetched {
    pub body: String,
    /// Fetched over HTTP (so not trusted with stdio servers or templates).
    pub remote: bool,
}

/// Asks the registry of `config` for its document.
pub(super) async fn fetch(
    config: &DiscoveryConfig,
    variables: &BTreeMap<String, String>,
    client: &reqwest::Client,
) -> Result<Fetched, Error> {
    let registry = config.registry_name();
    let vars = Variables::from_config(variables);
    match &config.registry {
        RegistryKind::A365 {
            endpoint,
            agent_id,
            auth_token,
            api,
        } => {
            let url = a365_list_url(endpoint, agent_id, *api).ok_or_else(|| Error::Discovery {
                registry: registry.to_string(),
                status: None,
                reason: "the endpoint cannot be used as a base URL".to_string(),
            })?;
            let token = template::render("'auth_token'", auth_token, vars).map_err(|source| {
                Error::Template {
                    server: registry.to_string(),
                    source,
                }
            })?;
            if token.trim().is_empty() {
                return Err(ConfigError::new(
                    "'auth_token' is empty after substitution",
                    "set the variable or environment variable it names to the registry token",
                )
                .with_key("discovery.auth_token")
                .into());
            }
            // A token written with its scheme is sent as it is.
            let bearer = if token
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
            {
                token
            } else {
                format!("Bearer {token}")
            };
            let mut headers =
                header_map(vec![(AUTHORIZATION.to_string(), bearer)]).map_err(|_| {
                    Error::Discovery {
                        registry: registry.to_string(),
                        status: None,
                        reason: "'auth_token' is not a valid header value after substitution"
                            .to_string(),
                    }
                })?;
            if *api == A365Api::V2 {
                headers.insert(USER_AGENT, HeaderValue::from_static(DISCOVERY_USER_AGENT));
                if let Ok(id) = HeaderValue::from_str(agent_id) {
                    headers.insert("x-ms-agentid", id);
                }
                let correlation = uuid::Uuid::new_v4().to_string();
                headers.insert(
                    "x-ms-correlation-id",
                    HeaderValue::from_str(&correlation).expect("a uuid is a header value"),
                );
            }
            let body = get(registry, client, url, headers, config.request_timeout).await?;
            Ok(Fetched { body, remote: true })
        }
        RegistryKind::Url { url, headers } => {
            if !is_http(url) {
                return read_file(registry, url).await;
            }
            let url = reqwest::Url::parse(url).map_err(|e| Error::Discovery {
                registry: registry.to_string(),
                status: None,
                reason: format!("'url' is not a valid URL ({e})"),
            })?;
            let rendered =
                template::render_headers(headers, vars).map_err(|source| Error::Template {
                    server: registry.to_string(),
                    source,
                })?;
            let mut map = header_map(rendered).map_err(|e| Error::Discovery {
                registry: registry.to_string(),
                status: None,
                reason: format!("{e} after substitution"),
            })?;
            map.insert(USER_AGENT, HeaderValue::from_static(DISCOVERY_USER_AGENT));
            let body = get(registry, client, url, map, config.request_timeout).await?;
            Ok(Fetched { body, remote: true })
        }
    }
}

/// `{endpoint}/agents/{agent_id}/mcpServers` (v1) or `{endpoint}/agents/v2/{agent_id}/mcpServers`
/// (v2); the agent id is percent-encoded as one path segment.
pub(super) fn a365_list_url(endpoint: &str, agent_id: &str, api: A365Api) -> Option<reqwest::Url> {
    let segments: &[&str] = match api {
        A365Api::V1 => &["agents", agent_id, "mcpServers"],
        A365Api::V2 => &["agents", "v2", agent_id, "mcpServers"],
    };
    join_segments(endpoint, segments)
}

/// `endpoint` with `segments` appended (a trailing `/` of the endpoint is dropped).
pub(super) fn join_segments(endpoint: &str, segments: &[&str]) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(endpoint).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}

fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

async fn get(
    registry: &str,
    client: &reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<String, Error> {
    let response = client
        .get(url)
        .headers(headers)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(registry, &e, timeout))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return Err(Error::RegistryAuth {
            registry: registry.to_string(),
            status: status.as_u16(),
            challenge,
        });
    }
    if !status.is_success() {
        return Err(Error::Discovery {
            registry: registry.to_string(),
            status: Some(status.as_u16()),
            reason: format!("discovery failed (HTTP {})", status.as_u16()),
        });
    }
    response
        .text()
        .await
        .map_err(|e| transport_error(registry, &e, timeout))
}

/// A reqwest error as [`Error::Unreachable`]: its kind and its sources, never its URL.
fn transport_error(registry: &str, error: &reqwest::Error, timeout: Duration) -> Error {
    let kind = if error.is_timeout() {
        format!(
            "no complete answer within {}",
            humantime::format_duration(timeout)
        )
    } else if error.is_connect() {
        "could not connect".to_string()
    } else if error.is_body() || error.is_decode() {
        "the response body failed".to_string()
    } else {
        "the request failed".to_string()
    };
    // reqwest's own message carries the URL (and its query); its sources do not.
    let reason = match error.source() {
        Some(source) => format!("{kind}: {}", describe_chain(source)),
        None => kind,
    };
    Error::Unreachable {
        server: registry.to_string(),
        reason,
    }
}

/// Reads a local discovery document (`file://` URL or path).
async fn read_file(registry: &str, location: &str) -> Result<Fetched, Error> {
    let path = if location
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("file://"))
    {
        reqwest::Url::parse(location)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| Error::Discovery {
                registry: registry.to_string(),
                status: None,
                reason: "'url' is not a usable file:// URL".to_string(),
            })?
    } else {
        std::path::PathBuf::from(location)
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(body) => Ok(Fetched {
            body,
            remote: false,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(Error::Discovery {
            registry: registry.to_string(),
            status: None,
            reason: format!("{} is not UTF-8 text", path.display()),
        }),
        Err(e) => Err(Error::Unreachable {
            server: registry.to_string(),
            reason: format!("cannot read {}: {e}", path.display()),
        }),
    }
}
