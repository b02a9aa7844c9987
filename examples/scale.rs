//! How Ruster's per-turn work scales: recall over many memories, skill
//! matching over many skills, and the proactive thread's wake-ups with many
//! pending reminders.
//!
//!     cargo run --release --example scale [-- --quick]
//!
//! Prints one line per figure (median and p99). Nothing here is asserted:
//! these are measurements for `docs/performance.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ruster::memory::{search_sets, Memory, MemoryFile, RECALL_THRESHOLD};

/// Words to build varied, realistic-looking memories from.
const WORDS: &[&str] = &[
    "cat",
    "dog",
    "sister",
    "birthday",
    "march",
    "coffee",
    "tea",
    "allergic",
    "peanuts",
    "train",
    "office",
    "monday",
    "dentist",
    "appointment",
    "garden",
    "tomatoes",
    "password",
    "router",
    "invoice",
    "budget",
    "flight",
    "lisbon",
    "piano",
    "lesson",
    "doctor",
    "running",
    "marathon",
    "book",
    "club",
    "recipe",
    "lasagna",
    "car",
    "insurance",
    "renewal",
    "project",
    "deadline",
    "friday",
    "daughter",
    "school",
    "concert",
    "tickets",
    "vegetarian",
    "meeting",
    "boss",
    "named",
    "anna",
    "miso",
    "berlin",
    "apartment",
    "rent",
    "gym",
    "yoga",
    "favourite",
    "colour",
    "green",
];

fn memories(n: usize) -> Vec<Memory> {
    // A small deterministic generator: no randomness crate needed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let len = 6 + (next() % 8) as usize;
            let text: Vec<&str> = (0..len)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            Memory {
                memory_id: format!("m{i}"),
                text: text.join(" "),
                created_at: "2026-11-20T10:00:00Z".into(),
            }
        })
        .collect()
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.99))
}

fn recall_cost(n: usize, rounds: usize) {
    // Through the real file format and store, as the daemon keeps them.
    let path =
        std::env::temp_dir().join(format!("ruster-scale-mem-{}-{n}.jsonl", std::process::id()));
    let mut text = String::new();
    for m in memories(n) {
        text.push_str(&serde_json::to_string(&m).unwrap());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let mut file = MemoryFile::load(&path);
    let t = Instant::now();
    file.prepare();
    let build = t.elapsed();
    let queries = [
        "what is my cat called?",
        "when is my sister's birthday",
        "book me a table for dinner friday",
        "how do I fix my router password",
        "tell me a joke",
    ];
    let mut samples = Vec::with_capacity(rounds);
    let mut found = 0;
    for i in 0..rounds {
        let t = Instant::now();
        found += search_sets(
            &[file.set(false)],
            queries[i % queries.len()],
            RECALL_THRESHOLD,
            &|_| None,
        )
        .len();
        samples.push(t.elapsed());
    }
    let (median, p99) = stats(samples);
    println!(
        "recall per turn, {n:>6} memories          median {:>9.2?}  p99 {:>9.2?}  (index built once in {build:.2?}, again after each remember/forget; {} matches/turn)",
        median,
        p99,
        found / rounds
    );
    let _ = std::fs::remove_file(&path);
}

/// The release binary next to this example's own executable.
fn daemon_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let release = exe.parent().and_then(Path::parent).expect("target dir");
    release.join("ruster")
}

/// Voluntary context switches of every thread of `pid`, by thread name.
fn switches(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string()
        };
        out.push((
            field("Name:"),
            field("voluntary_ctxt_switches:").parse().unwrap_or(0),
        ));
    }
    out.sort();
    out
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn reminders_idle(n: usize, watch: Duration) {
    let bin = daemon_binary();
    if !bin.is_file() {
        println!(
            "reminders idle: SKIPPED ({} not built: cargo build --release)",
            bin.display()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("ruster-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("data/state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(dir.join("data/sessions/s")).unwrap();
    let now = ruster::time::unix_now();
    let mut file = std::fs::File::create(state.join("reminders.jsonl")).unwrap();
    for i in 0..n {
        let due = now + 86_400 + i as i64;
        writeln!(
            file,
            r#"{{"reminder_id":"r{i}","session_id":"s","message":"m{i}","due":{due}}}"#
        )
        .unwrap();
    }
    let sock = dir.join("s.sock");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "socket_path = {:?}\ndata_dir = {:?}\nproactive_interval_secs = 0\nskills_dirs = []\n",
            sock.display().to_string(),
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .env("HOME", &dir)
        .env("RUSTER_CONFIG", &config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ruster");
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500)); // the proactive thread loads them
    let (before, cpu0) = (switches(child.id()), cpu_ticks(child.id()));
    std::thread::sleep(watch);
    let (after, cpu1) = (switches(child.id()), cpu_ticks(child.id()));
    let woke: u64 = after
        .iter()
        .zip(&before)
        .map(|((_, a), (_, b))| a.saturating_sub(*b))
        .sum();
    let proactive = after
        .iter()
        .zip(&before)
        .find(|((name, _), _)| name == "proactive")
        .map_or(0, |((_, a), (_, b))| a.saturating_sub(*b));
    let ticks = 1000 / 100; // USER_HZ is 100 on Linux: 10 ms a tick
    println!(
        "reminders idle, {n:>6} pending, {:>3} s     wake-ups {woke} (proactive thread {proactive}), CPU {} ms",
        watch.as_secs(),
        (cpu1 - cpu0) * ticks
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 20 } else { 200 };
    for n in [100, 1_000, 10_000] {
        recall_cost(n, rounds);
    }
    reminders_idle(10_000, Duration::from_secs(if quick { 3 } else { 30 }));
}
