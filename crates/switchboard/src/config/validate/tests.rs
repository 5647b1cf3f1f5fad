//! Tests of validating TOML servers and tables (the JSON and `[discovery]` ones are next to
//! their readers).

use std::time::Duration;

use crate::config::test_support::{assert_err, line_of, pos_of, problem_of, toml, toml_err};
use crate::config::*;

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
