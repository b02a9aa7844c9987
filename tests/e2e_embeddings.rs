//! Semantic matching end to end: `embedding_model` set, the fake provider
//! answering `/api/embed` (Ollama) or `/embeddings` (OpenAI-style) with
//! vectors chosen by the input text.
//!
//! Covers:
//! - a paraphrase that shares no word with any skill ("my hosiery is a
//!   mess" for `sock-sorter: Pairs socks ...`) activates the skill (reason
//!   `matched`) when the embeddings say the two are alike, and not when
//!   they say otherwise;
//! - skill vectors are computed in the background after start-up and
//!   cached in `state/embeddings.json`; a restart with unchanged skills
//!   sends no skill text to the model, and still matches semantically; an
//!   edited skill is embedded again (only it);
//! - with the embeddings endpoint down, turns still answer, lexical
//!   matching still activates skills, and the failure is a warning once;
//! - a memory that shares no word with the message is recalled through
//!   embeddings (OpenAI-style endpoint), an unrelated one is not.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SOCK_BODY: &str = "Match them by colour and length";
const PARAPHRASE: &str = "my hosiery is a mess";

/// Writes `<skills>/<name>/SKILL.md`.
fn write_skill(skills: &Path, name: &str, description: &str, body: &str) {
    let dir = skills.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: {description}\n---\n{body}\n"),
    )
    .unwrap();
}

/// Vectors by topic: socks, tea, bicycles, anything else.
fn topic_vectors(similar: bool) -> impl Fn(&str) -> Vec<f32> + Send + Sync + 'static {
    move |text: &str| {
        let t = text.to_lowercase();
        if t.contains("sock sorter") {
            vec![1.0, 0.0, 0.0, 0.0]
        } else if t.contains("hosiery") && similar {
            vec![0.9, 0.1, 0.0, 0.1]
        } else if t.contains("tea timer") {
            vec![0.0, 1.0, 0.0, 0.0]
        } else if t.contains("bicycle") || t.contains("two-wheeler") {
            vec![0.0, 0.0, 1.0, 0.0]
        } else {
            vec![0.0, 0.0, 0.0, 1.0]
        }
    }
}

/// A daemon on fake Ollama (chat and embeddings) with two skills, the
/// embedding model `embedding` and `extra` tables.
fn start(llm: &FakeLlm, embedding: &str, extra: &str) -> (Daemon, PathBuf) {
    let mut b = Daemon::builder()
        .ollama(llm)
        .set("embedding_model", &format!("{embedding:?}"));
    if !extra.is_empty() {
        b = b.table(extra);
    }
    let mut d = b.prepare();
    let skills = d.skills_dir();
    write_skill(
        &skills,
        "sock-sorter",
        "Pairs socks after laundry day.",
        &format!("# Pairing\n{SOCK_BODY}."),
    );
    write_skill(
        &skills,
        "tea-timer",
        "Times the steeping of green or black tea.",
        "# Steeping\nGreen: two minutes.",
    );
    d.launch();
    (d, skills)
}

fn cache_path(d: &Daemon) -> PathBuf {
    d.data_dir().join("state/embeddings.json")
}

/// Waits until the cache file holds `n` skill vectors.
#[track_caller]
fn wait_cache(d: &Daemon, n: usize) -> Value {
    wait_for(
        Duration::from_secs(10),
        &format!("{n} skill vectors in embeddings.json"),
        || {
            let v: Value = serde_json::from_slice(&fs::read(cache_path(d)).ok()?).ok()?;
            (v["skills"].as_object()?.len() == n).then_some(v)
        },
    )
}

#[track_caller]
fn turn(c: &mut Client, session: &str, message: &str) -> Turn {
    let t = c.send_turn(session, message);
    t.assert_done("stop");
    t
}

fn count(inputs: &[String], needle: &str) -> usize {
    inputs.iter().filter(|t| t.contains(needle)).count()
}

#[test]
fn paraphrase_activates_a_skill_only_when_embeddings_agree() {
    let llm = FakeLlm::ollama();
    llm.embed_with(topic_vectors(true));
    let (d, _) = start(&llm, "ollama/fake-embed", "");
    wait_cache(&d, 2);
    let mut c = d.client();
    c.create("s");
    let t = turn(&mut c, "s", PARAPHRASE);
    assert_eq!(
        t.skill_events("s"),
        [("sock-sorter".to_string(), "matched".to_string())]
    );
    let chat = llm.chat_requests();
    let last = chat.last().expect("a chat request");
    assert!(last.body_contains(SOCK_BODY), "{}", llm.summary());
    // The message was embedded once for the turn (recall and matching).
    assert_eq!(count(&llm.embed_inputs(), PARAPHRASE), 1);
    let log = d.log();
    assert!(
        log.contains("semantic scores weight=4.0 baseline=0.00 top: sock-sorter=0.99"),
        "the debug line explains the decision:\n{log}"
    );
    // A message the embeddings find unrelated activates nothing.
    let t = turn(&mut c, "s", "who painted the mona lisa?");
    assert!(t.skill_events("s").is_empty(), "{:?}", t.events);

    // The same paraphrase, with embeddings that see no likeness.
    let llm2 = FakeLlm::ollama();
    llm2.embed_with(topic_vectors(false));
    let (d2, _) = start(&llm2, "ollama/fake-embed", "");
    wait_cache(&d2, 2);
    let mut c2 = d2.client();
    c2.create("s");
    let t = turn(&mut c2, "s", PARAPHRASE);
    assert!(t.skill_events("s").is_empty(), "{:?}", t.events);
    let chat = llm2.chat_requests();
    assert!(!chat.last().unwrap().body_contains(SOCK_BODY));
}

#[test]
fn unchanged_skills_are_not_embedded_again_after_a_restart() {
    let llm = FakeLlm::ollama();
    llm.embed_with(topic_vectors(true));
    let (mut d, skills) = start(&llm, "ollama/fake-embed", "");
    let before = wait_cache(&d, 2);
    let inputs = llm.embed_inputs();
    assert_eq!(count(&inputs, "sock sorter"), 1, "{inputs:?}");
    assert_eq!(count(&inputs, "tea timer"), 1, "{inputs:?}");

    d.restart();
    let mut c = d.client();
    c.create("s");
    let t = turn(&mut c, "s", PARAPHRASE);
    assert_eq!(
        t.skill_events("s"),
        [("sock-sorter".to_string(), "matched".to_string())],
        "the cached vectors match after a restart"
    );
    std::thread::sleep(Duration::from_millis(300));
    let inputs = llm.embed_inputs();
    assert_eq!(count(&inputs, "sock sorter"), 1, "{inputs:?}");
    assert_eq!(count(&inputs, "tea timer"), 1, "{inputs:?}");
    assert_eq!(before, wait_cache(&d, 2), "the cache was left alone");

    // An edited skill is embedded again, in the background, alone.
    write_skill(
        &skills,
        "tea-timer",
        "Times the steeping of any tea, oolong included.",
        "# Steeping\nGreen: two minutes.",
    );
    turn(&mut c, "s", "hello there");
    wait_for(Duration::from_secs(10), "the edited skill embedded", || {
        (count(&llm.embed_inputs(), "oolong") == 1).then_some(())
    });
    let after = wait_for(Duration::from_secs(10), "the cache rewritten", || {
        let v = wait_cache(&d, 2);
        (v != before).then_some(v)
    });
    assert_eq!(count(&llm.embed_inputs(), "sock sorter"), 1);
    let old: Vec<&String> = before["skills"].as_object().unwrap().keys().collect();
    let new: Vec<&String> = after["skills"].as_object().unwrap().keys().collect();
    assert_eq!(
        old.iter().filter(|k| new.contains(k)).count(),
        1,
        "only the sock-sorter vector is kept: {old:?} -> {new:?}"
    );
}

#[test]
fn turns_answer_lexically_when_the_embeddings_endpoint_is_down() {
    let llm = FakeLlm::ollama();
    let dead = format!(
        "[providers.emb]\nkind = \"ollama\"\nbase_url = \"http://127.0.0.1:{}\"\n",
        dead_port()
    );
    let (d, _) = start(&llm, "emb/fake-embed", &dead);
    let mut c = d.client();
    c.create("s");
    let t = turn(&mut c, "s", PARAPHRASE);
    assert!(t.skill_events("s").is_empty(), "{:?}", t.events);
    assert!(!t.text.is_empty());
    let t = turn(&mut c, "s", "please pair my socks");
    assert_eq!(
        t.skill_events("s"),
        [("sock-sorter".to_string(), "matched".to_string())]
    );
    let log = d.log();
    let warned = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("embedding model"))
        .count();
    assert_eq!(warned, 1, "one warning for the outage:\n{log}");
    assert!(!cache_path(&d).exists());
}

#[test]
fn a_memory_without_a_shared_word_is_recalled_through_embeddings() {
    let llm = FakeLlm::openai();
    llm.embed_with(topic_vectors(true));
    let d = Daemon::builder()
        .openai(&llm)
        .set("embedding_model", "\"fake/embed-small\"")
        .start();
    let mut c = d.client();
    c.create("s");
    c.send(&json!({"action": "remember", "session_id": "s",
                   "text": "I keep my bicycle in the garage"}));
    c.expect_event("remembered");
    c.send(&json!({"action": "remember", "session_id": "s",
                   "text": "My sister lives in Porto"}));
    c.expect_event("remembered");
    let query = "where did I leave the two-wheeler?";
    // Lexically, nothing matches.
    c.send(&json!({"action": "memories", "session_id": "s", "query": query}));
    let v = c.expect_event("memories");
    assert_eq!(v["memories"], json!([]), "{v}");

    turn(&mut c, "s", query);
    let chat = llm.chat_requests();
    let last = chat.last().unwrap();
    assert!(
        last.body_contains("bicycle in the garage"),
        "{}",
        llm.summary()
    );
    assert!(!last.body_contains("Porto"), "{}", llm.summary());
    assert!(
        llm.requests().iter().any(|r| r.path == "/v1/embeddings"),
        "{}",
        llm.summary()
    );
    // The memories were embedded once, with the turn, not again later.
    turn(&mut c, "s", "and what about the weather?");
    let last = llm.chat_requests().pop().unwrap();
    assert!(!last.body_contains("bicycle"), "{}", llm.summary());
    assert_eq!(count(&llm.embed_inputs(), "bicycle in the garage"), 1);
}
