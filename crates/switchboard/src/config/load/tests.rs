//! Tests of the TOML loader, validation and `Config::load`.

use std::path::Path;
use std::time::Duration;

use super::*;

const FILE: &str = "/etc/switchboard.toml";

fn toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Some(Path::new(FILE)))
}

fn toml_err(text: &str) -> ConfigError {
    toml(text).expect_err("expected a ConfigError")
}

/// Asserts the error's file, server and key, and returns it for further checks.
fn assert_err(err: &ConfigError, server: Option<&str>, key: Option<&str>) {
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)), "{err}");
    assert_eq!(err.server.as_deref(), server, "{err}");
    assert_eq!(err.key.as_deref(), key, "{err}");
    assert!(!err.fix.is_empty(), "no fix: {err}");
}

/// The problem without its ` (line L, column C)` suffix.
fn problem_of(err: &ConfigError) -> &str {
    err.problem
        .rfind(" (line ")
        .map_or(err.problem.as_str(), |i| &err.problem[..i])
}

/// The (line, column) in the problem's suffix.
fn pos_of(err: &ConfigError) -> Option<(usize, usize)> {
    let rest = &err.problem[err.problem.rfind(" (line ")? + 7..];
    let (line, rest) = rest.split_once(", column ")?;
    let column = rest.strip_suffix(')')?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

fn line_of(err: &ConfigError) -> Option<usize> {
    pos_of(err).map(|(l, _)| l)
}

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
fn defaults() {
    let config = toml("[servers.a]\ncommand = \"x\"\n").unwrap();
    let a = &config.servers["a"];
    assert_eq!(a.transport, TransportKind::Stdio);
    assert!(a.args.is_empty());
    assert!(a.env.is_empty());
    assert_eq!(a.cwd, None);
    assert_eq!(a.url, None);
    assert!(a.headers.is_empty());
    assert_eq!(a.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(a.list_timeout, DEFAULT_LIST_TIMEOUT);
    assert_eq!(a.tool_call_timeout, DEFAULT_TOOL_CALL_TIMEOUT);
    assert!(a.enabled);
}

#[test]
fn transport_inference() {
    let config = toml(
        r#"
        [servers.cmd]
        command = "x"
        [servers.sse]
        url = "http://h/sse"
        [servers.sse_slash]
        url = "http://h/sse/"
        [servers.sse_query]
        url = "https://h/a/sse?token=1"
        [servers.mcp]
        url = "http://h/mcp"
        [servers.root]
        url = "http://h"
        [servers.ssex]
        url = "http://h/ssex"
        "#,
    )
    .unwrap();
    let t = |n: &str| config.servers[n].transport;
    assert_eq!(t("cmd"), TransportKind::Stdio);
    assert_eq!(t("sse"), TransportKind::Sse);
    assert_eq!(t("sse_slash"), TransportKind::Sse);
    assert_eq!(t("sse_query"), TransportKind::Sse);
    assert_eq!(t("mcp"), TransportKind::StreamableHttp);
    assert_eq!(t("root"), TransportKind::StreamableHttp);
    assert_eq!(t("ssex"), TransportKind::StreamableHttp);
}

#[test]
fn explicit_transport_wins_over_the_url() {
    let config = toml(
        r#"
        [servers.a]
        transport = "streamable-http"
        url = "http://h/sse"
        [servers.b]
        transport = "sse"
        url = "http://h/events"
        [servers.c]
        transport = "stdio"
        command = "x"
        "#,
    )
    .unwrap();
    assert_eq!(config.servers["a"].transport, TransportKind::StreamableHttp);
    assert_eq!(config.servers["b"].transport, TransportKind::Sse);
    assert_eq!(config.servers["c"].transport, TransportKind::Stdio);
}

#[test]
fn durations() {
    let config = toml(
        r#"
        [servers.a]
        command = "x"
        connect_timeout = "500ms"
        list_timeout = "1h"
        tool_call_timeout = "1m 30s"
        "#,
    )
    .unwrap();
    let a = &config.servers["a"];
    assert_eq!(a.connect_timeout, Duration::from_millis(500));
    assert_eq!(a.list_timeout, Duration::from_secs(3600));
    assert_eq!(a.tool_call_timeout, Duration::from_secs(90));
}

#[test]
fn bad_durations() {
    for (value, problem) in [
        ("\"soon\"", "'connect_timeout' is not a duration: \"soon\""),
        ("\"30\"", "'connect_timeout' is not a duration: \"30\""),
        ("\"0s\"", "'connect_timeout' is zero"),
        ("30", "'connect_timeout' must be a string, not a number"),
    ] {
        let err = toml_err(&format!(
            "[servers.a]\ncommand = \"x\"\nconnect_timeout = {value}\n"
        ));
        assert_err(&err, Some("a"), Some("connect_timeout"));
        assert_eq!(problem_of(&err), problem, "{value}");
        assert!(
            err.fix.contains(r#"use a duration like "30s" or "2m""#),
            "{err}"
        );
        assert_eq!(line_of(&err), Some(3), "{err}");
    }
}

#[test]
fn bad_transport_lists_the_valid_ones() {
    let err = toml_err("[servers.a]\ntransport = \"websocket\"\nurl = \"http://h\"\n");
    assert_err(&err, Some("a"), Some("transport"));
    assert_eq!(problem_of(&err), "unknown transport \"websocket\"");
    assert_eq!(err.fix, r#"use one of "stdio", "sse", "streamable-http""#);
    assert_eq!(pos_of(&err), Some((2, 1)));

    let err = toml_err("[servers.a]\ntransport = \"http\"\nurl = \"http://h\"\n");
    assert_eq!(
        err.fix,
        r#"did you mean "streamable-http"? Use one of "stdio", "sse", "streamable-http""#
    );
}

#[test]
fn url_or_headers_with_stdio() {
    let err = toml_err("[servers.a]\ntransport = \"stdio\"\ncommand = \"x\"\nurl = \"http://h\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert_eq!(
        problem_of(&err),
        "'url' only applies to URL servers (sse, streamable-http), but this server uses stdio"
    );
    assert_eq!(line_of(&err), Some(4));

    let err = toml_err("[servers.a]\ncommand = \"x\"\nheaders = { A = \"b\" }\n");
    assert_err(&err, Some("a"), Some("headers"));
    assert!(
        err.problem
            .starts_with("'headers' only applies to URL servers")
    );
    assert!(err.fix.contains("remove it"), "{err}");

    // transport = stdio with only a url: the url is the problem, not a missing command.
    let err = toml_err("[servers.a]\ntransport = \"stdio\"\nurl = \"http://h\"\n");
    assert_err(&err, Some("a"), Some("url"));
}

#[test]
fn stdio_keys_with_a_url_transport() {
    for (key, value) in [
        ("command", "\"x\""),
        ("args", "[\"a\"]"),
        ("env", "{ A = \"b\" }"),
        ("cwd", "\"/tmp\""),
    ] {
        let err = toml_err(&format!(
            "[servers.a]\ntransport = \"sse\"\nurl = \"http://h/sse\"\n{key} = {value}\n"
        ));
        assert_err(&err, Some("a"), Some(key));
        assert_eq!(
            err.problem,
            format!(
                "'{key}' only applies to stdio servers, but this server uses sse \
                 (line 4, column 1)"
            )
        );
        assert!(err.fix.contains("'url' and 'headers'"), "{err}");
    }
    // Inferred URL transport.
    let err = toml_err("[servers.a]\nurl = \"http://h/mcp\"\nargs = [\"a\"]\n");
    assert_err(&err, Some("a"), Some("args"));
    assert!(problem_of(&err).ends_with("this server uses streamable-http"));

    // transport = sse without a url.
    let err = toml_err("[servers.a]\ntransport = \"sse\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert_eq!(
        problem_of(&err),
        "transport sse needs 'url', which is missing"
    );

    // transport = stdio without a command.
    let err = toml_err("[servers.a]\ntransport = \"stdio\"\nargs = [\"x\"]\n");
    assert_err(&err, Some("a"), Some("command"));
    assert_eq!(
        problem_of(&err),
        "transport stdio needs 'command', which is missing"
    );
    assert_eq!(line_of(&err), Some(1), "points at the server");
}

#[test]
fn neither_or_both_command_and_url() {
    let err = toml_err("[servers.a]\nenabled = true\n");
    assert_err(&err, Some("a"), None);
    assert_eq!(
        problem_of(&err),
        "the server has neither 'command' nor 'url'"
    );
    assert!(err.fix.contains("add 'command'"), "{err}");
    assert_eq!(line_of(&err), Some(1));

    let err = toml_err("[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert_eq!(problem_of(&err), "the server has both 'command' and 'url'");
    assert!(err.fix.contains("remove one of them"), "{err}");
}

#[test]
fn empty_command() {
    let err = toml_err("[servers.a]\ncommand = \"  \"\n");
    assert_err(&err, Some("a"), Some("command"));
    assert_eq!(problem_of(&err), "'command' is empty");
    assert_eq!(
        err.fix,
        "set it to the program to run, e.g. command = \"npx\""
    );
}

#[test]
fn bad_urls() {
    let err = toml_err("[servers.a]\nurl = \"not a url\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert_eq!(problem_of(&err), "the URL has no scheme");
    assert!(err.fix.contains("http://127.0.0.1:3001/mcp"), "{err}");

    // A host and port without the scheme: say to add it.
    for url in ["127.0.0.1:9", "localhost:3001/mcp"] {
        let err = toml_err(&format!("[servers.a]\nurl = \"{url}\"\n"));
        assert_err(&err, Some("a"), Some("url"));
        assert_eq!(problem_of(&err), "the URL has no scheme");
        assert!(
            err.fix.starts_with("add http:// (or https://) in front"),
            "{err}"
        );
    }

    let err = toml_err("[servers.a]\nurl = \"http://exa mple.com/\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert!(
        problem_of(&err).starts_with("the URL is not valid ("),
        "{err}"
    );

    let err = toml_err("[servers.a]\nurl = \"ftp://user:pw@h/x\"\n");
    assert_err(&err, Some("a"), Some("url"));
    assert_eq!(
        problem_of(&err),
        "the URL uses the scheme 'ftp'; only http and https are supported"
    );
    assert!(!err.to_string().contains("pw"), "{err}");

    let err = toml_err("[servers.a]\nurl = \"http://\"\n");
    assert_err(&err, Some("a"), Some("url"));
}

#[test]
fn server_names() {
    let err = toml_err("[servers.\"my server\"]\ncommand = \"x\"\n");
    assert_err(&err, Some("my server"), None);
    assert_eq!(
        problem_of(&err),
        "the server name contains \" \", which is not allowed"
    );
    assert!(err.fix.contains("prefix the names of their tools"), "{err}");
    assert!(err.fix.contains("[servers.my_server]"), "{err}");
    assert_eq!(line_of(&err), Some(1));

    let err = toml_err("[servers.\"\"]\ncommand = \"x\"\n");
    assert_err(&err, Some(""), None);
    assert_eq!(problem_of(&err), "a server has an empty name");

    let err = toml_err("[servers.\"a.b\"]\ncommand = \"x\"\n");
    assert_err(&err, Some("a.b"), None);

    let ok = toml("[servers.My-server_2]\ncommand = \"x\"\n").unwrap();
    assert!(ok.servers.contains_key("My-server_2"));
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
         'url', 'headers', 'connect_timeout', 'list_timeout', 'tool_call_timeout', 'http_connections', 'include', 'exclude', 'tool_overrides', 'session_mode', 'session_idle_timeout', 'max_sessions', 'reconnect', 'enabled', 'on_server_registration_error'"
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
    let err = toml_err("[server.a]\ncommand = \"x\"\n");
    assert_err(&err, None, Some("server"));
    assert_eq!(problem_of(&err), "unknown key");
    assert!(err.fix.starts_with("did you mean 'servers'?"), "{err}");

    let err = toml_err("[vars]\ntoken = \"x\"\n");
    assert_err(&err, None, Some("vars"));
    assert!(err.fix.starts_with("did you mean 'variables'?"), "{err}");
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
        let err = toml_err(&format!("[servers.a]\ncommand = \"x\"\n{line}\n"));
        assert_err(&err, Some("a"), Some(key));
        assert_eq!(problem_of(&err), problem);
        assert_eq!(line_of(&err), Some(3));
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
fn header_and_env_checks() {
    let err = toml_err("[servers.a]\nurl = \"http://h\"\nheaders = { \"Bad Name\" = \"v\" }\n");
    assert_err(&err, Some("a"), Some("headers"));
    assert_eq!(
        problem_of(&err),
        "\"Bad Name\" is not a valid HTTP header name"
    );

    let err = toml_err(
        "[servers.a]\nurl = \"http://h\"\nheaders = { authorization = \"a\", Authorization = \"b\" }\n",
    );
    assert_err(&err, Some("a"), Some("headers"));
    assert!(err.problem.contains("differ only in case"), "{err}");

    let err = toml_err(
        "[servers.a]\nurl = \"http://h\"\nheaders = { Authorization = \"Bearer s3cr3t ${token\" }\n",
    );
    assert_err(&err, Some("a"), Some("headers"));
    assert!(err.problem.contains("header 'Authorization'"), "{err}");
    assert!(err.problem.contains("malformed placeholder"), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");

    let err = toml_err("[servers.a]\ncommand = \"x\"\nenv = { KEY = \"s3cr3t ${\" }\n");
    assert_err(&err, Some("a"), Some("env"));
    assert!(err.problem.contains("env 'KEY'"), "{err}");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
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
         'url', 'headers', 'connect_timeout', 'list_timeout', 'tool_call_timeout', 'http_connections', 'include', 'exclude', 'tool_overrides', 'session_mode', 'session_idle_timeout', 'max_sessions', 'reconnect', 'enabled', 'on_server_registration_error'"
    );
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é=x", 2), (1, 2));
    assert_eq!(line_column("abc", 99), (1, 4));
}

#[test]
fn http_connections_is_read_for_streamable_http_only() {
    let config = toml(
        "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\nhttp_connections = \"per-request\"\n\
         [servers.b]\nurl = \"http://127.0.0.1:1/mcp\"\n",
    )
    .unwrap();
    assert_eq!(
        config.servers["a"].http_connections,
        HttpConnections::PerRequest
    );
    assert_eq!(
        config.servers["b"].http_connections,
        HttpConnections::KeepAlive
    );

    let err =
        toml_err("[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\nhttp_connections = \"pooled\"\n");
    assert_err(&err, Some("a"), Some("http_connections"));
    assert!(
        err.fix.contains("keep-alive") && err.fix.contains("per-request"),
        "{err}"
    );

    let err = toml_err(
        "[servers.a]\nurl = \"http://127.0.0.1:1/sse\"\nhttp_connections = \"keep-alive\"\n",
    );
    assert_err(&err, Some("a"), Some("http_connections"));
}

// ---------------------------------------------------------------------------------------------
// [catalog], include/exclude, tool_overrides

#[test]
fn catalog_table_and_tool_shaping_keys_load() {
    let config = toml(
        r#"
[catalog]
separator = "-"
prefix = "never"
max_name_length = 128
collisions = "last_wins"

[servers.gh]
url = "http://127.0.0.1:1/mcp"
include = ["search_*", "issue", "search_*"]

[servers.gh.tool_overrides.get_issue]
alias = "issue"
description = "Read one issue."

[servers.gh.tool_overrides.list_prs]
alias = ""
description = ""
"#,
    )
    .unwrap();
    assert_eq!(
        config.catalog,
        CatalogConfig {
            separator: "-".into(),
            prefix: PrefixMode::Never,
            max_name_length: 128,
            collisions: CollisionPolicy::LastWins,
        }
    );
    let gh = &config.servers["gh"];
    assert_eq!(
        gh.tool_filter,
        ToolFilter::Include(vec!["issue".into(), "search_*".into()])
    );
    assert_eq!(
        gh.tool_overrides["get_issue"],
        ToolOverride {
            alias: Some("issue".into()),
            description: Some("Read one issue.".into())
        }
    );
    assert_eq!(gh.tool_overrides["list_prs"], ToolOverride::default());
}

#[test]
fn catalog_defaults() {
    let config = toml("").unwrap();
    assert_eq!(config.catalog.separator, "__");
    assert_eq!(config.catalog.prefix, PrefixMode::Always);
    assert_eq!(config.catalog.max_name_length, 64);
    assert_eq!(config.catalog.collisions, CollisionPolicy::Suffix);
}

#[test]
fn bad_catalog_values_name_the_key_and_the_fix() {
    let err = toml_err("[catalog]\ncollisions = \"sufix\"\n");
    assert_err(&err, None, Some("catalog.collisions"));
    assert!(err.fix.contains("did you mean \"suffix\""), "{err}");
    assert_eq!(line_of(&err), Some(2));

    let err = toml_err("[catalog]\nseparator = \".\"\n");
    assert_err(&err, None, Some("catalog.separator"));

    let err = toml_err("[catalog]\nmax_name_length = 8\n");
    assert_err(&err, None, Some("catalog.max_name_length"));
    assert!(err.problem.contains("16..=1024"), "{err}");

    let err = toml_err("[catalog]\nprefix = \"sometimes\"\n");
    assert_err(&err, None, Some("catalog.prefix"));

    let err = toml_err("[catalog]\nseperator = \"__\"\n");
    assert!(err.fix.contains("did you mean 'separator'"), "{err}");
}

#[test]
fn include_and_exclude_together_is_an_error() {
    let err = toml_err("[servers.a]\ncommand = \"x\"\ninclude = [\"a\"]\nexclude = [\"b\"]\n");
    assert_err(&err, Some("a"), Some("exclude"));
    assert!(err.problem.contains("both set"), "{err}");
}

#[test]
fn alias_problems_are_config_errors() {
    let base = "[servers.a]\ncommand = \"x\"\n";
    let err = toml_err(&format!(
        "{base}[servers.a.tool_overrides.one]\nalias = \"two\"\n[servers.a.tool_overrides.two]\ndescription = \"d\"\n"
    ));
    assert_err(&err, Some("a"), Some("tool_overrides.one.alias"));
    assert!(
        err.problem.contains("the name of the server's tool 'two'"),
        "{err}"
    );
    assert_eq!(line_of(&err), Some(4));

    let err = toml_err(&format!(
        "{base}[servers.a.tool_overrides.one]\nalias = \"same\"\n[servers.a.tool_overrides.two]\nalias = \"same\"\n"
    ));
    assert!(err.problem.contains("both have the alias 'same'"), "{err}");

    let err = toml_err(&format!(
        "{base}[servers.a.tool_overrides.one]\nalias = \"my alias\"\n"
    ));
    assert!(err.fix.contains("alias = \"my_alias\""), "{err}");

    let err = toml_err(&format!(
        "{base}[servers.a.tool_overrides.one]\nalais = \"x\"\n"
    ));
    assert!(err.fix.contains("did you mean 'alias'"), "{err}");
}

#[test]
fn registration_policy_top_level_and_per_server() {
    let config = toml("").unwrap();
    assert_eq!(
        config.registration.on_error,
        RegistrationPolicy::SkipWithWarning
    );
    assert!(config.registration.retry_skipped);

    let config = toml(
        "on_server_registration_error = \"fail_fast\"\nretry_skipped_servers = false\n\
         [servers.a]\ncommand = \"x\"\non_server_registration_error = \"skip_silently\"\n\
         [servers.b]\ncommand = \"y\"\n",
    )
    .unwrap();
    assert_eq!(config.registration.on_error, RegistrationPolicy::FailFast);
    assert!(!config.registration.retry_skipped);
    assert_eq!(
        config.servers["a"].on_registration_error,
        Some(RegistrationPolicy::SkipSilently)
    );
    assert_eq!(config.servers["b"].on_registration_error, None);
}

#[test]
fn bad_registration_policies_name_the_key_and_the_fix() {
    let err = toml_err("on_server_registration_error = \"skip\"\n");
    assert_err(&err, None, Some("on_server_registration_error"));
    assert!(err.fix.contains("skip_with_warning"), "{err}");

    let err =
        toml_err("[servers.a]\ncommand = \"x\"\non_server_registration_error = \"fail-fast\"\n");
    assert_err(&err, Some("a"), Some("on_server_registration_error"));
    assert!(err.fix.contains("did you mean \"fail_fast\""), "{err}");
    assert_eq!(line_of(&err), Some(3));
}
