//! Shutdown's one piece of shared state: whether the gateway is draining, and how many
//! calls are in flight.
//!
//! Every tool call, resource read and prompt get (MCP or REST) holds a [`CallGuard`] for
//! its length. Once [`Drain::start`] has run, new ones are refused (`closed`) while those in
//! flight finish; the server waits for [`Drain::idle`] (or the drain deadline) before it
//! closes the downstream sessions and the hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Cheap to clone; every clone is the same state.
#[derive(Clone, Debug)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    draining: AtomicBool,
    calls: watch::Sender<usize>,
}

/// One call in flight: counted from [`Drain::enter`] until dropped.
#[derive(Debug)]
pub struct CallGuard {
    inner: Arc<Inner>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            inner: Arc::new(Inner {
                draining: AtomicBool::new(false),
                calls: watch::channel(0).0,
            }),
        }
    }
}

impl Drain {
    /// Counts one more call in flight, or `None` once draining has started.
    pub fn enter(&self) -> Option<CallGuard> {
        if self.is_draining() {
            return None;
        }
        self.inner.calls.send_modify(|n| *n += 1);
        // A drain that started meanwhile may have seen zero: give the slot back.
        if self.is_draining() {
            drop(CallGuard {
                inner: self.inner.clone(),
            });
            return None;
        }
        Some(CallGuard {
            inner: self.inner.clone(),
        })
    }

    /// From now on new calls are refused.
    pub fn start(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        *self.inner.calls.borrow()
    }

    /// Resolves when no call is in flight.
    pub async fn idle(&self) {
        let mut calls = self.inner.calls.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = calls.wait_for(|n| *n == 0).await;
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.inner.calls.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_refuses_new_calls_and_waits_for_running_ones() {
        let drain = Drain::default();
        let running = drain.enter().expect("accepted before draining");
        drain.start();
        assert!(drain.enter().is_none());
        assert_eq!(drain.in_flight(), 1);
        let idle = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        drop(running);
        idle.await.unwrap();
        assert_eq!(drain.in_flight(), 0);
    }
}
