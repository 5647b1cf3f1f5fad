//! Configuration: which servers to connect to and how.
//!
//! Switchboard reads its own TOML format (`switchboard.toml`) and, unchanged, the JSON files
//! people already have: the `mcpServers` shape of Claude Desktop and Cursor, and the `servers`
//! shape of VS Code. Every file becomes one validated [`Config`]; a file that cannot be used
//! gives a [`ConfigError`] naming the file, the server and the key, and saying what to do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod discovery;
mod json;
mod load;
pub(crate) mod suggest;
pub(crate) mod template;

pub use discovery::{A365Api, DEFAULT_DISCOVERY_TIMEOUT, DiscoveryConfig, RegistryKind};
pub use template::{TemplateError, Variables};

pub(crate) use load::{is_valid_server_name, normalise_server_name};

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

/// Checks a server URL given outside a config file, e.g. on the command line as `key`
/// (`--url`): it must be a full `http://` or `https://` URL. The error says what to write
/// (for `127.0.0.1:3001` without a scheme: add `http://`) and never contains the URL.
pub fn check_server_url(key: &str, url: &str) -> Result<(), ConfigError> {
    load::check_url_with(url, &format!("{key} http://127.0.0.1:3001/mcp"))
        .map_err(|(problem, fix)| ConfigError::new(problem, fix))
}

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

/// `prefix`: whether exposed names are `{server}{separator}{tool}` or the tool's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefixMode {
    #[default]
    Always,
    /// Tool names as the servers give them; equal names then go to the collision policy.
    Never,
}

/// `collisions`: what happens when two tools would be exposed under one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CollisionPolicy {
    /// The catalogue is not built; the error names both tools.
    Error,
    /// The later tool gets `_2`, `_3`, ... (in server-name, then tool-name order).
    #[default]
    Suffix,
    /// The tool of the server first in name order is kept, the other left out.
    FirstWins,
    /// The tool of the server last in name order is kept, the other left out.
    LastWins,
}

impl PrefixMode {
    pub const ALL: [(PrefixMode, &'static str); 2] =
        [(PrefixMode::Always, "always"), (PrefixMode::Never, "never")];
}

impl CollisionPolicy {
    pub const ALL: [(CollisionPolicy, &'static str); 4] = [
        (CollisionPolicy::Error, "error"),
        (CollisionPolicy::Suffix, "suffix"),
        (CollisionPolicy::FirstWins, "first_wins"),
        (CollisionPolicy::LastWins, "last_wins"),
    ];
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

/// `on_server_registration_error`: what a failed connect or tool listing at start does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationPolicy {
    /// Start fails with an error naming the server; connections already opened are closed.
    FailFast,
    /// The server is skipped (see the hub's health) and a WARN line says why.
    #[default]
    SkipWithWarning,
    /// The server is skipped; the line is logged at DEBUG only.
    SkipSilently,
}

impl RegistrationPolicy {
    pub const ALL: [(RegistrationPolicy, &'static str); 3] = [
        (RegistrationPolicy::FailFast, "fail_fast"),
        (RegistrationPolicy::SkipWithWarning, "skip_with_warning"),
        (RegistrationPolicy::SkipSilently, "skip_silently"),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("skip_with_warning", |(_, name)| name)
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

/// `session_mode`: who shares a server's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// One connection for every caller.
    #[default]
    Shared,
    /// One connection per session id, created on the session's first call. Calls without a
    /// session use the server's shared connection (the one its tools were listed with).
    PerSession,
}

impl SessionMode {
    pub const ALL: [(SessionMode, &'static str); 2] = [
        (SessionMode::Shared, "shared"),
        (SessionMode::PerSession, "per_session"),
    ];
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

/// How a Streamable HTTP upstream uses TCP connections (`http_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpConnections {
    /// Idle connections are kept and reused (`"keep-alive"`).
    #[default]
    KeepAlive,
    /// A new connection per request (`"per-request"`), rmcp's own default: use it for a
    /// server whose streamed responses stall a reused connection.
    PerRequest,
}

impl HttpConnections {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpConnections::KeepAlive => "keep-alive",
            HttpConnections::PerRequest => "per-request",
        }
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
    /// per_session: a session's connection is closed after this long without a call.
    pub session_idle_timeout: Duration,
    /// per_session: the most connections at once; the least recently used idle one makes
    /// room for a new one.
    pub max_sessions: usize,
    pub reconnect: ReconnectPolicy,
    pub enabled: bool,
    /// This server's `on_server_registration_error`; `None` follows the config's default.
    pub on_registration_error: Option<RegistrationPolicy>,
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
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions: DEFAULT_MAX_SESSIONS,
            reconnect: ReconnectPolicy::default(),
            enabled: true,
            on_registration_error: None,
        }
    }
}

/// A configuration that cannot be used, with where and what to do about it.
///
/// Messages never contain header or env values, nor variable values: those hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// The server the problem is in, if it is in one.
    pub server: Option<String>,
    /// The offending key, e.g. `url` or `connect_timeout`.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl ConfigError {
    /// An error with no location yet; add it with the `with_*` / [`at`](Self::at) helpers.
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            server: None,
            key: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn with_file(mut self, file: Option<&std::path::Path>) -> Self {
        self.file = file.map(|f| f.to_path_buf());
        self
    }

    pub fn with_server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds the 1-based line and column to the problem, as ` (line L, column C)`.
    ///
    /// The position is part of the text rather than a field of its own: a bigger
    /// `ConfigError` would make every `Result<_, crate::Error>` trip clippy's
    /// `result_large_err`.
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.problem
            .push_str(&format!(" (line {line}, column {column})"));
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(&file.display().to_string());
            out.push_str(": ");
        }
        match (&self.server, &self.key) {
            (Some(s), Some(k)) => out.push_str(&format!("server '{s}', key '{k}': ")),
            (Some(s), None) => out.push_str(&format!("server '{s}': ")),
            (None, Some(k)) => out.push_str(&format!("key '{k}': ")),
            (None, None) => {}
        }
        out.push_str(&self.problem);
        if !self.fix.is_empty() {
            // The fix is a new sentence.
            out.push_str(". ");
            let mut chars = self.fix.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
        out
    }
}
