//! Switchboard: an MCP client runtime. Connect to many MCP servers at once, list their tools
//! under one catalogue of provider-safe names, call them with deadlines, and see what is
//! healthy.
//!
//! Everything starts with [`Hub::builder`]:
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//!
//! use switchboard::{Config, Deadline, Hub, Overall};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(Path::new("switchboard.toml"))?;
//! let hub = Hub::builder().config(&config).start().await?;
//!
//! // Every tool of every server that came up, under its exposed name.
//! for tool in hub.catalog().tools() {
//!     println!("{}  {}", tool.name, tool.description);
//! }
//!
//! // Call one by its exposed name; the arguments are checked against its schema first.
//! let arguments = serde_json::json!({"message": "hi"}).as_object().cloned();
//! let deadline = Deadline::after(Duration::from_secs(30));
//! match hub.call("everything__echo", arguments, Some(deadline)).await {
//!     Ok(outcome) => println!("{}", outcome.text()),
//!     // Every error has a class, a server and whether the call may have run.
//!     Err(error) => println!("{}", serde_json::to_string(&error.report())?),
//! }
//!
//! // Where every server stands, as data (and as the JSON of `switchboard check`).
//! let health = hub.health();
//! if health.overall != Overall::Healthy {
//!     println!("{}", serde_json::to_string_pretty(&health)?);
//! }
//! hub.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The API
//!
//! - [`Hub`] ([`hub`]): many servers behind one catalogue. Started with [`Hub::builder`];
//!   [`Hub::call`] / [`Hub::call_in`] (on behalf of a [`Session`]) call a tool by exposed
//!   name before a [`Deadline`] and give a [`CallOutcome`] (every [`Content`] block,
//!   `structuredContent`, `isError`); [`Hub::health`] is a [`Health`] snapshot;
//!   [`Hub::subscribe`] tells of catalogue changes; call layers ([`hub::CallLayer`]) wrap
//!   every call.
//! - [`interaction`]: what servers ask and tell in the middle of a call. An
//!   [`InputHandler`] (per hub, per [`Session`]) answers elicitation and sampling;
//!   [`Hub::call_with`] takes [`CallOptions`]: a progress callback ([`CallProgress`]) and a
//!   deadline progress pushes out, within a ceiling.
//! - [`Catalog`] ([`catalog`]): the exposed tools ([`ExposedTool`], with
//!   [`ToolAnnotations`]), name lookup for names people type ([`Catalog::lookup`]),
//!   diagnostics, and the provider forms ([`ExportFormat`]).
//! - [`Config`] ([`config`]): configuration files (TOML, `mcpServers` JSON), validation, and
//!   the settings of each server ([`ServerConfig`]).
//! - [`discovery`]: asking a tooling registry (Agent 365, a URL, a file) for more servers.
//! - [`Error`]: the one error type; [`Error::class`] says what kind of failure it was
//!   without parsing text, [`Error::delivery`] whether the request may have run, and
//!   [`Error::report`] turns it into plain data ([`ErrorReport`]).
//! - [`blocking`]: the same hub for code that is not async (methods that block the calling
//!   thread, one small runtime shared by any number of hubs).
//! - [`Connector`]: the handle that owns shared HTTP connection pools; hand one to several
//!   hubs with [`hub::HubBuilder::connector`].
//!
//! Transports, the MCP session of one server and the per-session connection pools are the
//! engine's business and not part of the API.
//!
//! # Serialised state
//!
//! Health, error reports, exposed tools and call outcomes implement `serde::Serialize` and
//! `Deserialize`, so every face (CLI, gateway, Python) shows the same documents:
//!
//! - enums are their snake_case names (`"needs_auth"`, `"tool_error"`, `"maybe_sent"`);
//! - moments are RFC 3339 strings in UTC with milliseconds (`"2025-01-31T09:15:02.417Z"`);
//! - durations are whole milliseconds in fields ending in `_ms` (`"retry_after_ms": 1500`);
//! - absent values are `null` in health and error reports, and left out of tool rows;
//! - a [`CallOutcome`] keeps MCP's own shape (`content`, `structuredContent`, `isError`).
//!
//! Arguments and schemas are JSON objects ([`JsonObject`]).

pub mod auth;
pub mod blocking;
pub mod catalog;
pub mod config;
mod deadline;
pub mod discovery;
mod error;
pub mod hub;
pub mod interaction;
mod sessions;
mod spans;
mod sync;
mod transport;
mod upstream;
mod wire;

/// A JSON object: tool arguments, input and output schemas. The same type as rmcp's
/// `JsonObject` and `serde_json::Map<String, Value>`.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

pub use catalog::{
    Catalog, ExportFormat, ExposedPrompt, ExposedResource, ExposedResourceTemplate, ExposedTool,
    Lookup, PromptArgument, ToolAnnotations,
};
pub use config::{Config, ServerConfig, TransportKind};
pub use deadline::Deadline;
pub use error::{AuthFailure, AuthStep, Delivery, Error, ErrorClass, ErrorReport, Phase};
pub use hub::{
    Health, Hub, HubEvent, HubSettings, Listing, Overall, ServerHealth, ServerState, SourceHealth,
    SubscribedResource,
};
pub use interaction::{
    CallOptions, CallProgress, CallStep, InputHandler, InputRequired, InputResume, LogMessage,
    RequestStep,
};
pub use sessions::{
    MemorySharedSessions, Session, SessionClose, SessionRef, SharedSessions, SharedSessionsError,
    UpstreamKey, UpstreamRecord,
};
pub use spans::{MetaInjector, OTEL_TARGET};
pub use upstream::{
    CallOutcome, Connector, Content, PromptMessage, PromptOutcome, ResourceContents, ResourceRead,
    Role,
};

/// Not part of the API: engine internals for the engine's own integration tests and the
/// benchmark harness (one MCP session without a hub, the transports). No stability, no
/// docs; a face that needs something here needs a real API instead.
#[doc(hidden)]
pub mod internals {
    pub use crate::transport::{http, sse};
    pub use crate::upstream::{Upstream, UpstreamEvent};
}
