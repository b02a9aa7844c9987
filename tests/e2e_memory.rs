//! Long-term memory, the tool loop and compaction, end to end: the real
//! binary, its socket, and a fake provider that records what it was asked.
//!
//! Covers:
//! - memory actions: `remember` (session and global, the request's `id`
//!   echoed), `memories` (all, newest first, with `scope`; global only
//!   without `session_id`; with `query`, scored best first), `forget`
//!   (`forgotten`, then `not_found`; unknown ids `not_found`), limits (empty,
//!   blank and over-long text `invalid_request`, a missing `text`
//!   `invalid_request`), unknown sessions `session_not_found`; memories and
//!   forgets survive a restart;
//! - recall without tools: a remembered fact reaches the last user message
//!   of a related turn's request, not an unrelated one's, not after
//!   `forget`; a global memory reaches another session;
//! - the tool loop over Ollama (whole call, object arguments, `done_reason`
//!   "stop") and OpenAI (argument fragments by `index`, `finish_reason`
//!   "tool_calls"): the `tool` event with the send's `id` before the text,
//!   the memory stored, the second request holding the assistant tool-call
//!   message and the `tool` result (OpenAI: `tool_call_id`; Ollama:
//!   `tool_name`), history with roles `user`, `assistant`, `tool`,
//!   `assistant`, every request offering the built-in tools;
//! - parallel calls (Ollama and OpenAI) all run, in order;
//! - bad arguments (invalid JSON) and an unknown tool: an `error:` result
//!   sent back to the model, the turn still finishes;
//! - `max_tool_rounds = 2` with a model that always calls a tool:
//!   `finish_reason` `tool_limit`;
//! - a model that rejects tools (HTTP 400 "... does not support tools"):
//!   asked again without them, the turn answers, the next turn offers none;
//!   `models_without_tools` and `tools_enabled = false`: never any `tools`;
//! - `read_skill_file` through the tool loop: a reference file is read;
//!   `..`, absolute and symlink escapes return an `error:` text, never the
//!   file;
//! - `schedule_reminder` through the tool loop: listed by `reminders`;
//! - compaction: a small `context_tokens` over 40 turns gives `compacted`
//!   events, few summary requests, the summary in later system messages,
//!   every message still in `history`, and no request over the budget;
//!   with the built-in tools offered, the tools' schemas count too (issue
//!   5, item 5: the context is assembled within `context_tokens`);
//! - a real model (SmolLM2-135M via `../shared/llm/serve-smollm2.sh`): a
//!   remembered fact is recalled into the turn, which answers.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const OLLAMA_REPLY: &str = "Hello from the fake Ollama.";
const OPENAI_REPLY: &str = "Hello from the fake OpenAI.";
const BUILTIN_TOOLS: [&str; 7] = [
    "current_time",
    "remember",
    "recall",
    "forget",
    "activate_skill",
    "read_skill_file",
    "schedule_reminder",
];
const SUMMARY_SYSTEM: &str = "You keep notes of a conversation";
const SUMMARY_MARK: &str = "Summary of the earlier conversation";

// ------------------------------------------------------------- helpers

fn ollama_with(config: &[(&str, &str)]) -> (FakeLlm, Daemon) {
    let llm = FakeLlm::ollama();
    let mut b = Daemon::builder().ollama(&llm);
    for (k, v) in config {
        b = b.set(k, v);
    }
    (llm, b.start())
}

fn openai_with(config: &[(&str, &str)]) -> (FakeLlm, Daemon) {
    let llm = FakeLlm::openai();
    let mut b = Daemon::builder().openai(&llm);
    for (k, v) in config {
        b = b.set(k, v);
    }
    (llm, b.start())
}

/// An Ollama reply that is only tool calls, all in one chunk (as the
/// current server sends them), `arguments` as objects; then `done`.
fn ollama_calls(calls: &[(&str, Value)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
        .collect();
    let first = json!({"model":"test-model","created_at":"2026-01-05T10:00:00Z",
        "message":{"role":"assistant","content":"","tool_calls":calls},"done":false});
    let last = json!({"model":"test-model","created_at":"2026-01-05T10:00:01Z",
        "message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"});
    Reply::stream(
        200,
        "application/x-ndjson",
        vec![
            format!("{first}\n").into_bytes(),
            format!("{last}\n").into_bytes(),
        ],
    )
}

/// An OpenAI SSE reply of tool calls: for each `(id, name, fragments)`, a
/// first delta with `index`, `id`, `type` and the name, then one delta per
/// argument fragment; then `finish_reason` "tool_calls" and `[DONE]`.
fn openai_calls(calls: &[(&str, &str, &[&str])]) -> Reply {
    let chunk = |delta: Value, finish: Value| {
        let v = json!({"id":"chatcmpl-e2etools","object":"chat.completion.chunk","created":1767607200,
                       "model":"test-model","choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
        format!("data: {v}\n\n").into_bytes()
    };
    let mut pieces = vec![chunk(
        json!({"role": "assistant", "content": null}),
        Value::Null,
    )];
    for (index, (id, name, fragments)) in calls.iter().enumerate() {
        pieces.push(chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        for f in fragments.iter() {
            pieces.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": f}}]}),
                Value::Null,
            ));
        }
    }
    pieces.push(chunk(json!({}), json!("tool_calls")));
    pieces.push(b"data: [DONE]\n\n".to_vec());
    Reply::stream(200, "text/event-stream", pieces)
}

/// Sends `message` with request id `id` and collects the turn.
#[track_caller]
fn send(c: &mut Client, session: &str, message: &str, id: &str) -> Turn {
    c.send(&json!({"action": "send", "session_id": session, "message": message, "id": id}));
    c.turn(session)
}

/// The `tool` events of the turn, in order.
fn tool_events(t: &Turn) -> Vec<Value> {
    t.of("tool").into_iter().cloned().collect()
}

/// The names in the request's `tools` array (empty when it has none).
fn offered_tools(r: &Recorded) -> Vec<String> {
    r.body["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["function"]["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn is_summary_request(r: &Recorded) -> bool {
    r.system().starts_with(SUMMARY_SYSTEM)
}

/// `memories` for `session` (or global) with an optional query.
#[track_caller]
fn memories(c: &mut Client, session: Option<&str>, query: Option<&str>) -> Vec<Value> {
    let mut req = json!({"action": "memories", "id": "mem"});
    if let Some(s) = session {
        req["session_id"] = json!(s);
    }
    if let Some(q) = query {
        req["query"] = json!(q);
    }
    c.send(&req);
    let v = c.expect_event("memories");
    assert_eq!(v["id"], "mem", "the answer carries the request's id: {v}");
    if let Some(s) = session {
        assert_eq!(v["session_id"], s, "{v}");
    }
    v["memories"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("`memories` is not an array: {v}"))
}

fn texts(ms: &[Value]) -> Vec<String> {
    ms.iter()
        .map(|m| m["text"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `remember`; returns the new memory id.
#[track_caller]
fn remember(c: &mut Client, session: Option<&str>, text: &str) -> String {
    let mut req = json!({"action": "remember", "text": text, "id": "rem"});
    if let Some(s) = session {
        req["session_id"] = json!(s);
    }
    c.send(&req);
    let v = c.expect_event("remembered");
    assert_eq!(v["id"], "rem", "{v}");
    match session {
        Some(s) => assert_eq!(v["session_id"], s, "{v}"),
        None => assert!(
            v.get("session_id").is_none_or(Value::is_null),
            "a global memory's answer names no session: {v}"
        ),
    }
    let id = v["memory_id"]
        .as_str()
        .unwrap_or_else(|| panic!("`remembered` without a string memory_id: {v}"));
    assert!(!id.is_empty(), "{v}");
    id.to_string()
}

// ------------------------------------------------------------- memory actions

#[test]
fn remember_memories_forget_limits_and_restart() {
    let (_llm, mut d) = ollama_with(&[]);
    let mut c = d.client();
    c.create("s1");
    c.create("s2");

    let cat = remember(&mut c, Some("s1"), "My cat is called Miso");
    let colour = remember(&mut c, None, "The user's favourite colour is green");
    let nurse = remember(&mut c, Some("s1"), "I work as a nurse on night shifts");
    let other = remember(&mut c, Some("s2"), "My bike is red");
    let ids = [&cat, &colour, &nurse, &other];
    for (i, a) in ids.iter().enumerate() {
        assert!(
            ids[i + 1..].iter().all(|b| a != b),
            "memory ids are unique: {ids:?}"
        );
    }

    // All of s1's and the global ones, newest first, with their scope.
    let all = memories(&mut c, Some("s1"), None);
    assert_eq!(
        texts(&all),
        [
            "I work as a nurse on night shifts",
            "The user's favourite colour is green",
            "My cat is called Miso"
        ],
        "s1's and the global memories, newest first (not s2's): {all:?}"
    );
    let scopes: Vec<&str> = all
        .iter()
        .map(|m| m["scope"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(scopes, ["session", "global", "session"], "{all:?}");
    assert_eq!(all[2]["memory_id"], cat.as_str());
    for m in &all {
        assert!(
            m["created_at"].as_str().is_some_and(is_rfc3339_utc),
            "created_at is RFC 3339 UTC: {m}"
        );
    }
    // Without a session: the global ones only.
    let global = memories(&mut c, None, None);
    assert_eq!(
        texts(&global),
        ["The user's favourite colour is green"],
        "{global:?}"
    );
    assert_eq!(global[0]["scope"], "global");

    // With a query: scored, best first, the matching one on top.
    let found = memories(&mut c, Some("s1"), Some("what is my cat called"));
    assert!(!found.is_empty(), "the cat memory matches 'cat'");
    assert_eq!(found[0]["memory_id"], cat.as_str(), "{found:?}");
    let scores: Vec<f64> = found
        .iter()
        .map(|m| {
            m["score"]
                .as_f64()
                .unwrap_or_else(|| panic!("a queried memory carries a numeric score: {m}"))
        })
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    assert!(scores[0] > 0.0, "{scores:?}");

    // forget: once, then not_found; unknown ids not_found.
    c.send(&json!({"action": "forget", "memory_id": nurse, "id": "f1"}));
    let v = c.expect_event("forgotten");
    assert_has(&v, &json!({"memory_id": nurse, "id": "f1"}));
    c.send(&json!({"action": "forget", "memory_id": nurse, "id": "f2"}));
    let v = assert_error(&c.recv(), "not_found");
    assert_eq!(v["id"], "f2", "{v}");
    for bogus in ["m0", "nope", "", "../../etc/passwd"] {
        let v = c.request(&json!({"action": "forget", "memory_id": bogus}));
        assert_error(&v, "not_found");
    }
    // forget ignores a session_id that is not the memory's.
    let v = c.request(&json!({"action": "forget", "memory_id": other, "session_id": "s1"}));
    assert_has(&v, &json!({"event": "forgotten", "memory_id": other}));
    assert!(memories(&mut c, Some("s2"), None)
        .iter()
        .all(|m| m["text"] != "My bike is red"));

    // Limits.
    for text in ["", "   ", &"x".repeat(2001)] {
        let v = c.request(&json!({"action": "remember", "session_id": "s1", "text": text}));
        assert_error(&v, "invalid_request");
    }
    let v = c.request(&json!({"action": "remember", "session_id": "s1"}));
    assert_error(&v, "invalid_request");
    let v = c.request(&json!({"action": "remember", "session_id": "s1", "text": 42}));
    assert_error(&v, "invalid_request");
    // Unknown session.
    let v = c.request(&json!({"action": "remember", "session_id": "ghost", "text": "boo"}));
    assert_error(&v, "session_not_found");
    let v = c.request(&json!({"action": "memories", "session_id": "ghost"}));
    assert_error(&v, "session_not_found");
    let v = c.request(&json!({"action": "remember", "session_id": "../x", "text": "boo"}));
    assert_error(&v, "invalid_session_id");
    assert_eq!(
        texts(&memories(&mut c, Some("s1"), None)),
        [
            "The user's favourite colour is green",
            "My cat is called Miso"
        ],
        "nothing was stored by the refused requests"
    );

    // Everything (and every forget) survives a restart.
    drop(c);
    d.restart();
    let mut c = d.client();
    let all = memories(&mut c, Some("s1"), None);
    assert_eq!(
        texts(&all),
        [
            "The user's favourite colour is green",
            "My cat is called Miso"
        ],
        "{all:?}"
    );
    assert_eq!(all[1]["memory_id"], cat.as_str(), "ids are kept");
    assert!(memories(&mut c, Some("s2"), None)
        .iter()
        .all(|m| m["text"] != "My bike is red"));
    // Ids stay unique after a restart.
    let fresh = remember(&mut c, Some("s1"), "My dog is called Rex");
    assert!(!ids.contains(&&fresh), "{fresh} reused an id: {ids:?}");
}

// ------------------------------------------------------------- recall

#[test]
fn recall_puts_related_memories_into_the_turn_without_tools() {
    let (llm, d) = ollama_with(&[("tools_enabled", "false")]);
    let mut c = d.client();
    c.create("r");
    let cat = remember(&mut c, Some("r"), "My cat is called Miso");

    send(&mut c, "r", "What is my cat's name?", "q1").assert_done("stop");
    let r = llm.last_request();
    assert!(
        &r.last_user().contains("My cat is called Miso"),
        "the related turn's last user message holds the fact: {}",
        &r.last_user()
    );
    assert!(
        &r.last_user().ends_with("What is my cat's name?"),
        "the user's own words come last: {}",
        &r.last_user()
    );

    send(&mut c, "r", "How do I bake sourdough bread?", "q2").assert_done("stop");
    let r = llm.last_request();
    assert!(
        !r.body_contains("Miso"),
        "an unrelated turn carries no unrelated memory: {}",
        r.body
    );

    c.send(&json!({"action": "forget", "memory_id": cat}));
    c.expect_event("forgotten");
    send(&mut c, "r", "What is my cat's name again?", "q3").assert_done("stop");
    let r = llm.last_request();
    assert!(
        !&r.last_user().contains("Miso"),
        "a forgotten fact is not recalled: {}",
        &r.last_user()
    );

    // A global memory reaches every session.
    remember(&mut c, None, "My dog is called Rex");
    c.create("other");
    send(&mut c, "other", "What is my dog's name?", "q4").assert_done("stop");
    let r = llm.last_request();
    assert!(
        &r.last_user().contains("My dog is called Rex"),
        "a global fact reaches another session: {}",
        &r.last_user()
    );
    assert!(!r.body_contains("Miso"));
}

// ------------------------------------------------------------- tool loop

/// The checks shared by the Ollama and OpenAI `remember` tool turns.
#[track_caller]
fn check_remember_turn(c: &mut Client, llm: &FakeLlm, reply: &str) -> Vec<Recorded> {
    let t = send(c, "t", "Please remember that I like tea.", "t1");
    t.assert_done("stop");
    assert_eq!(t.terminal["id"], "t1", "{}", t.terminal);
    let tools = tool_events(&t);
    assert_eq!(tools.len(), 1, "one tool event: {:#?}", t.events);
    let ev = &tools[0];
    assert_has(
        ev,
        &json!({"event": "tool", "session_id": "t", "id": "t1", "tool": "remember",
                "arguments": {"text": "I like tea"}}),
    );
    let result = ev["result"]
        .as_str()
        .unwrap_or_else(|| panic!("the tool event's result is a string: {ev}"));
    assert!(!result.starts_with("error"), "{ev}");
    let pos = |pred: &dyn Fn(&Value) -> bool| t.events.iter().position(pred);
    let tool_at = pos(&|e| e["event"] == "tool").unwrap();
    let delta_at = pos(&|e| e["event"] == "response").unwrap();
    assert!(
        tool_at < delta_at,
        "the tool event comes before the text: {:#?}",
        t.events
    );
    assert_eq!(t.text, reply);

    let ms = memories(c, Some("t"), None);
    assert_eq!(texts(&ms), ["I like tea"], "{ms:?}");
    assert_eq!(ms[0]["scope"], "session");
    let id = ms[0]["memory_id"].as_str().unwrap();
    assert!(
        result.contains(id),
        "the result names the memory {id}: {result}"
    );

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "{}", llm.summary());
    for r in &reqs {
        let offered = offered_tools(r);
        for name in BUILTIN_TOOLS {
            assert!(
                offered.iter().any(|o| o == name),
                "the request offers {name}: {offered:?}"
            );
        }
        let t0 = &r.body["tools"][0];
        assert_eq!(t0["type"], "function", "{t0}");
        assert_eq!(t0["function"]["parameters"]["type"], "object", "{t0}");
    }
    let msgs = reqs[1].messages();
    let n = msgs.len();
    assert!(n >= 3, "{msgs:?}");
    assert_eq!(msgs[n - 3]["role"], "user", "{msgs:?}");
    assert!(msgs[n - 3]["content"]
        .as_str()
        .unwrap()
        .ends_with("Please remember that I like tea."));
    assert_eq!(msgs[n - 2]["role"], "assistant", "{msgs:?}");
    let call = &msgs[n - 2]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "remember", "{call}");
    assert_eq!(msgs[n - 1]["role"], "tool", "{msgs:?}");
    assert_eq!(msgs[n - 1]["content"], result, "{msgs:?}");

    let h = c.history("t");
    let roles: Vec<&str> = messages(&h)
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{h}");
    let hm = messages(&h);
    assert_eq!(hm[2]["content"], result, "{h}");
    assert_eq!(hm[3]["content"], reply, "{h}");
    reqs
}

#[test]
fn ollama_tool_call_remember_then_text() {
    let (llm, d) = ollama_with(&[]);
    llm.push(Reply::fixture(fixture("ollama-tool-remember.ndjson")));
    let mut c = d.client();
    c.create("t");
    let reqs = check_remember_turn(&mut c, &llm, OLLAMA_REPLY);
    let msgs = reqs[1].messages();
    let n = msgs.len();
    assert_eq!(
        msgs[n - 2]["tool_calls"][0]["function"]["arguments"],
        json!({"text": "I like tea"}),
        "Ollama gets the arguments back as an object: {}",
        msgs[n - 2]
    );
    assert_eq!(
        msgs[n - 1]["tool_name"],
        "remember",
        "Ollama matches results by tool_name: {}",
        msgs[n - 1]
    );
}

#[test]
fn openai_tool_call_fragments_remember_then_text() {
    let (llm, d) = openai_with(&[]);
    llm.push(Reply::fixture(fixture("openai-tool-remember.sse")));
    let mut c = d.client();
    c.create("t");
    let reqs = check_remember_turn(&mut c, &llm, OPENAI_REPLY);
    let msgs = reqs[1].messages();
    let n = msgs.len();
    let call = &msgs[n - 2]["tool_calls"][0];
    assert_eq!(call["id"], "call_tea1", "{call}");
    assert_eq!(call["type"], "function", "{call}");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or(""))
        .unwrap_or_else(|e| panic!("OpenAI arguments are a JSON string ({e}): {call}"));
    assert_eq!(args, json!({"text": "I like tea"}));
    assert_eq!(
        msgs[n - 1]["tool_call_id"],
        "call_tea1",
        "the result answers its call: {}",
        msgs[n - 1]
    );
}

#[test]
fn parallel_tool_calls_all_run_openai() {
    let (llm, d) = openai_with(&[]);
    llm.push(openai_calls(&[
        ("call_a", "remember", &["{\"text\":", "\"I like tea\"}"]),
        (
            "call_b",
            "remember",
            &["{\"text\":\"I live in Lyon\",", "\"scope\":\"global\"}"],
        ),
    ]));
    let mut c = d.client();
    c.create("p");
    let t = send(&mut c, "p", "Note these two things.", "p1");
    t.assert_done("stop");
    let tools = tool_events(&t);
    let args: Vec<&Value> = tools.iter().map(|e| &e["arguments"]).collect();
    assert_eq!(
        args,
        [
            &json!({"text": "I like tea"}),
            &json!({"text": "I live in Lyon", "scope": "global"})
        ],
        "both calls run, in order: {:#?}",
        t.events
    );
    assert!(tools.iter().all(|e| e["id"] == "p1"));
    let ms = memories(&mut c, Some("p"), None);
    let mut got: Vec<(String, String)> = ms
        .iter()
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_string(),
                m["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("I like tea".to_string(), "session".to_string()),
            ("I live in Lyon".to_string(), "global".to_string())
        ]
    );
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "{}", llm.summary());
    let msgs = reqs[1].messages();
    let n = msgs.len();
    assert_eq!(msgs[n - 3]["role"], "assistant");
    let ids: Vec<&Value> = msgs[n - 3]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&json!("call_a"), &json!("call_b")], "{}", msgs[n - 3]);
    assert_has(
        &msgs[n - 2],
        &json!({"role": "tool", "tool_call_id": "call_a"}),
    );
    assert_has(
        &msgs[n - 1],
        &json!({"role": "tool", "tool_call_id": "call_b"}),
    );
    let h = c.history("p");
    let roles: Vec<&str> = messages(&h)
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "tool", "assistant"],
        "{h}"
    );
}

#[test]
fn parallel_tool_calls_all_run_ollama() {
    let (llm, d) = ollama_with(&[]);
    llm.push(ollama_calls(&[
        ("remember", json!({"text": "I like tea"})),
        ("current_time", json!({})),
    ]));
    let mut c = d.client();
    c.create("p");
    let t = send(&mut c, "p", "Remember tea and tell me the time.", "p1");
    t.assert_done("stop");
    let tools = tool_events(&t);
    let names: Vec<&str> = tools
        .iter()
        .map(|e| e["tool"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["remember", "current_time"], "{:#?}", t.events);
    let time = &tools[1];
    assert!(
        time["result"]
            .as_str()
            .is_some_and(|r| !r.is_empty() && !r.starts_with("error")),
        "{time}"
    );
    assert_eq!(texts(&memories(&mut c, Some("p"), None)), ["I like tea"]);
    let r = llm.last_request();
    let tool_msgs: Vec<&Value> = r
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 2, "{}", r.body);
    assert_eq!(tool_msgs[0]["tool_name"], "remember");
    assert_eq!(tool_msgs[1]["tool_name"], "current_time");
}

#[test]
fn bad_tool_arguments_and_unknown_tools_go_back_as_errors() {
    let (llm, d) = openai_with(&[]);
    llm.push(openai_calls(&[
        ("call_bad", "remember", &["{\"text\": \"unterminated"]),
        ("call_none", "launch_rockets", &["{}"]),
        ("call_missing", "remember", &["{\"words\":\"tea\"}"]),
    ]));
    let mut c = d.client();
    c.create("b");
    let t = send(&mut c, "b", "Remember that I like tea.", "b1");
    t.assert_done("stop");
    assert_eq!(
        t.text, OPENAI_REPLY,
        "the turn still finishes with the text"
    );
    let tools = tool_events(&t);
    assert_eq!(tools.len(), 3, "{:#?}", t.events);
    for ev in &tools {
        assert!(
            ev["result"]
                .as_str()
                .is_some_and(|r| r.starts_with("error:")),
            "an error result for the model: {ev}"
        );
    }
    assert!(
        tools[1]["result"].as_str().unwrap().contains("remember"),
        "the unknown-tool error lists the tools: {}",
        tools[1]
    );
    assert!(
        memories(&mut c, Some("b"), None).is_empty(),
        "nothing was stored"
    );
    let r = llm.last_request();
    let results: Vec<(&str, &str)> = r
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or("?"),
                m["content"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(results.len(), 3, "{}", r.body);
    assert_eq!(results[0].0, "call_bad");
    for (id, text) in &results {
        assert!(text.starts_with("error:"), "{id}: {text}");
    }
    // The session is fine afterwards.
    send(&mut c, "b", "Hello again", "b2").assert_done("stop");
}

#[test]
fn max_tool_rounds_ends_the_turn_with_tool_limit() {
    let (llm, d) = ollama_with(&[("max_tool_rounds", "2")]);
    llm.set_default(ollama_calls(&[("current_time", json!({}))]));
    let mut c = d.client();
    c.create("loop");
    let t = send(&mut c, "loop", "What time is it?", "l1");
    t.assert_done("tool_limit");
    assert_eq!(t.terminal["id"], "l1");
    let n = tool_events(&t).len();
    assert_eq!(n, 2, "two rounds of tools ran: {:#?}", t.events);
    assert_eq!(
        llm.requests().len(),
        3,
        "two tool rounds, then the limit: {}",
        llm.summary()
    );
    // The session keeps working.
    llm.set_default(Reply::fixture(fixture("ollama-plain.ndjson")));
    let t = send(&mut c, "loop", "Thanks", "l2");
    t.assert_done("stop");
    assert_eq!(t.text, OLLAMA_REPLY);
}

#[test]
fn a_model_that_rejects_tools_is_asked_again_without_and_remembered() {
    let (llm, d) = ollama_with(&[]);
    llm.respond_with(|r| {
        r.body.get("tools").map(|_| {
            Reply::status(
                400,
                &[],
                r#"{"error":"registry.ollama.ai/library/gemma:2b does not support tools"}"#,
            )
        })
    });
    let mut c = d.client();
    c.create("g");
    let t = send(&mut c, "g", "Hello there", "g1");
    t.assert_done("stop");
    assert_eq!(t.text, OLLAMA_REPLY);
    assert!(t.of("error").is_empty(), "{:#?}", t.events);
    let reqs = llm.requests();
    let with: Vec<bool> = reqs.iter().map(|r| r.body.get("tools").is_some()).collect();
    assert_eq!(
        with,
        [true, false],
        "offered tools once, then asked without: {}",
        llm.summary()
    );
    let t = send(&mut c, "g", "And again", "g2");
    t.assert_done("stop");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3, "{}", llm.summary());
    assert!(
        reqs[2].body.get("tools").is_none(),
        "the next turn offers no tools (remembered): {}",
        reqs[2].body
    );
}

#[test]
fn models_without_tools_and_tools_disabled_offer_none() {
    for key in [
        ("models_without_tools", "[\"ollama/test-model\"]"),
        ("tools_enabled", "false"),
    ] {
        let (llm, d) = ollama_with(&[key]);
        let mut c = d.client();
        c.create("n");
        send(&mut c, "n", "Hello", "n1").assert_done("stop");
        let r = llm.last_request();
        assert_eq!(llm.requests().len(), 1, "{key:?}: {}", llm.summary());
        assert!(
            r.body.get("tools").is_none(),
            "{key:?}: no tools in the request: {}",
            r.body
        );
    }
    // A model not in the list is still offered them.
    let (llm, d) = ollama_with(&[("models_without_tools", "[\"ollama/other\"]")]);
    let mut c = d.client();
    c.create("n");
    send(&mut c, "n", "Hello", "n1").assert_done("stop");
    assert!(!offered_tools(&llm.last_request()).is_empty());
}

// ------------------------------------------------------------- skills and reminders

#[test]
fn read_skill_file_reads_inside_the_skill_and_refuses_escapes() {
    let llm = FakeLlm::ollama();
    let mut d = Daemon::builder().ollama(&llm).prepare();
    let skills = d.skills_dir();
    let skill = skills.join("notes-helper");
    fs::create_dir_all(skill.join("references")).unwrap();
    fs::write(
        skill.join("SKILL.md"),
        "---\nname: notes-helper\ndescription: Keeps tidy meeting notes. Use when someone asks for meeting minutes.\n---\n\n# Notes\n\nSee references/a.md for the template.\n",
    )
    .unwrap();
    let reference = "# Template\n\nDate, people, decisions, actions.\n";
    fs::write(skill.join("references/a.md"), reference).unwrap();
    let secret = d.dir().join("secret.txt");
    fs::write(&secret, "TOP-SECRET-CONTENT\n").unwrap();
    std::os::unix::fs::symlink(&secret, skill.join("references/link.md")).unwrap();
    d.launch();

    let secret_path = secret.to_string_lossy().to_string();
    llm.push(ollama_calls(&[
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": "references/a.md"}),
        ),
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": "../../etc/passwd"}),
        ),
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": "/etc/passwd"}),
        ),
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": secret_path}),
        ),
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": "references/link.md"}),
        ),
        (
            "read_skill_file",
            json!({"skill": "notes-helper", "path": "references/../../../secret.txt"}),
        ),
    ]));
    let mut c = d.client();
    c.create("k");
    let t = send(&mut c, "k", "Please look at the reference file.", "k1");
    t.assert_done("stop");
    let tools = tool_events(&t);
    assert_eq!(tools.len(), 6, "{:#?}", t.events);
    assert_eq!(
        tools[0]["result"], reference,
        "the reference file's text: {}",
        tools[0]
    );
    for ev in &tools[1..] {
        let result = ev["result"].as_str().unwrap_or("");
        assert!(result.starts_with("error:"), "an escape is refused: {ev}");
        assert!(
            !result.contains("root:") && !result.contains("TOP-SECRET"),
            "never the file: {ev}"
        );
    }
    let r = llm.last_request();
    assert!(r.body_contains("Date, people, decisions"), "{}", r.body);
    assert!(!r.body_contains("TOP-SECRET") && !r.body_contains("root:x:"));
}

#[test]
fn schedule_reminder_tool_creates_a_reminder() {
    let (llm, d) = ollama_with(&[]);
    llm.push(ollama_calls(&[(
        "schedule_reminder",
        json!({"message": "water the plants", "in_minutes": 30}),
    )]));
    let mut c = d.client();
    c.create("rem");
    let t = send(
        &mut c,
        "rem",
        "Remind me to water the plants in 30 minutes.",
        "s1",
    );
    t.assert_done("stop");
    let tools = tool_events(&t);
    assert_eq!(tools.len(), 1, "{:#?}", t.events);
    let result = tools[0]["result"].as_str().unwrap_or("");
    assert!(!result.starts_with("error"), "{}", tools[0]);
    let v = c.request(&json!({"action": "reminders", "session_id": "rem"}));
    assert_eq!(v["event"], "reminders", "{v}");
    let list = v["reminders"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_has(
        &list[0],
        &json!({"session_id": "rem", "message": "water the plants"}),
    );
    let id = list[0]["reminder_id"].as_str().unwrap();
    assert!(result.contains(id), "the result names {id}: {result}");
}

// ------------------------------------------------------------- compaction

#[test]
fn compaction_is_rare_and_every_request_fits_the_budget() {
    const TURNS: usize = 40;
    const BATCH: usize = 8;
    const BUDGET: usize = 600;
    let (llm, d) = ollama_with(&[
        ("context_tokens", "600"),
        ("reply_reserve_tokens", "100"),
        ("tools_enabled", "false"),
    ]);
    llm.set_default(ollama_stream(&["Noted, ", "thanks."], Some("stop")));
    llm.respond_with(|r| {
        is_summary_request(r).then(|| {
            ollama_stream(
                &["SUMMARY-XYZ: the user sent numbered notes."],
                Some("stop"),
            )
        })
    });
    let mut c = d.client();
    c.create("long");
    let mut compacted = Vec::new();
    let mut n = 0;
    while n < TURNS {
        let batch: Vec<usize> = (n..(n + BATCH).min(TURNS)).collect();
        for i in &batch {
            // ~100 characters.
            let msg = format!(
                "Note number {i:02}: the quick brown fox jumps over the lazy dog near the river bank today {i:02}."
            );
            c.send(&json!({"action": "send", "session_id": "long", "message": msg, "id": format!("c{i}")}));
        }
        for i in &batch {
            let t = c.turn_within("long", Duration::from_secs(10));
            t.assert_done("stop");
            assert_eq!(t.terminal["id"], format!("c{i}"), "{}", t.terminal);
            compacted.extend(t.of("compacted").into_iter().cloned());
        }
        n += batch.len();
    }

    let reqs = llm.requests();
    let summaries = reqs.iter().filter(|r| is_summary_request(r)).count();
    let turns: Vec<&Recorded> = reqs.iter().filter(|r| !is_summary_request(r)).collect();
    eprintln!(
        "compaction: {} compacted events, {summaries} summary requests, {} turn requests",
        compacted.len(),
        turns.len()
    );
    assert_eq!(turns.len(), TURNS, "{}", llm.summary());
    assert!(
        !compacted.is_empty(),
        "40 turns of ~100 characters in 500 tokens compact at least once"
    );
    for ev in &compacted {
        assert_eq!(ev["session_id"], "long", "{ev}");
        assert!(ev["messages"].as_u64().is_some_and(|m| m > 0), "{ev}");
    }
    assert_eq!(
        summaries,
        compacted.len(),
        "one summary request per compaction"
    );
    assert!(
        summaries <= TURNS / 5,
        "compaction is rare ({summaries} summaries in {TURNS} turns), not every turn"
    );
    let counts: Vec<u64> = compacted
        .iter()
        .map(|e| e["messages"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "each compaction covers more: {counts:?}"
    );

    // After the first compaction, turns carry the summary in the system
    // message (and the user's notes dropped from it are not all resent).
    let first = reqs.iter().position(is_summary_request).unwrap();
    let after: Vec<&Recorded> = reqs[first + 1..]
        .iter()
        .filter(|r| !is_summary_request(r))
        .collect();
    assert!(!after.is_empty());
    for r in &after {
        let sys = r.system();
        assert!(
            sys.contains(SUMMARY_MARK) && sys.contains("SUMMARY-XYZ"),
            "the summary is in the system message: {sys}"
        );
        assert!(!r.body_contains("Note number 00:"), "{}", r.body);
    }
    // The last turn still sees the previous one.
    let last = turns.last().unwrap();
    assert!(
        last.body_contains(&format!("Note number {:02}:", TURNS - 2)),
        "{}",
        last.body
    );

    // No request is over the budget, by the same kind of estimate.
    for r in &reqs {
        let content: usize = r
            .messages()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").len().div_ceil(4) + 4)
            .sum();
        assert!(
            content <= BUDGET,
            "a request's messages estimate {content} tokens > {BUDGET}: {}",
            r.body
        );
        let body = r.raw_body.len() / 4;
        assert!(
            body <= BUDGET + 100,
            "a request body of {} bytes (~{body} tokens) > {BUDGET} + slack",
            r.raw_body.len()
        );
    }

    // history still has every message.
    let h = c.request(&json!({"action": "history", "session_id": "long", "limit": 1000}));
    assert_eq!(h["total"], 2 * TURNS, "{h}");
    assert_eq!(messages(&h).len(), 2 * TURNS);
    assert!(messages(&h)[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("Note number 00:"));
}

#[test]
fn compaction_with_tools_keeps_requests_within_the_context() {
    // The same as above with the built-in tools offered: their schemas are
    // part of what the model must hold in its context window.
    const BUDGET: usize = 600;
    let (llm, d) = ollama_with(&[("context_tokens", "600"), ("reply_reserve_tokens", "100")]);
    llm.set_default(ollama_stream(&["Noted."], Some("stop")));
    let mut c = d.client();
    c.create("long");
    for i in 0..16 {
        let msg = format!(
            "Note number {i:02}: the quick brown fox jumps over the lazy dog near the river bank today {i:02}."
        );
        send(&mut c, "long", &msg, &format!("w{i}")).assert_done("stop");
    }
    let sizes: Vec<usize> = llm.requests().iter().map(|r| r.raw_body.len()).collect();
    let tools_bytes = serde_json::to_string(&llm.last_request().body["tools"])
        .unwrap()
        .len();
    eprintln!(
        "request body sizes with tools: {sizes:?}; the tools array alone: {tools_bytes} bytes"
    );
    for r in llm.requests() {
        assert!(
            r.raw_body.len() / 4 <= BUDGET + 100,
            "a request of {} bytes (~{} tokens, of which the tools array {tools_bytes} bytes) \
             with context_tokens = {BUDGET}: the tool schemas are not counted in the budget",
            r.raw_body.len(),
            r.raw_body.len() / 4
        );
    }
}

// ------------------------------------------------------------- real model

/// Not 8089 (a developer's) nor 18089/18090 (the other real-model tests).
const REAL_PORT: u16 = 18091;

#[test]
fn real_model_gets_a_remembered_fact_and_answers() {
    let Some(server) = RealModel::start("real_model_gets_a_remembered_fact_and_answers", REAL_PORT)
    else {
        return;
    };

    let d = server.daemon().start();
    let mut c = d.client();
    c.create("real");
    remember(&mut c, Some("real"), "My cat is called Miso");
    c.send(&json!({"action": "send", "session_id": "real", "message": "What is my cat called?"}));
    let t = c.turn_within("real", Duration::from_secs(120));
    let reason = t.finish_reason();
    assert!(
        t.terminal["event"] == "response" && (reason == "stop" || reason == "length"),
        "expected a reply ending with stop or length, got: {}\n{:#?}",
        t.terminal,
        t.events
    );
    assert!(!t.text.trim().is_empty(), "the reply is not empty");
    eprintln!("SmolLM2 answered: {:?}", t.text);
    assert!(
        d.log().contains("session real: recalled 1 memories"),
        "the daemon recalled the fact into the turn's context (debug log)"
    );
    assert_eq!(
        texts(&memories(&mut c, Some("real"), None)),
        ["My cat is called Miso"]
    );
    drop(server);
}

// ------------------------------------------------------- skill scripts

/// A skill with `scripts/hello.sh`, installed into a prepared daemon.
fn daemon_with_script_skill(llm: &FakeLlm, allow: bool) -> Daemon {
    let mut d = Daemon::builder()
        .ollama(llm)
        .set("allow_skill_scripts", if allow { "true" } else { "false" })
        .prepare();
    let skill = d.skills_dir().join("greeter");
    fs::create_dir_all(skill.join("scripts")).unwrap();
    fs::write(
        skill.join("SKILL.md"),
        "---\nname: greeter\ndescription: Greets people by name with a script.\n---\n\nRun scripts/hello.sh NAME.\n",
    )
    .unwrap();
    fs::write(
        skill.join("scripts/hello.sh"),
        "echo \"hello $1 from $(basename \"$PWD\")\"\n",
    )
    .unwrap();
    d.launch();
    d
}

#[test]
fn skill_scripts_run_only_when_allowed_in_the_skill_folder() {
    let call = || {
        ollama_calls(&[(
            "run_skill_script",
            json!({"skill": "greeter", "path": "scripts/hello.sh", "args": ["Ada; rm -rf /"]}),
        )])
    };

    // Off (the default): not offered, and refused if called anyway.
    let llm = FakeLlm::ollama();
    let d = daemon_with_script_skill(&llm, false);
    llm.push(call());
    let mut c = d.client();
    c.create("g");
    let t = send(&mut c, "g", "greet Ada", "g1");
    t.assert_done("stop");
    let offered: Vec<String> = llm.requests()[0].body["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !offered.contains(&"run_skill_script".to_string()),
        "{offered:?}"
    );
    let result = tool_events(&t)[0]["result"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        result.starts_with("error:") && result.contains("allow_skill_scripts"),
        "{result}"
    );

    // On: offered, run without a shell (the argument arrives verbatim) in
    // the skill's folder.
    let llm = FakeLlm::ollama();
    let d = daemon_with_script_skill(&llm, true);
    llm.push(call());
    let mut c = d.client();
    c.create("g");
    let t = send(&mut c, "g", "greet Ada", "g2");
    t.assert_done("stop");
    let result = tool_events(&t)[0]["result"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(result.starts_with("exit code 0"), "{result}");
    assert!(
        result.contains("hello Ada; rm -rf / from greeter"),
        "{result}"
    );
}
