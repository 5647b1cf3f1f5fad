//! `payload`: big tool results (the testkit's `payload` tool) through the engine, per
//! transport and size: calls/s, MiB/s, and this process's peak RSS while the runs of that
//! size were made (VmHWM, reset before each size via /proc/self/clear_refs when allowed).

use std::sync::Arc;

use rmcp::model::JsonObject;
use switchboard::Connector;

use crate::cli::PayloadArgs;
use crate::client::{Client, Endpoint, Kind, Target};
use crate::load::{self, RunResult};
use crate::measure::{self, median};
use crate::report::{Report, Row, note};
use crate::server::{HttpServer, stdio_args_for};

pub async fn run(args: PayloadArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    let testkit = super::testkit(&args.common)?;
    let transports = super::transports(&args.transport);
    let mut report = Report::new(args.common.json);
    let connector = Connector::new();
    let tool: Arc<str> = Arc::from("payload");
    let can_reset = measure::reset_peak_rss();
    if !can_reset {
        note("payload: cannot reset VmHWM (/proc/self/clear_refs); peak RSS only ever grows");
    }
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
        let client = Arc::new(Client::connect(Kind::Engine, &target, &connector).await?);
        for &bytes in &args.bytes {
            let mut tool_args = JsonObject::new();
            tool_args.insert("bytes".into(), bytes.into());
            let tool_args = Arc::new(tool_args);
            let budget = args.budget_mib * 1024 * 1024;
            let calls = (budget / bytes.max(1)).clamp(20, args.calls.max(20));
            for &concurrency in &args.concurrency {
                let warm = load::run(&client, &tool, &tool_args, 5, 1, args.common.run_limit).await;
                anyhow::ensure!(
                    warm.ok == 5 && warm.bytes == 5 * bytes,
                    "{}: payload {bytes} failed: {}",
                    transport.as_str(),
                    warm.first_error
                        .unwrap_or_else(|| "wrong result size".to_owned())
                );
                let rss_before = measure::rss_kib().unwrap_or(0);
                if can_reset {
                    measure::reset_peak_rss();
                }
                let mut runs = Vec::new();
                for _ in 0..args.common.rounds {
                    let run = load::run(
                        &client,
                        &tool,
                        &tool_args,
                        calls,
                        concurrency,
                        args.common.run_limit,
                    )
                    .await;
                    if let Some(error) = &run.first_error {
                        note(format!(
                            "  {}: {} errors, first: {error}",
                            transport.as_str(),
                            run.errors
                        ));
                    }
                    runs.push(run);
                }
                let peak = measure::peak_rss_kib().unwrap_or(0);
                let cps = median(runs.iter().map(RunResult::calls_per_sec));
                report.push(
                    Row::new("payload")
                        .with("transport", transport.as_str())
                        .with("bytes", bytes)
                        .with("concurrency", concurrency)
                        .with("calls", calls)
                        .num("calls_per_sec", cps, 0)
                        .num("mib_per_sec", cps * bytes as f64 / (1024.0 * 1024.0), 1)
                        .num("p50_us", median(runs.iter().map(RunResult::p50_us)), 0)
                        .num("p99_us", median(runs.iter().map(RunResult::p99_us)), 0)
                        .num(
                            "client_cpu_us_per_call",
                            median(runs.iter().map(RunResult::cpu_us_per_call)),
                            1,
                        )
                        .with("rss_before_kib", rss_before)
                        .with("peak_rss_kib", peak)
                        .with("errors", runs.iter().map(|r| r.errors).sum::<usize>()),
                );
            }
        }
        if let Ok(client) = Arc::try_unwrap(client) {
            client.close().await;
        }
        drop(server);
    }
    report.finish();
    Ok(())
}
