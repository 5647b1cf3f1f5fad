//! A server that asks the user for input in the middle of a call (`elicitation/create`),
//! against each server's `elicitation` policy: `accept_defaults` answers a form with its
//! schema's defaults (SEP-1034); the default declines (and does not offer the capability).
//! A 2026-07-28 server asks inside an input-required result instead (SEP-2322), answered
//! by the same policy. Roots: a server gets its configured `roots`, and none by default.

use serde_json::{Value, json};
use switchboard::config::ElicitationPolicy;
use switchboard::{Config, Hub};

use crate::common::testkit_stdio;

/// Calls the testkit's `tool` once, on a server (started with `args`) under `policy`.
async fn call_kit(args: &[&str], policy: ElicitationPolicy, tool: &str) -> String {
    let mut kit = testkit_stdio("kit", args);
    kit.elicitation = policy;
    let mut config = Config::default();
    config.servers.insert("kit".into(), kit);
    let hub = Hub::builder().config(&config).start().await.unwrap();
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    let outcome = hub.call(tool, None, None).await.unwrap();
    hub.close().await;
    outcome.text()
}

async fn ask(policy: ElicitationPolicy) -> String {
    call_kit(&[], policy, "kit__ask").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_defaults_answers_a_form_with_its_defaults() {
    let answer: Value =
        serde_json::from_str(&ask(ElicitationPolicy::AcceptDefaults).await).unwrap();
    assert_eq!(answer["action"], "accept", "{answer}");
    assert_eq!(answer["content"], json!({"name": "Ada", "age": 36}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_server_gets_no_answer_but_a_decline() {
    let text = ask(ElicitationPolicy::Decline).await;
    let declined = serde_json::from_str::<Value>(&text)
        .map(|answer| answer["action"] == "decline")
        .unwrap_or(false);
    // rmcp's server refuses to ask a client that did not offer the capability.
    assert!(declined || text.starts_with("elicitation failed"), "{text}");
    assert!(!text.contains("Ada"), "{text}");
}

#[test]
fn the_policy_is_read_from_the_config() {
    let config = Config::from_toml_str(
        "[servers.kit]\ncommand = \"kit\"\nelicitation = \"accept_defaults\"\n",
        None,
    )
    .unwrap();
    assert_eq!(
        config.servers["kit"].elicitation,
        ElicitationPolicy::AcceptDefaults
    );
    let error = Config::from_toml_str(
        "[servers.kit]\ncommand = \"kit\"\nelicitation = \"accept\"\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("elicitation") && error.contains("accept_defaults"),
        "{error}"
    );
}

/// A 2026-07-28 server asking for input inside the call's result (SEP-2322): the call is sent
/// again with the answer (by the elicitation policy) and the server's state echoed.
async fn confirm(policy: ElicitationPolicy) -> Value {
    let text = call_kit(&["--lifecycle", "modern"], policy, "kit__confirm").await;
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_required_result_is_answered_and_the_call_sent_again_with_its_state() {
    let got = confirm(ElicitationPolicy::AcceptDefaults).await;
    assert_eq!(got["state"], "round-1", "{got}");
    assert_eq!(got["answers"]["confirm"]["action"], "accept", "{got}");
    assert_eq!(
        got["answers"]["confirm"]["content"],
        json!({"go": true}),
        "{got}"
    );
    let got = confirm(ElicitationPolicy::Decline).await;
    assert_eq!(got["answers"]["confirm"]["action"], "decline", "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gets_the_configured_roots_and_none_by_default() {
    let mut kit = testkit_stdio("kit", &[]);
    kit.roots = vec!["file:///srv/project".into(), "file:///srv/data".into()];
    let mut config = Config::default();
    config.servers.insert("kit".into(), kit);
    let hub = Hub::builder().config(&config).start().await.unwrap();
    let text = hub.call("kit__roots", None, None).await.unwrap().text();
    hub.close().await;
    let listed: Value = serde_json::from_str(&text).unwrap();
    let uris: Vec<&str> = listed["roots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|root| root["uri"].as_str())
        .collect();
    assert_eq!(uris, ["file:///srv/project", "file:///srv/data"]);
    // Without roots the capability is not offered: the server cannot ask.
    let text = call_kit(&[], ElicitationPolicy::Decline, "kit__roots").await;
    assert!(!text.contains("file://"), "{text}");
}

#[test]
fn roots_must_be_file_uris() {
    let error = Config::from_toml_str(
        "[servers.kit]\ncommand = \"kit\"\nroots = [\"/srv\"]\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("roots") && error.contains("file://"),
        "{error}"
    );
}
