//! Which server a resource URI is read from, and the URIs a listing exposes: `SERVER+URI`,
//! or with `prefix = "never"` the servers' own (see [`crate::catalog::transparent_uris`]
//! for the rules).

use super::Hub;
use super::state::Inner;
use crate::catalog::{
    ExposedResource, ExposedResourceTemplate, UriConflict, expose_resources_bare,
    expose_templates_bare, split_uri, template_matches, transparent_uris,
};
use crate::sessions::Session;

/// Where a read goes: the server and its own URI; `bare` when the URI read was the
/// server's own (what comes back then keeps the servers' own URIs too).
pub(super) struct Route {
    pub(super) server: String,
    pub(super) own: String,
    pub(super) bare: bool,
}

impl Inner {
    /// Whether resources keep their servers' own URIs.
    pub(super) fn transparent_uris(&self) -> bool {
        transparent_uris(&self.settings.catalog)
    }
}

/// `resources` (in server order) as exposed: their own URIs when transparent.
pub(super) fn expose_resources(inner: &Inner, resources: &mut [ExposedResource]) {
    if inner.transparent_uris() {
        told(expose_resources_bare(resources), "resource");
    }
}

/// `templates` (in server order) as exposed, like [`expose_resources`].
pub(super) fn expose_templates(inner: &Inner, templates: &mut [ExposedResourceTemplate]) {
    if inner.transparent_uris() {
        told(expose_templates_bare(templates), "resource template");
    }
}

fn told(conflicts: Vec<UriConflict>, what: &str) {
    for UriConflict { server, uri } in conflicts {
        tracing::warn!(
            server,
            "{what} '{uri}' is listed by an earlier server too: exposed as '{server}+{uri}' \
             (the first server in name order keeps a URI two servers list)"
        );
    }
}

impl Hub {
    /// The server that `uri` (as exposed to `session`) is read from. Transparent: a listed
    /// resource's URI, else the first template exposed bare that matches it, else a
    /// `SERVER+URI` of a registered server. Otherwise only the last.
    pub(super) async fn route_uri(&self, session: Option<&Session>, uri: &str) -> Option<Route> {
        let inner = self.inner();
        if inner.transparent_uris() {
            let resources = self.resources_in(session).await.items;
            if let Some(found) = resources.into_iter().find(|r| r.uri == uri) {
                let bare = found.uri == found.server_uri;
                return Some(Route {
                    server: found.server,
                    own: found.server_uri,
                    bare,
                });
            }
            let templates = self.resource_templates_in(session).await.items;
            let mut bare = templates
                .into_iter()
                .filter(|t| t.uri_template == t.server_uri_template);
            if let Some(found) = bare.find(|t| template_matches(&t.uri_template, uri)) {
                return Some(Route {
                    server: found.server,
                    own: uri.to_owned(),
                    bare: true,
                });
            }
        }
        let (server, own) = split_uri(uri).filter(|(server, _)| inner.clients(server).is_some())?;
        Some(Route {
            server: server.to_owned(),
            own: own.to_owned(),
            bare: false,
        })
    }
}
