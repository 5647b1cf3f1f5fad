//! `fanout`: connect to N servers at once (`join_all` over `Connector::connect`, as the engine
//! does), one of which never answers `initialize`, and time until every connect has finished
//! or failed: the moment a tool catalogue could be built. It should track the per-server
//! connect timeout, not N.
//!
//! Servers: by default N-1 sessions on one stateful Streamable HTTP testkit process plus one
//! hanging testkit process (so N=100 does not mean 100 processes on 2 cores); with
//! `--transport stdio`, N testkit child processes, one started with `--hang-initialize`.

use std::time::Duration;

use futures::future::join_all;
use switchboard::config::Variables;
use switchboard::{Connector, ServerConfig};
use tokio::time::Instant;

use crate::cli::{FanoutArgs, FanoutTransport};
use crate::measure::median;
use crate::report::{Report, Row, note};
use crate::server::{HttpServer, stdio_args};

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    super::check_rounds(args.common.rounds)?;
    let testkit = super::testkit(&args.common)?;
    let mut report = Report::new(args.common.json);
    for &transport in &args.transport {
        // Kept alive for the whole transport; killed on drop.
        let mut servers = Vec::new();
        let (healthy, hanging) = match transport {
            FanoutTransport::StreamableHttp => {
                let ok = HttpServer::start(&testkit, "streamable-http", &[]).await?;
                let hang =
                    HttpServer::start(&testkit, "streamable-http", &["--hang-initialize"]).await?;
                let pair = (
                    ServerConfig::url("healthy", ok.url()),
                    ServerConfig::url("hanging", hang.url()),
                );
                servers.extend([ok, hang]);
                pair
            }
            FanoutTransport::Stdio => {
                let program = testkit.display().to_string();
                (
                    ServerConfig::stdio("healthy", program.clone(), stdio_args(false)),
                    ServerConfig::stdio("hanging", program, stdio_args(true)),
                )
            }
        };
        let label = match transport {
            FanoutTransport::StreamableHttp => "streamable-http",
            FanoutTransport::Stdio => "stdio",
        };
        for &n in &args.servers {
            anyhow::ensure!(n >= 1, "--servers values must be at least 1");
            let configs: Vec<ServerConfig> = (0..n)
                .map(|i| {
                    let mut config = if i == 0 {
                        hanging.clone()
                    } else {
                        healthy.clone()
                    };
                    config.name = format!("s{i}");
                    config.connect_timeout = args.connect_timeout;
                    config
                })
                .collect();
            let mut ready = Vec::new();
            let mut healthy_ready = Vec::new();
            let (mut ok, mut failed) = (0, 0);
            for round in 0..args.common.rounds {
                let outcome = fan_out(&configs).await;
                note(format!(
                    "  fanout {label} n={n} round {}: ready {:.0} ms, {} ok, {} failed",
                    round + 1,
                    outcome.ready.as_secs_f64() * 1e3,
                    outcome.ok,
                    outcome.failed
                ));
                ready.push(outcome.ready.as_secs_f64() * 1e3);
                healthy_ready.push(outcome.slowest_ok.as_secs_f64() * 1e3);
                (ok, failed) = (outcome.ok, outcome.failed);
            }
            report.push(
                Row::new("fanout")
                    .with("transport", label)
                    .with("servers", n)
                    .with("rounds", args.common.rounds)
                    .num("ready_ms", median(ready), 0)
                    .num("healthy_ready_ms", median(healthy_ready), 0)
                    .with(
                        "connect_timeout_ms",
                        args.connect_timeout.as_millis() as u64,
                    )
                    .with("ok", ok)
                    .with("failed", failed),
            );
        }
        drop(servers);
    }
    report.finish();
    Ok(())
}

struct Outcome {
    /// Until every connect finished or failed.
    ready: Duration,
    /// The slowest successful connect (0 if none).
    slowest_ok: Duration,
    ok: usize,
    failed: usize,
}

async fn fan_out(configs: &[ServerConfig]) -> Outcome {
    let connector = Connector::new();
    let started = Instant::now();
    let results = join_all(configs.iter().map(|config| {
        let connector = &connector;
        async move {
            let result = connector.connect(config, Variables::default()).await;
            (result, started.elapsed())
        }
    }))
    .await;
    let ready = started.elapsed();
    let mut outcome = Outcome {
        ready,
        slowest_ok: Duration::ZERO,
        ok: 0,
        failed: 0,
    };
    let mut upstreams = Vec::new();
    for (result, at) in results {
        match result {
            Ok(upstream) => {
                outcome.ok += 1;
                outcome.slowest_ok = outcome.slowest_ok.max(at);
                upstreams.push(upstream);
            }
            Err(_) => outcome.failed += 1,
        }
    }
    join_all(upstreams.iter().map(|u| u.close())).await;
    outcome
}
