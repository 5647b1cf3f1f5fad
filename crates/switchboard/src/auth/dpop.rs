//! DPoP (RFC 9449): access tokens bound to a key of Switchboard's, so a stolen token is
//! useless without it.
//!
//! Each token cell has one ES256 (P-256) key, made when first needed, or the one stored
//! with its token (a DPoP-bound refresh token works only with the key it was issued to;
//! the key is kept in the token record, which is as private as the token). When DPoP is on
//! for an authorization server (`dpop = "auto"`, the default: its metadata lists ES256 in
//! `dpop_signing_alg_values_supported`; `"always"`; never with `"never"`), every token
//! request carries a proof (`DPoP` header: a JWT with `typ` `dpop+jwt`, the public key as
//! `jwk`, a fresh `jti`, `htm`, `htu` without query or fragment, `iat`) and a token issued
//! as `token_type` `DPoP` is then sent as `Authorization: DPoP <token>` with a fresh proof
//! per request that also carries `ath` (the token's SHA-256). A server's `DPoP-Nonce` is
//! kept (one for the authorization server, one for the resource) and put in later proofs;
//! a `use_dpop_nonce` refusal is answered by sending the request once more with it
//! (sections 8 and 9). The browser sign-in's authorization request carries the key's
//! thumbprint as `dpop_jkt` (section 10), binding the code to the key.

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Method};
use serde_json::{Value, json};

use super::store::unix_now;
use crate::config::DpopMode;
use crate::error::{AuthFailure, AuthStep};
use crate::transport::http::Proof;

/// One key pair. `Debug` shows nothing of it.
struct DpopKey {
    pair: EcdsaKeyPair,
    /// Its PKCS#8 document, base64url, as stored in the token record.
    stored: String,
    jwk: Value,
}

impl DpopKey {
    fn generate() -> Result<Self, AuthFailure> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| failure("could not make a DPoP key"))?;
        Self::from_pkcs8(document.as_ref()).ok_or_else(|| failure("could not make a DPoP key"))
    }

    fn from_stored(stored: &str) -> Option<Self> {
        Self::from_pkcs8(&URL_SAFE_NO_PAD.decode(stored).ok()?)
    }

    fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).ok()?;
        // The uncompressed point: 0x04, x, y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Some(DpopKey {
            pair,
            stored: URL_SAFE_NO_PAD.encode(der),
            jwk,
        })
    }

    /// The key's JWK thumbprint (RFC 7638: SHA-256 of the required members in order).
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap_or_default(),
            self.jwk["y"].as_str().unwrap_or_default()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest)
    }

    /// A proof for `method` on `url`, with `ath` for a resource request and the server's
    /// `nonce` when it gave one.
    fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, AuthFailure> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": without_query(url),
            "iat": unix_now(),
        });
        if let Some(token) = access_token {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(digest));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let signed = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .map_err(|_| failure("could not sign a DPoP proof"))?;
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

fn failure(why: &str) -> AuthFailure {
    AuthFailure::new(AuthStep::Token, why)
}

/// `url` without its query and fragment (`htu`, RFC 9449 section 4.2).
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// One token cell's DPoP state: its mode, key and the servers' nonces.
pub(crate) struct Dpop {
    mode: DpopMode,
    key: Mutex<Option<Arc<DpopKey>>>,
    /// The authorization server's last `DPoP-Nonce`.
    as_nonce: Mutex<Option<String>>,
    /// The resource server's last `DPoP-Nonce`.
    rs_nonce: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    pub fn new(mode: DpopMode) -> Self {
        Dpop {
            mode,
            key: Mutex::default(),
            as_nonce: Mutex::default(),
            rs_nonce: Arc::default(),
        }
    }

    /// Whether token requests to an authorization server listing `algs` carry proofs.
    /// `stored_key`: the token being refreshed is bound to a key.
    pub fn applies(&self, algs: &[String], stored_key: bool) -> bool {
        match self.mode {
            DpopMode::Never => false,
            DpopMode::Always => true,
            DpopMode::Auto => stored_key || algs.iter().any(|alg| alg == "ES256"),
        }
    }

    fn key(&self) -> Result<Arc<DpopKey>, AuthFailure> {
        let mut key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = &*key {
            return Ok(key.clone());
        }
        let made = Arc::new(DpopKey::generate()?);
        *key = Some(made.clone());
        Ok(made)
    }

    /// Uses the key a stored token is bound to (ignored when it cannot be read: the token
    /// then fails at the server, and a new sign-in binds a new key).
    pub fn use_stored_key(&self, stored: &str) {
        let current = self.key.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if current.is_some_and(|k| k.stored == stored) {
            return;
        }
        match DpopKey::from_stored(stored) {
            Some(key) => *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(key)),
            None => tracing::warn!("the stored DPoP key cannot be read; ignoring it"),
        }
    }

    /// The current key as stored with a token bound to it.
    pub fn stored_key(&self) -> Result<String, AuthFailure> {
        Ok(self.key()?.stored.clone())
    }

    /// A proof for a token request to `endpoint`.
    pub fn token_proof(&self, endpoint: &str) -> Result<String, AuthFailure> {
        let nonce = self
            .as_nonce
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.key()?.proof("POST", endpoint, None, nonce.as_deref())
    }

    /// The key's thumbprint, for the authorization request's `dpop_jkt` (RFC 9449 section
    /// 10: the code is bound to the key the token request will prove).
    pub fn thumbprint(&self) -> Result<String, AuthFailure> {
        Ok(self.key()?.thumbprint())
    }

    /// Keeps the authorization server's nonce.
    pub fn set_as_nonce(&self, nonce: &str) {
        *self.as_nonce.lock().unwrap_or_else(|p| p.into_inner()) = Some(nonce.to_owned());
    }

    /// What makes a fresh proof for each request carrying `access_token`.
    pub fn resource_proof(&self, access_token: &str) -> Result<Arc<dyn Proof>, AuthFailure> {
        Ok(Arc::new(ResourceProof {
            key: self.key()?,
            access_token: access_token.to_owned(),
            nonce: self.rs_nonce.clone(),
        }))
    }
}

/// Proofs for requests to the resource server with one DPoP-bound token.
struct ResourceProof {
    key: Arc<DpopKey>,
    access_token: String,
    nonce: Arc<Mutex<Option<String>>>,
}

impl Proof for ResourceProof {
    fn header(&self, method: &Method, url: &str) -> Option<HeaderValue> {
        let nonce = self.nonce.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let proof = self
            .key
            .proof(
                method.as_str(),
                url,
                Some(&self.access_token),
                nonce.as_deref(),
            )
            .ok()?;
        let mut value = HeaderValue::try_from(proof).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    fn nonce(&self, nonce: &str) -> bool {
        let mut kept = self.nonce.lock().unwrap_or_else(|p| p.into_inner());
        let new = kept.as_deref() != Some(nonce);
        *kept = Some(nonce.to_owned());
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(jwt: &str, index: usize) -> Value {
        let text = jwt.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn proofs_are_fresh_and_name_the_request() {
        let dpop = Dpop::new(DpopMode::Auto);
        dpop.set_as_nonce("n-1");
        let one = dpop.token_proof("https://as.example/token?x=1").unwrap();
        let two = dpop.token_proof("https://as.example/token").unwrap();
        let (header, claims) = (part(&one, 0), part(&one, 1));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(
            header["jwk"].get("d").is_none(),
            "no private key in the jwk"
        );
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://as.example/token");
        assert_eq!(claims["nonce"], "n-1");
        assert!(claims.get("ath").is_none());
        assert_ne!(claims["jti"], part(&two, 1)["jti"]);
        // The same key signs every proof, and a stored key comes back as the same key.
        assert_eq!(header["jwk"], part(&two, 0)["jwk"]);
        let again = Dpop::new(DpopMode::Auto);
        again.use_stored_key(&dpop.stored_key().unwrap());
        assert_eq!(
            part(&again.token_proof("x").unwrap(), 0)["jwk"],
            header["jwk"]
        );
    }

    #[test]
    fn resource_proofs_carry_the_token_hash_and_the_servers_nonce() {
        let dpop = Dpop::new(DpopMode::Auto);
        let proof = dpop.resource_proof("token-1").unwrap();
        let first = proof.header(&Method::POST, "http://rs/mcp").unwrap();
        let claims = part(first.to_str().unwrap(), 1);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"token-1");
        assert_eq!(claims["ath"], URL_SAFE_NO_PAD.encode(digest));
        assert_eq!(claims["htm"], "POST");
        assert!(claims.get("nonce").is_none());
        assert!(proof.nonce("rs-n"));
        assert!(!proof.nonce("rs-n"), "the same nonce again is not new");
        let second = proof.header(&Method::GET, "http://rs/mcp").unwrap();
        assert_eq!(part(second.to_str().unwrap(), 1)["nonce"], "rs-n");
    }

    #[test]
    fn modes() {
        let es256 = ["ES256".to_string()];
        assert!(Dpop::new(DpopMode::Auto).applies(&es256, false));
        assert!(!Dpop::new(DpopMode::Auto).applies(&[], false));
        assert!(Dpop::new(DpopMode::Auto).applies(&[], true));
        assert!(Dpop::new(DpopMode::Always).applies(&[], false));
        assert!(!Dpop::new(DpopMode::Never).applies(&es256, true));
    }
}
