//! Tests of reading config files: `Config::load`, the formats, and where errors point
//! (unknown keys, wrong types, syntax errors, secrets never shown).

use std::path::Path;
use std::time::Duration;

use crate::config::diagnostics::line_column;
use crate::config::test_support::Text::{Any, Is, Starts};
use crate::config::test_support::{
    FILE, assert_err, line_of, pos_of, problem_of, toml, toml_err, toml_err_says,
};
use crate::config::*;

const EXAMPLE: &str = r#"
[variables]
token = "abc"

[servers.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
env = { LOG_LEVEL = "debug" }
cwd = "/tmp"
connect_timeout = "5s"

[servers.remote]
url = "http://127.0.0.1:3001/mcp"
headers = { Authorization = "Bearer ${token}" }
tool_call_timeout = "2m"
enabled = false

[servers.legacy]
transport = "sse"
url = "http://127.0.0.1:3002/sse"
"#;

#[test]
fn example_config_loads() {
    let config = toml(EXAMPLE).unwrap();
    assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    assert_eq!(
        config.variables.get("token").map(String::as_str),
        Some("abc")
    );
    assert_eq!(
        config.servers.keys().collect::<Vec<_>>(),
        ["everything", "legacy", "remote"]
    );

    let everything = &config.servers["everything"];
    let mut expected = ServerConfig::stdio(
        "everything",
        "npx",
        vec![
            "-y".into(),
            "@modelcontextprotocol/server-everything".into(),
        ],
    );
    expected.env.insert("LOG_LEVEL".into(), "debug".into());
    expected.cwd = Some("/tmp".into());
    expected.connect_timeout = Duration::from_secs(5);
    assert_eq!(everything, &expected);

    let remote = &config.servers["remote"];
    let mut expected = ServerConfig::url("remote", "http://127.0.0.1:3001/mcp");
    expected
        .headers
        .insert("Authorization".into(), "Bearer ${token}".into());
    expected.tool_call_timeout = Duration::from_secs(120);
    expected.enabled = false;
    assert_eq!(remote, &expected);
    assert_eq!(remote.transport, TransportKind::StreamableHttp);

    let legacy = &config.servers["legacy"];
    assert_eq!(
        legacy,
        &ServerConfig::url("legacy", "http://127.0.0.1:3002/sse")
    );
    assert_eq!(legacy.transport, TransportKind::Sse);
}

#[test]
fn empty_document_is_an_empty_config() {
    let config = toml("").unwrap();
    assert!(config.servers.is_empty());
    assert!(config.variables.is_empty());
    let config = Config::from_toml_str("", None).unwrap();
    assert_eq!(config.source, None);
}

#[test]
fn unknown_server_key_with_suggestion() {
    let err = toml_err("[servers.everything]\ncomand = \"npx\"\n");
    assert_err(&err, Some("everything"), Some("comand"));
    // The error's server and key say where: the problem does not repeat them.
    assert_eq!(problem_of(&err), "unknown key");
    assert_eq!(
        err.fix,
        "did you mean 'command'? Known keys: 'transport', 'command', 'args', 'env', 'cwd', \
         'url', 'headers', 'connect_timeout', 'list_timeout', 'tool_call_timeout', 'http_connections', 'include', 'exclude', 'tool_overrides', 'session_mode', 'session_idle_timeout', 'max_sessions', 'reconnect', 'enabled', 'on_server_registration_error', 'elicitation', 'protocol_version', 'roots', 'auth'"
    );
    assert_eq!(pos_of(&err), Some((2, 1)));
    assert_eq!(
        err.to_string(),
        format!(
            "{FILE}: server 'everything', key 'comand': unknown key (line 2, column 1). Did \
             you mean 'command'? Known keys: {}",
            err.fix.split_once("Known keys: ").unwrap().1
        )
    );

    // Other clients' spelling.
    let err = toml_err("[servers.a]\ncommand = \"x\"\ntype = \"stdio\"\n");
    assert!(err.fix.starts_with("did you mean 'transport'?"), "{err}");
    let err = toml_err("[servers.a]\ncommand = \"x\"\nconnectTimeout = \"1s\"\n");
    assert!(
        err.fix.starts_with("did you mean 'connect_timeout'?"),
        "{err}"
    );

    // Nothing close: no suggestion, but the list.
    let err = toml_err("[servers.a]\ncommand = \"x\"\nzzzzzz = 1\n");
    assert_err(&err, Some("a"), Some("zzzzzz"));
    assert!(
        err.fix
            .starts_with("remove it, or use one of the known keys: 'transport'"),
        "{err}"
    );

    // Inline server tables and dotted keys are located as well.
    let err = toml_err("[servers]\na = { comand = 'x' }\n");
    assert_err(&err, Some("a"), Some("comand"));
    let err = toml_err("servers.a.comand = 'x'\n");
    assert_err(&err, Some("a"), Some("comand"));
}

#[test]
fn unknown_top_level_key() {
    for (doc, key, fix) in [
        (
            "[server.a]\ncommand = \"x\"\n",
            "server",
            "did you mean 'servers'?",
        ),
        (
            "[vars]\ntoken = \"x\"\n",
            "vars",
            "did you mean 'variables'?",
        ),
    ] {
        toml_err_says(
            doc,
            (None, Some(key), Some(1)),
            Is("unknown key"),
            Starts(fix),
        );
    }
}

#[test]
fn unknown_gateway_key_with_suggestion() {
    toml_err_says(
        "[gateway]\nlisen = \"127.0.0.1:9000\"\n",
        (None, Some("gateway.lisen"), Some(2)),
        Is("unknown key"),
        Starts("did you mean 'listen'?"),
    );
    toml_err_says(
        "[gateway]\nshutdown_dealy = \"5s\"\n",
        (None, Some("gateway.shutdown_dealy"), Some(2)),
        Is("unknown key"),
        Starts("did you mean 'shutdown_delay'?"),
    );
    let err = toml_err("[gateway]\nsession_headers = \"X-Token\"\n");
    assert_eq!(
        problem_of(&err),
        "'session_headers' must be a table, not a string"
    );
}

#[test]
fn wrong_types_are_explained_without_values() {
    let cases = [
        (
            "args = \"s3cr3t\"",
            "args",
            "'args' must be an array, not a string",
        ),
        (
            "env = \"s3cr3t\"",
            "env",
            "'env' must be a table, not a string",
        ),
        (
            "env = { KEY = 12345 }",
            "env.KEY",
            "'KEY' must be a string, not a number",
        ),
        (
            "enabled = \"s3cr3t\"",
            "enabled",
            "'enabled' must be true or false, not a string",
        ),
    ];
    for (line, key, problem) in cases {
        let doc = format!("[servers.a]\ncommand = \"x\"\n{line}\n");
        let err = toml_err_says(&doc, (Some("a"), Some(key), Some(3)), Is(problem), Any);
        let msg = err.to_string();
        assert!(!msg.contains("s3cr3t") && !msg.contains("12345"), "{msg}");
    }
    let err = toml_err("[servers.a]\nurl = \"http://h\"\nheaders = \"Bearer s3cr3t\"\n");
    assert_err(&err, Some("a"), Some("headers"));
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(err.fix.contains("headers = { NAME = \"value\" }"), "{err}");

    let err = toml_err("servers = 5\n");
    assert_err(&err, None, Some("servers"));
    assert_eq!(problem_of(&err), "'servers' must be a table, not a number");

    let err = toml_err("[variables]\ntoken = 12345\n");
    assert_err(&err, None, Some("variables.token"));
    assert!(!err.to_string().contains("12345"), "{err}");
}

#[test]
fn toml_syntax_errors_have_line_and_column() {
    let err = toml_err("[servers.a]\ncommand = \"x\"\nurl = http://h\n");
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)));
    assert_eq!(pos_of(&err), Some((3, 7)));
    assert!(err.problem.starts_with("TOML syntax error: "), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{FILE}: TOML syntax error: ")),
        "{err}"
    );

    let err = toml_err("[servers.a]\ncommand = \"x\"\ncommand = \"y\"\n");
    assert_eq!(line_of(&err), Some(3));
    assert!(err.problem.contains("duplicate key"), "{err}");
}

#[test]
fn no_error_message_contains_a_secret() {
    // Every value in these documents is the secret; every document is invalid somewhere.
    let docs = [
        "[servers.a]\ncommand = \"s3cr3t\"\nurl = \"http://s3cr3t@h\"\n",
        "[servers.a]\nurl = \"http://h/?k=s3cr3t\"\nenv = { K = \"s3cr3t\" }\n",
        "[servers.a]\nurl = \"ws://h/?k=s3cr3t\"\n",
        "[servers.a]\nurl = \"s3cr3t\"\n",
        "[servers.a]\nurl = \"http://h\"\nheaders = { A = [\"s3cr3t\"] }\n",
        "[servers.a]\nurl = \"http://h\"\nheaders = { A = \"s3cr3t\", a = \"s3cr3t\" }\n",
        "[servers.a]\ncommand = \"x\"\nargs = [\"s3cr3t\", 1]\n",
        "[variables]\ns3 = [\"s3cr3t\"]\n",
        "variables = \"s3cr3t\"\n",
    ];
    for doc in docs {
        let err = toml_err(doc);
        let msg = err.to_string();
        assert!(!msg.contains("s3cr3t"), "{doc:?} -> {msg}");
        assert!(!format!("{err:?}").contains("s3cr3t"), "{doc:?} -> {err:?}");
    }
}

#[test]
fn load_reads_toml_and_json_files() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("switchboard.toml");
    std::fs::write(&toml_path, EXAMPLE).unwrap();
    let config = Config::load(&toml_path).unwrap();
    assert_eq!(config.source.as_deref(), Some(toml_path.as_path()));
    assert_eq!(config.servers.len(), 3);

    let json_path = dir.path().join("claude_desktop_config.JSON");
    std::fs::write(&json_path, r#"{"mcpServers": {"fs": {"command": "npx"}}}"#).unwrap();
    let config = Config::load(&json_path).unwrap();
    assert_eq!(config.source.as_deref(), Some(json_path.as_path()));
    assert_eq!(
        config.servers["fs"],
        ServerConfig::stdio("fs", "npx", vec![])
    );

    // Any other extension is TOML.
    let other = dir.path().join("config.conf");
    std::fs::write(&other, "[servers.a]\ncommand = \"x\"\n").unwrap();
    assert!(Config::load(&other).unwrap().servers.contains_key("a"));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = Config::load(&missing).unwrap_err();
    assert_eq!(err.file.as_deref(), Some(missing.as_path()));
    assert_eq!(problem_of(&err), "the config file does not exist");
    assert!(err.fix.contains("create it"), "{err}");
    assert!(err.to_string().contains("missing.toml"), "{err}");

    let err = Config::load(dir.path()).unwrap_err();
    assert_eq!(err.file.as_deref(), Some(dir.path()));
    assert!(!err.fix.is_empty());

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[servers.a]\ncomand = \"x\"\n").unwrap();
    let err = Config::load(&bad).unwrap_err();
    assert_eq!(err.file.as_deref(), Some(bad.as_path()));
    assert_eq!(err.key.as_deref(), Some("comand"));

    let not_utf8 = dir.path().join("latin1.toml");
    std::fs::write(&not_utf8, b"# caf\xe9\n").unwrap();
    let err = Config::load(&not_utf8).unwrap_err();
    assert_eq!(problem_of(&err), "the config file is not valid UTF-8 text");
}

#[test]
fn error_without_file_renders_line() {
    let err = Config::from_toml_str("[servers.a]\ncomand = 1\n", None).unwrap_err();
    assert_eq!(err.file, None);
    assert_eq!(
        err.to_string(),
        "server 'a', key 'comand': unknown key (line 2, column 1). \
         Did you mean 'command'? Known keys: 'transport', 'command', 'args', 'env', 'cwd', \
         'url', 'headers', 'connect_timeout', 'list_timeout', 'tool_call_timeout', 'http_connections', 'include', 'exclude', 'tool_overrides', 'session_mode', 'session_idle_timeout', 'max_sessions', 'reconnect', 'enabled', 'on_server_registration_error', 'elicitation', 'protocol_version', 'roots', 'auth'"
    );
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é=x", 2), (1, 2));
    assert_eq!(line_column("abc", 99), (1, 4));
}
