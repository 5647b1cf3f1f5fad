//! Unit tests of the naming rules and of answer parsing.

use super::parse::{self, Entry};
use super::*;
use crate::config::A365Api;

#[test]
fn display_names_follow_the_a365_rule() {
    assert_eq!(
        display_name(Some("Mail"), Some("https://x.example/m")),
        "Mail"
    );
    assert_eq!(
        display_name(None, Some("https://Alpha.Example.com:8443/mcp")),
        "unknown:alpha.example.com"
    );
    assert_eq!(
        display_name(Some(""), Some("http://user:pw@Beta.example.com/x")),
        "unknown:beta.example.com"
    );
    assert_eq!(display_name(None, Some("http://[::1]/x")), "unknown:::1");
    assert_eq!(
        display_name(None, Some("http://10.0.0.1:80/")),
        "unknown:10.0.0.1"
    );
    assert_eq!(display_name(None, Some("not a url")), "unknown");
    assert_eq!(display_name(None, None), "unknown");
}

#[test]
fn server_names_are_valid_unique_and_keep_valid_display_names() {
    assert_eq!(
        server_names(&[
            "Mail",
            "Mail",
            "a:b",
            "a_b",
            "unknown:alpha.example.com",
            "x y",
            "x_y"
        ]),
        [
            "Mail",
            "Mail_2",
            "a_b_2",
            "a_b",
            "unknown_alpha_example_com",
            "x_y_2",
            "x_y"
        ]
    );
    // A generated suffix never takes a name that is already used.
    assert_eq!(
        server_names(&["a b", "a_b", "a_b_2"]),
        ["a_b_3", "a_b", "a_b_2"]
    );
    assert_eq!(server_names(&[""]), ["server"]);
}

fn names(d: &Discovery) -> Vec<(&str, &str)> {
    d.servers
        .iter()
        .map(|s| (s.name.as_str(), d.display_names[&s.name].as_str()))
        .collect()
}

#[test]
fn duplicate_display_names_are_named_the_same_whatever_the_answer_order() {
    let body = |order: &[usize]| {
        let items = [
            r#"{"mcpServerName":"Mail","url":"https://b.example/mcp"}"#,
            r#"{"mcpServerName":"Mail","url":"https://a.example/mcp"}"#,
            r#"{"mcpServerName":"mail","url":"https://c.example/mcp"}"#,
        ];
        let picked: Vec<&str> = order.iter().map(|&i| items[i]).collect();
        format!("[{}]", picked.join(","))
    };
    let run = |order: &[usize]| {
        let entries = parse::a365(&body(order), A365Api::V2, "https://r.example").unwrap();
        let d = assemble("a365", entries, &BTreeMap::new());
        d.servers
            .iter()
            .map(|s| (s.name.clone(), s.url.clone().unwrap()))
            .collect::<Vec<_>>()
    };
    let first = run(&[0, 1, 2]);
    assert_eq!(
        first,
        [
            ("Mail".to_string(), "https://a.example/mcp".to_string()),
            ("Mail_2".to_string(), "https://b.example/mcp".to_string()),
            ("mail".to_string(), "https://c.example/mcp".to_string()),
        ]
    );
    assert_eq!(run(&[2, 1, 0]), first);
    assert_eq!(run(&[1, 2, 0]), first);
}

#[test]
fn v1_ignores_urls_and_uses_the_unique_name() {
    let body = r#"{"mcpServers":[
        {"mcpServerName":"Mail","mcpServerUniqueName":"mcp_mail tools","url":"https://ignored"},
        {"mcpServerName":"NoUnique"}
    ]}"#;
    let entries = parse::a365(body, A365Api::V1, "https://r.example/base/").unwrap();
    let d = assemble("a365", entries, &BTreeMap::new());
    assert_eq!(names(&d), [("Mail", "Mail")]);
    assert_eq!(
        d.servers[0].url.as_deref(),
        Some("https://r.example/base/agents/servers/mcp_mail%20tools")
    );
    assert_eq!(d.failures.len(), 1);
    assert_eq!(d.failures[0].0, "NoUnique");
}

#[test]
fn registry_header_values_are_literals_and_server_auth_wins() {
    let body = r#"[{"mcpServerName":"Mail","url":"https://m.example/",
        "headers":{"authorization":"Bearer reg$token","X-Ref":"${env:HOME}"}}]"#;
    let entries = parse::a365(body, A365Api::V2, "https://r.example").unwrap();
    let auth = BTreeMap::from([(
        "MAIL".to_string(),
        BTreeMap::from([(
            "Authorization".to_string(),
            "Bearer ${env:MAIL}".to_string(),
        )]),
    )]);
    let d = assemble("a365", entries, &auth);
    let headers = &d.servers[0].headers;
    assert_eq!(
        headers,
        &BTreeMap::from([
            (
                "Authorization".to_string(),
                "Bearer ${env:MAIL}".to_string()
            ),
            ("X-Ref".to_string(), "$${env:HOME}".to_string()),
        ])
    );
    assert!(d.unused_auth_keys.is_empty());
}

#[test]
fn malformed_answers_and_bad_entries() {
    for (body, why) in [
        ("not json", "not valid JSON"),
        ("{\"servers\":[]}", "no 'mcpServers' list"),
        ("{\"mcpServers\":{}}", "'mcpServers' is not an array"),
        ("42", "not a JSON object or array"),
    ] {
        let e = parse::a365(body, A365Api::V2, "https://r.example").unwrap_err();
        assert!(e.contains(why), "{body}: {e}");
    }
    let body = r#"[1, {"mcpServerName":"F","url":"ftp://x/y"},
        {"mcpServerName":"H","url":"https://h/","headers":{"bad name":"v"}},
        {"mcpServerName":"G","url":"https://g/","headers":[1]}]"#;
    let entries: Vec<Entry> = parse::a365(body, A365Api::V2, "https://r.example").unwrap();
    let reasons: Vec<(String, String)> = entries
        .into_iter()
        .map(|e| (e.display_name, e.server.unwrap_err()))
        .collect();
    assert_eq!(reasons[0].0, "unknown");
    assert!(
        reasons[1].1.contains("not a valid http(s) URL"),
        "{reasons:?}"
    );
    assert!(reasons[2].1.contains("invalid header name"), "{reasons:?}");
    assert!(reasons[3].1.contains("not a JSON object"), "{reasons:?}");
}

#[test]
fn remote_documents_cannot_start_programs_or_expand_templates() {
    let body = r#"{"mcpServers":{
        "local":{"command":"rm","args":["-rf","/"]},
        "web":{"url":"https://w.example/mcp","headers":{"X-Key":"${env:HOME}"}},
        "broken":{"url":"ftp://x"}
    }}"#;
    let remote = assemble(
        "discovery",
        parse::document(body, true).unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(names(&remote), [("web", "web")]);
    assert_eq!(remote.servers[0].headers["X-Key"], "$${env:HOME}");
    let failed: Vec<&str> = remote.failures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(failed, ["broken", "local"]);
    assert!(
        remote.failures[1]
            .1
            .to_string()
            .contains("only URL servers")
    );

    let local = assemble(
        "discovery",
        parse::document(body, false).unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(names(&local), [("local", "local"), ("web", "web")]);
    assert_eq!(local.servers[1].headers["X-Key"], "${env:HOME}");
}

#[test]
fn documents_may_be_jsonc_or_a365_shaped() {
    let jsonc = "// servers\n{\"mcpServers\": {\"a b\": {\"url\": \"https://a/\"},}}";
    let d = assemble(
        "discovery",
        parse::document(jsonc, false).unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(names(&d), [("a_b", "a_b")]);
    let list = r#"{"mcpServers":[{"url":"https://Z.example/m"},{"mcpServerUniqueName":"u"}]}"#;
    let d = assemble(
        "discovery",
        parse::document(list, true).unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(names(&d), [("unknown_z_example", "unknown:z.example")]);
    assert_eq!(d.failures.len(), 1, "no endpoint, so no fallback URL");
    let e = parse::document("[1,", true).unwrap_err();
    assert!(e.contains("JSON syntax error"), "{e}");
}
