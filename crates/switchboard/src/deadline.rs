//! When a call must be finished: one absolute moment per call, built by the caller without
//! touching tokio.
//!
//! Every layer below the hub works against the same absolute deadline (a call whose
//! deadline has passed is never sent; one that runs out is cancelled at the server), so a
//! caller says *when*, not *how long each step may take*. [`Deadline::after`] is the usual
//! way; [`Deadline::at`] takes a [`std::time::Instant`]. Inside, it is tokio's monotonic
//! clock, so tests that pause tokio's time see deadlines move with it.

use std::time::Duration;

/// The moment a call must be finished by. See [`Hub::call`](crate::Hub::call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(tokio::time::Instant);

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(tokio::time::Instant::now() + timeout)
    }

    /// At `instant`.
    pub fn at(instant: std::time::Instant) -> Deadline {
        Deadline(tokio::time::Instant::from_std(instant))
    }

    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// Whether the moment has passed.
    pub fn has_passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The moment as a std instant.
    pub fn instant(&self) -> std::time::Instant {
        self.0.into_std()
    }

    /// The moment on tokio's clock, as the layers below the hub take it.
    pub(crate) fn tokio(self) -> tokio::time::Instant {
        self.0
    }
}

impl From<Duration> for Deadline {
    /// `timeout` from now.
    fn from(timeout: Duration) -> Deadline {
        Deadline::after(timeout)
    }
}

impl From<std::time::Instant> for Deadline {
    fn from(instant: std::time::Instant) -> Deadline {
        Deadline::at(instant)
    }
}

impl From<tokio::time::Instant> for Deadline {
    fn from(instant: tokio::time::Instant) -> Deadline {
        Deadline(instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_counts_down_and_converts_both_ways() {
        let deadline = Deadline::after(Duration::from_secs(60));
        assert!(!deadline.has_passed());
        assert!(deadline.remaining() > Duration::from_secs(59));
        assert_eq!(Deadline::at(deadline.instant()), deadline);
        let past = Deadline::from(std::time::Instant::now() - Duration::from_millis(1));
        assert!(past.has_passed());
        assert_eq!(past.remaining(), Duration::ZERO);
    }
}
