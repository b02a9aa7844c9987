//! A blocking Server-Sent Events reader (the WHATWG "event stream" format).
//!
//! Policy: follow the WHATWG parsing rules, with three deliberate additions
//! that real providers need:
//! - a pending event is dispatched at EOF even without the closing blank
//!   line (servers that end with `data: [DONE]` and close; the standard
//!   would drop it);
//! - llama.cpp's historical `error: <json>` field line (a field the standard
//!   ignores) is surfaced as an event named `error`, so a failure is never
//!   silently lost;
//! - memory is bounded: a line, or the joined data of one event, longer
//!   than `max_line_bytes` is an `InvalidData` error, never an ever-growing
//!   buffer.
//!
//! `id:` and `retry:` are ignored: the daemon never reconnects a completion
//! stream (a resumed LLM reply is not a thing).

use std::io::{self, BufRead};

/// One dispatched event. `event` is `None` for the default `message` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Reads [`SseEvent`]s from any buffered reader, however the bytes are
/// chunked (one byte per read works).
pub struct SseReader<R: BufRead> {
    reader: R,
    max_line_bytes: usize,
    /// The current line's bytes (without its line end).
    line: Vec<u8>,
    /// The last line ended with `\r`: a `\n` that follows, even in the next
    /// read buffer, belongs to the same line end.
    skip_lf: bool,
    /// Nothing read yet: the first line may start with a BOM.
    at_start: bool,
    eof: bool,
    event_type: Option<String>,
    data: String,
    /// At least one `data:` line arrived for the pending event (an empty
    /// `data:` line still makes an event, with empty data).
    has_data: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: BufRead> SseReader<R> {
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        SseReader {
            reader,
            max_line_bytes,
            line: Vec::new(),
            skip_lf: false,
            at_start: true,
            eof: false,
            event_type: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// The next event, or `None` once the stream has ended and no event is
    /// pending.
    pub fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        loop {
            if self.eof {
                // Dispatch what is pending (see module doc), exactly once.
                return Ok(self.take_event());
            }
            if !self.read_line()? {
                self.eof = true;
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let dispatched = self.process_line(&line);
            // Give the buffer back so its capacity is reused.
            self.line = line;
            if let Some(ev) = dispatched? {
                return Ok(Some(ev));
            }
        }
    }

    /// Reads one line into `self.line`. Returns false at EOF when no byte of
    /// a new line was read; an unterminated last line counts as a line.
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let mut got_any = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(got_any);
            }
            if self.skip_lf {
                self.skip_lf = false;
                if buf[0] == b'\n' {
                    self.reader.consume(1);
                    continue;
                }
            }
            got_any = true;
            let end = buf.iter().position(|&b| b == b'\n' || b == b'\r');
            let take = end.unwrap_or(buf.len());
            if self.line.len() + take > self.max_line_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("SSE line longer than {} bytes", self.max_line_bytes),
                ));
            }
            self.line.extend_from_slice(&buf[..take]);
            match end {
                Some(i) => {
                    self.skip_lf = buf[i] == b'\r';
                    self.reader.consume(i + 1);
                    return Ok(true);
                }
                None => {
                    let n = buf.len();
                    self.reader.consume(n);
                }
            }
        }
    }

    /// Applies one line to the pending event; a blank line dispatches it.
    fn process_line(&mut self, raw: &[u8]) -> io::Result<Option<SseEvent>> {
        let mut raw = raw;
        if self.at_start {
            self.at_start = false;
            raw = raw.strip_prefix(BOM).unwrap_or(raw);
        }
        if raw.is_empty() {
            return Ok(self.take_event());
        }
        if raw[0] == b':' {
            return Ok(None); // comment / keep-alive
        }
        // Invalid UTF-8 becomes U+FFFD as the standard's decoder does; the
        // JSON parser downstream then decides whether it matters.
        let line = String::from_utf8_lossy(raw);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "data" => self.push_data(value)?,
            "event" => {
                self.event_type = (!value.is_empty()).then(|| value.to_string());
            }
            "error" => {
                // llama.cpp's `error: {json}` line: keep it as an error event.
                self.event_type = Some("error".to_string());
                self.push_data(value)?;
            }
            _ => {} // id, retry and unknown fields
        }
        Ok(None)
    }

    fn push_data(&mut self, value: &str) -> io::Result<()> {
        let extra = value.len() + usize::from(self.has_data);
        if self.data.len() + extra > self.max_line_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("SSE event data longer than {} bytes", self.max_line_bytes),
            ));
        }
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
        Ok(())
    }

    /// The pending event if it has data; resets the event state either way
    /// (an `event:` without data is dropped, per the standard).
    fn take_event(&mut self) -> Option<SseEvent> {
        let event = self.event_type.take();
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    /// A reader that hands out one byte per read, to exercise every split.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((&b, rest)), false) => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn all(bytes: &[u8]) -> Vec<SseEvent> {
        let mut r = SseReader::new(bytes, 1 << 16);
        let mut out = Vec::new();
        while let Some(ev) = r.next_event().unwrap() {
            out.push(ev);
        }
        out
    }

    fn all_one_byte(bytes: &[u8]) -> Vec<SseEvent> {
        let mut r = SseReader::new(BufReader::with_capacity(1, OneByte(bytes)), 1 << 16);
        let mut out = Vec::new();
        while let Some(ev) = r.next_event().unwrap() {
            out.push(ev);
        }
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    const FRAMING: &[u8] = include_bytes!("../../tests/fixtures/providers/sse-framing.sse");

    #[test]
    fn framing_fixture_bom_crlf_cr_nospace_and_eof_dispatch() {
        let evs = all(FRAMING);
        let data: Vec<&str> = evs.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(
            data,
            [
                r#"{"n":1}"#,
                r#"{"n":2}"#,
                r#"{"n":3}"#,
                r#"{"n":4}"#,
                "[DONE]"
            ]
        );
        assert_eq!(evs[1].event.as_deref(), Some("message"));
        assert_eq!(evs[0].event, None);
        // The same bytes one at a time: the `\r` | `\n` split is one line end.
        assert_eq!(all_one_byte(FRAMING), evs);
    }

    #[test]
    fn multiline_data_is_joined_with_lf() {
        let bytes = include_bytes!("../../tests/fixtures/providers/sse-multiline.sse");
        let evs = all(bytes);
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0].data,
            "{\"choices\":[{\"index\":0,\n\"delta\":{\"content\":\"two lines\"}}]}"
        );
        assert_eq!(evs[1].data, "[DONE]");
    }

    #[test]
    fn llamacpp_error_field_line_becomes_error_event() {
        let bytes = include_bytes!("../../tests/fixtures/providers/sse-llamacpp-error-field.sse");
        let evs = all(bytes);
        let last = evs.last().unwrap();
        assert_eq!(last.event.as_deref(), Some("error"));
        assert!(last.data.starts_with('{'));
    }

    #[test]
    fn comments_ids_and_dataless_events_are_not_dispatched() {
        let evs = all(b": ping\n\nevent: x\nid: 7\nretry: 10\n\nfoo\n\ndata\n\n");
        // `data` with no colon is a data field with an empty value.
        assert_eq!(evs, [ev(None, "")]);
    }

    #[test]
    fn event_name_resets_after_dispatch() {
        let evs = all(b"event: a\ndata: 1\n\ndata: 2\n\n");
        assert_eq!(evs, [ev(Some("a"), "1"), ev(None, "2")]);
    }

    #[test]
    fn only_one_space_is_stripped_and_colons_in_value_kept() {
        let evs = all(b"data:  two\ndata:a:b\n\n");
        assert_eq!(evs, [ev(None, " two\na:b")]);
    }

    #[test]
    fn bare_cr_and_cr_lf_across_reads() {
        let bytes = b"data: a\r\rdata: b\r\n\r\ndata: c\r\n";
        let want = [ev(None, "a"), ev(None, "b"), ev(None, "c")];
        assert_eq!(all(bytes), want);
        assert_eq!(all_one_byte(bytes), want);
    }

    #[test]
    fn bom_only_stripped_at_start() {
        let evs = all(b"\xEF\xBB\xBFdata: x\n\ndata: \xEF\xBB\xBFy\n\n");
        assert_eq!(evs, [ev(None, "x"), ev(None, "\u{feff}y")]);
    }

    #[test]
    fn empty_stream_and_after_eof() {
        let mut r = SseReader::new(&b""[..], 16);
        assert_eq!(r.next_event().unwrap(), None);
        assert_eq!(r.next_event().unwrap(), None);
        let mut r = SseReader::new(&b"data: x"[..], 16);
        assert_eq!(r.next_event().unwrap(), Some(ev(None, "x")));
        assert_eq!(r.next_event().unwrap(), None);
    }

    #[test]
    fn overlong_line_is_invalid_data() {
        let long = format!("data: {}\n\n", "y".repeat(100));
        let mut r = SseReader::new(long.as_bytes(), 64);
        let err = r.next_event().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Same limit when the bytes come one at a time (no unbounded buffer).
        let mut r = SseReader::new(BufReader::with_capacity(1, OneByte(long.as_bytes())), 64);
        assert_eq!(
            r.next_event().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn overlong_event_data_is_invalid_data() {
        let many = "data: 0123456789\n".repeat(10) + "\n";
        let mut r = SseReader::new(many.as_bytes(), 64);
        assert_eq!(
            r.next_event().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn read_errors_propagate() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let mut r = SseReader::new(BufReader::new(Failing), 64);
        assert_eq!(
            r.next_event().unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    }
}
