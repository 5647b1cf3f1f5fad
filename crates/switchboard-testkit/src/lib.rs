//! `switchboard-testkit`: a real MCP server (built on rmcp) that Switchboard's
//! tests and benchmarks talk to, over stdio, Streamable HTTP (stateful and
//! stateless) and the legacy HTTP+SSE transport.
//!
//! Use it in-process through [`serve_streamable_http`], [`serve_sse`] and
//! [`TestServer`], or spawn the `switchboard-testkit` binary (see [`cli`]).
//! [`RegistryEmulator`] stands in for a tooling registry (Agent 365 discovery).
//! [`FaultProxy`] sits in front of an HTTP server and injects the failures a
//! reverse proxy produces when its upstream dies (statuses, cut bodies, resets).
//! [`AuthServer`] is a small OAuth authorization server whose tokens the test server can
//! require ([`Knobs::oauth`]).

use std::time::Duration;

pub mod cli;
mod http;
mod interactive;
mod listen;
pub mod oauth;
pub mod offers;
pub mod otlp;
pub mod proxy;
mod registry;
mod sse;
mod stdio;
mod streamable;
mod tools;

pub use http::{RunningServer, WWW_AUTHENTICATE_CHALLENGE};
pub use oauth::{AuthKnobs, AuthServer, AuthServerHandle, DpopKnob, TestClient};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use proxy::{Fault, FaultProxy, FaultRule};
pub use registry::{RecordedRequest, RegistryEmulator, RegistryEntry, RegistryKnobs};
pub use sse::{serve_sse, serve_sse_on};
pub use stdio::serve_stdio;
pub use streamable::{HttpMode, serve_streamable_http, serve_streamable_http_on};
pub use tools::{DROP_EXIT_CODE, TINY_PNG_BASE64, TINY_WAV_BASE64, TestServer};

/// Behaviour switches of the test server.
///
/// `Knobs::default()` is the in-process default: no generated tools, no
/// latency, no auth, and `drop` hangs instead of killing the (test) process.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// Number of generated tools `tool_0` .. `tool_{N-1}`.
    pub tools: usize,
    /// Delay added before every tool call's work.
    pub latency: Duration,
    /// HTTP modes: require `Authorization: Bearer <token>` on every request.
    pub require_bearer: Option<String>,
    /// Streamable HTTP: be an OAuth protected resource of this authorization server
    /// (`oauth/resource.rs`): tokens it issued, PRM, 401 challenges, and the `whoami` tool.
    pub oauth: Option<AuthServerHandle>,
    /// Never answer `initialize` (nor `server/discover`).
    pub hang_initialize: bool,
    /// Answer `initialize` only after this long.
    pub initialize_delay: Option<Duration>,
    /// `drop` (and the first execution of `crash_once`/`crash_once_idempotent`)
    /// exits the process with [`DROP_EXIT_CODE`] instead of hanging.
    pub exit_on_drop: bool,
    /// Serve `tools/list` and `resources/list` in pages of this many items (0: everything
    /// in one page).
    pub page_size: usize,
    /// After `notifications/initialized`, wait this long, then add a tool and send
    /// `notifications/tools/list_changed` on its own (once per session).
    pub notify_after: Option<Duration>,
    /// Leave the resources and prompts capabilities out of what it declares (it still
    /// answers their requests, so a client that sends them anyway is caught out).
    pub hide_offers: bool,
    /// Which MCP lifecycles it speaks.
    pub lifecycle: Lifecycle,
    /// `ttlMs` on every `tools/list` page (with `cacheScope: "public"`), and on the
    /// resources and prompts lists, for clients that follow no listen stream.
    pub list_ttl: Option<Duration>,
    /// stdio: `server/discover` never reaches the server and is never answered (as some
    /// servers drop requests they do not know).
    pub ignore_discover: bool,
    /// Answer the first `server/discover` this long late (a server slow to start, as on a
    /// loaded machine); later ones at once.
    pub slow_first_discover: Option<Duration>,
    /// Tool lists say `cacheScope: "private"` and, over HTTP, hold one more tool for the
    /// caller named by the `X-User` request header: `mine_<user>`, which answers that name
    /// when called with the same header.
    pub private_lists: bool,
    /// One more tool, `route`, whose `region` argument a 2026-07-28 client also sends as the
    /// `Mcp-Param-Region` header (SEP-2243 `x-mcp-header`); it answers the region.
    pub header_params: bool,
}

/// The MCP lifecycles a test server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Lifecycle {
    /// Only the classic `initialize` handshake (revisions up to 2025-11-25):
    /// `server/discover` is an unknown method, as on servers built before 2026-07-28.
    #[default]
    Classic,
    /// Only the 2026-07-28 revision: `server/discover` and per-request `_meta`;
    /// `initialize` is an unknown method.
    Modern,
    /// Both, as current SDKs' servers do.
    Both,
}
