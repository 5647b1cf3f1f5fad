//! A 2026-07-28 client's tool call whose upstream (the testkit, speaking 2026-07-28) needs
//! input: the client is handed the input-required result and answers it itself, its retry
//! reaches the same upstream with the upstream's own state, and a `requestState` the
//! gateway did not seal is refused. The client is the engine speaking 2026-07-28.

use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard::interaction::{ElicitAnswer, ElicitRequest, InputHandler};
use switchboard::{Config, Hub};
use switchboard_testkit::{HttpMode, Knobs, Lifecycle, RunningServer, serve_streamable_http};

use crate::common::{TestGateway, toml_string};

/// The downstream client's user: fills every form with the name Grace.
struct Grace;

impl InputHandler for Grace {
    fn elicit(&self, _request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        Box::pin(async { ElicitAnswer::Accept(json!({"name": "Grace"}).as_object().cloned()) })
    }
}

async fn modern_testkit() -> RunningServer {
    let knobs = Knobs {
        lifecycle: Lifecycle::Modern,
        ..Knobs::default()
    };
    serve_streamable_http(knobs, HttpMode::Stateless)
        .await
        .expect("testkit serves")
}

async fn gateway_over(kit: &RunningServer) -> TestGateway {
    let toml = format!(
        "[servers.kit]\nurl = {}\nprotocol_version = \"2026-07-28\"\n",
        toml_string(&kit.url())
    );
    TestGateway::start(&toml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_client_answers_what_its_upstream_asks_itself() {
    let kit = modern_testkit().await;
    let gateway = gateway_over(&kit).await;
    let client = format!(
        "[servers.gw]\nurl = {}\nprotocol_version = \"2026-07-28\"\n",
        toml_string(&gateway.url("/mcp"))
    );
    let config = Config::from_toml_str(&client, None).unwrap();
    let hub = Hub::builder()
        .config(&config)
        .input_handler(Grace)
        .start()
        .await
        .expect("client hub");
    let outcome = hub.call("gw__kit__ask", None, None).await.expect("ask");
    assert!(!outcome.is_error, "{}", outcome.text());
    // The testkit returns the answer it was given: the client's own, not the gateway's.
    let answered: Value = serde_json::from_str(&outcome.text()).unwrap();
    assert_eq!(answered["action"], "accept", "{answered}");
    assert_eq!(answered["content"], json!({"name": "Grace"}));
    hub.close().await;
    gateway.stop().await;
}

/// The same for a prompt get (the testkit's `confirm` prompt asks a 2026-07-28 client for
/// input first): the client answers, not the gateway, and the upstream gets its own state
/// back with the answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_client_answers_what_its_upstream_asks_for_a_prompt() {
    let kit = modern_testkit().await;
    let gateway = gateway_over(&kit).await;
    let client = format!(
        "[servers.gw]\nurl = {}\nprotocol_version = \"2026-07-28\"\n",
        toml_string(&gateway.url("/mcp"))
    );
    let config = Config::from_toml_str(&client, None).unwrap();
    let hub = Hub::builder()
        .config(&config)
        .input_handler(Grace)
        .start()
        .await
        .expect("client hub");
    let outcome = hub
        .get_prompt("gw__kit__confirm", None, None)
        .await
        .expect("confirm");
    // The testkit's prompt says what it was given: the client's answer, its own state.
    let got: Value = serde_json::from_str(&outcome.text()).unwrap();
    assert_eq!(got["answers"]["confirm"]["action"], "accept", "{got}");
    assert_eq!(
        got["answers"]["confirm"]["content"],
        json!({"name": "Grace"})
    );
    assert_eq!(got["state"], "round-1", "{got}");
    hub.close().await;
    gateway.stop().await;
}

/// A `tools/call` from a 2026-07-28 client, as JSON-RPC over HTTP.
async fn modern_call(gateway: &TestGateway, params: Value) -> Value {
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let answer = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "kit__ask")
        .json(&message)
        .send()
        .await
        .unwrap();
    let text = answer.text().await.unwrap();
    let json = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_state_the_gateway_did_not_seal_is_refused() {
    let kit = modern_testkit().await;
    let gateway = gateway_over(&kit).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    let asked = modern_call(&gateway, json!({"name": "kit__ask", "_meta": meta})).await;
    let result = &asked["result"];
    assert_eq!(result["resultType"], "input_required", "{asked}");
    assert_eq!(
        result["inputRequests"]["input"]["method"],
        "elicitation/create"
    );
    let sealed = result["requestState"].as_str().expect("our requestState");
    assert_ne!(sealed, "asked", "the upstream's state is wrapped in ours");

    let answers = json!({"input": {"action": "decline"}});
    for forged in ["asked", &sealed.replace('.', ".x")] {
        let params = json!({"name": "kit__ask", "_meta": meta,
            "inputResponses": answers, "requestState": forged});
        let refused = modern_call(&gateway, params).await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
    }
    let params = json!({"name": "kit__ask", "_meta": meta,
        "inputResponses": answers, "requestState": sealed});
    let done = modern_call(&gateway, params).await;
    assert_eq!(done["result"]["isError"], false, "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["action"],
        "decline"
    );
    gateway.stop().await;
}
