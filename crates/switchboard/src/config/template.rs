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
    render_with(field, template, vars, &process_env)
}

/// Where `${env:NAME}` values come from: the process environment, or a fake one in tests.
type Env = dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Rendered `(name, value)` pairs, in name order.
type Rendered = Result<Vec<(String, String)>, TemplateError>;

/// [`render`] with the environment lookup injected (tests use a fake environment).
fn render_with(
    field: &str,
    template: &str,
    vars: Variables<'_>,
    env: &Env,
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
pub fn render_headers(headers: &BTreeMap<String, String>, vars: Variables<'_>) -> Rendered {
    render_headers_with(headers, vars, &process_env)
}

fn render_headers_with(headers: &BTreeMap<String, String>, vars: Variables, env: &Env) -> Rendered {
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
pub fn render_env(env: &BTreeMap<String, String>, vars: Variables<'_>) -> Rendered {
    render_env_with(env, vars, &process_env)
}

fn render_env_with(env_vars: &BTreeMap<String, String>, vars: Variables, env: &Env) -> Rendered {
    env_vars
        .iter()
        .map(|(name, template)| {
            render_with(&format!("env '{name}'"), template, vars, env).map(|v| (name.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests;
