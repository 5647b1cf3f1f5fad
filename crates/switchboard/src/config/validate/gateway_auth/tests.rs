use std::path::PathBuf;
use std::time::Duration;

use crate::config::test_support::{FILE, assert_err, problem_of, toml, toml_err};
use crate::config::{DEFAULT_JWKS_CACHE, JwksSource, UNAUTHENTICATED_FIX};

/// The SHA-256 of "test".
const TEST_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

#[test]
fn reads_api_keys_claims_and_jwt() {
    let config = toml(&format!(
        "[gateway]\nlisten = \"0.0.0.0:8080\"\n\
         [gateway.auth]\nresource = \"https://mcp.example.com/mcp\"\n\
         api_keys = {{ ci = \"{}\" }}\n\
         claims = {{ sub = \"user\", \"https://x/tenant\" = \"tenant\" }}\n\
         [gateway.auth.jwt]\njwks_file = \"keys/jwks.json\"\nissuer = \"https://idp\"\n\
         audience = \"https://mcp.example.com/mcp\"\nrequired_scopes = [\"mcp\"]\n\
         jwks_cache = \"1m\"\n",
        TEST_HASH.to_uppercase()
    ))
    .unwrap();
    let auth = config.gateway.auth.expect("auth");
    assert_eq!(
        auth.resource.as_deref(),
        Some("https://mcp.example.com/mcp")
    );
    assert_eq!(auth.api_keys["ci"].0[..2], [0x9f, 0x86]);
    assert_eq!(auth.claims["https://x/tenant"], "tenant");
    let jwt = auth.jwt.expect("jwt");
    // Relative to the config file's directory.
    assert_eq!(
        jwt.jwks,
        JwksSource::File(PathBuf::from("/etc/keys/jwks.json"))
    );
    assert_eq!(jwt.issuer, "https://idp");
    assert_eq!(jwt.required_scopes, ["mcp"]);
    assert_eq!(jwt.jwks_cache, Duration::from_secs(60));
    // The issuer is the authorization server unless said otherwise.
    assert_eq!(jwt.authorization_servers, ["https://idp"]);
}

#[test]
fn jwt_defaults() {
    let config = toml(
        "[gateway.auth.jwt]\njwks_url = \"https://idp/jwks\"\nissuer = \"https://idp\"\n\
         audience = \"mcp\"\nauthorization_servers = [\"https://as\"]\n",
    )
    .unwrap();
    let jwt = config.gateway.auth.unwrap().jwt.unwrap();
    assert_eq!(jwt.jwks, JwksSource::Url("https://idp/jwks".into()));
    assert_eq!(jwt.jwks_cache, DEFAULT_JWKS_CACHE);
    assert_eq!(jwt.authorization_servers, ["https://as"]);
    assert!(jwt.required_scopes.is_empty());
}

#[test]
fn listening_beyond_loopback_needs_auth_or_consent() {
    let err = toml_err("[gateway]\nlisten = \"0.0.0.0:8080\"\n");
    assert_err(&err, None, Some("gateway.listen"));
    assert!(problem_of(&err).contains("without authentication"), "{err}");
    assert_eq!(err.fix, UNAUTHENTICATED_FIX);
    let config =
        toml("[gateway]\nlisten = \"0.0.0.0:8080\"\nallow_unauthenticated = true\n").unwrap();
    assert!(config.gateway.allow_unauthenticated);
}

#[test]
fn refuses_what_cannot_work() {
    let jwt = "[gateway.auth.jwt]\nissuer = \"https://idp\"\naudience = \"a\"\n";
    for (doc, key, problem, fix) in [
        (
            "[gateway.auth]\napi_keys = { ci = \"my-secret-key\" }\n".to_string(),
            "gateway.auth.api_keys",
            "the API key 'ci' is not a SHA-256 hash in hex",
            "store the key's SHA-256 in hex, never the key: `printf %s",
        ),
        (
            "[gateway.auth]\nclaims = { sub = \"user\" }\n".to_string(),
            "gateway.auth.api_keys",
            "[gateway.auth] accepts no credential: it has neither api_keys nor a jwt table",
            "add api_keys",
        ),
        (
            format!(
                "[gateway]\nsession_headers = {{ \"X-User\" = \"user\" }}\n\
                 [gateway.auth]\napi_keys = {{ ci = \"{TEST_HASH}\" }}\nclaims = {{ sub = \"user\" }}\n"
            ),
            "gateway.auth.claims",
            "the variable 'user' is set both by a claim and by session_headers",
            "a header must not stand in for a verified claim",
        ),
        (
            format!(
                "[gateway.auth]\napi_keys = {{ ci = \"{TEST_HASH}\" }}\nclaims = {{ sub = \"the user\" }}\n"
            ),
            "gateway.auth.claims",
            "the claim 'sub' maps to \"the user\", which is not a variable name",
            "variable names are",
        ),
        (
            jwt.to_string(),
            "gateway.auth.jwt.jwks_url",
            "[gateway.auth.jwt] has no signing keys: neither 'jwks_url' nor 'jwks_file' is set",
            "add jwks_url",
        ),
        (
            format!("{jwt}jwks_url = \"https://idp/jwks\"\njwks_file = \"k.json\"\n"),
            "gateway.auth.jwt.jwks_url",
            "both 'jwks_file' and 'jwks_url' are set",
            "keep one",
        ),
        (
            format!("{jwt}jwks_url = \"idp/jwks\"\n"),
            "gateway.auth.jwt.jwks_url",
            "'jwks_url' has no scheme",
            "add http://",
        ),
        (
            "[gateway.auth.jwt]\njwks_url = \"https://idp/jwks\"\naudience = \"a\"\n".to_string(),
            "gateway.auth.jwt.issuer",
            "[gateway.auth.jwt] needs 'issuer'",
            "add issuer = ",
        ),
        (
            "[gateway.auth.jwt]\njwks_url = \"https://idp/jwks\"\nissuer = \"https://idp\"\n"
                .to_string(),
            "gateway.auth.jwt.audience",
            "[gateway.auth.jwt] needs 'audience'",
            "add audience = ",
        ),
        (
            format!("{jwt}jwks_url = \"https://idp/jwks\"\njwks_cache = \"often\"\n"),
            "gateway.auth.jwt.jwks_cache",
            "'jwks_cache' is not a duration: \"often\"",
            "use a duration",
        ),
        (
            format!(
                "[gateway.auth]\nresource = \"mcp.example.com\"\napi_keys = {{ ci = \"{TEST_HASH}\" }}\n"
            ),
            "gateway.auth.resource",
            "'resource' has no scheme",
            "add http://",
        ),
        (
            "[gateway.auth]\napi_key = {}\n".to_string(),
            "gateway.auth.api_key",
            "unknown key",
            "did you mean 'api_keys'?",
        ),
    ] {
        let err = toml_err(&doc);
        assert_eq!(
            err.file.as_deref(),
            Some(std::path::Path::new(FILE)),
            "{doc}"
        );
        assert_eq!(err.key.as_deref(), Some(key), "{doc}: {err}");
        assert_eq!(problem_of(&err), problem, "{doc}");
        assert!(err.fix.starts_with(fix), "{doc}: {}", err.fix);
        // The value of a key that is not a hash may be the key itself: never echoed.
        assert!(!err.to_string().contains("my-secret-key"), "{err}");
    }
}
