//! A server-sent events parser for Streamable HTTP response bodies.
//!
//! Cheaper than `sse-stream` plus rmcp's size limiter (which it replaces here): lines are read
//! straight from the body's chunks, a partial line is the only thing copied between chunks,
//! and an event's `data` stays bytes so the JSON-RPC decoder reads it without a UTF-8 pass of
//! its own. Events become `sse_stream::Sse` only when they are handed to rmcp.
//!
//! Parsing follows the WHATWG rules: lines end in LF, CRLF or CR; a blank line dispatches the
//! event; `data` lines are joined with LF; `id` containing NUL is ignored; unknown fields and
//! comments are ignored; a leading BOM is skipped. One event (its retained lines plus the line
//! being read) may not exceed `max_event` bytes.

use std::collections::VecDeque;

use bytes::{Buf, Bytes};
use http_body::Body;
use http_body_util::BodyExt;
use sse_stream::Sse;

use super::client::ClientError;

/// One parsed event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub event: Option<String>,
    /// `None` if the event had no `data` line.
    pub data: Option<Vec<u8>>,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl Event {
    /// Whether the event carries no message (a priming or keep-alive event).
    pub fn is_blank(&self) -> bool {
        self.data
            .as_deref()
            .is_none_or(|data| data.iter().all(u8::is_ascii_whitespace))
    }

    /// The form rmcp's stream handling takes.
    pub fn into_sse(self) -> Result<Sse, sse_stream::Error> {
        let data = match self.data {
            Some(bytes) => Some(
                String::from_utf8(bytes)
                    .map_err(|e| sse_stream::Error::Utf8Parse(e.utf8_error()))?,
            ),
            None => None,
        };
        Ok(Sse {
            event: self.event,
            data,
            id: self.id,
            retry: self.retry,
        })
    }
}

/// Why an event stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("a server-sent event exceeded {max} bytes")]
    TooLarge { max: usize },
    #[error("a server-sent event field is not valid UTF-8")]
    Utf8,
}

#[derive(Debug)]
pub(crate) struct Parser {
    max_event: usize,
    parsed: VecDeque<Event>,
    current: Option<Event>,
    /// Bytes of the current event's retained lines (data joined with LF, id, event).
    retained: usize,
    /// A line split across chunks.
    partial: Vec<u8>,
    skip_lf: bool,
    at_start: bool,
}

impl Parser {
    pub fn new(max_event: usize) -> Self {
        Parser {
            max_event,
            parsed: VecDeque::new(),
            current: None,
            retained: 0,
            partial: Vec::new(),
            skip_lf: false,
            at_start: true,
        }
    }

    pub fn next_event(&mut self) -> Option<Event> {
        self.parsed.pop_front()
    }

    /// Feeds the next chunk of the body; complete events become available from
    /// [`Self::next_event`].
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), ParseError> {
        if self.at_start && !chunk.is_empty() {
            // A BOM may only open the stream; wait until its three bytes can be seen.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.partial.len() + chunk.len() < BOM.len()
                && BOM.starts_with(&[self.partial.as_slice(), chunk].concat())
            {
                self.partial.extend_from_slice(chunk);
                return Ok(());
            }
            self.at_start = false;
            if !self.partial.is_empty() {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(chunk);
                let body = joined.strip_prefix(BOM).unwrap_or(&joined).to_vec();
                return self.feed(&body);
            }
            chunk = chunk.strip_prefix(BOM).unwrap_or(chunk);
        }
        if self.skip_lf {
            self.skip_lf = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                self.partial.extend_from_slice(chunk);
                return self.check(0);
            };
            if self.partial.is_empty() {
                self.line(&chunk[..end])?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..end]);
                let result = self.line(&line);
                line.clear();
                self.partial = line;
                result?;
            }
            let was_cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if was_cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn check(&self, extra: usize) -> Result<(), ParseError> {
        if self.retained + self.partial.len() + extra > self.max_event {
            Err(ParseError::TooLarge {
                max: self.max_event,
            })
        } else {
            Ok(())
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        if line.is_empty() {
            self.retained = 0;
            if let Some(event) = self.current.take() {
                self.parsed.push_back(event);
            }
            return Ok(());
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(0) => return Ok(()), // comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let text = |value: &[u8]| {
            std::str::from_utf8(value)
                .map(str::to_owned)
                .map_err(|_| ParseError::Utf8)
        };
        match name {
            b"data" => {
                self.check(value.len() + 1)?;
                self.retained += value.len() + 1;
                let event = self.current.get_or_insert_default();
                match &mut event.data {
                    Some(data) => {
                        data.push(b'\n');
                        data.extend_from_slice(value);
                    }
                    None => event.data = Some(value.to_vec()),
                }
            }
            b"event" => {
                self.check(value.len())?;
                self.retained += value.len();
                self.current.get_or_insert_default().event = Some(text(value)?);
            }
            b"id" if !value.contains(&0) => {
                self.check(value.len())?;
                self.retained += value.len();
                self.current.get_or_insert_default().id = Some(text(value)?);
            }
            b"retry" => {
                // Per the spec, a value that is not all ASCII digits is ignored.
                if let Some(retry) = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse().ok())
                {
                    self.current.get_or_insert_default().retry = Some(retry);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Events read from a response body.
pub(crate) struct EventReader<B> {
    body: Option<B>,
    parser: Parser,
}

/// Why reading an event failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Body(ClientError),
    #[error(transparent)]
    Parse(ParseError),
}

impl ReadError {
    pub fn into_sse_error(self) -> sse_stream::Error {
        match self {
            ReadError::Body(e) => sse_stream::Error::Body(Box::new(e)),
            ReadError::Parse(e) => sse_stream::Error::Body(Box::new(e)),
        }
    }
}

impl<B> EventReader<B>
where
    B: Body<Data = Bytes, Error = ClientError> + Unpin,
{
    pub fn new(body: B, max_event: usize) -> Self {
        EventReader {
            body: Some(body),
            parser: Parser::new(max_event),
        }
    }

    /// The next event; `None` at the end of the body. After an error, `None`.
    pub async fn next(&mut self) -> Option<Result<Event, ReadError>> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Some(Ok(event));
            }
            let body = self.body.as_mut()?;
            match body.frame().await {
                None => {
                    self.body = None;
                    return None;
                }
                Some(Err(e)) => {
                    self.body = None;
                    return Some(Err(ReadError::Body(e)));
                }
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers
                    };
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        let len = chunk.len();
                        if let Err(e) = self.parser.feed(chunk) {
                            self.body = None;
                            return Some(Err(ReadError::Parse(e)));
                        }
                        data.advance(len);
                    }
                }
            }
        }
    }

    /// The rest of the body, for connection reuse (see [`super::client`]).
    pub fn into_body(self) -> Option<B> {
        self.body
    }
}

impl<B> EventReader<B>
where
    B: Body<Data = Bytes, Error = ClientError> + Unpin + Send + 'static,
{
    /// The remaining events in the form rmcp takes.
    pub fn into_sse_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Sse, sse_stream::Error>> + Send + 'static {
        futures::stream::unfold(self, |mut reader| async move {
            let item = match reader.next().await? {
                Ok(event) => event.into_sse(),
                Err(e) => Err(e.into_sse_error()),
            };
            Some((item, reader))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]], max: usize) -> Result<Vec<Event>, ParseError> {
        let mut parser = Parser::new(max);
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk)?;
            while let Some(event) = parser.next_event() {
                events.push(event);
            }
        }
        Ok(events)
    }

    fn data(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn priming_and_message_events() {
        let body = b"id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {\"a\":1}\nid: 0/1\n\n";
        let events = parse_chunks(&[body], 1024).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("0"));
        assert_eq!(events[0].retry, Some(3000));
        assert!(events[0].is_blank());
        assert_eq!(events[1].event.as_deref(), Some("message"));
        assert_eq!(events[1].data, data("{\"a\":1}"));
        assert_eq!(events[1].id.as_deref(), Some("0/1"));
        assert!(!events[1].is_blank());
    }

    #[test]
    fn every_split_and_line_ending_gives_the_same_events() {
        for ending in ["\n", "\r\n", "\r"] {
            let text = format!(
                "\u{feff}: comment{e}data: one{e}data:two{e}unknown: x{e}{e}data{e}{e}",
                e = ending
            );
            let bytes = text.as_bytes();
            let whole = parse_chunks(&[bytes], 1024).unwrap();
            assert_eq!(whole.len(), 2, "{ending:?}");
            assert_eq!(whole[0].data, data("one\ntwo"));
            assert_eq!(whole[1].data, data(""));
            for split in 0..bytes.len() {
                let (a, b) = bytes.split_at(split);
                assert_eq!(
                    parse_chunks(&[a, b], 1024).unwrap(),
                    whole,
                    "{ending:?} split at {split}"
                );
            }
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(parse_chunks(&bytewise, 1024).unwrap(), whole, "{ending:?}");
        }
    }

    #[test]
    fn ids_with_nul_and_bad_retries_are_ignored() {
        let events = parse_chunks(&[b"id: a\0b\nretry: 1x\ndata: x\n\n"], 1024).unwrap();
        assert_eq!(events[0].id, None);
        assert_eq!(events[0].retry, None);
    }

    #[test]
    fn an_event_over_the_limit_fails() {
        let long = format!("data: {}\n\n", "x".repeat(100));
        assert_eq!(
            parse_chunks(&[long.as_bytes()], 50),
            Err(ParseError::TooLarge { max: 50 })
        );
        // Split so the limit trips on the partial line too.
        let (a, b) = long.as_bytes().split_at(80);
        assert_eq!(
            parse_chunks(&[a, b], 50),
            Err(ParseError::TooLarge { max: 50 })
        );
        // Many events each under the limit are fine.
        let many = "data: 0123456789\n\n".repeat(20);
        assert_eq!(parse_chunks(&[many.as_bytes()], 50).unwrap().len(), 20);
    }

    #[test]
    fn invalid_utf8_data_fails_only_when_handed_to_rmcp() {
        let events = parse_chunks(&[b"data: \xff\n\n"], 1024).unwrap();
        assert!(events[0].clone().into_sse().is_err());
    }
}
