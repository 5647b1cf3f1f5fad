//! Checks shared by every reader (TOML, JSON, `[discovery]`), by the discovery layer and by
//! front ends: one place for each rule, so a URL or a header name means the same everywhere.
//!
//! Each check returns a [`Problem`] (what is wrong, what to do); the caller says where it is.
//! Problems name keys, headers and variables, never values: URLs may carry credentials or
//! tokens in their query, header and env values are secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::diagnostics::{DURATION_FIX, Problem, one_of_fix};
use super::template::{self, is_valid_header_name};
use crate::error::ConfigError;

// ---------------------------------------------------------------------------------------------
// URLs

/// How a URL problem is worded where the URL came from.
pub(super) struct UrlWording<'a> {
    /// What the URL is called in the problem: `the URL`, `'endpoint'`.
    pub subject: &'a str,
    /// A good value, written as the user would write it there: `url = "http://..."`,
    /// `--url http://...`.
    pub example: &'a str,
}

/// A server's `url` in a config file.
pub(super) const SERVER_URL: UrlWording<'static> = UrlWording {
    subject: "the URL",
    example: "url = \"http://127.0.0.1:3001/mcp\"",
};

/// The one http(s) URL check: the URL must have a scheme, parse, and use http or https.
/// (`127.0.0.1:3001/mcp` does not parse, and `localhost:3001` parses with the scheme
/// `localhost`: both lack the `http://` in front, and are told so.)
pub(super) fn check_http_url(url: &str, wording: &UrlWording<'_>) -> Result<(), Problem> {
    let UrlWording { subject, example } = wording;
    let fix = || format!("write a full http(s) URL, e.g. {example}");
    if !url.contains("://") {
        return Err((
            format!("{subject} has no scheme"),
            format!("add http:// (or https://) in front, e.g. {example}"),
        ));
    }
    match url::Url::parse(url) {
        Err(e) => Err((format!("{subject} is not valid ({e})"), fix())),
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err((
            format!(
                "{subject} uses the scheme '{}'; only http and https are supported",
                u.scheme()
            ),
            fix(),
        )),
    }
}

/// Whether `url` passes [`check_http_url`] (for URLs a registry sends, whose problems are
/// the registry's, not the user's).
pub(crate) fn is_http_url(url: &str) -> bool {
    check_http_url(url, &SERVER_URL).is_ok()
}

/// Checks a server URL given outside a config file, e.g. on the command line as `key`
/// (`--url`): it must be a full `http://` or `https://` URL. The error says what to write
/// (for `127.0.0.1:3001` without a scheme: add `http://`) and never contains the URL.
pub fn check_server_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let wording = UrlWording {
        example: &format!("{key} http://127.0.0.1:3001/mcp"),
        ..SERVER_URL
    };
    check_http_url(url, &wording).map_err(|(problem, fix)| ConfigError::new(problem, fix))
}

// ---------------------------------------------------------------------------------------------
// Headers and env

/// Header names must be HTTP tokens and unique ignoring case; values must be well-formed
/// templates. Problems name headers, never values.
pub(super) fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), Problem> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in headers {
        if !is_valid_header_name(name) {
            return Err((
                format!("{name:?} is not a valid HTTP header name"),
                "use only letters, digits and !#$%&'*+-.^_`|~ in header names".to_string(),
            ));
        }
        if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err((
                format!("the headers '{other}' and '{name}' differ only in case"),
                "HTTP header names are case-insensitive; keep one of them".to_string(),
            ));
        }
        check_template(&format!("header '{name}'"), value)?;
    }
    Ok(())
}

/// Env names must be usable by the OS; values must be well-formed templates.
pub(super) fn check_env(env: &BTreeMap<String, String>) -> Result<(), Problem> {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err((
                format!("{name:?} is not a valid environment variable name"),
                "environment variable names must be non-empty and contain no '=' or NUL"
                    .to_string(),
            ));
        }
        check_template(&format!("env '{name}'"), value)?;
    }
    Ok(())
}

/// A template's syntax (`field` names it, e.g. `header 'Authorization'`).
pub(super) fn check_template(field: &str, value: &str) -> Result<(), Problem> {
    template::check_syntax(field, value).map_err(|e| {
        (
            e.to_string(),
            "close every ${ with }, e.g. ${token} or ${env:NAME}".to_string(),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Server names

/// Whether `name` is usable as a server name: non-empty, only `[A-Za-z0-9_-]`.
pub(super) fn is_valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `name` with every character outside `[A-Za-z0-9_-]` replaced by `_` (`server` if empty).
pub(super) fn normalise_server_name(name: &str) -> String {
    if name.is_empty() {
        return "server".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Unique valid server names for names given in their final order (JSON files, registries):
/// a name that is already valid is kept, first come; the others, and later duplicates, are
/// normalised and given `_2`, `_3`, ... until unique. One name per input, in input order.
pub(crate) fn unique_server_names(names: &[&str]) -> Vec<String> {
    let mut taken = BTreeSet::new();
    let mut unique: Vec<Option<String>> = names
        .iter()
        .map(|n| (is_valid_server_name(n) && taken.insert(n.to_string())).then(|| n.to_string()))
        .collect();
    for (slot, name) in unique.iter_mut().zip(names) {
        if slot.is_some() {
            continue;
        }
        let base = normalise_server_name(name);
        let mut candidate = base.clone();
        let mut n = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        *slot = Some(candidate);
    }
    unique.into_iter().flatten().collect()
}

/// A server name written in a TOML file, which is never changed: say why it cannot be used.
pub(super) fn check_server_name(name: &str) -> Result<(), Problem> {
    if is_valid_server_name(name) {
        return Ok(());
    }
    const WHY: &str = "server names prefix the names of their tools, so they may contain only \
                       letters, digits, '_' and '-'";
    if name.is_empty() {
        return Err((
            "a server has an empty name".to_string(),
            format!("{WHY}; name it, e.g. [servers.my_server]"),
        ));
    }
    let bad: String = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .take(1)
        .collect();
    Err((
        format!("the server name contains {bad:?}, which is not allowed"),
        format!(
            "{WHY}; rename it, e.g. [servers.{}]",
            normalise_server_name(name)
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// Values

/// A duration string (`"30s"`, `"2m"`, `"500ms"`, `"1h"`) for `key`; zero is rejected.
pub(super) fn parse_duration(key: &str, value: &str) -> Result<Duration, Problem> {
    let fix = || DURATION_FIX.replace("KEY", key);
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d.is_zero() => Err((format!("'{key}' is zero"), fix())),
        Ok(d) => Ok(d),
        Err(_) => Err((format!("'{key}' is not a duration: \"{value}\""), fix())),
    }
}

/// A duration that may be zero (`"0s"`: off), e.g. `[gateway] shutdown_delay`.
pub(super) fn parse_duration_or_zero(key: &str, value: &str) -> Result<Duration, Problem> {
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d.is_zero() => Ok(d),
        _ => parse_duration(key, value),
    }
}

/// The value of `all` (a type's `ALL` table of values and their names) named `value`, or
/// the problem (an unknown `what`) and the fix (the closest name, and the list).
pub(super) fn one_of<T: Copy>(
    value: &str,
    all: &[(T, &'static str)],
    what: &str,
) -> Result<T, Problem> {
    match all.iter().find(|(_, name)| *name == value) {
        Some((found, _)) => Ok(*found),
        None => {
            let names: Vec<&str> = all.iter().map(|(_, name)| *name).collect();
            Err((
                format!("unknown {what} \"{value}\""),
                one_of_fix(value, &names),
            ))
        }
    }
}
