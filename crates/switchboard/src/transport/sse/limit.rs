//! Caps the size of one server-sent event before the SSE parser buffers it.
//!
//! `sse-stream` accumulates a line (and an event's `data:` lines) without bound, so a broken or
//! hostile server could make us hold an arbitrarily large event in memory. This watches the raw
//! bytes on their way into the parser and fails the stream once one event grows past a limit.

/// Counts the bytes the SSE parser would retain for the event currently being received.
///
/// Comment lines (starting with `:`) are not retained by the parser, so only the line being
/// read counts for them; a blank line ends the event and resets the count.
#[derive(Debug)]
pub(crate) struct EventSizeLimiter {
    max: usize,
    /// Bytes of complete, non-comment lines of the current event (plus one per joined line).
    retained: usize,
    /// Bytes of the line being read.
    line: usize,
    line_is_comment: bool,
    previous_was_cr: bool,
}

/// An event exceeded [`EventSizeLimiter`]'s limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

impl EventSizeLimiter {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            retained: 0,
            line: 0,
            line_is_comment: false,
            previous_was_cr: false,
        }
    }

    /// Feeds the next chunk of the response body.
    pub(crate) fn observe(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.previous_was_cr {
                self.previous_was_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.extend_line(rest);
                    return self.check();
                }
                Some(end) => {
                    self.extend_line(&rest[..end]);
                    self.check()?;
                    self.previous_was_cr = rest[end] == b'\r';
                    self.finish_line();
                    self.check()?;
                    rest = &rest[end + 1..];
                }
            }
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.line == 0 {
            self.line_is_comment = bytes[0] == b':';
        }
        self.line = self.line.saturating_add(bytes.len());
    }

    fn finish_line(&mut self) {
        if self.line == 0 {
            self.retained = 0;
        } else if !self.line_is_comment {
            self.retained = self.retained.saturating_add(self.line).saturating_add(1);
        }
        self.line = 0;
        self.line_is_comment = false;
    }

    fn check(&self) -> Result<(), TooLarge> {
        if self.retained.saturating_add(self.line) > self.max {
            Err(TooLarge)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_under_the_limit_pass_whatever_the_chunking() {
        let body = b"event: message\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: x\n\n";
        for split in 0..body.len() {
            let mut limiter = EventSizeLimiter::new(32);
            limiter.observe(&body[..split]).unwrap();
            limiter.observe(&body[split..]).unwrap();
        }
    }

    #[test]
    fn a_long_line_fails_before_it_ends() {
        let mut limiter = EventSizeLimiter::new(16);
        limiter.observe(b"data: 0123456789").unwrap();
        assert_eq!(limiter.observe(b"0123456789"), Err(TooLarge));
    }

    #[test]
    fn many_data_lines_add_up_within_one_event() {
        let mut limiter = EventSizeLimiter::new(20);
        limiter.observe(b"data: aaaa\n").unwrap();
        assert_eq!(limiter.observe(b"data: bbbb\n"), Err(TooLarge));
    }

    /// A 20-byte limiter that has passed `chunks`, fed 100 times over (each must pass).
    fn fed_repeatedly(chunks: &[&[u8]]) -> EventSizeLimiter {
        let mut limiter = EventSizeLimiter::new(20);
        for chunk in chunks.iter().cycle().take(100 * chunks.len()) {
            limiter.observe(chunk).unwrap();
        }
        limiter
    }

    #[test]
    fn a_blank_line_resets_the_count() {
        fed_repeatedly(&[b"data: aaaa\n\n", b"data: bbbb\r\n\r\n"]);
    }

    #[test]
    fn comments_are_not_retained() {
        let mut limiter = fed_repeatedly(&[b": ping ping ping\n"]);
        limiter.observe(b"data: x\n\n").unwrap();
    }
}
