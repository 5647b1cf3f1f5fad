//! Tool calls as asyncio awaitables without a thread hop per call.
//!
//! `pyo3-async-runtimes` (`future_into_py`) hands every finished future to a blocking-pool
//! thread, which takes the GIL (a new Python thread state each time) and calls
//! `loop.call_soon_threadsafe`. Per call that is two task spawns, a blocking-pool wake-up, a
//! thread state made and destroyed, a GIL hand-over from the event loop's thread, and a write
//! to the loop's self-pipe; with calls in flight the pool threads queue for the GIL.
//!
//! Here a finished call never touches Python off the loop's thread: the task puts its
//! outcome in the loop's [`Completions`] inbox and, when the inbox was empty, writes one byte
//! to a socket the loop watches (`loop.add_reader`). The loop's thread then drains every
//! finished call at once, with the GIL it already holds, and resolves their futures. The
//! Python side is `Hub.call` in `python/switchboard/_hub.py`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::intern;
use pyo3::prelude::*;
use switchboard::{CallOutcome, Error};
use tokio::task::AbortHandle;

use crate::errors;
use crate::hub::CallResult;

/// A finished call waiting for its event loop.
struct Finished {
    future: Py<PyAny>,
    result: Result<CallOutcome, Error>,
}

/// What the engine's tasks share with one event loop.
pub struct Inbox {
    finished: Mutex<Vec<Finished>>,
    /// The write end of the socket the loop watches.
    wake: UnixStream,
}

impl Inbox {
    /// Hands a finished call to the loop; wakes the loop when it has nothing to drain yet
    /// (one byte per batch, not per call). Needs no GIL.
    fn push(&self, future: Py<PyAny>, result: Result<CallOutcome, Error>) {
        let first = {
            let mut finished = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
            finished.push(Finished { future, result });
            finished.len() == 1
        };
        if first {
            // Full (WouldBlock) means a wake-up is already pending; any other error means
            // the loop is gone and nobody waits.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// One event loop's inbox of finished calls: `loop.add_reader(c.fileno(), c.drain)`.
#[pyclass(frozen, module = "switchboard._switchboard", name = "Completions")]
pub struct Completions {
    inbox: Arc<Inbox>,
    /// The read end, watched by the loop.
    reader: UnixStream,
}

#[pymethods]
impl Completions {
    #[new]
    fn new() -> PyResult<Completions> {
        let (reader, wake) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        Ok(Completions {
            inbox: Arc::new(Inbox {
                finished: Mutex::new(Vec::new()),
                wake,
            }),
            reader,
        })
    }

    /// The descriptor the loop watches.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Resolves the future of every call finished since the last drain (the loop's reader
    /// callback, on the loop's thread). A future already done (cancelled) is skipped.
    fn drain(&self, py: Python<'_>) {
        // The wake-up bytes first, then the calls: a call pushed after this read finds the
        // inbox non-empty only if this drain will take it, else it writes a new byte.
        let mut bytes = [0u8; 64];
        loop {
            match (&self.reader).read(&mut bytes) {
                Ok(n) if n == bytes.len() => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        let finished = std::mem::take(
            &mut *self
                .inbox
                .finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for Finished { future, result } in finished {
            if let Err(e) = resolve(py, future.bind(py), result) {
                e.write_unraisable(py, Some(future.bind(py)));
            }
        }
    }
}

fn resolve(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    result: Result<CallOutcome, Error>,
) -> PyResult<()> {
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match result {
        Ok(outcome) => {
            future.call_method1(intern!(py, "set_result"), (CallResult::new(outcome),))?
        }
        Err(error) => future.call_method1(
            intern!(py, "set_exception"),
            (errors::to_py(&error).into_value(py),),
        )?,
    };
    Ok(())
}

/// A call started by `HubCore.call_soon`; `cancel()` stops it (cancelled at the server when
/// in flight, never sent when still waiting). Dropping it does not.
#[pyclass(frozen, module = "switchboard._switchboard", name = "CallTask")]
pub struct CallTask {
    task: AbortHandle,
}

#[pymethods]
impl CallTask {
    fn cancel(&self) {
        self.task.abort();
    }
}

/// Runs `call` on the engine runtime; its result resolves `future` through `completions`.
pub fn spawn<F>(completions: &Completions, future: Py<PyAny>, call: F) -> CallTask
where
    F: Future<Output = Result<CallOutcome, Error>> + Send + 'static,
{
    let inbox = completions.inbox.clone();
    let task = crate::runtime().handle().spawn(async move {
        let result = call.await;
        inbox.push(future, result);
    });
    CallTask {
        task: task.abort_handle(),
    }
}
