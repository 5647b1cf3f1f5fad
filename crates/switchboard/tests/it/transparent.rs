//! Transparent resource URIs (`[catalog] prefix = "never"`), against two testkits that list
//! the same resources: the first server (in name order) keeps the servers' own URIs, the
//! second is `SERVER+URI`; reads, template reads and what comes back keep the form the
//! client used. And resource subscriptions, forwarded to the server a URI reads from.

use std::time::Duration;

use serde_json::json;
use switchboard::config::{CatalogConfig, PrefixMode, SessionMode};
use switchboard::{Hub, HubSettings, ResourceRead, ServerConfig, Session};
use switchboard_testkit::offers::{HELLO_TEXT, HELLO_URI, ITEMS_TEMPLATE, PIXEL_URI};
use switchboard_testkit::{HttpMode, Knobs, serve_streamable_http};

use crate::common::testkit_stdio;

/// Upper bound for one step. Not a timing assertion.
const STEP: Duration = Duration::from_secs(30);

async fn transparent_hub() -> Hub {
    let settings = HubSettings {
        catalog: CatalogConfig {
            prefix: PrefixMode::Never,
            ..CatalogConfig::default()
        },
        ..HubSettings::default()
    };
    let servers = [testkit_stdio("a", &[]), testkit_stdio("b", &[])];
    let started = Hub::builder().settings(settings).servers(servers).start();
    let hub = tokio::time::timeout(STEP, started)
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    hub
}

async fn read(hub: &Hub, uri: &str) -> ResourceRead {
    tokio::time::timeout(STEP, hub.read_resource(uri, None))
        .await
        .expect("read within the step bound")
        .unwrap_or_else(|e| panic!("read {uri}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_server_keeps_its_own_uris_and_reads_follow_them() {
    let hub = transparent_hub().await;
    let listing = hub.resources().await;
    assert!(listing.failures.is_empty(), "{:?}", listing.failures);
    let exposed: Vec<(&str, &str)> = listing
        .items
        .iter()
        .map(|r| (r.server.as_str(), r.uri.as_str()))
        .collect();
    let (b_hello, b_pixel) = (format!("b+{HELLO_URI}"), format!("b+{PIXEL_URI}"));
    assert_eq!(
        exposed,
        [
            ("a", HELLO_URI),
            ("a", PIXEL_URI),
            ("b", b_hello.as_str()),
            ("b", b_pixel.as_str())
        ]
    );
    let templates = hub.resource_templates().await.items;
    let templates: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        templates,
        [ITEMS_TEMPLATE.to_owned(), format!("b+{ITEMS_TEMPLATE}")]
    );

    // The server's own URI reads from the first server, and comes back as it was read.
    let hello = read(&hub, HELLO_URI).await;
    assert_eq!(hello.text(), HELLO_TEXT);
    assert_eq!(hello.contents[0].uri, HELLO_URI);
    let pixel = read(&hub, PIXEL_URI).await;
    assert!(pixel.contents[0].blob_len().is_some_and(|n| n > 0));
    // The second server's copy by its SERVER+URI.
    let theirs = read(&hub, &b_hello).await;
    assert_eq!(theirs.contents[0].uri, b_hello);
    assert_eq!(theirs.text(), HELLO_TEXT);

    // A URI no listing names, matched against the templates.
    let item = read(&hub, "testkit://items/7").await;
    assert_eq!(item.text(), "item 7");
    assert_eq!(item.contents[0].uri, "testkit://items/7");
    let item = read(&hub, "b+testkit://items/8").await;
    assert_eq!(item.contents[0].uri, "b+testkit://items/8");
    let missing = hub.read_resource("nothing://here", None).await.unwrap_err();
    assert!(missing.to_string().contains("nothing://here"), "{missing}");

    // A resource link in a tool result keeps the server's own URI.
    // (Tool names are the servers' own too: `a`'s is `mixed`, `b`'s `mixed_2`.)
    let mixed = hub.call("mixed", None, None).await.expect("mixed");
    let links: Vec<&str> = mixed
        .content
        .iter()
        .filter(|c| c.kind() == "resource_link")
        .filter_map(|c| c.as_json()["uri"].as_str())
        .collect();
    assert_eq!(links, [HELLO_URI]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_reaches_the_server_the_uri_reads_from() {
    let kit = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let settings = HubSettings {
        catalog: CatalogConfig {
            prefix: PrefixMode::Never,
            ..CatalogConfig::default()
        },
        ..HubSettings::default()
    };
    // Per session: the subscription goes on the session's own connection.
    let mut server = ServerConfig::url("kit", kit.url());
    server.session_mode = SessionMode::PerSession;
    let started = Hub::builder().settings(settings).server(server).start();
    let hub = tokio::time::timeout(STEP, started).await.unwrap().unwrap();
    let session = Session::new("alice", Default::default());
    let item = "testkit://items/9";
    for uri in [HELLO_URI, item] {
        let subscribed = hub.subscribe_resource_in(Some(&session), uri, None);
        tokio::time::timeout(STEP, subscribed)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(kit.counts()["subscribed"], json!([HELLO_URI, item]));
    let unsubscribed = hub.unsubscribe_resource_in(Some(&session), HELLO_URI, None);
    tokio::time::timeout(STEP, unsubscribed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kit.counts()["subscribed"], json!([item]));
    let unknown = hub
        .subscribe_resource_in(None, "nothing://here", None)
        .await;
    assert!(unknown.is_err());
    assert_eq!(hub.session_count("kit"), 1);
    hub.close().await;
    kit.shutdown().await;
}
