//! `calls`: many small tool calls through a bare rmcp client and through the engine, against
//! the same server, interleaved round by round (rmcp engine, engine rmcp, ...: the first
//! client rotates each round),
//! reported as medians over rounds and the engine/rmcp ratio (median of per-round ratios).
//!
//! One testkit process per HTTP transport serves every client. For stdio each client starts
//! its own testkit child, since a stdio server has exactly one client.

use std::sync::Arc;

use anyhow::Context;
use rmcp::model::JsonObject;
use switchboard::{Connector, TransportKind};

use crate::cli::{CallsArgs, Side};
use crate::client::{Client, Endpoint, Kind, Shared, Target};
use crate::load::{self, RunResult};
use crate::measure::median;
use crate::report::{Report, Row, note};
use crate::server::{HttpServer, stdio_args_for};

/// Calls made by each client before measuring (connections, caches, allocator warm).
const WARMUP_CALLS: usize = 200;

pub async fn run(args: CallsArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    anyhow::ensure!(args.calls >= 1, "--calls must be at least 1");
    anyhow::ensure!(
        args.concurrency.iter().all(|&k| k >= 1),
        "--concurrency values must be at least 1"
    );
    let mut report = Report::new(args.common.json);
    let connector = Connector::new();

    if let Some(url) = &args.url {
        let tool: Arc<str> = Arc::from(args.tool.as_deref().unwrap_or_default());
        let tool_args: JsonObject =
            serde_json::from_str(&args.args).context("--args must be a JSON object")?;
        let label = TransportKind::for_url(url).as_str();
        measure_target(
            &args,
            &connector,
            &mut report,
            label,
            &Endpoint {
                target: Target::Url(url.clone()),
                modern: false,
            },
            &tool,
            &Arc::new(tool_args),
        )
        .await?;
    } else {
        let testkit = super::testkit(&args.common)?;
        let transports = super::transports(&args.transport);
        let tool: Arc<str> = Arc::from("echo");
        let mut tool_args = JsonObject::new();
        tool_args.insert("message".into(), "hello from switchboard-bench".into());
        let tool_args = Arc::new(tool_args);
        for transport in transports {
            let server = HttpServer::for_transport(&testkit, transport).await?;
            let target = match &server {
                Some(server) => Target::Url(server.url().to_owned()),
                None => Target::Stdio {
                    program: testkit.clone(),
                    args: stdio_args_for(transport),
                },
            };
            let target = Endpoint {
                target,
                modern: transport.is_modern(),
            };
            measure_target(
                &args,
                &connector,
                &mut report,
                transport.as_str(),
                &target,
                &tool,
                &tool_args,
            )
            .await?;
            drop(server);
        }
    }
    report.finish();
    Ok(())
}

async fn measure_target(
    args: &CallsArgs,
    connector: &Connector,
    report: &mut Report,
    transport: &str,
    target: &Endpoint,
    tool: &Arc<str>,
    tool_args: &Arc<JsonObject>,
) -> anyhow::Result<()> {
    let mut kinds = match args.only {
        Some(Side::Engine) => vec![Kind::Engine],
        Some(Side::Rmcp) => vec![Kind::Rmcp],
        None => vec![Kind::Rmcp, Kind::Engine],
    };
    if args.variants && transport == "streamable-http" {
        kinds.extend([
            Kind::EnginePerRequest,
            Kind::Engine256,
            Kind::EnginePerRequest256,
        ]);
    }
    note(format!(
        "calls: {transport}: connecting {} clients",
        kinds.len()
    ));
    let mut clients: Vec<Shared> = Vec::new();
    for kind in &kinds {
        clients.push(Arc::new(Client::connect(*kind, target, connector).await?));
    }
    let limit = args.common.run_limit;
    for (kind, client) in kinds.iter().zip(&clients) {
        let warm = load::run(
            client,
            tool,
            tool_args,
            WARMUP_CALLS.min(args.calls),
            16,
            limit,
        )
        .await;
        if warm.ok == 0 {
            anyhow::bail!(
                "{transport}: {} cannot call '{tool}': {}",
                kind.label(),
                warm.first_error.unwrap_or_default()
            );
        }
    }
    for &concurrency in &args.concurrency {
        let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); kinds.len()];
        for round in 0..args.common.rounds {
            // Interleaved, and the starting client rotates every round (A B, B A, ...), so
            // neither side always runs first.
            for step in 0..clients.len() {
                let i = (round + step) % clients.len();
                let client = &clients[i];
                let result =
                    load::run(client, tool, tool_args, args.calls, concurrency, limit).await;
                if let Some(error) = &result.first_error {
                    note(format!(
                        "  {transport} c={concurrency} round {round} {}: {} errors, first: {error}",
                        kinds[i].label(),
                        result.errors
                    ));
                }
                runs[i].push(result);
            }
            note(format!(
                "  {transport} c={concurrency} round {}/{}: {}",
                round + 1,
                args.common.rounds,
                kinds
                    .iter()
                    .zip(&runs)
                    .map(|(k, r)| format!("{} {:.0}/s", k.label(), r[round].calls_per_sec()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if args.only.is_some() {
            report.push(row(
                transport,
                concurrency,
                args.calls,
                kinds[0],
                &runs[0],
                None,
            ));
        }
        for (i, kind) in kinds.iter().enumerate().skip(1) {
            report.push(row(
                transport,
                concurrency,
                args.calls,
                *kind,
                &runs[i],
                Some(&runs[0]),
            ));
        }
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            client.close().await;
        }
    }
    Ok(())
}

/// The row for `kind` (an engine) next to bare rmcp (`base`), both over the same rounds; or,
/// without `base` (`--only`), the row for `kind` alone.
fn row(
    transport: &str,
    concurrency: usize,
    calls: usize,
    kind: Kind,
    runs: &[RunResult],
    base: Option<&[RunResult]>,
) -> Row {
    let med = |rs: &[RunResult], f: fn(&RunResult) -> f64| median(rs.iter().map(f));
    let mut row = Row::new("calls").with("transport", transport);
    if kind != Kind::Engine {
        row = row.with("client", kind.label());
    }
    let row = row
        .with("concurrency", concurrency)
        .with("calls", calls)
        .with("rounds", runs.len())
        .num("calls_per_sec", med(runs, RunResult::calls_per_sec), 0)
        .num("p50_us", med(runs, RunResult::p50_us), 0)
        .num("p99_us", med(runs, RunResult::p99_us), 0)
        .num(
            "client_cpu_us_per_call",
            med(runs, RunResult::cpu_us_per_call),
            1,
        );
    let Some(base) = base else {
        return row.with("errors", runs.iter().map(|r| r.errors).sum::<usize>());
    };
    let ratio = median(
        runs.iter()
            .zip(base)
            .map(|(b, a)| b.calls_per_sec() / a.calls_per_sec()),
    );
    row.num("rmcp_calls_per_sec", med(base, RunResult::calls_per_sec), 0)
        .num("rmcp_p50_us", med(base, RunResult::p50_us), 0)
        .num("rmcp_p99_us", med(base, RunResult::p99_us), 0)
        .num(
            "rmcp_client_cpu_us_per_call",
            med(base, RunResult::cpu_us_per_call),
            1,
        )
        .num("ratio", ratio, 3)
        .with("errors", runs.iter().map(|r| r.errors).sum::<usize>())
        .with("rmcp_errors", base.iter().map(|r| r.errors).sum::<usize>())
}
