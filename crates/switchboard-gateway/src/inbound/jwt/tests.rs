use serde_json::json;
use switchboard_testkit::oauth::issuer::now;
use switchboard_testkit::oauth::{Alg, TokenIssuer};

use super::*;

const ISS: &str = "https://idp.test";
const AUD: &str = "https://mcp.test/mcp";

fn keys(issuer: &TokenIssuer) -> Vec<Jwk> {
    parse_jwks(issuer.jwks().to_string().as_bytes()).expect("a JWKS")
}

fn check(issuer: &TokenIssuer, token: &str) -> Result<(), TokenError> {
    let token = decode(token)?;
    token.verify(&keys(issuer))?;
    check_claims(&token.claims, ISS, AUD)
}

#[test]
fn es256_and_rs256_tokens_verify() {
    let issuer = TokenIssuer::new(ISS);
    assert_eq!(keys(&issuer).len(), 2);
    for alg in [Alg::Es256, Alg::Rs256] {
        let token = issuer.access_token(alg, "alice", AUD, "mcp", json!({}));
        assert_eq!(check(&issuer, &token), Ok(()), "{alg:?}");
    }
}

#[test]
fn another_issuers_signature_does_not_verify() {
    let (ours, theirs) = (TokenIssuer::new(ISS), TokenIssuer::new(ISS));
    let token = theirs.access_token(Alg::Es256, "alice", AUD, "", json!({}));
    assert_eq!(check(&ours, &token), Err(TokenError::Signature));
    // A kid the set lacks.
    let kid = theirs.rotate();
    let token = theirs.access_token(Alg::Es256, "alice", AUD, "", json!({}));
    assert_eq!(check(&ours, &token), Err(TokenError::UnknownKey(Some(kid))));
}

#[test]
fn tampered_claims_do_not_verify() {
    let issuer = TokenIssuer::new(ISS);
    let token = issuer.access_token(Alg::Rs256, "alice", AUD, "", json!({}));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = json!({"iss": ISS, "sub": "admin", "aud": AUD, "exp": now() + 60});
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert_eq!(check(&issuer, &parts.join(".")), Err(TokenError::Signature));
}

#[test]
fn unsigned_and_hmac_tokens_are_refused() {
    let issuer = TokenIssuer::new(ISS);
    let claims = URL_SAFE_NO_PAD.encode(json!({"iss": ISS, "sub": "a", "aud": AUD}).to_string());
    for alg in ["none", "HS256"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string());
        let token = format!("{header}.{claims}.");
        assert_eq!(
            check(&issuer, &token),
            Err(TokenError::Algorithm(alg.into()))
        );
    }
    assert_eq!(check(&issuer, "not.a-token"), Err(TokenError::Malformed));
}

#[test]
fn registered_claims_are_checked() {
    let issuer = TokenIssuer::new(ISS);
    let sign = |claims: serde_json::Value| issuer.sign(Alg::Es256, &claims);
    let base = || json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": now() + 60});
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = base();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = base();
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    let leeway = LEEWAY.as_secs();
    for (claims, expected) in [
        (base(), Ok(())),
        (with("aud", json!(["other", AUD])), Ok(())),
        // Within the leeway.
        (with("exp", json!(now() - leeway / 2)), Ok(())),
        (
            with("exp", json!(now() - leeway - 5)),
            Err(TokenError::Expired),
        ),
        (
            with("nbf", json!(now() + leeway + 60)),
            Err(TokenError::NotYetValid),
        ),
        (
            with("iss", json!("https://evil.test")),
            Err(TokenError::Issuer),
        ),
        (
            with("aud", json!("https://other.test/mcp")),
            Err(TokenError::Audience),
        ),
        (without("exp"), Err(TokenError::Missing("exp"))),
        (without("sub"), Err(TokenError::Missing("sub"))),
    ] {
        let token = sign(claims.clone());
        assert_eq!(check(&issuer, &token), expected, "{claims}");
    }
}

#[test]
fn scopes_come_from_scope_or_scp() {
    let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
    assert_eq!(scopes(&claims(json!({"scope": "a b"}))), ["a", "b"]);
    assert_eq!(scopes(&claims(json!({"scp": ["a", "b"]}))), ["a", "b"]);
    assert_eq!(scopes(&claims(json!({"scp": "a"}))), ["a"]);
    assert!(scopes(&claims(json!({}))).is_empty());
}

#[test]
fn jwks_documents_keep_only_signing_keys() {
    let document = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "ok", "n": "AQAB", "e": "AQAB"},
    ]});
    let keys = parse_jwks(document.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("ok"));
    assert_eq!(
        parse_jwks(b"{}").unwrap_err(),
        "not a JWKS document (no \"keys\" array)"
    );
    assert_eq!(
        parse_jwks(b"<html>").unwrap_err(),
        "not a JWKS document (not valid JSON)"
    );
}
