//! Server requests relayed (issue 16, behaviour 3): what an upstream asks in the middle of a
//! call (elicitation in form and URL mode, sampling, roots) reaches the downstream client
//! that made the call, and its answer goes back; a client that did not declare a capability
//! gets the server's policy (or configured roots) instead. Progress reaches the client under
//! its own token, and so do its server's log messages (at the level the client set); a
//! client's `notifications/cancelled` stops the upstream call. The
//! official TypeScript SDK client over `/mcp` (2025-11-25 sessions); the testkit's `ask`,
//! `visit`, `sample`, `roots`, `progress` and `hang` tools upstream.

use serde_json::{Value, json};

use crate::common::{
    TestGateway, eventually, ok_text, testkit, toml_string, ts_program, ts_program_started,
};

/// The testkit twice: `kit` (the default policy, decline) and `lenient` (accept_defaults).
fn config(kit: &str) -> String {
    format!(
        "[servers.kit]\nurl = {url}\n\n[servers.lenient]\nurl = {url}\nelicitation = \"accept_defaults\"\n",
        url = toml_string(kit)
    )
}

/// A tool result's text parsed as JSON.
fn json_text(result: &Value) -> Value {
    let text = ok_text(result);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_and_sampling_are_answered_by_the_downstream_client() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&config(&kit.url())).await;
    let answers = ts_program(json!({
        "url": gateway.url("/mcp"),
        "capabilities": {"elicitation": {"form": {}, "url": {}}, "sampling": {}},
        "answers": {"form": {"name": "Grace", "age": 85}, "url": "accept",
                    "sample": "from the client"},
        "steps": [
            {"op": "call", "name": "kit__ask"},
            {"op": "call", "name": "kit__visit"},
            {"op": "call", "name": "kit__sample", "arguments": {"prompt": "hello upstream"}},
            {"op": "asked"},
        ],
    }))
    .await;
    assert_eq!(
        json_text(&answers[0]),
        json!({"action": "accept", "content": {"name": "Grace", "age": 85}})
    );
    assert_eq!(json_text(&answers[1])["action"], json!("accept"));
    let sampled = json_text(&answers[2]);
    assert_eq!(
        sampled["content"]["text"],
        json!("from the client"),
        "{sampled}"
    );
    assert_eq!(sampled["model"], json!("test-model"));
    // The client saw the upstream's own requests.
    let asked = answers[3]["asked"].as_array().expect("asked");
    let methods: Vec<&str> = asked.iter().filter_map(|a| a["method"].as_str()).collect();
    assert_eq!(
        methods,
        [
            "elicitation/create",
            "elicitation/create",
            "sampling/createMessage"
        ]
    );
    assert_eq!(asked[0]["params"]["message"], json!("Who is calling?"));
    assert_eq!(
        asked[1]["params"]["url"],
        json!("https://example.com/sign-in")
    );
    assert_eq!(
        asked[2]["params"]["messages"][0]["content"]["text"],
        json!("hello upstream")
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_is_asked_only_about_its_own_calls() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&config(&kit.url())).await;
    // Two sessions at once on the one shared upstream connection, each calling `ask` a few
    // times: each call's question goes to the client that made it.
    let client = |name: &str| {
        ts_program_started(json!({
            "url": gateway.url("/mcp"),
            "capabilities": {"elicitation": {}},
            "answers": {"form": {"name": name, "age": 1}},
            "steps": [
                {"op": "call", "name": "kit__ask"},
                {"op": "call", "name": "kit__ask"},
                {"op": "call", "name": "kit__ask"},
            ],
        }))
    };
    let (grace, linus) = (client("Grace"), client("Linus"));
    let (grace, linus) = tokio::join!(grace.finish(), linus.finish());
    for (answers, name) in [(grace, "Grace"), (linus, "Linus")] {
        for answer in &answers {
            assert_eq!(
                json_text(answer)["content"]["name"],
                json!(name),
                "{answer}"
            );
        }
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_are_the_clients_when_it_declared_them_else_the_configured_ones() {
    let kit = testkit().await;
    let toml = format!(
        "[servers.kit]\nurl = {}\nroots = [\"file:///srv/configured\"]\n",
        toml_string(&kit.url())
    );
    let gateway = TestGateway::start(&toml).await;
    let roots_of = |capabilities: Value| {
        ts_program(json!({
            "url": gateway.url("/mcp"),
            "capabilities": capabilities,
            "answers": {"roots": [{"uri": "file:///home/grace", "name": "home"}]},
            "steps": [{"op": "call", "name": "kit__roots"}],
        }))
    };
    let own = roots_of(json!({"roots": {"listChanged": true}})).await;
    assert_eq!(
        json_text(&own[0])["roots"],
        json!([{"uri": "file:///home/grace", "name": "home"}])
    );
    let configured = roots_of(json!({})).await;
    assert_eq!(
        json_text(&configured[0])["roots"],
        json!([{"uri": "file:///srv/configured"}])
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_capabilities_gets_the_servers_policy() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&config(&kit.url())).await;
    let answers = ts_program(json!({
        "url": gateway.url("/mcp"),
        "steps": [
            {"op": "call", "name": "kit__ask"},
            {"op": "call", "name": "lenient__ask"},
            {"op": "call", "name": "lenient__visit"},
            {"op": "call", "name": "kit__sample", "arguments": {"prompt": "hi"}},
            {"op": "asked"},
        ],
    }))
    .await;
    assert_eq!(json_text(&answers[0]), json!({"action": "decline"}));
    // accept_defaults fills the form with its defaults; a URL is declined all the same.
    assert_eq!(
        json_text(&answers[1]),
        json!({"action": "accept", "content": {"name": "Ada", "age": 36}})
    );
    assert_eq!(json_text(&answers[2]), json!({"action": "decline"}));
    // Sampling nobody answers is refused: the upstream's request failed.
    assert!(
        ok_text(&answers[3]).contains("sampling/createMessage failed"),
        "{}",
        answers[3]
    );
    assert_eq!(answers[4]["asked"], json!([]));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_client_and_cancelling_stops_the_upstream_call() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&config(&kit.url())).await;
    let answers = ts_program(json!({
        "url": gateway.url("/mcp"),
        "steps": [
            {"op": "call_progress", "name": "kit__progress",
             "arguments": {"count": 3, "delay_ms": 20}},
            {"op": "call_cancel", "name": "kit__hang", "after_ms": 300},
            // Progress sent right before the result still comes first, all of it.
            {"op": "call_progress", "name": "kit__progress",
             "arguments": {"count": 5, "delay_ms": 0}},
        ],
    }))
    .await;
    assert_eq!(ok_text(&answers[0]["result"]), "done 3");
    let progress = answers[0]["progress"].as_array().expect("progress");
    let steps: Vec<(f64, f64)> = progress
        .iter()
        .map(|p| {
            (
                p["progress"].as_f64().unwrap(),
                p["total"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]);
    assert_eq!(progress[0]["message"], json!("step 1 of 3"));

    assert_eq!(answers[1]["cancelled"], json!(true), "{}", answers[1]);
    let quick: Vec<f64> = answers[2]["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| p["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(quick, [1.0, 2.0, 3.0, 4.0, 5.0], "{}", answers[2]);
    let counts = || kit.counts();
    eventually("the upstream call is cancelled", || {
        counts()["cancelled"]["hang"] == json!(1)
    })
    .await;
    assert_eq!(counts()["executions"]["hang"], json!(1), "{}", counts());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_of_a_call_reach_its_client_at_the_level_it_set() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&config(&kit.url())).await;
    let answers = ts_program(json!({
        "url": gateway.url("/mcp"),
        // rmcp's server sends log messages on a session's standalone (GET) stream, not the
        // call's: the testkit's can trail its result unless it waits after the last (the
        // engine passes on only what arrives while the call is in flight), and the
        // gateway's can reach the client after the result (hence `count`).
        "steps": [
            {"op": "call", "name": "kit__progress",
             "arguments": {"count": 2, "delay_ms": 100, "log": true}},
            {"op": "logs", "count": 4},
            {"op": "set_level", "level": "info"},
            {"op": "call", "name": "kit__progress",
             "arguments": {"count": 2, "delay_ms": 100, "log": true}},
            {"op": "logs", "count": 6},
        ],
    }))
    .await;
    assert_eq!(ok_text(&answers[0]), "done 2");
    // Without a level, every message.
    let levels = |logs: &Value| -> Vec<(String, String)> {
        let logs = logs["logs"].as_array().expect("logs");
        logs.iter()
            .map(|l| {
                assert_eq!(l["logger"], json!("testkit"), "{l}");
                (
                    l["level"].as_str().unwrap().to_owned(),
                    l["data"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let step = |level: &str, n: u32| (level.to_owned(), format!("step {n} of 2"));
    assert_eq!(
        levels(&answers[1]),
        [
            step("debug", 1),
            step("info", 1),
            step("debug", 2),
            step("info", 2)
        ]
    );
    // At `info`, the debug ones are left out.
    assert_eq!(ok_text(&answers[3]), "done 2");
    let after: Vec<_> = levels(&answers[4]).split_off(4);
    assert_eq!(after, [step("info", 1), step("info", 2)]);
    gateway.stop().await;
}
