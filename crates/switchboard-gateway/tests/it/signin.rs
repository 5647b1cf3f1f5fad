//! `switchboard serve` and OAuth upstreams: it signs in through the program
//! `$SWITCHBOARD_BROWSER` names (nobody is at a browser) and keeps the tokens in the state
//! directory the CLI uses, so the next start (or `switchboard auth login`) needs no sign-in.

use serde_json::{Value, json};
use switchboard_testkit::{AuthKnobs, AuthServer, HttpMode, Knobs, serve_streamable_http};

use crate::common::serve::ServeProcess;
use crate::common::toml_string;

/// The browser: follows the authorization server's redirect to the loopback callback.
const BROWSER: &str = "curl -s -L --noproxy * -o /dev/null %s";

async fn whoami(serve: &ServeProcess) -> Value {
    let answer = reqwest::Client::new()
        .post(serve.at("/v1/tools/kit__whoami/call"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", serve.log());
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_signs_in_through_the_named_browser_and_the_next_start_reuses_the_token() {
    let auth = AuthServer::start(AuthKnobs::default()).await.unwrap();
    let knobs = Knobs {
        oauth: Some(auth.handle()),
        ..Knobs::default()
    };
    let kit = serve_streamable_http(knobs, HttpMode::Stateful)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    // Only a URL, as an mcpServers entry: discovery and registration do the rest.
    std::fs::write(
        &config,
        format!("[servers.kit]\nurl = {}\n", toml_string(&kit.url())),
    )
    .unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();

    let mut first = ServeProcess::start_with_env(
        &config,
        &[
            ("SWITCHBOARD_STATE_DIR", state),
            ("SWITCHBOARD_BROWSER", BROWSER),
        ],
    )
    .await;
    let answer = whoami(&first).await;
    assert_eq!(answer["isError"], json!(false), "{answer}");
    assert!(
        answer.to_string().contains(r#"\"subject\":\"user\""#),
        "{answer}"
    );
    first.signal(libc::SIGTERM);
    first.stopped().await;
    let signed_in = auth.handle().counts();
    assert_eq!(
        signed_in["token_requests"]["authorization_code"],
        json!(1),
        "{signed_in}"
    );

    // No browser this time: the stored token serves the new process.
    let mut second =
        ServeProcess::start_with_env(&config, &[("SWITCHBOARD_STATE_DIR", state)]).await;
    let answer = whoami(&second).await;
    assert_eq!(answer["isError"], json!(false), "{answer}");
    second.signal(libc::SIGTERM);
    second.stopped().await;
    let after = auth.handle().counts();
    assert_eq!(
        after["token_requests"]["authorization_code"],
        json!(1),
        "{after}"
    );
    // No token in the gateway's log.
    assert!(!second.log().contains("at-") && !first.log().contains("at-"));
}
