//! Proactivity over the socket: keepalives, reminders, external events
//! (`notify`) and heartbeats, against the real binary and a fake provider.
//!
//! Covers:
//! - keepalive: `{"event":"keepalive","ts":...}` every
//!   `proactive_interval_secs` on a connection with no session at all;
//! - reminders: `remind` answers `scheduled`; a reminder due in 1 s reaches
//!   a subscribed connection as `proactive` kind `reminder` (with `ts`) and
//!   is in history with role `proactive`, but not on an unsubscribed
//!   connection; `reminders` lists it (per session and across sessions)
//!   before it fires and not after; `unremind` stops it and an unknown id is
//!   `not_found`; an `at` in the past or unparsable is `invalid_request`, a
//!   future `at` (with an offset) is accepted; an unknown session is
//!   `session_not_found`; a reminder due while nobody is subscribed is
//!   delivered once, to the first client that subscribes to or creates the
//!   session, also after a restart, and never again; reminders survive a
//!   restart, and one that fell due while the daemon was down fires at
//!   start-up saying how late it is; `repeat_secs` repeats until `unremind`;
//! - notify: `silent` (history role `event` with its source, no model
//!   call), `next_turn` (the default: in the next turn's request with its
//!   source, not in the one after), `immediate` (a turn whose reply comes as
//!   `proactive` kind `event`, no `response` events), the per-source,
//!   per-session rate limit (`rate_limited`, nothing stored);
//! - heartbeat: `heartbeat_set`; a `HEARTBEAT_OK` reply sends nothing and
//!   keeps nothing in history, and the heartbeat request carries no earlier
//!   history; a real reply arrives as `proactive` kind `heartbeat` without
//!   `response` events and is stored with role `proactive` (its prompt is
//!   not); a `HEARTBEAT.md` with only headings and comments makes no model
//!   call (and one with a task does); `every_secs: 0` turns it off; the
//!   setting survives a restart; a heartbeat waits for a running user turn.
//!
//! Timing: intervals are 1 s; every wait is a bounded safety net, and the
//! "nothing happens" checks watch for a few seconds.

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a fired reminder still listed after its event is a daemon bug.
const FIRED_STILL_LISTED: &str = "a one-shot reminder whose proactive event a client already \
     received must not be listed any more (the daemon sends the event before it drops the \
     reminder from its store)";

/// How long "nothing arrives" checks watch.
const QUIET: Duration = Duration::from_millis(2500);

// ---------------------------------------------------------------- helpers

/// A daemon whose default provider is `llm` (OpenAI kind), with `keys` set.
fn daemon(llm: &FakeLlm, keys: &[(&str, &str)]) -> Daemon {
    let mut b = Daemon::builder().openai(llm);
    for (k, v) in keys {
        b = b.set(k, v);
    }
    b.start()
}

/// A fake provider whose every reply is `text` (one SSE stream).
fn replying(text: &[&str]) -> FakeLlm {
    FakeLlm::start(openai_stream(text, Some("stop")))
}

/// Every event that arrives on `c` within `dur`.
fn events_for(c: &mut Client, dur: Duration) -> Vec<Value> {
    let deadline = Instant::now() + dur;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        match c.try_recv(left) {
            Some(v) => out.push(v),
            None => return out,
        }
    }
}

/// Receives until a `proactive` event of `session`; returns the events
/// skipped on the way and the proactive event.
#[track_caller]
fn next_proactive(c: &mut Client, session: &str) -> (Vec<Value>, Value) {
    c.recv_until(|v| v["event"] == "proactive" && v["session_id"] == session)
}

/// Asserts the next event is the answer `pong`: nothing (no proactive
/// message in particular) was queued for this connection before it.
#[track_caller]
fn assert_nothing_queued(c: &mut Client, why: &str) {
    c.send(&json!({"action": "ping", "id": "probe"}));
    let v = c.recv();
    assert!(
        v["event"] == "pong" && v["id"] == "probe",
        "{why}: expected nothing before the pong, got {v}\n{}",
        c.recent()
    );
}

/// Subscribes and asserts the `subscribed` answer.
#[track_caller]
fn subscribe(c: &mut Client, session: &str) {
    let v = c.request(&json!({"action": "subscribe", "session_id": session}));
    assert_has(&v, &json!({"event": "subscribed", "session_id": session}));
}

/// `remind` with extra fields; returns the answer.
#[track_caller]
fn remind(c: &mut Client, session: &str, message: &str, extra: Value) -> Value {
    let mut req = json!({"action": "remind", "session_id": session, "message": message});
    for (k, v) in extra.as_object().expect("extra must be an object") {
        req[k] = v.clone();
    }
    c.send(&req);
    c.recv_until(|v| v["event"] == "scheduled" || v["event"] == "error")
        .1
}

/// `remind` that must succeed; returns its `reminder_id`.
#[track_caller]
fn remind_ok(c: &mut Client, session: &str, message: &str, extra: Value) -> String {
    let v = remind(c, session, message, extra);
    assert_has(&v, &json!({"event": "scheduled", "session_id": session}));
    assert!(
        v["due"].as_str().is_some_and(is_rfc3339_utc),
        "`due` should be an RFC 3339 UTC time: {v}"
    );
    v["reminder_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("`scheduled` without a reminder_id: {v}"))
        .to_string()
}

/// The `reminders` array of a `reminders` answer (`session` optional).
#[track_caller]
fn reminders(c: &mut Client, session: Option<&str>) -> Vec<Value> {
    let req = match session {
        Some(s) => json!({"action": "reminders", "session_id": s}),
        None => json!({"action": "reminders"}),
    };
    c.send(&req);
    let v = c.expect_event("reminders");
    v["reminders"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("`reminders` is not an array: {v}"))
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|r| r["reminder_id"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `heartbeat` and its `heartbeat_set` answer.
#[track_caller]
fn heartbeat(c: &mut Client, session: &str, every_secs: u64, prompt: Option<&str>) {
    let mut req = json!({"action": "heartbeat", "session_id": session, "every_secs": every_secs});
    if let Some(p) = prompt {
        req["prompt"] = json!(p);
    }
    c.send(&req);
    let v = c.expect_event("heartbeat_set");
    assert_has(
        &v,
        &json!({"event": "heartbeat_set", "session_id": session, "every_secs": every_secs}),
    );
}

/// `notify` and its answer (`notified` or an error).
#[track_caller]
fn notify(
    c: &mut Client,
    session: &str,
    source: &str,
    message: &str,
    delivery: Option<&str>,
) -> Value {
    let mut req =
        json!({"action": "notify", "session_id": session, "source": source, "message": message});
    if let Some(d) = delivery {
        req["delivery"] = json!(d);
    }
    c.send(&req);
    c.recv_until(|v| v["event"] == "notified" || v["event"] == "error")
        .1
}

#[track_caller]
fn notify_ok(c: &mut Client, session: &str, source: &str, message: &str, delivery: Option<&str>) {
    let v = notify(c, session, source, message, delivery);
    assert_has(&v, &json!({"event": "notified", "session_id": session}));
}

/// The history messages of `session` with this role.
#[track_caller]
fn with_role(c: &mut Client, session: &str, role: &str) -> Vec<Value> {
    let h = c.history(session);
    messages(&h)
        .iter()
        .filter(|m| m["role"] == role)
        .cloned()
        .collect()
}

/// Waits (bounded) until `session`'s history holds a `proactive` message.
#[track_caller]
fn wait_proactive_in_history(c: &mut Client, session: &str) -> Value {
    wait_for(
        Duration::from_secs(10),
        &format!("a proactive message in the history of {session}"),
        || with_role(c, session, "proactive").pop(),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[track_caller]
fn assert_no_response_events(events: &[Value], what: &str) {
    let streamed: Vec<&Value> = events.iter().filter(|e| e["event"] == "response").collect();
    assert!(
        streamed.is_empty(),
        "{what} must not stream `response` events, got: {streamed:#?}"
    );
}

// -------------------------------------------------------------- keepalive

#[test]
fn keepalive_arrives_every_interval_on_any_connection() {
    let d = Daemon::builder()
        .set("proactive_interval_secs", "1")
        .start();
    let mut c = d.client();
    for n in 1..=2 {
        let v = c.recv_within(Duration::from_secs(5));
        assert_eq!(v["event"], "keepalive", "keepalive #{n}: {v}");
        assert!(
            v["ts"].as_str().is_some_and(is_rfc3339_utc),
            "keepalive `ts` should be RFC 3339 UTC: {v}"
        );
    }
}

// -------------------------------------------------------------- reminders

#[test]
fn reminder_in_one_second_reaches_a_subscribed_connection_and_history() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut other = d.client(); // connected, subscribed to nothing
    c.create("work");
    let id = remind_ok(&mut c, "work", "stretch your legs", json!({"in_secs": 1}));
    let (_, p) = next_proactive(&mut c, "work");
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "work", "kind": "reminder"}),
    );
    let text = p["message"].as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("stretch your legs"),
        "the proactive message should carry the reminder's text: {p}"
    );
    assert!(
        p["ts"].as_str().is_some_and(is_rfc3339_utc),
        "a proactive event carries `ts` (RFC 3339 UTC): {p}"
    );
    let stored = with_role(&mut c, "work", "proactive");
    assert_eq!(
        stored.len(),
        1,
        "exactly one proactive message in history: {stored:#?}"
    );
    assert_eq!(stored[0]["content"], text, "history keeps the same text");
    assert_nothing_queued(&mut other, "a connection subscribed to nothing");
    assert!(
        !ids(&reminders(&mut c, None)).contains(&id),
        "{FIRED_STILL_LISTED}"
    );
}

#[test]
fn reminders_lists_pending_ones_and_not_fired_ones() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("work");
    c.create("home");
    let soon = remind_ok(&mut c, "work", "water the plants", json!({"in_secs": 2}));
    let far = remind_ok(&mut c, "home", "renew passport", json!({"in_secs": 3600}));
    assert_ne!(soon, far, "reminder ids are unique");

    let work = reminders(&mut c, Some("work"));
    assert_eq!(
        ids(&work),
        vec![soon.clone()],
        "work's reminders: {work:#?}"
    );
    assert_has(
        &work[0],
        &json!({"reminder_id": soon, "session_id": "work", "message": "water the plants"}),
    );
    assert!(
        work[0]["due"].as_str().is_some_and(is_rfc3339_utc),
        "`due` is RFC 3339 UTC: {work:#?}"
    );
    let mut all = ids(&reminders(&mut c, None));
    all.sort();
    let mut expected = vec![soon.clone(), far.clone()];
    expected.sort();
    assert_eq!(
        all, expected,
        "without session_id: every session's reminders"
    );

    next_proactive(&mut c, "work");
    assert!(
        reminders(&mut c, Some("work")).is_empty(),
        "{FIRED_STILL_LISTED}"
    );
    assert_eq!(
        ids(&reminders(&mut c, None)),
        [far],
        "the other one stays; {FIRED_STILL_LISTED}"
    );
}

#[test]
fn unremind_stops_a_reminder_and_unknown_ids_are_not_found() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("work");
    let id = remind_ok(&mut c, "work", "never shown", json!({"in_secs": 2}));
    let v = c.request(&json!({"action": "unremind", "reminder_id": id}));
    assert_has(&v, &json!({"event": "unscheduled", "reminder_id": id}));
    assert!(reminders(&mut c, Some("work")).is_empty());

    let seen = events_for(&mut c, Duration::from_millis(3500));
    let proactive: Vec<&Value> = seen.iter().filter(|e| e["event"] == "proactive").collect();
    assert!(
        proactive.is_empty(),
        "a cancelled reminder must not fire: {proactive:#?}"
    );
    assert!(with_role(&mut c, "work", "proactive").is_empty());

    let again = c.request(&json!({"action": "unremind", "reminder_id": id}));
    assert_error(&again, "not_found");
    let unknown = c.request(&json!({"action": "unremind", "reminder_id": "r-no-such"}));
    assert_error(&unknown, "not_found");
}

#[test]
fn remind_rejects_past_or_unparsable_at_and_unknown_sessions() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("work");
    let past = remind(
        &mut c,
        "work",
        "too late",
        json!({"at": "2020-01-01T00:00:00Z"}),
    );
    assert_error(&past, "invalid_request");
    let garbage = remind(&mut c, "work", "when?", json!({"at": "next tuesday"}));
    assert_error(&garbage, "invalid_request");
    let unknown = remind(&mut c, "nobody", "hello", json!({"in_secs": 60}));
    assert_error(&unknown, "session_not_found");
    assert!(
        reminders(&mut c, None).is_empty(),
        "rejected reminders are not stored"
    );

    // A future `at`, with an offset, is accepted and normalized to UTC.
    let v = remind(
        &mut c,
        "work",
        "far future",
        json!({"at": "2999-01-01T01:00:00+01:00"}),
    );
    assert_has(
        &v,
        &json!({"event": "scheduled", "session_id": "work", "due": "2999-01-01T00:00:00Z"}),
    );
}

#[test]
fn reminder_due_while_nobody_is_subscribed_is_delivered_once() {
    let mut d = Daemon::start();
    let mut a = d.client();
    // p1: delivered on subscribe; p2: on create; p3: after a restart.
    for s in ["p1", "p2", "p3"] {
        a.create(s);
        let v = a.request(&json!({"action": "unsubscribe", "session_id": s}));
        assert_has(&v, &json!({"event": "unsubscribed", "session_id": s}));
        remind_ok(
            &mut a,
            s,
            &format!("pending for {s}"),
            json!({"in_secs": 1}),
        );
    }
    let mut watcher = d.client(); // subscribed to nothing; reads history
    for s in ["p1", "p2", "p3"] {
        wait_proactive_in_history(&mut watcher, s);
    }
    assert_nothing_queued(&mut watcher, "a connection that only reads history");
    assert_nothing_queued(&mut a, "the unsubscribed creator");

    // The first subscriber gets it at once, after its answer.
    let mut b = d.client();
    b.send(&json!({"action": "subscribe", "session_id": "p1"}));
    assert_has(
        &b.recv(),
        &json!({"event": "subscribed", "session_id": "p1"}),
    );
    let p = b.recv();
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "p1", "kind": "reminder"}),
    );
    assert!(p["message"]
        .as_str()
        .is_some_and(|m| m.contains("pending for p1")));
    assert_nothing_queued(&mut b, "the first subscriber got it once");

    // Creating (resuming) the session delivers it too.
    let mut e = d.client();
    e.send(&json!({"action": "create", "session_id": "p2"}));
    assert_has(&e.recv(), &json!({"event": "created", "session_id": "p2"}));
    let p = e.recv();
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "p2", "kind": "reminder"}),
    );
    assert_nothing_queued(&mut e, "the creator got it once");

    // A second subscriber does not get it again.
    let mut c2 = d.client();
    subscribe(&mut c2, "p1");
    c2.create("p2");
    assert_nothing_queued(&mut c2, "a second subscriber");

    drop((a, b, e, c2, watcher));
    d.restart();

    let mut f = d.client();
    subscribe(&mut f, "p1");
    subscribe(&mut f, "p2");
    assert_nothing_queued(&mut f, "after a restart, delivered ones stay delivered");
    // The pending mark of p3 survived the restart.
    f.send(&json!({"action": "subscribe", "session_id": "p3"}));
    assert_has(
        &f.recv(),
        &json!({"event": "subscribed", "session_id": "p3"}),
    );
    let p = f.recv();
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "p3", "kind": "reminder"}),
    );
    let mut g = d.client();
    subscribe(&mut g, "p3");
    assert_nothing_queued(&mut g, "p3 was delivered once");
    assert_eq!(with_role(&mut g, "p3", "proactive").len(), 1, "stored once");
}

#[test]
fn reminders_survive_a_restart() {
    let mut d = Daemon::start();
    let mut c = d.client();
    c.create("persist");
    let far = remind_ok(&mut c, "persist", "next month", json!({"in_secs": 3600}));
    let far_due = reminders(&mut c, Some("persist"))[0]["due"].clone();
    remind_ok(
        &mut c,
        "persist",
        "right after the restart",
        json!({"in_secs": 3}),
    );
    drop(c);
    d.restart();

    let mut c = d.client();
    subscribe(&mut c, "persist");
    // Fired while down (then kept for us) or after start-up: either way it
    // reaches the first subscriber.
    let (_, p) = next_proactive(&mut c, "persist");
    assert_has(&p, &json!({"kind": "reminder"}));
    assert!(
        p["message"]
            .as_str()
            .is_some_and(|m| m.contains("right after the restart")),
        "{p}"
    );
    let left = reminders(&mut c, Some("persist"));
    assert_eq!(
        ids(&left),
        [far],
        "only the far one is still pending; {FIRED_STILL_LISTED}: {left:#?}"
    );
    assert_eq!(left[0]["due"], far_due, "with the same due time");
    assert_eq!(left[0]["message"], "next month");
}

#[test]
fn reminder_due_during_downtime_fires_at_start_up_saying_how_late() {
    let mut d = Daemon::start();
    let mut c = d.client();
    c.create("late");
    drop(c);
    let status = d.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    // Written as the daemon writes it (src/reminders.rs): due in epoch secs.
    let now = unix_now();
    let lines = [
        json!({"reminder_id": "r1000", "session_id": "late", "message": "take the pills", "due": now - 150}),
        json!({"reminder_id": "r2000", "session_id": "late", "message": "later on", "due": now + 3600}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let state = d.data_dir().join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("reminders.jsonl"), text).unwrap();
    d.launch();

    let mut c = d.client();
    subscribe(&mut c, "late");
    let (_, p) = next_proactive(&mut c, "late");
    assert_has(&p, &json!({"kind": "reminder", "session_id": "late"}));
    let m = p["message"].as_str().unwrap_or_default();
    assert!(m.contains("take the pills"), "{p}");
    assert!(
        m.contains("late") && m.contains("2 min"),
        "a reminder 150 s overdue should say how late it is (2 min): {p}"
    );
    assert_eq!(
        ids(&reminders(&mut c, None)),
        ["r2000"],
        "the fired one is gone, the future one stays; {FIRED_STILL_LISTED}"
    );
}

#[test]
fn repeating_reminder_fires_again_until_unremind() {
    let d = Daemon::start();
    let mut c = d.client();
    c.create("rep");
    let id = remind_ok(
        &mut c,
        "rep",
        "drink water",
        json!({"in_secs": 1, "repeat_secs": 1}),
    );
    for n in 1..=2 {
        let (_, p) = next_proactive(&mut c, "rep");
        assert!(
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("drink water")),
            "repeat #{n}: {p}"
        );
    }
    assert_eq!(
        ids(&reminders(&mut c, Some("rep"))),
        vec![id.clone()],
        "a repeating reminder stays listed"
    );
    c.send(&json!({"action": "unremind", "reminder_id": id}));
    c.expect_event("unscheduled");
    // One may have been in flight while we asked; after that, silence.
    events_for(&mut c, Duration::from_millis(300));
    let seen = events_for(&mut c, QUIET);
    assert!(
        !seen.iter().any(|e| e["event"] == "proactive"),
        "no more repeats after unremind: {seen:#?}"
    );
}

// ----------------------------------------------------------------- notify

#[test]
fn notify_silent_only_lands_in_history() {
    let llm = FakeLlm::openai();
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("ev");
    notify_ok(
        &mut c,
        "ev",
        "backup",
        "nightly backup finished",
        Some("silent"),
    );
    let events = with_role(&mut c, "ev", "event");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_has(
        &events[0],
        &json!({"role": "event", "content": "nightly backup finished", "source": "backup"}),
    );
    let seen = events_for(&mut c, Duration::from_millis(800));
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "proactive" || e["event"] == "response"),
        "a silent event sends nothing: {seen:#?}"
    );
    assert!(
        llm.requests().is_empty(),
        "a silent event makes no model call:\n{}",
        llm.summary()
    );

    let unknown = notify(&mut c, "nobody", "backup", "x", Some("silent"));
    assert_error(&unknown, "session_not_found");
    let bad = notify(&mut c, "ev", "backup", "x", Some("loud"));
    assert_error(&bad, "invalid_request");
}

#[test]
fn notify_next_turn_lands_in_the_next_turn_only() {
    let llm = FakeLlm::openai();
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("nt");
    notify_ok(
        &mut c,
        "nt",
        "disk-monitor",
        "/home is 95% full",
        Some("next_turn"),
    );
    assert_nothing_queued(&mut c, "next_turn sends nothing now");
    assert!(
        llm.requests().is_empty(),
        "next_turn starts no turn:\n{}",
        llm.summary()
    );

    c.send_turn("nt", "hello").assert_done("stop");
    let r = llm.last_request();
    assert!(
        r.body_contains("/home is 95% full") && r.body_contains("disk-monitor"),
        "the next turn's request should carry the event and its source: {}",
        r.body
    );

    // Without `delivery`, next_turn is the default.
    notify_ok(&mut c, "nt", "mail", "MAIL-42 from Bob", None);
    c.send_turn("nt", "again").assert_done("stop");
    let r = llm.last_request();
    assert!(
        !r.body_contains("/home is 95% full"),
        "an event goes into one turn only: {}",
        r.body
    );
    assert!(
        r.body_contains("MAIL-42 from Bob") && r.body_contains("mail"),
        "a notify without delivery is next_turn: {}",
        r.body
    );

    c.send_turn("nt", "third").assert_done("stop");
    let r = llm.last_request();
    assert!(
        !r.body_contains("MAIL-42") && !r.body_contains("95% full"),
        "no event in a later turn: {}",
        r.body
    );
    let stored = with_role(&mut c, "nt", "event");
    assert_eq!(stored.len(), 2, "both events are in history: {stored:#?}");
    assert_eq!(stored[0]["source"], "disk-monitor");
}

#[test]
fn notify_immediate_runs_a_turn_whose_reply_is_proactive() {
    let llm = replying(&["Heads up: ", "the disk ", "is nearly full."]);
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("imm");
    notify_ok(
        &mut c,
        "imm",
        "disk-monitor",
        "/ is 97% full",
        Some("immediate"),
    );
    let (skipped, p) = next_proactive(&mut c, "imm");
    assert_no_response_events(&skipped, "an immediate event's turn");
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "imm", "kind": "event",
                "message": "Heads up: the disk is nearly full."}),
    );
    let r = llm.wait_requests(1).remove(0);
    assert!(
        r.body_contains("/ is 97% full") && r.body_contains("disk-monitor"),
        "the model is told the event and its source: {}",
        r.body
    );
    let h = c.history("imm");
    let roles: Vec<String> = roles_and_contents(&h).into_iter().map(|(r, _)| r).collect();
    assert_eq!(roles, ["event", "proactive"], "{h}");
}

#[test]
fn notify_is_rate_limited_per_source_and_session() {
    let d = Daemon::builder().set("notify_rate_per_min", "2").start();
    let mut c = d.client();
    c.create("rl");
    c.create("rl2");
    notify_ok(&mut c, "rl", "spam", "one", Some("silent"));
    notify_ok(&mut c, "rl", "spam", "two", Some("silent"));
    let third = notify(&mut c, "rl", "spam", "three", Some("silent"));
    assert_error(&third, "rate_limited");
    let contents: Vec<String> = with_role(&mut c, "rl", "event")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        contents,
        ["one", "two"],
        "a rate-limited event is not stored"
    );
    notify_ok(&mut c, "rl", "other-source", "four", Some("silent"));
    notify_ok(&mut c, "rl2", "spam", "five", Some("silent"));
    assert_eq!(with_role(&mut c, "rl", "event").len(), 3);
}

// -------------------------------------------------------------- heartbeat

#[test]
fn heartbeat_ok_sends_nothing_keeps_nothing_and_sees_no_history() {
    let llm = replying(&["HEARTBEAT_OK"]);
    llm.push(openai_stream(&["Noted, ", "pineapple."], Some("stop")));
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("hb");
    c.send_turn("hb", "The secret word is PINEAPPLE")
        .assert_done("stop");
    heartbeat(&mut c, "hb", 1, Some("HB-PROMPT: check the todo list"));

    let r = llm.wait_requests(2)[1].clone();
    assert!(
        r.body_contains("HB-PROMPT"),
        "a heartbeat request: {}",
        r.body
    );
    assert!(
        !r.body_contains("PINEAPPLE") && !r.body_contains("Noted, pineapple"),
        "a heartbeat carries no earlier history: {}",
        r.body
    );
    let seen = events_for(&mut c, QUIET);
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "proactive" || e["event"] == "response"),
        "HEARTBEAT_OK sends nothing: {seen:#?}"
    );
    heartbeat(&mut c, "hb", 0, None);
    let h = c.history("hb");
    let roles: Vec<String> = roles_and_contents(&h).into_iter().map(|(r, _)| r).collect();
    assert_eq!(roles, ["user", "assistant"], "no heartbeat entry: {h}");
    let text = h.to_string();
    assert!(
        !text.contains("HB-PROMPT") && !text.contains("HEARTBEAT_OK"),
        "{h}"
    );
}

#[test]
fn heartbeat_with_something_to_say_arrives_as_proactive() {
    let llm = replying(&["Your train ", "leaves in ", "20 minutes."]);
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("hb");
    heartbeat(&mut c, "hb", 1, Some("HB-PROMPT-2: anything due?"));
    let (skipped, p) = next_proactive(&mut c, "hb");
    assert_no_response_events(&skipped, "a heartbeat turn");
    assert_has(
        &p,
        &json!({"event": "proactive", "session_id": "hb", "kind": "heartbeat",
                "message": "Your train leaves in 20 minutes."}),
    );
    assert!(p["ts"].as_str().is_some_and(is_rfc3339_utc), "{p}");
    heartbeat(&mut c, "hb", 0, None);
    let h = c.history("hb");
    let msgs = messages(&h);
    assert!(
        msgs.iter().all(|m| m["role"] == "proactive"),
        "only the heartbeat's finding is stored: {h}"
    );
    assert!(
        msgs.iter()
            .any(|m| m["content"] == "Your train leaves in 20 minutes."),
        "{h}"
    );
    assert!(
        !h.to_string().contains("HB-PROMPT-2"),
        "the prompt is not stored: {h}"
    );
}

#[test]
fn heartbeat_file_without_tasks_makes_no_model_call() {
    let llm = replying(&["HEARTBEAT_OK"]);
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("idle");
    let file = d.session_dir("idle").join("HEARTBEAT.md");
    fs::write(
        &file,
        "# Heartbeat\n\n## Tasks\n<!-- add tasks here, like:\n- check the build -->\n\n### Later\n",
    )
    .unwrap();
    heartbeat(&mut c, "idle", 1, None);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        llm.requests().is_empty(),
        "an idle HEARTBEAT.md must cost no model call:\n{}",
        llm.summary()
    );

    // The same heartbeat with a task in the file does call the model.
    fs::write(&file, "# Heartbeat\n- HBTASK: check the build\n").unwrap();
    let r = llm.wait_requests(1)[0].clone();
    assert!(
        r.body_contains("HBTASK"),
        "the file is the prompt: {}",
        r.body
    );
    heartbeat(&mut c, "idle", 0, None);
}

#[test]
fn heartbeat_ok_in_a_short_sentence_is_dropped_too() {
    let llm = replying(&["All quiet ", "today. ", "HEARTBEAT_OK"]);
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("hb");
    heartbeat(&mut c, "hb", 1, Some("HB-SENTENCE"));
    llm.wait_requests(2);
    let seen = events_for(&mut c, Duration::from_millis(1000));
    assert!(
        !seen.iter().any(|e| e["event"] == "proactive"),
        "HEARTBEAT_OK wrapped in a short sentence never reaches the user: {seen:#?}"
    );
    heartbeat(&mut c, "hb", 0, None);
    assert!(messages(&c.history("hb")).is_empty(), "nothing stored");
}

#[test]
fn heartbeat_every_zero_turns_it_off() {
    let llm = replying(&["HEARTBEAT_OK"]);
    let d = daemon(
        &llm,
        &[("heartbeat_prompt", "\"CFG-HB-PROMPT: look around\"")],
    );
    let mut c = d.client();
    c.create("off");
    heartbeat(&mut c, "off", 1, None);
    let r = llm.wait_requests(1)[0].clone();
    assert!(
        r.body_contains("CFG-HB-PROMPT"),
        "without a prompt or HEARTBEAT.md, the config's heartbeat_prompt is used: {}",
        r.body
    );
    heartbeat(&mut c, "off", 0, None);
    // A heartbeat queued just before may still run.
    std::thread::sleep(Duration::from_millis(500));
    let n = llm.requests().len();
    std::thread::sleep(QUIET);
    assert_eq!(
        llm.requests().len(),
        n,
        "no heartbeat after every_secs 0:\n{}",
        llm.summary()
    );
}

#[test]
fn heartbeat_setting_survives_a_restart() {
    let llm = replying(&["HEARTBEAT_OK"]);
    let mut d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("keep");
    heartbeat(&mut c, "keep", 1, Some("HB-KEEP"));
    drop(c);
    d.restart();
    let n = llm.requests().len();
    let r = llm.wait_requests(n + 1)[n].clone();
    assert!(
        r.body_contains("HB-KEEP"),
        "the stored heartbeat runs again after a restart, with its prompt: {}",
        r.body
    );
}

#[test]
fn heartbeat_waits_for_a_running_user_turn() {
    const TOKENS: [&str; 8] = ["a ", "b ", "c ", "d ", "e ", "f ", "g ", "h"];
    let llm = replying(&["HEARTBEAT_OK"]);
    llm.push(openai_stream(&TOKENS, Some("stop")).gap(Duration::from_millis(300)));
    let d = daemon(&llm, &[]);
    let mut c = d.client();
    c.create("busy");
    c.send(&json!({"action": "send", "session_id": "busy", "message": "slow one"}));
    // Once the user turn streams, set a heartbeat that falls due during it.
    let first = c
        .recv_until(|v| v["event"] == "response" || v["event"] == "error")
        .1;
    assert_has(&first, &json!({"event": "response", "done": false}));
    heartbeat(&mut c, "busy", 1, Some("HB-OVERLAP"));
    let mut deltas = 1;
    loop {
        let v = c.recv();
        if v["session_id"] != "busy" {
            continue;
        }
        if v["event"] == "error" {
            panic!("the user turn failed: {v}\n{}", c.recent());
        }
        if v["event"] != "response" {
            continue;
        }
        if v["done"] == true {
            break;
        }
        deltas += 1;
        // Until the last token, the user turn is still streaming.
        if deltas < TOKENS.len() {
            let n = llm.requests().len();
            assert_eq!(
                n,
                1,
                "a heartbeat request arrived while the user turn was streaming (delta {deltas}):\n{}",
                llm.summary()
            );
        }
    }
    assert_eq!(deltas, TOKENS.len());
    let r = llm.wait_requests(2)[1].clone();
    assert!(
        r.body_contains("HB-OVERLAP"),
        "after the user turn, the heartbeat runs: {}",
        r.body
    );
    heartbeat(&mut c, "busy", 0, None);
}

#[test]
fn heartbeat_stops_when_the_days_token_budget_is_spent() {
    let llm = replying(&["HEARTBEAT_OK"]);
    let d = daemon(&llm, &[("heartbeat_max_tokens_per_day", "1")]);
    let mut c = d.client();
    c.create("cap");
    heartbeat(&mut c, "cap", 1, Some("HB-CAP"));
    llm.wait_requests(1);
    std::thread::sleep(QUIET);
    assert_eq!(
        llm.requests().len(),
        1,
        "after one heartbeat the budget of 1 token is spent:\n{}",
        llm.summary()
    );
}

/// Local minutes since midnight, as the daemon computes quiet hours.
fn local_minute_now() -> i64 {
    let t = unix_now() as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed `tm` we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        assert!(!libc::localtime_r(&t, &mut tm).is_null());
        tm
    };
    i64::from(tm.tm_hour * 60 + tm.tm_min)
}

#[test]
fn heartbeat_respects_quiet_hours() {
    // Quiet from two hours ago to two hours from now (local time).
    let m = local_minute_now();
    let hhmm = |x: i64| {
        let x = x.rem_euclid(1440);
        format!("{:02}:{:02}", x / 60, x % 60)
    };
    let quiet = format!("\"{}-{}\"", hhmm(m - 120), hhmm(m + 120));
    let llm = replying(&["Something to say."]);
    let d = daemon(&llm, &[("quiet_hours", &quiet)]);
    let mut c = d.client();
    c.create("night");
    heartbeat(&mut c, "night", 1, Some("HB-QUIET"));
    let seen = events_for(&mut c, QUIET);
    assert!(
        llm.requests().is_empty(),
        "no heartbeat during quiet hours {quiet}:\n{}",
        llm.summary()
    );
    assert!(!seen.iter().any(|e| e["event"] == "proactive"), "{seen:#?}");
}
