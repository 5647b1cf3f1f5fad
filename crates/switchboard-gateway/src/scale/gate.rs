//! The session gate (docs/scale-out-design.md a.6): in front of `/mcp`, no I/O.
//!
//! - A request with an `Mcp-Session-Id` must carry an id this keyring sealed, not expired;
//!   if it carries an identity (a verified principal, or configured session headers) the
//!   id's binding must be that identity's. Otherwise 404, as for an unknown session (the
//!   client then starts a new one), counted in `switchboard_session_rejected_total`.
//! - A `DELETE` of a session this replica holds marks it ended, so its upstream sessions
//!   are ended too (other closes only detach from them).
//! - A request without an id (an `initialize`) hands its identity's binding to
//!   [`SealedSessions`](super::SealedSessions), which seals it into the new id.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};

use super::manager::MINTING;
use super::token::{Rejection, Token, binding, now};
use super::{Scale, SealedSessions};
use crate::identity::SessionHeaders;
use crate::inbound::Identity;
use crate::metrics::Metrics;

/// What the gate checks with.
pub struct Gate {
    pub scale: Arc<Scale>,
    pub identity: SessionHeaders,
    pub sessions: Arc<SealedSessions>,
    pub metrics: Metrics,
}

/// The gate as an axum middleware (`middleware::from_fn_with_state`).
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
    if local && request.method() == Method::DELETE {
        scale.mark_ended(token.engine_id());
    }
    next.run(request).await
}

impl Gate {
    fn refuse(&self, rejected: Rejection) -> Response {
        self.metrics.session_rejected(rejected.as_str());
        tracing::debug!(reason = rejected.as_str(), "session id refused");
        (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
    }
}
