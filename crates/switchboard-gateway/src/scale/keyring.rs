//! The keyring (docs/scale-out-design.md a.3): a file of lines `kid=<base64 of 32 bytes>`,
//! `kid` one of `0-9a-z`, the first line the primary key (it seals new session ids; the
//! others only open ids sealed before a rotation). Blank lines and `#` comments are
//! skipped. Each master key gives three keys by HKDF-SHA256, derived once at start:
//! `k_seal` (session ids), `k_bind` (identity bindings, Redis key names, `vars-` ids) and
//! `k_store` (values at rest in Redis). A bad file refuses to start with a message naming
//! the file and line, never a key.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The keys derived from one master key.
pub struct Keys {
    /// The key id, as written (one byte, `0-9a-z`).
    pub kid: u8,
    pub(super) seal: LessSafeKey,
    pub(super) bind: hmac::Key,
    /// `k_bind` as bytes (the Redis store keys its names with it).
    pub bind_bytes: [u8; 32],
    /// `k_store`: AES-256 key for records at rest.
    pub store: [u8; 32],
    /// HMAC key of the `requestState` handed to 2026-07-28 clients (`mcp/modern.rs`), so a
    /// retry may reach any replica.
    pub request_state: [u8; 32],
}

/// Every key, the primary first.
pub struct Keyring {
    keys: Vec<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: String = self.keys.iter().map(|k| k.kid as char).collect();
        f.debug_struct("Keyring").field("kids", &kids).finish()
    }
}

/// The keyring file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read the keyring {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}; {fix}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
        fix: &'static str,
    },
    #[error("the keyring {} has no keys; {fix}", path.display())]
    Empty { path: PathBuf, fix: &'static str },
}

const LINE_FIX: &str = "write each key as kid=<base64 of 32 random bytes>, kid one of 0-9 a-z, \
                        e.g. made with: echo \"1=$(head -c 32 /dev/urandom | base64)\"";

impl Keyring {
    /// Reads and checks the keyring file at `path`.
    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Keyring::parse(&text, path)
    }

    /// Parses a keyring's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<Keys> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: &str| KeyringError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                problem: problem.to_string(),
                fix: LINE_FIX,
            };
            let Some((kid, key)) = line.split_once('=') else {
                return Err(bad("not kid=key"));
            };
            let kid = match kid.trim().as_bytes() {
                [k] if k.is_ascii_digit() || k.is_ascii_lowercase() => *k,
                _ => return Err(bad("the key id must be one character, 0-9 or a-z")),
            };
            if keys.iter().any(|k| k.kid == kid) {
                return Err(bad("this key id is used by an earlier line"));
            }
            let key = key.trim();
            let master = STANDARD
                .decode(key)
                .or_else(|_| STANDARD_NO_PAD.decode(key))
                .map_err(|_| bad("the key is not base64"))?;
            let master: [u8; 32] = master
                .try_into()
                .map_err(|_| bad("the key is not 32 bytes long"))?;
            keys.push(Keys::derive(kid, &master));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty {
                path: path.to_path_buf(),
                fix: LINE_FIX,
            });
        }
        Ok(Keyring { keys })
    }

    /// The key new ids are sealed with.
    pub fn primary(&self) -> &Keys {
        &self.keys[0]
    }

    /// Every key but the primary (they open ids and values, never seal).
    pub fn secondaries(&self) -> impl Iterator<Item = &Keys> {
        self.keys.iter().skip(1)
    }

    /// The key with id `kid`, if the ring has it.
    pub fn get(&self, kid: u8) -> Option<&Keys> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// A 32-byte HKDF output.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl Keys {
    fn derive(kid: u8, master: &[u8; 32]) -> Keys {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"switchboard/keyring/v1").extract(master);
        let derive = |purpose: &[u8]| {
            let info = [purpose];
            let mut out = [0u8; 32];
            prk.expand(&info, Len32)
                .and_then(|okm| okm.fill(&mut out))
                .expect("HKDF of 32 bytes");
            out
        };
        let seal = derive(b"seal");
        let bind_bytes = derive(b"bind");
        Keys {
            kid,
            seal: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &seal).expect("a 32-byte key")),
            bind: hmac::Key::new(hmac::HMAC_SHA256, &bind_bytes),
            bind_bytes,
            store: derive(b"store"),
            request_state: derive(b"request-state"),
        }
    }

    /// HMAC-SHA-256 of `parts` (each length-prefixed) under `k_bind`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.bind);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context
            .sign()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }
}

#[cfg(test)]
pub(crate) fn test_ring(text: &str) -> Keyring {
    Keyring::parse(text, Path::new("keys")).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const K2: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";

    #[test]
    fn the_first_line_is_primary_and_keys_differ_by_purpose() {
        let ring = test_ring(&format!("# rotation\n\n2={K2}\n1={K1}\n"));
        assert_eq!(ring.primary().kid, b'2');
        assert!(ring.get(b'1').is_some() && ring.get(b'3').is_none());
        let k = ring.primary();
        assert_ne!(k.bind_bytes, k.store);
        assert_ne!(ring.get(b'1').unwrap().store, k.store);
        assert_eq!(format!("{ring:?}"), "Keyring { kids: \"21\" }");
    }

    #[test]
    fn bad_lines_are_named_without_the_key() {
        let path = Path::new("/run/keys");
        let short = Keyring::parse(&format!("1={K1}\n2=c2hvcnQ=\n"), path).unwrap_err();
        let text = short.to_string();
        assert!(
            text.starts_with("/run/keys:2: the key is not 32 bytes"),
            "{text}"
        );
        assert!(!text.contains("c2hvcnQ"), "{text}");
        let kid = Keyring::parse(&format!("AB={K1}\n"), path).unwrap_err();
        assert!(kid.to_string().contains(":1: the key id"), "{kid}");
        let dup = Keyring::parse(&format!("1={K1}\n1={K2}\n"), path).unwrap_err();
        assert!(dup.to_string().contains(":2: this key id is used"), "{dup}");
        let garbage = Keyring::parse("1=not base64!!\n", path).unwrap_err();
        assert!(garbage.to_string().contains("not base64"), "{garbage}");
        assert!(!garbage.to_string().contains("!!"), "{garbage}");
        let none = Keyring::parse("# nothing\n", path).unwrap_err();
        assert!(none.to_string().contains("has no keys"), "{none}");
    }
}
