//! Agent turns against fake providers, and the daemon's life cycle.
//!
//! Covers:
//! - streaming: several `response` deltas then exactly one terminal
//!   `done:true` (`stop`, `length`), from fake Ollama (NDJSON) and fake
//!   OpenAI (SSE); what the daemon asked the provider (path, `stream:true`,
//!   system prompt, user message, Ollama `options.num_ctx`, model); the
//!   send's `id` on every turn event on every connection; `thinking` events
//!   (Ollama `thinking`, `reasoning_content`, `reasoning`) kept out of the
//!   reply and out of later requests; `usage`;
//! - fan-out and ordering: two subscribed clients see the same stream, an
//!   unsubscribed one sees nothing; sends to one session queue in order with
//!   the previous reply in context; two sessions run in parallel; `busy` in
//!   `list`; the turn is in history before its terminal event;
//! - cancel (mid-stream, nothing running, by `delete`);
//! - provider failures: unreachable, HTTP 500 retried, HTTP 400 not retried,
//!   429 with `retry-after` retried, dropped stream, stream without its end
//!   marker, mid-stream error line, stall, no answer at all; the user's
//!   message (and partial text) always kept;
//! - models: unknown session, one-turn `model`, unknown provider, a stored
//!   model whose provider was removed from the config;
//! - life cycle: persistence across a restart, SIGTERM during a turn and
//!   with sends queued, a second daemon on a live socket, a regular file or
//!   a symlink at the socket path, a stale socket, broken configs (exit 2),
//!   a torn last line in `history.jsonl`;
//! - `proxy_url` routing with its bearer token, `activity.log`, API keys
//!   never written to any log.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const OLLAMA_REPLY: &str = "Hello from the fake Ollama.";
const OPENAI_REPLY: &str = "Hello from the fake OpenAI.";
const SYSTEM_PROMPT: &str = "You are the e2e test assistant.";

fn ollama() -> (FakeLlm, Daemon) {
    let llm = FakeLlm::ollama();
    let d = Daemon::builder().ollama(&llm).start();
    (llm, d)
}

fn openai() -> (FakeLlm, Daemon) {
    let llm = FakeLlm::openai();
    let d = Daemon::builder().openai(&llm).start();
    (llm, d)
}

/// Receives until `n` response deltas of `session` arrived; returns their text.
#[track_caller]
fn read_deltas(c: &mut Client, session: &str, n: usize) -> String {
    let mut text = String::new();
    let mut seen = 0;
    while seen < n {
        let v = c.recv();
        if v["event"] == "error" && v["session_id"] == session {
            panic!(
                "the turn failed while deltas were expected: {v}\n{}",
                c.recent()
            );
        }
        if v["event"] == "response" && v["session_id"] == session {
            assert_eq!(
                v["done"], false,
                "the turn ended while more deltas were expected: {v}"
            );
            text.push_str(v["delta"].as_str().unwrap_or(""));
            seen += 1;
        }
    }
    text
}

/// Receives until both the `cancelled` answer and the turn's terminal event
/// for `session` arrived (in either order); returns them.
#[track_caller]
fn cancelled_and_terminal(c: &mut Client, session: &str) -> (Value, Value) {
    let (mut answer, mut terminal) = (None, None);
    while answer.is_none() || terminal.is_none() {
        let v = c.recv();
        if v["session_id"] != session {
            continue;
        }
        match v["event"].as_str() {
            Some("cancelled") => answer = Some(v),
            Some("response") if v["done"] == true => terminal = Some(v),
            Some("error") => panic!(
                "expected a cancelled turn, got an error: {v}\n{}",
                c.recent()
            ),
            _ => {}
        }
    }
    (answer.unwrap(), terminal.unwrap())
}

/// A stream of a few tokens that then goes silent.
fn hanging_stream(tokens: &[&str]) -> Reply {
    ollama_stream(tokens, None).then_hang()
}

/// The assistant messages of a history answer.
fn assistant_messages(h: &Value) -> Vec<Value> {
    messages(h)
        .iter()
        .filter(|m| m["role"] == "assistant")
        .cloned()
        .collect()
}

// ------------------------------------------------------------- streaming

#[test]
fn ollama_turn_streams_deltas_then_one_terminal_stop() {
    let (_llm, d) = ollama();
    let mut c = d.client();
    c.create("s1");
    c.send_raw(
        b"{\"action\":\"send\",\"session_id\":\"s1\",\"message\":\"Hi there\",\"id\":\"t1\"}\n",
    );
    let turn = c.turn("s1");
    turn.assert_done("stop");
    assert_eq!(turn.text, OLLAMA_REPLY, "the reply text, all deltas joined");
    assert!(
        turn.deltas >= 2,
        "the reply should stream as several deltas, got {}: {:#?}",
        turn.deltas,
        turn.events
    );
    // Exactly one terminal: the next thing on the connection is our pong.
    c.send(&json!({"action": "ping", "id": "after"}));
    assert_has(&c.recv(), &json!({"event": "pong", "id": "after"}));
}

#[test]
fn openai_turn_streams_deltas_then_one_terminal_stop() {
    let (_llm, d) = openai();
    let mut c = d.client();
    c.create("s1");
    let turn = c.send_turn("s1", "Hi there");
    turn.assert_done("stop");
    assert_eq!(turn.text, OPENAI_REPLY);
    assert!(
        turn.deltas >= 2,
        "the reply should stream as several deltas: {:#?}",
        turn.events
    );
    c.send(&json!({"action": "ping", "id": "after"}));
    assert_has(&c.recv(), &json!({"event": "pong", "id": "after"}));
}

#[test]
fn ollama_request_has_stream_system_prompt_user_message_and_num_ctx() {
    let (llm, d) = ollama();
    let mut c = d.client();
    c.create("s1");
    c.send_turn("s1", "What is the capital of Peru?")
        .assert_done("stop");
    let r = llm.last_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/chat"),
        "request line"
    );
    assert_has(&r.body, &json!({"model": "test-model", "stream": true}));
    assert!(
        r.has_message("system", SYSTEM_PROMPT),
        "the config's system prompt should be sent: {}",
        r.body
    );
    assert!(
        r.has_message("user", "What is the capital of Peru?"),
        "the user message should be sent: {}",
        r.body
    );
    let num_ctx = &r.body["options"]["num_ctx"];
    assert!(
        num_ctx.as_u64().is_some_and(|n| n > 0),
        "options.num_ctx should be a positive integer, got {num_ctx} in {}",
        r.body
    );
}

#[test]
fn openai_request_has_stream_system_prompt_and_user_message() {
    let (llm, d) = openai();
    let mut c = d.client();
    c.create("s1");
    c.send_turn("s1", "What is the capital of Chile?")
        .assert_done("stop");
    let r = llm.last_request();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions"),
        "request line"
    );
    assert_has(&r.body, &json!({"model": "test-model", "stream": true}));
    assert!(
        r.has_message("system", SYSTEM_PROMPT),
        "the config's system prompt should be sent: {}",
        r.body
    );
    assert!(
        r.has_message("user", "What is the capital of Chile?"),
        "the user message should be sent: {}",
        r.body
    );
}

#[test]
fn session_system_prompt_is_sent_after_the_configs() {
    let (llm, d) = ollama();
    let mut c = d.client();
    c.send(&json!({"action": "create", "session_id": "sys", "system": "Always answer in French."}));
    c.expect_event("created");
    c.send_turn("sys", "Hello").assert_done("stop");
    let r = llm.last_request();
    assert!(
        r.body_contains("Always answer in French."),
        "the session's system prompt should be sent: {}",
        r.body
    );
    assert!(
        r.body_contains(SYSTEM_PROMPT),
        "the config's system prompt should still be sent: {}",
        r.body
    );
}

#[test]
fn turn_events_carry_the_send_id_on_every_connection() {
    let (_llm, d) = ollama();
    let mut a = d.client();
    a.create("ids");
    let mut b = d.client();
    b.send(&json!({"action": "subscribe", "session_id": "ids"}));
    b.expect_event("subscribed");
    a.send(&json!({"action": "send", "session_id": "ids", "message": "hi", "id": 7}));
    for (who, turn) in [("sender", a.turn("ids")), ("subscriber", b.turn("ids"))] {
        turn.assert_done("stop");
        for e in turn.of("response") {
            assert_eq!(
                e["id"], 7,
                "{who}: every turn event carries the send's id (a number): {e}"
            );
        }
    }
}

#[test]
fn ollama_thinking_streams_as_thinking_events_and_is_not_sent_back() {
    let llm = FakeLlm::start(Reply::fixture(fixture("ollama-thinking.ndjson")));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("think");
    let turn = c.send_turn("think", "What is six times seven?");
    turn.assert_done("stop");
    assert_eq!(
        turn.thinking, "Let me ponder quietly.",
        "thinking deltas joined"
    );
    assert_eq!(
        turn.text, "The answer is 42.",
        "the reply must not contain the thinking"
    );
    for e in turn.of("thinking") {
        assert_has(e, &json!({"session_id": "think"}));
    }
    let h = c.history("think");
    assert!(
        !h.to_string().contains("ponder"),
        "thinking should not be stored as reply text: {h}"
    );
    llm.set_default(Reply::fixture(fixture("ollama-plain.ndjson")));
    c.send_turn("think", "And eight times nine?")
        .assert_done("stop");
    let r = llm.last_request();
    assert!(
        r.body_contains("The answer is 42."),
        "the previous reply belongs in the context: {}",
        r.body
    );
    assert!(
        !r.body_contains("ponder"),
        "thinking must not be sent back to the model: {}",
        r.body
    );
}

#[test]
fn openai_reasoning_content_streams_as_thinking_events() {
    let llm = FakeLlm::start(Reply::fixture(fixture("openai-reasoning.sse")));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("r");
    let turn = c.send_turn("r", "Which colour?");
    turn.assert_done("stop");
    assert_eq!(turn.thinking, "Weighing the options");
    assert_eq!(turn.text, "Pick blue.");
}

#[test]
fn openai_reasoning_field_streams_as_thinking_events() {
    let llm = FakeLlm::start(Reply::fixture(fixture("openai-reasoning-field.sse")));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("r");
    let turn = c.send_turn("r", "Which colour?");
    turn.assert_done("stop");
    assert_eq!(turn.thinking, "Comparing shades");
    assert_eq!(turn.text, "Pick green.");
}

#[test]
fn usage_is_reported_when_ollama_reports_it() {
    let (_llm, d) = ollama();
    let mut c = d.client();
    c.create("u");
    let turn = c.send_turn("u", "hi");
    turn.assert_done("stop");
    assert_eq!(
        turn.terminal["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 6}),
        "terminal: {}",
        turn.terminal
    );
}

#[test]
fn usage_is_reported_when_openai_reports_it() {
    let (_llm, d) = openai();
    let mut c = d.client();
    c.create("u");
    let turn = c.send_turn("u", "hi");
    turn.assert_done("stop");
    assert_has(
        &turn.terminal["usage"],
        &json!({"prompt_tokens": 15, "completion_tokens": 6}),
    );
}

#[test]
fn finish_reason_length_from_ollama() {
    let llm = FakeLlm::start(Reply::fixture(fixture("ollama-length.ndjson")));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("len");
    let turn = c.send_turn("len", "Tell me a long story");
    turn.assert_done("length");
    assert_eq!(turn.text, "Once upon a");
}

#[test]
fn finish_reason_length_from_openai() {
    let llm = FakeLlm::start(Reply::fixture(fixture("openai-length.sse")));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("len");
    let turn = c.send_turn("len", "Tell me a long story");
    turn.assert_done("length");
    assert_eq!(turn.text, "Once upon a");
}

// ------------------------------------------------- fan-out and ordering

#[test]
fn two_subscribed_clients_both_receive_the_stream() {
    let (_llm, d) = ollama();
    let mut a = d.client();
    a.create("shared");
    let mut b = d.client();
    b.send(&json!({"action": "subscribe", "session_id": "shared"}));
    b.expect_event("subscribed");
    a.send(&json!({"action": "send", "session_id": "shared", "message": "hello both", "id": "x"}));
    let (ta, tb) = (a.turn("shared"), b.turn("shared"));
    ta.assert_done("stop");
    tb.assert_done("stop");
    assert_eq!(ta.text, OLLAMA_REPLY, "sender's text");
    assert_eq!(tb.text, OLLAMA_REPLY, "subscriber's text");
    assert_eq!(
        tb.terminal["id"], "x",
        "the subscriber's terminal carries the send's id: {}",
        tb.terminal
    );
}

#[test]
fn a_client_that_created_the_session_is_subscribed() {
    let (_llm, d) = ollama();
    let mut a = d.client();
    a.create("auto");
    let mut b = d.client();
    b.create("auto"); // resume: subscribes b too
    a.send(&json!({"action": "send", "session_id": "auto", "message": "hi"}));
    a.turn("auto").assert_done("stop");
    b.turn("auto").assert_done("stop");
}

#[test]
fn an_unsubscribed_client_receives_no_turn_events() {
    let (_llm, d) = ollama();
    let mut a = d.client();
    a.create("quiet");
    let mut b = d.client();
    b.send(&json!({"action": "subscribe", "session_id": "quiet"}));
    b.expect_event("subscribed");
    b.send(&json!({"action": "unsubscribe", "session_id": "quiet"}));
    b.expect_event("unsubscribed");
    a.send_turn("quiet", "hi").assert_done("stop");
    // Had b received the turn, those events would come before this pong.
    b.send(&json!({"action": "ping", "id": "b"}));
    assert_has(&b.recv(), &json!({"event": "pong", "id": "b"}));
}

#[test]
fn sends_to_one_session_run_in_order_with_the_previous_reply_in_context() {
    let llm = FakeLlm::ollama();
    llm.push(ollama_stream(&["first", " answer"], Some("stop")).gap(Duration::from_millis(50)));
    llm.push(ollama_stream(&["second", " answer"], Some("stop")));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("q");
    // Both sends in one write: the second arrives while the first runs.
    let mut both = json!({"action": "send", "session_id": "q", "message": "question-one", "id": 1})
        .to_string();
    both += "\n";
    both += &json!({"action": "send", "session_id": "q", "message": "question-two", "id": 2})
        .to_string();
    both += "\n";
    c.send_raw(both.as_bytes());
    let first = c.turn("q");
    first.assert_done("stop");
    assert_eq!(
        (first.text.as_str(), &first.terminal["id"]),
        ("first answer", &json!(1)),
        "first turn"
    );
    let second = c.turn("q");
    second.assert_done("stop");
    assert_eq!(
        (second.text.as_str(), &second.terminal["id"]),
        ("second answer", &json!(2)),
        "second turn"
    );
    let r = llm.requests();
    assert_eq!(r.len(), 2, "one request per turn:\n{}", llm.summary());
    assert!(
        !r[0].body_contains("question-two"),
        "the first turn must not see the later message: {}",
        r[0].body
    );
    assert!(
        r[1].has_message("user", "question-one"),
        "second request lacks the first question: {}",
        r[1].body
    );
    assert!(
        r[1].has_message("assistant", "first answer"),
        "second request lacks the first reply: {}",
        r[1].body
    );
    assert!(
        r[1].has_message("user", "question-two"),
        "second request lacks its own question: {}",
        r[1].body
    );
}

#[test]
fn two_sessions_run_in_parallel() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["slow", " start"]));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("a");
    c.create("b");
    c.send(&json!({"action": "send", "session_id": "a", "message": "long one"}));
    read_deltas(&mut c, "a", 2);
    // Session a is stuck mid-stream; b must still complete.
    c.send(&json!({"action": "send", "session_id": "b", "message": "short one"}));
    let b = c.turn("b");
    b.assert_done("stop");
    assert_eq!(b.text, OLLAMA_REPLY);
    c.send(&json!({"action": "cancel", "session_id": "a"}));
    let (answer, terminal) = cancelled_and_terminal(&mut c, "a");
    assert_has(&answer, &json!({"running": true}));
    assert_has(&terminal, &json!({"finish_reason": "cancelled"}));
}

#[test]
fn list_shows_busy_while_a_turn_runs() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["working"]));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("busy");
    c.send(&json!({"action": "send", "session_id": "busy", "message": "go"}));
    read_deltas(&mut c, "busy", 1);
    let mut other = d.client();
    let listed = other.list();
    assert_has(&listed[0], &json!({"session_id": "busy", "busy": true}));
    c.send(&json!({"action": "cancel", "session_id": "busy"}));
    cancelled_and_terminal(&mut c, "busy");
}

#[test]
fn turn_is_in_history_and_not_busy_when_its_terminal_arrives() {
    let (_llm, d) = ollama();
    let mut c = d.client();
    c.create("h");
    c.send_turn("h", "remember this").assert_done("stop");
    // Asked right after the terminal event, on the same connection.
    let listed = c.list();
    assert_has(
        &listed[0],
        &json!({"session_id": "h", "busy": false, "messages": 2}),
    );
    let h = c.history("h");
    assert_eq!(
        roles_and_contents(&h),
        vec![
            ("user".to_string(), "remember this".to_string()),
            ("assistant".to_string(), OLLAMA_REPLY.to_string())
        ]
    );
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancel_mid_stream_ends_the_turn_and_keeps_the_partial_text() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["one", " two", " three"]));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("c");
    c.send(&json!({"action": "send", "session_id": "c", "message": "count", "id": "s"}));
    assert_eq!(read_deltas(&mut c, "c", 3), "one two three");
    c.send(&json!({"action": "cancel", "session_id": "c", "id": "x"}));
    let (answer, terminal) = cancelled_and_terminal(&mut c, "c");
    assert_has(
        &answer,
        &json!({"event": "cancelled", "session_id": "c", "running": true, "id": "x"}),
    );
    assert_has(
        &terminal,
        &json!({"event": "response", "done": true, "finish_reason": "cancelled", "id": "s"}),
    );
    let h = c.history("c");
    let assistant = assistant_messages(&h);
    assert_eq!(assistant.len(), 1, "one (partial) assistant message: {h}");
    assert_has(
        &assistant[0],
        &json!({"content": "one two three", "cancelled": true}),
    );
    assert_eq!(
        messages(&h)[0]["content"],
        "count",
        "the user's message is kept: {h}"
    );
}

#[test]
fn cancel_with_nothing_running_says_running_false() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("idle");
    c.send(&json!({"action": "cancel", "session_id": "idle"}));
    assert_has(
        &c.recv(),
        &json!({"event": "cancelled", "session_id": "idle", "running": false}),
    );
}

#[test]
fn cancel_of_unknown_session_is_session_not_found() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send(&json!({"action": "cancel", "session_id": "nobody"}));
    assert_error(&c.recv(), "session_not_found");
}

#[test]
fn delete_cancels_a_running_turn_first() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["doomed"]));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("del");
    c.send(&json!({"action": "send", "session_id": "del", "message": "go"}));
    read_deltas(&mut c, "del", 1);
    c.send(&json!({"action": "delete", "session_id": "del", "id": "rm"}));
    let (mut deleted, mut terminal) = (false, None);
    while !deleted || terminal.is_none() {
        let v = c.recv();
        if v["id"] == "rm" {
            assert_has(&v, &json!({"event": "deleted", "session_id": "del"}));
            deleted = true;
        } else if (v["event"] == "response" && v["done"] == true) || v["event"] == "error" {
            terminal = Some(v);
        }
    }
    assert_has(
        &terminal.unwrap(),
        &json!({"event": "response", "finish_reason": "cancelled"}),
    );
    assert!(
        !d.session_dir("del").exists(),
        "the session folder should be removed"
    );
}

// ------------------------------------------------------ provider failures

#[test]
fn provider_down_is_llm_unreachable_and_keeps_the_user_message() {
    let d = Daemon::start(); // the `fake` provider points at a dead port
    let mut c = d.client();
    c.create("down");
    let turn = c.send_turn("down", "anyone there?");
    turn.assert_error("llm_unreachable");
    assert_eq!(turn.terminal["session_id"], "down");
    let h = c.history("down");
    assert_eq!(
        roles_and_contents(&h),
        vec![("user".to_string(), "anyone there?".to_string())],
        "stored once: {h}"
    );
}

#[test]
fn http_500_is_retried_then_llm_error() {
    let llm = FakeLlm::start(Reply::status(
        500,
        &[],
        r#"{"error":"the fake server broke down"}"#,
    ));
    let d = Daemon::builder().ollama(&llm).start(); // llm_retries = 2
    let mut c = d.client();
    c.create("e");
    let turn = c.send_turn("e", "please");
    turn.assert_error("llm_error");
    assert!(
        turn.terminal["message"].as_str().unwrap().contains("500"),
        "the message should include the status: {}",
        turn.terminal
    );
    assert_eq!(
        llm.requests().len(),
        3,
        "1 attempt + llm_retries (2):\n{}",
        llm.summary()
    );
    let h = c.history("e");
    assert_eq!(
        roles_and_contents(&h),
        vec![("user".to_string(), "please".to_string())],
        "stored once despite retries: {h}"
    );
}

#[test]
fn http_400_is_not_retried_and_reports_the_providers_message() {
    let body = r#"{"error":{"message":"The model `test-model` does not exist here","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
    let llm = FakeLlm::start(Reply::status(400, &[], body));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("e");
    let turn = c.send_turn("e", "please");
    turn.assert_error("llm_error");
    let message = turn.terminal["message"].as_str().unwrap();
    assert!(
        message.contains("does not exist here"),
        "the provider's message should be passed on: {message}"
    );
    assert!(
        message.contains("400"),
        "the HTTP status should be included: {message}"
    );
    assert_eq!(
        llm.requests().len(),
        1,
        "a 400 must not be retried:\n{}",
        llm.summary()
    );
}

#[test]
fn http_429_with_retry_after_is_retried_then_succeeds() {
    let llm = FakeLlm::openai();
    llm.push(Reply::status(
        429,
        &[("retry-after", "0")],
        r#"{"error":{"message":"Rate limit reached, slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    ));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("rl");
    let turn = c.send_turn("rl", "hi");
    turn.assert_done("stop");
    assert_eq!(turn.text, OPENAI_REPLY);
    assert_eq!(
        llm.requests().len(),
        2,
        "one 429, then a successful retry:\n{}",
        llm.summary()
    );
}

#[test]
fn dropped_stream_is_llm_stream_and_keeps_the_partial_text() {
    let llm = FakeLlm::start(ollama_stream(&["half", " a", " reply"], None).then_drop());
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("drop");
    let turn = c.send_turn("drop", "go on");
    turn.assert_error("llm_stream");
    assert_eq!(turn.text, "half a reply", "deltas before the break");
    let h = c.history("drop");
    assert_eq!(messages(&h)[0]["content"], "go on", "{h}");
    assert!(
        assistant_messages(&h)
            .iter()
            .any(|m| m["content"] == "half a reply"),
        "the partial reply is kept: {h}"
    );
}

#[test]
fn ollama_stream_ending_without_done_is_llm_stream() {
    let llm = FakeLlm::start(Reply::fixture(fixture("ollama-no-done.ndjson")));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("nd");
    let turn = c.send_turn("nd", "go");
    turn.assert_error("llm_stream");
    assert_eq!(turn.text, "Cut short");
}

#[test]
fn openai_stream_ending_without_finish_or_done_is_llm_stream() {
    let llm = FakeLlm::start(Reply::fixture(fixture("openai-no-end.sse")));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("nd");
    let turn = c.send_turn("nd", "go");
    turn.assert_error("llm_stream");
    assert_eq!(turn.text, "Cut short");
}

/// A mid-stream error line is a provider error after a 200; either
/// `llm_error` or `llm_stream` fits PROTOCOL.md, but the provider's words
/// must reach the user and the partial text must be kept.
fn assert_midstream_error(turn: &Turn, provider_words: &str, c: &mut Client, session: &str) {
    let code = turn.terminal["code"].as_str().unwrap_or("");
    assert!(
        turn.terminal["event"] == "error" && (code == "llm_error" || code == "llm_stream"),
        "expected llm_error or llm_stream, got: {}",
        turn.terminal
    );
    let message = turn.terminal["message"].as_str().unwrap_or("");
    assert!(
        message.contains(provider_words),
        "the provider's message should be passed on: {message}"
    );
    assert_eq!(turn.text, "Partial reply");
    let h = c.history(session);
    assert!(
        assistant_messages(&h)
            .iter()
            .any(|m| m["content"] == "Partial reply"),
        "the partial reply is kept: {h}"
    );
}

#[test]
fn ollama_midstream_error_line_fails_the_turn() {
    let llm = FakeLlm::start(Reply::fixture(fixture("ollama-midstream-error.ndjson")));
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("me");
    let turn = c.send_turn("me", "go");
    assert_midstream_error(&turn, "model runner crashed", &mut c, "me");
}

#[test]
fn openai_midstream_error_event_fails_the_turn() {
    let llm = FakeLlm::start(Reply::fixture(fixture("openai-midstream-error.sse")));
    let d = Daemon::builder().openai(&llm).start();
    let mut c = d.client();
    c.create("me");
    let turn = c.send_turn("me", "go");
    assert_midstream_error(&turn, "upstream model overloaded", &mut c, "me");
}

#[test]
fn stalled_stream_is_llm_stream_after_the_read_timeout() {
    let llm = FakeLlm::start(hanging_stream(&["stalled", " here"]));
    let d = Daemon::builder().ollama(&llm).start(); // llm_read_timeout_secs = 3
    let mut c = d.client();
    c.create("stall");
    let turn = c.send_turn("stall", "go");
    turn.assert_error("llm_stream");
    assert_eq!(turn.text, "stalled here");
    let h = c.history("stall");
    assert!(
        assistant_messages(&h)
            .iter()
            .any(|m| m["content"] == "stalled here"),
        "the partial reply is kept: {h}"
    );
}

#[test]
fn provider_that_never_answers_fails_the_turn() {
    let llm = FakeLlm::start(Reply::hang());
    let d = Daemon::builder()
        .ollama(&llm)
        .set("llm_retries", "0")
        .start();
    let mut c = d.client();
    c.create("mute");
    c.send(&json!({"action": "send", "session_id": "mute", "message": "hello?"}));
    let turn = c.turn_within("mute", Duration::from_secs(30));
    let code = turn.terminal["code"].as_str().unwrap_or("");
    assert!(
        turn.terminal["event"] == "error"
            && ["llm_stream", "llm_unreachable", "llm_error"].contains(&code),
        "expected an llm_* error, got: {}",
        turn.terminal
    );
}

#[test]
fn provider_closing_without_an_answer_fails_the_turn() {
    let llm = FakeLlm::start(Reply::close());
    let d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("closed");
    let turn = c.send_turn("closed", "hello?");
    let code = turn.terminal["code"].as_str().unwrap_or("");
    assert!(
        turn.terminal["event"] == "error"
            && ["llm_stream", "llm_unreachable", "llm_error"].contains(&code),
        "expected an llm_* error, got: {}",
        turn.terminal
    );
    assert_eq!(
        c.history("closed")["total"],
        1,
        "the user message is kept, once"
    );
}

// ---------------------------------------------------------------- models

#[test]
fn send_to_unknown_session_is_session_not_found() {
    let d = Daemon::start();
    let mut c = d.client();
    c.send(&json!({"action": "send", "session_id": "nowhere", "message": "hi", "id": 3}));
    let got = assert_error(&c.recv(), "session_not_found");
    assert_has(&got, &json!({"session_id": "nowhere", "id": 3}));
    assert!(c.list().is_empty(), "send must not create the session");
}

#[test]
fn send_with_model_uses_it_for_that_turn_only() {
    let (llm, d) = openai();
    let mut c = d.client();
    c.create("m");
    c.send(&json!({"action": "send", "session_id": "m", "message": "one", "model": "fake/other-model"}));
    c.turn("m").assert_done("stop");
    assert_eq!(
        llm.last_request().body["model"],
        "other-model",
        "the one-turn model"
    );
    c.send_turn("m", "two").assert_done("stop");
    assert_eq!(
        llm.last_request().body["model"],
        "test-model",
        "back to the session's model"
    );
    assert_has(
        &c.list()[0],
        &json!({"session_id": "m", "model": "fake/test-model"}),
    );
}

#[test]
fn send_with_unknown_provider_model_is_invalid_model() {
    let (llm, d) = openai();
    let mut c = d.client();
    c.create("m");
    c.send(
        &json!({"action": "send", "session_id": "m", "message": "hi", "model": "nosuchprovider/x"}),
    );
    let (_, got) = c.recv_until(|v| v["event"] == "error" || v["event"] == "response");
    assert_error(&got, "invalid_model");
    assert!(
        llm.requests().is_empty(),
        "no provider should be asked:\n{}",
        llm.summary()
    );
}

#[test]
fn stored_model_of_a_removed_provider_is_invalid_model() {
    let llm = FakeLlm::openai();
    let gone = format!(
        "[providers.gone]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n",
        llm.url()
    );
    let mut d = Daemon::builder().openai(&llm).table(&gone).start();
    let mut c = d.client();
    c.send(&json!({"action": "create", "session_id": "g", "model": "gone/some-model"}));
    c.expect_event("created");
    drop(c);
    assert!(d.terminate().success());
    let config = fs::read_to_string(d.config_path()).unwrap();
    d.write_config(&config.replace(&gone, ""));
    d.launch();
    let mut c = d.client();
    c.send(&json!({"action": "send", "session_id": "g", "message": "hi"}));
    let (_, got) = c.recv_until(|v| v["event"] == "error" || v["event"] == "response");
    assert_error(&got, "invalid_model");
}

// ------------------------------------------------------------ life cycle

#[test]
fn sessions_and_history_survive_a_restart() {
    let (_llm, mut d) = ollama();
    let mut c = d.client();
    c.create("keep");
    c.send_turn("keep", "persist me").assert_done("stop");
    c.send(&json!({"action": "create", "session_id": "empty", "model": "ollama/other"}));
    c.expect_event("created");
    let before = c.history("keep");
    drop(c);
    d.restart();
    let mut c = d.client();
    let mut listed = c.list();
    listed.sort_by_key(|s| s["session_id"].as_str().unwrap_or("").to_string());
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_has(
        &listed[0],
        &json!({"session_id": "empty", "model": "ollama/other", "messages": 0}),
    );
    assert_has(
        &listed[1],
        &json!({"session_id": "keep", "model": "ollama/test-model", "messages": 2}),
    );
    let after = c.history("keep");
    assert_eq!(
        after["messages"], before["messages"],
        "history after restart\nbefore: {before}\nafter:  {after}"
    );
    c.send(&json!({"action": "create", "session_id": "keep"}));
    assert_has(&c.expect_event("created"), &json!({"new": false}));
}

#[test]
fn sigterm_during_a_turn_cancels_it_then_shuts_down() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["unfinished", " thought"]));
    let mut d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("t");
    c.send(&json!({"action": "send", "session_id": "t", "message": "think long", "id": "run"}));
    read_deltas(&mut c, "t", 2);
    let mut idle = d.client(); // a connection without a session also hears it
    idle.send(&json!({"action": "ping"}));
    idle.expect_event("pong");
    d.signal_term();
    let (_, terminal) = c.recv_until(|v| {
        (v["event"] == "response" && v["done"] == true) || v["event"] == "shutdown"
    });
    assert_has(
        &terminal,
        &json!({"event": "response", "finish_reason": "cancelled", "id": "run"}),
    );
    assert_has(&c.recv(), &json!({"event": "shutdown"}));
    assert!(
        c.is_closed(),
        "the connection should be closed after shutdown"
    );
    assert_has(&idle.recv(), &json!({"event": "shutdown"}));
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(
        !d.socket_path().exists(),
        "the socket file should be removed"
    );
    d.launch();
    let h = d.client().history("t");
    assert!(
        assistant_messages(&h)
            .iter()
            .any(|m| m["content"] == "unfinished thought" && m["cancelled"] == true),
        "the partial text is kept, marked cancelled: {h}"
    );
}

#[test]
fn sigterm_fails_queued_sends_with_shutting_down() {
    let llm = FakeLlm::ollama();
    llm.push(hanging_stream(&["busy"]));
    let mut d = Daemon::builder().ollama(&llm).start();
    let mut c = d.client();
    c.create("t");
    c.send(
        &json!({"action": "send", "session_id": "t", "message": "first message", "id": "first"}),
    );
    read_deltas(&mut c, "t", 1);
    c.send(
        &json!({"action": "send", "session_id": "t", "message": "second message", "id": "second"}),
    );
    // Answers come in request order, so once this history answer is here
    // the second send has been accepted (and queued behind the first).
    c.send(&json!({"action": "history", "session_id": "t"}));
    c.expect_event("history");
    d.signal_term();
    let (mut first, mut second) = (None, None);
    loop {
        let v = c.recv();
        match (v["event"].as_str(), v["id"].as_str()) {
            (Some("response"), Some("first")) if v["done"] == true => first = Some(v),
            (Some("error"), Some("second")) => second = Some(v),
            (Some("shutdown"), _) => break,
            _ => {}
        }
    }
    assert_has(
        &first.expect("the running turn's terminal came before shutdown"),
        &json!({"finish_reason": "cancelled"}),
    );
    assert_error(
        &second.expect("the queued send's error came before shutdown"),
        "shutting_down",
    );
    assert_eq!(d.wait_exit().code(), Some(0));
    d.launch();
    let h = d.client().history("t");
    let users: Vec<_> = messages(&h)
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        users,
        vec![json!("first message"), json!("second message")],
        "both user messages were stored: {h}"
    );
}

#[test]
fn second_daemon_on_a_live_socket_exits_with_a_clear_message() {
    let d = Daemon::start();
    let out = d.run_another();
    assert!(
        !out.status.success(),
        "a second daemon on the same socket must fail: {out:?}"
    );
    let socket = d.socket_path().display().to_string();
    assert!(
        out.stderr.contains(&socket),
        "the message should name the socket {socket}:\n{}",
        out.stderr
    );
    // The first one is unharmed.
    assert!(
        d.socket_path().exists(),
        "the live socket file must not be removed"
    );
    assert_has(
        &d.client().request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
}

#[test]
fn regular_file_at_the_socket_path_is_refused_and_kept() {
    let d = Daemon::builder().prepare();
    fs::write(d.socket_path(), "precious data").unwrap();
    let out = d.run_another();
    assert!(
        !out.status.success(),
        "must refuse a regular file at the socket path: {out:?}"
    );
    let socket = d.socket_path().display().to_string();
    assert!(
        out.stderr.contains(&socket),
        "the message should name {socket}:\n{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(d.socket_path()).unwrap(),
        "precious data",
        "the file must not be touched"
    );
}

#[test]
fn symlink_at_the_socket_path_is_refused_and_kept() {
    let d = Daemon::builder().prepare();
    let target = d.dir().join("target.txt");
    fs::write(&target, "target data").unwrap();
    std::os::unix::fs::symlink(&target, d.socket_path()).unwrap();
    let out = d.run_another();
    assert!(
        !out.status.success(),
        "must refuse a symlink at the socket path: {out:?}"
    );
    assert!(
        fs::symlink_metadata(d.socket_path())
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink must stay"
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "target data",
        "the target must not be touched"
    );
}

#[test]
fn stale_socket_file_is_replaced() {
    let mut d = Daemon::builder().prepare();
    drop(std::os::unix::net::UnixListener::bind(d.socket_path()).unwrap()); // leaves the file, nobody listening
    assert!(d.socket_path().exists());
    d.launch();
    assert_has(
        &d.client().request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
}

#[test]
fn config_with_bad_syntax_exits_2_naming_the_file() {
    let d = Daemon::builder()
        .raw_config("socket_path = [unclosed\n")
        .prepare();
    let out = d.run_another();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for a broken config: {out:?}"
    );
    let path = d.config_path().display().to_string();
    assert!(
        out.stderr.contains(&path),
        "stderr should name {path}:\n{}",
        out.stderr
    );
}

#[test]
fn config_with_a_wrong_type_exits_2_naming_the_file() {
    let d = Daemon::builder().set("llm_retries", "\"many\"").prepare();
    let out = d.run_another();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for a broken config: {out:?}"
    );
    let path = d.config_path().display().to_string();
    assert!(
        out.stderr.contains(&path),
        "stderr should name {path}:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("llm_retries"),
        "stderr should name the bad key:\n{}",
        out.stderr
    );
}

#[test]
fn config_flag_names_the_config_file() {
    let d = Daemon::builder()
        .raw_config("this is = = not toml\n")
        .config_flag()
        .prepare();
    let out = d.run_another();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for a broken config given with --config: {out:?}"
    );
    assert!(
        out.stderr.contains(&d.config_path().display().to_string()),
        "stderr should name the file:\n{}",
        out.stderr
    );
    let mut ok = Daemon::builder().config_flag().start();
    assert_has(
        &ok.client().request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
    assert!(ok.terminate().success());
}

#[test]
fn torn_last_history_line_is_skipped_with_a_warning() {
    let (_llm, mut d) = ollama();
    let mut c = d.client();
    c.create("torn");
    c.send_turn("torn", "before the crash").assert_done("stop");
    drop(c);
    assert!(d.terminate().success());
    let file = d.session_dir("torn").join("history.jsonl");
    let mut bytes = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    bytes.extend_from_slice(b"{\"role\":\"user\",\"content\":\"half wri");
    fs::write(&file, bytes).unwrap();
    d.launch();
    let mut c = d.client();
    let h = c.history("torn");
    assert_has(&h, &json!({"total": 2}));
    assert_eq!(messages(&h)[0]["content"], "before the crash", "{h}");
    let warned = d
        .log()
        .lines()
        .any(|l| l.contains("history.jsonl") && l.to_ascii_lowercase().contains("warn"));
    assert!(
        warned,
        "a warning naming history.jsonl should be logged:\n{}",
        d.log()
    );
    // The next append starts on a clean line: it survives another restart.
    c.send_turn("torn", "after the crash").assert_done("stop");
    drop(c);
    d.restart();
    let h = d.client().history("torn");
    assert_has(&h, &json!({"total": 4}));
    assert_eq!(messages(&h)[2]["content"], "after the crash", "{h}");
}

#[test]
fn proxy_url_routes_through_the_proxy_with_the_token() {
    let llm = FakeLlm::ollama();
    llm.push(Reply::fixture(fixture("ollama-plain.ndjson")));
    llm.push(Reply::fixture(fixture("openai-plain.sse")));
    let d = Daemon::builder()
        .set("default_model", "\"ollama/test-model\"")
        .set("proxy_url", &format!("\"{}\"", llm.url()))
        .set("proxy_token", "\"tok-e2e-proxy\"")
        .start();
    let mut c = d.client();
    c.create("p");
    assert_eq!(c.send_turn("p", "via proxy").text, OLLAMA_REPLY);
    c.send(&json!({"action": "send", "session_id": "p", "message": "again", "model": "llamacpp/smollm2"}));
    assert_eq!(c.turn("p").text, OPENAI_REPLY);
    let r = llm.requests();
    assert_eq!(r.len(), 2, "{}", llm.summary());
    assert_eq!(r[0].path, "/ollama/api/chat", "ollama through the proxy");
    assert_eq!(
        r[1].path, "/llamacpp/v1/chat/completions",
        "llamacpp through the proxy"
    );
    for req in &r {
        assert_eq!(
            req.header("authorization"),
            Some("Bearer tok-e2e-proxy"),
            "{} {}",
            req.method,
            req.path
        );
    }
    assert_eq!(r[1].body["model"], "smollm2");
    assert!(
        !d.log().contains("tok-e2e-proxy"),
        "the proxy token must not be logged"
    );
}

#[test]
fn activity_log_records_the_turn() {
    let (_llm, d) = ollama();
    let mut c = d.client();
    c.create("act");
    c.send_turn("act", "log me").assert_done("stop");
    let dir = d.session_dir("act");
    for f in ["meta.json", "history.jsonl"] {
        assert!(
            dir.join(f).is_file(),
            "{} should exist",
            dir.join(f).display()
        );
    }
    let activity = fs::read_to_string(dir.join("activity.log")).unwrap_or_default();
    assert!(
        activity.lines().any(|l| !l.trim().is_empty()),
        "activity.log should have lines, got {activity:?}"
    );
}

#[test]
fn api_key_from_env_is_sent_but_never_written_anywhere() {
    const KEY: &str = "sk-e2e-secret-0123456789abcdef";
    let llm = FakeLlm::openai();
    let keyed = format!("[providers.keyed]\nkind = \"openai\"\nbase_url = \"{}/v1\"\napi_key_env = \"RUSTER_E2E_API_KEY\"\n", llm.url());
    let d = Daemon::builder()
        .table(&keyed)
        .set("default_model", "\"keyed/test-model\"")
        .env("RUSTER_E2E_API_KEY", KEY)
        .start();
    let mut c = d.client();
    c.create("k");
    c.send_turn("k", "secret stuff").assert_done("stop");
    assert_eq!(
        llm.last_request().header("authorization"),
        Some(format!("Bearer {KEY}").as_str()),
        "the key should be sent"
    );
    let config = c.request(&json!({"action": "config"}));
    assert!(
        !config.to_string().contains(KEY),
        "the key leaked through `config`: {config}"
    );
    let mut leaks = Vec::new();
    find_in_files(d.dir(), KEY, &mut leaks);
    assert!(leaks.is_empty(), "the API key was written to {leaks:?}");
}

/// Every file under `dir` whose bytes contain `needle`.
fn find_in_files(dir: &std::path::Path, needle: &str, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            find_in_files(&p, needle, found);
        } else if fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            found.push(p);
        }
    }
}
