//! The command line and the daemon's life: start-up, serving, shutdown.
//!
//! Start-up order matters: `--help`/`--version` answer before anything is
//! touched; SIGTERM/SIGINT are blocked before any thread exists (threads
//! inherit the mask, and the main thread takes them with `sigwait`); the
//! socket is bound last, once the daemon can answer.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::daemon::{Daemon, STOP_TURNS_LIMIT};
use crate::paths::{self, Paths};

const HELP: &str = "\
ruster - a small, proactive LLM agent daemon, spoken to over a UNIX socket

USAGE:
    ruster [--config PATH]     run the daemon (stop it with SIGTERM or Ctrl-C)
    ruster COMMAND [ARGS]      talk to the running daemon (see below)
    ruster --help | --version

OPTIONS:
    --config PATH   the config file (default: $RUSTER_CONFIG, else
                    ~/.config/ruster/config.toml, written with commented
                    defaults on first run)

COMMANDS (each takes --socket PATH and --help):
    chat [SESSION] [--model M]          talk interactively (Ctrl-C cancels a reply)
    send SESSION MESSAGE... [--model M] print one streamed reply (for scripts, cron)
    status | sessions | skills          what the daemon has
    config                              its effective config as JSON, secrets redacted
    history SESSION [N]                 the last N messages of a session
    remind SESSION IN MESSAGE...        IN: 90s, 20m, 2h, 1d or an RFC 3339 time
    notify SESSION MESSAGE... [--source S] [--delivery next_turn|immediate|silent]

Clients find the socket with --socket, else $RUSTER_SOCKET, else socket_path in
the config (default /tmp/ruster.sock), and speak JSON Lines:
    echo '{\"action\":\"ping\"}' | nc -U /tmp/ruster.sock
See docs/protocol.md for every request.
";

/// How long queued events get to reach clients at shutdown.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// What was typed on the command line.
#[derive(Debug, PartialEq)]
enum Args {
    Help,
    Version,
    Run { config: Option<PathBuf> },
}

fn parse_args(args: Vec<OsString>) -> Result<Args, String> {
    let mut config = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(Args::Help),
            Some("-V" | "--version") => return Ok(Args::Version),
            Some("--config") => match it.next() {
                Some(p) => config = Some(PathBuf::from(p)),
                None => return Err("--config needs a path".into()),
            },
            Some(s) if s.starts_with("--config=") => config = Some(PathBuf::from(&s[9..])),
            Some(s) if !s.starts_with('-') => {
                return Err(format!(
                    "unknown command {s:?}; the commands are: {}; see ruster --help",
                    crate::cli::command_names()
                ))
            }
            _ => {
                return Err(format!(
                    "unexpected argument {:?}; see ruster --help",
                    arg.to_string_lossy()
                ))
            }
        }
    }
    Ok(Args::Run { config })
}

/// Runs the command line; the exit code is 2 for bad arguments or config,
/// 1 for any other failure to start.
pub fn main(args: Vec<OsString>) -> ExitCode {
    // A client command goes to the client, which never touches the daemon's
    // config, data dir or signals.
    if args
        .first()
        .and_then(|a| a.to_str())
        .is_some_and(crate::cli::is_command)
    {
        return crate::cli::main(args);
    }
    match parse_args(args) {
        Ok(Args::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Args::Version) => {
            println!("ruster {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Args::Run { config }) => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure { code, message }) => {
                eprintln!("ruster: {message}");
                ExitCode::from(code)
            }
        },
        Err(e) => {
            eprintln!("ruster: {e}");
            ExitCode::from(2)
        }
    }
}

struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8) -> impl Fn(String) -> Failure {
    move |message| Failure { code, message }
}

fn run(config_arg: Option<PathBuf>) -> Result<(), Failure> {
    let signals = block_signals();
    raise_fd_limit();
    let home = home::home_dir().ok_or_else(|| fail(2)(config::ConfigError::NoHome.to_string()))?;
    let config_path = paths::config_file(config_arg.as_deref(), &home);
    let loaded = config::load_or_create(&config_path).map_err(|e| fail(2)(e.to_string()))?;
    let paths = Paths::new(&loaded.config, &home);
    let _logger = crate::logging::init(&loaded.config.log_level, &paths.logs).map_err(fail(1))?;
    std::panic::set_hook(Box::new(|info| log::error!("panic: {info}")));
    if loaded.created {
        log::info!("wrote the default config to {}", config_path.display());
    }
    for w in &loaded.warnings {
        log::warn!("{}: {w}", config_path.display());
    }

    let daemon = Daemon::new(loaded.config, config_path, paths.clone())
        .map_err(|e| fail(1)(format!("cannot open {}: {e}", paths.sessions.display())))?;
    let daemon = Arc::new(daemon);
    let listener = crate::server::bind(&paths.socket).map_err(|e| fail(1)(e.to_string()))?;
    log::info!(
        "ruster {} listening on {} ({} sessions stored)",
        env!("CARGO_PKG_VERSION"),
        paths.socket.display(),
        daemon.store.count()
    );

    let d = daemon.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .stack_size(128 << 10)
        .spawn(move || crate::server::serve(d, listener))
        .map_err(|e| fail(1)(format!("cannot start the accept thread: {e}")))?;
    crate::proactive::start(daemon.clone());

    let sig = wait_for_signal(&signals);
    log::info!("received {sig}; shutting down");
    shutdown(&daemon);
    Ok(())
}

/// Stops turns, tells every client, drains their queues, removes the socket.
fn shutdown(daemon: &Daemon) {
    daemon.stop_turns(STOP_TURNS_LIMIT);
    daemon.hub.broadcast(&crate::protocol::Event::Shutdown);
    daemon.hub.close_all();
    let deadline = std::time::Instant::now() + DRAIN_LIMIT;
    while daemon.live_connections() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Err(e) = std::fs::remove_file(&daemon.paths.socket) {
        log::warn!("cannot remove {}: {e}", daemon.paths.socket.display());
    }
    log::info!("stopped");
}

/// Raises the soft limit of open files to the hard one: each client holds
/// a descriptor, and the usual soft limit (1024) is below what
/// `max_connections` allows once files and provider sockets are counted.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread and every thread it
/// starts, so that only `sigwait` receives them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before use, and
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised signal set.
        if unsafe { libc::sigwait(set, &mut sig) } != 0 {
            continue;
        }
        return match sig {
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            _ => "SIGHUP",
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        parse_args(a.iter().map(OsString::from).collect())
    }

    #[test]
    fn parses_the_command_line() {
        assert_eq!(args(&[]), Ok(Args::Run { config: None }));
        assert_eq!(args(&["--version"]), Ok(Args::Version));
        assert_eq!(args(&["--config", "x", "--help"]), Ok(Args::Help));
        assert_eq!(
            args(&["--config=/a"]),
            Ok(Args::Run {
                config: Some("/a".into())
            })
        );
        assert!(args(&["--config"]).is_err());
        assert!(args(&["serve"]).unwrap_err().contains("serve"));
    }
}
