//! Who uses which connection: one shared connection per server, or one per user session.
//!
//! Every server has a shared [`Link`] (its tools are listed over it, and calls without a
//! session use it). A `session_mode = "per_session"` server also has a [`SessionPool`]: calls
//! that carry a [`Session`] get that session's own connection, created on its first call with
//! the session's variables (e.g. the user's token in a header template), reused by its later
//! calls, and closed when idle (see `pool.rs`). Links reconnect on their own (see `link.rs`).

mod link;
mod pool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::JsonObject;
use tokio::time::Instant;

pub use link::{Dial, Link, LinkState, LinkStatus};
pub use pool::SessionPool;

use crate::config::{ServerConfig, SessionMode};
use crate::error::Error;
use crate::upstream::{CallOutcome, Upstream};

/// The caller's session: its id and the variables its connections are made with.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub variables: Arc<BTreeMap<String, String>>,
}

impl Session {
    pub fn new(id: impl Into<String>, variables: BTreeMap<String, String>) -> Session {
        Session {
            id: id.into(),
            variables: Arc::new(variables),
        }
    }
}

/// The connections of one server.
pub struct ServerClients {
    shared: Link,
    pool: Option<SessionPool>,
}

impl ServerClients {
    /// Clients of `server`, whose shared connection is `upstream` (already connected).
    pub fn new(server: Arc<ServerConfig>, dial: Dial, upstream: Upstream) -> ServerClients {
        let pool = (server.session_mode == SessionMode::PerSession)
            .then(|| SessionPool::new(server.clone(), dial.clone()));
        ServerClients {
            shared: Link::with_upstream(server, dial, upstream),
            pool,
        }
    }

    /// The shared connection.
    pub fn shared(&self) -> &Link {
        &self.shared
    }

    /// The per-session connections, for `per_session` servers.
    pub fn pool(&self) -> Option<&SessionPool> {
        self.pool.as_ref()
    }

    /// Calls `tool` over the session's connection (per-session servers, with a session) or
    /// the shared one. `repeatable`: see [`Link::call`].
    pub async fn call(
        &self,
        session: Option<&Session>,
        tool: &str,
        arguments: Option<JsonObject>,
        repeatable: bool,
        deadline: Instant,
    ) -> Result<CallOutcome, Error> {
        match (&self.pool, session) {
            (Some(pool), Some(session)) => {
                let lease = pool.lease(&session.id, &session.variables)?;
                lease
                    .link()
                    .call(tool, arguments, repeatable, deadline)
                    .await
            }
            _ => {
                self.shared
                    .call(tool, arguments, repeatable, deadline)
                    .await
            }
        }
    }

    /// Closes per-session connections idle for at least `max_age`; returns how many.
    pub async fn cleanup(&self, max_age: Duration) -> usize {
        match &self.pool {
            Some(pool) => pool.cleanup(max_age).await,
            None => 0,
        }
    }

    pub async fn close(&self) {
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
        self.shared.close().await;
    }
}
