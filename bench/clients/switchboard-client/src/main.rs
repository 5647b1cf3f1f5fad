//! Echo workload on the Switchboard engine, for `scripts/compare-clients`.
//!
//! Usage: `switchboard-compare-client URL [--calls N] [--concurrency C] [--warmup W]
//! [--runtime current-thread|multi-thread]`
//!
//! Opens one Streamable HTTP session through `switchboard::Connector`, warms up, then runs N
//! sequential `echo` calls and N calls with C in flight (C tasks sharing the upstream), and
//! prints one JSON line per phase. Connect/initialize and warm-up are not measured. CPU is this
//! process's own user+system time (`getrusage(RUSAGE_SELF)`, all threads).
//!
//! The default runtime is tokio's `current_thread`: one session's calls need no second
//! thread, and the other clients compared (Python asyncio, Node) are single-threaded too.
//! `--runtime multi-thread` uses tokio's default multi-thread runtime (one worker per CPU),
//! where a call also pays for waking workers across threads (BENCHMARKS.md, "Profiles").

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use serde_json::{Map, Value, json};
use switchboard::internals::Upstream;
use switchboard::{Connector, ServerConfig, config::Variables};
use tokio::time::Instant;

struct Opts {
    url: String,
    calls: usize,
    concurrency: usize,
    warmup: usize,
    multi_thread: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts {
        url: String::new(),
        calls: 2000,
        concurrency: 16,
        warmup: 100,
        multi_thread: false,
    };
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<usize, String> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--calls" => opts.calls = number(args.next(), "--calls")?,
            "--concurrency" => opts.concurrency = number(args.next(), "--concurrency")?.max(1),
            "--warmup" => opts.warmup = number(args.next(), "--warmup")?,
            "--runtime" => {
                opts.multi_thread = match args.next().as_deref() {
                    Some("current-thread") => false,
                    Some("multi-thread") => true,
                    _ => return Err("--runtime needs current-thread or multi-thread".into()),
                }
            }
            _ if opts.url.is_empty() && !arg.starts_with('-') => opts.url = arg,
            _ => return Err(format!("unexpected argument '{arg}'")),
        }
    }
    if opts.url.is_empty() {
        return Err(
            "usage: switchboard-compare-client URL [--calls N] [--concurrency C] [--warmup W] \
             [--runtime current-thread|multi-thread]"
                .into(),
        );
    }
    Ok(opts)
}

/// This process's user+system CPU time in microseconds (every thread).
fn cpu_us() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Nearest-rank percentile, the same rule the Python and Node clients use.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q / 100.0).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn report(runtime: &str, phase: &str, mut lat: Vec<f64>, wall: Duration, cpu: f64) {
    lat.sort_by(f64::total_cmp);
    let n = lat.len() as f64;
    println!(
        "{}",
        json!({
            "client": "switchboard",
            "runtime": runtime,
            "phase": phase,
            "calls": lat.len(),
            "calls_per_sec": round1(n / wall.as_secs_f64()),
            "p50_us": round1(percentile(&lat, 50.0)),
            "p99_us": round1(percentile(&lat, 99.0)),
            "client_cpu_us_per_call": round1(cpu / n),
        })
    );
}

fn echo_args() -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("message".into(), Value::from("hello"));
    args
}

async fn one_call(upstream: &Upstream) -> Result<f64, String> {
    let start = StdInstant::now();
    let outcome = upstream
        .call_tool(
            "echo",
            Some(echo_args()),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64() * 1e6;
    if outcome.is_error {
        return Err(format!("echo reported an error: {}", outcome.text()));
    }
    Ok(elapsed)
}

async fn sequential(upstream: &Upstream, calls: usize) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        out.push(one_call(upstream).await?);
    }
    Ok(out)
}

/// `calls` calls with `in_flight` tasks pulling from a shared counter.
async fn concurrent(
    upstream: &Arc<Upstream>,
    calls: usize,
    in_flight: usize,
) -> Result<Vec<f64>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(in_flight);
    for _ in 0..in_flight.min(calls) {
        let upstream = upstream.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                out.push(one_call(&upstream).await?);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

async fn run(opts: Opts) -> Result<(), String> {
    let runtime = if opts.multi_thread {
        "multi-thread"
    } else {
        "current-thread"
    };
    let server = ServerConfig::url("bench", opts.url.as_str());
    let upstream = Connector::new()
        .connect(&server, Variables::default())
        .await
        .map_err(|e| e.to_string())?;
    let upstream = Arc::new(upstream);
    let result = async {
        sequential(&upstream, opts.warmup).await?;

        let (cpu0, t0) = (cpu_us(), StdInstant::now());
        let lat = sequential(&upstream, opts.calls).await?;
        report(runtime, "sequential", lat, t0.elapsed(), cpu_us() - cpu0);

        let (cpu0, t0) = (cpu_us(), StdInstant::now());
        let lat = concurrent(&upstream, opts.calls, opts.concurrency).await?;
        report(
            runtime,
            &format!("concurrent{}", opts.concurrency),
            lat,
            t0.elapsed(),
            cpu_us() - cpu0,
        );
        Ok(())
    }
    .await;
    upstream.close().await;
    result
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = if opts.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    // Run the workload as a task, as an application would. With the multi-thread runtime the
    // `block_on` future itself runs on the main thread, outside the workers, so every call's
    // reply would also wake a thread that is not a worker.
    let result = runtime.block_on(async {
        tokio::spawn(run(opts))
            .await
            .unwrap_or_else(|e| Err(format!("the client task failed: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard client: {e}");
            ExitCode::FAILURE
        }
    }
}
