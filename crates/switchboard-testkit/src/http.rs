//! HTTP plumbing shared by the Streamable HTTP and legacy SSE servers (and the
//! registry emulator): binding to 127.0.0.1, the bearer-token check (a layer over
//! every route), the server task that stops on cancel or drop, and the
//! [`RunningServer`] handle.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::serve::ListenerExt;
use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::TestServer;

/// `WWW-Authenticate` value sent with every 401.
pub const WWW_AUTHENTICATE_CHALLENGE: &str = "Bearer realm=\"switchboard-testkit\", resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource/mcp\"";

/// A test server listening on 127.0.0.1. Dropping it stops the server
/// (in the background); [`RunningServer::shutdown`] stops it and waits.
pub struct RunningServer {
    /// The bound address (always 127.0.0.1).
    pub addr: SocketAddr,
    path: &'static str,
    server: TestServer,
    task: ServerTask,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// `http://127.0.0.1:PORT/mcp` (Streamable HTTP) or `http://127.0.0.1:PORT/sse`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// The server behind this listener, for in-process assertions.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// Shortcut for `self.server().counts()`.
    pub fn counts(&self) -> serde_json::Value {
        self.server.counts()
    }

    /// Stops accepting, ends every session and waits (at most 5 s) for the
    /// server task; after that it is aborted.
    pub async fn shutdown(self) {
        self.task.shutdown().await;
    }
}

/// An axum server running on its own task until its token is cancelled, by
/// [`ServerTask::shutdown`] or on drop.
pub(crate) struct ServerTask {
    ct: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Serves `router` on `listener` (with `TCP_NODELAY`) until `ct` is cancelled.
    pub(crate) fn spawn(
        listener: TcpListener,
        router: Router,
        ct: CancellationToken,
        what: &'static str,
    ) -> ServerTask {
        // SSE responses go out as several small writes; without nodelay, Nagle's algorithm
        // and the client's delayed ACK stall each response about 40 ms on a reused
        // connection.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = ct.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                tracing::warn!(%error, "{what} stopped with an error");
            }
        });
        ServerTask {
            ct,
            task: Some(task),
        }
    }

    /// Cancels and waits (at most 5 s) for the task; after that it is aborted.
    pub(crate) async fn shutdown(mut self) {
        self.ct.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.ct.cancel();
    }
}

/// Binds `127.0.0.1:port`, applies the bearer check and serves `router` until
/// `ct` is cancelled.
pub(crate) async fn serve_router(
    router: Router,
    port: u16,
    path: &'static str,
    server: TestServer,
    ct: CancellationToken,
) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let router = match server.knobs().require_bearer.clone() {
        Some(token) => router.layer(middleware::from_fn_with_state(
            Arc::<str>::from(format!("Bearer {token}")),
            require_bearer,
        )),
        None => router,
    };
    let router = match server.knobs().oauth.clone() {
        Some(auth) => crate::oauth::resource::protect(router, addr, auth),
        None => router,
    };
    Ok(RunningServer {
        addr,
        path,
        server,
        task: ServerTask::spawn(listener, router, ct, "test server"),
    })
}

/// Rejects any request without the expected `Authorization` header.
async fn require_bearer(
    State(expected): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if authorized {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE_CHALLENGE),
        )],
        "missing or wrong bearer token",
    )
        .into_response()
}
