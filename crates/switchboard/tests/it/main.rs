//! The engine's integration tests, one binary (so the engine is linked once): each module
//! drives the public API against real MCP servers over real transports (the testkit,
//! `@modelcontextprotocol/server-everything` from npm), sharing the helpers in `common`.

mod common;

mod auth;
mod auth_grants;
mod auth_login;
mod auth_store;
mod blocking;
mod catalog;
mod delivery;
mod discovery;
mod elicitation;
mod everything;
mod input_passthrough;
mod interaction;
mod lifecycle;
mod registration;
mod resources;
mod sessions;
mod shared_sessions;
mod sse_transport;
mod streamable_http;
mod transparent;
mod upstream;
