//! The stdio transport: a server that is a child process speaking JSON-RPC on stdin/stdout.
//!
//! rmcp only stops the direct child, and `npx`-style launchers leave grandchildren behind.
//! So the child is started as the leader of its own process group, and [`ProcessGroup`]
//! signals the whole group: politely on [`ProcessGroup::terminate`], at once on drop.
//! The child's stderr is forwarded line by line to the log, tagged with the server name.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::config::ServerConfig;

/// How long [`ProcessGroup::terminate`] waits after SIGTERM before it sends SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(1500);
/// How many of the last stderr lines are kept to explain a server that died: enough to
/// reach past a stack trace to the error above it.
const STDERR_TAIL_LINES: usize = 40;
/// The longest stderr line kept (in bytes); the rest of a longer line is dropped.
const STDERR_LINE_BYTES: usize = 1024;

/// A spawned server: the pipes to talk over, and the group that owns the processes.
pub struct StdioChild {
    pub stdout: ChildStdout,
    pub stdin: ChildStdin,
    pub group: ProcessGroup,
}

/// Starts `server.command` with `server.args`, the inherited environment plus `env`,
/// in `server.cwd`, as the leader of a new process group.
pub fn spawn(server: &ServerConfig, env: Vec<(String, String)>) -> std::io::Result<StdioChild> {
    let program = server.command.as_deref().unwrap_or_default();
    let mut command = Command::new(program);
    command
        .args(&server.args)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &server.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn()?;
    let (Some(stdout), Some(stdin), Some(stderr)) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child pipes were not created"));
    };
    let pgid = child.id().map(|pid| pid as i32);
    let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
    tokio::spawn(forward_stderr(
        server.name.clone(),
        stderr,
        stderr_tail.clone(),
    ));
    Ok(StdioChild {
        stdout,
        stdin,
        group: ProcessGroup {
            child,
            pgid,
            stderr_tail,
        },
    })
}

async fn forward_stderr(server: String, stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "switchboard::server_stderr", server = %server, "{line}");
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(cut(line, STDERR_LINE_BYTES));
    }
}

/// `line` cut to at most `max` bytes, at a character boundary.
fn cut(mut line: String, max: usize) -> String {
    if line.len() > max {
        let mut end = max;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

/// The process group of a stdio server. Dropping it kills the whole group.
pub struct ProcessGroup {
    child: Child,
    /// The group id (the leader's pid); `None` if the child was already reaped at spawn.
    pgid: Option<i32>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl ProcessGroup {
    /// The process group id, which is the pid of the server process.
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    /// Whether the server process itself is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines the server wrote to stderr (up to 40, each cut to 1 KiB), oldest
    /// first.
    pub fn stderr_tail(&self) -> Vec<String> {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect()
    }

    /// SIGTERM to the group, a short grace period for the leader, then SIGKILL to the group
    /// (which also reaches grandchildren that ignored SIGTERM or outlived the leader).
    pub async fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = tokio::time::timeout(TERM_GRACE, self.child.wait()).await;
        self.signal(libc::SIGKILL);
        let _ = self.child.wait().await;
        // Everything in the group is dead; never signal that id again, it may be reused.
        self.pgid = None;
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg has no memory-safety preconditions; a stale group id at worst
            // yields ESRCH, which we ignore.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        // Reap the leader if it is already gone; otherwise tokio reaps it in the background.
        let _ = self.child.try_wait();
    }
}
