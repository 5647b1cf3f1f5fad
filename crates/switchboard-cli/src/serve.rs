//! `switchboard serve`: loads the config, starts the hub (timed by the gateway's metrics),
//! and hands both to the gateway (`switchboard-gateway`), which serves until SIGTERM or
//! ctrl-c and reloads the config file on SIGHUP or when it changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use switchboard::auth::{BrowserOpener, FileStore};
use switchboard::config::{DEFAULT_CONFIG_FILE, SessionMode};
use switchboard::hub::{HubBuilder, TraceCalls};
use switchboard::{Hub, MetaInjector};
use switchboard_gateway::scale::Scale;
use switchboard_gateway::{
    Gateway, GatewaySettings, Metrics, Reloader, UpstreamOffers, bind, check_exposure,
    shutdown_signal,
};

use crate::SourceArgs;
use crate::source::{EXIT_BAD_INPUT, Source, start_failed};

/// The config file `config` names (default `switchboard.toml`), loaded: its path and
/// contents, or the exit status its error was reported with. Loading only: sign-ins are
/// `with_sign_ins`'s.
fn load_config(config: Option<PathBuf>) -> Result<(PathBuf, switchboard::Config), u8> {
    let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let args = SourceArgs {
        config: Some(path.clone()),
        url: None,
        stdio: None,
        login: false,
        no_login: true,
    };
    match Source::load(&args)? {
        Source::Config(config) => Ok((path, config)),
        _ => unreachable!("a --config source is a config"),
    }
}

/// `switchboard rekey`: moves every Redis record of `config`'s `[scale]` store still under
/// an older keyring key to the primary key (key rotation, docs/gateway.md), printing how
/// many moved. Exit status: 0 done, 1 Redis failed (run it again), 2 bad config or no store.
pub async fn rekey(config: Option<PathBuf>) -> u8 {
    let (path, config) = match load_config(config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let no_store = || {
        eprintln!(
            "error: {}: rekey needs [scale] store = \"redis\" (there is nothing to move \
             without it)",
            path.display()
        );
        EXIT_BAD_INPUT
    };
    let Some(scale) = &config.scale else {
        return no_store();
    };
    let idle = GatewaySettings::from(&*config.gateway).session_idle_timeout;
    let scale = match Scale::load(scale, idle) {
        Ok(scale) => scale,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_BAD_INPUT;
        }
    };
    match scale.rekey().await {
        Ok(Some((sessions, tokens))) => {
            println!(
                "moved to key {}: {sessions} session records, {tokens} OAuth tokens and client \
                 registrations",
                char::from(scale.ring.primary().kid)
            );
            0
        }
        Ok(None) => no_store(),
        Err(error) => {
            eprintln!("error: {error}; what moved stays moved: run it again");
            1
        }
    }
}

/// Serves the servers of `config` (default `./switchboard.toml`) on `listen` (default
/// `[gateway] listen`). Exit status: 0 after a clean shutdown, 1 when the hub (a
/// `fail_fast` server) or the HTTP server failed, 2 for bad config or a busy address.
/// With `injector`, upstream requests carry their span's trace context (traces are exported).
pub async fn run(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    injector: Option<MetaInjector>,
) -> u8 {
    let (path, config) = match load_config(config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let mut settings = GatewaySettings::from(&*config.gateway);
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    if let Some(scale) = &config.scale {
        match Scale::load(scale, settings.session_idle_timeout) {
            Ok(scale) => settings.scale = Some(Arc::new(scale)),
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_BAD_INPUT;
            }
        }
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
    // Each user of a per_session server holds one of its upstream sessions: say the cap.
    for server in config.servers.values() {
        if server.session_mode == SessionMode::PerSession {
            tracing::info!(
                server = %server.name,
                max_sessions = server.max_sessions,
                "per_session: at most max_sessions upstream sessions on this replica; a session \
                 beyond that closes the least recently used idle one (raise it to the users one \
                 replica serves at once)"
            );
        }
    }
    // Catches SIGHUP from now on (while the servers start, too).
    let reloader = Reloader::new(path, config.clone());
    let metrics = Metrics::new();
    let mut builder = Hub::builder();
    // [scale] store: replicas share classic per_session upstream sessions.
    if let Some(shared) = settings.scale.as_ref().and_then(|s| s.shared_sessions()) {
        builder = builder.shared_sessions(shared);
    }
    if let Some(injector) = injector {
        builder = builder.meta_injector(injector);
    }
    let hub = match with_sign_ins(builder, settings.scale.as_deref())
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
        // A second SIGTERM or ctrl-c ends `[gateway] shutdown_delay` early.
        .hurry_on(async { shutdown_signal().await })
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

/// OAuth for the gateway's upstream connections: with `[scale] store = "redis"` tokens live
/// in Redis, shared by the replicas; otherwise in the same state directory as the CLI's (`switchboard auth login SERVER` signs the gateway in; renewals are written
/// back under the store's lock, so both can share it), and a sign-in runs only when
/// `$SWITCHBOARD_BROWSER` names a program to hand the authorization URL to (nobody is at a
/// browser otherwise: such a server is `needs_auth`, and `check` says what to run).
fn with_sign_ins<'a>(mut builder: HubBuilder<'a>, scale: Option<&Scale>) -> HubBuilder<'a> {
    // [scale] store = "redis": replicas share tokens through Redis instead.
    if let Some(shared) = scale.and_then(Scale::token_store) {
        builder = builder.token_store(shared);
    } else if let Some(store) = FileStore::default_location() {
        builder = builder.token_store(Arc::new(store));
    }
    if std::env::var_os("SWITCHBOARD_BROWSER").is_some_and(|v| !v.is_empty()) {
        builder = builder.opener(Arc::new(BrowserOpener::from_env()));
    }
    builder
}
