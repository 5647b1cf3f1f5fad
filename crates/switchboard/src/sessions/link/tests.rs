use super::*;

/// The resend rules of the module docs, one failure at a time (the flows over a real
/// connection are in `sessions/tests.rs`).
#[test]
fn what_follows_a_failed_send() {
    let dial: Dial = Arc::new(|_, _| Box::pin(async { unreachable!("no dial here") }));
    let server = Arc::new(ServerConfig::stdio("s", "cmd", Vec::new()));
    let link = Link::new(server.clone(), None, dial);
    let name = || "s".to_string();
    let http = |status, retry_after| Error::MayHaveRun {
        source: Box::new(Error::Http {
            server: name(),
            status,
            retry_after,
        }),
    };
    let never_left = Error::Unreachable {
        server: name(),
        reason: "refused".into(),
    };
    let lost = Error::ConnectionLost {
        server: name(),
        phase: Phase::CallTool,
    };
    let timeout = Error::Timeout {
        server: name(),
        phase: Phase::CallTool,
        after: Duration::from_secs(1),
    };
    let auth = Error::Auth {
        server: name(),
        status: 401,
        challenge: None,
    };
    let answered = Error::Tool {
        server: name(),
        tool: "t".into(),
        message: "no".into(),
        code: None,
        data: None,
    };
    let backoff = Next::Pause(server.reconnect.backoff(1));
    // (error, connection alive, tool repeatable, sends so far) -> what follows
    let cases = [
        // Never left: sent again on a new connection, whatever the tool.
        (&never_left, true, false, 1, Next::Reconnect),
        // ... but not past MAX_SENDS.
        (&never_left, true, true, MAX_SENDS, Next::Fail),
        // A refusal would be refused again.
        (&auth, true, true, 1, Next::Fail),
        // May have run: only a repeatable tool goes again.
        (&lost, false, false, 1, Next::Fail),
        (&lost, false, true, 1, Next::Reconnect),
        (&http(500, None), true, false, 1, Next::Fail),
        (&http(500, None), true, true, 1, backoff),
        (
            &http(503, Some(Duration::from_secs(2))),
            true,
            true,
            1,
            Next::Pause(Duration::from_secs(2)),
        ),
        // A timed-out call is never sent again, nor one the server answered.
        (&timeout, true, true, 1, Next::Fail),
        (&answered, true, true, 1, Next::Fail),
    ];
    for (error, alive, repeatable, sends, expected) in cases {
        assert_eq!(
            link.after_failure(error, alive, repeatable, sends),
            expected,
            "{error} (alive {alive}, repeatable {repeatable}, sends {sends})"
        );
    }
}
