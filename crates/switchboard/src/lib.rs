//! Switchboard: an MCP client runtime.
//!
//! The engine is layered; each layer depends only on the ones listed before it:
//!
//! - [`config`]: configuration files (TOML, `mcpServers` JSON), validation, templating.
//! - [`discovery`]: asking a tooling registry (Agent 365, a URL, a file) for more servers.
//! - [`transport`]: how bytes reach a server (stdio, legacy HTTP+SSE, Streamable HTTP),
//!   all behind rmcp's `Transport` trait.
//! - [`upstream`]: one live MCP connection: connect, list tools, call a tool with a deadline.
//! - [`catalog`]: the tools of all servers under provider-safe, collision-free names, with
//!   overrides, filters, exports and argument checks.
//! - [`sessions`]: shared and per-session connections, leases, idle reaping, reconnects.
//! - [`hub`]: many servers behind one catalogue; calls by exposed name; `list_changed`.
//!
//! [`Error`] is the one error type callers see; [`Error::class`] tells what kind of failure
//! it was without parsing text.

pub mod catalog;
pub mod config;
mod deadline;
pub mod discovery;
pub mod error;
pub mod hub;
pub mod sessions;
mod sync;
pub mod transport;
pub mod upstream;
mod wire;

pub use upstream::{CallOutcome, Connector, Content, Upstream, UpstreamEvent};

pub use catalog::{Catalog, ExportFormat, ExposedTool, Lookup, ToolAnnotations};
pub use config::{Config, ServerConfig, TransportKind};
pub use deadline::Deadline;
pub use error::{Delivery, Error, ErrorClass, ErrorReport, Phase};
pub use hub::{Health, Hub, HubEvent, HubSettings, Overall, ServerState};
pub use sessions::Session;
