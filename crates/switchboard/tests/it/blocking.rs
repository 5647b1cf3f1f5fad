//! `switchboard::blocking` against the testkit over Streamable HTTP, with RAGFlow's session
//! lifecycle rules (seed notes §3.4/§3.6) ported: close wakes every caller, a call still
//! waiting for its connection is never sent, one deadline covers waiting and running,
//! closing twice is harmless, calls after close fail at once; plus many threads at once on
//! one runtime and a dropped pending call cancelled at the server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::SessionMode;
use switchboard::{Config, Deadline, Delivery, ErrorClass, Hub, ServerConfig, Session, blocking};
use switchboard_testkit::{HttpMode, Knobs, RunningServer, serve_streamable_http};

use crate::common::eventually;

const BOUND: Duration = Duration::from_secs(30);

/// A testkit server on its own runtime (the blocking hub must not share the test's).
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<RunningServer>,
}

impl Server {
    fn start(knobs: Knobs) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime
            .block_on(serve_streamable_http(knobs, HttpMode::Stateful))
            .unwrap();
        Server {
            runtime,
            running: Some(running),
        }
    }

    fn url(&self) -> String {
        self.running.as_ref().unwrap().url()
    }

    /// How many times the server ran (or saw cancelled) `tool`.
    fn count(&self, kind: &str, tool: &str) -> u64 {
        let counts = self.running.as_ref().unwrap().counts();
        counts[kind][tool].as_u64().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }
}

fn hub(runtime: &blocking::Runtime, server: ServerConfig) -> blocking::Hub {
    let mut config = Config::default();
    config.servers.insert(server.name.clone(), server);
    let hub = blocking::Hub::start(runtime, Hub::builder().config(&config)).unwrap();
    assert!(
        hub.hub().failures().is_empty(),
        "{:?}",
        hub.hub().failures()
    );
    hub
}

fn args(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

fn per_session(server: &Server) -> ServerConfig {
    let mut kit = ServerConfig::url("kit", server.url());
    kit.session_mode = SessionMode::PerSession;
    kit
}

fn user(id: &str) -> Session {
    Session::new(id, BTreeMap::new())
}

#[test]
fn close_wakes_every_caller_in_flight() {
    let server = Server::start(Knobs::default());
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, ServerConfig::url("kit", server.url()));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let hub = hub.clone();
            std::thread::spawn(move || hub.call("kit__hang", None, Some(Deadline::after(BOUND))))
        })
        .collect();
    assert!(
        eventually(BOUND, || server.count("executions", "hang") == 4),
        "the four calls reach the server"
    );
    hub.close(Duration::from_secs(5));
    for caller in callers {
        let error = caller
            .join()
            .unwrap()
            .expect_err("a hanging call ends with close");
        assert_eq!(error.class(), ErrorClass::Closed, "{error}");
        assert!(error.to_string().contains("closing"), "{error}");
        assert!(error.may_have_run(), "it was in flight: {error}");
    }
}

#[test]
fn a_call_waiting_for_its_connection_is_never_sent_after_close() {
    // Every initialize takes 2 s: a new session's first call waits for its connection.
    let server = Server::start(Knobs {
        initialize_delay: Some(Duration::from_secs(2)),
        ..Knobs::default()
    });
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, per_session(&server));
    let waiting = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            let arguments = args(json!({"message": "queued"}));
            hub.call_in(
                &user("u1"),
                "kit__put",
                arguments,
                Some(Deadline::after(BOUND)),
            )
        })
    };
    assert!(
        eventually(BOUND, || hub.hub().session_count("kit") == 1),
        "the session's connection is being opened"
    );
    hub.close(Duration::from_secs(5));
    let error = waiting
        .join()
        .unwrap()
        .expect_err("close ends the waiting call");
    assert_eq!(error.class(), ErrorClass::Closed, "{error}");
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        server.count("executions", "put"),
        0,
        "the queued call never ran"
    );
}

#[test]
fn one_deadline_covers_waiting_for_the_connection_and_the_call() {
    let server = Server::start(Knobs {
        initialize_delay: Some(Duration::from_millis(800)),
        ..Knobs::default()
    });
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, per_session(&server));
    // 500 ms would be plenty for `put`, but the connection alone takes 800 ms.
    let error = hub
        .call_in(
            &user("u1"),
            "kit__put",
            args(json!({"message": "late"})),
            Some(Deadline::after(Duration::from_millis(500))),
        )
        .expect_err("the deadline passes while connecting");
    assert_eq!(error.class(), ErrorClass::Timeout, "{error}");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(server.count("executions", "put"), 0, "never sent");
    // The session's connection is usable by the next call.
    let outcome = hub
        .call_in(
            &user("u1"),
            "kit__put",
            args(json!({"message": "next"})),
            None,
        )
        .unwrap();
    assert_eq!(outcome.text(), "next");
}

#[test]
fn closing_twice_is_harmless_and_calls_after_close_fail_at_once() {
    let server = Server::start(Knobs::default());
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, ServerConfig::url("kit", server.url()));
    assert_eq!(
        hub.call("kit__echo", args(json!({"message": "hi"})), None)
            .unwrap()
            .text(),
        "hi"
    );
    hub.close(Duration::from_secs(5));
    hub.close(Duration::from_secs(5));
    let error = hub
        .call("kit__echo", args(json!({"message": "late"})), None)
        .expect_err("closed");
    assert_eq!(error.class(), ErrorClass::Closed, "{error}");
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    assert_eq!(server.count("executions", "echo"), 1);
}

#[test]
fn many_threads_call_at_once_on_one_runtime() {
    let server = Server::start(Knobs::default());
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, ServerConfig::url("kit", server.url()));
    let start = Arc::new(std::sync::Barrier::new(16));
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let (hub, start) = (hub.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let arguments = args(json!({ "message": format!("m{i}") }));
                hub.call("kit__echo", arguments, None).map(|o| o.text())
            })
        })
        .collect();
    for (i, caller) in callers.into_iter().enumerate() {
        assert_eq!(caller.join().unwrap().unwrap(), format!("m{i}"));
    }
    // A second hub on the same runtime works alongside.
    let other = self::hub(&runtime, ServerConfig::url("kit", server.url()));
    assert_eq!(
        other
            .call("kit__echo", args(json!({"message": "x"})), None)
            .unwrap()
            .text(),
        "x"
    );
}

#[test]
fn a_dropped_pending_call_is_cancelled_at_the_server() {
    let server = Server::start(Knobs::default());
    let runtime = blocking::Runtime::new().unwrap();
    let hub = hub(&runtime, ServerConfig::url("kit", server.url()));
    let pending = hub.spawn_call(None, "kit__hang".into(), None, Some(Deadline::after(BOUND)));
    assert!(
        pending.wait_timeout(Duration::from_millis(50)).is_none(),
        "still running"
    );
    assert!(eventually(BOUND, || server.count("executions", "hang") == 1));
    drop(pending);
    assert!(
        eventually(BOUND, || server.count("cancelled", "hang") == 1),
        "the server was told the call was cancelled"
    );
    // The connection stays usable.
    let done = hub.spawn_call(
        None,
        "kit__echo".into(),
        args(json!({"message": "ok"})),
        None,
    );
    assert_eq!(done.wait().unwrap().text(), "ok");
}
