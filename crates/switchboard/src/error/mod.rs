//! The engine's error type.
//!
//! Every failure a caller can see is one [`Error`] variant that names the server it concerns.
//! Variants carry structured data (status codes, phases, challenges), so callers decide what
//! to do from [`Error::class`], never by searching the message text. Messages never contain
//! secrets: header values and URL credentials/queries are not part of any variant.
//!
//! This module is the bottom layer: it depends on no other module of the engine. The errors
//! about what a user wrote ([`ConfigError`], [`TemplateError`]) are defined here too
//! (`config.rs`), so [`Error`] can hold them; the `config` layer produces them and re-exports
//! them under its own paths (`config::ConfigError`, `config::template::TemplateError`).

use std::time::{Duration, SystemTime};

mod auth;
mod challenge;
mod config;

pub use auth::{AuthFailure, AuthStep};
pub use challenge::challenge_param;
pub use config::{ConfigError, TemplateError};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::wire;

/// What a caller should think happened, independent of the transport that failed.
///
/// Serialises as its [`as_str`](ErrorClass::as_str) name (`"tool_error"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Config,
    Unreachable,
    Auth,
    Timeout,
    Protocol,
    ToolError,
    UnknownTool,
    InvalidArguments,
    SessionLimit,
    Closed,
    /// Asking a tooling registry which servers to use failed (not auth, not unreachable).
    Discovery,
    /// No resource or prompt answers to that URI or name (at the hub or at the server).
    NotFound,
}

impl ErrorClass {
    /// A short stable name, used in CLI output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Config => "config",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Auth => "auth",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Protocol => "protocol",
            ErrorClass::ToolError => "tool_error",
            ErrorClass::UnknownTool => "unknown_tool",
            ErrorClass::InvalidArguments => "invalid_arguments",
            ErrorClass::SessionLimit => "session_limit",
            ErrorClass::Closed => "closed",
            ErrorClass::Discovery => "discovery",
            ErrorClass::NotFound => "not_found",
        }
    }
}

impl ErrorClass {
    /// Every class, in a stable order (for docs, tests and exhaustive tables).
    pub const ALL: [ErrorClass; 12] = [
        ErrorClass::Config,
        ErrorClass::Unreachable,
        ErrorClass::Auth,
        ErrorClass::Timeout,
        ErrorClass::Protocol,
        ErrorClass::ToolError,
        ErrorClass::UnknownTool,
        ErrorClass::InvalidArguments,
        ErrorClass::SessionLimit,
        ErrorClass::Closed,
        ErrorClass::Discovery,
        ErrorClass::NotFound,
    ];
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed request may have reached the server (and so may have run there).
///
/// Decided where it is known, in the transport: only failures that provably happened before
/// any byte of the request was written (connect refused, DNS, TLS, a connection found closed
/// before sending) are [`Delivery::NotSent`]. Anything after the request was handed to the
/// connection (any HTTP status, a reset, a body cut off, a server process that died after the
/// write, a timeout) is [`Delivery::MaybeSent`].
///
/// Serialises as its [`as_str`](Delivery::as_str) name (`"maybe_sent"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The request never left: it did not run, and sending it again is safe.
    NotSent,
    /// The request went out and no answer came back: it may have run.
    MaybeSent,
    /// The server answered (a tool error or a rejection): it was received.
    Answered,
}

impl Delivery {
    /// A short stable name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::NotSent => "not_sent",
            Delivery::MaybeSent => "maybe_sent",
            Delivery::Answered => "answered",
        }
    }
}

/// Which part of talking to a server ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting the transport and the MCP `initialize` handshake.
    Connect,
    /// `tools/list`, all pages.
    ListTools,
    /// `tools/call`.
    CallTool,
    /// `resources/list`, all pages.
    ListResources,
    /// `resources/templates/list`, all pages.
    ListResourceTemplates,
    /// `resources/read`.
    ReadResource,
    /// `prompts/list`, all pages.
    ListPrompts,
    /// `prompts/get`.
    GetPrompt,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::ListTools => "list_tools",
            Phase::CallTool => "tool call",
            Phase::ListResources => "list_resources",
            Phase::ListResourceTemplates => "list_resource_templates",
            Phase::ReadResource => "resource read",
            Phase::ListPrompts => "list_prompts",
            Phase::GetPrompt => "prompt get",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; the message names the file, server and key.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A header or environment template could not be rendered for this server.
    #[error("server '{server}': {source}")]
    Template {
        server: String,
        #[source]
        source: TemplateError,
    },

    /// The server could not be reached: refused, DNS, TLS, a command that does not start.
    #[error("server '{server}' is unreachable: {reason}")]
    Unreachable { server: String, reason: String },

    /// The server's connection failed and waits before trying again (requests fail at once
    /// meanwhile, never sent). `last` is why it failed; it gives this error its class when
    /// it was not a connectivity problem, so an auth failure stays an auth failure.
    #[error("server '{server}': reconnecting: next attempt in {} ms{}", .retry_in.as_millis(), last_suffix(.last))]
    BackingOff {
        server: String,
        retry_in: Duration,
        last: Option<Box<ErrorReport>>,
    },

    /// The server refused our credentials (HTTP 401 or 403).
    #[error("server '{server}' requires authentication (HTTP {status}){}", challenge_suffix(.challenge))]
    Auth {
        server: String,
        status: u16,
        /// The `WWW-Authenticate` challenge, if the server sent one.
        challenge: Option<String>,
    },

    /// Signing in to the server (OAuth) failed: which step, and what the authorization
    /// server said. Never holds a token or secret.
    #[error("server '{server}': {failure}")]
    SignIn {
        server: String,
        failure: AuthFailure,
    },

    /// The connection broke while a request was in flight; the server may or may not have
    /// acted on it.
    #[error("server '{server}': connection lost during {phase}{}", sent_suffix(*.phase))]
    ConnectionLost { server: String, phase: Phase },

    /// The server (or a proxy in front of it) answered a request with a failed HTTP status.
    #[error("server '{server}': HTTP {status}{}", status_reason(*.status))]
    Http {
        server: String,
        status: u16,
        /// How long the server asked us to wait before trying again (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// A tool call failed after the request was handed to the connection, with no answer:
    /// the server may have run it. `source` is the real cause.
    #[error("{source}; the call was sent and may have run")]
    MayHaveRun {
        #[source]
        source: Box<Error>,
    },

    /// A phase did not finish before its deadline.
    #[error("server '{server}': {phase} timed out after {}", round_ms(*.after))]
    Timeout {
        server: String,
        phase: Phase,
        after: Duration,
    },

    /// The server spoke, but not MCP as we understand it.
    #[error("server '{server}': protocol error: {reason}")]
    Protocol { server: String, reason: String },

    /// The tool ran and reported failure (`isError: true`).
    /// The server rejected the call with a JSON-RPC error (`code` is then set).
    #[error("server '{server}': tool '{tool}' failed: {message}")]
    Tool {
        server: String,
        tool: String,
        message: String,
        /// The JSON-RPC error code when the server rejected the request itself.
        code: Option<i32>,
        /// That error's `data`, when it had some (e.g. the capabilities a -32021
        /// refusal names), for a gateway to pass on. Not part of the message.
        data: Option<serde_json::Value>,
    },

    /// The server has no tool of that name.
    #[error("server '{server}' has no tool '{tool}'")]
    UnknownTool { server: String, tool: String },

    /// No tool in the catalogue has this exposed name.
    #[error("no tool is named '{name}'{}", suggestion_suffix(.suggestion))]
    NoSuchTool {
        name: String,
        /// The closest exposed name, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },

    /// No resource or prompt answers to `what` (`resource 'x+file:///a'`, `prompt 'x__p'`):
    /// the hub has no such exposed URI or name (`server` is `None`), or the server says it
    /// has none.
    #[error("{}", not_found(.server, .what, .suggestion))]
    NotFound {
        server: Option<String>,
        what: String,
        /// What the caller may have meant (an exposed URI or name).
        suggestion: Option<String>,
    },

    /// The server answered a request that is not a tool call (reading a resource, getting
    /// a prompt) with a JSON-RPC error. `-32602` (invalid params: a prompt's arguments) is
    /// [`ErrorClass::InvalidArguments`], any other code [`ErrorClass::Protocol`].
    #[error("server '{server}': {request} was refused: {message} (JSON-RPC {code})")]
    Rejected {
        server: String,
        /// What was asked, e.g. `prompts/get 'greet'`.
        request: String,
        message: String,
        code: i32,
    },

    /// The arguments do not match the tool's input schema; nothing was sent.
    #[error("server '{server}': invalid arguments for tool '{tool}': {}", .problems.join("; "))]
    InvalidArguments {
        server: String,
        tool: String,
        /// Every problem, as `"/json/pointer: what is wrong"` (values are not repeated).
        problems: Vec<String>,
    },

    /// Every one of the server's `max_sessions` session connections is in use.
    #[error(
        "server '{server}': all {limit} sessions are in use (max_sessions = {limit}); try again when one is free"
    )]
    SessionLimit { server: String, limit: usize },

    /// The tooling registry refused the discovery request's credentials (HTTP 401 or 403).
    #[error("Failed to authenticate with the tooling registry (HTTP {status}){}", challenge_suffix(.challenge))]
    RegistryAuth {
        /// The discovery source (its configured name).
        registry: String,
        status: u16,
        challenge: Option<String>,
    },

    /// The tooling registry answered, but not with a usable server list: another HTTP status
    /// (`status` set) or a body that is not the expected JSON.
    #[error("tooling registry '{registry}': {reason}")]
    Discovery {
        registry: String,
        status: Option<u16>,
        reason: String,
    },

    /// A server could not be registered and its policy is `fail_fast`.
    #[error(
        "server '{server}' could not be registered (on_server_registration_error = fail_fast): {source}"
    )]
    Registration {
        server: String,
        #[source]
        source: Box<Error>,
    },

    /// The connection is closed (by us, or it died).
    #[error("server '{server}': connection closed{}", reason_suffix(.reason))]
    Closed {
        server: String,
        reason: Option<String>,
    },
}

fn challenge_suffix(challenge: &Option<String>) -> String {
    match challenge {
        Some(c) => format!("; challenge: {c}"),
        None => String::new(),
    }
}

/// A duration for people: whole milliseconds (`2s`, `1m 30s`, `250ms`).
fn round_ms(duration: Duration) -> humantime::FormattedDuration {
    let millis = (duration.as_secs_f64() * 1000.0).round() as u64;
    humantime::format_duration(Duration::from_millis(millis))
}

fn sent_suffix(phase: Phase) -> &'static str {
    match phase {
        Phase::CallTool => "; the call was sent and may have run",
        _ => "",
    }
}

fn status_reason(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or(String::new(), |reason| format!(" {reason}"))
}

fn suggestion_suffix(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

fn not_found(server: &Option<String>, what: &str, suggestion: &Option<String>) -> String {
    let found = match server {
        Some(server) => format!("server '{server}' has no {what}"),
        None => format!("there is no {what}"),
    };
    format!("{found}{}", suggestion_suffix(suggestion))
}

fn reason_suffix(reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!(": {r}"),
        None => String::new(),
    }
}

/// `; last error: …` after a backoff error, when the last attempt's error is known.
fn last_suffix(last: &Option<Box<ErrorReport>>) -> String {
    match last {
        Some(last) => format!("; last error: {}", last.message),
        None => String::new(),
    }
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config(_) | Error::Template { .. } => ErrorClass::Config,
            Error::Unreachable { .. } | Error::ConnectionLost { .. } => ErrorClass::Unreachable,
            Error::BackingOff { last, .. } => match last.as_ref().map(|last| last.class) {
                Some(class @ (ErrorClass::Auth | ErrorClass::Config | ErrorClass::Protocol)) => {
                    class
                }
                _ => ErrorClass::Unreachable,
            },
            Error::Auth { .. } | Error::RegistryAuth { .. } | Error::SignIn { .. } => {
                ErrorClass::Auth
            }
            Error::Discovery { .. } => ErrorClass::Discovery,
            Error::Registration { source, .. } | Error::MayHaveRun { source } => source.class(),
            Error::Http { status, .. } if *status == 429 || *status >= 500 => {
                ErrorClass::Unreachable
            }
            Error::Http { .. } => ErrorClass::Protocol,
            Error::Timeout { .. } => ErrorClass::Timeout,
            Error::Protocol { .. } => ErrorClass::Protocol,
            Error::Tool { .. } => ErrorClass::ToolError,
            Error::UnknownTool { .. } | Error::NoSuchTool { .. } => ErrorClass::UnknownTool,
            Error::InvalidArguments { .. } => ErrorClass::InvalidArguments,
            Error::NotFound { .. } => ErrorClass::NotFound,
            Error::Rejected { code: -32602, .. } => ErrorClass::InvalidArguments,
            Error::Rejected { .. } => ErrorClass::Protocol,
            Error::SessionLimit { .. } => ErrorClass::SessionLimit,
            Error::Closed { .. } => ErrorClass::Closed,
        }
    }

    /// The server this error concerns, when there is one.
    pub fn server(&self) -> Option<&str> {
        match self {
            Error::Config(e) => e.server.as_deref(),
            Error::NoSuchTool { .. } => None,
            Error::NotFound { server, .. } => server.as_deref(),
            Error::RegistryAuth { registry, .. } | Error::Discovery { registry, .. } => {
                Some(registry)
            }
            Error::MayHaveRun { source } => source.server(),
            Error::Template { server, .. }
            | Error::Http { server, .. }
            | Error::Unreachable { server, .. }
            | Error::BackingOff { server, .. }
            | Error::ConnectionLost { server, .. }
            | Error::Auth { server, .. }
            | Error::SignIn { server, .. }
            | Error::Timeout { server, .. }
            | Error::Protocol { server, .. }
            | Error::Tool { server, .. }
            | Error::UnknownTool { server, .. }
            | Error::InvalidArguments { server, .. }
            | Error::Rejected { server, .. }
            | Error::SessionLimit { server, .. }
            | Error::Closed { server, .. }
            | Error::Registration { server, .. } => Some(server),
        }
    }

    /// The `WWW-Authenticate` challenge of an auth error, if the server sent one.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            Error::Auth { challenge, .. } | Error::RegistryAuth { challenge, .. } => {
                challenge.as_deref()
            }
            Error::Registration { source, .. } | Error::MayHaveRun { source } => source.challenge(),
            _ => None,
        }
    }

    /// Whether the request behind this error may have run at the server; see [`Delivery`].
    pub fn delivery(&self) -> Delivery {
        match self {
            Error::MayHaveRun { .. } | Error::ConnectionLost { .. } => Delivery::MaybeSent,
            Error::Timeout {
                phase: Phase::CallTool | Phase::ReadResource | Phase::GetPrompt,
                ..
            } => Delivery::MaybeSent,
            Error::Tool { .. } | Error::UnknownTool { .. } | Error::Rejected { .. } => {
                Delivery::Answered
            }
            Error::NotFound {
                server: Some(_), ..
            } => Delivery::Answered,
            Error::Registration { source, .. } => source.delivery(),
            _ => Delivery::NotSent,
        }
    }

    /// True unless the request provably never left ([`Delivery::NotSent`]).
    pub fn may_have_run(&self) -> bool {
        self.delivery() != Delivery::NotSent
    }

    /// The wait a server asked for with `Retry-After` (HTTP 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Http { retry_after, .. } => *retry_after,
            Error::BackingOff { retry_in, .. } => Some(*retry_in),
            Error::MayHaveRun { source } | Error::Registration { source, .. } => {
                source.retry_after()
            }
            _ => None,
        }
    }

    /// The OAuth protected-resource metadata URL an auth challenge points to (RFC 9728's
    /// `resource_metadata` parameter), where a client learns how to log in.
    pub fn resource_metadata(&self) -> Option<String> {
        if let Error::BackingOff { last, .. } = self {
            return last.as_ref()?.resource_metadata.clone();
        }
        challenge_param(self.challenge()?, "resource_metadata")
    }

    /// This error as plain data, for faces that show or send it (JSON, Python, health):
    /// see [`ErrorReport`]. Its `at` is now.
    pub fn report(&self) -> ErrorReport {
        ErrorReport::now(self)
    }
}

/// An [`Error`] as plain, serialisable data: what kind of failure, what happened, to which
/// server, whether the request may have run, when to try again, and when it happened.
/// Health views keep one per server and source ([`Hub::health`](crate::Hub::health)).
///
/// As JSON (times and durations as described in the crate docs):
///
/// ```json
/// {"class": "unreachable", "message": "server 'x' is unreachable: connection refused",
///  "server": "x", "delivery": "not_sent", "may_have_run": false, "retry_after_ms": null,
///  "resource_metadata": null, "auth": null, "at": "2025-01-31T09:15:02.417Z"}
/// ```
///
/// `may_have_run` is derived from `delivery` ([`Error::may_have_run`]) and ignored when read
/// back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ErrorReport {
    pub class: ErrorClass,
    /// The error's message (its `Display`), never containing secrets.
    pub message: String,
    /// The server (or tooling registry) it concerns, when there is one.
    #[serde(default)]
    pub server: Option<String>,
    /// Whether the request reached the server; see [`Delivery`].
    pub delivery: Delivery,
    /// How long the server asked callers to wait before trying again (`Retry-After`).
    #[serde(
        default,
        rename = "retry_after_ms",
        deserialize_with = "wire::deserialize_option_millis"
    )]
    pub retry_after: Option<Duration>,
    /// For auth failures: where the server says to learn how to log in (RFC 9728).
    #[serde(default)]
    pub resource_metadata: Option<String>,
    /// For auth failures: the sign-in step that failed, the authorization server's `error`
    /// and `error_description`, and whether a person must sign in ([`AuthFailure`]).
    #[serde(default)]
    pub auth: Option<AuthFailure>,
    /// When it happened.
    #[serde(deserialize_with = "wire::deserialize_time")]
    pub at: SystemTime,
}

impl ErrorReport {
    /// `error`, happening now.
    pub fn now(error: &Error) -> ErrorReport {
        ErrorReport {
            class: error.class(),
            message: error.to_string(),
            server: error.server().map(str::to_owned),
            delivery: error.delivery(),
            retry_after: error.retry_after(),
            resource_metadata: error.resource_metadata(),
            auth: error.auth_failure(),
            at: SystemTime::now(),
        }
    }

    /// True unless the request provably never left ([`Delivery::NotSent`]).
    pub fn may_have_run(&self) -> bool {
        self.delivery != Delivery::NotSent
    }
}

impl Serialize for ErrorReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut report = s.serialize_struct("ErrorReport", 9)?;
        report.serialize_field("class", &self.class)?;
        report.serialize_field("message", &self.message)?;
        report.serialize_field("server", &self.server)?;
        report.serialize_field("delivery", &self.delivery)?;
        report.serialize_field("may_have_run", &self.may_have_run())?;
        report.serialize_field("retry_after_ms", &self.retry_after.map(wire::millis))?;
        report.serialize_field("resource_metadata", &self.resource_metadata)?;
        report.serialize_field("auth", &self.auth)?;
        report.serialize_field("at", &wire::format_time(self.at))?;
        report.end()
    }
}

/// `outer: inner: innermost`, skipping links that repeat the previous message.
pub(crate) fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(current) = source {
        let text = current.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests;
