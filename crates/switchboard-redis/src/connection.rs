//! [`RedisConnection`]: one lazily connected, multiplexed redis-rs `ConnectionManager` with
//! its circuit breaker (`breaker.rs`), shared by the stores of one replica
//! ([`RedisSharedSessions`](crate::RedisSharedSessions),
//! [`RedisTokenStore`](crate::RedisTokenStore)): one socket, and one view of whether Redis
//! is up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("url", &redacted_url(&self.inner.url))
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to the Redis at `url` (`redis://[user:password@]host:port[/db]`), with
    /// `options`' timeouts. Connects lazily: this succeeds while Redis is down. Must be
    /// called within a Tokio runtime.
    pub fn open(url: &str, options: &RedisOptions) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(url).map_err(|e| RedisSetupError::BadUrl {
            url: redacted_url(url),
            reason: redact(&e.to_string(), url),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connect_timeout))
            // One retry, not redis-rs's six (about 5 s): a call waiting on a store that is
            // down should fall back to its own upstream session soon. The manager keeps
            // reconnecting on later commands.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RedisSetupError::BadOptions(redact(&e.to_string(), url)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                breaker: Breaker::default(),
                url: url.to_owned(),
            }),
        })
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
