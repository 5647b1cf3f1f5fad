//! The hub for code that is not async, in the spirit of `reqwest::blocking`.
//!
//! A [`blocking::Hub`](Hub) is an async [`crate::Hub`] plus the small tokio runtime it runs
//! on. Its methods block the calling thread until they are done; any number of threads may
//! call at once (each call runs on the caller's thread, the runtime's workers drive the
//! sockets and timers), and one [`Runtime`] serves any number of hubs, not one thread per
//! session.
//!
//! - **One deadline per call.** A [`Deadline`] is an absolute moment; it covers waiting for a
//!   connection and the call itself, and a call whose deadline has passed is not sent.
//! - **Close wakes everybody.** [`Hub::close`] ends every call at once: one still waiting
//!   for a connection fails with `Closed` and is never sent, one in flight is cancelled at the
//!   server and fails saying it may have run. Calls after close fail at once; closing twice
//!   is harmless; dropping the last handle closes.
//! - **Calls you can walk away from.** [`Hub::spawn_call`] starts a call and returns a
//!   [`PendingCall`] to wait on in slices (a face can check for Ctrl-C between them);
//!   dropping it cancels the call at the server. Reads and prompt gets start the same way
//!   ([`Hub::spawn_read_resource`], [`Hub::spawn_get_prompt`]).
//!
//! Do not call these methods from inside an async task: they block (and tokio refuses to
//! block inside its own runtime). Async code uses [`crate::Hub`], e.g. [`Hub::hub`].
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard::{blocking, Config, Deadline};
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(std::path::Path::new("switchboard.toml"))?;
//! let runtime = blocking::Runtime::new()?;
//! let hub = blocking::Hub::start(&runtime, switchboard::Hub::builder().config(&config))?;
//! let arguments = serde_json::json!({"message": "hi"}).as_object().cloned();
//! let outcome = hub.call("everything__echo", arguments, Some(Deadline::after(Duration::from_secs(10))))?;
//! println!("{}", outcome.text());
//! hub.close(Duration::from_secs(5));
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::hub::{CLOSE_WITHIN, HubBuilder};
use crate::{
    CallOptions, CallOutcome, Catalog, Deadline, Error, ExposedPrompt, ExposedResource,
    ExposedResourceTemplate, Health, JsonObject, Listing, PromptOutcome, ResourceRead, Session,
};

/// Most worker threads of a [`Runtime`]: sockets and timers need few, calls run on their
/// callers' threads.
const MAX_WORKERS: usize = 4;

/// The tokio runtime blocking hubs run on. Cheap to clone; hubs started on one share it.
#[derive(Clone)]
pub struct Runtime {
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Runtime {
    /// A multi-threaded runtime with one worker per CPU, at most four, named
    /// `switchboard-worker`.
    pub fn new() -> std::io::Result<Runtime> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus.min(MAX_WORKERS))
            .thread_name("switchboard-worker")
            .enable_all()
            .build()?;
        Ok(Runtime {
            runtime: Arc::new(runtime),
        })
    }

    /// For faces that also run async code on it (e.g. Python's asyncio methods).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// The tokio runtime itself, for glue that wants one (e.g. `pyo3-async-runtimes`).
    pub fn tokio(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Runs `future` to completion on the calling thread.
    ///
    /// # Panics
    /// When called from inside an async task (tokio cannot block there).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// A [`crate::Hub`] with blocking methods; see the module docs. Cheap to clone; the last
/// handle dropped closes the hub.
#[derive(Clone)]
pub struct Hub {
    owner: Arc<Owner>,
}

struct Owner {
    hub: crate::Hub,
    runtime: Runtime,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Outside a runtime, close in order; inside one we must not block, and the async
        // hub's own drop kills its processes and ends its connections in the background.
        if tokio::runtime::Handle::try_current().is_err() {
            self.runtime.block_on(self.hub.close_within(CLOSE_WITHIN));
        }
    }
}

impl Hub {
    /// Starts `builder`'s hub on `runtime` (which it keeps running while it lives).
    pub fn start(runtime: &Runtime, builder: HubBuilder<'_>) -> Result<Hub, Error> {
        let hub = runtime.block_on(builder.start())?;
        Ok(Hub::wrap(runtime, hub))
    }

    /// Blocking methods for `hub`, which runs on `runtime`.
    pub fn wrap(runtime: &Runtime, hub: crate::Hub) -> Hub {
        Hub {
            owner: Arc::new(Owner {
                hub,
                runtime: runtime.clone(),
            }),
        }
    }

    /// The async hub, for async code on [`Hub::runtime`].
    pub fn hub(&self) -> &crate::Hub {
        &self.owner.hub
    }

    pub fn runtime(&self) -> &Runtime {
        &self.owner.runtime
    }

    /// [`crate::Hub::call`]: blocks until the outcome, an error, or `deadline`.
    pub fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<CallOutcome, Error> {
        let call = self.owner.hub.call(name, arguments, deadline);
        self.owner.runtime.block_on(call)
    }

    /// [`crate::Hub::call_in`]: [`Hub::call`] on behalf of `session`. The session is not
    /// optional here: a call without one is [`Hub::call`] (a caller holding an optional
    /// session, as the Python face does, has [`Hub::spawn_call`]).
    pub fn call_in(
        &self,
        session: &Session,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<CallOutcome, Error> {
        let call = self
            .owner
            .hub
            .call_in(Some(session), name, arguments, deadline);
        self.owner.runtime.block_on(call)
    }

    /// [`crate::Hub::call_with`]: a call with [`CallOptions`] (progress callback, a deadline
    /// progress resets), on behalf of `session` if given; blocks until it ends.
    pub fn call_with(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
    ) -> Result<CallOutcome, Error> {
        let call = self.owner.hub.call_with(session, name, arguments, options);
        self.owner.runtime.block_on(call)
    }

    /// Starts a call on the runtime and returns at once; see [`PendingCall`]. `options`: a
    /// deadline (`Option<Deadline>`), or [`CallOptions`].
    pub fn spawn_call(
        &self,
        session: Option<Session>,
        name: String,
        arguments: Option<JsonObject>,
        options: impl Into<CallOptions>,
    ) -> PendingCall {
        let options = options.into();
        let hub = self.owner.hub.clone();
        let server = hub
            .catalog()
            .resolve(&name)
            .map_or_else(|_| name.clone(), |tool| tool.server.clone());
        self.spawn(server, async move {
            hub.call_with(session.as_ref(), &name, arguments, options)
                .await
        })
    }

    /// Starts [`Hub::read_resource`] on the runtime and returns at once, like
    /// [`Hub::spawn_call`].
    pub fn spawn_read_resource(
        &self,
        session: Option<Session>,
        uri: String,
        deadline: Option<Deadline>,
    ) -> Pending<ResourceRead> {
        let hub = self.owner.hub.clone();
        let server = crate::catalog::split_uri(&uri).map_or(&*uri, |(server, _)| server);
        self.spawn(server.to_owned(), async move {
            hub.read_resource_in(session.as_ref(), &uri, deadline).await
        })
    }

    /// Starts [`Hub::get_prompt`] on the runtime and returns at once, like
    /// [`Hub::spawn_call`].
    pub fn spawn_get_prompt(
        &self,
        session: Option<Session>,
        name: String,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Pending<PromptOutcome> {
        let hub = self.owner.hub.clone();
        self.spawn(name.clone(), async move {
            (hub.get_prompt_in(session.as_ref(), &name, arguments, deadline)).await
        })
    }

    /// Runs `work` (for `server`, named if it is stopped) on the runtime; see [`Pending`].
    fn spawn<T: Send + 'static>(
        &self,
        server: String,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Pending<T> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let task = self.owner.runtime.handle().spawn(async move {
            let _ = sender.send(work.await);
        });
        Pending {
            receiver,
            task: task.abort_handle(),
            server,
        }
    }

    /// [`crate::Hub::resources_in`]: every server's resources (listed if not yet), as
    /// `session` sees them if given.
    pub fn resources(&self, session: Option<&Session>) -> Listing<ExposedResource> {
        self.owner
            .runtime
            .block_on(self.owner.hub.resources_in(session))
    }

    /// [`crate::Hub::resource_templates_in`].
    pub fn resource_templates(
        &self,
        session: Option<&Session>,
    ) -> Listing<ExposedResourceTemplate> {
        let templates = self.owner.hub.resource_templates_in(session);
        self.owner.runtime.block_on(templates)
    }

    /// [`crate::Hub::prompts_in`].
    pub fn prompts(&self, session: Option<&Session>) -> Listing<ExposedPrompt> {
        self.owner
            .runtime
            .block_on(self.owner.hub.prompts_in(session))
    }

    /// [`crate::Hub::read_resource_in`]: reads the resource at the exposed `uri`, on behalf
    /// of `session` if given.
    pub fn read_resource(
        &self,
        session: Option<&Session>,
        uri: &str,
        deadline: Option<Deadline>,
    ) -> Result<ResourceRead, Error> {
        let read = self.owner.hub.read_resource_in(session, uri, deadline);
        self.owner.runtime.block_on(read)
    }

    /// [`crate::Hub::get_prompt_in`]: gets the prompt exposed as `name`, on behalf of
    /// `session` if given.
    pub fn get_prompt(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<PromptOutcome, Error> {
        let get = self
            .owner
            .hub
            .get_prompt_in(session, name, arguments, deadline);
        self.owner.runtime.block_on(get)
    }

    /// The current catalogue.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.owner.hub.catalog()
    }

    /// [`crate::Hub::catalog_in`]: the catalogue as `session` sees it (a `per_session`
    /// server's private list is the session's own); may list tools, so it blocks.
    pub fn catalog_in(&self, session: &Session) -> Result<Arc<Catalog>, Error> {
        let catalog = self.owner.hub.catalog_in(Some(session));
        self.owner.runtime.block_on(catalog)
    }

    /// Where every server stands.
    pub fn health(&self) -> Health {
        self.owner.hub.health()
    }

    /// Closes per-session connections idle for at least `max_age`; returns how many.
    pub fn cleanup_sessions(&self, max_age: Duration) -> usize {
        self.owner
            .runtime
            .block_on(self.owner.hub.cleanup_sessions(max_age))
    }

    /// Closes the hub, waiting at most `within` ([`crate::Hub::close_within`]); every call
    /// waiting or in flight fails at once (module docs).
    pub fn close(&self, within: Duration) {
        self.owner
            .runtime
            .block_on(self.owner.hub.close_within(within));
    }
}

/// A call started by [`Hub::spawn_call`].
pub type PendingCall = Pending<CallOutcome>;

/// A request started by [`Hub::spawn_call`] (or a read, or a prompt get). Dropping it (or
/// [`Pending::cancel`]) stops it: not sent if it was still waiting, cancelled at the server
/// if in flight.
pub struct Pending<T> {
    receiver: mpsc::Receiver<Result<T, Error>>,
    task: AbortHandle,
    /// For the error of a call stopped without an answer.
    server: String,
}

impl<T> Pending<T> {
    /// Blocks until the call ends.
    pub fn wait(self) -> Result<T, Error> {
        self.receiver
            .recv()
            .unwrap_or_else(|_| Err(stopped(&self.server)))
    }

    /// Blocks at most `timeout`: the result if the call has ended by then.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<T, Error>> {
        match self.receiver.recv_timeout(timeout) {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(stopped(&self.server))),
        }
    }

    /// Stops the call (as dropping it does).
    pub fn cancel(&self) {
        self.task.abort();
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The error of a call whose task was stopped before it answered (cancelled, or its
/// runtime shut down).
fn stopped(server: &str) -> Error {
    Error::MayHaveRun {
        source: Box::new(Error::Closed {
            server: server.to_string(),
            reason: Some("the call was stopped before it finished".to_string()),
        }),
    }
}
