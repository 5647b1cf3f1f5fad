//! The testkit's own tests, one binary: the server over each transport, the binary's
//! command line, and the fault-injection proxy, with shared helpers in `common`.

mod common;

mod binary;
mod oauth;
mod proxy;
mod sse;
mod streamable_http;
