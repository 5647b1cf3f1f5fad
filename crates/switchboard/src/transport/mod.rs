//! How bytes reach a server. Each transport ends in something rmcp can serve a client over
//! (a type implementing rmcp's `Transport<RoleClient>`); nothing here knows about tools.

pub mod sse;
