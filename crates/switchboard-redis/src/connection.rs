//! [`RedisConnection`]: one lazily connected, multiplexed redis-rs `ConnectionManager` with
//! its circuit breaker (`breaker.rs`), shared by the stores of one replica
//! ([`RedisSharedSessions`](crate::RedisSharedSessions),
//! [`RedisTokenStore`](crate::RedisTokenStore)): one socket, and one view of whether Redis
//! is up.
//!
//! Events (b.3): the connection speaks RESP3, so pub/sub shares the socket. On first use of
//! [`RedisConnection::events`] a task subscribes to `{prefix}:v1:events` (again every
//! second until it succeeds, and again after every disconnection: pub/sub is at most once,
//! and a message published while a replica was disconnected is lost) and hands each
//! message to the receivers.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError, Value};
use tokio::sync::{broadcast, mpsc};

use crate::breaker::Breaker;
use crate::{RedisOptions, RedisSetupError, redact, redacted_url};

/// A connection to one Redis, cheap to clone (the clones share the socket and the breaker).
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    manager: ConnectionManager,
    breaker: Breaker,
    url: String,
    /// `{prefix}:v1:events`.
    channel: String,
    /// Messages on `channel`, once subscribed.
    events: broadcast::Sender<Vec<u8>>,
    /// Pushes from Redis, until the event task takes them.
    pushes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<PushInfo>>>,
    subscribed: OnceLock<()>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("url", &redacted_url(&self.inner.url))
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to the Redis at `url` (`redis://[user:password@]host:port[/db]`;
    /// `rediss://` for TLS, verified against the system's roots or `SSL_CERT_FILE`), with
    /// `options`' timeouts. Connects lazily: this succeeds while Redis is down. Must be
    /// called within a Tokio runtime.
    pub fn open(url: &str, options: &RedisOptions) -> Result<Self, RedisSetupError> {
        let bad_url = |e: RedisError| RedisSetupError::BadUrl {
            url: redacted_url(url),
            reason: redact(&e.to_string(), url),
        };
        let info = url.into_connection_info().map_err(bad_url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(bad_url)?;
        let (push_sender, pushes) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connect_timeout))
            // One retry, not redis-rs's six (about 5 s): a call waiting on a store that is
            // down should fall back to its own upstream session soon. The manager keeps
            // reconnecting on later commands.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2))
            .set_push_sender(push_sender);
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RedisSetupError::BadOptions(redact(&e.to_string(), url)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                breaker: Breaker::default(),
                url: url.to_owned(),
                channel: format!("{}:v1:events", options.key_prefix),
                events: broadcast::channel(256).0,
                pushes: std::sync::Mutex::new(Some(pushes)),
                subscribed: OnceLock::new(),
            }),
        })
    }

    /// Messages on the event channel from now on (see the module docs).
    pub(crate) fn events(&self) -> broadcast::Receiver<Vec<u8>> {
        let receiver = self.inner.events.subscribe();
        self.inner.subscribed.get_or_init(|| {
            let taken = self
                .inner
                .pushes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(pushes) = taken {
                tokio::spawn(relay(Arc::downgrade(&self.inner), pushes));
            }
        });
        receiver
    }

    /// Sends `message` to every replica's event receivers (this one's too).
    pub(crate) async fn publish(&self, message: String) -> Result<(), String> {
        let mut manager = self.manager();
        let channel = &self.inner.channel;
        self.guarded(async move {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(message)
                .query_async(&mut manager)
                .await?;
            Ok(())
        })
        .await
    }

    /// Whether operations try Redis now: false while the breaker is open.
    pub(crate) fn available(&self) -> bool {
        self.inner.breaker.allows(Instant::now())
    }

    /// A handle to send commands on (a clone of the multiplexed connection).
    pub(crate) fn manager(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    /// The URL without its user info, for messages.
    pub(crate) fn shown_url(&self) -> String {
        redacted_url(&self.inner.url)
    }

    /// Runs `operation` unless the breaker is open, and records whether it reached Redis.
    /// The error is a sentence without the URL's user info.
    pub(crate) async fn guarded<T>(
        &self,
        operation: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, String> {
        let breaker = &self.inner.breaker;
        if !breaker.allows(Instant::now()) {
            return Err("Redis failed repeatedly; not tried again for a second".into());
        }
        let outcome = operation.await;
        let unreachable = outcome.as_ref().err().is_some_and(|e| {
            e.is_io_error()
                || e.is_connection_refusal()
                || e.is_connection_dropped()
                || e.is_timeout()
        });
        breaker.record(!unreachable, Instant::now());
        outcome.map_err(|error| redact(&error.to_string(), &self.inner.url))
    }
}

/// What the event task hands the receivers when it subscribed again after a
/// disconnection: messages published meanwhile were lost (never published on the channel:
/// it has no space, unlike every message there).
pub(crate) const MISSED: &str = "missed";

/// The event task: subscribes, then relays messages on the channel to the receivers,
/// subscribing again after a disconnection (and then telling them [`MISSED`]). Ends when
/// the connection is dropped.
async fn relay(inner: std::sync::Weak<Inner>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    let mut subscribed = false;
    // Disconnected since the last subscription: what was published meanwhile is lost.
    let mut lost = false;
    loop {
        let Some(connection) = inner.upgrade() else {
            return;
        };
        if !subscribed {
            let mut manager = connection.manager.clone();
            match manager.subscribe(&connection.channel).await {
                Ok(()) => {
                    subscribed = true;
                    if std::mem::take(&mut lost) {
                        let _ = connection.events.send(MISSED.as_bytes().to_vec());
                    }
                }
                Err(error) => {
                    tracing::debug!(
                        "cannot subscribe to Redis events yet: {}",
                        redact(&error.to_string(), &connection.url)
                    );
                    drop(connection);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let events = connection.events.clone();
        drop(connection);
        // Wakes at least every second to notice a dropped connection.
        let push = match tokio::time::timeout(Duration::from_secs(1), pushes.recv()).await {
            Ok(Some(push)) => push,
            Ok(None) => return,
            Err(_) => continue,
        };
        match push.kind {
            PushKind::Disconnection => {
                subscribed = false;
                lost = true;
            }
            PushKind::Message => {
                if let Some(Value::BulkString(message)) = push.data.into_iter().nth(1) {
                    let _ = events.send(message);
                }
            }
            _ => {}
        }
    }
}
