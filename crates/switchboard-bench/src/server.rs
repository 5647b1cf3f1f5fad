//! The other processes a benchmark needs: finding the `switchboard-testkit` and `switchboard`
//! binaries, and running an HTTP testkit server or a gateway (`switchboard serve`) that dies
//! with the bench (kill on drop, also when a panic unwinds), so no benchmark leaves a server
//! behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::cli::Transport;

/// How long a testkit may take to print its `listening` line.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// `explicit`, or `name` next to this executable; an error that says how to build it.
pub fn find_binary(name: &str, explicit: Option<&Path>, flag: &str) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("cannot find the bench's own executable")?
            .parent()
            .map(|dir| dir.join(name))
            .context("the bench's executable has no directory")?,
    };
    if !path.is_file() {
        bail!(
            "{name} not found at {}: build it with `cargo build --release -p {}` \
             (it lands next to switchboard-bench), or pass {flag} PATH",
            path.display(),
            if name == "switchboard" {
                "switchboard-cli"
            } else {
                name
            }
        );
    }
    Ok(path)
}

/// The testkit's command line for a stdio server.
pub fn stdio_args(hang_initialize: bool) -> Vec<String> {
    let mut args = vec!["--transport".to_owned(), "stdio".to_owned()];
    if hang_initialize {
        args.push("--hang-initialize".to_owned());
    }
    args
}

/// The testkit flags of a server speaking only 2026-07-28.
pub const MODERN: [&str; 2] = ["--lifecycle", "modern"];

/// The testkit flags of a stdio server for `transport`.
pub fn stdio_args_for(transport: Transport) -> Vec<String> {
    let mut args = stdio_args(false);
    if transport == Transport::StdioModern {
        args.extend(MODERN.map(String::from));
    }
    args
}

/// A testkit serving HTTP on 127.0.0.1; killed when dropped.
pub struct HttpServer {
    url: String,
    pid: Option<u32>,
    _child: Child,
    /// Kept open so the server never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl HttpServer {
    /// Starts `testkit --transport MODE --port 0 [extra]` and waits for its `listening` line.
    pub async fn start(testkit: &Path, mode: &str, extra: &[&str]) -> anyhow::Result<HttpServer> {
        let mut child = Command::new(testkit)
            .args(["--transport", mode, "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", testkit.display()))?;
        let stdout = child.stdout.take().context("testkit stdout not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(STARTUP_LIMIT, lines.next_line())
            .await
            .context("testkit did not print its listening line within 10 s")?
            .context("reading the testkit's stdout")?
            .context("testkit exited before it printed its listening line")?;
        let url = line
            .strip_prefix("listening ")
            .with_context(|| format!("unexpected first line from the testkit: {line:?}"))?
            .trim()
            .to_owned();
        Ok(HttpServer {
            url,
            pid: child.id(),
            _child: child,
            _stdout: lines,
        })
    }

    /// The server for a transport the calls/payload scenarios measure (`None` for stdio).
    pub async fn for_transport(
        testkit: &Path,
        transport: Transport,
    ) -> anyhow::Result<Option<HttpServer>> {
        match transport {
            Transport::Stdio | Transport::StdioModern => Ok(None),
            Transport::Sse => Ok(Some(HttpServer::start(testkit, "sse", &[]).await?)),
            Transport::StreamableHttp => Ok(Some(
                HttpServer::start(testkit, "streamable-http", &[]).await?,
            )),
            Transport::StreamableHttpModern => Ok(Some(
                HttpServer::start(testkit, "streamable-http-stateless", &MODERN).await?,
            )),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id (`None` once it has exited).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// Polls `url` until it answers 200 (within 10 s), failing early if `child` exits.
pub async fn wait_ready(child: &mut Child, url: &str, what: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before it was ready ({status})");
        }
        let ready = http.get(url).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if started.elapsed() > STARTUP_LIMIT {
            bail!("{what} was not ready within 10 s ({url})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `switchboard serve` on a free 127.0.0.1 port (by default fronting one upstream, `kit`);
/// killed when dropped.
pub struct GatewayProcess {
    url: String,
    port: u16,
    pid: u32,
    _child: Child,
    _config: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts the gateway over `upstream` with `RUST_LOG=log` (and `TOKIO_WORKER_THREADS`
    /// = `threads` if given) and waits until `/readyz` answers 200.
    pub async fn start(
        switchboard: &Path,
        upstream: &str,
        log: &str,
        threads: Option<usize>,
    ) -> anyhow::Result<Self> {
        // One client session carries the whole load (up to c = 256 calls in flight): above the
        // gateway's default per-session limit (64), which is for real clients.
        let toml = format!(
            "[gateway]\nmax_concurrent_calls_per_session = 100000\n\n\
             [servers.kit]\nurl = \"{upstream}\"\n"
        );
        let threads = threads.map(|n| n.to_string());
        let env: Vec<(&str, &str)> = threads
            .iter()
            .map(|n| ("TOKIO_WORKER_THREADS", n.as_str()))
            .collect();
        Self::start_with(switchboard, &toml, &env, log).await
    }

    /// Starts the gateway with `toml` as its config (written to a directory of its own, which
    /// relative paths in it are resolved against), `env` added to its environment, on a free
    /// 127.0.0.1 port; waits until `/readyz` answers 200.
    pub async fn start_with(
        switchboard: &Path,
        toml: &str,
        env: &[(&str, &str)],
        log: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("a directory for the gateway's config")?;
        let config = dir.path().join("switchboard.toml");
        std::fs::write(&config, toml)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(switchboard)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} serve", switchboard.display()))?;
        let pid = child.id().context("the gateway has no pid")?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&mut child, &format!("{base}/readyz"), "the gateway").await?;
        Ok(GatewayProcess {
            url: format!("{base}/mcp"),
            port,
            pid,
            _child: child,
            _config: dir,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}
