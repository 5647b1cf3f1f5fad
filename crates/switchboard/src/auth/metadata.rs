//! Finding where to get tokens for a server, for the machine grants: the protected
//! resource's metadata (RFC 9728) and its authorization server's (RFC 8414 / OpenID).
//!
//! Order (the TypeScript SDK's, which the conformance suite follows): the PRM URL the
//! server's 401 challenge names (`resource_metadata`), else the path-aware well-known URL
//! (`/.well-known/oauth-protected-resource/mcp` for `/mcp`), then the root one. The
//! authorization server is the PRM's first `authorization_servers` entry (no PRM: the
//! server's origin, the 2025-03-26 rule). Its metadata: for an issuer without a path
//! `/.well-known/oauth-authorization-server` then `/.well-known/openid-configuration`;
//! with a path, both with the path appended after the well-known part, then OpenID's
//! `{issuer}/.well-known/openid-configuration`. The document's `issuer` must be the one
//! asked for (a trailing `/` aside), unless there is no PRM (MCP 2025-03-26: the metadata
//! is looked up at the server's origin, no issuer was asked for). The PRM's `resource` must name this server (same
//! origin, and the server's URL starts with its path); it is sent as RFC 8707's
//! `resource`.

use serde::Deserialize;
use url::Url;

use super::http::{AuthHttp, Fetched};
use crate::error::{AuthFailure, AuthStep, challenge_param};

/// What the machine grants need to know about a server's authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub issuer: String,
    pub token_endpoint: String,
    /// `token_endpoint_auth_methods_supported` (RFC 8414's default when absent:
    /// `client_secret_basic`).
    pub auth_methods: Vec<String>,
    /// The PRM's `resource`, when there is a PRM.
    pub resource: Option<String>,
    /// `dpop_signing_alg_values_supported`.
    pub dpop_algs: Vec<String>,
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Option<Vec<String>>,
}

/// The authorization server metadata fields signing in uses (RFC 8414).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ServerMetadata {
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 7009's token revocation endpoint.
    pub revocation_endpoint: Option<String>,
}

/// Everything discovery found, for the interactive sign-in (`flow.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    pub endpoints: Endpoints,
    /// The authorization server's metadata; the 2025-03-26 fallback's (no metadata at all)
    /// has only the three endpoints at the server's origin.
    pub server: ServerMetadata,
    /// Whether the metadata was found (not the 2025-03-26 endpoint fallback).
    pub found: bool,
    /// The PRM's `scopes_supported`.
    pub prm_scopes: Option<Vec<String>>,
}

fn failure(detail: String) -> AuthFailure {
    AuthFailure::new(AuthStep::Metadata, detail)
}

/// Discovers the endpoints of the server at `server_url`, starting from its 401
/// `challenge` when there is one.
pub(crate) async fn discover(
    http: &AuthHttp,
    server_url: &str,
    challenge: Option<&str>,
) -> Result<Endpoints, AuthFailure> {
    discover_all(http, server_url, challenge, false)
        .await
        .map(|d| d.endpoints)
}

/// The metadata of the authorization server `issuer` (RFC 8414 / OpenID, its issuer
/// checked), if it can be read.
pub(crate) async fn server_metadata(http: &AuthHttp, issuer: &str) -> Option<ServerMetadata> {
    let issuer_url = Url::parse(issuer).ok()?;
    for url in as_candidates(&issuer_url) {
        match http.get_json::<ServerMetadata>(&url).await {
            Fetched::Found(found) => {
                let said = found.issuer.as_deref().unwrap_or_default();
                return (said.trim_end_matches('/') == issuer.trim_end_matches('/'))
                    .then_some(found);
            }
            Fetched::Missing(_) => {}
            Fetched::Failed(_) => return None,
        }
    }
    None
}

/// [`discover`] with everything found. With `fallback` (the interactive sign-in), a server
/// with neither protected resource nor authorization server metadata gets the 2025-03-26
/// default endpoints `/authorize`, `/token` and `/register` at its origin.
pub(crate) async fn discover_all(
    http: &AuthHttp,
    server_url: &str,
    challenge: Option<&str>,
    fallback: bool,
) -> Result<Discovery, AuthFailure> {
    let server =
        Url::parse(server_url).map_err(|_| failure("the server URL is not valid".into()))?;
    let from_challenge = challenge.and_then(|c| challenge_param(c, "resource_metadata"));
    let candidates = match &from_challenge {
        Some(url) => vec![url.clone()],
        None => prm_candidates(&server),
    };
    let mut prm = None;
    for url in &candidates {
        match http.get_json::<ResourceMetadata>(url).await {
            Fetched::Found(found) if !found.authorization_servers.is_empty() => {
                prm = Some(found);
                break;
            }
            Fetched::Found(_) => {
                return Err(failure(
                    "the protected resource metadata lists no authorization_servers".into(),
                ));
            }
            Fetched::Missing(why) => tracing::debug!("no protected resource metadata: {why}"),
            Fetched::Failed(why) => return Err(failure(why)),
        }
    }
    if prm.is_none() && from_challenge.is_some() {
        return Err(failure(
            "the protected resource metadata the server named could not be read".into(),
        ));
    }
    let legacy = prm.is_none();
    let (issuer, resource, prm_scopes) = match prm {
        Some(prm) => {
            if let Some(resource) = &prm.resource {
                check_resource(&server, resource)?;
            }
            (
                prm.authorization_servers[0].clone(),
                prm.resource,
                prm.scopes_supported,
            )
        }
        None => (origin(&server), None, None),
    };
    let issuer_url = Url::parse(&issuer)
        .map_err(|_| failure("the authorization server URL is not valid".into()))?;
    for url in as_candidates(&issuer_url) {
        match http.get_json::<ServerMetadata>(&url).await {
            Fetched::Found(found) => {
                let said = found.issuer.clone().unwrap_or_default();
                // Without a PRM (MCP 2025-03-26) the metadata is the server's own, found at
                // its origin, which is no issuer identifier to compare with (RFC 8414's
                // rule binds the issuer to where it was looked up from an issuer).
                if !legacy && said.trim_end_matches('/') != issuer.trim_end_matches('/') {
                    return Err(failure(format!(
                        "the authorization server metadata names another issuer ({said:?}, expected {issuer:?})"
                    )));
                }
                let token_endpoint = found.token_endpoint.clone().ok_or_else(|| {
                    failure("the authorization server metadata has no token_endpoint".into())
                })?;
                let endpoints = Endpoints {
                    issuer: said,
                    token_endpoint,
                    auth_methods: found
                        .token_endpoint_auth_methods_supported
                        .clone()
                        .unwrap_or_else(|| vec!["client_secret_basic".into()]),
                    resource,
                    dpop_algs: found.dpop_signing_alg_values_supported.clone(),
                };
                return Ok(Discovery {
                    endpoints,
                    server: found,
                    found: true,
                    prm_scopes,
                });
            }
            Fetched::Missing(why) => tracing::debug!("no authorization server metadata: {why}"),
            Fetched::Failed(why) => return Err(failure(why)),
        }
    }
    if fallback && legacy {
        // MCP 2025-03-26: no metadata at all means the default endpoints at the origin.
        tracing::debug!("no metadata; using the 2025-03-26 default endpoints");
        let at = |path: &str| format!("{issuer}{path}");
        let server = ServerMetadata {
            issuer: Some(issuer.clone()),
            authorization_endpoint: Some(at("/authorize")),
            token_endpoint: Some(at("/token")),
            registration_endpoint: Some(at("/register")),
            ..ServerMetadata::default()
        };
        return Ok(Discovery {
            endpoints: Endpoints {
                issuer: issuer.clone(),
                token_endpoint: at("/token"),
                auth_methods: vec!["client_secret_basic".into()],
                resource: None,
                dpop_algs: Vec::new(),
            },
            server,
            found: false,
            prm_scopes: None,
        });
    }
    Err(failure(format!(
        "no authorization server metadata found for {issuer} (RFC 8414 or OpenID discovery)"
    )))
}

/// `scheme://host[:port]`.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn path_of(url: &Url) -> &str {
    let path = url.path().trim_end_matches('/');
    if path.is_empty() { "" } else { path }
}

/// The path-aware then the root PRM URL of `server`.
fn prm_candidates(server: &Url) -> Vec<String> {
    let base = format!("{}/.well-known/oauth-protected-resource", origin(server));
    match path_of(server) {
        "" => vec![base],
        path => vec![format!("{base}{path}"), base],
    }
}

/// The authorization server metadata URLs for `issuer`, in order.
fn as_candidates(issuer: &Url) -> Vec<String> {
    let origin = origin(issuer);
    match path_of(issuer) {
        "" => vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ],
        path => vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ],
    }
}

/// The PRM's `resource` must be this server: same origin, and a prefix of its path.
fn check_resource(server: &Url, resource: &str) -> Result<(), AuthFailure> {
    let matches = Url::parse(resource)
        .is_ok_and(|r| origin(&r) == origin(server) && path_of(server).starts_with(path_of(&r)));
    if matches {
        Ok(())
    } else {
        Err(failure(format!(
            "the protected resource metadata is for another resource ({resource:?}); refusing to get a token for it"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_urls_follow_the_path() {
        let server = Url::parse("http://h:1/mcp").unwrap();
        assert_eq!(
            prm_candidates(&server),
            [
                "http://h:1/.well-known/oauth-protected-resource/mcp",
                "http://h:1/.well-known/oauth-protected-resource"
            ]
        );
        let tenant = Url::parse("https://as.example/tenant1").unwrap();
        assert_eq!(
            as_candidates(&tenant)[0],
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            as_candidates(&Url::parse("https://as.example/").unwrap()).len(),
            2
        );
    }

    #[test]
    fn resource_must_name_this_server() {
        let server = Url::parse("http://localhost:5/mcp").unwrap();
        assert!(check_resource(&server, "http://localhost:5/mcp").is_ok());
        assert!(check_resource(&server, "http://localhost:5/").is_ok());
        assert!(check_resource(&server, "https://evil.example.com/mcp").is_err());
        assert!(check_resource(&server, "http://localhost:5/other").is_err());
    }
}
