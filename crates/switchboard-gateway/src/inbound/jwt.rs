//! Bearer JWTs: a JWKS's keys, and checking a compact JWS against them and the configured
//! issuer and audience (aws-lc-rs verifies; the engine signs its own assertions with it).
//!
//! Accepted: RS256/RS384/RS512 with RSA keys, ES256 (P-256) and ES384 (P-384) with EC keys;
//! a key whose JWK names an `alg` is used only for that one (no algorithm confusion), and
//! `none` or HMAC never verify. `exp` is required, `nbf` honoured, both with
//! [`LEEWAY`]; `sub` is required (it is who the caller is).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

/// How far `exp` and `nbf` may be off (clock skew between the issuer and us).
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Why a token was not accepted. Never holds any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted (RS256/384/512, ES256/384)")]
    Algorithm(String),
    #[error("no key of the key set verifies the token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has no {0}")]
    Missing(&'static str),
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
}

/// One verification key of a JWKS.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it names one.
    alg: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed point (0x04 ‖ x ‖ y) and the curve's bytes per coordinate.
    Ec {
        point: Vec<u8>,
        curve: Curve,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The verification keys of a JWKS document (`{"keys": [...]}`). Keys that cannot verify
/// signatures (encryption keys, symmetric keys, unknown curves) are left out; the error
/// says what is wrong with the document, never its content.
pub fn parse_jwks(document: &[u8]) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(document)
        .map_err(|e| format!("not a JWKS document ({})", json_problem(&e)))?;
    let b64 = |s: &Option<String>| s.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    let mut keys = Vec::new();
    for value in set.keys {
        let Ok(raw) = serde_json::from_value::<RawJwk>(value) else {
            continue;
        };
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
            ("RSA", _) => match (b64(&raw.n), b64(&raw.e)) {
                (Some(n), Some(e)) => PublicKey::Rsa { n, e },
                _ => continue,
            },
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (curve, size) = match crv {
                    "P-256" => (Curve::P256, 32),
                    _ => (Curve::P384, 48),
                };
                match (b64(&raw.x), b64(&raw.y)) {
                    (Some(x), Some(y)) if x.len() == size && y.len() == size => {
                        let mut point = vec![0x04];
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        PublicKey::Ec { point, curve }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        keys.push(Jwk {
            kid: raw.kid,
            alg: raw.alg,
            key,
        });
    }
    Ok(keys)
}

/// What is wrong with a JSON document, in words that quote none of it.
fn json_problem(error: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax | Category::Eof => "not valid JSON",
        Category::Data => "no \"keys\" array",
    }
}

/// A token split and decoded, its signature not yet checked.
pub struct Unverified<'t> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    signed: &'t [u8],
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS.
pub fn decode(token: &str) -> Result<Unverified<'_>, TokenError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: Option<String>,
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(head)?).map_err(|_| TokenError::Malformed)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&decode(body)?).map_err(|_| TokenError::Malformed)?;
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        claims,
        signed: &token.as_bytes()[..head.len() + 1 + body.len()],
        signature: decode(sig)?,
    })
}

/// Whether `alg` is one this module verifies.
pub fn accepted_alg(alg: &str) -> bool {
    matches!(alg, "RS256" | "RS384" | "RS512" | "ES256" | "ES384")
}

impl Unverified<'_> {
    /// Checks the signature with the first of `keys` that fits the token (its `kid`, else
    /// every key of the right type).
    pub fn verify(&self, keys: &[Jwk]) -> Result<(), TokenError> {
        if !accepted_alg(&self.alg) {
            return Err(TokenError::Algorithm(self.alg.clone()));
        }
        let mut fitting = keys
            .iter()
            .filter(|k| self.kid.is_none() || k.kid == self.kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == self.alg))
            .peekable();
        if fitting.peek().is_none() {
            return Err(TokenError::UnknownKey(self.kid.clone()));
        }
        let verified = fitting.any(|key| self.verify_with(key));
        verified.then_some(()).ok_or(TokenError::Signature)
    }

    fn verify_with(&self, key: &Jwk) -> bool {
        let rsa = |params: &RsaParameters, n: &[u8], e: &[u8]| {
            RsaPublicKeyComponents { n, e }
                .verify(params, self.signed, &self.signature)
                .is_ok()
        };
        let ec = |algorithm, point: &[u8]| {
            UnparsedPublicKey::new(algorithm, point)
                .verify(self.signed, &self.signature)
                .is_ok()
        };
        match (&key.key, self.alg.as_str()) {
            (PublicKey::Rsa { n, e }, "RS256") => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
            (PublicKey::Rsa { n, e }, "RS384") => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
            (PublicKey::Rsa { n, e }, "RS512") => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
            (
                PublicKey::Ec {
                    point,
                    curve: Curve::P256,
                },
                "ES256",
            ) => ec(&signature::ECDSA_P256_SHA256_FIXED, point),
            (
                PublicKey::Ec {
                    point,
                    curve: Curve::P384,
                },
                "ES384",
            ) => ec(&signature::ECDSA_P384_SHA384_FIXED, point),
            _ => false,
        }
    }
}

/// Checks the registered claims of a verified token: `exp` (required), `nbf`, `iss`,
/// `aud` (a string or an array holding `audience`), `sub` (required).
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    audience: &str,
) -> Result<(), TokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let leeway = LEEWAY.as_secs();
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(TokenError::Missing("exp"))?;
    if exp.saturating_add(leeway) < now {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64)
        && nbf > now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(TokenError::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(()),
        _ => Err(TokenError::Missing("sub")),
    }
}

/// The scopes a token grants: `scope` (space-separated) and `scp` (an array, or a
/// space-separated string).
pub fn scopes(claims: &Map<String, Value>) -> Vec<&str> {
    let mut scopes = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(text)) => scopes.extend(text.split_whitespace()),
            Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    scopes
}

#[cfg(test)]
mod tests;
