//! The circuit breaker of `docs/scale-out-design.md` b.6: after 3 connection failures in a
//! row, operations fail at once for a second instead of each waiting out the connect and
//! response timeouts; then they try Redis again (every caller, not a single probe), and
//! one success closes it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const FAILURES_TO_OPEN: u32 = 3;
const OPEN_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Breaker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    /// Whether an operation may try Redis now.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        self.state().open_until.is_none_or(|until| now >= until)
    }

    /// What an operation that tried Redis found: `reached` false for a connection
    /// failure (refused, dropped, timed out).
    pub(crate) fn record(&self, reached: bool, now: Instant) {
        let mut state = self.state();
        if reached {
            *state = State::default();
            return;
        }
        state.failures += 1;
        if state.failures >= FAILURES_TO_OPEN {
            state.open_until = Some(now + OPEN_FOR);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it left plain counters: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_three_failures_and_closes_on_a_success() {
        let breaker = Breaker::default();
        let t0 = Instant::now();
        breaker.record(false, t0);
        breaker.record(false, t0);
        assert!(breaker.allows(t0));
        breaker.record(false, t0);
        assert!(!breaker.allows(t0), "open after three");
        assert!(!breaker.allows(t0 + OPEN_FOR / 2));
        let later = t0 + OPEN_FOR;
        assert!(breaker.allows(later), "tries again after a second");
        breaker.record(false, later);
        assert!(!breaker.allows(later), "a failed try opens it again");
        let after = later + OPEN_FOR;
        breaker.record(true, after);
        assert!(breaker.allows(after));
        breaker.record(false, after);
        assert!(breaker.allows(after), "the count starts over");
    }
}
