//! The engine's integration tests, one binary (so the engine is linked once): each module
//! drives the public API against real MCP servers over real transports (the testkit,
//! `@modelcontextprotocol/server-everything` from npm), sharing the helpers in `common`.

mod common;

mod auth;
mod auth_login;
mod blocking;
mod catalog;
mod delivery;
mod discovery;
mod elicitation;
mod everything;
mod interaction;
mod lifecycle;
mod registration;
mod resources;
mod sessions;
mod sse_transport;
mod streamable_http;
mod transparent;
mod upstream;
