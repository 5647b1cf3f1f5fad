//! Tests of the JSON shapes (Claude Desktop, Cursor, VS Code).

use std::path::Path;

use super::*;
use crate::config::validate::assign_names;
use crate::config::{Config, ServerConfig, TransportKind};

const FILE: &str = "/home/me/.cursor/mcp.json";

fn json(text: &str) -> Result<Config, ConfigError> {
    Config::from_json_str(text, Some(Path::new(FILE)))
}

fn json_err(text: &str) -> ConfigError {
    json(text).expect_err("expected a ConfigError")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn claude_desktop_stdio() {
    let config = json(
        r#"{
          "mcpServers": {
            "filesystem": {
              "command": "npx",
              "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
              "env": {"LOG_LEVEL": "debug", "PORT": 3000, "VERBOSE": true}
            }
          },
          "globalShortcut": "Ctrl+Space"
        }"#,
    )
    .unwrap();
    assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    let mut expected = ServerConfig::stdio(
        "filesystem",
        "npx",
        strings(&["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]),
    );
    expected.env.insert("LOG_LEVEL".into(), "debug".into());
    expected.env.insert("PORT".into(), "3000".into());
    expected.env.insert("VERBOSE".into(), "true".into());
    assert_eq!(config.servers["filesystem"], expected);
    assert!(config.variables.is_empty());
}

#[test]
fn url_servers_and_type_variants() {
    let config = json(
        r#"{"mcpServers": {
            "inferred_mcp": {"url": "http://h/mcp"},
            "inferred_sse": {"url": "http://h/sse/"},
            "sse": {"type": "sse", "url": "http://h/events"},
            "http": {"type": "http", "url": "http://h/sse"},
            "sh": {"type": "streamable-http", "url": "http://h/x"},
            "camel": {"type": "streamableHttp", "url": "http://h/x"},
            "upper": {"type": "SSE", "url": "http://h/x"},
            "stdio": {"type": "stdio", "command": "x"},
            "windsurf": {"serverUrl": "https://h/mcp"},
            "with_headers": {"url": "https://h/mcp", "headers": {"Authorization": "Bearer ${env:TOKEN}"}}
        }}"#,
    )
    .unwrap();
    use TransportKind::{Sse, Stdio, StreamableHttp};
    for (name, transport) in [
        ("inferred_mcp", StreamableHttp),
        ("inferred_sse", Sse),
        ("sse", Sse),
        ("http", StreamableHttp),
        ("sh", StreamableHttp),
        ("camel", StreamableHttp),
        ("upper", Sse),
        ("stdio", Stdio),
    ] {
        assert_eq!(config.servers[name].transport, transport, "{name}");
    }
    assert_eq!(
        config.servers["windsurf"],
        ServerConfig::url("windsurf", "https://h/mcp")
    );
    let mut expected = ServerConfig::url("with_headers", "https://h/mcp");
    expected
        .headers
        .insert("Authorization".into(), "Bearer ${env:TOKEN}".into());
    assert_eq!(config.servers["with_headers"], expected);
}

#[test]
fn disabled_and_other_clients_keys() {
    let config = json(
        r#"{"mcpServers": {
            "off": {"command": "x", "disabled": true, "autoApprove": ["a"], "alwaysAllow": [],
                    "timeout": 60, "description": "d", "envFile": ".env"},
            "on": {"command": "x", "disabled": false},
            "enabled_false": {"command": "x", "enabled": false},
            "remote": {"url": "http://h/mcp", "env": {}, "args": []}
        }}"#,
    )
    .unwrap();
    assert!(!config.servers["off"].enabled);
    assert_eq!(config.servers["off"].command.as_deref(), Some("x"));
    assert!(config.servers["on"].enabled);
    assert!(!config.servers["enabled_false"].enabled);
    // Empty stdio keys next to a url are tolerated.
    assert_eq!(
        config.servers["remote"],
        ServerConfig::url("remote", "http://h/mcp")
    );
}

#[test]
fn vscode_mcp_json_with_comments() {
    let config = json(
        r#"{
          // VS Code writes JSON with comments
          "inputs": [
            {"type": "promptString", "id": "api-key", "description": "API key", "password": true}
          ],
          "servers": {
            "github": {
              "type": "http",
              "url": "https://api.githubcopilot.com/mcp/",
              "headers": {"Authorization": "Bearer ${input:api-key}"},
            },
            /* a local one */
            "fetch": {
              "type": "stdio",
              "command": "uvx",
              "args": ["mcp-server-fetch"],
              "env": {"API_KEY": "${env:API_KEY}", "URL": "http://x//y"},
              "cwd": "${workspaceFolder}",
              "envFile": "${workspaceFolder}/.env"
            },
          },
        }"#,
    )
    .unwrap();
    let github = &config.servers["github"];
    assert_eq!(github.transport, TransportKind::StreamableHttp);
    assert_eq!(
        github.headers["Authorization"], "Bearer ${input:api-key}",
        "kept as written"
    );
    let fetch = &config.servers["fetch"];
    assert_eq!(fetch.transport, TransportKind::Stdio);
    assert_eq!(fetch.args, strings(&["mcp-server-fetch"]));
    assert_eq!(fetch.env["API_KEY"], "${env:API_KEY}");
    assert_eq!(fetch.env["URL"], "http://x//y", "// inside strings is kept");
    assert_eq!(fetch.cwd.as_deref(), Some(Path::new("${workspaceFolder}")));
}

#[test]
fn vscode_settings_json() {
    let config =
        json(r#"{"editor.fontSize": 14, "mcp": {"servers": {"a": {"command": "x"}}}}"#).unwrap();
    assert_eq!(
        config.servers["a"],
        ServerConfig::stdio("a", "x", Vec::new())
    );
}

#[test]
fn files_without_servers() {
    assert!(json("{}").unwrap().servers.is_empty());
    assert!(json(r#"{"mcpServers": {}}"#).unwrap().servers.is_empty());
    let err = json_err(r#"{"mcpServer": {"a": {"command": "x"}}}"#);
    assert_eq!(err.key.as_deref(), Some("mcpServer"));
    assert_eq!(err.fix, "did you mean 'mcpServers'?");
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)));
}

#[test]
fn impossible_servers_are_rejected() {
    let err = json_err(r#"{"mcpServers": {"my server": {"args": ["x"]}}}"#);
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)));
    assert_eq!(err.server.as_deref(), Some("my server"), "original name");
    assert_eq!(err.key, None);
    assert_eq!(err.problem, "the server has neither 'command' nor 'url'");

    let err = json_err(r#"{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}"#);
    assert_eq!(err.server.as_deref(), Some("a"));
    assert_eq!(err.key.as_deref(), Some("url"));

    let err = json_err(r#"{"mcpServers": {"a": {"type": "sse", "command": "x"}}}"#);
    assert_eq!(err.key.as_deref(), Some("command"));

    let err = json_err(r#"{"mcpServers": {"a": {"url": "file:///s3cr3t"}}}"#);
    assert_eq!(err.key.as_deref(), Some("url"));
    assert!(!err.to_string().contains("s3cr3t"));

    let err = json_err(r#"{"mcpServers": {"a": {"type": "websocket", "url": "http://h"}}}"#);
    assert_eq!(err.key.as_deref(), Some("type"));
    assert_eq!(err.problem, "unknown transport type \"websocket\"");
    assert!(err.fix.contains("\"http\""), "{err}");

    let err = json_err(r#"{"mcpServers": {"a": {"command": ["npx"]}}}"#);
    assert_eq!(err.key.as_deref(), Some("command"));
    assert_eq!(err.problem, "'command' must be a string, not an array");

    let err = json_err(r#"{"mcpServers": {"a": {"command": "x", "env": {"K": {"s3cr3t": 1}}}}}"#);
    assert_eq!(err.key.as_deref(), Some("env"));
    assert_eq!(
        err.problem,
        "the value of 'K' in 'env' must be a string, not an object"
    );

    let err = json_err(r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"A": 5}}}}"#);
    assert_eq!(err.key.as_deref(), Some("headers"));

    let err = json_err(r#"{"mcpServers": {"a": "npx"}}"#);
    assert_eq!(err.server.as_deref(), Some("a"));
    assert_eq!(err.problem, "the server is not a JSON object");

    let err = json_err(r#"{"mcpServers": []}"#);
    assert_eq!(err.key.as_deref(), Some("mcpServers"));

    let err = json_err("[]");
    assert_eq!(
        err.problem,
        "the top level of the file is not a JSON object"
    );
}

#[test]
fn no_error_message_contains_a_secret() {
    let docs = [
        r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"A": "s3cr3t", "a": "s3cr3t"}}}}"#,
        r#"{"mcpServers": {"a": {"url": "http://h", "headers": {"A": "s3cr3t ${"}}}}"#,
        r#"{"mcpServers": {"a": {"command": "x", "env": {"A": ["s3cr3t"]}}}}"#,
        r#"{"mcpServers": {"a": {"url": "s3cr3t"}}}"#,
        r#"{"mcpServers": {"a": {"url": "http://h", "env": {"A": "s3cr3t"}}}}"#,
        r#"{"mcpServers": {"a": {"command": "x", "headers": {"A": "s3cr3t"}}}}"#,
        r#"{"mcpServers": {"a": {"command": "x", "args": ["s3cr3t", null]}}}"#,
        r#"{"mcpServers": {"a": {"command": "x", "disabled": "s3cr3t"}}}"#,
        r#"{"mcpServers": {"a": {"command": "s3cr3t" "#,
    ];
    for doc in docs {
        let err = json_err(doc);
        assert!(!err.to_string().contains("s3cr3t"), "{doc} -> {err}");
        assert!(!format!("{err:?}").contains("s3cr3t"), "{doc} -> {err:?}");
    }
}

#[test]
fn syntax_errors_have_line_and_column() {
    let err = json_err("{\n  \"mcpServers\": {\n    \"a\": {\"command\" \"x\"}\n  }\n}");
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)));
    assert_eq!(
        err.problem,
        "JSON syntax error: expected `:` (line 3, column 21)"
    );
}

#[test]
fn names_are_normalised_and_deduplicated() {
    // (the name in the file, the name it gets); each server's command is its row number.
    let cases = [
        ("my server", "my_server_2"), // 'my server' sorts first
        ("my_server", "my_server"),   // valid names keep their name
        ("my.server", "my_server_3"),
        ("github.com/x", "github_com_x"),
        ("", "server"),
        ("ok-name_1", "ok-name_1"),
    ];
    let servers: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(row, (name, _))| format!("{name:?}: {{\"command\": \"{row}\"}}"))
        .collect();
    let config = json(&format!("{{\"mcpServers\": {{{}}}}}", servers.join(", "))).unwrap();
    let by_command: BTreeMap<&str, &str> = config
        .servers
        .iter()
        .map(|(name, s)| (s.command.as_deref().unwrap(), name.as_str()))
        .collect();
    for (row, (name, expected)) in cases.iter().enumerate() {
        assert_eq!(by_command[row.to_string().as_str()], *expected, "{name:?}");
    }
    for (name, server) in &config.servers {
        assert_eq!(&server.name, name);
    }
}

#[test]
fn names_are_unique_across_server_tables() {
    let config =
        json(r#"{"mcpServers": {"a": {"command": "x"}}, "servers": {"a": {"command": "y"}}}"#)
            .unwrap();
    assert_eq!(config.servers.len(), 2);
    let commands: Vec<_> = config
        .servers
        .values()
        .map(|s| (s.name.as_str(), s.command.as_deref().unwrap()))
        .collect();
    assert_eq!(commands, [("a", "x"), ("a_2", "y")]);
}

#[test]
fn assign_names_is_deterministic() {
    assert_eq!(
        assign_names(["b c", "b_c", "b-c", "b/c"].into_iter()),
        ["b_c_2", "b_c", "b-c", "b_c_3"]
    );
    // A generated suffix never takes a name that is valid in the file.
    assert_eq!(
        assign_names(["x y", "x_y", "x_y_2"].into_iter()),
        ["x_y_3", "x_y", "x_y_2"]
    );
}

#[test]
fn jsonc_stripping_keeps_offsets() {
    let text = "{\"a\": 1, // c\n /* é\n */ \"b\": [1,2,],}";
    let stripped = strip_jsonc(text);
    assert_eq!(stripped.len(), text.len());
    let v: Value = serde_json::from_str(&stripped).unwrap();
    assert_eq!(v, serde_json::json!({"a": 1, "b": [1, 2]}));
    let text = r#"{"s": "a // b /* c */ d,}", "e": "\"//"}"#;
    assert_eq!(strip_jsonc(text), text);
}

#[test]
fn unknown_server_keys_are_warnings_with_the_closest_key() {
    let config = json(
        r#"{"mcpServers": {"my fs": {
            "command": "npx", "arg": ["-y", "server"], "autoApprove": [], "colour": "red"
        }}}"#,
    )
    .unwrap();
    // The typo'd key is not read: the server has no arguments, which is why it is said.
    assert!(config.servers["my_fs"].args.is_empty());
    let mut warnings: Vec<&ConfigError> = config.warnings.iter().collect();
    warnings.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let arg = warnings[0];
    assert_eq!(arg.key.as_deref(), Some("arg"));
    assert_eq!(arg.server.as_deref(), Some("my fs"), "named as in the file");
    assert_eq!(arg.file.as_deref(), Some(Path::new(FILE)));
    assert!(arg.fix.starts_with("did you mean 'args'?"), "{arg}");
    assert_eq!(
        arg.to_string().split(". ").next(),
        Some(format!("{FILE}: server 'my fs', key 'arg': unknown key, ignored").as_str())
    );
    // Nothing close: the known keys instead.
    let colour = warnings[1];
    assert_eq!(colour.key.as_deref(), Some("colour"));
    assert!(
        colour
            .fix
            .starts_with("remove it, or use one of the known keys: 'command'"),
        "{colour}"
    );
}

#[test]
fn other_clients_keys_and_our_shadowed_keys_are_not_warnings() {
    let config = json(
        r#"{"mcpServers": {"a": {
            "url": "http://h/mcp", "serverUrl": "http://other/mcp", "type": "http",
            "transport": "sse", "disabled": false, "enabled": true, "autoApprove": ["x"],
            "alwaysAllow": [], "timeout": 60, "envFile": ".env", "description": "d"
        }}}"#,
    )
    .unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
