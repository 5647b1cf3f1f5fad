//! Token removal events (b.3; see `tokens.rs`): the keys a store has used, by hash, and
//! the task that turns `token <hash>` events into removed keys.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};

use switchboard::auth::TokenKey;
use tokio::sync::broadcast;

/// Past this many keys known by hash, the map starts over (events for the forgotten ones
/// are then missed until they are used again).
const MAX_KNOWN: usize = 100_000;

/// The keys this store has used, by hash, and who hears of their removal.
pub(super) struct Removals {
    pub(super) known: Mutex<HashMap<String, TokenKey>>,
    pub(super) sender: broadcast::Sender<TokenKey>,
}

impl Removals {
    pub(super) fn know(&self, hash: &str, key: &TokenKey) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if !known.contains_key(hash) {
            if known.len() >= MAX_KNOWN {
                known.clear();
            }
            known.insert(hash.to_owned(), key.clone());
        }
    }
}

/// Tells `removals`' receivers of each `token <hash>` event for a key they know; ends when
/// the store is dropped (at its next event) or the connection's channel closes.
pub(super) async fn hear(removals: Weak<Removals>, mut events: broadcast::Receiver<Vec<u8>>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "token events were missed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(removals) = removals.upgrade() else {
            return;
        };
        let Some(hash) = event.strip_prefix(b"token ") else {
            continue;
        };
        let hash = String::from_utf8_lossy(hash);
        let key = (removals.known.lock().unwrap_or_else(|e| e.into_inner()))
            .get(hash.as_ref())
            .cloned();
        if let Some(key) = key {
            let _ = removals.sender.send(key);
        }
    }
}
