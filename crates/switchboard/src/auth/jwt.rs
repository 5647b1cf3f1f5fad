//! `private_key_jwt` client assertions (RFC 7523 section 2.2), signed with aws-lc-rs:
//! ES256 (P-256) or RS256 from a PKCS#8 PEM key file, whichever the key is.
//!
//! Why aws-lc-rs and not rmcp's `auth-client-credentials-jwt` feature (jsonwebtoken): it is
//! already in the tree through rustls with the same features, so signing costs no new
//! crate, while jsonwebtoken would add it and its dependencies for one signature; and
//! rmcp's client-credentials path (which that feature serves) neither caches nor exchanges
//! again, so we do not use it (see `machine.rs`).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::store::unix_now;

/// How long an assertion is valid.
const LIFETIME_SECS: u64 = 300;

/// A private key read from a PEM file.
pub(crate) enum SigningKey {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl SigningKey {
    /// Reads a PKCS#8 PEM key (`-----BEGIN PRIVATE KEY-----`). The error never holds key
    /// material.
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("-----") && !line.is_empty())
            .collect();
        if !pem.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(
                "the key file is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); \
                 convert it with `openssl pkcs8 -topk8 -nocrypt`"
                    .into(),
            );
        }
        let der = STANDARD
            .decode(body)
            .map_err(|_| "the key file's PEM body is not valid base64".to_string())?;
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der) {
            return Ok(SigningKey::Es256(key));
        }
        if let Ok(key) = RsaKeyPair::from_pkcs8(&der) {
            return Ok(SigningKey::Rs256(key));
        }
        Err("the key is neither a P-256 (ES256) nor an RSA (RS256) private key".into())
    }

    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Es256(_) => "ES256",
            SigningKey::Rs256(_) => "RS256",
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Es256(key) => key
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "signing failed".into()),
            SigningKey::Rs256(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| "signing failed".to_string())?;
                Ok(signature)
            }
        }
    }
}

/// A client assertion for `client_id` addressed to `audience` (the authorization server's
/// issuer): `iss` = `sub` = the client id, `iat`, `exp` 5 minutes on, a fresh `jti`.
pub(crate) fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
) -> Result<String, String> {
    let now = unix_now();
    let header = json!({"alg": key.alg(), "typ": "JWT"});
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + LIFETIME_SECS,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let signed = format!("{}.{}", encode(&header), encode(&claims));
    let signature = key.sign(signed.as_bytes())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
