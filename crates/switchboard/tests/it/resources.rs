//! Resources and prompts through a hub, against real servers over real transports: the
//! testkit (stdio and Streamable HTTP, classic and 2026-07-28 lifecycles) and
//! `@modelcontextprotocol/server-everything`.
//!
//! Exposed resource URIs are `SERVER+URI`, prompt names `SERVER__PROMPT`; both must lead
//! back to the right server and its own URI or name, and what the servers send back keeps
//! its content (text, base64 blobs, message roles).

use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};
use switchboard::config::SessionMode;
use switchboard::interaction::{ElicitAnswer, ElicitRequest, InputHandler};
use switchboard::{
    Error, ErrorClass, Hub, HubEvent, Listing, PromptOutcome, ResourceRead, Role, ServerConfig,
    Session,
};
use switchboard_testkit::offers::{HELLO_TEXT, HELLO_URI, ITEMS_TEMPLATE, PIXEL_URI};
use switchboard_testkit::{HttpMode, Knobs, Lifecycle, TINY_PNG_BASE64, serve_streamable_http};

use crate::common::testkit_stdio;

/// Upper bound for one step (start, list, read, an event). Not a timing assertion.
const STEP: Duration = Duration::from_secs(30);

fn args(value: Value) -> Option<Map<String, Value>> {
    value.as_object().cloned()
}

async fn start(servers: Vec<ServerConfig>) -> Hub {
    let hub = tokio::time::timeout(STEP, Hub::builder().servers(servers).start())
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    hub
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within the step bound"))
}

async fn read(hub: &Hub, uri: &str) -> ResourceRead {
    bounded(uri, hub.read_resource(uri, None))
        .await
        .unwrap_or_else(|e| panic!("read {uri}: {e} [{}]", e.class()))
}

async fn prompt(hub: &Hub, name: &str, arguments: Value) -> PromptOutcome {
    bounded(name, hub.get_prompt(name, args(arguments), None))
        .await
        .unwrap_or_else(|e| panic!("prompt {name}: {e} [{}]", e.class()))
}

fn complete<T>(what: &str, listing: Listing<T>) -> Vec<T> {
    assert!(
        listing.failures.is_empty(),
        "{what}: {:?}",
        listing.failures
    );
    listing.items
}

/// Everything a client does with the testkit's resources and prompts, on server `kit`.
async fn exercise_the_testkit(label: &str, hub: &Hub) {
    let resources = complete(label, bounded(label, hub.resources()).await);
    let hello = format!("kit+{HELLO_URI}");
    let pixel = format!("kit+{PIXEL_URI}");
    let listed = resources.iter().find(|r| r.uri == hello);
    let listed = listed.unwrap_or_else(|| panic!("[{label}] {hello} not in {resources:?}"));
    assert_eq!(
        (listed.server.as_str(), listed.server_uri.as_str()),
        ("kit", HELLO_URI)
    );
    assert_eq!(listed.mime_type.as_deref(), Some("text/plain"), "[{label}]");
    assert_eq!(listed.size, Some(HELLO_TEXT.len() as u64), "[{label}]");
    assert!(resources.iter().any(|r| r.uri == pixel), "[{label}]");

    // Text: as sent, under the exposed URI.
    let text = read(hub, &hello).await;
    assert_eq!(text.contents.len(), 1, "[{label}]");
    assert_eq!(text.contents[0].uri, hello, "[{label}]");
    assert_eq!(text.text(), HELLO_TEXT, "[{label}]");
    // Blob: base64 as sent, with its MIME type; no text.
    let blob = read(hub, &pixel).await;
    let part = &blob.contents[0];
    assert_eq!(part.blob.as_deref(), Some(TINY_PNG_BASE64), "[{label}]");
    assert_eq!(part.mime_type.as_deref(), Some("image/png"), "[{label}]");
    assert_eq!((part.text.as_deref(), part.blob_len()), (None, Some(70)));

    // A template, filled in, reads like any resource.
    let templates = complete(label, bounded(label, hub.resource_templates()).await);
    let template = format!("kit+{ITEMS_TEMPLATE}");
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == template && t.server == "kit"),
        "[{label}] {template} not in {templates:?}"
    );
    let item = read(hub, &template.replace("{id}", "42")).await;
    assert_eq!(item.text(), "item 42", "[{label}]");

    // Prompts: namespaced, with their arguments.
    let prompts = complete(label, bounded(label, hub.prompts()).await);
    let greet = prompts.iter().find(|p| p.name == "kit__greet");
    let greet = greet.unwrap_or_else(|| panic!("[{label}] kit__greet not in {prompts:?}"));
    assert_eq!(
        (greet.server.as_str(), greet.original.as_str()),
        ("kit", "greet")
    );
    let arguments: Vec<(&str, bool)> = greet
        .arguments
        .iter()
        .map(|a| (a.name.as_str(), a.required))
        .collect();
    assert_eq!(arguments, [("name", true), ("style", false)], "[{label}]");
    let hello = prompt(hub, "kit__greet", json!({"name": "Ada", "style": "warm"})).await;
    assert_eq!(hello.text(), "Hello, Ada! (warm)", "[{label}]");
    assert_eq!(hello.messages[0].role, Role::User, "[{label}]");
    let summary = prompt(hub, "kit__summary", Value::Null).await;
    let roles: Vec<Role> = summary.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant], "[{label}]");

    // What is wrong says what it is.
    let missing = bounded(label, hub.get_prompt("kit__greet", None, None)).await;
    let missing = missing.expect_err("greet without its required argument");
    assert_eq!(
        missing.class(),
        ErrorClass::InvalidArguments,
        "[{label}] {missing}"
    );
    assert!(
        matches!(missing, Error::Rejected { .. }),
        "[{label}] {missing:?}"
    );
    let unknown = bounded(label, hub.get_prompt("kit__greeet", None, None)).await;
    match unknown.expect_err("no such prompt") {
        Error::NotFound {
            server: None,
            suggestion,
            ..
        } => assert_eq!(suggestion.as_deref(), Some("kit__greet"), "[{label}]"),
        other => panic!("[{label}] {other:?}"),
    }
    // What a tool result points to is named as the hub exposes it, and can be read so.
    let mixed = bounded(label, hub.call("kit__mixed", None, None)).await;
    let mixed = mixed.expect("kit__mixed");
    let uris: Vec<&str> = (mixed.content.iter())
        .filter_map(|block| match block.kind() {
            "resource_link" => block.as_json()["uri"].as_str(),
            "resource" => block.as_json()["resource"]["uri"].as_str(),
            _ => None,
        })
        .collect();
    assert_eq!(
        uris,
        [
            format!("kit+{HELLO_URI}").as_str(),
            "kit+file:///switchboard-testkit/embedded.txt"
        ],
        "[{label}]"
    );
    assert_eq!(read(hub, uris[0]).await.text(), HELLO_TEXT, "[{label}]");
    let nowhere = bounded(label, hub.read_resource("kit+testkit://nope", None)).await;
    let nowhere = nowhere.expect_err("no such resource");
    assert_eq!(nowhere.class(), ErrorClass::NotFound, "[{label}] {nowhere}");
    assert_eq!(
        nowhere.server(),
        Some("kit"),
        "[{label}] the server said so"
    );
    // The server's own URI is not an exposed one: the exposed one is suggested.
    let bare = bounded(label, hub.read_resource(HELLO_URI, None)).await;
    match bare.expect_err("an unprefixed URI") {
        Error::NotFound {
            server: None,
            suggestion,
            ..
        } => assert_eq!(suggestion, Some(format!("kit+{HELLO_URI}")), "[{label}]"),
        other => panic!("[{label}] {other:?}"),
    }
    let stranger = bounded(label, hub.read_resource("other+testkit://x", None)).await;
    let stranger = stranger.expect_err("no server 'other'");
    assert_eq!(
        stranger.class(),
        ErrorClass::NotFound,
        "[{label}] {stranger}"
    );
}

fn lifecycle_args(lifecycle: Lifecycle) -> Vec<&'static str> {
    match lifecycle {
        Lifecycle::Classic => vec!["--lifecycle", "classic"],
        Lifecycle::Modern => vec!["--lifecycle", "modern"],
        Lifecycle::Both => vec!["--lifecycle", "both"],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_over_stdio_of_each_lifecycle() {
    for lifecycle in [Lifecycle::Classic, Lifecycle::Modern] {
        let hub = start(vec![testkit_stdio("kit", &lifecycle_args(lifecycle))]).await;
        exercise_the_testkit(&format!("stdio {lifecycle:?}"), &hub).await;
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts_over_streamable_http_of_each_lifecycle() {
    for (lifecycle, mode) in [
        (Lifecycle::Classic, HttpMode::Stateful),
        (Lifecycle::Modern, HttpMode::Stateless),
    ] {
        let knobs = Knobs {
            lifecycle,
            // Every list comes in pages: all of them are read.
            page_size: 1,
            ..Knobs::default()
        };
        let running = serve_streamable_http(knobs, mode).await.unwrap();
        let hub = start(vec![ServerConfig::url("kit", running.url())]).await;
        exercise_the_testkit(&format!("http {lifecycle:?}"), &hub).await;
        hub.close().await;
        running.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_first_askers_share_one_listing() {
    let running = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let hub = start(vec![ServerConfig::url("kit", running.url())]).await;
    let askers = (0..20).map(|_| async {
        let (resources, prompts) = futures::join!(hub.resources(), hub.prompts());
        (
            complete("resources", resources).len(),
            complete("prompts", prompts).len(),
        )
    });
    let answers = bounded("20 first listings", join_all(askers)).await;
    assert!(
        answers
            .iter()
            .all(|a| *a == answers[0] && a.0 > 0 && a.1 > 0),
        "{answers:?}"
    );
    complete("resources again", hub.resources().await);
    let counts: Value = serde_json::from_str(&call_text(&hub, "kit__counts").await).unwrap();
    assert_eq!(counts["listings"]["resources/list"], 1, "{counts}");
    assert_eq!(counts["listings"]["prompts/list"], 1, "{counts}");
    hub.close().await;
    running.shutdown().await;
}

/// The next hub event that is not a catalogue change.
async fn next_offer_event(events: &mut tokio::sync::broadcast::Receiver<HubEvent>) -> HubEvent {
    loop {
        let event = bounded("a hub event", events.recv()).await.expect("event");
        if !matches!(event, HubEvent::CatalogChanged { .. }) {
            return event;
        }
    }
}

/// The text of calling the testkit's `tool` (no arguments).
async fn call_text(hub: &Hub, tool: &str) -> String {
    let outcome = bounded(tool, hub.call(tool, None, None)).await;
    outcome.unwrap_or_else(|e| panic!("{tool}: {e}")).text()
}

/// `add_resource` / `add_prompt` add one and notify: the hub relists and says so. A
/// 2026-07-28 server tells its changes only on the hub's `subscriptions/listen` stream.
async fn list_changed_updates_the_hub(label: &str, lifecycle: Lifecycle, server: ServerConfig) {
    let hub = start(vec![server]).await;
    if lifecycle == Lifecycle::Modern {
        assert_eq!(call_text(&hub, "kit__listening").await, "1", "[{label}]");
    }
    let mut events = hub.subscribe();
    let uris = |l: Listing<switchboard::ExposedResource>| -> Vec<String> {
        complete(label, l).into_iter().map(|r| r.uri).collect()
    };
    let before = uris(hub.resources().await);
    assert!(
        !before.contains(&"kit+testkit://added/1".to_owned()),
        "[{label}]"
    );
    let outcome = bounded(label, hub.call("kit__add_resource", None, None)).await;
    assert_eq!(
        outcome.unwrap().text(),
        "added testkit://added/1",
        "[{label}]"
    );
    assert_eq!(
        next_offer_event(&mut events).await,
        HubEvent::ResourcesChanged {
            server: "kit".into()
        },
        "[{label}]"
    );
    let after = uris(hub.resources().await);
    assert_eq!(after.len(), before.len() + 1, "[{label}] {after:?}");
    assert_eq!(
        read(&hub, "kit+testkit://added/1").await.text(),
        "added resource 1",
        "[{label}]"
    );

    let names = |l: Listing<switchboard::ExposedPrompt>| -> Vec<String> {
        complete(label, l).into_iter().map(|p| p.name).collect()
    };
    assert!(!names(hub.prompts().await).contains(&"kit__added_prompt_1".to_owned()));
    bounded(label, hub.call("kit__add_prompt", None, None))
        .await
        .unwrap();
    assert_eq!(
        next_offer_event(&mut events).await,
        HubEvent::PromptsChanged {
            server: "kit".into()
        },
        "[{label}]"
    );
    assert!(names(hub.prompts().await).contains(&"kit__added_prompt_1".to_owned()));
    let added = prompt(&hub, "kit__added_prompt_1", Value::Null).await;
    assert_eq!(added.text(), "added_prompt_1 says hi", "[{label}]");
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_over_stdio_updates_resources_and_prompts() {
    for lifecycle in [Lifecycle::Classic, Lifecycle::Modern] {
        let server = testkit_stdio("kit", &lifecycle_args(lifecycle));
        list_changed_updates_the_hub(&format!("stdio {lifecycle:?}"), lifecycle, server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_over_streamable_http_updates_resources_and_prompts() {
    for (lifecycle, mode) in [
        (Lifecycle::Classic, HttpMode::Stateful),
        (Lifecycle::Modern, HttpMode::Stateless),
    ] {
        let knobs = Knobs {
            lifecycle,
            ..Knobs::default()
        };
        let running = serve_streamable_http(knobs, mode).await.unwrap();
        let server = ServerConfig::url("kit", running.url());
        list_changed_updates_the_hub(&format!("http {lifecycle:?}"), lifecycle, server).await;
        running.shutdown().await;
    }
}

/// A 2026-07-28 server that ends its listen stream: the hub opens it again and, since
/// changes in the gap went unheard, relists resources and prompts as after a reconnect; the
/// new stream carries resource changes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_listen_stream_relists_resources_and_prompts() {
    let knobs = Knobs {
        lifecycle: Lifecycle::Modern,
        ..Knobs::default()
    };
    let running = serve_streamable_http(knobs, HttpMode::Stateless)
        .await
        .unwrap();
    let hub = start(vec![ServerConfig::url("kit", running.url())]).await;
    complete("resources", hub.resources().await);
    complete("prompts", hub.prompts().await);
    let mut events = hub.subscribe();
    assert_eq!(call_text(&hub, "kit__end_listens").await, "ended 1");
    let mut heard = vec![
        next_offer_event(&mut events).await,
        next_offer_event(&mut events).await,
    ];
    heard.sort_by_key(|event| matches!(event, HubEvent::PromptsChanged { .. }));
    let server = || "kit".to_owned();
    assert_eq!(
        heard,
        [
            HubEvent::ResourcesChanged { server: server() },
            HubEvent::PromptsChanged { server: server() }
        ]
    );
    assert_eq!(call_text(&hub, "kit__listening").await, "1");
    call_text(&hub, "kit__add_resource").await;
    assert_eq!(
        next_offer_event(&mut events).await,
        HubEvent::ResourcesChanged { server: server() }
    );
    let uris: Vec<String> = complete("resources", hub.resources().await)
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert!(
        uris.contains(&"kit+testkit://added/1".to_owned()),
        "{uris:?}"
    );
    hub.close().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_round_trip_by_exposed_uri_and_name() {
    let mut b = testkit_stdio("b", &[]);
    b.session_mode = SessionMode::PerSession;
    let hub = start(vec![testkit_stdio("a", &["--lifecycle", "modern"]), b]).await;
    let resources = complete("two", hub.resources().await);
    for server in ["a", "b"] {
        let uri = format!("{server}+{HELLO_URI}");
        let resource = resources.iter().find(|r| r.uri == uri).expect(&uri);
        assert_eq!(resource.server, server);
    }
    // Each URI reaches its own server: the parts come back under that server's prefix.
    let read_b = read(&hub, &format!("b+{HELLO_URI}")).await;
    assert_eq!(read_b.contents[0].uri, format!("b+{HELLO_URI}"));
    let read_a = read(&hub, &format!("a+{ITEMS_TEMPLATE}").replace("{id}", "7")).await;
    assert_eq!(read_a.contents[0].uri, "a+testkit://items/7");
    let prompts = complete("two", hub.prompts().await);
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "a__confirm",
            "a__greet",
            "a__summary",
            "b__confirm",
            "b__greet",
            "b__summary"
        ],
        "server, then prompt order"
    );
    let greeting = prompt(&hub, "b__greet", json!({"name": "Bo"})).await;
    assert_eq!(greeting.text(), "Hello, Bo!");

    // On behalf of a session: a per-session server uses (and keeps) the session's own
    // connection.
    let session = Session::new("alice", Default::default());
    let uri = format!("b+{HELLO_URI}");
    let mine = hub
        .read_resource_in(Some(&session), &uri, None)
        .await
        .unwrap();
    assert_eq!(mine.text(), HELLO_TEXT);
    let theirs = hub
        .get_prompt_in(Some(&session), "b__greet", args(json!({"name": 7})), None)
        .await
        .unwrap();
    assert_eq!(
        theirs.text(),
        "Hello, 7!",
        "non-string values go as their JSON text"
    );
    assert_eq!(hub.session_count("b"), 1);
    hub.close().await;
}

/// A 2026-07-28 server may ask for input before it gives a prompt (SEP-2322): it is
/// answered by the server's elicitation policy and the request sent again with its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_server_asking_for_input_gets_its_answers_and_state_back() {
    let mut kit = testkit_stdio("kit", &["--lifecycle", "modern"]);
    kit.elicitation = switchboard::config::ElicitationPolicy::AcceptDefaults;
    let hub = start(vec![kit]).await;
    let got = prompt(&hub, "kit__confirm", Value::Null).await;
    let got: Value = serde_json::from_str(&got.text()).expect("the answers as JSON");
    assert_eq!(got["state"], "round-1", "{got}");
    assert_eq!(got["answers"]["confirm"]["action"], "accept", "{got}");
    assert_eq!(
        got["answers"]["confirm"]["content"],
        json!({"go": true}),
        "{got}"
    );
    hub.close().await;
}

/// Answers every form with `{"go": self.0}`.
struct Go(bool);

impl InputHandler for Go {
    fn elicit(&self, _request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        let content = json!({"go": self.0}).as_object().cloned();
        Box::pin(async move { ElicitAnswer::Accept(content) })
    }
}

/// What a server asks during a prompt get is answered like a tool call's: by the session's
/// input handler, else the hub's (the policy, decline, would answer neither way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_get_s_input_is_answered_by_the_session_s_handler_else_the_hub_s() {
    let kit = testkit_stdio("kit", &["--lifecycle", "modern"]);
    let hub = Hub::builder().input_handler(Go(true)).servers(vec![kit]);
    let hub = bounded("start", hub.start()).await.expect("hub start");
    let go = |got: PromptOutcome| {
        let got: Value = serde_json::from_str(&got.text()).expect("the answers as JSON");
        got["answers"]["confirm"]["content"]["go"].clone()
    };
    let by_hub = bounded("get", hub.get_prompt("kit__confirm", None, None)).await;
    assert_eq!(go(by_hub.unwrap()), json!(true));
    let session = Session::new("s", Default::default()).with_input_handler(Go(false));
    let by_session = hub.get_prompt_in(Some(&session), "kit__confirm", None, None);
    assert_eq!(go(bounded("get", by_session).await.unwrap()), json!(false));
    hub.close().await;
}

/// `hidden` answers resources and prompts requests but does not declare the capabilities:
/// had the hub asked, its items would be listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_capabilities_is_not_asked() {
    let hub = start(vec![
        testkit_stdio("hidden", &["--hide-offers"]),
        testkit_stdio("kit", &[]),
    ])
    .await;
    let resources = complete("resources", hub.resources().await);
    let templates = complete("templates", hub.resource_templates().await);
    let prompts = complete("prompts", hub.prompts().await);
    let servers: Vec<&str> = (resources.iter().map(|r| r.server.as_str()))
        .chain(templates.iter().map(|t| t.server.as_str()))
        .chain(prompts.iter().map(|p| p.server.as_str()))
        .collect();
    assert!(
        !servers.is_empty() && servers.iter().all(|s| *s == "kit"),
        "{servers:?}"
    );
    // Nor is it asked to read (it would answer).
    let uri = format!("hidden+{HELLO_URI}");
    let hidden = hub
        .read_resource(&uri, None)
        .await
        .expect_err("not offered");
    assert_eq!(hidden.class(), ErrorClass::NotFound, "{hidden}");
    assert!(
        hidden.to_string().contains("offers no resources"),
        "{hidden}"
    );
    let hidden = hub.get_prompt("hidden__greet", None, None).await;
    assert_eq!(hidden.unwrap_err().class(), ErrorClass::NotFound);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_list_leaves_the_others_listed() {
    let gone = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let mut down = ServerConfig::url("down", gone.url());
    down.connect_timeout = Duration::from_secs(2);
    down.reconnect.max_attempts = 1;
    let hub = start(vec![testkit_stdio("kit", &[]), down]).await;
    // Registered, then gone before anything but tools was listed.
    gone.shutdown().await;
    for (what, failures, servers) in [
        {
            let l = hub.resources().await;
            (
                "resources",
                l.failures,
                l.items.iter().map(|r| r.server.clone()).collect::<Vec<_>>(),
            )
        },
        {
            let l = hub.prompts().await;
            (
                "prompts",
                l.failures,
                l.items.iter().map(|p| p.server.clone()).collect(),
            )
        },
    ] {
        assert_eq!(failures.len(), 1, "{what}: {failures:?}");
        assert_eq!(failures[0].server.as_deref(), Some("down"), "{what}");
        assert!(
            !servers.is_empty() && servers.iter().all(|s| s == "kit"),
            "{what}"
        );
    }
    // A prompt of the server that could not list them: the error says why it is missing.
    let error = hub.get_prompt("down__greet", None, None).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::NotFound);
    assert!(
        error.to_string().contains("could not list prompts"),
        "{error}"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_resources_and_prompts() {
    let hub = start(vec![crate::everything::stdio_config("ev")]).await;
    let resources = complete("everything", bounded("resources", hub.resources()).await);
    let doc = resources
        .iter()
        .find(|r| r.uri.starts_with("ev+demo://resource/static/document/"))
        .unwrap_or_else(|| panic!("no static doc in {resources:?}"));
    assert_eq!(doc.uri, format!("ev+{}", doc.server_uri));
    let text = read(&hub, &doc.uri.clone()).await;
    assert!(!text.text().is_empty(), "{text:?}");
    assert_eq!(text.contents[0].uri, doc.uri);

    let templates = complete("everything", hub.resource_templates().await);
    let blob_template = templates
        .iter()
        .find(|t| t.uri_template == "ev+demo://resource/dynamic/blob/{resourceId}")
        .unwrap_or_else(|| panic!("no blob template in {templates:?}"));
    let blob = read(
        &hub,
        &blob_template.uri_template.replace("{resourceId}", "3"),
    )
    .await;
    assert!(
        blob.contents[0].blob_len().is_some_and(|n| n > 0),
        "{blob:?}"
    );
    assert_eq!(blob.contents[0].text, None);

    let prompts = complete("everything", hub.prompts().await);
    let args_prompt = prompts.iter().find(|p| p.name == "ev__args-prompt");
    let args_prompt = args_prompt.unwrap_or_else(|| panic!("no args-prompt in {prompts:?}"));
    let city = args_prompt.arguments.iter().find(|a| a.name == "city");
    assert!(city.is_some_and(|c| c.required), "{args_prompt:?}");
    let weather = prompt(&hub, "ev__args-prompt", json!({"city": "Paris"})).await;
    assert!(weather.text().contains("Paris"), "{weather:?}");
    let simple = prompt(&hub, "ev__simple-prompt", Value::Null).await;
    assert!(!simple.text().is_empty());

    let missing = hub.get_prompt("ev__args-prompt", None, None).await;
    let missing = missing.expect_err("args-prompt without city");
    assert_eq!(missing.class(), ErrorClass::InvalidArguments, "{missing}");
    // The TypeScript SDK says "invalid params" for an unknown URI: still not found.
    let nowhere = hub.read_resource("ev+demo://nope/1", None).await;
    let nowhere = nowhere.expect_err("no such resource");
    assert_eq!(nowhere.class(), ErrorClass::NotFound, "{nowhere}");
    hub.close().await;
}

/// The next `ResourceUpdated` (other hub events skipped).
async fn next_update(events: &mut tokio::sync::broadcast::Receiver<HubEvent>) -> (String, String) {
    loop {
        match bounded("a resource update", events.recv()).await {
            Ok(HubEvent::ResourceUpdated { server, uri }) => return (server, uri),
            Ok(_) => {}
            Err(error) => panic!("hub events: {error}"),
        }
    }
}

/// What the testkit says is subscribed to now.
async fn subscribed(hub: &Hub) -> Value {
    let counts: Value = serde_json::from_str(&call_text(hub, "kit__counts").await).unwrap();
    counts["subscribed"].clone()
}

/// A subscribed resource's `notifications/resources/updated` becomes a hub event naming
/// the server and its own URI (what the subscription returned); subscriptions are counted
/// (the server is told to unsubscribe when the last subscriber leaves) and a new connection
/// after a lost one is subscribed again before anything else is sent on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_hub_and_subscriptions_survive_a_reconnect() {
    let hub = start(vec![testkit_stdio("kit", &[])]).await;
    let resources = complete("resources", bounded("resources", hub.resources()).await);
    let hello = resources
        .iter()
        .find(|r| r.server_uri == HELLO_URI)
        .expect("hello listed")
        .uri
        .clone();
    let mut events = hub.subscribe();
    let subscribed_to = bounded("subscribe", hub.subscribe_resource_in(None, &hello, None))
        .await
        .unwrap();
    assert_eq!(subscribed_to.server, "kit");
    assert_eq!(subscribed_to.uri, HELLO_URI);
    let touch = |uri: &str| args(json!({"uri": uri}));
    bounded(
        "touch",
        hub.call("kit__touch_resource", touch(HELLO_URI), None),
    )
    .await
    .unwrap();
    assert_eq!(
        next_update(&mut events).await,
        ("kit".into(), HELLO_URI.into())
    );
    // The server dies; the next call reconnects, and the new server is subscribed again.
    let dropped = bounded("drop", hub.call("kit__drop", None, None)).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(subscribed(&hub).await, json!([HELLO_URI]));
    bounded(
        "touch",
        hub.call("kit__touch_resource", touch(HELLO_URI), None),
    )
    .await
    .unwrap();
    assert_eq!(
        next_update(&mut events).await,
        ("kit".into(), HELLO_URI.into())
    );
    // Two subscribers: the first to leave leaves the server subscribed, the last does not.
    bounded("subscribe", hub.subscribe_resource_in(None, &hello, None))
        .await
        .unwrap();
    bounded(
        "unsubscribe",
        hub.unsubscribe_resource_in(None, &hello, None),
    )
    .await
    .unwrap();
    assert_eq!(subscribed(&hub).await, json!([HELLO_URI]));
    bounded(
        "unsubscribe",
        hub.unsubscribe_resource_in(None, &hello, None),
    )
    .await
    .unwrap();
    assert_eq!(subscribed(&hub).await, json!([]));
    hub.close().await;
}
