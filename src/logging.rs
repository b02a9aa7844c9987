//! The daemon log: `<data_dir>/logs/ruster.log`, rotated daily, 7 kept.
//!
//! flexi_logger writes `ruster_rCURRENT.log` and renames it with a time
//! stamp once a day; `ruster.log` is a symlink to the current file, so the
//! log is always at that exact path. Warnings and errors are also copied to
//! stderr, which systemd keeps in the journal. Nothing here ever formats an
//! API key: providers' `Debug` hides them, and URLs carry none.

use std::path::Path;

use flexi_logger::{
    Age, Cleanup, Criterion, DeferredNow, Duplicate, FileSpec, Logger, LoggerHandle, Naming,
    WriteMode,
};
use log::Record;

/// Rotated log files kept besides the current one.
const KEEP_LOGS: usize = 7;

/// Starts logging at `level` (`RUST_LOG` overrides) into `dir`.
pub fn init(level: &str, dir: &Path) -> Result<LoggerHandle, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log folder {}: {e}", dir.display()))?;
    // The HTTP and TLS crates are chatty at debug; a plain level keeps them
    // at warn. A full spec (`info,ureq=debug`) is taken as written.
    let spec = if level.contains(['=', ',']) {
        level.to_string()
    } else {
        format!("{level},ureq=warn,ureq_proto=warn,rustls=warn")
    };
    Logger::try_with_env_or_str(&spec)
        .map_err(|e| format!("invalid log_level {level:?}: {e}"))?
        .log_to_file(FileSpec::default().directory(dir).basename("ruster"))
        .rotate(
            Criterion::Age(Age::Day),
            Naming::Timestamps,
            Cleanup::KeepLogFiles(KEEP_LOGS),
        )
        .create_symlink(dir.join("ruster.log"))
        .append()
        .duplicate_to_stderr(Duplicate::Warn)
        .format_for_files(line_format)
        .format_for_stderr(flexi_logger::default_format)
        .write_mode(WriteMode::Direct)
        .start()
        .map_err(|e| format!("cannot start logging into {}: {e}", dir.display()))
}

/// `2026-11-25T16:04:05.123Z INFO  ruster::agent: message`
fn line_format(
    w: &mut dyn std::io::Write,
    now: &mut DeferredNow,
    record: &Record,
) -> std::io::Result<()> {
    write!(
        w,
        "{} {:<5} {}: {}",
        now.format_rfc3339(),
        record.level(),
        record.target(),
        record.args()
    )
}
