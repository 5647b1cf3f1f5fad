//! Records at rest (docs/scale-out-design.md b.2): AES-256-GCM under the store key, stored
//! as `kid (1 byte) | nonce (12) | ciphertext | tag`, with a random 96-bit nonce and the
//! key name (+ field) as associated data, so a value copied under another session's or
//! user's key fails to open and reads as absent. Without a key the record is stored as
//! plain JSON (tests, or a deployment that accepts it).
//!
//! Rotation (a.3's three steps, for `k_store`): values are sealed under the primary key
//! and opened under whichever key their `kid` names, primary or secondary. (1) Add K2 as a
//! secondary on every replica; (2) make K2 primary and K1 secondary: new writes use K2,
//! old values still open; (3) once nothing is under K1 (`RedisSharedSessions::rekey` and
//! `RedisTokenStore::rekey`, i.e. `switchboard rekey`, or the values' TTLs), drop K1: what
//! is still under it reads as absent. Key names rotate too (`keys.rs`).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::{RedisOptions, RedisSetupError};

/// Seals and opens values; no keys: values pass through.
pub(crate) struct Sealer {
    /// The key that seals, with its id.
    primary: Option<(u8, LessSafeKey)>,
    /// Keys that only open.
    secondary: Vec<(u8, LessSafeKey)>,
    random: SystemRandom,
}

/// A value that was sealed but does not open (unknown key id, wrong key, moved, tampered).
#[derive(Debug)]
pub(crate) struct Unopenable;

fn aes(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"))
}

impl Sealer {
    /// `key`: an AES-256 key, id `0`, alone.
    #[cfg(test)]
    pub(crate) fn new(key: Option<&[u8; 32]>) -> Self {
        Self {
            primary: key.map(|k| (b'0', aes(k))),
            secondary: Vec::new(),
            random: SystemRandom::new(),
        }
    }

    /// The sealer `options` describe: `store_key` under `store_key_id`, and
    /// `secondary_store_keys`. Key ids are one of `[0-9a-z]`, each used once.
    pub(crate) fn from_options(options: &RedisOptions) -> Result<Self, RedisSetupError> {
        let bad = |why: String| Err(RedisSetupError::BadOptions(why));
        let Some(key) = &options.store_key else {
            if !options.secondary_store_keys.is_empty() {
                return bad("secondary_store_keys need a store_key (the key that seals)".into());
            }
            return Ok(Self {
                primary: None,
                secondary: Vec::new(),
                random: SystemRandom::new(),
            });
        };
        let mut ids = vec![options.store_key_id];
        ids.extend(options.secondary_store_keys.iter().map(|(id, _)| *id));
        for (n, id) in ids.iter().enumerate() {
            if !(id.is_ascii_digit() || id.is_ascii_lowercase()) {
                return bad(format!("store key id `{id}` is not one of 0-9, a-z"));
            }
            if ids[..n].contains(id) {
                return bad(format!("store key id `{id}` is given twice"));
            }
        }
        Ok(Self {
            primary: Some((options.store_key_id as u8, aes(key))),
            secondary: (options.secondary_store_keys.iter())
                .map(|(id, key)| (*id as u8, aes(key)))
                .collect(),
            random: SystemRandom::new(),
        })
    }

    pub(crate) fn seal(&self, aad: &str, plain: Vec<u8>) -> Vec<u8> {
        let Some((id, key)) = &self.primary else {
            return plain;
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system random source");
        let mut body = plain;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut body,
        )
        .expect("AES-GCM sealing of a small value");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(*id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    pub(crate) fn open(&self, aad: &str, stored: Vec<u8>) -> Result<Vec<u8>, Unopenable> {
        let Some(primary) = &self.primary else {
            return Ok(stored);
        };
        let (&id, rest) = stored.split_first().ok_or(Unopenable)?;
        let key = std::iter::once(primary)
            .chain(&self.secondary)
            .find(|(kid, _)| *kid == id)
            .map(|(_, key)| key)
            .ok_or(Unopenable)?;
        if rest.len() < NONCE_LEN {
            return Err(Unopenable);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unopenable)?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body)
            .map_err(|_| Unopenable)?;
        Ok(plain.to_vec())
    }

    /// Whether `stored` is sealed under another key than the primary (a rekey re-seals it).
    pub(crate) fn is_under_old_key(&self, stored: &[u8]) -> bool {
        match (&self.primary, stored.first()) {
            (Some((primary, _)), Some(id)) => id != primary,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_own_name() {
        let sealer = Sealer::new(Some(&[7; 32]));
        let sealed = sealer.seal("sb:v1:s:{a}/up:kit", b"session-secret".to_vec());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let opened = sealer.open("sb:v1:s:{a}/up:kit", sealed.clone()).unwrap();
        assert_eq!(opened, b"session-secret");
        assert!(sealer.open("sb:v1:s:{b}/up:kit", sealed.clone()).is_err());
        assert!(
            Sealer::new(Some(&[8; 32]))
                .open("sb:v1:s:{a}/up:kit", sealed)
                .is_err()
        );
    }

    #[test]
    fn values_open_under_the_key_their_id_names_until_it_is_dropped() {
        let options = |primary: char, key: u8, secondary: Vec<(char, [u8; 32])>| RedisOptions {
            store_key: Some([key; 32]),
            store_key_id: primary,
            secondary_store_keys: secondary,
            ..RedisOptions::default()
        };
        let k1 = Sealer::from_options(&options('1', 1, vec![])).unwrap();
        let old = k1.seal("name", b"value".to_vec());
        assert_eq!(old[0], b'1');
        // Step 1: K2 added as a secondary; K1 still seals.
        let step1 = Sealer::from_options(&options('1', 1, vec![('2', [2; 32])])).unwrap();
        assert_eq!(step1.open("name", old.clone()).unwrap(), b"value");
        // Step 2: K2 primary, K1 secondary: new values under K2, old ones still open.
        let step2 = Sealer::from_options(&options('2', 2, vec![('1', [1; 32])])).unwrap();
        let new = step2.seal("name", b"value".to_vec());
        assert_eq!(new[0], b'2');
        assert!(step2.is_under_old_key(&old) && !step2.is_under_old_key(&new));
        assert_eq!(step2.open("name", old.clone()).unwrap(), b"value");
        assert_eq!(step1.open("name", new.clone()).unwrap(), b"value");
        // Step 3: K1 dropped: what is still under it opens no more.
        let step3 = Sealer::from_options(&options('2', 2, vec![])).unwrap();
        assert!(step3.open("name", old).is_err());
        assert_eq!(step3.open("name", new).unwrap(), b"value");
        // A key id claiming another key does not open with it.
        let mut forged = k1.seal("name", b"value".to_vec());
        forged[0] = b'2';
        assert!(step2.open("name", forged).is_err());
    }

    #[test]
    fn bad_key_ids_are_refused() {
        for (primary, secondary) in [
            ('A', vec![]),
            ('1', vec![('1', [2; 32])]),
            ('1', vec![('-', [2; 32])]),
        ] {
            let options = RedisOptions {
                store_key: Some([1; 32]),
                store_key_id: primary,
                secondary_store_keys: secondary,
                ..RedisOptions::default()
            };
            assert!(Sealer::from_options(&options).is_err(), "{primary}");
        }
        let no_primary = RedisOptions {
            secondary_store_keys: vec![('1', [2; 32])],
            ..RedisOptions::default()
        };
        assert!(Sealer::from_options(&no_primary).is_err());
    }

    #[test]
    fn without_a_key_values_pass_through() {
        let sealer = Sealer::new(None);
        assert_eq!(sealer.seal("k", b"v".to_vec()), b"v");
        assert_eq!(sealer.open("k", b"v".to_vec()).unwrap(), b"v");
    }
}
