//! The real local model for end-to-end tests: llama.cpp's `llama-server`
//! with SmolLM2-135M, started by `../shared/llm/serve-smollm2.sh`.
//!
//! [`RealModel::start`] returns `None` (after a loud notice) only when the
//! script is absent; when it is there but fails, the test fails. The server
//! is stopped when the guard drops, however the test ends.

use std::path::PathBuf;
use std::process::Command;

use super::{Builder, Daemon};

pub struct RealModel {
    script: PathBuf,
    port: u16,
}

impl RealModel {
    /// Starts the server on `port` (each test file uses its own).
    pub fn start(test: &str, port: u16) -> Option<RealModel> {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/llm/serve-smollm2.sh");
        if !script.is_file() {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED {test}: {} not found.\n\
                 !!! This test needs ../shared/llm beside the repository.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
                script.display()
            );
            return None;
        }
        let server = RealModel { script, port };
        let out = Command::new("bash")
            .arg(&server.script)
            .arg(port.to_string())
            .output()
            .expect("run serve-smollm2.sh");
        assert!(
            out.status.success(),
            "{} {port} failed with {}\nstdout:\n{}\nstderr:\n{}",
            server.script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(server)
    }

    /// A daemon builder using this server as provider `llamacpp`, model
    /// `llamacpp/smollm2`, with short replies and CPU-friendly timeouts.
    pub fn daemon(&self) -> Builder {
        Daemon::builder()
            .table(&format!(
                "[providers.llamacpp]\nbase_url = \"http://127.0.0.1:{}/v1\"\n",
                self.port
            ))
            .set("default_model", "\"llamacpp/smollm2\"")
            // A CPU model is slower than the fake: allow it time between tokens.
            .set("llm_read_timeout_secs", "60")
            // Bounded replies keep the tests short on a busy 2-core machine.
            .set("max_reply_tokens", "48")
            .set("llm_connect_timeout_secs", "5")
    }
}

impl Drop for RealModel {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.port.to_string())
            .status();
    }
}
