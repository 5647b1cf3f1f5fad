//! The session gate (docs/scale-out-design.md a.6): in front of `/mcp`, no I/O.
//!
//! - A request with an `Mcp-Session-Id` must carry an id this keyring sealed, not expired;
//!   if it carries an identity (a verified principal, or configured session headers) the
//!   id's binding must be that identity's. Otherwise 404, as for an unknown session (the
//!   client then starts a new one), counted in `switchboard_session_rejected_total`.
//! - A `DELETE` of a session this replica holds marks it ended, so its upstream sessions
//!   are ended too (other closes only detach from them).
//! - A request for a session this replica has not seen goes on to rmcp, which restores it
//!   from the store; while the store is down it gets 503 with `Retry-After: 1`, and so it
//!   does once this replica drains (it is about to exit and has let go of its sessions):
//!   nothing ran, so a load balancer may resend it to another replica.
//! - A request without an id (an `initialize`) hands its identity's binding to
//!   [`SealedSessions`](super::SealedSessions), which seals it into the new id.
//! - (A `GET` resuming a request's response stream that is not on this replica gets 410:
//!   `crate::lost_streams`, around rmcp's service behind the gate.)

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};

use super::manager::MINTING;
use super::token::{Rejection, Token, binding, now};
use super::{Scale, SealedSessions};
use crate::drain::Drain;
use crate::identity::SessionHeaders;
use crate::inbound::Identity;
use crate::metrics::Metrics;

/// What the gate checks with.
pub struct Gate {
    pub scale: Arc<Scale>,
    pub identity: SessionHeaders,
    pub sessions: Arc<SealedSessions>,
    pub metrics: Metrics,
    pub drain: Drain,
}

/// The gate as an axum middleware (`middleware::from_fn_with_state`): the checks of the
/// module docs, then the request.
pub async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let scale = &gate.scale;
    let principal = request
        .extensions()
        .get::<Identity>()
        .map(|i| i.principal.clone());
    let variables = gate
        .identity
        .variables(request.headers(), request.extensions());
    let id = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(id) = id else {
        let binding = binding(scale.ring.primary(), principal.as_deref(), &variables);
        return MINTING.scope(binding, next.run(request)).await;
    };
    let token = match Token::open(&scale.ring, &id, now()) {
        Ok(token) => token,
        Err(rejected) => return gate.refuse(rejected),
    };
    if principal.is_some() || !variables.is_empty() {
        let keys = scale.ring.get(token.kid).expect("the token opened with it");
        if binding(keys, principal.as_deref(), &variables) != token.binding {
            return gate.refuse(Rejection::Identity);
        }
    }
    let id: SessionId = id.into();
    let local = gate.sessions.has_session(&id).await.unwrap_or(false);
    if local {
        if request.method() == Method::DELETE {
            scale.mark_ended(token.engine_id());
        } else {
            scale.used(&token.engine_id());
        }
        return next.run(request).await;
    }
    // A session this replica has not seen (or no longer holds, draining): rmcp restores it
    // from the store.
    if gate.drain.is_draining() {
        return unavailable(UNAVAILABLE_DRAINING);
    }
    if scale.store_up() == Some(false) {
        return unavailable(UNAVAILABLE_STORE);
    }
    let anonymous = principal.is_none() && variables.is_empty();
    if anonymous
        && !scale.remember_variables
        && token.binding != scale.anonymous_binding_of(token.kid)
    {
        // Its variables are not kept: only a request carrying its identity can restore it.
        return gate.refuse(Rejection::Identity);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && scale.store.is_some() {
        // rmcp's answer when loading the record failed (it logged why).
        return unavailable(UNAVAILABLE_STORE);
    }
    response
}

const UNAVAILABLE_STORE: &str = "session store unavailable; retry shortly";
const UNAVAILABLE_DRAINING: &str =
    "this replica is shutting down; retry (another replica serves the session)";

/// 503 with `Retry-After` and a JSON-RPC error saying why: the store is down, so a session
/// this replica has not seen cannot be restored now (docs/scale-out-design.md b.6), or this
/// replica is draining. Either way nothing ran; the connection closes.
fn unavailable(why: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32603, "message": why},
    });
    let headers = [
        (http::header::RETRY_AFTER, "1"),
        (http::header::CONTENT_TYPE, "application/json"),
        (http::header::CONNECTION, "close"),
    ];
    (StatusCode::SERVICE_UNAVAILABLE, headers, body.to_string()).into_response()
}

impl Gate {
    fn refuse(&self, rejected: Rejection) -> Response {
        self.metrics.session_rejected(rejected.as_str());
        tracing::debug!(reason = rejected.as_str(), "session id refused");
        (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use switchboard::config::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_URL_ENV, ScaleConfig};
    use tower::ServiceExt;

    use super::*;
    use crate::scale::keyring::test_ring;

    /// The gate in front of a handler that says it was reached.
    fn gated(drain: &Drain) -> (Router, String) {
        let config = ScaleConfig {
            store: None,
            redis_url_env: DEFAULT_REDIS_URL_ENV.into(),
            keys_file: "keys".into(),
            key_prefix: DEFAULT_KEY_PREFIX.into(),
            remember_variables: false,
            max_session_lifetime: Duration::from_secs(3600),
        };
        let ring = test_ring("1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n");
        let scale = Arc::new(Scale::new(ring, &config, None, Duration::from_secs(60)));
        // A session some other replica made (this one holds none).
        let binding = scale.anonymous_binding();
        let id = Token::new(&scale.ring, binding, now(), 3600).seal(&scale.ring);
        let gate = Arc::new(Gate {
            sessions: Arc::new(SealedSessions::new(
                LocalSessionManager::default(),
                scale.clone(),
            )),
            scale,
            identity: SessionHeaders::default(),
            metrics: Metrics::new(),
            drain: drain.clone(),
        });
        let router = Router::new()
            .fallback(|| async { "reached" })
            .layer(axum::middleware::from_fn_with_state(gate, super::gate));
        (router, id)
    }

    async fn post(router: Router, id: &str) -> (StatusCode, String) {
        let request = http::Request::post("/mcp")
            .header("mcp-session-id", id)
            .body(Body::from("{}"))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await;
        (status, String::from_utf8_lossy(&body.unwrap()).into_owned())
    }

    #[tokio::test]
    async fn a_draining_replica_refuses_a_session_it_does_not_hold_as_retryable() {
        let drain = Drain::default();
        let (router, id) = gated(&drain);
        assert_eq!(
            post(router.clone(), &id).await,
            (StatusCode::OK, "reached".into())
        );
        drain.leave();
        assert_eq!(
            post(router.clone(), &id).await.0,
            StatusCode::OK,
            "still serving"
        );
        drain.start();
        let (status, body) = post(router, &id).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("shutting down"), "{body}");
    }
}
