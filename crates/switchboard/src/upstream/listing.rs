//! Listing what a server has (tools, resources, templates, prompts), and what the listing
//! says about caching it.
//!
//! 2026-07-28 lists carry `ttlMs` (how long the list may be taken as fresh) and
//! `cacheScope` (`private`: for this authorization context only). Pages are read one by
//! one here (not with rmcp's `list_all_tools`) to keep both: the list is as fresh as its
//! least fresh page, and private if any page is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmcp::model::{
    CacheScope, ClientRequest, ListPromptsRequest, ListResourceTemplatesRequest,
    ListResourcesRequest, ListToolsRequest, PaginatedRequestParams, Prompt, Resource,
    ResourceTemplate, ServerResult, Tool,
};
use rmcp::service::ServiceError;

use super::interaction::CallContext;
use super::{Upstream, classify};
use crate::sync::lock;
use crate::{Error, Phase};

/// The caching hints of a list (SEP-2549). Classic servers send none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `ttlMs`: how long the list may be taken as fresh.
    pub ttl: Option<Duration>,
    /// `cacheScope: "private"`: the list belongs to one authorization context.
    pub private: bool,
}

/// The shortest time a list is taken as fresh, whatever its `ttlMs` says: a server saying
/// 1 ms does not get a `tools/list` a millisecond.
const MIN_FRESH: Duration = Duration::from_secs(1);

impl Upstream {
    /// Every tool the server has (all pages), within `list_timeout`.
    pub async fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        self.check_usable()?;
        let budget = self.list_timeout;
        match tokio::time::timeout(budget, self.all_tool_pages()).await {
            Ok(Ok((tools, hints))) => {
                let names = tools.iter().map(|t| t.name.to_string()).collect();
                *lock(&self.listed_tools) = Some(names);
                *lock(&self.tools_cache) = hints;
                Ok(tools)
            }
            Ok(Err(e)) => Err(classify::from_service(
                self.target(),
                e,
                Phase::ListTools,
                budget,
                None,
            )),
            Err(_) => Err(Error::Timeout {
                server: self.server.to_string(),
                phase: Phase::ListTools,
                after: budget,
            }),
        }
    }

    /// Whether a `subscriptions/listen` stream brings the server's list changes (else, on
    /// a 2026-07-28 server, only a list's `ttlMs` says when to list again).
    pub fn follows_changes(&self) -> bool {
        self.follows_tools.load(Ordering::Acquire)
    }

    /// What the last [`Upstream::list_tools`] said about caching the list.
    pub fn tools_cache_hints(&self) -> CacheHints {
        *lock(&self.tools_cache)
    }

    /// When the tools listed last should be listed again: after their `ttlMs` (at least a
    /// second), unless a `subscriptions/listen` stream brings their changes anyway. `None`
    /// when there is nothing to refresh: a classic server (it sends `list_changed`
    /// unasked), no `ttlMs`, or `ttlMs: 0`, which says nothing about how long the list
    /// holds (the SDKs' default; refreshing on it would be a `tools/list` per use).
    pub fn tools_stale_after(&self) -> Option<Duration> {
        if self.follows_tools.load(Ordering::Acquire) {
            return None;
        }
        self.tools_cache_hints().fresh_for()
    }

    /// Every item of list `L` (all pages) over this connection as it is, within
    /// `list_timeout`.
    pub(crate) async fn list_all<L: ListKind>(&self) -> Result<(Vec<L::Item>, CacheHints), Error> {
        let call = CallContext::fixed(tokio::time::Instant::now() + self.list_timeout);
        self.list::<L>(&call).await
    }

    /// Every item of list `L` (all pages) as `call` sees it: with its session's headers
    /// when it is a session's request on a shared connection, by its deadline. What the
    /// list says of caching it comes back with it.
    pub(crate) async fn list<L: ListKind>(
        &self,
        call: &Arc<CallContext>,
    ) -> Result<(Vec<L::Item>, CacheHints), Error> {
        let mut items = Vec::new();
        let mut hints = CacheHints::default();
        let mut cursor = None;
        loop {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let request = |_, _| L::request(params.clone());
            let result = self.request(L::PHASE, request, L::METHOD, call).await?;
            let Some(page) = L::page(result) else {
                return Err(self.unexpected(L::METHOD));
            };
            items.extend(page.items);
            hints.add(page.ttl_ms, page.cache_scope);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok((items, hints));
            }
        }
    }

    async fn all_tool_pages(&self) -> Result<(Vec<Tool>, CacheHints), ServiceError> {
        let mut tools = Vec::new();
        let mut hints = CacheHints::default();
        let mut cursor = None;
        loop {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let page = self.peer.list_tools(Some(params)).await?;
            hints.add(page.ttl_ms, page.cache_scope);
            tools.extend(page.tools);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok((tools, hints));
            }
        }
    }
}

impl CacheHints {
    /// Takes in one page's hints: the list is as fresh as its least fresh page, and
    /// private if any page is.
    fn add(&mut self, ttl_ms: Option<u64>, scope: Option<CacheScope>) {
        if let Some(ttl) = ttl_ms.map(Duration::from_millis) {
            self.ttl = Some(self.ttl.map_or(ttl, |least| least.min(ttl)));
        }
        self.private |= scope == Some(CacheScope::Private);
    }

    /// How long a list with these hints may be taken as fresh: its `ttlMs` (at least a
    /// second); `None` when it says nothing of it (no `ttlMs`, or 0).
    pub fn fresh_for(&self) -> Option<Duration> {
        self.ttl
            .filter(|ttl| !ttl.is_zero())
            .map(|ttl| ttl.max(MIN_FRESH))
    }
}

/// A kind of list a server gives page by page.
pub(crate) trait ListKind {
    type Item: Send + 'static;
    const PHASE: Phase;
    /// The request's method, which also names it in errors.
    const METHOD: &'static str;
    fn request(params: PaginatedRequestParams) -> ClientRequest;
    /// The page in `result` (`None`: a result of another type).
    fn page(result: ServerResult) -> Option<Page<Self::Item>>;
}

/// One page of a list.
pub(crate) struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
    ttl_ms: Option<u64>,
    cache_scope: Option<CacheScope>,
}

pub(crate) struct ToolList;
pub(crate) struct ResourceList;
pub(crate) struct TemplateList;
pub(crate) struct PromptList;

/// `impl ListKind for KIND`: its item, phase, method, request and result types, and the
/// result's field that holds the items.
macro_rules! list_kind {
    ($kind:ident, $item:ty, $phase:ident, $method:literal, $request:ident, $result:ident, $field:ident) => {
        impl ListKind for $kind {
            type Item = $item;
            const PHASE: Phase = Phase::$phase;
            const METHOD: &'static str = $method;
            fn request(params: PaginatedRequestParams) -> ClientRequest {
                ClientRequest::$request($request::with_param(params))
            }
            fn page(result: ServerResult) -> Option<Page<$item>> {
                let ServerResult::$result(page) = result else {
                    return None;
                };
                Some(Page {
                    items: page.$field,
                    next_cursor: page.next_cursor,
                    ttl_ms: page.ttl_ms,
                    cache_scope: page.cache_scope,
                })
            }
        }
    };
}

list_kind!(
    ToolList,
    Tool,
    ListTools,
    "tools/list",
    ListToolsRequest,
    ListToolsResult,
    tools
);
list_kind!(
    ResourceList,
    Resource,
    ListResources,
    "resources/list",
    ListResourcesRequest,
    ListResourcesResult,
    resources
);
list_kind!(
    TemplateList,
    ResourceTemplate,
    ListResourceTemplates,
    "resources/templates/list",
    ListResourceTemplatesRequest,
    ListResourceTemplatesResult,
    resource_templates
);
list_kind!(
    PromptList,
    Prompt,
    ListPrompts,
    "prompts/list",
    ListPromptsRequest,
    ListPromptsResult,
    prompts
);
