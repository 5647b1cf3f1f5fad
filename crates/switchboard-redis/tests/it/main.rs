//! The Redis stores against a real `redis-server` (one per test, on a free loopback port,
//! no persistence, killed at the end): `RedisSharedSessions` (`contract.rs`, `two_hubs.rs`)
//! and `RedisTokenStore` (`tokens.rs`, `token_hubs.rs`).

mod contract;
mod redis_server;
mod rotation;
mod token_hubs;
mod tokens;
mod two_hubs;
