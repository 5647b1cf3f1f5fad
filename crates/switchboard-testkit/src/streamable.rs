//! Streamable HTTP at `/mcp`, served by rmcp's `StreamableHttpService` in
//! either session mode: stateful (rmcp's default, `Mcp-Session-Id`) or
//! stateless (`legacy_session_mode: false`, one handler per request), the
//! latter optionally answering plain `application/json` (`json_response`).

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::{local::LocalSessionManager, never::NeverSessionManager},
};
use tokio_util::sync::CancellationToken;

use crate::{Knobs, RunningServer, TestServer, http::serve_router};

/// Session handling of the Streamable HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMode {
    /// rmcp's default: `initialize` creates a session (`Mcp-Session-Id`).
    Stateful,
    /// No sessions: every POST is served on its own.
    Stateless,
    /// No sessions, and a request whose only answer is its response gets it as
    /// `application/json` instead of an SSE stream.
    StatelessJson,
}

/// Serves Streamable HTTP on `http://127.0.0.1:<free port>/mcp`.
pub async fn serve_streamable_http(knobs: Knobs, mode: HttpMode) -> std::io::Result<RunningServer> {
    serve_streamable_http_on(0, knobs, mode).await
}

/// Like [`serve_streamable_http`] on a given port (0 picks a free one).
pub async fn serve_streamable_http_on(
    port: u16,
    knobs: Knobs,
    mode: HttpMode,
) -> std::io::Result<RunningServer> {
    let server = TestServer::new(knobs);
    let ct = CancellationToken::new();
    // Defaults kept on purpose: loopback-only `allowed_hosts`, SSE responses.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(mode == HttpMode::Stateful)
        .with_json_response(mode == HttpMode::StatelessJson)
        .with_cancellation_token(ct.child_token());
    let factory = server.clone();
    let make = move || Ok(factory.new_session());
    let router = match mode {
        HttpMode::Stateful => {
            let sessions = Arc::new(LocalSessionManager::default());
            server.set_http_sessions(sessions.clone());
            let counter = server.clone();
            Router::new()
                .nest_service("/mcp", StreamableHttpService::new(make, sessions, config))
                .layer(axum::middleware::from_fn(
                    move |request: Request, next: Next| {
                        if request.method() == Method::DELETE {
                            let user = request.headers().get("x-user");
                            counter.count_delete(user.and_then(|v| v.to_str().ok()).unwrap_or(""));
                        }
                        next.run(request)
                    },
                ))
        }
        HttpMode::Stateless | HttpMode::StatelessJson => Router::new().nest_service(
            "/mcp",
            StreamableHttpService::new(make, Arc::new(NeverSessionManager::default()), config),
        ),
    };
    serve_router(router, port, "/mcp", server, ct).await
}
