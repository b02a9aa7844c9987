//! The human client (`ruster send|chat|status|...`) run as a user would:
//! the real binary against a daemon with a fake provider.
//!
//! Covers: `send` prints the streamed reply and exits 0, and exits 1 with
//! `ruster: CODE: message` when the turn fails; `status`, `sessions`,
//! `history`, `config`, `remind`, `notify`; `chat` driven through a pipe
//! (messages, `/history`, EOF) and through Ctrl-C (cancel, then quit);
//! finding the socket (`--socket`, `RUSTER_SOCKET`, the config, and no
//! config written by a client); no daemon; usage errors and `--help`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OLLAMA_REPLY: &str = "Hello from the fake Ollama.";
/// A client command that takes longer than this is hung.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// What a client run printed and how it ended.
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    #[track_caller]
    fn success(&self) -> &Self {
        assert!(self.status.success(), "expected success\n{self}");
        self
    }
    #[track_caller]
    fn code(&self, code: i32) -> &Self {
        assert_eq!(self.status.code(), Some(code), "wrong exit code\n{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

/// Collects a child's pipe on a thread, readable while it runs.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn lossy(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// A running client process, its output gathered as it comes.
struct Running {
    child: std::process::Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    what: String,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the ruster client");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
            what,
        }
    }

    fn write(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    fn sigint(&self) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
    }

    #[track_caller]
    fn wait_stdout(&self, text: &str) {
        let deadline = Instant::now() + CLI_TIMEOUT;
        while !lossy(&self.stdout).contains(text) {
            assert!(
                Instant::now() < deadline,
                "stdout never showed {text:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                lossy(&self.stdout),
                lossy(&self.stderr)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    fn finish(mut self) -> Out {
        self.close_stdin();
        let deadline = Instant::now() + CLI_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the client did not exit within {CLI_TIMEOUT:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.what,
                    lossy(&self.stdout),
                    lossy(&self.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Let the collector threads drain what is left in the pipes.
        std::thread::sleep(Duration::from_millis(50));
        Out {
            status,
            stdout: lossy(&self.stdout),
            stderr: lossy(&self.stderr),
            what: self.what,
        }
    }
}

/// `ruster ARGS` with the daemon's environment (so its config names the socket).
fn client(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = d.command();
    cmd.args(args);
    cmd
}

#[track_caller]
fn run(d: &Daemon, args: &[&str]) -> Out {
    Running::spawn(client(d, args)).finish()
}

/// `ruster ARGS` in a bare environment: an empty `HOME`, no `RUSTER_*`.
fn bare(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruster"));
    cmd.args(args).env("HOME", home);
    for (k, _) in std::env::vars() {
        if k.starts_with("RUSTER_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn ollama() -> (FakeLlm, Daemon) {
    let llm = FakeLlm::ollama();
    let d = Daemon::builder().ollama(&llm).start();
    (llm, d)
}

#[test]
fn send_prints_the_streamed_reply_and_exits_0() {
    let (llm, d) = ollama();
    let out = run(&d, &["send", "work", "hello", "there"]);
    out.success();
    assert_eq!(out.stdout, format!("{OLLAMA_REPLY}\n"), "\n{out}");
    assert_eq!(out.stderr, "", "\n{out}");
    assert!(llm.last_request().has_message("user", "hello there"));
    // The session was created by `send` and keeps the turn.
    let h = d.client().history("work");
    assert_eq!(
        roles_and_contents(&h),
        vec![
            ("user".to_string(), "hello there".to_string()),
            ("assistant".to_string(), OLLAMA_REPLY.to_string())
        ]
    );
}

#[test]
fn send_exits_1_with_the_error_code_when_the_provider_fails() {
    let llm = FakeLlm::start(Reply::status(
        400,
        &[("Content-Type", "application/json")],
        r#"{"error":"model 'test-model' not found"}"#,
    ));
    let d = Daemon::builder().ollama(&llm).start();
    let out = run(&d, &["send", "work", "hi"]);
    out.code(1);
    assert!(
        out.stderr.starts_with("ruster: llm_error: "),
        "stderr must be `ruster: CODE: message`\n{out}"
    );
    assert!(out.stderr.contains("400"), "\n{out}");
}

#[test]
fn send_to_an_unreachable_provider_exits_1() {
    let d = Daemon::start();
    let out = run(&d, &["send", "work", "hi"]);
    out.code(1);
    assert!(
        out.stderr.starts_with("ruster: llm_unreachable: "),
        "\n{out}"
    );
}

#[test]
fn status_sessions_history_and_config() {
    let (_llm, d) = ollama();
    let out = run(&d, &["sessions"]);
    out.success();
    assert_eq!(
        out.stdout, "no sessions yet; start one with `ruster chat NAME`\n",
        "\n{out}"
    );

    run(&d, &["send", "alpha", "hi"]).success();
    let out = run(&d, &["status"]);
    out.success();
    let version = format!("version        {}\n", env!("CARGO_PKG_VERSION"));
    assert!(out.stdout.starts_with(&version), "\n{out}");
    assert!(out.stdout.contains("sessions       1\n"), "\n{out}");
    assert!(
        out.stdout.contains("default model  ollama/test-model\n"),
        "\n{out}"
    );

    let out = run(&d, &["sessions"]);
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "\n{out}");
    assert!(lines[0].starts_with("SESSION  MODEL"), "\n{out}");
    assert!(
        lines[1].starts_with("alpha    ollama/test-model  2 "),
        "\n{out}"
    );

    let out = run(&d, &["history", "alpha"]);
    out.success();
    assert!(out.stdout.contains("  user       hi\n"), "\n{out}");
    assert!(
        out.stdout
            .contains(&format!("  assistant  {OLLAMA_REPLY}\n")),
        "\n{out}"
    );
    let out = run(&d, &["history", "nobody"]);
    out.code(1);
    assert!(
        out.stderr
            .contains("ruster: session_not_found: no session named 'nobody'; start it with `ruster chat nobody`"),
        "\n{out}"
    );

    // Piped, `config` is pure JSON.
    let out = run(&d, &["config"]);
    out.success();
    let config: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`ruster config` is not JSON ({e})\n{out}"));
    assert_eq!(
        config["socket_path"],
        d.socket_path().to_string_lossy().as_ref()
    );
}

#[test]
fn remind_prints_the_id_and_due_time() {
    let (_llm, d) = ollama();
    d.client().create("work");
    let out = run(&d, &["remind", "work", "20m", "stand", "up"]);
    out.success();
    let mut c = d.client();
    c.send(&json!({"action": "reminders", "session_id": "work"}));
    let list = c.expect_event("reminders");
    let r = &list["reminders"][0];
    assert_eq!(r["message"], "stand up");
    let id = r["reminder_id"].as_str().unwrap();
    let due = r["due"].as_str().unwrap();
    assert_eq!(out.stdout, format!("{id}  due {due}  (work)\n"), "\n{out}");

    let out = run(&d, &["remind", "work", "2099-01-01T10:00:00Z", "later"]);
    out.success();
    assert!(out.stdout.contains("due 2099-01-01T10:00:00Z"), "\n{out}");

    let out = run(&d, &["remind", "work", "soon", "x"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("cannot read the time \"soon\": give a delay like 90"),
        "\n{out}"
    );
}

#[test]
fn notify_stores_the_event() {
    let (_llm, d) = ollama();
    d.client().create("work");
    let out = run(
        &d,
        &[
            "notify",
            "work",
            "/home is 95% full",
            "--source",
            "disk-monitor",
            "--delivery",
            "silent",
        ],
    );
    out.success();
    assert_eq!(out.stdout, "notified work\n", "\n{out}");
    let h = d.client().history("work");
    let events: Vec<&Value> = messages(&h)
        .iter()
        .filter(|m| m["role"] == "event")
        .collect();
    assert_eq!(events.len(), 1, "history: {h}");
    assert!(
        events[0]["content"]
            .as_str()
            .is_some_and(|c| c.contains("/home is 95% full")),
        "history: {h}"
    );
}

#[test]
fn chat_through_a_pipe_runs_each_line_then_quits_at_eof() {
    let (llm, d) = ollama();
    let mut chat = Running::spawn(client(&d, &["chat", "piped"]));
    chat.write("first\n/history 2\nsecond\n");
    let out = chat.finish();
    out.success();
    // Not a terminal: no banner, no prompt, no colour.
    assert!(!out.stdout.contains('\x1b'), "\n{out}");
    assert!(
        out.stdout.starts_with(&format!("{OLLAMA_REPLY}\n")),
        "\n{out}"
    );
    assert!(out.stdout.contains("  user       first\n"), "\n{out}");
    assert_eq!(out.stdout.matches(OLLAMA_REPLY).count(), 3, "\n{out}");
    // One turn after the other: the second request saw the first reply.
    let reqs = llm.wait_requests(2);
    assert!(reqs[1].has_message("assistant", OLLAMA_REPLY));
    assert!(reqs[1].has_message("user", "second"));
}

#[test]
fn chat_ctrl_c_cancels_the_turn_and_twice_quits() {
    let llm = FakeLlm::start(ollama_stream(&["Once", " upon"], None).then_hang());
    let d = Daemon::builder().ollama(&llm).start();
    let mut chat = Running::spawn(client(&d, &["chat", "story"]));
    chat.write("tell me a story\n");
    chat.wait_stdout("Once upon");
    chat.sigint();
    chat.wait_stdout("(cancelled)");
    let h = d.client().history("story");
    assert_eq!(messages(&h).len(), 2, "history: {h}");
    assert_eq!(messages(&h)[1]["cancelled"], true, "history: {h}");
    chat.sigint();
    std::thread::sleep(Duration::from_millis(100));
    chat.sigint();
    // stdin stays open: only the double Ctrl-C can have ended it.
    let deadline = Instant::now() + CLI_TIMEOUT;
    while chat.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "a second Ctrl-C did not quit");
        std::thread::sleep(Duration::from_millis(20));
    }
    chat.finish().success();
}

#[test]
fn no_daemon_says_how_to_start_one() {
    let d = Daemon::builder().prepare();
    let sock = d.dir().join("nothing.sock");
    let out = Running::spawn(bare(
        &d.dir().join("home"),
        &["status", "--socket", sock.to_str().unwrap()],
    ))
    .finish();
    out.code(1);
    assert_eq!(
        out.stderr,
        format!(
            "ruster: no daemon at {}: start it with `ruster` or `systemctl --user start ruster`\n",
            sock.display()
        ),
        "\n{out}"
    );
}

#[test]
fn the_socket_comes_from_the_flag_the_env_or_the_config() {
    let (_llm, d) = ollama();
    let home = d.dir().join("home");
    let sock = d.socket_path();
    // --socket and RUSTER_SOCKET, with no config at all.
    Running::spawn(bare(&home, &["status", "--socket", sock.to_str().unwrap()]))
        .finish()
        .success();
    let mut cmd = bare(&home, &["status"]);
    cmd.env("RUSTER_SOCKET", &sock);
    Running::spawn(cmd).finish().success();
    // The daemon's config names the socket.
    run(&d, &["status"]).success();
    // A client never writes a config file.
    let mut cmd = bare(&home, &["status"]);
    cmd.env("RUSTER_SOCKET", d.dir().join("none.sock"));
    Running::spawn(cmd).finish().code(1);
    Running::spawn(bare(
        &home,
        &["sessions", "--socket", "/nonexistent/x.sock"],
    ))
    .finish()
    .code(1);
    assert!(
        !home.join(".config").exists(),
        "a client created {}",
        home.join(".config").display()
    );
}

#[test]
fn usage_errors_exit_2_and_help_answers() {
    let home = std::env::temp_dir();
    let out = Running::spawn(bare(&home, &["send", "work"])).finish();
    out.code(2);
    assert!(
        out.stderr
            .contains("usage: ruster send SESSION MESSAGE... [--model M]"),
        "\n{out}"
    );
    let out = Running::spawn(bare(&home, &["chta"])).finish();
    out.code(2);
    assert!(out.stderr.contains("unknown command \"chta\""), "\n{out}");
    assert!(out.stderr.contains("chat, send"), "\n{out}");
    for cmd in [
        "chat", "send", "status", "sessions", "skills", "config", "history", "remind", "notify",
    ] {
        let out = Running::spawn(bare(&home, &[cmd, "--help"])).finish();
        out.success();
        assert!(
            out.stdout.starts_with(&format!("usage: ruster {cmd}")),
            "\n{out}"
        );
    }
    let out = Running::spawn(bare(&home, &["--help"])).finish();
    out.success();
    assert!(out.stdout.contains("chat [SESSION] [--model M]"), "\n{out}");
}
