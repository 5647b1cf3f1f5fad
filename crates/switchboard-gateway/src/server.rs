//! Serving: the router (`/mcp`, `/v1/`, probes, `/metrics`), the listener, the config
//! reloader, and shutdown in order.
//!
//! Shutdown ([`Gateway::serve`]'s `shutdown` future resolving, e.g. on SIGTERM/ctrl-c):
//! 0. with `[gateway] shutdown_delay`: `/readyz` says 503 at once, and the gateway keeps
//!    serving as usual for the delay (a load balancer keeps sending requests until its
//!    health checks or endpoint list catch up); [`Gateway::hurry_on`]'s future (the CLI: a
//!    second SIGTERM/ctrl-c) cuts it short;
//! 1. stop accepting connections and reloading, refuse new calls (`closed`), `/readyz`
//!    says 503;
//! 2. wait for the requests in flight to finish (their answers sent), at most
//!    `drain_timeout`;
//! 3. end every downstream MCP session (their streams close, so the server can stop);
//! 4. close the hub: every upstream connection, stdio process groups included.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::drain::Drain;
use crate::identity::SessionHeaders;
use crate::inbound::Inbound;
use crate::lost_streams::{RefuseLostStreams, ResumeChecked};
use crate::mcp::{DownstreamSession, HotPath, HotSessions, Registry};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::scale::{Gate, SealedSessions, SessionRecords};
use crate::state::GatewayState;
use crate::{Gateway, GatewayError};

/// How long the HTTP server may take to stop once its sessions are ended.
const STOP_WITHIN: Duration = Duration::from_secs(5);

impl Gateway {
    /// A gateway over `hub`.
    pub fn new(hub: switchboard::Hub, settings: crate::GatewaySettings) -> Gateway {
        Gateway::with_metrics(hub, settings, Metrics::new())
    }

    /// A gateway over `hub` whose `/metrics` are `metrics` (whose
    /// [`Metrics::upstream_calls`] layer the hub was built with, for upstream timings).
    pub fn with_metrics(
        hub: switchboard::Hub,
        settings: crate::GatewaySettings,
        metrics: Metrics,
    ) -> Gateway {
        let mut identity = SessionHeaders::new(settings.session_headers.clone());
        if let Some(scale) = &settings.scale {
            identity = identity.keyed(scale.clone());
        }
        let state = GatewayState {
            hub,
            identity,
            drain: Drain::default(),
            metrics,
            seal: match &settings.scale {
                Some(scale) => {
                    let ring = &scale.ring;
                    let keys = std::iter::once(ring.primary()).chain(ring.secondaries());
                    crate::mcp::RequestStateSeal::keyed(keys.map(|k| &k.request_state))
                }
                None => crate::mcp::RequestStateSeal::new(),
            },
            scale: settings.scale.clone(),
        };
        let inbound = Inbound::new(settings.inbound.clone(), settings.session_idle_timeout);
        Gateway {
            state: Arc::new(state),
            settings,
            sessions_ended: CancellationToken::new(),
            inbound: Arc::new(inbound),
            reloader: None,
            hurry: None,
        }
    }

    /// `hurry`, resolving during the shutdown delay, ends the delay at once (the drain
    /// starts). Polled only once the delay has begun. `switchboard serve` passes
    /// `async { shutdown_signal().await }`: a second SIGTERM or ctrl-c (the signals are
    /// caught from that first poll on, so the first one does not count).
    pub fn hurry_on(mut self, hurry: impl Future<Output = ()> + Send + 'static) -> Gateway {
        self.hurry = Some(Box::pin(hurry));
        self
    }

    /// While serving, reloads the config on SIGHUP and when its file changes (see
    /// [`crate::reload`]).
    pub fn reloading(mut self, reloader: Reloader) -> Gateway {
        self.reloader = Some(reloader);
        self
    }

    /// Every endpoint, behind the inbound checks (`inbound/`: hosts, origins, auth, limits;
    /// they replace rmcp's own `Host` check, which covered `/mcp` only). `local` is the
    /// address the gateway listens on (the default allowed hosts depend on it).
    pub fn router(&self, local: SocketAddr) -> Router {
        // A 2026-07-28 request answered by one message gets it as plain JSON, not as an
        // SSE stream (classic sessions' answers are always streams in rmcp).
        let mut config = StreamableHttpServerConfig::default()
            .with_cancellation_token(self.sessions_ended.child_token())
            .with_json_response(true)
            .disable_allowed_hosts();
        config.max_request_body_bytes = self.inbound.max_body();
        // A session without requests for `session_idle_timeout` ends (its handler is dropped,
        // which ends its upstream sessions).
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(self.settings.session_idle_timeout);
        let state = self.state.clone();
        let handler = move || Ok(DownstreamSession::new(state.clone()));
        // A plain session's tool calls skip rmcp's pipeline (`mcp/hot.rs`).
        let registry = Arc::new(Registry::new(self.settings.session_idle_timeout));
        let mcp = match &self.state.scale {
            None => {
                let sessions = Arc::new(ResumeChecked(sessions));
                let sessions = Arc::new(HotSessions::new(sessions, registry.clone()));
                let service = StreamableHttpService::new(handler, sessions, config);
                let service = RefuseLostStreams(service);
                let shutdown = self.sessions_ended.child_token();
                let service = HotPath::new(service, self.state.clone(), registry.clone(), shutdown);
                Router::new().nest_service("/mcp", service)
            }
            // Sealed ids, checked by the gate before rmcp sees them (`scale/`).
            Some(scale) => {
                if scale.store.is_some() {
                    // rmcp restores sessions made on other replicas from their records.
                    config.session_store = Some(Arc::new(SessionRecords {
                        scale: scale.clone(),
                    }));
                }
                let sessions = Arc::new(SealedSessions::new(sessions, scale.clone()));
                let gate = Arc::new(Gate {
                    scale: scale.clone(),
                    identity: self.state.identity.clone(),
                    sessions: sessions.clone(),
                    metrics: self.state.metrics.clone(),
                    drain: self.state.drain.clone(),
                });
                let sessions = Arc::new(HotSessions::new(sessions, registry.clone()));
                // A session its client ended on another replica ends here too (the hot
                // path forgets it at once, as on a DELETE here).
                scale.end_announced(sessions.clone(), self.sessions_ended.child_token());
                let service = StreamableHttpService::new(handler, sessions, config);
                let service = RefuseLostStreams(service);
                let shutdown = self.sessions_ended.child_token();
                let service = HotPath::new(service, self.state.clone(), registry, shutdown);
                Router::new()
                    .nest_service("/mcp", service)
                    .layer(middleware::from_fn_with_state(gate, crate::scale::gate))
            }
        };
        // No Host check of its own: the inbound checks cover every route.
        let sse = crate::sse::router(self.state.clone(), self.sessions_ended.child_token());
        let router = Router::new()
            .merge(mcp)
            .merge(sse)
            .merge(crate::rest::router(self.state.clone()))
            .route("/metrics", get(metrics).with_state(self.state.clone()))
            .layer(middleware::from_fn_with_state(
                self.state.drain.clone(),
                track_posts,
            ));
        self.inbound.around(router, local)
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down in order (see the
    /// module docs) and closes the hub.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let local = listener.local_addr().map_err(GatewayError::Serve)?;
        if let Err(refused) = self.inbound.prepare(local).await {
            self.state.hub.close().await;
            return Err(refused);
        }
        let router = self.router(local);
        tracing::info!("MCP endpoint (Streamable HTTP) listening on http://{local}/mcp");
        tracing::info!(
            "MCP endpoint (legacy HTTP+SSE) listening on http://{local}/sse (messages to {})",
            crate::sse::MESSAGES_PATH
        );
        tracing::info!(
            "REST API listening on http://{local}/v1/ (tools, tools/{{name}}/call, health)"
        );
        tracing::info!("probes listening on http://{local}/healthz and http://{local}/readyz");
        tracing::info!("metrics (Prometheus text) listening on http://{local}/metrics");
        // Small SSE writes otherwise wait for the client's delayed ACK (~40 ms each).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let stop_accepting = CancellationToken::new();
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
            .into_future();
        let mut server = tokio::spawn(server);
        let stop_reloading = CancellationToken::new();
        if let Some(reloader) = self.reloader.take() {
            let (hub, metrics) = (self.state.hub.clone(), self.state.metrics.clone());
            let drain = self.settings.drain_timeout;
            tokio::spawn(reloader.run(hub, metrics, drain, stop_reloading.clone()));
        }
        let mut failed = tokio::select! {
            _ = shutdown => None,
            result = &mut server => Some(result),
        };
        let drain = &self.state.drain;
        let delay = self.settings.shutdown_delay;
        if failed.is_none() && !delay.is_zero() {
            drain.leave();
            tracing::info!(
                "shutting down in {delay:?}: /readyz says 503 from now on, requests are still \
                 served (a second SIGTERM or ctrl-c starts the drain now)"
            );
            let hurry = self.hurry.take();
            let hurried = async move {
                match hurry {
                    Some(hurry) => hurry.await,
                    None => std::future::pending().await,
                }
            };
            failed = tokio::select! {
                () = tokio::time::sleep(delay) => {
                    tracing::info!("shutdown delay over");
                    None
                }
                () = hurried => {
                    tracing::info!("shutdown delay cut short");
                    None
                }
                result = &mut server => Some(result),
            };
        }
        drain.start();
        stop_accepting.cancel();
        stop_reloading.cancel();
        let result = match failed {
            Some(result) => result
                .map_err(|e| GatewayError::Serve(std::io::Error::other(e)))
                .and_then(|r| r.map_err(GatewayError::Serve)),
            None => {
                let deadline = self.settings.drain_timeout;
                tracing::info!(
                    in_flight = drain.in_flight(),
                    "shutting down: no new connections or calls; waiting for calls in flight \
                     (at most {deadline:?})"
                );
                if tokio::time::timeout(deadline, drain.idle()).await.is_err() {
                    tracing::warn!(
                        in_flight = drain.in_flight(),
                        "calls still in flight when the drain deadline passed: ending them"
                    );
                }
                self.sessions_ended.cancel();
                match tokio::time::timeout(STOP_WITHIN, &mut server).await {
                    Ok(Ok(result)) => result.map_err(GatewayError::Serve),
                    Ok(Err(panicked)) => Err(GatewayError::Serve(std::io::Error::other(panicked))),
                    Err(_) => {
                        tracing::warn!(
                            "connections still open after {STOP_WITHIN:?}: dropping them"
                        );
                        server.abort();
                        Ok(())
                    }
                }
            }
        };
        self.sessions_ended.cancel();
        self.state.hub.close().await;
        tracing::info!("gateway stopped");
        result
    }
}

/// Counts a POST as in flight until its response body has been sent to the end (or the
/// client went away): a call's result computed but not yet written still holds the drain.
async fn track_posts(State(drain): State<Drain>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let guard = drain.track();
    crate::drain::hold_until_sent(next.run(request).await, guard)
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<Arc<GatewayState>>) -> Response {
    let mut text = state.metrics.render(&state.hub);
    if let Some(up) = state.scale.as_ref().and_then(|s| s.store_up()) {
        text.push_str(&crate::metrics::store_gauge(up));
    }
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// Binds `addr` (what `[gateway] listen` or `--listen` says).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// Resolves on SIGTERM or ctrl-c (SIGINT): what `switchboard serve` stops on. The signals
/// are caught from this call on (not from the first poll): one arriving while the gateway
/// starts to serve is not lost, nor does it kill the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let caught = |kind, name: &'static str| {
            let signal = signal(kind);
            async move {
                match signal {
                    Ok(mut signal) => {
                        signal.recv().await;
                        tracing::info!("{name} received");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot watch {name}");
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let term = caught(SignalKind::terminate(), "SIGTERM");
        let ctrl_c = caught(SignalKind::interrupt(), "ctrl-c");
        async move {
            tokio::select! {
                () = ctrl_c => {}
                () = term => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
