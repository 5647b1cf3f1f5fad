//! Pub/sub between replicas (docs/scale-out-design.md b.3), on the store's own multiplexed
//! RESP3 connection: channel `{prefix}:v1:events`, today only `ended <session key>` (a client
//! ended the session on some replica: others holding it end it too). At most once: a replica
//! that was disconnected when it was sent serves its local copy until it idles out there.
//! The subscription is made in the background once Redis answers, and redis-rs renews it
//! after every reconnect.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::broadcast;

const ENDED: &str = "ended ";

pub(crate) struct Events {
    channel: String,
    ended: broadcast::Sender<String>,
}

impl Events {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            channel: format!("{prefix}:v1:events"),
            ended: broadcast::channel(256).0,
        }
    }

    /// What the connection hands its pushes to (it must not block).
    pub(crate) fn sender(&self) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
        let (channel, ended) = (self.channel.clone(), self.ended.clone());
        move |push: PushInfo| {
            if push.kind != PushKind::Message {
                return Ok(());
            }
            let text = |value: &Value| match value {
                Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
                Value::SimpleString(text) => Some(text.clone()),
                _ => None,
            };
            if let [from, message] = &push.data[..]
                && text(from).as_deref() == Some(channel.as_str())
                && let Some(key) =
                    text(message).and_then(|m| m.strip_prefix(ENDED).map(str::to_owned))
            {
                // Nobody listening is fine.
                let _ = ended.send(key);
            }
            Ok(())
        }
    }

    /// Subscribes in the background, retrying until Redis answers.
    pub(crate) fn subscribe(&self, mut connection: ConnectionManager) {
        let channel = self.channel.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut wait = Duration::from_millis(100);
            while let Err(error) = connection.subscribe(&channel).await {
                tracing::debug!(%error, "cannot subscribe to replica events yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        });
    }

    pub(crate) fn ended(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    /// The channel and message telling every replica session `key` ended.
    pub(crate) fn ended_message(&self, key: &str) -> (String, String) {
        (self.channel.clone(), format!("{ENDED}{key}"))
    }
}
