//! `switchboard-gateway`: a Switchboard hub served to other programs over HTTP — what
//! `switchboard serve` runs.
//!
//! - `/mcp`: one MCP server (Streamable HTTP, the 2025-11-25 session lifecycle and the
//!   2026-07-28 stateless one) whose tools, resources and prompts are the hub's merged
//!   catalogue (`mcp/`);
//! - `/sse` (+ `/messages`): the same for legacy HTTP+SSE clients (`sse.rs`);
//! - `/v1/`: the catalogue in providers' forms, tool calls and health as JSON (`rest.rs`);
//! - `/healthz`, `/readyz`: probes;
//! - `/metrics`: Prometheus text (`metrics.rs`).
//!
//! The gateway is thin: every answer comes from the engine's public API ([`switchboard::Hub`]),
//! and it adds only what HTTP needs: who may call (`inbound/`: allowed hosts and origins,
//! API keys and JWTs, body and concurrency limits), who a request is for (`identity.rs`:
//! session headers and verified claims → engine [`switchboard::Session`]s), how errors look
//! (`errors.rs`), sealed session ids for replicas behind a load balancer (`scale/`), what upstream servers ask in mid-call relayed to the downstream client
//! (`mcp/relay.rs`; build the hub with [`UpstreamOffers`] as its input handler so upstreams
//! are offered it), and shutdown in order (`drain.rs`, `server.rs`). `switchboard serve`
//! also reloads its config on SIGHUP or a change of the file (`reload.rs`).
//!
//! ```no_run
//! # async fn run(hub: switchboard::Hub, config: &switchboard::Config) -> Result<(), switchboard_gateway::GatewayError> {
//! use switchboard_gateway::{Gateway, GatewaySettings, bind, shutdown_signal};
//!
//! let settings = GatewaySettings::from(&*config.gateway);
//! let listener = bind(settings.listen).await?;
//! Gateway::new(hub, settings).serve(listener, shutdown_signal()).await
//! # }
//! ```

mod drain;
pub mod errors;
mod identity;
mod inbound;
mod lost_streams;
mod mcp;
pub mod metrics;
pub mod otel;
mod reload;
mod rest;
pub mod scale;
mod server;
mod sse;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard::config::GatewayConfig;
use tokio_util::sync::CancellationToken;

pub use identity::SessionHeaders;
pub use inbound::{Identity, InboundSettings, check_exposure};
pub use mcp::UpstreamOffers;
pub use metrics::Metrics;
pub use reload::{ReloadPlan, Reloader};
pub use server::{bind, shutdown_signal};

/// How the gateway runs (from `[gateway]`, see [`GatewayConfig`]).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Inbound request header → session variable.
    pub session_headers: BTreeMap<String, String>,
    /// How long shutdown waits for calls in flight.
    pub drain_timeout: Duration,
    /// How long the gateway keeps serving, not ready, before the drain (see `server.rs`).
    pub shutdown_delay: Duration,
    /// How long a downstream MCP session may go without a request before it ends.
    pub session_idle_timeout: Duration,
    /// Inbound security: allowed hosts and origins, limits, authentication.
    pub inbound: InboundSettings,
    /// `[scale]`: sealed session ids (and, with a store, sessions any replica serves);
    /// `None`: one process, rmcp's own ids.
    pub scale: Option<Arc<scale::Scale>>,
}

impl From<&GatewayConfig> for GatewaySettings {
    fn from(config: &GatewayConfig) -> Self {
        GatewaySettings {
            listen: config.listen,
            session_headers: config.session_headers.clone(),
            drain_timeout: config.drain_timeout,
            shutdown_delay: config.shutdown_delay,
            session_idle_timeout: config.session_idle_timeout,
            inbound: InboundSettings::from(config),
            scale: None,
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings::from(&GatewayConfig::default())
    }
}

/// A hub behind HTTP endpoints; [`Gateway::serve`] runs it.
pub struct Gateway {
    state: Arc<state::GatewayState>,
    settings: GatewaySettings,
    /// Cancelling it ends every downstream MCP session.
    sessions_ended: CancellationToken,
    /// The checks in front of every route (`inbound/`).
    inbound: Arc<inbound::Inbound>,
    /// Applies config changes while serving, when set ([`Gateway::reloading`]).
    reloader: Option<Reloader>,
    /// Resolving during the shutdown delay, starts the drain at once ([`Gateway::hurry_on`]).
    hurry: Option<futures::future::BoxFuture<'static, ()>>,
}

/// Why the gateway could not serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("refusing to serve on {addr} without authentication: {fix}")]
    Unauthenticated { addr: SocketAddr, fix: &'static str },
    #[error("cannot verify tokens: {0}")]
    Keys(String),
}
