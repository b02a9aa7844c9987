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
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Not the developer's usual 8089, so a running dev server is left alone.
const PORT: u16 = 18089;

/// Stops the server when the test ends, however it ends.
struct Server {
    script: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(PORT.to_string())
            .status();
    }
}

#[test]
fn real_model_streams_a_reply_and_persists_the_turn() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/llm/serve-smollm2.sh");
    if !script.is_file() {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED real_model: {} not found.\n\
             !!! This test needs ../shared/llm beside the repository.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
            script.display()
        );
        return;
    }
    let server = Server {
        script: script.clone(),
    };
    let out = Command::new("bash")
        .arg(&script)
        .arg(PORT.to_string())
        .output()
        .expect("run serve-smollm2.sh");
    assert!(
        out.status.success(),
        "{} {PORT} failed with {}\nstdout:\n{}\nstderr:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let d = Daemon::builder()
        .table(&format!(
            "[providers.llamacpp]\nbase_url = \"http://127.0.0.1:{PORT}/v1\"\n"
        ))
        .set("default_model", "\"llamacpp/smollm2\"")
        // A CPU model is slower than the fake: allow it time between tokens.
        .set("llm_read_timeout_secs", "60")
        // Bounded replies keep the test short on a busy 2-core machine.
        .set("max_reply_tokens", "48")
        .set("llm_connect_timeout_secs", "5")
        .start();
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
