//! `switchboard._switchboard`: the native half of the Python package `switchboard`.
//!
//! Every hub in the process runs on one small engine runtime ([`blocking::Runtime`], made on
//! first use), shared with `pyo3-async-runtimes` so asyncio awaitables and blocking calls
//! drive the same connections. Engine logs reach Python's `logging` (logger names are the
//! engine's targets, e.g. `switchboard::calls`). The public Python API is in
//! `python/switchboard/`.

mod asyncio;
mod convert;
mod errors;
mod hub;
mod interaction;
mod signin;

use std::sync::OnceLock;

use pyo3::prelude::*;
use switchboard::blocking;

static RUNTIME: OnceLock<blocking::Runtime> = OnceLock::new();

/// The process's engine runtime.
fn runtime() -> &'static blocking::Runtime {
    RUNTIME.get_or_init(|| blocking::Runtime::new().expect("cannot start the switchboard runtime"))
}

static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// Makes engine logs follow level changes made in Python's `logging` since import (levels
/// are cached for speed).
#[pyfunction]
fn reset_logging() {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
}

#[pymodule]
fn _switchboard(m: &Bound<'_, PyModule>) -> PyResult<()> {
    if let Ok(handle) = pyo3_log::try_init() {
        let _ = LOG_RESET.set(handle);
    }
    // Before any awaitable is made: pyo3-async-runtimes runs them on the same runtime and
    // never builds one of its own.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime().tokio());
    m.add_class::<hub::Config>()?;
    m.add_class::<hub::Session>()?;
    m.add_class::<hub::CallResult>()?;
    m.add_class::<hub::HubCore>()?;
    m.add_class::<asyncio::Completions>()?;
    m.add_class::<asyncio::CallTask>()?;
    m.add_function(wrap_pyfunction!(reset_logging, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
