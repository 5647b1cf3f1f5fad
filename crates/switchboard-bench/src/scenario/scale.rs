//! `scale` (issue 17, S10): `switchboard serve` replicas sharing sessions through Redis
//! (`[scale] store = "redis"`), in front of one stateful Streamable HTTP testkit as a
//! `per_session` server, behind HAProxy (round-robin, no affinity): frontend 0 has one
//! replica, frontend 1 all N. Everything on 127.0.0.1.
//!
//! 1. **Calls**: the same `echo` workload (one bare rmcp session per frontend, warmed up so
//!    every replica has the session) through HAProxy→1 and HAProxy→N, interleaved round by
//!    round with the first rotating. Per frontend and concurrency: calls/s, p50/p99, the
//!    N-vs-1 ratio (median of per-round ratios); CPU per call (/proc utime+stime over the
//!    run ÷ calls) of the replicas (sum, and each replica's share), HAProxy, Redis, the
//!    upstream and the client; and Redis commands per call (`INFO commandstats` deltas): an
//!    established session's hot path should make none.
//! 2. **Resume**: sessions opened on replica A directly (raw JSON-RPC over HTTP: `initialize`,
//!    then a first call, which opens and publishes the upstream session), then one request
//!    on replica B, which has never seen them (restore from Redis + attach to the upstream
//!    session), and a second one on B (warm): latency of each, one at a time, and Redis
//!    commands per session for each step.
//! 3. **Lifecycle**: sessions through HAProxy→N (initialize, a few calls, DELETE): Redis
//!    commands per whole session, for sizing Redis.
//! 4. **Memory**: RSS per idle downstream session on a fresh `[scale]` replica and on a fresh
//!    plain `switchboard serve` (same upstream config, no `[scale]`), and Redis's
//!    `used_memory` per session.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use rmcp::model::JsonObject;
use switchboard::Connector;
use tokio::time::Instant;

use crate::cli::ScaleArgs;
use crate::client::{Client, Endpoint, Kind, Shared, Target};
use crate::cluster::{Activity, Haproxy, Redis, Watch};
use crate::load::{self, RunResult};
use crate::measure::{self, median, percentile};
use crate::raw::RawSession;
use crate::report::{Report, Row, note};
use crate::server::{GatewayProcess, HttpServer, find_binary};

/// Calls made through each frontend before measuring (at 16 in flight: every replica sees
/// the session).
const WARMUP_CALLS: usize = 200;
/// Idle sessions being opened at once.
const OPENING_AT_ONCE: usize = 64;
/// Calls each lifecycle session makes between its `initialize` and its DELETE.
const LIFECYCLE_CALLS: usize = 6;
/// A fixed keyring for the bench's replicas (loopback only; not a secret).
const KEYS: &str = "1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

/// The replicas' config: the upstream as a `per_session` server, with or without `[scale]`.
fn config(upstream: &str, keys_file: Option<&std::path::Path>, max_sessions: usize) -> String {
    let scale = match keys_file {
        Some(keys) => format!(
            "[scale]\nstore = \"redis\"\nkeys_file = \"{}\"\n\n",
            keys.display()
        ),
        None => String::new(),
    };
    // One client session carries the whole load: above the default per-session limit (64).
    format!(
        "[gateway]\nmax_concurrent_calls_per_session = 100000\n\n{scale}\
         [servers.kit]\nurl = \"{upstream}\"\nsession_mode = \"per_session\"\n\
         max_sessions = {max_sessions}\n"
    )
}

/// One HAProxy frontend measured: its URL, the replicas behind it, a connected client.
struct Front {
    label: String,
    replicas: usize,
    client: Shared,
}

/// One measured run through one frontend and what every process spent meanwhile.
struct Measured {
    run: RunResult,
    /// CPU of each replica (all N, also those not behind this frontend).
    replica_cpu: Vec<Duration>,
    haproxy_cpu: Duration,
    redis_cpu: Duration,
    upstream_cpu: Duration,
    redis: Activity,
}

/// The processes whose CPU a run is charged with.
struct Pids {
    replicas: Vec<u32>,
    haproxy: u32,
    redis: u32,
    upstream: u32,
}

impl Pids {
    fn cpu(&self) -> (Vec<Duration>, Duration, Duration, Duration) {
        let cpu = |pid| measure::process_cpu(pid).unwrap_or_default();
        (
            self.replicas.iter().map(|p| cpu(*p)).collect(),
            cpu(self.haproxy),
            cpu(self.redis),
            cpu(self.upstream),
        )
    }
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    anyhow::ensure!(args.calls >= 1, "--calls must be at least 1");
    let switchboard = find_binary("switchboard", args.switchboard.as_deref(), "--switchboard")?;
    let testkit = super::testkit(&args.common)?;
    let redis = Redis::start().await?;
    let mut watch = redis.watch().await?;
    let upstream = HttpServer::start(&testkit, "streamable-http", &[]).await?;
    let keys_dir = tempfile::tempdir().context("a directory for the keyring")?;
    let keys = keys_dir.path().join("keys");
    std::fs::write(&keys, KEYS)?;
    let redis_url = redis.url();
    let scale_config = config(upstream.url(), Some(&keys), args.max_sessions);
    let env = [("SWITCHBOARD_REDIS_URL", redis_url.as_str())];
    let mut replicas = Vec::new();
    for _ in 0..args.replicas {
        replicas.push(
            GatewayProcess::start_with(&switchboard, &scale_config, &env, &args.gateway_log)
                .await?,
        );
    }
    let ports: Vec<u16> = replicas.iter().map(GatewayProcess::port).collect();
    let haproxy = Haproxy::start(&[vec![ports[0]], ports.clone()]).await?;
    note(format!(
        "scale: redis {redis_url}, upstream {}, {} replicas on {ports:?}, haproxy→1 {}, haproxy→{} {}",
        upstream.url(),
        args.replicas,
        haproxy.url(0),
        args.replicas,
        haproxy.url(1)
    ));
    let pids = Pids {
        replicas: replicas.iter().map(GatewayProcess::pid).collect(),
        haproxy: haproxy.pid(),
        redis: redis.pid(),
        upstream: upstream.pid().context("the upstream has no pid")?,
    };

    let connector = Connector::new();
    let mut fronts = Vec::new();
    for (i, count) in [1, args.replicas].into_iter().enumerate() {
        let endpoint = Endpoint {
            target: Target::Url(haproxy.url(i).to_owned()),
            modern: false,
        };
        let label = format!("haproxy→{count}");
        let client = Client::connect(Kind::Rmcp, &endpoint, &connector)
            .await
            .with_context(|| format!("connecting through {label}"))?;
        fronts.push(Front {
            label,
            replicas: count,
            client: Arc::new(client),
        });
    }
    let tool: Arc<str> = Arc::from("kit__echo");
    let mut echo = JsonObject::new();
    echo.insert("message".into(), "hello from switchboard-bench".into());
    let echo = Arc::new(echo);
    let limit = args.common.run_limit;
    for front in &fronts {
        let warm = load::run(&front.client, &tool, &echo, WARMUP_CALLS, 16, limit).await;
        anyhow::ensure!(
            warm.ok > 0,
            "{}: cannot call '{tool}': {}",
            front.label,
            warm.first_error.unwrap_or_default()
        );
    }

    let mut report = Report::new(args.common.json);
    for &concurrency in &args.concurrency {
        let mut runs: Vec<Vec<Measured>> = fronts.iter().map(|_| Vec::new()).collect();
        for round in 0..args.common.rounds {
            for step in 0..fronts.len() {
                let i = (round + step) % fronts.len();
                let front = &fronts[i];
                let redis_before = watch.snapshot().await?;
                let before = pids.cpu();
                let run =
                    load::run(&front.client, &tool, &echo, args.calls, concurrency, limit).await;
                let after = pids.cpu();
                let activity = watch.snapshot().await?.since(&redis_before);
                if let Some(error) = &run.first_error {
                    note(format!(
                        "  c={concurrency} round {round} {}: {} errors, first: {error}",
                        front.label, run.errors
                    ));
                }
                runs[i].push(Measured {
                    run,
                    replica_cpu: after
                        .0
                        .iter()
                        .zip(&before.0)
                        .map(|(a, b)| *a - *b)
                        .collect(),
                    haproxy_cpu: after.1.saturating_sub(before.1),
                    redis_cpu: after.2.saturating_sub(before.2),
                    upstream_cpu: after.3.saturating_sub(before.3),
                    redis: activity,
                });
            }
            note(format!(
                "  c={concurrency} round {}/{}: {}",
                round + 1,
                args.common.rounds,
                fronts
                    .iter()
                    .zip(&runs)
                    .map(|(f, r)| format!("{} {:.0}/s", f.label, r[round].run.calls_per_sec()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (front, measured) in fronts.iter().zip(&runs) {
            report.push(calls_row(
                front,
                concurrency,
                args.calls,
                measured,
                &runs[0],
            ));
        }
    }
    for front in fronts {
        if let Ok(client) = Arc::try_unwrap(front.client) {
            client.close().await;
        }
    }

    if args.resume_sessions > 0 {
        let (a, b) = (replicas[0].url(), replicas[1].url());
        for row in resume(&mut watch, a, b, args.resume_sessions).await? {
            report.push(row);
        }
    }
    if args.lifecycle_sessions > 0 {
        report.push(
            lifecycle(
                &mut watch,
                haproxy.url(1),
                args.replicas,
                args.lifecycle_sessions,
            )
            .await?,
        );
    }
    drop(haproxy);
    drop(replicas);
    if args.idle_sessions > 0 {
        let scaled =
            GatewayProcess::start_with(&switchboard, &scale_config, &env, &args.gateway_log)
                .await?;
        report.push(
            idle_sessions(
                "[scale]+redis",
                &scaled,
                Some(&mut watch),
                args.idle_sessions,
                &connector,
            )
            .await?,
        );
        drop(scaled);
        let plain = GatewayProcess::start_with(
            &switchboard,
            &config(upstream.url(), None, args.max_sessions),
            &[],
            &args.gateway_log,
        )
        .await?;
        report.push(idle_sessions("plain", &plain, None, args.idle_sessions, &connector).await?);
    }
    report.finish();
    Ok(())
}

/// The row of `front` at one concurrency (`one`: the one-replica frontend's runs of the same
/// rounds, for the ratio).
fn calls_row(
    front: &Front,
    concurrency: usize,
    calls: usize,
    runs: &[Measured],
    one: &[Measured],
) -> Row {
    let med = |f: fn(&RunResult) -> f64| median(runs.iter().map(|m| f(&m.run)));
    let ratio = median(
        runs.iter()
            .zip(one)
            .map(|(a, b)| a.run.calls_per_sec() / b.run.calls_per_sec()),
    );
    let per_call = |cpu: &dyn Fn(&Measured) -> Duration| {
        median(
            runs.iter()
                .map(|m| cpu(m).as_secs_f64() * 1e6 / (m.run.ok + m.run.errors).max(1) as f64),
        )
    };
    let serving = front.replicas;
    let each: Vec<f64> = (0..serving)
        .map(|r| per_call(&|m: &Measured| m.replica_cpu[r]))
        .collect();
    let replicas_cpu = per_call(&|m: &Measured| m.replica_cpu[..serving].iter().sum());
    let haproxy_cpu = per_call(&|m: &Measured| m.haproxy_cpu);
    let redis_cpu = per_call(&|m: &Measured| m.redis_cpu);
    let upstream_cpu = per_call(&|m: &Measured| m.upstream_cpu);
    let client_cpu = med(RunResult::cpu_us_per_call);
    let total_cpu = replicas_cpu + haproxy_cpu + redis_cpu + upstream_cpu + client_cpu;
    let attempted: usize = runs.iter().map(|m| m.run.ok + m.run.errors).sum();
    let mut redis = Activity::default();
    for m in runs {
        redis = redis.plus(&m.redis);
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Row::new("scale")
        .with("via", front.label.as_str())
        .with("concurrency", concurrency)
        .with("calls", calls)
        .with("rounds", runs.len())
        .num("calls_per_sec", med(RunResult::calls_per_sec), 0)
        .num("ratio_vs_1", ratio, 3)
        .num("p50_us", med(RunResult::p50_us), 0)
        .num("p99_us", med(RunResult::p99_us), 0)
        .num("replicas_cpu_us_per_call", replicas_cpu, 1)
        .with(
            "per_replica_us",
            each.iter()
                .map(|us| format!("{us:.0}"))
                .collect::<Vec<_>>()
                .join("/"),
        )
        .num("haproxy_cpu_us_per_call", haproxy_cpu, 1)
        .num("redis_cpu_us_per_call", redis_cpu, 1)
        .num("upstream_cpu_us_per_call", upstream_cpu, 1)
        .num("client_cpu_us_per_call", client_cpu, 1)
        .num("total_cpu_us_per_call", total_cpu, 1)
        .num(
            "cores_allow_calls_per_sec",
            cores as f64 * 1e6 / total_cpu.max(1e-9),
            0,
        )
        .num(
            "redis_cmds_per_call",
            redis.commands.total() as f64 / attempted.max(1) as f64,
            4,
        )
        .num(
            "redis_round_trips_per_call",
            redis.round_trips as f64 / attempted.max(1) as f64,
            4,
        )
        .with("redis_cmds", redis.commands.breakdown())
        .with("errors", runs.iter().map(|m| m.run.errors).sum::<usize>())
}

/// Latencies (µs, sorted) of one step over many sessions, and Redis commands it caused.
struct Step {
    name: &'static str,
    latencies_us: Vec<u32>,
    redis: Activity,
}

impl Step {
    fn p50(&self) -> f64 {
        f64::from(percentile(&self.latencies_us, 0.5))
    }
    fn p99(&self) -> f64 {
        f64::from(percentile(&self.latencies_us, 0.99))
    }
}

/// Times `f` once per session, one at a time, and counts the Redis commands of the whole
/// batch.
async fn step<F>(
    name: &'static str,
    watch: &mut Watch,
    sessions: &mut [RawSession],
    mut f: F,
) -> anyhow::Result<Step>
where
    F: AsyncFnMut(&mut RawSession) -> anyhow::Result<()>,
{
    let before = watch.snapshot().await?;
    let mut latencies_us = Vec::with_capacity(sessions.len());
    for session in sessions.iter_mut() {
        let t0 = Instant::now();
        f(session).await.with_context(|| format!("step '{name}'"))?;
        latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    latencies_us.sort_unstable();
    let redis = watch.snapshot().await?.since(&before);
    Ok(Step {
        name,
        latencies_us,
        redis,
    })
}

/// Sessions opened on `a`, then used on `b` (first sight, then warm): one row per step.
async fn resume(watch: &mut Watch, a: &str, b: &str, count: usize) -> anyhow::Result<Vec<Row>> {
    let http = reqwest::Client::new();
    let before = watch.snapshot().await?;
    let mut latencies_us = Vec::with_capacity(count);
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        sessions.push(
            RawSession::open(&http, a)
                .await
                .context("initialize on A")?,
        );
        latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    latencies_us.sort_unstable();
    let opened = Step {
        name: "initialize+initialized on A",
        latencies_us,
        redis: watch.snapshot().await?.since(&before),
    };
    let first_a = step(
        "first call on A (opens the upstream session)",
        watch,
        &mut sessions,
        async |s| s.call(&http, a).await,
    )
    .await?;
    let first_b = step(
        "first request on B (never seen it)",
        watch,
        &mut sessions,
        async |s| s.call(&http, b).await,
    )
    .await?;
    let warm_b = step("second request on B", watch, &mut sessions, async |s| {
        s.call(&http, b).await
    })
    .await?;
    for session in &sessions {
        session.end(&http, b).await?;
    }
    note(format!(
        "  resume: {count} sessions, first request on B p50 {} µs vs warm {} µs",
        first_b.p50(),
        warm_b.p50()
    ));
    let (warm_p50, warm_p99) = (warm_b.p50(), warm_b.p99());
    Ok([opened, first_a, first_b, warm_b]
        .into_iter()
        .map(|s| {
            Row::new("scale-resume")
                .with("step", s.name)
                .with("sessions", count)
                .num("p50_us", s.p50(), 0)
                .num("p99_us", s.p99(), 0)
                .num("vs_warm_p50_us", s.p50() - warm_p50, 0)
                .num("vs_warm_p99_us", s.p99() - warm_p99, 0)
                .num(
                    "redis_cmds_per_session",
                    s.redis.commands.total() as f64 / count as f64,
                    2,
                )
                .num(
                    "redis_round_trips_per_session",
                    s.redis.round_trips as f64 / count as f64,
                    2,
                )
                .with("redis_cmds", s.redis.commands.breakdown())
        })
        .collect())
}

/// Sessions through `url` (N replicas round-robin): initialize, LIFECYCLE_CALLS calls, DELETE.
async fn lifecycle(
    watch: &mut Watch,
    url: &str,
    replicas: usize,
    count: usize,
) -> anyhow::Result<Row> {
    let http = reqwest::Client::new();
    let before = watch.snapshot().await?;
    let mut latencies_us = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        let mut session = RawSession::open(&http, url).await?;
        for _ in 0..LIFECYCLE_CALLS {
            session.call(&http, url).await?;
        }
        session.end(&http, url).await?;
        latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    latencies_us.sort_unstable();
    let redis = watch.snapshot().await?.since(&before);
    Ok(Row::new("scale-session")
        .with("via", format!("haproxy→{replicas}"))
        .with("sessions", count)
        .with(
            "requests_per_session",
            format!("initialize+initialized+{LIFECYCLE_CALLS} calls+DELETE"),
        )
        .num("p50_us", f64::from(percentile(&latencies_us, 0.5)), 0)
        .num("p99_us", f64::from(percentile(&latencies_us, 0.99)), 0)
        .num(
            "redis_cmds_per_session",
            redis.commands.total() as f64 / count as f64,
            2,
        )
        .num(
            "redis_round_trips_per_session",
            redis.round_trips as f64 / count as f64,
            2,
        )
        .with("redis_cmds", redis.commands.breakdown()))
}

/// RSS per idle downstream session of `gateway` (and Redis's memory per session, if it has
/// one): before and after `count` bare rmcp sessions are opened and left idle.
async fn idle_sessions(
    label: &str,
    gateway: &GatewayProcess,
    mut watch: Option<&mut Watch>,
    count: usize,
    connector: &Connector,
) -> anyhow::Result<Row> {
    let pid = gateway.pid();
    let mut redis_memory = async || -> anyhow::Result<Option<u64>> {
        Ok(match watch.as_mut() {
            Some(watch) => Some(watch.snapshot().await?.used_memory),
            None => None,
        })
    };
    let rss_before = measure::process_rss_kib(pid).context("the replica's RSS")?;
    let redis_before = redis_memory().await?;
    let endpoint = Endpoint {
        target: Target::Url(gateway.url().to_owned()),
        modern: false,
    };
    let opened: Vec<anyhow::Result<Client>> = futures::stream::iter(0..count)
        .map(|_| Client::connect(Kind::Rmcp, &endpoint, connector))
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let failed = opened.iter().filter(|c| c.is_err()).count();
    if let Some(Err(e)) = opened.iter().find(|c| c.is_err()) {
        note(format!(
            "  {label}: {failed} sessions failed to open, first: {e:#}"
        ));
    }
    let clients: Vec<Client> = opened.into_iter().flatten().collect();
    // Let whatever the sessions set off at start (streams, timers) settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = measure::process_rss_kib(pid).context("the replica's RSS")?;
    let redis_idle = redis_memory().await?;
    // One call each: every session now holds its upstream session (`per_session`).
    let mut echo = JsonObject::new();
    echo.insert("message".into(), "hello from switchboard-bench".into());
    let calls_failed: usize = futures::stream::iter(&clients)
        .map(|c| c.call("kit__echo", &echo))
        .buffer_unordered(OPENING_AT_ONCE)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_used = measure::process_rss_kib(pid).context("the replica's RSS")?;
    let redis_used = redis_memory().await?;
    let open = clients.len().max(1) as f64;
    note(format!(
        "  {label}: {} sessions, RSS {rss_before} -> {rss_idle} KiB idle -> {rss_used} KiB after \
         one call each ({calls_failed} failed)",
        clients.len()
    ));
    futures::stream::iter(clients)
        .for_each_concurrent(OPENING_AT_ONCE, Client::close)
        .await;
    let per_session = |after: u64| (after.saturating_sub(rss_before) * 1024) as f64 / open;
    let row = Row::new("scale-idle")
        .with("replica", label)
        .with("sessions", count - failed)
        .with("failed", failed + calls_failed)
        .num("rss_before_mib", rss_before as f64 / 1024.0, 1)
        .num("rss_idle_mib", rss_idle as f64 / 1024.0, 1)
        .num("rss_after_call_mib", rss_used as f64 / 1024.0, 1)
        .num("bytes_per_idle_session", per_session(rss_idle), 0)
        .num("bytes_per_session_after_call", per_session(rss_used), 0);
    let redis_per_session = |after: Option<u64>| {
        redis_before
            .zip(after)
            .map(|(a, b)| b.saturating_sub(a) as f64 / open)
    };
    Ok(
        match (redis_per_session(redis_idle), redis_per_session(redis_used)) {
            (Some(idle), Some(used)) => row.num("redis_bytes_per_idle_session", idle, 0).num(
                "redis_bytes_per_session_after_call",
                used,
                0,
            ),
            _ => row,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_get_the_scale_table_only_when_asked() {
        let scaled = config(
            "http://127.0.0.1:1/mcp",
            Some(std::path::Path::new("/k")),
            7,
        );
        assert!(
            scaled.contains("[scale]\nstore = \"redis\"\nkeys_file = \"/k\""),
            "{scaled}"
        );
        assert!(
            scaled.contains("session_mode = \"per_session\""),
            "{scaled}"
        );
        let plain = config("http://127.0.0.1:1/mcp", None, 7);
        assert!(!plain.contains("[scale]"), "{plain}");
        assert!(plain.contains("session_mode = \"per_session\""), "{plain}");
    }
}
