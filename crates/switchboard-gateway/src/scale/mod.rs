//! Replicas behind a load balancer (`[scale]`, docs/scale-out-design.md (a)): any replica
//! serves any session.
//!
//! - `keyring.rs`: the keys (`[scale] keys_file`), HKDF-derived per purpose;
//! - `token.rs`: the sealed `Mcp-Session-Id` and the identity binding;
//! - `manager.rs`: [`SealedSessions`], rmcp's local session manager minting sealed ids;
//! - `gate.rs`: the check in front of `/mcp` refusing forged, expired, unknown-key and
//!   other users' ids with 404, before rmcp (or a store) sees them.
//!
//! Without `[scale]` none of this runs: rmcp's UUID ids and local sessions, as before.

mod gate;
pub mod keyring;
mod manager;
pub mod token;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use switchboard::config::ScaleConfig;

pub use gate::{Gate, gate};
pub use keyring::{Keyring, KeyringError};
pub use manager::{OwnSessionId, SealedSessions};

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
    /// From `[scale]`: reads the keyring (a bad one is an error naming its line).
    pub fn load(config: &ScaleConfig) -> Result<Scale, KeyringError> {
        let ring = Keyring::load(&config.keys_file)?;
        Ok(Scale::new(ring, config))
    }

    pub fn new(ring: Keyring, config: &ScaleConfig) -> Scale {
        Scale {
            ring,
            lifetime: config.max_session_lifetime,
            remember_variables: config.remember_variables,
            ended: Mutex::new(HashSet::new()),
        }
    }

    /// The binding of a caller without identity (no principal, no variables).
    pub fn anonymous_binding(&self) -> [u8; 16] {
        token::binding(self.ring.primary(), None, &BTreeMap::new())
    }

    /// `vars-` + the HMAC of a set of variables under `k_bind`: the engine session of
    /// requests without a downstream session (an unkeyed hash of credentials must not
    /// become a Redis key).
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
