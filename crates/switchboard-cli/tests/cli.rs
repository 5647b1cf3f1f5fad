//! The `switchboard` command as a user runs it: a real process, in a fresh directory, with
//! real servers (the built-in demo, the `switchboard-testkit` binary over stdio and Streamable
//! HTTP, and refused loopback ports).
//!
//! They prove the user-visible contract: what `tools` and `call` print on stdout and stderr,
//! their exit codes (0 success, 1 failed call / every server failed, 2 bad input or config),
//! that one failing server does not hide the others, that config errors name the file, server
//! and key, that `--format json` is machine-readable, and that secrets from `[variables]` never
//! reach the terminal.
//!
//! Needs the testkit binary next to `switchboard`: `cargo build -p switchboard-testkit`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Upper bound for one CLI run. Not a timing assertion.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A refused loopback URL: nothing listens on port 1.
const REFUSED_URL: &str = "http://127.0.0.1:1/mcp";

fn switchboard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchboard"))
}

/// The `switchboard-testkit` binary, built into the same directory as `switchboard`.
fn testkit_bin() -> PathBuf {
    let bin = switchboard_bin()
        .parent()
        .expect("bin dir")
        .join("switchboard-testkit");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p switchboard-testkit` (./scripts/test does)",
        bin.display()
    );
    bin
}

/// The testkit path as a TOML / shell word; these tests assume it has no spaces or quotes.
fn testkit_word() -> String {
    let path = testkit_bin().to_string_lossy().into_owned();
    assert!(
        !path.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\'),
        "test limitation: the testkit path {path:?} needs quoting"
    );
    path
}

/// A child process killed (and reaped) on drop, including on panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one CLI run printed and returned.
#[derive(Debug)]
struct Run {
    args: Vec<String>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{self:?} ended by a signal"))
    }

    /// Asserts the exit code, showing everything the run printed when it differs.
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "switchboard {:?}: expected exit {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn context(&self) -> String {
        format!(
            "switchboard {:?} (exit {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// A fresh working directory (no `switchboard.toml`), kept until the test ends.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `name` in the workspace and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Runs `switchboard ARGS` in this directory, with a clean logging environment.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, Options::default())
    }

    /// [`Self::run`] with stdin, terminals or a time limit of its own.
    fn run_with(&self, args: &[&str], options: Options<'_>) -> Run {
        let out_path = self.dir.path().join(".stdout");
        let err_path = self.dir.path().join(".stderr");
        let timeout = options.timeout.unwrap_or(RUN_TIMEOUT);
        let terminal = options.terminal.map(|_| Pty::open());
        let (stdout, stderr) = match (&terminal, options.terminal) {
            (Some(pty), Some(Stream::Stdout)) => (
                pty.slave(),
                Stdio::from(File::create(&err_path).expect("stderr file")),
            ),
            (Some(pty), _) => (
                Stdio::from(File::create(&out_path).expect("stdout file")),
                pty.slave(),
            ),
            (None, _) => (
                Stdio::from(File::create(&out_path).expect("stdout file")),
                Stdio::from(File::create(&err_path).expect("stderr file")),
            ),
        };
        let mut command = Command::new(switchboard_bin());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .envs(options.env.iter().copied())
            .stdin(match (&terminal, options.typed) {
                (Some(pty), Some(_)) => pty.slave(),
                _ if options.stdin.is_some() => Stdio::piped(),
                _ => Stdio::null(),
            })
            .stdout(stdout)
            .stderr(stderr);
        let child = command.spawn().expect("start switchboard");
        // The child has its copy of the terminal (the command held one more); reading ends
        // when the child closes it.
        drop(command);
        if let (Some(pty), Some(typed)) = (&terminal, options.typed) {
            use std::io::Write;
            let mut keyboard = pty.master.try_clone().expect("clone the pty master");
            keyboard
                .write_all(typed.as_bytes())
                .expect("type on the terminal");
        }
        let terminal = terminal.map(Pty::read_until_closed);
        let mut child = KillOnDrop(child);
        if let Some(input) = options.stdin {
            use std::io::Write;
            let mut stdin = child.0.stdin.take().expect("stdin pipe");
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait for switchboard") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "switchboard {args:?} did not finish within {timeout:?}; stderr so far:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        let on_terminal = terminal.map(|reader| {
            reader
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the terminal is still open after switchboard ended")
        });
        let (stdout, stderr) = match (options.terminal, on_terminal) {
            (Some(Stream::Stdout), Some(text)) => (text, read(&err_path)),
            (_, Some(text)) => (read(&out_path), text),
            (_, None) => (read(&out_path), read(&err_path)),
        };
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            status,
            stdout,
            stderr,
        }
    }
}

/// How to run the command, beyond its arguments.
#[derive(Default)]
struct Options<'a> {
    /// Written to its stdin (otherwise stdin is empty).
    stdin: Option<&'a str>,
    /// Which stream is a terminal (a pseudo-terminal read back as text; `\r\n` line ends).
    terminal: Option<Stream>,
    /// Typed on that terminal, which is then stdin too (and echoes what is typed).
    typed: Option<&'a str>,
    /// Instead of [`RUN_TIMEOUT`].
    timeout: Option<Duration>,
    /// Extra environment variables.
    env: &'a [(&'a str, &'a str)],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A pseudo-terminal: the command writes to its slave side, the test reads the master side.
struct Pty {
    master: File,
    slave: File,
}

impl Pty {
    fn open() -> Pty {
        use std::os::fd::FromRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        // SAFETY: plain libc calls on a descriptor we own; the name buffer is large enough
        // and NUL-terminated by ptsname_r on success.
        unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(master >= 0, "posix_openpt failed");
            let master = File::from_raw_fd(master);
            use std::os::fd::AsRawFd;
            assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 256];
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0,
                "ptsname_r"
            );
            let path = std::ffi::CStr::from_ptr(name.as_ptr())
                .to_str()
                .expect("pty name")
                .to_owned();
            let slave = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .expect("open the pty slave");
            Pty { master, slave }
        }
    }

    fn slave(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("clone the pty slave"))
    }

    /// Reads everything written to the terminal until the last writer closes it (Linux
    /// then answers EIO).
    fn read_until_closed(self) -> std::sync::mpsc::Receiver<String> {
        let Pty { mut master, slave } = self;
        drop(slave);
        let (done, text) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            let _ = done.send(String::from_utf8_lossy(&out).into_owned());
        });
        text
    }
}

/// A TOML config with a testkit stdio server `kit` and a refused Streamable HTTP server `bad`.
fn kit_and_refused_toml() -> String {
    format!(
        "[servers.kit]\n\
         command = \"{kit}\"\n\
         \n\
         [servers.bad]\n\
         url = \"{REFUSED_URL}\"\n",
        kit = testkit_word()
    )
}

/// A TOML config with just the testkit stdio server `kit`.
fn kit_toml() -> String {
    format!("[servers.kit]\ncommand = \"{}\"\n", testkit_word())
}

/// A testkit binary serving HTTP on a free loopback port; killed on drop.
struct TestkitHttp {
    _child: KillOnDrop,
    url: String,
}

impl TestkitHttp {
    fn start(transport: &str) -> TestkitHttp {
        Self::start_with(transport, &[])
    }

    /// [`Self::start`] with more testkit flags.
    fn start_with(transport: &str, extra: &[&str]) -> TestkitHttp {
        let mut child = KillOnDrop(
            Command::new(testkit_bin())
                .args(["--transport", transport, "--port", "0"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start switchboard-testkit"),
        );
        let stdout = child.0.stdout.take().expect("testkit stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from the testkit: {line:?}"))
            .trim()
            .to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "testkit not on loopback: {url}"
        );
        TestkitHttp { _child: child, url }
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth

/// A config naming the OAuth-protected testkit at `url` with a client-credentials identity
/// whose secret comes from `$BOT_SECRET`.
fn client_credentials_toml(url: &str) -> String {
    format!(
        "[servers.kit]\nurl = \"{url}\"\n[servers.kit.auth]\nkind = \"client_credentials\"\n\
         client_id = \"bot\"\nclient_secret = \"${{env:BOT_SECRET}}\"\n"
    )
}

#[test]
fn client_credentials_sign_in_and_the_token_is_kept_privately_for_the_next_run() {
    let kit = TestkitHttp::start_with("streamable-http", &["--oauth-client", "bot:s3cret-bot"]);
    let ws = Workspace::new();
    let config = ws.write("switchboard.toml", &client_credentials_toml(&kit.url));
    let state = ws.dir.path().join("state");
    let state_dir = state.to_str().unwrap();
    let env = [
        ("BOT_SECRET", "s3cret-bot"),
        ("SWITCHBOARD_STATE_DIR", state_dir),
    ];
    let options = || Options {
        env: &env,
        ..Options::default()
    };
    let args = ["call", "kit__whoami", "--config", config.to_str().unwrap()];
    let first = ws.run_with(&args, options());
    first.expect_code(0);
    assert!(
        first.stdout.contains("\"subject\":\"bot\""),
        "{}",
        first.context()
    );
    let tokens = state.join("auth/v1/tokens");
    // The record, and the renewal lock file beside it (taken when the token was got).
    let (files, locks): (Vec<PathBuf>, Vec<PathBuf>) = std::fs::read_dir(&tokens)
        .expect("the token directory")
        .map(|entry| entry.unwrap().path())
        .partition(|path| path.extension().is_some_and(|e| e == "json"));
    assert_eq!((files.len(), locks.len()), (1, 1), "{files:?} {locks:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode(&files[0]), mode(&locks[0]), mode(&tokens)),
        (0o600, 0o600, 0o700)
    );
    let stored = std::fs::read_to_string(&files[0]).unwrap();

    // The next run uses the stored token: no new exchange, the file is unchanged.
    let second = ws.run_with(&args, options());
    second.expect_code(0);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), stored);
    for run in [&first, &second] {
        assert!(!run.stdout.contains("s3cret-bot") && !run.stderr.contains("s3cret-bot"));
    }
}

#[test]
fn a_wrong_client_secret_says_the_step_and_the_servers_error_and_not_the_secret() {
    let kit = TestkitHttp::start_with("streamable-http", &["--oauth-client", "bot:s3cret-bot"]);
    let ws = Workspace::new();
    let config = ws.write("switchboard.toml", &client_credentials_toml(&kit.url));
    let state = ws.dir.path().join("state");
    let env = [
        ("BOT_SECRET", "not-the-secret-42"),
        ("SWITCHBOARD_STATE_DIR", state.to_str().unwrap()),
    ];
    let run = ws.run_with(
        &["call", "kit__whoami", "--config", config.to_str().unwrap()],
        Options {
            env: &env,
            ..Options::default()
        },
    );
    assert_ne!(run.code(), 0, "{}", run.context());
    assert!(
        run.stderr
            .contains("sign-in failed at token: invalid_client (Invalid client credentials)"),
        "{}",
        run.context()
    );
    assert!(!run.stderr.contains("not-the-secret-42") && !run.stdout.contains("not-the-secret-42"));
}

#[test]
fn auth_login_status_call_and_logout_with_a_scripted_browser() {
    let kit = TestkitHttp::start_with("streamable-http", &["--oauth-client", "bot:s3cret-bot"]);
    let ws = Workspace::new();
    // Only a URL: `kind = "auto"` signs in when the server asks.
    let config = ws.write(
        "switchboard.toml",
        &format!("[servers.kit]\nurl = \"{}\"\n", kit.url),
    );
    let config = config.to_str().unwrap();
    let state = ws.dir.path().join("state");
    let env = [
        ("SWITCHBOARD_STATE_DIR", state.to_str().unwrap()),
        // The browser: follows the authorization server's redirect to the callback.
        (
            "SWITCHBOARD_BROWSER",
            "curl -s -L --noproxy * -o /dev/null %s",
        ),
    ];
    let run = |args: &[&str]| {
        ws.run_with(
            args,
            Options {
                env: &env,
                ..Options::default()
            },
        )
    };
    let check = run(&["check", "--config", config]);
    assert!(
        check.stdout.contains("needs_auth")
            && check.stdout.contains(&format!(
                "run: switchboard auth login kit --config {config}"
            )),
        "{}",
        check.context()
    );
    let login = run(&["auth", "login", "kit", "--config", config]);
    login.expect_code(0);
    assert!(
        login
            .stderr
            .contains("signed in to kit at http://127.0.0.1:"),
        "{}",
        login.context()
    );
    let status = run(&["auth", "status", "--config", config, "--format", "json"]);
    status.expect_code(0);
    let rows: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(rows[0]["signed_in"], true, "{}", status.context());
    assert_eq!(rows[0]["refreshable"], true, "{}", status.context());
    assert!(!status.stdout.contains("at-") && !status.stdout.contains("rt-"));
    // The next command uses the stored token, no browser.
    let call = run(&["call", "kit__whoami", "--config", config, "--no-login"]);
    call.expect_code(0);
    assert!(
        call.stdout.contains("\"subject\":\"user\""),
        "{}",
        call.context()
    );
    let logout = run(&["auth", "logout", "kit", "--config", config]);
    logout.expect_code(0);
    assert!(
        logout
            .stderr
            .contains("deleted and revoked at the authorization server"),
        "{}",
        logout.context()
    );
    let status = run(&["auth", "status", "--config", config, "--format", "json"]);
    let rows: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(rows[0]["signed_in"], false, "{}", status.context());
}

/// Two `switchboard` processes whose stored token was revoked refresh it at once, against an
/// authorization server that rotates refresh tokens: one refreshes, the other waits on the
/// store's lock file and uses the new token (spending the old refresh token twice would be
/// `invalid_grant`, and deleting the record would sign both out).
#[test]
fn two_processes_share_a_rotated_refresh_token_through_the_store() {
    let kit = TestkitHttp::start_with(
        "streamable-http",
        &[
            "--oauth-client",
            "bot:s3cret-bot",
            "--oauth-rotate-refresh-tokens",
        ],
    );
    let ws = Workspace::new();
    let config = ws.write(
        "switchboard.toml",
        &format!("[servers.kit]\nurl = \"{}\"\n", kit.url),
    );
    let config = config.to_str().unwrap();
    let state = ws.dir.path().join("state");
    let env = [
        ("SWITCHBOARD_STATE_DIR", state.to_str().unwrap()),
        (
            "SWITCHBOARD_BROWSER",
            "curl -s -L --noproxy * -o /dev/null %s",
        ),
    ];
    let login = ws.run_with(
        &["auth", "login", "kit", "--config", config],
        Options {
            env: &env,
            ..Options::default()
        },
    );
    login.expect_code(0);
    // The authorization server, from the resource's metadata; its control endpoints.
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--noproxy", "*", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8(out.stdout).unwrap()
    };
    let base = kit.url.trim_end_matches("/mcp");
    let prm: Value = serde_json::from_str(&curl(&[&format!(
        "{base}/.well-known/oauth-protected-resource/mcp"
    )]))
    .expect("PRM JSON");
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();
    curl(&["-X", "POST", &format!("{issuer}/control/revoke_all")]);

    let spawn = || {
        Command::new(switchboard_bin())
            .args(["call", "kit__whoami", "--config", config, "--no-login"])
            .env("SWITCHBOARD_STATE_DIR", &state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchboard")
    };
    let (one, two) = (spawn(), spawn());
    for child in [one, two] {
        let out = child.wait_with_output().expect("switchboard ran");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("\"subject\":\"user\""),
            "{stdout}\n{stderr}"
        );
    }
    let counts: Value =
        serde_json::from_str(&curl(&[&format!("{issuer}/control/counts")])).expect("counts");
    assert_eq!(counts["token_requests"]["refresh_token"], 1, "{counts}");
}

// ---------------------------------------------------------------------------------------------
// Demo mode

#[test]
fn demo_tools_lists_the_demo_tools_and_says_it_uses_the_demo_server() {
    let ws = Workspace::new();
    let run = ws.run(&["tools"]);
    run.expect_code(0);
    let names: Vec<&str> = run
        .stdout_lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for expected in ["demo__echo", "demo__add", "demo__now"] {
        assert!(
            names.contains(&expected),
            "{expected} missing\n{}",
            run.context()
        );
    }
    assert!(
        run.stderr.contains("built-in demo server"),
        "stderr does not mention the demo server\n{}",
        run.context()
    );
}

#[test]
fn demo_call_echo_prints_the_message() {
    let ws = Workspace::new();
    let run = ws.run(&["call", "demo__echo", r#"{"message":"hi"}"#]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hi\n", "{}", run.context());
    assert!(
        run.stderr.contains("built-in demo server"),
        "{}",
        run.context()
    );
}

#[test]
fn demo_call_add_with_json_prints_the_whole_outcome() {
    let ws = Workspace::new();
    let run = ws.run(&[
        "call",
        "demo__add",
        r#"{"a":2,"b":3}"#,
        "--json",
        "--json-style",
        "pretty",
    ]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", run.context()));
    assert_eq!(doc["content"][0]["type"], "text", "{}", run.context());
    assert_eq!(doc["content"][0]["text"], "5", "{}", run.context());
    assert_eq!(doc["isError"], Value::Bool(false), "{}", run.context());
    assert!(
        run.stdout.contains(r#""isError": false"#),
        "{}",
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn invalid_json_arguments_exit_2_and_say_where() {
    let ws = Workspace::new();
    let run = ws.run(&["call", "demo__echo", r#"{"message": }"#]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("invalid JSON arguments"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("line 1 column 13"),
        "stderr does not give the line and column\n{}",
        run.context()
    );
    assert!(run.stdout.is_empty(), "{}", run.context());
}

#[test]
fn arguments_that_are_not_an_object_exit_2() {
    let ws = Workspace::new();
    for (args, kind) in [
        ("[1]", "an array"),
        ("\"hi\"", "a string"),
        ("3", "a number"),
    ] {
        let run = ws.run(&["call", "demo__echo", args]);
        run.expect_code(2);
        assert!(
            run.stderr.contains("must be a JSON object") && run.stderr.contains(kind),
            "{}",
            run.context()
        );
        assert!(run.stdout.is_empty(), "{}", run.context());
    }
}

#[test]
fn an_unknown_server_prefix_exits_2_and_names_the_servers() {
    let ws = Workspace::new();
    let run = ws.run(&["call", "nosuch__echo", r#"{"message":"hi"}"#]);
    run.expect_code(2);
    assert!(run.stderr.contains("'nosuch__echo'"), "{}", run.context());
    assert!(run.stderr.contains("demo"), "{}", run.context());
    assert!(run.stdout.is_empty(), "{}", run.context());

    // The same with a config file: the known servers are listed.
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "nosuch__echo",
        "{}",
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("'nosuch__echo'") && run.stderr.contains("kit"),
        "{}",
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------
// Config files

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_auth() {
    let ws = Workspace::new();
    // `--listen` beyond loopback: refused before binding or starting any server.
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let run = ws.run(&["serve", "--config", config, "--listen", "0.0.0.0:0"]);
    run.expect_code(2);
    for needle in [
        "without authentication",
        "[gateway.auth]",
        "allow_unauthenticated",
    ] {
        assert!(run.stderr.contains(needle), "{needle:?}\n{}", run.context());
    }
    // `listen` in the file: the config error names the file and the key.
    let public = ws.write(
        "public.toml",
        &format!("[gateway]\nlisten = \"0.0.0.0:8080\"\n\n{}", kit_toml()),
    );
    let public = public.to_str().unwrap();
    let run = ws.run(&["serve", "--config", public]);
    run.expect_code(2);
    for needle in [public, "gateway.listen", "[gateway.auth]"] {
        assert!(run.stderr.contains(needle), "{needle:?}\n{}", run.context());
    }
}

#[test]
fn rekey_without_a_redis_store_exits_2_naming_the_file() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let run = ws.run(&["rekey", "--config", config]);
    run.expect_code(2);
    for needle in [config, "[scale] store = \"redis\""] {
        assert!(run.stderr.contains(needle), "{needle:?}\n{}", run.context());
    }
}

#[test]
fn an_unknown_config_key_exits_2_naming_the_file_server_and_key() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!(
            "[servers.kit]\ncommand = \"{}\"\ncolour = \"red\"\n",
            testkit_word()
        ),
    );
    let config = config.to_str().unwrap();
    for args in [
        vec!["tools", "--config", config],
        vec![
            "call",
            "kit__echo",
            r#"{"message":"hi"}"#,
            "--config",
            config,
        ],
    ] {
        let run = ws.run(&args);
        run.expect_code(2);
        for needle in [config, "'kit'", "'colour'"] {
            assert!(
                run.stderr.contains(needle),
                "stderr does not contain {needle:?}\n{}",
                run.context()
            );
        }
        assert!(run.stdout.is_empty(), "{}", run.context());
    }
}

#[test]
fn a_missing_config_file_exits_2_naming_it() {
    let ws = Workspace::new();
    for args in [
        vec!["tools", "--config", "missing.toml"],
        vec!["call", "kit__echo", "{}", "--config", "missing.toml"],
    ] {
        let run = ws.run(&args);
        run.expect_code(2);
        assert!(
            run.stderr.contains("missing.toml") && run.stderr.contains("does not exist"),
            "{}",
            run.context()
        );
        assert!(run.stdout.is_empty(), "{}", run.context());
    }
}

#[test]
fn a_config_switchboard_toml_in_the_cwd_is_used_without_flags() {
    let ws = Workspace::new();
    ws.write("switchboard.toml", &kit_toml());
    let run = ws.run(&["tools"]);
    run.expect_code(0);
    assert!(
        run.stdout_lines()
            .iter()
            .any(|l| l.starts_with("kit__echo")),
        "{}",
        run.context()
    );
    assert!(!run.stderr.contains("demo"), "{}", run.context());
}

#[test]
fn tools_lists_the_good_server_and_names_the_refused_one() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    let lines = run.stdout_lines();
    for tool in ["kit__echo", "kit__add", "kit__fail", "kit__hang"] {
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().next() == Some(tool)),
            "{tool} missing\n{}",
            run.context()
        );
    }
    // stdout is the tool list and nothing else; the failure is said on stderr, once.
    assert!(
        lines.iter().all(|l| l.starts_with("kit__")),
        "{}",
        run.context()
    );
    let failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(failures.len(), 1, "{}", run.context());
    assert!(
        failures[0].starts_with("error: server 'bad' is unreachable")
            && failures[0].ends_with("[unreachable]"),
        "the failure line does not name the server and its class\n{}",
        run.context()
    );
    assert_eq!(failures[0].matches("'bad'").count(), 1, "{}", run.context());
}

#[test]
fn tools_exits_1_when_every_server_fails() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!(
            "[servers.bad]\nurl = \"{REFUSED_URL}\"\n\n\
             [servers.gone]\ncommand = \"/nonexistent/switchboard-test-no-such-command\"\n"
        ),
    );
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stdout.is_empty(), "{}", run.context());
    let failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(failures.len(), 2, "{}", run.context());
    assert!(
        failures
            .iter()
            .any(|l| l.contains("'bad'") && l.ends_with("[unreachable]")),
        "{}",
        run.context()
    );
    assert!(
        failures
            .iter()
            .any(|l| l.contains("'gone'") && l.ends_with("[unreachable]")),
        "{}",
        run.context()
    );
}

#[test]
fn tools_format_json_is_one_json_document_with_tools_and_failures() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let run = ws.run(&[
        "tools",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.expect_code(0);
    // from_str rejects anything after the document, so this also proves nothing else is on stdout.
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", run.context()));
    let object = doc.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["diagnostics", "failures", "tools"],
        "{}",
        run.context()
    );

    let tools = doc["tools"].as_array().expect("tools is an array");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "kit__echo")
        .unwrap_or_else(|| panic!("no kit__echo in tools\n{}", run.context()));
    assert_eq!(echo["server"], "kit");
    assert_eq!(echo["tool"], "echo");

    let failures = doc["failures"].as_array().expect("failures is an array");
    assert_eq!(failures.len(), 1, "{}", run.context());
    assert_eq!(failures[0]["server"], "bad");
    assert_eq!(failures[0]["class"], "unreachable");
    assert!(failures[0]["message"].is_string());
}

#[test]
fn a_server_that_never_initializes_times_out_without_hiding_the_others() {
    let ws = Workspace::new();
    let kit = testkit_word();
    let config = ws.write(
        "servers.toml",
        &format!(
            "[servers.slow]\ncommand = \"{kit}\"\nargs = [\"--hang-initialize\"]\n\
             connect_timeout = \"500ms\"\n\n\
             [servers.kit]\ncommand = \"{kit}\"\n"
        ),
    );
    let config = config.to_str().unwrap();
    let run = ws.run(&["tools", "--config", config, "--format", "json"]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", run.context()));
    assert!(
        doc["tools"]
            .as_array()
            .expect("tools array")
            .iter()
            .any(|t| t["name"] == "kit__echo"),
        "{}",
        run.context()
    );
    let failures = doc["failures"].as_array().expect("failures array");
    assert_eq!(failures.len(), 1, "{}", run.context());
    assert_eq!(failures[0]["server"], "slow", "{}", run.context());
    assert_eq!(failures[0]["class"], "timeout", "{}", run.context());
    assert_eq!(
        failures[0]["message"],
        "server 'slow': connect timed out after 500ms",
        "{}",
        run.context()
    );

    let run = ws.run(&[
        "call",
        "slow__echo",
        r#"{"message":"x"}"#,
        "--config",
        config,
    ]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("connect timed out") && run.stderr.contains("[timeout]"),
        "{}",
        run.context()
    );
}

#[test]
fn an_undefined_template_variable_fails_that_server_naming_the_variable() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!(
            "[servers.kit]\ncommand = \"{}\"\nenv = {{ X = \"${{nope}}\" }}\n",
            testkit_word()
        ),
    );
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    // Its only server failed.
    run.expect_code(1);
    let failure = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: server 'kit'"))
        .unwrap_or_else(|| panic!("no failure line for kit\n{}", run.context()));
    assert!(
        failure.contains("nope"),
        "the failure line does not name the variable\n{}",
        run.context()
    );
    assert!(failure.ends_with("[config]"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// Calls against the testkit

#[test]
fn call_of_a_failing_tool_exits_1() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&["call", "kit__fail", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("the tool failed on purpose"),
        "{}",
        run.context()
    );
    assert!(run.stdout.is_empty(), "{}", run.context());
}

#[test]
fn call_with_json_of_a_failing_tool_exits_1_and_prints_is_error() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__fail",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(1);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", run.context()));
    assert_eq!(doc["isError"], Value::Bool(true), "{}", run.context());
}

#[test]
fn call_that_runs_past_its_timeout_exits_1_and_says_it_timed_out() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__hang",
        "--timeout",
        "300ms",
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(1);
    assert!(run.stderr.contains("timed out"), "{}", run.context());
    assert!(run.stderr.contains("[timeout]"), "{}", run.context());
}

#[test]
fn call_of_an_unknown_tool_exits_2_with_the_closest_name() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__ecoh",
        "{}",
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("'kit__ecoh'"), "{}", run.context());
    assert!(
        run.stderr.contains("did you mean 'kit__echo'?"),
        "{}",
        run.context()
    );
    assert!(run.stderr.contains("[unknown_tool]"), "{}", run.context());
}

#[test]
fn call_with_stdio_uses_the_servers_own_tool_names() {
    let ws = Workspace::new();
    let kit = testkit_word();
    let run = ws.run(&["call", "echo", r#"{"message":"x"}"#, "--stdio", &kit]);
    run.expect_code(0);
    assert_eq!(run.stdout, "x\n", "{}", run.context());
    assert!(!run.stderr.contains("demo"), "{}", run.context());
}

#[test]
fn tools_with_url_lists_unprefixed_names_from_a_streamable_http_server() {
    let kit = TestkitHttp::start("streamable-http");
    let ws = Workspace::new();
    let run = ws.run(&["tools", "--url", &kit.url]);
    run.expect_code(0);
    let names: Vec<&str> = run
        .stdout_lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"echo"), "{}", run.context());
    assert!(
        !names.iter().any(|n| n.contains("__")),
        "names are prefixed\n{}",
        run.context()
    );

    let run = ws.run(&[
        "call",
        "echo",
        r#"{"message":"over http"}"#,
        "--url",
        &kit.url,
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "over http\n", "{}", run.context());
}

#[test]
fn a_stdio_servers_children_do_not_outlive_the_command() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__spawn_grandchild",
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(0);
    let pid: u32 = run
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("no pid on stdout ({e})\n{}", run.context()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        if Instant::now() >= deadline {
            // Do not leave it behind either way.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!(
                "the server's child {pid} outlived `switchboard call`\n{}",
                run.context()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The README's example: server-everything (npm, `npm ci --prefix tests`) through `--stdio`.
#[test]
fn call_with_stdio_reaches_server_everything_as_in_the_readme() {
    let entry = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "npm test peers are not installed ({} is missing): run `npm ci --prefix tests` \
         at the repository root",
        entry.display()
    );
    let entry = entry.canonicalize().expect("canonical path");
    let entry = entry.to_str().expect("UTF-8 path");
    assert!(
        !entry.contains(char::is_whitespace),
        "test limitation: {entry:?} needs quoting"
    );
    let command = format!("node {entry} stdio");
    let ws = Workspace::new();

    let run = ws.run(&["tools", "--stdio", &command]);
    run.expect_code(0);
    let names: Vec<&str> = run
        .stdout_lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for tool in ["echo", "get-sum", "get-tiny-image"] {
        assert!(names.contains(&tool), "{tool} missing\n{}", run.context());
    }

    let run = ws.run(&["call", "get-sum", r#"{"a":2,"b":3}"#, "--stdio", &command]);
    run.expect_code(0);
    assert!(run.stdout.contains('5'), "{}", run.context());

    // Non-text blocks are not printed as text, and the user is told how to see them.
    let run = ws.run(&["call", "get-tiny-image", "--stdio", &command]);
    run.expect_code(0);
    assert!(run.stderr.contains("--json"), "{}", run.context());
    let run = ws.run(&["call", "get-tiny-image", "--json", "--stdio", &command]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", run.context()));
    let blocks = doc["content"].as_array().expect("content array");
    assert!(
        blocks.iter().any(|b| b["type"] == "image"
            && b["mimeType"] == "image/png"
            && b["data"].as_str().is_some_and(|d| !d.is_empty())),
        "{}",
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[test]
fn a_secret_variable_never_reaches_stdout_or_stderr() {
    const SECRET: &str = "sekret-value-123";
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!(
            "[variables]\ntoken = \"{SECRET}\"\n\n\
             [servers.remote]\nurl = \"{REFUSED_URL}\"\n\
             headers = {{ Authorization = \"Bearer ${{token}}\" }}\n"
        ),
    );
    let config = config.to_str().unwrap();
    for args in [
        vec!["tools", "--config", config],
        vec!["tools", "--config", config, "--format", "json"],
        vec![
            "call",
            "remote__echo",
            r#"{"message":"hi"}"#,
            "--config",
            config,
        ],
        vec!["-vv", "tools", "--config", config],
        vec![
            "-vv",
            "call",
            "remote__echo",
            r#"{"message":"hi"}"#,
            "--config",
            config,
        ],
    ] {
        let run = ws.run(&args);
        // The server is refused: every run fails, but not as bad input.
        assert_eq!(run.code(), 1, "{}", run.context());
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "the secret leaked\n{}",
            run.context()
        );
        assert!(
            run.stdout.contains("unreachable") || run.stderr.contains("unreachable"),
            "{}",
            run.context()
        );
    }
}

/// Whether a process with this pid exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The catalogue: provider formats, collisions, aliases, argument checks

/// Two testkit servers whose tools keep their own names, so every tool collides.
fn colliding_toml() -> String {
    format!(
        "[catalog]\nprefix = \"never\"\n\n\
         [servers.one]\ncommand = \"{kit}\"\n\n\
         [servers.two]\ncommand = \"{kit}\"\ninclude = [\"echo\", \"nothing_like_this\"]\n",
        kit = testkit_word()
    )
}

#[test]
fn provider_formats_print_only_a_json_array_and_warnings_go_to_stderr() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &colliding_toml());
    let config = config.to_str().unwrap();
    for (format, name_of) in [
        ("openai", "/function/name"),
        ("openai-responses", "/name"),
        ("anthropic", "/name"),
    ] {
        let run = ws.run(&["tools", "--config", config, "--format", format]);
        run.expect_code(0);
        let doc: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{format}: stdout is not JSON ({e})\n{}", run.context()));
        let tools = doc.as_array().expect("an array of tools");
        let names: Vec<&str> = tools
            .iter()
            .map(|t| t.pointer(name_of).and_then(Value::as_str).expect("a name"))
            .collect();
        assert!(
            names.contains(&"echo") && names.contains(&"echo_2"),
            "{format}: {names:?}"
        );
        let schema_key = if format == "anthropic" {
            "input_schema"
        } else {
            "parameters"
        };
        let echo = &tools[names.iter().position(|n| *n == "echo").unwrap()];
        let schema = echo
            .get(schema_key)
            .or_else(|| echo.pointer(&format!("/function/{schema_key}")))
            .unwrap_or_else(|| panic!("{format}: no {schema_key} in {echo}"));
        assert_eq!(schema["type"], "object", "{format}: {echo}");
        assert!(
            run.stderr.contains("name collision on 'echo'")
                && run.stderr.contains("server 'one'")
                && run.stderr.contains("server 'two'"),
            "{format}: {}",
            run.context()
        );
        assert!(
            run.stderr.contains("nothing_like_this"),
            "{}",
            run.context()
        );
    }
}

#[test]
fn the_table_is_only_tools_and_collisions_are_warnings_on_stderr() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &colliding_toml());
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    let lines = run.stdout_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("echo_2 ")),
        "{}",
        run.context()
    );
    assert!(
        !run.stdout.contains("collision") && !run.stdout.contains("warning"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("warning: name collision on 'echo'")),
        "{}",
        run.context()
    );
}

#[test]
fn the_collision_policy_error_refuses_with_exit_2() {
    let ws = Workspace::new();
    let text = colliding_toml().replace(
        "prefix = \"never\"",
        "prefix = \"never\"\ncollisions = \"error\"",
    );
    let config = ws.write("servers.toml", &text);
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("tool names collide"),
        "{}",
        run.context()
    );
    assert!(run.stdout.is_empty(), "{}", run.context());
}

#[test]
fn call_resolves_aliases_and_short_names() {
    let ws = Workspace::new();
    let text = format!(
        "{}\n[servers.kit.tool_overrides.echo]\nalias = \"say\"\n",
        kit_toml()
    );
    let config = ws.write("servers.toml", &text);
    let config = config.to_str().unwrap();
    let run = ws.run(&[
        "call",
        "kit__say",
        r#"{"message":"aliased"}"#,
        "--config",
        config,
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "aliased\n", "{}", run.context());

    // A tool's own name works when one server has it, with a note saying its exposed name.
    let run = ws.run(&["call", "add", r#"{"a":1,"b":2}"#, "--config", config]);
    run.expect_code(0);
    assert_eq!(run.stdout, "3\n", "{}", run.context());
    assert!(
        run.stderr.contains("exposed as 'kit__add'"),
        "{}",
        run.context()
    );
}

#[test]
fn call_with_arguments_the_schema_rejects_exits_2_and_lists_every_problem() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__echo_args",
        r#"{"text": 1, "count": "x"}"#,
        "--config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("nothing was sent"), "{}", run.context());
    assert!(run.stderr.contains("/text: "), "{}", run.context());
    assert!(run.stderr.contains("/count: "), "{}", run.context());
    assert!(run.stdout.is_empty(), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_of_healthy_servers_exits_0_and_lists_each_as_ready() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!(
            "{}\n[servers.off]\ncommand = \"/nonexistent\"\nenabled = false\n",
            kit_toml()
        ),
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    let lines = run.stdout_lines();
    assert!(
        lines[0].starts_with("SERVER") && lines[0].contains("STATE"),
        "{}",
        run.context()
    );
    let kit = lines
        .iter()
        .find(|l| l.starts_with("kit "))
        .expect("kit row");
    assert!(kit.contains(" ready ") && kit.ends_with(" -"), "{kit}");
    let off = lines
        .iter()
        .find(|l| l.starts_with("off "))
        .expect("off row");
    assert!(off.contains(" disabled "), "{off}");
    assert_eq!(
        lines.last().copied(),
        Some("overall: healthy (1 of 1 enabled servers ready)")
    );
    // Piped stderr gets plain progress lines, one per event.
    assert!(run.stderr.contains("kit: connecting"), "{}", run.context());
    assert!(run.stderr.contains("kit: ready ("), "{}", run.context());
    assert!(run.stderr.contains("off: disabled"), "{}", run.context());
    assert!(!run.stderr.contains('\x1b'), "escape codes on a pipe");
}

#[test]
fn check_exits_3_when_degraded_and_json_says_why() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let run = ws.run(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.expect_code(3);
    let health: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(health["overall"], "degraded");
    let servers = health["servers"].as_array().expect("servers");
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bad", "kit"]);
    let (bad, kit) = (&servers[0], &servers[1]);
    // One check, nothing left running to retry it: skipped, not retrying.
    assert_eq!(bad["state"], "skipped", "{bad}");
    assert_eq!(bad["tools"], 0);
    assert_eq!(bad["last_error"]["class"], "unreachable");
    assert!(bad["last_error"]["at"].as_str().unwrap().ends_with('Z'));
    // The engine's error report: which server, and that nothing was sent.
    assert_eq!(bad["last_error"]["server"], "bad");
    assert_eq!(bad["last_error"]["delivery"], "not_sent");
    assert_eq!(bad["last_error"]["may_have_run"], false);
    assert_eq!(bad["last_error"]["retry_after_ms"], Value::Null);
    assert_eq!(bad["last_success"], Value::Null);
    assert_eq!(kit["state"], "ready");
    assert!(kit["tools"].as_u64().unwrap() > 5, "{kit}");
    assert_eq!(kit["last_error"], Value::Null);
    assert!(kit["last_success"].is_string());
}

#[test]
fn check_exits_1_when_nothing_is_ready_or_a_fail_fast_server_fails() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &format!("retry_skipped_servers = false\n[servers.bad]\nurl = \"{REFUSED_URL}\"\n"),
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    let bad = run
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("bad "))
        .expect("bad row");
    assert!(
        bad.contains(" skipped ") && bad.contains("unreachable: "),
        "{bad}"
    );
    assert!(
        run.stdout.contains("overall: unhealthy"),
        "{}",
        run.context()
    );

    let config = ws.write(
        "fail_fast.toml",
        &format!(
            "on_server_registration_error = \"fail_fast\"\n{}",
            kit_and_refused_toml()
        ),
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    // The server's error, then what the policy made of it: the server named once.
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line\n{}", run.context()));
    assert!(
        error.starts_with("error: server 'bad' is unreachable") && error.ends_with("[unreachable]"),
        "{}",
        run.context()
    );
    assert_eq!(run.stderr.matches("'bad'").count(), 1, "{}", run.context());
    assert!(
        run.stderr
            .contains("on_server_registration_error is fail_fast"),
        "{}",
        run.context()
    );
}

#[test]
fn check_exits_2_on_a_bad_config() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        "on_server_registration_error = \"skip_loudly\"\n",
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("on_server_registration_error")
            && run.stderr.contains("skip_with_warning"),
        "{}",
        run.context()
    );
}

#[test]
fn check_and_tools_use_the_servers_a_discovery_file_lists() {
    let ws = Workspace::new();
    ws.write(
        "registry.json",
        &format!(
            "{{\"mcpServers\": {{\"Found Kit\": {{\"command\": \"{}\"}}}}}}",
            testkit_word()
        ),
    );
    let config = ws.write(
        "servers.toml",
        "[discovery]\nkind = \"url\"\nurl = \"registry.json\"\n",
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    let lines = run.stdout_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Found_Kit (Found Kit) ") && l.contains(" ready ")),
        "{}",
        run.context()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("(discovery) discovery ") && l.contains(" ok ")),
        "{}",
        run.context()
    );
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout.contains("Found_Kit__echo"), "{}", run.context());
}

#[test]
fn a_registry_that_cannot_be_reached_shows_as_a_failed_source() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        "[discovery]\nkind = \"a365\"\nendpoint = \"http://127.0.0.1:1\"\nagent_id = \"a\"\n\
         auth_token = \"secret-token-123\"\n",
    );
    let run = ws.run(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.expect_code(1);
    let health: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(health["overall"], "unhealthy");
    assert_eq!(health["sources"][0]["name"], "a365");
    assert_eq!(health["sources"][0]["ok"], false);
    assert_eq!(health["sources"][0]["last_error"]["class"], "unreachable");
    assert!(!run.stdout.contains("secret-token-123") && !run.stderr.contains("secret-token-123"));

    let config = ws.write(
        "fail_fast.toml",
        "on_server_registration_error = \"fail_fast\"\n[discovery]\nkind = \"a365\"\n\
         endpoint = \"http://127.0.0.1:1\"\nagent_id = \"a\"\nauth_token = \"t\"\n",
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("a365") && run.stderr.contains("[unreachable]"),
        "{}",
        run.context()
    );
}

#[test]
fn check_lists_a_registry_entry_that_cannot_be_registered_and_is_degraded() {
    let ws = Workspace::new();
    ws.write(
        "registry.json",
        &format!(
            "{{\"mcpServers\": {{\"kit\": {{\"command\": \"{}\"}}, \"Broken\": {{}}}}}}",
            testkit_word()
        ),
    );
    let config = ws.write(
        "servers.toml",
        "[discovery]\nkind = \"url\"\nurl = \"registry.json\"\n",
    );
    let run = ws.run(&["check", "--config", config.to_str().unwrap()]);
    run.expect_code(3);
    assert!(
        run.stdout_lines()
            .iter()
            .any(|l| l.starts_with("(discovery) Broken ") && l.contains(" unusable ")),
        "{}",
        run.context()
    );
    assert!(
        run.stdout.contains("overall: degraded"),
        "{}",
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------
// What a failing server, a bad URL and a typo look like

/// A refused `--url` server: its own error and class, exit 1; not "no tool is named".
#[test]
fn call_with_an_unreachable_url_prints_the_servers_error_and_exits_1() {
    let ws = Workspace::new();
    let run = ws.run(&["call", "--url", REFUSED_URL, "echo", "{}"]);
    run.expect_code(1);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: server '127_0_0_1_1' is unreachable")
            && first.ends_with("[unreachable]"),
        "{}",
        run.context()
    );
    for wrong in ["no tool is named", "connected servers", "[unknown_tool]"] {
        assert!(!run.stderr.contains(wrong), "{wrong:?}\n{}", run.context());
    }
    assert!(run.stdout.is_empty(), "{}", run.context());
}

/// A config with a good server, a refused one and one that never answers `initialize`
/// (within a connect_timeout far longer than any of these runs may take).
fn kit_refused_and_hanging_toml() -> String {
    format!(
        "{}\n[servers.slow]\ncommand = \"{}\"\nargs = [\"--hang-initialize\"]\n\
         connect_timeout = \"30s\"\n",
        kit_and_refused_toml(),
        testkit_word()
    )
}

/// Bounds a run far below the hanging server's connect_timeout (30s): a run that waited
/// for it fails here.
const FAR_BELOW_THE_HANG: Duration = Duration::from_secs(10);

#[test]
fn a_qualified_name_connects_only_its_server() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_refused_and_hanging_toml());
    let config = config.to_str().unwrap();
    let quick = || Options {
        timeout: Some(FAR_BELOW_THE_HANG),
        ..Options::default()
    };

    let run = ws.run_with(
        &["call", "kit__echo", r#"{"message":"hi"}"#, "-c", config],
        quick(),
    );
    run.expect_code(0);
    assert_eq!(run.stdout, "hi\n", "{}", run.context());
    assert!(run.stderr.is_empty(), "{}", run.context());

    // The tool of the refused server: its error, once, exit 1.
    let run = ws.run_with(&["call", "bad__echo", "{}", "-c", config], quick());
    run.expect_code(1);
    assert!(
        run.stderr.starts_with("error: server 'bad' is unreachable"),
        "{}",
        run.context()
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.context());
    assert_eq!(run.stderr.matches("'bad'").count(), 1, "{}", run.context());
    assert!(!run.stderr.contains("not available"), "{}", run.context());

    let run = ws.run_with(&["tools", "--describe", "kit__echo", "-c", config], quick());
    run.expect_code(0);
    assert!(run.stdout.starts_with("kit__echo\n"), "{}", run.context());
}

#[test]
fn an_unknown_short_name_while_a_server_is_down_says_its_tools_are_unknown() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let run = ws.run(&["call", "nosuch", "{}", "-c", config.to_str().unwrap()]);
    // The tool may be the missing server's: not bad input.
    run.expect_code(1);
    assert!(
        run.stderr
            .starts_with("error: no tool is named 'nosuch' [unknown_tool]\n"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr
            .contains("note: not connected, so its tools are unknown: server 'bad' is unreachable"),
        "{}",
        run.context()
    );
}

#[test]
fn a_url_without_a_scheme_is_bad_input_and_says_to_add_http() {
    let ws = Workspace::new();
    for args in [
        vec!["tools", "--url", "127.0.0.1:9"],
        vec!["call", "--url", "127.0.0.1:9", "echo", "{}"],
        vec!["check", "--url", "localhost:9/mcp"],
    ] {
        let run = ws.run(&args);
        run.expect_code(2);
        assert!(
            run.stderr
                .starts_with("error: --url: the URL has no scheme")
                && run.stderr.contains("Add http://"),
            "{}",
            run.context()
        );
        assert!(run.stdout.is_empty(), "{}", run.context());
    }
}

#[test]
fn a_stdio_server_that_dies_before_initialize_shows_its_last_stderr_lines() {
    let ws = Workspace::new();
    // Something meaningful, then a stack frame, then a trailer; more lines than are shown.
    let script = "for i in 1 2 3 4 5 6 7 8; do echo noise $i >&2; done; \
                  echo 'Error: the port is missing' >&2; echo '    at main (x.js:1:2)' >&2; \
                  echo '}' >&2; echo 'run with --port N' >&2; exit 3";
    let command = format!("sh -c \"{script}\"");
    let run = ws.run(&["tools", "--stdio", &command]);
    run.expect_code(1);
    let mut lines = run.stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("error: server 'sh' is unreachable: the server process exited")
            && first.ends_with("[unreachable]"),
        "{}",
        run.context()
    );
    let shown: Vec<&str> = lines.map(str::trim).collect();
    assert_eq!(
        shown,
        [
            "noise 5",
            "noise 6",
            "noise 7",
            "noise 8",
            "Error: the port is missing",
            "run with --port N"
        ],
        "{}",
        run.context()
    );
}

/// What a user who mistyped a node server's path sees.
#[test]
fn a_node_server_with_a_missing_module_shows_the_error_above_its_stack() {
    let ws = Workspace::new();
    let run = ws.run(&["call", "--stdio", "node /nonexistent/server.js", "x"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("Error: Cannot find module '/nonexistent/server.js'"),
        "{}",
        run.context()
    );
    assert!(run.stderr.contains("MODULE_NOT_FOUND"), "{}", run.context());
}

#[test]
fn a_json_config_warns_about_a_typod_server_key_before_connecting() {
    let ws = Workspace::new();
    // "arg": the server starts without its arguments (here: it would have hung).
    let config = ws.write(
        "mcp.json",
        &format!(
            "{{\"mcpServers\": {{\"kit\": {{\"command\": \"{}\", \"arg\": [\"--hang-initialize\"]}}}}}}",
            testkit_word()
        ),
    );
    let config = config.to_str().unwrap();
    let run = ws.run(&["check", "-c", config]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let warning = format!(
        "warning: {config}: server 'kit', key 'arg': unknown key, ignored. Did you mean 'args'?"
    );
    let at = lines
        .iter()
        .position(|l| l.starts_with(&warning))
        .unwrap_or_else(|| panic!("no warning\n{}", run.context()));
    let connecting = lines
        .iter()
        .position(|l| *l == "kit: connecting")
        .unwrap_or_else(|| panic!("no progress\n{}", run.context()));
    assert!(at < connecting, "{}", run.context());

    let run = ws.run(&["tools", "-c", config]);
    run.expect_code(0);
    assert!(run.stderr.starts_with(&warning), "{}", run.context());
    assert!(!run.stdout.contains("warning"), "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// Schemas, --describe, arguments from a file or stdin

#[test]
fn tools_json_carries_each_tools_input_and_output_schema() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&["tools", "--format", "json", "-c", config.to_str().unwrap()]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let tool = |name: &str| {
        doc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no {name}\n{}", run.context()))
            .clone()
    };
    let echo = tool("kit__echo");
    assert_eq!(
        echo["input_schema"]["required"],
        serde_json::json!(["message"])
    );
    assert_eq!(
        echo["input_schema"]["properties"]["message"]["type"],
        "string"
    );
    assert!(echo.get("output_schema").is_none(), "{echo}");
    // Annotations are the engine's own names, only those the server set.
    assert!(echo.get("annotations").is_none(), "{echo}");
    assert_eq!(
        tool("kit__lookup")["annotations"],
        serde_json::json!({"read_only": true})
    );
    assert_eq!(
        tool("kit__put")["annotations"],
        serde_json::json!({"idempotent": true})
    );
    let structured = tool("kit__structured");
    assert_eq!(
        structured["output_schema"]["properties"]["temperature"]["type"],
        "number"
    );
}

#[test]
fn tools_describe_shows_one_tools_arguments() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let run = ws.run(&["tools", "--describe", "kit__echo_args", "-c", config]);
    run.expect_code(0);
    let expected_rows = [
        "  count  integer        optional  >= 0",
        "  maybe  string | null  optional",
        "  text   string         optional",
    ];
    let arguments = run
        .stdout
        .split_once("Arguments:\n")
        .unwrap_or_else(|| panic!("no arguments\n{}", run.context()))
        .1;
    assert_eq!(
        arguments.lines().collect::<Vec<_>>(),
        expected_rows,
        "{}",
        run.context()
    );
    assert!(
        run.stdout
            .starts_with("kit__echo_args\n  tool 'echo_args' of server 'kit'\n"),
        "{}",
        run.context()
    );

    let run = ws.run(&["tools", "--describe", "kit__structured", "-c", config]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Arguments: none\n")
            && run.stdout.contains(
                "Result (structuredContent):\n  temperature  number  required\n  unit         string  required\n"
            ),
        "{}",
        run.context()
    );

    // A tool's own name works as for call; a JSON form prints its entry.
    let run = ws.run(&[
        "tools",
        "--describe",
        "echo",
        "-c",
        config,
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["name"], "kit__echo");
    assert_eq!(
        doc["input_schema"]["required"],
        serde_json::json!(["message"])
    );

    let run = ws.run(&["tools", "--describe", "kit__ecoh", "-c", config]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("did you mean 'kit__echo'?"),
        "{}",
        run.context()
    );
}

#[test]
fn call_reads_arguments_from_a_file_or_stdin() {
    let ws = Workspace::new();
    ws.write("args.json", "{\"message\": \"from a file\"}\n");
    let run = ws.run(&["call", "demo__echo", "@args.json"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "from a file\n", "{}", run.context());

    let run = ws.run_with(
        &["call", "demo__echo", "-"],
        Options {
            stdin: Some("{\"message\": \"from stdin\"}"),
            ..Options::default()
        },
    );
    run.expect_code(0);
    assert_eq!(run.stdout, "from stdin\n", "{}", run.context());

    let run = ws.run(&["call", "demo__echo", "@missing.json"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .starts_with("error: cannot read the arguments file 'missing.json'"),
        "{}",
        run.context()
    );
    ws.write("broken.json", "{\"message\":\n");
    let run = ws.run(&["call", "demo__echo", "@broken.json"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .starts_with("error: invalid JSON arguments in broken.json:")
            && run.stderr.contains("line 2"),
        "{}",
        run.context()
    );
}

// ---------------------------------------------------------------------------------------------
// Progress, colours, JSON layout, timeouts, empty configs

#[test]
fn tools_and_call_show_progress_on_a_terminal_and_nothing_on_a_pipe() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let config = config.to_str().unwrap();
    for args in [
        vec!["tools", "-c", config],
        vec!["call", "kit__echo", r#"{"message":"hi"}"#, "-c", config],
    ] {
        let run = ws.run_with(
            &args,
            Options {
                terminal: Some(Stream::Stderr),
                ..Options::default()
            },
        );
        // The spinner rows were drawn, then erased.
        assert!(run.stderr.contains("connecting…"), "{}", run.context());
        assert!(run.stderr.contains("\x1b[J"), "{}", run.context());
        assert!(!run.stdout.contains('\x1b'), "{}", run.context());
        assert!(!run.stdout.contains("connecting"), "{}", run.context());

        let run = ws.run(&args);
        assert!(!run.stderr.contains("connecting"), "{}", run.context());
    }
}

#[test]
fn log_lines_have_no_colours_when_stderr_is_not_a_terminal() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&["-vv", "tools", "-c", config.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stderr.contains("DEBUG"), "{}", run.context());
    assert!(!run.stderr.contains('\x1b'), "{}", run.context());
}

#[test]
fn json_is_compact_when_piped_pretty_on_a_terminal_or_as_asked() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    for args in [
        vec!["tools", "-c", config, "--format", "json"],
        vec!["tools", "-c", config, "--format", "anthropic"],
        vec!["check", "-c", config, "--format", "json"],
        vec![
            "call",
            "kit__add",
            r#"{"a":1,"b":2}"#,
            "--json",
            "-c",
            config,
        ],
    ] {
        let run = ws.run(&args);
        run.expect_code(0);
        assert_eq!(run.stdout.lines().count(), 1, "{}", run.context());
        serde_json::from_str::<Value>(&run.stdout).expect("JSON");

        let pretty = [args.clone(), vec!["--json-style", "pretty"]].concat();
        let run = ws.run(&pretty);
        run.expect_code(0);
        assert!(run.stdout.lines().count() > 3, "{}", run.context());
        serde_json::from_str::<Value>(&run.stdout).expect("JSON");

        let run = ws.run_with(
            &args,
            Options {
                terminal: Some(Stream::Stdout),
                ..Options::default()
            },
        );
        run.expect_code(0);
        assert!(run.stdout.lines().count() > 3, "{}", run.context());
    }
}

#[test]
fn a_call_timeout_reports_the_time_it_was_given() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let run = ws.run(&[
        "call",
        "kit__hang",
        "--timeout",
        "1ms",
        "-c",
        config.to_str().unwrap(),
    ]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("timed out after 1ms [timeout]"),
        "{}",
        run.context()
    );
    let run = ws.run(&["call", "demo__now", "--timeout", "0s"]);
    run.expect_code(2);
}

#[test]
fn no_enabled_server_is_bad_config_in_every_command() {
    let ws = Workspace::new();
    let off = ws.write("off.toml", &format!("{}enabled = false\n", kit_toml()));
    let empty = ws.write("empty.json", "{\"globalShortcut\": \"x\"}");
    for config in [off.to_str().unwrap(), empty.to_str().unwrap()] {
        for args in [
            vec!["check", "-c", config],
            vec!["tools", "-c", config],
            vec!["call", "kit__echo", "{}", "-c", config],
        ] {
            let run = ws.run(&args);
            run.expect_code(2);
            assert!(
                run.stderr
                    .starts_with(&format!("error: {config}: no enabled servers")),
                "{}",
                run.context()
            );
            assert!(run.stdout.is_empty(), "{}", run.context());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// --help

#[test]
fn help_shows_the_default_config_the_demo_exit_codes_and_examples() {
    let ws = Workspace::new();
    let run = ws.run(&["--help"]);
    run.expect_code(0);
    for needle in [
        "./switchboard.toml",
        "built-in demo server",
        "Exit codes:",
        "  tools  0",
        "  call   0",
        "  check  0",
        "Examples:",
        "switchboard call demo__echo",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?}\n{}", run.context());
    }
    for (command, example) in [
        ("tools", "switchboard tools --"),
        ("call", "switchboard call demo__"),
        ("check", "switchboard check --"),
    ] {
        let run = ws.run(&[command, "--help"]);
        run.expect_code(0);
        for needle in ["Exit codes: 0 ", example, "./switchboard.toml"] {
            assert!(
                run.stdout.contains(needle),
                "{command}: {needle:?}\n{}",
                run.context()
            );
        }
    }
}

#[test]
fn verbose_shows_each_calls_timing_and_outcome() {
    let ws = Workspace::new();
    let kit = testkit_word();
    let run = ws.run(&["-v", "call", "echo", r#"{"message":"x"}"#, "--stdio", &kit]);
    assert_eq!(run.status.code(), Some(0), "{}", run.context());
    let line = run
        .stderr
        .lines()
        .find(|line| line.contains("called echo"))
        .unwrap_or_else(|| panic!("no call line: {}", run.context()));
    assert!(
        line.contains("elapsed_ms=") && line.contains("outcome=\"ok\""),
        "{line}"
    );
    let quiet = ws.run(&["call", "echo", r#"{"message":"x"}"#, "--stdio", &kit]);
    assert!(!quiet.stderr.contains("called echo"), "{}", quiet.context());
}

#[test]
fn https_without_ca_certificates_is_a_clear_error_not_a_panic() {
    let ws = Workspace::new();
    // No CA certificates: an empty bundle and an empty directory, as on a minimal container.
    let bundle = ws.write("empty.pem", "");
    let certs = ws.dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let env = [
        ("SSL_CERT_FILE", bundle.to_str().unwrap()),
        ("SSL_CERT_DIR", certs.to_str().unwrap()),
    ];
    // Streamable HTTP and legacy SSE (a URL ending in /sse).
    for url in ["https://127.0.0.1:9/mcp", "https://127.0.0.1:9/sse"] {
        let options = Options {
            env: &env,
            ..Options::default()
        };
        let run = ws.run_with(&["call", "--url", url, "echo", "{}"], options);
        assert_eq!(run.status.code(), Some(1), "{}", run.context());
        assert!(!run.stderr.contains("panicked"), "{}", run.context());
        assert!(
            run.stderr.contains("CA certificates") && run.stderr.contains("[unreachable]"),
            "{}",
            run.context()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Resources and prompts

#[test]
fn resources_lists_exposed_uris_and_read_prints_text_and_names_binary_parts() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let run = ws.run(&["resources", "--config", config]);
    run.expect_code(0);
    let uris: Vec<&str> = run
        .stdout_lines()
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for uri in [
        "kit+testkit://static/hello.txt",
        "kit+testkit://static/pixel.png",
        "kit+testkit://items/{id}",
    ] {
        assert!(uris.contains(&uri), "{uri} missing\n{}", run.context());
    }
    let hello = run.stdout_lines()[0];
    assert!(
        hello.contains("text/plain") && hello.contains("23 bytes"),
        "{}",
        run.context()
    );

    let run = ws.run(&["read", "kit+testkit://static/hello.txt", "--config", config]);
    run.expect_code(0);
    assert_eq!(run.stdout, "Hello from the testkit.\n", "{}", run.context());
    // A template filled in is read like any resource.
    let run = ws.run(&["read", "kit+testkit://items/42", "--config", config]);
    run.expect_code(0);
    assert_eq!(run.stdout, "item 42\n", "{}", run.context());

    // Binary: named with its type and size, not dumped; --json has it all.
    let run = ws.run(&["read", "kit+testkit://static/pixel.png", "--config", config]);
    run.expect_code(0);
    assert!(run.stdout.is_empty(), "{}", run.context());
    assert!(
        run.stderr.contains("(image/png, 70 bytes)") && !run.stderr.contains("iVBOR"),
        "{}",
        run.context()
    );
    let run = ws.run(&[
        "read",
        "kit+testkit://static/pixel.png",
        "--json",
        "--config",
        config,
    ]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let part = &doc["contents"][0];
    assert_eq!(part["uri"], "kit+testkit://static/pixel.png");
    assert_eq!(part["mimeType"], "image/png");
    assert!(
        part["blob"]
            .as_str()
            .is_some_and(|b| b.starts_with("iVBOR")),
        "{}",
        run.context()
    );
}

#[test]
fn reading_what_is_not_there_exits_2_saying_not_found() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    // The server says it has no such resource.
    let run = ws.run(&["read", "kit+testkit://nope", "--config", config]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("server 'kit' has no resource 'testkit://nope'")
            && run.stderr.contains("[not_found]"),
        "{}",
        run.context()
    );
    // No server prefix: the hub says so, and what was meant.
    let run = ws.run(&["read", "testkit://static/hello.txt", "--config", config]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("did you mean 'kit+testkit://static/hello.txt'?"),
        "{}",
        run.context()
    );
}

#[test]
fn resources_json_lists_resources_templates_and_the_failed_server() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_and_refused_toml());
    let run = ws.run(&[
        "resources",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{}", run.context()));
    let hello = doc["resources"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["server_uri"] == "testkit://static/hello.txt")
        })
        .unwrap_or_else(|| panic!("no hello.txt\n{}", run.context()));
    assert_eq!(hello["uri"], "kit+testkit://static/hello.txt");
    assert_eq!(hello["server"], "kit");
    assert_eq!(
        doc["templates"][0]["uri_template"],
        "kit+testkit://items/{id}"
    );
    // The refused server did not register: named on stderr.
    assert!(
        run.stderr.contains("'bad'") && run.stderr.contains("[unreachable]"),
        "{}",
        run.context()
    );
}

#[test]
fn prompts_lists_arguments_and_prompt_takes_key_value_or_json() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let run = ws.run(&["prompts", "--config", config]);
    run.expect_code(0);
    let greet = run
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("kit__greet "))
        .unwrap_or_else(|| panic!("no kit__greet\n{}", run.context()));
    assert!(
        greet.ends_with("arguments: name, [style]"),
        "{}",
        run.context()
    );

    let run = ws.run(&[
        "prompt",
        "kit__greet",
        "name=Ada",
        "style=warm",
        "--config",
        config,
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "user: Hello, Ada! (warm)\n",
        "{}",
        run.context()
    );
    let run = ws.run(&[
        "prompt",
        "kit__greet",
        r#"{"name": "Bo"}"#,
        "--config",
        config,
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "user: Hello, Bo!\n", "{}", run.context());
    let run = ws.run(&["prompt", "kit__summary", "--json", "--config", config]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let roles: Vec<&str> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "{}", run.context());

    let json = ws.run(&["prompts", "--config", config, "--format", "json"]);
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    let greet = doc["prompts"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "kit__greet"))
        .unwrap_or_else(|| panic!("{}", json.context()));
    assert_eq!(greet["prompt"], "greet");
    assert_eq!(greet["arguments"][0]["required"], true);
}

#[test]
fn prompt_errors_exit_2_with_their_class() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let config = config.to_str().unwrap();
    let missing = ws.run(&["prompt", "kit__greet", "--config", config]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("`name`") && missing.stderr.contains("[invalid_arguments]"),
        "{}",
        missing.context()
    );
    let unknown = ws.run(&["prompt", "kit__greeet", "--config", config]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("did you mean 'kit__greet'?")
            && unknown.stderr.contains("[not_found]"),
        "{}",
        unknown.context()
    );
    let bad = ws.run(&["prompt", "kit__greet", "name", "--config", config]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("key=value"), "{}", bad.context());
}

#[test]
fn a_single_server_shows_and_takes_its_own_uris_and_prompt_names() {
    let ws = Workspace::new();
    let kit = testkit_word();
    let run = ws.run(&["resources", "--stdio", &kit]);
    run.expect_code(0);
    assert!(
        run.stdout_lines()
            .iter()
            .any(|l| l.starts_with("testkit://static/hello.txt ")),
        "{}",
        run.context()
    );
    let run = ws.run(&["read", "testkit://items/9", "--json", "--stdio", &kit]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["contents"][0]["uri"], "testkit://items/9");
    assert_eq!(doc["contents"][0]["text"], "item 9");
    let run = ws.run(&["prompt", "greet", "name=Cy", "--stdio", &kit]);
    run.expect_code(0);
    assert_eq!(run.stdout, "user: Hello, Cy!\n", "{}", run.context());
}

// ---------------------------------------------------------------------------------------------
// What a server asks and tells during a call

/// A TOML config with the testkit stdio server `kit`, started with `args`, and `extra` keys.
fn kit_toml_with(args: &[&str], extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[servers.kit]\ncommand = \"{}\"\nargs = [{}]\n{extra}",
        testkit_word(),
        args.join(", ")
    )
}

#[test]
fn without_a_terminal_call_answers_by_the_elicitation_policy() {
    let ws = Workspace::new();
    for lifecycle in ["classic", "modern"] {
        let args = ["--lifecycle", lifecycle];
        let accepting = ws.write(
            "accept.toml",
            &kit_toml_with(&args, "elicitation = \"accept_defaults\"\n"),
        );
        let run = ws.run(&["call", "kit__ask", "-c", accepting.to_str().unwrap()]);
        run.expect_code(0);
        let answer: Value = serde_json::from_str(&run.stdout).expect("the answer as JSON");
        assert_eq!(answer["action"], "accept", "{}", run.context());
        assert_eq!(answer["content"]["name"], "Ada", "{}", run.context());

        let declining = ws.write("decline.toml", &kit_toml_with(&args, ""));
        let run = ws.run(&["call", "kit__ask", "-c", declining.to_str().unwrap()]);
        run.expect_code(0);
        // Classic servers are not offered elicitation; modern ones are told no.
        let declined = run.stdout.contains(r#""action":"decline""#)
            || run.stdout.contains("elicitation/create failed");
        assert!(declined, "{}", run.context());
        assert!(!run.stdout.contains("Ada"), "{}", run.context());
    }
}

#[test]
fn on_a_terminal_call_asks_the_form_and_the_url_and_declines_sampling() {
    let ws = Workspace::new();
    let config = ws.write(
        "servers.toml",
        &kit_toml_with(&["--lifecycle", "modern"], ""),
    );
    let config = config.to_str().unwrap();
    let on_terminal = |tool: &str, typed: &'static str| {
        ws.run_with(
            &["call", tool, r#"{"prompt": "hi"}"#, "-c", config],
            Options {
                terminal: Some(Stream::Stderr),
                typed: Some(typed),
                ..Options::default()
            },
        )
    };
    // The form (fields in name order): answer yes, a bad age and a good one, a name.
    let run = on_terminal("kit__ask", "y\nold\n85\nGrace\n");
    run.expect_code(0);
    assert!(
        run.stderr.contains("server 'kit' asks: Who is calling?"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("is not a whole number"),
        "{}",
        run.context()
    );
    let answer: Value = serde_json::from_str(&run.stdout).expect("the answer as JSON");
    assert_eq!(
        answer["content"],
        serde_json::json!({"name": "Grace", "age": 85})
    );
    // The URL: shown, then confirmed.
    let run = on_terminal("kit__visit", "y\n");
    run.expect_code(0);
    assert!(
        run.stderr.contains("https://example.com/sign-in"),
        "{}",
        run.context()
    );
    assert!(
        run.stdout.contains(r#""action":"accept""#),
        "{}",
        run.context()
    );
    // Sampling: declined, saying why; the call fails.
    let run = on_terminal("kit__sample", "");
    run.expect_code(1);
    assert!(
        run.stderr.contains("the CLI has no model"),
        "{}",
        run.context()
    );
}

#[test]
fn call_shows_progress_on_a_terminal_and_erases_it() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &kit_toml());
    let args = [
        "call",
        "kit__progress",
        r#"{"count": 3, "delay_ms": 50}"#,
        "-c",
        config.to_str().unwrap(),
    ];
    let run = ws.run_with(
        &args,
        Options {
            terminal: Some(Stream::Stderr),
            ..Options::default()
        },
    );
    run.expect_code(0);
    assert_eq!(run.stdout, "done 3\n", "{}", run.context());
    assert!(
        run.stderr.contains("kit__progress: 1/3 (33%) step 1 of 3"),
        "{}",
        run.context()
    );
    assert!(
        run.stderr.contains("3/3 (100%) step 3 of 3"),
        "{}",
        run.context()
    );
    // Erased: the last thing on the line is the clearing.
    assert!(
        run.stderr.trim_end().ends_with("\r\x1b[2K"),
        "{:?}",
        run.stderr
    );
    // Piped, nothing is drawn.
    let run = ws.run(&args);
    run.expect_code(0);
    assert!(!run.stderr.contains("step 1"), "{}", run.context());
}
