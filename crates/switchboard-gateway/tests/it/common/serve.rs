//! `switchboard serve` itself (the CLI binary) for the tests of signals and reloads: started
//! with a config file, its log kept as it comes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A binary of the workspace (`switchboard`, `switchboard-testkit`). `cargo nextest run
/// --workspace` builds them; with `-p switchboard-gateway` build them first (`cargo build -p
/// switchboard-cli -p switchboard-testkit`), or the test runs a stale one.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p switchboard-cli -p switchboard-testkit` \
         (./scripts/test does)",
        bin.display()
    );
    bin
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A running `switchboard serve --listen 127.0.0.1:0 --config FILE`.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    /// The MCP endpoint, as its log says.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Reads the log until the process closes its stderr.
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl ServeProcess {
    /// Starts it and waits (at most 30 s) until its log says where `/mcp` listens.
    pub async fn start(config: &Path) -> ServeProcess {
        ServeProcess::start_with_env(config, &[]).await
    }

    /// [`ServeProcess::start`] with `env` added to its environment.
    pub async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> ServeProcess {
        let mut child = tokio::process::Command::new(workspace_bin("switchboard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .spawn()
            .expect("switchboard serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut before = Vec::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                before.push(line.clone());
                if let Some(at) = line.find("listening on http://") {
                    let url = line[at + "listening on ".len()..].trim().to_string();
                    if url.ends_with("/mcp") {
                        return url;
                    }
                }
            }
            panic!("switchboard serve ended without saying where it listens");
        })
        .await
        .expect("switchboard serve listens within 30 s");
        let log = Arc::new(Mutex::new(before));
        let kept = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        ServeProcess {
            child,
            url,
            log,
            reader: Some(reader),
        }
    }

    /// `path` on the gateway (`/v1/tools`, `/metrics`).
    pub fn at(&self, path: &str) -> String {
        self.url.replace("/mcp", path)
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("still running") as i32
    }

    /// Sends `signal` (SIGTERM, SIGHUP).
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Its log (stderr) from its start.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (at most 30 s) for it to exit, and for the rest of its log.
    pub async fn stopped(&mut self) -> std::process::ExitStatus {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("switchboard serve stops within 30 s")
            .unwrap();
        // The log's reader ends with the pipe, after the last lines.
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        status
    }

    /// Waits (at most 20 s) until a line of its log contains `text`.
    pub async fn wait_log(&self, text: &str) {
        super::eventually(&format!("the log says {text:?}"), || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(text))
        })
        .await;
    }
}
