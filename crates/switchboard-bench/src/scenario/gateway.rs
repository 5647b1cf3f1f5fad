//! `gateway`: the same `echo` workload straight to the upstream and through `switchboard
//! serve` (plus any other MCP endpoint over the same upstream, `--also`, e.g. FastMCP's proxy
//! from `scripts/compare-gateways`), interleaved round by round with the first target
//! rotating, bare rmcp clients over Streamable HTTP on every side. `--reference-proxy` adds
//! HAProxy as a plain reverse proxy over the same upstream: what a hop that does no MCP work
//! adds on this machine, the floor the gateway's figures are read against.
//!
//! Per concurrency and target: calls/s and its ratio to direct (median of per-round ratios),
//! p50/p99 and what the hop adds to them (median of per-round differences), the target
//! process's CPU per call (its utime + stime over the run, from /proc), the upstream's (when
//! the bench started it) and the client's, on both paths; and the ratio those CPU figures
//! bound calls/s to when the machine's cores are the limit: direct costs client + upstream
//! per call, through the gateway client + upstream + gateway, so at best
//! `cpu_bound_ratio` = (client + upstream)direct / (client + upstream + gateway)via.
//! Then, per target with a known process, its memory per idle downstream session: RSS before
//! and after opening `--idle-sessions` MCP sessions that stay open.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use rmcp::model::JsonObject;
use switchboard::Connector;

use crate::cli::{GatewayArgs, GatewayClient};
use crate::client::{Client, Endpoint, Kind, Shared, Target};
use crate::cluster::Haproxy;
use crate::load::{self, RunResult};
use crate::measure::{self, median};
use crate::report::{Report, Row, note};
use crate::server::{GatewayProcess, HttpServer, find_binary};

/// Calls made through each target before measuring.
const WARMUP_CALLS: usize = 200;
/// Idle sessions being opened at once.
const OPENING_AT_ONCE: usize = 64;

/// One endpoint measured: where, which tool, its process (if known) and a connected client.
struct Hop {
    label: String,
    url: String,
    tool: Arc<str>,
    pid: Option<u32>,
    client: Shared,
}

/// One measured run through one hop, and the CPU its process and the upstream's used
/// meanwhile.
struct Measured {
    run: RunResult,
    server_cpu: Option<Duration>,
    upstream_cpu: Option<Duration>,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    anyhow::ensure!(args.calls >= 1, "--calls must be at least 1");
    let switchboard = find_binary("switchboard", args.switchboard.as_deref(), "--switchboard")?;
    let started_upstream = match &args.upstream {
        Some(_) => None,
        None => {
            let testkit = super::testkit(&args.common)?;
            Some(HttpServer::start(&testkit, "streamable-http", &[]).await?)
        }
    };
    let upstream = match (&args.upstream, &started_upstream) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url().to_owned(),
        (None, None) => unreachable!("started above"),
    };
    let upstream_pid = started_upstream.as_ref().and_then(HttpServer::pid);
    let gateway = GatewayProcess::start(
        &switchboard,
        &upstream,
        &args.gateway_log,
        args.gateway_threads,
    )
    .await?;
    note(format!(
        "gateway: upstream {upstream}, switchboard serve at {}",
        gateway.url()
    ));

    let connector = Connector::new();
    let mut specs = vec![
        (
            "direct".to_owned(),
            upstream.clone(),
            "echo".to_owned(),
            None,
        ),
        (
            "switchboard".to_owned(),
            gateway.url().to_owned(),
            "kit__echo".to_owned(),
            Some(gateway.pid()),
        ),
    ];
    let reference = match args.reference_proxy {
        true => Some(Haproxy::reference(&upstream).await?),
        false => None,
    };
    if let Some(haproxy) = &reference {
        let url = haproxy.url(0).to_owned();
        specs.push((
            "haproxy".to_owned(),
            url,
            "echo".to_owned(),
            Some(haproxy.pid()),
        ));
    }
    for also in &args.also {
        specs.push(parse_also(also)?);
    }
    let mut hops = Vec::new();
    for (label, url, tool, pid) in specs {
        let endpoint = Endpoint {
            target: Target::Url(url.clone()),
            modern: false,
        };
        let kind = match args.client {
            GatewayClient::Rmcp => Kind::Rmcp,
            GatewayClient::Engine => Kind::EngineClassic,
            GatewayClient::Engine2026 => Kind::Engine,
        };
        let client = Client::connect(kind, &endpoint, &connector)
            .await
            .with_context(|| format!("connecting to {label} at {url}"))?;
        hops.push(Hop {
            label,
            url,
            tool: Arc::from(tool),
            pid,
            client: Arc::new(client),
        });
    }
    let mut echo = JsonObject::new();
    echo.insert("message".into(), "hello from switchboard-bench".into());
    let echo = Arc::new(echo);
    let limit = args.common.run_limit;
    for hop in &hops {
        let warm = load::run(&hop.client, &hop.tool, &echo, WARMUP_CALLS, 16, limit).await;
        anyhow::ensure!(
            warm.ok > 0,
            "{}: cannot call '{}': {}",
            hop.label,
            hop.tool,
            warm.first_error.unwrap_or_default()
        );
    }

    let mut report = Report::new(args.common.json);
    for &concurrency in &args.concurrency {
        let mut runs: Vec<Vec<Measured>> = hops.iter().map(|_| Vec::new()).collect();
        for round in 0..args.common.rounds {
            for step in 0..hops.len() {
                let i = (round + step) % hops.len();
                let hop = &hops[i];
                let cpu_before = hop.pid.and_then(measure::process_cpu);
                let upstream_before = upstream_pid.and_then(measure::process_cpu);
                let run = load::run(
                    &hop.client,
                    &hop.tool,
                    &echo,
                    args.calls,
                    concurrency,
                    limit,
                )
                .await;
                let cpu_after = hop.pid.and_then(measure::process_cpu);
                let upstream_after = upstream_pid.and_then(measure::process_cpu);
                if let Some(error) = &run.first_error {
                    note(format!(
                        "  c={concurrency} round {round} {}: {} errors, first: {error}",
                        hop.label, run.errors
                    ));
                }
                let used = |(a, b): (Duration, Duration)| b.saturating_sub(a);
                let server_cpu = cpu_before.zip(cpu_after).map(used);
                let upstream_cpu = upstream_before.zip(upstream_after).map(used);
                runs[i].push(Measured {
                    run,
                    server_cpu,
                    upstream_cpu,
                });
            }
            note(format!(
                "  c={concurrency} round {}/{}: {}",
                round + 1,
                args.common.rounds,
                hops.iter()
                    .zip(&runs)
                    .map(|(h, r)| format!("{} {:.0}/s", h.label, r[round].run.calls_per_sec()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (hop, measured) in hops.iter().zip(&runs).skip(1) {
            report.push(row(hop, concurrency, args.calls, measured, &runs[0]));
        }
    }
    if args.idle_sessions > 0 {
        // (HAProxy holds no MCP sessions: the upstream does.)
        let holders = hops
            .iter()
            .filter(|h| h.pid.is_some() && h.label != "haproxy");
        for hop in holders {
            report.push(idle_sessions(hop, args.idle_sessions, &connector).await?);
        }
    }
    report.finish();
    for hop in hops {
        if let Ok(client) = Arc::try_unwrap(hop.client) {
            client.close().await;
        }
    }
    drop(gateway);
    drop(reference);
    drop(started_upstream);
    Ok(())
}

/// `LABEL,URL,TOOL[,PID]`.
fn parse_also(spec: &str) -> anyhow::Result<(String, String, String, Option<u32>)> {
    let parts: Vec<&str> = spec.split(',').collect();
    let (label, url, tool) = match parts[..] {
        [label, url, tool] | [label, url, tool, _] => (label, url, tool),
        _ => anyhow::bail!("--also {spec:?}: expected LABEL,URL,TOOL[,PID]"),
    };
    let pid = match parts.get(3) {
        Some(pid) => Some(
            pid.parse()
                .with_context(|| format!("--also {spec:?}: PID"))?,
        ),
        None => None,
    };
    Ok((label.to_owned(), url.to_owned(), tool.to_owned(), pid))
}

/// The row of `hop` at one concurrency, next to the direct runs of the same rounds.
fn row(hop: &Hop, concurrency: usize, calls: usize, runs: &[Measured], direct: &[Measured]) -> Row {
    let med = |rs: &[Measured], f: fn(&RunResult) -> f64| median(rs.iter().map(|m| f(&m.run)));
    let per_round = |f: fn(&RunResult) -> f64, g: fn(f64, f64) -> f64| {
        median(
            runs.iter()
                .zip(direct)
                .map(|(a, b)| g(f(&a.run), f(&b.run))),
        )
    };
    let server_cpu = per_call(runs, |m| m.server_cpu);
    let upstream_cpu = per_call(runs, |m| m.upstream_cpu);
    let direct_upstream_cpu = per_call(direct, |m| m.upstream_cpu);
    let client_cpu = med(runs, RunResult::cpu_us_per_call);
    let direct_client_cpu = med(direct, RunResult::cpu_us_per_call);
    // What the CPU spent per call allows, when the cores are what limits calls/s (unknown
    // without the upstream's process: `--upstream`).
    let measured = runs.iter().chain(direct).all(|m| m.upstream_cpu.is_some());
    let cpu_bound = match measured {
        true => {
            (direct_client_cpu + direct_upstream_cpu) / (client_cpu + upstream_cpu + server_cpu)
        }
        false => f64::NAN,
    };
    Row::new("gateway")
        .with("via", hop.label.as_str())
        .with("concurrency", concurrency)
        .with("calls", calls)
        .with("rounds", runs.len())
        .num("calls_per_sec", med(runs, RunResult::calls_per_sec), 0)
        .num(
            "direct_calls_per_sec",
            med(direct, RunResult::calls_per_sec),
            0,
        )
        .num(
            "ratio",
            per_round(RunResult::calls_per_sec, |a, b| a / b),
            3,
        )
        .num("p50_us", med(runs, RunResult::p50_us), 0)
        .num(
            "added_p50_us",
            per_round(RunResult::p50_us, |a, b| a - b),
            0,
        )
        .num("p99_us", med(runs, RunResult::p99_us), 0)
        .num(
            "added_p99_us",
            per_round(RunResult::p99_us, |a, b| a - b),
            0,
        )
        .num("server_cpu_us_per_call", server_cpu, 1)
        .num("upstream_cpu_us_per_call", upstream_cpu, 1)
        .num("client_cpu_us_per_call", client_cpu, 1)
        .num("direct_upstream_cpu_us_per_call", direct_upstream_cpu, 1)
        .num("direct_client_cpu_us_per_call", direct_client_cpu, 1)
        .num("cpu_bound_ratio", cpu_bound, 3)
        .with("errors", runs.iter().map(|m| m.run.errors).sum::<usize>())
        .with("url", hop.url.as_str())
}

/// The median over `runs` of a process's CPU (`cpu`, when measured) per call attempted, in
/// µs (0 when not measured).
fn per_call(runs: &[Measured], cpu: fn(&Measured) -> Option<Duration>) -> f64 {
    median(runs.iter().filter_map(|m| {
        let attempted = (m.run.ok + m.run.errors).max(1) as f64;
        cpu(m).map(|cpu| cpu.as_secs_f64() * 1e6 / attempted)
    }))
}

/// Memory per idle downstream session of `hop`'s process: its RSS before and after `count`
/// MCP sessions are opened (initialized, then left idle).
async fn idle_sessions(hop: &Hop, count: usize, connector: &Connector) -> anyhow::Result<Row> {
    let pid = hop.pid.context("a process to measure")?;
    let before = measure::process_rss_kib(pid).context("the process's RSS")?;
    let endpoint = Endpoint {
        target: Target::Url(hop.url.clone()),
        modern: false,
    };
    let opened: Vec<anyhow::Result<Client>> = futures::stream::iter(0..count)
        .map(|_| Client::connect(Kind::Rmcp, &endpoint, connector))
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let failed = opened.iter().filter(|c| c.is_err()).count();
    // Let whatever the sessions set off at start (streams, timers) settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = measure::process_rss_kib(pid).context("the process's RSS")?;
    let open = count - failed;
    let bytes = (after.saturating_sub(before) * 1024) as f64 / open.max(1) as f64;
    note(format!(
        "  {}: {open} idle sessions, RSS {before} -> {after} KiB",
        hop.label
    ));
    futures::stream::iter(opened.into_iter().flatten())
        .for_each_concurrent(OPENING_AT_ONCE, Client::close)
        .await;
    Ok(Row::new("gateway-idle")
        .with("via", hop.label.as_str())
        .with("sessions", open)
        .with("failed", failed)
        .num("rss_before_mib", before as f64 / 1024.0, 1)
        .num("rss_after_mib", after as f64 / 1024.0, 1)
        .num("bytes_per_idle_session", bytes, 0))
}
