//! The load generator: N calls at concurrency K through one client, timed per call, with the
//! process's CPU time taken before and after. Concurrency K means K tokio tasks, each looping
//! over its share of the N calls (shares differ by at most one). Every run stops itself at
//! its time limit, counting the calls it did not make as missing.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::JsonObject;
use tokio::time::Instant;

use crate::client::Shared;
use crate::measure::{self, percentile};

/// One measured run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Calls that succeeded.
    pub ok: usize,
    /// Calls that failed, plus calls not made because the run hit its time limit.
    pub errors: usize,
    pub first_error: Option<String>,
    pub wall: Duration,
    pub cpu: Duration,
    /// Per successful call, sorted.
    pub latencies_us: Vec<u32>,
    /// Bytes of the first text block, summed over successful calls.
    pub bytes: usize,
}

impl RunResult {
    pub fn calls_per_sec(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn p50_us(&self) -> f64 {
        f64::from(percentile(&self.latencies_us, 0.50))
    }

    pub fn p99_us(&self) -> f64 {
        f64::from(percentile(&self.latencies_us, 0.99))
    }

    /// Client CPU per attempted call, in microseconds.
    pub fn cpu_us_per_call(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / (self.ok + self.errors).max(1) as f64
    }
}

struct TaskResult {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    bytes: usize,
}

/// Makes `calls` calls of `tool(args)` through `client`, `concurrency` at a time, stopping
/// early at `limit`.
pub async fn run(
    client: &Shared,
    tool: &Arc<str>,
    args: &Arc<JsonObject>,
    calls: usize,
    concurrency: usize,
    limit: Duration,
) -> RunResult {
    let concurrency = concurrency.clamp(1, calls.max(1));
    let cpu_before = measure::cpu_time();
    let started = Instant::now();
    let stop_at = started + limit;
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let share = calls / concurrency + usize::from(i < calls % concurrency);
            let (client, tool, args) = (client.clone(), tool.clone(), args.clone());
            tokio::spawn(async move {
                let mut out = TaskResult {
                    ok: 0,
                    errors: 0,
                    first_error: None,
                    latencies_us: Vec::with_capacity(share),
                    bytes: 0,
                };
                for done in 0..share {
                    let t0 = Instant::now();
                    if t0 >= stop_at {
                        out.errors += share - done;
                        out.first_error
                            .get_or_insert_with(|| "the run hit its time limit".to_owned());
                        break;
                    }
                    match tokio::time::timeout_at(stop_at, client.call(&tool, &args)).await {
                        Ok(Ok(bytes)) => {
                            let us = t0.elapsed().as_micros();
                            out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                            out.ok += 1;
                            out.bytes += bytes;
                        }
                        Ok(Err(e)) => {
                            out.errors += 1;
                            out.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                        Err(_) => {
                            out.errors += share - done;
                            out.first_error
                                .get_or_insert_with(|| "the run hit its time limit".to_owned());
                            break;
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut result = RunResult {
        ok: 0,
        errors: 0,
        first_error: None,
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        latencies_us: Vec::with_capacity(calls),
        bytes: 0,
    };
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(t) => {
                result.ok += t.ok;
                result.errors += t.errors;
                result.bytes += t.bytes;
                result.latencies_us.extend(t.latencies_us);
                if result.first_error.is_none() {
                    result.first_error = t.first_error;
                }
            }
            Err(e) => {
                result.errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| format!("task failed: {e}"));
            }
        }
    }
    result.wall = started.elapsed();
    result.cpu = measure::cpu_time().saturating_sub(cpu_before);
    result.latencies_us.sort_unstable();
    result
}
