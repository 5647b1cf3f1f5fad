//! A `GET` resuming a request's response stream (`Last-Event-ID` of one: `index/stream`)
//! that this gateway cannot serve gets **410**, not rmcp's empty 200 stream: the stream
//! ended long ago, the session was restarted, or (`[scale]`) the replica that ran the request
//! went away. On an empty 200 the Python SDK resets its attempts and resumes again, for
//! ever; on a 410 it gives the call up, as one that may have run.
//!
//! rmcp hides why a resume failed, so the session manager notes it ([`note_failed_resume`],
//! from [`ResumeChecked`] or `scale::SealedSessions`) in a task-local that
//! [`RefuseLostStreams`], around rmcp's service, sets up for the request.

use std::cell::Cell;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use futures::future::{BoxFuture, Either};
use http::{Method, StatusCode};
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use tower_service::Service;

tokio::task_local! {
    /// Set when a stream let through to rmcp could not be resumed here.
    static RESUME_FAILED: Cell<bool>;
}

/// Called by a session manager whose `resume` failed.
pub(crate) fn note_failed_resume() {
    let _ = RESUME_FAILED.try_with(|failed| failed.set(true));
}

/// rmcp's `/mcp` service, answering 410 for a lost request stream (see the module docs).
/// Every other request goes to rmcp as it is (one header lookup; no middleware, whose
/// per-request clone of the service every tool call would pay).
#[derive(Clone)]
pub(crate) struct RefuseLostStreams<S>(pub S);

type McpResponse = http::Response<BoxBody<Bytes, Infallible>>;

impl<S, B> Service<http::Request<B>> for RefuseLostStreams<S>
where
    S: Service<http::Request<B>, Response = McpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = McpResponse;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<McpResponse, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The standalone stream's event ids have no `/`, and rmcp's empty answer suits it
        // (the client opens a new one).
        let resuming_a_request = request.method() == Method::GET
            && request
                .headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|id| id.contains('/'));
        if !resuming_a_request {
            return Either::Left(self.0.call(request));
        }
        let answer = self.0.call(request);
        Either::Right(Box::pin(RESUME_FAILED.scope(Cell::new(false), async {
            let response = answer.await?;
            match RESUME_FAILED.with(Cell::get) {
                false => Ok(response),
                true => Ok(gone()),
            }
        })))
    }
}

/// The 410 for a request stream that is not here.
fn gone() -> McpResponse {
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
    let mut response = http::Response::new(BoxBody::new(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = StatusCode::GONE;
    let json = http::HeaderValue::from_static("application/json");
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, json);
    response
}

/// rmcp's `LocalSessionManager` (a gateway without `[scale]`), noting failed resumes.
pub struct ResumeChecked(pub LocalSessionManager);

impl crate::mcp::LocalBacked for ResumeChecked {
    fn local(&self) -> &LocalSessionManager {
        &self.0
    }
}

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
