//! Discovery against the testkit's tooling-registry emulator, over real HTTP: the A365 v1 and
//! v2 shapes, every way discovery fails, entries that cannot be registered, naming, and
//! `server_auth`; then `kind = "url"` over HTTP and from files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::Captured;
use serde_json::json;
use switchboard::config::{DiscoveryConfig, ReconnectPolicy, RegistrationPolicy};
use switchboard::discovery::{DISCOVERY_USER_AGENT, Discovery, RegistryClient, discover};
use switchboard::hub::Source;
use switchboard::{Config, Error, ErrorClass, Hub, HubSettings, TransportKind};
use switchboard_testkit::{
    HttpMode, Knobs, RegistryEmulator, RegistryEntry, serve_streamable_http,
};

const TOKEN: &str = "registry-s3cret";

/// The `[discovery]` table of `toml` (a whole config), validated like a file.
fn discovery_config(toml: &str) -> DiscoveryConfig {
    Config::from_toml_str(toml, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .discovery
        .map(|d| *d)
        .expect("[discovery]")
}

fn a365(registry: &RegistryEmulator, api: &str, extra: &str) -> DiscoveryConfig {
    discovery_config(&format!(
        "[discovery]\nkind = \"a365\"\nendpoint = \"{}\"\nagent_id = \"agent-1\"\n\
         auth_token = \"${{token}}\"\napi = \"{api}\"\n{extra}",
        registry.endpoint()
    ))
}

fn vars() -> BTreeMap<String, String> {
    BTreeMap::from([("token".to_string(), TOKEN.to_string())])
}

async fn run(config: &DiscoveryConfig) -> Result<Discovery, Error> {
    discover(config, &vars(), &reqwest::Client::new()).await
}

async fn registry(entries: Vec<RegistryEntry>) -> RegistryEmulator {
    let registry = RegistryEmulator::start().await.expect("start the registry");
    registry.set_servers(entries);
    registry.configure(|k| k.require_token = Some(TOKEN.to_string()));
    registry
}

/// (server name, display name, url) of every server.
fn summary(d: &Discovery) -> Vec<(String, String, String)> {
    d.servers
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                d.display_name(&s.name).unwrap().to_string(),
                s.url.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn v1_lists_servers_by_unique_name() {
    let registry = registry(vec![
        RegistryEntry::v1("Mail", "mcp_MailTools"),
        RegistryEntry::v1("Calendar", "mcp_Calendar"),
    ])
    .await;
    let d = run(&a365(&registry, "v1", "")).await.unwrap();
    let base = registry.endpoint();
    assert_eq!(
        summary(&d),
        [
            (
                "Calendar".into(),
                "Calendar".into(),
                format!("{base}/agents/servers/mcp_Calendar")
            ),
            (
                "Mail".into(),
                "Mail".into(),
                format!("{base}/agents/servers/mcp_MailTools")
            ),
        ]
    );
    assert!(
        d.servers
            .iter()
            .all(|s| s.transport == TransportKind::StreamableHttp && s.headers.is_empty())
    );
    assert!(d.failures.is_empty() && d.unused_auth_keys.is_empty());

    let request = registry.last_request().unwrap();
    assert_eq!(request.path, "/agents/agent-1/mcpServers");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("x-ms-correlation-id"), None);
}

#[tokio::test]
async fn v2_uses_urls_and_headers_and_falls_back_to_the_unique_name() {
    let registry = registry(vec![
        RegistryEntry::with_url("Mail", "https://mail.example.com/mcp").header("X-Tenant", "t1"),
        RegistryEntry {
            audience: Some("api://aud".into()),
            scope: Some("Tools.All".into()),
            publisher: Some("Contoso".into()),
            ..RegistryEntry::v1("Files", "mcp_Files")
        },
    ])
    .await;
    let config = a365(&registry, "v2", "");
    for bare in [false, true] {
        registry.configure(|k| k.v2_bare_array = bare);
        let d = run(&config).await.unwrap();
        assert_eq!(
            summary(&d),
            [
                (
                    "Files".into(),
                    "Files".into(),
                    format!("{}/agents/servers/mcp_Files", registry.endpoint())
                ),
                (
                    "Mail".into(),
                    "Mail".into(),
                    "https://mail.example.com/mcp".into()
                ),
            ],
            "bare array: {bare}"
        );
        assert_eq!(d.servers[1].headers, strings(&[("X-Tenant", "t1")]));
    }

    let requests = registry.requests();
    assert_eq!(requests.len(), 2);
    let mut ids = Vec::new();
    for request in &requests {
        assert_eq!(request.path, "/agents/v2/agent-1/mcpServers");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(request.header("x-ms-agentid"), Some("agent-1"));
        assert_eq!(request.header("user-agent"), Some(DISCOVERY_USER_AGENT));
        let id = request
            .header("x-ms-correlation-id")
            .expect("correlation id");
        assert_eq!(id.len(), 36, "{id}");
        ids.push(id.to_string());
    }
    assert_ne!(ids[0], ids[1], "a fresh correlation id per request");
}

#[tokio::test]
async fn auth_token_comes_from_the_environment() {
    let registry = registry(vec![RegistryEntry::v1("Mail", "m")]).await;
    let config = discovery_config(&format!(
        "[discovery]\nkind = \"a365\"\nendpoint = \"{}/\"\nagent_id = \"agent-1\"\n\
         auth_token = \"${{env:SB_DISCOVERY_TEST_TOKEN}}\"\n",
        registry.endpoint()
    ));
    let err = discover(&config, &BTreeMap::new(), &reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Template { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(err.to_string().contains("SB_DISCOVERY_TEST_TOKEN"), "{err}");
    assert!(
        registry.requests().is_empty(),
        "nothing sent without a token"
    );

    // SAFETY: nextest runs each test in its own process; no other thread reads the env here.
    unsafe { std::env::set_var("SB_DISCOVERY_TEST_TOKEN", format!("Bearer {TOKEN}")) };
    let d = discover(&config, &BTreeMap::new(), &reqwest::Client::new())
        .await
        .unwrap();
    assert_eq!(d.servers.len(), 1);
    assert_eq!(
        registry.last_request().unwrap().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "a token written with its scheme is not prefixed twice"
    );
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_with_the_challenge() {
    let registry = registry(vec![RegistryEntry::v1("Mail", "m")]).await;
    let challenge = r#"Bearer realm="a365", resource_metadata="https://login.example/meta""#;
    registry.configure(|k| {
        k.require_token = Some("another-token".into());
        k.challenge = Some(challenge.into());
    });
    let err = run(&a365(&registry, "v2", "")).await.unwrap_err();
    assert!(
        matches!(&err, Error::RegistryAuth { registry, status: 401, challenge: Some(c) }
            if registry == "a365" && c == challenge),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(
        err.resource_metadata().as_deref(),
        Some("https://login.example/meta")
    );
    let text = err.to_string();
    assert!(
        text.starts_with("Failed to authenticate with the tooling registry (HTTP 401)"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");

    registry.configure(|k| {
        k.require_token = None;
        k.challenge = None;
        k.force_status = Some(403);
    });
    let err = run(&a365(&registry, "v1", "")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RegistryAuth {
                status: 403,
                challenge: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Failed to authenticate with the tooling registry (HTTP 403)"
    );
}

#[tokio::test]
async fn other_statuses_and_malformed_bodies_are_discovery_errors() {
    let registry = registry(vec![RegistryEntry::v1("Mail", "m")]).await;
    let config = a365(&registry, "v2", "");
    for status in [500, 404, 503] {
        registry.configure(|k| k.force_status = Some(status));
        let err = run(&config).await.unwrap_err();
        assert!(
            matches!(&err, Error::Discovery { status: Some(s), .. } if *s == status),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Discovery);
        assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
    }
    registry.configure(|k| {
        k.force_status = None;
        k.malformed = true;
    });
    let err = run(&config).await.unwrap_err();
    assert!(
        matches!(&err, Error::Discovery { status: None, reason, .. } if reason.contains("not valid JSON")),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Discovery);
}

#[tokio::test]
async fn an_unreachable_registry_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = discovery_config(&format!(
        "[discovery]\nkind = \"a365\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
         agent_id = \"a\"\nauth_token = \"{TOKEN}\"\n"
    ));
    let err = run(&config).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unreachable { server, .. } if server == "a365"),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unreachable);
    let text = err.to_string();
    assert!(text.contains("could not connect"), "{text}");
    assert!(
        !text.contains(TOKEN) && !text.contains(&port.to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_registry_times_out_at_the_request_timeout() {
    let registry = registry(vec![RegistryEntry::v1("Mail", "m")]).await;
    registry.configure(|k| k.delay = Duration::from_secs(5));
    let config = a365(&registry, "v2", "request_timeout = \"300ms\"\n");
    let started = Instant::now();
    let err = run(&config).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        matches!(&err, Error::Unreachable { reason, .. } if reason.contains("within 300ms")),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Unreachable);
}

#[tokio::test]
async fn entries_without_a_url_fail_alone() {
    let registry = registry(vec![
        RegistryEntry::with_url("Mail", "https://mail.example.com/mcp"),
        RegistryEntry {
            name: Some("Orphan".into()),
            ..Default::default()
        },
        RegistryEntry::default(),
        RegistryEntry::with_url("Ftp", "ftp://files.example.com/"),
    ])
    .await;
    let d = run(&a365(&registry, "v2", "")).await.unwrap();
    assert_eq!(
        summary(&d),
        [(
            "Mail".into(),
            "Mail".into(),
            "https://mail.example.com/mcp".into()
        )]
    );
    let failed: Vec<&str> = d.failures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(failed, ["Ftp", "Orphan", "unknown"]);
    for (name, err) in &d.failures {
        assert_eq!(err.class(), ErrorClass::Discovery, "{err}");
        assert!(matches!(err, Error::Discovery { status: None, .. }));
        assert!(
            err.to_string().contains(&format!("server '{name}'")),
            "{err}"
        );
    }
    assert!(d.failures[1].1.to_string().contains("no URL"));
}

#[tokio::test]
async fn unnamed_entries_are_named_by_host_and_match_server_auth() {
    let registry = registry(vec![
        RegistryEntry {
            url: Some("https://Alpha.Example.com:8443/mcp".into()),
            ..Default::default()
        },
        RegistryEntry {
            url: Some("https://beta.example.com/mcp".into()),
            ..Default::default()
        },
    ])
    .await;
    let config = a365(
        &registry,
        "v2",
        "[discovery.server_auth.\"UNKNOWN:alpha.example.com\"]\n\
         Authorization = \"Bearer ${env:ALPHA_TOKEN}\"\n",
    );
    let d = run(&config).await.unwrap();
    assert_eq!(
        summary(&d),
        [
            (
                "unknown_alpha_example_com".into(),
                "unknown:alpha.example.com".into(),
                "https://Alpha.Example.com:8443/mcp".into()
            ),
            (
                "unknown_beta_example_com".into(),
                "unknown:beta.example.com".into(),
                "https://beta.example.com/mcp".into()
            ),
        ]
    );
    assert_eq!(
        d.servers[0].headers,
        strings(&[("Authorization", "Bearer ${env:ALPHA_TOKEN}")]),
        "server_auth values stay templates for connect time"
    );
    assert!(d.servers[1].headers.is_empty());
    assert!(d.unused_auth_keys.is_empty());
}

#[tokio::test]
async fn duplicate_display_names_get_the_same_names_in_any_answer_order() {
    let entries = vec![
        RegistryEntry::with_url("Mail", "https://b.example.com/mcp"),
        RegistryEntry::with_url("Mail", "https://a.example.com/mcp"),
        RegistryEntry::with_url("Mail Box", "https://c.example.com/mcp"),
        RegistryEntry::with_url("Mail_Box", "https://d.example.com/mcp"),
    ];
    let registry = registry(entries.clone()).await;
    let config = a365(&registry, "v2", "");
    let first = summary(&run(&config).await.unwrap());
    assert_eq!(
        first,
        [
            (
                "Mail".into(),
                "Mail".into(),
                "https://a.example.com/mcp".into()
            ),
            (
                "Mail_2".into(),
                "Mail".into(),
                "https://b.example.com/mcp".into()
            ),
            (
                "Mail_Box".into(),
                "Mail_Box".into(),
                "https://d.example.com/mcp".into()
            ),
            (
                "Mail_Box_2".into(),
                "Mail Box".into(),
                "https://c.example.com/mcp".into()
            ),
        ]
    );
    let mut reversed = entries;
    reversed.reverse();
    registry.set_servers(reversed);
    assert_eq!(summary(&run(&config).await.unwrap()), first);
}

#[tokio::test]
async fn server_auth_matches_ignoring_case_wins_and_reports_unused_keys_sorted() {
    let registry = registry(vec![
        RegistryEntry::with_url("Mail", "https://mail.example.com/mcp")
            .header("authorization", "Bearer from-registry")
            .header("X-Tenant", "t$1"),
        RegistryEntry::v1("Orphan", "x"),
    ])
    .await;
    registry.configure(|k| k.v2_bare_array = true);
    let config = a365(
        &registry,
        "v2",
        "[discovery.server_auth.MAIL]\nAuthorization = \"Bearer ${mail_token}\"\n\
         [discovery.server_auth.zeta]\nA = \"1\"\n\
         [discovery.server_auth.Beta]\nA = \"1\"\n\
         [discovery.server_auth.orphan]\nA = \"1\"\n",
    );
    let d = run(&config).await.unwrap();
    let mail = d.servers.iter().find(|s| s.name == "Mail").unwrap();
    assert_eq!(
        mail.headers,
        strings(&[
            ("Authorization", "Bearer ${mail_token}"),
            ("X-Tenant", "t$$1"),
        ])
    );
    assert_eq!(d.unused_auth_keys, ["Beta", "zeta"]);
}

#[tokio::test]
async fn kind_url_reads_an_mcp_servers_document_over_http() {
    let registry = registry(vec![
        RegistryEntry::with_url("web", "https://web.example.com/mcp")
            .header("X-Key", "${env:HOME}"),
        RegistryEntry::with_url("legacy", "https://old.example.com/sse"),
        RegistryEntry::v1("no-url", "u"),
    ])
    .await;
    let config = discovery_config(&format!(
        "[discovery]\nkind = \"url\"\nurl = \"{}\"\n\
         headers = {{ Authorization = \"Bearer ${{token}}\" }}\n",
        registry.document_url()
    ));
    assert_eq!(config.registry_name(), "discovery");
    let d = run(&config).await.unwrap();
    let names: Vec<(&str, TransportKind)> = d
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.transport))
        .collect();
    assert_eq!(
        names,
        [
            ("legacy", TransportKind::Sse),
            ("web", TransportKind::StreamableHttp)
        ]
    );
    assert_eq!(
        d.servers[1].headers,
        strings(&[("X-Key", "$${env:HOME}")]),
        "a remote document's values are literals"
    );
    let request = registry.last_request().unwrap();
    assert_eq!(request.path, "/mcpServers.json");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // A remote document may not start programs.
    registry.configure(|k| {
        k.document = Some(serde_json::json!({"mcpServers": {
            "local": {"command": "sh", "args": ["-c", "echo hi"]},
            "web": {"url": "https://web.example.com/mcp"}
        }}))
    });
    let d = run(&config).await.unwrap();
    assert_eq!(d.servers.len(), 1);
    assert_eq!(d.failures.len(), 1);
    assert_eq!(d.failures[0].0, "local");
    assert!(
        d.failures[0].1.to_string().contains("only URL servers"),
        "{}",
        d.failures[0].1
    );

    registry.configure(|k| k.force_status = Some(401));
    let err = run(&config).await.unwrap_err();
    assert!(matches!(
        err,
        Error::RegistryAuth {
            status: 401,
            ref registry,
            ..
        } if registry == "discovery"
    ));
}

#[tokio::test]
async fn kind_url_reads_local_files_with_stdio_servers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("servers.json");
    std::fs::write(
        &file,
        r#"{"mcpServers": {
            "local tools": {"command": "npx", "args": ["-y", "x"], "env": {"K": "${env:HOME}"}},
            "web": {"url": "https://web.example.com/mcp"},
            "broken": {"args": ["nothing to run"]}
        }}"#,
    )
    .unwrap();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(
        &config_path,
        "[discovery]\nkind = \"url\"\nurl = \"servers.json\"\n",
    )
    .unwrap();
    let by_path = Config::load(&config_path)
        .unwrap()
        .discovery
        .map(|d| *d)
        .unwrap();
    let file_url = discovery_config(&format!(
        "[discovery]\nkind = \"url\"\nurl = \"file://{}\"\n",
        file.display()
    ));
    for config in [by_path, file_url] {
        let d = run(&config).await.unwrap();
        let names: Vec<(&str, &str)> = d
            .servers
            .iter()
            .map(|s| (s.name.as_str(), d.display_name(&s.name).unwrap()))
            .collect();
        assert_eq!(names, [("local_tools", "local tools"), ("web", "web")]);
        assert_eq!(d.servers[0].transport, TransportKind::Stdio);
        assert_eq!(
            d.servers[0].env["K"], "${env:HOME}",
            "local files keep templates"
        );
        assert_eq!(d.failures.len(), 1);
        assert_eq!(d.failures[0].0, "broken");
    }

    let missing = discovery_config(&format!(
        "[discovery]\nkind = \"url\"\nurl = \"{}\"\n",
        dir.path().join("absent.json").display()
    ));
    let err = run(&missing).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");

    std::fs::write(&file, "{\"mcpServers\": [").unwrap();
    let err = run(&file_config(&file)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Discovery, "{err}");
}

fn file_config(file: &std::path::Path) -> DiscoveryConfig {
    discovery_config(&format!(
        "[discovery]\nkind = \"url\"\nurl = \"{}\"\n",
        file.display()
    ))
}

/// The glue the hub's config path uses: a [`RegistryClient`] behind a hub [`Source`].
fn hub_source(registry: RegistryClient, refresh: Option<Duration>) -> Source {
    Source {
        name: registry.name().to_string(),
        refresh_interval: refresh,
        retry: ReconnectPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        },
        discover: Arc::new(move || {
            let registry = registry.clone();
            Box::pin(async move { registry.discover().await })
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_registers_discovered_servers_with_server_auth_and_follows_refreshes() {
    let mail = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let files = serve_streamable_http(
        Knobs {
            require_bearer: Some("files-token".into()),
            ..Knobs::default()
        },
        HttpMode::Stateful,
    )
    .await
    .unwrap();
    let registry = registry(vec![
        RegistryEntry::with_url("Mail", &mail.url()),
        RegistryEntry::v1("Orphan", "unused"),
    ])
    .await;
    // Orphan's fallback URL points at the registry itself, which is no MCP server: it is
    // skipped under the policy like any server that cannot be registered.
    let config = Config::from_toml_str(
        &format!(
            "[variables]\ntoken = \"{TOKEN}\"\nfiles_token = \"files-token\"\n\n\
             [discovery]\nkind = \"a365\"\nendpoint = \"{}\"\nagent_id = \"agent-1\"\n\
             auth_token = \"${{token}}\"\n\n\
             [discovery.server_auth.files]\nAuthorization = \"Bearer ${{files_token}}\"\n",
            registry.endpoint()
        ),
        None,
    )
    .unwrap();
    let client = RegistryClient::new(
        *config.discovery.clone().unwrap(),
        config.variables.clone(),
        reqwest::Client::new(),
    );
    let mut settings = HubSettings::default();
    settings.registration.on_error = RegistrationPolicy::SkipWithWarning;
    // The config's [variables] fill the server_auth templates; the source replaces its
    // registry with a faster refresh.
    let hub = Hub::builder()
        .config(&config)
        .settings(settings)
        .source(hub_source(client, Some(Duration::from_millis(200))))
        .start()
        .await
        .expect("start");
    assert_eq!(hub.servers(), ["Mail".to_string()]);
    let echo = hub
        .call(
            "Mail__echo",
            json!({"message": "hi"}).as_object().cloned(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(echo.text(), "hi");
    assert_eq!(hub.health().sources[0].name, "a365");
    assert!(hub.health().sources[0].ok);

    // The registry now lists Files (which needs the server_auth token) instead of Mail.
    registry.set_servers(vec![RegistryEntry::with_url("Files", &files.url())]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub.servers() != ["Files".to_string()] {
        assert!(Instant::now() < deadline, "servers: {:?}", hub.servers());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let echo = hub
        .call(
            "Files__echo",
            json!({"message": "ok"}).as_object().cloned(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(echo.text(), "ok");
    assert!(hub.catalog().get("Mail__echo").is_none());
    hub.close().await;
}

#[tokio::test]
async fn unused_keys_are_warned_once_and_no_log_line_holds_a_secret() {
    let registry = registry(vec![
        RegistryEntry::with_url("Mail", "https://mail.example.com/mcp?key=q-s3cret")
            .header("X-Api-Key", "header-s3cret"),
    ])
    .await;
    let config = a365(
        &registry,
        "v2",
        "[discovery.server_auth.zeta]\nA = \"auth-s3cret\"\n\
         [discovery.server_auth.Beta]\nA = \"auth-s3cret\"\n\
         [discovery.server_auth.mail]\nAuthorization = \"auth-s3cret\"\n",
    );
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let d = run(&config).await.unwrap();
    registry.configure(|k| k.force_status = Some(401));
    run(&config).await.unwrap_err();
    drop(guard);
    assert_eq!(d.unused_auth_keys, ["Beta", "zeta"]);

    let logs = captured.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains(r#"["Beta", "zeta"]"#), "{logs}");
    assert!(logs.contains("discovered MCP servers"), "{logs}");
    for secret in [TOKEN, "q-s3cret", "header-s3cret", "auth-s3cret"] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn a_registry_client_warns_about_unused_keys_once_across_refreshes() {
    let registry = registry(vec![RegistryEntry::v1("Mail", "mail")]).await;
    let config = a365(
        &registry,
        "v1",
        "[discovery.server_auth.nobody]\nA = \"x\"\n",
    );
    let client = RegistryClient::new(config, vars(), reqwest::Client::new());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    for _ in 0..3 {
        client.discover().await.unwrap();
    }
    drop(guard);
    let logs = captured.text();
    let warnings = logs.lines().filter(|l| l.contains(" WARN ")).count();
    assert_eq!(warnings, 1, "{logs}");
}
