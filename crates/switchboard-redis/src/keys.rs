//! Key names (docs/scale-out-design.md b.1): `{prefix}:v1:s:{<sid>}` holds a session's
//! record fields (a hash, a.4), `{prefix}:v1:c:{<sid>}:<server>` an upstream-initialize
//! claim. `<sid>` is the hex HMAC-SHA-256 of the engine session id under the binding key,
//! or its plain SHA-256 when no key was given, so `SCAN`/`MONITOR` output never shows a
//! session id (which may name a user). Server names are config names, not secrets; they
//! are kept readable. The braces are a Redis Cluster hash tag: a session's record and its
//! claims share a slot.

use aws_lc_rs::{digest, hmac};
use switchboard::UpstreamKey;

/// Names the keys of one store.
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

    /// The hash holding the record of engine session `session` (a.4).
    pub(crate) fn session_record(&self, session: &str) -> String {
        format!("{}:v1:s:{{{}}}", self.prefix, self.session_hash(session))
    }

    pub(crate) fn session_hash(&self, session: &str) -> String {
        match &self.binding {
            Some(key) => hex(hmac::sign(key, session.as_bytes()).as_ref()),
            None => hex(digest::digest(&digest::SHA256, session.as_bytes()).as_ref()),
        }
    }
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
    fn a_binding_key_changes_every_name() {
        let plain = KeyNames::new("sb", None).upstream(&key("s"));
        let keyed = KeyNames::new("sb", Some(b"k1")).upstream(&key("s"));
        let other = KeyNames::new("sb", Some(b"k2")).upstream(&key("s"));
        assert_ne!(plain.record, keyed.record);
        assert_ne!(keyed.record, other.record);
    }
}
