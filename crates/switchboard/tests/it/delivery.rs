//! A call never runs twice unless the tool says it may: the engine behind the testkit's
//! fault-injection proxy (what nginx/Envoy do when an upstream dies) over Streamable HTTP
//! and legacy SSE, and a stdio server that crashes after reading the request. Every test
//! asserts the server's own execution counter, and that the fault really fired.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::{Config, Deadline, Delivery, Error, ErrorClass, Hub, ServerConfig};
use switchboard_testkit::{
    Fault, FaultProxy, FaultRule, HttpMode, Knobs, Lifecycle, RunningServer, serve_sse,
    serve_streamable_http,
};
use tokio::time::Instant;

use crate::common::testkit_stdio;

/// Far beyond any test's needs: a hung call fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Transport {
    StreamableHttp,
    /// Streamable HTTP without server sessions, the server speaking only 2026-07-28.
    StreamableHttpModern,
    Sse,
}

const TRANSPORTS: [Transport; 3] = [
    Transport::StreamableHttp,
    Transport::StreamableHttpModern,
    Transport::Sse,
];

/// A testkit server, a proxy in front of it, and a hub talking through the proxy.
struct Rig {
    server: RunningServer,
    proxy: FaultProxy,
    hub: Hub,
}

impl Rig {
    async fn start(transport: Transport, rules: Vec<FaultRule>) -> Rig {
        let (server, path) = match transport {
            Transport::StreamableHttp => (
                serve_streamable_http(Knobs::default(), HttpMode::Stateful)
                    .await
                    .unwrap(),
                "/mcp",
            ),
            Transport::StreamableHttpModern => {
                let knobs = Knobs {
                    lifecycle: Lifecycle::Modern,
                    ..Knobs::default()
                };
                let server = serve_streamable_http(knobs, HttpMode::Stateless);
                (server.await.unwrap(), "/mcp")
            }
            Transport::Sse => (serve_sse(Knobs::default()).await.unwrap(), "/sse"),
        };
        let proxy = FaultProxy::start(&server.url(), rules).await.unwrap();
        let mut kit = ServerConfig::url("kit", proxy.url(path));
        kit.reconnect.initial_backoff = Duration::from_millis(50);
        let mut config = Config::default();
        config.servers.insert("kit".into(), kit);
        let hub = Hub::builder().config(&config).start().await.unwrap();
        assert!(hub.failures().is_empty(), "{:?}", hub.failures());
        Rig { server, proxy, hub }
    }

    async fn call(&self, tool: &str, message: &str) -> Result<String, Error> {
        self.call_by(tool, message, Deadline::after(DEADLINE)).await
    }

    async fn call_by(
        &self,
        tool: &str,
        message: &str,
        deadline: Deadline,
    ) -> Result<String, Error> {
        let arguments = json!({ "message": message }).as_object().cloned();
        let outcome = self
            .hub
            .call(&format!("kit__{tool}"), arguments, Some(deadline))
            .await?;
        assert!(!outcome.is_error, "{tool}: {}", outcome.text());
        Ok(outcome.text())
    }

    fn executions(&self, tool: &str) -> u64 {
        self.server.counts()["executions"][tool]
            .as_u64()
            .unwrap_or(0)
    }

    /// [`Rig::executions`] once it reaches `expected`, or after 2 s: legacy SSE answers a
    /// POST before it runs the call, so the count can lag the caller's error.
    async fn executions_reaching(&self, tool: &str, expected: u64) -> u64 {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let executions = self.executions(tool);
            if executions >= expected || Instant::now() >= until {
                return executions;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn close(self) {
        self.hub.close().await;
        self.proxy.shutdown().await;
        self.server.shutdown().await;
    }
}

fn after(status: u16) -> Fault {
    Fault::StatusAfterForward {
        status,
        retry_after: None,
    }
}

fn before(status: u16) -> Fault {
    Fault::StatusBeforeForward {
        status,
        retry_after: None,
    }
}

/// Faults that hit a request the server already received.
fn after_forwarding(transport: Transport) -> Vec<Fault> {
    let mut faults = vec![
        after(502),
        after(503),
        after(504),
        after(500),
        Fault::StatusAfterForward {
            status: 429,
            retry_after: Some(0),
        },
        Fault::ResetAfterForward,
    ];
    // Legacy SSE answers the POST with a bare 202; its result travels on the event stream.
    if !matches!(transport, Transport::Sse) {
        faults.push(Fault::CutBody { keep_bytes: 8 });
    }
    faults
}

/// Faults that stop a request before the server sees it.
fn before_forwarding() -> Vec<Fault> {
    vec![before(502), before(503), Fault::ResetBeforeForward]
}

fn assert_may_have_run(error: &Error, context: &str) {
    assert_eq!(
        error.delivery(),
        Delivery::MaybeSent,
        "{context}: {error:?}"
    );
    assert!(error.may_have_run(), "{context}");
    assert!(
        error.to_string().contains("may have run"),
        "{context}: the message must say so: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_call_runs_once_whatever_the_proxy_does_after_forwarding() {
    for transport in TRANSPORTS {
        for fault in after_forwarding(transport) {
            let context = format!("{transport:?} {fault:?}");
            let rig = Rig::start(transport, vec![FaultRule::call("echo", fault.clone())]).await;
            match (transport, rig.call("echo", "pay once").await) {
                (_, Err(error)) => assert_may_have_run(&error, &context),
                // Legacy SSE: the result travels on the event stream and may arrive before
                // the proxy's answer to the POST; then the caller has the real result.
                (Transport::Sse, Ok(text)) => assert_eq!(text, "pay once", "{context}"),
                (_, Ok(text)) => panic!("{context}: succeeded with {text}"),
            }
            assert_eq!(rig.proxy.faults_fired(), 1, "{context}");
            let executions = rig.executions_reaching("echo", 1).await;
            assert_eq!(executions, 1, "{context}: the tool ran again");
            // The connection is still good for the next call.
            assert_eq!(rig.call("echo", "next").await.unwrap(), "next", "{context}");
            rig.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_call_stopped_before_forwarding_never_runs() {
    for transport in TRANSPORTS {
        for fault in before_forwarding() {
            let context = format!("{transport:?} {fault:?}");
            let rig = Rig::start(transport, vec![FaultRule::call("echo", fault.clone())]).await;
            let error = rig.call("echo", "pay once").await.expect_err(&context);
            // We cannot know the proxy did not forward it: it may have run.
            assert_may_have_run(&error, &context);
            assert_eq!(rig.proxy.faults_fired(), 1, "{context}");
            assert_eq!(rig.executions("echo"), 0, "{context}");
            rig.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_and_read_only_calls_are_sent_again_and_succeed() {
    for transport in TRANSPORTS {
        for tool in ["put", "lookup"] {
            let faults = after_forwarding(transport)
                .into_iter()
                .map(|f| (f, 2))
                .chain(before_forwarding().into_iter().map(|f| (f, 1)));
            for (fault, runs) in faults {
                let context = format!("{transport:?} {tool} {fault:?}");
                let rig = Rig::start(transport, vec![FaultRule::call(tool, fault.clone())]).await;
                let text = rig.call(tool, "again").await;
                assert_eq!(text.as_deref().ok(), Some("again"), "{context}: {text:?}");
                assert_eq!(rig.proxy.faults_fired(), 1, "{context}");
                let executions = rig.executions(tool);
                match transport {
                    // The first result may arrive on the event stream before the fault.
                    Transport::Sse if runs == 2 => {
                        assert!((1..=2).contains(&executions), "{context}: {executions}")
                    }
                    _ => assert_eq!(executions, runs, "{context}"),
                }
                rig.close().await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_for_idempotent_tools_within_the_deadline() {
    // Answered before forwarding, so the counts do not race legacy SSE's event stream.
    for transport in TRANSPORTS {
        let context = format!("{transport:?}");
        let busy = Fault::StatusBeforeForward {
            status: 503,
            retry_after: Some(1),
        };
        let rig = Rig::start(transport, vec![FaultRule::call("put", busy)]).await;
        let started = Instant::now();
        assert_eq!(
            rig.call("put", "later").await.unwrap(),
            "later",
            "{context}"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{context}: sent again before Retry-After"
        );
        assert_eq!(rig.executions("put"), 1, "{context}");
        rig.close().await;

        // A wait beyond the deadline is not taken: the error comes back at once.
        let far = Fault::StatusBeforeForward {
            status: 429,
            retry_after: Some(3600),
        };
        let rig = Rig::start(transport, vec![FaultRule::call("put", far)]).await;
        let error = rig
            .call_by("put", "x", Deadline::after(Duration::from_secs(10)))
            .await
            .expect_err(&context);
        assert!(
            matches!(
                &error,
                Error::MayHaveRun { source } if matches!(**source, Error::Http { status: 429, .. })
            ),
            "{context}: {error:?}"
        );
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(error.class(), ErrorClass::Unreachable);
        assert_eq!(rig.executions("put"), 0, "{context}");
        rig.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_is_only_a_delay() {
    for transport in TRANSPORTS {
        let rule = FaultRule::call("echo", Fault::Delay(Duration::from_millis(200)));
        let rig = Rig::start(transport, vec![rule]).await;
        assert_eq!(rig.call("echo", "slow").await.unwrap(), "slow");
        assert_eq!(rig.proxy.faults_fired(), 1);
        assert_eq!(rig.executions("echo"), 1);
        rig.close().await;
    }
}

/// Lines in the file the testkit's `crash_once*` tools append to on every execution.
fn runs(marker: &std::path::Path) -> usize {
    std::fs::read_to_string(marker)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The stdio servers the crash tests run against: classic, and speaking only 2026-07-28.
const STDIO_LIFECYCLES: [&[&str]; 2] = [&[], &["--lifecycle", "modern"]];

async fn stdio_hub(flags: &[&str]) -> Hub {
    let mut kit = testkit_stdio("kit", flags);
    kit.reconnect.initial_backoff = Duration::from_millis(50);
    let mut config = Config::default();
    config.servers.insert("kit".into(), kit);
    Hub::builder().config(&config).start().await.unwrap()
}

fn marker_args(marker: &std::path::Path) -> Option<serde_json::Map<String, Value>> {
    json!({ "marker": marker }).as_object().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_that_crashes_after_reading_runs_a_non_idempotent_call_once() {
    for flags in STDIO_LIFECYCLES {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("runs");
        let hub = stdio_hub(flags).await;
        let deadline = Some(Deadline::after(DEADLINE));
        let error = hub
            .call("kit__crash_once", marker_args(&marker), deadline)
            .await
            .expect_err("the server crashed");
        assert_may_have_run(&error, &format!("stdio crash {flags:?}"));
        assert_eq!(runs(&marker), 1, "{flags:?}");
        // The next call gets a new process.
        let outcome = hub
            .call(
                "kit__echo",
                json!({"message": "back"}).as_object().cloned(),
                deadline,
            )
            .await
            .unwrap();
        assert_eq!(outcome.text(), "back");
        assert_eq!(
            runs(&marker),
            1,
            "{flags:?}: the crashed call was sent again"
        );
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_that_crashes_after_reading_gets_an_idempotent_call_again() {
    for flags in STDIO_LIFECYCLES {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("runs");
        let hub = stdio_hub(flags).await;
        let outcome = hub
            .call(
                "kit__crash_once_idempotent",
                marker_args(&marker),
                Some(Deadline::after(DEADLINE)),
            )
            .await
            .expect("sent again to a new process");
        assert!(!outcome.is_error, "{flags:?}: {}", outcome.text());
        assert_eq!(runs(&marker), 2, "{flags:?}");
        hub.close().await;
    }
}
