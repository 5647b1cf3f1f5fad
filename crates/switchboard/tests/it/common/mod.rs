//! Shared helpers for the engine's integration tests: the test peers they talk to.
//!
//! - the `switchboard-testkit` binary (stdio, and HTTP when a test must kill the process);
//! - `@modelcontextprotocol/server-everything` from npm (`npm ci --prefix tests`), forced
//!   onto loopback by `tests/loopback.cjs`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::ServerConfig;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A running server-everything; killed (and reaped) on drop, including on panic.
pub struct NodePeer {
    pub child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl NodePeer {
    /// Starts `server-everything MODE` on a free loopback port and waits until it accepts.
    pub fn start(mode: &str) -> NodePeer {
        let root = repo_root();
        let entry =
            root.join("tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        assert!(
            entry.is_file(),
            "npm test peers are not installed ({} is missing): run `npm ci --prefix tests` \
             at the repository root",
            entry.display()
        );
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("temp log file");
        let child = Command::new("node")
            .current_dir(&root)
            .arg("--require")
            .arg("./tests/loopback.cjs")
            .arg(&entry)
            .arg(mode)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (is Node.js installed?): {e}"));
        let mut peer = NodePeer { child, port, log };
        peer.wait_ready();
        peer
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "server-everything exited with {status} before listening; its output:\n{}",
                    self.output()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "server-everything did not accept connections on {addr} within {READY_TIMEOUT:?}; \
                     its output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        let mut text = String::new();
        let _ = self
            .log
            .reopen()
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `switchboard-testkit` binary, built with the workspace.
pub fn testkit_bin() -> PathBuf {
    // Integration tests live in target/<profile>/deps; the binary is in target/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("switchboard-testkit");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p switchboard-testkit` (./scripts/test does)",
        bin.display()
    );
    bin
}

/// A stdio server config that runs the testkit binary with `args`.
pub fn testkit_stdio(name: &str, args: &[&str]) -> ServerConfig {
    let args = args.iter().map(|a| a.to_string()).collect();
    ServerConfig::stdio(name, testkit_bin().to_string_lossy(), args)
}

/// A testkit binary serving HTTP (`streamable-http` or `sse`); killed on drop.
pub struct TestkitProcess {
    child: Child,
    pub url: String,
}

impl TestkitProcess {
    pub fn start(transport: &str, args: &[&str]) -> TestkitProcess {
        Self::start_on(transport, 0, args)
    }

    pub fn start_on(transport: &str, port: u16, args: &[&str]) -> TestkitProcess {
        let mut child = Command::new(testkit_bin())
            .args(["--transport", transport, "--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchboard-testkit");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from the testkit: {line:?}"))
            .trim()
            .to_owned();
        TestkitProcess { child, url }
    }

    /// Waits for the process to end on its own (e.g. after the `drop` tool).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestkitProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Polls `check` every 20 ms for up to `within`; true as soon as it holds.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Log output written to it, for tests that check what the logs say (a `tracing`
/// subscriber's writer: `with_writer(move || captured.clone())`).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
