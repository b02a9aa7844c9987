//! The shipped examples, run against the real daemon:
//! - `examples/listen.py` stays connected, creates a missing session,
//!   subscribes to an existing one, and prints a reminder's proactive event
//!   (and keepalives) as they arrive;
//! - `examples/notify-disk.sh` with a threshold of 0 always fires and its
//!   event lands in the session's history (source `disk-monitor`, delivery
//!   `next_turn`); above 100 % it sends nothing; a dead socket exits 1;
//! - `examples/client.py` (when present) streams a fake provider's reply and
//!   exits 0.
//!
//! A test whose interpreter or tool (python3, nc/socat) is missing says so
//! and passes without running: CI installs them.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to its end (at most 20 s, else kills it and panics).
#[track_caller]
fn run(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{shown} did not finish within 20 s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A child process whose stdout lines arrive on a channel; killed on drop.
struct Lines {
    child: Child,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn spawn(mut cmd: Command) -> Lines {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 10 s) for a line matching `pred`.
    #[track_caller]
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {what} within 10 s; the example printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listen_py_prints_a_reminder_as_it_arrives() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let d = Daemon::builder()
        .set("proactive_interval_secs", "1")
        .start();
    let mut c = d.client();
    c.create("pre");
    let mut cmd = Command::new("python3");
    cmd.arg(example("listen.py"))
        .arg(d.socket_path())
        .args(["pre", "fresh"]);
    let mut out = Lines::spawn(cmd);

    // It creates the missing session (and is then subscribed to both).
    wait_for(
        Duration::from_secs(10),
        "listen.py to create session `fresh`",
        || {
            c.list()
                .iter()
                .any(|s| s["session_id"] == "fresh")
                .then_some(())
        },
    );
    // Its subscription to `pre` was sent before the create: both are in
    // place once a keepalive shows the connection is being read.
    out.wait_line("a keepalive", |l| l.contains("keepalive"));

    for s in ["pre", "fresh"] {
        c.send(&json!({"action": "remind", "session_id": s,
                       "message": format!("LISTEN-{s} stand up"), "in_secs": 1}));
        c.expect_event("scheduled");
    }
    for s in ["pre", "fresh"] {
        let line = out.wait_line(&format!("the reminder of {s}"), |l| {
            l.contains(&format!("LISTEN-{s} stand up"))
        });
        assert!(
            line.contains(s) && line.contains("reminder"),
            "the line should name the session and the kind: {line}"
        );
    }
}

#[test]
fn notify_disk_sh_reports_to_the_session() {
    if !have("nc") && !have("socat") {
        eprintln!("SKIPPED: neither nc nor socat is installed");
        return;
    }
    let d = Daemon::start();
    let mut c = d.client();
    c.create("ops");
    let script = |threshold: &str, socket: PathBuf| {
        let mut cmd = Command::new("sh");
        cmd.arg(example("notify-disk.sh"))
            .args(["/", threshold, "ops"])
            .env("RUSTER_SOCKET", socket);
        run(cmd)
    };
    let events = |c: &mut Client| -> Vec<Value> {
        messages(&c.history("ops"))
            .iter()
            .filter(|m| m["role"] == "event")
            .cloned()
            .collect()
    };

    // Above 100 % it never fires: nothing sent, exit 0.
    let quiet = script("101", d.socket_path());
    assert!(quiet.status.success(), "{quiet:?}");
    assert!(events(&mut c).is_empty());

    let out = script("0", d.socket_path());
    assert!(
        out.status.success(),
        "notify-disk.sh with threshold 0 should succeed: {out:?}"
    );
    let got = events(&mut c);
    assert_eq!(got.len(), 1, "one event in history: {got:#?}");
    assert_has(&got[0], &json!({"role": "event", "source": "disk-monitor"}));
    let text = got[0]["content"].as_str().unwrap_or_default();
    assert!(
        text.contains('/') && text.contains('%'),
        "the message names the path and its usage: {text}"
    );
    if let Some(delivery) = got[0].get("delivery") {
        assert_eq!(delivery, "next_turn", "{}", got[0]);
    }

    let dead = script("0", d.dir().join("no-such.sock"));
    assert!(
        !dead.status.success(),
        "an unreachable daemon is a failure exit: {dead:?}"
    );
}

#[test]
fn client_py_streams_a_reply_and_exits_zero() {
    let script = example("client.py");
    if !script.exists() {
        eprintln!("SKIPPED: examples/client.py does not exist");
        return;
    }
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let llm = FakeLlm::openai();
    let d = Daemon::builder().openai(&llm).start();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--session", "demo"])
        .arg(d.socket_path())
        .args(["What", "is", "a", "socket?"]);
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.py should exit 0: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Hello from the fake OpenAI."),
        "the streamed reply should be printed: {stdout}"
    );
    assert!(
        llm.last_request().has_message("user", "What is a socket?"),
        "the message went to the model: {}",
        llm.last_request().body
    );
}

#[test]
fn chat_sh_streams_the_replies_to_piped_lines() {
    let which = |tool: &str| -> Option<PathBuf> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && path.starts_with('/')).then(|| PathBuf::from(path))
    };
    if which("socat").is_none() && which("nc").is_none() {
        eprintln!("SKIPPED: neither socat nor nc is installed");
        return;
    }
    let llm = FakeLlm::openai();
    let d = Daemon::builder().openai(&llm).start();

    // With socat when it is there, and with `nc -N -U` alone: a PATH that
    // holds only nc and the two filters the script uses.
    let mut runs: Vec<(&str, Option<PathBuf>)> = Vec::new();
    if which("socat").is_some() {
        runs.push(("socat", None));
    }
    if let (Some(nc), Some(sed), Some(tr)) = (which("nc"), which("sed"), which("tr")) {
        let bin = d.dir().join("nc-only-bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, target) in [("nc", nc), ("sed", sed), ("tr", tr)] {
            let _ = std::os::unix::fs::symlink(target, bin.join(name));
        }
        runs.push(("nc", Some(bin)));
    }

    for (tool, path) in runs {
        let session = format!("chat-{tool}");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg(example("chat.sh"))
            .arg(&session)
            .arg(d.socket_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().expect("spawn chat.sh");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(b"What is a \"socket\"?\nAnd a pipe?\n")
                .unwrap();
        } // EOF: the script ends once both replies are in.
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("chat.sh ({tool}) did not end within 20 s of its input");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "chat.sh ({tool}) should exit 0: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        assert_eq!(
            stdout.matches("Hello from the fake OpenAI.").count(),
            2,
            "chat.sh ({tool}) should print both streamed replies, one a line:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("[session {session}")),
            "chat.sh ({tool}) announces the session it created: {stderr}"
        );
        let mut c = d.client();
        let users: Vec<Value> = messages(&c.history(&session))
            .iter()
            .filter(|m| m["role"] == "user")
            .cloned()
            .collect();
        assert_eq!(
            users
                .iter()
                .map(|m| m["content"].clone())
                .collect::<Vec<_>>(),
            [json!("What is a \"socket\"?"), json!("And a pipe?")],
            "each line is one message, quotes intact"
        );
    }
}
