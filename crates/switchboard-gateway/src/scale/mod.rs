//! Replicas behind a load balancer (`[scale]`, docs/scale-out-design.md (a)): any replica
//! serves any session.
//!
//! - `keyring.rs`: the keys (`[scale] keys_file`), HKDF-derived per purpose;
//! - `token.rs`: the sealed `Mcp-Session-Id` and the identity binding;
//! - `manager.rs`: [`SealedSessions`], rmcp's local session manager minting sealed ids;
//! - `gate.rs`: the check in front of `/mcp` refusing forged, expired, unknown-key and
//!   other users' ids with 404, before rmcp (or a store) sees them; 503 for a session this
//!   replica has not seen while the store is down;
//! - `store.rs` (`store = "redis"`): rmcp's `SessionStore` over the Redis session records,
//!   so rmcp restores on this replica a session made on another.
//!
//! With a store, the hub shares classic `per_session` upstream sessions through the same
//! Redis ([`Scale::shared_sessions`]): a replica attaches to the upstream session another
//! opened instead of initializing its own.
//!
//! Without `[scale]` none of this runs: rmcp's UUID ids and local sessions, as before.

mod gate;
pub mod keyring;
mod manager;
mod store;
pub mod token;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};
use switchboard::SharedSessions;
use switchboard::config::{ScaleConfig, ScaleStore};
use switchboard_redis::{
    Announcement, RedisConnection, RedisOptions, RedisSessionStore, RedisSetupError,
    RedisSharedSessions, RedisTokenStore,
};

pub use gate::{Gate, gate};
pub use keyring::{Keyring, KeyringError};
pub use manager::{OwnSessionId, SealedSessions};
pub use store::SessionRecords;

/// `[scale]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("[scale] keys_file: {0}")]
    Keyring(#[from] KeyringError),
    #[error(
        "[scale] store = \"redis\" needs the Redis URL in the environment variable {var}, \
         which is not set; set it (e.g. {var}=redis://127.0.0.1:6379/) or name another \
         variable with redis_url_env"
    )]
    NoUrl { var: String },
    #[error("[scale] store = \"redis\": {0}")]
    Redis(#[from] RedisSetupError),
}

/// [`Scale::rekey`] could not finish (what it moved so far stays moved; run it again).
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("moving the session records: {0}")]
    Sessions(#[from] switchboard::SharedSessionsError),
    #[error("moving the OAuth tokens: {0}")]
    Tokens(#[from] switchboard::auth::StoreError),
}

/// What the replicas share: the keyring, and the session settings of `[scale]`.
pub struct Scale {
    pub ring: Keyring,
    /// A session id is refused this long after it was made.
    pub lifetime: Duration,
    /// Sessions' variables are kept in their record (`[scale] remember_variables`).
    pub remember_variables: bool,
    /// Engine ids of the sessions their client DELETEd (marked by the gate, taken when
    /// the session's handler is dropped): these end upstream; others only detach.
    ended: Mutex<HashSet<String>>,
    /// The session records (`store = "redis"`).
    pub store: Option<RedisSessionStore>,
    /// The same Redis, for the hub's classic upstream sessions.
    shared: Option<Arc<RedisSharedSessions>>,
    /// The same Redis, for the hub's OAuth tokens.
    tokens: Option<Arc<RedisTokenStore>>,
    /// Variables remembered in records this replica loaded, until the restored session's
    /// handler takes them (engine id → variables).
    restored: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// When each local session's record was last made to live on (engine id → when).
    touched: Mutex<HashMap<String, Instant>>,
    /// A session's record lives this long after its last use (`session_idle_timeout`).
    idle_ttl: Duration,
    /// The sessions this replica holds, by the key other replicas announce their end by
    /// (key → engine id, sealed id).
    held: Mutex<HashMap<String, (String, SessionId)>>,
}

impl std::fmt::Debug for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scale")
            .field("ring", &self.ring)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Scale {
    /// From `[scale]`: reads the keyring (a bad one is an error naming its line) and, with
    /// `store = "redis"`, sets up the Redis store (connecting lazily: this succeeds while
    /// Redis is down). Records live `idle_ttl` (`[gateway] session_idle_timeout`) after
    /// their last use. Must be called within a Tokio runtime.
    pub fn load(config: &ScaleConfig, idle_ttl: Duration) -> Result<Scale, ScaleError> {
        let ring = Keyring::load(&config.keys_file)?;
        let shared = match config.store {
            None => None,
            Some(ScaleStore::Redis) => {
                let var = &config.redis_url_env;
                let url = std::env::var(var)
                    .ok()
                    .filter(|url| !url.is_empty())
                    .ok_or_else(|| ScaleError::NoUrl { var: var.clone() })?;
                // Key names under the primary key's k_bind, also looked for (and moved
                // from) under the other keys' (rotation: switchboard-redis `keys.rs`);
                // values sealed with its k_store and opened with any key's.
                let primary = ring.primary();
                let options = RedisOptions {
                    key_prefix: config.key_prefix.clone(),
                    idle_ttl,
                    binding_key: Some(primary.bind_bytes.to_vec()),
                    older_binding_keys: ring.secondaries().map(|k| k.bind_bytes.to_vec()).collect(),
                    store_key: Some(primary.store),
                    store_key_id: char::from(primary.kid),
                    secondary_store_keys: ring
                        .secondaries()
                        .map(|k| (char::from(k.kid), k.store))
                        .collect(),
                    ..RedisOptions::default()
                };
                // One connection (and breaker) per replica, for every store.
                let connection = RedisConnection::open(&url, &options)?;
                let tokens = RedisTokenStore::with_connection(connection.clone(), options.clone())?;
                let shared = RedisSharedSessions::with_connection(connection, options)?;
                Some((Arc::new(shared), Arc::new(tokens)))
            }
        };
        let (shared, tokens) = shared.unzip();
        let mut scale = Scale::new(ring, config, shared, idle_ttl);
        scale.tokens = tokens;
        Ok(scale)
    }

    /// The OAuth token store replicas share (`store = "redis"`), for
    /// [`switchboard::hub::HubBuilder::token_store`]: tokens, renewals and client
    /// registrations shared through Redis instead of each replica's state directory.
    pub fn token_store(&self) -> Option<Arc<dyn switchboard::auth::TokenStore>> {
        self.tokens
            .clone()
            .map(|t| t as Arc<dyn switchboard::auth::TokenStore>)
    }

    /// `shared`: the Redis store, if any.
    pub fn new(
        ring: Keyring,
        config: &ScaleConfig,
        shared: Option<Arc<RedisSharedSessions>>,
        idle_ttl: Duration,
    ) -> Scale {
        Scale {
            ring,
            lifetime: config.max_session_lifetime,
            remember_variables: config.remember_variables,
            ended: Mutex::new(HashSet::new()),
            store: shared.as_ref().map(|s| s.session_store()),
            shared,
            tokens: None,
            restored: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            idle_ttl,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Key rotation's last step before the old key is dropped (docs/gateway.md "Key
    /// rotation"): moves every Redis value still under an older key's name, or sealed
    /// under an older key, to the primary key. Returns how many session records and how
    /// many tokens and client registrations it moved; `None` without a store.
    pub async fn rekey(&self) -> Result<Option<(usize, usize)>, RekeyError> {
        let (Some(shared), Some(tokens)) = (&self.shared, &self.tokens) else {
            return Ok(None);
        };
        let sessions = shared.rekey().await?;
        let tokens = tokens.rekey().await?;
        Ok(Some((sessions, tokens)))
    }

    /// The store the hub shares classic upstream sessions through
    /// ([`switchboard::hub::HubBuilder::shared_sessions`]), if there is one.
    pub fn shared_sessions(&self) -> Option<Arc<dyn SharedSessions>> {
        self.shared.clone().map(|s| s as Arc<dyn SharedSessions>)
    }

    /// Whether the store answers (`None`: no store). False while its breaker is open.
    pub fn store_up(&self) -> Option<bool> {
        self.store.as_ref().map(RedisSessionStore::available)
    }

    /// Keeps a loaded record's variables for the restored session's handler.
    pub(crate) fn remembered(&self, engine_id: String, variables: BTreeMap<String, String>) {
        lock(&self.restored).insert(engine_id, variables);
    }

    /// The variables a record remembered for `engine_id`, once.
    pub(crate) fn take_remembered(&self, engine_id: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.restored).remove(engine_id)
    }

    /// A request of local session `engine_id` arrived: every quarter of the idle TTL, its
    /// record is made to live on, in the background (no request waits for Redis).
    pub(crate) fn used(&self, engine_id: &str) {
        let Some(store) = &self.store else {
            return;
        };
        let now = Instant::now();
        {
            let mut touched = lock(&self.touched);
            match touched.get_mut(engine_id) {
                Some(at) if now.duration_since(*at) < self.idle_ttl / 4 => return,
                Some(at) => *at = now,
                None => {
                    touched.insert(engine_id.to_owned(), now);
                    return;
                }
            }
        }
        let (store, id) = (store.clone(), engine_id.to_owned());
        tokio::spawn(async move {
            if let Err(error) = store.touch(&id).await {
                tracing::debug!(%error, "could not extend a session record's life");
            }
        });
    }

    /// This replica holds session `engine_id` (sealed id `id`) now.
    pub(crate) fn hold(&self, engine_id: &str, id: SessionId) {
        if let Some(shared) = &self.shared {
            let key = shared.session_key(engine_id);
            lock(&self.held).insert(key, (engine_id.to_owned(), id));
        }
    }

    /// The session's handler is gone from this replica.
    pub(crate) fn forget_local(&self, engine_id: &str) {
        lock(&self.touched).remove(engine_id);
        lock(&self.restored).remove(engine_id);
        if let Some(shared) = &self.shared {
            lock(&self.held).remove(&shared.session_key(engine_id));
        }
    }

    /// Ends here every session a client ended on another replica (its record's `DELETE`
    /// announced it), as its own `DELETE` would, until `stop`; when announcements may have
    /// been lost (a disconnection from Redis), every held session whose record is gone.
    /// Without a store: nothing.
    pub fn end_announced<M: SessionManager>(
        self: &Arc<Self>,
        sessions: Arc<M>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut ended = shared.ended_sessions();
        let scale = self.clone();
        // At most one check of the held sessions at a time (the loop goes on receiving).
        let checking = Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(async move {
            loop {
                let announced = tokio::select! {
                    announced = ended.next() => announced,
                    () = stop.cancelled() => return,
                };
                match announced {
                    None => return,
                    Some(Announcement::Ended(key)) => {
                        let held = lock(&scale.held).get(&key).cloned();
                        if let Some((engine_id, id)) = held {
                            scale.end_here(sessions.as_ref(), engine_id, &id).await;
                        }
                    }
                    Some(Announcement::Missed) => {
                        if checking.swap(true, std::sync::atomic::Ordering::AcqRel) {
                            continue;
                        }
                        let (scale, sessions, checking) =
                            (scale.clone(), sessions.clone(), checking.clone());
                        tokio::spawn(async move {
                            for (engine_id, id) in scale.held_and_ended().await {
                                scale.end_here(sessions.as_ref(), engine_id, &id).await;
                            }
                            checking.store(false, std::sync::atomic::Ordering::Release);
                        });
                    }
                }
            }
        });
    }

    /// Ends local session `id` (engine session `engine_id`) as its client's `DELETE` here
    /// would: its upstream sessions end too.
    async fn end_here<M: SessionManager>(&self, sessions: &M, engine_id: String, id: &SessionId) {
        tracing::debug!(session = %engine_id, "session ended on another replica");
        self.mark_ended(engine_id.clone());
        if let Err(error) = sessions.close_session(id).await {
            // Gone here already: nothing will take the mark.
            self.take_ended(&engine_id);
            tracing::debug!(%error, "could not end a session ended elsewhere");
        }
    }

    /// After announcements may have been lost: the sessions held here that a client ended
    /// on another replica (their end mark is in Redis; one round trip). A record that is
    /// merely gone (expired while this replica could not reach Redis, a Redis that lost its
    /// data) ends nothing: the session goes on here. A store error keeps every session.
    async fn held_and_ended(&self) -> Vec<(String, SessionId)> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let held: Vec<(String, SessionId)> = lock(&self.held).values().cloned().collect();
        tracing::debug!(
            sessions = held.len(),
            "Redis events may have been lost: checking the sessions held here"
        );
        let ids: Vec<String> = held
            .iter()
            .map(|(engine_id, _)| engine_id.clone())
            .collect();
        match store.ended(&ids).await {
            Ok(ended) => held
                .into_iter()
                .zip(ended)
                .filter_map(|(session, ended)| ended.then_some(session))
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot check the sessions held here against Redis");
                Vec::new()
            }
        }
    }

    /// The binding of a caller without identity (no principal, no variables).
    pub fn anonymous_binding(&self) -> [u8; 16] {
        token::binding(self.ring.primary(), None, &BTreeMap::new())
    }

    /// The same, under key `kid` (what an id sealed with it holds).
    pub(crate) fn anonymous_binding_of(&self, kid: u8) -> [u8; 16] {
        let keys = self.ring.get(kid).unwrap_or(self.ring.primary());
        token::binding(keys, None, &BTreeMap::new())
    }

    /// `vars-` + the HMAC of a set of variables under `k_bind`: the engine session of
    /// requests without a downstream session (an unkeyed hash of credentials must not
    /// become a Redis key). Under the primary key: making a new key primary gives a set of
    /// variables a new engine session, so its `per_session` upstream sessions are opened
    /// anew once (the old ones idle out). Nothing a client holds names it, and such
    /// requests carry no session state, so nothing a user sees changes; a stable id would
    /// need a key that never rotates (switchboard-redis `keys.rs`).
    pub fn variables_id(&self, variables: &BTreeMap<String, String>) -> String {
        let mut parts: Vec<&[u8]> = vec![b"variables"];
        for (name, value) in variables {
            parts.push(name.as_bytes());
            parts.push(value.as_bytes());
        }
        let mac = self.ring.primary().mac(&parts);
        format!("vars-{}", token::hex(&mac[..16]))
    }

    pub(crate) fn mark_ended(&self, engine_id: String) {
        self.lock_ended().insert(engine_id);
    }

    /// Whether the session's client ended it (and forgets the mark).
    pub(crate) fn take_ended(&self, engine_id: &str) -> bool {
        self.lock_ended().remove(engine_id)
    }

    fn lock_ended(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        lock(&self.ended)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps: still usable after a panic elsewhere.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
