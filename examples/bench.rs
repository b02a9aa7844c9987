//! Ruster's footprint benchmark: the real release binary, measured against
//! physical baselines taken in the same run.
//!
//! ```text
//! cargo run --release --example bench              # full run (a few minutes)
//! cargo run --release --example bench -- --quick   # CI smoke run (~20 s, no model)
//! ```
//!
//! It builds (or finds) `target/release/ruster`, starts it with a temp
//! `HOME`, socket and `data_dir` (config through `RUSTER_CONFIG`), serves it
//! a fake provider of its own (an HTTP/1.1 server on 127.0.0.1 streaming
//! time-stamped tokens as OpenAI SSE or Ollama NDJSON, as fast as the socket
//! allows or paced), and prints one line per figure: median, p99, sample
//! count, the baseline measured in the same run, the ratio, and the budget
//! of `DESIGN.md` where there is one. Baselines: a bare UNIX-socket echo
//! server (this same executable run as `--echo-server`, one thread of 64 KiB
//! per connection), the same fake stream read directly over HTTP, and a
//! stripped std "hello world" built with the release profile's settings.
//!
//! With a real model (`--real-model URL`, or llama-server found on
//! 127.0.0.1:8089, or `../shared/llm/serve-smollm2.sh` when present) it also
//! times the first token of turns 2, 10 and 20 of one conversation through
//! Ruster, against the same conversation sent straight to the server with a
//! time stamp at the top of the prompt (what most agents do).
//!
//! Every loop is bounded in count and time; only 127.0.0.1 and UNIX sockets
//! are used. See docs/performance.md for the figures and what they mean.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const HELP: &str = "\
bench - Ruster's footprint benchmark (see docs/performance.md)

USAGE: cargo run --release --example bench -- [OPTIONS]

OPTIONS:
    --quick             smoke mode for CI: few iterations, a 3 s idle window,
                        no real model unless --real-model is given
    --real-model URL    an OpenAI-compatible base URL on 127.0.0.1
                        (e.g. http://127.0.0.1:8089/v1); default: probe
                        127.0.0.1:8089, else run ../shared/llm/serve-smollm2.sh
    --no-real-model     skip the real-model figures
    --idle-secs N       length of the idle-CPU window (default 60, quick 3)
    --bin PATH          the ruster binary to measure (default: build and use
                        target/release/ruster next to this executable)
    --no-build          do not run `cargo build --release` first
    --keep              keep the temp dir (configs, logs, data) at the end
";

// ---------------------------------------------------------------------------
// Time, statistics, formatting

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the bench started: the clock of the tokens' stamps.
fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Median and p99 (nearest rank) of `v`; (NaN, NaN) when empty.
fn median_p99(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
    (median, s[rank - 1])
}

#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Nanos,
    Rate,
    CpuMs,
    Count,
}

fn fmt_val(unit: Unit, v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    match unit {
        Unit::Bytes => {
            let a = v.abs();
            if a >= 1024.0 * 1024.0 {
                format!("{:.2} MiB", v / 1024.0 / 1024.0)
            } else if a >= 1024.0 {
                format!("{:.1} KiB", v / 1024.0)
            } else {
                format!("{v:.0} B")
            }
        }
        Unit::Nanos => {
            let a = v.abs();
            if a >= 1e9 {
                format!("{:.2} s", v / 1e9)
            } else if a >= 1e6 {
                format!("{:.2} ms", v / 1e6)
            } else if a >= 1e3 {
                format!("{:.1} µs", v / 1e3)
            } else {
                format!("{v:.0} ns")
            }
        }
        Unit::Rate => {
            if v >= 1e6 {
                format!("{:.2} M tok/s", v / 1e6)
            } else if v >= 1e3 {
                format!("{:.1} k tok/s", v / 1e3)
            } else {
                format!("{v:.1} tok/s")
            }
        }
        Unit::CpuMs => format!("{v:.0} ms"),
        Unit::Count => format!("{v:.0}"),
    }
}

/// One printed figure.
struct Fig {
    name: String,
    unit: Unit,
    median: f64,
    p99: f64,
    n: usize,
    /// What the baseline is, and its median, in the same unit.
    baseline: Option<(String, f64)>,
    /// Extra detail (an overhead, a breakdown).
    note: String,
    /// The budget and whether it is met.
    budget: Option<(String, bool)>,
}

impl Fig {
    fn new(name: &str, unit: Unit, samples: &[f64]) -> Fig {
        let (median, p99) = median_p99(samples);
        Fig {
            name: name.into(),
            unit,
            median,
            p99: if samples.len() > 1 { p99 } else { f64::NAN },
            n: samples.len(),
            baseline: None,
            note: String::new(),
            budget: None,
        }
    }
    fn baseline(mut self, what: &str, median: f64) -> Fig {
        self.baseline = Some((what.into(), median));
        self
    }
    fn note(mut self, note: impl Into<String>) -> Fig {
        self.note = note.into();
        self
    }
    fn budget(mut self, what: &str, ok: bool) -> Fig {
        self.budget = Some((what.into(), ok));
        self
    }
}

/// Prints figures as they come and keeps the budget tally.
struct Report {
    met: usize,
    missed: Vec<String>,
}

impl Report {
    fn header(&self) {
        println!(
            "{:<44} {:>12} {:>12} {:>6}  {:<40} {:>7}  {:<26} budget",
            "figure", "median", "p99", "n", "baseline (same run)", "ratio", "note"
        );
    }

    fn print(&mut self, f: Fig) {
        let (base, ratio) = match &f.baseline {
            Some((what, b)) => (
                format!("{} {}", what, fmt_val(f.unit, *b)),
                if *b != 0.0 && b.is_finite() && f.median.is_finite() {
                    format!("{:.2}x", f.median / b)
                } else {
                    "-".into()
                },
            ),
            None => ("-".into(), "-".into()),
        };
        let budget = match &f.budget {
            Some((what, ok)) => {
                if *ok {
                    self.met += 1;
                } else {
                    self.missed.push(f.name.clone());
                }
                format!("{what} {}", if *ok { "OK" } else { "MISS" })
            }
            None => "-".into(),
        };
        println!(
            "{:<44} {:>12} {:>12} {:>6}  {:<40} {:>7}  {:<26} {}",
            f.name,
            fmt_val(f.unit, f.median),
            fmt_val(f.unit, f.p99),
            f.n,
            base,
            ratio,
            if f.note.is_empty() { "-" } else { &f.note },
            budget
        );
        let _ = io::stdout().flush();
    }

    fn skip(&self, name: &str, why: &str) {
        println!("{name:<44} SKIPPED: {why}");
        let _ = io::stdout().flush();
    }
}

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

// ---------------------------------------------------------------------------
// Options and plan

#[derive(Clone)]
enum RealModel {
    Auto,
    Url(String),
    Off,
}

struct Opts {
    quick: bool,
    real: RealModel,
    idle_secs: Option<u64>,
    bin: Option<PathBuf>,
    build: bool,
    keep: bool,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        real: RealModel::Auto,
        idle_secs: None,
        bin: None,
        build: true,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--real-model" => {
                o.real = RealModel::Url(it.next().ok_or("--real-model needs a URL")?);
            }
            "--no-real-model" => o.real = RealModel::Off,
            "--idle-secs" => {
                let n = it.next().ok_or("--idle-secs needs a number")?;
                let n: u64 = n.parse().map_err(|_| format!("bad --idle-secs {n:?}"))?;
                o.idle_secs = Some(n.clamp(1, 600));
            }
            "--bin" => o.bin = Some(PathBuf::from(it.next().ok_or("--bin needs a path")?)),
            "--no-build" => o.build = false,
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(o)
}

/// How much of everything: the full run, or the CI smoke run.
struct Plan {
    ping_n: usize,
    startup_runs: usize,
    rss_runs: usize,
    conns: usize,
    conn_reps: usize,
    flood_tokens: usize,
    flood_runs: usize,
    par_sessions: usize,
    par_tokens: usize,
    par_runs: usize,
    paced_tokens: usize,
    paced_gap_us: u64,
    ttft_runs: usize,
    idle_secs: u64,
    idle_clients: usize,
    sessions: usize,
    history_lines: usize,
    skills: usize,
}

impl Plan {
    fn new(o: &Opts) -> Plan {
        let q = o.quick;
        Plan {
            ping_n: if q { 2_000 } else { 20_000 },
            startup_runs: if q { 3 } else { 15 },
            rss_runs: if q { 2 } else { 5 },
            conns: 1_000,
            conn_reps: if q { 1 } else { 3 },
            flood_tokens: if q { 2_000 } else { 20_000 },
            flood_runs: if q { 2 } else { 5 },
            par_sessions: 32,
            par_tokens: if q { 200 } else { 2_000 },
            par_runs: if q { 1 } else { 3 },
            paced_tokens: if q { 100 } else { 500 },
            paced_gap_us: 1_000,
            ttft_runs: if q { 20 } else { 200 },
            idle_secs: o.idle_secs.unwrap_or(if q { 3 } else { 60 }),
            idle_clients: 10,
            sessions: 1_000,
            history_lines: 200,
            skills: 100,
        }
    }
}

// ---------------------------------------------------------------------------
// /proc

fn status_field(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resident set size in bytes.
fn rss(pid: u32) -> u64 {
    status_field(pid, "VmRSS").unwrap_or(0) * 1024
}

fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads").unwrap_or(0)
}

/// utime + stime in clock ticks, and the tick length in ms.
fn cpu_ticks(pid: u32) -> (u64, f64) {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (get(11) + get(12), 1000.0 / hz)
}

/// Nanoseconds on CPU and context switches, summed over the live threads.
fn sched(pid: u32) -> (u64, u64) {
    let (mut ns, mut switches) = (0, 0);
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            let p = t.path();
            if let Ok(s) = fs::read_to_string(p.join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if let Ok(s) = fs::read_to_string(p.join("status")) {
                for l in s.lines() {
                    if l.starts_with("voluntary_ctxt_switches")
                        || l.starts_with("nonvoluntary_ctxt_switches")
                    {
                        switches += l
                            .split_whitespace()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                }
            }
        }
    }
    (ns, switches)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft one.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit get a valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max.min(1 << 20),
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

// ---------------------------------------------------------------------------
// Processes: the daemon and the echo server

/// A child process we started; SIGTERM then SIGKILL on drop.
struct Proc {
    child: Child,
    sock: PathBuf,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, up to 5 s, then SIGKILL.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        progress(&format!(
            "{} did not stop on SIGTERM; killing it",
            self.name
        ));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How to start one daemon instance.
struct DaemonSpec {
    dir: PathBuf,
    config: String,
    env: Vec<(String, String)>,
    /// Soft RLIMIT_NOFILE for the child (default: inherit the bench's).
    nofile: Option<u64>,
}

/// Polls until `sock` accepts, the child exits, or 10 s pass; returns the
/// time from `t0`.
fn wait_ready(child: &mut Child, sock: &Path, t0: Instant, what: &str) -> Result<Duration, String> {
    let deadline = t0 + Duration::from_secs(10);
    loop {
        if UnixStream::connect(sock).is_ok() {
            return Ok(t0.elapsed());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("{what} exited during start-up with {st}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: {} did not accept within 10 s",
                sock.display()
            ));
        }
        thread::sleep(Duration::from_micros(100));
    }
}

fn start_daemon(bin: &Path, spec: &DaemonSpec) -> Result<(Proc, Duration), String> {
    let sock = spec.dir.join("ruster.sock");
    let cfg = spec.dir.join("config.toml");
    fs::create_dir_all(spec.dir.join("home")).map_err(|e| e.to_string())?;
    fs::write(&cfg, &spec.config).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&sock);
    let n = fs::read_dir(&spec.dir).map(|d| d.count()).unwrap_or(0);
    let err =
        fs::File::create(spec.dir.join(format!("stderr-{n}.txt"))).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.current_dir(&spec.dir)
        .env("HOME", spec.dir.join("home"))
        .env("RUSTER_CONFIG", &cfg)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RUSTER_") && k != "RUSTER_CONFIG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(soft) = spec.nofile {
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut r: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                r.rlim_cur = soft.min(r.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &r);
                Ok(())
            });
        }
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let ready = match wait_ready(&mut child, &sock, t0, "ruster") {
        Ok(d) => d,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let errs =
                fs::read_to_string(spec.dir.join(format!("stderr-{n}.txt"))).unwrap_or_default();
            return Err(format!("{e}\nstderr: {errs}"));
        }
    };
    Ok((
        Proc {
            child,
            sock,
            name: "ruster",
        },
        ready,
    ))
}

fn start_echo(sock: &Path) -> Result<(Proc, Duration), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let _ = fs::remove_file(sock);
    let t0 = Instant::now();
    let mut child = Command::new(exe)
        .arg("--echo-server")
        .arg(sock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the echo server: {e}"))?;
    let ready = wait_ready(&mut child, sock, t0, "echo server")?;
    Ok((
        Proc {
            child,
            sock: sock.to_path_buf(),
            name: "echo",
        },
        ready,
    ))
}

/// The physical baseline: a bare UNIX-socket line echo server, one thread
/// with a 64 KiB stack per connection. Runs until killed.
fn echo_server(path: &Path) -> ! {
    let _ = fs::remove_file(path);
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo server: cannot bind {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = thread::Builder::new().stack_size(64 << 10).spawn(move || {
            let Ok(read) = stream.try_clone() else { return };
            let mut r = BufReader::with_capacity(8 << 10, read);
            let mut w = stream;
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if w.write_all(&line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    std::process::exit(0)
}

// ---------------------------------------------------------------------------
// Socket client

const PING: &[u8] = b"{\"action\":\"ping\"}\n";

/// A JSON Lines connection with a bounded read timeout.
struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(sock: &Path) -> io::Result<Client> {
        let s = UnixStream::connect(sock)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            r: BufReader::with_capacity(64 << 10, s.try_clone()?),
            w: s,
            buf: Vec::with_capacity(4096),
        })
    }

    fn send(&mut self, v: &Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        self.w.write_all(&line)
    }

    /// The next line (without `\n`).
    fn line(&mut self) -> io::Result<&[u8]> {
        self.buf.clear();
        if self.r.read_until(b'\n', &mut self.buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(&self.buf)
    }

    /// Reads until an event named `name`; an `error` event first is an error.
    fn expect(&mut self, name: &str) -> io::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let v: Value = serde_json::from_slice(self.line()?)?;
            if v["event"] == name {
                return Ok(v);
            }
            if v["event"] == "error" {
                return Err(io::Error::other(format!("expected {name}, got {v}")));
            }
        }
        Err(io::Error::other(format!("no {name} event within 30 s")))
    }

    /// One ping, answered by a pong (other events are skipped).
    fn ping(&mut self) -> io::Result<()> {
        self.w.write_all(PING)?;
        for _ in 0..100 {
            // The echo server sends the ping itself back.
            let l = self.line()?;
            if contains(l, b"\"pong\"") || contains(l, b"\"ping\"") {
                return Ok(());
            }
        }
        Err(io::Error::other("no pong among 100 lines"))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The stamp `<ns>` a fake token carries, if any.
fn stamp(line: &[u8]) -> Option<u64> {
    let i = find(line, b"<")? + 1;
    let j = line[i..].iter().position(|&b| b == b'>')? + i;
    std::str::from_utf8(&line[i..j]).ok()?.parse().ok()
}

/// One ping on a raw stream (for the many-connection tests).
fn raw_ping(s: &mut UnixStream) -> io::Result<()> {
    s.write_all(PING)?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 512];
    while got.len() < 64 << 10 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        got.extend_from_slice(&chunk[..n]);
        if got.last() == Some(&b'\n') && (contains(&got, b"pong") || contains(&got, b"ping")) {
            return Ok(());
        }
    }
    Err(io::Error::other("no pong"))
}

// ---------------------------------------------------------------------------
// Fake provider

/// What a request asks the fake provider for: `BENCH n=N gap_us=G` in the
/// last user message.
struct Spec {
    n: usize,
    gap_us: u64,
}

fn spec_of(body: &Value) -> Spec {
    let text = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let mut spec = Spec { n: 1, gap_us: 0 };
    if let Some(i) = text.find("BENCH") {
        for kv in text[i..].split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("n", v)) => spec.n = v.parse().unwrap_or(1).min(1_000_000),
                Some(("gap_us", v)) => spec.gap_us = v.parse().unwrap_or(0).min(1_000_000),
                _ => {}
            }
        }
    }
    spec
}

fn start_fake() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::Builder::new()
        .name("fake-accept".into())
        .spawn(move || {
            for s in listener.incoming().flatten() {
                let _ = thread::Builder::new()
                    .name("fake-conn".into())
                    .stack_size(256 << 10)
                    .spawn(move || {
                        let _ = fake_conn(s);
                    });
            }
        })?;
    Ok(port)
}

/// Reads one HTTP request (headers + body), bounded in size and time.
fn read_request(r: &mut impl BufRead) -> io::Result<(String, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut len, mut chunked) = (0usize, false);
    for _ in 0..100 {
        line.clear();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0).min(64 << 20);
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        for _ in 0..100_000 {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16)
                .unwrap_or(0)
                .min(64 << 20);
            if size == 0 {
                r.read_line(&mut line)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok((path, body))
}

fn fake_conn(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let (path, body) = read_request(&mut r)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let spec = spec_of(&body);
    let ollama = path.ends_with("/api/chat");
    let mut w = stream;
    let ctype = if ollama {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    w.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let mut out = String::with_capacity(512);
    let mut payload = String::with_capacity(512);
    for i in 0..spec.n {
        if i > 0 && spec.gap_us > 0 {
            thread::sleep(Duration::from_micros(spec.gap_us));
        }
        payload.clear();
        let ts = now_ns();
        if ollama {
            let _ = writeln!(
                payload,
                "{{\"model\":\"bench\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"<{ts}> \"}},\"done\":false}}"
            );
        } else {
            let _ = write!(
                payload,
                "data: {{\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"<{ts}> \"}},\"finish_reason\":null}}]}}\n\n"
            );
        }
        out.clear();
        let _ = write!(out, "{:x}\r\n{payload}\r\n", payload.len());
        // One write per token, as a model server flushes each token.
        w.write_all(out.as_bytes())?;
    }
    payload.clear();
    if ollama {
        let _ = writeln!(
            payload,
            "{{\"model\":\"bench\",\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":1,\"eval_count\":{}}}",
            spec.n
        );
    } else {
        payload.push_str("data: {\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    }
    w.write_all(format!("{:x}\r\n{payload}\r\n0\r\n\r\n", payload.len()).as_bytes())?;
    let _ = w.shutdown(Shutdown::Write);
    // Let the client read to the end before the socket goes.
    let mut sink = [0u8; 256];
    let _ = r.get_mut().set_read_timeout(Some(Duration::from_secs(2)));
    let _ = r.read(&mut sink);
    Ok(())
}

// ---------------------------------------------------------------------------
// Streams, read through Ruster and directly

/// What one streamed reply looked like from the reader's side.
#[derive(Default)]
struct Stream {
    tokens: usize,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Provider write → reader read, per token (ns), when collected.
    lat: Vec<f64>,
    text: String,
}

impl Stream {
    fn token(&mut self, line: &[u8], collect: bool) {
        let t = Instant::now();
        if collect {
            if let Some(ts) = stamp(line) {
                self.lat.push(now_ns().saturating_sub(ts) as f64);
            }
        }
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.tokens += 1;
    }

    /// Tokens per second between the first and the last token.
    fn rate(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) if self.tokens > 1 && b > a => {
                (self.tokens - 1) as f64 / (b - a).as_secs_f64()
            }
            _ => f64::NAN,
        }
    }
}

/// Reads the events of one turn of `session` until its terminal event.
/// With `cancel_after`, sends `cancel` after that many deltas and reads on
/// to the terminal event.
fn ruster_turn(
    c: &mut Client,
    session: &str,
    collect: bool,
    keep_text: bool,
    cancel_after: Option<(usize, Duration)>,
) -> io::Result<Stream> {
    let mut s = Stream::default();
    let started = Instant::now();
    let limit = Duration::from_secs(120);
    let mut cancelled = false;
    let sid = format!("\"session_id\":\"{session}\"");
    loop {
        if started.elapsed() > limit {
            return Err(io::Error::other("turn did not end within 120 s"));
        }
        let line = c.line()?;
        if !contains(line, sid.as_bytes()) {
            continue;
        }
        if contains(line, b"\"event\":\"response\"") {
            if contains(line, b"\"done\":true") {
                return Ok(s);
            }
            s.token(line, collect);
            if keep_text {
                let v: Value = serde_json::from_slice(line)?;
                s.text.push_str(v["delta"].as_str().unwrap_or(""));
            }
        } else if contains(line, b"\"event\":\"error\"") {
            return Err(io::Error::other(String::from_utf8_lossy(line).into_owned()));
        }
        if let Some((n, max)) = cancel_after {
            if !cancelled && (s.tokens >= n || started.elapsed() > max) {
                cancelled = true;
                c.send(&json!({"action": "cancel", "session_id": session}))?;
            }
        }
    }
}

/// POSTs `body` to 127.0.0.1:`port` `path` and reads the stream (SSE or
/// NDJSON) to its end, the way a client of the provider would.
fn direct_stream(
    port: u16,
    path: &str,
    body: &Value,
    collect: bool,
    keep_text: bool,
) -> io::Result<Stream> {
    let mut s = Stream::default();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = serde_json::to_vec(body)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    (&tcp).write_all(&req)?;
    let mut r = BufReader::with_capacity(64 << 10, &tcp);
    let mut line = Vec::with_capacity(1024);
    let mut in_body = false;
    let started = Instant::now();
    loop {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(io::Error::other("stream did not end within 120 s"));
        }
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(s);
        }
        if !in_body {
            if line == b"\r\n" {
                in_body = true;
            } else if line.starts_with(b"HTTP/1.1") && !contains(&line, b" 200") {
                return Err(io::Error::other(
                    String::from_utf8_lossy(&line).into_owned(),
                ));
            }
            continue;
        }
        let data = if let Some(d) = line.strip_prefix(b"data: ") {
            if d.starts_with(b"[DONE]") {
                return Ok(s);
            }
            d
        } else if line.starts_with(b"{") {
            if contains(&line, b"\"done\":true") {
                return Ok(s);
            }
            &line[..]
        } else {
            continue; // chunk sizes, blank lines
        };
        // A token is a non-empty content string.
        if let Some(i) = find(data, b"\"content\":\"") {
            if data.get(i + 11).is_some_and(|&b| b != b'"') {
                s.token(data, collect);
                if keep_text {
                    let v: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
                    let t = v["choices"][0]["delta"]["content"]
                        .as_str()
                        .or(v["message"]["content"].as_str())
                        .unwrap_or("");
                    s.text.push_str(t);
                }
            }
        }
    }
}

fn bench_body(model: &str, msg: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": msg}]})
}

// ---------------------------------------------------------------------------
// Data on disk

fn write_skills(dir: &Path, n: usize) -> io::Result<()> {
    let topics = [
        "unit conversion",
        "weather lookups",
        "log summaries",
        "git chores",
        "shopping lists",
        "calendar planning",
        "recipe scaling",
        "backup checks",
        "network diagnosis",
        "writing emails",
    ];
    for i in 0..n {
        let name = format!("skill-{i:03}");
        let d = dir.join(&name);
        fs::create_dir_all(&d)?;
        let topic = topics[i % topics.len()];
        let mut body = format!(
            "---\nname: {name}\ndescription: Helps with {topic} (variant {i}); use it when the user asks about {topic}.\nlicense: MIT\n---\n\n# {name}\n\n"
        );
        for k in 0..12 {
            let _ = writeln!(
                body,
                "{}. Step {k} of doing {topic}: check the inputs, do the work, report briefly.",
                k + 1
            );
        }
        fs::write(d.join("SKILL.md"), body)?;
    }
    Ok(())
}

/// `<data_dir>/sessions/<id>/meta.json` + `history.jsonl` in the format of
/// src/session.rs.
fn write_sessions(data: &Path, n: usize, lines: usize) -> io::Result<()> {
    let root = data.join("sessions");
    for i in 0..n {
        let d = root.join(format!("s{i:04}"));
        fs::create_dir_all(&d)?;
        let meta = json!({
            "model": "fake/bench",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-02T00:00:00.000Z",
            "messages": lines,
        });
        fs::write(d.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
        let mut h = String::with_capacity(lines * 200);
        for k in 0..lines {
            let m = if k % 2 == 0 {
                json!({"role": "user", "content": format!("Question {k} of session {i}: what should I check before backing up the photos folder tonight?"), "ts": "2026-01-01T10:00:00.000Z"})
            } else {
                json!({"role": "assistant", "content": format!("Answer {k}: make sure the disk has room, the folder is not being written to, and run the backup with verification on."), "ts": "2026-01-01T10:00:01.000Z", "model": "fake/bench"})
            };
            h.push_str(&m.to_string());
            h.push('\n');
        }
        fs::write(d.join("history.jsonl"), h)?;
    }
    Ok(())
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A daemon config in `dir` with the fake provider (and the real one).
fn config_text(
    dir: &Path,
    data: &Path,
    skills: &Path,
    fake_port: u16,
    real: Option<&str>,
) -> String {
    let mut c = String::new();
    let q = |p: &Path| toml_str(&p.to_string_lossy());
    let _ = writeln!(c, "socket_path = {}", q(&dir.join("ruster.sock")));
    let _ = writeln!(c, "data_dir = {}", q(data));
    let _ = writeln!(c, "skills_dirs = [{}]", q(skills));
    let _ = writeln!(c, "default_model = \"fake/bench\"");
    let _ = writeln!(c, "log_level = \"info\"");
    let _ = writeln!(c, "system_prompt = {}", toml_str(SYSTEM));
    let _ = writeln!(c, "context_tokens = 3072");
    let _ = writeln!(c, "reply_reserve_tokens = 512");
    // 1,000 idle clients plus the bench's own, with room for slow closes.
    let _ = writeln!(c, "max_connections = 1100");
    let _ = writeln!(c, "llm_connect_timeout_secs = 5");
    let _ = writeln!(c, "llm_read_timeout_secs = 60");
    let _ = writeln!(c, "llm_retries = 0");
    let _ = writeln!(
        c,
        "\n[providers.fake]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{fake_port}/v1\""
    );
    let _ = writeln!(
        c,
        "\n[providers.fakeo]\nkind = \"ollama\"\nbase_url = \"http://127.0.0.1:{fake_port}\""
    );
    if let Some(url) = real {
        let _ = writeln!(
            c,
            "\n[providers.real]\nkind = \"openai\"\nbase_url = {}",
            toml_str(url)
        );
    }
    c
}

const SYSTEM: &str = "You are Ruster, a helpful personal assistant running on the user's own Linux machine. Answer clearly and briefly.";

// ---------------------------------------------------------------------------
// Binary, build, machine

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target dir this executable was built into (`<t>/<profile>/examples/bench`).
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.to_path_buf())
}

fn locate_binary(o: &Opts) -> Result<PathBuf, String> {
    if let Some(b) = &o.bin {
        return Ok(b.clone());
    }
    let target = target_dir().ok_or("cannot tell the target dir from this executable's path")?;
    let bin = target.join("release/ruster");
    if o.build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        for attempt in 1..=3 {
            progress(&format!(
                "cargo build --release --bin ruster (attempt {attempt})"
            ));
            let mut cmd = Command::new(&cargo);
            // `cargo run` puts the package's variables in our environment;
            // build scripts (ring's) rerun when they differ, so a nested
            // build with them would rebuild, and so would the next outer one.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy().into_owned();
                if k.starts_with("CARGO_MANIFEST_")
                    || k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_CFG_")
                    || matches!(
                        k.as_str(),
                        "CARGO_CRATE_NAME"
                            | "CARGO_BIN_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                            | "CARGO_RUSTC_CURRENT_DIR"
                            | "OUT_DIR"
                    )
                {
                    cmd.env_remove(k);
                }
            }
            let st = cmd
                .args(["build", "--release", "--bin", "ruster", "--manifest-path"])
                .arg(manifest_dir().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .stdout(Stdio::null())
                .status();
            match st {
                Ok(s) if s.success() => break,
                Ok(s) => progress(&format!("the build failed ({s})")),
                Err(e) => progress(&format!("cannot run cargo: {e}")),
            }
            if attempt < 3 {
                thread::sleep(Duration::from_secs(15));
            } else if bin.is_file() {
                progress("WARNING: measuring the existing (possibly stale) release binary");
            }
        }
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found; run cargo build --release",
            bin.display()
        ))
    }
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Size of `bin` after `strip` (a copy is stripped; the profile may
/// already strip it).
fn stripped_size(bin: &Path, tmp: &Path) -> (u64, u64) {
    let on_disk = fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let copy = tmp.join("ruster.stripped");
    let stripped = fs::copy(bin, &copy)
        .ok()
        .and_then(|_| {
            Command::new("strip")
                .arg(&copy)
                .stderr(Stdio::null())
                .status()
                .ok()
        })
        .filter(|s| s.success())
        .and_then(|_| fs::metadata(&copy).ok())
        .map_or(on_disk, |m| m.len());
    (on_disk, stripped)
}

/// The floor: a std "hello world" with the release profile's settings.
fn hello_size(tmp: &Path) -> Option<u64> {
    let src = tmp.join("hello.rs");
    fs::write(&src, "fn main() { println!(\"hello\"); }\n").ok()?;
    let out = tmp.join("hello");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let st = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-C",
            "opt-level=s",
            "-C",
            "lto=fat",
            "-C",
            "codegen-units=1",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    fs::metadata(&out).ok().map(|m| m.len())
}

// ---------------------------------------------------------------------------
// Real model

/// Host and port of an `http://127.0.0.1:PORT/...` URL, and its path.
fn loopback_url(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let (host, port) = hostport.rsplit_once(':')?;
    if host != "127.0.0.1" && host != "localhost" {
        return None;
    }
    Some((
        port.parse().ok()?,
        format!("/{}", path.trim_end_matches('/')).replace("//", "/"),
    ))
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The real model's base URL and model name, and whether we started it.
struct Real {
    url: String,
    port: u16,
    path: String,
    model: String,
    started_by_us: Option<(PathBuf, u16)>,
}

/// Port of the bench's own llama-server (not the e2e tests' 18089, not
/// the developer's 8089).
const PRIVATE_PORT: u16 = 18189;

/// Runs `serve-smollm2.sh PORT` (bounded to 20 minutes: the first run
/// builds llama-server); returns its base URL with `/v1`.
fn start_model(script: &Path, port: u16) -> Result<String, String> {
    progress(&format!(
        "starting a private llama-server on {port} with serve-smollm2.sh (the first run builds it: minutes)"
    ));
    let mut child = Command::new("bash")
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    match status {
        Some(st) if st.success() => {}
        _ => {
            stop_model(script, port);
            return Err(format!(
                "{} {port} did not start the model",
                script.display()
            ));
        }
    }
    let url = out.lines().last().unwrap_or("").trim().to_string();
    Ok(if url.ends_with("/v1") {
        url
    } else {
        format!("{url}/v1")
    })
}

/// Stops the server `start_model` started (the script's pid file only).
fn stop_model(script: &Path, port: u16) {
    let _ = Command::new("bash")
        .arg(script)
        .args(["stop", &port.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn find_real_model(o: &Opts) -> Result<Real, String> {
    let (url, mut started) = match &o.real {
        RealModel::Off => return Err("--no-real-model".into()),
        RealModel::Auto if o.quick => {
            return Err("--quick (pass --real-model URL to include it)".into())
        }
        RealModel::Url(u) => (u.clone(), None),
        RealModel::Auto => {
            // A private server when the script is there: the shared one on
            // 8089 has one slot, and other users' requests would both queue
            // ours and evict the KV cache this figure is about.
            let script = manifest_dir().join("../shared/llm/serve-smollm2.sh");
            match script.is_file().then(|| start_model(&script, PRIVATE_PORT)) {
                Some(Ok(url)) => (url, Some((script, PRIVATE_PORT))),
                other => {
                    if let Some(Err(e)) = other {
                        progress(&format!("{e}; trying 127.0.0.1:8089"));
                    }
                    if http_get(8089, "/health").is_none() {
                        return Err(format!(
                            "nothing answers on 127.0.0.1:8089 and {} could not start one",
                            script.display()
                        ));
                    }
                    ("http://127.0.0.1:8089/v1".to_string(), None)
                }
            }
        }
    };
    let (port, path) = loopback_url(&url)
        .ok_or_else(|| format!("{url}: only http://127.0.0.1:PORT/... URLs are used"))?;
    let models = http_get(port, &format!("{path}/models"));
    if models.is_none() {
        if let Some(script) = started.take() {
            stop_model(&script.0, script.1);
        }
        return Err(format!("{url}/models does not answer"));
    }
    let model = models
        .and_then(|t| {
            let body = t.split_once("\r\n\r\n")?.1.to_string();
            let v: Value = serde_json::from_str(body.trim()).ok()?;
            v["data"][0]["id"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| "smollm2".into());
    Ok(Real {
        url,
        port,
        path,
        model,
        started_by_us: started,
    })
}

const QUESTIONS: [&str; 20] = [
    "Hi! Reply in one short sentence.",
    "Name one fruit. One short sentence.",
    "What colour is the sky? One short sentence.",
    "Name a big city. One short sentence.",
    "What is 2 plus 2? One short sentence.",
    "Name a pet animal. One short sentence.",
    "What do bees make? One short sentence.",
    "Name a season. One short sentence.",
    "What is ice made of? One short sentence.",
    "Name a musical instrument. One short sentence.",
    "What do we use an umbrella for? One short sentence.",
    "Name a planet. One short sentence.",
    "What is the opposite of hot? One short sentence.",
    "Name a vegetable. One short sentence.",
    "What do cows drink? One short sentence.",
    "Name a colour of a banana. One short sentence.",
    "What shape is a ball? One short sentence.",
    "Name a day of the week. One short sentence.",
    "What do fish live in? One short sentence.",
    "Say goodbye. One short sentence.",
];
/// Replies are cut to this many tokens on both paths, to bound the time.
const REAL_REPLY_TOKENS: usize = 32;

/// TTFT (ns) of every turn through Ruster, and the same conversation sent
/// straight to the server with the time stamp first.
fn real_model_ttfts(sock: &Path, real: &Real) -> io::Result<(Vec<f64>, Vec<f64>)> {
    let mut c = Client::connect(sock)?;
    c.send(
        &json!({"action": "create", "session_id": "real", "model": format!("real/{}", real.model)}),
    )?;
    c.expect("created")?;
    // A slow or busy server must not hold the bench for long.
    let deadline = Instant::now() + Duration::from_secs(8 * 60);
    let late = || io::Error::other("the real-model conversation took over 8 minutes");
    let mut via = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        if Instant::now() > deadline {
            return Err(late());
        }
        thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        c.send(&json!({"action": "send", "session_id": "real", "message": q}))?;
        let s = ruster_turn(
            &mut c,
            "real",
            false,
            false,
            Some((REAL_REPLY_TOKENS, Duration::from_secs(20))),
        )?;
        let ttft = s.first.map_or(f64::NAN, |f| (f - t0).as_nanos() as f64);
        progress(&format!(
            "real model via ruster, turn {}: first token after {}",
            i + 1,
            fmt_val(Unit::Nanos, ttft)
        ));
        via.push(ttft);
    }
    let mut direct = Vec::new();
    let mut history: Vec<Value> = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        if Instant::now() > deadline {
            return Err(late());
        }
        thread::sleep(Duration::from_millis(300));
        let stamp = format!("Current date and time: {:?}", std::time::SystemTime::now());
        let mut messages =
            vec![json!({"role": "system", "content": format!("{stamp}\n\n{SYSTEM}")})];
        messages.extend(history.iter().cloned());
        messages.push(json!({"role": "user", "content": q}));
        let body = json!({"model": real.model, "stream": true, "max_tokens": REAL_REPLY_TOKENS, "messages": messages});
        let t0 = Instant::now();
        let s = direct_stream(
            real.port,
            &format!("{}/chat/completions", real.path),
            &body,
            false,
            true,
        )?;
        let ttft = s.first.map_or(f64::NAN, |f| (f - t0).as_nanos() as f64);
        progress(&format!(
            "real model direct (stamp first), turn {}: first token after {}",
            i + 1,
            fmt_val(Unit::Nanos, ttft)
        ));
        direct.push(ttft);
        history.push(json!({"role": "user", "content": q}));
        history.push(json!({"role": "assistant", "content": s.text}));
    }
    Ok((via, direct))
}

// ---------------------------------------------------------------------------
// Measurements

/// RSS, after start-up and a short settle, of `runs` fresh starts; and
/// the split of the last one (anonymous, file-backed, threads).
fn idle_rss_runs(
    runs: usize,
    mut start: impl FnMut() -> Result<Proc, String>,
) -> Result<(Vec<f64>, String), String> {
    let mut v = Vec::new();
    let mut split = String::new();
    for _ in 0..runs {
        let mut p = start()?;
        thread::sleep(Duration::from_millis(300));
        let pid = p.pid();
        v.push(rss(pid) as f64);
        split = format!(
            "anon {}, file {}, {} threads",
            fmt_val(
                Unit::Bytes,
                status_field(pid, "RssAnon").unwrap_or(0) as f64 * 1024.0
            ),
            fmt_val(
                Unit::Bytes,
                status_field(pid, "RssFile").unwrap_or(0) as f64 * 1024.0
            ),
            threads(pid)
        );
        p.stop();
    }
    Ok((v, split))
}

/// Figures of repeated idle-connection bursts.
struct ConnSeries {
    per: Vec<f64>,
    with: Vec<f64>,
    note: String,
    all_held: bool,
}

impl Default for ConnSeries {
    fn default() -> ConnSeries {
        ConnSeries {
            per: Vec::new(),
            with: Vec::new(),
            note: String::new(),
            all_held: true,
        }
    }
}

/// Opens `n` connections, pings each, measures RSS; returns (RSS before,
/// RSS with the connections, RSS after closing them, threads with them,
/// connections that answered).
fn conn_rss(p: &Proc, n: usize) -> (u64, u64, u64, u64, usize) {
    let pid = p.pid();
    let threads0 = threads(pid);
    let before = rss(pid);
    let mut conns = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..n {
        if Instant::now() > deadline {
            break;
        }
        let Ok(mut s) = UnixStream::connect(&p.sock) else {
            break;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if raw_ping(&mut s).is_err() {
            break;
        }
        conns.push(s);
    }
    let held = conns.len();
    thread::sleep(Duration::from_millis(500));
    let with = rss(pid);
    let th = threads(pid);
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads(pid) > threads0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    (before, with, rss(pid), th, held)
}

fn ping_samples(sock: &Path, n: usize) -> io::Result<Vec<f64>> {
    let mut c = Client::connect(sock)?;
    for _ in 0..(n / 10).max(50) {
        c.ping()?; // warm-up
    }
    let mut v = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..n {
        let t = Instant::now();
        c.ping()?;
        v.push(t.elapsed().as_nanos() as f64);
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(v)
}

fn startup_runs(
    runs: usize,
    mut start: impl FnMut() -> Result<(Proc, Duration), String>,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (mut ready, mut pong) = (Vec::new(), Vec::new());
    // One unmeasured start first: page cache warm, first-run files written.
    start()?.0.stop();
    for _ in 0..runs {
        let t0 = Instant::now();
        let (mut p, d) = start()?;
        let mut c = Client::connect(&p.sock).map_err(|e| e.to_string())?;
        c.w.write_all(PING).map_err(|e| e.to_string())?;
        let got = c.line().map(|l| l.to_vec()).map_err(|e| e.to_string())?;
        pong.push(t0.elapsed().as_nanos() as f64);
        if !contains(&got, b"pong") && !contains(&got, b"ping") {
            return Err(format!(
                "unexpected first answer {}",
                String::from_utf8_lossy(&got)
            ));
        }
        ready.push(d.as_nanos() as f64);
        drop(c);
        p.stop();
    }
    Ok((ready, pong))
}

// ---------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--echo-server") {
        match args.get(2) {
            Some(p) => echo_server(Path::new(p)),
            None => std::process::exit(2),
        }
    }
    EPOCH.get_or_init(Instant::now);
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    match run(&o) {
        Ok(missed) => {
            if !missed.is_empty() {
                progress(&format!("budget missed: {}", missed.join("; ")));
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run(o: &Opts) -> Result<Vec<String>, String> {
    let total = Instant::now();
    if cfg!(debug_assertions) {
        progress(
            "WARNING: the bench itself is a debug build; use cargo run --release --example bench",
        );
    }
    let plan = Plan::new(o);
    let nofile = raise_nofile();
    let bin = locate_binary(o)?;
    let tmp = std::env::temp_dir().join(format!("ruster-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let result = run_in(o, &plan, &bin, &tmp, nofile);
    if o.keep {
        progress(&format!("kept {}", tmp.display()));
    } else {
        let _ = fs::remove_dir_all(&tmp);
    }
    progress(&format!(
        "total time {:.1} s",
        total.elapsed().as_secs_f64()
    ));
    result
}

fn run_in(
    o: &Opts,
    plan: &Plan,
    bin: &Path,
    tmp: &Path,
    nofile: u64,
) -> Result<Vec<String>, String> {
    let mut rep = Report {
        met: 0,
        missed: Vec::new(),
    };
    let version = Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "# Ruster footprint bench ({}) - {version} - {} - {cores} cores, {} - Linux {} - RLIMIT_NOFILE {nofile}{}",
        if o.quick { "quick" } else { "full" },
        bin.display(),
        cpu_model(),
        kernel.trim(),
        std::env::var("MALLOC_ARENA_MAX").map(|v| format!(" - MALLOC_ARENA_MAX={v}")).unwrap_or_default()
    );

    // Set-up: the fake provider, the data sets, the real model.
    let fake_port = start_fake().map_err(|e| format!("fake provider: {e}"))?;
    let skills = tmp.join("skills");
    let empty_skills = tmp.join("no-skills");
    fs::create_dir_all(&empty_skills).map_err(|e| e.to_string())?;
    progress(&format!(
        "writing {} skills and {} sessions x {} history lines",
        plan.skills, plan.sessions, plan.history_lines
    ));
    let loaded_data = tmp.join("loaded-data");
    write_skills(&skills, plan.skills).map_err(|e| format!("writing skills: {e}"))?;
    write_sessions(&loaded_data, plan.sessions, plan.history_lines)
        .map_err(|e| format!("writing sessions: {e}"))?;
    let real = find_real_model(o);
    if let Ok(r) = &real {
        progress(&format!("real model {} at {}", r.model, r.url));
    }
    let real_url = real.as_ref().ok().map(|r| r.url.clone());

    let daemon_spec = |name: &str, data: Option<&Path>, sk: &Path| -> DaemonSpec {
        let dir = tmp.join(name);
        let data = data.map_or_else(|| dir.join("data"), Path::to_path_buf);
        DaemonSpec {
            config: config_text(&dir, &data, sk, fake_port, real_url.as_deref()),
            dir,
            env: Vec::new(),
            nofile: None,
        }
    };
    let echo_sock = tmp.join("echo.sock");
    rep.header();

    // 1. Binary size.
    let (on_disk, stripped) = stripped_size(bin, tmp);
    let hello = hello_size(tmp);
    let mut f = Fig::new("binary size, stripped", Unit::Bytes, &[stripped as f64])
        .note(format!("on disk {}", fmt_val(Unit::Bytes, on_disk as f64)))
        .budget("< 3 MiB", stripped < 3 << 20);
    if let Some(h) = hello {
        f = f.baseline("std hello world", h as f64);
    }
    rep.print(f);

    // 2. Idle RSS after start-up.
    progress("idle RSS after start-up");
    let fresh = daemon_spec("fresh", None, &empty_skills);
    let loaded = daemon_spec("loaded", Some(&loaded_data), &skills);
    let (echo_rss, _) = idle_rss_runs(plan.rss_runs, || start_echo(&echo_sock).map(|p| p.0))?;
    let (echo_rss_med, _) = median_p99(&echo_rss);
    let (fresh_rss, split_fresh) =
        idle_rss_runs(plan.rss_runs, || start_daemon(bin, &fresh).map(|p| p.0))?;
    let (m, _) = median_p99(&fresh_rss);
    rep.print(
        Fig::new(
            "idle RSS after start-up, empty data",
            Unit::Bytes,
            &fresh_rss,
        )
        .baseline("bare echo server", echo_rss_med)
        .note(split_fresh)
        .budget("< 4 MiB", m < (4 << 20) as f64),
    );
    let (loaded_rss, split_loaded) =
        idle_rss_runs(plan.rss_runs, || start_daemon(bin, &loaded).map(|p| p.0))?;
    let (m, _) = median_p99(&loaded_rss);
    rep.print(
        Fig::new(
            "idle RSS, 1,000 sessions + 100 skills",
            Unit::Bytes,
            &loaded_rss,
        )
        .baseline("bare echo server", echo_rss_med)
        .note(split_loaded)
        .budget("< 4 MiB", m < (4 << 20) as f64),
    );

    // 3. Start-up to socket ready.
    progress("start-up times");
    let (echo_up, _) = startup_runs(plan.startup_runs, || start_echo(&echo_sock))?;
    let (echo_up_med, _) = median_p99(&echo_up);
    let (fresh_up, _) = startup_runs(plan.startup_runs, || start_daemon(bin, &fresh))?;
    let (fresh_up_med, _) = median_p99(&fresh_up);
    rep.print(
        Fig::new(
            "start-up to socket ready, empty data",
            Unit::Nanos,
            &fresh_up,
        )
        .baseline("bare echo server", echo_up_med)
        .budget("< 50 ms", fresh_up_med < 50e6),
    );
    let (loaded_up, loaded_pong) = startup_runs(plan.startup_runs, || start_daemon(bin, &loaded))?;
    let (m, _) = median_p99(&loaded_up);
    rep.print(
        Fig::new(
            "start-up, 1,000 sessions x 200 + 100 skills",
            Unit::Nanos,
            &loaded_up,
        )
        .baseline("ruster, empty data", fresh_up_med)
        .note(format!(
            "+{} over empty",
            fmt_val(Unit::Nanos, m - fresh_up_med)
        ))
        .budget("< 50 ms", m < 50e6),
    );
    let (mp, _) = median_p99(&loaded_pong);
    rep.print(
        Fig::new(
            "start-up to first pong, same data",
            Unit::Nanos,
            &loaded_pong,
        )
        .baseline("bare echo server ready", echo_up_med)
        .budget("< 50 ms", mp < 50e6),
    );

    // The main daemon for everything else: fresh data, 100 skills.
    let main_spec = daemon_spec("main", None, &skills);
    let (main, _) = start_daemon(bin, &main_spec)?;
    let (echo, _) = start_echo(&echo_sock)?;

    // 4. Ping round trip.
    progress("ping round trips");
    let echo_ping = ping_samples(&echo.sock, plan.ping_n).map_err(|e| format!("echo ping: {e}"))?;
    let ruster_ping = ping_samples(&main.sock, plan.ping_n).map_err(|e| format!("ping: {e}"))?;
    let (em, _) = median_p99(&echo_ping);
    let (rm, _) = median_p99(&ruster_ping);
    rep.print(
        Fig::new("ping round trip", Unit::Nanos, &ruster_ping)
            .baseline("bare echo", em)
            .note(format!("+{} over echo", fmt_val(Unit::Nanos, rm - em)))
            .budget("< 100 µs and < 2x echo", rm < 100e3 && rm < 2.0 * em),
    );

    // 5. Idle connections, each repetition on a fresh process (a process
    // that already held connections reuses its retained heap).
    progress(&format!("{} idle connections", plan.conns));
    let conn_series =
        |mut start: Box<dyn FnMut() -> Result<Proc, String> + '_>| -> Result<ConnSeries, String> {
            let mut cs = ConnSeries::default();
            for _ in 0..plan.conn_reps {
                let mut p = start()?;
                thread::sleep(Duration::from_millis(200));
                let (b, w, after, th, held) = conn_rss(&p, plan.conns);
                cs.all_held &= held == plan.conns;
                cs.per.push((w as f64 - b as f64) / held.max(1) as f64);
                cs.with.push(w as f64);
                cs.note = format!(
                    "{held} held, {th} threads, after close {}",
                    fmt_val(Unit::Bytes, after as f64)
                );
                p.stop();
            }
            Ok(cs)
        };
    // Its own path: the long-lived echo server keeps `echo_sock`.
    let echo_conns_sock = tmp.join("echo-conns.sock");
    let echo_cs = conn_series(Box::new(|| start_echo(&echo_conns_sock).map(|p| p.0)))?;
    let (per_echo_med, _) = median_p99(&echo_cs.per);
    let conns_spec = daemon_spec("conns", None, &skills);
    let cs = conn_series(Box::new(|| start_daemon(bin, &conns_spec).map(|p| p.0)))?;
    rep.print(
        Fig::new("RSS with 1,000 idle connections", Unit::Bytes, &cs.with)
            .note(cs.note.clone())
            .budget("1,000 held", cs.all_held),
    );
    let (pm, _) = median_p99(&cs.per);
    rep.print(
        Fig::new("RSS per idle connection", Unit::Bytes, &cs.per)
            .baseline("bare echo (1 thread/conn)", per_echo_med)
            .note(format!("echo: {}", echo_cs.note))
            .budget("< 64 KiB", pm < 65536.0),
    );
    // The same as deployed by systemd/ruster.service (MALLOC_ARENA_MAX=2).
    {
        let mut spec = daemon_spec("arena2", None, &skills);
        spec.env.push(("MALLOC_ARENA_MAX".into(), "2".into()));
        let cs = conn_series(Box::new(|| start_daemon(bin, &spec).map(|p| p.0)))?;
        let (m2, _) = median_p99(&cs.per);
        rep.print(
            Fig::new(
                "RSS per idle conn, MALLOC_ARENA_MAX=2",
                Unit::Bytes,
                &cs.per,
            )
            .baseline("bare echo (1 thread/conn)", per_echo_med)
            .note(cs.note)
            .budget("< 64 KiB", m2 < 65536.0),
        );
    }
    // Under the soft limit most systems give services (systemd: 1024).
    {
        let mut spec = daemon_spec("nofile1024", None, &empty_skills);
        spec.nofile = Some(1024);
        let (p, _) = start_daemon(bin, &spec)?;
        let (_, _, _, _, held) = conn_rss(&p, plan.conns);
        rep.print(
            Fig::new(
                "connections held, soft RLIMIT_NOFILE 1024",
                Unit::Count,
                &[held as f64],
            )
            .note(format!("of {} tried", plan.conns))
            .budget("1,000 held", held >= plan.conns),
        );
    }

    // 6. Streamed-token relay.
    progress("streamed-token relay");
    let mut c = Client::connect(&main.sock).map_err(|e| e.to_string())?;
    let mut session_no = 0usize;
    let mut new_session = |c: &mut Client| -> io::Result<String> {
        session_no += 1;
        let sid = format!("b{session_no}");
        c.send(&json!({"action": "create", "session_id": sid}))?;
        c.expect("created")?;
        Ok(sid)
    };
    let e = |e: io::Error| e.to_string();
    // Latency, paced like a model (one token per gap).
    let paced_msg = format!("BENCH n={} gap_us={}", plan.paced_tokens, plan.paced_gap_us);
    let sid = new_session(&mut c).map_err(e)?;
    c.send(&json!({"action": "send", "session_id": sid, "message": paced_msg}))
        .map_err(e)?;
    let via = ruster_turn(&mut c, &sid, true, false, None).map_err(e)?;
    let direct = direct_stream(
        fake_port,
        "/v1/chat/completions",
        &bench_body("bench", &paced_msg),
        true,
        false,
    )
    .map_err(e)?;
    let (vm, _) = median_p99(&via.lat);
    let (dm, _) = median_p99(&direct.lat);
    let overhead = vm - dm;
    rep.print(
        Fig::new(
            &format!("token relay latency, 1 per {} µs", plan.paced_gap_us),
            Unit::Nanos,
            &via.lat,
        )
        .baseline("direct HTTP", dm)
        .note(format!("+{} per token", fmt_val(Unit::Nanos, overhead)))
        .budget("overhead < 20 µs", overhead < 20e3),
    );
    // Throughput, one session, as fast as the socket allows.
    for (label, provider, path) in [
        ("OpenAI SSE", "fake", "/v1/chat/completions"),
        ("Ollama NDJSON", "fakeo", "/api/chat"),
    ] {
        let msg = format!("BENCH n={}", plan.flood_tokens);
        let (mut vr, mut dr) = (Vec::new(), Vec::new());
        for _ in 0..plan.flood_runs {
            let sid = new_session(&mut c).map_err(e)?;
            c.send(&json!({"action": "send", "session_id": sid, "message": msg, "model": format!("{provider}/bench")}))
                .map_err(e)?;
            let s = ruster_turn(&mut c, &sid, false, false, None).map_err(e)?;
            if s.tokens != plan.flood_tokens {
                return Err(format!(
                    "relay lost tokens: {} of {}",
                    s.tokens, plan.flood_tokens
                ));
            }
            vr.push(s.rate());
            let d = direct_stream(fake_port, path, &bench_body("bench", &msg), false, false)
                .map_err(e)?;
            dr.push(d.rate());
        }
        let (vm, _) = median_p99(&vr);
        let (dm, _) = median_p99(&dr);
        let cost = 1e9 / vm - 1e9 / dm;
        rep.print(
            Fig::new(
                &format!("relay throughput, 1 session, {label}"),
                Unit::Rate,
                &vr,
            )
            .baseline("direct HTTP", dm)
            .note(format!("+{} per token", fmt_val(Unit::Nanos, cost)))
            .budget("overhead < 20 µs", cost < 20e3),
        );
    }
    // Throughput, 32 sessions at once.
    {
        let n = plan.par_sessions;
        let msg = format!("BENCH n={}", plan.par_tokens);
        let (mut vr, mut dr) = (Vec::new(), Vec::new());
        for _ in 0..plan.par_runs {
            let mut clients = Vec::new();
            for _ in 0..n {
                let mut cc = Client::connect(&main.sock).map_err(e)?;
                let sid = new_session(&mut cc).map_err(e)?;
                clients.push((cc, sid));
            }
            let barrier = Arc::new(Barrier::new(n + 1));
            let handles: Vec<_> = clients
                .into_iter()
                .map(|(mut cc, sid)| {
                    let b = barrier.clone();
                    let msg = msg.clone();
                    thread::spawn(move || -> io::Result<(usize, Instant)> {
                        b.wait();
                        cc.send(&json!({"action": "send", "session_id": sid, "message": msg}))?;
                        let s = ruster_turn(&mut cc, &sid, false, false, None)?;
                        Ok((s.tokens, Instant::now()))
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            let mut tokens = 0;
            let mut end = t0;
            for h in handles {
                let (t, at) = h
                    .join()
                    .map_err(|_| "a relay client panicked".to_string())?
                    .map_err(e)?;
                tokens += t;
                end = end.max(at);
            }
            vr.push(tokens as f64 / (end - t0).as_secs_f64());
            // The same streams read directly.
            let barrier = Arc::new(Barrier::new(n + 1));
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let b = barrier.clone();
                    let body = bench_body("bench", &msg);
                    thread::spawn(move || -> io::Result<(usize, Instant)> {
                        b.wait();
                        let s =
                            direct_stream(fake_port, "/v1/chat/completions", &body, false, false)?;
                        Ok((s.tokens, Instant::now()))
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            let mut tokens = 0;
            let mut end = t0;
            for h in handles {
                let (t, at) = h
                    .join()
                    .map_err(|_| "a direct client panicked".to_string())?
                    .map_err(e)?;
                tokens += t;
                end = end.max(at);
            }
            dr.push(tokens as f64 / (end - t0).as_secs_f64());
        }
        let (vm, _) = median_p99(&vr);
        let (dm, _) = median_p99(&dr);
        let cost = 1e9 / vm - 1e9 / dm;
        rep.print(
            Fig::new("relay throughput, 32 sessions, total", Unit::Rate, &vr)
                .baseline("32 direct HTTP", dm)
                .note(format!("+{} per token", fmt_val(Unit::Nanos, cost))),
        );
    }
    // Time to first token.
    {
        let msg = "BENCH n=1";
        let sid = new_session(&mut c).map_err(e)?;
        let (mut via, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..plan.ttft_runs {
            let t0 = Instant::now();
            c.send(&json!({"action": "send", "session_id": sid, "message": msg}))
                .map_err(e)?;
            let s = ruster_turn(&mut c, &sid, false, false, None).map_err(e)?;
            via.push(s.first.map_or(f64::NAN, |f| (f - t0).as_nanos() as f64));
            let t0 = Instant::now();
            let d = direct_stream(
                fake_port,
                "/v1/chat/completions",
                &bench_body("bench", msg),
                false,
                false,
            )
            .map_err(e)?;
            direct.push(d.first.map_or(f64::NAN, |f| (f - t0).as_nanos() as f64));
        }
        let (vm, _) = median_p99(&via);
        let (dm, _) = median_p99(&direct);
        rep.print(
            Fig::new("time to first token", Unit::Nanos, &via)
                .baseline("direct HTTP", dm)
                .note(format!("+{} added", fmt_val(Unit::Nanos, vm - dm))),
        );
    }
    drop(c);
    let pid = main.pid();
    rep.print(
        Fig::new(
            "peak RSS so far (VmHWM)",
            Unit::Bytes,
            &[status_field(pid, "VmHWM").unwrap_or(0) as f64 * 1024.0],
        )
        .note(format!("now {}", fmt_val(Unit::Bytes, rss(pid) as f64))),
    );

    // 7. CPU while idle, with clients connected.
    progress(&format!(
        "idle CPU for {} s with {} clients",
        plan.idle_secs, plan.idle_clients
    ));
    {
        let mut held = Vec::new();
        for p in [&main, &echo] {
            for _ in 0..plan.idle_clients {
                let mut s = UnixStream::connect(&p.sock).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .map_err(|e| e.to_string())?;
                raw_ping(&mut s).map_err(|e| e.to_string())?;
                held.push(s);
            }
        }
        thread::sleep(Duration::from_millis(200));
        let (r0, tick) = cpu_ticks(main.pid());
        let (e0, _) = cpu_ticks(echo.pid());
        let (rs0, rw0) = sched(main.pid());
        let (es0, ew0) = sched(echo.pid());
        thread::sleep(Duration::from_secs(plan.idle_secs));
        let (r1, _) = cpu_ticks(main.pid());
        let (e1, _) = cpu_ticks(echo.pid());
        let (rs1, rw1) = sched(main.pid());
        let (es1, ew1) = sched(echo.pid());
        let cpu = (r1 - r0) as f64 * tick;
        let ecpu = (e1 - e0) as f64 * tick;
        rep.print(
            Fig::new(
                &format!(
                    "CPU while idle {} s, {} clients",
                    plan.idle_secs, plan.idle_clients
                ),
                Unit::CpuMs,
                &[cpu],
            )
            .baseline("bare echo", ecpu)
            .note(format!(
                "{:.2} ms sched, {} switches (echo {:.2} ms, {})",
                rs1.saturating_sub(rs0) as f64 / 1e6,
                rw1.saturating_sub(rw0),
                es1.saturating_sub(es0) as f64 / 1e6,
                ew1.saturating_sub(ew0)
            )),
        );
        drop(held);
    }

    // 8. The real model.
    match &real {
        Err(why) => rep.skip("real model TTFT, turns 2 / 10 / 20", why),
        Ok(r) => {
            progress("real model conversation (20 turns via ruster, then 20 direct)");
            // No skills here: the direct conversation has no skills index,
            // so both prompts hold the same system prompt and turns.
            let spec = daemon_spec("real", None, &empty_skills);
            let (real_daemon, _) = start_daemon(bin, &spec)?;
            match real_model_ttfts(&real_daemon.sock, r) {
                Ok((via, direct)) => {
                    for turn in [2usize, 10, 20] {
                        let (v, d) = (via[turn - 1], direct[turn - 1]);
                        rep.print(
                            Fig::new(&format!("real model TTFT, turn {turn}"), Unit::Nanos, &[v])
                                .baseline("direct, stamp first", d)
                                .note(format!(
                                    "{} {}",
                                    r.model,
                                    if v < d { "faster" } else { "slower" }
                                )),
                        );
                    }
                    let show = |v: &[f64]| {
                        v.iter()
                            .map(|x| format!("{:.0}", x / 1e6))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    println!(
                        "# real model TTFT per turn, ms, via ruster:          {}",
                        show(&via)
                    );
                    println!(
                        "# real model TTFT per turn, ms, direct stamp first:  {}",
                        show(&direct)
                    );
                }
                Err(err) => rep.skip(
                    "real model TTFT, turns 2 / 10 / 20",
                    &format!("failed: {err}"),
                ),
            }
            if let Some((script, port)) = &r.started_by_us {
                stop_model(script, *port);
            }
        }
    }

    println!(
        "# budget: {} met, {} missed{}",
        rep.met,
        rep.missed.len(),
        if rep.missed.is_empty() {
            String::new()
        } else {
            format!(" ({})", rep.missed.join("; "))
        }
    );
    Ok(rep.missed)
}
