//! The sealed session id (docs/scale-out-design.md a.3) and the identity binding (a.5).
//!
//! `Mcp-Session-Id = base64url( 0x01 | kid | nonce(12) | AES-256-GCM(k_seal, nonce, aad,
//! sid(16) | created(u64 s) | expires(u64 s) | binding(16) | kind(1)) | tag(16) )`, AAD =
//! `"switchboard/session" | 0x01 | kid`: 106 visible ASCII characters. It holds only what
//! never changes; what does (upstream sessions, the client's `initialize`) is in the
//! shared store under `sid`. Opening needs no I/O, so a forged, expired, unknown-key or
//! other user's id is refused before rmcp or Redis sees it. Logs show `hex(sid)` only.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::keyring::{Keyring, Keys};

const VERSION: u8 = 1;
const PLAIN_LEN: usize = 16 + 8 + 8 + 16 + 1;
const TAG_LEN: usize = 16;
const SEALED_LEN: usize = 2 + NONCE_LEN + PLAIN_LEN + TAG_LEN;

/// What a sealed id holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// The session's random key.
    pub sid: [u8; 16],
    /// Seconds since the epoch.
    pub created: u64,
    pub expires: u64,
    /// Who the session is for (see [`binding`]).
    pub binding: [u8; 16],
    /// The key id it was (or will be) sealed with.
    pub kid: u8,
}

/// Why an id was refused: the `reason` label of `switchboard_session_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not an id we sealed (malformed, tampered, forged).
    Bad,
    Expired,
    /// Sealed with a key no longer in the keyring.
    UnknownKey,
    /// Sealed for another identity than the request's.
    Identity,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Bad => "bad",
            Rejection::Expired => "expired",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Identity => "identity",
        }
    }
}

impl Token {
    /// A new session's token: a random sid, sealed with the primary key, valid for
    /// `lifetime_secs` from `now`.
    pub fn new(ring: &Keyring, binding: [u8; 16], now: u64, lifetime_secs: u64) -> Token {
        let mut sid = [0u8; 16];
        SystemRandom::new()
            .fill(&mut sid)
            .expect("the system random source");
        Token {
            sid,
            created: now,
            expires: now.saturating_add(lifetime_secs),
            binding,
            kid: ring.primary().kid,
        }
    }

    /// The engine session id of a downstream session: `mcp-<hex sid>`.
    pub fn engine_id(&self) -> String {
        format!("mcp-{}", hex(&self.sid))
    }

    /// The id a client is handed.
    pub fn seal(&self, ring: &Keyring) -> String {
        let keys = ring.get(self.kid).unwrap_or(ring.primary());
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source");
        let mut body = Vec::with_capacity(PLAIN_LEN + TAG_LEN);
        body.extend_from_slice(&self.sid);
        body.extend_from_slice(&self.created.to_be_bytes());
        body.extend_from_slice(&self.expires.to_be_bytes());
        body.extend_from_slice(&self.binding);
        body.push(0); // kind: an MCP session
        keys.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                aad(keys.kid),
                &mut body,
            )
            .expect("AES-GCM sealing of a small value");
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.extend_from_slice(&[VERSION, keys.kid]);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The token in `id`, if it is one of ours, under a key of `ring`, and not expired at
    /// `now`.
    pub fn open(ring: &Keyring, id: &str, now: u64) -> Result<Token, Rejection> {
        let raw = URL_SAFE_NO_PAD.decode(id).map_err(|_| Rejection::Bad)?;
        if raw.len() != SEALED_LEN || raw[0] != VERSION {
            return Err(Rejection::Bad);
        }
        let kid = raw[1];
        let keys: &Keys = ring.get(kid).ok_or(Rejection::UnknownKey)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&raw[2..2 + NONCE_LEN]).map_err(|_| Rejection::Bad)?;
        let mut body = raw[2 + NONCE_LEN..].to_vec();
        let plain = keys
            .seal
            .open_in_place(nonce, aad(kid), &mut body)
            .map_err(|_| Rejection::Bad)?;
        let u64_at = |at: usize| u64::from_be_bytes(plain[at..at + 8].try_into().expect("8"));
        let token = Token {
            sid: plain[..16].try_into().expect("16"),
            created: u64_at(16),
            expires: u64_at(24),
            binding: plain[32..48].try_into().expect("16"),
            kid,
        };
        if now >= token.expires {
            return Err(Rejection::Expired);
        }
        Ok(token)
    }
}

fn aad(kid: u8) -> Aad<[u8; 21]> {
    let mut aad = [0u8; 21];
    aad[..19].copy_from_slice(b"switchboard/session");
    aad[19] = VERSION;
    aad[20] = kid;
    Aad::from(aad)
}

/// Who a session is for: HMAC(k_bind, principal | variables)[..16], each part
/// length-prefixed. `principal` is the verified caller (API key or JWT subject) when
/// inbound auth is on.
pub fn binding(
    keys: &Keys,
    principal: Option<&str>,
    variables: &BTreeMap<String, String>,
) -> [u8; 16] {
    let mut parts: Vec<&[u8]> = vec![b"binding", principal.unwrap_or("").as_bytes()];
    for (name, value) in variables {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    keys.mac(&parts)[..16].try_into().expect("16")
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::keyring::test_ring;

    const K1: &str = "1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const K2: &str = "2=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";

    fn vars(user: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("user".to_string(), user.to_string())])
    }

    #[test]
    fn round_trip_and_visible_ascii() {
        let ring = test_ring(K1);
        let bind = binding(ring.primary(), None, &vars("alice"));
        let token = Token::new(&ring, bind, 1000, 60);
        let id = token.seal(&ring);
        assert_eq!(id.len(), 106);
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(Token::open(&ring, &id, 1000), Ok(token));
        assert_ne!(token.seal(&ring), id, "a fresh nonce each time");
        assert!(token.engine_id().starts_with("mcp-") && token.engine_id().len() == 36);
    }

    #[test]
    fn tampered_forged_and_expired_ids_are_refused() {
        let ring = test_ring(K1);
        let token = Token::new(&ring, [0; 16], 1000, 60);
        let id = token.seal(&ring);
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        for at in [0, 5, 40, raw.len() - 1] {
            raw[at] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&raw);
            assert!(Token::open(&ring, &tampered, 1000).is_err(), "byte {at}");
            raw[at] ^= 1;
        }
        assert_eq!(Token::open(&ring, "abc", 1000), Err(Rejection::Bad));
        let uuid = "7f1c2e3a-1111-4222-8333-944455556666";
        assert_eq!(Token::open(&ring, uuid, 1000), Err(Rejection::Bad));
        assert_eq!(Token::open(&ring, &id, 1059).map(|t| t.sid), Ok(token.sid));
        assert_eq!(Token::open(&ring, &id, 1060), Err(Rejection::Expired));
        // The kid byte is authenticated: moving an id to another key's id fails.
        let other = test_ring(&format!("{K2}\n{K1}"));
        raw[1] = b'2';
        assert_eq!(
            Token::open(&other, &URL_SAFE_NO_PAD.encode(&raw), 1000),
            Err(Rejection::Bad)
        );
    }

    #[test]
    fn rotation_opens_old_ids_until_their_key_is_dropped() {
        let old = test_ring(K1);
        let id = Token::new(&old, [0; 16], 1000, 60).seal(&old);
        // K2 added as secondary, then made primary: K1 ids still open.
        let added = test_ring(&format!("{K1}\n{K2}"));
        let rotated = test_ring(&format!("{K2}\n{K1}"));
        assert!(Token::open(&added, &id, 1000).is_ok());
        assert!(Token::open(&rotated, &id, 1000).is_ok());
        let new = Token::new(&rotated, [0; 16], 1000, 60);
        assert_eq!(new.kid, b'2');
        let new_id = new.seal(&rotated);
        assert!(
            Token::open(&added, &new_id, 1000).is_ok(),
            "secondary opens it"
        );
        // K1 dropped: its ids are of an unknown key.
        let dropped = test_ring(K2);
        assert_eq!(Token::open(&dropped, &id, 1000), Err(Rejection::UnknownKey));
        assert!(Token::open(&dropped, &new_id, 1000).is_ok());
    }

    #[test]
    fn bindings_differ_by_identity_and_key() {
        let ring = test_ring(&format!("{K1}\n{K2}"));
        let k1 = ring.primary();
        let alice = binding(k1, None, &vars("alice"));
        assert_eq!(alice, binding(k1, None, &vars("alice")));
        assert_ne!(alice, binding(k1, None, &vars("bob")));
        assert_ne!(alice, binding(k1, Some("jwt:alice"), &vars("alice")));
        assert_ne!(alice, binding(k1, None, &BTreeMap::new()));
        assert_ne!(
            alice,
            binding(ring.get(b'2').unwrap(), None, &vars("alice"))
        );
        // Length prefixes: ("ab","c") and ("a","bc") differ.
        let ab = BTreeMap::from([("ab".to_string(), "c".to_string())]);
        let a = BTreeMap::from([("a".to_string(), "bc".to_string())]);
        assert_ne!(binding(k1, None, &ab), binding(k1, None, &a));
    }
}
