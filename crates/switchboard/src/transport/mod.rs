//! How bytes reach a server. Each transport ends in something rmcp can serve a client over
//! (a type implementing rmcp's `Transport<RoleClient>`); nothing here knows about tools.
//!
//! - [`stdio`]: a child process in its own process group, killed as a group on close.
//! - [`sse`]: the legacy HTTP+SSE transport, our own implementation.
//! - [`http`]: Streamable HTTP, rmcp's worker over our HTTP client, our headers and
//!   connection policy.
//! - [`headers`]: rendered headers into a header map with every value marked sensitive,
//!   for both HTTP transports and for discovery requests.

pub mod headers;
pub mod http;
pub mod sse;
pub mod stdio;
