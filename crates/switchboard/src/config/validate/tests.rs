//! Tests of validating TOML servers and tables (the JSON and `[discovery]` ones are next to
//! their readers).

use std::time::Duration;

use crate::config::test_support::Text::{Any, Ends, Has, Is, Starts};
use crate::config::test_support::{pos_of, problem_of, toml, toml_err, toml_err_says};
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

/// Reads one server per case (`[servers.NAME]` with the case's keys) in one document and
/// asserts each server's transport; a failure names the server.
fn assert_transports(cases: &[(&str, &str, TransportKind)]) {
    let doc: String = cases
        .iter()
        .map(|(name, keys, _)| format!("[servers.{name}]\n{keys}\n"))
        .collect();
    let config = toml(&doc).unwrap();
    for (name, _, transport) in cases {
        assert_eq!(config.servers[*name].transport, *transport, "{name}");
    }
}

#[test]
fn transport_inference() {
    use TransportKind::{Sse, Stdio, StreamableHttp};
    assert_transports(&[
        ("cmd", "command = \"x\"", Stdio),
        ("sse", "url = \"http://h/sse\"", Sse),
        ("sse_slash", "url = \"http://h/sse/\"", Sse),
        ("sse_query", "url = \"https://h/a/sse?token=1\"", Sse),
        ("mcp", "url = \"http://h/mcp\"", StreamableHttp),
        ("root", "url = \"http://h\"", StreamableHttp),
        ("ssex", "url = \"http://h/ssex\"", StreamableHttp),
    ]);
}

#[test]
fn explicit_transport_wins_over_the_url() {
    use TransportKind::{Sse, Stdio, StreamableHttp};
    assert_transports(&[
        (
            "a",
            "transport = \"streamable-http\"\nurl = \"http://h/sse\"",
            StreamableHttp,
        ),
        ("b", "transport = \"sse\"\nurl = \"http://h/events\"", Sse),
        ("c", "transport = \"stdio\"\ncommand = \"x\"", Stdio),
    ]);
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
        toml_err_says(
            &format!("[servers.a]\ncommand = \"x\"\nconnect_timeout = {value}\n"),
            (Some("a"), Some("connect_timeout"), Some(3)),
            Is(problem),
            Has(r#"use a duration like "30s" or "2m""#),
        );
    }
}

#[test]
fn bad_transport_lists_the_valid_ones() {
    let err = toml_err_says(
        "[servers.a]\ntransport = \"websocket\"\nurl = \"http://h\"\n",
        (Some("a"), Some("transport"), None),
        Is("unknown transport \"websocket\""),
        Is(r#"use one of "stdio", "sse", "streamable-http""#),
    );
    assert_eq!(pos_of(&err), Some((2, 1)));

    let err = toml_err("[servers.a]\ntransport = \"http\"\nurl = \"http://h\"\n");
    assert_eq!(
        err.fix,
        r#"did you mean "streamable-http"? Use one of "stdio", "sse", "streamable-http""#
    );
}

#[test]
fn url_or_headers_with_stdio() {
    let cases = [
        (
            "[servers.a]\ntransport = \"stdio\"\ncommand = \"x\"\nurl = \"http://h\"\n",
            "url",
            Is(
                "'url' only applies to URL servers (sse, streamable-http), but this server uses stdio",
            ),
            Any,
            Some(4),
        ),
        (
            "[servers.a]\ncommand = \"x\"\nheaders = { A = \"b\" }\n",
            "headers",
            Starts("'headers' only applies to URL servers"),
            Has("remove it"),
            None,
        ),
        // transport = stdio with only a url: the url is the problem, not a missing command.
        (
            "[servers.a]\ntransport = \"stdio\"\nurl = \"http://h\"\n",
            "url",
            Any,
            Any,
            None,
        ),
    ];
    for (doc, key, problem, fix, line) in cases {
        toml_err_says(doc, (Some("a"), Some(key), line), problem, fix);
    }
}

#[test]
fn stdio_keys_with_a_url_transport() {
    for (key, value) in [
        ("command", "\"x\""),
        ("args", "[\"a\"]"),
        ("env", "{ A = \"b\" }"),
        ("cwd", "\"/tmp\""),
    ] {
        let err = toml_err_says(
            &format!("[servers.a]\ntransport = \"sse\"\nurl = \"http://h/sse\"\n{key} = {value}\n"),
            (Some("a"), Some(key), None),
            Any,
            Has("'url' and 'headers'"),
        );
        assert_eq!(
            err.problem,
            format!(
                "'{key}' only applies to stdio servers, but this server uses sse \
                 (line 4, column 1)"
            )
        );
    }
    let cases = [
        // Inferred URL transport.
        (
            "[servers.a]\nurl = \"http://h/mcp\"\nargs = [\"a\"]\n",
            "args",
            Ends("this server uses streamable-http"),
            None,
        ),
        // transport = sse without a url.
        (
            "[servers.a]\ntransport = \"sse\"\n",
            "url",
            Is("transport sse needs 'url', which is missing"),
            None,
        ),
        // transport = stdio without a command: the line is the server's.
        (
            "[servers.a]\ntransport = \"stdio\"\nargs = [\"x\"]\n",
            "command",
            Is("transport stdio needs 'command', which is missing"),
            Some(1),
        ),
    ];
    for (doc, key, problem, line) in cases {
        toml_err_says(doc, (Some("a"), Some(key), line), problem, Any);
    }
}

#[test]
fn neither_or_both_command_and_url() {
    toml_err_says(
        "[servers.a]\nenabled = true\n",
        (Some("a"), None, Some(1)),
        Is("the server has neither 'command' nor 'url'"),
        Has("add 'command'"),
    );

    toml_err_says(
        "[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
        (Some("a"), Some("url"), None),
        Is("the server has both 'command' and 'url'"),
        Has("remove one of them"),
    );
}

#[test]
fn empty_command() {
    toml_err_says(
        "[servers.a]\ncommand = \"  \"\n",
        (Some("a"), Some("command"), None),
        Is("'command' is empty"),
        Is("set it to the program to run, e.g. command = \"npx\""),
    );
}

#[test]
fn bad_urls() {
    // A host and port without the scheme: say to add it.
    let add_scheme = Starts("add http:// (or https://) in front");
    for (url, problem, fix) in [
        (
            "not a url",
            Is("the URL has no scheme"),
            Has("http://127.0.0.1:3001/mcp"),
        ),
        ("127.0.0.1:9", Is("the URL has no scheme"), add_scheme),
        (
            "localhost:3001/mcp",
            Is("the URL has no scheme"),
            add_scheme,
        ),
        (
            "http://exa mple.com/",
            Starts("the URL is not valid ("),
            Any,
        ),
        (
            "ftp://user:pw@h/x",
            Is("the URL uses the scheme 'ftp'; only http and https are supported"),
            Any,
        ),
        ("http://", Any, Any),
    ] {
        let doc = format!("[servers.a]\nurl = \"{url}\"\n");
        let err = toml_err_says(&doc, (Some("a"), Some("url"), None), problem, fix);
        assert!(
            !err.to_string().contains("pw"),
            "the password is not shown: {err}"
        );
    }
}

#[test]
fn server_names() {
    let err = toml_err_says(
        "[servers.\"my server\"]\ncommand = \"x\"\n",
        (Some("my server"), None, Some(1)),
        Is("the server name contains \" \", which is not allowed"),
        Has("prefix the names of their tools"),
    );
    assert!(err.fix.contains("[servers.my_server]"), "{err}");

    for (name, problem) in [("", Is("a server has an empty name")), ("a.b", Any)] {
        let doc = format!("[servers.{name:?}]\ncommand = \"x\"\n");
        toml_err_says(&doc, (Some(name), None, None), problem, Any);
    }

    let ok = toml("[servers.My-server_2]\ncommand = \"x\"\n").unwrap();
    assert!(ok.servers.contains_key("My-server_2"));
}

#[test]
fn header_and_env_checks() {
    let url = "[servers.a]\nurl = \"http://h\"\n";
    let cases = [
        (
            format!("{url}headers = {{ \"Bad Name\" = \"v\" }}\n"),
            "headers",
            vec![Is("\"Bad Name\" is not a valid HTTP header name")],
        ),
        (
            format!("{url}headers = {{ authorization = \"a\", Authorization = \"b\" }}\n"),
            "headers",
            vec![Has("differ only in case")],
        ),
        (
            format!("{url}headers = {{ Authorization = \"Bearer s3cr3t ${{token\" }}\n"),
            "headers",
            vec![Has("header 'Authorization'"), Has("malformed placeholder")],
        ),
        (
            "[servers.a]\ncommand = \"x\"\nenv = { KEY = \"s3cr3t ${\" }\n".to_string(),
            "env",
            vec![Has("env 'KEY'")],
        ),
    ];
    for (doc, key, problem) in cases {
        let err = toml_err_says(&doc, (Some("a"), Some(key), None), Any, Any);
        for text in problem {
            text.check(problem_of(&err), &doc);
        }
        assert!(!err.to_string().contains("s3cr3t"), "{doc:?}: {err}");
    }
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

    // An unknown value, and any value for an SSE server.
    for (url, value, fixes) in [
        ("mcp", "pooled", vec!["keep-alive", "per-request"]),
        ("sse", "keep-alive", vec![]),
    ] {
        let doc = format!(
            "[servers.a]\nurl = \"http://127.0.0.1:1/{url}\"\nhttp_connections = \"{value}\"\n"
        );
        let err = toml_err_says(&doc, (Some("a"), Some("http_connections"), None), Any, Any);
        for fix in fixes {
            assert!(err.fix.contains(fix), "{doc:?}: {err}");
        }
    }
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
    for (line, key, problem, fix) in [
        (
            "collisions = \"sufix\"",
            "collisions",
            Any,
            Has("did you mean \"suffix\""),
        ),
        ("separator = \".\"", "separator", Any, Any),
        (
            "max_name_length = 8",
            "max_name_length",
            Has("16..=1024"),
            Any,
        ),
        ("prefix = \"sometimes\"", "prefix", Any, Any),
        (
            "seperator = \"__\"",
            "seperator",
            Any,
            Has("did you mean 'separator'"),
        ),
    ] {
        let doc = format!("[catalog]\n{line}\n");
        let key = format!("catalog.{key}");
        toml_err_says(&doc, (None, Some(&key), Some(2)), problem, fix);
    }
}

#[test]
fn include_and_exclude_together_is_an_error() {
    toml_err_says(
        "[servers.a]\ncommand = \"x\"\ninclude = [\"a\"]\nexclude = [\"b\"]\n",
        (Some("a"), Some("exclude"), None),
        Has("both set"),
        Any,
    );
}

#[test]
fn alias_problems_are_config_errors() {
    let one = "[servers.a.tool_overrides.one]";
    let two = "[servers.a.tool_overrides.two]";
    for (overrides, key, line, problem, fix) in [
        (
            format!("{one}\nalias = \"two\"\n{two}\ndescription = \"d\"\n"),
            "one.alias",
            4,
            Has("the name of the server's tool 'two'"),
            Any,
        ),
        (
            format!("{one}\nalias = \"same\"\n{two}\nalias = \"same\"\n"),
            "two.alias",
            6,
            Has("both have the alias 'same'"),
            Any,
        ),
        (
            format!("{one}\nalias = \"my alias\"\n"),
            "one.alias",
            4,
            Any,
            Has("alias = \"my_alias\""),
        ),
        (
            format!("{one}\nalais = \"x\"\n"),
            "one.alais",
            4,
            Any,
            Has("did you mean 'alias'"),
        ),
    ] {
        let doc = format!("[servers.a]\ncommand = \"x\"\n{overrides}");
        let key = format!("tool_overrides.{key}");
        toml_err_says(&doc, (Some("a"), Some(&key), Some(line)), problem, fix);
    }
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
    let key = Some("on_server_registration_error");
    toml_err_says(
        "on_server_registration_error = \"skip\"\n",
        (None, key, None),
        Any,
        Has("skip_with_warning"),
    );
    toml_err_says(
        "[servers.a]\ncommand = \"x\"\non_server_registration_error = \"fail-fast\"\n",
        (Some("a"), key, Some(3)),
        Any,
        Has("did you mean \"fail_fast\""),
    );
}
