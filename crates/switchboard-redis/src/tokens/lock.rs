//! The token store's renewal lock (see `tokens.rs`): `SET NX PX` with a random owner (under
//! the name each key of the ring gives, all at once: `keys.rs`), tried again until free,
//! extended while held, released by its owner only.

use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use redis::Script;
use switchboard::auth::{RenewalLock, StoreError, TokenKey};
use tokio::sync::oneshot;

use super::RedisTokenStore;
use crate::moves::{CLAIM, RELEASE};
use crate::store::millis;

/// How long a renewal lock lives without its holder extending it.
const LOCK_TTL: Duration = Duration::from_secs(15);
/// How often its holder extends it.
const LOCK_EXTEND: Duration = Duration::from_secs(5);
/// How long a renewal waits for another holder's.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// How often the lock is tried meanwhile.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// KEYS: the lock under every name; ARGV: owner, TTL ms. Each extended only while it is
/// still the owner's; returns how many were.
const EXTEND: &str = r"
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    n = n + redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return n
";

impl RedisTokenStore {
    /// Takes `key`'s renewal lock (see the module docs).
    pub(super) async fn take_lock(&self, key: &TokenKey) -> Result<RenewalLock, StoreError> {
        let names: Vec<String> = self.names_of(key).into_iter().map(|n| n.lock).collect();
        let owner = nonce();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let claim = Script::new(CLAIM);
        loop {
            let mut connection = self.connection.manager();
            let mut invocation = claim.prepare_invoke();
            for name in &names {
                invocation.key(name);
            }
            invocation.arg(&owner).arg(millis(LOCK_TTL));
            let taken: i64 = self
                .guarded(
                    "take the token's renewal lock",
                    invocation.invoke_async(&mut connection),
                )
                .await?;
            if taken == 1 {
                return Ok(RenewalLock::new(self.keep(names, owner)));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError(format!(
                    "another replica has held this token's renewal lock in the token store \
                     (Redis at {}) for over a minute; it expires {} s after its holder stops",
                    self.connection.shown_url(),
                    LOCK_TTL.as_secs()
                )));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Extends the lock `names` owned by `owner` until the returned value is dropped, then
    /// releases it.
    fn keep(&self, names: Vec<String>, owner: String) -> HeldLock {
        let (stop, stopped) = oneshot::channel::<()>();
        let connection = self.connection.clone();
        tokio::spawn(async move {
            let extend = Script::new(EXTEND);
            let mut stopped = stopped;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(LOCK_EXTEND) => {}
                }
                let mut manager = connection.manager();
                let mut invocation = extend.prepare_invoke();
                for name in &names {
                    invocation.key(name);
                }
                invocation.arg(&owner).arg(millis(LOCK_TTL));
                let extended = connection
                    .guarded(invocation.invoke_async::<i64>(&mut manager))
                    .await;
                match extended {
                    Ok(n) if n == names.len() as i64 => {}
                    Ok(_) => {
                        tracing::warn!(
                            "a token renewal lock expired while held (Redis lost it, or the renewal stalled)"
                        );
                        return;
                    }
                    Err(reason) => {
                        tracing::warn!("could not extend a token renewal lock: {reason}")
                    }
                }
            }
            let mut manager = connection.manager();
            let release = Script::new(RELEASE);
            let mut invocation = release.prepare_invoke();
            for name in &names {
                invocation.key(name);
            }
            invocation.arg(&owner);
            let released = connection
                .guarded(invocation.invoke_async::<i64>(&mut manager))
                .await;
            if let Err(reason) = released {
                tracing::warn!(
                    "could not release a token renewal lock (it expires within {} s): {reason}",
                    LOCK_TTL.as_secs()
                );
            }
        });
        HeldLock { _stop: stop }
    }
}

/// A held renewal lock: dropping it stops the task that extends it, which then releases it.
struct HeldLock {
    _stop: oneshot::Sender<()>,
}

/// A random lock owner: 128 bits, hex.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
