//! [`RedisSessionStore`]: downstream session records (docs/scale-out-design.md a.4).
//!
//! Fields `init` (the client's `initialize` params, JSON), `bind` (the identity binding
//! sealed into the session id) and, when the gateway remembers them, `vars` (the session's
//! variables), in the same hash as the session's upstream records (`up:<server>`), each
//! value sealed on its own (AAD = key + field). Keyed by the engine session id, hashed
//! under the binding key like every name. The record slides its expiry (`idle_ttl`) on
//! every write, read and [`RedisSessionStore::touch`]. The gateway maps its sealed
//! downstream ids to engine ids and implements rmcp's `SessionStore` over this.

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
        let key = self.store.names.session_record(session);
        let mut connection = self.store.connection.manager();
        let delete = async move {
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            Ok(())
        };
        self.store.guarded(delete).await?;
        let message = format!("{}{}", crate::store::ENDED, self.store.session_key(session));
        let published = self.store.connection.publish(message).await;
        published.map_err(|reason| SharedSessionsError { reason })
    }

    /// Slides the record's expiry (a session in steady use on one replica never reads it).
    pub async fn touch(&self, session: &str) -> Result<(), SharedSessionsError> {
        let key = self.store.names.session_record(session);
        let mut connection = self.store.connection.manager();
        let ttl = self.store.idle_ttl_ms;
        let touch = async move {
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl)
                .query_async(&mut connection)
                .await?;
            Ok(())
        };
        self.store.guarded(touch).await
    }

    async fn write(&self, session: &str, record: &SessionRecord) -> Result<(), RedisError> {
        let key = self.store.names.session_record(session);
        let sealer = &self.store.sealer;
        let json = |v: &serde_json::Value| serde_json::to_vec(v).expect("JSON serializes");
        let mut values = vec![
            (
                FIELDS[0],
                sealer.seal(&aad(&key, FIELDS[0]), json(&record.init)),
            ),
            (
                FIELDS[1],
                sealer.seal(&aad(&key, FIELDS[1]), record.binding.clone()),
            ),
        ];
        if let Some(variables) = &record.variables {
            let plain = serde_json::to_vec(variables).expect("a map serializes");
            values.push((FIELDS[2], sealer.seal(&aad(&key, FIELDS[2]), plain)));
        }
        let mut connection = self.store.connection.manager();
        let mut pipe = redis::pipe();
        pipe.atomic().hdel(&key, FIELDS[2]).ignore();
        pipe.hset_multiple(&key, &values).ignore();
        pipe.pexpire(&key, self.store.idle_ttl_ms as i64).ignore();
        pipe.query_async::<()>(&mut connection).await
    }

    async fn read(&self, session: &str) -> Result<Option<SessionRecord>, RedisError> {
        let key = self.store.names.session_record(session);
        let mut connection = self.store.connection.manager();
        let (values, _): (Vec<Option<Vec<u8>>>, i64) = redis::pipe()
            .atomic()
            .hmget(&key, &FIELDS[..])
            .pexpire(&key, self.store.idle_ttl_ms as i64)
            .query_async(&mut connection)
            .await?;
        let sealer = &self.store.sealer;
        let open = |field: &str, value: Option<Vec<u8>>| -> Option<Vec<u8>> {
            let value = value?;
            match sealer.open(&aad(&key, field), value) {
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
            return Ok(None);
        };
        let Ok(init) = serde_json::from_slice(&init) else {
            tracing::warn!("a session record is not readable; ignored");
            return Ok(None);
        };
        let variables = variables.and_then(|v| serde_json::from_slice(&v).ok());
        Ok(Some(SessionRecord {
            init,
            binding,
            variables,
        }))
    }
}

fn aad(key: &str, field: &str) -> String {
    format!("{key}/{field}")
}
