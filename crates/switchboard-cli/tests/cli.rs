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
        let out_path = self.dir.path().join(".stdout");
        let err_path = self.dir.path().join(".stderr");
        let child = Command::new(switchboard_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("start switchboard");
        let mut child = KillOnDrop(child);
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait for switchboard") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "switchboard {args:?} did not finish within {RUN_TIMEOUT:?}; stderr so far:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            status,
            stdout: std::fs::read_to_string(&out_path).expect("read stdout"),
            stderr: std::fs::read_to_string(&err_path).expect("read stderr"),
        }
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
        let mut child = KillOnDrop(
            Command::new(testkit_bin())
                .args(["--transport", transport, "--port", "0"])
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
    let run = ws.run(&["call", "demo__add", r#"{"a":2,"b":3}"#, "--json"]);
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
    let failures: Vec<&&str> = lines.iter().filter(|l| l.starts_with("! ")).collect();
    assert_eq!(failures.len(), 1, "{}", run.context());
    assert!(
        failures[0].contains("bad") && failures[0].contains("unreachable"),
        "the failure line does not name the server and 'unreachable'\n{}",
        run.context()
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("bad__")),
        "{}",
        run.context()
    );
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
    let failures: Vec<&str> = run
        .stdout_lines()
        .into_iter()
        .filter(|l| l.starts_with("! "))
        .collect();
    assert_eq!(failures.len(), 2, "{}", run.context());
    assert!(
        failures
            .iter()
            .any(|l| l.contains("bad") && l.contains("unreachable")),
        "{}",
        run.context()
    );
    assert!(
        failures
            .iter()
            .any(|l| l.contains("gone") && l.contains("unreachable")),
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
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("! kit "))
        .unwrap_or_else(|| panic!("no failure line for kit\n{}", run.context()));
    assert!(
        failure.contains("nope"),
        "the failure line does not name the variable\n{}",
        run.context()
    );
    assert!(failure.contains("(config)"), "{}", run.context());
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
fn the_table_lists_collisions_after_the_tools() {
    let ws = Workspace::new();
    let config = ws.write("servers.toml", &colliding_toml());
    let run = ws.run(&["tools", "--config", config.to_str().unwrap()]);
    run.expect_code(0);
    let lines = run.stdout_lines();
    let first_note = lines
        .iter()
        .position(|l| l.starts_with("! "))
        .unwrap_or_else(|| panic!("no notes\n{}", run.context()));
    assert!(
        lines[..first_note].iter().any(|l| l.starts_with("echo_2 ")),
        "{}",
        run.context()
    );
    assert!(
        lines[first_note..].iter().all(|l| l.starts_with("! ")),
        "{}",
        run.context()
    );
    assert!(
        lines[first_note..]
            .iter()
            .any(|l| l.contains("name collision on 'echo'")),
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
    assert_eq!(bad["state"], "retrying", "{bad}");
    assert_eq!(bad["tools"], 0);
    assert_eq!(bad["last_error"]["class"], "unreachable");
    assert!(bad["last_error"]["at"].as_str().unwrap().ends_with('Z'));
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
    assert!(
        run.stderr.contains(
            "error: server 'bad' could not be registered (on_server_registration_error = fail_fast)"
        ),
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
