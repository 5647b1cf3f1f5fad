//! [`Hub::builder`]: the one way to start a hub.
//!
//! Every face (CLI, gateway, Python, blocking API, tests, bench) says what it wants (a config,
//! extra servers, a discovery source, a progress observer, call layers) and calls
//! [`HubBuilder::start`]; how connections are opened stays inside the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::calls::CallLayer;
use super::sources::Source;
use super::{Hub, HubSettings, Progress};
use crate::config::{Config, DiscoveryConfig, ServerConfig, Variables};
use crate::discovery::RegistryClient;
use crate::error::Error;
use crate::interaction::InputHandler;
use crate::sessions::{Dial, SharedSessions};
use crate::spans::MetaInjector;
use crate::upstream::{Connector, Upstream};
use tokio::io::DuplexStream;

/// What the hub tells a connect observer ([`HubBuilder::on_connect`]) about every connection
/// it opens: at registration, on reconnects, for each session.
#[derive(Debug, Clone, Copy)]
pub enum ConnectEvent<'a> {
    /// A connection to `server` is about to be opened.
    Opening { server: &'a str },
    /// It is open; `process_id` is a stdio server's process group leader.
    Opened {
        server: &'a str,
        process_id: Option<i32>,
    },
}

type ConnectObserver = Arc<dyn Fn(ConnectEvent<'_>) + Send + Sync>;

/// Opens a byte stream to a server that runs in this process (one per connection).
type OpenInProcess = Arc<dyn Fn() -> DuplexStream + Send + Sync>;

/// Builds a [`Hub`]; see [`Hub::builder`].
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct HubBuilder<'a> {
    settings: HubSettings,
    variables: BTreeMap<String, String>,
    servers: Vec<ServerConfig>,
    discovery: Option<DiscoveryConfig>,
    source: Option<Source>,
    connector: Option<Connector>,
    progress: Option<&'a (dyn Fn(Progress<'_>) + Sync)>,
    on_connect: Option<ConnectObserver>,
    layers: Vec<Arc<dyn CallLayer>>,
    in_process: BTreeMap<String, OpenInProcess>,
    input: Option<Arc<dyn InputHandler>>,
    token_store: Option<Arc<dyn crate::auth::TokenStore>>,
    opener: Option<Arc<dyn crate::auth::Opener>>,
    shared_sessions: Option<Arc<dyn SharedSessions>>,
    meta_injector: Option<MetaInjector>,
}

impl Hub {
    /// Starts describing a hub: `Hub::builder().config(&config).start().await`.
    pub fn builder<'a>() -> HubBuilder<'a> {
        HubBuilder {
            settings: HubSettings::default(),
            variables: BTreeMap::new(),
            servers: Vec::new(),
            discovery: None,
            source: None,
            connector: None,
            progress: None,
            on_connect: None,
            layers: Vec::new(),
            in_process: BTreeMap::new(),
            input: None,
            token_store: None,
            opener: None,
            shared_sessions: None,
            meta_injector: None,
        }
    }
}

impl<'a> HubBuilder<'a> {
    /// Everything a config file says: settings, servers, `[variables]`, `[discovery]`.
    pub fn config(mut self, config: &Config) -> Self {
        self.settings = HubSettings::from(config);
        self.variables = config.variables.clone();
        self.servers.extend(config.servers.values().cloned());
        self.discovery = config.discovery.as_deref().cloned();
        self
    }

    /// The catalogue, session and registration settings (replacing the config's).
    pub fn settings(mut self, settings: HubSettings) -> Self {
        self.settings = settings;
        self
    }

    /// One more server.
    pub fn server(mut self, server: ServerConfig) -> Self {
        self.servers.push(server);
        self
    }

    /// More servers.
    pub fn servers(mut self, servers: impl IntoIterator<Item = ServerConfig>) -> Self {
        self.servers.extend(servers);
        self
    }

    /// A discovery source whose servers join the configured ones (instead of the config's
    /// `[discovery]` registry).
    pub fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// The connector to open connections with (shares HTTP connection pools across hubs).
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Where OAuth tokens are kept (default: in memory, per connector). The CLI uses a
    /// [`FileStore`](crate::auth::FileStore).
    pub fn token_store(mut self, store: Arc<dyn crate::auth::TokenStore>) -> Self {
        self.token_store = Some(store);
        self
    }

    /// Shares the upstream sessions of `per_session` servers speaking a classic revision
    /// (Streamable HTTP with `initialize`) with every hub using the same `store`: a
    /// session's first connection records its upstream session there, and the same session
    /// on another hub (another replica) attaches to it instead of initializing a second one
    /// (see `transport/http/attach.rs`). Closing such a connection then only detaches from
    /// the upstream session unless the session ends ([`Hub::end_session`]). Default: none
    /// (every connection opens its own upstream session).
    pub fn shared_sessions(mut self, store: Arc<dyn SharedSessions>) -> Self {
        self.shared_sessions = Some(store);
        self
    }

    /// Signs people in to OAuth servers that ask (the browser flow), handing the
    /// authorization URL to `opener` ([`BrowserOpener`](crate::auth::BrowserOpener) runs
    /// `$BROWSER`). Default: never; such a server fails as needing a sign-in.
    pub fn opener(mut self, opener: Arc<dyn crate::auth::Opener>) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Told what happens to each server while the hub starts (progress displays).
    pub fn observer(mut self, progress: &'a (dyn Fn(Progress<'_>) + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Told about every connection the hub opens, for as long as it runs.
    pub fn on_connect(
        mut self,
        observer: impl Fn(ConnectEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_connect = Some(Arc::new(observer));
        self
    }

    /// A server that runs in this process and speaks MCP over a stream `open` makes (one
    /// per connection), such as a built-in demo. Its config's transport is not used.
    pub fn in_process(
        mut self,
        server: ServerConfig,
        open: impl Fn() -> DuplexStream + Send + Sync + 'static,
    ) -> Self {
        self.in_process.insert(server.name.clone(), Arc::new(open));
        self.servers.push(server);
        self
    }

    /// A layer every call passes through (outermost first in the order added).
    pub fn layer(mut self, layer: impl CallLayer) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Answers what servers ask in the middle of calls (elicitation, sampling) for calls
    /// whose session has no handler of its own; see [`crate::interaction`]. Without one, each
    /// server's `elicitation` policy answers and sampling is not offered.
    pub fn input_handler(mut self, handler: impl InputHandler) -> Self {
        self.input = Some(Arc::new(handler));
        self
    }

    /// Writes the trace context of each upstream request's span into its `params._meta`
    /// (see [`crate::spans`]); called only while that span is enabled. A face that exports
    /// traces sets it; without one nothing is added.
    pub fn meta_injector(mut self, injector: MetaInjector) -> Self {
        self.meta_injector = Some(injector);
        self
    }

    /// Registers every server (all at once, under its registration policy) and builds the
    /// catalogue. Fails for a `fail_fast` server or registry that failed
    /// ([`Error::Registration`]) and a catalogue that cannot be built (`collisions =
    /// "error"`).
    pub async fn start(self) -> Result<Hub, Error> {
        let mut connector = self.connector.unwrap_or_default();
        if let Some(store) = self.token_store {
            connector = connector.with_token_store(store);
        }
        if let Some(opener) = self.opener {
            connector = connector.with_opener(opener);
        }
        if let Some(store) = self.shared_sessions {
            connector = connector.with_shared_sessions(store);
        }
        let variables = Arc::new(self.variables);
        let source = self.source.or_else(|| {
            let discovery = self.discovery?;
            let client =
                RegistryClient::new(discovery, (*variables).clone(), connector.registry_client());
            Some(Source::registry(client))
        });
        let input = self.input;
        let dial = dial(
            connector,
            variables,
            self.on_connect,
            self.in_process,
            input.clone(),
        );
        let parts = super::Parts {
            settings: self.settings,
            servers: self.servers,
            source,
            dial,
            layers: self.layers,
            input,
            meta_injector: self.meta_injector,
        };
        Hub::start_parts(parts, self.progress.unwrap_or(&|_| {})).await
    }
}

/// Opens connections through `connector` with the hub's `[variables]` (and a session's own,
/// which win), telling `on_connect`.
fn dial(
    connector: Connector,
    variables: Arc<BTreeMap<String, String>>,
    on_connect: Option<ConnectObserver>,
    in_process: BTreeMap<String, OpenInProcess>,
    input: Option<Arc<dyn InputHandler>>,
) -> Dial {
    let in_process = Arc::new(in_process);
    Arc::new(move |server, session| {
        let connector = connector.clone();
        let variables = variables.clone();
        let on_connect = on_connect.clone();
        let open = in_process.get(&server.name).cloned();
        let input = input.clone();
        Box::pin(async move {
            if let Some(open) = open {
                return Upstream::serve_answering(&server, open(), input).await;
            }
            if let Some(observer) = &on_connect {
                observer(ConnectEvent::Opening {
                    server: &server.name,
                });
            }
            let vars = Variables {
                connection: session.as_ref().map(|s| &*s.variables),
                config: Some(&variables),
            };
            let upstream = connector
                .connect_answering(&server, vars, input, session.as_ref())
                .await?;
            if let Some(observer) = &on_connect {
                observer(ConnectEvent::Opened {
                    server: &server.name,
                    process_id: upstream.process_id().await,
                });
            }
            Ok(upstream)
        })
    })
}
