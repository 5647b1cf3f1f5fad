//! The command line: one subcommand per scenario, each with the options that make sense for
//! it, plus the options every scenario shares (rounds, JSON output, where the binaries are).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Benchmarks Switchboard's engine against a bare rmcp client on loopback"
)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Many small `echo` calls at several concurrencies: engine vs bare rmcp, per transport.
    Calls(CallsArgs),
    /// Connect to N servers at once, one of which never answers initialize.
    Fanout(FanoutArgs),
    /// Large results (payload tool) through the engine: calls/s and peak RSS.
    Payload(PayloadArgs),
    /// Wall time of `switchboard tools --config F` against stdio testkit servers.
    Coldstart(ColdstartArgs),
    /// Many per-session connections through the hub: create, call, go idle, reap.
    Sessions(SessionsArgs),
    /// The same echo workload straight to the upstream and through `switchboard serve` (and
    /// other MCP endpoints with --also), interleaved, bare rmcp clients on both sides.
    Gateway(GatewayArgs),
    /// `switchboard serve` replicas with `[scale]` over Redis behind HAProxy: the echo workload
    /// through 1 and N replicas (CPU and Redis commands per call), a session's first request
    /// on a replica that has not seen it, memory per idle session with and without `[scale]`.
    Scale(ScaleArgs),
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Measured rounds; the things compared run interleaved (A B A B ...) once per round.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Print one JSON object per measured row on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// The switchboard-testkit binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub testkit: Option<PathBuf>,
    /// Longest one measured run may take before it stops itself (e.g. 60s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub run_limit: Duration,
}

/// A transport the testkit serves and both clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Stdio,
    Sse,
    StreamableHttp,
    /// stdio, the server speaking only the 2026-07-28 revision (no `initialize`).
    StdioModern,
    /// Streamable HTTP without server sessions, the server speaking only 2026-07-28.
    StreamableHttpModern,
}

impl Transport {
    /// What runs when no `--transport` is given.
    pub const ALL: [Transport; 3] = [Transport::Stdio, Transport::StreamableHttp, Transport::Sse];

    /// The server speaks only 2026-07-28.
    pub fn is_modern(self) -> bool {
        matches!(
            self,
            Transport::StdioModern | Transport::StreamableHttpModern
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Sse => "sse",
            Transport::StreamableHttp => "streamable-http",
            Transport::StdioModern => "stdio-modern",
            Transport::StreamableHttpModern => "streamable-http-modern",
        }
    }
}

/// One of the two clients `calls` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Side {
    Engine,
    Rmcp,
}

#[derive(Args, Debug)]
pub struct CallsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Calls per measured run.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Concurrencies to measure (K tasks, each looping over its share of the calls).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 256])]
    pub concurrency: Vec<usize>,
    /// Transports to measure (default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub transport: Vec<Transport>,
    /// Also measure engine variants built from the engine's public pieces (Streamable HTTP
    /// only): per-request connections, and rmcp's max_concurrent_requests raised to 256.
    #[arg(long)]
    pub variants: bool,
    /// Measure one side only (no ratio), e.g. to profile it under `valgrind --tool=callgrind`.
    #[arg(long, value_enum, conflicts_with = "variants")]
    pub only: Option<Side>,
    /// Measure this Streamable HTTP server instead of the testkit (engine vs bare rmcp).
    #[arg(long, value_name = "URL", requires = "tool")]
    pub url: Option<String>,
    /// With --url: the tool to call.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// With --url: the tool's arguments as a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub args: String,
}

/// Where fanout's servers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FanoutTransport {
    /// N sessions on one stateful Streamable HTTP testkit, plus one hanging testkit process.
    StreamableHttp,
    /// N stdio testkit processes, one started with --hang-initialize.
    Stdio,
}

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Numbers of servers to connect to at once (one of them hangs).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    pub servers: Vec<usize>,
    /// Per-server connect timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub connect_timeout: Duration,
    /// Which servers to use.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [FanoutTransport::StreamableHttp])]
    pub transport: Vec<FanoutTransport>,
}

#[derive(Args, Debug)]
pub struct PayloadArgs {
    #[command(flatten)]
    pub common: Common,
    /// Result sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [1024, 65536, 1048576])]
    pub bytes: Vec<usize>,
    /// Most calls per run; fewer for big results (a run moves at most --budget-mib).
    #[arg(long, default_value_t = 1000)]
    pub calls: usize,
    /// Bytes of results one run may move, in MiB.
    #[arg(long, default_value_t = 128)]
    pub budget_mib: usize,
    /// Concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    pub concurrency: Vec<usize>,
    /// Transports to measure (default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub transport: Vec<Transport>,
}

#[derive(Args, Debug)]
pub struct ColdstartArgs {
    #[command(flatten)]
    pub common: Common,
    /// The switchboard binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub switchboard: Option<PathBuf>,
    /// Number of stdio testkit servers in the config.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
}

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sessions per round, each with its own upstream connection and server-side session.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Sessions being created (first calls) at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The server's revision: `classic` (stateful Streamable HTTP: a server session per
    /// session) or `modern` (2026-07-28, stateless: no server session).
    #[arg(long, value_enum, default_value = "classic")]
    pub lifecycle: LifecycleArg,
}

/// Which MCP lifecycle the testkit speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LifecycleArg {
    Classic,
    Modern,
}

#[derive(Args, Debug)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub common: Common,
    /// Calls per measured run.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 256])]
    pub concurrency: Vec<usize>,
    /// The switchboard binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub switchboard: Option<PathBuf>,
    /// The upstream to front: a Streamable HTTP testkit URL with an `echo` tool (default:
    /// start one).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Another MCP endpoint over the same upstream to measure alongside, as
    /// `LABEL,URL,TOOL[,PID]` (PID: its process, for CPU and memory). Repeatable.
    #[arg(long, value_name = "SPEC")]
    pub also: Vec<String>,
    /// Idle downstream sessions opened to measure memory per session (0: skip).
    #[arg(long, default_value_t = 1000)]
    pub idle_sessions: usize,
    /// `RUST_LOG` of the gateway process (its per-call INFO log costs CPU per call).
    #[arg(long, default_value = "warn")]
    pub gateway_log: String,
    /// The gateway's runtime worker threads (`TOKIO_WORKER_THREADS`; default: one per core).
    #[arg(long, value_name = "N")]
    pub gateway_threads: Option<usize>,
    /// Also measure HAProxy (Debian's `haproxy`) as a plain HTTP reverse proxy over the same
    /// upstream: the cost of a proxy hop that does no MCP work, on this machine.
    #[arg(long)]
    pub reference_proxy: bool,
    /// The MCP client making the calls, on every path alike.
    #[arg(long, value_enum, default_value_t = GatewayClient::Rmcp)]
    pub client: GatewayClient,
}

/// The client of the `gateway` scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GatewayClient {
    /// rmcp's client with its defaults: a new connection for every call.
    Rmcp,
    /// Switchboard's engine (`Hub::call`) speaking 2025-11-25: one kept-alive connection,
    /// as the Python and TypeScript SDK clients keep theirs.
    Engine,
    /// Switchboard's engine in its default `auto` mode: it speaks 2026-07-28 (stateless, no
    /// session) to servers that offer it, as the testkit and the gateway do.
    #[value(name = "engine-2026")]
    Engine2026,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Calls per measured run.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Concurrencies to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    pub concurrency: Vec<usize>,
    /// Replicas behind the second HAProxy frontend (the first has one of them).
    #[arg(long, default_value_t = 3, value_parser = at_least_two)]
    pub replicas: usize,
    /// The switchboard binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub switchboard: Option<PathBuf>,
    /// Sessions opened on one replica whose first request then goes to another (0: skip).
    #[arg(long, default_value_t = 200)]
    pub resume_sessions: usize,
    /// Sessions opened, used and DELETEd through the N-replica frontend, counting Redis
    /// commands per session (0: skip).
    #[arg(long, default_value_t = 100)]
    pub lifecycle_sessions: usize,
    /// Idle downstream sessions opened on a `[scale]` replica and on a plain `switchboard
    /// serve` to measure memory per session (0: skip).
    #[arg(long, default_value_t = 500)]
    pub idle_sessions: usize,
    /// `max_sessions` of the `per_session` upstream on each replica (the engine's default,
    /// 100, is below the session counts measured: sessions beyond it are evicted and attach
    /// again, one Redis round trip, when they come back).
    #[arg(long, default_value_t = 10_000)]
    pub max_sessions: usize,
    /// `RUST_LOG` of the replicas.
    #[arg(long, default_value = "warn")]
    pub gateway_log: String,
}

/// A replica count of two or more (one replica is the baseline the others are compared to).
fn at_least_two(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 2 => Ok(n),
        Ok(n) => Err(format!(
            "{n} replicas: give 2 or more (1 is always measured)"
        )),
        Err(e) => Err(format!("{value:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn scale(args: &[&str]) -> Result<ScaleArgs, clap::Error> {
        let cli = Cli::try_parse_from(["switchboard-bench", "scale"].iter().chain(args))?;
        match cli.scenario {
            Scenario::Scale(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn scale_defaults_are_the_bounded_run() {
        let args = scale(&[]).unwrap();
        assert_eq!(args.concurrency, vec![1, 16]);
        assert_eq!(args.replicas, 3);
        assert_eq!(args.calls, 2000);
        assert_eq!(args.resume_sessions, 200);
        assert_eq!(args.idle_sessions, 500);
        assert_eq!(args.common.rounds, 5);
    }

    #[test]
    fn scale_takes_lists_and_refuses_one_replica() {
        let args = scale(&[
            "--concurrency",
            "1,4,16",
            "--replicas",
            "4",
            "--rounds",
            "3",
        ])
        .unwrap();
        assert_eq!(args.concurrency, vec![1, 4, 16]);
        assert_eq!(args.replicas, 4);
        assert_eq!(args.common.rounds, 3);
        let one = scale(&["--replicas", "1"]).unwrap_err().to_string();
        assert!(one.contains("give 2 or more"), "{one}");
        let bad = scale(&["--replicas", "three"]).unwrap_err().to_string();
        assert!(bad.contains("three"), "{bad}");
    }
}
