//! The human client: `ruster chat|send|status|sessions|skills|config|history|remind|notify`.
//!
//! Policy: the client is a guest of the daemon. It never writes a file (it
//! reads the config, if there is one, only to find the socket), speaks
//! nothing but the JSON Lines of [`crate::protocol`], and keeps stdout for
//! what was asked for: the reply, the table, the JSON. Errors go to stderr
//! as one `ruster: …` line that says what to do. Exit codes: 0 done, 1 the
//! daemon or the connection failed (or an `error` event), 2 bad arguments.
//!
//! The command line is read first into a plain [`Command`] (nothing touched
//! yet), then [`run`] finds the socket, connects one [`Conn`] and runs it.
//! Colour is one ANSI "dim" for side notes (skills, tools, thinking,
//! proactive messages), only when stdout is a terminal and `NO_COLOR` is
//! unset.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{self, ConfigError};
use crate::protocol::{valid_session_id, MAX_HISTORY_LIMIT};

/// The session `ruster chat` opens when none is named.
const DEFAULT_SESSION: &str = "default";
/// How long a request that starts no turn may wait for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest event line read (a `history` page of 1000 long messages fits).
const MAX_EVENT_BYTES: u64 = 64 << 20;
/// A second Ctrl-C within this long quits `ruster chat`.
const DOUBLE_CTRL_C: Duration = Duration::from_secs(2);
/// Tool arguments and results are cut to this many characters in `chat`.
const TOOL_NOTE_CHARS: usize = 160;
/// `ruster history` shows this many messages unless told.
const HISTORY_DEFAULT: usize = 20;

/// One subcommand: its name, the options it takes and its help.
#[derive(Debug)]
pub struct Spec {
    name: &'static str,
    synopsis: &'static str,
    about: &'static str,
    /// Options that take a value, besides `--socket`.
    options: &'static [&'static str],
}

const SPECS: &[Spec] = &[
    Spec {
        name: "chat",
        synopsis: "chat [SESSION] [--model M]",
        about:
            "Talk to SESSION (default: \"default\"), created if needed; --model sets its model.\n\
                Replies stream as they come. Ctrl-C cancels the running turn, a second Ctrl-C\n\
                quits, and so does Ctrl-D. Commands: /history [N], /sessions, /remember TEXT,\n\
                /help, /quit. Any other line (including /skill-name ...) goes to the model.",
        options: &["--model"],
    },
    Spec {
        name: "send",
        synopsis: "send SESSION MESSAGE... [--model M]",
        about: "Send one message (created if needed) and print the streamed reply.\n\
                --model uses another model for this turn only. Exits 1 on an error event,\n\
                with `ruster: CODE: message` on stderr: usable from scripts and cron.",
        options: &["--model"],
    },
    Spec {
        name: "status",
        synopsis: "status",
        about: "Show the daemon's version, uptime, sessions, connections and skills.",
        options: &[],
    },
    Spec {
        name: "sessions",
        synopsis: "sessions",
        about: "List every stored session.",
        options: &[],
    },
    Spec {
        name: "skills",
        synopsis: "skills",
        about: "List the skills the daemon found (those skipped are named on stderr).",
        options: &[],
    },
    Spec {
        name: "config",
        synopsis: "config",
        about: "Print the daemon's effective configuration as JSON, secrets redacted.",
        options: &[],
    },
    Spec {
        name: "history",
        synopsis: "history SESSION [N]",
        about: "Print the last N messages of SESSION (default 20, at most 1000).",
        options: &[],
    },
    Spec {
        name: "remind",
        synopsis: "remind SESSION IN MESSAGE...",
        about: "Schedule a reminder. IN is a delay (90, 90s, 20m, 2h, 1d) or an RFC 3339\n\
                time (2026-11-24T15:00:00Z). Prints the reminder's id and due time.",
        options: &[],
    },
    Spec {
        name: "notify",
        synopsis: "notify SESSION MESSAGE... [--source S] [--delivery next_turn|immediate|silent]",
        about: "Feed an external event to SESSION (default source \"cli\"; delivery next_turn:\n\
                put into the next turn's context; immediate: the daemon answers now, as a\n\
                proactive message; silent: only stored in history).",
        options: &["--source", "--delivery"],
    },
];

const SOCKET_HELP: &str = "\
    --socket PATH   the daemon's socket (default: $RUSTER_SOCKET, else socket_path
                    in the config file, else /tmp/ruster.sock)
    -h, --help      this help";

/// Whether `name` is a client subcommand (the daemon runs otherwise).
pub fn is_command(name: &str) -> bool {
    SPECS.iter().any(|s| s.name == name)
}

/// The subcommands' names, for messages.
pub fn command_names() -> String {
    SPECS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

fn help(spec: &Spec) -> String {
    let mut s = format!(
        "usage: ruster {}\n\n{}\n\nOPTIONS:\n",
        spec.synopsis, spec.about
    );
    for o in spec.options {
        s += &format!(
            "    {o} {}\n",
            o.trim_start_matches('-').to_ascii_uppercase()
        );
    }
    s + SOCKET_HELP + "\n"
}

// ---------------------------------------------------------------------------
// What was typed.

/// A parsed command line: what to do and where.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// `--help` anywhere: print this and exit 0.
    Help(String),
    Run {
        socket: Option<PathBuf>,
        command: Command,
    },
}

/// One client command, exactly as typed (checked, not yet run).
#[derive(Debug, PartialEq)]
pub enum Command {
    Chat {
        session: String,
        model: Option<String>,
    },
    Send {
        session: String,
        message: String,
        model: Option<String>,
    },
    Status,
    Sessions,
    Skills,
    Config,
    History {
        session: String,
        limit: usize,
    },
    Remind {
        session: String,
        due: Due,
        message: String,
    },
    Notify {
        session: String,
        message: String,
        source: Option<String>,
        delivery: Option<String>,
    },
}

/// When a reminder is due, as the `remind` request says it.
#[derive(Debug, PartialEq)]
pub enum Due {
    /// `in_secs`.
    In(u64),
    /// `at`: an RFC 3339 time, passed on as typed.
    At(String),
}

/// The words of a command line: positionals and `--option value` pairs.
struct Words {
    positionals: Vec<String>,
    options: Vec<(&'static str, String)>,
}

impl Words {
    fn option(&self, name: &str) -> Option<String> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

/// Splits `args` (after the subcommand) into words; `--` ends the options,
/// so a message may start with `-`. `Ok(None)` means `--help` was asked.
fn split_words(spec: &Spec, args: Vec<OsString>) -> Result<Option<Words>, String> {
    let mut words = Words {
        positionals: Vec::new(),
        options: Vec::new(),
    };
    let mut it = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not valid UTF-8"))?;
        if options_done || !arg.starts_with('-') || arg == "-" {
            words.positionals.push(arg);
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let known = spec.options.iter().chain(["--socket"].iter());
        let Some(&name) = known.into_iter().find(|o| **o == name) else {
            return Err(format!(
                "unknown option '{name}' for `ruster {}`; its options are: {}--socket (put `--` before a message that starts with '-')",
                spec.name,
                spec.options.iter().map(|o| format!("{o}, ")).collect::<String>()
            ));
        };
        let value = match inline.or_else(|| it.next().and_then(|v| v.into_string().ok())) {
            Some(v) if !v.is_empty() => v,
            _ => return Err(format!("{name} needs a value")),
        };
        words.options.push((name, value));
    }
    Ok(Some(words))
}

/// Parses a client command line; `args[0]` is the subcommand. Errors are
/// usage errors (exit 2).
pub fn parse(mut args: Vec<OsString>) -> Result<Parsed, Error> {
    let name = args.remove(0);
    let name = name.to_str().unwrap_or("");
    let spec = SPECS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::usage(None, format!("unknown command {name:?}")))?;
    let words = match split_words(spec, args) {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(Parsed::Help(help(spec))),
        Err(e) => return Err(Error::usage(Some(spec), e)),
    };
    let command = command(spec, &words).map_err(|e| Error::usage(Some(spec), e))?;
    Ok(Parsed::Run {
        socket: words.option("--socket").map(PathBuf::from),
        command,
    })
}

/// Builds the command from its words, checking counts and values.
fn command(spec: &Spec, w: &Words) -> Result<Command, String> {
    let p = &w.positionals;
    let (min, max) = match spec.name {
        "chat" => (0, 1),
        "status" | "sessions" | "skills" | "config" => (0, 0),
        "history" => (1, 2),
        "send" | "notify" => (2, usize::MAX),
        _ => (3, usize::MAX), // remind
    };
    if p.len() < min {
        // The synopsis names the positionals: `send SESSION MESSAGE... [--model M]`.
        let missing = spec
            .synopsis
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.starts_with('['))
            .nth(p.len())
            .unwrap_or("arguments");
        return Err(format!("missing {}", missing.trim_end_matches("...")));
    }
    if p.len() > max {
        return Err(format!("unexpected argument {:?}", p[max]));
    }
    let session = |i: usize| session_arg(p.get(i).map_or(DEFAULT_SESSION, String::as_str));
    let rest = |i: usize| p[i..].join(" ");
    Ok(match spec.name {
        "chat" => Command::Chat {
            session: session(0)?,
            model: w.option("--model"),
        },
        "send" => Command::Send {
            session: session(0)?,
            message: rest(1),
            model: w.option("--model"),
        },
        "status" => Command::Status,
        "sessions" => Command::Sessions,
        "skills" => Command::Skills,
        "config" => Command::Config,
        "history" => Command::History {
            session: session(0)?,
            limit: match p.get(1) {
                None => HISTORY_DEFAULT,
                Some(n) => history_limit(n)?,
            },
        },
        "remind" => Command::Remind {
            session: session(0)?,
            due: parse_due(&p[1])?,
            message: rest(2),
        },
        _ => Command::Notify {
            session: session(0)?,
            message: rest(1),
            source: w.option("--source"),
            delivery: match w.option("--delivery") {
                Some(d) if !["next_turn", "immediate", "silent"].contains(&d.as_str()) => {
                    return Err(format!(
                        "--delivery must be next_turn, immediate or silent, not {d:?}"
                    ))
                }
                d => d,
            },
        },
    })
}

fn session_arg(s: &str) -> Result<String, String> {
    if valid_session_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid session name {s:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with '.'"
        ))
    }
}

fn history_limit(n: &str) -> Result<usize, String> {
    match n.parse::<usize>() {
        Ok(n) if (1..=MAX_HISTORY_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "N must be a whole number from 1 to {MAX_HISTORY_LIMIT}, not {n:?}"
        )),
    }
}

/// `90`, `90s`, `20m`, `2h`, `1d` → seconds (at least 1); `None` otherwise.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last()? {
        (i, c @ ('s' | 'm' | 'h' | 'd')) => (&s[..i], c),
        _ => (s, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => 86_400,
    };
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(scale)
        .filter(|&n| n > 0)
}

/// A delay or an RFC 3339 time, for `remind`.
fn parse_due(s: &str) -> Result<Due, String> {
    if let Some(secs) = parse_duration(s) {
        return Ok(Due::In(secs));
    }
    if crate::time::parse_rfc3339(s).is_some() {
        return Ok(Due::At(s.to_string()));
    }
    Err(format!(
        "cannot read the time {s:?}: give a delay like 90, 90s, 20m, 2h or 1d, or an RFC 3339 time like 2026-11-24T15:00:00Z"
    ))
}

// ---------------------------------------------------------------------------
// Errors.

/// Why a client command failed.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (exit 2); `spec` gives the usage line.
    Usage {
        spec: Option<&'static Spec>,
        message: String,
    },
    /// Nothing listens at the socket: no file, or one left by a dead daemon.
    NoDaemon(PathBuf),
    /// Connecting failed another way (permissions, not a socket).
    Connect { socket: PathBuf, source: io::Error },
    /// Reading from or writing to the daemon failed mid-conversation.
    Io { socket: PathBuf, source: io::Error },
    /// The daemon closed the connection before the answer came.
    Closed(PathBuf),
    /// The daemon said it is shutting down.
    Shutdown,
    /// No answer within [`ANSWER_TIMEOUT`].
    Timeout { socket: PathBuf, after: Duration },
    /// The daemon sent a line that is not a JSON object, or too long a one.
    BadEvent(String),
    /// The daemon answered with an `error` event.
    Daemon { code: String, message: String },
    /// Writing to stdout failed (a closed pipe is a clean exit).
    Stdout(io::Error),
}

impl Error {
    fn usage(spec: Option<&'static Spec>, message: String) -> Error {
        Error::Usage { spec, message }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage { spec: Some(s), message } => write!(
                f,
                "{message}\nusage: ruster {}\n(see `ruster {} --help`)",
                s.synopsis, s.name
            ),
            Error::Usage { spec: None, message } => write!(
                f,
                "{message}; the commands are: {}; see `ruster --help`",
                command_names()
            ),
            Error::NoDaemon(p) => write!(
                f,
                "no daemon at {}: start it with `ruster` or `systemctl --user start ruster`",
                p.display()
            ),
            Error::Connect { socket, source } => write!(
                f,
                "cannot connect to {}: {source}; check the path and its permissions, or pass --socket PATH",
                socket.display()
            ),
            Error::Io { socket, source } => {
                write!(f, "lost the connection to {}: {source}", socket.display())
            }
            Error::Closed(p) => write!(
                f,
                "the daemon at {} closed the connection; is it still running? (`systemctl --user status ruster`)",
                p.display()
            ),
            Error::Shutdown => write!(f, "the daemon is shutting down; start it again and retry"),
            Error::Timeout { socket, after } => write!(
                f,
                "no answer from the daemon at {} within {}s; see its log",
                socket.display(),
                after.as_secs()
            ),
            Error::BadEvent(e) => write!(f, "the daemon sent {e}; is this socket a ruster daemon?"),
            Error::Daemon { code, message } => write!(f, "{code}: {message}"),
            Error::Stdout(e) => write!(f, "cannot write to stdout: {e}"),
        }
    }
}

impl std::error::Error for Error {}

// ---------------------------------------------------------------------------
// Running.

/// Runs a client command line (`args[0]` is the subcommand).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let result = match parse(args) {
        Ok(Parsed::Help(text)) => print(&text),
        Ok(Parsed::Run { socket, command }) => run(socket, command),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = io::stdout().flush();
            eprintln!("ruster: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Finds the socket, connects and runs `command`.
pub fn run(socket: Option<PathBuf>, command: Command) -> Result<(), Error> {
    let socket = socket_path(socket);
    let mut conn = Conn::connect(&socket)?;
    let style = Style::for_stdout();
    match command {
        Command::Chat { session, model } => chat(conn, &session, model, style),
        Command::Send {
            session,
            message,
            model,
        } => send(&mut conn, &session, &message, model),
        Command::Status => status(&mut conn),
        Command::Sessions => sessions(&mut conn),
        Command::Skills => skills(&mut conn),
        Command::Config => show_config(&mut conn, style),
        Command::History { session, limit } => {
            let ev =
                conn.call(json!({"action": "history", "session_id": session, "limit": limit}))?;
            print(&history_text(&ev))
        }
        Command::Remind {
            session,
            due,
            message,
        } => remind(&mut conn, &session, due, &message),
        Command::Notify {
            session,
            message,
            source,
            delivery,
        } => {
            let mut req = json!({"action": "notify", "session_id": session, "message": message,
                                 "source": source.unwrap_or_else(|| "cli".into())});
            if let Some(d) = delivery {
                req["delivery"] = json!(d);
            }
            conn.call(req)?;
            print(&format!("notified {session}\n"))
        }
    }
}

/// `--socket PATH`, else `$RUSTER_SOCKET`, else the config's `socket_path`
/// (the file is only read, never created), else the default.
fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    match std::env::var_os("RUSTER_SOCKET") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => socket_from_config(),
    }
}

fn socket_from_config() -> PathBuf {
    let default = PathBuf::from(config::Config::default().socket_path);
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return default;
    };
    let home = PathBuf::from(home);
    let path = crate::paths::config_file(None, &home);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return default,
        Err(source) => {
            eprintln!(
                "ruster: warning: {}; trying {}",
                ConfigError::Read { path, source },
                default.display()
            );
            return default;
        }
    };
    match config::parse(&text) {
        Ok((c, _)) => config::expand_tilde(&c.socket_path, &home),
        Err(e) => {
            let e = match e {
                config::ParseError::Toml(detail) => ConfigError::Parse { path, detail },
                config::ParseError::Invalid { key, detail } => {
                    ConfigError::Invalid { path, key, detail }
                }
            };
            eprintln!("ruster: warning: {e}; trying {}", default.display());
            default
        }
    }
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}

// ---------------------------------------------------------------------------
// The connection.

/// One connection to the daemon: requests go out with an `id`, events come
/// back line by line. Shared by every command; `chat` splits it in two.
pub struct Conn {
    writer: Writer,
    events: Events,
}

/// The sending half: numbers each request.
struct Writer {
    socket: PathBuf,
    out: UnixStream,
    next_id: u64,
}

/// The receiving half: one bounded JSON line at a time.
struct Events {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Conn {
    /// Connects; a missing socket or one nobody listens on is
    /// [`Error::NoDaemon`].
    pub fn connect(socket: &Path) -> Result<Conn, Error> {
        let out = UnixStream::connect(socket).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                Error::NoDaemon(socket.to_path_buf())
            }
            _ => Error::Connect {
                socket: socket.to_path_buf(),
                source,
            },
        })?;
        let io_err = |source| Error::Io {
            socket: socket.to_path_buf(),
            source,
        };
        let reader = BufReader::new(out.try_clone().map_err(io_err)?);
        let mut conn = Conn {
            writer: Writer {
                socket: socket.to_path_buf(),
                out,
                next_id: 1,
            },
            events: Events {
                socket: socket.to_path_buf(),
                reader,
            },
        };
        conn.events.set_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(conn)
    }

    /// Sends `request` with a fresh `id`; returns the id.
    fn send(&mut self, request: Value) -> Result<u64, Error> {
        self.writer.send(request)
    }

    /// The next event answering request `id`; an `error` answer is
    /// [`Error::Daemon`]. Events for no request are skipped, except
    /// proactive messages, which go to stderr so none is lost.
    fn answer(&mut self, id: u64) -> Result<Value, Error> {
        loop {
            let ev = self.events.next()?.ok_or_else(|| self.events.closed())?;
            match ev["event"].as_str() {
                Some("shutdown") => return Err(Error::Shutdown),
                Some("proactive") => eprintln!("[{}] {}", text(&ev, "kind"), text(&ev, "message")),
                _ => {}
            }
            if ev["id"].as_u64() != Some(id) {
                continue;
            }
            if ev["event"] == "error" {
                return Err(daemon_error(&ev));
            }
            return Ok(ev);
        }
    }

    /// Sends `request` and waits for its answer.
    fn call(&mut self, request: Value) -> Result<Value, Error> {
        let id = self.send(request)?;
        self.answer(id)
    }

    fn split(self) -> (Writer, Events) {
        (self.writer, self.events)
    }
}

impl Writer {
    fn send(&mut self, request: Value) -> Result<u64, Error> {
        let id = self.new_id();
        self.send_as(request, id)?;
        Ok(id)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Sends `request` with an id from [`Writer::new_id`].
    fn send_as(&mut self, mut request: Value, id: u64) -> Result<(), Error> {
        request["id"] = json!(id);
        let mut line = request.to_string();
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                socket: self.socket.clone(),
                source,
            })
    }

    /// Ends the connection, which also wakes a reader blocked on it.
    fn close(&self) {
        let _ = self.out.shutdown(std::net::Shutdown::Both);
    }
}

impl Events {
    fn set_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.reader
            .get_ref()
            .set_read_timeout(t)
            .map_err(|source| Error::Io {
                socket: self.socket.clone(),
                source,
            })
    }

    fn closed(&self) -> Error {
        Error::Closed(self.socket.clone())
    }

    /// The next event, or `None` when the daemon closed the connection.
    fn next(&mut self) -> Result<Option<Value>, Error> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut self.reader)
                .take(MAX_EVENT_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(|source| match source.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                        socket: self.socket.clone(),
                        after: ANSWER_TIMEOUT,
                    },
                    _ => Error::Io {
                        socket: self.socket.clone(),
                        source,
                    },
                })?;
            if n == 0 {
                return Ok(None);
            }
            if line.last() != Some(&b'\n') && n as u64 > MAX_EVENT_BYTES {
                return Err(Error::BadEvent(format!(
                    "a line longer than {MAX_EVENT_BYTES} bytes"
                )));
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            return match serde_json::from_slice::<Value>(&line) {
                Ok(v) if v["event"].is_string() => Ok(Some(v)),
                _ => Err(Error::BadEvent(format!(
                    "a line that is not an event: {:?}",
                    crate::protocol::truncate(&String::from_utf8_lossy(&line), 120)
                ))),
            };
        }
    }
}

fn text<'a>(ev: &'a Value, key: &str) -> &'a str {
    ev[key].as_str().unwrap_or("")
}

fn daemon_error(ev: &Value) -> Error {
    let code = text(ev, "code").to_string();
    let mut message = text(ev, "message").to_string();
    // The daemon's hint is in JSON, for socket clients; say it the CLI's way.
    if code == "session_not_found" {
        let sid = text(ev, "session_id");
        message = format!(
            "no session named '{sid}'; start it with `ruster chat {sid}` or `ruster send {sid} MESSAGE`"
        );
    }
    Error::Daemon { code, message }
}

// ---------------------------------------------------------------------------
// One-shot commands.

fn send(conn: &mut Conn, session: &str, message: &str, model: Option<String>) -> Result<(), Error> {
    conn.call(json!({"action": "create", "session_id": session}))?;
    let mut req = json!({"action": "send", "session_id": session, "message": message});
    if let Some(m) = model {
        req["model"] = json!(m);
    }
    let id = conn.send(req)?;
    // The daemon's provider timeouts bound a turn; a slow local model may
    // take longer than ANSWER_TIMEOUT to start.
    conn.events.set_timeout(None)?;
    let mut out = io::stdout().lock();
    loop {
        let ev = conn.answer(id)?;
        if ev["event"] != "response" {
            continue;
        }
        out.write_all(text(&ev, "delta").as_bytes())
            .and_then(|()| out.flush())
            .map_err(Error::Stdout)?;
        if ev["done"] == true {
            writeln!(out).map_err(Error::Stdout)?;
            match text(&ev, "finish_reason") {
                "stop" | "" => {}
                "cancelled" => eprintln!("ruster: the turn was cancelled"),
                other => eprintln!("ruster: the reply ended early ({other})"),
            }
            return Ok(());
        }
    }
}

fn status(conn: &mut Conn) -> Result<(), Error> {
    let ev = conn.call(json!({"action": "status"}))?;
    let num = |k: &str| ev[k].as_u64().map_or("?".into(), |n| n.to_string());
    let rows = vec![
        vec!["version".into(), text(&ev, "version").to_string()],
        vec![
            "uptime".into(),
            ev["uptime_secs"].as_u64().map_or("?".into(), human_secs),
        ],
        vec!["sessions".into(), num("sessions")],
        vec!["connections".into(), num("connections")],
        vec!["skills".into(), num("skills")],
        vec![
            "default model".into(),
            text(&ev, "default_model").to_string(),
        ],
    ];
    print(&table(&[], &rows))
}

fn sessions(conn: &mut Conn) -> Result<(), Error> {
    let ev = conn.call(json!({"action": "list"}))?;
    print(&sessions_text(&ev))
}

fn skills(conn: &mut Conn) -> Result<(), Error> {
    let ev = conn.call(json!({"action": "skills"}))?;
    let list = ev["skills"].as_array().map_or(&[][..], Vec::as_slice);
    for s in ev["skipped"].as_array().map_or(&[][..], Vec::as_slice) {
        eprintln!(
            "ruster: skipped skill {}: {}",
            text(s, "path"),
            text(s, "reason")
        );
    }
    if list.is_empty() {
        return print("no skills found; put NAME/SKILL.md folders in one of the config's skills_dirs (see `ruster config`) and restart the daemon\n");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| vec![text(s, "name").into(), text(s, "description").into()])
        .collect();
    print(&table(&["NAME", "DESCRIPTION"], &rows))
}

fn show_config(conn: &mut Conn, style: Style) -> Result<(), Error> {
    let ev = conn.call(json!({"action": "config"}))?;
    let pretty = serde_json::to_string_pretty(&ev["config"]).unwrap_or_default();
    // Piped output stays pure JSON (for jq); a terminal also gets the path.
    let header = if style.dim {
        style.dim(&format!("# {}", text(&ev, "path"))) + "\n"
    } else {
        String::new()
    };
    print(&format!("{header}{pretty}\n"))
}

fn remind(conn: &mut Conn, session: &str, due: Due, message: &str) -> Result<(), Error> {
    let mut req = json!({"action": "remind", "session_id": session, "message": message});
    match due {
        Due::In(secs) => req["in_secs"] = json!(secs),
        Due::At(at) => req["at"] = json!(at),
    }
    let ev = conn.call(req)?;
    print(&format!(
        "{}  due {}  ({})\n",
        text(&ev, "reminder_id"),
        text(&ev, "due"),
        session
    ))
}

// ---------------------------------------------------------------------------
// Output.

/// Aligned columns, two spaces apart; no header line when `header` is empty.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all: Vec<Vec<String>> = Vec::new();
    if !header.is_empty() {
        all.push(header.iter().map(|h| h.to_string()).collect());
    }
    all.extend(rows.iter().cloned());
    let cols = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            all.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for row in &all {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            line += &format!("{cell:<w$}  ");
        }
        s += line.trim_end();
        s.push('\n');
    }
    s
}

fn human_secs(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn sessions_text(ev: &Value) -> String {
    let list = ev["sessions"].as_array().map_or(&[][..], Vec::as_slice);
    if list.is_empty() {
        return "no sessions yet; start one with `ruster chat NAME`\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                text(s, "session_id").into(),
                text(s, "model").into(),
                s["messages"].as_u64().unwrap_or(0).to_string(),
                text(s, "updated_at").into(),
                if s["busy"] == true { "busy" } else { "" }.into(),
            ]
        })
        .collect();
    table(&["SESSION", "MODEL", "MESSAGES", "UPDATED", ""], &rows)
}

/// A `history` answer as `TIME  ROLE  TEXT` lines, continuation lines
/// indented under the text.
fn history_text(ev: &Value) -> String {
    let msgs = ev["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let total = ev["total"].as_u64().unwrap_or(msgs.len() as u64);
    let mut s = String::new();
    if (msgs.len() as u64) < total {
        s += &format!("(last {} of {total} messages)\n", msgs.len());
    }
    if msgs.is_empty() {
        s += "(no messages yet)\n";
    }
    for m in msgs {
        let mut role = text(m, "role").to_string();
        if m["cancelled"] == true {
            role += " (cancelled)";
        }
        let head = format!("{}  {role:<9}  ", text(m, "ts"));
        let indent = " ".repeat(head.chars().count());
        let content = match &m["content"] {
            Value::String(c) => c.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        for (i, line) in content.lines().enumerate() {
            s += if i == 0 { &head } else { &indent };
            s += line;
            s.push('\n');
        }
        if content.lines().next().is_none() {
            s += head.trim_end();
            s.push('\n');
        }
    }
    s
}

/// Cuts `s` to `max` characters on one line, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    one_line.chars().take(max).collect::<String>() + "…"
}

/// ANSI dim for side notes, only on a terminal.
#[derive(Debug, Clone, Copy)]
struct Style {
    dim: bool,
}

impl Style {
    fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            dim: io::stdout().is_terminal() && !no_color,
        }
    }

    fn dim(self, s: &str) -> String {
        if self.dim {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// What the current output line holds, so that a note starts on its own line.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Nothing,
    /// `chat`'s prompt, waiting for a line.
    Prompt,
    Reply,
    Thinking,
}

/// Turns the events of `chat` into text for a person.
struct Render {
    style: Style,
    open: Open,
    /// Whether to show a prompt (stdin is a terminal).
    prompts: bool,
}

impl Render {
    fn show(&mut self, out: &mut impl Write, ev: &Value) -> io::Result<()> {
        let t = |k| text(ev, k);
        match t("event") {
            "response" => {
                self.reply(out, t("delta"))?;
                if ev["done"] == true {
                    self.close(out)?;
                    match t("finish_reason") {
                        "stop" | "" => {}
                        "cancelled" => self.note(out, "(cancelled)")?,
                        other => self.note(out, &format!("(reply ended: {other})"))?,
                    }
                }
                Ok(())
            }
            "thinking" => self.thinking(out, t("delta")),
            "skill" => self.note(out, &format!("[skill {} ({})]", t("skill"), t("reason"))),
            "tool" => {
                let args = clip(&ev["arguments"].to_string(), TOOL_NOTE_CHARS);
                let result = clip(t("result"), TOOL_NOTE_CHARS);
                self.note(out, &format!("[tool {}({args}) → {result}]", t("tool")))
            }
            "proactive" => self.note(out, &format!("[{}] {}", t("kind"), t("message"))),
            "compacted" => self.note(
                out,
                &format!("[older history summarized: {} messages]", ev["messages"]),
            ),
            "remembered" => self.note(out, &format!("[remembered as {}]", t("memory_id"))),
            "history" => self.block(out, &history_text(ev)),
            "sessions" => self.block(out, &sessions_text(ev)),
            "shutdown" => self.note(out, "[the daemon is shutting down]"),
            "error" => {
                self.close(out)?;
                out.flush()?;
                eprintln!("ruster: {}", daemon_error(ev));
                Ok(())
            }
            // created, subscribed, cancelled, keepalive, pong: nothing to say.
            _ => Ok(()),
        }
    }

    fn reply(&mut self, out: &mut impl Write, delta: &str) -> io::Result<()> {
        if self.open != Open::Reply {
            self.close(out)?;
        }
        if !delta.is_empty() {
            out.write_all(delta.as_bytes())?;
            self.open = Open::Reply;
        }
        out.flush()
    }

    fn thinking(&mut self, out: &mut impl Write, delta: &str) -> io::Result<()> {
        if self.open != Open::Thinking {
            self.close(out)?;
            out.write_all(self.style.dim("thinking: ").as_bytes())?;
        }
        out.write_all(self.style.dim(delta).as_bytes())?;
        self.open = Open::Thinking;
        out.flush()
    }

    fn note(&mut self, out: &mut impl Write, s: &str) -> io::Result<()> {
        self.close(out)?;
        writeln!(out, "{}", self.style.dim(s))?;
        out.flush()
    }

    fn block(&mut self, out: &mut impl Write, s: &str) -> io::Result<()> {
        self.close(out)?;
        out.write_all(s.as_bytes())?;
        out.flush()
    }

    /// Shows the prompt, unless a line is open.
    fn prompt(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.prompts && self.open == Open::Nothing {
            out.write_all(self.style.dim("> ").as_bytes())?;
            self.open = Open::Prompt;
            out.flush()?;
        }
        Ok(())
    }

    /// A line was typed: the terminal's echo of Enter ended the prompt's line.
    fn typed(&mut self) {
        if self.open == Open::Prompt {
            self.open = Open::Nothing;
        }
    }

    /// Ends the open line, if any.
    fn close(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.open != Open::Nothing {
            writeln!(out)?;
            self.open = Open::Nothing;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// chat.

/// One line typed in `chat`.
#[derive(Debug, PartialEq)]
enum Line {
    Empty,
    Message(String),
    History(usize),
    Sessions,
    Remember(String),
    Help,
    Quit,
    /// A command used wrongly: what to say.
    Bad(String),
}

const CHAT_HELP: &str = "\
/history [N]     the last N messages (default 20)
/sessions        every stored session
/remember TEXT   keep TEXT in this session's memory
/quit            quit (so do Ctrl-D and Ctrl-C twice); Ctrl-C cancels a reply
Any other line is sent to the model; /NAME at the start uses the skill NAME.";

fn parse_line(line: &str) -> Line {
    let line = line.trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    match cmd {
        "" => Line::Empty,
        "/quit" | "/exit" => Line::Quit,
        "/help" => Line::Help,
        "/sessions" => Line::Sessions,
        "/history" if arg.is_empty() => Line::History(HISTORY_DEFAULT),
        "/history" => history_limit(arg).map_or_else(Line::Bad, Line::History),
        "/remember" if arg.is_empty() => Line::Bad("usage: /remember TEXT".into()),
        "/remember" => Line::Remember(arg.to_string()),
        _ => Line::Message(line.to_string()),
    }
}

/// The wake-up pipe's write end, for the SIGINT handler.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Bytes written to the wake-up pipe.
const WAKE_INTERRUPT: u8 = b'i';
const WAKE_ANSWERED: u8 = b'a';
const WAKE_CLOSED: u8 = b'c';
const WAKE_STDOUT: u8 = b'o';

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: write(2), with errno preserved.
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: writing one byte from a static buffer to a pipe we own;
        // errno is thread-local and restored before returning.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [WAKE_INTERRUPT].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// The request `chat` waits for: its answer (or a turn's terminal event)
/// lets the next line be read.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    turn: bool,
}

/// What the stdin loop and the event reader share. Each lock is held only
/// to read or swap the value (`render` while printing one event).
struct Shared {
    pending: Mutex<Option<Pending>>,
    render: Mutex<Render>,
    quitting: AtomicBool,
}

impl Shared {
    /// Whether `ev` ends the pending request (and clears it if so).
    fn settles(&self, ev: &Value) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = *pending else { return false };
        let terminal = ev["event"] == "error" || (ev["event"] == "response" && ev["done"] == true);
        if ev["id"].as_u64() == Some(p.id) && (!p.turn || terminal) {
            *pending = None;
            return true;
        }
        false
    }

    fn pending(&self) -> Option<Pending> {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, s: &str) -> Result<(), Error> {
        self.with_render(|r, out| r.note(out, s))
    }

    /// Runs `f` on the renderer and stdout, both locked.
    fn with_render(
        &self,
        f: impl FnOnce(&mut Render, &mut io::StdoutLock) -> io::Result<()>,
    ) -> Result<(), Error> {
        let mut r = self.render.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r, &mut io::stdout().lock()).map_err(Error::Stdout)
    }
}

fn wake(fd: RawFd, byte: u8) {
    // SAFETY: one byte to a pipe kept open until the reader is joined.
    unsafe { libc::write(fd, [byte].as_ptr().cast(), 1) };
}

fn chat(mut conn: Conn, session: &str, model: Option<String>, style: Style) -> Result<(), Error> {
    let mut create = json!({"action": "create", "session_id": session});
    if let Some(m) = model {
        create["model"] = json!(m);
    }
    let created = conn.call(create)?;
    let interactive = io::stdin().is_terminal();
    if interactive {
        let how = if created["new"] == true {
            "new"
        } else {
            "resumed"
        };
        let banner = format!(
            "session {session} ({how}, model {}); /help for commands, Ctrl-D to quit",
            text(&created, "model")
        );
        print(&(style.dim(&banner) + "\n"))?;
    }
    conn.events.set_timeout(None)?;
    let (writer, events) = conn.split();
    let (wake_read, wake_write) = pipe()?;
    let shared = Arc::new(Shared {
        pending: Mutex::new(None),
        render: Mutex::new(Render {
            style,
            open: Open::Nothing,
            prompts: interactive,
        }),
        quitting: AtomicBool::new(false),
    });
    let reader = spawn_reader(events, shared.clone(), wake_write.as_raw_fd())?;
    WAKE_FD.store(wake_write.as_raw_fd(), Ordering::SeqCst);
    let old = set_sigint(on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t);
    let mut repl = Repl {
        session: session.to_string(),
        writer,
        shared: shared.clone(),
        wake: wake_read,
        stdin: Vec::new(),
        eof: false,
        last_interrupt: None,
    };
    let result = repl.run();
    set_sigint(old);
    WAKE_FD.store(-1, Ordering::SeqCst);
    shared.quitting.store(true, Ordering::SeqCst);
    repl.writer.close();
    if let Err(panic) = reader.join() {
        std::panic::resume_unwind(panic);
    }
    drop(wake_write);
    result
}

fn spawn_reader(
    mut events: Events,
    shared: Arc<Shared>,
    wake_fd: RawFd,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let socket = events.socket.clone();
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || loop {
            let ev = match events.next() {
                Ok(Some(ev)) => ev,
                Ok(None) | Err(_) => {
                    if !shared.quitting.load(Ordering::SeqCst) {
                        wake(wake_fd, WAKE_CLOSED);
                    }
                    return;
                }
            };
            let shown = {
                let mut r = shared.render.lock().unwrap_or_else(|e| e.into_inner());
                r.show(&mut io::stdout().lock(), &ev)
            };
            if shown.is_err() {
                wake(wake_fd, WAKE_STDOUT);
                return;
            }
            if ev["event"] == "shutdown" {
                wake(wake_fd, WAKE_CLOSED);
                return;
            }
            if shared.settles(&ev) {
                wake(wake_fd, WAKE_ANSWERED);
            }
            // Redraw the prompt an event (a reminder, a turn from another
            // terminal) printed over, or the one a finished answer frees.
            if shared.pending().is_none() && shared.with_render(|r, out| r.prompt(out)).is_err() {
                wake(wake_fd, WAKE_STDOUT);
                return;
            }
        })
        .map_err(|source| Error::Io { socket, source })
}

/// The stdin side of `chat`: reads a line only when no request is pending,
/// so piped input runs one turn after another.
struct Repl {
    session: String,
    writer: Writer,
    shared: Arc<Shared>,
    wake: OwnedFd,
    /// Bytes read from stdin, not yet a whole line.
    stdin: Vec<u8>,
    eof: bool,
    last_interrupt: Option<Instant>,
}

enum Flow {
    Go,
    Quit,
}

impl Repl {
    fn run(&mut self) -> Result<(), Error> {
        loop {
            let idle = self.shared.pending().is_none();
            if idle {
                if let Some(line) = self.next_line() {
                    match self.line(&line)? {
                        Flow::Go => continue,
                        Flow::Quit => return Ok(()),
                    }
                }
                if self.eof {
                    // End the prompt's line, so the shell's starts afresh.
                    self.shared.with_render(|r, out| r.close(out))?;
                    return Ok(());
                }
                self.shared.with_render(|r, out| r.prompt(out))?;
            }
            let (stdin_ready, wake_ready) = wait(self.wake.as_raw_fd(), idle)?;
            if wake_ready {
                if let Flow::Quit = self.woken()? {
                    return Ok(());
                }
            }
            if stdin_ready {
                self.read_stdin()?;
            }
        }
    }

    fn next_line(&mut self) -> Option<String> {
        let end = match self.stdin.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.eof && !self.stdin.is_empty() => self.stdin.len(),
            None => return None,
        };
        let bytes: Vec<u8> = self.stdin.drain(..end).collect();
        self.shared
            .render
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .typed();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn read_stdin(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; 8192];
        // SAFETY: reading into a buffer we own, of the length given.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => self.eof = true,
            n if n > 0 => self.stdin.extend_from_slice(&buf[..n as usize]),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("ruster: cannot read stdin: {e}");
                    self.eof = true;
                }
            }
        }
        Ok(())
    }

    /// Handles the bytes in the wake-up pipe.
    fn woken(&mut self) -> Result<Flow, Error> {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a buffer we own from our non-blocking pipe.
        let n = unsafe { libc::read(self.wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        for &b in buf.iter().take(n.max(0) as usize) {
            match b {
                WAKE_INTERRUPT => {
                    if let Flow::Quit = self.interrupt()? {
                        return Ok(Flow::Quit);
                    }
                }
                WAKE_CLOSED => return Err(Error::Closed(self.writer.socket.clone())),
                WAKE_STDOUT => {
                    return Err(Error::Stdout(io::ErrorKind::BrokenPipe.into()));
                }
                _ => {} // WAKE_ANSWERED: the loop reads the next line.
            }
        }
        Ok(Flow::Go)
    }

    fn interrupt(&mut self) -> Result<Flow, Error> {
        let now = Instant::now();
        let twice = self
            .last_interrupt
            .is_some_and(|t| now.duration_since(t) < DOUBLE_CTRL_C);
        self.last_interrupt = Some(now);
        if twice {
            self.shared.with_render(|r, out| r.close(out))?;
            return Ok(Flow::Quit);
        }
        match self.shared.pending() {
            Some(p) if p.turn => {
                self.writer
                    .send(json!({"action": "cancel", "session_id": self.session}))?;
                self.shared.note("(cancelling; Ctrl-C again to quit)")?;
            }
            _ => {
                self.shared.note("(Ctrl-C again or Ctrl-D to quit)")?;
            }
        }
        Ok(Flow::Go)
    }

    fn line(&mut self, line: &str) -> Result<Flow, Error> {
        let sid = self.session.clone();
        let (req, turn) = match parse_line(line) {
            Line::Empty => return Ok(Flow::Go),
            Line::Quit => return Ok(Flow::Quit),
            Line::Help => {
                self.shared
                    .with_render(|r, out| r.block(out, &format!("{CHAT_HELP}\n")))?;
                return Ok(Flow::Go);
            }
            Line::Bad(msg) => {
                eprintln!("ruster: {msg}");
                return Ok(Flow::Go);
            }
            Line::Message(m) => (
                json!({"action": "send", "session_id": sid, "message": m}),
                true,
            ),
            Line::History(n) => (
                json!({"action": "history", "session_id": sid, "limit": n}),
                false,
            ),
            Line::Sessions => (json!({"action": "list"}), false),
            Line::Remember(t) => (
                json!({"action": "remember", "session_id": sid, "text": t}),
                false,
            ),
        };
        // Pending is set before sending, so a quick answer cannot be missed.
        let id = self.writer.new_id();
        *self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Pending { id, turn });
        self.writer.send_as(req, id)?;
        Ok(Flow::Go)
    }
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills both fds on success; we own them from here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(Error::Io {
            socket: PathBuf::from("(wake-up pipe)"),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Installs `handler` for SIGINT; returns the previous one.
fn set_sigint(handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: the action is fully initialised; the handler only calls
    // async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let mut old: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, &mut old);
        old.sa_sigaction
    }
}

/// Waits until the wake-up pipe (or, when `with_stdin`, stdin) is readable:
/// (stdin ready, pipe ready).
fn wait(wake: RawFd, with_stdin: bool) -> Result<(bool, bool), Error> {
    let mut fds = [
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: if with_stdin { 0 } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfd structs; a negative fd is ignored by poll.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok((false, false));
        }
        return Err(Error::Io {
            socket: PathBuf::from("(stdin)"),
            source: e,
        });
    }
    let ready = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok((ready(&fds[1]), ready(&fds[0])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(a: &[&str]) -> Command {
        match parse(a.iter().map(OsString::from).collect()) {
            Ok(Parsed::Run { command, .. }) => command,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    fn parse_err(a: &[&str]) -> String {
        match parse(a.iter().map(OsString::from).collect()) {
            Err(e @ Error::Usage { .. }) => e.to_string(),
            other => panic!("{a:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn parses_send_with_options_anywhere() {
        assert_eq!(
            parse_ok(&["send", "work", "hello", "--model", "m", "there"]),
            Command::Send {
                session: "work".into(),
                message: "hello there".into(),
                model: Some("m".into())
            }
        );
        assert_eq!(
            parse_ok(&["send", "w", "--", "--not-an-option"]),
            Command::Send {
                session: "w".into(),
                message: "--not-an-option".into(),
                model: None
            }
        );
        let p = parse(
            ["status", "--socket=/x.sock"]
                .iter()
                .map(OsString::from)
                .collect(),
        )
        .unwrap();
        assert_eq!(
            p,
            Parsed::Run {
                socket: Some("/x.sock".into()),
                command: Command::Status
            }
        );
    }

    #[test]
    fn chat_defaults_and_help() {
        assert_eq!(
            parse_ok(&["chat"]),
            Command::Chat {
                session: "default".into(),
                model: None
            }
        );
        let Ok(Parsed::Help(h)) = parse(vec!["remind".into(), "x".into(), "--help".into()]) else {
            panic!("--help")
        };
        assert!(
            h.starts_with("usage: ruster remind SESSION IN MESSAGE..."),
            "{h}"
        );
        assert!(h.contains("--socket PATH"), "{h}");
    }

    #[test]
    fn bad_command_lines_name_the_problem() {
        assert!(parse_err(&["send", "work"]).contains("usage: ruster send SESSION MESSAGE..."));
        assert!(parse_err(&["remind", "w"]).starts_with("missing IN\n"));
        assert!(parse_err(&["status", "extra"]).contains("\"extra\""));
        assert!(parse_err(&["send", "a/b", "hi"]).contains("invalid session name \"a/b\""));
        assert!(parse_err(&["send", "w", "hi", "--model"]).contains("--model needs a value"));
        assert!(parse_err(&["status", "--model", "m"]).contains("unknown option '--model'"));
        assert!(parse_err(&["history", "w", "0"]).contains("from 1 to 1000"));
        assert!(parse_err(&["remind", "w", "soon", "x"]).contains("cannot read the time \"soon\""));
        assert!(parse_err(&["notify", "w", "m", "--delivery", "loud"]).contains("\"loud\""));
        assert!(parse_err(&["nope"]).contains("the commands are: chat, send"));
    }

    #[test]
    fn parses_remind_and_notify() {
        assert_eq!(
            parse_ok(&["remind", "w", "20m", "stand", "up"]),
            Command::Remind {
                session: "w".into(),
                due: Due::In(1200),
                message: "stand up".into()
            }
        );
        assert_eq!(
            parse_ok(&["remind", "w", "2026-11-24T15:00:00Z", "x"]),
            Command::Remind {
                session: "w".into(),
                due: Due::At("2026-11-24T15:00:00Z".into()),
                message: "x".into()
            }
        );
        assert_eq!(
            parse_ok(&[
                "notify",
                "w",
                "disk",
                "full",
                "--source",
                "df",
                "--delivery",
                "silent"
            ]),
            Command::Notify {
                session: "w".into(),
                message: "disk full".into(),
                source: Some("df".into()),
                delivery: Some("silent".into())
            }
        );
        assert_eq!(
            parse_ok(&["history", "w", "5"]),
            Command::History {
                session: "w".into(),
                limit: 5
            }
        );
    }

    #[test]
    fn durations() {
        for (s, n) in [
            ("90", 90),
            ("90s", 90),
            ("20m", 1200),
            ("2h", 7200),
            ("1d", 86_400),
        ] {
            assert_eq!(parse_duration(s), Some(n), "{s}");
        }
        for bad in [
            "",
            "s",
            "0",
            "0m",
            "-5",
            "1.5h",
            "5w",
            "1h30m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chat_lines() {
        assert_eq!(parse_line("  "), Line::Empty);
        assert_eq!(parse_line("hi there\n"), Line::Message("hi there".into()));
        assert_eq!(
            parse_line("/joke-teller go"),
            Line::Message("/joke-teller go".into())
        );
        assert_eq!(parse_line("/history"), Line::History(20));
        assert_eq!(parse_line("/history 3"), Line::History(3));
        assert!(matches!(parse_line("/history x"), Line::Bad(_)));
        assert_eq!(
            parse_line("/remember my cat is Miso"),
            Line::Remember("my cat is Miso".into())
        );
        assert!(matches!(parse_line("/remember"), Line::Bad(_)));
        assert_eq!(parse_line("/quit"), Line::Quit);
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "LONG"],
            &[vec!["xyz".into(), "1".into()], vec!["é".into(), "".into()]],
        );
        assert_eq!(t, "A    LONG\nxyz  1\né\n");
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(3725), "1h 2m");
        assert_eq!(human_secs(90_000), "1d 1h");
    }

    #[test]
    fn history_is_readable() {
        let ev = json!({"event":"history","total":3,"messages":[
            {"role":"user","content":"hi","ts":"T1"},
            {"role":"assistant","content":"a\nb","ts":"T2","cancelled":true}]});
        assert_eq!(
            history_text(&ev),
            "(last 2 of 3 messages)\nT1  user       hi\nT2  assistant (cancelled)  a\n                           b\n"
        );
    }

    #[test]
    fn render_closes_lines_before_notes() {
        let mut r = Render {
            style: Style { dim: false },
            open: Open::Prompt,
            prompts: true,
        };
        let mut out = Vec::new();
        for ev in [
            json!({"event":"skill","skill":"s","reason":"matched"}),
            json!({"event":"thinking","delta":"hmm"}),
            json!({"event":"response","delta":"Hi","done":false}),
            json!({"event":"response","delta":".","done":true,"finish_reason":"stop"}),
            json!({"event":"proactive","kind":"reminder","message":"tea"}),
        ] {
            r.show(&mut out, &ev).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n[skill s (matched)]\nthinking: hmm\nHi.\n[reminder] tea\n"
        );
    }
}
