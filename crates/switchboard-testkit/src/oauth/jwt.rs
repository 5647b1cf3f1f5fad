//! JWTs for the test authorization server: checking a `private_key_jwt` client assertion
//! (RFC 7523: ES256 or RS256 signature, `iss` = `sub` = client id, `aud` the issuer or the
//! token endpoint, not expired) and making ES256 key pairs for test clients.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// A client's public key for `private_key_jwt`.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// P-256, as an uncompressed point (65 bytes).
    Es256(Vec<u8>),
    /// RSA, as a DER `RSAPublicKey` (PKCS#1).
    Rs256(Vec<u8>),
}

/// A fresh ES256 key pair: the private key as PKCS#8 PEM (what a client's
/// `private_key_file` holds) and the public key.
pub fn generate_es256() -> (String, PublicKey) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generate a P-256 key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .expect("read the generated key");
    let public = PublicKey::Es256(pair.public_key().as_ref().to_vec());
    (pem("PRIVATE KEY", pkcs8.as_ref()), public)
}

/// DER bytes as PEM with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A compact JWS taken apart (nothing verified yet).
pub(crate) struct Jws<'a> {
    pub header: Value,
    pub claims: Value,
    pub signature: Vec<u8>,
    /// What the signature is over: `header.claims` as sent.
    pub signed: &'a [u8],
}

impl<'a> Jws<'a> {
    pub fn parse(jws: &'a str) -> Result<Self, String> {
        let mut parts = jws.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS".into());
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "bad base64url");
        let header = serde_json::from_slice(&decode(head)?).map_err(|_| "bad JWT header")?;
        let claims = serde_json::from_slice(&decode(body)?).map_err(|_| "bad JWT claims")?;
        Ok(Jws {
            header,
            claims,
            signature: decode(sig)?,
            signed: &jws.as_bytes()[..head.len() + 1 + body.len()],
        })
    }
}

/// Checks a client assertion for `client_id` against `key`; `audiences` are the accepted
/// `aud` values. The error says what was wrong (for `error_description`).
pub fn verify_assertion(
    assertion: &str,
    key: &PublicKey,
    client_id: &str,
    audiences: &[String],
) -> Result<(), String> {
    let Jws {
        header,
        claims,
        signature,
        signed,
    } = Jws::parse(assertion)?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let checked = match (alg, key) {
        ("ES256", PublicKey::Es256(point)) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, &signature)
        }
        ("RS256", PublicKey::Rs256(der)) => {
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                .verify(signed, &signature)
        }
        _ => return Err(format!("unexpected alg {alg:?} for this client's key")),
    };
    checked.map_err(|_| "the signature does not verify")?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss and sub must be the client id".into());
    }
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => audiences.contains(aud),
        Value::Array(auds) => auds
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
        _ => false,
    };
    if !aud_ok {
        return Err("aud is not this authorization server".into());
    }
    let now = unix_now();
    match claims["exp"].as_u64() {
        Some(exp) if exp + 30 >= now => Ok(()),
        Some(_) => Err("the assertion has expired".into()),
        None => Err("the assertion has no exp".into()),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// An ES256 key that signs JWTs (the test identity provider's).
pub struct JwtSigner {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSigner")
    }
}

impl Default for JwtSigner {
    fn default() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("read the generated key");
        JwtSigner { pair }
    }
}

impl JwtSigner {
    /// A compact JWS of `claims` with header `{"alg": "ES256", "typ": typ}`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": typ});
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let signed = format!("{}.{}", encode(&header), encode(claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// The claims of `jwt` if this key signed it, it has not expired and its `aud` is one
    /// of `audiences`; its header's `typ`.
    pub fn verify(&self, jwt: &str, audiences: &[String]) -> Result<(Value, String), String> {
        let Jws {
            header,
            claims,
            signature,
            signed,
        } = Jws::parse(jwt)?;
        UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.pair.public_key().as_ref(),
        )
        .verify(signed, &signature)
        .map_err(|_| "the signature does not verify")?;
        if !claims["aud"]
            .as_str()
            .is_some_and(|aud| audiences.iter().any(|a| a == aud))
        {
            return Err("aud is not this server".into());
        }
        if claims["exp"].as_u64().is_none_or(|exp| exp < unix_now()) {
            return Err("expired".into());
        }
        let typ = header["typ"].as_str().unwrap_or_default().to_owned();
        Ok((claims, typ))
    }
}
