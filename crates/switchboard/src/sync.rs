//! Small helpers around std's locks.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex whose data stays valid even if a holder panicked (every engine mutex guards
/// plain state that a panic cannot leave half-written in a way worth refusing).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
