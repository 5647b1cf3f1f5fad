//! The MCP test server as an OAuth protected resource: every `/mcp` request needs a bearer
//! token the test authorization server issued and has not revoked or expired; otherwise
//! 401 with `WWW-Authenticate: Bearer resource_metadata="…"` (and `error="invalid_token"`
//! when a token was sent). The protected resource metadata (RFC 9728) is served at
//! `/.well-known/oauth-protected-resource/mcp`. A request that passes carries the token's
//! subject and client to the tools as `x-testkit-subject` / `x-testkit-client` headers
//! (`whoami` reads them). A DPoP-bound token must come as `Authorization: DPoP` with a
//! proof by its key (`dpop.rs`), carrying the resource's nonce when the knob requires one
//! (else 401 `DPoP error="use_dpop_nonce"` with a `DPoP-Nonce` header).

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::dpop::{self, DpopKnob};
use super::{AuthServerHandle, Grant};

/// Where a resource's PRM is served (path-aware, for an MCP endpoint at `/mcp`).
pub const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Wraps `router` (the MCP routes) with the token check and adds the PRM route.
pub(crate) fn protect(router: Router, addr: SocketAddr, auth: AuthServerHandle) -> Router {
    let state = Guard {
        challenge: format!("Bearer resource_metadata=\"http://{addr}{PRM_PATH}\""),
        url: format!("http://{addr}/mcp"),
        auth: auth.clone(),
    };
    let metadata = json!({
        "resource": format!("http://{addr}/mcp"),
        "authorization_servers": [auth.issuer()],
        "scopes_supported": auth.scopes_supported(),
        "bearer_methods_supported": ["header"],
    });
    router
        .layer(middleware::from_fn_with_state(state, check_token))
        .route(PRM_PATH, get(move || async move { Json(metadata) }))
}

/// The scope a `tools/call` in `body` needs and `grant` lacks (`AuthKnobs::tool_scopes`).
fn missing_scope(auth: &AuthServerHandle, grant: &super::Grant, body: &[u8]) -> Option<String> {
    let message: serde_json::Value = serde_json::from_slice(body).ok()?;
    if message["method"] != "tools/call" {
        return None;
    }
    let tool = message["params"]["name"].as_str()?;
    auth.0
        .knobs
        .tool_scopes
        .iter()
        .find(|(t, scope)| t == tool && !grant.scopes.contains(scope))
        .map(|(_, scope)| scope.clone())
}

#[derive(Clone)]
struct Guard {
    challenge: String,
    /// The MCP endpoint's URL (a DPoP proof's `htu`).
    url: String,
    auth: AuthServerHandle,
}

/// Whose token `request` carries, if it is valid (and, when DPoP-bound, presented with a
/// proof by its key); `Err`: the answer asking for the resource's DPoP nonce.
fn presented(guard: &Guard, request: &Request) -> Result<Option<Grant>, Box<Response>> {
    let Some((scheme, token)) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return Ok(None);
    };
    let Some((grant, key)) = guard.auth.check_bound(token) else {
        return Ok(None);
    };
    let Some(key) = key else {
        return Ok(scheme.eq_ignore_ascii_case("bearer").then_some(grant));
    };
    let proof = request.headers().get("dpop").and_then(|v| v.to_str().ok());
    let checked = proof.and_then(|proof| {
        dpop::check(proof, request.method().as_str(), &guard.url, Some(token)).ok()
    });
    match checked {
        Some(checked) if scheme.eq_ignore_ascii_case("dpop") && checked.key == key => {
            if guard.auth.0.knobs.dpop == DpopKnob::RequireNonce
                && checked.nonce.as_deref() != Some(dpop::RS_NONCE)
            {
                guard.auth.count_nonce_challenge();
                let challenge =
                    "DPoP error=\"use_dpop_nonce\", error_description=\"a nonce is required\"";
                return Err(Box::new(
                    (
                        StatusCode::UNAUTHORIZED,
                        [
                            (
                                header::WWW_AUTHENTICATE,
                                HeaderValue::from_static(challenge),
                            ),
                            (
                                header::HeaderName::from_static("dpop-nonce"),
                                HeaderValue::from_static(dpop::RS_NONCE),
                            ),
                        ],
                        "use the DPoP nonce",
                    )
                        .into_response(),
                ));
            }
            Ok(Some(grant))
        }
        _ => Ok(None),
    }
}

async fn check_token(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let sent = request
        .headers()
        .contains_key(header::AUTHORIZATION)
        .then_some(());
    let grant = match presented(&guard, &request) {
        Ok(grant) => grant,
        Err(response) => return *response,
    };
    let grant = match grant {
        Some(grant) if !guard.auth.0.knobs.tool_scopes.is_empty() => {
            let (parts, body) = request.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Some(scope) = missing_scope(&guard.auth, &grant, &bytes) {
                let challenge = format!(
                    "{}, error=\"insufficient_scope\", scope=\"{scope}\"",
                    guard.challenge
                );
                return (
                    StatusCode::FORBIDDEN,
                    [(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::try_from(challenge)
                            .unwrap_or(HeaderValue::from_static("Bearer")),
                    )],
                    "insufficient scope",
                )
                    .into_response();
            }
            request = Request::from_parts(parts, axum::body::Body::from(bytes));
            Some(grant)
        }
        other => other,
    };
    match grant {
        Some(grant) => {
            let headers = request.headers_mut();
            for (name, value) in [
                ("x-testkit-subject", grant.subject),
                ("x-testkit-client", grant.client_id),
            ] {
                if let Ok(value) = HeaderValue::try_from(value) {
                    headers.insert(name, value);
                }
            }
            next.run(request).await
        }
        None => {
            guard.auth.count_rejected();
            let challenge = if sent.is_some() {
                format!("{}, error=\"invalid_token\"", guard.challenge)
            } else {
                guard.challenge.clone()
            };
            (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::try_from(challenge).unwrap_or(HeaderValue::from_static("Bearer")),
                )],
                "missing, invalid, expired or revoked bearer token",
            )
                .into_response()
        }
    }
}
