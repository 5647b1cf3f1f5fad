//! What the test server offers besides tools: resources (a text one, a blob one, the
//! `testkit://items/{id}` template) and prompts (`greet`, with a required argument, and
//! `summary`, without; `confirm`, which asks 2026-07-28 clients for input first), plus
//! those added at run time by the `add_resource` and `add_prompt` tools, which then send
//! `notifications/resources/list_changed` and `notifications/prompts/list_changed` like
//! `notify_list_changed` does for tools (`listen.rs`: unasked to classic clients, on their
//! `subscriptions/listen` streams to 2026-07-28 ones).
//!
//! `resources/subscribe` and `resources/unsubscribe` are taken (what is subscribed to shows
//! in `counts()`); the `touch_resource` tool sends `notifications/resources/updated` for its
//! `uri` to the calling client (subscribed or not: the client decides who hears of it).
//!
//! Unknown URIs are answered with MCP's "resource not found" (-32002); unknown prompts and
//! missing arguments with "invalid params" (-32602), as the TypeScript SDK does.

use std::sync::Mutex;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Prompt, PromptArgument,
    PromptMessage, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, Tool,
};
use serde_json::{Value, json};

use crate::interactive::confirm_form;
use crate::tools::{TINY_PNG_BASE64, empty_schema};

/// The text resource.
pub const HELLO_URI: &str = "testkit://static/hello.txt";
/// Its text.
pub const HELLO_TEXT: &str = "Hello from the testkit.";
/// The blob resource (the tiny PNG).
pub const PIXEL_URI: &str = "testkit://static/pixel.png";
/// The template: `{id}` is any text, read back as `item {id}`.
pub const ITEMS_TEMPLATE: &str = "testkit://items/{id}";
const ITEMS_PREFIX: &str = "testkit://items/";

/// The tools that add a resource or a prompt (run by `tools.rs`).
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "add_resource",
            "Adds a resource `testkit://added/<n>` and sends notifications/resources/list_changed.",
            empty_schema(),
        ),
        Tool::new(
            "touch_resource",
            "Sends notifications/resources/updated for `uri` to the calling client.",
            crate::tools::schema(json!({"type": "object",
                "properties": {"uri": {"type": "string"}}, "required": ["uri"]})),
        ),
        Tool::new(
            "add_prompt",
            "Adds a prompt `added_prompt_<n>` and sends notifications/prompts/list_changed.",
            empty_schema(),
        ),
    ]
}

/// Resources and prompts added at run time (shared by every session of one server).
#[derive(Default)]
pub(crate) struct Added {
    resources: Mutex<Vec<Resource>>,
    prompts: Mutex<Vec<Prompt>>,
    /// URIs subscribed to (`resources/subscribe`, any session), in order.
    subscribed: Mutex<Vec<String>>,
}

impl Added {
    /// `resources/subscribe` (`subscribe`) or `resources/unsubscribe` of `uri`.
    pub(crate) fn subscribe(&self, uri: &str, subscribe: bool) {
        let mut subscribed = lock(&self.subscribed);
        subscribed.retain(|s| s != uri);
        if subscribe {
            subscribed.push(uri.to_owned());
        }
    }

    /// The URIs subscribed to now.
    pub(crate) fn subscribed(&self) -> Vec<String> {
        lock(&self.subscribed).clone()
    }

    /// Adds `testkit://added/<n>` (text `added resource <n>`); returns its URI.
    pub(crate) fn add_resource(&self) -> String {
        let mut added = lock(&self.resources);
        let n = added.len() + 1;
        let uri = format!("testkit://added/{n}");
        added.push(Resource::new(uri.clone(), format!("added {n}")).with_mime_type("text/plain"));
        uri
    }

    /// Adds a prompt `added_prompt_<n>` (no arguments); returns its name.
    pub(crate) fn add_prompt(&self) -> String {
        let mut added = lock(&self.prompts);
        let name = format!("added_prompt_{}", added.len() + 1);
        added.push(Prompt::new(
            name.clone(),
            Some("A prompt added at run time."),
            None,
        ));
        name
    }

    pub(crate) fn resources(&self) -> Vec<Resource> {
        let mut resources = vec![
            Resource::new(HELLO_URI, "hello.txt")
                .with_title("Hello")
                .with_description("A short text.")
                .with_mime_type("text/plain")
                .with_size(HELLO_TEXT.len() as u64),
            Resource::new(PIXEL_URI, "pixel.png")
                .with_description("A 1x1 PNG.")
                .with_mime_type("image/png"),
        ];
        resources.extend(lock(&self.resources).iter().cloned());
        resources
    }

    pub(crate) fn templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new(ITEMS_TEMPLATE, "item")
                .with_description("Item {id}, as text.")
                .with_mime_type("text/plain"),
        ]
    }

    pub(crate) fn read(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        let contents = match uri {
            HELLO_URI => ResourceContents::text(HELLO_TEXT, uri),
            PIXEL_URI => ResourceContents::blob(TINY_PNG_BASE64, uri).with_mime_type("image/png"),
            _ => match uri.strip_prefix(ITEMS_PREFIX) {
                Some(id) if !id.is_empty() => ResourceContents::text(format!("item {id}"), uri),
                _ if lock(&self.resources).iter().any(|r| r.uri == uri) => {
                    let n = uri.rsplit('/').next().unwrap_or_default();
                    ResourceContents::text(format!("added resource {n}"), uri)
                }
                _ => {
                    return Err(McpError::resource_not_found(
                        format!("no resource at {uri}"),
                        None,
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents]))
    }

    pub(crate) fn prompts(&self) -> Vec<Prompt> {
        let mut prompts = vec![
            Prompt::new(
                "greet",
                Some("Greets `name` (required), in `style` (optional)."),
                Some(vec![
                    PromptArgument::new("name")
                        .with_description("Who to greet")
                        .with_required(true),
                    PromptArgument::new("style")
                        .with_description("e.g. warm")
                        .with_required(false),
                ]),
            ),
            Prompt::new("summary", Some("Asks for a summary; no arguments."), None),
            Prompt::new(
                "confirm",
                Some(
                    "2026-07-28 clients: asks for input (input-required, state `round-1`); \
                     got again, its message is the answers and state it got.",
                ),
                None,
            ),
        ];
        prompts.extend(lock(&self.prompts).iter().cloned());
        prompts
    }

    pub(crate) fn get(
        &self,
        request: GetPromptRequestParams,
    ) -> Result<GetPromptResponse, McpError> {
        let (name, arguments) = (request.name.as_str(), request.arguments.as_ref());
        let argument = |key: &str| {
            arguments
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let messages = match name {
            "greet" => {
                let Some(who) = argument("name") else {
                    return Err(McpError::invalid_params(
                        "prompt `greet` needs the argument `name`",
                        None,
                    ));
                };
                let style = argument("style").map_or(String::new(), |s| format!(" ({s})"));
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("Hello, {who}!{style}"),
                )]
            }
            // 2026-07-28 clients: asks for input first, like the `confirm` tool.
            "confirm" => {
                let Some(answers) = &request.input_responses else {
                    return Ok(GetPromptResponse::InputRequired(confirm_form()?));
                };
                let got = json!({"answers": answers, "state": request.request_state});
                vec![PromptMessage::new_text(Role::User, got.to_string())]
            }
            "summary" => vec![
                PromptMessage::new_text(Role::User, "Summarise the testkit."),
                PromptMessage::new_text(Role::Assistant, "It is a test MCP server."),
            ],
            _ if lock(&self.prompts).iter().any(|p| p.name == name) => {
                vec![PromptMessage::new_text(
                    Role::User,
                    format!("{name} says hi"),
                )]
            }
            _ => {
                return Err(McpError::invalid_params(
                    format!("prompt {name} not found"),
                    None,
                ));
            }
        };
        let mut result = GetPromptResult::new(messages);
        result.description = Some(format!("The {name} prompt."));
        Ok(result.into())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
