//! Agent Skills end to end: the real binary, its socket, and a fake provider
//! that records what the daemon asked it.
//!
//! Every test gets its own skills folder, `<test dir>/skills`, set as the
//! only entry of `skills_dirs`, and filled with copies of the project's
//! fixture skills (`tests/fixtures/skills/`) or with files written here.
//!
//! Covers:
//! - `skills`: every loaded skill with `name`, `description` and `path`; a
//!   broken `SKILL.md` (no front matter) under `skipped` with a `reason`; a
//!   name that differs from its folder loads under its own name with a
//!   warning; a folder without `SKILL.md` is ignored; `status` counts the
//!   loaded skills;
//! - matched activation: "Tell me a joke" announces
//!   `{"event":"skill","skill":"joke-teller","reason":"matched"}` with the
//!   send's `id` before the first `response` delta; the provider request
//!   holds the index (names) in its system message and the body in a
//!   `<skill name="joke-teller">` block in its last user message; the
//!   assistant message in `history` carries `"skills":["joke-teller"]`; the
//!   next, unrelated turn of the session carries neither the body nor a
//!   skill event;
//! - an unrelated prompt: no skill event, the index but not a body;
//! - explicit `/translator` and `$translator`: reason `explicit`, the user
//!   message kept in `history` exactly as typed;
//! - no skills at all: no index block in the system message;
//! - `reload` after a skill folder is added answers `reloaded` with the new
//!   count and the new skill activates; a folder added, or a `SKILL.md`
//!   edited, while the daemon runs is picked up on the next turn without
//!   `reload`;
//! - `pin_skill` / `unpin_skill`: `skill_pinned`, reason `pinned` on an
//!   unrelated turn, the pin kept in `meta.json` and across a restart,
//!   `skill_unpinned` and no skill afterwards; unknown skill `not_found`,
//!   unknown session `session_not_found`;
//! - a real model (SmolLM2-135M through `../shared/llm/serve-smollm2.sh`):
//!   "Tell me a joke" activates joke-teller and the reply streams.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A line of each fixture body, as it appears in the `SKILL.md` file.
const JOKE_BODY: &str = "Set it up, then land the punchline";
const WEATHER_BODY: &str = "the chance of rain and any strong wind";
const TRANSLATOR_BODY: &str = "Give the translation first";
/// A prompt none of the fixture skills is about.
const UNRELATED: &str = "Who painted the Mona Lisa?";
const INDEX_TAG: &str = "<available_skills>";

// ------------------------------------------------------------- helpers

/// `tests/fixtures/skills/NAME`.
fn fixture_skill(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/skills")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap_or_else(|e| {
                panic!(
                    "copy {} to {}: {e}",
                    entry.path().display(),
                    target.display()
                )
            });
        }
    }
}

/// Copies the fixture skill `name` into `skills` in one step: built in a
/// staging folder beside it, then renamed, so a daemon scanning at that
/// moment never sees a half-written skill.
fn install(skills: &Path, name: &str) {
    let staging = skills.parent().unwrap().join("staging").join(name);
    let _ = fs::remove_dir_all(&staging);
    copy_dir(&fixture_skill(name), &staging);
    fs::rename(&staging, skills.join(name)).expect("move the skill into place");
}

/// A daemon on a fake Ollama, with `<dir>/skills` as its only skills folder.
struct Env {
    llm: FakeLlm,
    d: Daemon,
    skills: PathBuf,
}

/// Starts a daemon whose skills folder holds copies of `fixtures`, plus
/// whatever `stage` writes into it before the start.
fn start_with(fixtures: &[&str], stage: impl FnOnce(&Path)) -> Env {
    let llm = FakeLlm::ollama();
    let mut d = Daemon::builder().ollama(&llm).prepare();
    let skills = d.skills_dir();
    for name in fixtures {
        install(&skills, name);
    }
    stage(&skills);
    d.launch();
    Env { llm, d, skills }
}

fn start(fixtures: &[&str]) -> Env {
    start_with(fixtures, |_| {})
}

/// Sends `message` with request id `id` and collects the turn; it must
/// end with `stop`.
#[track_caller]
fn turn(c: &mut Client, session: &str, message: &str, id: &str) -> Turn {
    c.send(&json!({"action": "send", "session_id": session, "message": message, "id": id}));
    let t = c.turn(session);
    t.assert_done("stop");
    t
}

fn pair(skill: &str, reason: &str) -> (String, String) {
    (skill.to_string(), reason.to_string())
}

/// The last assistant message of a `history` answer.
#[track_caller]
fn last_assistant(h: &Value) -> Value {
    messages(h)
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap_or_else(|| panic!("no assistant message in history: {h}"))
}

/// The `skills` field of a history message (absent counts as none).
fn skills_of(m: &Value) -> Vec<String> {
    m["skills"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `skills` answer.
#[track_caller]
fn listing(c: &mut Client) -> Value {
    c.send(&json!({"action": "skills", "id": "ls"}));
    let v = c.expect_event("skills");
    assert_eq!(v["id"], "ls", "the answer carries the request's id: {v}");
    v
}

fn names(listing: &Value) -> Vec<String> {
    listing["skills"]
        .as_array()
        .unwrap_or_else(|| panic!("`skills` is not an array: {listing}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

// ------------------------------------------------------------- listing

#[test]
fn skills_lists_loaded_and_skipped_and_status_counts_them() {
    let env = start_with(
        &["joke-teller", "translator", "weather-lookup", "not-a-skill"],
        |dir| {
            fs::create_dir_all(dir.join("broken")).unwrap();
            fs::write(
                dir.join("broken/SKILL.md"),
                "# Broken\n\nThis file has no front matter at all.\n",
            )
            .unwrap();
            fs::create_dir_all(dir.join("odd-folder")).unwrap();
            fs::write(
                dir.join("odd-folder/SKILL.md"),
                "---\nname: sock-sorter\ndescription: Sorts socks into pairs by colour and size.\n---\n\n# Socks\n\nPair them.\n",
            )
            .unwrap();
        },
    );
    let mut c = env.d.client();
    let v = listing(&mut c);

    let mut got = names(&v);
    got.sort();
    assert_eq!(
        got,
        ["joke-teller", "sock-sorter", "translator", "weather-lookup"],
        "loaded skills (the folder without SKILL.md is ignored, the broken one skipped): {v}"
    );
    let skills = v["skills"].as_array().unwrap();
    let find = |name: &str| {
        skills
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {v}"))
            .clone()
    };

    let joke = find("joke-teller");
    assert_eq!(
        joke["description"],
        "Tells short, clean jokes and puns, mostly about programming. Use when someone wants a joke or something to laugh at.",
        "{joke}"
    );
    assert_eq!(
        joke["path"].as_str(),
        Some(env.skills.join("joke-teller/SKILL.md").to_str().unwrap()),
        "path is the SKILL.md file: {joke}"
    );
    let translator = find("translator");
    assert!(
        translator["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Translates words") && !d.contains('\n')),
        "a folded description is one line: {translator}"
    );

    // A name that differs from its folder loads under its own name, warned.
    let socks = find("sock-sorter");
    assert_eq!(
        socks["path"].as_str(),
        Some(env.skills.join("odd-folder/SKILL.md").to_str().unwrap()),
        "{socks}"
    );
    let warnings = socks["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        !warnings.is_empty(),
        "a name that differs from its folder should load with a warning: {socks}"
    );
    assert!(
        find("joke-teller")["warnings"]
            .as_array()
            .is_none_or(|w| w.is_empty()),
        "a valid skill has no warnings: {joke}"
    );

    // The broken one is skipped with a reason.
    let skipped = v["skipped"]
        .as_array()
        .unwrap_or_else(|| panic!("`skipped` should be an array: {v}"));
    assert_eq!(skipped.len(), 1, "only the broken file is skipped: {v}");
    assert_eq!(
        skipped[0]["path"].as_str(),
        Some(env.skills.join("broken/SKILL.md").to_str().unwrap()),
        "{v}"
    );
    assert!(
        skipped[0]["reason"]
            .as_str()
            .is_some_and(|r| !r.trim().is_empty()),
        "a skipped file has a reason: {v}"
    );

    c.send(&json!({"action": "status"}));
    let status = c.expect_event("status");
    assert_eq!(
        status["skills"], 4,
        "status counts the loaded skills: {status}"
    );

    // The daemon said why, in its log, and is still serving.
    assert!(
        env.d.log().contains("broken/SKILL.md"),
        "the skipped file should be named in the log"
    );
    assert_has(
        &c.request(&json!({"action": "ping"})),
        &json!({"event": "pong"}),
    );
}

// ------------------------------------------------------------- activation

#[test]
fn joke_request_activates_joke_teller_before_the_text_for_that_turn_only() {
    let env = start(&["joke-teller", "translator", "weather-lookup"]);
    let mut c = env.d.client();
    c.create("s");
    let t = turn(&mut c, "s", "Tell me a joke", "j1");

    // The skill event, with the send's id, before the first delta.
    let skill_at = t
        .events
        .iter()
        .position(|e| e["event"] == "skill")
        .unwrap_or_else(|| panic!("no skill event: {:#?}", t.events));
    let first_delta = t
        .events
        .iter()
        .position(|e| e["event"] == "response")
        .expect("no response event");
    assert!(
        skill_at < first_delta,
        "the skill event must come before the first response delta: {:#?}",
        t.events
    );
    assert_has(
        &t.events[skill_at],
        &json!({"event": "skill", "session_id": "s", "skill": "joke-teller", "reason": "matched", "id": "j1"}),
    );
    assert_eq!(
        t.skill_events("s"),
        [pair("joke-teller", "matched")],
        "only joke-teller is active: {:#?}",
        t.events
    );

    // What the model was sent: the index up front, the body at the end.
    let r = env.llm.last_request();
    let system = &r.system();
    assert!(
        system.contains(INDEX_TAG),
        "index block in the system message: {system}"
    );
    for name in ["joke-teller", "translator", "weather-lookup"] {
        assert!(system.contains(name), "{name} in the index: {system}");
    }
    assert!(
        !system.contains(JOKE_BODY),
        "the body belongs next to the user message, not in the system message: {system}"
    );
    let user = &r.last_user();
    assert!(
        user.contains("<skill name=\"joke-teller\">") && user.contains(JOKE_BODY),
        "the last user message holds the joke-teller body: {user}"
    );
    assert!(user.contains("Tell me a joke"), "{user}");
    assert!(
        !user.contains(WEATHER_BODY) && !user.contains(TRANSLATOR_BODY),
        "only the active skill's body: {user}"
    );

    let h = c.history("s");
    let a = last_assistant(&h);
    assert_eq!(skills_of(&a), ["joke-teller"], "assistant message: {a}");

    // The next, unrelated turn carries no body and announces no skill.
    let t2 = turn(&mut c, "s", UNRELATED, "u1");
    assert!(
        t2.skill_events("s").is_empty(),
        "an unrelated turn activates nothing: {:#?}",
        t2.events
    );
    let r2 = env.llm.last_request();
    assert!(
        &r2.last_user().contains(UNRELATED),
        "the second request is the unrelated turn"
    );
    assert!(
        !r2.body_contains(JOKE_BODY) && !r2.body_contains("<skill name="),
        "a later unrelated turn must not carry the previous turn's skill body: {}",
        String::from_utf8_lossy(&r2.raw_body)
    );
    assert!(
        &r2.system().contains(INDEX_TAG),
        "the index is in every turn"
    );
    let h = c.history("s");
    assert!(
        skills_of(&last_assistant(&h)).is_empty(),
        "no skills on the unrelated reply: {h}"
    );
}

#[test]
fn unrelated_prompt_gets_the_index_but_no_skill() {
    let env = start(&[
        "joke-teller",
        "translator",
        "weather-lookup",
        "unit-converter",
        "recipe-planner",
    ]);
    let mut c = env.d.client();
    c.create("s");
    let t = turn(&mut c, "s", UNRELATED, "u1");
    assert!(
        t.skill_events("s").is_empty(),
        "no skill event for {UNRELATED:?}: {:#?}",
        t.events
    );
    let r = env.llm.last_request();
    let system = &r.system();
    assert!(system.contains(INDEX_TAG), "{system}");
    for name in [
        "joke-teller",
        "translator",
        "weather-lookup",
        "unit-converter",
        "recipe-planner",
    ] {
        assert!(system.contains(name), "{name} in the index: {system}");
    }
    for body in [JOKE_BODY, WEATHER_BODY, TRANSLATOR_BODY] {
        assert!(
            !r.body_contains(body),
            "no skill body was asked for: {body:?}"
        );
    }
    assert!(
        !&r.last_user().contains("<skill name="),
        "no skill block: {}",
        &r.last_user()
    );
    let h = c.history("s");
    assert!(skills_of(&last_assistant(&h)).is_empty(), "{h}");
}

#[test]
fn explicit_slash_and_dollar_activate_and_the_message_is_kept_as_typed() {
    let env = start(&["joke-teller", "translator", "weather-lookup"]);
    let mut c = env.d.client();
    c.create("s");

    for (i, typed) in [
        "/translator good morning, my friend",
        "Please $translator thank you very much",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("x{i}");
        let t = turn(&mut c, "s", typed, &id);
        assert_eq!(
            t.skill_events("s"),
            [pair("translator", "explicit")],
            "{typed:?}: {:#?}",
            t.events
        );
        let ev = t.events.iter().find(|e| e["event"] == "skill").unwrap();
        assert_eq!(
            ev["id"],
            id.as_str(),
            "the skill event carries the send's id: {ev}"
        );
        let user = &env.llm.last_request().last_user();
        assert!(
            user.contains("<skill name=\"translator\">") && user.contains(TRANSLATOR_BODY),
            "{typed:?}: the translator body is sent: {user}"
        );
        assert!(
            user.contains(typed),
            "the model sees the message as typed: {user}"
        );

        let h = c.history("s");
        let user_msg = messages(&h)
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .unwrap();
        assert_eq!(
            user_msg["content"], typed,
            "the user message is stored as typed: {h}"
        );
        assert_eq!(skills_of(&last_assistant(&h)), ["translator"], "{h}");
    }
}

#[test]
fn without_skills_there_is_no_index_block() {
    let env = start(&[]);
    let mut c = env.d.client();
    let v = listing(&mut c);
    assert_eq!(v["skills"], json!([]), "{v}");
    c.send(&json!({"action": "status"}));
    assert_eq!(c.expect_event("status")["skills"], 0);
    c.create("s");
    let t = turn(&mut c, "s", "Tell me a joke", "j1");
    assert!(t.skill_events("s").is_empty(), "{:#?}", t.events);
    let r = env.llm.last_request();
    let system = &r.system();
    assert!(
        !r.body_contains(INDEX_TAG) && !r.body_contains("available_skills"),
        "no skills, no index block: {system}"
    );
    assert!(
        system.contains("You are the e2e test assistant."),
        "the system prompt is still there: {system}"
    );
}

// ------------------------------------------------------------- changes on disk

#[test]
fn reload_sees_a_skill_added_after_start() {
    let env = start(&["joke-teller"]);
    let mut c = env.d.client();
    assert_eq!(names(&listing(&mut c)), ["joke-teller"]);

    install(&env.skills, "weather-lookup");
    c.send(&json!({"action": "reload", "id": "r1"}));
    let v = c.expect_event("reloaded");
    assert_has(&v, &json!({"event": "reloaded", "skills": 2, "id": "r1"}));
    let mut got = names(&listing(&mut c));
    got.sort();
    assert_eq!(got, ["joke-teller", "weather-lookup"]);
    c.send(&json!({"action": "status"}));
    assert_eq!(c.expect_event("status")["skills"], 2);

    c.create("s");
    let t = turn(
        &mut c,
        "s",
        "What's the weather forecast for Lyon tomorrow?",
        "w1",
    );
    assert_eq!(
        t.skill_events("s"),
        [pair("weather-lookup", "matched")],
        "{:#?}",
        t.events
    );
    let r = env.llm.last_request();
    assert!(&r.last_user().contains(WEATHER_BODY), "{}", &r.last_user());
    assert!(&r.system().contains("weather-lookup"), "{}", &r.system());
}

#[test]
fn skills_added_or_edited_while_running_apply_on_the_next_turn_without_reload() {
    let env = start(&["joke-teller"]);
    let mut c = env.d.client();
    c.create("s");
    // A first turn, so the daemon has used (and stamped) its catalog.
    let t = turn(&mut c, "s", "Tell me a joke", "j1");
    assert_eq!(t.skill_events("s"), [pair("joke-teller", "matched")]);
    assert!(!&env.llm.last_request().system().contains("weather-lookup"));

    // Past any coarse mtime granularity before touching the folder.
    std::thread::sleep(Duration::from_millis(1100));
    install(&env.skills, "weather-lookup");
    let t = turn(
        &mut c,
        "s",
        "What's the weather forecast for Lyon tomorrow?",
        "w1",
    );
    assert_eq!(
        t.skill_events("s"),
        [pair("weather-lookup", "matched")],
        "a skill folder added while running is used on the next turn: {:#?}",
        t.events
    );
    let r = env.llm.last_request();
    assert!(&r.system().contains("weather-lookup"), "{}", &r.system());
    assert!(&r.last_user().contains(WEATHER_BODY));

    // An edited SKILL.md: its new body is what the next turn sends.
    std::thread::sleep(Duration::from_millis(1100));
    let file = env.skills.join("joke-teller/SKILL.md");
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("\nAlways end with the word BANANARAMA.\n");
    fs::write(&file, text).unwrap();
    let t = turn(&mut c, "s", "Tell me a joke", "j2");
    assert_eq!(t.skill_events("s"), [pair("joke-teller", "matched")]);
    let user = &env.llm.last_request().last_user();
    assert!(
        user.contains("BANANARAMA"),
        "an edited SKILL.md is used on the next turn: {user}"
    );
    c.send(&json!({"action": "status"}));
    assert_eq!(c.expect_event("status")["skills"], 2);
}

// ------------------------------------------------------------- pins

#[test]
fn pins_activate_on_every_turn_survive_a_restart_and_unpin() {
    let mut env = start(&["joke-teller", "translator", "weather-lookup"]);
    let mut c = env.d.client();
    c.create("s");

    c.send(&json!({"action": "pin_skill", "session_id": "s", "skill": "joke-teller", "id": "p1"}));
    assert_has(
        &c.recv(),
        &json!({"event": "skill_pinned", "session_id": "s", "skill": "joke-teller", "id": "p1"}),
    );

    let t = turn(&mut c, "s", UNRELATED, "u1");
    assert_eq!(
        t.skill_events("s"),
        [pair("joke-teller", "pinned")],
        "a pinned skill is active on an unrelated turn: {:#?}",
        t.events
    );
    let ev = t.events.iter().find(|e| e["event"] == "skill").unwrap();
    assert_eq!(ev["id"], "u1", "{ev}");
    assert!(&env.llm.last_request().last_user().contains(JOKE_BODY));
    assert_eq!(skills_of(&last_assistant(&c.history("s"))), ["joke-teller"]);
    let meta = fs::read_to_string(env.d.session_dir("s").join("meta.json")).unwrap();
    assert!(
        meta.contains("joke-teller"),
        "the pin is stored with the session: {meta}"
    );

    // Pins survive a restart.
    drop(c);
    env.d.restart();
    let mut c = env.d.client();
    c.create("s");
    let t = turn(&mut c, "s", UNRELATED, "u2");
    assert_eq!(
        t.skill_events("s"),
        [pair("joke-teller", "pinned")],
        "the pin is still there after a restart: {:#?}",
        t.events
    );
    assert!(&env.llm.last_request().last_user().contains(JOKE_BODY));

    // Unpinned: the next unrelated turn has no skill.
    c.send(
        &json!({"action": "unpin_skill", "session_id": "s", "skill": "joke-teller", "id": "p2"}),
    );
    assert_has(
        &c.recv(),
        &json!({"event": "skill_unpinned", "session_id": "s", "skill": "joke-teller", "id": "p2"}),
    );
    let t = turn(&mut c, "s", UNRELATED, "u3");
    assert!(
        t.skill_events("s").is_empty(),
        "unpinned: no skill: {:#?}",
        t.events
    );
    assert!(!env.llm.last_request().body_contains(JOKE_BODY));
}

#[test]
fn pin_errors_unknown_skill_and_unknown_session() {
    let env = start(&["joke-teller"]);
    let mut c = env.d.client();
    c.create("s");

    c.send(&json!({"action": "pin_skill", "session_id": "s", "skill": "no-such-skill", "id": 7}));
    let v = assert_error(&c.recv(), "not_found");
    assert_eq!(v["id"], 7, "{v}");

    c.send(&json!({"action": "unpin_skill", "session_id": "s", "skill": "no-such-skill"}));
    assert_error(&c.recv(), "not_found");

    c.send(&json!({"action": "pin_skill", "session_id": "ghost", "skill": "joke-teller"}));
    assert_has(
        &assert_error(&c.recv(), "session_not_found"),
        &json!({"session_id": "ghost"}),
    );
    c.send(&json!({"action": "unpin_skill", "session_id": "ghost", "skill": "joke-teller"}));
    assert_error(&c.recv(), "session_not_found");
    assert!(
        !env.d.session_dir("ghost").exists(),
        "nothing is created for an unknown session"
    );

    // The failed pin left nothing behind: an unrelated turn has no skill.
    let t = turn(&mut c, "s", UNRELATED, "u1");
    assert!(t.skill_events("s").is_empty(), "{:#?}", t.events);
}

// ------------------------------------------------------------- real model

/// Not 8089 (a developer's server) nor 18089 (`real_model.rs`).
const REAL_PORT: u16 = 18090;

#[test]
fn real_model_joke_request_activates_joke_teller_and_streams() {
    let Some(server) = RealModel::start(
        "real_model_joke_request_activates_joke_teller_and_streams",
        REAL_PORT,
    ) else {
        return;
    };

    let mut d = server.daemon().prepare();
    let skills = d.skills_dir();
    install(&skills, "joke-teller");
    d.launch();

    let mut c = d.client();
    assert_has(
        &c.create("real"),
        &json!({"event": "created", "model": "llamacpp/smollm2"}),
    );
    c.send(
        &json!({"action": "send", "session_id": "real", "message": "Tell me a joke", "id": "rj"}),
    );
    let t = c.turn_within("real", Duration::from_secs(120));
    let reason = t.finish_reason();
    assert!(
        t.terminal["event"] == "response" && (reason == "stop" || reason == "length"),
        "expected a reply ending with stop or length, got: {}\n{:#?}",
        t.terminal,
        t.events
    );
    let skill_at = t
        .events
        .iter()
        .position(|e| e["event"] == "skill")
        .unwrap_or_else(|| panic!("no skill event: {:#?}", t.events));
    let first_delta = t
        .events
        .iter()
        .position(|e| e["event"] == "response")
        .unwrap();
    assert!(skill_at < first_delta, "{:#?}", t.events);
    assert_has(
        &t.events[skill_at],
        &json!({"event": "skill", "session_id": "real", "skill": "joke-teller", "reason": "matched", "id": "rj"}),
    );
    assert!(
        t.deltas >= 2,
        "the reply should stream as several deltas, got {}: {:?}",
        t.deltas,
        t.text
    );
    assert!(!t.text.trim().is_empty(), "the reply should not be empty");
    eprintln!("SmolLM2 with joke-teller said: {:?}", t.text);

    let h = c.history("real");
    let a = last_assistant(&h);
    assert_eq!(skills_of(&a), ["joke-teller"], "{h}");
    assert_eq!(
        a["content"],
        t.text.as_str(),
        "the stored reply is the streamed one"
    );
    drop(server);
}
