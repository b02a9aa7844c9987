//! Every path the daemon uses, derived once from `$HOME` and the config.
//!
//! ```text
//! ~/.config/ruster/config.toml            (RUSTER_CONFIG or --config override)
//! <data_dir>/logs/ruster.log              data_dir defaults to ~/.var/app/ruster
//! <data_dir>/sessions/<id>/{meta.json,history.jsonl,activity.log}
//! <data_dir>/state/
//! ```

use std::path::{Path, PathBuf};

use crate::config::{expand_tilde, Config};

/// The config file to use: `--config PATH`, else `$RUSTER_CONFIG`, else
/// `~/.config/ruster/config.toml`.
pub fn config_file(cli: Option<&Path>, home: &Path) -> PathBuf {
    if let Some(p) = cli {
        return expand_tilde(&p.to_string_lossy(), home);
    }
    match std::env::var_os("RUSTER_CONFIG") {
        Some(p) if !p.is_empty() => expand_tilde(&p.to_string_lossy(), home),
        _ => home.join(".config/ruster/config.toml"),
    }
}

/// The folders and files under the data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub socket: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
    pub sessions: PathBuf,
    pub state: PathBuf,
    /// The `skills_dirs`, earlier first.
    pub skills: Vec<PathBuf>,
}

impl Paths {
    pub fn new(config: &Config, home: &Path) -> Paths {
        let data = expand_tilde(&config.data_dir, home);
        Paths {
            socket: expand_tilde(&config.socket_path, home),
            logs: data.join("logs"),
            sessions: data.join("sessions"),
            state: data.join("state"),
            skills: config
                .skills_dirs
                .iter()
                .map(|d| expand_tilde(d, home))
                .collect(),
            data,
        }
    }

    /// The folder of one session; `id` must have passed
    /// [`crate::protocol::valid_session_id`].
    pub fn session_dir(&self, id: &str) -> PathBuf {
        debug_assert!(crate::protocol::valid_session_id(id));
        self.sessions.join(id)
    }
}
