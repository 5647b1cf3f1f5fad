//! What a refused request gets back, and the protected resource metadata (RFC 9728) that
//! tells MCP clients where to get a token.
//!
//! | refusal                          | status | body / headers                                    |
//! |----------------------------------|--------|---------------------------------------------------|
//! | no credential                    | 401    | `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` |
//! | bad credential                   | 401    | the same + `error="invalid_token"`                |
//! | token lacks `required_scopes`    | 403    | `error="insufficient_scope", scope="…"`           |
//! | keys cannot be had (JWKS down)   | 503    | `Retry-After`                                     |
//! | `Host` not allowed               | 403    |                                                   |
//! | `Origin` not allowed             | 403    |                                                   |
//! | session of another caller        | 403    |                                                   |
//! | body over `max_body`             | 413    |                                                   |
//! | too many calls in the session    | 429    | `Retry-After: 1`; MCP: a JSON-RPC error, -32029   |
//!
//! Bodies are `{"error": {"class", "message"}}` (REST's error shape), except the 429 to an
//! MCP request, which is a JSON-RPC error response with the request's id. No body holds a
//! header value or any part of a credential.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::{Value, json};
use switchboard::config::InboundAuthConfig;

use crate::inbound::credentials::Refusal;
use crate::inbound::jwks::MIN_RELOAD_INTERVAL;

/// The JSON-RPC error code of a request refused because its session has
/// `max_concurrent_calls_per_session` calls in flight (in the implementation-defined
/// server-error range; HTTP 429 says the same).
pub const TOO_MANY_CALLS: i64 = -32029;

/// Where the metadata is served (path-aware, RFC 9728 §3.1, for `/mcp`; the root form too).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
pub const METADATA_ROOT_PATH: &str = "/.well-known/oauth-protected-resource";

/// `{"error": {"class", "message"}}` with `status`.
pub fn refusal(status: StatusCode, class: &str, message: &str) -> Response {
    let body = json!({ "error": { "class": class, "message": message } });
    (status, Json(body)).into_response()
}

/// The MCP endpoint's canonical URL: `resource` as configured, else `http://HOST/mcp`
/// from the request's (already checked) `Host`.
pub fn resource(config: &InboundAuthConfig, headers: &HeaderMap) -> String {
    if let Some(resource) = &config.resource {
        return resource.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/mcp")
}

/// The metadata URL of `resource`: its origin + the well-known prefix + its path.
pub fn metadata_url(resource: &str) -> String {
    match http::Uri::try_from(resource) {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
            let scheme = uri.scheme_str().unwrap_or("http");
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let path = uri.path().trim_end_matches('/');
            format!("{scheme}://{authority}{METADATA_ROOT_PATH}{path}")
        }
        _ => format!("{resource}{METADATA_ROOT_PATH}"),
    }
}

/// The protected resource metadata document.
pub fn metadata(config: &InboundAuthConfig, resource: String) -> Value {
    let mut document = json!({
        "resource": resource,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP gateway",
    });
    if let Some(jwt) = &config.jwt {
        document["authorization_servers"] = json!(jwt.authorization_servers);
        document["scopes_supported"] = json!(jwt.required_scopes);
    }
    document
}

/// The answer to a request whose credential was refused (see the table above). A 401's
/// challenge also names `scopes` (the JWT's required scopes), which MCP clients ask for
/// when they sign in.
pub fn challenge(refusal_: &Refusal, metadata_url: &str, scopes: &[String]) -> Response {
    let quoted = |text: &str| text.replace(['"', '\\'], "'");
    let scope = match scopes {
        [] => String::new(),
        scopes => format!(", scope=\"{}\"", quoted(&scopes.join(" "))),
    };
    let (status, class, challenge) = match refusal_ {
        Refusal::Missing => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some(format!(
                "Bearer resource_metadata=\"{metadata_url}\"{scope}"
            )),
        ),
        Refusal::Invalid(why) => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", \
                 resource_metadata=\"{metadata_url}\"{scope}",
                quoted(why)
            )),
        ),
        Refusal::InsufficientScope(missing) => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", \
                 resource_metadata=\"{metadata_url}\"",
                quoted(&missing.join(" "))
            )),
        ),
        Refusal::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
    };
    let mut response = refusal(status, class, &refusal_.to_string());
    let headers = response.headers_mut();
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if matches!(refusal_, Refusal::Unavailable(_)) {
        let after = MIN_RELOAD_INTERVAL.as_secs().to_string();
        if let Ok(value) = HeaderValue::from_str(&after) {
            headers.insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// 429 for a call over the session's limit: a JSON-RPC error for an MCP request (`id`),
/// the REST error shape otherwise.
pub fn too_many_calls(max: usize, mcp_id: Option<Value>) -> Response {
    let message = format!(
        "this session already has {max} calls in flight ([gateway] \
         max_concurrent_calls_per_session); try again when one has finished"
    );
    let mut response = match mcp_id {
        Some(id) => {
            let body = json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": TOO_MANY_CALLS,
                    "message": message,
                    "data": { "class": "session_limit" },
                },
            });
            (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
        }
        None => refusal(StatusCode::TOO_MANY_REQUESTS, "session_limit", &message),
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_prefix() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn challenges_say_why_in_their_header() {
        let url = "http://h/.well-known/oauth-protected-resource/mcp";
        let missing = challenge(&Refusal::Missing, url, &[]);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            missing.headers()[header::WWW_AUTHENTICATE],
            format!("Bearer resource_metadata=\"{url}\"")
        );
        let scope = challenge(
            &Refusal::InsufficientScope(vec!["a".into(), "b".into()]),
            url,
            &[],
        );
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        let header = scope.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            header.contains("error=\"insufficient_scope\", scope=\"a b\""),
            "{header}"
        );
        let invalid = challenge(&Refusal::Invalid("kid \"x\"".into()), url, &["mcp".into()]);
        let header = invalid.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(header.contains("error_description=\"kid 'x'\""), "{header}");
        assert!(header.ends_with(", scope=\"mcp\""), "{header}");
    }
}
