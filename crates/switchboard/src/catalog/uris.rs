//! Transparent resource URIs: with `[catalog] prefix = "never"` a resource keeps its
//! server's own URI (and a template its own `uriTemplate`), as a gateway fronting servers
//! should show them.
//!
//! Two servers listing the same URI (or template) cannot both have it: the first in server
//! (name) order keeps it bare, the others are exposed as `SERVER+URI` (see `offers.rs`) and
//! the conflict is reported. That keeps every URI readable, and a server's URIs stable as
//! long as no server before it starts listing the same ones.
//!
//! A read finds its server by the URI: a listed resource's exposed URI, else the first
//! template exposed bare that matches it ([`template_matches`]), else a `SERVER+URI`.
//! What a server gives back (the read's parts, resource links in results) keeps the form
//! the read used: bare stays bare.
//!
//! Nothing here talks to a server: the hub lists and routes (`hub/offers.rs`).

use std::collections::HashSet;

use super::offers::{ExposedResource, ExposedResourceTemplate};
use crate::config::{CatalogConfig, PrefixMode};

/// Whether resources keep their servers' own URIs (`prefix = "never"`); otherwise every
/// resource is `SERVER+URI`.
pub fn transparent_uris(config: &CatalogConfig) -> bool {
    config.prefix == PrefixMode::Never
}

/// A URI two servers list: `server` (not the first to list it) has it as `SERVER+URI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriConflict {
    pub server: String,
    pub uri: String,
}

/// Gives `resources` (in server order, each exposed as `SERVER+URI`) their servers' own
/// URIs, except those an earlier server already has; those are the conflicts returned.
pub(crate) fn expose_resources_bare(resources: &mut [ExposedResource]) -> Vec<UriConflict> {
    let mut taken = HashSet::new();
    let mut conflicts = Vec::new();
    for resource in resources {
        if taken.insert(resource.server_uri.clone()) {
            resource.uri = resource.server_uri.clone();
        } else {
            conflicts.push(UriConflict {
                server: resource.server.clone(),
                uri: resource.server_uri.clone(),
            });
        }
    }
    conflicts
}

/// [`expose_resources_bare`] for templates.
pub(crate) fn expose_templates_bare(templates: &mut [ExposedResourceTemplate]) -> Vec<UriConflict> {
    let mut taken = HashSet::new();
    let mut conflicts = Vec::new();
    for template in templates {
        if taken.insert(template.server_uri_template.clone()) {
            template.uri_template = template.server_uri_template.clone();
        } else {
            conflicts.push(UriConflict {
                server: template.server.clone(),
                uri: template.server_uri_template.clone(),
            });
        }
    }
    conflicts
}

/// Whether `uri` is an expansion of the RFC 6570 `template`. Level 1 exactly: a `{var}`
/// matches one or more characters other than `/`, `?` and `#` (what simple expansion
/// leaves unencoded cannot contain them). Expressions with an operator (`{+var}`,
/// `{#var}`, `{?a,b}`, ... of levels 2 to 4) match any run of characters, empty too: good
/// enough to route a read, not to check one.
pub fn template_matches(template: &str, uri: &str) -> bool {
    let parts = match parse(template) {
        Some(parts) => parts,
        None => return template == uri,
    };
    matches(&parts, uri)
}

#[derive(Debug)]
enum Part<'a> {
    Literal(&'a str),
    /// `{var}`: one or more characters, none of `/?#`.
    Simple,
    /// `{+var}` and the other operators: anything.
    Any,
}

/// The template's parts; `None` when a `{` is not closed.
fn parse(template: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(&rest[..open]));
        }
        let close = open + rest[open..].find('}')?;
        let expression = &rest[open + 1..close];
        let operator = expression.starts_with(['+', '#', '.', '/', ';', '?', '&']);
        parts.push(if operator { Part::Any } else { Part::Simple });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Some(parts)
}

/// Backtracking match of `parts` against all of `uri` (templates are short).
fn matches(parts: &[Part<'_>], uri: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return uri.is_empty();
    };
    match first {
        Part::Literal(literal) => uri
            .strip_prefix(literal)
            .is_some_and(|after| matches(rest, after)),
        Part::Simple => {
            let run = uri.find(['/', '?', '#']).unwrap_or(uri.len());
            (1..=run)
                .rev()
                .filter(|&end| uri.is_char_boundary(end))
                .any(|end| matches(rest, &uri[end..]))
        }
        Part::Any => (0..=uri.len())
            .rev()
            .filter(|&end| uri.is_char_boundary(end))
            .any(|end| matches(rest, &uri[end..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_one_templates_match_their_expansions_only() {
        let template = "test://template/{id}/data";
        assert!(template_matches(template, "test://template/123/data"));
        assert!(!template_matches(template, "test://template//data"));
        assert!(!template_matches(template, "test://template/1/2/data"));
        assert!(!template_matches(template, "test://template/123/datum"));
        assert!(template_matches("kit://items/{id}", "kit://items/7"));
        assert!(!template_matches("kit://items/{id}", "kit://items/7/x"));
        assert!(template_matches("a/{x}-{y}", "a/1-2-3"));
        assert!(template_matches("plain://uri", "plain://uri"));
        assert!(template_matches("file://{+path}", "file:///a/b.txt"));
        assert!(!template_matches("broken://{id", "broken://1"));
    }

    #[test]
    fn the_first_server_keeps_a_uri_two_servers_list() {
        let resource = |server: &str, uri: &str| ExposedResource {
            uri: crate::catalog::expose_uri(server, uri),
            server: server.to_owned(),
            server_uri: uri.to_owned(),
            name: uri.to_owned(),
            title: None,
            description: None,
            mime_type: None,
            size: None,
        };
        let mut resources = [
            resource("a", "x://1"),
            resource("a", "x://2"),
            resource("b", "x://1"),
            resource("b", "x://3"),
        ];
        let conflicts = expose_resources_bare(&mut resources);
        let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["x://1", "x://2", "b+x://1", "x://3"]);
        assert_eq!(
            conflicts,
            [UriConflict {
                server: "b".to_owned(),
                uri: "x://1".to_owned()
            }]
        );
    }
}
