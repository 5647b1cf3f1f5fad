//! The catalogue: the tools of every connected server merged into one list of exposed tools,
//! and the way back from an exposed name to (server, original tool name).
//!
//! This is what users meet first in their LLM calls, so it must never produce a name a
//! provider rejects, nor route a call to the wrong tool. The hub builds it
//! (`Catalog::build`) as a pure function of the servers' tool lists and the config:
//!
//! 1. Per server (in name order): overrides for tools the server does not list are reported;
//!    an alias that takes the name of another listed tool leaves the server out (a config
//!    error found late); `include` / `exclude` are applied to original names and aliases.
//! 2. Each tool's raw name is `{server}{separator}{alias or tool}` (or just the tool's name
//!    with `prefix = "never"`), made provider-safe by `naming::prefixed_name` (or
//!    `naming::bare_name`): a name too long has its server part shortened first, so the
//!    tool's name stays readable.
//! 3. Names that are still equal are collisions, settled by the [`CollisionPolicy`] in a
//!    fixed order (server name, then names that needed no rewriting, then tool name), so
//!    the same tools always get the same names whatever order the servers answered in.
//!
//! Everything noteworthy becomes a [`Diagnostic`] (shown by the CLI, logged as warnings).
//! A catalogue never changes once built: a server's `tools/list_changed` builds a new one,
//! and callers holding the old one keep a consistent snapshot.
//!
//! Exposed names are what programs use; people also type a tool's own name or alias
//! ([`Catalog::lookup`]). An [`ExposedTool`] is the engine's own type (no rmcp type in it)
//! and serialises as one row of `switchboard tools --format json`.

mod arguments;
mod export;
mod filter;
pub(crate) mod naming;
mod offers;
mod tool;
mod uris;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use rmcp::model::Tool;
use serde::Serialize;
use serde_json::Value;

use crate::config::suggest::closest;
use crate::config::{
    CatalogConfig, CollisionPolicy, ConfigError, PrefixMode, ServerConfig, ToolFilter, ToolOverride,
};
use crate::error::Error;
use arguments::ArgumentSchema;
pub use export::ExportFormat;
use filter::Filter;
pub(crate) use offers::expose_prompts;
pub use offers::{
    ExposedPrompt, ExposedResource, ExposedResourceTemplate, PromptArgument, URI_SEPARATOR,
    expose_uri, split_uri,
};
pub use tool::{ExposedTool, ToolAnnotations};
pub use uris::{UriConflict, template_matches, transparent_uris};
pub(crate) use uris::{expose_resources_bare, expose_templates_bare};

/// The log target of what registering servers found (failed servers, catalogue
/// diagnostics), so that front ends which show these themselves can silence the log copy.
pub const REGISTRATION_LOG: &str = "switchboard::registration";

/// One server's tools as listed, with the config that shapes how they are exposed.
#[derive(Debug, Clone)]
pub(crate) struct ServerTools {
    pub server: String,
    pub tools: Vec<Tool>,
    pub overrides: BTreeMap<String, ToolOverride>,
    pub filter: ToolFilter,
    /// The server said the list belongs to the authorization context that listed it
    /// (`cacheScope: "private"`): see `hub/private.rs`.
    pub private: bool,
}

impl ServerTools {
    pub(crate) fn new(config: &ServerConfig, tools: Vec<Tool>, private: bool) -> Self {
        ServerTools {
            server: config.name.clone(),
            tools,
            overrides: config.tool_overrides.clone(),
            filter: config.tool_filter.clone(),
            private,
        }
    }
}

/// A tool named by its server and the server's own name for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolRef {
    pub server: String,
    pub tool: String,
}

impl std::fmt::Display for ToolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tool '{}' of server '{}'", self.tool, self.server)
    }
}

/// Something about the catalogue a person should know; never fatal by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnostic {
    /// Two tools wanted the same exposed name. `renamed_to` is the other's new name
    /// (`suffix`), or `None` when it was left out (`first_wins` / `last_wins`).
    Collision {
        name: String,
        kept: ToolRef,
        other: ToolRef,
        renamed_to: Option<String>,
    },
    /// `tool_overrides` entries for tools the server does not list; not applied.
    UnknownOverrides { server: String, tools: Vec<String> },
    /// `include` / `exclude` patterns that matched none of the server's tools.
    UnmatchedFilter {
        server: String,
        key: &'static str,
        patterns: Vec<String>,
    },
    /// An alias is the name of another tool the server lists: the server is left out.
    AliasClash {
        server: String,
        tool: String,
        alias: String,
    },
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diagnostic::Collision {
                name,
                kept,
                other,
                renamed_to: Some(renamed),
            } => write!(
                f,
                "name collision on '{name}' between {kept} and {other}: the second is exposed as '{renamed}'"
            ),
            Diagnostic::Collision {
                name,
                kept,
                other,
                renamed_to: None,
            } => write!(
                f,
                "name collision on '{name}' between {kept} and {other}: only the first is exposed"
            ),
            Diagnostic::UnknownOverrides { server, tools } => write!(
                f,
                "server '{server}': tool_overrides name tools the server does not list (not applied): {}",
                tools.join(", ")
            ),
            Diagnostic::UnmatchedFilter {
                server,
                key,
                patterns,
            } => write!(
                f,
                "server '{server}': {key} patterns match no tool: {}",
                patterns.join(", ")
            ),
            Diagnostic::AliasClash {
                server,
                tool,
                alias,
            } => write!(
                f,
                "server '{server}' left out: the alias '{alias}' of tool '{tool}' is the name of another of its tools; choose another alias in [servers.{server}.tool_overrides.{tool}]"
            ),
        }
    }
}

/// What a name a person typed stands for in a catalogue; see [`Catalog::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// The name is this tool's exposed name.
    Exposed(Arc<ExposedTool>),
    /// The name is this tool's own name (the server's) or its alias, and no other exposed
    /// tool's: its exposed name is `tool.name`.
    ByToolName(Arc<ExposedTool>),
    /// No tool has the name. `error` is [`Error::NoSuchTool`] with the closest exposed name
    /// as its suggestion; `same_name` lists the tools whose own name or alias it is when
    /// there are several (so none was picked), in catalogue order.
    NotFound {
        error: Error,
        same_name: Vec<Arc<ExposedTool>>,
    },
}

impl Lookup {
    /// The tool, or the [`Error::NoSuchTool`] saying there is none.
    pub fn into_result(self) -> Result<Arc<ExposedTool>, Error> {
        match self {
            Lookup::Exposed(tool) | Lookup::ByToolName(tool) => Ok(tool),
            Lookup::NotFound { error, .. } => Err(error),
        }
    }
}

/// The merged, immutable tool catalogue.
#[derive(Debug, Default)]
pub struct Catalog {
    /// In server, then original-name order.
    tools: Vec<Arc<ExposedTool>>,
    by_name: HashMap<String, usize>,
    diagnostics: Vec<Diagnostic>,
}

/// A tool on its way into the catalogue.
struct Candidate<'a> {
    server: &'a str,
    tool: &'a Tool,
    alias: Option<&'a str>,
    description: Option<&'a str>,
    /// The safe name, before collisions are settled.
    name: String,
    /// Whether making the name safe changed it.
    rewritten: bool,
}

impl Catalog {
    /// Builds the catalogue (see the module docs). Fails only with `collisions = "error"`
    /// when names collide; everything else becomes a [`Diagnostic`].
    pub(crate) fn build<'a>(
        config: &CatalogConfig,
        servers: impl IntoIterator<Item = &'a ServerTools>,
    ) -> Result<Catalog, Error> {
        let mut servers: Vec<&ServerTools> = servers.into_iter().collect();
        servers.sort_by(|a, b| a.server.cmp(&b.server));
        let mut diagnostics = Vec::new();
        let mut candidates = Vec::new();
        for server in servers {
            candidates.extend(candidates_of(config, server, &mut diagnostics));
        }
        candidates.sort_by(|a, b| {
            (a.server, a.rewritten, a.tool.name.as_ref()).cmp(&(
                b.server,
                b.rewritten,
                b.tool.name.as_ref(),
            ))
        });
        let named = settle_collisions(config, candidates, &mut diagnostics)?;

        let mut tools: Vec<Arc<ExposedTool>> = named
            .into_iter()
            .map(|(name, c)| Arc::new(exposed(name, c)))
            .collect();
        tools.sort_by(|a, b| (&a.server, &a.original).cmp(&(&b.server, &b.original)));
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Catalog {
            tools,
            by_name,
            diagnostics,
        })
    }

    /// Every exposed tool, in server, then original-name order.
    pub fn tools(&self) -> &[Arc<ExposedTool>] {
        &self.tools
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The tool exposed as `name`, exactly.
    pub fn get(&self, name: &str) -> Option<&Arc<ExposedTool>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// The tool exposed as `name`, or [`Error::NoSuchTool`] with the closest name.
    pub fn resolve(&self, name: &str) -> Result<Arc<ExposedTool>, Error> {
        if let Some(tool) = self.get(name) {
            return Ok(tool.clone());
        }
        let names: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
        Err(Error::NoSuchTool {
            name: name.to_string(),
            suggestion: closest(name, &names).map(str::to_string),
        })
    }

    /// The tool a person means by `name`: its exposed name (`memory__read_graph`), else the
    /// server's own name for it or its alias (`read_graph`) when exactly one exposed tool
    /// has that name. Otherwise [`Lookup::NotFound`], with a "did you mean" suggestion.
    /// Programs should call by exposed name ([`Catalog::resolve`]); this is for names
    /// people type.
    pub fn lookup(&self, name: &str) -> Lookup {
        let error = match self.resolve(name) {
            Ok(tool) => return Lookup::Exposed(tool),
            Err(error) => error,
        };
        let mut same_name: Vec<Arc<ExposedTool>> = self
            .tools
            .iter()
            .filter(|t| t.original == name || t.alias.as_deref() == Some(name))
            .cloned()
            .collect();
        if same_name.len() == 1 {
            return Lookup::ByToolName(same_name.remove(0));
        }
        Lookup::NotFound { error, same_name }
    }

    /// Collisions, unknown overrides, unmatched filters, left-out servers.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Logs, as warnings, the diagnostics that `previous` did not have (all of them when
    /// there is no previous catalogue), so a rebuild does not repeat old news.
    pub(crate) fn warn_new_diagnostics(&self, previous: Option<&Catalog>) {
        for diagnostic in &self.diagnostics {
            if previous.is_some_and(|p| p.diagnostics.contains(diagnostic)) {
                continue;
            }
            match diagnostic {
                Diagnostic::AliasClash { server, .. } => {
                    tracing::error!(target: REGISTRATION_LOG, server = %server, "{diagnostic}")
                }
                _ => tracing::warn!(target: REGISTRATION_LOG, "{diagnostic}"),
            }
        }
    }

    /// The whole catalogue in one provider's form: a JSON array of tool objects.
    pub fn export(&self, format: ExportFormat) -> Value {
        Value::Array(self.tools.iter().map(|t| t.export(format)).collect())
    }
}

/// The servers among `servers` that can have a tool exposed as `name` under `config`: those
/// whose `{server}{separator}` prefix `name` starts with (several when one server's name
/// starts like another's). Empty when names carry no prefix (`prefix = "never"`) or no
/// server's prefix fits: any server may then have it. A caller that knows the exposed
/// name it wants can connect only these servers.
pub fn servers_for_name<'a>(
    config: &CatalogConfig,
    name: &str,
    servers: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    if config.prefix == PrefixMode::Never {
        return Vec::new();
    }
    servers
        .into_iter()
        .filter(|server| {
            naming::may_belong_to(name, server, &config.separator, config.max_name_length)
        })
        .collect()
}

/// One server's tools after overrides and filters, with their safe names.
fn candidates_of<'a>(
    config: &CatalogConfig,
    server: &'a ServerTools,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Candidate<'a>> {
    let listed: BTreeSet<&str> = server.tools.iter().map(|t| t.name.as_ref()).collect();
    let unknown: Vec<String> = server
        .overrides
        .keys()
        .filter(|tool| !listed.contains(tool.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        diagnostics.push(Diagnostic::UnknownOverrides {
            server: server.server.clone(),
            tools: unknown,
        });
    }
    let alias_of = |tool: &str| server.overrides.get(tool).and_then(|o| o.alias.as_deref());
    if let Some((tool, alias)) = listed.iter().find_map(|tool| {
        alias_of(tool)
            .filter(|a| listed.contains(a))
            .map(|a| (*tool, a))
    }) {
        diagnostics.push(Diagnostic::AliasClash {
            server: server.server.clone(),
            tool: tool.to_string(),
            alias: alias.to_string(),
        });
        return Vec::new();
    }

    let mut filter = Filter::new(&server.filter);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for tool in &server.tools {
        let original: &str = tool.name.as_ref();
        if !seen.insert(original) {
            tracing::debug!(server = %server.server, tool = original, "tool listed twice; the first is used");
            continue;
        }
        let alias = alias_of(original);
        let names: Vec<&str> = std::iter::once(original).chain(alias).collect();
        if !filter.admits(&names) {
            continue;
        }
        let short = alias.unwrap_or(original);
        let (raw, name) = match config.prefix {
            PrefixMode::Always => (
                format!("{}{}{short}", server.server, config.separator),
                naming::prefixed_name(
                    &server.server,
                    &config.separator,
                    short,
                    config.max_name_length,
                ),
            ),
            PrefixMode::Never => (
                short.to_string(),
                naming::bare_name(short, config.max_name_length),
            ),
        };
        out.push(Candidate {
            server: &server.server,
            tool,
            alias,
            description: server
                .overrides
                .get(original)
                .and_then(|o| o.description.as_deref()),
            rewritten: name != raw,
            name,
        });
    }
    if let Some((key, patterns)) = filter.unmatched() {
        diagnostics.push(Diagnostic::UnmatchedFilter {
            server: server.server.clone(),
            key,
            patterns,
        });
    }
    out
}

/// Gives every candidate a unique final name, or drops it, following the policy.
/// `candidates` are in precedence order; the result keeps that order.
fn settle_collisions<'a>(
    config: &CatalogConfig,
    candidates: Vec<Candidate<'a>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Vec<(String, Candidate<'a>)>, Error> {
    let mut groups: BTreeMap<String, Vec<Candidate<'a>>> = BTreeMap::new();
    for c in candidates {
        groups.entry(c.name.clone()).or_default().push(c);
    }
    // Every group's own name is spoken for, so a suffixed name never takes one.
    let mut taken: HashSet<String> = groups.keys().cloned().collect();
    let tool_ref = |c: &Candidate<'_>| ToolRef {
        server: c.server.to_string(),
        tool: c.tool.name.to_string(),
    };
    let mut named = Vec::new();
    let mut refused = Vec::new();
    for (name, mut group) in groups {
        if group.len() == 1 {
            named.push((name, group.remove(0)));
            continue;
        }
        let keeper = match config.collisions {
            CollisionPolicy::LastWins => group.len() - 1,
            _ => 0,
        };
        let kept = group.remove(keeper);
        for (n, other) in (2..).zip(group) {
            let renamed_to = match config.collisions {
                CollisionPolicy::Suffix => {
                    let mut n = n;
                    let mut candidate = naming::with_suffix(&name, n, config.max_name_length);
                    while taken.contains(&candidate) {
                        n += 1;
                        candidate = naming::with_suffix(&name, n, config.max_name_length);
                    }
                    taken.insert(candidate.clone());
                    Some(candidate)
                }
                _ => None,
            };
            let diagnostic = Diagnostic::Collision {
                name: name.clone(),
                kept: tool_ref(&kept),
                other: tool_ref(&other),
                renamed_to: renamed_to.clone(),
            };
            if config.collisions == CollisionPolicy::Error {
                refused.push(diagnostic);
                continue;
            }
            diagnostics.push(diagnostic);
            if let Some(renamed) = renamed_to {
                named.push((renamed, other));
            }
        }
        named.push((name, kept));
    }
    if !refused.is_empty() {
        return Err(collision_error(&refused));
    }
    Ok(named)
}

fn collision_error(collisions: &[Diagnostic]) -> Error {
    let list: Vec<String> = collisions
        .iter()
        .filter_map(|d| match d {
            Diagnostic::Collision {
                name, kept, other, ..
            } => Some(format!("'{name}' is wanted by {kept} and {other}")),
            _ => None,
        })
        .collect();
    Error::Config(
        ConfigError::new(
            format!("tool names collide: {}", list.join("; ")),
            "give one of them an alias in [servers.NAME.tool_overrides.TOOL], leave one out with \
             include/exclude, or set collisions = \"suffix\"",
        )
        .with_key("catalog.collisions"),
    )
}

fn exposed(name: String, c: Candidate<'_>) -> ExposedTool {
    let tool = c.tool;
    let description = c
        .description
        .map(str::to_string)
        .or_else(|| {
            tool.description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("Tool '{}' of the MCP server '{}'.", tool.name, c.server));
    ExposedTool {
        name,
        server: c.server.to_string(),
        original: tool.name.to_string(),
        alias: c.alias.map(str::to_string),
        title: tool.title.clone(),
        description,
        input_schema: tool.input_schema.clone(),
        output_schema: tool.output_schema.clone(),
        annotations: tool.annotations.as_ref().map(ToolAnnotations::from),
        arguments: ArgumentSchema::new(
            Value::Object((*tool.input_schema).clone()),
            c.server,
            &tool.name,
        ),
    }
}

#[cfg(test)]
mod tests;
