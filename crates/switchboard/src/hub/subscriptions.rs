//! Resource subscriptions: a session subscribes to a resource by its exposed URI and the
//! hub forwards `resources/subscribe` (or `resources/unsubscribe`) to the server the URI
//! reads from (`uris.rs`), on the session's own connection for a `per_session` server and
//! on the shared one otherwise.
//!
//! Not done yet: passing the servers' `notifications/resources/updated` on to the
//! subscribed sessions (the upstream handler does not surface them), and keeping
//! subscriptions across a reconnect (a new connection starts with none).

use super::Hub;
use super::offers::call_context;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::sessions::Session;

impl Hub {
    /// Subscribes `session` (the shared connection without one) to updates of the
    /// resource at the exposed `uri`: the server gets `resources/subscribe` with its own
    /// URI. `deadline` as for [`Hub::read_resource`].
    pub async fn subscribe_resource_in(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<(), Error> {
        self.subscription(session, uri, true, deadline).await
    }

    /// Ends what [`Hub::subscribe_resource_in`] started (`resources/unsubscribe`).
    pub async fn unsubscribe_resource_in(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<(), Error> {
        self.subscription(session, uri, false, deadline).await
    }

    async fn subscription(
        &self,
        session: Option<&Session>,
        uri: &str,
        subscribe: bool,
        deadline: Option<Deadline>,
    ) -> Result<(), Error> {
        let Some(route) = self.route_uri(session, uri).await else {
            return Err(self.no_resource(uri).await);
        };
        let inner = self.inner();
        let clients = inner.enter(&route.server)?;
        let call = call_context(inner, &clients, session, deadline);
        clients
            .subscribe_resource(session, &route.own, subscribe, &call)
            .await
    }
}
