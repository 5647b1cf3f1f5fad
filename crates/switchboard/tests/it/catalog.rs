//! The catalogue through the [`Hub`], against real servers: server-everything (npm) twice
//! under two names, the testkit with a 70-character server name, tools that change at run
//! time (`notifications/tools/list_changed` over stdio and Streamable HTTP, unasked from
//! classic servers, on a `subscriptions/listen` stream from 2026-07-28 ones), argument checks
//! that stop a call before it is sent, and nulls dropped on the way out.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{TestkitProcess, repo_root, testkit_stdio};
use serde_json::{Map, Value, json};
use switchboard::config::CatalogConfig;
use switchboard::hub::Listing;
use switchboard::{
    Config, Error, ErrorClass, ExposedResource, Hub, HubEvent, HubSettings, ServerConfig,
};

/// Upper bound for any one step. Not a timing assertion.
const STEP: Duration = Duration::from_secs(30);

fn args(value: Value) -> Option<Map<String, Value>> {
    value.as_object().cloned()
}

async fn start(servers: Vec<ServerConfig>) -> Hub {
    start_with(CatalogConfig::default(), servers).await
}

async fn start_with(catalog: CatalogConfig, servers: Vec<ServerConfig>) -> Hub {
    let settings = HubSettings {
        catalog,
        ..HubSettings::default()
    };
    start_with_settings(settings, servers).await
}

async fn start_with_settings(settings: HubSettings, servers: Vec<ServerConfig>) -> Hub {
    let hub = tokio::time::timeout(
        STEP,
        Hub::builder().settings(settings).servers(servers).start(),
    )
    .await
    .expect("hub start within the step bound")
    .expect("hub start");
    if let Some((server, error)) = hub.failures().first() {
        panic!("server '{server}' failed: {error}");
    }
    hub
}

async fn call_text(hub: &Hub, name: &str, arguments: Value) -> String {
    let outcome = tokio::time::timeout(STEP, hub.call(name, args(arguments), None))
        .await
        .expect("call within the step bound")
        .unwrap_or_else(|e| panic!("{name}: {e} [{}]", e.class()));
    assert!(!outcome.is_error, "{name}: {}", outcome.text());
    outcome.text()
}

fn everything_entry() -> PathBuf {
    let entry = repo_root()
        .join("tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "run `npm ci --prefix tests` first ({} is missing)",
        entry.display()
    );
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_everything_instances_each_get_their_own_calls() {
    let entry = everything_entry().to_string_lossy().into_owned();
    let server = |name: &str| {
        let mut config = ServerConfig::stdio(name, "node", vec![entry.clone(), "stdio".into()]);
        config
            .env
            .insert("SWITCHBOARD_ROUTE_MARK".into(), format!("mark-{name}"));
        config
    };
    let hub = start(vec![server("alpha"), server("beta")]).await;
    let catalog = hub.catalog();
    for name in [
        "alpha__echo",
        "beta__echo",
        "alpha__get-env",
        "beta__get-env",
    ] {
        assert!(catalog.get(name).is_some(), "{name} missing");
    }
    assert!(
        catalog.diagnostics().is_empty(),
        "{:?}",
        catalog.diagnostics()
    );

    assert_eq!(
        call_text(&hub, "alpha__echo", json!({"message": "hi"})).await,
        "Echo: hi"
    );
    // Each exposed name reaches its own process: the environment tells them apart.
    let alpha_env = call_text(&hub, "alpha__get-env", json!({})).await;
    let beta_env = call_text(&hub, "beta__get-env", json!({})).await;
    assert!(alpha_env.contains("mark-alpha") && !alpha_env.contains("mark-beta"));
    assert!(beta_env.contains("mark-beta") && !beta_env.contains("mark-alpha"));
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_character_server_name_yields_valid_unique_readable_names_that_call_through() {
    let long = format!("srv_{}", "x".repeat(66));
    assert_eq!(long.len(), 70);
    let hub = start(vec![testkit_stdio(&long, &["--tools", "3"])]).await;
    let catalog = hub.catalog();
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_str()).collect();
    assert!(names.len() > 10, "{names:?}");
    for name in &names {
        assert!(valid(name), "not provider-safe: {name}");
    }
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    // The server part is shortened (its start and a hash), so every tool's own name stays
    // readable at the end of its exposed name.
    for tool in catalog.tools() {
        assert!(
            tool.name.ends_with(&format!("__{}", tool.original)),
            "{} hides {}",
            tool.name,
            tool.original
        );
        assert!(tool.name.starts_with("srv_x"), "{}", tool.name);
    }

    let echo = catalog
        .tools()
        .iter()
        .find(|t| t.original == "echo")
        .expect("echo is exposed")
        .name
        .clone();
    assert_eq!(
        call_text(&hub, &echo, json!({"message": "long"})).await,
        "long"
    );
    // The same server and tool get the same name on a fresh start.
    let again = start(vec![testkit_stdio(&long, &["--tools", "3"])]).await;
    assert!(
        again
            .catalog()
            .get(&echo)
            .is_some_and(|t| t.original == "echo")
    );
    hub.close().await;
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_filters_from_a_config_file_shape_the_catalogue() {
    let kit = crate::common::testkit_bin();
    let text = format!(
        r#"
[servers.kit]
command = "{}"
exclude = ["tool_*", "hang", "never_listed"]

[servers.kit.tool_overrides.echo]
alias = "say"
description = "Says it back."

[servers.kit.tool_overrides.gone]
alias = "ghost"
"#,
        kit.display()
    );
    let config = Config::from_toml_str(&text, None).expect("config");
    let hub = Hub::builder().config(&config).start().await.expect("hub");
    let catalog = hub.catalog();
    let say = catalog.get("kit__say").expect("alias exposed");
    assert_eq!(
        (say.original.as_str(), say.description.as_str()),
        ("echo", "Says it back.")
    );
    assert!(catalog.get("kit__echo").is_none());
    assert!(catalog.get("kit__hang").is_none());
    assert!(
        !catalog
            .tools()
            .iter()
            .any(|t| t.original.starts_with("tool_"))
    );
    // The upstream call uses the original name.
    assert_eq!(
        call_text(&hub, "kit__say", json!({"message": "via alias"})).await,
        "via alias"
    );
    let diagnostics: Vec<String> = catalog
        .diagnostics()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
    assert!(
        diagnostics.iter().any(|d| d.contains("gone")),
        "{diagnostics:?}"
    );
    assert!(
        diagnostics.iter().any(|d| d.contains("never_listed")),
        "{diagnostics:?}"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_are_never_sent_and_disallowed_nulls_are_dropped() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let hub = start(vec![ServerConfig::url("kit", kit.url.clone())]).await;

    let err = hub
        .call(
            "kit__echo_args",
            args(json!({"text": 5, "count": -1})),
            None,
        )
        .await
        .expect_err("invalid arguments");
    assert_eq!(err.class(), ErrorClass::InvalidArguments);
    let Error::InvalidArguments { problems, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("/text: ")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("/count: ")),
        "{problems:?}"
    );

    let counts: Value = serde_json::from_str(&call_text(&hub, "kit__counts", json!({})).await)
        .expect("counts JSON");
    assert!(
        counts["executions"].get("echo_args").is_none(),
        "an invalid call reached the server: {counts}"
    );

    // `text` does not allow null: dropped. `maybe` does: kept.
    let received = call_text(
        &hub,
        "kit__echo_args",
        json!({"text": null, "maybe": null, "count": 2}),
    )
    .await;
    let received: Value = serde_json::from_str(&received).expect("echo_args JSON");
    assert_eq!(received, json!({"maybe": null, "count": 2}));
    hub.close().await;
}

/// `notify_list_changed` adds `added_1` and notifies; the hub lists again and swaps.
async fn tools_changed_swaps_the_catalogue(server: ServerConfig) {
    let hub = start(vec![server]).await;
    let mut events = hub.subscribe();
    let before = hub.catalog();
    assert!(before.get("kit__added_1").is_none());

    call_text(&hub, "kit__notify_list_changed", json!({})).await;
    let event = tokio::time::timeout(STEP, events.recv())
        .await
        .expect("a change event within the step bound")
        .expect("event");
    assert_eq!(
        event,
        HubEvent::CatalogChanged {
            server: "kit".into()
        }
    );
    let after = hub.catalog();
    assert!(after.get("kit__added_1").is_some());
    assert_eq!(
        call_text(&hub, "kit__added_1", json!({"message": "new"})).await,
        "new"
    );
    // The old snapshot is untouched and its tools still call through.
    assert!(before.get("kit__added_1").is_none());
    let echo = before.resolve("kit__echo").expect("old snapshot resolves");
    assert_eq!(echo.original, "echo");
    assert_eq!(
        call_text(&hub, "kit__echo", json!({"message": "old"})).await,
        "old"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_changed_over_stdio_swaps_the_catalogue() {
    tools_changed_swaps_the_catalogue(testkit_stdio("kit", &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_changed_over_streamable_http_swaps_the_catalogue() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    tools_changed_swaps_the_catalogue(ServerConfig::url("kit", kit.url.clone())).await;
}

/// Has the testkit add `added_1` and waits (within the step bound) until the catalogue
/// has it; `how` says how the change should have arrived.
async fn add_tool_and_wait(hub: &Hub, how: &str) {
    let mut events = hub.subscribe();
    call_text(hub, "kit__notify_list_changed", json!({})).await;
    let wait = async {
        while hub.catalog().get("kit__added_1").is_none() {
            events.recv().await.expect("event");
        }
    };
    tokio::time::timeout(STEP, wait)
        .await
        .unwrap_or_else(|_| panic!("added_1 never appeared: {how}"));
}

/// A hub over `kit` that does not follow changes (the CLI's settings).
async fn start_not_following(kit: &TestkitProcess) -> Hub {
    let settings = HubSettings {
        follow_changes: false,
        ..HubSettings::default()
    };
    let servers = vec![ServerConfig::url("kit", kit.url.clone())];
    start_with_settings(settings, servers).await
}

/// 2026-07-28 servers send changes only on a `subscriptions/listen` stream.
const MODERN: [&str; 2] = ["--lifecycle", "modern"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_changed_on_a_listen_stream_over_stdio_swaps_the_catalogue() {
    tools_changed_swaps_the_catalogue(testkit_stdio("kit", &MODERN)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_changed_on_a_listen_stream_over_stateless_http_swaps_the_catalogue() {
    let kit = TestkitProcess::start("streamable-http-stateless", &MODERN);
    tools_changed_swaps_the_catalogue(ServerConfig::url("kit", kit.url.clone())).await;
}

/// The server ends its listen streams; the hub opens one again and still hears the next
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_the_server_ends_is_opened_again() {
    let kit = TestkitProcess::start("streamable-http-stateless", &MODERN);
    let hub = start(vec![ServerConfig::url("kit", kit.url.clone())]).await;
    assert_eq!(call_text(&hub, "kit__listening", json!({})).await, "1");
    assert_eq!(
        call_text(&hub, "kit__end_listens", json!({})).await,
        "ended 1"
    );
    let reopened = async {
        while call_text(&hub, "kit__listening", json!({})).await != "1" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(STEP, reopened)
        .await
        .expect("the stream opened again");
    add_tool_and_wait(&hub, "the change heard on the new stream").await;
    hub.close().await;
}

/// With no listen stream (a hub not following changes), a 2026-07-28 list is listed again
/// when its `ttlMs` runs out: the tool added meanwhile appears without any notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_is_listed_again_when_its_ttl_runs_out() {
    let kit = TestkitProcess::start(
        "streamable-http-stateless",
        &["--lifecycle", "modern", "--list-ttl", "1s"],
    );
    let hub = start_not_following(&kit).await;
    add_tool_and_wait(&hub, "the list listed again after its ttlMs").await;
    hub.close().await;
}

/// Resources (and prompts) the same way: kept while their `ttlMs` holds, then listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_listed_again_when_their_ttl_runs_out() {
    let kit = TestkitProcess::start(
        "streamable-http-stateless",
        &["--lifecycle", "modern", "--list-ttl", "2s"],
    );
    let hub = start_not_following(&kit).await;
    let added = "kit+testkit://added/1";
    let has_added =
        |listing: &Listing<ExposedResource>| listing.items.iter().any(|r| r.uri == added);
    assert!(!has_added(&hub.resources().await));
    call_text(&hub, "kit__add_resource", json!({})).await;
    // Kept: no listen stream told the hub, and the list is fresh for two seconds.
    assert!(!has_added(&hub.resources().await));
    let mut seen = false;
    for _ in 0..100 {
        if has_added(&hub.resources().await) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the resource list was never listed again");
    hub.close().await;
}

/// A one-shot hub (the CLI's settings) opens no listen stream: nothing to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_not_following_changes_opens_no_listen_stream() {
    let kit = TestkitProcess::start("streamable-http-stateless", &MODERN);
    let hub = start_not_following(&kit).await;
    assert_eq!(
        call_text(&hub, "kit__end_listens", json!({})).await,
        "ended 0"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_leaves_the_others_in_the_catalogue() {
    let mut broken = ServerConfig::url(
        "broken",
        format!("http://127.0.0.1:{}/mcp", crate::common::free_port()),
    );
    broken.connect_timeout = Duration::from_secs(2);
    let hub = Hub::builder()
        .settings(HubSettings::default())
        .servers(vec![testkit_stdio("kit", &[]), broken])
        .start()
        .await
        .expect("hub");
    assert_eq!(hub.failures().len(), 1);
    assert_eq!(hub.failures()[0].0, "broken");
    assert_eq!(hub.failures()[0].1.class(), ErrorClass::Unreachable);
    assert_eq!(
        call_text(&hub, "kit__echo", json!({"message": "ok"})).await,
        "ok"
    );
    let err = hub
        .call("broken__echo", None, None)
        .await
        .expect_err("no such tool");
    assert_eq!(err.class(), ErrorClass::UnknownTool);
    hub.close().await;
}
