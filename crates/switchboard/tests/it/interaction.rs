//! What servers ask and tell a caller in the middle of a call, through the public API, on
//! the testkit over stdio and Streamable HTTP, classic (server-to-client requests) and
//! 2026-07-28 (input-required results carrying the requests): a hub's input handler answers
//! forms, URLs and sampling; a session's handler wins over the hub's (on a shared connection,
//! concurrently over HTTP, and on the session's own); without one, the policy declines and
//! sampling is refused. Progress reaches the call's callback in order, and a deadline that
//! progress resets lets a steadily progressing call run past its base timeout, but not past
//! its ceiling (where it is cancelled at the server).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard::config::SessionMode;
use switchboard::hub::HubBuilder;
use switchboard::interaction::{
    ElicitAnswer, ElicitMode, ElicitRequest, InputHandler, SamplingAnswer, SamplingRequest,
};
use switchboard::{
    CallOptions, CallProgress, Deadline, Error, ErrorClass, Hub, LogMessage, ServerConfig, Session,
};
use switchboard_testkit::{HttpMode, Knobs, Lifecycle, RunningServer, serve_streamable_http};

use crate::common::testkit_stdio;

/// Answers everything, signing its answers with `name`.
struct Signed {
    name: &'static str,
    sampling: bool,
}

impl InputHandler for Signed {
    fn answers_url_elicitation(&self) -> bool {
        true
    }

    fn answers_sampling(&self) -> bool {
        self.sampling
    }

    fn elicit(&self, request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        Box::pin(async move {
            match request.mode {
                ElicitMode::Form { schema } => {
                    assert!(schema["properties"].get("name").is_some(), "{schema:?}");
                    let content = json!({"name": self.name, "age": 7});
                    ElicitAnswer::Accept(content.as_object().cloned())
                }
                ElicitMode::Url { url, .. } if url == "https://example.com/sign-in" => {
                    ElicitAnswer::Accept(None)
                }
                _ => ElicitAnswer::Decline,
            }
        })
    }

    fn sample(&self, request: SamplingRequest) -> BoxFuture<'_, SamplingAnswer> {
        let answer = format!("{} says: {}", self.name, request.text());
        Box::pin(async move {
            match self.sampling {
                true => SamplingAnswer::text(self.name, answer),
                false => SamplingAnswer::Decline,
            }
        })
    }
}

fn signed(name: &'static str) -> Signed {
    Signed {
        name,
        sampling: true,
    }
}

/// One testkit server: stdio or Streamable HTTP, classic or 2026-07-28.
struct Kit {
    label: &'static str,
    config: ServerConfig,
    modern: bool,
    _http: Option<RunningServer>,
}

async fn kits() -> Vec<Kit> {
    let mut kits = Vec::new();
    for (lifecycle, arg, modern) in [
        (Lifecycle::Classic, "classic", false),
        (Lifecycle::Modern, "modern", true),
    ] {
        kits.push(Kit {
            label: if modern {
                "stdio modern"
            } else {
                "stdio classic"
            },
            config: testkit_stdio("kit", &["--lifecycle", arg]),
            modern,
            _http: None,
        });
        let knobs = Knobs {
            lifecycle,
            ..Knobs::default()
        };
        let mode = if modern {
            HttpMode::Stateless
        } else {
            HttpMode::Stateful
        };
        let http = serve_streamable_http(knobs, mode).await.unwrap();
        kits.push(Kit {
            label: if modern {
                "http modern"
            } else {
                "http classic"
            },
            config: ServerConfig::url("kit", http.url()),
            modern,
            _http: Some(http),
        });
    }
    kits
}

async fn start(builder: HubBuilder<'_>, kit: &Kit) -> Hub {
    let hub = builder.server(kit.config.clone()).start().await.unwrap();
    assert!(
        hub.failures().is_empty(),
        "{}: {:?}",
        kit.label,
        hub.failures()
    );
    hub
}

/// The JSON text a testkit tool answered with.
async fn answer(hub: &Hub, session: Option<&Session>, tool: &str, arguments: Value) -> Value {
    let arguments = arguments.as_object().cloned();
    let outcome = hub.call_in(session, tool, arguments, None).await.unwrap();
    serde_json::from_str(&outcome.text()).unwrap_or(Value::String(outcome.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_handler_answers_forms_urls_and_sampling_on_every_transport_and_lifecycle() {
    for kit in kits().await {
        let hub = start(Hub::builder().input_handler(signed("hub")), &kit).await;
        let label = kit.label;
        let form = answer(&hub, None, "kit__ask", json!({})).await;
        assert_eq!(form["action"], "accept", "{label}: {form}");
        assert_eq!(form["content"], json!({"name": "hub", "age": 7}), "{label}");
        let url = answer(&hub, None, "kit__visit", json!({})).await;
        assert_eq!(url["action"], "accept", "{label}: {url}");
        let sampled = answer(&hub, None, "kit__sample", json!({"prompt": "hi"})).await;
        assert_eq!(sampled["model"], "hub", "{label}: {sampled}");
        assert_eq!(sampled["role"], "assistant", "{label}: {sampled}");
        assert_eq!(
            sampled["content"]["text"], "hub says: hi",
            "{label}: {sampled}"
        );
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_handler_answers_its_own_calls_instead_of_the_hub_s() {
    for kit in kits().await {
        let hub = start(Hub::builder().input_handler(signed("hub")), &kit).await;
        let label = kit.label;
        let session = Session::new("s1", Default::default()).with_input_handler(signed("s1"));
        let form = answer(&hub, Some(&session), "kit__ask", json!({})).await;
        assert_eq!(form["content"]["name"], "s1", "{label}: {form}");
        let sampled = answer(&hub, Some(&session), "kit__sample", json!({"prompt": "x"})).await;
        assert_eq!(
            sampled["content"]["text"], "s1 says: x",
            "{label}: {sampled}"
        );
        // A session without a handler, and no session, get the hub's.
        let plain = Session::new("s2", Default::default());
        let form = answer(&hub, Some(&plain), "kit__ask", json!({})).await;
        assert_eq!(form["content"]["name"], "hub", "{label}: {form}");
        let form = answer(&hub, None, "kit__ask", json!({})).await;
        assert_eq!(form["content"]["name"], "hub", "{label}: {form}");
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_s_own_connection_per_session_is_answered_by_its_handler() {
    for mut kit in kits().await {
        kit.config.session_mode = SessionMode::PerSession;
        let label = kit.label;
        let hub = start(Hub::builder().input_handler(signed("hub")), &kit).await;
        let session = Session::new("s1", Default::default()).with_input_handler(signed("s1"));
        let form = answer(&hub, Some(&session), "kit__ask", json!({})).await;
        assert_eq!(form["content"]["name"], "s1", "{label}: {form}");
        assert_eq!(hub.session_count("kit"), 1, "{label}");
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_two_sessions_over_one_http_connection_each_get_their_own_answer() {
    let kit = kits().await.into_iter().find(|k| k.label == "http classic");
    let kit = kit.unwrap();
    let hub = start(Hub::builder().input_handler(signed("hub")), &kit).await;
    let a = Session::new("a", Default::default()).with_input_handler(signed("a"));
    let b = Session::new("b", Default::default()).with_input_handler(signed("b"));
    let calls = (0..4).map(|i| {
        let (hub, session) = (&hub, if i % 2 == 0 { &a } else { &b });
        async move {
            let form = answer(hub, Some(session), "kit__ask", json!({})).await;
            (session.id.clone(), form["content"]["name"].clone())
        }
    });
    for (session, name) in futures::future::join_all(calls).await {
        assert_eq!(name, json!(session));
    }
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_handler_the_policy_declines_and_sampling_is_refused() {
    for kit in kits().await {
        let label = kit.label;
        let hub = start(Hub::builder(), &kit).await;
        // Not offered to classic servers, so they cannot ask; modern ones get a decline.
        let form = answer(&hub, None, "kit__ask", json!({})).await;
        let declined = form["action"] == "decline";
        let refused = form.as_str().is_some_and(|t| t.contains("failed"));
        assert!(declined || refused, "{label}: {form}");
        let url = answer(&hub, None, "kit__visit", json!({})).await;
        assert!(
            url["action"] == "decline" || url.as_str().is_some(),
            "{label}: {url}"
        );
        assert_ne!(url["action"], "accept", "{label}: {url}");
        check_sampling_refused(&hub, kit.modern, label).await;
        hub.close().await;
        // A handler that does not answer sampling refuses it the same way.
        let no_sampling = Signed {
            name: "hub",
            sampling: false,
        };
        let hub = start(Hub::builder().input_handler(no_sampling), &kit).await;
        check_sampling_refused(&hub, kit.modern, label).await;
        hub.close().await;
    }
}

/// A classic server's sampling request fails (not offered); a modern server's call fails
/// saying it needs sampling.
async fn check_sampling_refused(hub: &Hub, modern: bool, label: &str) {
    let arguments = json!({"prompt": "hi"}).as_object().cloned();
    let result = hub.call("kit__sample", arguments, None).await;
    if modern {
        let error = result.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Protocol, "{label}: {error}");
        assert!(error.to_string().contains("sampling"), "{label}: {error}");
    } else {
        let text = result.unwrap().text();
        assert!(
            text.starts_with("sampling/createMessage failed"),
            "{label}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_call_s_callback_in_order() {
    for kit in kits().await {
        let label = kit.label;
        let hub = start(Hub::builder(), &kit).await;
        let seen: Arc<Mutex<Vec<CallProgress>>> = Arc::default();
        let sink = seen.clone();
        let options = CallOptions::new().on_progress(move |p| sink.lock().unwrap().push(p.clone()));
        let arguments = json!({"count": 4, "delay_ms": 30}).as_object().cloned();
        let outcome = hub
            .call_with(None, "kit__progress", arguments, options)
            .await
            .unwrap();
        assert_eq!(outcome.text(), "done 4", "{label}");
        let seen = seen.lock().unwrap().clone();
        let steps: Vec<f64> = seen.iter().map(|p| p.progress).collect();
        assert_eq!(steps, [1.0, 2.0, 3.0, 4.0], "{label}: {seen:?}");
        assert_eq!(seen[0].total, Some(4.0), "{label}");
        assert_eq!(seen[0].message.as_deref(), Some("step 1 of 4"), "{label}");
        // A call without a callback works the same.
        let arguments = json!({"count": 2, "delay_ms": 10}).as_object().cloned();
        let outcome = hub.call("kit__progress", arguments, None).await.unwrap();
        assert_eq!(outcome.text(), "done 2", "{label}");
        hub.close().await;
    }
}

/// A server's log messages while the call is in flight reach its `on_log`, in order. The
/// testkit waits `delay_ms` after its last one: over Streamable HTTP rmcp's server sends
/// log messages on the session's standalone stream, which may trail the call's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_reach_the_call_s_callback() {
    for kit in kits().await {
        let label = kit.label;
        let hub = start(Hub::builder(), &kit).await;
        let seen: Arc<Mutex<Vec<LogMessage>>> = Arc::default();
        let sink = seen.clone();
        let options = CallOptions::new().on_log(move |m| sink.lock().unwrap().push(m.clone()));
        let arguments = json!({"count": 2, "delay_ms": 100, "log": true});
        let outcome = hub
            .call_with(
                None,
                "kit__progress",
                arguments.as_object().cloned(),
                options,
            )
            .await
            .unwrap();
        assert_eq!(outcome.text(), "done 2", "{label}");
        let seen = seen.lock().unwrap().clone();
        let logged: Vec<(&str, &str)> = seen
            .iter()
            .map(|m| (m.level.as_str(), m.data.as_str().unwrap_or_default()))
            .collect();
        assert_eq!(
            logged,
            [
                ("debug", "step 1 of 2"),
                ("info", "step 1 of 2"),
                ("debug", "step 2 of 2"),
                ("info", "step 2 of 2")
            ],
            "{label}"
        );
        assert_eq!(seen[0].server, "kit", "{label}");
        assert_eq!(seen[0].logger.as_deref(), Some("testkit"), "{label}");
        hub.close().await;
    }
}

/// Log messages a server writes on a call's own response stream (Streamable HTTP without
/// sessions: each request's messages come on its POST's stream) are that call's, however
/// many calls share the connection and however early the server logs: the testkit logs
/// before anything else. Eight calls at once, four rounds; each hears exactly its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_reach_their_own_call_among_many_on_one_connection() {
    for lifecycle in [Lifecycle::Classic, Lifecycle::Modern] {
        let knobs = Knobs {
            lifecycle,
            ..Knobs::default()
        };
        let http = serve_streamable_http(knobs, HttpMode::Stateless)
            .await
            .unwrap();
        let kit = Kit {
            label: "http stateless",
            config: ServerConfig::url("kit", http.url()),
            modern: lifecycle == Lifecycle::Modern,
            _http: None,
        };
        let hub = start(Hub::builder(), &kit).await;
        for round in 0..4 {
            let calls = (1..=8u64).map(|count| {
                let seen: Arc<Mutex<Vec<String>>> = Arc::default();
                let sink = seen.clone();
                let options = CallOptions::new()
                    .on_log(move |m| sink.lock().unwrap().push(m.data.to_string()));
                let arguments = json!({"count": count, "delay_ms": 20, "log": true});
                let hub = &hub;
                async move {
                    let outcome = hub
                        .call_with(
                            None,
                            "kit__progress",
                            arguments.as_object().cloned(),
                            options,
                        )
                        .await
                        .unwrap();
                    assert_eq!(outcome.text(), format!("done {count}"));
                    (count, seen.lock().unwrap().clone())
                }
            });
            for (count, seen) in futures::future::join_all(calls).await {
                let expected: Vec<String> = (1..=count)
                    .flat_map(|step| {
                        let line = format!("\"step {step} of {count}\"");
                        [line.clone(), line]
                    })
                    .collect();
                assert_eq!(
                    seen, expected,
                    "{lifecycle:?}, round {round}, call of {count}"
                );
            }
        }
        hub.close().await;
        drop(http);
    }
}

/// Progress every 50 ms; a timeout of 500 ms (10x the gap) that progress resets.
const GAP_MS: u64 = 50;
const TIMEOUT: Duration = Duration::from_millis(500);

async fn progressing(hub: &Hub, steps: u64, options: CallOptions) -> Result<String, Error> {
    let arguments = json!({"count": steps, "delay_ms": GAP_MS})
        .as_object()
        .cloned();
    let outcome = hub.call_with(None, "kit__progress", arguments, options);
    outcome.await.map(|outcome| outcome.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_pushes_a_resetting_deadline_out_but_never_past_its_ceiling() {
    for kit in kits().await {
        if kit.label == "stdio modern" || kit.label == "http classic" {
            continue; // the other two cover both transports and both lifecycles
        }
        let label = kit.label;
        let hub = start(Hub::builder(), &kit).await;
        // 2 s of steady progress: past a fixed 500 ms deadline (4x) it times out...
        let fixed = CallOptions::new().deadline(Deadline::after(TIMEOUT));
        let error = progressing(&hub, 40, fixed).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Timeout, "{label}: {error}");
        // ...but a deadline each progress resets lets it finish.
        let ceiling = Deadline::after(Duration::from_secs(30));
        let reset = CallOptions::new().reset_on_progress(TIMEOUT, ceiling);
        assert_eq!(
            progressing(&hub, 40, reset).await.unwrap(),
            "done 40",
            "{label}"
        );
        // 5 s of progress never gets past a 1 s ceiling.
        let ceiling = Deadline::after(Duration::from_secs(1));
        let capped = CallOptions::new().reset_on_progress(TIMEOUT, ceiling);
        let error = progressing(&hub, 100, capped).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Timeout, "{label}: {error}");
        // ...and is cancelled at the server.
        let mut cancelled = Value::Null;
        for _ in 0..100 {
            let counts = answer(&hub, None, "kit__counts", json!({})).await;
            cancelled = counts["cancelled"]["progress"].clone();
            if cancelled.as_u64().is_some_and(|n| n >= 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The fixed-deadline call above was cancelled too.
        assert_eq!(cancelled, json!(2), "{label}");
        // A call whose deadline has passed is not sent, progress or not.
        let executions = || async {
            let counts = answer(&hub, None, "kit__counts", json!({})).await;
            counts["executions"]["progress"].clone()
        };
        let before = executions().await;
        let passed = Deadline::at(std::time::Instant::now() - Duration::from_millis(1));
        let ceiling = Deadline::after(Duration::from_secs(30));
        let late = CallOptions::new()
            .deadline(passed)
            .reset_on_progress(TIMEOUT, ceiling);
        let error = progressing(&hub, 1, late).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Timeout, "{label}: {error}");
        assert_eq!(executions().await, before, "{label}");
        hub.close().await;
    }
}
