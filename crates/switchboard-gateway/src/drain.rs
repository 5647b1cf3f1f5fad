//! Shutdown's one piece of shared state: whether the gateway is still ready, whether it is
//! draining, and how many requests are in flight.
//!
//! With a `shutdown_delay`, [`Drain::leave`] comes first: `/readyz` answers 503 so load
//! balancers stop sending requests, while every request is still served as usual.
//!
//! Every POST (an MCP message, a REST call) holds a [`RequestGuard`] from its arrival until
//! its response body has been sent to the end (`server.rs` wraps the body): for an MCP
//! call answered over SSE that is after the result went out, not merely computed. Once
//! [`Drain::start`] has run, handlers refuse new calls (`closed`) while those in flight
//! finish; the server waits for [`Drain::idle`] (or the drain deadline) before it closes
//! the downstream sessions and the hub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone is the same state.
#[derive(Clone, Debug)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Not ready any more (`/readyz` 503): set by [`Drain::leave`] and [`Drain::start`].
    leaving: AtomicBool,
    draining: AtomicBool,
    /// Cancelled when draining starts: long-lived streams (`subscriptions/listen`) end.
    started: CancellationToken,
    calls: watch::Sender<usize>,
}

/// One request in flight: counted from [`Drain::track`] until dropped.
#[derive(Debug)]
pub struct RequestGuard {
    inner: Arc<Inner>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            inner: Arc::new(Inner {
                leaving: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                started: CancellationToken::new(),
                calls: watch::channel(0).0,
            }),
        }
    }
}

impl Drain {
    /// Counts one more request in flight until the guard drops.
    pub fn track(&self) -> RequestGuard {
        self.inner.calls.send_modify(|n| *n += 1);
        RequestGuard {
            inner: self.inner.clone(),
        }
    }

    /// From now on `/readyz` says 503; calls are still served.
    pub fn leave(&self) {
        self.inner.leaving.store(true, Ordering::SeqCst);
    }

    /// Whether `/readyz` says 200: neither [`Drain::leave`] nor [`Drain::start`] has run.
    pub fn is_ready(&self) -> bool {
        !self.inner.leaving.load(Ordering::SeqCst)
    }

    /// From now on handlers refuse new calls (and `/readyz` says 503).
    pub fn start(&self) {
        self.inner.leaving.store(true, Ordering::SeqCst);
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.started.cancel();
    }

    /// Resolves once draining has started.
    pub async fn started(&self) {
        self.inner.started.cancelled().await;
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        *self.inner.calls.borrow()
    }

    /// Resolves when no request is in flight.
    pub async fn idle(&self) {
        let mut calls = self.inner.calls.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = calls.wait_for(|n| *n == 0).await;
    }
}

/// The error a call gets while the gateway drains (class `closed`).
pub fn shutting_down() -> switchboard::Error {
    switchboard::Error::Closed {
        server: "gateway".to_string(),
        reason: Some("the gateway is shutting down".to_string()),
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.inner.calls.send_modify(|n| *n -= 1);
    }
}

/// `response` with `guard` held until its body has been sent to the end (a result over SSE
/// included) or the client went away: how a POST holds the drain and a call its slot.
pub(crate) fn hold_until_sent<G: Send + 'static>(response: Response, guard: G) -> Response {
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_is_not_ready_but_still_serving() {
        let drain = Drain::default();
        assert!(drain.is_ready());
        drain.leave();
        assert!(!drain.is_ready());
        assert!(!drain.is_draining());
        drain.start();
        assert!(!drain.is_ready() && drain.is_draining());
        let started = Drain::default();
        started.start();
        assert!(
            !started.is_ready(),
            "a drain without a delay is not ready either"
        );
    }

    #[tokio::test]
    async fn idle_waits_for_the_requests_in_flight() {
        let drain = Drain::default();
        let running = drain.track();
        drain.start();
        assert!(drain.is_draining());
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
