//! Per-request headers, for sessions that share one connection.
//!
//! A 2026-07-28 server keeps nothing per session: a user's session is only the headers its
//! requests carry. So a `per_session` server speaking it serves every session over the hub's
//! one connection, and each request gets its session's headers here, on its way out. The
//! caller registers the headers for the length of one request and tags the request's `_meta`
//! with the registration's key; [`SessionHeaders::take`] strips the tag before the request
//! is written and hands back the headers. The headers themselves never enter the message, so
//! nothing that logs messages can see them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use rmcp::model::{ClientJsonRpcMessage, GetMeta};

use crate::sync::lock;

/// The `_meta` key of the tag (removed before sending).
const TAG: &str = "io.switchboard/session-headers";

/// The headers of requests in flight, by key; one per upstream connection.
#[derive(Default)]
pub struct SessionHeaders {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Arc<HeaderMap>>>,
    /// The names of the connection's configured headers, which a session's request must
    /// not carry with the connection's values (the transport's own headers stay).
    configured: Vec<String>,
}

/// One request's headers, registered until dropped.
pub struct Registered {
    owner: Arc<SessionHeaders>,
    key: u64,
}

impl SessionHeaders {
    /// For a connection whose configured headers have `names`.
    pub fn new(names: impl IntoIterator<Item = String>) -> SessionHeaders {
        SessionHeaders {
            configured: names.into_iter().collect(),
            ..SessionHeaders::default()
        }
    }

    /// Whether `name` is one of the connection's configured headers.
    pub(crate) fn is_configured(&self, name: &str) -> bool {
        self.configured.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Registers `headers` for one request; tag the request with [`Registered::tag`].
    pub fn register(self: &Arc<Self>, headers: Arc<HeaderMap>) -> Registered {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.live).insert(key, headers);
        Registered {
            owner: self.clone(),
            key,
        }
    }

    /// Removes the tag from `message` and returns the headers it names, if any.
    pub(crate) fn take(&self, message: &mut ClientJsonRpcMessage) -> Option<Arc<HeaderMap>> {
        let ClientJsonRpcMessage::Request(request) = message else {
            return None;
        };
        // Read first: `get_meta_mut` would give every untagged request an empty `_meta`.
        if !request.request.get_meta().contains_key(TAG) {
            return None;
        }
        let key = request.request.get_meta_mut().remove(TAG)?.as_u64()?;
        lock(&self.live).get(&key).cloned()
    }

    /// Headers registered now (requests in flight).
    pub fn in_flight(&self) -> usize {
        lock(&self.live).len()
    }
}

impl Registered {
    /// The `_meta` entry that names these headers.
    pub fn tag(&self) -> (String, serde_json::Value) {
        (TAG.to_owned(), self.key.into())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.owner.live).remove(&self.key);
    }
}
