//! The two things being compared, behind one `call`: a bare rmcp client used the plain way
//! (`().serve_with_lifecycle(transport, mode)`: `initialize`, or `server/discover` for a
//! server speaking only 2026-07-28; then `RunningService::call_tool`), and Switchboard's engine the
//! way applications use it (`Hub::builder()…start()` with the one server, then `Hub::call` by
//! exposed name: catalogue lookup, argument check against the schema, the server's link, and
//! `Upstream::call_tool` with a deadline). Plus engine variants assembled from the engine's
//! pieces (`Upstream::serve` over a transport we build, from `switchboard::internals`, which
//! is not the engine's API) to measure proposed transport changes without changing the
//! engine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rmcp::model::{CallToolRequestParams, JsonObject, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use switchboard::config::{HttpConnections, ProtocolPin};
use switchboard::internals::sse::SseClientTransport;
use switchboard::internals::{Upstream, http};
use switchboard::{Connector, Deadline, Hub, ServerConfig, TransportKind};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long one engine call may take (its deadline).
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// How long connecting (and initialize) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);

/// What a client connects to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A child process: program and arguments (each client starts its own).
    Stdio { program: PathBuf, args: Vec<String> },
    /// An HTTP endpoint; `/sse` at the end means legacy SSE, else Streamable HTTP.
    Url(String),
}

/// A target and the MCP lifecycle the bare rmcp client opens with it (the engine probes).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub target: Target,
    /// The server speaks only 2026-07-28: rmcp opens with `server/discover`.
    pub modern: bool,
}

impl Target {
    fn server_config(&self, name: &str) -> ServerConfig {
        match self {
            Target::Stdio { program, args } => {
                ServerConfig::stdio(name, program.display().to_string(), args.clone())
            }
            Target::Url(url) => ServerConfig::url(name, url.clone()),
        }
    }
}

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// rmcp's client with rmcp's defaults.
    Rmcp,
    /// `Hub::builder()…start()` + `Hub::call` (the whole engine path).
    Engine,
    /// [`Kind::Engine`] speaking 2025-11-25 (`protocol_version` pinned: a session, no probe).
    EngineClassic,
    /// The engine over Streamable HTTP with a new connection per request (the other policy).
    EnginePerRequest,
    /// The engine over Streamable HTTP, per-request, rmcp `max_concurrent_requests` = 256.
    EnginePerRequest256,
    /// The engine over Streamable HTTP, keep-alive (its default), `max_concurrent_requests` = 256.
    Engine256,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Rmcp => "rmcp",
            Kind::Engine => "engine",
            Kind::EngineClassic => "engine+2025-11-25",
            Kind::EnginePerRequest => "engine+per-request",
            Kind::EnginePerRequest256 => "engine+per-request+mcr256",
            Kind::Engine256 => "engine+mcr256",
        }
    }
}

/// A connected client of some kind.
#[allow(
    clippy::large_enum_variant,
    reason = "one per connection, behind an Arc; boxing would add an indirection to only one side"
)]
pub enum Client {
    Rmcp {
        service: RunningService<RoleClient, ()>,
        /// The stdio server this client started, killed on drop.
        _child: Option<Child>,
    },
    /// The engine's hub, with the exposed name of each of the server's tools.
    Hub {
        hub: Hub,
        exposed: HashMap<String, String>,
    },
    /// A variant: a bare `Upstream` over a transport built by the bench.
    Engine(Upstream),
}

impl Client {
    /// Connects a client of `kind` to `endpoint` (within 20 s).
    pub async fn connect(
        kind: Kind,
        endpoint: &Endpoint,
        connector: &Connector,
    ) -> anyhow::Result<Self> {
        let inner = Self::connect_inner(kind, &endpoint.target, endpoint.modern, connector);
        tokio::time::timeout(CONNECT_LIMIT, inner)
            .await
            .with_context(|| format!("{} did not connect within 20 s", kind.label()))?
    }

    async fn connect_inner(
        kind: Kind,
        target: &Target,
        modern: bool,
        connector: &Connector,
    ) -> anyhow::Result<Self> {
        let mut config = target.server_config("bench");
        match kind {
            Kind::Engine | Kind::EngineClassic => {
                if kind == Kind::EngineClassic {
                    config.protocol_version = ProtocolPin::V2025_11_25;
                }
                let hub = Hub::builder()
                    .server(config)
                    .connector(connector.clone())
                    .start()
                    .await
                    .context("engine start")?;
                if let Some((_, error)) = hub.failures().first() {
                    bail!("engine connect: {error}");
                }
                let exposed = hub
                    .catalog()
                    .tools()
                    .iter()
                    .map(|t| (t.original.clone(), t.name.clone()))
                    .collect();
                Ok(Client::Hub { hub, exposed })
            }
            Kind::Rmcp => connect_rmcp(target, modern).await,
            Kind::EnginePerRequest | Kind::EnginePerRequest256 | Kind::Engine256 => {
                let Target::Url(url) = target else {
                    bail!("{} needs a Streamable HTTP server", kind.label());
                };
                if config.transport != TransportKind::StreamableHttp {
                    bail!("{} needs a Streamable HTTP server", kind.label());
                }
                let policy = match kind {
                    Kind::Engine256 => HttpConnections::KeepAlive,
                    _ => HttpConnections::PerRequest,
                };
                let clients = http::Clients::default();
                let transport = if kind == Kind::EnginePerRequest {
                    // Exactly what the engine builds, with the other connection policy.
                    http::transport(&clients, policy, url, Vec::new())?
                } else {
                    let url: std::sync::Arc<str> = std::sync::Arc::from(url.as_str());
                    let client = clients.for_url(policy, url.clone())?;
                    let config = StreamableHttpClientTransportConfig::with_uri(url)
                        .reinit_on_expired_session(true)
                        .max_concurrent_requests(256);
                    StreamableHttpClientTransport::with_client(client, config)
                };
                Ok(Client::Engine(
                    Upstream::serve(&config, transport)
                        .await
                        .context("engine (variant) initialize")?,
                ))
            }
        }
    }

    /// One `tools/call`; the size of its first text block, or an error.
    pub async fn call(&self, tool: &str, args: &JsonObject) -> anyhow::Result<usize> {
        let (is_error, first_text) = match self {
            Client::Rmcp { service, .. } => {
                let params =
                    CallToolRequestParams::new(tool.to_owned()).with_arguments(args.clone());
                let result = service.call_tool(params).await?;
                let first = result.content.first().and_then(|c| c.as_text());
                (
                    result.is_error == Some(true),
                    first.map_or(0, |t| t.text.len()),
                )
            }
            Client::Hub { hub, exposed } => {
                let name = exposed
                    .get(tool)
                    .with_context(|| format!("the server has no tool '{tool}'"))?;
                let deadline = Deadline::after(CALL_DEADLINE);
                let outcome = hub.call(name, Some(args.clone()), Some(deadline)).await?;
                (outcome.is_error, first_text_len(&outcome))
            }
            Client::Engine(upstream) => {
                let deadline = Instant::now() + CALL_DEADLINE;
                let outcome = upstream
                    .call_tool(tool, Some(args.clone()), deadline)
                    .await?;
                (outcome.is_error, first_text_len(&outcome))
            }
        };
        if is_error {
            bail!("the tool returned isError");
        }
        Ok(first_text)
    }

    /// Ends the session (and a stdio server).
    pub async fn close(self) {
        match self {
            Client::Rmcp { mut service, .. } => {
                let _ = service.close_with_timeout(Duration::from_secs(2)).await;
            }
            Client::Hub { hub, .. } => hub.close().await,
            Client::Engine(upstream) => upstream.close().await,
        }
    }
}

/// The size of the outcome's first block, when it is text.
fn first_text_len(outcome: &switchboard::CallOutcome) -> usize {
    outcome
        .content
        .first()
        .and_then(|c| c.as_text())
        .map_or(0, str::len)
}

async fn connect_rmcp(target: &Target, modern: bool) -> anyhow::Result<Client> {
    let lifecycle = match modern {
        true => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        false => ClientLifecycleMode::Initialize,
    };
    match target {
        Target::Stdio { program, args } => {
            let mut child = Command::new(program)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start {}", program.display()))?;
            let stdout = child.stdout.take().context("stdout not piped")?;
            let stdin = child.stdin.take().context("stdin not piped")?;
            let service =
                ().serve_with_lifecycle((stdout, stdin), lifecycle)
                    .await
                    .context("rmcp initialize")?;
            Ok(Client::Rmcp {
                service,
                _child: Some(child),
            })
        }
        Target::Url(url) => {
            let service = match TransportKind::for_url(url) {
                TransportKind::Sse => {
                    // rmcp has no legacy SSE client: this side uses Switchboard's transport.
                    let transport =
                        SseClientTransport::connect(reqwest::Client::new(), url, vec![])
                            .await
                            .context("legacy SSE connect")?;
                    ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
                        .await
                        .context("rmcp initialize")?
                }
                _ => {
                    let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                    ().serve_with_lifecycle(transport, lifecycle)
                        .await
                        .context("rmcp initialize")?
                }
            };
            Ok(Client::Rmcp {
                service,
                _child: None,
            })
        }
    }
}

/// Shared handle used by the load generator.
pub type Shared = Arc<Client>;
