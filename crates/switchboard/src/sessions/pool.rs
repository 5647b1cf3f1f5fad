//! Per-session connections of one `per_session` server.
//!
//! [`SessionPool::lease`] finds or creates the session's entry and returns a [`Lease`]: while
//! a lease lives, the session is never closed. Leasing is synchronous and does no I/O (the
//! connection is made by the session's own [`Link`] on its first call), so a slow connect
//! for one session never holds up another session, nor the map.
//!
//! - At `max_sessions`, the least recently used idle session is evicted to make room; when
//!   every session is leased the lease fails with [`Error::SessionLimit`].
//! - [`SessionPool::cleanup`] closes sessions idle longer than a given age (the hub's reaper
//!   calls it every `reaper_interval` with `session_idle_timeout`).
//! - [`SessionPool::end`] closes one session when its owner is done with it: `End` ends
//!   its upstream session, `Detach` leaves a shared one to other replicas. Reaping,
//!   eviction and closing the pool only detach (see `transport/http/attach.rs`).
//! - A session is always removed from the map first and closed after, outside the lock.
//! - Closing many sessions at once runs at most [`CLOSES_AT_ONCE`] closes concurrently:
//!   each close may open a connection (an HTTP `DELETE`), and 10,000 at once ran the
//!   process to 16,000 open sockets and past each close's grace period.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use http::HeaderMap;

use super::SessionTools;
use super::link::{Dial, Link};
use crate::config::ServerConfig;
use crate::error::Error;
use crate::sync::lock;
use crate::upstream::{SessionClose, SessionRef, Upstream};

/// Most sessions one pool closes at the same time.
pub const CLOSES_AT_ONCE: usize = 64;

/// The sessions of one server.
pub struct SessionPool {
    server: Arc<ServerConfig>,
    dial: Dial,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Set by `close` (under the map lock): no session is created after it.
    closed: AtomicBool,
}

struct Session {
    conn: Conn,
    leases: AtomicUsize,
    last_used: Mutex<Instant>,
    /// The session's own list of the server's tools, when the server's list is private.
    tools: Mutex<Option<Arc<SessionTools>>>,
}

/// How a session reaches its server.
enum Conn {
    /// Its own connection (made on its first call).
    Link(Box<Link>),
    /// Its headers, on the connection sessions share (a 2026-07-28 server over Streamable
    /// HTTP keeps nothing per session): an idle session holds nothing else.
    Headers(Arc<HeaderMap>),
}

/// A session held for the length of a call. Dropping it marks the session idle.
pub struct Lease {
    session: Arc<Session>,
}

impl Lease {
    /// The session's own connection, or its headers for the shared one.
    pub fn conn(&self) -> Result<&Link, &Arc<HeaderMap>> {
        match &self.session.conn {
            Conn::Link(link) => Ok(link),
            Conn::Headers(headers) => Err(headers),
        }
    }

    /// The session's own tool list, as last kept.
    pub fn tools(&self) -> Option<Arc<SessionTools>> {
        lock(&self.session.tools).clone()
    }

    /// Keeps `tools` as the session's own tool list (it goes with the session).
    pub fn keep_tools(&self, tools: Arc<SessionTools>) {
        *lock(&self.session.tools) = Some(tools);
    }
}

#[cfg(test)]
impl Lease {
    /// The session's own connection (tests make only those).
    pub fn link(&self) -> &Link {
        match self.conn() {
            Ok(link) => link,
            Err(_) => panic!("a session with its own connection"),
        }
    }
}

impl Session {
    /// Closes it; a shared upstream session is only detached from (an idle or evicted
    /// session, a pool closing: the downstream session may go on elsewhere).
    async fn close(&self) {
        self.close_as(SessionClose::Detach).await;
    }

    async fn close_as(&self, mode: SessionClose) {
        if let Conn::Link(link) = &self.conn {
            link.close_as(mode).await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *lock(&self.session.last_used) = Instant::now();
        self.session.leases.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SessionPool {
    pub fn new(server: Arc<ServerConfig>, dial: Dial) -> SessionPool {
        SessionPool {
            server,
            dial,
            sessions: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// The server as session `id` connects to it: for a server that signs in, with the
    /// session as its principal (its tokens are the session's own); else the server.
    fn session_server(&self, id: &str) -> Arc<ServerConfig> {
        match &self.server.auth {
            Some(auth) => {
                let mut server = (*self.server).clone();
                server.auth = Some(crate::config::AuthConfig {
                    principal: id.to_owned(),
                    ..auth.clone()
                });
                Arc::new(server)
            }
            None => self.server.clone(),
        }
    }

    /// Leases session `id`, creating it (with `variables` for its headers/env) if it does
    /// not exist. The variables of an existing session are not changed. `sharing`: the
    /// shared connection, when it can carry sessions ([`Upstream::carries_sessions`]): a
    /// new session is then only its rendered headers.
    pub fn lease(
        &self,
        id: &str,
        variables: &Arc<BTreeMap<String, String>>,
        sharing: Option<&Upstream>,
    ) -> Result<Lease, Error> {
        let mut evicted = None;
        let lease = {
            let mut sessions = lock(&self.sessions);
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed {
                    server: self.server.name.clone(),
                    reason: Some("its per-session connections are closed".to_string()),
                });
            }
            if let Some(session) = sessions.get(id) {
                session.leases.fetch_add(1, Ordering::AcqRel);
                Lease {
                    session: session.clone(),
                }
            } else {
                if sessions.len() >= self.server.max_sessions {
                    let lru = sessions
                        .iter()
                        .filter(|(_, s)| s.leases.load(Ordering::Acquire) == 0)
                        .min_by_key(|(_, s)| *lock(&s.last_used))
                        .map(|(id, _)| id.clone());
                    let Some(lru) = lru else {
                        return Err(Error::SessionLimit {
                            server: self.server.name.clone(),
                            limit: self.server.max_sessions,
                        });
                    };
                    evicted = sessions.remove(&lru);
                }
                // A server that signs in gives each session its own connection with the
                // session's own token (its principal is the session id); it never rides
                // on the shared connection, whose token is the server's.
                let signs_in = self.server.auth.is_some();
                let conn = match sharing.filter(|_| !signs_in) {
                    Some(upstream) => Conn::Headers(upstream.session_headers_for(variables)?),
                    None => {
                        let session = SessionRef {
                            id: Arc::from(id),
                            variables: variables.clone(),
                        };
                        let server = self.session_server(id);
                        Conn::Link(Box::new(Link::new(
                            server,
                            Some(session),
                            self.dial.clone(),
                        )))
                    }
                };
                let session = Arc::new(Session {
                    conn,
                    leases: AtomicUsize::new(1),
                    last_used: Mutex::new(Instant::now()),
                    tools: Mutex::new(None),
                });
                sessions.insert(id.to_string(), session.clone());
                Lease { session }
            }
        };
        if let Some(session) = evicted {
            tracing::debug!(server = %self.server.name, "session limit reached: closing the least recently used idle session");
            tokio::spawn(async move { session.close().await });
        }
        Ok(lease)
    }

    /// Closes the sessions that have been idle (no lease) for at least `max_age`; returns
    /// how many.
    pub async fn cleanup(&self, max_age: Duration) -> usize {
        let now = Instant::now();
        let idle: Vec<Arc<Session>> = {
            let mut sessions = lock(&self.sessions);
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| {
                    s.leases.load(Ordering::Acquire) == 0
                        && now.saturating_duration_since(*lock(&s.last_used)) >= max_age
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        let count = idle.len();
        close_all(idle).await;
        count
    }

    /// Closes session `id` as `mode` says, if it is in the pool: it is taken out at once
    /// (its next lease makes a new one) and closed. Calls still running on it end with it
    /// (a caller ends a session when it is gone, e.g. a gateway's downstream session was
    /// closed, and detaches from one another replica goes on serving).
    pub async fn end(&self, id: &str, mode: SessionClose) -> bool {
        let Some(session) = lock(&self.sessions).remove(id) else {
            return false;
        };
        session.close_as(mode).await;
        true
    }

    /// Sessions currently in the pool.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Closes every session; later leases fail with [`Error::Closed`].
    pub async fn close(&self) {
        let all: Vec<Arc<Session>> = {
            let mut sessions = lock(&self.sessions);
            self.closed.store(true, Ordering::Release);
            sessions.drain().map(|(_, s)| s).collect()
        };
        close_all(all).await;
    }

    /// Kills every session's process group (stdio) at once, synchronously; see
    /// [`Link::kill`]. Sessions stay in the map for [`SessionPool::close`].
    pub fn kill(&self) {
        let all: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for session in all {
            if let Conn::Link(link) = &session.conn {
                link.kill();
            }
        }
    }
}

async fn close_all(sessions: Vec<Arc<Session>>) {
    futures::stream::iter(sessions)
        .for_each_concurrent(CLOSES_AT_ONCE, |session| async move {
            session.close().await;
        })
        .await;
}
