//! One turn against a real (tiny) model: SmolLM2-135M served by llama.cpp's
//! `llama-server` through `../shared/llm/serve-smollm2.sh`, reached as the
//! built-in `llamacpp` provider (OpenAI-compatible SSE).
//!
//! Covers: a create, a short question, several streamed deltas, a non-empty
//! reply ending with `stop` or `length`, and the turn persisted (user +
//! assistant). If the script is absent (a clone without `../shared`) the
//! test says so loudly and passes; if it is present but fails, the test
//! fails. The first run builds llama-server (~13 minutes); later runs start
//! it in about a second.

mod common;

use common::*;
use std::time::Duration;

/// Not the developer's usual 8089, so a running dev server is left alone.
const PORT: u16 = 18089;

#[test]
fn real_model_streams_a_reply_and_persists_the_turn() {
    let Some(server) = RealModel::start("real_model_streams_a_reply_and_persists_the_turn", PORT)
    else {
        return;
    };

    let d = server.daemon().start();
    let mut c = d.client();
    assert_has(
        &c.create("real"),
        &json!({"event": "created", "model": "llamacpp/smollm2", "new": true}),
    );
    c.send(&json!({"action": "send", "session_id": "real", "message": "What is the capital of France? Answer in one sentence."}));
    let turn = c.turn_within("real", Duration::from_secs(120));
    let reason = turn.finish_reason();
    assert!(
        turn.terminal["event"] == "response" && (reason == "stop" || reason == "length"),
        "expected a reply ending with stop or length, got: {}\n{:#?}",
        turn.terminal,
        turn.events
    );
    assert!(
        turn.deltas >= 3,
        "the reply should stream as several deltas, got {}: {:?}",
        turn.deltas,
        turn.text
    );
    assert!(
        !turn.text.trim().is_empty(),
        "the reply should not be empty"
    );

    let h = c.history("real");
    let got = roles_and_contents(&h);
    assert_eq!(got.len(), 2, "user + assistant in history: {h}");
    assert_eq!(got[0].0, "user");
    assert!(got[0].1.contains("capital of France"), "{h}");
    assert_eq!(
        got[1],
        ("assistant".to_string(), turn.text.clone()),
        "the stored reply is the streamed one"
    );
    drop(server);
}
