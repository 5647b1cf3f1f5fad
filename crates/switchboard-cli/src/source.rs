//! Which servers a command talks to: a config file, `--url`, `--stdio`, or the built-in demo.
//!
//! The CLI runs once: skipped servers are not retried in the background (so `check` calls
//! a failed server `skipped`, not `retrying`), and a call of `SERVER__TOOL` connects only
//! the server(s) that name can belong to ([`Source::for_tool`]).

use std::path::Path;
use std::sync::Arc;

use switchboard::auth::{BrowserOpener, FileStore};
use switchboard::config::{CatalogConfig, DEFAULT_CONFIG_FILE, PrefixMode, check_server_url};
use switchboard::hub::{Progress, TraceCalls};
use switchboard::{Config, Connector, Error, ErrorClass, Hub, HubSettings, ServerConfig};

use crate::SourceArgs;
use crate::ask::Terminal;
use crate::output::print_error;
use crate::progress::{Board, Style};

/// The exit code for bad input or bad config.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Prints why the hub could not start and returns the exit status: 2 when the config is
/// the problem (e.g. `collisions = "error"`), 1 when servers or the registry are
/// (`fail_fast`).
pub fn start_failed(error: &Error) -> u8 {
    match error {
        // The server's own error, then what the policy made of it (each said once).
        Error::Registration { source, .. } => {
            print_error(source);
            eprintln!(
                "note: this server could not be registered and its on_server_registration_error \
                 is fail_fast, so nothing was started"
            );
        }
        _ => print_error(error),
    }
    if error.class() == ErrorClass::Config {
        EXIT_BAD_INPUT
    } else {
        1
    }
}

/// The servers to use, and whether tool names carry a `SERVER__` prefix.
pub enum Source {
    /// Servers from a config file (or the demo): names are `SERVER__TOOL`.
    Config(Config),
    /// One server from `--url`/`--stdio`: names are the server's own.
    Single(Box<ServerConfig>),
    /// The in-process demo server.
    Demo,
}

/// The name the demo server goes by.
pub const DEMO_SERVER: &str = "demo";

impl Source {
    /// [`Source::from_args`], printing the problem; the error is the exit status. Prints
    /// the config's warnings first, before anything connects, and refuses a config with no
    /// enabled server (nothing to connect to is a config problem, whatever the command).
    pub fn load(args: &SourceArgs) -> Result<Source, u8> {
        let source = Source::from_args(args).map_err(|message| {
            eprintln!("error: {message}");
            EXIT_BAD_INPUT
        })?;
        if let Source::Config(config) = &source {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let enabled = config.servers.values().filter(|s| s.enabled).count();
            if enabled == 0 && config.discovery.is_none() {
                let file = config
                    .source
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
                eprintln!(
                    "error: {}: no enabled servers: the file lists none, or every one is \
                     disabled. Add a server, or enable one",
                    file.display()
                );
                return Err(EXIT_BAD_INPUT);
            }
        }
        Ok(source)
    }

    pub fn from_args(args: &SourceArgs) -> Result<Source, String> {
        if let Some(url) = &args.url {
            check_server_url("--url", url).map_err(|e| format!("--url: {e}"))?;
            let server = ServerConfig::url(single_name(url), url.clone());
            return Ok(Source::Single(Box::new(server)));
        }
        if let Some(line) = &args.stdio {
            let words = shell_words::split(line)
                .map_err(|e| format!("--stdio: cannot split the command line: {e}"))?;
            let Some((command, rest)) = words.split_first() else {
                return Err("--stdio: the command is empty".to_owned());
            };
            let name = Path::new(command)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "stdio".to_owned());
            return Ok(Source::Single(Box::new(ServerConfig::stdio(
                sanitize(&name),
                command.clone(),
                rest.to_vec(),
            ))));
        }
        if let Some(path) = &args.config {
            return Config::load(path)
                .map(Source::Config)
                .map_err(|e| e.to_string());
        }
        let default = Path::new(DEFAULT_CONFIG_FILE);
        if default.exists() {
            return Config::load(default)
                .map(Source::Config)
                .map_err(|e| e.to_string());
        }
        eprintln!(
            "note: no {DEFAULT_CONFIG_FILE} here and no --config/--url/--stdio: using the built-in demo server"
        );
        Ok(Source::Demo)
    }

    /// Only the servers a tool exposed as `name` can belong to, when the name says (a
    /// `SERVER__TOOL` name under the config's `[catalog]`; a tooling registry is then not
    /// asked). Otherwise, and for a single server or the demo, the same source.
    pub fn for_tool(self, name: &str) -> Source {
        let Source::Config(mut config) = self else {
            return self;
        };
        let owners: Vec<String> = switchboard::catalog::servers_for_name(
            &config.catalog,
            name,
            config.servers.keys().map(String::as_str),
        )
        .into_iter()
        .map(str::to_owned)
        .collect();
        if !owners.is_empty() {
            config.servers.retain(|server, _| owners.contains(server));
            config.discovery = None;
        }
        Source::Config(config)
    }

    /// Only `server` when the config has it (the server an exposed resource URI names; a
    /// tooling registry is then not asked). Otherwise the same source.
    pub fn for_server(self, server: Option<&str>) -> Source {
        match (self, server) {
            (Source::Config(mut config), Some(server)) if config.servers.contains_key(server) => {
                config.servers.retain(|name, _| name == server);
                config.discovery = None;
                Source::Config(config)
            }
            (source, _) => source,
        }
    }

    /// The configured servers (none for the demo; a registry's are not asked for).
    pub fn servers(&self) -> Vec<ServerConfig> {
        match self {
            Source::Config(config) => config.servers.values().cloned().collect(),
            Source::Single(server) => vec![(**server).clone()],
            Source::Demo => Vec::new(),
        }
    }

    /// How tools are named: the config's `[catalog]`; a single server's tools keep their own
    /// names.
    pub fn catalog_config(&self) -> CatalogConfig {
        match self {
            Source::Config(config) => config.catalog.clone(),
            Source::Single(_) => CatalogConfig {
                prefix: PrefixMode::Never,
                ..CatalogConfig::default()
            },
            Source::Demo => CatalogConfig::default(),
        }
    }

    /// Connects to every server at once and builds the catalogue, showing progress in
    /// `style`; on failure prints why and returns the exit status.
    /// With `sign_in`, a server that asks for an OAuth sign-in gets one (the browser flow,
    /// see [`signs_in`]).
    pub async fn connect(&self, style: Style, sign_in: bool) -> Result<Hub, u8> {
        self.connect_asking(style, None, sign_in).await
    }

    /// [`Source::connect`] with `asker` answering what servers ask in the middle of calls.
    pub async fn connect_asking(
        &self,
        style: Style,
        asker: Option<Terminal>,
        sign_in: bool,
    ) -> Result<Hub, u8> {
        let board = Board::new(style);
        let started = self
            .hub_observed(
                &Connector::new(),
                &|event| board.show(event),
                asker,
                sign_in,
            )
            .await;
        board.done();
        started.map_err(|error| start_failed(&error))
    }

    /// Connects to every server at once and builds the catalogue, telling `progress` what
    /// happens to each server as it happens.
    async fn hub_observed(
        &self,
        connector: &Connector,
        progress: &(dyn Fn(Progress<'_>) + Sync),
        asker: Option<Terminal>,
        sign_in: bool,
    ) -> Result<Hub, Error> {
        // Each call's timing and outcome, shown with --verbose (INFO).
        let mut builder = Hub::builder()
            .connector(connector.clone())
            .observer(progress)
            .layer(TraceCalls);
        // OAuth tokens outlive the command: the user's state directory
        // (SWITCHBOARD_STATE_DIR overrides), else memory.
        if let Some(store) = FileStore::default_location() {
            builder = builder.token_store(Arc::new(store));
        }
        if let Some(asker) = asker {
            builder = builder.input_handler(asker);
        }
        if sign_in {
            builder = builder.opener(Arc::new(BrowserOpener::from_env()));
        }
        let builder = match self {
            Source::Config(config) => builder.config(config),
            Source::Single(server) => builder.server((**server).clone()),
            Source::Demo => builder.in_process(demo_server(), crate::demo::connect),
        };
        builder.settings(self.settings()).start().await
    }

    /// The settings the hub runs with: the config's, or for `--url`, `--stdio` and the demo
    /// only their naming. One shot, so nothing would be left running to retry a skipped
    /// server, and no change to the tools would be seen.
    fn settings(&self) -> HubSettings {
        let mut settings = match self {
            Source::Config(config) => HubSettings::from(config),
            _ => HubSettings {
                catalog: self.catalog_config(),
                ..HubSettings::default()
            },
        };
        settings.registration.retry_skipped = false;
        settings.follow_changes = false;
        settings
    }
}

/// Whether a command signs people in to servers that ask: with `--login`, or when stdin
/// and stderr are a terminal (a person is there) unless `--no-login`. The authorization URL
/// goes to `$SWITCHBOARD_BROWSER`, else `$BROWSER`, else the desktop's opener, and is
/// printed on stderr.
pub fn signs_in(args: &SourceArgs) -> bool {
    use std::io::IsTerminal;
    args.login
        || (!args.no_login && std::io::stdin().is_terminal() && std::io::stderr().is_terminal())
}

fn demo_server() -> ServerConfig {
    ServerConfig::stdio(DEMO_SERVER, "(built in)", Vec::new())
}

/// A server name for `--url`: its host and port, as a valid server name
/// (`127.0.0.1:3001` → `127_0_0_1_3001`). It only appears in messages: tools of a single
/// server are not prefixed.
fn single_name(url: &str) -> String {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit('@').next())
        .filter(|h| !h.is_empty())
        .unwrap_or("server");
    sanitize(authority)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_server_is_named_after_its_host_and_port() {
        assert_eq!(single_name("http://127.0.0.1:1/mcp"), "127_0_0_1_1");
        assert_eq!(
            single_name("https://user:pw@example.com/sse"),
            "example_com"
        );
        assert_eq!(single_name("http://[::1]:8080"), "___1__8080");
    }
}
