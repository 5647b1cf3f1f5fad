use serde_json::json;

use super::*;
use crate::JsonObject;

fn tool(name: &str) -> Tool {
    Tool::new(
        name.to_string(),
        format!("{name} does things"),
        Arc::new(JsonObject::new()),
    )
}

fn server(name: &str, tools: &[&str]) -> ServerTools {
    ServerTools {
        server: name.to_string(),
        tools: tools.iter().map(|t| tool(t)).collect(),
        overrides: BTreeMap::new(),
        filter: ToolFilter::All,
        private: false,
    }
}

fn names(catalog: &Catalog) -> Vec<&str> {
    let mut names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_str()).collect();
    names.sort();
    names
}

fn build(servers: &[ServerTools]) -> Catalog {
    Catalog::build(&CatalogConfig::default(), servers).unwrap()
}

fn with_policy(policy: CollisionPolicy) -> CatalogConfig {
    CatalogConfig {
        prefix: PrefixMode::Never,
        collisions: policy,
        ..CatalogConfig::default()
    }
}

fn over(alias: &str, description: &str) -> ToolOverride {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    ToolOverride {
        alias: some(alias),
        description: some(description),
    }
}

#[test]
fn names_are_prefixed_and_resolve_to_server_and_original() {
    let catalog = build(&[server("alpha", &["echo"]), server("beta", &["echo", "add"])]);
    assert_eq!(names(&catalog), ["alpha__echo", "beta__add", "beta__echo"]);
    let t = catalog.resolve("beta__echo").unwrap();
    assert_eq!((t.server.as_str(), t.original.as_str()), ("beta", "echo"));
    assert!(catalog.diagnostics().is_empty());
}

#[test]
fn separator_is_configurable() {
    let config = CatalogConfig {
        separator: "-".into(),
        ..CatalogConfig::default()
    };
    let catalog = Catalog::build(&config, &[server("alpha", &["echo"])]).unwrap();
    assert_eq!(names(&catalog), ["alpha-echo"]);
}

#[test]
fn the_servers_a_name_needs_are_those_whose_prefix_it_has() {
    let servers = ["alpha", "alpha__x", "beta", "b"];
    let config = CatalogConfig::default();
    let owners = |name| servers_for_name(&config, name, servers);
    assert_eq!(owners("alpha__echo"), ["alpha"]);
    assert_eq!(owners("alpha__x__echo"), ["alpha", "alpha__x"]);
    assert_eq!(owners("beta__echo"), ["beta"]);
    assert!(owners("echo").is_empty());
    assert!(owners("gamma__echo").is_empty());
    assert!(owners("beta__").is_empty(), "no tool after the prefix");
    // Every exposed name of a built catalogue names its own server.
    let catalog = build(&[server("alpha", &["echo", "a b"]), server("beta", &["echo"])]);
    for tool in catalog.tools() {
        assert!(
            owners(&tool.name).contains(&tool.server.as_str()),
            "{}",
            tool.name
        );
    }

    let dashed = CatalogConfig {
        separator: "-".into(),
        ..CatalogConfig::default()
    };
    assert_eq!(servers_for_name(&dashed, "beta-echo", servers), ["beta"]);
    let never = CatalogConfig {
        prefix: PrefixMode::Never,
        ..CatalogConfig::default()
    };
    assert!(servers_for_name(&never, "alpha__echo", servers).is_empty());
}

#[test]
fn unsafe_characters_are_replaced_and_every_name_is_provider_safe() {
    let catalog = build(&[server("fs", &["read.file", "list dir", "ünï/code", "ok"])]);
    assert_eq!(
        names(&catalog),
        ["fs___n__code", "fs__list_dir", "fs__ok", "fs__read_file"]
    );
    let t = catalog.resolve("fs__read_file").unwrap();
    assert_eq!(t.original, "read.file");
}

#[test]
fn a_70_character_server_name_gives_valid_unique_readable_names() {
    let long = "s".repeat(70);
    let catalog = build(&[server(
        &long,
        &["echo", "add", "get-env", "a".repeat(80).as_str()],
    )]);
    let got = names(&catalog);
    assert_eq!(got.len(), 4);
    for name in &got {
        assert!(naming::is_valid_name(name, 64), "{name}");
    }
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), 4);
    for t in catalog.tools() {
        assert_eq!(catalog.resolve(&t.name).unwrap().original, t.original);
    }
    // The server part is shortened, so the tool's own name stays readable.
    let exposed = |tool: &str| {
        let t = catalog.tools().iter().find(|t| t.original == tool).unwrap();
        t.name.clone()
    };
    assert!(exposed("echo").ends_with("__echo"), "{}", exposed("echo"));
    assert!(exposed("add").ends_with("__add"), "{}", exposed("add"));
    assert!(
        exposed("get-env").ends_with("__get-env"),
        "{}",
        exposed("get-env")
    );
    assert!(exposed("echo").starts_with("ssss"), "{}", exposed("echo"));
    // Fixed values: exposed names must not change between releases.
    assert_eq!(exposed("echo"), format!("{}_1a8a07__echo", "s".repeat(51)));
    // A tool name too long by itself keeps its start.
    let a = exposed(&"a".repeat(80));
    assert!(a.contains(&format!("__{}", "a".repeat(40))), "{a}");
}

#[test]
fn the_length_limit_is_configurable() {
    let long = "s".repeat(70);
    let config = CatalogConfig {
        max_name_length: 128,
        ..CatalogConfig::default()
    };
    let catalog = Catalog::build(&config, &[server(&long, &["echo"])]).unwrap();
    assert_eq!(names(&catalog), [format!("{long}__echo")]);
}

#[test]
fn collisions_are_checked_after_normalisation_and_the_exact_name_keeps_its_name() {
    let catalog = build(&[server("fs", &["read.file", "read_file"])]);
    assert_eq!(names(&catalog), ["fs__read_file", "fs__read_file_2"]);
    assert_eq!(
        catalog.resolve("fs__read_file").unwrap().original,
        "read_file"
    );
    assert_eq!(
        catalog.resolve("fs__read_file_2").unwrap().original,
        "read.file"
    );
    assert_eq!(
        catalog.diagnostics(),
        [Diagnostic::Collision {
            name: "fs__read_file".into(),
            kept: ToolRef {
                server: "fs".into(),
                tool: "read_file".into()
            },
            other: ToolRef {
                server: "fs".into(),
                tool: "read.file".into()
            },
            renamed_to: Some("fs__read_file_2".into()),
        }]
    );
}

#[test]
fn suffixes_never_take_an_existing_name() {
    let catalog = Catalog::build(
        &with_policy(CollisionPolicy::Suffix),
        &[server("a", &["echo", "echo_2"]), server("b", &["echo"])],
    )
    .unwrap();
    assert_eq!(names(&catalog), ["echo", "echo_2", "echo_3"]);
    assert_eq!(catalog.resolve("echo_2").unwrap().server, "a");
    assert_eq!(catalog.resolve("echo_3").unwrap().server, "b");
}

#[test]
fn names_do_not_depend_on_the_order_servers_answered_in() {
    let servers = vec![
        server("zeta", &["search", "get.item"]),
        server("alpha", &["get_item", "search"]),
        server("mid", &["search"]),
    ];
    let config = with_policy(CollisionPolicy::Suffix);
    let forward = Catalog::build(&config, &servers).unwrap();
    let mut reversed = servers.clone();
    reversed.reverse();
    for s in &mut reversed {
        s.tools.reverse();
    }
    let backward = Catalog::build(&config, &reversed).unwrap();
    let pairs = |c: &Catalog| -> Vec<(String, String, String)> {
        c.tools()
            .iter()
            .map(|t| (t.name.clone(), t.server.clone(), t.original.clone()))
            .collect()
    };
    assert_eq!(pairs(&forward), pairs(&backward));
    assert_eq!(forward.resolve("search").unwrap().server, "alpha");
    assert_eq!(forward.resolve("search_2").unwrap().server, "mid");
    assert_eq!(forward.resolve("search_3").unwrap().server, "zeta");
}

#[test]
fn first_wins_and_last_wins_keep_one_and_report_the_other() {
    let servers = [server("a", &["echo"]), server("b", &["echo"])];
    let first = Catalog::build(&with_policy(CollisionPolicy::FirstWins), &servers).unwrap();
    assert_eq!(names(&first), ["echo"]);
    assert_eq!(first.resolve("echo").unwrap().server, "a");
    let last = Catalog::build(&with_policy(CollisionPolicy::LastWins), &servers).unwrap();
    assert_eq!(last.resolve("echo").unwrap().server, "b");
    let text = last.diagnostics()[0].to_string();
    assert!(
        text.contains("server 'a'") && text.contains("server 'b'"),
        "{text}"
    );
    assert!(matches!(
        &last.diagnostics()[0],
        Diagnostic::Collision {
            renamed_to: None,
            ..
        }
    ));
}

#[test]
fn the_error_policy_refuses_to_build_and_names_both_servers() {
    let servers = [server("a", &["echo", "x"]), server("b", &["echo"])];
    let err = Catalog::build(&with_policy(CollisionPolicy::Error), &servers).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Config);
    let text = err.to_string();
    assert!(
        text.contains("'echo'") && text.contains("server 'a'") && text.contains("server 'b'"),
        "{text}"
    );
    assert!(text.contains("catalog.collisions"), "{text}");
}

#[test]
fn overrides_set_alias_and_description_and_calls_keep_the_original() {
    let mut s = server("gh", &["search_repositories", "get_issue"]);
    s.overrides.insert(
        "search_repositories".into(),
        over("find_repos", "Find repositories."),
    );
    s.overrides.insert("get_issue".into(), over("", ""));
    let catalog = build(&[s]);
    assert_eq!(names(&catalog), ["gh__find_repos", "gh__get_issue"]);
    let t = catalog.resolve("gh__find_repos").unwrap();
    assert_eq!(t.original, "search_repositories");
    assert_eq!(t.alias.as_deref(), Some("find_repos"));
    assert_eq!(t.description, "Find repositories.");
    assert_eq!(
        catalog.resolve("gh__get_issue").unwrap().description,
        "get_issue does things"
    );
}

#[test]
fn overrides_for_unknown_tools_are_reported_once_and_not_applied() {
    let mut s = server("gh", &["get_issue"]);
    s.overrides.insert("nope".into(), over("x", ""));
    s.overrides.insert("gone".into(), over("", "d"));
    let catalog = build(&[s]);
    assert_eq!(names(&catalog), ["gh__get_issue"]);
    assert_eq!(
        catalog.diagnostics(),
        [Diagnostic::UnknownOverrides {
            server: "gh".into(),
            tools: vec!["gone".into(), "nope".into()],
        }]
    );
}

#[test]
fn an_alias_taking_another_listed_tools_name_leaves_the_server_out() {
    let mut s = server("gh", &["a", "b"]);
    s.overrides.insert("a".into(), over("b", ""));
    let catalog = build(&[s, server("ok", &["echo"])]);
    assert_eq!(names(&catalog), ["ok__echo"]);
    assert_eq!(
        catalog.diagnostics(),
        [Diagnostic::AliasClash {
            server: "gh".into(),
            tool: "a".into(),
            alias: "b".into()
        }]
    );
}

#[test]
fn include_matches_names_aliases_and_globs_and_reports_unmatched_patterns() {
    let mut s = server(
        "gh",
        &["search_repos", "search_code", "get_issue", "delete_repo"],
    );
    s.overrides.insert("get_issue".into(), over("issue", ""));
    s.filter = ToolFilter::Include(vec!["search_*".into(), "issue".into(), "typo".into()]);
    let catalog = build(&[s]);
    assert_eq!(
        names(&catalog),
        ["gh__issue", "gh__search_code", "gh__search_repos"]
    );
    assert_eq!(
        catalog.diagnostics(),
        [Diagnostic::UnmatchedFilter {
            server: "gh".into(),
            key: "include",
            patterns: vec!["typo".into()],
        }]
    );
}

#[test]
fn exclude_hides_matches_and_excluded_tools_do_not_collide() {
    let mut a = server("a", &["echo", "delete_all"]);
    a.filter = ToolFilter::Exclude(vec!["delete_*".into(), "echo".into()]);
    let catalog = Catalog::build(
        &with_policy(CollisionPolicy::Error),
        &[a, server("b", &["echo"])],
    )
    .unwrap();
    assert_eq!(names(&catalog), ["echo"]);
    assert_eq!(catalog.resolve("echo").unwrap().server, "b");
}

#[test]
fn unknown_names_get_a_suggestion() {
    let catalog = build(&[server("alpha", &["echo"])]);
    match catalog.resolve("alpha__ecoh") {
        Err(Error::NoSuchTool { suggestion, .. }) => {
            assert_eq!(suggestion.as_deref(), Some("alpha__echo"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn annotations_stay_available_in_our_own_type() {
    let mut s = server("fs", &["read", "write"]);
    s.tools[0].annotations = Some(
        rmcp::model::ToolAnnotations::new()
            .read_only(true)
            .destructive(false),
    );
    let catalog = build(&[s]);
    let read = catalog.resolve("fs__read").unwrap();
    let annotations = read.annotations.clone().unwrap();
    assert_eq!(
        annotations,
        ToolAnnotations {
            read_only: Some(true),
            destructive: Some(false),
            ..ToolAnnotations::default()
        }
    );
    assert!(read.repeatable());
    assert!(!catalog.resolve("fs__write").unwrap().repeatable());
}

#[test]
fn an_exposed_tool_serialises_as_a_tools_json_row_and_reads_back() {
    let mut s = server("fs", &["read", "plain"]);
    s.tools[0].title = Some("Read".into());
    s.tools[0].annotations = Some(rmcp::model::ToolAnnotations::new().read_only(true));
    s.tools[0].input_schema = Arc::new(
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
            .as_object()
            .unwrap()
            .clone(),
    );
    s.tools[0].output_schema = Some(Arc::new(
        json!({"type": "object"}).as_object().unwrap().clone(),
    ));
    s.overrides.insert(
        "read".into(),
        ToolOverride {
            alias: Some("cat".into()),
            description: None,
        },
    );
    let catalog = build(&[s]);
    let read = catalog.resolve("fs__cat").unwrap();
    let row = serde_json::to_value(&*read).unwrap();
    assert_eq!(
        row,
        json!({
            "name": "fs__cat",
            "server": "fs",
            "tool": "read",
            "alias": "cat",
            "title": "Read",
            "description": "read does things",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            "output_schema": {"type": "object"},
            "annotations": {"read_only": true},
        })
    );
    let plain = serde_json::to_value(&*catalog.resolve("fs__plain").unwrap()).unwrap();
    let mut keys: Vec<&str> = plain
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["description", "input_schema", "name", "server", "tool"]
    );

    // Read back, it checks arguments like the original.
    let back: ExposedTool = serde_json::from_value(row.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), row);
    assert!(back.check_arguments(Some(JsonObject::new())).is_err());
    let ok = json!({"path": "/x"}).as_object().cloned();
    assert_eq!(back.check_arguments(ok.clone()).unwrap(), ok);
}

#[test]
fn lookup_takes_exposed_names_then_a_unique_own_name_or_alias() {
    let mut a = server("a", &["echo", "only_a", "read"]);
    a.overrides.insert(
        "read".into(),
        ToolOverride {
            alias: Some("cat".into()),
            description: None,
        },
    );
    let catalog = build(&[a, server("b", &["echo"])]);
    let name = |lookup: Lookup| match lookup {
        Lookup::Exposed(t) => format!("exposed {}", t.name),
        Lookup::ByToolName(t) => format!("by tool name {}", t.name),
        Lookup::NotFound { error, same_name } => {
            let names: Vec<&str> = same_name.iter().map(|t| t.name.as_str()).collect();
            format!("{error} / {}", names.join(","))
        }
    };
    assert_eq!(name(catalog.lookup("a__echo")), "exposed a__echo");
    assert_eq!(name(catalog.lookup("only_a")), "by tool name a__only_a");
    assert_eq!(name(catalog.lookup("cat")), "by tool name a__cat");
    assert_eq!(name(catalog.lookup("read")), "by tool name a__cat");
    assert_eq!(
        name(catalog.lookup("echo")),
        "no tool is named 'echo' (did you mean 'a__echo'?) / a__echo,b__echo"
    );
    assert_eq!(
        name(catalog.lookup("a__ecoh")),
        "no tool is named 'a__ecoh' (did you mean 'a__echo'?) / "
    );
    assert_eq!(
        catalog.lookup("only_a").into_result().unwrap().name,
        "a__only_a"
    );
    assert_eq!(
        catalog
            .lookup("nothing_like_it")
            .into_result()
            .unwrap_err()
            .class(),
        crate::ErrorClass::UnknownTool
    );
}

#[test]
fn argument_checks_run_through_the_catalogue() {
    let mut s = server("k", &["echo"]);
    s.tools[0].input_schema = Arc::new(
        json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let catalog = build(&[s]);
    let t = catalog.resolve("k__echo").unwrap();
    let ok = json!({"message": "hi"}).as_object().cloned();
    assert_eq!(t.check_arguments(ok.clone()).unwrap(), ok);
    let err = t
        .check_arguments(json!({"message": 5}).as_object().cloned())
        .unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::InvalidArguments);
    assert!(err.to_string().contains("/message"), "{err}");
}

mod exports;
mod properties;
