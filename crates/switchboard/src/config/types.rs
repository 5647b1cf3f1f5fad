//! The validated configuration: what the rest of the engine reads.
//!
//! Everything here is plain data with defaults and small helpers; how a file becomes these
//! types is the business of the other files of `config` (see its module docs).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::gateway_security::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION, HostPattern, InboundAuthConfig,
    OriginPattern,
};
use crate::error::ConfigError;

/// Declares an enum whose values are named in the config file, each value next to its name:
/// `Variant = "name"`. Besides the enum (`Debug, Clone, Copy, PartialEq, Eq, Default`), it
/// gives `ALL` (every value with its name, in declaration order: what a reader parses with
/// and lists in its fix) and `as_str` (the name).
macro_rules! config_enum {
    (
        $(#[$enum_attr:meta])*
        pub enum $enum:ident {
            $($(#[$attr:meta])* $variant:ident = $name:literal,)+
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $enum {
            $($(#[$attr])* $variant,)+
        }

        impl $enum {
            /// Every value with its name in the config file.
            pub const ALL: [($enum, &'static str); [$($name),+].len()] =
                [$(($enum::$variant, $name)),+];

            /// The value's name in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }
        }
    };
}

mod auth;
pub use auth::{
    AuthConfig, AuthKind, DEFAULT_REFRESH_BEFORE, DpopMode, IdpConfig, SHARED_PRINCIPAL, Secret,
    TokenAuthMethod, TokenSource,
};

/// The default config file, looked up in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "switchboard.toml";

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_TOOL_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A whole, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Servers by name, in name order.
    pub servers: BTreeMap<String, ServerConfig>,
    /// The top-level `[variables]` table, used by header and env templating.
    pub variables: BTreeMap<String, String>,
    /// How exposed tool names are made (the `[catalog]` table).
    pub catalog: CatalogConfig,
    /// The `[sessions]` table: engine-wide settings of per-session connections.
    pub sessions: SessionsConfig,
    /// `on_server_registration_error` and `retry_skipped_servers` (top-level keys).
    pub registration: RegistrationConfig,
    /// The `[discovery]` table: a registry that lists more servers, if any. (Boxed: it is
    /// large and rare, and `Config` is moved around by value.)
    pub discovery: Option<Box<DiscoveryConfig>>,
    /// The `[gateway]` table: read by `switchboard serve` only. (Boxed like `discovery`:
    /// only the gateway reads it, and `Config` is moved around by value.)
    pub gateway: Box<GatewayConfig>,
    /// The `[scale]` table: gateway replicas sharing sessions (read by `switchboard serve`
    /// only); `None`: a single process, nothing shared.
    pub scale: Option<Box<ScaleConfig>>,
    /// The file this was read from, if any.
    pub source: Option<PathBuf>,
    /// What did not stop the file from loading but should be seen before anything connects:
    /// an `mcpServers` entry's key that Switchboard does not read (say `"arg"` for `"args"`,
    /// which would start the server without its arguments), with the closest known key.
    /// Front ends show these; the engine does not log them.
    pub warnings: Vec<ConfigWarning>,
}

/// A problem in a config file that does not stop it from loading. It names the file, the
/// server and the key like a [`ConfigError`], and says what to do.
pub type ConfigWarning = ConfigError;

/// The `[catalog]` table: how the tools of all servers are named in the merged catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// Between the server name and the tool name (`"__"`).
    pub separator: String,
    /// Whether exposed names carry the server name.
    pub prefix: PrefixMode,
    /// The longest exposed name; longer names are shortened with a hash (64, OpenAI's limit).
    pub max_name_length: usize,
    /// What to do when two tools would get the same exposed name.
    pub collisions: CollisionPolicy,
}

pub const DEFAULT_SEPARATOR: &str = "__";
pub const DEFAULT_MAX_NAME_LENGTH: usize = 64;
/// Bounds of `max_name_length`: room for a shortened prefix and tool (see
/// `catalog::naming`), and sanity.
pub const MAX_NAME_LENGTH_RANGE: std::ops::RangeInclusive<usize> = 16..=1024;

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            separator: DEFAULT_SEPARATOR.to_string(),
            prefix: PrefixMode::Always,
            max_name_length: DEFAULT_MAX_NAME_LENGTH,
            collisions: CollisionPolicy::Suffix,
        }
    }
}

config_enum! {
    /// `prefix`: whether exposed names are `{server}{separator}{tool}` or the tool's own.
    pub enum PrefixMode {
        #[default]
        Always = "always",
        /// Tool names as the servers give them; equal names then go to the collision policy.
        Never = "never",
    }
}

config_enum! {
    /// `collisions`: what happens when two tools would be exposed under one name.
    pub enum CollisionPolicy {
        /// The catalogue is not built; the error names both tools.
        Error = "error",
        /// The later tool gets `_2`, `_3`, ... (in server-name, then tool-name order).
        #[default]
        Suffix = "suffix",
        /// The tool of the server first in name order is kept, the other left out.
        FirstWins = "first_wins",
        /// The tool of the server last in name order is kept, the other left out.
        LastWins = "last_wins",
    }
}

/// What the hub does with servers that cannot be registered at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The default policy; a server's own `on_server_registration_error` overrides it.
    pub on_error: RegistrationPolicy,
    /// Whether skipped servers are retried in the background (with each server's
    /// `reconnect` backoff, without end) and join the catalogue when they come up.
    pub retry_skipped: bool,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            on_error: RegistrationPolicy::SkipWithWarning,
            retry_skipped: true,
        }
    }
}

config_enum! {
    /// `on_server_registration_error`: what a failed connect or tool listing at start does.
    pub enum RegistrationPolicy {
        /// Start fails with an error naming the server; connections already opened are closed.
        FailFast = "fail_fast",
        /// The server is skipped (see the hub's health) and a WARN line says why.
        #[default]
        SkipWithWarning = "skip_with_warning",
        /// The server is skipped; the line is logged at DEBUG only.
        SkipSilently = "skip_silently",
    }
}

/// The `[sessions]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsConfig {
    /// How often idle per-session connections are looked for and closed.
    pub reaper_interval: Duration,
}

pub const DEFAULT_REAPER_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_SESSIONS: usize = 100;

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            reaper_interval: DEFAULT_REAPER_INTERVAL,
        }
    }
}

/// The `[gateway]` table: where `switchboard serve` listens, which inbound request
/// headers become session variables, how long a shutdown waits for calls in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The address to listen on (`127.0.0.1:8080`: loopback unless asked otherwise).
    pub listen: SocketAddr,
    /// Inbound request header (lowercase) -> session variable. A request's values of these
    /// headers are its session's variables, which `per_session` servers' header and env
    /// templates use (`${user_token}`), so a user's credential reaches only that user's
    /// upstream sessions. `Authorization` is refused: that is the gateway's own inbound
    /// credential, and forwarding it upstream is token passthrough, which MCP forbids.
    pub session_headers: BTreeMap<String, String>,
    /// How long a shutdown waits for calls in flight before closing the servers.
    pub drain_timeout: Duration,
    /// How long the gateway keeps serving after SIGTERM/ctrl-c with `/readyz` answering 503,
    /// before the drain starts: the time a load balancer takes to stop sending it requests.
    pub shutdown_delay: Duration,
    /// A downstream MCP session (2025-11-25) with no request for this long ends, and with it
    /// its own upstream connections.
    pub session_idle_timeout: Duration,
    /// `Host` headers the gateway answers, on every route (DNS-rebinding guard); others get
    /// 403. `None`: loopback names (`localhost`, `127.0.0.1`, `::1`) when listening on
    /// loopback, any host otherwise.
    pub allowed_hosts: Option<Vec<HostPattern>>,
    /// Browser origins allowed to call the gateway; a request with another `Origin` gets
    /// 403, one without `Origin` (not a browser) passes. Empty: no browser origin.
    pub allowed_origins: Vec<OriginPattern>,
    /// The largest request body accepted, in bytes (larger: 413).
    pub max_body: usize,
    /// Requests one downstream session (or one caller without a session) may have in
    /// flight; more get 429 with `Retry-After`.
    pub max_concurrent_calls_per_session: usize,
    /// Serve without `[gateway.auth]` on a non-loopback address (refused otherwise).
    pub allow_unauthenticated: bool,
    /// `[gateway.auth]`: inbound authentication; `None`: none (loopback only, unless
    /// `allow_unauthenticated`).
    pub auth: Option<Box<InboundAuthConfig>>,
}

pub const DEFAULT_GATEWAY_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_DOWNSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: DEFAULT_GATEWAY_LISTEN,
            session_headers: BTreeMap::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            shutdown_delay: Duration::ZERO,
            session_idle_timeout: DEFAULT_DOWNSTREAM_IDLE_TIMEOUT,
            allowed_hosts: None,
            allowed_origins: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_concurrent_calls_per_session: DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION,
            allow_unauthenticated: false,
            auth: None,
        }
    }
}

/// The `[scale]` table: what gateway replicas behind a load balancer share
/// (docs/scale-out-design.md). Its presence turns on sealed session ids (keys from
/// `keys_file`); `store = "redis"` shares session records and upstream sessions through Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleConfig {
    /// Where sessions are shared; `None`: sealed ids only (one replica).
    pub store: Option<ScaleStore>,
    /// The environment variable holding the Redis URL (the URL may carry a password, so it
    /// is never in the file).
    pub redis_url_env: String,
    /// The keyring: lines `kid=<base64 of 32 bytes>`, the first one sealing new ids.
    pub keys_file: PathBuf,
    /// First part of every Redis key.
    pub key_prefix: String,
    /// Keep a session's variables (sealed) in its record, for clients that send identity
    /// headers on `initialize` only. Off: a replica that has not seen a session serves it
    /// only to requests carrying the identity again.
    pub remember_variables: bool,
    /// A session id is refused this long after it was made, however active.
    pub max_session_lifetime: Duration,
}

pub const DEFAULT_REDIS_URL_ENV: &str = "SWITCHBOARD_REDIS_URL";
pub const DEFAULT_KEY_PREFIX: &str = "sb";
pub const DEFAULT_MAX_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

config_enum! {
    /// `[scale] store`: where replicas share sessions.
    pub enum ScaleStore {
        #[default]
        Redis = "redis",
    }
}

config_enum! {
    /// `protocol_version`: which MCP revision a server is spoken to in. `auto` finds out
    /// (a `server/discover` probe, then `initialize`); a revision pins it: `2026-07-28` opens
    /// with `server/discover` only, an older one with `initialize` offering that revision.
    pub enum ProtocolPin {
        #[default]
        Auto = "auto",
        V2026_07_28 = "2026-07-28",
        V2025_11_25 = "2025-11-25",
        V2025_06_18 = "2025-06-18",
        V2025_03_26 = "2025-03-26",
        V2024_11_05 = "2024-11-05",
    }
}

config_enum! {
    /// `elicitation`: what the engine answers a server that asks the user for input
    /// (`elicitation/create`) in the middle of a call.
    pub enum ElicitationPolicy {
        /// Decline every request; the engine does not offer the capability, so servers
        /// should not ask.
        #[default]
        Decline = "decline",
        /// Accept form requests with the defaults their schema gives (SEP-1034); decline a
        /// form that requires a field without a default, and URL requests.
        AcceptDefaults = "accept_defaults",
    }
}

config_enum! {
    /// `session_mode`: who shares a server's connection.
    pub enum SessionMode {
        /// One connection for every caller.
        #[default]
        Shared = "shared",
        /// One connection per session id, created on the session's first call. Calls without
        /// a session use the server's shared connection (the one its tools were listed with).
        PerSession = "per_session",
    }
}

/// `[servers.NAME.reconnect]`: how a lost connection is opened again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Connect attempts per reconnect cycle.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(50),
        }
    }
}

impl ReconnectPolicy {
    /// The wait after `failures` consecutive failed attempts (1 → `initial_backoff`).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// `[servers.NAME.tool_overrides.ORIGINAL]`: how one tool is presented. `None` keeps the
/// server's own name or description (an empty string in the file means the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolOverride {
    pub alias: Option<String>,
    pub description: Option<String>,
}

/// `include` / `exclude`: which of a server's tools are exposed. Patterns match the original
/// name or the alias; `*` matches any run of characters and `?` one character.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolFilter {
    #[default]
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

/// How Switchboard talks to one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// A child process speaking JSON-RPC on stdin/stdout.
    Stdio,
    /// The legacy HTTP+SSE transport (protocol revision 2024-11-05).
    Sse,
    /// Streamable HTTP (protocol revision 2025-03-26 and later).
    StreamableHttp,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::Sse => "sse",
            TransportKind::StreamableHttp => "streamable-http",
        }
    }

    /// The transport a bare URL implies: a path ending in `/sse` is legacy SSE,
    /// anything else Streamable HTTP.
    pub fn for_url(url: &str) -> TransportKind {
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .trim_end_matches('/');
        if path.ends_with("/sse") {
            TransportKind::Sse
        } else {
            TransportKind::StreamableHttp
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

config_enum! {
    /// How a Streamable HTTP upstream uses TCP connections (`http_connections`).
    pub enum HttpConnections {
        /// Idle connections are kept and reused.
        #[default]
        KeepAlive = "keep-alive",
        /// A new connection per request, rmcp's own default: use it for a server whose
        /// streamed responses stall a reused connection.
        PerRequest = "per-request",
    }
}

/// One server, validated: the fields that matter for its transport are set.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    pub transport: TransportKind,
    /// stdio: the program to run.
    pub command: Option<String>,
    pub args: Vec<String>,
    /// stdio: variables added to the inherited environment (templated).
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// sse / streamable-http: the endpoint.
    pub url: Option<String>,
    /// sse / streamable-http: headers sent with every request (templated).
    pub headers: BTreeMap<String, String>,
    pub connect_timeout: Duration,
    pub list_timeout: Duration,
    pub tool_call_timeout: Duration,
    /// streamable-http: connection reuse.
    pub http_connections: HttpConnections,
    /// Per-tool alias and description, keyed by the server's own tool name.
    pub tool_overrides: BTreeMap<String, ToolOverride>,
    /// Which tools are exposed.
    pub tool_filter: ToolFilter,
    /// Who shares the connection.
    pub session_mode: SessionMode,
    /// What to answer the server's elicitation requests.
    pub elicitation: ElicitationPolicy,
    /// The MCP revision to speak, or `auto`.
    pub protocol_version: ProtocolPin,
    /// `file://` URIs offered to the server as its roots (none: the capability is not
    /// offered).
    pub roots: Vec<String>,
    /// per_session: a session's connection is closed after this long without a call.
    pub session_idle_timeout: Duration,
    /// per_session: the most connections at once; the least recently used idle one makes
    /// room for a new one.
    pub max_sessions: usize,
    pub reconnect: ReconnectPolicy,
    pub enabled: bool,
    /// This server's `on_server_registration_error`; `None` follows the config's default.
    pub on_registration_error: Option<RegistrationPolicy>,
    /// `[servers.NAME.auth]`: how to sign in (OAuth); `None` when the table is absent.
    pub auth: Option<AuthConfig>,
}

impl ServerConfig {
    /// A stdio server with default timeouts.
    pub fn stdio(name: impl Into<String>, command: impl Into<String>, args: Vec<String>) -> Self {
        ServerConfig {
            command: Some(command.into()),
            args,
            ..Self::empty(name.into(), TransportKind::Stdio)
        }
    }

    /// An HTTP server with default timeouts; the transport follows [`TransportKind::for_url`].
    pub fn url(name: impl Into<String>, url: impl Into<String>) -> Self {
        let url = url.into();
        ServerConfig {
            url: Some(url.clone()),
            ..Self::empty(name.into(), TransportKind::for_url(&url))
        }
    }

    fn empty(name: String, transport: TransportKind) -> Self {
        ServerConfig {
            name,
            transport,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            headers: BTreeMap::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            list_timeout: DEFAULT_LIST_TIMEOUT,
            tool_call_timeout: DEFAULT_TOOL_CALL_TIMEOUT,
            http_connections: HttpConnections::default(),
            tool_overrides: BTreeMap::new(),
            tool_filter: ToolFilter::All,
            session_mode: SessionMode::Shared,
            elicitation: ElicitationPolicy::Decline,
            protocol_version: ProtocolPin::Auto,
            roots: Vec::new(),
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions: DEFAULT_MAX_SESSIONS,
            reconnect: ReconnectPolicy::default(),
            enabled: true,
            on_registration_error: None,
            auth: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The `[discovery]` table: where the list of servers comes from when it is not written in
// the config itself. The registry kinds' wire formats and the rules for turning their
// answers into servers live in the engine's `discovery` module.

/// How long one discovery request may take, unless `request_timeout` says otherwise.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The validated `[discovery]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Which registry is asked, and how.
    pub registry: RegistryKind,
    /// Extra headers (templates) for discovered servers, keyed by display name as written in
    /// the file; matched case-insensitively. They win over headers the registry supplies.
    pub server_auth: BTreeMap<String, BTreeMap<String, String>>,
    /// Discover again this often; `None`: only at start.
    pub refresh_interval: Option<Duration>,
    /// The limit for one discovery request (connect, answer and body).
    pub request_timeout: Duration,
}

/// `kind`: the registry and its settings.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryKind {
    /// The Agent 365 tooling gateway.
    A365 {
        /// Base URL, e.g. `https://agent365.svc.cloud.microsoft`.
        endpoint: String,
        agent_id: String,
        /// A template (`${env:A365_TOKEN}`), rendered for each discovery request.
        auth_token: String,
        api: A365Api,
    },
    /// Any http(s) URL or local file holding an `mcpServers` document.
    Url {
        /// `http(s)://...`, `file://...` or an absolute path (relative paths are resolved
        /// against the config file's directory when the config is loaded).
        url: String,
        /// Header templates sent with an http(s) request.
        headers: BTreeMap<String, String>,
    },
}

config_enum! {
    /// `api`: which A365 discovery endpoint is used.
    pub enum A365Api {
        /// `GET {endpoint}/agents/{agent_id}/mcpServers` (names only).
        V1 = "v1",
        /// `GET {endpoint}/agents/v2/{agent_id}/mcpServers` (URLs, headers, audiences).
        #[default]
        V2 = "v2",
    }
}

impl DiscoveryConfig {
    /// The stable name the registry goes by in errors and health: `a365` or `discovery`.
    pub fn registry_name(&self) -> &'static str {
        match self.registry {
            RegistryKind::A365 { .. } => "a365",
            RegistryKind::Url { .. } => "discovery",
        }
    }
}

// Debug by hand: templates may be literal secrets, so values are never printed.
impl std::fmt::Debug for DiscoveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth: BTreeMap<&str, Vec<&str>> = self
            .server_auth
            .iter()
            .map(|(name, headers)| (name.as_str(), headers.keys().map(String::as_str).collect()))
            .collect();
        f.debug_struct("DiscoveryConfig")
            .field("registry", &self.registry)
            .field("server_auth", &auth)
            .field("refresh_interval", &self.refresh_interval)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Debug for RegistryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryKind::A365 {
                endpoint,
                agent_id,
                api,
                ..
            } => f
                .debug_struct("A365")
                .field("endpoint", endpoint)
                .field("agent_id", agent_id)
                .field("auth_token", &"***")
                .field("api", api)
                .finish(),
            RegistryKind::Url { headers, .. } => f
                .debug_struct("Url")
                .field("url", &"***")
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}
