//! The classes behind `switchboard.Hub` / `switchboard.BlockingHub`: a parsed config, a
//! per-user session, a call's result, and the hub core with an async (asyncio awaitable) and a
//! blocking (GIL released) form of each method that waits. The Python layer
//! (`python/switchboard/_hub.py`) gives them their public shape.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use switchboard::{CallOutcome, Deadline, ExportFormat, JsonObject, Lookup, blocking};

use crate::asyncio::{CallTask, Completions};
use crate::interaction::{PyInputHandler, progress_callback};
use crate::signin::SignIn;
use crate::{asyncio, convert, errors, runtime};

/// How long a blocking call waits between checks for Ctrl-C (signals reach Python only when
/// the main thread runs Python code).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A validated configuration (TOML or `mcpServers` JSON).
#[pyclass(frozen, module = "switchboard._switchboard")]
pub struct Config {
    config: switchboard::Config,
}

#[pymethods]
impl Config {
    /// Reads a config file; the format follows the extension (`.json` is `mcpServers`).
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Config> {
        let config = py
            .detach(|| switchboard::Config::load(&path))
            .map_err(errors::config_to_py)?;
        Ok(Config { config })
    }

    /// Parses config text: `format` is `"toml"` or `"json"`.
    #[staticmethod]
    fn from_text(text: &str, format: &str) -> PyResult<Config> {
        let config = match format {
            "toml" => switchboard::Config::from_toml_str(text, None),
            "json" => switchboard::Config::from_json_str(text, None),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown config format {other:?}: use \"toml\" or \"json\""
                )));
            }
        }
        .map_err(errors::config_to_py)?;
        Ok(Config { config })
    }

    /// This config with more `[variables]` (these win over the file's).
    fn with_variables(&self, variables: BTreeMap<String, String>) -> Config {
        let mut config = self.config.clone();
        config.variables.extend(variables);
        Config { config }
    }

    /// The configured server names, in order.
    #[getter]
    fn servers(&self) -> Vec<String> {
        self.config.servers.keys().cloned().collect()
    }

    /// What the file says that is allowed but probably not meant (unknown keys...).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.config
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// One user's identity for per-session servers: their own upstream connection, made with
/// their variables (e.g. `${token}` in a header).
#[pyclass(frozen, module = "switchboard._switchboard", name = "Session")]
pub struct Session {
    session: switchboard::Session,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (id, variables = None, input_handler = None))]
    fn new(
        id: String,
        variables: Option<&Bound<'_, PyDict>>,
        input_handler: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Session> {
        let mut values = BTreeMap::new();
        for (key, value) in variables.into_iter().flat_map(|d| d.iter()) {
            let key: String = key.extract()?;
            // Like string.Template: non-string values are str()-ed.
            let value = match value.cast::<PyString>() {
                Ok(text) => text.to_str()?.to_owned(),
                Err(_) => value.str()?.to_str()?.to_owned(),
            };
            values.insert(key, value);
        }
        let mut session = switchboard::Session::new(id, values);
        if let Some(handler) = input_handler {
            session = session.with_input_handler(PyInputHandler::new(handler)?);
        }
        Ok(Session { session })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.session.id
    }

    #[getter]
    fn variables(&self) -> BTreeMap<String, String> {
        (*self.session.variables).clone()
    }

    fn __repr__(&self) -> String {
        // Variable values are often secrets: only their names are shown.
        let names: Vec<&str> = self.session.variables.keys().map(String::as_str).collect();
        format!("Session(id={:?}, variables={names:?})", self.session.id)
    }
}

/// What a tool call returned: every content block, the structured result, and whether the
/// tool reported failure.
#[pyclass(frozen, module = "switchboard._switchboard", name = "CallResult")]
pub struct CallResult {
    outcome: CallOutcome,
}

impl CallResult {
    pub(crate) fn new(outcome: CallOutcome) -> CallResult {
        CallResult { outcome }
    }
}

#[pymethods]
impl CallResult {
    /// Every content block as MCP's JSON (`{"type": "text", "text": ...}`, images, ...).
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for block in &self.outcome.content {
            list.append(convert::serialized(py, block)?)?;
        }
        Ok(list)
    }

    /// The tool's `structuredContent`, or `None`.
    #[getter]
    fn structured_content<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.outcome.structured_content {
            Some(value) => convert::to_python(py, value),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The tool reported failure (`isError`).
    #[getter]
    fn is_error(&self) -> bool {
        self.outcome.is_error
    }

    /// Every text block, joined with newlines.
    #[getter]
    fn text(&self) -> String {
        self.outcome.text()
    }

    /// MCP's `CallToolResult` shape: `content`, `structuredContent`, `isError`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialized(py, &self.outcome)
    }

    fn __repr__(&self) -> String {
        format!(
            "CallResult(is_error={}, blocks={}, text={:?})",
            if self.outcome.is_error {
                "True"
            } else {
                "False"
            },
            self.outcome.content.len(),
            self.outcome.text()
        )
    }
}

/// The hub core. Every method that waits has an `_async` form (returns an awaitable for
/// asyncio; cancelling it cancels the call at the server) and a `_blocking` form (releases
/// the GIL while it waits).
#[pyclass(frozen, module = "switchboard._switchboard", name = "HubCore")]
pub struct HubCore {
    /// `None` only while being dropped.
    hub: Option<blocking::Hub>,
}

impl Drop for HubCore {
    fn drop(&mut self) {
        // A hub garbage-collected without close: inside the runtime the engine's drop does not
        // block (Python holds the GIL here); it kills stdio process groups at once and ends
        // the other connections in the background.
        let _inside = runtime().handle().enter();
        drop(self.hub.take());
    }
}

impl HubCore {
    fn hub(&self) -> &blocking::Hub {
        self.hub
            .as_ref()
            .expect("a hub is only taken while dropped")
    }
}

/// A call's arguments as the engine takes them.
fn arguments(arguments: Option<&Bound<'_, PyDict>>) -> PyResult<Option<JsonObject>> {
    arguments.map(convert::to_json_object).transpose()
}

/// `timeout` seconds from now (the call's one deadline), or the server's default.
fn deadline(timeout: Option<f64>) -> PyResult<Option<Deadline>> {
    timeout
        .map(|t| Ok(Deadline::after(seconds(t, "timeout")?)))
        .transpose()
}

/// A call's options: its deadline and who hears its progress.
fn call_options(
    timeout: Option<f64>,
    on_progress: Option<Py<PyAny>>,
) -> PyResult<switchboard::CallOptions> {
    let mut options = switchboard::CallOptions::from(deadline(timeout)?);
    if let Some(callback) = on_progress {
        options = options.on_progress(progress_callback(callback));
    }
    Ok(options)
}

fn seconds(value: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, got {value}"
        ))
    })
}

/// An asyncio awaitable of what `future` gives, as plain Python objects (its error raised).
fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    T: serde::Serialize + Send + 'static,
    F: Future<Output = Result<T, switchboard::Error>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let value = future.await.map_err(|e| errors::to_py(&e))?;
        Python::attach(|py| convert::serialized(py, &value).map(Bound::unbind))
    })
}

/// Waits for `pending` with the GIL released, checking for signals every
/// [`SIGNAL_CHECK`]: Ctrl-C raises `KeyboardInterrupt` and drops `pending`, which stops the
/// request (cancelled at the server if in flight).
fn wait_interruptibly<T: Send>(py: Python<'_>, mut pending: blocking::Pending<T>) -> PyResult<T> {
    loop {
        let (waited, result) = py.detach(move || {
            let result = pending.wait_timeout(SIGNAL_CHECK);
            (pending, result)
        });
        pending = waited;
        if let Some(result) = result {
            return result.map_err(|e| errors::to_py(&e));
        }
        py.check_signals()?;
    }
}

/// The export a `format` name asks for (`None`: Switchboard's own rows).
fn tool_format(format: &str) -> PyResult<Option<ExportFormat>> {
    Ok(Some(match format {
        "json" => return Ok(None),
        "openai" => ExportFormat::OpenAiChat,
        "openai-responses" => ExportFormat::OpenAiResponses,
        "anthropic" => ExportFormat::Anthropic,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown tool format {other:?}: use \"json\", \"openai\", \
                 \"openai-responses\" or \"anthropic\""
            )));
        }
    }))
}

/// `catalog`'s tools as Python values, in `format`.
fn export_tools<'py>(
    py: Python<'py>,
    catalog: &switchboard::Catalog,
    format: Option<ExportFormat>,
) -> PyResult<Bound<'py, PyAny>> {
    match format {
        None => {
            let rows: Vec<_> = catalog.tools().iter().map(|t| &**t).collect();
            convert::serialized(py, &rows)
        }
        Some(export) => convert::to_python(py, &catalog.export(export)),
    }
}

fn session(session: Option<PyRef<'_, Session>>) -> Option<switchboard::Session> {
    session.map(|s| s.session.clone())
}

#[pymethods]
impl HubCore {
    /// Connects every server of `config` (blocking).
    #[staticmethod]
    #[pyo3(signature = (config, input_handler = None, token_store = None, opener = None))]
    fn start_blocking(
        py: Python<'_>,
        config: PyRef<'_, Config>,
        input_handler: Option<&Bound<'_, PyAny>>,
        token_store: Option<&Bound<'_, PyAny>>,
        opener: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<HubCore> {
        let config = config.config.clone();
        let handler = input_handler.map(PyInputHandler::new).transpose()?;
        let sign_in = SignIn::new(token_store, opener)?;
        let hub = py
            .detach(|| {
                let mut builder = sign_in.apply(switchboard::Hub::builder().config(&config));
                if let Some(handler) = handler {
                    builder = builder.input_handler(handler);
                }
                blocking::Hub::start(runtime(), builder)
            })
            .map_err(|e| errors::to_py(&e))?;
        Ok(HubCore { hub: Some(hub) })
    }

    /// Connects every server of `config`; an awaitable of the hub.
    #[staticmethod]
    #[pyo3(signature = (config, input_handler = None, token_store = None, opener = None))]
    fn start_async<'py>(
        py: Python<'py>,
        config: PyRef<'_, Config>,
        input_handler: Option<&Bound<'_, PyAny>>,
        token_store: Option<&Bound<'_, PyAny>>,
        opener: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = config.config.clone();
        let handler = input_handler.map(PyInputHandler::new).transpose()?;
        let sign_in = SignIn::new(token_store, opener)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut builder = sign_in.apply(switchboard::Hub::builder().config(&config));
            if let Some(handler) = handler {
                builder = builder.input_handler(handler);
            }
            let hub = builder.start().await.map_err(|e| errors::to_py(&e))?;
            Ok(HubCore {
                hub: Some(blocking::Hub::wrap(runtime(), hub)),
            })
        })
    }

    /// Calls a tool (exposed name) and waits, releasing the GIL; Ctrl-C cancels the call.
    #[pyo3(signature = (name, arguments = None, session = None, timeout = None, on_progress = None))]
    fn call_blocking(
        &self,
        py: Python<'_>,
        name: String,
        arguments: Option<&Bound<'_, PyDict>>,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<CallResult> {
        let options = call_options(timeout, on_progress)?;
        let pending = self.hub().spawn_call(
            self::session(session),
            name,
            self::arguments(arguments)?,
            options,
        );
        let outcome = wait_interruptibly(py, pending)?;
        Ok(CallResult { outcome })
    }

    /// Calls a tool; an awaitable of its result. Cancelling it cancels the call.
    #[pyo3(signature = (name, arguments = None, session = None, timeout = None, on_progress = None))]
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        arguments: Option<&Bound<'_, PyDict>>,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = call_options(timeout, on_progress)?;
        let arguments = self::arguments(arguments)?;
        let session = self::session(session);
        let hub = self.hub().hub().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            hub.call_with(session.as_ref(), &name, arguments, options)
                .await
                .map(|outcome| CallResult { outcome })
                .map_err(|e| errors::to_py(&e))
        })
    }

    /// Calls a tool; its result (or exception) resolves `future`, an asyncio future of the
    /// loop `completions` is registered with, on that loop's thread (see `asyncio.rs`).
    /// The returned task's `cancel()` cancels the call.
    #[pyo3(signature = (name, arguments, session, timeout, future, completions, on_progress = None))]
    #[allow(clippy::too_many_arguments)] // the Python method's parameters
    fn call_soon(
        &self,
        name: String,
        arguments: Option<&Bound<'_, PyDict>>,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
        future: Py<PyAny>,
        completions: &Completions,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<CallTask> {
        let options = call_options(timeout, on_progress)?;
        let arguments = self::arguments(arguments)?;
        let session = self::session(session);
        let hub = self.hub().hub().clone();
        Ok(asyncio::spawn(completions, future, async move {
            hub.call_with(session.as_ref(), &name, arguments, options)
                .await
        }))
    }

    /// Every exposed tool: `"json"` (Switchboard's rows), `"openai"`, `"openai-responses"`
    /// or `"anthropic"` (function-calling forms).
    #[pyo3(signature = (format = "json"))]
    fn tools<'py>(&self, py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyAny>> {
        export_tools(py, &self.hub().catalog(), tool_format(format)?)
    }

    /// `tools` as `session` sees them (a `per_session` server's private list is the
    /// session's own), blocking: it may list tools.
    #[pyo3(signature = (session, format = "json"))]
    fn tools_for_blocking<'py>(
        &self,
        py: Python<'py>,
        session: PyRef<'_, Session>,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let format = tool_format(format)?;
        let session = session.session.clone();
        let catalog = py.detach(|| self.hub().catalog_in(&session));
        let catalog = catalog.map_err(|e| errors::to_py(&e))?;
        export_tools(py, &catalog, format)
    }

    #[pyo3(signature = (session, format = "json"))]
    fn tools_for_async<'py>(
        &self,
        py: Python<'py>,
        session: PyRef<'_, Session>,
        format: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let format = tool_format(format)?;
        let session = session.session.clone();
        let hub = self.hub().hub().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let catalog = hub.catalog_in(Some(&session)).await;
            let catalog = catalog.map_err(|e| errors::to_py(&e))?;
            Python::attach(|py| export_tools(py, &catalog, format).map(Bound::unbind))
        })
    }

    /// One exposed tool's row (`"json"` form) by exact or loosely typed name.
    fn tool<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.hub().catalog().lookup(name) {
            Lookup::Exposed(tool) | Lookup::ByToolName(tool) => convert::serialized(py, &*tool),
            Lookup::NotFound { error, same_name } if same_name.is_empty() => {
                Err(PyKeyError::new_err(error.to_string()))
            }
            Lookup::NotFound { same_name, .. } => {
                let names: Vec<&str> = same_name.iter().map(|t| t.name.as_str()).collect();
                Err(PyKeyError::new_err(format!(
                    "several tools are named {name:?}: {}",
                    names.join(", ")
                )))
            }
        }
    }

    /// Every server's resources: `{"items": [...], "failures": [...]}` (blocking).
    #[pyo3(signature = (session = None))]
    fn resources_blocking<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let listing = py.detach(|| self.hub().resources(session.as_ref()));
        convert::serialized(py, &listing)
    }

    #[pyo3(signature = (session = None))]
    fn resources_async<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let hub = self.hub().hub().clone();
        awaitable(
            py,
            async move { Ok(hub.resources_in(session.as_ref()).await) },
        )
    }

    /// Every server's resource templates, like `resources_blocking`.
    #[pyo3(signature = (session = None))]
    fn resource_templates_blocking<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let listing = py.detach(|| self.hub().resource_templates(session.as_ref()));
        convert::serialized(py, &listing)
    }

    #[pyo3(signature = (session = None))]
    fn resource_templates_async<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let hub = self.hub().hub().clone();
        awaitable(py, async move {
            Ok(hub.resource_templates_in(session.as_ref()).await)
        })
    }

    /// Every server's prompts, like `resources_blocking`.
    #[pyo3(signature = (session = None))]
    fn prompts_blocking<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let listing = py.detach(|| self.hub().prompts(session.as_ref()));
        convert::serialized(py, &listing)
    }

    #[pyo3(signature = (session = None))]
    fn prompts_async<'py>(
        &self,
        py: Python<'py>,
        session: Option<PyRef<'_, Session>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let session = self::session(session);
        let hub = self.hub().hub().clone();
        awaitable(
            py,
            async move { Ok(hub.prompts_in(session.as_ref()).await) },
        )
    }

    /// Reads the resource at an exposed URI (`SERVER+URI`): `{"contents": [...]}`.
    #[pyo3(signature = (uri, session = None, timeout = None))]
    fn read_resource_blocking<'py>(
        &self,
        py: Python<'py>,
        uri: String,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (deadline, session) = (deadline(timeout)?, self::session(session));
        let pending = self.hub().spawn_read_resource(session, uri, deadline);
        convert::serialized(py, &wait_interruptibly(py, pending)?)
    }

    #[pyo3(signature = (uri, session = None, timeout = None))]
    fn read_resource_async<'py>(
        &self,
        py: Python<'py>,
        uri: String,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (deadline, session) = (deadline(timeout)?, self::session(session));
        let hub = self.hub().hub().clone();
        awaitable(py, async move {
            hub.read_resource_in(session.as_ref(), &uri, deadline).await
        })
    }

    /// Gets the prompt exposed as `name`: `{"description": ..., "messages": [...]}`.
    #[pyo3(signature = (name, arguments = None, session = None, timeout = None))]
    fn get_prompt_blocking<'py>(
        &self,
        py: Python<'py>,
        name: String,
        arguments: Option<&Bound<'_, PyDict>>,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (deadline, session) = (deadline(timeout)?, self::session(session));
        let arguments = self::arguments(arguments)?;
        let pending = self
            .hub()
            .spawn_get_prompt(session, name, arguments, deadline);
        convert::serialized(py, &wait_interruptibly(py, pending)?)
    }

    #[pyo3(signature = (name, arguments = None, session = None, timeout = None))]
    fn get_prompt_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        arguments: Option<&Bound<'_, PyDict>>,
        session: Option<PyRef<'_, Session>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (deadline, session) = (deadline(timeout)?, self::session(session));
        let arguments = self::arguments(arguments)?;
        let hub = self.hub().hub().clone();
        awaitable(py, async move {
            hub.get_prompt_in(session.as_ref(), &name, arguments, deadline)
                .await
        })
    }

    /// Where every server stands (the JSON of `switchboard check --format json`).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialized(py, &self.hub().health())
    }

    /// Per-session connections open for `server`.
    fn session_count(&self, server: &str) -> usize {
        self.hub().hub().session_count(server)
    }

    fn cleanup_sessions_blocking(&self, py: Python<'_>, max_age: f64) -> PyResult<usize> {
        let max_age = seconds(max_age, "max_age")?;
        Ok(py.detach(|| self.hub().cleanup_sessions(max_age)))
    }

    fn cleanup_sessions_async<'py>(
        &self,
        py: Python<'py>,
        max_age: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let max_age = seconds(max_age, "max_age")?;
        let hub = self.hub().hub().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            Ok(hub.cleanup_sessions(max_age).await)
        })
    }

    fn close_blocking(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let within = seconds(timeout, "timeout")?;
        py.detach(|| self.hub().close(within));
        Ok(())
    }

    fn close_async<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let within = seconds(timeout, "timeout")?;
        let hub = self.hub().hub().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            hub.close_within(within).await;
            Ok(())
        })
    }
}
