//! Properties of the names of a whole catalogue, with random servers and tools.

use proptest::prelude::*;

use super::*;
use crate::catalog::naming::tests::{CASES, budget, raw_name, separator};

/// Server names that often share a long start (as servers of one vendor do), so the
/// shortened server parts are put to the test, and tool names that often differ only in
/// characters that are replaced, so that collisions happen.
fn servers() -> impl Strategy<Value = BTreeMap<String, BTreeSet<String>>> {
    let server = prop_oneof![
        raw_name(),
        (0usize..3, raw_name()).prop_map(|(i, tail)| {
            let stem = [
                "a".to_string(),
                "vendor_mcp_server_".repeat(4),
                "s".repeat(70),
            ];
            format!("{}{tail}", stem[i])
        }),
    ];
    let tool = prop_oneof![
        raw_name(),
        proptest::sample::select(vec![
            "read.file",
            "read_file",
            "read file",
            "read_file_2",
            "a"
        ])
        .prop_map(str::to_string),
    ];
    proptest::collection::btree_map(server, proptest::collection::btree_set(tool, 1..6), 1..6)
}

fn build_from(
    config: &CatalogConfig,
    servers: &BTreeMap<String, BTreeSet<String>>,
    reverse: bool,
) -> Catalog {
    let mut list: Vec<ServerTools> = servers
        .iter()
        .map(|(name, tools)| {
            let tools: Vec<&str> = tools.iter().map(String::as_str).collect();
            server(name, &tools)
        })
        .collect();
    if reverse {
        list.reverse();
        for s in &mut list {
            s.tools.reverse();
        }
    }
    Catalog::build(config, &list).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_tool_gets_a_safe_unique_name_that_does_not_depend_on_order(
        servers in servers(),
        separator in separator(),
        max_name_length in budget(),
        never in proptest::bool::weighted(0.2),
    ) {
        let config = CatalogConfig {
            separator,
            prefix: if never { PrefixMode::Never } else { PrefixMode::Always },
            max_name_length,
            collisions: CollisionPolicy::Suffix,
        };
        let catalog = build_from(&config, &servers, false);
        let pairs: usize = servers.values().map(BTreeSet::len).sum();
        prop_assert_eq!(catalog.len(), pairs);

        let mut seen = HashSet::new();
        let renamed: HashSet<(String, String)> = catalog
            .diagnostics()
            .iter()
            .filter_map(|d| match d {
                Diagnostic::Collision { other, .. } => {
                    Some((other.server.clone(), other.tool.clone()))
                }
                _ => None,
            })
            .collect();
        for t in catalog.tools() {
            prop_assert!(
                naming::is_valid_name(&t.name, max_name_length),
                "{:?} (max {})", t.name, max_name_length
            );
            prop_assert!(seen.insert(t.name.clone()), "{:?} twice", t.name);
            let back = catalog.resolve(&t.name).unwrap();
            prop_assert_eq!((&back.server, &back.original), (&t.server, &t.original));
            // A tool not renamed for a collision has the name its server and tool
            // alone give it, whatever the other servers are.
            if !renamed.contains(&(t.server.clone(), t.original.clone())) {
                let alone = if never {
                    naming::bare_name(&t.original, max_name_length)
                } else {
                    naming::prefixed_name(
                        &t.server,
                        &config.separator,
                        &t.original,
                        max_name_length,
                    )
                };
                prop_assert_eq!(&t.name, &alone);
            }
        }

        let names = |c: &Catalog| -> Vec<(String, String, String)> {
            c.tools()
                .iter()
                .map(|t| (t.name.clone(), t.server.clone(), t.original.clone()))
                .collect()
        };
        prop_assert_eq!(names(&catalog), names(&build_from(&config, &servers, true)));
    }
}
