//! `RedisSharedSessions` against a real `redis-server` (one per test, on a free loopback
//! port, no persistence, killed at the end).

mod contract;
mod redis_server;
mod two_hubs;
