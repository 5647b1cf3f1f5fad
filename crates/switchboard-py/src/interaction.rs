//! Python objects as the engine's input handler and progress callback.
//!
//! An input handler is any object with an `elicit(request)` and/or `sample(request)`
//! method. Methods run on an engine worker thread holding the GIL (a slow one holds only
//! its own call); a coroutine method runs to its end there in a loop of its own, except
//! for an asyncio `Hub`'s own handler, which `python/switchboard/_hub.py` runs on the
//! hub's event loop. Requests are dicts; answers:
//!
//! - `elicit`: a dict accepts with those values, `True` accepts without values (URL mode),
//!   `None` or `False` declines, `"cancel"` dismisses;
//! - `sample`: a string is the assistant's text, a dict `{"text", "model"?, "stop_reason"?}`
//!   the same with details, `None` declines.
//!
//! A method that raises or answers something else declines (logged as a warning): a bug in
//! a handler never fails the process, only that request.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use serde_json::json;
use switchboard::interaction::{
    BoxFuture, CallProgress, ElicitAnswer, ElicitMode, ElicitRequest, InputHandler, SamplingAnswer,
    SamplingRequest,
};
use switchboard::{Content, JsonObject};

use crate::convert;

/// A Python object answering servers' requests; see the module docs.
pub(crate) struct PyInputHandler {
    handler: Py<PyAny>,
    url: bool,
    sampling: bool,
}

impl PyInputHandler {
    /// `handler` must have `elicit` or `sample`; `answers_url_elicitation` and
    /// `answers_sampling` (attributes, default: whether `sample` exists for the latter)
    /// say what the client offers.
    pub(crate) fn new(handler: &Bound<'_, PyAny>) -> PyResult<PyInputHandler> {
        let has = |name: &str| handler.hasattr(name);
        if !has("elicit")? && !has("sample")? {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "an input handler needs an elicit(request) or sample(request) method",
            ));
        }
        let flag = |name: &str, default: bool| -> PyResult<bool> {
            match handler.getattr(name) {
                Ok(value) => value.is_truthy(),
                Err(_) => Ok(default),
            }
        };
        Ok(PyInputHandler {
            url: flag("answers_url_elicitation", false)?,
            sampling: flag("answers_sampling", has("sample")?)?,
            handler: handler.clone().unbind(),
        })
    }

    /// Calls `method(request)` on a blocking thread; `None` when it is missing or raised.
    async fn ask(&self, method: &'static str, request: serde_json::Value) -> Option<Py<PyAny>> {
        let handler = Python::attach(|py| self.handler.clone_ref(py));
        let asked = tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                let handler = handler.bind(py);
                if !handler.hasattr(method).unwrap_or(false) {
                    return None;
                }
                let request = convert::to_python(py, &request).ok()?;
                let answered = handler
                    .call_method1(method, (request,))
                    .and_then(|answer| finished(py, answer));
                match answered {
                    Ok(answer) => Some(answer.unbind()),
                    Err(error) => {
                        tracing::warn!("the input handler's {method} raised: {error}; declined");
                        None
                    }
                }
            })
        });
        asked.await.ok().flatten()
    }
}

impl InputHandler for PyInputHandler {
    fn answers_url_elicitation(&self) -> bool {
        self.url
    }

    fn answers_sampling(&self) -> bool {
        self.sampling
    }

    fn elicit(&self, request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        Box::pin(async move {
            let asked = match &request.mode {
                ElicitMode::Form { schema } => json!({"server": request.server,
                    "message": request.message, "mode": "form", "schema": schema}),
                ElicitMode::Url {
                    url,
                    elicitation_id,
                } => json!({"server": request.server, "message": request.message,
                    "mode": "url", "url": url, "elicitation_id": elicitation_id}),
                _ => return ElicitAnswer::Decline,
            };
            let Some(answer) = self.ask("elicit", asked).await else {
                return ElicitAnswer::Decline;
            };
            Python::attach(|py| elicit_answer(answer.bind(py)))
        })
    }

    fn sample(&self, request: SamplingRequest) -> BoxFuture<'_, SamplingAnswer> {
        Box::pin(async move {
            let asked = json!({"server": request.server, "params": request.params,
                "text": request.text()});
            let Some(answer) = self.ask("sample", asked).await else {
                return SamplingAnswer::Decline;
            };
            Python::attach(|py| sampling_answer(answer.bind(py)))
        })
    }
}

/// `answer`, or what it returns when it is a coroutine (run with `asyncio.run`).
fn finished<'py>(py: Python<'py>, answer: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let is_coroutine = py
        .import("inspect")?
        .call_method1("iscoroutine", (&answer,))?
        .is_truthy()?;
    if !is_coroutine {
        return Ok(answer);
    }
    py.import("asyncio")?.call_method1("run", (answer,))
}

fn elicit_answer(answer: &Bound<'_, PyAny>) -> ElicitAnswer {
    if answer.is_none() {
        return ElicitAnswer::Decline;
    }
    if let Ok(flag) = answer.cast::<PyBool>() {
        return match flag.is_true() {
            true => ElicitAnswer::Accept(None),
            false => ElicitAnswer::Decline,
        };
    }
    if let Ok(text) = answer.cast::<PyString>() {
        return match text.to_str() {
            Ok("cancel") => ElicitAnswer::Cancel,
            Ok("accept") => ElicitAnswer::Accept(None),
            _ => ElicitAnswer::Decline,
        };
    }
    match answer.cast::<PyDict>().map(convert::to_json_object) {
        Ok(Ok(values)) => ElicitAnswer::Accept(Some(values)),
        _ => {
            tracing::warn!(
                "the input handler's elicit answered neither a dict, a bool, None nor \"cancel\"; declined"
            );
            ElicitAnswer::Decline
        }
    }
}

fn sampling_answer(answer: &Bound<'_, PyAny>) -> SamplingAnswer {
    if answer.is_none() {
        return SamplingAnswer::Decline;
    }
    if let Ok(text) = answer.extract::<String>() {
        return SamplingAnswer::text("python", text);
    }
    let fields: Option<JsonObject> = answer
        .cast::<PyDict>()
        .ok()
        .and_then(|d| convert::to_json_object(d).ok());
    let text = fields.as_ref().and_then(|f| f.get("text")?.as_str());
    let Some(text) = text else {
        tracing::warn!(
            "the input handler's sample answered neither a string, a dict with \"text\" nor None; declined"
        );
        return SamplingAnswer::Decline;
    };
    let field = |name: &str| fields.as_ref()?.get(name)?.as_str().map(str::to_owned);
    SamplingAnswer::Message {
        model: field("model").unwrap_or_else(|| "python".to_owned()),
        content: Content::text(text),
        stop_reason: field("stop_reason").or_else(|| Some("endTurn".to_owned())),
    }
}

/// `on_progress(progress, total, message)`, called on an engine thread with the GIL; an
/// exception is logged and the call goes on.
pub(crate) fn progress_callback(callback: Py<PyAny>) -> impl Fn(&CallProgress) + Send + Sync {
    move |progress: &CallProgress| {
        Python::attach(|py| {
            let args = (progress.progress, progress.total, progress.message.clone());
            if let Err(error) = callback.call1(py, args) {
                tracing::warn!("the on_progress callback raised: {error}");
            }
        })
    }
}
