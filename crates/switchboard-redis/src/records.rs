//! [`RedisSessionStore`]: downstream session records (docs/scale-out-design.md a.4).
//!
//! Fields `init` (the client's `initialize` params, JSON), `bind` (the identity binding
//! sealed into the session id) and, when the gateway remembers them, `vars` (the session's
//! variables), in the same hash as the session's upstream records (`up:<server>`), each
//! value sealed on its own (AAD = key + field). Keyed by the engine session id, hashed
//! under the binding key like every name. The record slides its expiry (`idle_ttl`) on
//! every write, read and [`RedisSessionStore::touch`]. The gateway maps its sealed
//! downstream ids to engine ids and implements rmcp's `SessionStore` over this.
//!
//! Key rotation (`keys.rs`): a load looks under every name of the ring in one round trip
//! and moves a record found under an older key's name; a save writes under the primary's
//! name and removes the fields from the others; touch and delete reach every name.

use std::collections::BTreeMap;
use std::sync::Arc;

use redis::RedisError;
use serde::{Deserialize, Serialize};
use switchboard::SharedSessionsError;

use crate::RedisSharedSessions;

const FIELDS: [&str; 3] = ["init", "bind", "vars"];

/// One downstream session's record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The client's `initialize` params (JSON).
    pub init: serde_json::Value,
    /// The identity binding of the session's id.
    pub binding: Vec<u8>,
    /// The session's variables, when remembered.
    pub variables: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("variables", &self.variables.as_ref().map(|v| v.len()))
            .finish_non_exhaustive()
    }
}

/// See the module docs. Shares its store's connection and breaker.
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    store: Arc<RedisSharedSessions>,
}

impl RedisSessionStore {
    pub(crate) fn new(store: Arc<RedisSharedSessions>) -> Self {
        Self { store }
    }

    /// Whether operations try Redis now (see [`RedisSharedSessions::available`]).
    pub fn available(&self) -> bool {
        self.store.available()
    }

    /// Writes the record of engine session `session` (and starts its expiry).
    pub async fn save(
        &self,
        session: &str,
        record: &SessionRecord,
    ) -> Result<(), SharedSessionsError> {
        self.store.guarded(self.write(session, record)).await
    }

    /// The record of `session`, sliding its expiry; `None` if there is none (or it does
    /// not open: other key, moved, tampered).
    pub async fn load(&self, session: &str) -> Result<Option<SessionRecord>, SharedSessionsError> {
        self.store.guarded(self.read(session)).await
    }

    /// Removes the session's whole record, its upstream records included, and tells every
    /// replica the session ended ([`RedisSharedSessions::ended_sessions`]).
    pub async fn delete(&self, session: &str) -> Result<(), SharedSessionsError> {
        let keys = self.names(session);
        let marks = self.ended_marks(session);
        let mut connection = self.store.connection.manager();
        let ttl = self.store.idle_ttl_ms;
        let delete = async move {
            // The end is marked for as long as a replica's copy could live without a
            // request: a replica that missed the announcement finds it ([`Self::ended`]).
            let mut pipe = redis::pipe();
            pipe.atomic().del(&keys).ignore();
            for mark in &marks {
                pipe.cmd("SET").arg(mark).arg(1).arg("PX").arg(ttl).ignore();
            }
            pipe.query_async::<()>(&mut connection).await
        };
        self.store.guarded(delete).await?;
        // Under every key of the ring: a replica whose primary is another key holds the
        // session by that key's hash.
        for key in self.store.session_keys(session) {
            let message = format!("{}{key}", crate::store::ENDED);
            let published = self.store.connection.publish(message).await;
            published.map_err(|reason| SharedSessionsError { reason })?;
        }
        Ok(())
    }

    /// Which of `sessions` a client ended (on any replica) within the last `idle_ttl`: one
    /// round trip whatever their number. For a replica that may have missed announcements;
    /// a record merely gone (expired during a partition, a Redis that lost its data) is not
    /// an end.
    pub async fn ended(&self, sessions: &[String]) -> Result<Vec<bool>, SharedSessionsError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<Vec<String>> = sessions.iter().map(|s| self.ended_marks(s)).collect();
        let mut connection = self.store.connection.manager();
        let ended = async move {
            let mut pipe = redis::pipe();
            for names in &marks {
                pipe.cmd("EXISTS").arg(names);
            }
            let counts: Vec<i64> = pipe.query_async(&mut connection).await?;
            Ok(counts.into_iter().map(|n| n > 0).collect())
        };
        self.store.guarded(ended).await
    }

    /// The session's end mark under every name of the ring.
    fn ended_marks(&self, session: &str) -> Vec<String> {
        (self.store.names.all().iter())
            .map(|names| names.session_ended(session))
            .collect()
    }

    /// The session's hash under every name of the ring, primary first.
    fn names(&self, session: &str) -> Vec<String> {
        (self.store.names.all().iter())
            .map(|names| names.session_record(session))
            .collect()
    }

    /// Slides the record's expiry (a session in steady use on one replica never reads it).
    pub async fn touch(&self, session: &str) -> Result<(), SharedSessionsError> {
        let keys = self.names(session);
        let mut connection = self.store.connection.manager();
        let ttl = self.store.idle_ttl_ms;
        let touch = async move {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.pexpire(key, ttl as i64).ignore();
            }
            pipe.query_async::<()>(&mut connection).await
        };
        self.store.guarded(touch).await
    }

    async fn write(&self, session: &str, record: &SessionRecord) -> Result<(), RedisError> {
        let names = self.names(session);
        let key = &names[0];
        let sealer = &self.store.sealer;
        let json = |v: &serde_json::Value| serde_json::to_vec(v).expect("JSON serializes");
        let mut values = vec![
            (
                FIELDS[0],
                sealer.seal(&aad(key, FIELDS[0]), json(&record.init)),
            ),
            (
                FIELDS[1],
                sealer.seal(&aad(key, FIELDS[1]), record.binding.clone()),
            ),
            ("id", self.store.sealed_id(key, session)),
        ];
        if let Some(variables) = &record.variables {
            let plain = serde_json::to_vec(variables).expect("a map serializes");
            values.push((FIELDS[2], sealer.seal(&aad(key, FIELDS[2]), plain)));
        }
        let mut connection = self.store.connection.manager();
        let mut pipe = redis::pipe();
        pipe.atomic().hdel(key, FIELDS[2]).ignore();
        pipe.hset_multiple(key, &values).ignore();
        pipe.pexpire(key, self.store.idle_ttl_ms as i64).ignore();
        // A replica whose primary is still an older key reads its name first.
        for older in &names[1..] {
            pipe.hdel(older, &FIELDS[..]).ignore();
        }
        pipe.query_async::<()>(&mut connection).await
    }

    async fn read(&self, session: &str) -> Result<Option<SessionRecord>, RedisError> {
        let names = self.names(session);
        let mut connection = self.store.connection.manager();
        // Under every name at once (primary first); the first with an `init` is the record.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in &names {
            pipe.hmget(key, &FIELDS[..]);
            pipe.pexpire(key, self.store.idle_ttl_ms as i64).ignore();
        }
        let found: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut connection).await?;
        let Some((index, values)) = (found.into_iter().enumerate())
            .find(|(_, values)| values.first().is_some_and(Option::is_some))
        else {
            return Ok(None);
        };
        let key = &names[index];
        let record = self.open(key, values);
        if record.is_some() {
            self.store.found_under(index, session).await;
        }
        Ok(record)
    }

    /// The record in the `values` of `FIELDS` read at `key`, if they open and parse.
    fn open(&self, key: &str, values: Vec<Option<Vec<u8>>>) -> Option<SessionRecord> {
        let sealer = &self.store.sealer;
        let open = |field: &str, value: Option<Vec<u8>>| -> Option<Vec<u8>> {
            let value = value?;
            match sealer.open(&aad(key, field), value) {
                Ok(plain) => Some(plain),
                Err(_) => {
                    tracing::warn!(
                        field,
                        "a session record field does not open (other key, moved or tampered); ignored"
                    );
                    None
                }
            }
        };
        let mut values = values.into_iter();
        let mut next = |field| open(field, values.next().flatten());
        let (init, binding, variables) = (next(FIELDS[0]), next(FIELDS[1]), next(FIELDS[2]));
        let (Some(init), Some(binding)) = (init, binding) else {
            return None;
        };
        let Ok(init) = serde_json::from_slice(&init) else {
            tracing::warn!("a session record is not readable; ignored");
            return None;
        };
        let variables = variables.and_then(|v| serde_json::from_slice(&v).ok());
        Some(SessionRecord {
            init,
            binding,
            variables,
        })
    }
}

use crate::moves::field_aad as aad;
