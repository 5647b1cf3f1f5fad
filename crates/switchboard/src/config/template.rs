//! Templating of header and environment values.
//!
//! Secrets should not have to be written into config files, and one config should serve many
//! sessions with different credentials; so header and env values are templates:
//!
//! - `${name}` and `$name` (name = `[A-Za-z_][A-Za-z0-9_]*`, the longest such run) come from
//!   the per-connection variables, then from the config's `[variables]` table. Inside braces
//!   anything but `$`, `{` and `}` is looked up as written, so VS Code's `${input:ID}` is
//!   reported as the unknown variable `input:ID` (we do not support VS Code inputs yet).
//! - `${env:NAME}` comes from the process environment; an unset (or non-UTF-8) variable is
//!   [`TemplateError::UnsetEnv`].
//! - `$$` is a literal `$`.
//! - A `$` followed by anything else (a digit, a space, punctuation, the end of the value) is
//!   kept as a literal `$`: passwords like `pa$ word` or `secret$` are common and should not
//!   need escaping. A `$` followed by a letter or `_` *is* a placeholder, so `pa$word` needs
//!   `pa$$word`.
//! - An unterminated or empty `${` is [`TemplateError::Syntax`] with the byte position of
//!   its `$`.
//!
//! An unknown variable is an error naming the field and the variable, so a request never goes
//! out with `Bearer ${token}` in it (the system we replace sent such placeholders verbatim).
//! Substitution is one pass: a substituted value is never scanned for placeholders again.
//! A value containing CR or LF after substitution is rejected ([`TemplateError::LineBreak`]).
//! Errors name fields and variables, never values: those are secrets.

use std::collections::BTreeMap;

pub use crate::error::TemplateError;

/// Where template variables come from, in lookup order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Variables<'a> {
    /// Per-connection (per-session) variables given through the API; looked up first.
    pub connection: Option<&'a BTreeMap<String, String>>,
    /// The config's `[variables]` table.
    pub config: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Variables<'a> {
    /// Variables from the config's `[variables]` table only.
    pub fn from_config(config: &'a BTreeMap<String, String>) -> Self {
        Variables {
            connection: None,
            config: Some(config),
        }
    }

    /// The same, with per-connection variables looked up first.
    pub fn with_connection(mut self, connection: &'a BTreeMap<String, String>) -> Self {
        self.connection = Some(connection);
        self
    }

    fn lookup(&self, name: &str) -> Option<&'a str> {
        self.connection
            .and_then(|m| m.get(name))
            .or_else(|| self.config.and_then(|m| m.get(name)))
            .map(String::as_str)
    }
}

/// One parsed piece of a template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'t> {
    Literal(&'t str),
    Var(&'t str),
    Env(&'t str),
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits a template into literals and placeholders (see the module docs for the rules).
fn parse<'t>(field: &str, template: &'t str) -> Result<Vec<Piece<'t>>, TemplateError> {
    let bytes = template.as_bytes();
    let syntax = |position| TemplateError::Syntax {
        field: field.to_string(),
        position,
    };
    let mut pieces = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let dollar = i;
        match bytes.get(i + 1) {
            Some(b'$') => {
                // `$$`: the literal is everything up to and including the first `$`.
                pieces.push(Piece::Literal(&template[lit_start..=dollar]));
                i += 2;
                lit_start = i;
            }
            Some(b'{') => {
                let inner_start = i + 2;
                let close = template[inner_start..]
                    .find(['}', '$', '{'])
                    .map(|off| inner_start + off);
                let close = match close {
                    Some(c) if bytes[c] == b'}' && c > inner_start => c,
                    _ => return Err(syntax(dollar)),
                };
                let inner = &template[inner_start..close];
                let piece = match inner.strip_prefix("env:") {
                    Some("") => return Err(syntax(dollar)),
                    Some(name) => Piece::Env(name),
                    None => Piece::Var(inner),
                };
                pieces.push(Piece::Literal(&template[lit_start..dollar]));
                pieces.push(piece);
                i = close + 1;
                lit_start = i;
            }
            Some(&b) if is_name_start(b) => {
                let end = (i + 1..bytes.len())
                    .find(|&j| !is_name_char(bytes[j]))
                    .unwrap_or(bytes.len());
                pieces.push(Piece::Literal(&template[lit_start..dollar]));
                pieces.push(Piece::Var(&template[i + 1..end]));
                i = end;
                lit_start = i;
            }
            // A lone `$`: literal, stays part of the current literal run.
            _ => i += 1,
        }
    }
    pieces.push(Piece::Literal(&template[lit_start..]));
    pieces.retain(|p| *p != Piece::Literal(""));
    Ok(pieces)
}

/// Checks a template's syntax without resolving anything (used when a config is loaded, so an
/// unterminated `${` is reported before any connection is attempted).
pub fn check_syntax(field: &str, template: &str) -> Result<(), TemplateError> {
    parse(field, template).map(|_| ())
}

/// Renders one value. `field` names it in errors, e.g. `header 'Authorization'`.
pub fn render(field: &str, template: &str, vars: Variables<'_>) -> Result<String, TemplateError> {
    render_with(field, template, vars, &|name| std::env::var(name).ok())
}

/// [`render`] with the environment lookup injected (tests use a fake environment).
fn render_with(
    field: &str,
    template: &str,
    vars: Variables<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    for piece in parse(field, template)? {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Var(name) => match vars.lookup(name) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(TemplateError::UnknownVariable {
                        field: field.to_string(),
                        variable: name.to_string(),
                    });
                }
            },
            Piece::Env(name) => match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(TemplateError::UnsetEnv {
                        field: field.to_string(),
                        variable: name.to_string(),
                    });
                }
            },
        }
    }
    if out.contains(['\r', '\n']) {
        return Err(TemplateError::LineBreak {
            field: field.to_string(),
        });
    }
    Ok(out)
}

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a rendered header value means "no value": empty, or exactly `Bearer`, after trimming
/// whitespace. This is what `Authorization = "Bearer ${token}"` gives with an empty token.
/// Only these two are dropped; `rare`, `Bear`, `bearer x`, `Bearer x` are sent as they are
/// (the system we replace stripped the character set `{B,e,a,r}` and dropped `rare`).
fn is_empty_header_value(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v == "Bearer"
}

/// Renders every header, rejects values with CR/LF, and drops a header whose value is empty
/// or exactly `Bearer` after substitution (and whitespace trimming). Kept values are returned
/// verbatim (untrimmed). Header names are not templated; an invalid one is
/// [`TemplateError::InvalidHeaderName`].
pub fn render_headers(
    headers: &BTreeMap<String, String>,
    vars: Variables<'_>,
) -> Result<Vec<(String, String)>, TemplateError> {
    render_headers_with(headers, vars, &|name| std::env::var(name).ok())
}

fn render_headers_with(
    headers: &BTreeMap<String, String>,
    vars: Variables<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, TemplateError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, template) in headers {
        if !is_valid_header_name(name) {
            return Err(TemplateError::InvalidHeaderName {
                header: name.clone(),
            });
        }
        let value = render_with(&format!("header '{name}'"), template, vars, env)?;
        if is_empty_header_value(&value) {
            tracing::debug!(header = %name, "dropping header whose value is empty after templating");
            continue;
        }
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// Renders every env value (stdio servers). Empty values are kept: an empty environment
/// variable is meaningful.
pub fn render_env(
    env: &BTreeMap<String, String>,
    vars: Variables<'_>,
) -> Result<Vec<(String, String)>, TemplateError> {
    render_env_with(env, vars, &|name| std::env::var(name).ok())
}

fn render_env_with(
    env_vars: &BTreeMap<String, String>,
    vars: Variables<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, TemplateError> {
    env_vars
        .iter()
        .map(|(name, template)| {
            render_with(&format!("env '{name}'"), template, vars, env).map(|v| (name.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn both_placeholder_syntaxes() {
        let vars = map(&[("token", "abc"), ("user_1", "u")]);
        assert_eq!(r("Bearer ${token}", &vars).unwrap(), "Bearer abc");
        assert_eq!(r("Bearer $token", &vars).unwrap(), "Bearer abc");
        assert_eq!(r("$user_1:${token}!", &vars).unwrap(), "u:abc!");
        assert_eq!(r("${token}${token}", &vars).unwrap(), "abcabc");
        assert_eq!(r("plain", &vars).unwrap(), "plain");
        assert_eq!(r("", &vars).unwrap(), "");
    }

    #[test]
    fn dollar_name_is_the_longest_name() {
        let vars = map(&[("token", "abc"), ("token_x", "T")]);
        assert_eq!(r("$token_x", &vars).unwrap(), "T");
        assert_eq!(r("${token}_x", &vars).unwrap(), "abc_x");
        assert_eq!(r("$token-x", &vars).unwrap(), "abc-x");
    }

    #[test]
    fn double_dollar_is_literal() {
        let vars = map(&[("token", "abc")]);
        assert_eq!(r("$$", &vars).unwrap(), "$");
        assert_eq!(r("a$$b", &vars).unwrap(), "a$b");
        assert_eq!(r("$${token}", &vars).unwrap(), "${token}");
        assert_eq!(r("$$$token", &vars).unwrap(), "$abc");
        assert_eq!(r("$$$$", &vars).unwrap(), "$$");
    }

    #[test]
    fn lone_dollar_is_literal() {
        let vars = BTreeMap::new();
        assert_eq!(r("pa$ word", &vars).unwrap(), "pa$ word");
        assert_eq!(r("secret$", &vars).unwrap(), "secret$");
        assert_eq!(r("$1", &vars).unwrap(), "$1");
        assert_eq!(r("$", &vars).unwrap(), "$");
        assert_eq!(r("a$-b$.c", &vars).unwrap(), "a$-b$.c");
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
        assert_eq!(r("${env:HOME_DIR}/x", &vars).unwrap(), "/home/me/x");
        assert_eq!(r("[${env:EMPTY}]", &vars).unwrap(), "[]");
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
        let headers = map(&[
            ("A-Empty", ""),
            ("B-Spaces", "  "),
            ("C-Bearer", "Bearer"),
            ("D-Bearer-Space", "  Bearer  "),
            ("E-Bearer-Empty-Token", "Bearer ${token}"),
            ("F-Blank-Var", "$blank"),
            ("G-Rare", "rare"),
            ("H-Bear", "Bear"),
            ("I-Lower", "bearer x"),
            ("J-Bearer-X", "Bearer x"),
            ("K-Ear", "ear"),
            ("L-Lower-Bearer", "bearer"),
            ("M-Padded", " keep me "),
        ]);
        let out = render_headers_with(&headers, Variables::from_config(&vars), &fake_env).unwrap();
        let expected: Vec<(String, String)> = [
            ("G-Rare", "rare"),
            ("H-Bear", "Bear"),
            ("I-Lower", "bearer x"),
            ("J-Bearer-X", "Bearer x"),
            ("K-Ear", "ear"),
            ("L-Lower-Bearer", "bearer"),
            ("M-Padded", " keep me "),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(out, expected);
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
            let err = render_headers_with(&headers, Variables::from_config(&vars), &fake_env)
                .unwrap_err();
            let msg = err.to_string();
            assert!(!msg.contains(secret), "{what}: {msg}");
            assert!(msg.contains("Authorization"), "{what}: {msg}");
        }
    }
}
