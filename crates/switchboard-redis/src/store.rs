//! [`RedisSharedSessions`]: the engine's `SharedSessions` over Redis.
//!
//! A record is one field of the session's hash (a.4), `up:<server>`, holding the record as
//! one JSON document (sealed when a store key is set): JSON rather than one hash field per
//! record part because the record is read and written whole, and sealing one value is one
//! AEAD operation. Its generation is kept plain beside it in `up:<server>:gen` so the
//! compare-and-set script can read it without the key. Claims are string keys set with
//! `NX PX` and given up only by their owner; both are small Lua scripts, atomic in Redis.
//! The hash also holds the engine session id, sealed (`id`), so a `rekey` can name it.
//!
//! Key rotation (`keys.rs`): reads look under every name of the ring and move a hash found
//! under an older key's name; the compare-and-set compares the generation under whichever
//! name holds the record and writes under the primary's; claims are taken under every
//! name.

use std::time::Duration;

use futures::future::BoxFuture;
use redis::{RedisError, Script};
use serde::{Deserialize, Serialize};
use switchboard::{SharedSessions, SharedSessionsError, UpstreamKey, UpstreamRecord};

use crate::connection::RedisConnection;
use crate::keys::{NameRing, UpstreamKeys};
use crate::moves::{CLAIM, RELEASE, field_aad, move_hash};
use crate::seal::Sealer;
use crate::{RedisOptions, RedisSetupError};

/// KEYS[1] the record hash under the primary's name, KEYS[2..] under the ring's other
/// names; ARGV: generation field, record field, expected generation ('' = none), new
/// generation, value, TTL ms, sealed session id. The generation now is the first found,
/// primary first; the record is written under the primary's name and removed from the
/// others.
const PUBLISH_IF: &str = r"
local now = false
for i = 1, #KEYS do
  now = redis.call('HGET', KEYS[i], ARGV[1])
  if now then break end
end
if (now == false and ARGV[3] == '') or now == ARGV[3] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4], ARGV[2], ARGV[5], 'id', ARGV[7])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  for i = 2, #KEYS do redis.call('HDEL', KEYS[i], ARGV[1], ARGV[2]) end
  return 1
end
return 0
";

/// The record as stored (inside the seal).
#[derive(Serialize, Deserialize)]
struct StoredRecord {
    id: String,
    url: String,
    init: serde_json::Value,
    generation: u64,
}

/// Classic upstream sessions shared between gateway replicas through Redis; see the
/// module docs. Cheap to share (`Arc`); the connection is multiplexed.
pub struct RedisSharedSessions {
    pub(crate) connection: RedisConnection,
    pub(crate) names: NameRing,
    pub(crate) sealer: Sealer,
    pub(crate) idle_ttl_ms: u64,
    publish_if: Script,
    claim: Script,
    release: Script,
}

impl std::fmt::Debug for RedisSharedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSharedSessions")
            .field("url", &self.connection.shown_url())
            .finish_non_exhaustive()
    }
}

impl RedisSharedSessions {
    /// A store on the Redis at `url` (`redis://[user:password@]host:port[/db]`). Connects
    /// lazily: this succeeds while Redis is down. Must be called within a Tokio runtime.
    pub fn new(url: &str, options: RedisOptions) -> Result<Self, RedisSetupError> {
        let connection = RedisConnection::open(url, &options)?;
        Self::with_connection(connection, options)
    }

    /// A store on `connection`, shared with the replica's other Redis stores (its
    /// timeouts are the connection's; `options` gives the rest).
    pub fn with_connection(
        connection: RedisConnection,
        options: RedisOptions,
    ) -> Result<Self, RedisSetupError> {
        if options.idle_ttl.is_zero() {
            return Err(RedisSetupError::BadOptions(
                "idle_ttl must be more than zero (records would expire at once)".into(),
            ));
        }
        Ok(Self {
            connection,
            names: NameRing::new(
                &options.key_prefix,
                options.binding_key.as_deref(),
                &options.older_binding_keys,
            ),
            sealer: Sealer::from_options(&options)?,
            idle_ttl_ms: millis(options.idle_ttl),
            publish_if: Script::new(PUBLISH_IF),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        })
    }

    /// Whether operations try Redis now: false while the breaker is open (Redis failed
    /// repeatedly within the last second), so a caller can refuse at once (b.6).
    pub fn available(&self) -> bool {
        self.connection.available()
    }

    /// The key other replicas are told a session by (a keyed hash of the engine session
    /// id: what [`EndedSessions`] yields).
    pub fn session_key(&self, session: &str) -> String {
        self.names.primary().session_hash(session)
    }

    /// The session's key under every key of the ring, primary first (a session's end is
    /// announced under each, so replicas whose primary differs hear it).
    pub(crate) fn session_keys(&self, session: &str) -> Vec<String> {
        (self.names.all().iter())
            .map(|names| names.session_hash(session))
            .collect()
    }

    /// Moves every session hash still under an older key's name (one no one read since the
    /// rotation) to the primary's (rotation step 3, `keys.rs`). Returns how many moved.
    /// A hash without its session id (written before ids were kept) is left to expire, as
    /// are fields still sealed under an older store key at the primary's name (a gateway
    /// rotates both keys at once, and a replica seals what it writes or moves under its own
    /// primary: none are left once step 2's roll is over).
    pub async fn rekey(&self) -> Result<usize, SharedSessionsError> {
        let pattern = self.names.primary().session_pattern();
        let names = self.guarded(crate::moves::scan(&self.connection, &pattern));
        let mut moved = 0;
        for name in names.await? {
            let mut connection = self.connection.manager();
            let id: Option<Vec<u8>> = self
                .guarded(
                    redis::cmd("HGET")
                        .arg(&name)
                        .arg("id")
                        .query_async(&mut connection),
                )
                .await?;
            let Some(session) =
                id.and_then(|raw| self.sealer.open(&field_aad(&name, "id"), raw).ok())
            else {
                continue;
            };
            let session = String::from_utf8_lossy(&session);
            let to = self.names.primary().session_record(&session);
            if to != name
                && self
                    .guarded(move_hash(&self.connection, &self.sealer, &name, &to))
                    .await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// After a read found the session's hash under the ring's `index`th name: moves it to
    /// the primary's (logged if it cannot: the value read is good all the same).
    pub(crate) async fn found_under(&self, index: usize, session: &str) {
        if index == 0 {
            return;
        }
        let all = self.names.all();
        let from = all[index].session_record(session);
        let to = all[0].session_record(session);
        match move_hash(&self.connection, &self.sealer, &from, &to).await {
            Ok(_) => tracing::debug!("a session hash moved to the primary key's name"),
            Err(error) => {
                tracing::debug!(%error, "could not move a session hash to the primary key's name")
            }
        }
    }

    /// The sealed engine session id kept in its hash (`id`).
    pub(crate) fn sealed_id(&self, record: &str, session: &str) -> Vec<u8> {
        (self.sealer).seal(&field_aad(record, "id"), session.as_bytes().to_vec())
    }

    /// The keys of the sessions any replica's client ended from now on (pub/sub, at most
    /// once: a replica that misses one serves its local copy until it idles out).
    pub fn ended_sessions(&self) -> EndedSessions {
        EndedSessions(self.connection.events())
    }

    /// The store of downstream session records (a.4), on this store's connection, keys
    /// and seal.
    pub fn session_store(self: &std::sync::Arc<Self>) -> crate::RedisSessionStore {
        crate::RedisSessionStore::new(self.clone())
    }

    /// Runs `operation` through the connection's breaker.
    pub(crate) async fn guarded<T>(
        &self,
        operation: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, SharedSessionsError> {
        self.connection
            .guarded(operation)
            .await
            .map_err(|reason| SharedSessionsError { reason })
    }

    /// The upstream keys under every name of the ring, primary first.
    fn all_keys(&self, key: &UpstreamKey) -> Vec<UpstreamKeys> {
        (self.names.all().iter())
            .map(|names| names.upstream(key))
            .collect()
    }

    async fn read(&self, key: &UpstreamKey) -> Result<Option<UpstreamRecord>, RedisError> {
        let all = self.all_keys(key);
        let mut connection = self.connection.manager();
        // Under every name at once; reading slides the session's expiry, like a write.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for keys in &all {
            pipe.hget(&keys.record, &keys.field);
            pipe.pexpire(&keys.record, self.idle_ttl_ms as i64).ignore();
        }
        let stored: Vec<Option<Vec<u8>>> = pipe.query_async(&mut connection).await?;
        let Some((index, value)) = (stored.into_iter().enumerate())
            .find_map(|(index, value)| value.map(|value| (index, value)))
        else {
            return Ok(None);
        };
        let record = self.decode(&all[index], value);
        if record.is_some() {
            self.found_under(index, &key.session).await;
        }
        Ok(record)
    }

    /// The record in `value`, or `None` (logged) if it does not open or parse: a record
    /// that cannot be trusted is treated as absent.
    fn decode(&self, keys: &UpstreamKeys, value: Vec<u8>) -> Option<UpstreamRecord> {
        let plain = match self.sealer.open(&aad(keys), value) {
            Ok(plain) => plain,
            Err(_) => {
                tracing::warn!(server = %keys.field, "a shared session record does not open (other key, moved or tampered); ignored");
                return None;
            }
        };
        match serde_json::from_slice::<StoredRecord>(&plain) {
            Ok(stored) => Some(UpstreamRecord {
                session_id: stored.id,
                url: stored.url,
                initialize: stored.init,
                generation: stored.generation,
            }),
            Err(error) => {
                tracing::warn!(server = %keys.field, %error, "a shared session record is not readable; ignored");
                None
            }
        }
    }

    async fn write_if(
        &self,
        key: &UpstreamKey,
        expected: Option<u64>,
        record: UpstreamRecord,
    ) -> Result<bool, RedisError> {
        let all = self.all_keys(key);
        let keys = &all[0];
        let generation = record.generation;
        let stored = StoredRecord {
            id: record.session_id,
            url: record.url,
            init: record.initialize,
            generation,
        };
        let json = serde_json::to_vec(&stored).expect("a record serializes");
        let value = self.sealer.seal(&aad(keys), json);
        let expected = expected.map(|g| g.to_string()).unwrap_or_default();
        let mut connection = self.connection.manager();
        let mut invocation = self.publish_if.prepare_invoke();
        for keys in &all {
            invocation.key(&keys.record);
        }
        let stored: i64 = invocation
            .arg(&keys.generation)
            .arg(&keys.field)
            .arg(expected)
            .arg(generation.to_string())
            .arg(value)
            .arg(self.idle_ttl_ms)
            .arg(self.sealed_id(&keys.record, &key.session))
            .invoke_async(&mut connection)
            .await?;
        Ok(stored == 1)
    }

    async fn take_claim(
        &self,
        key: &UpstreamKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let mut connection = self.connection.manager();
        let mut invocation = self.claim.prepare_invoke();
        for keys in self.all_keys(key) {
            invocation.key(keys.claim);
        }
        // Redis refuses `PX 0`; a zero TTL is the shortest one it takes.
        let claimed: i64 = invocation
            .arg(owner)
            .arg(millis(ttl).max(1))
            .invoke_async(&mut connection)
            .await?;
        Ok(claimed == 1)
    }

    async fn give_up(&self, key: &UpstreamKey, owner: &str) -> Result<(), RedisError> {
        let mut connection = self.connection.manager();
        let mut invocation = self.release.prepare_invoke();
        for keys in self.all_keys(key) {
            invocation.key(keys.claim);
        }
        let _: i64 = invocation.arg(owner).invoke_async(&mut connection).await?;
        Ok(())
    }

    async fn remove(&self, key: &UpstreamKey) -> Result<(), RedisError> {
        let mut connection = self.connection.manager();
        let mut pipe = redis::pipe();
        for keys in self.all_keys(key) {
            pipe.hdel(&keys.record, &[&keys.field, &keys.generation])
                .ignore();
        }
        pipe.query_async::<()>(&mut connection).await
    }
}

impl SharedSessions for RedisSharedSessions {
    fn get<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<Option<UpstreamRecord>, SharedSessionsError>> {
        Box::pin(self.guarded(self.read(key)))
    }

    fn publish_if<'a>(
        &'a self,
        key: &'a UpstreamKey,
        expected: Option<u64>,
        record: UpstreamRecord,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        Box::pin(self.guarded(self.write_if(key, expected, record)))
    }

    fn claim<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        Box::pin(self.guarded(self.take_claim(key, owner, ttl)))
    }

    fn release<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        Box::pin(self.guarded(self.give_up(key, owner)))
    }

    fn forget<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        Box::pin(self.guarded(self.remove(key)))
    }
}

/// What announces a session's end on the event channel (b.3).
pub(crate) const ENDED: &str = "ended ";

/// What [`EndedSessions`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The session of this key ended (its client DELETEd it on some replica).
    Ended(String),
    /// Announcements may have been lost (this replica was disconnected from Redis, or fell
    /// behind): check the sessions held here against their records.
    Missed,
}

/// Session keys announced ended ([`RedisSharedSessions::ended_sessions`]).
pub struct EndedSessions(tokio::sync::broadcast::Receiver<Vec<u8>>);

impl EndedSessions {
    /// The next announcement; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Announcement> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match self.0.recv().await {
                Ok(message) => {
                    if let Some(key) = message.strip_prefix(ENDED.as_bytes()) {
                        return Some(Announcement::Ended(
                            String::from_utf8_lossy(key).into_owned(),
                        ));
                    }
                    if message == crate::connection::MISSED.as_bytes() {
                        return Some(Announcement::Missed);
                    }
                }
                Err(RecvError::Lagged(_)) => return Some(Announcement::Missed),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The associated data binding a sealed record to where it is stored.
fn aad(keys: &UpstreamKeys) -> String {
    field_aad(&keys.record, &keys.field)
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
