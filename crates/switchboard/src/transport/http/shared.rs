//! Where replicas share classic upstream sessions: the [`SharedSessions`] trait and its
//! in-memory [`MemorySharedSessions`].
//!
//! A `per_session` server speaking a classic revision (Streamable HTTP with `initialize`)
//! keeps a session per downstream session. Several gateway replicas serving one downstream
//! session must use ONE upstream session: the first replica records the upstream session
//! (its `Mcp-Session-Id` and the `initialize` answer) under (downstream session, server);
//! the others attach to it (`attach.rs`). Records change only by compare-and-set on their
//! generation, and re-initializing is done under a claim, so two replicas that both find the
//! session gone upstream make one new session, not two.
//!
//! The engine links no store: a deployment hands one in through
//! [`HubBuilder::shared_sessions`](crate::hub::HubBuilder::shared_sessions) (Redis in the
//! gateway, see `docs/scale-out-design.md`); tests and single-process hubs with several
//! hubs use [`MemorySharedSessions`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::sync::lock;

/// Which upstream session: one per (downstream session, server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamKey {
    /// The engine session id (the downstream session).
    pub session: String,
    /// The server's name in the config.
    pub server: String,
}

/// A classic upstream session as the replica that opened it recorded it. `Debug` never
/// shows the session id (a bearer-like secret at the upstream).
#[derive(Clone, PartialEq)]
pub struct UpstreamRecord {
    /// The upstream's `Mcp-Session-Id`.
    pub session_id: String,
    /// The server URL it was opened at (a record for another URL is not attached to).
    pub url: String,
    /// The upstream's answer to `initialize` (the whole JSON-RPC response): replayed to
    /// the attaching replica's client, so it negotiates the same version and capabilities.
    pub initialize: serde_json::Value,
    /// Bumped by every new upstream session under this key (1 for the first).
    pub generation: u64,
}

impl std::fmt::Debug for UpstreamRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRecord")
            .field("url", &self.url)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The shared store could not be used. The message never holds a session id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared session store is unavailable: {reason}")]
pub struct SharedSessionsError {
    pub reason: String,
}

/// Where classic upstream sessions are shared between replicas; see the module docs.
/// Implementations must be safe to call from many replicas at once: `publish_if`, `claim`
/// and `release` are atomic in the store.
pub trait SharedSessions: Send + Sync + 'static {
    /// The record under `key`, if any.
    fn get<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<Option<UpstreamRecord>, SharedSessionsError>>;

    /// Stores `record` under `key` if the record there now has generation `expected`
    /// (`None`: there is none); whether it did.
    fn publish_if<'a>(
        &'a self,
        key: &'a UpstreamKey,
        expected: Option<u64>,
        record: UpstreamRecord,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>>;

    /// Claims the right to open a new upstream session under `key` for `ttl`, as `owner`
    /// (a nonce); false while another owner's claim stands.
    fn claim<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>>;

    /// Gives up `owner`'s claim on `key` (another owner's claim is left alone).
    fn release<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>>;

    /// Removes the record under `key` (the downstream session ended).
    fn forget<'a>(&'a self, key: &'a UpstreamKey)
    -> BoxFuture<'a, Result<(), SharedSessionsError>>;
}

/// [`SharedSessions`] in this process's memory: for hubs of one process, and tests.
#[derive(Default)]
pub struct MemorySharedSessions {
    records: Mutex<HashMap<UpstreamKey, UpstreamRecord>>,
    claims: Mutex<HashMap<UpstreamKey, (String, Instant)>>,
}

impl MemorySharedSessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SharedSessions for MemorySharedSessions {
    fn get<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<Option<UpstreamRecord>, SharedSessionsError>> {
        let found = lock(&self.records).get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn publish_if<'a>(
        &'a self,
        key: &'a UpstreamKey,
        expected: Option<u64>,
        record: UpstreamRecord,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        let mut records = lock(&self.records);
        let stored = records.get(key).map(|r| r.generation) == expected;
        if stored {
            records.insert(key.clone(), record);
        }
        Box::pin(async move { Ok(stored) })
    }

    fn claim<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        let now = Instant::now();
        let mut claims = lock(&self.claims);
        let free = claims
            .get(key)
            .is_none_or(|(holder, until)| holder == owner || *until <= now);
        if free {
            claims.insert(key.clone(), (owner.to_owned(), now + ttl));
        }
        Box::pin(async move { Ok(free) })
    }

    fn release<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        let mut claims = lock(&self.claims);
        if claims.get(key).is_some_and(|(holder, _)| holder == owner) {
            claims.remove(key);
        }
        Box::pin(async move { Ok(()) })
    }

    fn forget<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        lock(&self.records).remove(key);
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> UpstreamKey {
        UpstreamKey {
            session: "mcp-1".into(),
            server: "kit".into(),
        }
    }

    fn record(id: &str, generation: u64) -> UpstreamRecord {
        UpstreamRecord {
            session_id: id.into(),
            url: "http://127.0.0.1:1/mcp".into(),
            initialize: serde_json::json!({}),
            generation,
        }
    }

    #[tokio::test]
    async fn records_change_only_from_the_generation_expected() {
        let store = MemorySharedSessions::new();
        let key = key();
        assert!(store.publish_if(&key, None, record("a", 1)).await.unwrap());
        // A replica that read nothing (or an older generation) loses.
        assert!(!store.publish_if(&key, None, record("b", 1)).await.unwrap());
        assert!(
            !store
                .publish_if(&key, Some(2), record("b", 3))
                .await
                .unwrap()
        );
        assert!(
            store
                .publish_if(&key, Some(1), record("c", 2))
                .await
                .unwrap()
        );
        let now = store.get(&key).await.unwrap().expect("a record");
        assert_eq!((now.session_id.as_str(), now.generation), ("c", 2));
        store.forget(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn one_claim_at_a_time_until_released_or_expired() {
        let store = MemorySharedSessions::new();
        let key = key();
        let long = Duration::from_secs(60);
        assert!(store.claim(&key, "a", long).await.unwrap());
        assert!(!store.claim(&key, "b", long).await.unwrap());
        store.release(&key, "b").await.unwrap(); // not b's: stays
        assert!(!store.claim(&key, "b", long).await.unwrap());
        store.release(&key, "a").await.unwrap();
        assert!(store.claim(&key, "b", Duration::ZERO).await.unwrap());
        // An expired claim is free.
        assert!(store.claim(&key, "c", long).await.unwrap());
    }

    #[test]
    fn debug_never_shows_the_session_id() {
        let shown = format!("{:?}", record("secret-session-id", 1));
        assert!(!shown.contains("secret-session-id"), "{shown}");
    }
}
