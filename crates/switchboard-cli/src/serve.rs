//! `switchboard serve`: loads the config, starts the hub (timed by the gateway's metrics),
//! and hands both to the gateway (`switchboard-gateway`), which serves until SIGTERM or
//! ctrl-c and reloads the config file on SIGHUP or when it changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use switchboard::auth::{BrowserOpener, FileStore};
use switchboard::config::DEFAULT_CONFIG_FILE;
use switchboard::hub::{HubBuilder, TraceCalls};
use switchboard::{Hub, MetaInjector};
use switchboard_gateway::{
    Gateway, GatewaySettings, Metrics, Reloader, UpstreamOffers, bind, check_exposure,
    shutdown_signal,
};

use crate::SourceArgs;
use crate::source::{EXIT_BAD_INPUT, Source, start_failed};

/// Serves the servers of `config` (default `./switchboard.toml`) on `listen` (default
/// `[gateway] listen`). Exit status: 0 after a clean shutdown, 1 when the hub (a
/// `fail_fast` server) or the HTTP server failed, 2 for bad config or a busy address.
/// With `injector`, upstream requests carry their span's trace context (traces are exported).
pub async fn run(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    injector: Option<MetaInjector>,
) -> u8 {
    let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let args = SourceArgs {
        config: Some(path.clone()),
        url: None,
        stdio: None,
        // Loading the config only; sign-ins: see `with_sign_ins`.
        login: false,
        no_login: true,
    };
    let config = match Source::load(&args) {
        Ok(Source::Config(config)) => config,
        Ok(_) => unreachable!("a --config source is a config"),
        Err(code) => return code,
    };
    let mut settings = GatewaySettings::from(&*config.gateway);
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    // Bound before the servers start: a busy address, or one beyond loopback without
    // [gateway.auth], fails at once.
    let exposed = check_exposure(&settings.inbound, settings.listen);
    let listener = match exposed.map(|()| bind(settings.listen)) {
        Ok(bound) => bound.await,
        Err(refused) => Err(refused),
    };
    let listener = match listener {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_BAD_INPUT;
        }
    };
    // Catches SIGHUP from now on (while the servers start, too).
    let reloader = Reloader::new(path, config.clone());
    let metrics = Metrics::new();
    let mut builder = with_sign_ins(Hub::builder());
    if let Some(injector) = injector {
        builder = builder.meta_injector(injector);
    }
    let hub = match builder
        .config(&config)
        .layer(TraceCalls)
        .layer(metrics.upstream_calls())
        // Upstreams are offered elicitation and sampling: downstream clients answer them.
        .input_handler(UpstreamOffers)
        .start()
        .await
    {
        Ok(hub) => hub,
        Err(error) => return start_failed(&error),
    };
    match Gateway::with_metrics(hub, settings, metrics)
        .reloading(reloader)
        .serve(listener, shutdown_signal())
        .await
    {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}

/// OAuth for the gateway's upstream connections: tokens live in the same state directory
/// as the CLI's (`switchboard auth login SERVER` signs the gateway in; renewals are written
/// back under the store's lock, so both can share it), and a sign-in runs only when
/// `$SWITCHBOARD_BROWSER` names a program to hand the authorization URL to (nobody is at a
/// browser otherwise: such a server is `needs_auth`, and `check` says what to run).
fn with_sign_ins(mut builder: HubBuilder<'_>) -> HubBuilder<'_> {
    if let Some(store) = FileStore::default_location() {
        builder = builder.token_store(Arc::new(store));
    }
    if std::env::var_os("SWITCHBOARD_BROWSER").is_some_and(|v| !v.is_empty()) {
        builder = builder.opener(Arc::new(BrowserOpener::from_env()));
    }
    builder
}
