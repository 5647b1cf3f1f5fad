//! The legacy HTTP+SSE transport (protocol revision 2024-11-05), which rmcp
//! no longer ships, written with axum so Switchboard's SSE client has a real
//! server to talk to.
//!
//! `GET /sse` opens a session: the first event is `endpoint` with
//! `/message?sessionId=<id>`, then each server→client JSON-RPC message is a
//! `message` event. `POST /message?sessionId=<id>` feeds one JSON-RPC message
//! to that session's rmcp server and answers `202 Accepted` (404 for an
//! unknown session). Each session runs its own rmcp server over a pair of
//! channels ([`ChannelTransport`]); closing the GET stream ends the session.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::to_bytes,
    extract::{Query, Request, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt, stream};
use rmcp::{
    RoleServer, ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Knobs, RunningServer, TestServer, http::serve_router};

/// Largest accepted POST body.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Messages buffered per direction and session.
const CHANNEL_CAPACITY: usize = 64;

/// Serves legacy SSE on `http://127.0.0.1:<free port>/sse`.
pub async fn serve_sse(knobs: Knobs) -> std::io::Result<RunningServer> {
    serve_sse_on(0, knobs).await
}

/// Like [`serve_sse`] on a given port (0 picks a free one).
pub async fn serve_sse_on(port: u16, knobs: Knobs) -> std::io::Result<RunningServer> {
    let server = TestServer::new(knobs);
    let ct = CancellationToken::new();
    let state = Arc::new(SseState {
        server: server.clone(),
        sessions: Mutex::new(HashMap::new()),
        ct: ct.clone(),
    });
    let router = Router::new()
        .route("/sse", get(open_session))
        .route("/message", post(post_message))
        .with_state(state);
    serve_router(router, port, "/sse", server, ct).await
}

struct SseState {
    server: TestServer,
    sessions: Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>,
    ct: CancellationToken,
}

impl SseState {
    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ends a session when the client drops its GET stream (or the server stops).
struct SessionGuard {
    state: Arc<SseState>,
    id: String,
    ct: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.sessions().remove(&self.id);
        self.ct.cancel();
    }
}

async fn open_session(
    State(state): State<Arc<SseState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = uuid::Uuid::new_v4().to_string();
    let (to_server, from_client) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel(CHANNEL_CAPACITY);
    state.sessions().insert(id.clone(), to_server);
    let session_ct = state.ct.child_token();

    let server = state.server.with_session_id(id.clone());
    let transport = ChannelTransport {
        incoming: from_client,
        outgoing: to_client,
    };
    let service_ct = session_ct.clone();
    tokio::spawn(async move {
        match server.serve_with_ct(transport, service_ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "SSE session ended before initialization"),
        }
    });

    let guard = SessionGuard {
        state: state.clone(),
        id: id.clone(),
        ct: session_ct.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let messages = stream::unfold(from_server, |mut rx| async move {
        rx.recv().await.map(|message| (message, rx))
    })
    .map(move |message: ServerJsonRpcMessage| {
        let _session = &guard;
        let json = serde_json::to_string(&message).unwrap_or_else(|error| {
            tracing::error!(%error, "could not serialize a server message");
            String::new()
        });
        Ok(Event::default().event("message").data(json))
    });
    let events = stream::once(async move { Ok(endpoint) })
        .chain(messages)
        .take_until(session_ct.cancelled_owned());
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
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid JSON-RPC message: {error}"),
            )
                .into_response();
        }
    };
    // Same as rmcp's Streamable HTTP server: tools can read the HTTP request.
    match &mut message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    if session.send(message).await.is_err() {
        return (StatusCode::NOT_FOUND, "session closed").into_response();
    }
    StatusCode::ACCEPTED.into_response()
}

/// An rmcp server transport over two channels: messages POSTed by the client
/// come in, messages for the SSE stream go out.
struct ChannelTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    outgoing: mpsc::Sender<ServerJsonRpcMessage>,
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move {
            outgoing.send(item).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the SSE stream is closed")
            })
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}
