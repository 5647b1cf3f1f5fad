//! Our side of the MCP session: what we tell a server about ourselves, what we answer the
//! requests it sends us (elicitation and sampling: the handler of the call they belong to,
//! else the hub's, else the server's elicitation policy, see `interaction.rs`; roots, the
//! handler's when it answers them, else the configured ones), and what we do with the notifications it sends (progress goes to its
//! call; the `list_changed` of tools, resources and prompts become [`UpstreamEvent`]s).
//!
//! Roots are deprecated by SEP-2577 (rmcp marks them so) but still asked for by servers of
//! every revision up to 2026-07-28: hence the `allow(deprecated)` where they are answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction, Implementation,
    ProgressNotificationParam, ProtocolVersion,
};
#[allow(deprecated)] // sampling (SEP-2577): still asked for by servers
use rmcp::model::{CreateMessageRequestParams, CreateMessageResult};
#[allow(deprecated)] // roots: see the module docs
use rmcp::model::{ListRootsResult, Root};
use rmcp::service::{NotificationContext, RequestContext, RoleClient};
use rmcp::{ClientHandler, ErrorData};
use serde_json::{Map, Value};

use super::interaction::{self, Calls};
use crate::config::ElicitationPolicy;
use crate::interaction::InputHandler;
use tokio::sync::broadcast;

/// Something an upstream server told us that its owner may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// The server sent `notifications/tools/list_changed`.
    ToolsChanged,
    /// The server sent `notifications/resources/list_changed` (its resources or resource
    /// templates changed).
    ResourcesChanged,
    /// The server sent `notifications/prompts/list_changed`.
    PromptsChanged,
    /// The server sent `notifications/resources/updated` for `uri` (its own URI): a
    /// resource subscribed to changed.
    ResourceUpdated { uri: String },
}

#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) server: Arc<str>,
    pub(crate) events: broadcast::Sender<UpstreamEvent>,
    /// How many `tools/list_changed` arrived so far (events sent before anyone subscribed
    /// are lost; this count is not).
    pub(crate) tool_changes: Arc<AtomicU64>,
    pub(crate) elicitation: ElicitationPolicy,
    /// The revision `initialize` offers.
    pub(crate) offer: ProtocolVersion,
    /// The server's configured roots (`file://` URIs).
    pub(crate) roots: Arc<[String]>,
    /// The calls in flight, for progress and for requests that belong to one.
    pub(crate) calls: Arc<Calls>,
    /// The hub's handler: answers what no call's handler does.
    pub(crate) input: Option<Arc<dyn InputHandler>>,
}

impl ClientHandler for Handler {
    /// `initialize` offers the server's pinned revision, else the newest that has an
    /// `initialize` handshake (rmcp's default, its `LATEST`, is 2026-07-28, which has none);
    /// a server answering with an older revision is accepted as rmcp negotiates it.
    ///
    /// Elicitation and sampling are offered only when something can answer them (the hub's
    /// handler, the server's policy), roots only when some are configured.
    fn get_info(&self) -> ClientConfig {
        let input = self.input.as_deref();
        let capabilities =
            interaction::capabilities(self.elicitation, input, !self.roots.is_empty());
        ClientConfig::new(
            capabilities,
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(self.offer.clone())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let input = self.input_for(&context).await;
        let answer =
            interaction::elicit(&self.server, input.as_deref(), self.elicitation, &request);
        Ok(answer.await)
    }

    #[allow(deprecated)] // sampling (SEP-2577): still asked for by servers
    async fn create_message(
        &self,
        request: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let input = self.input_for(&context).await;
        interaction::sample(&self.server, input.as_deref(), &request).await
    }

    /// Not reached while `progress.rs` passes progress on as it is read; kept for a
    /// transport without that wrapper.
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.calls.progress(params);
    }

    #[allow(deprecated)]
    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let input = self.input_for(&context).await;
        Ok(interaction::list_roots(input.as_deref(), &self.roots).await)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tools/list_changed");
        self.tool_changes.fetch_add(1, Ordering::AcqRel);
        // No subscriber is fine: the count above tells a late subscriber.
        let _ = self.events.send(UpstreamEvent::ToolsChanged);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "resources/list_changed");
        let _ = self.events.send(UpstreamEvent::ResourcesChanged);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        tracing::debug!(server = %self.server, uri = %params.uri, "resources/updated");
        let _ = self
            .events
            .send(UpstreamEvent::ResourceUpdated { uri: params.uri });
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "prompts/list_changed");
        let _ = self.events.send(UpstreamEvent::PromptsChanged);
    }
}

impl Handler {
    /// Who answers a request that arrived with `context`: its call's handler, else ours.
    async fn input_for(
        &self,
        context: &RequestContext<RoleClient>,
    ) -> Option<Arc<dyn InputHandler>> {
        let call = self.calls.input_for(&context.extensions);
        call.or_else(|| self.input.clone())
    }
}

/// `roots` as MCP's answer to `roots/list`.
#[allow(deprecated)]
pub(crate) fn roots(roots: &[String]) -> ListRootsResult {
    ListRootsResult::new(roots.iter().map(|uri| Root::new(uri.clone())).collect())
}

/// What `policy` answers a server asking for input (`elicitation/create`, or an elicitation
/// inside an input-required result).
pub(crate) fn answer_elicitation(
    policy: ElicitationPolicy,
    server: &str,
    request: &ElicitRequestParams,
) -> ElicitResult {
    let answer = match (policy, request) {
        (
            ElicitationPolicy::AcceptDefaults,
            ElicitRequestParams::FormElicitationParams {
                requested_schema, ..
            },
        ) => serde_json::to_value(requested_schema)
            .ok()
            .and_then(|schema| schema_defaults(&schema)),
        _ => None,
    };
    let (action, what) = match &answer {
        Some(_) => (ElicitationAction::Accept, "accepted with its defaults"),
        None => (ElicitationAction::Decline, "declined"),
    };
    tracing::info!(server, "the server asked for input; {what}");
    let result = ElicitResult::new(action);
    match answer {
        Some(content) => result.with_content(Value::Object(content)),
        None => result,
    }
}

/// The answer a form schema's defaults give (SEP-1034): every property that has a
/// `default`, with it. `None` when a required property has none (nobody can fill it).
fn schema_defaults(schema: &Value) -> Option<Map<String, Value>> {
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut answer = Map::new();
    for (name, property) in properties.into_iter().flatten() {
        if let Some(default) = property.get("default") {
            answer.insert(name.clone(), default.clone());
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    let unfilled = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|name| !answer.contains_key(name));
    (!unfilled).then_some(answer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::schema_defaults;

    #[test]
    fn a_form_is_answered_with_its_defaults_unless_a_required_field_has_none() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "verified": {"type": "boolean", "default": true},
            "note": {"type": "string"}}, "required": ["name"]});
        let answer = schema_defaults(&schema).unwrap();
        assert_eq!(
            serde_json::Value::Object(answer),
            json!({"name": "John Doe", "age": 30, "verified": true})
        );
        let schema = json!({"properties": {"note": {"type": "string"}}, "required": ["note"]});
        assert_eq!(schema_defaults(&schema), None);
    }
}
