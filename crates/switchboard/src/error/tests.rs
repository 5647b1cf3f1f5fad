use super::*;

#[test]
fn all_lists_every_class_once_in_order() {
    // Exhaustive: a new class does not compile until it has a place here and in ALL.
    fn position(class: ErrorClass) -> usize {
        match class {
            ErrorClass::Config => 0,
            ErrorClass::Unreachable => 1,
            ErrorClass::Auth => 2,
            ErrorClass::Timeout => 3,
            ErrorClass::Protocol => 4,
            ErrorClass::ToolError => 5,
            ErrorClass::UnknownTool => 6,
            ErrorClass::InvalidArguments => 7,
            ErrorClass::SessionLimit => 8,
            ErrorClass::Closed => 9,
            ErrorClass::Discovery => 10,
            ErrorClass::NotFound => 11,
        }
    }
    for (i, class) in ErrorClass::ALL.iter().enumerate() {
        assert_eq!(position(*class), i, "{class}");
    }
}

#[test]
fn classes_and_deliveries_serialise_as_their_names() {
    for class in ErrorClass::ALL {
        assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        let back: ErrorClass = serde_json::from_value(class.as_str().into()).unwrap();
        assert_eq!(back, class);
    }
    for delivery in [Delivery::NotSent, Delivery::MaybeSent, Delivery::Answered] {
        assert_eq!(serde_json::to_value(delivery).unwrap(), delivery.as_str());
    }
}

#[test]
fn a_report_carries_class_server_delivery_and_retry_after_and_reads_back() {
    let error = Error::MayHaveRun {
        source: Box::new(Error::Http {
            server: "s".into(),
            status: 503,
            retry_after: Some(Duration::from_millis(1500)),
        }),
    };
    let mut report = error.report();
    report.at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_738_314_902_417);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "class": "unreachable",
            "message": error.to_string(),
            "server": "s",
            "delivery": "maybe_sent",
            "may_have_run": true,
            "retry_after_ms": 1500,
            "resource_metadata": null,
            "auth": null,
            "at": "2025-01-31T09:15:02.417Z",
        })
    );
    let back: ErrorReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);

    let wrapped = Error::Registration {
        server: "s".into(),
        source: Box::new(Error::Http {
            server: "s".into(),
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
        }),
    };
    assert_eq!(wrapped.retry_after(), Some(Duration::from_secs(2)));
    let report = Error::NoSuchTool {
        name: "x".into(),
        suggestion: None,
    }
    .report();
    assert_eq!(report.server, None);
    assert!(!report.may_have_run());
}

#[test]
fn challenge_params_are_read_quoted_or_bare() {
    let c = r#"Bearer realm="mcp", error="invalid_token", resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp""#;
    assert_eq!(
        challenge_param(c, "resource_metadata").as_deref(),
        Some("https://a.example/.well-known/oauth-protected-resource/mcp")
    );
    assert_eq!(challenge_param(c, "REALM").as_deref(), Some("mcp"));
    assert_eq!(
        challenge_param(
            "Bearer scope=read, Resource_Metadata=https://x/m",
            "resource_metadata"
        )
        .as_deref(),
        Some("https://x/m")
    );
    assert_eq!(
        challenge_param(r#"Bearer realm="a \"b\" c""#, "realm").as_deref(),
        Some(r#"a "b" c"#)
    );
    assert_eq!(challenge_param("Bearer", "realm"), None);
    // A parameter name inside a quoted value is not a parameter.
    assert_eq!(
        challenge_param(
            r#"Bearer realm="x, resource_metadata=no""#,
            "resource_metadata"
        ),
        None
    );
}

#[test]
fn auth_errors_expose_their_resource_metadata_and_registration_keeps_the_class() {
    let auth = Error::Auth {
        server: "s".into(),
        status: 401,
        challenge: Some(r#"Bearer resource_metadata="https://m/x""#.into()),
    };
    assert_eq!(auth.resource_metadata().as_deref(), Some("https://m/x"));
    let wrapped = Error::Registration {
        server: "s".into(),
        source: Box::new(auth),
    };
    assert_eq!(wrapped.class(), ErrorClass::Auth);
    assert_eq!(wrapped.resource_metadata().as_deref(), Some("https://m/x"));
    let registry = Error::RegistryAuth {
        registry: "a365".into(),
        status: 403,
        challenge: None,
    };
    assert_eq!(
        registry.to_string(),
        "Failed to authenticate with the tooling registry (HTTP 403)"
    );
    assert_eq!(registry.class(), ErrorClass::Auth);
}

#[test]
fn sign_in_failures_report_step_and_server_texts_without_secrets() {
    let error = Error::SignIn {
        server: "api".into(),
        failure: AuthFailure::from_server(
            AuthStep::Token,
            Some("invalid_client"),
            Some("Invalid client credentials"),
            "HTTP 401",
        ),
    };
    assert_eq!(error.class(), ErrorClass::Auth);
    assert_eq!(
        error.to_string(),
        "server 'api': sign-in failed at token: invalid_client (Invalid client credentials)"
    );
    let json = serde_json::to_value(error.report()).unwrap();
    assert_eq!(
        json["auth"],
        serde_json::json!({"step": "token", "error": "invalid_client",
            "error_description": "Invalid client credentials", "detail": "HTTP 401",
            "needs_login": false})
    );
    let back: ErrorReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.auth.unwrap().step, AuthStep::Token);
    // A server's 401 with no sign-in behind it needs a login.
    let refused = Error::Auth {
        server: "api".into(),
        status: 401,
        challenge: None,
    };
    assert!(refused.auth_failure().unwrap().needs_login);
}

#[test]
fn a_backoff_keeps_the_class_of_what_failed_when_it_was_not_connectivity() {
    let backing_off = |last: Option<Error>| Error::BackingOff {
        server: "kit".into(),
        retry_in: Duration::from_millis(900),
        last: last.map(|e| Box::new(e.report())),
    };
    let auth = backing_off(Some(Error::Auth {
        server: "kit".into(),
        status: 401,
        challenge: Some(r#"Bearer resource_metadata="https://kit/.well-known/x""#.into()),
    }));
    assert_eq!(auth.class(), ErrorClass::Auth);
    assert_eq!(auth.retry_after(), Some(Duration::from_millis(900)));
    assert_eq!(auth.delivery(), Delivery::NotSent);
    assert_eq!(
        auth.resource_metadata().as_deref(),
        Some("https://kit/.well-known/x")
    );
    assert!(
        auth.to_string()
            .contains("last error: server 'kit' requires authentication")
    );
    let refused = backing_off(Some(Error::Unreachable {
        server: "kit".into(),
        reason: "connection refused".into(),
    }));
    assert_eq!(refused.class(), ErrorClass::Unreachable);
    let timed_out = backing_off(Some(Error::Timeout {
        server: "kit".into(),
        phase: Phase::Connect,
        after: Duration::from_secs(10),
    }));
    assert_eq!(timed_out.class(), ErrorClass::Unreachable);
    assert_eq!(backing_off(None).class(), ErrorClass::Unreachable);
}
