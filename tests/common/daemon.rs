//! [`Daemon`]: the real `ruster` binary in a temp dir of its own.
//!
//! Layout of one test's dir (`$TMPDIR/ruster-e2e/<pid>-<n>/`):
//! `config.toml`, `home/` (the daemon's `HOME`), `data/` (its `data_dir`),
//! `ruster.sock`, and `stdout-<k>.txt` / `stderr-<k>.txt` for the k-th
//! start. The dir is removed when a test passes and kept (its path printed)
//! when it fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Client, FakeLlm};

/// How long start-up and shutdown may take before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty dir for one test.
fn fresh_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir()
        .join("ruster-e2e")
        .join(format!("{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("home")).expect("create test dir");
    dir
}

/// What goes into the config file, and the environment of the daemon.
pub struct Builder {
    dir: PathBuf,
    /// Top-level `key = value` lines, in order; `set` replaces by key.
    keys: Vec<(String, String)>,
    /// Tables (`[providers.x] ...`) appended after the keys.
    tables: Vec<String>,
    /// Used as the whole config file instead of `keys` + `tables`.
    raw: Option<String>,
    env: Vec<(String, String)>,
    /// Pass `--config PATH` instead of setting `RUSTER_CONFIG`.
    config_flag: bool,
}

impl Builder {
    fn new() -> Builder {
        let dir = fresh_dir();
        let q = |p: PathBuf| toml_str(&p.to_string_lossy());
        let keys = [
            ("socket_path", q(dir.join("ruster.sock"))),
            ("data_dir", q(dir.join("data"))),
            ("default_model", toml_str("fake/test-model")),
            ("log_level", toml_str("debug")),
            ("system_prompt", toml_str("You are the e2e test assistant.")),
            ("llm_connect_timeout_secs", "2".into()),
            ("llm_read_timeout_secs", "3".into()),
            ("llm_retries", "2".into()),
            ("llm_retry_base_ms", "50".into()),
            ("allowed_uids", "[]".into()),
        ];
        let mut b = Builder {
            dir,
            keys: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            tables: Vec::new(),
            raw: None,
            env: Vec::new(),
            config_flag: false,
        };
        // Without a fake server, the default provider points at a dead port.
        b.tables.push(provider_table(
            "fake",
            "openai",
            &format!("http://127.0.0.1:{}/v1", super::dead_port()),
        ));
        b
    }

    /// Sets a top-level key; `value` is TOML (`"3"`, `"\"text\""`, `"[]"`).
    pub fn set(mut self, key: &str, value: &str) -> Builder {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => self.keys.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// Appends TOML text after the top-level keys (a `[table]`).
    pub fn table(mut self, text: &str) -> Builder {
        self.tables.push(text.to_string());
        self
    }

    /// The default provider `fake` (kind `openai`) talks to `llm`.
    pub fn openai(mut self, llm: &FakeLlm) -> Builder {
        self.tables[0] = provider_table("fake", "openai", &format!("{}/v1", llm.url()));
        self
    }

    /// The built-in `ollama` provider talks to `llm`, and is the default.
    pub fn ollama(self, llm: &FakeLlm) -> Builder {
        self.table(&format!(
            "[providers.ollama]\nbase_url = {}\n",
            toml_str(&llm.url())
        ))
        .set("default_model", &toml_str("ollama/test-model"))
    }

    /// Writes exactly `text` as the config file.
    pub fn raw_config(mut self, text: &str) -> Builder {
        self.raw = Some(text.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Names the config file with `--config PATH` rather than `RUSTER_CONFIG`.
    pub fn config_flag(mut self) -> Builder {
        self.config_flag = true;
        self
    }

    /// The config file's text.
    pub fn config_text(&self) -> String {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut s = String::new();
        for (k, v) in &self.keys {
            s.push_str(&format!("{k} = {v}\n"));
        }
        for t in &self.tables {
            s.push('\n');
            s.push_str(t);
        }
        s
    }

    /// Writes the config and dirs but starts nothing: for tests that set
    /// the stage first (a file at the socket path, a torn history), then
    /// call [`Daemon::launch`] or [`Daemon::run_another`].
    pub fn prepare(self) -> Daemon {
        let d = Daemon {
            dir: self.dir.clone(),
            builder: self,
            child: None,
            starts: 0,
            exit: None,
        };
        fs::write(d.config_path(), d.builder.config_text()).expect("write config");
        d
    }

    /// Starts the daemon and waits until its socket accepts connections.
    #[track_caller]
    pub fn start(self) -> Daemon {
        let mut d = self.prepare();
        d.launch();
        d
    }

    /// Runs the daemon expecting it to exit on its own (bad config, socket
    /// path taken, ...) within 10 s; kills it and panics if it does not.
    #[track_caller]
    pub fn run_to_exit(self) -> Exited {
        self.prepare().run_another()
    }
}

/// The outcome of a daemon run that exited by itself.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running daemon. Dropping it kills the process; if the test is failing,
/// it first prints [`Daemon::diagnostics`]. If the test passed but the log
/// or stderr shows a panic, the drop fails the test.
pub struct Daemon {
    dir: PathBuf,
    builder: Builder,
    child: Option<Child>,
    /// How many times the binary was started (names the output files).
    starts: usize,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// A builder with the default test config (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The daemon with the default config and no reachable provider.
    pub fn start() -> Daemon {
        Builder::new().start()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("ruster.sock")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.data_dir().join("sessions").join(id)
    }
    pub fn log_path(&self) -> PathBuf {
        self.data_dir().join("logs/ruster.log")
    }
    /// The daemon's log so far ("" when there is none yet).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }
    /// stderr of the current (or last) run.
    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.join(format!("stderr-{}.txt", self.starts)))
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon not running").id()
    }

    /// A new client connection to the daemon.
    #[track_caller]
    pub fn client(&self) -> Client {
        Client::connect(&self.socket_path())
    }

    /// The command that runs the binary on this dir's config.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruster"));
        cmd.current_dir(&self.dir)
            .env("HOME", self.dir.join("home"))
            .env_remove("RUST_LOG");
        // Nothing from the developer's environment may leak in.
        for (k, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
            if k.starts_with("RUSTER_") {
                cmd.env_remove(&k);
            }
        }
        if self.builder.config_flag {
            cmd.arg("--config").arg(self.config_path());
        } else {
            cmd.env("RUSTER_CONFIG", self.config_path());
        }
        for (k, v) in &self.builder.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Spawns the binary with output captured to the k-th files.
    fn spawn(&mut self) -> Child {
        self.starts += 1;
        let out = fs::File::create(self.dir.join(format!("stdout-{}.txt", self.starts))).unwrap();
        let err = fs::File::create(self.dir.join(format!("stderr-{}.txt", self.starts))).unwrap();
        self.command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn the ruster binary")
    }

    /// Starts the binary and waits (bounded) until its socket accepts.
    #[track_caller]
    pub fn launch(&mut self) {
        assert!(
            self.child.is_none(),
            "launch: the daemon is already running"
        );
        let child = self.spawn();
        self.child = Some(child);
        self.exit = None;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.exit = Some(status);
                self.child = None;
                panic!(
                    "the daemon exited during start-up with {status}\n{}",
                    self.diagnostics()
                );
            }
            if std::os::unix::net::UnixStream::connect(self.socket_path()).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the daemon's socket did not accept within {START_TIMEOUT:?}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts one more process on the same config (this one keeps running)
    /// and waits for it to exit by itself.
    #[track_caller]
    pub fn run_another(&self) -> Exited {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("other-{n}.out")),
            self.dir.join(format!("other-{n}.err")),
        );
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap())
            .spawn()
            .expect("spawn the ruster binary");
        let status = wait_exit(&mut child, EXIT_TIMEOUT);
        let (stdout, stderr) = (read_lossy(&o), read_lossy(&e));
        match status {
            Some(status) => Exited {
                status,
                stdout,
                stderr,
            },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "expected the daemon to exit by itself, but it still ran after {EXIT_TIMEOUT:?}\n\
                     stdout:\n{stdout}\nstderr:\n{stderr}\n{}",
                    self.diagnostics()
                );
            }
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and still own (not reaped).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill(SIGTERM) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits (bounded) for the process to exit; panics with diagnostics
    /// if it does not.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon not running");
        match wait_exit(&mut child, EXIT_TIMEOUT) {
            Some(status) => {
                self.exit = Some(status);
                status
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the daemon did not exit within {EXIT_TIMEOUT:?} of SIGTERM\n{}",
                    self.diagnostics()
                );
            }
        }
    }

    /// SIGTERM, then waits for the exit.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_exit()
    }

    /// Stops the daemon (it must exit cleanly) and starts it again on the
    /// same config and dirs.
    #[track_caller]
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "the daemon exited with {status} on SIGTERM\n{}",
            self.diagnostics()
        );
        self.launch();
    }

    /// Rewrites the config file (takes effect at the next start).
    pub fn write_config(&self, text: &str) {
        fs::write(self.config_path(), text).expect("write config");
    }

    /// Creates `<dir>/skills` and makes it the only `skills_dirs` entry of
    /// a prepared (not yet launched) daemon; returns its path.
    pub fn skills_dir(&self) -> PathBuf {
        let skills = self.dir().join("skills");
        fs::create_dir_all(&skills).expect("create the skills folder");
        // Top-level keys must precede the tables: put ours first.
        let config = fs::read_to_string(self.config_path()).expect("read config");
        let dirs = serde_json::to_string(&skills.to_string_lossy()).unwrap();
        self.write_config(&format!("skills_dirs = [{dirs}]\n{config}"));
        skills
    }

    /// Everything needed to see why a test failed.
    pub fn diagnostics(&self) -> String {
        let mut s = format!(
            "\n===== ruster daemon diagnostics: {} =====\n",
            self.dir.display()
        );
        s += &format!("command: {:?}\n", self.command());
        if let Some(status) = self.exit {
            s += &format!("exit status: {status}\n");
        }
        s += &format!("--- config.toml ---\n{}\n", read_lossy(&self.config_path()));
        for k in 1..=self.starts {
            s += &format!(
                "--- stdout (run {k}) ---\n{}\n",
                tail(&read_lossy(&self.dir.join(format!("stdout-{k}.txt"))), 50)
            );
            s += &format!(
                "--- stderr (run {k}) ---\n{}\n",
                tail(&read_lossy(&self.dir.join(format!("stderr-{k}.txt"))), 80)
            );
        }
        s += &format!(
            "--- {} (last 150 lines) ---\n{}\n",
            self.log_path().display(),
            tail(&self.log(), 150)
        );
        s += "--- files ---\n";
        list_dir(&self.dir, &self.dir, &mut s);
        s + "===== end of diagnostics =====\n"
    }

    /// Prints [`Daemon::diagnostics`] to stderr (shown by `cargo test` for a
    /// failing test, or with `--nocapture`).
    pub fn dump(&self) {
        eprintln!("{}", self.diagnostics());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            self.dump();
            eprintln!("(test dir kept: {})", self.dir.display());
            return;
        }
        let panicked = |text: &str| text.contains("panicked");
        let stderrs: Vec<String> = (1..=self.starts)
            .map(|k| read_lossy(&self.dir.join(format!("stderr-{k}.txt"))))
            .collect();
        if panicked(&self.log()) || stderrs.iter().any(|e| panicked(e)) {
            self.dump();
            panic!("the daemon panicked during this test (see its log and stderr above)");
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `"text"` as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    // JSON string escapes are valid TOML basic-string escapes.
    serde_json::to_string(s).unwrap()
}

fn provider_table(name: &str, kind: &str, base_url: &str) -> String {
    format!(
        "[providers.{name}]\nkind = {}\nbase_url = {}\n",
        toml_str(kind),
        toml_str(base_url)
    )
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn list_dir(root: &Path, dir: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        let meta = fs::symlink_metadata(&path);
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        match meta {
            Ok(m) if m.is_dir() => {
                out.push_str(&format!("{rel}/\n"));
                list_dir(root, &path, out);
            }
            Ok(m) => out.push_str(&format!("{rel} ({} bytes)\n", m.len())),
            Err(_) => out.push_str(&format!("{rel} (?)\n")),
        }
    }
}
