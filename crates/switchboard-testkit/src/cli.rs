//! Command-line front end of the `switchboard-testkit` binary: flags (each
//! also settable as `SWITCHBOARD_TESTKIT_<FLAG>`, since stdio servers are
//! usually configured through their environment), logging to stderr, and the
//! `listening <url>` line that tests spawning the binary read from stdout.
//!
//! Without a subcommand the binary is the test server; `switchboard-testkit
//! proxy --upstream URL [--fault SPEC]... [--port N]` runs a [`FaultProxy`].

use std::{io::Write, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::{
    AuthKnobs, AuthServer, FaultProxy, FaultRule, HttpMode, Knobs, Lifecycle, TestClient,
    serve_sse_on, serve_stdio, serve_streamable_http_on,
};

/// Which transport the binary serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// JSON-RPC over stdin/stdout.
    Stdio,
    /// Legacy HTTP+SSE (2024-11-05) at `/sse`.
    Sse,
    /// Streamable HTTP at `/mcp` with sessions.
    StreamableHttp,
    /// Streamable HTTP at `/mcp` without sessions.
    StreamableHttpStateless,
    /// Streamable HTTP at `/mcp` without sessions, answering plain JSON where it can.
    StreamableHttpStatelessJson,
}

/// A real MCP server for Switchboard's tests and benchmarks.
#[derive(Clone, Debug, Parser)]
#[command(name = "switchboard-testkit", version)]
pub struct Args {
    /// Something else than the test server (the flags below are the server's).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Transport to serve.
    #[arg(
        long,
        env = "SWITCHBOARD_TESTKIT_TRANSPORT",
        value_enum,
        default_value = "stdio"
    )]
    pub transport: TransportArg,
    /// HTTP port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_PORT", default_value_t = 0)]
    pub port: u16,
    /// Number of generated tools `tool_0` .. `tool_{N-1}`.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_TOOLS", default_value_t = 0)]
    pub tools: usize,
    /// Delay before every tool call's work, e.g. `5ms`, `1s`.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_LATENCY", value_parser = humantime::parse_duration, default_value = "0s")]
    pub latency: Duration,
    /// HTTP modes: answer 401 to requests without `Authorization: Bearer TOKEN`.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_REQUIRE_BEARER", value_name = "TOKEN")]
    pub require_bearer: Option<String>,
    /// Never answer `initialize`.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_HANG_INITIALIZE")]
    pub hang_initialize: bool,
    /// Answer `initialize` only after this long (e.g. 700ms).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_INITIALIZE_DELAY", value_parser = humantime::parse_duration)]
    pub initialize_delay: Option<Duration>,
    /// The `drop` tool (and the first `crash_once*` execution) hangs instead of
    /// exiting the process.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_NO_EXIT_ON_DROP")]
    pub no_exit_on_drop: bool,
    /// Serve `tools/list` and `resources/list` in pages of N items (0: one page).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_PAGE_SIZE", default_value_t = 0)]
    pub page_size: usize,
    /// After the client's `initialized`, wait this long, add a tool and send
    /// tools/list_changed unprompted (e.g. 200ms).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_NOTIFY_AFTER", value_parser = humantime::parse_duration)]
    pub notify_after: Option<Duration>,
    /// Do not declare the resources and prompts capabilities (they are still served to
    /// whoever asks: a client that asks anyway is caught out).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_HIDE_OFFERS")]
    pub hide_offers: bool,
    /// MCP lifecycles to speak: `classic` (initialize only), `modern` (2026-07-28
    /// `server/discover` only) or `both`.
    #[arg(
        long,
        env = "SWITCHBOARD_TESTKIT_LIFECYCLE",
        value_enum,
        default_value = "classic"
    )]
    pub lifecycle: Lifecycle,
    /// Put this `ttlMs` on every tool (with `cacheScope: "public"`), resource and prompt
    /// list page (e.g. 2s).
    #[arg(long, env = "SWITCHBOARD_TESTKIT_LIST_TTL", value_parser = humantime::parse_duration)]
    pub list_ttl: Option<Duration>,
    /// stdio: drop `server/discover` requests unanswered (instead of "method not found").
    #[arg(long, env = "SWITCHBOARD_TESTKIT_IGNORE_DISCOVER")]
    pub ignore_discover: bool,
    /// Answer the first `server/discover` this late (e.g. 2s), later ones at once.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub slow_first_discover: Option<Duration>,
    /// Streamable HTTP: be an OAuth protected resource, with an authorization server of our
    /// own on another port (its URL is logged to stderr as `auth-server URL`) that knows
    /// this client (repeatable), e.g. `bot:s3cret`.
    #[arg(long = "oauth-client", value_name = "ID:SECRET")]
    pub oauth_clients: Vec<String>,
    /// Lifetime of the authorization server's access tokens (e.g. 2s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub oauth_access_ttl: Duration,
    /// The authorization server rotates refresh tokens (a used one is revoked).
    #[arg(long)]
    pub oauth_rotate_refresh_tokens: bool,
    /// Tool lists are `cacheScope: "private"` and hold `mine_<user>` for the caller
    /// named by the `X-User` header.
    #[arg(long, env = "SWITCHBOARD_TESTKIT_PRIVATE_LISTS")]
    pub private_lists: bool,
    /// Serve `route`, whose `region` argument is also an `Mcp-Param-Region` header.
    #[arg(long)]
    pub header_params: bool,
}

/// Modes other than serving the test server.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// An HTTP fault-injection proxy in front of an upstream (e.g. a testkit
    /// server): fails matching requests like nginx/Envoy when the upstream dies.
    #[command(after_long_help = FAULT_SPEC_HELP)]
    Proxy(ProxyArgs),
    /// An OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf): prints `listening
    /// http://127.0.0.1:PORT`, then each span received as a JSON line.
    Otlp {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

/// `switchboard-testkit proxy` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct ProxyArgs {
    /// The upstream: `http://HOST:PORT` (a path, if any, is ignored: requests
    /// keep their own).
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// A fault rule, MATCH=FAULT[,OPTION]... (repeatable; the first rule that
    /// matches and has budget left fires). See below.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<FaultRule>,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

const FAULT_SPEC_HELP: &str = "\
Fault SPEC: MATCH=FAULT[,OPTION]...
  MATCH   *                 every request (GETs too)
          METHOD            JSON-RPC method of the POST body, e.g. tools/call
          METHOD:TOOL       ... and params.name, e.g. tools/call:echo
  FAULT   status-before:CODE  answer CODE, never forward
          status-after:CODE   forward, read the whole answer, then answer CODE
          cut-body:BYTES      forward, pass status, headers and BYTES bytes of the
                              body (never its last byte), then break the connection
          reset-before        TCP reset (RST), never forward
          reset-after         forward, wait for the answer's head, then RST
          delay:DURATION      wait (e.g. 200ms), then forward
  OPTION  times=N             fire at most N times, then pass through (default: always)
          retry-after=SECS    send Retry-After (status faults only)
Examples:
  --fault tools/call:echo=status-after:502
  --fault tools/call=reset-before
  --fault '*=delay:200ms'
  --fault tools/call:lookup=cut-body:10,times=1
  --fault tools/call=status-before:429,retry-after=2
Prints `listening http://127.0.0.1:PORT` on stdout once ready.";

impl Args {
    /// The server knobs these flags describe.
    pub fn knobs(&self) -> Knobs {
        Knobs {
            tools: self.tools,
            latency: self.latency,
            require_bearer: self.require_bearer.clone(),
            oauth: None,
            hang_initialize: self.hang_initialize,
            initialize_delay: self.initialize_delay,
            exit_on_drop: !self.no_exit_on_drop,
            page_size: self.page_size,
            notify_after: self.notify_after,
            hide_offers: self.hide_offers,
            lifecycle: self.lifecycle,
            list_ttl: self.list_ttl,
            ignore_discover: self.ignore_discover,
            slow_first_discover: self.slow_first_discover,
            private_lists: self.private_lists,
            header_params: self.header_params,
        }
    }
}

/// Logs to stderr (stdout carries the protocol in stdio mode). `RUST_LOG`
/// overrides the default filter `warn,rmcp=warn` (rmcp logs every
/// notification at INFO).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,rmcp=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Parses the command line, then serves until stdin closes (stdio) or the
/// process is interrupted (HTTP modes).
pub async fn main() -> anyhow::Result<()> {
    init_logging();
    run(Args::parse()).await
}

/// Serves according to `args`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Proxy(proxy)) => return run_proxy(proxy).await,
        Some(Command::Otlp { port }) => return crate::otlp::run(port).await,
        None => {}
    }
    let mut knobs = args.knobs();
    let auth_server = start_auth_server(&args).await?;
    knobs.oauth = auth_server.as_ref().map(AuthServer::handle);
    let server = match args.transport {
        TransportArg::Stdio => return serve_stdio(knobs).await,
        TransportArg::Sse => serve_sse_on(args.port, knobs).await?,
        TransportArg::StreamableHttp => {
            serve_streamable_http_on(args.port, knobs, HttpMode::Stateful).await?
        }
        TransportArg::StreamableHttpStateless => {
            serve_streamable_http_on(args.port, knobs, HttpMode::Stateless).await?
        }
        TransportArg::StreamableHttpStatelessJson => {
            serve_streamable_http_on(args.port, knobs, HttpMode::StatelessJson).await?
        }
    };
    announce(&server.url())?;
    wait_for_signal().await?;
    server.shutdown().await;
    if let Some(auth_server) = auth_server {
        auth_server.shutdown().await;
    }
    Ok(())
}

/// The authorization server `--oauth-client` asks for, if any.
async fn start_auth_server(args: &Args) -> anyhow::Result<Option<AuthServer>> {
    if args.oauth_clients.is_empty() {
        return Ok(None);
    }
    let clients = args
        .oauth_clients
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some((id, secret)) => Ok(TestClient::with_secret(id, secret)),
            None => Err(anyhow::anyhow!("--oauth-client takes ID:SECRET")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let knobs = AuthKnobs {
        access_ttl: args.oauth_access_ttl,
        rotate_refresh_tokens: args.oauth_rotate_refresh_tokens,
        clients,
        ..AuthKnobs::default()
    };
    let server = AuthServer::start(knobs).await?;
    eprintln!("auth-server {}", server.issuer());
    Ok(Some(server))
}

/// Runs the fault proxy until the process is interrupted.
async fn run_proxy(args: ProxyArgs) -> anyhow::Result<()> {
    let proxy = FaultProxy::start_on(args.port, &args.upstream, args.faults).await?;
    announce(&proxy.url(""))?;
    wait_for_signal().await?;
    proxy.shutdown().await;
    Ok(())
}

/// Prints exactly one line, `listening <url>`, to stdout and flushes it.
fn announce(url: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {url}")?;
    stdout.flush()
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
