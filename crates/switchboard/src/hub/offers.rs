//! Resources, resource templates and prompts of every registered server, next to the
//! catalogue of tools.
//!
//! Tools are listed when a server registers, because every call needs the catalogue.
//! Resources and prompts are listed the first time somebody asks ([`Hub::resources`],
//! [`Hub::prompts`], ...), all servers at once, and kept per server in the state's
//! [`Shelves`]: each list is an immutable `Arc` slice, replaced whole. Servers without the
//! `resources` / `prompts` capability are not asked (they have none). Whoever asks while a
//! server's list is being listed waits for that listing: one request to the server however
//! many ask at once (a gateway's clients all asking when they connect). A server whose
//! listing fails is left out of that answer with its [`ErrorReport`], and asked again next
//! time; the others are answered from what they listed.
//!
//! A server's `resources/list_changed` or `prompts/list_changed` (the same
//! [`UpstreamEvent`](crate::upstream::UpstreamEvent) whichever way it arrived; a reconnect
//! counts as both) reaches the server's watcher (`background.rs`), which drops what was
//! kept, lists it again at once if it had been asked for, and sends
//! [`HubEvent::ResourcesChanged`] / [`HubEvent::PromptsChanged`]. Each change bumps a
//! per-server counter under the state lock; a listing keeps its result only if the counter
//! did not move while it ran (and the server is still the one registered), so an answer
//! that may predate a change is used once and never kept.
//!
//! Reading a resource and getting a prompt go over the session's connection or the shared
//! one, like a tool call (what the server asks meanwhile is answered by the session's input
//! handler, else the hub's), and may be sent again after a lost connection: they change
//! nothing at the server.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, join_all};
use rmcp::model::{Prompt, Resource, ResourceTemplate};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::state::{Inner, State};
use super::{Hub, HubEvent, RequestInfo};
use crate::JsonObject;
use crate::catalog::{
    ExposedPrompt, ExposedResource, ExposedResourceTemplate, expose_prompts, expose_uri,
    servers_for_name,
};
use crate::config::suggest::closest;
use crate::deadline::Deadline;
use crate::error::{Error, ErrorReport};
use crate::interaction::{CallOptions, InputRequired, RequestStep};
use crate::sessions::{ServerClients, Session};
use crate::upstream::input::Passthrough;
use crate::upstream::interaction::CallContext;
use crate::upstream::listing::{ListKind, PromptList, ResourceList, TemplateList};
use crate::upstream::{CacheHints, Content, PromptOutcome, ResourceRead, Upstream};

/// What a listing across servers found: every item of the servers that answered, and why
/// the others did not (one report per server, in name order). Serialises as
/// `{"items": [...], "failures": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub failures: Vec<ErrorReport>,
}

/// What the hub last listed of each server; in [`State`], behind its lock.
#[derive(Default)]
pub(super) struct Shelves {
    by_server: BTreeMap<String, Shelf>,
}

/// One kind of list of one server.
pub(super) enum Slot<T> {
    /// Not listed since the server joined or last changed.
    Empty,
    /// Being listed: whoever asks meanwhile waits for the same answer (one listing however
    /// many ask at once).
    Listing(Pending<T>),
    Kept(Kept<T>),
}

/// A listing in flight, shared by everyone waiting for it.
pub(super) type Pending<T> = Shared<BoxFuture<'static, Result<Kept<T>, ErrorReport>>>;

/// One server's list as listed, and what it said about caching it.
pub(super) struct Kept<T> {
    items: Arc<[T]>,
    /// `cacheScope: "private"`: a `per_session` server lists it for each session.
    private: bool,
    /// When its `ttlMs` runs out (only when no listen stream brings its changes).
    fresh_until: Option<Instant>,
}

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Kept {
            items: self.items.clone(),
            private: self.private,
            fresh_until: self.fresh_until,
        }
    }
}

impl<T> Kept<T> {
    fn fresh(&self) -> bool {
        self.fresh_until.is_none_or(|until| Instant::now() < until)
    }
}

impl<T> Slot<T> {
    /// Forgets the list; says whether it had been asked for.
    fn clear(&mut self) -> bool {
        !matches!(std::mem::replace(self, Slot::Empty), Slot::Empty)
    }
}

/// One server's lists.
pub(super) struct Shelf {
    /// Whose lists these are: a server replaced under the same name starts afresh.
    clients: Weak<ServerClients>,
    /// Bumped by every `resources/list_changed` (and `prompts/list_changed`).
    resource_changes: u64,
    prompt_changes: u64,
    resources: Slot<ExposedResource>,
    templates: Slot<ExposedResourceTemplate>,
    prompts: Slot<Prompt>,
}

impl Shelves {
    /// `server`'s shelf, made (or made afresh, for other clients) if needed.
    fn shelf(&mut self, server: &str, clients: &Arc<ServerClients>) -> &mut Shelf {
        let shelf = self
            .by_server
            .entry(server.to_owned())
            .or_insert_with(|| Shelf::new(clients));
        if !std::ptr::eq(shelf.clients.as_ptr(), Arc::as_ptr(clients)) {
            *shelf = Shelf::new(clients);
        }
        shelf
    }
}

impl Shelf {
    fn new(clients: &Arc<ServerClients>) -> Shelf {
        Shelf {
            clients: Arc::downgrade(clients),
            resource_changes: 0,
            prompt_changes: 0,
            resources: Slot::Empty,
            templates: Slot::Empty,
            prompts: Slot::Empty,
        }
    }
}

/// One kind of list: where it is kept, how it is listed and exposed.
pub(super) trait Kind {
    /// What the server lists.
    type List: ListKind;
    /// What the hub keeps of it.
    type Item: Send + Sync + 'static;
    fn slot(shelf: &mut Shelf) -> &mut Slot<Self::Item>;
    /// The change counter this kind follows.
    fn changes(shelf: &Shelf) -> u64;
    /// Whether the server offers it (nothing is asked of one that does not).
    fn offered(upstream: &Upstream) -> bool;
    fn expose(server: &str, listed: Vec<<Self::List as ListKind>::Item>) -> Vec<Self::Item>;
}

pub(super) struct Resources;
pub(super) struct Templates;
pub(super) struct Prompts;

impl Kind for Resources {
    type List = ResourceList;
    type Item = ExposedResource;
    fn slot(shelf: &mut Shelf) -> &mut Slot<ExposedResource> {
        &mut shelf.resources
    }
    fn changes(shelf: &Shelf) -> u64 {
        shelf.resource_changes
    }
    fn offered(upstream: &Upstream) -> bool {
        upstream.offers_resources()
    }
    fn expose(server: &str, listed: Vec<Resource>) -> Vec<ExposedResource> {
        let exposed = listed.iter().map(|r| ExposedResource::new(server, r));
        exposed.collect()
    }
}

impl Kind for Templates {
    type List = TemplateList;
    type Item = ExposedResourceTemplate;
    fn slot(shelf: &mut Shelf) -> &mut Slot<ExposedResourceTemplate> {
        &mut shelf.templates
    }
    fn changes(shelf: &Shelf) -> u64 {
        shelf.resource_changes
    }
    fn offered(upstream: &Upstream) -> bool {
        upstream.offers_resources()
    }
    fn expose(server: &str, listed: Vec<ResourceTemplate>) -> Vec<ExposedResourceTemplate> {
        let exposed = listed
            .iter()
            .map(|t| ExposedResourceTemplate::new(server, t));
        exposed.collect()
    }
}

impl Kind for Prompts {
    type List = PromptList;
    /// Exposed (named) across servers when answered, by `expose_prompts`.
    type Item = Prompt;
    fn slot(shelf: &mut Shelf) -> &mut Slot<Prompt> {
        &mut shelf.prompts
    }
    fn changes(shelf: &Shelf) -> u64 {
        shelf.prompt_changes
    }
    fn offered(upstream: &Upstream) -> bool {
        upstream.offers_prompts()
    }
    fn expose(_server: &str, listed: Vec<Prompt>) -> Vec<Prompt> {
        listed
    }
}

/// Lists `clients`' server's list of kind `K` over its shared connection.
fn list<K: Kind>(
    server: &str,
    clients: Weak<ServerClients>,
) -> BoxFuture<'static, Result<Kept<K::Item>, ErrorReport>> {
    let server = server.to_owned();
    Box::pin(async move {
        let listed = async {
            let Some(clients) = clients.upgrade() else {
                return Err(Error::Closed {
                    server,
                    reason: Some("the server was removed".to_owned()),
                });
            };
            let link = clients.shared();
            let deadline = Instant::now() + link.server().connect_timeout;
            let (upstream, _) = link.upstream(deadline).await?;
            if !K::offered(&upstream) {
                return Ok((Vec::new(), CacheHints::default(), true));
            }
            let (items, hints) = upstream.list_all::<K::List>().await?;
            Ok((K::expose(&server, items), hints, upstream.follows_changes()))
        };
        let (items, hints, following) = listed.await.map_err(|e| ErrorReport::now(&e))?;
        Ok(Kept {
            items: items.into(),
            private: hints.private,
            // A listen stream brings its changes; else it is as fresh as its `ttlMs` says.
            fresh_until: (!following)
                .then(|| hints.fresh_for().map(|ttl| Instant::now() + ttl))
                .flatten(),
        })
    })
}

/// Lists of every server (or only `only`): what is kept, and what was not, listed now.
type Shelved<T> = (Vec<(String, Kept<T>)>, Vec<ErrorReport>);

impl Inner {
    /// Every registered server's list of kind `K` (only `only`'s, if given): kept ones as
    /// they are, missing ones listed now (all at once) and kept unless they changed
    /// meanwhile. In server-name order, with the failures.
    pub(super) async fn shelved<K: Kind>(&self, only: Option<&str>) -> Shelved<K::Item> {
        let mut have = Vec::new();
        let mut waiting = Vec::new();
        {
            let mut guard = self.state();
            let state: &mut State = &mut guard;
            let servers = &state.servers;
            state
                .shelves
                .by_server
                .retain(|name, _| servers.contains_key(name));
            for (name, clients) in servers {
                if only.is_some_and(|only| only != name) {
                    continue;
                }
                let shelf = state.shelves.shelf(name, clients);
                let seen = K::changes(shelf);
                let slot = K::slot(shelf);
                let pending = match slot {
                    Slot::Kept(kept) if kept.fresh() => {
                        have.push((name.clone(), kept.clone()));
                        continue;
                    }
                    Slot::Listing(pending) => pending.clone(),
                    Slot::Empty | Slot::Kept(_) => {
                        // Lazy: nothing is sent until it is awaited, outside the lock.
                        let pending = list::<K>(name, Arc::downgrade(clients)).shared();
                        *slot = Slot::Listing(pending.clone());
                        pending
                    }
                };
                waiting.push((name.clone(), clients.clone(), seen, pending));
            }
        }
        let listings = waiting
            .into_iter()
            .map(|(name, clients, seen, pending)| async move {
                let listed = pending.clone().await;
                (name, clients, seen, pending, listed)
            });
        let listed = join_all(listings).await;
        let mut failures = Vec::new();
        {
            let mut guard = self.state();
            let state: &mut State = &mut guard;
            for (name, clients, seen, pending, result) in listed {
                let current = state
                    .servers
                    .get(&name)
                    .is_some_and(|c| Arc::ptr_eq(c, &clients));
                if current {
                    // The one who finds its listing still in the slot settles it: kept if
                    // nothing changed meanwhile, else (or on failure) asked again next time.
                    let shelf = state.shelves.shelf(&name, &clients);
                    let unchanged = K::changes(shelf) == seen;
                    let slot = K::slot(shelf);
                    if matches!(slot, Slot::Listing(p) if p.ptr_eq(&pending)) {
                        *slot = match &result {
                            Ok(kept) if unchanged => Slot::Kept(kept.clone()),
                            _ => Slot::Empty,
                        };
                    }
                }
                match result {
                    Ok(kept) => have.push((name, kept)),
                    Err(report) => failures.push(report),
                }
            }
        }
        have.sort_by(|a, b| a.0.cmp(&b.0));
        failures.sort_by(|a, b| a.server.cmp(&b.server));
        (have, failures)
    }

    /// [`Inner::shelved`] as `session` sees it: a `per_session` server whose list is private
    /// (`cacheScope: "private"`) gives the session its own, listed on the session's route
    /// each time (never kept: it is the session's); one that cannot is left out, with why.
    pub(super) async fn shelved_in<K: Kind>(
        &self,
        session: Option<&Session>,
        only: Option<&str>,
    ) -> Shelved<K::Item> {
        let (mut have, mut failures) = self.shelved::<K>(only).await;
        let Some(session) = session else {
            return (have, failures);
        };
        let private: Vec<(usize, Arc<ServerClients>)> = (have.iter().enumerate())
            .filter(|(_, (_, kept))| kept.private)
            .filter_map(|(i, (name, _))| {
                let clients = self.clients(name)?;
                clients.pool().is_some().then_some((i, clients))
            })
            .collect();
        let own = private
            .iter()
            .map(|(_, clients)| clients.list::<K::List>(session));
        let mut left_out = Vec::new();
        for ((i, _), listed) in private.iter().zip(join_all(own).await) {
            let (name, kept) = &mut have[*i];
            match listed {
                Ok((items, _)) => kept.items = K::expose(name, items).into(),
                Err(error) => {
                    failures.push(ErrorReport::now(&error));
                    left_out.push(*i);
                }
            }
        }
        for i in left_out.into_iter().rev() {
            have.remove(i);
        }
        failures.sort_by(|a, b| a.server.cmp(&b.server));
        (have, failures)
    }

    /// `server` said its resources (`resources`) or prompts changed: what was kept is
    /// dropped and, if it had been listed, listed again; subscribers hear of it. Nothing
    /// for a server that does not offer them, or is no longer `clients`.
    pub(super) async fn offers_changed(
        &self,
        server: &str,
        clients: &Arc<ServerClients>,
        resources: bool,
    ) {
        let listed = {
            let mut guard = self.state();
            let state: &mut State = &mut guard;
            if !state
                .servers
                .get(server)
                .is_some_and(|c| Arc::ptr_eq(c, clients))
            {
                return;
            }
            let shelf = state.shelves.shelf(server, clients);
            if resources {
                shelf.resource_changes += 1;
                let listed = shelf.resources.clear();
                shelf.templates.clear() || listed
            } else {
                shelf.prompt_changes += 1;
                shelf.prompts.clear()
            }
        };
        let link = clients.shared();
        let Ok((upstream, _)) = link
            .upstream(Instant::now() + link.server().connect_timeout)
            .await
        else {
            return;
        };
        let offered = match resources {
            true => upstream.offers_resources(),
            false => upstream.offers_prompts(),
        };
        if !offered {
            return;
        }
        let failures = match (listed, resources) {
            (false, _) => Vec::new(),
            (true, true) => {
                let (_, mut failures) = self.shelved::<Resources>(Some(server)).await;
                failures.extend(self.shelved::<Templates>(Some(server)).await.1);
                failures
            }
            (true, false) => self.shelved::<Prompts>(Some(server)).await.1,
        };
        let what = if resources { "resources" } else { "prompts" };
        match failures.first() {
            None => tracing::info!(server, "{what} changed"),
            Some(failure) => tracing::warn!(
                server,
                "{what} changed but could not be listed again: {}",
                failure.message
            ),
        }
        let server = server.to_owned();
        let event = match resources {
            true => HubEvent::ResourcesChanged { server },
            false => HubEvent::PromptsChanged { server },
        };
        let _ = self.events.send(event);
    }
}

impl Hub {
    /// Every resource of every server that offers them, under its exposed URI
    /// (`SERVER+URI`), with the servers whose listing failed. Listed the first time it is
    /// asked, then kept until the server says they changed (or, with no listen stream to
    /// say so, until its `ttlMs` runs out).
    pub async fn resources(&self) -> Listing<ExposedResource> {
        self.resources_in(None).await
    }

    /// [`Hub::resources`] as `session` sees them: a `per_session` server whose list is
    /// private (`cacheScope: "private"`) shows the session its own.
    pub async fn resources_in(&self, session: Option<&Session>) -> Listing<ExposedResource> {
        let (lists, failures) = self.inner().shelved_in::<Resources>(session, None).await;
        let mut items: Vec<_> = lists
            .iter()
            .flat_map(|(_, l)| l.items.iter().cloned())
            .collect();
        super::uris::expose_resources(self.inner(), &mut items);
        Listing { items, failures }
    }

    /// Every resource template (`SERVER+TEMPLATE`), like [`Hub::resources`].
    pub async fn resource_templates(&self) -> Listing<ExposedResourceTemplate> {
        self.resource_templates_in(None).await
    }

    /// [`Hub::resource_templates`] as `session` sees them, like [`Hub::resources_in`].
    pub async fn resource_templates_in(
        &self,
        session: Option<&Session>,
    ) -> Listing<ExposedResourceTemplate> {
        let (lists, failures) = self.inner().shelved_in::<Templates>(session, None).await;
        let mut items: Vec<_> = lists
            .iter()
            .flat_map(|(_, l)| l.items.iter().cloned())
            .collect();
        super::uris::expose_templates(self.inner(), &mut items);
        Listing { items, failures }
    }

    /// Every prompt of every server that offers them, under its exposed name
    /// (`SERVER__PROMPT`), like [`Hub::resources`].
    pub async fn prompts(&self) -> Listing<ExposedPrompt> {
        self.prompts_in(None).await
    }

    /// [`Hub::prompts`] as `session` sees them, like [`Hub::resources_in`].
    pub async fn prompts_in(&self, session: Option<&Session>) -> Listing<ExposedPrompt> {
        let (lists, failures) = self.inner().shelved_in::<Prompts>(session, None).await;
        let servers = lists
            .iter()
            .map(|(server, l)| (server.as_str(), &l.items[..]));
        let items = expose_prompts(&self.inner().settings.catalog, servers);
        Listing { items, failures }
    }

    /// Reads the resource at the exposed `uri` (`SERVER+URI`) over the shared connection.
    /// The parts' URIs come back exposed too. `deadline` defaults to now + the server's
    /// `tool_call_timeout`.
    pub async fn read_resource(
        &self,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<ResourceRead, Error> {
        self.read_resource_in(None, uri, deadline).await
    }

    /// [`Hub::read_resource`] on behalf of `session` (its own connection on `per_session`
    /// servers).
    pub async fn read_resource_in(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<ResourceRead, Error> {
        let options = CallOptions::from(deadline);
        self.read_resource_step(session, uri, options).await?.done()
    }

    /// [`Hub::read_resource_in`] with [`CallOptions`] (their deadline, and the 2026-07-28
    /// passthrough as for [`Hub::call_step`](crate::Hub::call_step): a server's
    /// input-required result handed back to a caller that asks its own client, and that
    /// caller's retry with the answers, which goes to the same server).
    pub async fn read_resource_step(
        &self,
        session: Option<&Session>,
        uri: &str,
        options: CallOptions,
    ) -> Result<RequestStep<ResourceRead>, Error> {
        let Some(route) = self.route_uri(session, uri).await else {
            return Err(self.no_resource(uri).await);
        };
        let (server, own) = (route.server.as_str(), route.own.as_str());
        resumes_on(&options, server, uri)?;
        let inner = self.inner();
        let clients = inner.enter(server)?;
        let call = call_context_for(inner, &clients, session, &options);
        let request = RequestInfo {
            method: "resources/read",
            server,
            name: own,
            session: session.map(|s| s.id.as_str()),
        };
        let started = Instant::now();
        let read = clients.read_resource(session, own, &call).await;
        told_to_layers(inner, &request, &read, started);
        let mut read = read?;
        if let Some(asked) = handed_back(&call, server) {
            return Ok(RequestStep::InputRequired(asked));
        }
        if !route.bare {
            for part in &mut read.contents {
                part.uri = expose_uri(server, &part.uri);
            }
        }
        Ok(RequestStep::Done(read))
    }

    /// Gets the prompt exposed as `name` with `arguments` (string values; others are sent
    /// as their JSON text) over the shared connection. `deadline` as for
    /// [`Hub::read_resource`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<PromptOutcome, Error> {
        self.get_prompt_in(None, name, arguments, deadline).await
    }

    /// [`Hub::get_prompt`] on behalf of `session`.
    pub async fn get_prompt_in(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<PromptOutcome, Error> {
        let options = CallOptions::from(deadline);
        self.get_prompt_step(session, name, arguments, options)
            .await?
            .done()
    }

    /// [`Hub::get_prompt_in`] with [`CallOptions`], like [`Hub::read_resource_step`].
    pub async fn get_prompt_step(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
    ) -> Result<RequestStep<PromptOutcome>, Error> {
        let prompts = self.prompts_in(session).await;
        let Some(prompt) = prompts.items.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = prompts.items.iter().map(|p| p.name.as_str()).collect();
            // It may be a prompt of a server that could not list them: say so.
            let failed = prompts.failures.iter().filter_map(|f| f.server.as_deref());
            let owner = servers_for_name(&self.inner().settings.catalog, name, failed).pop();
            let why = owner
                .and_then(|owner| {
                    prompts
                        .failures
                        .iter()
                        .find(|f| f.server.as_deref() == Some(owner))
                })
                .map_or(String::new(), |failure| {
                    format!(" (its server could not list prompts: {})", failure.message)
                });
            return Err(Error::NotFound {
                server: None,
                what: format!("prompt '{name}'{why}"),
                suggestion: closest(name, &names).map(str::to_owned),
            });
        };
        resumes_on(&options, &prompt.server, name)?;
        let inner = self.inner();
        let clients = inner.enter(&prompt.server)?;
        let call = call_context_for(inner, &clients, session, &options);
        let arguments = arguments.map(|arguments| {
            let strings = arguments.into_iter().map(|(key, value)| match value {
                serde_json::Value::String(_) => (key, value),
                other => (key, serde_json::Value::String(other.to_string())),
            });
            strings.collect()
        });
        let request = RequestInfo {
            method: "prompts/get",
            server: &prompt.server,
            name: &prompt.original,
            session: session.map(|s| s.id.as_str()),
        };
        let started = Instant::now();
        let outcome = clients
            .get_prompt(session, &prompt.original, arguments, &call)
            .await;
        told_to_layers(inner, &request, &outcome, started);
        let mut outcome = outcome?;
        if let Some(asked) = handed_back(&call, &prompt.server) {
            return Ok(RequestStep::InputRequired(asked));
        }
        let blocks = outcome.messages.iter_mut().map(|m| &mut m.content);
        expose_resource_uris(inner, &prompt.server, blocks);
        Ok(RequestStep::Done(outcome))
    }
}

/// Gives the resource links and embedded resources among `blocks` (of a tool result or a
/// prompt from `server`) their exposed URIs (`SERVER+URI`), so what a result points to can
/// be read through the hub as it is. Transparent URIs stay as they are (a link to a URI
/// that an earlier server lists too then reads from that server).
pub(super) fn expose_resource_uris<'a>(
    inner: &Inner,
    server: &str,
    blocks: impl IntoIterator<Item = &'a mut Content>,
) {
    if inner.transparent_uris() {
        return;
    }
    for uri in blocks.into_iter().filter_map(Content::resource_uri_mut) {
        *uri = expose_uri(server, uri);
    }
}

impl Hub {
    /// The error for an exposed URI that names no registered server, suggesting the
    /// exposed URI of a resource that has `uri` as its own, or the closest one (listing
    /// resources if they were not: only on this error path).
    pub(super) async fn no_resource(&self, uri: &str) -> Error {
        let resources = self.resources().await.items;
        let suggestion = match resources.iter().find(|r| r.server_uri == uri) {
            Some(resource) => Some(resource.uri.clone()),
            None => {
                let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
                closest(uri, &uris).map(str::to_owned)
            }
        };
        let form = match self.inner().transparent_uris() {
            true => "the servers' own URIs, or SERVER+URI",
            false => "exposed URIs are SERVER+URI",
        };
        Error::NotFound {
            server: None,
            what: format!("resource '{uri}' ({form})"),
            suggestion,
        }
    }
}

/// Tells every call layer (innermost first, as for calls) that `request` was sent.
fn told_to_layers<T>(
    inner: &Inner,
    request: &RequestInfo<'_>,
    result: &Result<T, Error>,
    started: Instant,
) {
    let elapsed = started.elapsed();
    for layer in inner.layers.iter().rev() {
        layer.after_request(request, result.as_ref().err(), elapsed);
    }
}

/// A read's or a prompt get's call: `deadline` (default: now + the server's
/// `tool_call_timeout`), and what the server asks answered as for a tool call: by the
/// session's input handler, else the hub's.
/// [`call_context`] for `options`: their deadline, and the caller's 2026-07-28 part.
fn call_context_for(
    inner: &Inner,
    clients: &ServerClients,
    session: Option<&Session>,
    options: &CallOptions,
) -> Arc<CallContext> {
    let call = call_context(inner, clients, session, options.deadline);
    if let Some(passthrough) = Passthrough::from_options(options) {
        let _ = call.passthrough.set(passthrough);
    }
    call
}

/// The input-required result `server` gave `call`, if it was handed back to the caller.
fn handed_back(call: &CallContext, server: &str) -> Option<InputRequired> {
    call.passthrough.get()?.take_asked(server)
}

/// Refuses a retry of a request handed back when `name` now reads from (or is) another
/// server's than the one that asked.
fn resumes_on(options: &CallOptions, server: &str, name: &str) -> Result<(), Error> {
    match options.resume.as_ref().filter(|r| r.server != server) {
        Some(resume) => Err(Error::InvalidArguments {
            server: server.to_owned(),
            tool: name.to_owned(),
            problems: vec![format!(
                "the retry answers server '{}', which no longer serves '{name}'",
                resume.server
            )],
        }),
        None => Ok(()),
    }
}

pub(super) fn call_context(
    inner: &Inner,
    clients: &ServerClients,
    session: Option<&Session>,
    deadline: Option<Deadline>,
) -> Arc<CallContext> {
    let timeout = clients.shared().server().tool_call_timeout;
    let deadline = deadline.map_or_else(|| Instant::now() + timeout, Deadline::tokio);
    let input = session
        .and_then(Session::input_handler)
        .or(inner.input.as_ref())
        .cloned();
    let call = CallContext::new(deadline, None, None, input);
    if let Some(injector) = &inner.meta_injector {
        let _ = call.meta_injector.set(injector.clone());
    }
    call
}

#[cfg(test)]
mod tests {
    /// Hub futures run on any runtime thread (tokio::spawn, the blocking face).
    #[allow(dead_code)]
    fn futures_are_send(hub: &super::Hub) {
        fn send<T: Send>(_: T) {}
        send(hub.resources());
        send(hub.resource_templates());
        send(hub.prompts());
        send(hub.read_resource("s+x", None));
        send(hub.get_prompt("s__p", None, None));
    }
}
