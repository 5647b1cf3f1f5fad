//! Discovery: asking a tooling registry which servers to use.
//!
//! A `[discovery]` table names a registry (the Agent 365 tooling gateway, or any URL or file
//! holding an `mcpServers` document). [`discover`] asks it once and returns [`Discovery`]:
//! servers ready to register like configured ones, the entries that cannot be registered,
//! and the `server_auth` keys that matched nothing. [`discover`] keeps no state; the hub uses
//! a [`RegistryClient`] (which only remembers which unused keys it already warned about) at
//! start and on every refresh, and decides (under its registration policy) what failures do.
//!
//! Rules, in the order they apply:
//!
//! 1. **Display name** ([`display_name`]): the registry's name (`mcpServerName`, or the key of
//!    an `mcpServers` document) when present, else `unknown:<host>` from the server's URL
//!    (host lower-cased, no port or credentials; an IPv6 host without brackets), else
//!    `unknown`. It is what people see and what `[discovery.server_auth.NAME]` matches,
//!    ignoring case. Two servers may share a display name.
//! 2. **Order**: entries are sorted by (display name, URL or command, headers), so everything
//!    below is the same whatever order the registry answered in.
//! 3. **Headers**: a server's headers are the registry's (v2 `headers`, escaped so they are
//!    sent literally) with the matching `server_auth` headers on top (case-insensitive
//!    header names; `server_auth` wins). `server_auth` values stay templates, rendered at
//!    connect time like any configured header.
//! 4. **Server name** ([`server_names`]): `ServerConfig::name` must be a valid config server
//!    name (`[A-Za-z0-9_-]`, it prefixes tool names). In the sorted order, a display name
//!    that is already valid is kept (first come); others, and later duplicates, are
//!    normalised (every other character → `_`, e.g. `unknown:alpha.example.com` →
//!    `unknown_alpha_example_com`) and given `_2`, `_3`, ... until unique.
//!    [`Discovery::display_names`] maps names back to display names.
//!
//! Discovery failing as a whole is an [`Error`]: [`Error::RegistryAuth`] (HTTP 401/403),
//! [`Error::Discovery`] (another status, with `status`; or a malformed body, without),
//! [`Error::Unreachable`] (connect errors, broken bodies, the request timeout, unreadable
//! files), [`Error::Template`]/[`Error::Config`] (the token or headers cannot be rendered).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::config::unique_server_names;
use crate::config::{DiscoveryConfig, RegistryKind, ServerConfig};
use crate::error::Error;

mod fetch;
mod parse;

pub use fetch::DISCOVERY_USER_AGENT;

/// What one discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Servers to register, in name order, under unique valid names (module docs, rule 4).
    pub servers: Vec<ServerConfig>,
    /// `ServerConfig::name` → display name, for every server in `servers`.
    pub display_names: BTreeMap<String, String>,
    /// Listed servers that cannot be registered (no usable URL, a bad entry, a `command` in
    /// a remote document), as (display name, [`Error::Discovery`] without status), in
    /// display-name order. They are registration failures under the hub's policy.
    pub failures: Vec<(String, Error)>,
    /// `[discovery.server_auth]` keys, as written, that matched no listed server; sorted.
    pub unused_auth_keys: Vec<String>,
}

impl Discovery {
    /// The display name of the server named `server`.
    pub fn display_name(&self, server: &str) -> Option<&str> {
        self.display_names.get(server).map(String::as_str)
    }
}

/// Asks the registry of `config` which servers to use.
///
/// `variables` is the config's `[variables]` table (for `auth_token` and `headers`
/// templates, rendered now; `${env:X}` reads the process environment). `client` is used as
/// given (redirect and proxy policy are the caller's); each request is limited to
/// `config.request_timeout`. Logs one WARN when `server_auth` keys match nothing.
pub async fn discover(
    config: &DiscoveryConfig,
    variables: &BTreeMap<String, String>,
    client: &reqwest::Client,
) -> Result<Discovery, Error> {
    let discovery = discover_quietly(config, variables, client).await?;
    warn_unused(config.registry_name(), &discovery.unused_auth_keys);
    Ok(discovery)
}

/// The warning about `[discovery.server_auth]` keys that matched no listed server.
fn warn_unused(registry: &str, keys: &[String]) {
    if !keys.is_empty() {
        tracing::warn!(
            registry,
            keys = ?keys,
            "[discovery.server_auth] names servers the registry did not list (no headers \
             applied); update or remove these entries"
        );
    }
}

/// [`discover`] without the unused-key warning (its callers decide when to warn).
async fn discover_quietly(
    config: &DiscoveryConfig,
    variables: &BTreeMap<String, String>,
    client: &reqwest::Client,
) -> Result<Discovery, Error> {
    let registry = config.registry_name();
    let fetched = fetch::fetch(config, variables, client).await?;
    let entries = match &config.registry {
        RegistryKind::A365 { endpoint, api, .. } => parse::a365(&fetched.body, *api, endpoint),
        RegistryKind::Url { .. } => parse::document(&fetched.body, fetched.remote),
    }
    .map_err(|reason| Error::Discovery {
        registry: registry.to_string(),
        status: None,
        reason,
    })?;
    let discovery = assemble(registry, entries, &config.server_auth);
    tracing::info!(
        registry,
        servers = discovery.servers.len(),
        failures = discovery.failures.len(),
        "discovered MCP servers"
    );
    Ok(discovery)
}

/// A registry with everything [`discover`] needs, owned and cheap to clone: for callers that
/// ask again and again from a task (the hub's refresh and retry).
#[derive(Clone)]
pub struct RegistryClient {
    config: Arc<DiscoveryConfig>,
    variables: Arc<BTreeMap<String, String>>,
    client: reqwest::Client,
    /// The unused `server_auth` keys last warned about: a refresh warns only when they
    /// change, not every interval.
    warned: Arc<Mutex<Vec<String>>>,
}

/// Names the registry only: the variables and the config's templates may hold secrets.
impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.name())
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    pub fn new(
        config: DiscoveryConfig,
        variables: BTreeMap<String, String>,
        client: reqwest::Client,
    ) -> Self {
        RegistryClient {
            config: Arc::new(config),
            variables: Arc::new(variables),
            client,
            warned: Arc::default(),
        }
    }

    /// The registry's name in errors and health ([`DiscoveryConfig::registry_name`]).
    pub fn name(&self) -> &'static str {
        self.config.registry_name()
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// [`discover`] with this registry's settings; the unused-key warning is logged once
    /// for as long as the same keys stay unused.
    pub async fn discover(&self) -> Result<Discovery, Error> {
        let discovery = discover_quietly(&self.config, &self.variables, &self.client).await?;
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if *warned != discovery.unused_auth_keys {
            warn_unused(self.name(), &discovery.unused_auth_keys);
            warned.clone_from(&discovery.unused_auth_keys);
        }
        Ok(discovery)
    }
}

/// The display name of a listed server (module docs, rule 1).
///
/// `display_name(None, Some("https://Alpha.Example.com:8443/mcp"))` is
/// `unknown:alpha.example.com`.
pub fn display_name(name: Option<&str>, url: Option<&str>) -> String {
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    let host = url
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| match u.host()? {
            url::Host::Domain(d) => Some(d.to_lowercase()),
            url::Host::Ipv4(a) => Some(a.to_string()),
            url::Host::Ipv6(a) => Some(a.to_string()),
        })
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("unknown:{host}"),
        None => "unknown".to_string(),
    }
}

/// Unique valid server names for `display_names`, given in their final order (module docs,
/// rule 4). Returns one name per input, in input order.
pub fn server_names(display_names: &[&str]) -> Vec<String> {
    unique_server_names(display_names)
}

/// Orders entries, applies `server_auth`, names servers (module docs, rules 2–4).
fn assemble(
    registry: &str,
    mut entries: Vec<parse::Entry>,
    server_auth: &BTreeMap<String, BTreeMap<String, String>>,
) -> Discovery {
    entries.sort_by_cached_key(sort_key);

    let auth: BTreeMap<String, (&String, &BTreeMap<String, String>)> = server_auth
        .iter()
        .map(|(key, headers)| (key.to_lowercase(), (key, headers)))
        .collect();
    let mut used = BTreeSet::new();
    for entry in &mut entries {
        let Some((key, headers)) = auth.get(&entry.display_name.to_lowercase()) else {
            continue;
        };
        used.insert(*key);
        if let Ok(server) = &mut entry.server {
            for (name, value) in *headers {
                server.headers.retain(|h, _| !h.eq_ignore_ascii_case(name));
                server.headers.insert(name.clone(), value.clone());
            }
        }
    }
    let unused_auth_keys: Vec<String> = server_auth
        .keys()
        .filter(|k| !used.contains(k))
        .cloned()
        .collect();

    let mut discovery = Discovery {
        unused_auth_keys,
        ..Discovery::default()
    };
    let (ok, failed): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.server.is_ok());
    let displays: Vec<&str> = ok.iter().map(|e| e.display_name.as_str()).collect();
    let names = server_names(&displays);
    for (entry, name) in ok.into_iter().zip(names) {
        let Ok(mut server) = entry.server else {
            continue;
        };
        tracing::debug!(registry, server = %name, display_name = %entry.display_name, "discovered server");
        server.name = name.clone();
        discovery.display_names.insert(name, entry.display_name);
        discovery.servers.push(server);
    }
    discovery.servers.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in failed {
        if let Err(reason) = entry.server {
            tracing::debug!(registry, server = %entry.display_name, %reason, "discovered server cannot be registered");
            let error = Error::Discovery {
                registry: registry.to_string(),
                status: None,
                reason: format!("server '{}': {reason}", entry.display_name),
            };
            discovery.failures.push((entry.display_name, error));
        }
    }
    discovery
}

/// (display name, where the server is, its headers / why it failed): a total order over
/// what the registry says, independent of answer order.
fn sort_key(entry: &parse::Entry) -> (String, String, String) {
    match &entry.server {
        Ok(server) => {
            let location = match (&server.url, &server.command) {
                (Some(url), _) => url.clone(),
                (None, Some(command)) => format!("{command} {}", server.args.join(" ")),
                (None, None) => String::new(),
            };
            (
                entry.display_name.clone(),
                location,
                format!("{:?}", server.headers),
            )
        }
        Err(reason) => (entry.display_name.clone(), String::new(), reason.clone()),
    }
}

#[cfg(test)]
mod tests;
