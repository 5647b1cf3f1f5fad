//! Key names (docs/scale-out-design.md b.1): `{prefix}:v1:s:{<sid>}` holds a session's
//! record fields (a hash, a.4), `{prefix}:v1:e:{<sid>}` marks its end for an `idle_ttl`
//! (b.3), `{prefix}:v1:c:{<sid>}:<server>` an upstream-initialize
//! claim. `<sid>` is the hex HMAC-SHA-256 of the engine session id under the binding key,
//! or its plain SHA-256 when no key was given, so `SCAN`/`MONITOR` output never shows a
//! session id (which may name a user). Server names are config names, not secrets; they
//! are kept readable. The braces are a Redis Cluster hash tag: a session's record and its
//! claims share a slot.
//!
//! Tokens (b.1, b.4): `{prefix}:v1:t:<h>` a token record, `{prefix}:v1:tl:<h>` its renewal
//! lock, `<h>` the same hash of (server, URL, principal), length-prefixed; a client
//! registered at an authorization server: `{prefix}:v1:rg:<hash of (issuer, port)>`. Here
//! nothing stays readable: a principal is a user, a URL may hold a tenant.
//!
//! **Rotation ([`NameRing`]).** The binding key is the keyring's primary `k_bind`, so
//! making a new key primary (a.3 step 2) changes every name. Names are therefore computed
//! under every key of the ring, primary first, and the stores use them so:
//! - a read asks for the name under every key in one round trip (a pipeline; a ring of one
//!   key asks for one name, as before) and takes the first hit, primary first; a hit under
//!   an older key's name is moved to the primary's name (re-sealed: the name is the
//!   sealed value's associated data; a Lua script moves it only if it is unchanged, and
//!   never over a value already under the new name), so the next read finds it at once;
//! - a write goes under the primary's name and deletes the value under the other names
//!   (in the same transaction), so a replica whose primary is still the old key (a rolling
//!   update is under way) never reads a stale copy first;
//! - claims and renewal locks are taken under *every* name of the ring at once (one Lua
//!   script: free, or already the owner's, under all of them), and released the same way.
//!   A claim must exclude every replica whatever its primary. Any two replicas running at
//!   the same time during a rotation done as documented share at least one key (step 1:
//!   {K1} and {K1, K2}; step 2: {K1, K2} and {K2, K1}; step 3: {K2, K1} and {K2}), so they
//!   share at least one claim name and exclude each other. A single "canonical" name (say
//!   under the smallest kid) would not: in step 3 a replica with {K2, K1} would pick K1's
//!   name while one with {K2} can only pick K2's. Scripts then name several keys in
//!   different hash slots: fine on the one Redis the stores speak to, not on a Cluster;
//! - values carry their own name's preimage, sealed (a session hash's `id` field; a token
//!   or registration's `_key`), so a `rekey` can move what no one read since the rotation
//!   (`RedisSharedSessions::rekey`, `RedisTokenStore::rekey`). Values written before this
//!   carry none: they move when read, or expire.
//!
//! Rejected: a naming key that never rotates. Simpler reads, but a second secret with its
//! own lifecycle, and a leaked one could never be replaced without losing every name.

use aws_lc_rs::{digest, hmac};
use switchboard::UpstreamKey;
use switchboard::auth::{RegistrationKey, TokenKey};

/// The names of one store under every binding key of the ring, primary first (see the
/// module docs).
pub(crate) struct NameRing {
    names: Vec<KeyNames>,
}

impl NameRing {
    /// `binding_key` the primary's, `older` the ring's other keys' (without a primary, no
    /// others: plain hashes).
    pub(crate) fn new(prefix: &str, binding_key: Option<&[u8]>, older: &[Vec<u8>]) -> Self {
        let mut names = vec![KeyNames::new(prefix, binding_key)];
        if binding_key.is_some() {
            names.extend(older.iter().map(|key| KeyNames::new(prefix, Some(key))));
        }
        Self { names }
    }

    /// The names under the primary key: where values are written.
    pub(crate) fn primary(&self) -> &KeyNames {
        &self.names[0]
    }

    /// The names under every key, primary first.
    pub(crate) fn all(&self) -> &[KeyNames] {
        &self.names
    }
}

/// Names the keys of one store under one binding key.
pub(crate) struct KeyNames {
    prefix: String,
    binding: Option<hmac::Key>,
}

/// Where one upstream session's record and claim live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamKeys {
    /// The session's hash.
    pub record: String,
    /// The hash field holding the (sealed) record.
    pub field: String,
    /// The hash field holding the record's generation, plain, for the CAS script.
    pub generation: String,
    /// The claim's string key.
    pub claim: String,
}

/// Where one token record and its renewal lock live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenKeys {
    /// The hash both names end with (what token events carry).
    pub hash: String,
    pub record: String,
    pub lock: String,
}

impl KeyNames {
    pub(crate) fn new(prefix: &str, binding_key: Option<&[u8]>) -> Self {
        Self {
            prefix: prefix.to_owned(),
            binding: binding_key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, k)),
        }
    }

    pub(crate) fn upstream(&self, key: &UpstreamKey) -> UpstreamKeys {
        let sid = self.session_hash(&key.session);
        let prefix = &self.prefix;
        UpstreamKeys {
            record: format!("{prefix}:v1:s:{{{sid}}}"),
            field: format!("up:{}", key.server),
            generation: format!("up:{}:gen", key.server),
            claim: format!("{prefix}:v1:c:{{{sid}}}:{}", key.server),
        }
    }

    /// Where `key`'s token record and renewal lock live.
    pub(crate) fn token(&self, key: &TokenKey) -> TokenKeys {
        let parts = [
            "token",
            key.server.as_str(),
            key.url.as_str(),
            key.principal.as_str(),
        ];
        let hash = self.hash(&length_prefixed(&parts));
        let prefix = &self.prefix;
        TokenKeys {
            record: format!("{prefix}:v1:t:{hash}"),
            lock: format!("{prefix}:v1:tl:{hash}"),
            hash,
        }
    }

    /// Where the client registered for `key` lives.
    pub(crate) fn registration(&self, key: &RegistrationKey) -> String {
        let port = key.redirect_port.map(|p| p.to_string()).unwrap_or_default();
        let hash = self.hash(&length_prefixed(&["registration", &key.issuer, &port]));
        format!("{}:v1:rg:{hash}", self.prefix)
    }

    /// `SCAN MATCH` patterns of every token record and registration (not the locks).
    pub(crate) fn token_patterns(&self) -> [String; 2] {
        let prefix = self.pattern_prefix();
        [format!("{prefix}:v1:t:*"), format!("{prefix}:v1:rg:*")]
    }

    /// The `SCAN MATCH` pattern of every session hash.
    pub(crate) fn session_pattern(&self) -> String {
        format!("{}:v1:s:*", self.pattern_prefix())
    }

    fn pattern_prefix(&self) -> String {
        (self.prefix.chars())
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    }

    /// The hash holding the record of engine session `session` (a.4).
    pub(crate) fn session_record(&self, session: &str) -> String {
        format!("{}:v1:s:{{{}}}", self.prefix, self.session_hash(session))
    }

    /// The mark a session's end leaves (`{prefix}:v1:e:{<sid>}`), for replicas that missed
    /// its announcement.
    pub(crate) fn session_ended(&self, session: &str) -> String {
        format!("{}:v1:e:{{{}}}", self.prefix, self.session_hash(session))
    }

    pub(crate) fn session_hash(&self, session: &str) -> String {
        self.hash(session.as_bytes())
    }

    fn hash(&self, bytes: &[u8]) -> String {
        match &self.binding {
            Some(key) => hex(hmac::sign(key, bytes).as_ref()),
            None => hex(digest::digest(&digest::SHA256, bytes).as_ref()),
        }
    }
}

/// `parts` each after its length, so no two different lists give the same bytes.
fn length_prefixed(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(session: &str) -> UpstreamKey {
        UpstreamKey {
            session: session.into(),
            server: "kit".into(),
        }
    }

    #[test]
    fn key_names_hide_the_session_id_and_share_a_slot() {
        let names = KeyNames::new("sb", None);
        let keys = names.upstream(&key("mcp-alice@example.com"));
        for name in [&keys.record, &keys.claim] {
            assert!(!name.contains("alice"), "{name}");
        }
        assert!(keys.record.starts_with("sb:v1:s:{"), "{}", keys.record);
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
        assert_eq!(tag(&keys.record), tag(&keys.claim));
        assert_eq!(keys.field, "up:kit");
        assert_ne!(keys, names.upstream(&key("mcp-bob")));
    }

    #[test]
    fn token_key_names_show_no_server_url_or_principal() {
        let names = KeyNames::new("sb", Some(b"k"));
        let key = TokenKey {
            server: "github".into(),
            url: "https://tenant.example.com/mcp".into(),
            principal: "alice@example.com".into(),
        };
        let keys = names.token(&key);
        for name in [&keys.record, &keys.lock] {
            for hidden in ["github", "tenant", "alice"] {
                assert!(!name.contains(hidden), "{name}");
            }
        }
        assert_eq!(keys.record[8..], keys.lock[9..], "one hash for both");
        assert!(keys.record.starts_with("sb:v1:t:") && keys.lock.starts_with("sb:v1:tl:"));
        // The parts cannot slide into each other.
        let shifted = TokenKey {
            server: "githubh".into(),
            url: "ttps://tenant.example.com/mcp".into(),
            ..key.clone()
        };
        assert_ne!(names.token(&shifted), keys);
        let registration = names.registration(&RegistrationKey {
            issuer: "https://tenant.example.com".into(),
            redirect_port: Some(8080),
        });
        assert!(registration.starts_with("sb:v1:rg:") && !registration.contains("tenant"));
    }

    #[test]
    fn a_binding_key_changes_every_name() {
        let plain = KeyNames::new("sb", None).upstream(&key("s"));
        let keyed = KeyNames::new("sb", Some(b"k1")).upstream(&key("s"));
        let other = KeyNames::new("sb", Some(b"k2")).upstream(&key("s"));
        assert_ne!(plain.record, keyed.record);
        assert_ne!(keyed.record, other.record);
    }
}
