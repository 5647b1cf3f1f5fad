//! Records at rest (docs/scale-out-design.md b.2): AES-256-GCM under the store key, with a
//! random 96-bit nonce in front and the key name + field as associated data, so a value
//! copied under another session's key fails to open and reads as absent. Without a key the
//! record is stored as plain JSON (tests, or a deployment that accepts it).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Seals and opens values; `None` key: values pass through.
pub(crate) struct Sealer {
    key: Option<LessSafeKey>,
    random: SystemRandom,
}

/// A value that was sealed but does not open (wrong key, moved, tampered).
#[derive(Debug)]
pub(crate) struct Unopenable;

impl Sealer {
    /// `key`: an AES-256 key.
    pub(crate) fn new(key: Option<&[u8; 32]>) -> Self {
        Self {
            key: key.map(|k| {
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).expect("a 32-byte key"))
            }),
            random: SystemRandom::new(),
        }
    }

    pub(crate) fn seal(&self, aad: &str, plain: Vec<u8>) -> Vec<u8> {
        let Some(key) = &self.key else {
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
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        out
    }

    pub(crate) fn open(&self, aad: &str, stored: Vec<u8>) -> Result<Vec<u8>, Unopenable> {
        let Some(key) = &self.key else {
            return Ok(stored);
        };
        if stored.len() < NONCE_LEN {
            return Err(Unopenable);
        }
        let (nonce, body) = stored.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unopenable)?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body)
            .map_err(|_| Unopenable)?;
        Ok(plain.to_vec())
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
    fn without_a_key_values_pass_through() {
        let sealer = Sealer::new(None);
        assert_eq!(sealer.seal("k", b"v".to_vec()), b"v");
        assert_eq!(sealer.open("k", b"v".to_vec()).unwrap(), b"v");
    }
}
