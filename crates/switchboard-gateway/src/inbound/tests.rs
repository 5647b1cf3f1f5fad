use super::*;

fn settings(allow_unauthenticated: bool) -> InboundSettings {
    let mut settings = InboundSettings::from(&GatewayConfig::default());
    settings.allow_unauthenticated = allow_unauthenticated;
    settings
}

#[tokio::test]
async fn serving_beyond_loopback_needs_auth_or_consent() {
    let public: SocketAddr = "192.0.2.10:8080".parse().unwrap();
    let refused = Inbound::new(settings(false), Duration::from_secs(60))
        .prepare(public)
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(
        text.starts_with("refusing to serve on 192.0.2.10:8080 without authentication"),
        "{text}"
    );
    assert!(text.contains("[gateway.auth]"), "{text}");
    let consented = Inbound::new(settings(true), Duration::from_secs(60));
    assert!(consented.prepare(public).await.is_ok());
    let loopback = Inbound::new(settings(false), Duration::from_secs(60));
    assert!(
        loopback
            .prepare("127.0.0.1:8080".parse().unwrap())
            .await
            .is_ok()
    );
}

#[test]
fn only_requests_count_as_calls() {
    let post =
        |path: &str, body: &str| call_of(&Method::POST, path, Some(&Bytes::from(body.to_string())));
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#;
    assert_eq!(post("/mcp", call), Some(Some(serde_json::json!(7))));
    let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled"}"#;
    assert_eq!(post("/mcp", note), None);
    let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    assert_eq!(post("/mcp", answer), None);
    let listen = r#"{"jsonrpc":"2.0","id":2,"method":"subscriptions/listen"}"#;
    assert_eq!(post("/mcp", listen), None);
    assert_eq!(post("/v1/tools/kit__echo/call", "{}"), Some(None));
    assert_eq!(call_of(&Method::GET, "/mcp", None), None);
}

#[tokio::test]
async fn an_unreadable_jwks_file_fails_the_start() {
    let config = switchboard::Config::from_toml_str(
        "[gateway.auth.jwt]\njwks_file = \"/nonexistent/jwks.json\"\n\
         issuer = \"https://idp\"\naudience = \"mcp\"\n",
        None,
    )
    .unwrap();
    let inbound = Inbound::new(
        InboundSettings::from(&*config.gateway),
        Duration::from_secs(60),
    );
    let error = inbound
        .prepare("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("jwks_file /nonexistent/jwks.json: cannot read it"),
        "{text}"
    );
}
