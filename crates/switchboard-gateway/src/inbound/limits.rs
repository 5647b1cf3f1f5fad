//! What a downstream session may do: how many calls it has in flight
//! ([`CallLimits`], `[gateway] max_concurrent_calls_per_session`), and who it belongs to
//! ([`SessionOwners`]: with `[gateway.auth]`, an MCP session is its initializing caller's,
//! and another caller's requests on it are refused, so one user's session variables and
//! upstream sessions never serve another).
//!
//! Both are maps under a `std` mutex, held for a lookup only (never across I/O or await).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls in flight per session key (an MCP session id, or an authenticated caller without
/// one).
#[derive(Debug)]
pub struct CallLimits {
    max: usize,
    in_flight: Mutex<HashMap<Arc<str>, usize>>,
}

/// One call counted against its key until dropped.
#[derive(Debug)]
pub struct CallSlot {
    limits: Arc<CallLimits>,
    key: Arc<str>,
}

impl CallLimits {
    pub fn new(max: usize) -> Arc<CallLimits> {
        Arc::new(CallLimits {
            max,
            in_flight: Mutex::default(),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more call of `key`, or `None` when it has `max` in flight.
    pub fn enter(self: &Arc<Self>, key: Arc<str>) -> Option<CallSlot> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let count = in_flight.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(CallSlot {
            limits: self.clone(),
            key,
        })
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.in_flight.lock().unwrap().len()
    }
}

/// A legacy SSE session's call slot, handed from the check to `sse.rs` in the POST's
/// extensions: the POST is answered 202 at once, and the slot is held until the call's
/// response has been put on the session's stream.
#[derive(Debug, Clone)]
pub struct StreamedCallSlot(Arc<Mutex<Option<CallSlot>>>);

impl StreamedCallSlot {
    pub fn new(slot: CallSlot) -> StreamedCallSlot {
        StreamedCallSlot(Arc::new(Mutex::new(Some(slot))))
    }

    /// The slot (once).
    pub fn take(&self) -> Option<CallSlot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        let mut in_flight = self
            .limits
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = in_flight.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// MCP session id -> the principal that initialized it. Entries are forgotten on `DELETE`
/// and once unused for twice as long as a session can idle (it has ended by then).
#[derive(Debug)]
pub struct SessionOwners {
    idle: Duration,
    inner: Mutex<Owners>,
}

#[derive(Debug)]
struct Owners {
    by_session: HashMap<String, (Arc<str>, Instant)>,
    swept: Instant,
}

/// How often unused entries are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl SessionOwners {
    /// `idle`: how long a downstream session lives without requests.
    pub fn new(idle: Duration) -> SessionOwners {
        SessionOwners {
            idle,
            inner: Mutex::new(Owners {
                by_session: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Whether `principal` may use `session`: yes when it made it, or when the session is
    /// not known here (the MCP server answers an unknown session itself).
    pub fn may_use(&self, session: &str, principal: &str) -> bool {
        let mut owners = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match owners.by_session.get_mut(session) {
            Some((owner, seen)) if &**owner == principal => {
                *seen = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// `session` was just made by `principal`.
    pub fn bind(&self, session: &str, principal: Arc<str>) {
        let now = Instant::now();
        let mut owners = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(owners.swept) >= SWEEP_EVERY {
            let idle = self.idle;
            owners
                .by_session
                .retain(|_, (_, seen)| now.duration_since(*seen) <= 2 * idle);
            owners.swept = now;
        }
        owners
            .by_session
            .insert(session.to_string(), (principal, now));
    }

    /// `session` ended.
    pub fn forget(&self, session: &str) {
        let mut owners = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        owners.by_session.remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_per_key_and_free_on_drop() {
        let limits = CallLimits::new(2);
        let a: Arc<str> = "a".into();
        let first = limits.enter(a.clone()).expect("1st");
        let second = limits.enter(a.clone()).expect("2nd");
        assert!(limits.enter(a.clone()).is_none(), "a 3rd is over the limit");
        assert!(
            limits.enter("b".into()).is_some(),
            "another key has its own"
        );
        drop(first);
        let third = limits.enter(a.clone()).expect("a slot came free");
        drop((second, third));
        assert_eq!(limits.keys(), 0, "idle keys are removed");
    }

    #[test]
    fn a_session_serves_only_its_owner() {
        let owners = SessionOwners::new(Duration::from_secs(300));
        assert!(owners.may_use("s1", "jwt:alice"), "unknown sessions pass");
        owners.bind("s1", "jwt:alice".into());
        assert!(owners.may_use("s1", "jwt:alice"));
        assert!(!owners.may_use("s1", "jwt:bob"));
        owners.forget("s1");
        assert!(owners.may_use("s1", "jwt:bob"));
    }
}
