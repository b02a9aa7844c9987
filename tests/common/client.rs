//! [`Client`]: one connection to the daemon's socket, JSON Lines both ways.
//!
//! Every wait is bounded (10 s by default) and panics with a message that
//! shows what was expected and the last lines of the conversation, so a
//! daemon that stays silent fails a test instead of hanging it.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long `recv` waits for one event before failing the test.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    stream: UnixStream,
    /// Bytes read but not yet returned as a line.
    buf: Vec<u8>,
    /// `> sent` / `< received` lines, for failure messages.
    transcript: Vec<String>,
    /// Set once the daemon closed the connection.
    eof: bool,
}

/// Everything one turn produced on this connection.
#[derive(Debug)]
pub struct Turn {
    /// Every event received while waiting, in order (the turn's own and any
    /// others that interleaved).
    pub events: Vec<Value>,
    /// The `response` deltas of the session, concatenated.
    pub text: String,
    /// The `thinking` deltas of the session, concatenated.
    pub thinking: String,
    /// How many `response` events with `done:false` came.
    pub deltas: usize,
    /// The terminal event: `response` with `done:true`, or an `error` for
    /// the session.
    pub terminal: Value,
}

impl Turn {
    /// `(skill, reason)` of each `skill` event of `session` in the turn.
    pub fn skill_events(&self, session: &str) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter(|e| e["event"] == "skill" && e["session_id"] == session)
            .map(|e| {
                (
                    e["skill"].as_str().unwrap_or("?").to_string(),
                    e["reason"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect()
    }

    pub fn finish_reason(&self) -> &str {
        self.terminal["finish_reason"].as_str().unwrap_or("<none>")
    }
    /// Panics unless the turn ended with `done:true` and this finish reason.
    #[track_caller]
    pub fn assert_done(&self, finish_reason: &str) {
        assert!(
            self.terminal["event"] == "response"
                && self.terminal["done"] == true
                && self.terminal["finish_reason"] == finish_reason,
            "expected a terminal response with finish_reason {finish_reason:?}\ngot: {}\nall events: {:#?}",
            self.terminal,
            self.events
        );
    }
    /// Panics unless the turn ended with an `error` of this code.
    #[track_caller]
    pub fn assert_error(&self, code: &str) {
        assert!(
            self.terminal["event"] == "error" && self.terminal["code"] == code,
            "expected the turn to end with error code {code:?}\ngot: {}\nall events: {:#?}",
            self.terminal,
            self.events
        );
    }
    /// The events of one kind (`"response"`, `"thinking"`, ...).
    pub fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }
}

impl Client {
    #[track_caller]
    pub fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
        Client {
            stream,
            buf: Vec::new(),
            transcript: Vec::new(),
            eof: false,
        }
    }

    /// Sends one request as a JSON line.
    #[track_caller]
    pub fn send(&mut self, request: &Value) {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// Sends bytes exactly as given (no newline added).
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        self.transcript.push(format!(
            "> {}{}",
            shown.trim_end(),
            if bytes.len() > 300 { " …" } else { "" }
        ));
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("writing to the daemon failed: {e}\n{}", self.recent());
        }
    }

    /// Sends one request, returning false instead of panicking when the
    /// daemon already closed the connection.
    pub fn try_send(&mut self, request: &Value) -> bool {
        self.transcript.push(format!("> {request}"));
        self.stream
            .write_all(format!("{request}\n").as_bytes())
            .is_ok()
    }

    /// The next event, waiting at most [`RECV_TIMEOUT`].
    #[track_caller]
    pub fn recv(&mut self) -> Value {
        self.recv_within(RECV_TIMEOUT)
    }

    /// The next event, waiting at most `timeout`; panics on timeout, on EOF
    /// and on a line that is not one JSON object.
    #[track_caller]
    pub fn recv_within(&mut self, timeout: Duration) -> Value {
        match self.try_recv(timeout) {
            Some(v) => v,
            None if self.eof => panic!(
                "the daemon closed the connection while an event was expected\n{}",
                self.recent()
            ),
            None => panic!(
                "no event from the daemon within {timeout:?}\n{}",
                self.recent()
            ),
        }
    }

    /// The next event, or `None` after `timeout` or at EOF.
    #[track_caller]
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        let line = self.read_line(timeout)?;
        let text = String::from_utf8(line.clone()).unwrap_or_else(|_| {
            panic!(
                "the daemon sent a line that is not UTF-8: {line:?}\n{}",
                self.recent()
            )
        });
        self.transcript.push(format!("< {text}"));
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "the daemon sent a line that is not JSON ({e}): {text}\n{}",
                self.recent()
            )
        });
        assert!(
            value.is_object(),
            "the daemon sent JSON that is not an object: {text}\n{}",
            self.recent()
        );
        assert!(
            value["event"].is_string(),
            "an event without a string `event` field: {text}\n{}",
            self.recent()
        );
        Some(value)
    }

    /// Reads up to and without the next `\n`.
    fn read_line(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                return Some(line);
            }
            if self.eof {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    self.transcript.push("< (connection closed)".into());
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.transcript.push(format!("< (connection error: {e})"));
                }
            }
        }
    }

    /// Receives until `pred` matches; returns the events skipped on the way
    /// and the match.
    #[track_caller]
    pub fn recv_until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut skipped = Vec::new();
        loop {
            let v = self.recv();
            if pred(&v) {
                return (skipped, v);
            }
            skipped.push(v);
        }
    }

    /// Receives until an event named `name`, failing the test if an `error`
    /// comes first (unless `name` is `"error"`).
    #[track_caller]
    pub fn expect_event(&mut self, name: &str) -> Value {
        let (_, v) = self.recv_until(|v| v["event"] == name || v["event"] == "error");
        if v["event"] != name {
            panic!(
                "expected a {name:?} event, got an error: {v}\n{}",
                self.recent()
            );
        }
        v
    }

    /// Sends `request` and returns the next event (the answer, for requests
    /// that start no turn when nothing else is streaming).
    #[track_caller]
    pub fn request(&mut self, request: &Value) -> Value {
        self.send(request);
        self.recv()
    }

    /// `create` and its `created` answer.
    #[track_caller]
    pub fn create(&mut self, session: &str) -> Value {
        self.send(&json!({"action": "create", "session_id": session}));
        self.expect_event("created")
    }

    /// `history` with default paging.
    #[track_caller]
    pub fn history(&mut self, session: &str) -> Value {
        self.send(&json!({"action": "history", "session_id": session}));
        self.expect_event("history")
    }

    /// The `sessions` array of a `list` answer.
    #[track_caller]
    pub fn list(&mut self) -> Vec<Value> {
        self.send(&json!({"action": "list"}));
        let v = self.expect_event("sessions");
        v["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("`sessions` is not an array: {v}"))
    }

    /// Sends `message` to `session` and collects the whole turn.
    #[track_caller]
    pub fn send_turn(&mut self, session: &str, message: &str) -> Turn {
        self.send(&json!({"action": "send", "session_id": session, "message": message}));
        self.turn(session)
    }

    /// Collects the events of the current turn of `session` until its
    /// terminal event.
    #[track_caller]
    pub fn turn(&mut self, session: &str) -> Turn {
        self.turn_within(session, RECV_TIMEOUT)
    }

    /// [`Client::turn`], waiting at most `per_event` for each event.
    #[track_caller]
    pub fn turn_within(&mut self, session: &str, per_event: Duration) -> Turn {
        let mut turn = Turn {
            events: Vec::new(),
            text: String::new(),
            thinking: String::new(),
            deltas: 0,
            terminal: Value::Null,
        };
        loop {
            let v = self.recv_within(per_event);
            let ours = v["session_id"] == session;
            turn.events.push(v.clone());
            match v["event"].as_str() {
                Some("response") if ours => {
                    turn.text.push_str(
                        v["delta"]
                            .as_str()
                            .unwrap_or_else(|| panic!("response without a string delta: {v}")),
                    );
                    if v["done"] == true {
                        turn.terminal = v;
                        return turn;
                    }
                    assert_eq!(v["done"], false, "response `done` must be a bool: {v}");
                    turn.deltas += 1;
                }
                Some("thinking") if ours => {
                    turn.thinking.push_str(v["delta"].as_str().unwrap_or(""))
                }
                Some("error") if ours => {
                    turn.terminal = v;
                    return turn;
                }
                _ => {}
            }
        }
    }

    /// True if the daemon closes the connection within 5 s (any data that
    /// arrives first is read and dropped).
    pub fn is_closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.eof && Instant::now() < deadline {
            self.buf.clear();
            if self
                .read_line(deadline.saturating_duration_since(Instant::now()))
                .is_none()
                && !self.eof
            {
                return false;
            }
        }
        self.eof
    }

    /// The last 40 lines of the conversation, for failure messages.
    pub fn recent(&self) -> String {
        let start = self.transcript.len().saturating_sub(40);
        format!(
            "--- last lines on this connection ---\n{}",
            self.transcript[start..].join("\n")
        )
    }

    /// The raw stream, for tests that need socket-level control.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}
