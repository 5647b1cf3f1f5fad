//! The gateway's integration tests: real downstream clients (the official TypeScript SDK
//! client, reqwest, the engine itself as a 2026-07-28 client) through `switchboard serve`'s
//! gateway to real upstream servers (the testkit, server-everything). One test binary, a
//! module per area; shared helpers in `common`.

mod auth;
mod common;
mod deploy;
mod guards;
mod hot;
mod mcp;
mod metrics;
mod modern;
mod otel;
mod python;
mod relay;
mod reload;
mod rest;
mod scale;
mod shutdown;
mod signin;
mod sse;
