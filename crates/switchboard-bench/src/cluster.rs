//! The other processes of the `scale` scenario, each killed when dropped: a `redis-server`
//! (unix socket, no persistence) with the two things the bench asks it (`INFO commandstats`
//! to count the commands the replicas sent, `INFO memory` for what the records take), and
//! HAProxy (round-robin, no affinity, `/readyz` health checks) with one frontend per set of
//! replicas (or, for the `gateway` scenario, one plain reverse proxy: [`Haproxy::reference`]).
//! Both are the Debian packages (`apt-get install -y redis-server haproxy`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::server::wait_ready;

/// How long Redis may take to create its socket.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// A `redis-server` on a unix socket in a directory of its own, nothing saved.
pub struct Redis {
    socket: PathBuf,
    pid: u32,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> anyhow::Result<Redis> {
        let dir = tempfile::tempdir().context("a directory for redis-server")?;
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server: install it (`apt-get install -y redis-server`)")?;
        let pid = child.id().context("redis-server has no pid")?;
        let started = tokio::time::Instant::now();
        while UnixStream::connect(&socket).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("redis-server exited at start ({status})");
            }
            if started.elapsed() > STARTUP_LIMIT {
                bail!("redis-server did not open {} within 10 s", socket.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Redis {
            socket,
            pid,
            _child: child,
            _dir: dir,
        })
    }

    /// The URL the replicas get in `SWITCHBOARD_REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A connection the bench keeps for its own `INFO`s: one read on Redis's side each, which
    /// [`Snapshot::since`] takes away from the reads the replicas caused.
    pub async fn watch(&self) -> anyhow::Result<Watch> {
        let conn = UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to Redis at {}", self.socket.display()))?;
        Ok(Watch(BufReader::new(conn)))
    }
}

/// The bench's own Redis connection (see [`Redis::watch`]).
pub struct Watch(BufReader<UnixStream>);

impl Watch {
    /// Redis's counters now: commands by name, reads (≈ round trips), memory.
    pub async fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        let args = ["INFO", "commandstats", "stats", "memory"];
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.0.get_mut().write_all(request.as_bytes()).await?;
        Snapshot::parse(&read_bulk(&mut self.0).await?)
    }
}

/// Redis's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub commands: Commands,
    /// `total_reads_processed`: socket reads that carried commands. A MULTI…EXEC block or a
    /// pipeline sent at once is one read, so this counts round trips, not commands.
    pub reads: u64,
    /// `used_memory`: bytes Redis holds for data and bookkeeping.
    pub used_memory: u64,
}

impl Snapshot {
    fn parse(info: &str) -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            commands: Commands::parse(info),
            reads: info_field(info, "total_reads_processed")
                .context("INFO stats has no total_reads_processed (Redis 6 or later)")?,
            used_memory: info_field(info, "used_memory").context("INFO has no used_memory")?,
        })
    }

    /// What happened between `earlier` and `self`, less the bench's own `INFO` (one command,
    /// one read).
    pub fn since(&self, earlier: &Snapshot) -> Activity {
        Activity {
            commands: self.commands.since(&earlier.commands),
            round_trips: self.reads.saturating_sub(earlier.reads).saturating_sub(1),
        }
    }
}

/// Commands and round trips between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub commands: Commands,
    pub round_trips: u64,
}

impl Activity {
    pub fn plus(&self, other: &Activity) -> Activity {
        Activity {
            commands: self.commands.plus(&other.commands),
            round_trips: self.round_trips + other.round_trips,
        }
    }
}

/// One RESP bulk string (`$LEN\r\n` + LEN bytes + `\r\n`), the answer to `INFO`.
async fn read_bulk<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> anyhow::Result<String> {
    let mut header = String::new();
    reader.read_line(&mut header).await?;
    let len = parse_bulk_header(&header)?;
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).await?;
    body.truncate(len);
    String::from_utf8(body).context("Redis sent INFO that is not UTF-8")
}

/// The length in a bulk string's header line; Redis's error line as the error.
fn parse_bulk_header(line: &str) -> anyhow::Result<usize> {
    let line = line.trim_end();
    match line.strip_prefix('$') {
        Some(len) => len
            .parse()
            .with_context(|| format!("a bulk string header with a bad length: {line:?}")),
        None => bail!("Redis answered {line:?} where a bulk string was expected"),
    }
}

/// `name:value` of an `INFO` answer, as a number.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Redis's count of commands run, by command name (`INFO commandstats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commands(BTreeMap<String, u64>);

impl Commands {
    /// Reads the `cmdstat_NAME:calls=N,...` lines; `info` (the bench asking) is left out.
    pub fn parse(info: &str) -> Commands {
        let counts = info
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix("cmdstat_"))
            .filter_map(|rest| {
                let (name, stats) = rest.split_once(':')?;
                let calls = stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .filter(|(name, _)| name != "info")
            .collect();
        Commands(counts)
    }

    /// What ran between `earlier` and `self`, by command (only those that ran).
    pub fn since(&self, earlier: &Commands) -> Commands {
        Commands(
            self.0
                .iter()
                .map(|(name, n)| (name, n.saturating_sub(*earlier.0.get(name).unwrap_or(&0))))
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| (name.clone(), n))
                .collect(),
        )
    }

    /// Both counts added, by command.
    pub fn plus(&self, other: &Commands) -> Commands {
        let mut sum = self.0.clone();
        for (name, n) in &other.0 {
            *sum.entry(name.clone()).or_default() += n;
        }
        Commands(sum)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `name=N` by count, most first, e.g. `evalsha=3 hmget=1`.
    pub fn breakdown(&self) -> String {
        let mut counts: Vec<(&String, &u64)> = self.0.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// HAProxy in front of sets of replicas: frontend `i` balances round-robin over
/// `backends[i]` (ports of `switchboard serve` on 127.0.0.1), checking `/readyz`.
pub struct Haproxy {
    urls: Vec<String>,
    pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub async fn start(backends: &[Vec<u16>]) -> anyhow::Result<Haproxy> {
        let ports: Vec<u16> = backends
            .iter()
            .map(|_| free_port())
            .collect::<anyhow::Result<_>>()?;
        let mut haproxy = Haproxy::spawn(&haproxy_config(&ports, backends), &ports).await?;
        for port in &ports {
            let url = format!("http://127.0.0.1:{port}/readyz");
            wait_ready(&mut haproxy.child, &url, "haproxy").await?;
        }
        Ok(haproxy)
    }

    /// The `gateway` scenario's reference: HAProxy as a plain HTTP reverse proxy in front of
    /// the MCP endpoint `upstream` (`http://127.0.0.1:PORT/PATH`), one thread, upstream
    /// connections kept and shared (`http-reuse always`): what any proxy hop costs here, with
    /// no MCP work at all.
    pub async fn reference(upstream: &str) -> anyhow::Result<Haproxy> {
        let port = free_port()?;
        let target = upstream
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(p, _)| p.parse::<u16>().ok())
            .with_context(|| format!("--reference-proxy needs an upstream on http://127.0.0.1:PORT/..., not {upstream}"))?;
        let config = format!(
            "global\n  nbthread 1\n\ndefaults\n  mode http\n  timeout connect 1s\n  \
             timeout client 300s\n  timeout server 300s\n\nfrontend f0\n  \
             bind 127.0.0.1:{port}\n  default_backend b0\n\nbackend b0\n  \
             http-reuse always\n  server up 127.0.0.1:{target}\n"
        );
        let mut haproxy = Haproxy::spawn(&config, &[port]).await?;
        let started = tokio::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = haproxy.child.try_wait()? {
                bail!("haproxy exited before it listened ({status})");
            }
            if started.elapsed() > STARTUP_LIMIT {
                bail!("haproxy did not listen on {port} within {STARTUP_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(haproxy)
    }

    /// HAProxy with `config` (checked first), frontends on `ports` serving `/mcp`.
    async fn spawn(config_text: &str, ports: &[u16]) -> anyhow::Result<Haproxy> {
        let dir = tempfile::tempdir().context("a directory for haproxy.cfg")?;
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, config_text)?;
        check_config(&config).await?;
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start haproxy: install it (`apt-get install -y haproxy`)")?;
        let pid = child.id().context("haproxy has no pid")?;
        Ok(Haproxy {
            urls: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}/mcp"))
                .collect(),
            pid,
            child,
            _dir: dir,
        })
    }

    /// The MCP URL of frontend `i`.
    pub fn url(&self, i: usize) -> &str {
        &self.urls[i]
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// `haproxy -c`: a config HAProxy refuses is an error with HAProxy's words.
async fn check_config(config: &Path) -> anyhow::Result<()> {
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(config)
        .output()
        .await
        .context("cannot run haproxy: install it (`apt-get install -y haproxy`)")?;
    if !out.status.success() {
        bail!(
            "haproxy refused the bench's config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Frontend `f{i}` on `ports[i]` → backend `b{i}` over `backends[i]`, as tests/scale has it
/// (the check names a Host the gateway answers: its DNS-rebinding guard).
fn haproxy_config(ports: &[u16], backends: &[Vec<u16>]) -> String {
    let mut cfg = String::from(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 300s\n  \
         timeout server 300s\n  retries 3\n  option redispatch\n  retry-on conn-failure\n",
    );
    for (i, (port, servers)) in ports.iter().zip(backends).enumerate() {
        cfg.push_str(&format!(
            "\nfrontend f{i}\n  bind 127.0.0.1:{port}\n  default_backend b{i}\n\n\
             backend b{i}\n  balance roundrobin\n  option httpchk\n  \
             http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1\n  \
             default-server inter 1s fall 2 rise 1\n"
        ));
        for (j, server) in servers.iter().enumerate() {
            cfg.push_str(&format!("  server g{j} 127.0.0.1:{server} check\n"));
        }
    }
    cfg
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "# Commandstats\r\n\
        cmdstat_evalsha:calls=12,usec=300,usec_per_call=25.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setinfo:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_hmget:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn commandstats_are_counted_by_command_without_info() {
        let commands = Commands::parse(STATS);
        assert_eq!(commands.total(), 17);
        assert_eq!(commands.breakdown(), "evalsha=12 hmget=3 client|setinfo=2");
        assert_eq!(Commands::parse("# Commandstats\r\n").total(), 0);
    }

    #[test]
    fn deltas_keep_only_commands_that_ran() {
        let before = Commands::parse(STATS);
        let after = Commands::parse(
            "cmdstat_evalsha:calls=15,usec=1\r\ncmdstat_hmget:calls=3,usec=9\r\n\
             cmdstat_pexpire:calls=1,usec=2\r\ncmdstat_info:calls=9,usec=1\r\n",
        );
        let delta = after.since(&before);
        assert_eq!(delta.total(), 4);
        assert_eq!(delta.breakdown(), "evalsha=3 pexpire=1");
        assert_eq!(delta.plus(&delta).breakdown(), "evalsha=6 pexpire=2");
    }

    #[test]
    fn info_fields_and_bulk_headers() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1_048_576));
        assert_eq!(info_field(info, "used_memory_peak"), None);
        assert_eq!(parse_bulk_header("$42\r\n").unwrap(), 42);
        let earlier = Snapshot::parse(&format!(
            "{STATS}# Stats\r\ntotal_reads_processed:10\r\n# Memory\r\nused_memory:100\r\n"
        ))
        .unwrap();
        let later = Snapshot::parse(
            "cmdstat_evalsha:calls=14,usec=1\r\ntotal_reads_processed:14\r\nused_memory:900\r\n",
        )
        .unwrap();
        assert_eq!(later.used_memory, 900);
        let activity = later.since(&earlier);
        assert_eq!(
            activity.round_trips, 3,
            "the bench's own INFO is not counted"
        );
        assert_eq!(activity.commands.breakdown(), "evalsha=2");
        assert!(Snapshot::parse("used_memory:1\r\n").is_err());
        let refused = parse_bulk_header("-NOAUTH Authentication required.\r\n").unwrap_err();
        assert!(refused.to_string().contains("NOAUTH"), "{refused}");
    }

    #[tokio::test]
    async fn a_bulk_string_is_read_whole() {
        let mut reader = BufReader::new(&b"$5\r\nhello\r\n"[..]);
        assert_eq!(read_bulk(&mut reader).await.unwrap(), "hello");
    }

    #[test]
    fn haproxy_config_has_one_frontend_per_replica_set() {
        let cfg = haproxy_config(&[9000, 9001], &[vec![7001], vec![7001, 7002, 7003]]);
        assert!(
            cfg.contains("bind 127.0.0.1:9000\n  default_backend b0"),
            "{cfg}"
        );
        assert!(
            cfg.contains("bind 127.0.0.1:9001\n  default_backend b1"),
            "{cfg}"
        );
        assert_eq!(cfg.matches("server g").count(), 4, "{cfg}");
        assert_eq!(cfg.matches("balance roundrobin").count(), 2, "{cfg}");
        assert!(!cfg.contains("cookie") && !cfg.contains("stick"), "{cfg}");
    }
}
