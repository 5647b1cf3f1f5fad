//! Tests of the `[discovery]` table.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::Config;

const FILE: &str = "/etc/sb/switchboard.toml";

fn toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Some(Path::new(FILE)))
}

fn discovery(text: &str) -> DiscoveryConfig {
    toml(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .discovery
        .map(|d| *d)
        .expect("a [discovery] table")
}

/// Asserts the error is in the file, at `key`, with a fix and a line; returns its text.
fn err_at(text: &str, key: &str) -> String {
    let err = toml(text).expect_err("expected a ConfigError");
    assert_eq!(err.file.as_deref(), Some(Path::new(FILE)), "{err}");
    assert_eq!(err.server, None, "{err}");
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    assert!(!err.fix.is_empty(), "no fix: {err}");
    assert!(err.problem.contains(" (line "), "no line: {err}");
    err.to_string()
}

/// Asserts each document's error (as [`err_at`]) at its key, saying its part.
fn assert_errs(cases: &[(String, &str, &str)]) {
    for (doc, key, says) in cases {
        let text = err_at(doc, key);
        assert!(text.contains(says), "{doc:?}: {text}");
    }
}

const A365: &str = r#"
[discovery]
kind = "a365"
endpoint = "https://agent365.example.com"
agent_id = "agent-1"
auth_token = "${env:A365_TOKEN}"
"#;

#[test]
fn no_table_is_no_discovery() {
    assert!(toml("").unwrap().discovery.is_none());
}

#[test]
fn a365_table_with_defaults() {
    let d = discovery(A365);
    assert_eq!(
        d.registry,
        RegistryKind::A365 {
            endpoint: "https://agent365.example.com".into(),
            agent_id: "agent-1".into(),
            auth_token: "${env:A365_TOKEN}".into(),
            api: A365Api::V2,
        }
    );
    assert_eq!(d.registry_name(), "a365");
    assert_eq!(d.refresh_interval, None);
    assert_eq!(d.request_timeout, DEFAULT_DISCOVERY_TIMEOUT);
    assert!(d.server_auth.is_empty());
}

#[test]
fn a365_table_with_every_key() {
    let d = discovery(
        r#"
[discovery]
kind = "a365"
endpoint = "http://127.0.0.1:9/base/"
agent_id = "a"
auth_token = "Bearer literal"
api = "v1"
refresh_interval = "5m"
request_timeout = "2s"

[discovery.server_auth."Mail Server"]
Authorization = "Bearer ${env:MAIL}"
X-Extra = "1"

[discovery.server_auth."unknown:alpha.example.com"]
Authorization = "Bearer ${token}"
"#,
    );
    assert!(matches!(
        d.registry,
        RegistryKind::A365 {
            api: A365Api::V1,
            ..
        }
    ));
    assert_eq!(d.refresh_interval, Some(Duration::from_secs(300)));
    assert_eq!(d.request_timeout, Duration::from_secs(2));
    assert_eq!(
        d.server_auth.keys().collect::<Vec<_>>(),
        ["Mail Server", "unknown:alpha.example.com"]
    );
    assert_eq!(d.server_auth["Mail Server"]["X-Extra"], "1");
}

#[test]
fn url_kind_resolves_paths_against_the_config_file() {
    let d = discovery("[discovery]\nkind = \"url\"\nurl = \"servers.json\"\n");
    assert_eq!(
        d.registry,
        RegistryKind::Url {
            url: "/etc/sb/servers.json".into(),
            headers: BTreeMap::new()
        }
    );
    assert_eq!(d.registry_name(), "discovery");
    let d = discovery("[discovery]\nkind = \"url\"\nurl = \"/srv/servers.json\"\n");
    assert!(matches!(&d.registry, RegistryKind::Url { url, .. } if url == "/srv/servers.json"));
    let d = discovery("[discovery]\nkind = \"url\"\nurl = \"file:///srv/s.json\"\n");
    assert!(matches!(&d.registry, RegistryKind::Url { url, .. } if url == "file:///srv/s.json"));
    let d = discovery(
        "[discovery]\nkind = \"url\"\nurl = \"https://r.example.com/mcp.json\"\n\
         headers = { Authorization = \"Bearer ${env:R}\" }\n",
    );
    assert!(
        matches!(&d.registry, RegistryKind::Url { headers, .. } if headers["Authorization"] == "Bearer ${env:R}")
    );
}

#[test]
fn kind_is_required_and_checked() {
    let e = toml("[discovery]\nurl = \"x.json\"\n").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("discovery"));
    assert!(e.to_string().contains("no 'kind'"), "{e}");
    assert!(e.fix.contains("kind = \"a365\""), "{e}");

    let text = err_at("[discovery]\nkind = \"a356\"\n", "discovery.kind");
    assert!(text.contains("unknown discovery kind \"a356\""), "{text}");
    assert!(text.contains("Did you mean \"a365\"?"), "{text}");
}

#[test]
fn missing_and_foreign_keys() {
    assert_errs(&[
        (
            "[discovery]\nkind = \"a365\"\nendpoint = \"https://x\"\nauth_token = \"t\"\n".into(),
            "discovery.agent_id",
            "needs 'agent_id'",
        ),
        (
            format!("{A365}url = \"https://x\"\n"),
            "discovery.url",
            "'url' only applies to kind = \"url\", but this is kind = \"a365\"",
        ),
        (
            "[discovery]\nkind = \"url\"\nurl = \"x.json\"\napi = \"v1\"\n".into(),
            "discovery.api",
            "only applies to kind = \"a365\"",
        ),
        (
            "[discovery]\nkind = \"url\"\n".into(),
            "discovery.url",
            "needs 'url'",
        ),
    ]);
}

#[test]
fn bad_values() {
    let url = "[discovery]\nkind = \"url\"\n";
    assert_errs(&[
        (
            A365.replace("https://agent365.example.com", "ftp://x"),
            "discovery.endpoint",
            "scheme 'ftp'",
        ),
        (
            A365.replace("agent-1", " "),
            "discovery.agent_id",
            "'agent_id' is empty",
        ),
        (
            A365.replace("${env:A365_TOKEN}", "Bearer ${token"),
            "discovery.auth_token",
            "malformed placeholder",
        ),
        (
            format!("{A365}api = \"v3\"\n"),
            "discovery.api",
            "unknown A365 api \"v3\"",
        ),
        (
            format!("{A365}refresh_interval = \"often\"\n"),
            "discovery.refresh_interval",
            "not a duration",
        ),
        (
            format!("{A365}request_timeout = \"0s\"\n"),
            "discovery.request_timeout",
            "is zero",
        ),
        (
            format!("{url}url = \"gopher://x/y\"\n"),
            "discovery.url",
            "scheme 'gopher'",
        ),
        (
            format!("{url}url = \"s.json\"\nheaders = {{ A = \"b\" }}\n"),
            "discovery.headers",
            "'url' is a file",
        ),
        (
            format!("{url}url = \"https://x/s.json\"\nheaders = {{ \"A B\" = \"b\" }}\n"),
            "discovery.headers",
            "not a valid HTTP header name",
        ),
    ]);
}

#[test]
fn server_auth_checks() {
    let mail = format!("{A365}[discovery.server_auth.Mail]\n");
    assert_errs(&[
        (
            format!("{mail}A = \"1\"\n[discovery.server_auth.MAIL]\nA = \"2\"\n"),
            "discovery.server_auth.Mail",
            "differ only in case",
        ),
        (
            format!("{mail}Authorization = \"Bearer ${{x\"\n"),
            "discovery.server_auth.Mail",
            "malformed placeholder",
        ),
        (
            format!("{mail}Authorization = 1\n"),
            "discovery.server_auth.Mail.Authorization",
            "must be a string",
        ),
    ]);
}

#[test]
fn unknown_keys_are_listed() {
    let text = err_at(&format!("{A365}agentid = \"x\"\n"), "discovery.agentid");
    assert!(
        text.contains("key 'discovery.agentid': unknown key"),
        "{text}"
    );
    assert!(text.contains("Did you mean 'agent_id'?"), "{text}");
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let secret = "s3cr3t-value";
    let text = A365.replace("${env:A365_TOKEN}", secret);
    let d = discovery(&format!(
        "{text}[discovery.server_auth.Mail]\nAuthorization = \"{secret}\"\n"
    ));
    let debug = format!("{d:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("Authorization"), "{debug}");
    // A wrong type next to a secret does not echo it.
    let e = toml(&format!("{A365}request_timeout = [\"{secret}\"]\n")).unwrap_err();
    assert!(!e.to_string().contains(secret), "{e}");
}
