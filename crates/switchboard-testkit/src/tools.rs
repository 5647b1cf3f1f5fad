//! The test server itself: a hand-written rmcp [`ServerHandler`] whose tool
//! list is decided at runtime (fixed tools, `--tools N` generated ones and
//! tools added by `notify_list_changed`), with counters that let tests prove
//! how often a call really ran or was cancelled.
//!
//! Retry semantics have their own tools: `echo` (no annotations: not
//! idempotent), `lookup` (readOnlyHint) and `put` (idempotentHint) all echo
//! `message`; `crash_once` / `crash_once_idempotent` count executions in a
//! file (`marker`), since a stdio server's counters die with its process.
//!
//! Every transport (stdio, Streamable HTTP, legacy SSE) serves clones of the
//! same [`TestServer`]; clones share the counters and the tool list, while
//! [`TestServer::new_session`] gives each MCP session its own session id.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::http::request::Parts;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        DiscoverRequestMethod, DiscoverResult, GetPromptRequestParams, GetPromptResponse,
        Implementation, InitializeRequestParams, InitializeResult, InitializeResultMethod,
        JsonObject, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, Prompt, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, Resource, ServerCapabilities,
        ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
    transport::streamable_http_server::session::{SessionManager, local::LocalSessionManager},
};
use serde_json::{Value, json};

use crate::listen::{Kind, Listeners};
use crate::offers::Added;
use crate::{Knobs, Lifecycle};

/// A valid 1x1 PNG (one transparent-ish pixel), base64.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A valid 8-sample, 8 kHz, 8-bit mono WAV file, base64.
pub const TINY_WAV_BASE64: &str =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

/// Exit status of the binary when the `drop` tool kills the process.
pub const DROP_EXIT_CODE: i32 = 17;

/// State shared by every clone of a [`TestServer`] (all sessions of one server).
struct Shared {
    knobs: Knobs,
    base_tools: Vec<Tool>,
    added_tools: Mutex<Vec<Tool>>,
    executions: Mutex<BTreeMap<String, u64>>,
    /// List requests answered, by method (`resources/list`, `prompts/list`, ...).
    listings: Mutex<BTreeMap<String, u64>>,
    cancelled: Mutex<BTreeMap<String, u64>>,
    /// `tick` executions by their `id` argument: a call that ran twice shows as 2.
    ticks: Mutex<BTreeMap<String, u64>>,
    /// Sessions `initialize`d, by the request's `X-User` header ("" without one).
    sessions_created: Mutex<BTreeMap<String, u64>>,
    /// Stateful Streamable HTTP only: `DELETE /mcp` requests, by `X-User` ("" without one).
    sessions_deleted: Mutex<BTreeMap<String, u64>>,
    grandchildren: Mutex<Vec<std::process::Child>>,
    /// Stateful Streamable HTTP only: the sessions, so `expire_session` can end one.
    http_sessions: OnceLock<Arc<LocalSessionManager>>,
    /// Resources and prompts (`offers.rs`).
    offers: Added,
    /// Open `subscriptions/listen` streams (2026-07-28 clients; `listen.rs`).
    listeners: Listeners,
    /// A `server/discover` was answered (`Knobs::slow_first_discover`).
    discovered: AtomicBool,
}

/// The Switchboard test MCP server. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct TestServer {
    shared: Arc<Shared>,
    session: Arc<str>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("knobs", &self.shared.knobs)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// A fresh server (fresh counters, fresh session id).
    pub fn new(knobs: Knobs) -> Self {
        let mut base_tools = base_tools(knobs.tools);
        if knobs.header_params {
            base_tools.push(Tool::new(
                "route",
                "Returns `region`, which a 2026-07-28 client also sends as the \
                 `Mcp-Param-Region` header.",
                schema(json!({
                    "type": "object",
                    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
                    "required": ["region"]
                })),
            ));
        }
        if knobs.oauth.is_some() {
            base_tools.push(Tool::new(
                "whoami",
                "Returns the subject and client of the bearer token this request carried.",
                schema(json!({"type": "object"})),
            ));
        }
        Self {
            shared: Arc::new(Shared {
                knobs,
                base_tools,
                added_tools: Mutex::new(Vec::new()),
                executions: Mutex::new(BTreeMap::new()),
                listings: Mutex::new(BTreeMap::new()),
                cancelled: Mutex::new(BTreeMap::new()),
                ticks: Mutex::new(BTreeMap::new()),
                sessions_created: Mutex::new(BTreeMap::new()),
                sessions_deleted: Mutex::new(BTreeMap::new()),
                grandchildren: Mutex::new(Vec::new()),
                http_sessions: OnceLock::new(),
                offers: Added::default(),
                listeners: Listeners::default(),
                discovered: AtomicBool::new(false),
            }),
            session: new_id().into(),
        }
    }

    /// A handle on the same server (same counters and tools) with a new session id.
    pub fn new_session(&self) -> Self {
        self.with_session_id(new_id())
    }

    /// A handle on the same server with the given session id.
    pub fn with_session_id(&self, id: impl Into<String>) -> Self {
        Self {
            shared: self.shared.clone(),
            session: id.into().into(),
        }
    }

    /// This handle's session id (what `session_info` reports outside stateful HTTP).
    pub fn session_id(&self) -> &str {
        &self.session
    }

    /// Lets `expire_session` end sessions of this stateful Streamable HTTP server.
    pub fn set_http_sessions(&self, sessions: Arc<LocalSessionManager>) {
        let _ = self.shared.http_sessions.set(sessions);
    }

    /// How many sessions this stateful Streamable HTTP server holds now (0 for other
    /// transports): tests count upstream sessions with it.
    pub async fn http_session_count(&self) -> usize {
        match self.shared.http_sessions.get() {
            Some(sessions) => sessions.sessions.read().await.len(),
            None => 0,
        }
    }

    /// The knobs this server was built with.
    pub fn knobs(&self) -> &Knobs {
        &self.shared.knobs
    }

    /// The current tool list (fixed, generated and added tools).
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = self.shared.base_tools.clone();
        tools.extend(lock(&self.shared.added_tools).iter().cloned());
        tools
    }

    /// `{"executions": {tool: n}, "cancelled": {tool: n}, "listings": {method: n},
    /// "subscribed": [uri], "ticks": {id: n}, "sessions_created": {user: n},
    /// "sessions_deleted": {user: n}}` across all
    /// sessions (`listings`: resource, template and prompt lists asked for; `subscribed`:
    /// resources subscribed to now; `ticks`: `tick` executions per `id`; `sessions_created`:
    /// `initialize`s per `X-User` header value, `""` for none; `sessions_deleted`: stateful
    /// Streamable HTTP `DELETE`s the same way).
    pub fn counts(&self) -> Value {
        json!({
            "executions": *lock(&self.shared.executions),
            "ticks": *lock(&self.shared.ticks),
            "sessions_created": *lock(&self.shared.sessions_created),
            "sessions_deleted": *lock(&self.shared.sessions_deleted),
            "listings": *lock(&self.shared.listings),
            "cancelled": *lock(&self.shared.cancelled),
            "subscribed": self.shared.offers.subscribed(),
        })
    }

    /// Counts a `DELETE` of a session by `user` (the `X-User` header, `""` without one).
    pub(crate) fn count_delete(&self, user: &str) {
        *lock(&self.shared.sessions_deleted)
            .entry(user.to_owned())
            .or_default() += 1;
    }

    fn count_listing(&self, method: &str) {
        *lock(&self.shared.listings)
            .entry(method.to_owned())
            .or_default() += 1;
    }

    /// Adds a tool `added_<n>` (echoes `message`) and returns its name.
    fn add_tool(&self) -> String {
        let mut added = lock(&self.shared.added_tools);
        let name = format!("added_{}", added.len() + 1);
        added.push(message_tool(
            name.clone(),
            "A tool added at runtime: echoes `message`.",
        ));
        name
    }

    /// The page of `items` that `request`'s cursor starts (every item when `page_size` is
    /// 0), and the next page's cursor: the index of its first item.
    fn page<T: Clone>(
        &self,
        items: Vec<T>,
        request: Option<PaginatedRequestParams>,
    ) -> Result<(Vec<T>, Option<String>), McpError> {
        let page_size = self.knobs().page_size;
        if page_size == 0 {
            return Ok((items, None));
        }
        let start = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| McpError::invalid_params("bad cursor", None))?,
            None => 0,
        };
        let end = (start + page_size).min(items.len());
        let next = (end < items.len()).then(|| end.to_string());
        Ok((items[start.min(end)..end].to_vec(), next))
    }

    /// With `private_lists`, the caller named by the request's `X-User` header.
    fn private_user<'c>(&self, context: &'c RequestContext<RoleServer>) -> Option<&'c str> {
        if !self.knobs().private_lists {
            return None;
        }
        http_parts(context)?.headers.get("x-user")?.to_str().ok()
    }

    /// With `private_lists`, the tool only the caller named by the request's `X-User`
    /// header has: `mine_<user>` (its resource list has `testkit://mine/<user>`, its
    /// prompts `mine_<user>`).
    fn private_tool(&self, context: &RequestContext<RoleServer>) -> Option<Tool> {
        let name = format!("mine_{}", self.private_user(context)?);
        Some(Tool::new(
            name,
            "Answers the name of the user whose list holds it.",
            empty_schema(),
        ))
    }

    fn find_tool(&self, name: &str) -> Option<Tool> {
        self.shared
            .base_tools
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .or_else(|| {
                lock(&self.shared.added_tools)
                    .iter()
                    .find(|t| t.name == name)
                    .cloned()
            })
    }

    async fn run_tool(
        &self,
        name: &str,
        args: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ct = &context.ct;
        let result = match name {
            "echo" | "lookup" | "put" => text(str_arg(args, "message")?),
            "route" => text(str_arg(args, "region")?),
            "echo_args" => text(Value::Object(args.clone()).to_string()),
            "tick" => {
                let id = str_arg(args, "id")?;
                *lock(&self.shared.ticks).entry(id.to_owned()).or_default() += 1;
                text(id)
            }
            "echo_meta" => text(serde_json::to_string(&context.meta).unwrap_or_default()),
            "whoami" => {
                let header = |name: &str| {
                    http_parts(context)
                        .and_then(|parts| parts.headers.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let who = json!({
                    "subject": header("x-testkit-subject"),
                    "client_id": header("x-testkit-client"),
                });
                text(who.to_string())
            }
            "add" => {
                let sum = num_arg(args, "a")? + num_arg(args, "b")?;
                text(sum.to_string())
            }
            "fail" => {
                let message = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the tool failed on purpose");
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
            "hang" => {
                ct.cancelled().await;
                return Err(cancelled());
            }
            "sleep" => {
                let ms = uint_arg(args, "ms")?;
                let started = unix_ms();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                        // When it ran, by the server's clock: clients prove overlap with it.
                        let mut result = text(format!("slept {ms} ms"));
                        result.structured_content =
                            Some(json!({"started_ms": started, "ended_ms": unix_ms()}));
                        result
                    }
                    _ = ct.cancelled() => return Err(cancelled()),
                }
            }
            "structured" => CallToolResult::structured(json!({"temperature": 21.5, "unit": "C"})),
            "image" => CallToolResult::success(vec![
                ContentBlock::image(TINY_PNG_BASE64, "image/png"),
                ContentBlock::text("tiny image"),
            ]),
            "mixed" => CallToolResult::success(vec![
                ContentBlock::text("first"),
                ContentBlock::text("second"),
                ContentBlock::image(TINY_PNG_BASE64, "image/png"),
                ContentBlock::audio(TINY_WAV_BASE64, "audio/wav"),
                // A link to a resource the server has, so a client can follow it.
                ContentBlock::resource_link(
                    Resource::new(crate::offers::HELLO_URI, "hello").with_mime_type("text/plain"),
                ),
                ContentBlock::embedded_text(
                    "file:///switchboard-testkit/embedded.txt",
                    "embedded resource text",
                ),
            ]),
            "payload" => {
                let bytes = usize::try_from(uint_arg(args, "bytes")?)
                    .map_err(|_| McpError::invalid_params("`bytes` is too large", None))?;
                text("x".repeat(bytes))
            }
            "drop" => {
                if self.shared.knobs.exit_on_drop {
                    // Simulate a crash: no answer, no flush, no cleanup.
                    std::process::exit(DROP_EXIT_CODE);
                }
                ct.cancelled().await;
                return Err(cancelled());
            }
            "crash_once" | "crash_once_idempotent" => {
                let marker = str_arg(args, "marker")?;
                if record_execution(marker)? == 1 {
                    if self.shared.knobs.exit_on_drop {
                        // The first execution crashes like `drop`: no answer, no flush.
                        std::process::exit(DROP_EXIT_CODE);
                    }
                    ct.cancelled().await;
                    return Err(cancelled());
                }
                text("ok after restart")
            }
            "notify_list_changed" => {
                let added = self.add_tool();
                self.shared.listeners.changed(Kind::Tools, context).await;
                text(format!("added {added}"))
            }
            "add_resource" => {
                let uri = self.shared.offers.add_resource();
                self.shared
                    .listeners
                    .changed(Kind::Resources, context)
                    .await;
                text(format!("added {uri}"))
            }
            "touch_resource" => {
                let uri = str_arg(args, "uri")?;
                let params = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
                match context.peer.notify_resource_updated(params).await {
                    Ok(()) => text(format!("touched {uri}")),
                    Err(error) => text(format!("could not notify: {error}")),
                }
            }
            "add_prompt" => {
                let name = self.shared.offers.add_prompt();
                self.shared.listeners.changed(Kind::Prompts, context).await;
                text(format!("added {name}"))
            }
            "listening" => text(self.shared.listeners.count().to_string()),
            "end_listens" => {
                let open = self.shared.listeners.end_all();
                text(format!("ended {open}"))
            }
            "roots" => {
                #[allow(deprecated)] // roots (SEP-2577): still what clients answer
                let listed = context.peer.list_roots().await;
                match listed {
                    Ok(roots) => text(serde_json::to_string(&roots).unwrap_or_default()),
                    Err(error) => text(format!("roots/list failed: {error}")),
                }
            }
            "counts" => text(self.counts().to_string()),
            "echo_headers" => {
                let headers: serde_json::Map<String, Value> = match http_parts(context) {
                    Some(parts) => {
                        let mut map = serde_json::Map::new();
                        for (key, value) in &parts.headers {
                            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                            match map.get_mut(key.as_str()) {
                                Some(Value::String(existing)) => {
                                    existing.push_str(", ");
                                    existing.push_str(&value);
                                }
                                _ => {
                                    map.insert(key.as_str().to_owned(), Value::String(value));
                                }
                            }
                        }
                        map
                    }
                    None => serde_json::Map::new(),
                };
                text(Value::Object(headers).to_string())
            }
            "session_info" => {
                let from_header = http_parts(context).and_then(|parts| {
                    parts
                        .headers
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                });
                let session = from_header.unwrap_or_else(|| self.session.to_string());
                text(json!({ "session": session }).to_string())
            }
            "expire_session" => {
                let (Some(sessions), Some(id)) = (
                    self.shared.http_sessions.get().cloned(),
                    http_parts(context)
                        .and_then(|parts| parts.headers.get("mcp-session-id"))
                        .and_then(|v| v.to_str().ok())
                        .map(Arc::<str>::from),
                ) else {
                    return Err(McpError::invalid_request(
                        "expire_session needs stateful Streamable HTTP",
                        None,
                    ));
                };
                // After this answer is on its way: the session's next request gets 404.
                let answer = json!({ "expired": &*id }).to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = sessions.close_session(&id).await;
                });
                text(answer)
            }
            "spawn_grandchild" => {
                // Same process group on purpose: process-cleanup tests kill the group.
                let child = std::process::Command::new("sleep")
                    .arg("300")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| McpError::internal_error(format!("spawn sleep: {e}"), None))?;
                let pid = child.id();
                lock(&self.shared.grandchildren).push(child);
                text(pid.to_string())
            }
            // Generated (`tool_N`) and added (`added_N`) tools echo their message.
            _ => text(
                args.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        Ok(result)
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_prompts_list_changed()
            .build();
        if self.shared.knobs.hide_offers {
            capabilities.resources = None;
            capabilities.prompts = None;
        }
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "switchboard-testkit",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        if self.shared.knobs.lifecycle == Lifecycle::Modern {
            return Err(McpError::method_not_found::<InitializeResultMethod>());
        }
        if self.shared.knobs.hang_initialize {
            std::future::pending::<()>().await;
        }
        if let Some(delay) = self.shared.knobs.initialize_delay {
            tokio::time::sleep(delay).await;
        }
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request);
        if result.is_ok() {
            let user = http_parts(&context)
                .and_then(|parts| parts.headers.get("x-user"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            *lock(&self.shared.sessions_created).entry(user).or_default() += 1;
        }
        result
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Some(after) = self.shared.knobs.notify_after else {
            return;
        };
        let server = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            server.add_tool();
            if let Err(error) = context.peer.notify_tool_list_changed().await {
                tracing::warn!(%error, "could not send tools/list_changed");
            }
        });
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        let speaks = |version: &ProtocolVersion| match self.shared.knobs.lifecycle {
            Lifecycle::Classic => version.has_initialize(),
            Lifecycle::Modern => !version.has_initialize(),
            Lifecycle::Both => true,
        };
        let known = ProtocolVersion::KNOWN_VERSIONS.iter();
        Cow::Owned(known.filter(|v| speaks(v)).cloned().collect())
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        // `server/discover` is the handshake of the initialize-less protocol revisions.
        if self.shared.knobs.lifecycle == Lifecycle::Classic {
            return Err(McpError::method_not_found::<DiscoverRequestMethod>());
        }
        if self.shared.knobs.hang_initialize {
            std::future::pending::<()>().await;
        }
        if let Some(delay) = self.shared.knobs.slow_first_discover
            && !self.shared.discovered.swap(true, Ordering::Relaxed)
        {
            tokio::time::sleep(delay).await;
        }
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(crate::listen::accepted(requested))
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        self.shared.listeners.hold(subscription).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = self.tools();
        tools.extend(self.private_tool(&context));
        let (tools, next_cursor) = self.page(tools, request)?;
        let mut page = ListToolsResult::with_all_items(tools);
        page.next_cursor = next_cursor;
        if let Some(ttl) = self.knobs().list_ttl {
            page = page
                .with_ttl_ms(ttl.as_millis() as u64)
                .with_cache_scope(CacheScope::Public);
        }
        if self.knobs().private_lists {
            page = page.with_cache_scope(CacheScope::Private);
        }
        Ok(page)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.count_listing("resources/list");
        let mut resources = self.shared.offers.resources();
        if let Some(user) = self.private_user(&context) {
            resources.push(Resource::new(format!("testkit://mine/{user}"), "mine"));
        }
        let (resources, next_cursor) = self.page(resources, request)?;
        let mut page = ListResourcesResult::with_all_items(resources);
        page.next_cursor = next_cursor;
        if let Some(ttl) = self.knobs().list_ttl {
            page = page.with_ttl_ms(ttl.as_millis() as u64);
        }
        if self.knobs().private_lists {
            page = page.with_cache_scope(CacheScope::Private);
        }
        Ok(page)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.count_listing("resources/templates/list");
        Ok(ListResourceTemplatesResult::with_all_items(
            self.shared.offers.templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.shared.offers.read(&request.uri).map(Into::into)
    }

    #[allow(deprecated)] // resources/subscribe: what 2025-11-25 clients send
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.offers.read(&request.uri)?;
        self.shared.offers.subscribe(&request.uri, true);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.offers.subscribe(&request.uri, false);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.count_listing("prompts/list");
        let mut prompts = self.shared.offers.prompts();
        if let Some(user) = self.private_user(&context) {
            prompts.push(Prompt::new(format!("mine_{user}"), None::<String>, None));
        }
        let mut page = ListPromptsResult::with_all_items(prompts);
        if let Some(ttl) = self.knobs().list_ttl {
            page = page.with_ttl_ms(ttl.as_millis() as u64);
        }
        if self.knobs().private_lists {
            page = page.with_cache_scope(CacheScope::Private);
        }
        Ok(page)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.shared.offers.get(request)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.find_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        if let Some(mine) = self.private_tool(&context).filter(|t| t.name == name) {
            let user = mine.name.trim_start_matches("mine_").to_owned();
            return Ok(CallToolResponse::from(text(user)));
        }
        if self.find_tool(&name).is_none() {
            return Err(McpError::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        }
        if name != "counts" {
            *lock(&self.shared.executions)
                .entry(name.clone())
                .or_default() += 1;
        }
        // Counts a cancellation if this call does not finish normally, whether
        // rmcp cancels its token or drops the future.
        let guard = CancelCounter {
            shared: self.shared.clone(),
            tool: Some(name.clone()),
        };
        let latency = self.shared.knobs.latency;
        if !latency.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(latency) => {}
                _ = context.ct.cancelled() => return Err(cancelled()),
            }
        }
        if name == "confirm" {
            guard.disarm();
            return crate::interactive::confirm(request);
        }
        if crate::interactive::TOOLS.contains(&name.as_str()) {
            let result = crate::interactive::run(request, &context).await;
            if result.is_ok() || !context.ct.is_cancelled() {
                guard.disarm();
            }
            return result;
        }
        let args = request.arguments.unwrap_or_default();
        let result = self.run_tool(&name, &args, &context).await;
        if result.is_ok() || !context.ct.is_cancelled() {
            guard.disarm();
        }
        result.map(CallToolResponse::from)
    }
}

/// Increments the `cancelled` counter of a tool on drop unless disarmed.
struct CancelCounter {
    shared: Arc<Shared>,
    tool: Option<String>,
}

impl CancelCounter {
    fn disarm(mut self) {
        self.tool = None;
    }
}

impl Drop for CancelCounter {
    fn drop(&mut self) {
        if let Some(tool) = self.tool.take() {
            *lock(&self.shared.cancelled).entry(tool).or_default() += 1;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn http_parts(context: &RequestContext<RoleServer>) -> Option<&Parts> {
    context.extensions.get::<Parts>()
}

/// Appends one line (this process's pid) to `marker` and returns how many
/// lines it has now: the executions of a crash tool across restarts.
fn record_execution(marker: &str) -> Result<usize, McpError> {
    use std::io::Write;
    let io_error =
        |error: std::io::Error| McpError::internal_error(format!("marker {marker}: {error}"), None);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(marker)
        .map_err(io_error)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error)?;
    drop(file);
    let lines = std::fs::read_to_string(marker)
        .map_err(io_error)?
        .lines()
        .count();
    Ok(lines)
}

fn cancelled() -> McpError {
    McpError::internal_error("request cancelled", None)
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn str_arg<'a>(args: &'a JsonObject, key: &str) -> Result<&'a str, McpError> {
    args.get(key).and_then(Value::as_str).ok_or_else(|| {
        McpError::invalid_params(format!("`{key}` is required and must be a string"), None)
    })
}

fn num_arg(args: &JsonObject, key: &str) -> Result<f64, McpError> {
    args.get(key).and_then(Value::as_f64).ok_or_else(|| {
        McpError::invalid_params(format!("`{key}` is required and must be a number"), None)
    })
}

fn uint_arg(args: &JsonObject, key: &str) -> Result<u64, McpError> {
    args.get(key).and_then(Value::as_u64).ok_or_else(|| {
        McpError::invalid_params(
            format!("`{key}` is required and must be a non-negative integer"),
            None,
        )
    })
}

/// Turns a `json!({...})` object into the schema type rmcp wants.
pub(crate) fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        other => panic!("a JSON schema must be an object, got {other}"),
    }
}

pub(crate) fn empty_schema() -> Arc<JsonObject> {
    schema(json!({"type": "object", "properties": {}}))
}

pub(crate) fn message_tool(name: String, description: &'static str) -> Tool {
    Tool::new(
        name,
        description,
        schema(json!({
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        })),
    )
}

/// A crash tool: one required string argument, `marker` (a file path).
fn crash_tool(name: &'static str, description: &'static str) -> Tool {
    Tool::new(
        name,
        description,
        schema(json!({
            "type": "object",
            "properties": {"marker": {"type": "string", "description": "A file path"}},
            "required": ["marker"],
        })),
    )
}

/// `add`: the sum of two numbers.
pub(crate) fn add_tool() -> Tool {
    Tool::new(
        "add",
        "Returns the sum of `a` and `b`.",
        schema(json!({
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        })),
    )
}

fn base_tools(generated: usize) -> Vec<Tool> {
    let mut tools = vec![
        message_tool("echo".into(), "Returns `message` unchanged."),
        message_tool(
            "lookup".into(),
            "Read-only (readOnlyHint): returns `message` unchanged.",
        )
        .with_annotations(ToolAnnotations::new().read_only(true)),
        message_tool(
            "put".into(),
            "Idempotent (idempotentHint): returns `message` unchanged.",
        )
        .with_annotations(ToolAnnotations::new().idempotent(true)),
        Tool::new(
            "echo_args",
            "Returns the arguments it received, as JSON text (optional `text`, `count`, and \
             `maybe`, which may be null).",
            schema(json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "count": {"type": "integer", "minimum": 0},
                    "maybe": {"type": ["string", "null"]}
                }
            })),
        ),
        add_tool(),
        Tool::new(
            "fail",
            "Returns a result with isError: true.",
            schema(json!({"type": "object", "properties": {"message": {"type": "string"}}})),
        ),
        Tool::new(
            "roots",
            "Asks the client for its roots (roots/list) and returns its answer as JSON.",
            empty_schema(),
        ),
        Tool::new(
            "confirm",
            "2026-07-28 clients: asks for input (input-required result, state `round-1`) and, sent again, returns the answers and state it got.",
            empty_schema(),
        ),
        Tool::new(
            "hang",
            "Never returns; counts a cancellation when cancelled.",
            empty_schema(),
        ),
        Tool::new(
            "sleep",
            "Sleeps `ms` milliseconds, then returns; `structuredContent` says when it started and ended (`started_ms`, `ended_ms`: Unix milliseconds).",
            schema(json!({
                "type": "object",
                "properties": {"ms": {"type": "integer", "minimum": 0}},
                "required": ["ms"],
            })),
        ),
        Tool::new("structured", "Returns structured content.", empty_schema())
            .with_raw_output_schema(schema(json!({
                "type": "object",
                "properties": {"temperature": {"type": "number"}, "unit": {"type": "string"}},
                "required": ["temperature", "unit"],
            }))),
        Tool::new(
            "image",
            "Returns a 1x1 PNG and a text block.",
            empty_schema(),
        ),
        Tool::new(
            "mixed",
            "Returns text, image, audio, resource_link and embedded resource blocks.",
            empty_schema(),
        ),
        Tool::new(
            "payload",
            "Returns one text block of exactly `bytes` ASCII bytes.",
            schema(json!({
                "type": "object",
                "properties": {"bytes": {"type": "integer", "minimum": 0}},
                "required": ["bytes"],
            })),
        ),
        Tool::new(
            "drop",
            "Drops the connection mid-call (kills the server process).",
            empty_schema(),
        ),
        crash_tool(
            "crash_once",
            "Appends a line to the file `marker`; if it was the first line, kills the server \
             process without answering (like `drop`), else returns `ok after restart`.",
        ),
        crash_tool(
            "crash_once_idempotent",
            "Idempotent (idempotentHint) `crash_once`: crashes on the first execution recorded \
             in `marker`, answers `ok after restart` after that.",
        )
        .with_annotations(ToolAnnotations::new().idempotent(true)),
        Tool::new(
            "notify_list_changed",
            "Adds a tool `added_<n>` and sends notifications/tools/list_changed.",
            empty_schema(),
        ),
        Tool::new(
            "counts",
            "How many times each tool started executing and was cancelled, `tick` executions \
             per id, sessions created per X-User header.",
            empty_schema(),
        ),
        Tool::new(
            "tick",
            "Counts one execution of `id` (see `counts`: `ticks`) and returns `id`: proves a \
             call ran once, not twice, wherever it was routed.",
            schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"],
            })),
        ),
        Tool::new(
            "echo_meta",
            "The request's `params._meta` as it arrived (e.g. a W3C `traceparent`), as JSON text.",
            empty_schema(),
        ),
        Tool::new(
            "echo_headers",
            "The HTTP request headers that carried this call.",
            empty_schema(),
        ),
        Tool::new(
            "session_info",
            "The server-side id of this MCP session.",
            empty_schema(),
        ),
        Tool::new(
            "expire_session",
            "Stateful Streamable HTTP: forgets this MCP session 100 ms after answering, so \
             its next request gets 404 (session expired).",
            empty_schema(),
        ),
        Tool::new(
            "spawn_grandchild",
            "Spawns `sleep 300` in the server's process group and returns its pid.",
            empty_schema(),
        ),
    ];
    tools.extend(crate::interactive::tools());
    tools.extend(crate::offers::tools());
    tools.extend(crate::listen::tools());
    tools.extend(
        (0..generated)
            .map(|i| message_tool(format!("tool_{i}"), "Generated tool: echoes `message`.")),
    );
    tools
}
