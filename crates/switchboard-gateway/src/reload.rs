//! Reload without downtime: SIGHUP, or a change of the config file, applies the difference
//! to the running hub.
//!
//! [`ReloadPlan::between`] compares the running config with the file's: servers that are new
//! join ([`Hub::add_server`]), servers no longer listed drain and leave
//! ([`Hub::remove_server`] with `[gateway] drain_timeout`), servers whose table changed in
//! any way are replaced ([`Hub::replace_server`]: the new one connects while the old one
//! serves, one catalogue change swaps them, the old one finishes its calls in flight).
//! Untouched servers, their sessions and their calls in flight are not disturbed; every join and leave is a catalogue change,
//! which connected clients hear as `notifications/tools/list_changed` (`mcp/`). Settings
//! the running hub and gateway cannot take live (`[catalog]`, `[sessions]`, `[gateway]`,
//! `[variables]`, `[discovery]`, the registration policy) are named in a warning, "restart
//! to apply", and keep their running values. A file that fails to load changes nothing:
//! the error (file, key, fix) is logged and the running config stays.
//!
//! The file is watched by polling its modification time, size and inode every 2 s
//! ([`POLL_EVERY`]): one `stat` per poll, no dependency, and it sees every way a file is
//! replaced (written in place, renamed over by an editor, a Kubernetes ConfigMap's symlink
//! swap), where an inotify watch on the file itself misses renames. A change is seen
//! within one poll; a file caught half written fails to load (kept, logged) and loads on
//! the next poll, when its stamp changes again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use switchboard::{Config, Hub, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the config file's stamp is looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// What a reload does to the running hub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadPlan {
    /// Servers the new config adds.
    pub add: Vec<ServerConfig>,
    /// Servers the new config no longer lists.
    pub remove: Vec<String>,
    /// Servers whose table changed: the new config of each.
    pub replace: Vec<ServerConfig>,
    /// Keys that changed but apply only at start (`[catalog] separator`, ...).
    pub needs_restart: Vec<&'static str>,
}

impl ReloadPlan {
    /// From the running config `old` to the file's `new`.
    pub fn between(old: &Config, new: &Config) -> ReloadPlan {
        let mut plan = ReloadPlan::default();
        for (name, server) in &new.servers {
            match old.servers.get(name) {
                None => plan.add.push(server.clone()),
                Some(running) if running != server => plan.replace.push(server.clone()),
                Some(_) => {}
            }
        }
        plan.remove = old
            .servers
            .keys()
            .filter(|name| !new.servers.contains_key(*name))
            .cloned()
            .collect();
        plan.needs_restart = restart_keys(old, new);
        plan
    }

    /// Whether any server joins, leaves or changes.
    pub fn changes_servers(&self) -> bool {
        !(self.add.is_empty() && self.remove.is_empty() && self.replace.is_empty())
    }
}

/// The keys of `new` that differ from `old` and apply only when the gateway starts.
fn restart_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |key, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    let (c, n) = (&old.catalog, &new.catalog);
    check("[catalog] separator", c.separator != n.separator);
    check("[catalog] prefix", c.prefix != n.prefix);
    check(
        "[catalog] max_name_length",
        c.max_name_length != n.max_name_length,
    );
    check("[catalog] collisions", c.collisions != n.collisions);
    check(
        "[sessions] reaper_interval",
        old.sessions.reaper_interval != new.sessions.reaper_interval,
    );
    let (r, n) = (&old.registration, &new.registration);
    check("on_server_registration_error", r.on_error != n.on_error);
    check("retry_skipped_servers", r.retry_skipped != n.retry_skipped);
    check("[variables]", old.variables != new.variables);
    check("[discovery]", old.discovery != new.discovery);
    let (g, n) = (&*old.gateway, &*new.gateway);
    let gateway = [
        ("[gateway] listen", g.listen != n.listen),
        (
            "[gateway] session_headers",
            g.session_headers != n.session_headers,
        ),
        (
            "[gateway] drain_timeout",
            g.drain_timeout != n.drain_timeout,
        ),
        (
            "[gateway] shutdown_delay",
            g.shutdown_delay != n.shutdown_delay,
        ),
        (
            "[gateway] session_idle_timeout",
            g.session_idle_timeout != n.session_idle_timeout,
        ),
    ];
    let named = gateway.iter().any(|(_, changed)| *changed);
    for (key, changed) in gateway {
        check(key, changed);
    }
    // A `[gateway]` key not named above (added since) still gets its warning.
    check("[gateway]", !named && g != n);
    keys
}

/// Watches a config file and applies its changes to a running hub; [`Gateway::reloading`]
/// runs it for as long as the gateway serves.
///
/// [`Gateway::reloading`]: crate::Gateway::reloading
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    /// What the hub runs: the file's servers as last applied, the rest as at start.
    running: Config,
    poll_every: Duration,
    /// SIGHUP, watched from [`Reloader::new`] on: a SIGHUP while the hub starts would
    /// otherwise end the process (its default action); it reloads once running instead.
    hangups: Hangups,
}

impl Reloader {
    /// Reloads `path`, whose servers the hub is started with (`running`). Made before the
    /// hub starts, inside the runtime, it catches SIGHUP from then on.
    pub fn new(path: impl Into<PathBuf>, running: Config) -> Reloader {
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        Reloader {
            path: path.into(),
            running,
            poll_every: POLL_EVERY,
            hangups: if in_runtime { hangups() } else { None },
        }
    }

    /// Runs until `stop` is cancelled: reloads on SIGHUP and when the file's stamp changes.
    pub(crate) async fn run(
        mut self,
        hub: Hub,
        metrics: Metrics,
        drain: Duration,
        stop: CancellationToken,
    ) {
        let mut hangups = self.hangups.take().or_else(hangups);
        let mut seen = stamp(&self.path);
        let mut poll = tokio::time::interval(self.poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            file = %self.path.display(),
            "config reloads on SIGHUP and when the file changes (looked at every {:?})",
            self.poll_every
        );
        loop {
            let why = tokio::select! {
                () = stop.cancelled() => return,
                Some(()) = next_hangup(&mut hangups) => "SIGHUP",
                _ = poll.tick() => {
                    let now = stamp(&self.path);
                    if now == seen {
                        continue;
                    }
                    "the file changed"
                }
            };
            seen = stamp(&self.path);
            let applied = self.reload(why, &hub, drain).await;
            metrics.reloaded(applied);
        }
    }

    /// Loads the file and applies it; false when it did not load (nothing changed).
    async fn reload(&mut self, why: &str, hub: &Hub, drain: Duration) -> bool {
        let file = self.path.display();
        let new = match Config::load(&self.path) {
            Ok(new) => new,
            Err(error) => {
                tracing::error!("config reload ({why}) failed, the running config stays: {error}");
                return false;
            }
        };
        for warning in &new.warnings {
            tracing::warn!("{warning}");
        }
        let plan = ReloadPlan::between(&self.running, &new);
        for key in &plan.needs_restart {
            tracing::warn!(
                "{file}: {key} changed: restart `switchboard serve` to apply it (the running \
                 value stays until then)"
            );
        }
        if !plan.changes_servers() {
            tracing::info!("config reloaded ({why}): no server changed");
            return true;
        }
        if new.servers.values().all(|s| !s.enabled) && new.discovery.is_none() {
            tracing::warn!("{file}: no enabled servers: the gateway now serves no tools");
        }
        tracing::info!(
            added = ?names(&plan.add),
            removed = ?plan.remove,
            replaced = ?names(&plan.replace),
            "config reloaded ({why}): applying"
        );
        self.running.servers = new.servers;
        apply(hub, plan, drain).await;
        tracing::info!("config reload ({why}) applied");
        true
    }
}

fn names(servers: &[ServerConfig]) -> Vec<&str> {
    servers.iter().map(|s| s.name.as_str()).collect()
}

/// Applies `plan` to `hub`, every server at once; returns when removed and replaced
/// servers have drained (their calls in flight done; at most `drain` for removed ones, the
/// old server's `tool_call_timeout` for replaced ones).
async fn apply(hub: &Hub, plan: ReloadPlan, drain: Duration) {
    let removals = plan
        .remove
        .iter()
        .map(|name| hub.remove_server(name, drain));
    let additions = plan.add.into_iter().map(|server| hub.add_server(server));
    let replacements = plan
        .replace
        .into_iter()
        .map(|server| hub.replace_server(server));
    futures::join!(
        join_all(removals),
        join_all(additions),
        join_all(replacements)
    );
}

/// What tells a file was replaced or rewritten: modification time, size, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP; the config file is still watched");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// The next SIGHUP; never, without a handler.
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(hangups) = hangups {
        return hangups.recv().await;
    }
    let _ = hangups;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml_str(toml, None).unwrap()
    }

    const BASE: &str = "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n\
                        [servers.b]\ncommand = \"b-server\"\n";

    #[test]
    fn the_same_config_changes_nothing() {
        let plan = ReloadPlan::between(&config(BASE), &config(BASE));
        assert_eq!(plan, ReloadPlan::default());
        assert!(!plan.changes_servers());
    }

    #[test]
    fn servers_join_leave_and_change() {
        let new = config(
            "[servers.b]\ncommand = \"b-server\"\nargs = [\"--verbose\"]\n\
             [servers.c]\nurl = \"http://127.0.0.1:2/mcp\"\n",
        );
        let plan = ReloadPlan::between(&config(BASE), &new);
        assert_eq!(names(&plan.add), ["c"]);
        assert_eq!(plan.remove, ["a"]);
        assert_eq!(names(&plan.replace), ["b"]);
        assert_eq!(plan.replace[0].args, ["--verbose"]);
        assert!(plan.needs_restart.is_empty());
    }

    #[test]
    fn any_field_of_a_server_counts_as_a_change() {
        let old = config(BASE);
        for table in [
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\ntool_call_timeout = \"5s\"\n",
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\nenabled = false\n",
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n\
             headers = { \"X-Key\" = \"${env:KEY}\" }\n",
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n\
             [servers.a.tool_overrides.echo]\nalias = \"say\"\n",
        ] {
            let new = config(&format!("{table}[servers.b]\ncommand = \"b-server\"\n"));
            let plan = ReloadPlan::between(&old, &new);
            assert_eq!(names(&plan.replace), ["a"], "{table}");
            assert!(plan.add.is_empty() && plan.remove.is_empty(), "{table}");
        }
    }

    #[test]
    fn settings_that_apply_at_start_are_named() {
        let new = config(&format!(
            "on_server_registration_error = \"fail_fast\"\n\
             [variables]\nuser = \"x\"\n\
             [catalog]\nseparator = \"_\"\n\
             [sessions]\nreaper_interval = \"5s\"\n\
             [gateway]\nlisten = \"127.0.0.1:9999\"\ndrain_timeout = \"1s\"\n\
             shutdown_delay = \"5s\"\n{BASE}"
        ));
        let plan = ReloadPlan::between(&config(BASE), &new);
        assert!(!plan.changes_servers());
        assert_eq!(
            plan.needs_restart,
            [
                "[catalog] separator",
                "[sessions] reaper_interval",
                "on_server_registration_error",
                "[variables]",
                "[gateway] listen",
                "[gateway] drain_timeout",
                "[gateway] shutdown_delay",
            ]
        );
    }

    #[tokio::test]
    async fn a_file_that_fails_to_load_keeps_the_running_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, BASE).unwrap();
        let running = Config::load(&path).unwrap();
        let hub = Hub::builder().start().await.unwrap();
        let mut reloader = Reloader::new(&path, running.clone());
        std::fs::write(&path, "[servers.a]\nurll = \"http://127.0.0.1:1/mcp\"\n").unwrap();
        assert!(!reloader.reload("test", &hub, Duration::ZERO).await);
        assert_eq!(reloader.running.servers, running.servers);
        hub.close().await;
    }

    #[test]
    fn a_rewritten_file_has_a_new_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        assert_eq!(stamp(&path), None);
        std::fs::write(&path, BASE).unwrap();
        let first = stamp(&path);
        assert!(first.is_some());
        std::fs::write(&path, format!("{BASE}\n")).unwrap();
        assert_ne!(stamp(&path), first);
    }
}
