//! `sessions`: many per-session upstream connections through the engine's [`Hub`], against
//! one stateful Streamable HTTP testkit. Per round: create S sessions (each session's first
//! call opens its own MCP session at the server), call once more on every session (reuse,
//! no new connection), let them sit idle, then reap them all with `cleanup_sessions`.
//!
//! Reported: `create_per_sec` (sessions created, first call included), `bytes_per_idle_session`
//! (heap bytes in use while the sessions sat idle minus before they were made, per session:
//! the engine side only, since the server is another process; RSS is shown too, but glibc
//! keeps freed memory, so it only ever grows), `reap_ms` (closing every idle session),
//! `heap_left_after_reap` (what reaping did not give back), and
//! `duplicate_executions`: the testkit's `echo` execution counter minus the calls that
//! succeeded, which must be 0 (a call is never run twice).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::config::SessionMode;
use switchboard::{Config, Hub, ServerConfig, Session};
use tokio::time::Instant;

use crate::cli::{LifecycleArg, SessionsArgs};
use crate::measure;
use crate::report::{Report, Row, note};
use crate::server::{HttpServer, MODERN};

/// The server's name in the hub, so tools are `kit__echo` and `kit__counts`.
const SERVER: &str = "kit";

pub async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    anyhow::ensure!(args.sessions >= 1, "--sessions must be at least 1");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let testkit = super::testkit(&args.common)?;
    raise_fd_limit(args.sessions);
    let kit = match args.lifecycle {
        LifecycleArg::Classic => HttpServer::start(&testkit, "streamable-http", &[]).await?,
        LifecycleArg::Modern => {
            HttpServer::start(&testkit, "streamable-http-stateless", &MODERN).await?
        }
    };

    let mut server = ServerConfig::url(SERVER, kit.url().to_owned());
    server.session_mode = SessionMode::PerSession;
    server.max_sessions = args.sessions;
    // The bench reaps explicitly; the background reaper must not do it first.
    server.session_idle_timeout = Duration::from_secs(24 * 3600);
    let mut config = Config::default();
    config.servers.insert(SERVER.to_owned(), server);
    let hub = Hub::builder()
        .config(&config)
        .start()
        .await
        .context("connecting the hub to the testkit")?;
    if let Some((name, error)) = hub.failures().first() {
        anyhow::bail!("server '{name}' failed: {error}");
    }

    let mut report = Report::new(args.common.json);
    for round in 0..args.common.rounds {
        let row = tokio::time::timeout(args.common.run_limit, one_round(&hub, &args, round))
            .await
            .with_context(|| {
                format!(
                    "round {round} did not finish within --run-limit {:?}",
                    args.common.run_limit
                )
            })??;
        report.push(row);
    }
    report.finish();
    hub.close().await;
    Ok(())
}

async fn one_round(hub: &Hub, args: &SessionsArgs, round: usize) -> anyhow::Result<Row> {
    let sessions: Vec<Session> = (0..args.sessions)
        .map(|i| Session::new(format!("r{round}-s{i}"), BTreeMap::new()))
        .collect();
    let executions_before = echo_executions(hub).await?;
    let heap_before = measure::heap_in_use();

    let started = Instant::now();
    let created = call_all(hub, &sessions, args.concurrency).await;
    let create_secs = started.elapsed().as_secs_f64();
    let reused = call_all(hub, &sessions, args.concurrency).await;
    let live = hub.session_count(SERVER);

    // Idle: no lease held, connections open. Let in-flight bookkeeping settle first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heap_idle = measure::heap_in_use();
    let rss_idle = measure::rss_kib().unwrap_or(0);

    let started = Instant::now();
    let reaped = hub.cleanup_sessions(Duration::ZERO).await;
    let reap_ms = started.elapsed().as_secs_f64() * 1e3;
    // Closing ends each session's tasks; give them a moment to finish and free.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heap_after = measure::heap_in_use();

    let ok = created.ok + reused.ok;
    let errors = created.errors + reused.errors;
    if let Some(error) = created.first_error.or(reused.first_error) {
        note(format!("  round {round}: {errors} errors, first: {error}"));
    }
    let executions = echo_executions(hub).await? - executions_before;
    let bytes_per_session = heap_idle.saturating_sub(heap_before) / live.max(1) as u64;
    Ok(Row::new("sessions")
        .with("sessions", args.sessions)
        .with("concurrency", args.concurrency)
        .with("live", live)
        .num(
            "create_per_sec",
            created.ok as f64 / create_secs.max(1e-9),
            0,
        )
        .with("bytes_per_idle_session", bytes_per_session)
        .with("reaped", reaped)
        .num("reap_ms", reap_ms, 1)
        .with(
            "heap_left_after_reap",
            heap_after as i64 - heap_before as i64,
        )
        .with("rss_idle_kib", rss_idle)
        .with("calls_ok", ok)
        .with("errors", errors)
        .with("duplicate_executions", executions - ok as i64))
}

#[derive(Default)]
struct CallTally {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
}

/// One `echo` call per session, `concurrency` in flight.
async fn call_all(hub: &Hub, sessions: &[Session], concurrency: usize) -> CallTally {
    let tool = format!("{SERVER}__echo");
    let args = json!({"message": "hello"}).as_object().cloned();
    let mut results = futures::stream::iter(sessions)
        .map(|session| hub.call_in(Some(session), &tool, args.clone(), None))
        .buffer_unordered(concurrency);
    let mut tally = CallTally::default();
    while let Some(result) = results.next().await {
        match result {
            Ok(outcome) if !outcome.is_error => tally.ok += 1,
            Ok(outcome) => record_error(&mut tally, outcome.text()),
            Err(error) => record_error(&mut tally, error.to_string()),
        }
    }
    tally
}

fn record_error(tally: &mut CallTally, message: String) {
    tally.errors += 1;
    tally.first_error.get_or_insert(message);
}

/// The testkit's count of `echo` executions, over all its sessions (asked on the shared
/// connection).
async fn echo_executions(hub: &Hub) -> anyhow::Result<i64> {
    let outcome = hub
        .call(&format!("{SERVER}__counts"), None, None)
        .await
        .context("asking the testkit for its counters")?;
    let counts: Value = serde_json::from_str(&outcome.text()).context("the testkit's counts")?;
    Ok(counts["executions"]["echo"].as_i64().unwrap_or(0))
}

/// Every session holds a TCP connection (its GET event stream), so raise the soft limit on
/// open files towards the hard one; the testkit child started after this inherits it.
fn raise_fd_limit(sessions: usize) {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass; no other preconditions.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        let wanted = sessions as u64 + 1024;
        if (limit.rlim_cur as u64) < wanted {
            note(format!(
                "sessions: open-file limit {} is below the ~{wanted} this run needs; \
                 raise it (ulimit -n) or pass fewer --sessions",
                limit.rlim_cur
            ));
        }
    }
}
