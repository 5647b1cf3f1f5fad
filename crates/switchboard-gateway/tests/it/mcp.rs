//! `/mcp` with the official TypeScript SDK client (2025-11-25 sessions), and the engine as a
//! 2026-07-28 client (no sessions).

use serde_json::{Value, json};
use switchboard::{Config, Hub};
use switchboard_testkit::{HttpMode, Knobs, serve_streamable_http};

use crate::common::{
    TestGateway, eventually, ok_text, testkit, toml_string, ts_client, two_upstreams,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_client_lists_and_calls_the_tools_of_two_upstreams() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, true)).await;
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "list"},
            {"op": "call", "name": "kit__echo", "arguments": {"message": "via kit"}},
            {"op": "call", "name": "everything__echo", "arguments": {"message": "via everything"}},
            {"op": "call", "name": "kit__structured", "arguments": {}},
            {"op": "call", "name": "kit__fail", "arguments": {}},
            {"op": "call", "name": "no__such_tool", "arguments": {}},
            {"op": "call", "name": "kit__add", "arguments": {"a": "one", "b": 2}},
        ]),
    )
    .await;

    // The hub's merged catalogue, exactly: same names, same order.
    let expected: Vec<String> = gateway
        .hub
        .catalog()
        .tools()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(answers[0]["tools"], json!(expected));
    assert!(
        expected.iter().any(|n| n == "everything__echo"),
        "{expected:?}"
    );
    assert!(expected.iter().any(|n| n == "kit__echo"), "{expected:?}");

    assert_eq!(ok_text(&answers[1]), "via kit");
    assert!(
        ok_text(&answers[2]).contains("via everything"),
        "{}",
        answers[2]
    );
    assert_eq!(
        answers[3]["structuredContent"],
        json!({"temperature": 21.5, "unit": "C"})
    );
    // A tool that ran and failed: its own outcome, passed on.
    assert_eq!(answers[4]["isError"], json!(true), "{}", answers[4]);
    // No such tool: a JSON-RPC error (-32602), as MCP asks. Arguments the tool's schema
    // refuses: a tool execution error the model can read and correct (SEP-1303), with the
    // engine's report (nothing was sent).
    assert_eq!(answers[5]["code"], json!(-32602), "{}", answers[5]);
    assert_eq!(answers[6]["isError"], json!(true), "{}", answers[6]);
    let report = &answers[6]["_meta"]["io.switchboard/error"];
    assert_eq!(
        report["class"],
        json!("invalid_arguments"),
        "{}",
        answers[6]
    );
    assert_eq!(report["delivery"], json!("not_sent"), "{}", answers[6]);
    gateway.stop().await;
}

/// `echo_headers` and `session_info` of `private` and `kit` for a client sending `token`.
async fn who_am_i(gateway: &TestGateway, token: &str) -> (Value, String, String) {
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({"X-Upstream-Token": token}),
        json!([
            {"op": "call", "name": "private__echo_headers"},
            {"op": "call", "name": "private__session_info"},
            {"op": "call", "name": "kit__session_info"},
        ]),
    )
    .await;
    let headers: Value = serde_json::from_str(ok_text(&answers[0])).unwrap();
    let session = |i: usize| -> String {
        let info: Value = serde_json::from_str(ok_text(&answers[i])).unwrap();
        info["session"].as_str().unwrap().to_string()
    };
    (headers, session(1), session(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_with_different_credentials_reach_different_upstream_sessions() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let ((alice, alice_private, alice_kit), (bob, bob_private, bob_kit)) = tokio::join!(
        who_am_i(&gateway, "alice-token"),
        who_am_i(&gateway, "bob-token")
    );

    assert_eq!(alice["x-upstream-token"], json!("alice-token"), "{alice}");
    assert_eq!(bob["x-upstream-token"], json!("bob-token"), "{bob}");
    assert_ne!(
        alice_private, bob_private,
        "per-session upstream sessions are their own"
    );
    assert_eq!(
        alice_kit, bob_kit,
        "a shared server is one upstream session"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_downstream_session_releases_its_upstream_session() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let call = json!({"op": "call", "name": "private__session_info"});
    // One client leaves its session open, the other ends it (DELETE).
    let kept = ts_client(
        &gateway.url("/mcp"),
        json!({"X-Upstream-Token": "a"}),
        json!([call]),
    )
    .await;
    ok_text(&kept[0]);
    assert_eq!(gateway.hub.session_count("private"), 1);
    let ended = ts_client(
        &gateway.url("/mcp"),
        json!({"X-Upstream-Token": "b"}),
        json!([call, {"op": "terminate"}]),
    )
    .await;
    ok_text(&ended[0]);
    assert_eq!(ended[1], json!({"terminated": true}));
    eventually("the ended session's upstream connection closes", || {
        gateway.hub.session_count("private") == 1
    })
    .await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_downstream_session_expires_and_releases_its_upstream_session() {
    let (kit, private) = (testkit().await, testkit().await);
    let toml = two_upstreams(&kit, &private, false)
        .replace("[gateway]\n", "[gateway]\nsession_idle_timeout = \"1s\"\n");
    let gateway = TestGateway::start(&toml).await;
    let call = json!({"op": "call", "name": "private__session_info"});
    // The client leaves without ending its session.
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({"X-Upstream-Token": "a"}),
        json!([call]),
    )
    .await;
    ok_text(&answers[0]);
    eventually("the idle session's upstream connection closes", || {
        gateway.hub.session_count("private") == 0
    })
    .await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hears_of_a_tool_added_upstream() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "list"},
            {"op": "call", "name": "kit__notify_list_changed"},
            {"op": "wait_list_changed"},
            {"op": "list"},
        ]),
    )
    .await;
    let names = |i: usize| answers[i]["tools"].as_array().cloned().unwrap_or_default();
    assert!(!names(0).contains(&json!("kit__added_1")), "{}", answers[0]);
    ok_text(&answers[1]);
    assert_eq!(answers[2], json!({"list_changed": true}));
    assert!(names(3).contains(&json!("kit__added_1")), "{}", answers[3]);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_are_the_hubs() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "resources"},
            {"op": "read", "uri": "kit+testkit://static/hello.txt"},
            {"op": "read", "uri": "kit+testkit://nothing/here"},
            {"op": "prompts"},
        ]),
    )
    .await;
    let resources = answers[0]["resources"].as_array().unwrap();
    assert!(
        resources.contains(&json!("kit+testkit://static/hello.txt")),
        "{}",
        answers[0]
    );
    let part = &answers[1]["contents"][0];
    assert_eq!(
        part["uri"],
        json!("kit+testkit://static/hello.txt"),
        "{}",
        answers[1]
    );
    assert!(part["text"].is_string(), "{}", answers[1]);
    assert_eq!(answers[2]["code"], json!(-32002), "{}", answers[2]);
    let prompts = answers[3]["prompts"].as_array().unwrap();
    assert!(prompts.contains(&json!("kit__greet")), "{}", answers[3]);
    gateway.stop().await;
}

/// A subscribed resource's `notifications/resources/updated` reaches the client that
/// subscribed, under the URI it subscribed with; an update of a resource it did not
/// subscribe to does not (it comes first, so it would be the first heard). Unsubscribing
/// ends the subscription upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_client_hears_of_its_resource_s_updates_only() {
    let kit = testkit().await;
    let toml = format!("[servers.kit]\nurl = {}\n", toml_string(&kit.url()));
    let gateway = TestGateway::start(&toml).await;
    let hello = "kit+testkit://static/hello.txt";
    let touch = |uri: &str| {
        json!({"op": "call", "name": "kit__touch_resource",
        "arguments": {"uri": uri}})
    };
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "subscribe", "uri": hello},
            touch("testkit://static/pixel.png"),
            touch("testkit://static/hello.txt"),
            {"op": "wait_updated", "count": 1},
            {"op": "unsubscribe", "uri": hello},
        ]),
    )
    .await;
    assert_eq!(answers[0], json!({}), "{}", answers[0]);
    ok_text(&answers[1]);
    ok_text(&answers[2]);
    assert_eq!(answers[3], json!({"updated": [hello]}));
    assert_eq!(answers[4], json!({}), "{}", answers[4]);
    assert_eq!(kit.counts()["subscribed"], json!([]));
    gateway.stop().await;
}

/// `prefix = "never"`: the servers' own URIs (the first of two servers listing one keeps
/// it), reads by them and by a template, and subscriptions forwarded upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transparent_gateway_shows_and_reads_the_servers_own_uris_and_subscribes() {
    let (a, b) = (testkit().await, testkit().await);
    let toml = format!(
        "[catalog]\nprefix = \"never\"\n\n[servers.a]\nurl = {}\n\n[servers.b]\nurl = {}\n",
        toml_string(&a.url()),
        toml_string(&b.url())
    );
    let gateway = TestGateway::start(&toml).await;
    let hello = "testkit://static/hello.txt";
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "resources"},
            {"op": "read", "uri": hello},
            {"op": "read", "uri": format!("b+{hello}")},
            {"op": "read", "uri": "testkit://items/42"},
            {"op": "subscribe", "uri": hello},
            {"op": "subscribe", "uri": format!("b+{hello}")},
            {"op": "unsubscribe", "uri": hello},
        ]),
    )
    .await;
    let resources = answers[0]["resources"].as_array().unwrap();
    assert!(resources.contains(&json!(hello)), "{}", answers[0]);
    assert!(
        resources.contains(&json!(format!("b+{hello}"))),
        "{}",
        answers[0]
    );
    assert_eq!(
        answers[1]["contents"][0]["uri"],
        json!(hello),
        "{}",
        answers[1]
    );
    let theirs = &answers[2]["contents"][0]["uri"];
    assert_eq!(theirs, &json!(format!("b+{hello}")), "{}", answers[2]);
    let item = &answers[3]["contents"][0];
    assert_eq!(item["text"], json!("item 42"), "{}", answers[3]);
    for answer in &answers[4..7] {
        assert_eq!(answer, &json!({}), "{answer}");
    }
    // `a` got the subscription and its end, `b` its own.
    assert_eq!(a.counts()["subscribed"], json!([]));
    assert_eq!(b.counts()["subscribed"], json!([hello]));
    gateway.stop().await;
}

/// The engine as a 2026-07-28 client of the gateway: no `initialize`, no session; each
/// request's headers say whose upstream session it runs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_2026_requests_run_in_their_headers_session() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let client = |token: &str| {
        format!(
            "[servers.gw]\nurl = {}\nprotocol_version = \"2026-07-28\"\n\
             headers = {{ \"X-Upstream-Token\" = \"{token}\" }}\n",
            toml_string(&gateway.url("/mcp"))
        )
    };
    let mut seen = Vec::new();
    for token in ["carol", "dave"] {
        let config = Config::from_toml_str(&client(token), None).unwrap();
        let hub = Hub::builder()
            .config(&config)
            .start()
            .await
            .expect("client hub");
        assert!(hub.catalog().get("gw__kit__echo").is_some());
        let call = |name: &'static str| {
            let hub = hub.clone();
            async move {
                let outcome = hub.call(name, None, None).await.expect(name);
                assert!(!outcome.is_error, "{}", outcome.text());
                outcome.text()
            }
        };
        let headers: Value =
            serde_json::from_str(&call("gw__private__echo_headers").await).unwrap();
        assert_eq!(headers["x-upstream-token"], json!(token));
        let again: Value = serde_json::from_str(&call("gw__private__session_info").await).unwrap();
        let twice: Value = serde_json::from_str(&call("gw__private__session_info").await).unwrap();
        assert_eq!(again, twice, "one upstream session per credential set");
        seen.push(again);
        hub.close().await;
    }
    assert_ne!(seen[0], seen[1]);
    gateway.stop().await;
}

/// A 2026-07-28 client has no session to be told on: it hears of changes on its
/// `subscriptions/listen` stream (the engine opens one when it follows changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_client_hears_of_a_tool_added_upstream_on_its_listen_stream() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, false)).await;
    let client = format!(
        "[servers.gw]\nurl = {}\nprotocol_version = \"2026-07-28\"\n",
        toml_string(&gateway.url("/mcp"))
    );
    let config = Config::from_toml_str(&client, None).unwrap();
    let hub = Hub::builder()
        .config(&config)
        .start()
        .await
        .expect("client hub");
    assert!(hub.catalog().get("gw__kit__added_1").is_none());
    let outcome = hub
        .call("gw__kit__notify_list_changed", None, None)
        .await
        .unwrap();
    assert!(!outcome.is_error, "{}", outcome.text());
    eventually("the client's catalogue has the added tool", || {
        hub.catalog().get("gw__kit__added_1").is_some()
    })
    .await;
    hub.close().await;
    gateway.stop().await;
}

/// A `per_session` server whose tool list is private (`cacheScope: "private"`) shows each
/// downstream session the list it gives that user, through MCP and REST alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_tool_lists_reach_only_their_user() {
    let knobs = Knobs {
        private_lists: true,
        ..Knobs::default()
    };
    let private = serve_streamable_http(knobs, HttpMode::Stateful)
        .await
        .unwrap();
    let gateway = TestGateway::start(&format!(
        "[gateway]\nsession_headers = {{ \"X-User-Name\" = \"user\" }}\n\
         [variables]\nuser = \"nobody\"\n\
         [servers.private]\nurl = {}\nsession_mode = \"per_session\"\n\
         headers = {{ \"X-User\" = \"${{user}}\" }}\n",
        toml_string(&private.url())
    ))
    .await;
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({"X-User-Name": "alice"}),
        json!([{"op": "list"}, {"op": "call", "name": "private__mine_alice"}]),
    )
    .await;
    let tools = answers[0]["tools"].as_array().unwrap();
    assert!(
        tools.contains(&json!("private__mine_alice")),
        "{}",
        answers[0]
    );
    assert!(
        !tools
            .iter()
            .any(|t| t == "private__mine_nobody" || t == "private__mine_bob")
    );
    ok_text(&answers[1]);

    let rows: Value = reqwest::Client::new()
        .get(gateway.url("/v1/tools"))
        .header("X-User-Name", "bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"private__mine_bob"), "{names:?}");
    assert!(!names.contains(&"private__mine_alice"), "{names:?}");
    gateway.stop().await;
}
