//! A `GET` resuming a request's response stream (`Last-Event-ID` of one: `index/stream`)
//! that this gateway cannot serve gets **410**, not rmcp's empty 200 stream: the stream
//! ended long ago, the session was restarted, or (`[scale]`) the replica that ran the request
//! went away. On an empty 200 the Python SDK resets its attempts and resumes again, for
//! ever; on a 410 it gives the call up, as one that may have run.
//!
//! rmcp hides why a resume failed, so the session manager notes it ([`note_failed_resume`],
//! from [`ResumeChecked`] or `scale::SealedSessions`) in a task-local that
//! [`refuse_lost_streams`] sets up around the request.

use std::cell::Cell;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::{Method, StatusCode};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

tokio::task_local! {
    /// Set when a stream let through to rmcp could not be resumed here.
    static RESUME_FAILED: Cell<bool>;
}

/// Called by a session manager whose `resume` failed.
pub(crate) fn note_failed_resume() {
    let _ = RESUME_FAILED.try_with(|failed| failed.set(true));
}

/// The middleware in front of `/mcp` (see the module docs).
pub(crate) async fn refuse_lost_streams(request: Request, next: Next) -> Response {
    // The standalone stream's event ids have no `/`, and rmcp's empty answer suits it (the
    // client opens a new one).
    let resuming_a_request = request.method() == Method::GET
        && request
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|id| id.contains('/'));
    if !resuming_a_request {
        return next.run(request).await;
    }
    let (response, failed) = RESUME_FAILED
        .scope(Cell::new(false), async {
            let response = next.run(request).await;
            (response, RESUME_FAILED.with(Cell::get))
        })
        .await;
    if !failed {
        return response;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32603,
            "message": "this request's stream is not available here (it ended, or the \
                        replica that ran it went away): its call may have run; check \
                        before sending it again",
        },
    });
    let headers = [(http::header::CONTENT_TYPE, "application/json")];
    (StatusCode::GONE, headers, body.to_string()).into_response()
}

/// rmcp's `LocalSessionManager` (a gateway without `[scale]`), noting failed resumes.
pub struct ResumeChecked(pub LocalSessionManager);

impl SessionManager for ResumeChecked {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.0.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.0.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.0.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.0.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        create_stream(&self.0, id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.0.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        standalone(&self.0, id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let resumed = resume(&self.0, id, last_event_id).await;
        if resumed.is_err() {
            note_failed_resume();
        }
        resumed
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.0.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.0.event_store()
    }
}

// Called through the trait (a generic bound), whose streams are `Sync`; the local
// manager's own signatures promise less.
pub(crate) async fn create_stream<M: SessionManager>(
    manager: &M,
    id: &SessionId,
    message: ClientJsonRpcMessage,
) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, M::Error> {
    manager.create_stream(id, message).await
}

pub(crate) async fn standalone<M: SessionManager>(
    manager: &M,
    id: &SessionId,
) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, M::Error> {
    manager.create_standalone_stream(id).await
}

pub(crate) async fn resume<M: SessionManager>(
    manager: &M,
    id: &SessionId,
    last_event_id: String,
) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, M::Error> {
    manager.resume(id, last_event_id).await
}
