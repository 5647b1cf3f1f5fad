//! Resources, resource templates and prompts as a hub exposes them, next to the tools.
//!
//! **Resource URIs** are the server's own URI behind the server's name and `+`:
//! `files+file:///tmp/a.txt`, `kit+testkit://items/{id}` (a template's `uriTemplate` the
//! same way). It reads like a URI scheme of its own (`git+ssh://` is the same idea) and
//! goes back without a table: server names have only `[A-Za-z0-9_-]` (config validation
//! holds every name to that), so the first `+` ends the server name whatever the URI
//! holds. Names with other characters never meet this code: `split_uri` refuses them.
//! With `prefix = "never"` resources keep the servers' own URIs instead (`uris.rs`).
//!
//! **Prompt names** are made like tool names (`SERVER__PROMPT`, provider-safe, by
//! `naming.rs` under the catalogue's `prefix`, `separator` and `max_name_length`); names
//! still equal after that get `_2`, `_3`, ... in server, then prompt order, so the same
//! prompts always get the same names.
//!
//! Nothing here talks to a server: the hub lists, caches and calls (`hub/offers.rs`).

use std::collections::{BTreeMap, HashSet};

use rmcp::model::{Prompt, Resource, ResourceTemplate};
use serde::{Deserialize, Serialize};

use super::naming;
use crate::config::{CatalogConfig, PrefixMode};

/// What separates the server's name from its own URI in an exposed URI.
pub const URI_SEPARATOR: char = '+';

/// The exposed URI of `uri` of `server`: `SERVER+URI`.
pub fn expose_uri(server: &str, uri: &str) -> String {
    format!("{server}{URI_SEPARATOR}{uri}")
}

/// The server and its own URI behind an exposed URI; `None` when it does not start with a
/// server name (letters, digits, `_`, `-`) and `+`.
pub fn split_uri(exposed: &str) -> Option<(&str, &str)> {
    let (server, uri) = exposed.split_once(URI_SEPARATOR)?;
    let valid = !server.is_empty()
        && server
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some((server, uri))
}

/// A resource as the hub exposes it. Serialises as one row of `switchboard resources
/// --format json`; absent fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedResource {
    /// The exposed URI, `SERVER+URI` (with `prefix = "never"` the server's own, see
    /// `uris.rs`): what [`Hub::read_resource`](crate::Hub::read_resource) takes.
    pub uri: String,
    pub server: String,
    /// The server's own URI.
    pub server_uri: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl ExposedResource {
    pub(crate) fn new(server: &str, resource: &Resource) -> ExposedResource {
        ExposedResource {
            uri: expose_uri(server, &resource.uri),
            server: server.to_owned(),
            server_uri: resource.uri.clone(),
            name: resource.name.clone(),
            title: resource.title.clone(),
            description: resource.description.clone(),
            mime_type: resource.mime_type.clone(),
            size: resource.size,
        }
    }
}

/// A resource template (RFC 6570) as the hub exposes it: fill it in and read the URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedResourceTemplate {
    /// The exposed template, `SERVER+TEMPLATE` (e.g. `kit+testkit://items/{id}`; with
    /// `prefix = "never"` the server's own).
    pub uri_template: String,
    pub server: String,
    /// The server's own template.
    pub server_uri_template: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl ExposedResourceTemplate {
    pub(crate) fn new(server: &str, template: &ResourceTemplate) -> ExposedResourceTemplate {
        ExposedResourceTemplate {
            uri_template: expose_uri(server, &template.uri_template),
            server: server.to_owned(),
            server_uri_template: template.uri_template.clone(),
            name: template.name.clone(),
            title: template.title.clone(),
            description: template.description.clone(),
            mime_type: template.mime_type.clone(),
        }
    }
}

/// A prompt as the hub exposes it. Serialises as one row of `switchboard prompts --format
/// json`: `{"name": "kit__greet", "server": "kit", "prompt": "greet", "arguments": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedPrompt {
    /// The exposed, provider-safe name: what [`Hub::get_prompt`](crate::Hub::get_prompt)
    /// takes.
    pub name: String,
    pub server: String,
    /// The server's own name for the prompt.
    #[serde(rename = "prompt")]
    pub original: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
}

/// One argument a prompt takes (a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptArgument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// Every server's prompts (in any order) under their exposed names, in server, then
/// prompt order. See the module docs for the names.
pub(crate) fn expose_prompts<'a>(
    config: &CatalogConfig,
    servers: impl IntoIterator<Item = (&'a str, &'a [Prompt])>,
) -> Vec<ExposedPrompt> {
    let mut by_server: BTreeMap<&str, Vec<&Prompt>> = BTreeMap::new();
    for (server, prompts) in servers {
        by_server.entry(server).or_default().extend(prompts);
    }
    let mut exposed = Vec::new();
    let mut taken = HashSet::new();
    for (server, mut prompts) in by_server {
        prompts.sort_by(|a, b| a.name.cmp(&b.name));
        prompts.dedup_by(|a, b| a.name == b.name);
        for prompt in prompts {
            let name = match config.prefix {
                PrefixMode::Always => naming::prefixed_name(
                    server,
                    &config.separator,
                    &prompt.name,
                    config.max_name_length,
                ),
                PrefixMode::Never => naming::bare_name(&prompt.name, config.max_name_length),
            };
            let mut unique = name.clone();
            let mut n = 2;
            while !taken.insert(unique.clone()) {
                unique = naming::with_suffix(&name, n, config.max_name_length);
                n += 1;
            }
            exposed.push(expose_prompt(unique, server, prompt));
        }
    }
    exposed
}

fn expose_prompt(name: String, server: &str, prompt: &Prompt) -> ExposedPrompt {
    let arguments = prompt.arguments.iter().flatten().map(|a| PromptArgument {
        name: a.name.clone(),
        title: a.title.clone(),
        description: a.description.clone(),
        required: a.required.unwrap_or(false),
    });
    ExposedPrompt {
        name,
        server: server.to_owned(),
        original: prompt.name.clone(),
        title: prompt.title.clone(),
        description: prompt.description.clone(),
        arguments: arguments.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_uris_split_back_at_the_first_plus() {
        for (server, uri) in [
            ("files", "file:///tmp/a.txt"),
            ("kit-2", "git+ssh://host/repo"),
            ("a_b", "urn:x+y"),
            ("s", ""),
            ("s", "no-scheme"),
        ] {
            let exposed = expose_uri(server, uri);
            assert_eq!(split_uri(&exposed), Some((server, uri)), "{exposed}");
        }
        assert_eq!(expose_uri("files", "file:///a"), "files+file:///a");
        // Not a server name in front of the first `+`: not an exposed URI.
        for wrong in [
            "file:///a",
            "+file:///a",
            "fi.les+file:///a",
            "x y+z",
            "a:b+c",
        ] {
            assert_eq!(split_uri(wrong), None, "{wrong}");
        }
    }

    fn prompt(name: &str) -> Prompt {
        Prompt::new(name, Some("d"), None)
    }

    #[test]
    fn prompt_names_are_namespaced_like_tools_and_stay_unique() {
        let config = CatalogConfig::default();
        let a = [prompt("greet"), prompt("x.y")];
        let b = [prompt("greet")];
        // Given in any order, the same names.
        let names = |servers: Vec<(&'static str, &[Prompt])>| -> Vec<(String, String)> {
            expose_prompts(&config, servers)
                .into_iter()
                .map(|p| (p.name, format!("{}/{}", p.server, p.original)))
                .collect()
        };
        let expected = vec![
            ("a__greet".to_string(), "a/greet".to_string()),
            ("a__x_y".to_string(), "a/x.y".to_string()),
            ("b__greet".to_string(), "b/greet".to_string()),
        ];
        assert_eq!(names(vec![("a", &a), ("b", &b)]), expected);
        assert_eq!(names(vec![("b", &b), ("a", &a)]), expected);
        // `x.y` and `x_y` make the same safe name: the second gets a suffix.
        let c = [prompt("x_y"), prompt("x.y")];
        assert_eq!(
            names(vec![("c", &c)]),
            vec![
                ("c__x_y".to_string(), "c/x.y".to_string()),
                ("c__x_y_2".to_string(), "c/x_y".to_string()),
            ]
        );
        let never = CatalogConfig {
            prefix: PrefixMode::Never,
            ..CatalogConfig::default()
        };
        let bare: Vec<String> = expose_prompts(&never, [("a", &a[..]), ("b", &b[..])])
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(bare, ["greet", "x_y", "greet_2"]);
    }
}
