//! The socket protocol itself (PROTOCOL.md), against the real binary. No
//! model is needed here except for the history paging tests, which use a
//! fake Ollama.
//!
//! Covers:
//! - framing: `ping`/`pong` with string and number ids echoed, a non-string
//!   non-number id (`invalid_request`), `invalid_json` (garbage, non-object
//!   JSON), missing or non-string `action` (`invalid_request`),
//!   `unknown_action` listing the actions, empty and whitespace lines
//!   ignored, `\r\n` accepted, unknown fields ignored, pipelined requests
//!   answered in order, wrong field types named in `invalid_request`;
//! - session ids: every malformed id is `invalid_session_id` for every
//!   action that takes one, and nothing is created on disk; 64 characters
//!   are fine;
//! - `create` (new, then resumed; default and given model; `invalid_model`
//!   for a malformed model or an unknown provider), `list` fields, `history`
//!   paging (`limit`/`offset`/`total`, the 1000 cap), `delete`,
//!   `subscribe`/`unsubscribe`, `status`, `config` hiding secrets,
//!   `--version`;
//! - limits: `line_too_long` (the connection stays usable),
//!   `too_many_connections` (error, then EOF);
//! - robustness: garbage never closes the connection, and the daemon never
//!   panics (checked for every test by the harness when the daemon is
//!   dropped).

mod common;

use common::*;
use std::time::Duration;

// ---------------------------------------------------------------- framing

#[test]
fn ping_answers_pong_echoing_a_string_id() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"ping\",\"id\":\"abc-1\"}\n");
    assert_has(&c.recv(), &json!({"event": "pong", "id": "abc-1"}));
}

#[test]
fn ping_answers_pong_echoing_a_number_id() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"ping\",\"id\":42}\n");
    let got = c.recv();
    assert_has(&got, &json!({"event": "pong", "id": 42}));
    assert!(
        got["id"].is_u64(),
        "the id must come back as a number, not a string: {got}"
    );
}

#[test]
fn ping_without_id_answers_pong_without_id() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"ping\"}\n");
    let got = c.recv();
    assert_has(&got, &json!({"event": "pong"}));
    assert!(
        got.get("id").is_none(),
        "an answer to a request without id must carry no id: {got}"
    );
}

#[test]
fn id_of_another_type_is_invalid_request() {
    let d = Daemon::start();
    let mut c = d.client();
    for line in [
        r#"{"action":"ping","id":true}"#,
        r#"{"action":"ping","id":{"n":1}}"#,
        r#"{"action":"ping","id":[1]}"#,
    ] {
        c.send_raw(format!("{line}\n").as_bytes());
        let got = c.recv();
        assert!(
            got["code"] == "invalid_request",
            "request {line}\nexpected error invalid_request\ngot: {got}"
        );
    }
}

#[test]
fn explicit_null_id_is_invalid_request() {
    // PROTOCOL.md: "a string or a number; any other type is invalid_request".
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"ping\",\"id\":null}\n");
    assert_error(&c.recv(), "invalid_request");
}

#[test]
fn garbage_line_is_invalid_json() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{not json at all\n");
    assert_error(&c.recv(), "invalid_json");
}

#[test]
fn json_that_is_not_an_object_is_invalid_json() {
    let d = Daemon::start();
    let mut c = d.client();
    for line in ["[1,2,3]", "\"ping\"", "42", "null"] {
        c.send_raw(format!("{line}\n").as_bytes());
        let got = c.recv();
        assert!(
            got["code"] == "invalid_json",
            "request {line}\nexpected error invalid_json\ngot: {got}"
        );
    }
}

#[test]
fn missing_action_is_invalid_request_naming_the_field() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"session_id\":\"x\"}\n");
    let got = assert_error(&c.recv(), "invalid_request");
    assert!(
        got["message"].as_str().unwrap().contains("action"),
        "the message should name `action`: {got}"
    );
}

#[test]
fn non_string_action_is_invalid_request() {
    let d = Daemon::start();
    let mut c = d.client();
    for line in [
        r#"{"action":5}"#,
        r#"{"action":null}"#,
        r#"{"action":["ping"]}"#,
    ] {
        c.send_raw(format!("{line}\n").as_bytes());
        let got = c.recv();
        assert!(
            got["code"] == "invalid_request",
            "request {line}\nexpected error invalid_request\ngot: {got}"
        );
    }
}

#[test]
fn unknown_action_lists_the_actions() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"dance\",\"id\":\"u1\"}\n");
    let got = assert_error(&c.recv(), "unknown_action");
    assert_eq!(
        got["id"], "u1",
        "the error answers the request, so it carries its id: {got}"
    );
    let message = got["message"].as_str().unwrap();
    for action in [
        "ping",
        "create",
        "send",
        "cancel",
        "list",
        "history",
        "delete",
        "subscribe",
        "status",
    ] {
        assert!(
            message.contains(action),
            "the message should list {action:?}: {message}"
        );
    }
}

#[test]
fn empty_and_whitespace_lines_are_ignored() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"\n\n   \n\t\n \r\n{\"action\":\"ping\",\"id\":\"after-blanks\"}\n");
    // The first event must be the pong: nothing answered the blank lines.
    assert_has(&c.recv(), &json!({"event": "pong", "id": "after-blanks"}));
}

#[test]
fn crlf_line_ending_is_accepted() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(b"{\"action\":\"ping\",\"id\":\"crlf\"}\r\n{\"action\":\"ping\",\"id\":\"lf\"}\n");
    assert_has(&c.recv(), &json!({"event": "pong", "id": "crlf"}));
    assert_has(&c.recv(), &json!({"event": "pong", "id": "lf"}));
}

#[test]
fn unknown_fields_are_ignored() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send_raw(
        b"{\"action\":\"ping\",\"id\":\"uf\",\"colour\":\"blue\",\"nested\":{\"a\":[1,null]}}\n",
    );
    assert_has(&c.recv(), &json!({"event": "pong", "id": "uf"}));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut batch = String::new();
    let actions = ["ping", "status", "list"];
    for i in 0..60 {
        batch += &format!("{{\"action\":\"{}\",\"id\":{i}}}\n", actions[i % 3]);
    }
    c.send_raw(batch.as_bytes());
    let expected_events = ["pong", "status", "sessions"];
    for i in 0..60 {
        let got = c.recv();
        assert_has(&got, &json!({"event": expected_events[i % 3], "id": i}));
    }
}

#[test]
fn wrong_field_types_are_invalid_request_naming_the_field() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("typed");
    let cases = [
        (json!({"action": "create"}), "session_id"),
        (
            json!({"action": "create", "session_id": null}),
            "session_id",
        ),
        (json!({"action": "create", "session_id": 7}), "session_id"),
        (json!({"action": "send", "session_id": "typed"}), "message"),
        (
            json!({"action": "send", "session_id": "typed", "message": 42}),
            "message",
        ),
        (
            json!({"action": "history", "session_id": "typed", "limit": "ten"}),
            "limit",
        ),
        (
            json!({"action": "history", "session_id": "typed", "offset": -1}),
            "offset",
        ),
        (
            json!({"action": "create", "session_id": "typed", "model": 3}),
            "model",
        ),
    ];
    for (request, field) in cases {
        c.send(&request);
        let got = c.recv();
        assert!(
            got["code"] == "invalid_request" && got["message"].as_str().is_some_and(|m| m.contains(field)),
            "request {request}\nexpected error invalid_request whose message names {field:?}\ngot: {got}"
        );
    }
    // Nothing of that reached the session.
    assert_eq!(c.history("typed")["total"], 0);
}

// ------------------------------------------------------------ session ids

const BAD_IDS: [&str; 8] = ["../etc", "a/b", "", ".hidden", "a\0b", "sp ace", "é", ".."];

fn long_id(n: usize) -> String {
    "x".repeat(n)
}

#[test]
fn malformed_session_ids_are_invalid_session_id_for_every_action() {
    let d = Daemon::start();
    let mut c = d.client();
    let too_long = long_id(65);
    let ids: Vec<&str> = BAD_IDS.iter().copied().chain([too_long.as_str()]).collect();
    for id in &ids {
        for request in [
            json!({"action": "create", "session_id": id}),
            json!({"action": "send", "session_id": id, "message": "hi"}),
            json!({"action": "history", "session_id": id}),
            json!({"action": "delete", "session_id": id}),
            json!({"action": "subscribe", "session_id": id}),
            json!({"action": "cancel", "session_id": id}),
        ] {
            c.send(&request);
            let got = c.recv();
            assert!(
                got["code"] == "invalid_session_id",
                "request {request}\nexpected error invalid_session_id\ngot: {got}"
            );
        }
    }
    // Nothing was created anywhere under the test dir for these ids.
    let sessions = d.data_dir().join("sessions");
    let stored: Vec<_> = std::fs::read_dir(&sessions)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        stored.is_empty(),
        "no session folder should exist, found {stored:?} in {}",
        sessions.display()
    );
    assert!(
        !d.data_dir().join("etc").exists() && !d.dir().join("etc").exists(),
        "`../etc` reached the file system"
    );
    assert!(c.list().is_empty(), "list should be empty");
}

#[test]
fn session_id_of_64_allowed_characters_is_accepted() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = format!("A-z_0.9{}", long_id(57));
    assert_eq!(id.len(), 64);
    assert_has(
        &c.create(&id),
        &json!({"event": "created", "session_id": id, "new": true}),
    );
}

// ------------------------------------------------------- create and list

#[test]
fn create_is_new_then_resumes_with_the_default_model() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send(&json!({"action": "create", "session_id": "test", "id": "c1"}));
    assert_has(
        &c.recv(),
        &json!({"event": "created", "session_id": "test", "model": "fake/test-model", "new": true, "id": "c1"}),
    );
    let mut other = d.client();
    other.send(&json!({"action": "create", "session_id": "test"}));
    assert_has(
        &other.recv(),
        &json!({"event": "created", "session_id": "test", "model": "fake/test-model", "new": false}),
    );
}

#[test]
fn create_echoes_a_given_model_and_resume_replaces_it() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send(&json!({"action": "create", "session_id": "m", "model": "fake/other-model"}));
    assert_has(
        &c.recv(),
        &json!({"event": "created", "session_id": "m", "model": "fake/other-model", "new": true}),
    );
    c.send(&json!({"action": "create", "session_id": "m", "model": "fake/third-model"}));
    assert_has(
        &c.recv(),
        &json!({"event": "created", "model": "fake/third-model", "new": false}),
    );
    let listed = c.list();
    assert_has(
        &listed[0],
        &json!({"session_id": "m", "model": "fake/third-model"}),
    );
}

#[test]
fn create_with_malformed_model_or_unknown_provider_is_invalid_model() {
    let d = Daemon::start();
    let mut c = d.client();
    for model in ["nosuchprovider/x", "fake/", "/test-model", ""] {
        let request = json!({"action": "create", "session_id": "bad-model", "model": model});
        c.send(&request);
        let got = c.recv();
        assert!(
            got["code"] == "invalid_model",
            "request {request}\nexpected error invalid_model\ngot: {got}"
        );
    }
    assert!(
        c.list().is_empty(),
        "a create that failed must not leave a session behind"
    );
}

#[test]
fn list_shows_every_session_with_its_fields() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("alpha");
    c.send(&json!({"action": "create", "session_id": "beta", "model": "fake/beta-model"}));
    c.expect_event("created");
    let mut sessions = c.list();
    sessions.sort_by_key(|s| s["session_id"].as_str().unwrap_or("").to_string());
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_has(
        &sessions[0],
        &json!({"session_id": "alpha", "model": "fake/test-model", "messages": 0, "busy": false}),
    );
    assert_has(
        &sessions[1],
        &json!({"session_id": "beta", "model": "fake/beta-model", "messages": 0, "busy": false}),
    );
    for s in &sessions {
        for field in ["created_at", "updated_at"] {
            let ts = s[field].as_str().unwrap_or("");
            assert!(
                is_rfc3339_utc(ts),
                "{field} should be an RFC 3339 UTC timestamp, got {:?} in {s}",
                s[field]
            );
        }
    }
}

// ---------------------------------------------------------------- history

/// A daemon on fake Ollama with session `h` holding 3 turns: messages
/// `q1, Hello..., q2, Hello..., q3, Hello...` (6).
fn three_turns() -> (FakeLlm, Daemon, Client) {
    let llm = FakeLlm::ollama();
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("h");
    for q in ["q1", "q2", "q3"] {
        c.send_turn("h", q).assert_done("stop");
    }
    (llm, d, c)
}

const REPLY: &str = "Hello from the fake Ollama.";

fn page(c: &mut Client, limit: Option<u64>, offset: Option<u64>) -> Value {
    let mut r = json!({"action": "history", "session_id": "h"});
    if let Some(l) = limit {
        r["limit"] = json!(l);
    }
    if let Some(o) = offset {
        r["offset"] = json!(o);
    }
    c.send(&r);
    c.expect_event("history")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

#[test]
fn history_defaults_return_everything_in_chronological_order() {
    let (_llm, _d, mut c) = three_turns();
    let h = page(&mut c, None, None);
    assert_has(
        &h,
        &json!({"event": "history", "session_id": "h", "total": 6, "offset": 0}),
    );
    let expected = pairs(&[
        ("user", "q1"),
        ("assistant", REPLY),
        ("user", "q2"),
        ("assistant", REPLY),
        ("user", "q3"),
        ("assistant", REPLY),
    ]);
    assert_eq!(roles_and_contents(&h), expected, "full history: {h}");
    for m in messages(&h) {
        assert!(
            m["ts"].as_str().is_some_and(is_rfc3339_utc),
            "every message needs an RFC 3339 `ts`: {m}"
        );
    }
}

#[test]
fn history_limit_returns_the_newest_messages() {
    let (_llm, _d, mut c) = three_turns();
    let h = page(&mut c, Some(2), Some(0));
    assert_has(&h, &json!({"total": 6, "offset": 0}));
    assert_eq!(
        roles_and_contents(&h),
        pairs(&[("user", "q3"), ("assistant", REPLY)]),
        "limit 2: {h}"
    );
}

#[test]
fn history_offset_skips_the_newest_messages() {
    let (_llm, _d, mut c) = three_turns();
    let h = page(&mut c, Some(2), Some(2));
    assert_has(&h, &json!({"total": 6, "offset": 2}));
    assert_eq!(
        roles_and_contents(&h),
        pairs(&[("user", "q2"), ("assistant", REPLY)]),
        "limit 2 offset 2: {h}"
    );
    let h = page(&mut c, Some(4), Some(4));
    assert_eq!(
        roles_and_contents(&h),
        pairs(&[("user", "q1"), ("assistant", REPLY)]),
        "limit 4 offset 4 (only 2 left): {h}"
    );
    let h = page(&mut c, Some(5), Some(10));
    assert_has(&h, &json!({"total": 6, "offset": 10}));
    assert!(
        messages(&h).is_empty(),
        "offset past the start gives no messages: {h}"
    );
}

#[test]
fn history_limit_is_capped_at_1000() {
    // 501 quick turns store 1002 messages (q0 ... q500 and 501 replies).
    let llm = FakeLlm::start(ollama_stream(&["r"], Some("stop")).gap(Duration::ZERO));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("big");
    // Pipelined in batches of 32: a session may bound how many sends wait.
    for start in (0..501).step_by(32) {
        let end = (start + 32).min(501);
        let mut batch = String::new();
        for i in start..end {
            batch += &json!({"action": "send", "session_id": "big", "message": format!("q{i}")})
                .to_string();
            batch.push('\n');
        }
        c.send_raw(batch.as_bytes());
        for _ in start..end {
            c.turn("big").assert_done("stop");
        }
    }
    c.send(&json!({"action": "history", "session_id": "big", "limit": 5000}));
    let h = c.expect_event("history");
    assert_eq!(h["total"], 1002, "total counts every message");
    let got = messages(&h);
    assert_eq!(got.len(), 1000, "limit 5000 must be capped at 1000");
    // The two oldest are one page further back; together they are all.
    c.send(&json!({"action": "history", "session_id": "big", "limit": 1000, "offset": 1000}));
    let older = c.expect_event("history");
    assert_eq!(
        messages(&older).len(),
        2,
        "offset 1000 leaves the 2 oldest: {older}"
    );
    let all: Vec<&Value> = messages(&older).iter().chain(got.iter()).collect();
    let questions: Vec<String> = all
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or("?").to_string())
        .collect();
    let expected: Vec<String> = (0..501).map(|i| format!("q{i}")).collect();
    assert_eq!(
        questions, expected,
        "every question once, in order, across the two pages"
    );
}

// --------------------------------------------------------------- delete

#[test]
fn delete_removes_the_session_and_its_folder() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("old");
    assert!(
        d.session_dir("old").is_dir(),
        "the session folder should exist after create"
    );
    c.send(&json!({"action": "delete", "session_id": "old", "id": 9}));
    assert_has(
        &c.recv(),
        &json!({"event": "deleted", "session_id": "old", "id": 9}),
    );
    assert!(
        !d.session_dir("old").exists(),
        "the session folder should be gone"
    );
    assert!(c.list().is_empty());
    c.send(&json!({"action": "history", "session_id": "old"}));
    assert_has(
        &assert_error(&c.recv(), "session_not_found"),
        &json!({"session_id": "old"}),
    );
    c.send(&json!({"action": "delete", "session_id": "old"}));
    assert_error(&c.recv(), "session_not_found");
}

// ------------------------------------------------- subscribe, unsubscribe

#[test]
fn subscribe_and_unsubscribe_answer() {
    let d = Daemon::start();
    let mut a = d.client();
    a.create("shared");
    let mut b = d.client();
    b.send(&json!({"action": "subscribe", "session_id": "shared", "id": "s"}));
    assert_has(
        &b.recv(),
        &json!({"event": "subscribed", "session_id": "shared", "id": "s"}),
    );
    b.send(&json!({"action": "unsubscribe", "session_id": "shared", "id": "u"}));
    assert_has(
        &b.recv(),
        &json!({"event": "unsubscribed", "session_id": "shared", "id": "u"}),
    );
}

#[test]
fn subscribe_to_unknown_session_is_session_not_found() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send(&json!({"action": "subscribe", "session_id": "ghost"}));
    let got = assert_error(&c.recv(), "session_not_found");
    assert_eq!(
        got["session_id"], "ghost",
        "the error names the session: {got}"
    );
}

// ------------------------------------------------------- status, config

#[test]
fn status_reports_the_daemon() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("one");
    c.create("two");
    let st = c.request(&json!({"action": "status"}));
    assert_has(
        &st,
        &json!({"event": "status", "version": env!("CARGO_PKG_VERSION"), "sessions": 2, "default_model": "fake/test-model"}),
    );
    assert!(
        st["uptime_secs"].is_u64(),
        "uptime_secs should be a whole number: {st}"
    );
    assert!(
        st["connections"].as_u64().is_some_and(|n| n >= 1),
        "connections should count this one: {st}"
    );
    assert!(st["skills"].is_u64(), "skills should be a number: {st}");
}

#[test]
fn version_flag_prints_the_crate_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ruster"))
        .arg("--version")
        .output()
        .expect("run --version");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(env!("CARGO_PKG_VERSION")),
        "`ruster --version` gave {:?}: {stdout}",
        out.status
    );
}

#[test]
fn config_answer_hides_tokens_and_keys() {
    let d = Daemon::builder()
        .set("proxy_url", "\"http://127.0.0.1:9\"")
        .set("proxy_token", "\"tok-very-secret-e2e\"")
        .start();
    let mut c = d.client();
    let got = c.request(&json!({"action": "config"}));
    assert_eq!(got["event"], "config", "{got}");
    assert!(
        got["config"].is_object(),
        "config should be an object: {got}"
    );
    assert!(
        got["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("config.toml")),
        "path should name the config file: {got}"
    );
    let text = got.to_string();
    assert!(
        !text.contains("tok-very-secret-e2e"),
        "the proxy token leaked: {text}"
    );
    assert!(text.contains("***"), "secrets should read \"***\": {text}");
}

// --------------------------------------------------------------- limits

#[test]
fn line_too_long_is_answered_and_the_connection_stays_usable() {
    let d = Daemon::builder().set("max_line_bytes", "1024").start();
    let mut c = d.client();
    let long = format!(
        "{{\"action\":\"ping\",\"id\":\"long\",\"pad\":\"{}\"}}\n",
        "x".repeat(20_000)
    );
    c.send_raw(long.as_bytes());
    assert_error(&c.recv(), "line_too_long");
    c.send(&json!({"action": "ping", "id": "after"}));
    // The rest of the long line was discarded: no invalid_json for it.
    assert_has(&c.recv(), &json!({"event": "pong", "id": "after"}));
    // A line under the limit still works.
    let ok = format!(
        "{{\"action\":\"ping\",\"id\":\"fits\",\"pad\":\"{}\"}}\n",
        "y".repeat(900)
    );
    c.send_raw(ok.as_bytes());
    assert_has(&c.recv(), &json!({"event": "pong", "id": "fits"}));
}

#[test]
fn too_many_connections_gets_the_error_then_eof() {
    let d = Daemon::builder().set("max_connections", "2").start();
    let mut first = d.client();
    assert_has(
        &first.request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
    // The harness's readiness probe (already closed) may be counted for a
    // moment: retry the second connection until it is served.
    let mut second = wait_for(
        Duration::from_secs(5),
        "a second connection to be served",
        || {
            let mut c = d.client();
            let sent = c.try_send(&json!({"action": "ping"}));
            (sent && c.recv()["event"] == "pong").then_some(c)
        },
    );
    let mut third = d.client();
    assert_error(&third.recv(), "too_many_connections");
    assert!(
        third.is_closed(),
        "the connection over the limit should be closed after the error"
    );
    // The others are untouched.
    assert_has(
        &first.request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
    assert_has(
        &second.request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
}

// ------------------------------------------------------------ robustness

/// A tiny deterministic generator, so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn garbage_lines_never_close_the_connection() {
    let d = Daemon::start();
    let mut c = d.client();
    let alphabet: &[u8] = b"{}[]\":,. abcxyz019\\\t\r\xff\xc3\x28\x00-_action";
    let mut rng = Lcg(0x5eed);
    let mut expected_errors = 0;
    for _ in 0..40 {
        let len = 1 + (rng.next() % 60) as usize;
        let mut line: Vec<u8> = (0..len)
            .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
            .collect();
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            line.push(b'#');
        }
        line.push(b'\n');
        c.send_raw(&line);
        expected_errors += 1;
    }
    for i in 0..expected_errors {
        let got = c.recv();
        assert!(
            got["event"] == "error"
                && (got["code"] == "invalid_json" || got["code"] == "invalid_request"),
            "garbage line {i}: expected one invalid_json/invalid_request error\ngot: {got}"
        );
    }
    c.send(&json!({"action": "ping", "id": "still-here"}));
    assert_has(&c.recv(), &json!({"event": "pong", "id": "still-here"}));
    assert!(
        !d.log().contains("panicked"),
        "the daemon panicked:\n{}",
        d.log()
    );
}

#[test]
fn a_client_that_disconnects_mid_line_does_not_disturb_others() {
    let d = Daemon::start();
    let mut other = d.client();
    {
        let mut c = d.client();
        c.send_raw(b"{\"action\":\"ping\",\"id\":\"never-fin");
    }
    assert_has(
        &other.request(&json!({"action": "ping", "id": 1})),
        &json!({"event": "pong", "id": 1}),
    );
}
