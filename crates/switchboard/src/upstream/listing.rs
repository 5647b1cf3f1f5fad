//! Listing a server's tools, and what the listing says about caching it.
//!
//! 2026-07-28 lists carry `ttlMs` (how long the list may be taken as fresh) and
//! `cacheScope` (`private`: for this authorization context only). Pages are read one by
//! one here (not with rmcp's `list_all_tools`) to keep both: the list is as fresh as its
//! least fresh page, and private if any page is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmcp::model::{
    CacheScope, ClientRequest, ListToolsRequest, ListToolsResult, PaginatedRequestParams,
    ServerResult, Tool,
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

    /// Every tool the server has (all pages) as `call` sees them: with its session's
    /// headers when it is a session's request on a shared connection, by its deadline. What
    /// the list says of caching it is returned, not kept (it is the session's).
    pub(crate) async fn list_tools_for(
        &self,
        call: &Arc<CallContext>,
    ) -> Result<(Vec<Tool>, CacheHints), Error> {
        let mut tools = Vec::new();
        let mut hints = CacheHints::default();
        let mut cursor = None;
        loop {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let request = |_, _| {
                ClientRequest::ListToolsRequest(ListToolsRequest::with_param(params.clone()))
            };
            let page = match self
                .request(Phase::ListTools, request, "tools/list", call)
                .await?
            {
                ServerResult::ListToolsResult(page) => page,
                _ => return Err(self.unexpected("tools/list")),
            };
            cursor = hints.add(page, &mut tools);
            if cursor.is_none() {
                return Ok((tools, hints));
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
            cursor = hints.add(page, &mut tools);
            if cursor.is_none() {
                return Ok((tools, hints));
            }
        }
    }
}

impl CacheHints {
    /// Takes in one page of a list (its tools go to `tools`); returns the next page's
    /// cursor.
    fn add(&mut self, page: ListToolsResult, tools: &mut Vec<Tool>) -> Option<String> {
        tools.extend(page.tools);
        if let Some(ttl) = page.ttl_ms.map(Duration::from_millis) {
            self.ttl = Some(self.ttl.map_or(ttl, |least| least.min(ttl)));
        }
        self.private |= page.cache_scope == Some(CacheScope::Private);
        page.next_cursor
    }

    /// How long a list with these hints may be taken as fresh: its `ttlMs` (at least a
    /// second); `None` when it says nothing of it (no `ttlMs`, or 0).
    pub fn fresh_for(&self) -> Option<Duration> {
        self.ttl
            .filter(|ttl| !ttl.is_zero())
            .map(|ttl| ttl.max(MIN_FRESH))
    }
}
