//! One live connection to one MCP server.
//!
//! [`Connector::connect`] starts the transport and runs `initialize` within the server's
//! `connect_timeout`. The resulting [`Upstream`] lists tools (every page) within
//! `list_timeout` and calls tools against one absolute deadline: a call whose deadline has
//! passed is never sent, and a call that runs out of time is cancelled at the server
//! (`notifications/cancelled`). Dropping a call future in flight cancels it too. Resources
//! and prompts: `resources.rs`. [`Upstream::close`] is idempotent and leaves no process
//! behind.

mod call;
mod classify;
mod exchange;
mod handler;
pub(crate) mod input;
pub(crate) mod interaction;
mod lifecycle;
mod listen;
pub(crate) mod listing;
mod outcome;
mod probe;
mod progress;
mod resources;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::service::ClientInitializeError;
use rmcp::service::{ClientCacheConfig, Peer, RoleClient, RunningService};
use rmcp::transport::IntoTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use tokio::sync::broadcast;

pub use handler::UpstreamEvent;
pub use listing::CacheHints;
pub use outcome::{
    CallOutcome, Content, PromptMessage, PromptOutcome, ResourceContents, ResourceRead, Role,
};
use probe::DiscoverProbe;

use crate::config::template::{render_env, render_headers};
use crate::config::{ElicitationPolicy, HttpConnections, ServerConfig, TransportKind, Variables};
use crate::interaction::InputHandler;
use crate::transport::{http, sse, stdio};
use crate::{Error, ErrorClass, Phase};
use handler::Handler;

/// Longest a connection waits for another replica's new upstream session (see
/// `transport/http/attach.rs`).
const MAX_ATTACH_WAIT: Duration = Duration::from_secs(2);

/// How long `close` gives the MCP session to shut down before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Opens upstream connections. Holds what connections share (the HTTP clients and their
/// connection pools), so make one and reuse it.
#[derive(Clone, Default)]
pub struct Connector {
    clients: http::Clients,
    /// The token cells of servers that sign in (OAuth), and their store.
    auth: crate::auth::AuthRegistry,
    /// Which lifecycle each upstream speaks, once seen (`lifecycle.rs`).
    learned: Arc<lifecycle::Learned>,
    /// Where classic upstream sessions are shared with other replicas, if they are.
    shared: Option<Arc<dyn http::SharedSessions>>,
}

/// The session a connection is opened for: its engine id (the key of its shared upstream
/// sessions) and its variables (for headers and env).
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id: Arc<str>,
    pub variables: Arc<BTreeMap<String, String>>,
}

/// How a session's own connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionClose {
    /// Forget it here; a shared upstream session stays open upstream (no `DELETE`: another
    /// replica may still use it). Without a shared store, the same as `End`.
    Detach,
    /// The session is over: end its upstream sessions (`DELETE`) and forget their records.
    End,
}

impl Connector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same connector keeping OAuth tokens in `store` (the default keeps them in
    /// memory; [`FileStore`](crate::auth::FileStore) keeps them across processes).
    pub fn with_token_store(mut self, store: Arc<dyn crate::auth::TokenStore>) -> Self {
        self.auth = crate::auth::AuthRegistry::new(store);
        self
    }

    /// The same connector signing people in to OAuth servers through `opener` when a
    /// server asks (a 401 that no stored or refreshed token answers). Without it (the
    /// default) such a server fails with [`Error::Auth`] / [`Error::SignIn`].
    pub fn with_opener(mut self, opener: Arc<dyn crate::auth::Opener>) -> Self {
        self.auth = self.auth.with_opener(opener);
        self
    }

    /// The same connector sharing classic upstream sessions of `per_session` servers with
    /// other replicas through `store` (see `transport/http/attach.rs`).
    pub fn with_shared_sessions(mut self, store: Arc<dyn http::SharedSessions>) -> Self {
        self.shared = Some(store);
        self
    }

    /// The HTTP client for requests that are not MCP (a tooling registry's server list);
    /// it shares the keep-alive pool and TLS setup of HTTPS upstreams.
    pub fn registry_client(&self) -> reqwest::Client {
        // Without CA certificates an https registry fails its TLS handshake; the reason was
        // logged when the client was built.
        self.clients.reqwest_any(HttpConnections::KeepAlive)
    }

    /// Connects to `server` and completes `initialize`, within `server.connect_timeout`.
    /// `vars` fills the `${...}` placeholders of headers and env values. Not part of the
    /// API (hubs connect; this is for the engine's tests and the bench, see
    /// `switchboard::internals`).
    #[doc(hidden)]
    pub async fn connect(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
    ) -> Result<Upstream, Error> {
        self.connect_answering(server, vars, None, None).await
    }

    /// [`Connector::connect`] with the handler that answers the server's requests when the
    /// call they belong to has none (a hub's), for `session`'s own connection if given.
    pub(crate) async fn connect_answering(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        input: Option<Arc<dyn InputHandler>>,
        session: Option<&SessionRef>,
    ) -> Result<Upstream, Error> {
        let connect = |input| self.connect_once(server, vars, input, session);
        let mut result = connect(input.clone()).await;
        if let Err(error) = &result
            && needs_login(error)
            && self.auth.can_login(server)
        {
            // Signing in takes a person's time: outside the connect timeout, then once more.
            let challenge = error.challenge().map(str::to_owned);
            let http = self.clients.reqwest_any(HttpConnections::KeepAlive);
            self.auth
                .login(server, vars, http, challenge.as_deref())
                .await?;
            result = connect(input.clone()).await;
            // The sign-in left the connection idle for a person's time: a connection the
            // server closed meanwhile is not its answer. Connecting changes nothing there.
            if result
                .as_ref()
                .is_err_and(|e| e.class() == ErrorClass::Unreachable)
            {
                result = connect(input).await;
            }
        }
        result
    }

    async fn connect_once(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        input: Option<Arc<dyn InputHandler>>,
        session: Option<&SessionRef>,
    ) -> Result<Upstream, Error> {
        let budget = server.connect_timeout;
        let started = tokio::time::Instant::now();
        let timed_out = || Error::Timeout {
            server: server.name.clone(),
            phase: Phase::Connect,
            after: budget,
        };
        let mode = self.learned.mode(server);
        let slow_modern = AtomicBool::new(false);
        let connect = self.connect_inner(server, vars, mode, input.clone(), session, &slow_modern);
        let mut result = tokio::time::timeout(budget, connect)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        // The probe went unanswered, then `initialize` was refused: a 2026-07-28-only
        // server that was slow to answer `server/discover` (see `probe.rs`). Once more with
        // `server/discover` alone, waiting as long as the connect timeout leaves.
        if result.is_err() && slow_modern.load(Ordering::Relaxed) {
            tracing::debug!(server = %server.name, "initialize refused after an unanswered probe: opening with server/discover");
            let unused = AtomicBool::new(false);
            let mode = lifecycle::modern();
            let connect = self.connect_inner(server, vars, mode, input, session, &unused);
            result = tokio::time::timeout_at(started + budget, connect)
                .await
                .unwrap_or_else(|_| Err(timed_out()));
        }
        self.learned.record(server, result.as_ref().ok());
        result
    }

    async fn connect_inner(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        mode: ClientLifecycleMode,
        input: Option<Arc<dyn InputHandler>>,
        session: Option<&SessionRef>,
        slow_modern: &AtomicBool,
    ) -> Result<Upstream, Error> {
        let name = server.name.as_str();
        let template_error = |source| Error::Template {
            server: name.to_owned(),
            source,
        };
        match server.transport {
            TransportKind::Stdio => {
                let env = render_env(&server.env, vars).map_err(template_error)?;
                let child = stdio::spawn(server, env).map_err(|e| Error::Unreachable {
                    server: name.to_owned(),
                    reason: format!(
                        "cannot start '{}': {e}",
                        server.command.as_deref().unwrap_or_default()
                    ),
                })?;
                let mut group = child.group;
                let stdio = (child.stdout, child.stdin);
                match Upstream::serve_with(server, stdio, mode, input, Some(slow_modern)).await {
                    Ok(mut upstream) => {
                        upstream.process = tokio::sync::Mutex::new(Some(group));
                        Ok(upstream)
                    }
                    Err(error) => {
                        // Give the stderr reader a moment to catch the server's last words.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let running = group.is_running();
                        let tail = group.stderr_tail();
                        group.terminate().await;
                        Err(explain_stdio_failure(error, running, tail))
                    }
                }
            }
            TransportKind::Sse => {
                let url = server.url.as_deref().unwrap_or_default();
                let headers = render_headers(&server.headers, vars).map_err(template_error)?;
                // The event stream holds one connection; POSTs reuse the others.
                let client = self
                    .clients
                    .reqwest(HttpConnections::KeepAlive, url)
                    .map_err(|e| Error::Unreachable {
                        server: name.to_owned(),
                        reason: e.to_string(),
                    })?;
                let transport = sse::SseClientTransport::connect(client, url, headers)
                    .await
                    .map_err(|e| {
                        let address = address(server);
                        let target = classify::Target {
                            server: name,
                            address: address.as_deref(),
                        };
                        classify::from_sse_connect(target, e)
                    })?;
                Upstream::serve_with(server, transport, mode, input.clone(), Some(slow_modern))
                    .await
            }
            TransportKind::StreamableHttp => {
                let url = server.url.as_deref().unwrap_or_default();
                let headers = render_headers(&server.headers, vars).map_err(template_error)?;
                if let Some(reserved) = http::reserved_header(&headers) {
                    return Err(Error::Protocol {
                        server: name.to_owned(),
                        reason: format!(
                            "header '{reserved}' is set by the transport itself; remove it from headers"
                        ),
                    });
                }
                let names = server.headers.keys().cloned();
                let sessions = Arc::new(http::SessionHeaders::new(names));
                let authorizer = self.auth.authorizer(
                    server,
                    vars,
                    self.clients.reqwest_any(HttpConnections::KeepAlive),
                )?;
                let attach = self.attach(server, session, &mode);
                let links = http::Links {
                    sessions: Some(sessions.clone()),
                    authorizer: authorizer.clone().map(|a| a as Arc<dyn http::Authorizer>),
                    attach: attach.clone(),
                };
                let transport = http::transport_with_sessions(
                    &self.clients,
                    server.http_connections,
                    url,
                    headers,
                    links,
                )
                .map_err(|e| match e {
                    http::ClientSetupError::BadUrl(_) | http::ClientSetupError::Header(_) => {
                        Error::Protocol {
                            server: name.to_owned(),
                            reason: e.to_string(),
                        }
                    }
                    http::ClientSetupError::Tls(_) => Error::Unreachable {
                        server: name.to_owned(),
                        reason: e.to_string(),
                    },
                })?;
                let mut upstream =
                    Upstream::serve_with(server, transport, mode, input, Some(slow_modern)).await?;
                if let Some(authorizer) = authorizer {
                    authorizer.connected();
                }
                upstream.session_headers = Some(sessions);
                upstream.attach = attach;
                let config = vars.config.cloned().unwrap_or_default();
                upstream.header_templates = Some((server.headers.clone(), config));
                Ok(upstream)
            }
        }
    }
}

impl Connector {
    /// The attachment of `session`'s own connection to `server`, when classic upstream
    /// sessions are shared (`per_session` servers opened with `initialize` only: a shared
    /// connection is per replica, and a 2026-07-28 server keeps no session).
    fn attach(
        &self,
        server: &ServerConfig,
        session: Option<&SessionRef>,
        mode: &ClientLifecycleMode,
    ) -> Option<Arc<http::Attach>> {
        let (store, session) = (self.shared.as_ref()?, session?);
        // Only a classic (`initialize`) session is kept upstream, so shared.
        let classic = matches!(mode, ClientLifecycleMode::Initialize);
        if server.session_mode != crate::config::SessionMode::PerSession || !classic {
            return None;
        }
        let key = http::UpstreamKey {
            session: session.id.to_string(),
            server: server.name.clone(),
        };
        // Half the connect budget, and well within rmcp's 5 s to re-initialize after a
        // 404: a replica that waits for another's session still has time to open its own.
        let url = server.url.clone().unwrap_or_default();
        let wait = (server.connect_timeout / 2).min(MAX_ATTACH_WAIT);
        Some(Arc::new(http::Attach::new(store.clone(), key, url, wait)))
    }
}

/// Whether a failed connect is one only a person signing in fixes: a 401, or a sign-in
/// failure that says so (a refresh token the server no longer takes).
fn needs_login(error: &Error) -> bool {
    match error {
        Error::Auth { status: 401, .. } => true,
        Error::SignIn { failure, .. } => failure.needs_login,
        _ => false,
    }
}

/// How many stderr lines explain a stdio server that failed to initialize, and how many
/// characters of each.
const SHOWN_STDERR_LINES: usize = 6;
const SHOWN_STDERR_CHARS: usize = 200;

/// A stdio server that failed to initialize: say whether it exited and what it last said
/// (its last meaningful stderr lines, one per line after the first, indented).
fn explain_stdio_failure(error: Error, still_running: bool, stderr_tail: Vec<String>) -> Error {
    let Error::Unreachable { server, reason } = error else {
        return error;
    };
    let mut reason = if still_running {
        reason
    } else {
        "the server process exited before initialize completed".to_owned()
    };
    let lines = meaningful_lines(&stderr_tail);
    if !lines.is_empty() {
        reason.push_str(" (its last stderr lines follow)");
        for line in lines {
            reason.push_str("\n    ");
            reason.push_str(&line);
        }
    }
    Error::Unreachable { server, reason }
}

/// `host:port` of a network server, for error messages (never the path or query).
fn address(server: &ServerConfig) -> Option<String> {
    let url = url::Url::parse(server.url.as_deref()?).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// The last few lines of `tail` worth showing, trimmed and cut: not blank or punctuation
/// only (`}`, `^`), and not stack frames (`at f (file:1:2)`, as Node and Java print them),
/// so that an error above a stack trace (Node's `Error: Cannot find module ...`) is shown
/// with what follows it.
fn meaningful_lines(tail: &[String]) -> Vec<String> {
    let lines: Vec<&str> = tail
        .iter()
        .map(|line| line.trim())
        .filter(|line| line.chars().any(char::is_alphanumeric))
        .filter(|line| !line.starts_with("at "))
        .collect();
    lines[lines.len().saturating_sub(SHOWN_STDERR_LINES)..]
        .iter()
        .map(|line| {
            if line.chars().count() <= SHOWN_STDERR_CHARS {
                line.to_string()
            } else {
                let cut: String = line.chars().take(SHOWN_STDERR_CHARS - 1).collect();
                format!("{cut}…")
            }
        })
        .collect()
}

/// One live MCP session with one server.
pub struct Upstream {
    server: Arc<str>,
    /// `host:port` for network servers, named in connection errors.
    address: Option<Arc<str>>,
    transport: TransportKind,
    list_timeout: Duration,
    call_timeout: Duration,
    peer: Peer<RoleClient>,
    service: Mutex<Option<RunningService<RoleClient, Handler>>>,
    process: tokio::sync::Mutex<Option<stdio::ProcessGroup>>,
    closed: AtomicBool,
    events: broadcast::Sender<UpstreamEvent>,
    tool_changes: Arc<AtomicU64>,
    /// Tool names from the last successful `list_tools`, to tell an unknown tool from a
    /// call the server rejected.
    listed_tools: Mutex<Option<HashSet<String>>>,
    /// What the last `tools/list` said about caching it.
    tools_cache: Mutex<CacheHints>,
    /// A `subscriptions/listen` stream brings this server's tool changes.
    follows_tools: Arc<AtomicBool>,
    /// The connection speaks 2026-07-28 (opened with `server/discover`).
    modern: bool,
    /// What to answer a server asking for input (input-required results).
    elicitation: ElicitationPolicy,
    roots: Vec<String>,
    /// The calls in flight (progress and server requests are routed to them).
    calls: Arc<interaction::Calls>,
    /// The hub's input handler, for requests no call's handler answers.
    input: Option<Arc<dyn InputHandler>>,
    /// Streamable HTTP: where a request finds its session's headers (see
    /// [`Upstream::carries_sessions`]), and the server's header templates with the
    /// config's variables, to render a session's.
    session_headers: Option<Arc<http::SessionHeaders>>,
    header_templates: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    /// The shared classic upstream session this connection is attached to, if any.
    attach: Option<Arc<http::Attach>>,
}

impl Upstream {
    /// Opens the MCP lifecycle over an already open transport (in-process servers; the
    /// probe of `lifecycle.rs` for a server not seen before). Does not apply
    /// `connect_timeout`; [`Connector::connect`] does.
    pub async fn serve<T, E, A>(server: &ServerConfig, transport: T) -> Result<Upstream, Error>
    where
        T: IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        Upstream::serve_answering(server, transport, None).await
    }

    /// [`Upstream::serve`] with a hub's input handler.
    pub(crate) async fn serve_answering<T, E, A>(
        server: &ServerConfig,
        transport: T,
        input: Option<Arc<dyn InputHandler>>,
    ) -> Result<Upstream, Error>
    where
        T: IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mode = match server.transport {
            TransportKind::Sse => ClientLifecycleMode::Initialize,
            _ => lifecycle::probe(),
        };
        Upstream::serve_with(server, transport, mode, input, None).await
    }

    /// [`Upstream::serve`] opening the lifecycle `mode`, with `input` answering the server's
    /// requests when the call they belong to has no handler.
    async fn serve_with<T, E, A>(
        server: &ServerConfig,
        transport: T,
        mode: ClientLifecycleMode,
        input: Option<Arc<dyn InputHandler>>,
        slow_modern: Option<&AtomicBool>,
    ) -> Result<Upstream, Error>
    where
        T: IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let name: Arc<str> = Arc::from(server.name.as_str());
        let address: Option<Arc<str>> = address(server).map(Arc::from);
        let (events, _) = broadcast::channel(16);
        let tool_changes = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(interaction::Calls::default());
        let handler = Handler {
            server: name.clone(),
            events: events.clone(),
            tool_changes: tool_changes.clone(),
            elicitation: server.elicitation,
            offer: lifecycle::offered(server),
            roots: server.roots.iter().cloned().collect(),
            calls: calls.clone(),
            input: input.clone(),
        };
        let probing = matches!(mode, ClientLifecycleMode::Auto { .. });
        let transport = DiscoverProbe::new(
            progress::InOrderProgress::new(transport.into_transport(), calls.clone(), name.clone()),
            probing.then_some(server.connect_timeout),
        );
        let gave_up = transport.gave_up();
        let service = handler
            .serve_with_lifecycle(transport, mode)
            .await
            .map_err(|e| {
                if let Some(slow_modern) = slow_modern {
                    let refused = matches!(&e, ClientInitializeError::LegacyFallbackFailed { fallback, .. }
                        if matches!(**fallback, ClientInitializeError::JsonRpcError(_)));
                    slow_modern.store(refused && gave_up.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                let target = classify::Target {
                    server: &name,
                    address: address.as_deref(),
                };
                classify::from_init(target, e)
            })?;
        let peer = service.peer().clone();
        let peer_speaks_initialize = peer
            .peer_info()
            .is_none_or(|info| info.protocol_version.has_initialize());
        // A cached tools/list would hide a server that went down or changed its tools.
        peer.set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        tracing::debug!(server = %name, transport = %server.transport, "connected");
        Ok(Upstream {
            server: name,
            address,
            transport: server.transport,
            list_timeout: server.list_timeout,
            call_timeout: server.tool_call_timeout,
            peer,
            service: Mutex::new(Some(service)),
            process: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            events,
            tool_changes,
            listed_tools: Mutex::new(None),
            tools_cache: Mutex::new(CacheHints::default()),
            follows_tools: Arc::default(),
            modern: !peer_speaks_initialize,
            elicitation: server.elicitation,
            roots: server.roots.clone(),
            calls,
            input,
            session_headers: None,
            header_templates: None,
            attach: None,
        })
    }

    /// Whether sessions can share this connection, each request carrying its session's
    /// headers: a 2026-07-28 server over Streamable HTTP keeps nothing per session.
    pub fn carries_sessions(&self) -> bool {
        self.modern && self.session_headers.is_some()
    }

    /// The headers of a session with `variables` (which win over the config's), rendered
    /// as a connection of its own would send them.
    pub(crate) fn session_headers_for(
        &self,
        variables: &BTreeMap<String, String>,
    ) -> Result<Arc<::http::HeaderMap>, Error> {
        let (templates, config) =
            self.header_templates
                .as_ref()
                .ok_or_else(|| Error::Protocol {
                    server: self.server.to_string(),
                    reason: "this connection cannot carry a session's headers".to_owned(),
                })?;
        let vars = Variables {
            connection: Some(variables),
            config: Some(config),
        };
        let rendered = render_headers(templates, vars).map_err(|source| Error::Template {
            server: self.server.to_string(),
            source,
        })?;
        let headers =
            crate::transport::headers::header_map(rendered).map_err(|e| Error::Protocol {
                server: self.server.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Arc::new(headers))
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// The configured `tool_call_timeout`, for callers that build a deadline from it.
    pub fn tool_call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Notifications from the server that its owner may act on.
    pub fn subscribe(&self) -> broadcast::Receiver<UpstreamEvent> {
        self.events.subscribe()
    }

    /// How many `notifications/tools/list_changed` the server has sent so far. Read it
    /// before `list_tools`; if it moved by the time someone subscribes, a change was missed.
    pub fn tool_changes(&self) -> u64 {
        self.tool_changes.load(Ordering::Acquire)
    }

    /// Whether the session can still carry requests: not closed by us, transport not dead.
    pub fn is_alive(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.peer.is_transport_closed()
    }

    /// The server's name and version from `initialize`, if it sent them.
    /// The MCP revision agreed with the server (e.g. `2026-07-28` after `server/discover`,
    /// `2025-11-25` after `initialize`).
    pub fn protocol_version(&self) -> Option<String> {
        let info = self.peer.peer_info()?;
        Some(info.protocol_version.to_string())
    }

    pub fn server_info(&self) -> Option<rmcp::model::Implementation> {
        self.peer
            .peer_info()
            .and_then(|info| info.server_info.clone())
    }

    fn target(&self) -> classify::Target<'_> {
        classify::Target {
            server: &self.server,
            address: self.address.as_deref(),
        }
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                server: self.server.to_string(),
                reason: None,
            });
        }
        if self.peer.is_transport_closed() {
            return Err(self.lost_before_sending());
        }
        Ok(())
    }

    /// The session's transport was found dead before a request was handed to it.
    fn lost_before_sending(&self) -> Error {
        Error::Unreachable {
            server: self.server.to_string(),
            reason: "the connection was lost".to_owned(),
        }
    }

    /// Ends the session and, for stdio, the server's whole process group. Idempotent.
    /// Closes as [`Upstream::close`], ending a shared upstream session (`DELETE`) when
    /// `mode` says so instead of only detaching from it (see [`SessionClose`]).
    pub async fn close_as(&self, mode: SessionClose) {
        if let (SessionClose::End, Some(attach)) = (mode, &self.attach) {
            attach.end_on_close();
        }
        self.close().await;
    }

    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let service = self
            .service
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut service) = service {
            let _ = service.close_with_timeout(CLOSE_GRACE).await;
        }
        if let Some(mut group) = self.process.lock().await.take() {
            group.terminate().await;
        }
        tracing::debug!(server = %self.server, "closed");
    }

    /// Kills a stdio server's whole process group at once (SIGKILL), synchronously; the
    /// session is left for [`Upstream::close`]. For owners that cannot wait (a hub dropped
    /// without `close`). Does nothing if a `close` is already terminating the group.
    pub fn kill_process_group(&self) {
        if let Ok(mut process) = self.process.try_lock() {
            // Dropping the group kills it.
            drop(process.take());
        }
    }

    /// The process group id of a stdio server (its pid), for diagnostics and tests.
    pub async fn process_id(&self) -> Option<i32> {
        self.process.lock().await.as_ref().and_then(|g| g.pgid())
    }
}

#[cfg(test)]
mod tests;
