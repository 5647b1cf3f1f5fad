//! DPoP (RFC 9449) on the test servers: checking a proof (`typ` `dpop+jwt`, ES256 with its
//! public key as `jwk`, `jti`, `htm`, `htu`, `iat` within five minutes, `ath` for a
//! resource request, the server's nonce when [`DpopKnob::RequireNonce`]). The token
//! endpoint binds a token to the proof's key (and a code authorized with `dpop_jkt` is
//! exchanged only with a proof by that key) ([`AuthServerHandle`] keeps it with the
//! token); the protected resource then wants `Authorization: DPoP` with a proof by that key.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::jwt::Jws;

/// Whether the test authorization server takes DPoP proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpopKnob {
    /// Not advertised; a proof is ignored and tokens are Bearer.
    #[default]
    Off,
    /// Advertised (`dpop_signing_alg_values_supported: ["ES256"]`): a token request with a
    /// valid proof gets a `DPoP` token bound to its key.
    On,
    /// As `On`, and every proof (at the token endpoint and at the resource) must carry the
    /// server's nonce: without it, `use_dpop_nonce` and a `DPoP-Nonce` header.
    RequireNonce,
}

/// The nonce the token endpoint hands out.
pub const AS_NONCE: &str = "testkit-as-nonce";
/// The nonce the protected resource hands out.
pub const RS_NONCE: &str = "testkit-rs-nonce";

/// The JWK thumbprint (RFC 7638) of a P-256 public key (an uncompressed point).
pub(crate) fn thumbprint(point: &[u8]) -> String {
    let coordinate = |range: std::ops::Range<usize>| URL_SAFE_NO_PAD.encode(&point[range]);
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        coordinate(1..33),
        coordinate(33..65)
    );
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// A checked proof: the key (P-256 point) that signed it and the nonce it carried.
pub(crate) struct Checked {
    pub key: Vec<u8>,
    pub nonce: Option<String>,
}

/// Checks `proof` for a `method` request to `url` (carrying `access_token`, for a resource
/// request). The error says what is wrong.
pub(crate) fn check(
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<Checked, String> {
    let Jws {
        header,
        claims,
        signature,
        signed,
    } = Jws::parse(proof)?;
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" {
        return Err("typ must be dpop+jwt and alg ES256".into());
    }
    let jwk = &header["jwk"];
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk.get("d").is_some() {
        return Err("jwk must be a public P-256 key".into());
    }
    let coordinate = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .filter(|v| v.len() == 32)
            .ok_or("bad jwk coordinate")
    };
    let mut key = vec![4];
    key.extend(coordinate("x")?);
    key.extend(coordinate("y")?);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &key)
        .verify(signed, &signature)
        .map_err(|_| "the proof's signature does not verify")?;
    if !claims["jti"].is_string() {
        return Err("no jti".into());
    }
    if claims["htm"] != method || claims["htu"] != url {
        return Err(format!("htm/htu must be {method} {url}"));
    }
    let now = super::jwt::unix_now();
    if claims["iat"]
        .as_u64()
        .is_none_or(|iat| iat.abs_diff(now) > 300)
    {
        return Err("iat is not now".into());
    }
    if let Some(token) = access_token {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        if claims["ath"] != URL_SAFE_NO_PAD.encode(digest) {
            return Err("ath is not the token's hash".into());
        }
    }
    Ok(Checked {
        key,
        nonce: claims["nonce"].as_str().map(String::from),
    })
}
