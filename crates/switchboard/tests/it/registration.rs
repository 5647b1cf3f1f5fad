//! Registration policies and health through the [`Hub`], against real servers: a good
//! stdio testkit, a refused port, a testkit that never answers `initialize`, and a
//! Streamable HTTP testkit that wants a bearer token. What is registered, what is skipped,
//! what is logged (WARN or DEBUG), what `fail_fast` closes, a skipped server joining when it
//! comes up, health states, a server removed while a call runs, and a discovery source
//! (failing, recovering, refreshed while calls run). And how a hub ends: `close` stops every
//! background task, and dropping the last handle without it kills stdio servers.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{TestkitProcess, eventually, free_port, process_alive, testkit_stdio};
use serde_json::json;
use switchboard::config::{ReconnectPolicy, RegistrationPolicy, SessionMode, ToolOverride};
use switchboard::discovery::Discovery;
use switchboard::hub::Source;
use switchboard::hub::{CallInfo, CallLayer, ConnectEvent, RequestInfo, TraceCalls};
use switchboard::{
    CallOutcome, Error, ErrorClass, Hub, HubEvent, HubSettings, Overall, ServerConfig, ServerState,
    Session,
};
use tokio::time::Instant;

const STEP: Duration = Duration::from_secs(30);

/// The four kinds of server a policy is tried on.
struct Mix {
    servers: Vec<ServerConfig>,
    _auth_kit: TestkitProcess,
}

fn mix() -> Mix {
    let good = testkit_stdio("good", &[]);
    let refused = ServerConfig::url("refused", format!("http://127.0.0.1:{}/mcp", free_port()));
    let mut hanging = testkit_stdio("hanging", &["--hang-initialize"]);
    hanging.connect_timeout = Duration::from_millis(800);
    let auth_kit = TestkitProcess::start("streamable-http", &["--require-bearer", "Bearer s3cret"]);
    let locked = ServerConfig::url("locked", auth_kit.url.clone());
    let mut servers = vec![good, refused, hanging, locked];
    for server in &mut servers {
        server.reconnect = fast_retry();
    }
    Mix {
        servers,
        _auth_kit: auth_kit,
    }
}

fn fast_retry() -> ReconnectPolicy {
    ReconnectPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(300),
    }
}

fn settings(policy: RegistrationPolicy, retry: bool) -> HubSettings {
    let mut settings = HubSettings::default();
    settings.registration.on_error = policy;
    settings.registration.retry_skipped = retry;
    settings
}

/// Log lines written while `f` runs on this thread (a current-thread runtime keeps every
/// hub task on it).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn skip_lines(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("skipping MCP server"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn skip_with_warning_registers_the_good_and_warns_about_each_other_server() {
    let (logs, _guard) = capture_logs();
    let mix = mix();
    let hub = tokio::time::timeout(
        STEP,
        Hub::builder()
            .settings(settings(RegistrationPolicy::SkipWithWarning, false))
            .servers(mix.servers.clone())
            .start(),
    )
    .await
    .expect("start within the step bound")
    .expect("the skip policies never fail the start");

    assert_eq!(hub.servers(), vec!["good".to_string()]);
    let failures: Vec<(&str, ErrorClass)> = hub
        .failures()
        .iter()
        .map(|(server, error)| (server.as_str(), error.class()))
        .collect();
    assert_eq!(
        failures,
        vec![
            ("hanging", ErrorClass::Timeout),
            ("locked", ErrorClass::Auth),
            ("refused", ErrorClass::Unreachable),
        ]
    );
    let locked = &hub.failures()[1].1;
    assert_eq!(
        locked.resource_metadata().as_deref(),
        Some("http://127.0.0.1/.well-known/oauth-protected-resource/mcp")
    );
    assert!(hub.catalog().get("good__echo").is_some());

    let lines = logs.lines();
    let skips = skip_lines(&lines);
    assert_eq!(skips.len(), 3, "{lines:#?}");
    for (server, class) in [
        ("hanging", "timeout"),
        ("locked", "auth"),
        ("refused", "unreachable"),
    ] {
        let line = skips
            .iter()
            .find(|l| {
                l.contains(&format!("server=\"{server}\""))
                    || l.contains(&format!("server={server}"))
            })
            .unwrap_or_else(|| panic!("no line for {server}: {skips:#?}"));
        assert!(line.contains(" WARN "), "{line}");
        assert!(line.contains(&format!("class={class}")), "{line}");
        assert!(line.contains("policy=skip_with_warning"), "{line}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("s3cret")),
        "a secret was logged"
    );

    let health = hub.health();
    assert_eq!(health.overall, Overall::Degraded);
    let states: Vec<(&str, ServerState, usize)> = health
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.state, s.tools))
        .collect();
    let good_tools = hub.catalog().len();
    assert_eq!(
        states,
        vec![
            ("good", ServerState::Ready, good_tools),
            ("hanging", ServerState::Skipped, 0),
            ("locked", ServerState::NeedsAuth, 0),
            ("refused", ServerState::Skipped, 0),
        ]
    );
    let good = &health.servers[0];
    assert!(good.last_success.is_some() && good.last_error.is_none());
    let locked = &health.servers[2];
    assert_eq!(
        locked
            .last_error
            .as_ref()
            .and_then(|e| e.resource_metadata.as_deref()),
        Some("http://127.0.0.1/.well-known/oauth-protected-resource/mcp")
    );
    let refused = &health.servers[3];
    assert_eq!(
        refused.last_error.as_ref().map(|e| e.class),
        Some(ErrorClass::Unreachable)
    );
    hub.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn skip_silently_logs_at_debug_only() {
    let (logs, _guard) = capture_logs();
    let mix = mix();
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::SkipSilently, false))
        .servers(mix.servers.clone())
        .start()
        .await
        .expect("start");
    assert_eq!(hub.servers(), vec!["good".to_string()]);
    assert_eq!(hub.failures().len(), 3);
    let lines = logs.lines();
    let skips = skip_lines(&lines);
    assert_eq!(skips.len(), 3, "{lines:#?}");
    assert!(
        skips
            .iter()
            .all(|l| l.contains(" DEBUG ") && l.contains("policy=skip_silently")),
        "{skips:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains(" WARN ")), "{lines:#?}");
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_names_the_server_and_closes_what_was_opened() {
    let mix = mix();
    // Only the hanging server fails, after its connect timeout: by then the good ones are
    // open, and must be closed.
    let servers: Vec<ServerConfig> = mix
        .servers
        .iter()
        .filter(|s| s.name == "good" || s.name == "hanging")
        .cloned()
        .chain([testkit_stdio("good2", &[])])
        .collect();
    let pids = Arc::new(Mutex::new(Vec::new()));
    let seen = pids.clone();
    let started = Instant::now();
    let error = match Hub::builder()
        .settings(settings(RegistrationPolicy::FailFast, true))
        .servers(servers)
        .on_connect(move |event| {
            if let ConnectEvent::Opened {
                process_id: Some(pid),
                ..
            } = event
            {
                seen.lock().unwrap().push(pid);
            }
        })
        .start()
        .await
    {
        Ok(_) => panic!("fail_fast must fail the start"),
        Err(error) => error,
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&error, Error::Registration { server, .. } if server == "hanging"),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Timeout);
    let message = error.to_string();
    assert!(
        message.contains("'hanging'")
            && message.contains("fail_fast")
            && message.contains("timed out"),
        "{message}"
    );
    let pids = pids.lock().unwrap().clone();
    assert_eq!(pids.len(), 2, "both good servers were opened first");
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || !process_alive(pid)),
            "server process {pid} still runs after fail_fast"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_may_override_the_policy() {
    let mix = mix();
    let mut servers: Vec<ServerConfig> = mix
        .servers
        .iter()
        .filter(|s| s.name == "good" || s.name == "refused")
        .cloned()
        .collect();
    servers[1].on_registration_error = Some(RegistrationPolicy::SkipSilently);
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::FailFast, false))
        .servers(servers)
        .start()
        .await
        .expect("the refused server is allowed to be skipped");
    assert_eq!(hub.servers(), vec!["good".to_string()]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_server_is_retried_and_joins_the_catalogue_when_it_comes_up() {
    let port = free_port();
    let mut late = ServerConfig::url("late", format!("http://127.0.0.1:{port}/mcp"));
    late.reconnect = fast_retry();
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::SkipWithWarning, true))
        .servers([testkit_stdio("good", &[]), late])
        .start()
        .await
        .expect("start");
    let mut events = hub.subscribe();
    let health = hub.health();
    assert_eq!(health.overall, Overall::Degraded);
    assert_eq!(health.servers[1].state, ServerState::Retrying);
    assert!(hub.catalog().get("late__echo").is_none());

    let _kit = TestkitProcess::start_on("streamable-http", port, &[]);
    let event = tokio::time::timeout(STEP, events.recv())
        .await
        .expect("the late server joined within the step bound")
        .expect("event");
    assert_eq!(
        event,
        HubEvent::CatalogChanged {
            server: "late".into()
        }
    );
    let outcome = hub
        .call(
            "late__echo",
            json!({"message": "joined"}).as_object().cloned(),
            None,
        )
        .await
        .expect("call the late server");
    assert_eq!(outcome.text(), "joined");
    let health = hub.health();
    assert_eq!(health.overall, Overall::Healthy);
    assert_eq!(health.servers[1].state, ServerState::Ready);
    assert!(health.servers[1].tools > 0);
    assert!(health.servers[1].last_success.is_some());
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_when_nothing_is_ready_and_disabled_servers_are_only_listed() {
    let mut off = testkit_stdio("off", &[]);
    off.enabled = false;
    let refused = ServerConfig::url("refused", format!("http://127.0.0.1:{}/mcp", free_port()));
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::SkipSilently, false))
        .servers([off, refused])
        .start()
        .await
        .expect("start");
    let health = hub.health();
    assert_eq!(health.overall, Overall::Unhealthy);
    let states: Vec<ServerState> = health.servers.iter().map(|s| s.state).collect();
    assert_eq!(states, vec![ServerState::Disabled, ServerState::Skipped]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_server_finishes_its_calls_in_flight_then_closes() {
    let hub = Hub::builder()
        .settings(HubSettings::default())
        .servers([testkit_stdio("kit", &[]), testkit_stdio("other", &[])])
        .start()
        .await
        .expect("start");
    let mut events = hub.subscribe();
    let caller = hub.clone();
    let slow = tokio::spawn(async move {
        caller
            .call("kit__sleep", json!({"ms": 600}).as_object().cloned(), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let removing = Instant::now();
    hub.remove_server("kit", Duration::from_secs(10)).await;
    let outcome = slow
        .await
        .expect("join")
        .expect("the call in flight finished");
    assert!(!outcome.is_error, "{}", outcome.text());
    assert!(
        removing.elapsed() >= Duration::from_millis(300),
        "closed before the call in flight finished"
    );
    assert_eq!(
        events.recv().await.expect("event"),
        HubEvent::CatalogChanged {
            server: "kit".into()
        }
    );
    let err = hub
        .call(
            "kit__echo",
            json!({"message": "x"}).as_object().cloned(),
            None,
        )
        .await
        .expect_err("the server is gone");
    assert_eq!(err.class(), ErrorClass::UnknownTool);
    assert!(hub.catalog().get("other__echo").is_some());
    assert_eq!(hub.servers(), vec!["other".to_string()]);
    hub.close().await;
}

/// A discovery source whose answer the test sets: servers, or an error; plus names of
/// entries it lists without a usable URL.
#[derive(Clone, Default)]
struct Registry(
    Arc<Mutex<Option<Vec<ServerConfig>>>>,
    Arc<Mutex<Vec<String>>>,
);

impl Registry {
    fn answer(&self, servers: Option<Vec<ServerConfig>>) {
        *self.0.lock().unwrap() = servers;
    }

    fn unusable(&self, names: &[&str]) {
        *self.1.lock().unwrap() = names.iter().map(|n| n.to_string()).collect();
    }

    fn source(&self, refresh: Option<Duration>) -> Source {
        let (answer, unusable) = (self.0.clone(), self.1.clone());
        Source {
            name: "registry".into(),
            discover: Arc::new(move || {
                let answer = answer.lock().unwrap().clone();
                let unusable = unusable.lock().unwrap().clone();
                Box::pin(async move {
                    match answer {
                        Some(servers) => Ok(Discovery {
                            servers,
                            failures: unusable
                                .into_iter()
                                .map(|name| {
                                    let error = Error::Discovery {
                                        registry: "registry".into(),
                                        status: None,
                                        reason: "no URL".into(),
                                    };
                                    (name, error)
                                })
                                .collect(),
                            ..Discovery::default()
                        }),
                        None => Err(Error::Discovery {
                            registry: "registry".into(),
                            status: Some(500),
                            reason: "HTTP 500".into(),
                        }),
                    }
                })
            }),
            refresh_interval: refresh,
            retry: fast_retry(),
        }
    }
}

async fn start_with_source(
    policy: RegistrationPolicy,
    servers: Vec<ServerConfig>,
    source: Source,
) -> Result<Hub, Error> {
    Hub::builder()
        .settings(settings(policy, true))
        .servers(servers)
        .source(source)
        .start()
        .await
}

/// The server of the next catalogue change (resource and prompt changes are skipped).
async fn next_change(events: &mut tokio::sync::broadcast::Receiver<HubEvent>) -> String {
    loop {
        match tokio::time::timeout(STEP, events.recv())
            .await
            .expect("a catalogue change within the step bound")
            .expect("event")
        {
            HubEvent::CatalogChanged { server } => return server,
            HubEvent::ResourcesChanged { .. }
            | HubEvent::PromptsChanged { .. }
            | HubEvent::ResourceUpdated { .. } => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_adds_and_drains_servers_without_losing_calls_in_flight() {
    let registry = Registry::default();
    registry.answer(Some(vec![testkit_stdio("a", &[])]));
    let hub = start_with_source(
        RegistrationPolicy::SkipWithWarning,
        vec![testkit_stdio("configured", &[])],
        registry.source(Some(Duration::from_millis(200))),
    )
    .await
    .expect("start");
    assert_eq!(
        hub.servers(),
        vec!["a".to_string(), "configured".to_string()]
    );
    let health = hub.health();
    assert_eq!(health.sources.len(), 1);
    assert!(health.sources[0].ok && health.sources[0].servers == 1);

    // Five slow calls are in flight on `a` when the registry stops listing it.
    let mut events = hub.subscribe();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.call("a__sleep", json!({"ms": 700}).as_object().cloned(), None)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    registry.answer(Some(vec![testkit_stdio("b", &[])]));
    let mut changed = vec![
        next_change(&mut events).await,
        next_change(&mut events).await,
    ];
    changed.sort();
    assert_eq!(changed, vec!["a".to_string(), "b".to_string()]);
    for call in calls {
        let outcome = call
            .await
            .expect("join")
            .expect("a call in flight was lost");
        assert!(!outcome.is_error, "{}", outcome.text());
    }
    assert!(hub.catalog().get("a__echo").is_none());
    assert!(hub.catalog().get("b__echo").is_some());
    assert_eq!(
        hub.servers(),
        vec!["b".to_string(), "configured".to_string()]
    );
    let names: Vec<String> = hub.health().servers.into_iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["b".to_string(), "configured".to_string()]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_source_shows_in_health_and_is_asked_again() {
    let registry = Registry::default();
    let hub = start_with_source(
        RegistrationPolicy::SkipWithWarning,
        vec![testkit_stdio("configured", &[])],
        registry.source(None),
    )
    .await
    .expect("a failing source does not fail the start under skip_with_warning");
    let health = hub.health();
    assert_eq!(health.overall, Overall::Degraded);
    assert!(!health.sources[0].ok);
    assert_eq!(
        health.sources[0].last_error.as_ref().map(|e| e.class),
        Some(ErrorClass::Discovery)
    );

    let mut events = hub.subscribe();
    registry.answer(Some(vec![testkit_stdio("found", &[])]));
    assert_eq!(next_change(&mut events).await, "found");
    let health = hub.health();
    assert_eq!(health.overall, Overall::Healthy);
    assert!(health.sources[0].ok);
    assert!(hub.catalog().get("found__echo").is_some());
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_source_fails_the_start_under_fail_fast() {
    let registry = Registry::default();
    let error = match start_with_source(
        RegistrationPolicy::FailFast,
        vec![testkit_stdio("configured", &[])],
        registry.source(None),
    )
    .await
    {
        Ok(_) => panic!("fail_fast with a failing source must fail"),
        Err(error) => error,
    };
    assert_eq!(error.class(), ErrorClass::Discovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_never_replaces_or_removes_a_configured_server() {
    let registry = Registry::default();
    let mut impostor = testkit_stdio("configured", &["--tools", "3"]);
    impostor.reconnect = fast_retry();
    registry.answer(Some(vec![impostor.clone(), testkit_stdio("extra", &[])]));
    let hub = start_with_source(
        RegistrationPolicy::SkipWithWarning,
        vec![testkit_stdio("configured", &[])],
        registry.source(Some(Duration::from_millis(100))),
    )
    .await
    .expect("start");
    assert_eq!(
        hub.servers(),
        vec!["configured".to_string(), "extra".to_string()]
    );
    assert!(
        hub.catalog().get("configured__tool_0").is_none(),
        "the impostor was registered"
    );

    let mut events = hub.subscribe();
    registry.answer(Some(vec![impostor]));
    assert_eq!(next_change(&mut events).await, "extra");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.servers(), vec!["configured".to_string()]);
    assert!(hub.catalog().get("configured__echo").is_some());
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_registry_entry_shows_under_its_source_and_never_touches_a_server() {
    let registry = Registry::default();
    registry.answer(Some(Vec::new()));
    registry.unusable(&["configured"]);
    let hub = start_with_source(
        RegistrationPolicy::SkipWithWarning,
        vec![testkit_stdio("configured", &[])],
        registry.source(None),
    )
    .await
    .expect("start");
    let health = hub.health();
    assert_eq!(health.servers.len(), 1);
    assert_eq!(health.servers[0].state, ServerState::Ready);
    assert_eq!(health.sources[0].unusable.len(), 1);
    assert_eq!(health.sources[0].unusable[0].0, "configured");
    assert_eq!(health.overall, Overall::Degraded);
    assert_eq!(hub.failures().len(), 1);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_server_replaces_its_failed_registration_and_stops_the_retry() {
    let mut late = ServerConfig::url("late", format!("http://127.0.0.1:{}/mcp", free_port()));
    late.reconnect = fast_retry();
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::SkipSilently, true))
        .servers([late])
        .start()
        .await
        .expect("start");
    assert_eq!(hub.health().servers[0].state, ServerState::Retrying);
    hub.add_server(testkit_stdio("late", &[])).await;
    // The old retry (against the refused port) would record errors on the new server.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let health = hub.health();
    assert_eq!(health.servers[0].state, ServerState::Ready);
    assert!(
        health.servers[0].last_error.is_none(),
        "{:?}",
        health.servers[0]
    );
    assert!(hub.catalog().get("late__echo").is_some());
    hub.close().await;
    let err = hub
        .call(
            "late__echo",
            json!({"message": "x"}).as_object().cloned(),
            None,
        )
        .await
        .expect_err("closed");
    assert_eq!(err.class(), ErrorClass::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_session_server_added_later_is_reaped() {
    let mut settings = settings(RegistrationPolicy::SkipWithWarning, false);
    settings.sessions.reaper_interval = Duration::from_millis(100);
    let hub = Hub::builder()
        .settings(settings)
        .servers([testkit_stdio("shared", &[])])
        .start()
        .await
        .expect("start");
    let kit = TestkitProcess::start("streamable-http", &[]);
    let mut per = ServerConfig::url("per", kit.url.clone());
    per.session_mode = switchboard::config::SessionMode::PerSession;
    per.session_idle_timeout = Duration::from_millis(200);
    hub.add_server(per).await;
    let user = switchboard::Session::new("u1", Default::default());
    hub.call_in(
        Some(&user),
        "per__echo",
        json!({"message": "x"}).as_object().cloned(),
        None,
    )
    .await
    .expect("call");
    assert_eq!(hub.session_count("per"), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.session_count("per") > 0 {
        assert!(
            Instant::now() < deadline,
            "the idle session was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_change_sent_before_the_hub_was_watching_is_not_lost() {
    // `a` announces a new tool 150 ms after it is up; the hub only starts watching once the
    // slow `b` is registered too (700 ms), so the notification has nobody to reach.
    let hub = Hub::builder()
        .servers([
            testkit_stdio("a", &["--notify-after", "150ms"]),
            testkit_stdio("b", &["--initialize-delay", "700ms"]),
        ])
        .start()
        .await
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.catalog().get("a__added_1").is_none() {
        assert!(
            Instant::now() < deadline,
            "the early tools/list_changed was lost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.close().await;
}

/// Records what it sees and refuses calls to `add`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

impl CallLayer for Recorder {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Error> {
        if call.tool == "add" {
            return Err(Error::Closed {
                server: call.server.to_string(),
                reason: Some("refused by a layer".into()),
            });
        }
        Ok(())
    }

    fn after(&self, call: &CallInfo<'_>, result: &Result<CallOutcome, Error>, _: Duration) {
        let outcome = match result {
            Ok(outcome) if outcome.is_error => "tool_error".to_string(),
            Ok(_) => "ok".to_string(),
            Err(error) => error.class().to_string(),
        };
        let line = format!("{} {} {}", call.name, call.session.unwrap_or("-"), outcome);
        self.seen.lock().unwrap().push(line);
    }

    fn after_request(&self, request: &RequestInfo<'_>, error: Option<&Error>, _: Duration) {
        let outcome = error.map_or("ok", |error| error.class().as_str());
        let line = format!(
            "{} {} {} {}",
            request.method, request.server, request.name, outcome
        );
        self.seen.lock().unwrap().push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_passes_the_layers_and_a_layer_can_refuse_one() {
    let recorder = Recorder::default();
    let hub = Hub::builder()
        .server(testkit_stdio("kit", &[]))
        .layer(recorder.clone())
        .layer(TraceCalls)
        .start()
        .await
        .expect("start");
    let echo = json!({"message": "hi"}).as_object().cloned();
    hub.call("kit__echo", echo, None).await.unwrap();
    hub.call("kit__fail", None, None).await.unwrap();
    let refused = hub
        .call(
            "kit__add",
            json!({"a": 1, "b": 2}).as_object().cloned(),
            None,
        )
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("refused by a layer"),
        "{refused}"
    );
    let session = switchboard::Session::new("u1", Default::default());
    hub.call_in(
        Some(&session),
        "kit__echo",
        json!({"message": "s"}).as_object().cloned(),
        None,
    )
    .await
    .unwrap();
    // Reads and prompt gets are told to the layers after they were sent.
    hub.read_resource("kit+testkit://static/hello.txt", None)
        .await
        .unwrap();
    let name = json!({"name": "Ada"}).as_object().cloned();
    hub.get_prompt("kit__greet", name, None).await.unwrap();
    hub.read_resource("kit+testkit://static/none.txt", None)
        .await
        .expect_err("no such resource");
    let counts = hub.call("kit__counts", None, None).await.unwrap().text();
    let counts: serde_json::Value = serde_json::from_str(&counts).unwrap();
    assert_eq!(
        counts["executions"].get("add"),
        None,
        "a refused call was sent"
    );
    assert_eq!(
        *recorder.seen.lock().unwrap(),
        [
            "kit__echo - ok",
            "kit__fail - tool_error",
            "kit__echo u1 ok",
            "resources/read kit testkit://static/hello.txt ok",
            "prompts/get kit greet ok",
            "resources/read kit testkit://static/none.txt not_found",
            "kit__counts - ok"
        ]
    );
    hub.close().await;
}

/// One connect event: a connection to `server` begun (`opened: false`) or open (with a
/// stdio server's pid).
struct Dial {
    server: String,
    opened: bool,
    pid: Option<i32>,
}

/// What a hub's connect observer saw, in order.
#[derive(Clone, Default)]
struct Dials(Arc<Mutex<Vec<Dial>>>);

impl Dials {
    fn observer(&self) -> impl Fn(ConnectEvent<'_>) + Send + Sync + 'static {
        let seen = self.0.clone();
        move |event| {
            let dial = match event {
                ConnectEvent::Opening { server } => Dial {
                    server: server.to_string(),
                    opened: false,
                    pid: None,
                },
                ConnectEvent::Opened { server, process_id } => Dial {
                    server: server.to_string(),
                    opened: true,
                    pid: process_id,
                },
            };
            seen.lock().unwrap().push(dial);
        }
    }

    fn count(&self, server: &str, opened: bool) -> usize {
        let seen = self.0.lock().unwrap();
        let matching = seen
            .iter()
            .filter(|d| d.server == server && d.opened == opened);
        matching.count()
    }

    /// Connections to `server` begun so far.
    fn opening(&self, server: &str) -> usize {
        self.count(server, false)
    }

    /// Connections to `server` opened so far.
    fn opened(&self, server: &str) -> usize {
        self.count(server, true)
    }

    /// Pids of the stdio servers opened so far, with their server.
    fn pids(&self) -> Vec<(String, i32)> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter_map(|d| d.pid.map(|pid| (d.server.clone(), pid)))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_hub_handle_without_close_kills_its_stdio_servers() {
    let mut own = testkit_stdio("own", &[]);
    own.session_mode = SessionMode::PerSession;
    // A registry that will list a server which never answers `initialize`: the task that
    // follows the registry is busy registering it when the hub is dropped.
    let registry = Registry::default();
    registry.answer(Some(Vec::new()));
    let dials = Dials::default();
    let hub = Hub::builder()
        .servers([testkit_stdio("kit", &[]), own])
        .source(registry.source(Some(Duration::from_millis(100))))
        .on_connect(dials.observer())
        .start()
        .await
        .expect("start");
    let session = Session::new("s1", BTreeMap::new());
    let arguments = json!({"message": "mine"}).as_object().cloned();
    hub.call_in(Some(&session), "own__echo", arguments, None)
        .await
        .expect("a call over the session's own connection");
    let pids = dials.pids();
    assert_eq!(
        pids.len(),
        3,
        "kit, own's shared connection and the session's: {pids:?}"
    );
    let mut hanging = testkit_stdio("hanging", &["--hang-initialize"]);
    hanging.connect_timeout = Duration::from_secs(60);
    registry.answer(Some(vec![hanging]));
    assert!(
        eventually(STEP, || dials.opening("hanging") == 1),
        "the registry's server was not tried"
    );

    let clone = hub.clone();
    drop(hub);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (server, pid) in &pids {
        assert!(
            process_alive(*pid),
            "{server} ({pid}) died while a clone still holds the hub"
        );
    }
    drop(clone); // the last handle, and no close()
    // Checked while blocking this worker: the kill does not wait for the runtime, nor for
    // the registration in flight.
    for (server, pid) in pids {
        assert!(
            eventually(Duration::from_secs(5), || !process_alive(pid)),
            "{server} ({pid}) still runs after the last hub handle was dropped"
        );
    }
}

#[test]
fn a_hub_dropped_outside_any_runtime_still_kills_its_stdio_servers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dials = Dials::default();
    let start = Hub::builder()
        .server(testkit_stdio("kit", &[]))
        .on_connect(dials.observer())
        .start();
    let hub = runtime.block_on(start).expect("start");
    let pids = dials.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    // Not in the runtime's context: nothing can be spawned to close it.
    drop(hub);
    for (server, pid) in pids {
        assert!(
            eventually(Duration::from_secs(5), || !process_alive(pid)),
            "{server} ({pid}) still runs after the hub was dropped outside a runtime"
        );
    }
    drop(runtime);
}

/// Tells the test when a call has passed the hub's checks (it is in flight from then on).
struct Started(Arc<tokio::sync::Notify>);

impl CallLayer for Started {
    fn before(&self, _: &CallInfo<'_>) -> Result<(), Error> {
        self.0.notify_one();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_server_returns_as_soon_as_its_call_in_flight_is_done() {
    let started = Arc::new(tokio::sync::Notify::new());
    let dials = Dials::default();
    let hub = Hub::builder()
        .servers([testkit_stdio("kit", &[]), testkit_stdio("other", &[])])
        .on_connect(dials.observer())
        .layer(Started(started.clone()))
        .start()
        .await
        .expect("start");
    let kit = dials
        .pids()
        .into_iter()
        .find(|(server, _)| server == "kit")
        .map(|(_, pid)| pid)
        .expect("kit's pid");

    let caller = hub.clone();
    let call = tokio::spawn(async move {
        caller
            .call("kit__sleep", json!({"ms": 300}).as_object().cloned(), None)
            .await
    });
    started.notified().await;
    let removing = Instant::now();
    // A 30 s drain budget: the remove must wait for the call, not for the budget.
    let remove = hub.remove_server("kit", Duration::from_secs(30));
    tokio::time::timeout(Duration::from_secs(10), remove)
        .await
        .expect("remove_server waited for the drain budget instead of the call");
    let took = removing.elapsed();
    let outcome = call
        .await
        .expect("join")
        .expect("the call in flight finished");
    assert!(!outcome.is_error, "{}", outcome.text());
    assert!(
        took >= Duration::from_millis(250),
        "remove_server returned after {took:?}, before its call in flight was done"
    );
    assert!(
        !process_alive(kit),
        "the removed server still runs after remove_server returned"
    );

    // With nothing in flight there is nothing to wait for.
    let remove = hub.remove_server("other", Duration::from_secs(30));
    tokio::time::timeout(Duration::from_secs(10), remove)
        .await
        .expect("remove_server waited with no call in flight");
    assert!(hub.servers().is_empty());
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_server_swaps_in_one_catalogue_change_while_the_old_one_finishes_its_call() {
    let started = Arc::new(tokio::sync::Notify::new());
    let hub = Hub::builder()
        .servers([testkit_stdio("kit", &[])])
        .layer(Started(started.clone()))
        .start()
        .await
        .expect("start");
    let mut events = hub.subscribe();
    let caller = hub.clone();
    let call = tokio::spawn(async move {
        caller
            .call("kit__sleep", json!({"ms": 500}).as_object().cloned(), None)
            .await
    });
    started.notified().await;
    // The changed config: `echo` is now `say`.
    let mut changed = testkit_stdio("kit", &[]);
    changed.tool_overrides.insert(
        "echo".into(),
        ToolOverride {
            alias: Some("say".into()),
            description: None,
        },
    );
    tokio::time::timeout(Duration::from_secs(20), hub.replace_server(changed))
        .await
        .expect("replace_server returns once the old one drained");
    let outcome = call
        .await
        .expect("join")
        .expect("the call in flight on the old server finished");
    assert_eq!(outcome.text(), "slept 500 ms");
    // One change, straight from the old tools to the new: never a catalogue without kit.
    // Its resources and prompts are the new server's too.
    let kit = || "kit".to_string();
    let heard: Vec<HubEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(
        heard,
        [
            HubEvent::CatalogChanged { server: kit() },
            HubEvent::ResourcesChanged { server: kit() },
            HubEvent::PromptsChanged { server: kit() },
        ]
    );
    let catalog = hub.catalog();
    assert!(catalog.get("kit__say").is_some());
    assert!(catalog.get("kit__echo").is_none());
    let said = hub
        .call(
            "kit__say",
            json!({"message": "new"}).as_object().cloned(),
            None,
        )
        .await
        .expect("the new server answers");
    assert!(said.text().contains("new"), "{}", said.text());

    // A name that is not registered is simply added.
    hub.replace_server(testkit_stdio("other", &[])).await;
    assert_eq!(hub.servers(), ["kit", "other"]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_does_not_come_up_takes_the_old_one_out_and_is_retried() {
    let hub = Hub::builder()
        .servers([testkit_stdio("kit", &[])])
        .start()
        .await
        .expect("start");
    let port = free_port();
    let mut broken = ServerConfig::url("kit", format!("http://127.0.0.1:{port}/mcp"));
    broken.reconnect = fast_retry();
    hub.replace_server(broken).await;
    assert!(hub.servers().is_empty(), "{:?}", hub.servers());
    assert!(hub.catalog().get("kit__echo").is_none());
    let health = hub.health();
    assert_eq!(health.servers.len(), 1);
    assert_eq!(health.servers[0].state, ServerState::Retrying);
    let class = health.servers[0].last_error.as_ref().map(|e| e.class);
    assert_eq!(class, Some(ErrorClass::Unreachable));
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_every_background_task() {
    // A skipped server that is retried, and a registry asked every 100 ms.
    let port = free_port();
    let mut late = ServerConfig::url("late", format!("http://127.0.0.1:{port}/mcp"));
    late.reconnect = fast_retry();
    let registry = Registry::default();
    registry.answer(Some(Vec::new()));
    let mut source = registry.source(Some(Duration::from_millis(100)));
    let asks = Arc::new(AtomicUsize::new(0));
    let (discover, counter) = (source.discover.clone(), asks.clone());
    source.discover = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        discover()
    });
    let dials = Dials::default();
    let hub = Hub::builder()
        .settings(settings(RegistrationPolicy::SkipSilently, true))
        .servers([testkit_stdio("kit", &[]), late])
        .source(source)
        .on_connect(dials.observer())
        .start()
        .await
        .expect("start");
    assert!(
        eventually(STEP, || dials.opening("late") >= 3
            && asks.load(Ordering::SeqCst) >= 3),
        "the retry and the registry did not run"
    );

    hub.close().await;
    let (tried, asked) = (dials.opening("late"), asks.load(Ordering::SeqCst));
    // The server comes up now: a retry still running would find it.
    let _late = TestkitProcess::start_on("streamable-http", port, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(dials.opening("late"), tried, "the retry ran after close");
    assert_eq!(
        dials.opened("late"),
        0,
        "the skipped server connected after close"
    );
    assert_eq!(
        asks.load(Ordering::SeqCst),
        asked,
        "the registry was asked after close"
    );
    assert!(hub.servers().is_empty());
}
