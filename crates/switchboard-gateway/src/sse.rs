//! `/sse`: the legacy HTTP+SSE transport (protocol revision 2024-11-05) for clients that
//! still speak it; rmcp ships no server for it, so it is written here on axum.
//!
//! `GET /sse` opens a downstream session: the first event is `endpoint`, naming
//! `/messages?sessionId=<id>`; every message of the gateway to the client is a `message`
//! event after it. `POST /messages?sessionId=<id>` carries one JSON-RPC message of the
//! client (202 Accepted; 404 for an unknown or ended session, 400 for a body that is not
//! one). Each connection is served by its own [`DownstreamSession`], exactly as a
//! 2025-11-25 `/mcp` session: its `initialize` (POSTed, with that POST's headers) names its
//! engine session ([`crate::identity`]); closing the stream (or the gateway ending its
//! sessions) drops the handler, which ends its upstream sessions.
//!
//! A request's answer travels on the stream, after its POST was answered: the drain holds
//! a request from its POST until its answer has been put on the stream, and so does the
//! session's call limit (`[gateway] max_concurrent_calls_per_session`, counted by
//! `inbound/`: one request too many gets 429 on its POST, with a JSON-RPC error as for
//! `/mcp`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt, stream};
use rmcp::ServiceExt;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, GetExtensions, RequestId, ServerJsonRpcMessage,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::drain::RequestGuard;
use crate::inbound::{CallSlot, StreamedCallSlot};
use crate::mcp::DownstreamSession;
use crate::state::GatewayState;

/// The path the `endpoint` event names.
pub const MESSAGES_PATH: &str = "/messages";
/// Largest accepted POST body.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Messages buffered per direction and session.
const CHANNEL_CAPACITY: usize = 64;

/// `/sse` and [`MESSAGES_PATH`]; `sessions_ended` ends every session (shutdown). Hosts,
/// origins and credentials are checked in front of it, as for every route (`inbound/`).
pub fn router(state: Arc<GatewayState>, sessions_ended: CancellationToken) -> Router {
    let sse = Arc::new(SseState {
        gateway: state,
        sessions: Mutex::new(HashMap::new()),
        ended: sessions_ended,
    });
    Router::new()
        .route("/sse", get(open_session))
        .route(MESSAGES_PATH, post(post_message))
        .with_state(sse)
}

struct SseState {
    gateway: Arc<GatewayState>,
    sessions: Mutex<HashMap<String, Arc<SseSession>>>,
    ended: CancellationToken,
}

impl SseState {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<SseSession>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open stream: where its POSTs go, and its requests not answered yet (each holding
/// the drain).
struct SseSession {
    /// Who opened the stream (with `[gateway.auth]`): only they may post to it.
    owner: Option<Arc<str>>,
    to_handler: mpsc::Sender<ClientJsonRpcMessage>,
    unanswered: Mutex<HashMap<RequestId, Unanswered>>,
}

/// What a request not answered yet holds: the drain, and its session's call slot.
type Unanswered = (RequestGuard, Option<CallSlot>);

impl SseSession {
    fn unanswered(&self) -> MutexGuard<'_, HashMap<RequestId, Unanswered>> {
        self.unanswered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends a session when its stream is dropped (client gone, or the gateway ended it).
struct Ending {
    state: Arc<SseState>,
    id: String,
    ct: CancellationToken,
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.state.sessions().remove(&self.id);
        self.ct.cancel();
    }
}

async fn open_session(State(state): State<Arc<SseState>>, request: Request) -> Response {
    if state.gateway.drain.is_draining() {
        let why = "the gateway is shutting down";
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    events(state, principal(&request)).into_response()
}

/// The authenticated caller of `request` (set by `inbound/`), if the gateway has auth.
fn principal(request: &Request) -> Option<Arc<str>> {
    let identity = request.extensions().get::<crate::Identity>()?;
    Some(identity.principal.clone())
}

/// A new session's event stream (see the module docs).
fn events(
    state: Arc<SseState>,
    owner: Option<Arc<str>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    // rmcp serves a (Sink, Stream) pair as a transport: POSTed messages in, events out.
    let (to_handler, from_client) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_client, from_handler) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    let session = Arc::new(SseSession {
        owner,
        to_handler,
        unanswered: Mutex::new(HashMap::new()),
    });
    state.sessions().insert(id.clone(), session.clone());
    let ct = state.ended.child_token();
    let handler = DownstreamSession::new(state.gateway.clone());
    let transport = (to_client, from_client);
    let service_ct = ct.clone();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, service_ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "SSE session ended before initialization"),
        }
    });
    tracing::debug!("legacy SSE session opened");

    let ending = Ending {
        state: state.clone(),
        id: id.clone(),
        ct: ct.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("{MESSAGES_PATH}?sessionId={id}"));
    let messages = from_handler.map(move |message| {
        let _ending = &ending;
        let json = serde_json::to_string(&message).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot serialise a message for an SSE client");
            String::new()
        });
        // Answered: the request no longer holds the drain or its call slot (released as
        // the answer is handed to the stream).
        let answered = match &message {
            ServerJsonRpcMessage::Response(response) => Some(&response.id),
            ServerJsonRpcMessage::Error(error) => error.id.as_ref(),
            _ => None,
        };
        let guard = answered.and_then(|id| session.unanswered().remove(id));
        drop(guard);
        Ok(Event::default().event("message").data(json))
    });
    let events = stream::once(async move { Ok(endpoint) })
        .chain(messages)
        .take_until(ct.cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

async fn post_message(
    State(state): State<Arc<SseState>>,
    Query(query): Query<SessionQuery>,
    request: Request,
) -> Response {
    let Some(session) = state.sessions().get(&query.session_id).cloned() else {
        return (StatusCode::NOT_FOUND, "no such session (it may have ended)").into_response();
    };
    if session.owner.is_some() && session.owner != principal(&request) {
        let why = "this session belongs to another caller";
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let limit = MAX_BODY_BYTES >> 20;
            let why = format!("the body could not be read (at most {limit} MiB)");
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            let why = format!("not a JSON-RPC message: {error}");
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    // As rmcp's Streamable HTTP server does: the handler reads the request's headers.
    match &mut message {
        ClientJsonRpcMessage::Request(request) => {
            let guard = state.gateway.drain.track();
            let slot = parts
                .extensions
                .get::<StreamedCallSlot>()
                .and_then(StreamedCallSlot::take);
            session
                .unanswered()
                .insert(request.id.clone(), (guard, slot));
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            // A cancelled request gets no answer: it holds the drain no longer.
            if let ClientNotification::CancelledNotification(cancelled) = &notification.notification
                && let Some(id) = &cancelled.params.request_id
            {
                drop(session.unanswered().remove(id));
            }
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    if session.to_handler.clone().send(message).await.is_err() {
        return (StatusCode::NOT_FOUND, "the session has ended").into_response();
    }
    StatusCode::ACCEPTED.into_response()
}
