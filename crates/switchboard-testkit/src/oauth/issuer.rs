//! `TokenIssuer`: an identity provider's signing keys for tests of JWT verification (the
//! gateway's inbound auth). It signs access tokens (ES256 and RS256), gives its public
//! keys as a JWKS document, serves that document over HTTP on 127.0.0.1 (counting the
//! fetches), and can rotate to a new key, as a real provider does.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::ServerTask;

/// An algorithm the issuer signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
}

struct Keys {
    /// (kid, key) in the order they were made; the last of each kind signs.
    ec: Vec<(String, EcdsaKeyPair)>,
    rsa: Vec<(String, RsaKeyPair)>,
    /// Kids left out of the JWKS (rotated in but not published yet).
    unpublished: Vec<String>,
}

/// Signing keys and the JWKS that publishes them. Cheap to clone (shared).
#[derive(Clone)]
pub struct TokenIssuer {
    /// The `iss` of the tokens it signs.
    pub issuer: String,
    keys: Arc<Mutex<Keys>>,
    fetches: Arc<AtomicUsize>,
}

impl TokenIssuer {
    /// An issuer named `issuer` with one ES256 and one RS256 key.
    pub fn new(issuer: &str) -> TokenIssuer {
        let keys = Keys {
            ec: vec![("ec-1".into(), new_ec())],
            rsa: vec![("rsa-1".into(), new_rsa())],
            unpublished: Vec::new(),
        };
        TokenIssuer {
            issuer: issuer.to_string(),
            keys: Arc::new(Mutex::new(keys)),
            fetches: Arc::default(),
        }
    }

    /// The JWKS document of every published key.
    pub fn jwks(&self) -> Value {
        let keys = self.keys.lock().unwrap();
        let mut set = Vec::new();
        for (kid, pair) in keys
            .ec
            .iter()
            .filter(|(k, _)| !keys.unpublished.contains(k))
        {
            let point = pair.public_key().as_ref();
            set.push(json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }));
        }
        for (kid, pair) in keys
            .rsa
            .iter()
            .filter(|(k, _)| !keys.unpublished.contains(k))
        {
            let (n, e) = rsa_components(pair.public_key().as_ref());
            set.push(json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(n),
                "e": URL_SAFE_NO_PAD.encode(e),
            }));
        }
        json!({ "keys": set })
    }

    /// A new ES256 key that signs from now on, left out of the JWKS until
    /// [`TokenIssuer::publish`] (a token signed with it names a kid the JWKS lacks).
    pub fn rotate(&self) -> String {
        let mut keys = self.keys.lock().unwrap();
        let kid = format!("ec-{}", keys.ec.len() + 1);
        keys.ec.push((kid.clone(), new_ec()));
        keys.unpublished.push(kid.clone());
        kid
    }

    /// Publishes every key in the JWKS.
    pub fn publish(&self) {
        self.keys.lock().unwrap().unpublished.clear();
    }

    /// A signed token with `claims` (as given: add `exp`, `aud`, ... yourself or use
    /// [`TokenIssuer::access_token`]).
    pub fn sign(&self, alg: Alg, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        let rng = SystemRandom::new();
        let (kid, name) = match alg {
            Alg::Es256 => (&keys.ec.last().unwrap().0, "ES256"),
            Alg::Rs256 => (&keys.rsa.last().unwrap().0, "RS256"),
        };
        let header = json!({ "alg": name, "typ": "at+jwt", "kid": kid });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match alg {
            Alg::Es256 => {
                let pair = &keys.ec.last().unwrap().1;
                pair.sign(&rng, signed.as_bytes())
                    .expect("ES256 signs")
                    .as_ref()
                    .to_vec()
            }
            Alg::Rs256 => {
                let pair = &keys.rsa.last().unwrap().1;
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut out)
                    .expect("RS256 signs");
                out
            }
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// An access token for `sub` and `audience`, valid for 5 minutes, granting `scope`,
    /// with any `extra` claims.
    pub fn access_token(
        &self,
        alg: Alg,
        sub: &str,
        audience: &str,
        scope: &str,
        extra: Value,
    ) -> String {
        let mut claims = json!({
            "iss": self.issuer, "sub": sub, "aud": audience, "scope": scope,
            "iat": now(), "exp": now() + 300,
        });
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        self.sign(alg, &claims)
    }

    /// How many times the served JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Serves the JWKS at `http://127.0.0.1:PORT/jwks.json` until the handle drops.
    pub async fn serve_jwks(&self) -> std::io::Result<JwksServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let issuer = self.clone();
        let router = Router::new().route(
            "/jwks.json",
            get(move || {
                let issuer = issuer.clone();
                async move {
                    issuer.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(issuer.jwks())
                }
            }),
        );
        let task = ServerTask::spawn(listener, router, CancellationToken::new(), "jwks server");
        Ok(JwksServer { addr, _task: task })
    }
}

/// A served JWKS (see [`TokenIssuer::serve_jwks`]).
pub struct JwksServer {
    pub addr: SocketAddr,
    _task: ServerTask,
}

impl JwksServer {
    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn new_ec() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generate a P-256 key");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .expect("read the generated key")
}

fn new_rsa() -> RsaKeyPair {
    RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key")
}

/// `n` and `e` of a DER `RSAPublicKey` (PKCS#1: SEQUENCE { INTEGER n, INTEGER e }), without
/// leading zeros.
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    /// One DER element at `at`: (tag, content, the index after it).
    fn element(der: &[u8], at: usize) -> (u8, &[u8], usize) {
        let tag = der[at];
        let (len, start) = match der[at + 1] {
            short if short < 0x80 => (short as usize, at + 2),
            long => {
                let bytes = (long & 0x7f) as usize;
                let len = der[at + 2..at + 2 + bytes]
                    .iter()
                    .fold(0usize, |n, b| (n << 8) | *b as usize);
                (len, at + 2 + bytes)
            }
        };
        (tag, &der[start..start + len], start + len)
    }
    let (sequence, body, _) = element(der, 0);
    assert_eq!(sequence, 0x30, "an RSAPublicKey is a SEQUENCE");
    let (_, n, next) = element(body, 0);
    let (_, e, _) = element(body, next);
    let strip = |int: &[u8]| int.iter().skip_while(|b| **b == 0).copied().collect();
    (strip(n), strip(e))
}
