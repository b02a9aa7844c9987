//! The end-to-end harness: the real `ruster` binary, a client for its socket,
//! and a fake LLM server that replays recorded streams.
//!
//! - [`Daemon`] starts the binary in a fresh temp dir (its own `HOME`, config,
//!   socket and data dir), waits until the socket accepts, and on a failing
//!   test prints everything needed to see why: config, stdout, stderr, the
//!   tail of the log and a listing of the dir.
//! - [`Client`] speaks JSON Lines over the socket with bounded waits, and
//!   keeps a transcript that its panics print.
//! - [`FakeLlm`] is a tiny HTTP/1.1 server that records every request and
//!   answers from a queue of scripted [`Reply`]s (streams from
//!   `tests/fixtures/e2e/`, errors, stalls, drops).
//!
//! Everything here is std + serde_json + libc, so a protocol change breaks a
//! test instead of slipping through shared types. Each test file uses only
//! part of the harness, hence the `allow`s below.
#![allow(dead_code, unused_imports)] // each test binary uses a different subset

mod client;
mod daemon;
mod fake_llm;
mod real_model;

pub use client::{Client, Turn};
pub use daemon::{Builder, Daemon, Exited};
pub use fake_llm::{dead_port, ollama_stream, openai_stream, FakeLlm, Recorded, Reply};
pub use real_model::RealModel;

pub use serde_json::{json, Value};

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Path of a fixture of ours, `tests/fixtures/e2e/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/e2e")
        .join(name)
}

/// Asserts that every field of `expected` is in `got` with the same value
/// (fields of `got` not named in `expected` are not checked: the protocol
/// may add fields). Shows both in full when it fails.
#[track_caller]
pub fn assert_has(got: &Value, expected: &Value) {
    let exp = expected
        .as_object()
        .expect("assert_has: expected must be an object");
    let missing: Vec<&String> = exp
        .iter()
        .filter(|(k, v)| got.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty(),
        "fields {missing:?} differ\nexpected (subset): {expected}\ngot:               {got}"
    );
}

/// Asserts `got` is an `error` event with this `code`; returns it.
#[track_caller]
pub fn assert_error(got: &Value, code: &str) -> Value {
    assert!(
        got["event"] == "error" && got["code"] == code,
        "expected an error event with code {code:?}\ngot: {got}"
    );
    assert!(
        got["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error event must carry a non-empty human `message`\ngot: {got}"
    );
    got.clone()
}

/// True for an RFC 3339 UTC timestamp like `2026-11-24T15:04:05Z` (with or
/// without fractional seconds).
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let rest = &s[19.min(s.len())..];
    let frac_ok = match rest.strip_suffix('Z') {
        Some("") => true,
        Some(f) => f.len() > 1 && f.starts_with('.') && f[1..].bytes().all(|c| c.is_ascii_digit()),
        None => false,
    };
    fixed && frac_ok
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after
/// `timeout` with `what`. A safety net for things that settle
/// asynchronously (a closed connection being counted, a file appearing).
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The messages of a `history` answer.
pub fn messages(history: &Value) -> &Vec<Value> {
    history["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("history answer without a `messages` array: {history}"))
}

/// `(role, content)` of each message, for readable comparisons.
pub fn roles_and_contents(history: &Value) -> Vec<(String, String)> {
    messages(history)
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("?").to_string(),
                m["content"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}
