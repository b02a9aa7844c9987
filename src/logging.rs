//! The daemon log: `<data_dir>/logs/ruster.log`, rotated daily, 7 kept.
//!
//! flexi_logger writes `ruster_rCURRENT.log` and renames it with a time
//! stamp once a day; `ruster.log` is a symlink to the current file, so the
//! log is always at that exact path. Warnings and errors are also copied to
//! stderr, which systemd keeps in the journal. Nothing here ever formats an
//! API key: providers' `Debug` hides them, and URLs carry none.

use std::path::Path;

use flexi_logger::{
    Age, Cleanup, Criterion, Duplicate, FileSpec, Logger, LoggerHandle, Naming, WriteMode,
};

/// Rotated log files kept besides the current one.
const KEEP_LOGS: usize = 7;

/// Starts logging at `level` (`RUST_LOG` overrides) into `dir`.
pub fn init(level: &str, dir: &Path) -> Result<LoggerHandle, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log folder {}: {e}", dir.display()))?;
    Logger::try_with_env_or_str(level)
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
        .format_for_files(flexi_logger::detailed_format)
        .format_for_stderr(flexi_logger::default_format)
        .write_mode(WriteMode::Direct)
        .start()
        .map_err(|e| format!("cannot start logging into {}: {e}", dir.display()))
}
