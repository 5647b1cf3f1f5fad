//! `[servers.NAME.auth]`: what is read, and the errors for what does not fit.

use std::time::Duration;

use crate::config::test_support::Text::{Has, Starts};
use crate::config::test_support::{toml, toml_err_says};
use crate::config::*;

const URL: &str = "[servers.api]\nurl = \"https://api.example.com/mcp\"\n";

fn with_auth(keys: &str) -> String {
    format!("{URL}[servers.api.auth]\n{keys}\n")
}

/// Each (keys, the key blamed, the problem's start, part of the fix) case fails so.
fn each_says(cases: &[(&str, &str, &'static str, &'static str)]) {
    for (keys, key, problem, fix) in cases {
        toml_err_says(
            &with_auth(keys),
            (Some("api"), Some(key), None),
            Starts(problem),
            Has(fix),
        );
    }
}

#[test]
fn client_credentials_table_is_read() {
    let config = toml(&with_auth(
        r#"kind = "client_credentials"
client_id = "bot"
client_secret = "${env:BOT_SECRET}"
scopes = ["read", "write"]
refresh_before = "5m"
token_endpoint_auth_method = "client_secret_post"
token_url = "https://login.example.com/token"
principal = "ci""#,
    ))
    .unwrap();
    let auth = config.servers["api"].auth.clone().unwrap();
    assert_eq!(auth.kind, AuthKind::ClientCredentials);
    assert_eq!(auth.client_id.as_deref(), Some("bot"));
    assert_eq!(
        auth.client_secret.as_ref().map(Secret::expose_template),
        Some("${env:BOT_SECRET}")
    );
    assert_eq!(auth.scopes, ["read", "write"]);
    assert_eq!(auth.refresh_before, Duration::from_secs(300));
    assert_eq!(
        auth.token_endpoint_auth_method,
        Some(TokenAuthMethod::ClientSecretPost)
    );
    assert_eq!(auth.principal, "ci");
    // The secret never shows in the config's Debug.
    assert!(!format!("{config:?}").contains("BOT_SECRET"));
}

#[test]
fn defaults_and_absent_table() {
    let config = toml(&with_auth(
        "client_metadata_url = \"https://e.example/c.json\"\nredirect_port = 8765",
    ))
    .unwrap();
    let auth = config.servers["api"].auth.clone().unwrap();
    assert_eq!(auth.kind, AuthKind::Auto);
    assert_eq!(auth.refresh_before, DEFAULT_REFRESH_BEFORE);
    assert_eq!(auth.principal, SHARED_PRINCIPAL);
    assert_eq!(auth.redirect_port, Some(8765));
    assert_eq!(toml(URL).unwrap().servers["api"].auth, None);
    // JSON servers work as before, with no auth table.
    let json = Config::from_json_str(
        r#"{"mcpServers": {"a": {"url": "http://127.0.0.1:1/mcp"}}}"#,
        None,
    )
    .unwrap();
    assert_eq!(json.servers["a"].auth, None);
}

#[test]
fn private_key_file_is_resolved_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let file = dir.path().join("switchboard.toml");
    let text = with_auth(
        "kind = \"client_credentials\"\nclient_id = \"bot\"\nprivate_key_file = \"key.pem\"",
    );
    let config = Config::from_toml_str(&text, Some(&file)).unwrap();
    let auth = config.servers["api"].auth.clone().unwrap();
    assert_eq!(auth.private_key_file, Some(dir.path().join("key.pem")));

    toml_err_says(
        &with_auth(
            "kind = \"client_credentials\"\nclient_id = \"bot\"\nprivate_key_file = \"/nonexistent/key.pem\"",
        ),
        (Some("api"), Some("auth.private_key_file"), None),
        Starts("'private_key_file' cannot be read: /nonexistent/key.pem"),
        Has("relative paths start at the config file's directory"),
    );
}

#[test]
fn mistakes_name_the_key_and_the_fix() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "kind = \"oauth2\"",
            "auth.kind",
            "unknown auth kind \"oauth2\"",
            "oauth",
        ),
        (
            "client_secret = \"s\"",
            "auth.client_secret",
            "'client_secret' is set but 'client_id' is not",
            "client_id =",
        ),
        (
            "kind = \"client_credentials\"",
            "auth.client_id",
            "kind = \"client_credentials\" needs 'client_id'",
            "client_id",
        ),
        (
            "kind = \"client_credentials\"\nclient_id = \"x\"",
            "auth.client_secret",
            "kind = \"client_credentials\" needs 'client_secret' or 'private_key_file'",
            "private_key_file",
        ),
        (
            "client_id = \"x\"\ntoken_endpoint_auth_method = \"private_key_jwt\"",
            "auth.token_endpoint_auth_method",
            "private_key_jwt needs 'private_key_file'",
            "PKCS#8",
        ),
        (
            "token_endpoint_auth_method = \"basic\"",
            "auth.token_endpoint_auth_method",
            "unknown token endpoint auth method \"basic\"",
            "client_secret_basic",
        ),
        (
            "redirect_port = 70000",
            "auth.redirect_port",
            "'redirect_port' is 70000",
            "8765",
        ),
        (
            "refresh_before = \"soon\"",
            "auth.refresh_before",
            "'refresh_before' is not a duration",
            "30s",
        ),
        (
            "client_metadata_url = \"http://e.example/c.json\"",
            "auth.client_metadata_url",
            "'client_metadata_url' must be an https URL",
            "https://",
        ),
        (
            "client_id = \"x\"\nclient_secret = \"${env:\"",
            "auth.client_secret",
            "",
            "${env:NAME}",
        ),
        (
            "scopes = [\"a b\"]",
            "auth.scopes",
            "the scope \"a b\"",
            "each scope",
        ),
        (
            "client_ids = \"x\"",
            "auth.client_ids",
            "unknown key",
            "client_id",
        ),
    ];
    each_says(cases);
}

#[test]
fn auth_on_stdio_or_sse_servers_is_refused() {
    toml_err_says(
        "[servers.local]\ncommand = \"x\"\n[servers.local.auth]\nkind = \"oauth\"\n",
        (Some("local"), Some("auth"), Some(3)),
        Starts("'auth' only applies to URL servers, but this server uses stdio"),
        Has("env"),
    );
    toml_err_says(
        "[servers.old]\nurl = \"http://h/sse\"\n[servers.old.auth]\n",
        (Some("old"), Some("auth"), None),
        Starts("signing in is not supported for legacy HTTP+SSE"),
        Has("Streamable HTTP URL"),
    );
}

#[test]
fn workload_enterprise_and_dpop_keys_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    let text = with_auth(
        "kind = \"jwt_bearer\"\nassertion_file = \"token.jwt\"\nscopes = [\"mcp\"]\ndpop = \"never\"",
    );
    let auth = Config::from_toml_str(&text, Some(&file)).unwrap().servers["api"]
        .auth
        .clone()
        .unwrap();
    assert_eq!(auth.kind, AuthKind::JwtBearer);
    // Resolved, not read: a platform may write it later.
    assert_eq!(
        auth.subject_token,
        Some(TokenSource::File(dir.path().join("token.jwt")))
    );
    assert_eq!(auth.dpop, DpopMode::Never);

    let auth = toml(&with_auth(
        r#"kind = "enterprise"
client_id = "app"
client_secret = "${env:APP_SECRET}"
id_token = "${env:ID_TOKEN}"
idp_token_endpoint = "https://idp.example.com/oauth2/token"
idp_client_id = "sb"
idp_client_secret = "${env:IDP_SECRET}""#,
    ))
    .unwrap()
    .servers["api"]
        .auth
        .clone()
        .unwrap();
    assert_eq!(auth.kind, AuthKind::Enterprise);
    assert_eq!(auth.dpop, DpopMode::Auto);
    assert_eq!(
        auth.subject_token,
        Some(TokenSource::Inline(Secret::new("${env:ID_TOKEN}")))
    );
    let idp = auth.idp.clone().unwrap();
    assert_eq!(
        idp.token_endpoint.as_deref(),
        Some("https://idp.example.com/oauth2/token")
    );
    assert_eq!(idp.issuer, None);
    assert_eq!(idp.client_id.as_deref(), Some("sb"));
    assert!(
        !format!("{auth:?}").contains("ID_TOKEN"),
        "secrets never print"
    );

    let auth = toml(&with_auth(
        "kind = \"enterprise\"\nclient_id = \"app\"\nid_token_file = \"/run/id\"\n\
         idp_issuer = \"https://idp.example.com\"",
    ))
    .unwrap()
    .servers["api"]
        .auth
        .clone()
        .unwrap();
    let idp = auth.idp.unwrap();
    assert_eq!(
        (idp.token_endpoint, idp.issuer.as_deref()),
        (None, Some("https://idp.example.com"))
    );
}

#[test]
fn workload_and_enterprise_mistakes_name_the_key_and_the_fix() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "kind = \"jwt_bearer\"",
            "auth.assertion",
            "kind = \"jwt_bearer\" needs 'assertion' or 'assertion_file'",
            "${env:WORKLOAD_JWT}",
        ),
        (
            "kind = \"jwt_bearer\"\nassertion = \"a\"\nassertion_file = \"f\"",
            "auth.assertion_file",
            "both 'assertion' and 'assertion_file' are set",
            "keep one",
        ),
        (
            "kind = \"enterprise\"\nclient_id = \"app\"\nidp_token_endpoint = \"https://i/t\"",
            "auth.id_token",
            "kind = \"enterprise\" needs 'id_token' or 'id_token_file'",
            "${env:ID_TOKEN}",
        ),
        (
            "kind = \"enterprise\"\nclient_id = \"app\"\nid_token = \"t\"",
            "auth.idp_token_endpoint",
            "kind = \"enterprise\" needs 'idp_token_endpoint' or 'idp_issuer'",
            "https://idp.example.com",
        ),
        (
            "kind = \"enterprise\"\nid_token = \"t\"\nassertion = \"a\"",
            "auth.assertion",
            "'assertion' does not apply to kind = \"enterprise\"",
            "jwt_bearer",
        ),
        (
            "kind = \"oauth\"\nassertion = \"a\"",
            "auth.kind",
            "assertion, id_token and idp_* keys are for kind",
            "jwt_bearer",
        ),
        (
            "dpop = \"yes\"",
            "auth.dpop",
            "unknown dpop mode \"yes\"",
            "auto",
        ),
    ];
    each_says(cases);
}
