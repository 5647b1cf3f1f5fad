//! Tests of header and env templating.

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fake_env(name: &str) -> Option<String> {
    match name {
        "HOME_DIR" => Some("/home/me".into()),
        "EMPTY" => Some(String::new()),
        "MULTI" => Some("a\nb".into()),
        _ => None,
    }
}

fn r(template: &str, config: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    render_with(
        "header 'X'",
        template,
        Variables::from_config(config),
        &fake_env,
    )
}

/// Asserts that each template renders to its text with `config` variables.
fn assert_renders(config: &BTreeMap<String, String>, cases: &[(&str, &str)]) {
    for (template, expected) in cases {
        assert_eq!(r(template, config).as_deref(), Ok(*expected), "{template}");
    }
}

#[test]
fn both_placeholder_syntaxes() {
    let vars = map(&[("token", "abc"), ("user_1", "u")]);
    assert_renders(
        &vars,
        &[
            ("Bearer ${token}", "Bearer abc"),
            ("Bearer $token", "Bearer abc"),
            ("$user_1:${token}!", "u:abc!"),
            ("${token}${token}", "abcabc"),
            ("plain", "plain"),
            ("", ""),
        ],
    );
}

#[test]
fn dollar_name_is_the_longest_name() {
    let vars = map(&[("token", "abc"), ("token_x", "T")]);
    assert_renders(
        &vars,
        &[
            ("$token_x", "T"),
            ("${token}_x", "abc_x"),
            ("$token-x", "abc-x"),
        ],
    );
}

#[test]
fn double_dollar_is_literal() {
    let vars = map(&[("token", "abc")]);
    assert_renders(
        &vars,
        &[
            ("$$", "$"),
            ("a$$b", "a$b"),
            ("$${token}", "${token}"),
            ("$$$token", "$abc"),
            ("$$$$", "$$"),
        ],
    );
}

#[test]
fn lone_dollar_is_literal() {
    let vars = BTreeMap::new();
    assert_renders(
        &vars,
        &[
            ("pa$ word", "pa$ word"),
            ("secret$", "secret$"),
            ("$1", "$1"),
            ("$", "$"),
            ("a$-b$.c", "a$-b$.c"),
        ],
    );
}

#[test]
fn substituted_values_are_not_rescanned() {
    let vars = map(&[("a", "${b}"), ("b", "no")]);
    assert_eq!(r("${a}", &vars).unwrap(), "${b}");
    let vars = map(&[("a", "$$")]);
    assert_eq!(r("$a", &vars).unwrap(), "$$");
}

#[test]
fn malformed_braces_are_syntax_errors_with_position() {
    let vars = map(&[("token", "abc")]);
    let syntax = |position| TemplateError::Syntax {
        field: "header 'X'".into(),
        position,
    };
    assert_eq!(r("Bearer ${token", &vars), Err(syntax(7)));
    assert_eq!(r("${", &vars), Err(syntax(0)));
    assert_eq!(r("ab${}", &vars), Err(syntax(2)));
    assert_eq!(r("${env:}", &vars), Err(syntax(0)));
    assert_eq!(r("x ${a${token}}", &vars), Err(syntax(2)));
    assert_eq!(r("${a{b}", &vars), Err(syntax(0)));
    assert_eq!(check_syntax("f", "ok ${token} $x $$ $"), Ok(()));
    assert!(check_syntax("f", "${oops").is_err());
}

#[test]
fn env_placeholders() {
    let vars = BTreeMap::new();
    assert_renders(
        &vars,
        &[
            ("${env:HOME_DIR}/x", "/home/me/x"),
            ("[${env:EMPTY}]", "[]"),
        ],
    );
    assert_eq!(
        r("${env:NOPE}", &vars),
        Err(TemplateError::UnsetEnv {
            field: "header 'X'".into(),
            variable: "NOPE".into()
        })
    );
    // `$env` without braces is an ordinary variable named `env`.
    let vars = map(&[("env", "E")]);
    assert_eq!(r("$env:HOME_DIR", &vars).unwrap(), "E:HOME_DIR");
}

#[test]
fn env_from_the_real_process_environment() {
    // PATH is set wherever tests run; a variable with this name is not.
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        render("env 'P'", "${env:PATH}", Variables::default()).unwrap(),
        path
    );
    assert_eq!(
        render(
            "env 'P'",
            "${env:SWITCHBOARD_SURELY_UNSET_7F3A}",
            Variables::default()
        ),
        Err(TemplateError::UnsetEnv {
            field: "env 'P'".into(),
            variable: "SWITCHBOARD_SURELY_UNSET_7F3A".into()
        })
    );
}

#[test]
fn unknown_variable_names_field_and_variable() {
    let headers = map(&[("Authorization", "Bearer ${token}")]);
    let err = render_headers_with(&headers, Variables::default(), &fake_env).unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnknownVariable {
            field: "header 'Authorization'".into(),
            variable: "token".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("header 'Authorization'"), "{msg}");
    assert!(msg.contains("'token'"), "{msg}");
    assert_eq!(
        r("$missing", &BTreeMap::new()),
        Err(TemplateError::UnknownVariable {
            field: "header 'X'".into(),
            variable: "missing".into()
        })
    );
    // VS Code inputs are not supported: reported as an unknown variable `input:ID`.
    assert_eq!(
        r("${input:api_key}", &BTreeMap::new()),
        Err(TemplateError::UnknownVariable {
            field: "header 'X'".into(),
            variable: "input:api_key".into()
        })
    );
}

#[test]
fn connection_variables_override_config_variables() {
    let config = map(&[("token", "from-config"), ("org", "acme")]);
    let conn = map(&[("token", "from-connection")]);
    let vars = Variables::from_config(&config).with_connection(&conn);
    assert_eq!(
        render_with("f", "${token}/$org", vars, &fake_env).unwrap(),
        "from-connection/acme"
    );
    let only_conn = Variables {
        connection: Some(&conn),
        config: None,
    };
    assert_eq!(
        render_with("f", "$token", only_conn, &fake_env).unwrap(),
        "from-connection"
    );
}

#[test]
fn line_breaks_after_substitution_are_rejected() {
    let vars = map(&[("cr", "a\rb"), ("lf", "a\nb")]);
    let lb = || TemplateError::LineBreak {
        field: "header 'X'".into(),
    };
    assert_eq!(r("x $cr", &vars), Err(lb()));
    assert_eq!(r("${lf}", &vars), Err(lb()));
    assert_eq!(r("${env:MULTI}", &vars), Err(lb()));
    assert_eq!(r("literal\r\n", &vars), Err(lb()));
    let env = map(&[("KEY", "x\ny")]);
    assert_eq!(
        render_env_with(&env, Variables::default(), &fake_env),
        Err(TemplateError::LineBreak {
            field: "env 'KEY'".into()
        })
    );
}

#[test]
fn header_dropping_rules() {
    let vars = map(&[("token", ""), ("blank", "   ")]);
    let dropped = map(&[
        ("A-Empty", ""),
        ("B-Spaces", "  "),
        ("C-Bearer", "Bearer"),
        ("D-Bearer-Space", "  Bearer  "),
        ("E-Bearer-Empty-Token", "Bearer ${token}"),
        ("F-Blank-Var", "$blank"),
    ]);
    // Sent verbatim (their templates have no placeholders).
    let kept = map(&[
        ("G-Rare", "rare"),
        ("H-Bear", "Bear"),
        ("I-Lower", "bearer x"),
        ("J-Bearer-X", "Bearer x"),
        ("K-Ear", "ear"),
        ("L-Lower-Bearer", "bearer"),
        ("M-Padded", " keep me "),
    ]);
    let headers: BTreeMap<String, String> = dropped.into_iter().chain(kept.clone()).collect();
    let out = render_headers_with(&headers, Variables::from_config(&vars), &fake_env).unwrap();
    assert_eq!(out, kept.into_iter().collect::<Vec<_>>());
}

#[test]
fn header_names_are_not_templated_and_must_be_tokens() {
    let vars = map(&[("h", "X-Real")]);
    let headers = map(&[("X-$h", "v")]);
    assert_eq!(
        render_headers_with(&headers, Variables::from_config(&vars), &fake_env).unwrap(),
        vec![("X-$h".to_string(), "v".to_string())]
    );
    for bad in ["", "Bad Name", "X:Y", "Ünicode", "a\nb"] {
        let headers = map(&[(bad, "v")]);
        assert_eq!(
            render_headers_with(&headers, Variables::default(), &fake_env),
            Err(TemplateError::InvalidHeaderName {
                header: bad.to_string()
            }),
            "{bad:?}"
        );
    }
    assert!(is_valid_header_name("X-Api_Key.v1"));
}

#[test]
fn env_values_are_rendered_and_empty_ones_kept() {
    let vars = map(&[("token", "abc")]);
    let env = map(&[
        ("API_KEY", "${token}"),
        ("EMPTY", ""),
        ("HOME", "${env:HOME_DIR}"),
    ]);
    assert_eq!(
        render_env_with(&env, Variables::from_config(&vars), &fake_env).unwrap(),
        vec![
            ("API_KEY".to_string(), "abc".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("HOME".to_string(), "/home/me".to_string()),
        ]
    );
    assert_eq!(
        render_env_with(
            &map(&[("API_KEY", "$nope")]),
            Variables::default(),
            &fake_env
        ),
        Err(TemplateError::UnknownVariable {
            field: "env 'API_KEY'".into(),
            variable: "nope".into()
        })
    );
}

#[test]
fn errors_never_contain_values() {
    let secret = "s3cr3t-VALUE";
    let vars = map(&[("token", secret)]);
    let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
        (
            map(&[("Authorization", "Bearer s3cr3t-VALUE ${nope}")]),
            "unknown",
        ),
        (
            map(&[("Authorization", "s3cr3t-VALUE ${env:NOPE}")]),
            "unset",
        ),
        (map(&[("Authorization", "s3cr3t-VALUE ${token")]), "syntax"),
        (
            map(&[("Authorization", "s3cr3t-VALUE\n${token}")]),
            "line break",
        ),
    ];
    for (headers, what) in cases {
        let err =
            render_headers_with(&headers, Variables::from_config(&vars), &fake_env).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains(secret), "{what}: {msg}");
        assert!(msg.contains("Authorization"), "{what}: {msg}");
    }
}
