//! Resource subscriptions: a session subscribes to a resource by its exposed URI and the
//! hub forwards `resources/subscribe` (or `resources/unsubscribe`) to the server the URI
//! reads from (`uris.rs`), on the session's own connection for a `per_session` server and
//! on the shared one otherwise.
//!
//! A server's `notifications/resources/updated` on its shared connection becomes
//! [`HubEvent::ResourceUpdated`](super::HubEvent::ResourceUpdated) with the server's own
//! URI; the subscriber tells whose it is by the [`SubscribedResource`] its subscription
//! returned. A connection counts its subscribers per URI (the server is told to
//! unsubscribe when the last one leaves) and subscribes a new connection again after a
//! reconnect (`sessions/link.rs`).
//!
//! Not done yet: the updates of a `per_session` server's own connections (nobody follows
//! their events) are not passed on.

use super::Hub;
use super::offers::call_context;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::sessions::Session;

/// Where a subscription went: the server and its own URI for the resource, as a
/// [`HubEvent::ResourceUpdated`](super::HubEvent::ResourceUpdated) names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribedResource {
    pub server: String,
    pub uri: String,
}

impl Hub {
    /// Subscribes `session` (the shared connection without one) to updates of the
    /// resource at the exposed `uri`: the server gets `resources/subscribe` with its own
    /// URI, which comes back with the server's name. `deadline` as for
    /// [`Hub::read_resource`]. Every subscription is ended with
    /// [`Hub::unsubscribe_resource_in`] (they are counted per connection and URI).
    pub async fn subscribe_resource_in(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<SubscribedResource, Error> {
        self.subscription(session, uri, true, deadline).await
    }

    /// Ends what [`Hub::subscribe_resource_in`] started (`resources/unsubscribe`).
    pub async fn unsubscribe_resource_in(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<(), Error> {
        self.subscription(session, uri, false, deadline)
            .await
            .map(drop)
    }

    async fn subscription(
        &self,
        session: Option<&Session>,
        uri: &str,
        subscribe: bool,
        deadline: Option<Deadline>,
    ) -> Result<SubscribedResource, Error> {
        let Some(route) = self.route_uri(session, uri).await else {
            return Err(self.no_resource(uri).await);
        };
        let inner = self.inner();
        let clients = inner.enter(&route.server)?;
        let call = call_context(inner, &clients, session, deadline);
        clients
            .subscribe_resource(session, &route.own, subscribe, &call)
            .await?;
        Ok(SubscribedResource {
            server: route.server,
            uri: route.own,
        })
    }
}
