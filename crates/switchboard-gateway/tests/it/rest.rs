//! The REST API and the probes, end to end with reqwest.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, testkit, two_upstreams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_end_to_end() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(gateway.url(path));
        async move {
            let response = request.send().await.expect("GET");
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let call = |name: &str, body: &'static str, token: Option<&'static str>| {
        let mut request = http
            .post(gateway.url(&format!("/v1/tools/{name}/call")))
            .body(body);
        if let Some(token) = token {
            request = request.header("X-Upstream-Token", token);
        }
        async move {
            let response = request.send().await.expect("POST");
            let status = response.status();
            (status, response.json::<Value>().await.expect("a JSON body"))
        }
    };
    let catalog = gateway.hub.catalog();

    // The catalogue in each form, the engine's exports exactly.
    let (status, rows) = get("/v1/tools").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows, serde_json::to_value(catalog.tools()).unwrap());
    for (format, export) in [
        ("openai", switchboard::ExportFormat::OpenAiChat),
        (
            "openai-responses",
            switchboard::ExportFormat::OpenAiResponses,
        ),
        ("anthropic", switchboard::ExportFormat::Anthropic),
    ] {
        let (status, body) = get(&format!("/v1/tools?format={format}")).await;
        assert_eq!(status, StatusCode::OK, "{format}");
        assert_eq!(body, catalog.export(export), "{format}");
    }
    let (status, body) = get("/v1/tools?format=xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["class"], json!("invalid_request"));

    // Calls: the outcome, or the error with its class and status.
    let (status, outcome) = call("kit__echo", r#"{"message":"over REST"}"#, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["content"][0]["text"], json!("over REST"));
    assert_eq!(outcome["isError"], json!(false));
    let (status, outcome) = call("kit__fail", "", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a tool's own failure is its outcome"
    );
    assert_eq!(outcome["isError"], json!(true));
    let (status, body) = call("kit__nope", "{}", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["class"], json!("unknown_tool"));
    let (status, body) = call("kit__add", r#"{"a":"one","b":2}"#, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["class"], json!("invalid_arguments"));
    let (status, body) = call("kit__echo", "[1]", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["class"], json!("invalid_request"));

    // The session header picks the caller's upstream session, and its credential.
    let (status, outcome) = call("private__echo_headers", "", Some("erin")).await;
    assert_eq!(status, StatusCode::OK);
    let headers: Value =
        serde_json::from_str(outcome["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(headers["x-upstream-token"], json!("erin"));

    // Health and probes.
    let (status, health) = get("/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["overall"], json!("healthy"));
    assert_eq!(health["servers"].as_array().map(Vec::len), Some(2));
    let alive = http.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    let (status, ready) = get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["ready"], json!(true));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_when_no_server_is_ready() {
    // A server that refuses connections, skipped at start: nothing is ready.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = TestGateway::start(&format!(
        "retry_skipped_servers = false\n[servers.gone]\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
         connect_timeout = \"2s\"\n"
    ))
    .await;
    let response = reqwest::get(gateway.url("/v1/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["overall"], json!("unhealthy"));
    // Still alive and ready: the registration policy (skip) was satisfied.
    let ready = reqwest::get(gateway.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    gateway.stop().await;
}
