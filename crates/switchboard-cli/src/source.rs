//! Which servers a command talks to: a config file, `--url`, `--stdio`, or the built-in demo.

use std::path::Path;

use rmcp::ServiceExt;
use std::sync::Arc;

use switchboard::config::{CatalogConfig, DEFAULT_CONFIG_FILE, PrefixMode, Variables};
use switchboard::hub::Progress;
use switchboard::sessions::Dial;
use switchboard::{Config, Connector, Error, ErrorClass, Hub, HubSettings, ServerConfig, Upstream};

use crate::SourceArgs;

/// The exit code for bad input or bad config.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Prints why the hub could not start and returns the exit status: 2 when the config is
/// the problem (e.g. `collisions = "error"`), 1 when servers or the registry are
/// (`fail_fast`).
pub fn start_failed(error: &Error) -> u8 {
    eprintln!("error: {error} [{}]", error.class());
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
    /// [`Source::from_args`], printing the problem; the error is the exit status.
    pub fn load(args: &SourceArgs) -> Result<Source, u8> {
        Source::from_args(args).map_err(|message| {
            eprintln!("error: {message}");
            EXIT_BAD_INPUT
        })
    }

    pub fn from_args(args: &SourceArgs) -> Result<Source, String> {
        if let Some(url) = &args.url {
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

    /// The servers, disabled ones included, in name order (the hub only records those).
    pub fn servers(&self) -> Vec<ServerConfig> {
        match self {
            Source::Config(config) => config.servers.values().cloned().collect(),
            Source::Single(server) => vec![(**server).clone()],
            Source::Demo => vec![ServerConfig::stdio(DEMO_SERVER, "(built in)", Vec::new())],
        }
    }

    /// Whether servers also come from a tooling registry (`[discovery]`).
    pub fn has_discovery(&self) -> bool {
        matches!(self, Source::Config(config) if config.discovery.is_some())
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

    /// Connects to every server at once and builds the catalogue.
    pub async fn hub(&self, connector: &Connector) -> Result<Hub, Error> {
        self.hub_observed(connector, &|_| {}).await
    }

    /// [`Self::hub`], telling `progress` what happens to each server as it happens.
    pub async fn hub_observed(
        &self,
        connector: &Connector,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Hub, Error> {
        let Source::Config(config) = self else {
            let settings = HubSettings {
                catalog: self.catalog_config(),
                ..HubSettings::default()
            };
            return Hub::start_observed(settings, self.servers(), self.dial(connector), progress)
                .await;
        };
        Hub::connect_observed(config, connector, progress).await
    }

    /// How connections to [`Self::servers`] are opened.
    fn dial(&self, connector: &Connector) -> Dial {
        match self {
            Source::Config(config) => switchboard::hub::dial(config, connector),
            Source::Single(_) => {
                let connector = connector.clone();
                Arc::new(move |server, _| {
                    let connector = connector.clone();
                    Box::pin(async move { connector.connect(&server, Variables::default()).await })
                })
            }
            Source::Demo => Arc::new(|server, _| {
                Box::pin(async move {
                    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
                    tokio::spawn(async move {
                        if let Ok(running) = switchboard_testkit::demo::DemoServer::new()
                            .serve(server_side)
                            .await
                        {
                            let _ = running.waiting().await;
                        }
                    });
                    Upstream::serve(&server, client_side).await
                })
            }),
        }
    }
}

/// A server name for `--url`: its host and port. It only appears in messages: tools of a
/// single server are not prefixed.
fn single_name(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit('@').next())
        .filter(|h| !h.is_empty())
        .unwrap_or("server")
        .to_owned()
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
