//! A caller that asks its own client (a gateway serving a 2026-07-28 client): a 2026-07-28
//! server's input-required result is handed back to it instead of answered by the input
//! handlers, its retry with the answers and the server's state finishes the call, and a
//! retry whose name no longer resolves to the server that asked is refused. On the testkit
//! over stdio, speaking 2026-07-28.

use serde_json::{Value, json};
use switchboard::{CallOptions, CallStep, ErrorClass, Hub, InputResume};

use crate::common::testkit_stdio;

async fn hub() -> Hub {
    let config = testkit_stdio("kit", &["--lifecycle", "modern"]);
    let hub = Hub::builder().server(config).start().await.unwrap();
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    hub
}

fn handing_back() -> CallOptions {
    CallOptions::new().hand_back_input_required()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_required_result_is_handed_back_and_the_retry_finishes_the_call() {
    let hub = hub().await;
    let step = hub
        .call_step(None, "kit__ask", None, handing_back())
        .await
        .unwrap();
    let CallStep::InputRequired(asked) = step else {
        panic!("expected the server's input request back, got {step:?}");
    };
    assert_eq!(asked.server, "kit");
    assert_eq!(asked.state.as_deref(), Some("asked"));
    let request = &asked.requests["input"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["message"], "Who is calling?");

    let answer = json!({"action": "accept", "content": {"name": "Grace", "age": 85}});
    let resume = InputResume {
        server: asked.server.clone(),
        responses: json!({"input": answer}).as_object().cloned(),
        state: asked.state.clone(),
    };
    let options = handing_back().resume(resume);
    let step = hub
        .call_step(None, "kit__ask", None, options)
        .await
        .unwrap();
    let CallStep::Done(outcome) = step else {
        panic!("expected the call to finish, got {step:?}");
    };
    let answered: Value = serde_json::from_str(&outcome.text()).unwrap();
    assert_eq!(answered, answer);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hand_back_the_engine_still_answers_itself() {
    let hub = hub().await;
    // No handler: the default policy declines, and the call finishes with that answer.
    let outcome = hub.call("kit__ask", None, None).await.unwrap();
    let answered: Value = serde_json::from_str(&outcome.text()).unwrap();
    assert_eq!(answered["action"], "decline");
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_for_another_server_is_refused_before_anything_is_sent() {
    let hub = hub().await;
    let resume = InputResume {
        server: "elsewhere".to_owned(),
        responses: None,
        state: Some("asked".to_owned()),
    };
    let options = handing_back().resume(resume);
    let error = hub
        .call_step(None, "kit__ask", None, options)
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::InvalidArguments);
    assert!(error.to_string().contains("elsewhere"), "{error}");
    hub.close().await;
}
