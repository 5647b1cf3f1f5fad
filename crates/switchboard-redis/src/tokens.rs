//! [`RedisTokenStore`]: the engine's OAuth [`TokenStore`] over Redis (docs/scale-out-design.md
//! b.1, b.2, b.4), so replicas share each (server, URL, principal)'s tokens and the clients
//! registered at authorization servers.
//!
//! - A record is a string `{prefix}:v1:t:<hash>` (key names: `keys.rs`) holding the
//!   record's JSON sealed with the store key, the key name as associated data: a value
//!   copied under another user's key does not open and reads as absent (logged). It expires
//!   30 days (`token_ttl`) after its last write when it has a refresh token (or no expiry
//!   is known), else an hour after its access token does.
//! - The renewal lock is `{prefix}:v1:tl:<hash>`, `SET NX PX 15000` with a random nonce;
//!   while held a task extends it every 5 s (a renewal slower than 15 s keeps it; a
//!   replica that dies loses it within 15 s), and dropping the lock releases it (Lua
//!   compare-and-delete: never someone else's). A waiter tries again every 25 ms, for at
//!   most a minute.
//! - `remove_if` reads the record, compares it opened, and deletes it only if the stored
//!   bytes are still those it read (Lua compare-and-delete), atomically in Redis.
//! - A registration (a dynamically registered client, per issuer and callback port) is
//!   `{prefix}:v1:rg:<hash>`, sealed the same way, kept `token_ttl` after its last use.
//! - Key rotation (`seal.rs`, `keys.rs`): reads look under the name each key of the ring
//!   gives (one round trip) and move a value found under an older key's name to the
//!   primary's; writes go under the primary's name and delete the others; the renewal lock
//!   is taken under every name. Each value carries its key (`_key`, inside the seal), so
//!   [`RedisTokenStore::rekey`] moves what no one read since the rotation and re-seals what
//!   is still under a secondary store key: the old key can then be dropped before
//!   `token_ttl` has passed.
//! - Removals (b.3): `remove`, and a `remove_if` that deleted, publish `token <hash>` on
//!   the event channel (`connection.rs`); every store maps the hashes of keys it has used
//!   back to keys and tells [`TokenStore::removals`] receivers (the engine's cells then drop
//!   the token they hold). At most once: a replica disconnected at that moment keeps its
//!   token until it expires or is refused.
//!
//! Redis down: every operation fails with a [`StoreError`] naming the Redis (user info
//! redacted) and what it could not do; the engine reports that as a sign-in or renewal
//! failure at the store step. A store error never yields a record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::{RedisError, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard::auth::{
    Registration, RegistrationKey, RenewalLock, StoreError, TokenKey, TokenRecord, TokenStore,
};
use tokio::sync::broadcast;

mod lock;
mod removals;

use self::removals::{Removals, hear};
use crate::connection::RedisConnection;
use crate::keys::{NameRing, TokenKeys};
use crate::moves::{RELEASE, move_string, scan};
use crate::seal::Sealer;
use crate::store::millis;
use crate::{RedisOptions, RedisSetupError};

/// An access-only record outlives its token by this much (b.1).
const ACCESS_ONLY_GRACE: u64 = 3600;
/// The shortest TTL a record is given (an access token that has already expired).
const MIN_TTL: Duration = Duration::from_secs(60);

/// KEYS[1] value; ARGV: the value read, its replacement. Replaced (TTL kept) only if
/// unchanged.
const RESEAL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
";

/// OAuth tokens and client registrations in Redis; see the module docs. Cheap to share
/// (`Arc`); the connection is multiplexed.
pub struct RedisTokenStore {
    connection: RedisConnection,
    names: NameRing,
    sealer: Sealer,
    token_ttl: Duration,
    compare_and_delete: Script,
    removals: Arc<Removals>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("url", &self.connection.shown_url())
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// A token store on the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    /// `options.store_key` is required (tokens are credentials); `binding_key` should be
    /// set (else key names are plain hashes of server, URL and principal). Connects
    /// lazily: this succeeds while Redis is down. Must be called within a Tokio runtime.
    pub fn new(url: &str, options: RedisOptions) -> Result<Self, RedisSetupError> {
        let connection = RedisConnection::open(url, &options)?;
        Self::with_connection(connection, options)
    }

    /// A token store on `connection`, shared with the replica's other Redis stores (e.g.
    /// its [`RedisSharedSessions`](crate::RedisSharedSessions)).
    pub fn with_connection(
        connection: RedisConnection,
        options: RedisOptions,
    ) -> Result<Self, RedisSetupError> {
        if options.store_key.is_none() {
            return Err(RedisSetupError::BadOptions(
                "a token store needs store_key: OAuth tokens are credentials and are kept \
                 in Redis only sealed"
                    .into(),
            ));
        }
        if options.token_ttl < MIN_TTL {
            return Err(RedisSetupError::BadOptions(format!(
                "token_ttl must be at least {} s (records would expire before they are used)",
                MIN_TTL.as_secs()
            )));
        }
        let removals = Arc::new(Removals {
            known: Mutex::default(),
            sender: broadcast::channel(256).0,
        });
        tokio::spawn(hear(Arc::downgrade(&removals), connection.events()));
        Ok(Self {
            connection,
            names: NameRing::new(
                &options.key_prefix,
                options.binding_key.as_deref(),
                &options.older_binding_keys,
            ),
            sealer: Sealer::from_options(&options)?,
            token_ttl: options.token_ttl,
            compare_and_delete: Script::new(RELEASE),
            removals,
        })
    }

    /// The Redis key holding `key`'s record (for operators: `redis-cli TTL`, `DEL`).
    pub fn record_key(&self, key: &TokenKey) -> String {
        self.names.primary().token(key).record
    }

    /// `key`'s names under every key of the ring (primary first), remembering the
    /// primary's hash for events.
    fn names_of(&self, key: &TokenKey) -> Vec<TokenKeys> {
        let names: Vec<TokenKeys> = (self.names.all().iter())
            .map(|names| names.token(key))
            .collect();
        self.removals.know(&names[0].hash, key);
        names
    }

    /// The names of `key`'s records under every key of the ring, primary first.
    fn records_of(&self, key: &TokenKey) -> Vec<String> {
        self.names_of(key).into_iter().map(|n| n.record).collect()
    }

    /// The names of `key`'s registration under every key of the ring, primary first.
    fn registrations_of(&self, key: &RegistrationKey) -> Vec<String> {
        (self.names.all().iter())
            .map(|names| names.registration(key))
            .collect()
    }

    /// Tells every replica that the record of `names` is gone, by its hash under each key
    /// of the ring (a replica whose primary is another key knows it by that one); logged if
    /// it cannot: the record is gone all the same.
    async fn announce_removal(&self, names: &[TokenKeys]) {
        for name in names {
            let message = format!("token {}", name.hash);
            if let Err(reason) = self.connection.publish(message).await {
                tracing::warn!("could not announce a removed token to other replicas: {reason}");
                return;
            }
        }
    }

    /// The first value found under `names` (one round trip; `slide`: TTLs restart), and
    /// the index of its name.
    async fn find(
        &self,
        names: &[String],
        slide: bool,
    ) -> Result<Option<(usize, Vec<u8>)>, RedisError> {
        if let [name] = names {
            let raw = self.get_raw(name, slide).await?;
            return Ok(raw.map(|raw| (0, raw)));
        }
        // Atomic: a move by another replica between two of the reads would hide the value.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for name in names {
            if slide {
                pipe.cmd("GETEX")
                    .arg(name)
                    .arg("PX")
                    .arg(millis(self.token_ttl));
            } else {
                pipe.get(name);
            }
        }
        let mut connection = self.connection.manager();
        let found: Vec<Option<Vec<u8>>> = pipe.query_async(&mut connection).await?;
        Ok((found.into_iter().enumerate()).find_map(|(i, raw)| raw.map(|raw| (i, raw))))
    }

    /// Reads the value of `names` (see [`Self::find`]) and moves one found under an older
    /// key's name to the primary's (logged if it cannot: the value read is good).
    async fn load_value<T: DeserializeOwned>(
        &self,
        names: &[String],
        slide: bool,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let found = self
            .guarded(&format!("read a {what}"), self.find(names, slide))
            .await?;
        let Some((index, raw)) = found else {
            return Ok(None);
        };
        let value = self.open(&names[index], raw.clone(), what);
        if index > 0 && value.is_some() {
            let moved = move_string(
                &self.connection,
                &self.sealer,
                &names[index],
                &names[0],
                raw,
            );
            if let Err(error) = self.connection.guarded(moved).await {
                tracing::debug!(%error, "could not move a {what} to the primary key's name");
            }
        }
        Ok(value)
    }

    /// Moves every token record and registration still under an older key's name to the
    /// primary's, and re-seals with the primary store key what is still under a secondary
    /// one (rotation step 3 of `seal.rs` and `keys.rs`; TTLs kept; a value written
    /// meanwhile is left as it is). Returns how many were moved or re-sealed. Values that
    /// open under no key are left alone (they read as absent) and logged; values written
    /// before they carried their key are re-sealed in place (they move when read).
    pub async fn rekey(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        for pattern in self.names.primary().token_patterns() {
            let names = self
                .guarded("list tokens", scan(&self.connection, &pattern))
                .await?;
            for name in names {
                if self.rekey_one(&name).await? {
                    done += 1;
                }
            }
        }
        Ok(done)
    }

    /// Moves or re-seals the value at `name` (see [`Self::rekey`]).
    async fn rekey_one(&self, name: &str) -> Result<bool, StoreError> {
        let Some(raw) = self
            .guarded("read a token", self.get_raw(name, false))
            .await?
        else {
            return Ok(false);
        };
        let Ok(plain) = self.sealer.open(name, raw.clone()) else {
            tracing::warn!(
                key = name,
                "a stored value opens under no store key; left as it is"
            );
            return Ok(false);
        };
        let to = serde_json::from_slice::<serde_json::Value>(&plain)
            .ok()
            .and_then(|value| self.name_in(&value));
        if let Some(to) = to.filter(|to| to != name) {
            let moved = move_string(&self.connection, &self.sealer, name, &to, raw);
            return self.guarded("move a token", moved).await;
        }
        if !self.sealer.is_under_old_key(&raw) {
            return Ok(false);
        }
        let sealed = self.sealer.seal(name, plain);
        let mut connection = self.connection.manager();
        let replaced: i64 = self
            .guarded(
                "re-seal a token",
                Script::new(RESEAL)
                    .key(name)
                    .arg(raw)
                    .arg(sealed)
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok(replaced == 1)
    }

    /// The primary's name for the value `value` (by the key it carries, `_key`).
    fn name_in(&self, value: &serde_json::Value) -> Option<String> {
        let key = value.get(KEY_FIELD)?;
        let names = self.names.primary();
        if let Some([server, url, principal]) = key.get("token").and_then(strings::<3>) {
            return Some(
                names
                    .token(&TokenKey {
                        server,
                        url,
                        principal,
                    })
                    .record,
            );
        }
        let registration = key.get("registration")?;
        let issuer = registration.get("issuer")?.as_str()?.to_owned();
        let redirect_port = match registration.get("port")? {
            serde_json::Value::Null => None,
            port => Some(u16::try_from(port.as_u64()?).ok()?),
        };
        Some(names.registration(&RegistrationKey {
            issuer,
            redirect_port,
        }))
    }

    /// Runs `operation` through the connection's breaker; failures say what could not be
    /// done, where.
    async fn guarded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        self.connection
            .guarded(operation)
            .await
            .map_err(|reason| self.failure(what, &reason))
    }

    fn failure(&self, what: &str, reason: &str) -> StoreError {
        StoreError(format!(
            "the token store (Redis at {}) could not {what}: {reason}; check that Redis is \
             up and reachable",
            self.connection.shown_url()
        ))
    }

    /// The raw value at `name` (`slide`: its TTL restarts).
    async fn get_raw(&self, name: &str, slide: bool) -> Result<Option<Vec<u8>>, RedisError> {
        let mut connection = self.connection.manager();
        if slide {
            redis::cmd("GETEX")
                .arg(name)
                .arg("PX")
                .arg(millis(self.token_ttl))
                .query_async(&mut connection)
                .await
        } else {
            redis::cmd("GET")
                .arg(name)
                .query_async(&mut connection)
                .await
        }
    }

    /// The value sealed at `name`, or `None` (logged) when there is none or it does not open
    /// or parse: a value that cannot be trusted is absent.
    fn open<T: DeserializeOwned>(&self, name: &str, raw: Vec<u8>, what: &str) -> Option<T> {
        let Ok(plain) = self.sealer.open(name, raw) else {
            tracing::warn!(
                key = name,
                "a stored {what} does not open (other key, moved or tampered); ignored"
            );
            return None;
        };
        match serde_json::from_slice(&plain) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(key = name, %error, "a stored {what} is not readable; ignored");
                None
            }
        }
    }

    /// Writes `value`, carrying `key` (its name's preimage, for `rekey`), under the first
    /// of `names` and deletes it under the others (a replica whose primary is still an
    /// older key reads that name first).
    async fn put<T: Serialize>(
        &self,
        names: &[String],
        value: &T,
        key: serde_json::Value,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let mut json = serde_json::to_value(value).expect("a record serializes");
        if let Some(object) = json.as_object_mut() {
            object.insert(KEY_FIELD.into(), key);
        }
        let json = serde_json::to_vec(&json).expect("JSON serializes");
        let sealed = self.sealer.seal(&names[0], json);
        let mut connection = self.connection.manager();
        let mut pipe = redis::pipe();
        if names.len() > 1 {
            pipe.atomic();
        }
        pipe.cmd("SET")
            .arg(&names[0])
            .arg(sealed)
            .arg("PX")
            .arg(millis(ttl).max(1))
            .ignore();
        if names.len() > 1 {
            pipe.del(&names[1..]).ignore();
        }
        pipe.query_async(&mut connection).await
    }

    async fn delete(&self, names: &[String]) -> Result<(), RedisError> {
        let mut connection = self.connection.manager();
        let _: i64 = redis::cmd("DEL")
            .arg(names)
            .query_async(&mut connection)
            .await?;
        Ok(())
    }

    /// How long `record` is kept (see the module docs).
    fn ttl_of(&self, record: &TokenRecord) -> Duration {
        match (&record.refresh_token, record.expires_at) {
            (None, Some(expires_at)) => {
                let now = unix_now();
                let left = (expires_at + ACCESS_ONLY_GRACE).saturating_sub(now);
                Duration::from_secs(left).clamp(MIN_TTL, self.token_ttl.max(MIN_TTL))
            }
            _ => self.token_ttl,
        }
    }

    async fn remove_if_seen(&self, key: &TokenKey, seen: &TokenRecord) -> Result<bool, StoreError> {
        let names = self.names_of(key);
        let records: Vec<String> = names.iter().map(|n| n.record.clone()).collect();
        let found = self
            .guarded("read a token", self.find(&records, false))
            .await?;
        let Some((index, raw)) = found else {
            return Ok(false);
        };
        let name = &records[index];
        let now: Option<TokenRecord> = self.open(name, raw.clone(), "token record");
        if now.as_ref() != Some(seen) {
            return Ok(false);
        }
        // Deleted only if no one wrote it since it was read.
        let mut connection = self.connection.manager();
        let deleted: i64 = self
            .guarded(
                "delete a token",
                self.compare_and_delete
                    .key(name)
                    .arg(raw)
                    .invoke_async(&mut connection),
            )
            .await?;
        if deleted == 1 {
            self.announce_removal(&names).await;
        }
        Ok(deleted == 1)
    }
}

/// The field of a stored value's JSON naming its key (for `rekey`; sealed with the value).
const KEY_FIELD: &str = "_key";

fn token_preimage(key: &TokenKey) -> serde_json::Value {
    serde_json::json!({ "token": [key.server, key.url, key.principal] })
}

/// `value` as an array of `N` strings.
fn strings<const N: usize>(value: &serde_json::Value) -> Option<[String; N]> {
    let items = value.as_array()?;
    let strings: Option<Vec<String>> = items
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect();
    strings?.try_into().ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl TokenStore for RedisTokenStore {
    fn load<'a>(
        &'a self,
        key: &'a TokenKey,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        Box::pin(async move {
            let names = self.records_of(key);
            self.load_value(&names, false, "token record").await
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a TokenKey,
        record: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let names = self.records_of(key);
            let ttl = self.ttl_of(record);
            let key = token_preimage(key);
            self.guarded("store a token", self.put(&names, record, key, ttl))
                .await
        })
    }

    fn remove<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let names = self.names_of(key);
            let records: Vec<String> = names.iter().map(|n| n.record.clone()).collect();
            self.guarded("delete a token", self.delete(&records))
                .await?;
            self.announce_removal(&names).await;
            Ok(())
        })
    }

    fn lock<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<RenewalLock, StoreError>> {
        Box::pin(self.take_lock(key))
    }

    fn removals(&self) -> Option<broadcast::Receiver<TokenKey>> {
        Some(self.removals.sender.subscribe())
    }

    fn remove_if<'a>(
        &'a self,
        key: &'a TokenKey,
        seen: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.remove_if_seen(key, seen))
    }

    fn load_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<Option<Registration>, StoreError>> {
        Box::pin(async move {
            let names = self.registrations_of(key);
            self.load_value(&names, true, "client registration").await
        })
    }

    fn save_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
        registration: &'a Registration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let names = self.registrations_of(key);
            let preimage = serde_json::json!({
                "registration": { "issuer": key.issuer, "port": key.redirect_port }
            });
            self.guarded(
                "store a client registration",
                self.put(&names, registration, preimage, self.token_ttl),
            )
            .await
        })
    }

    fn remove_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let names = self.registrations_of(key);
            self.guarded("delete a client registration", self.delete(&names))
                .await
        })
    }
}
