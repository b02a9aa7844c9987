//! The daemon's configuration: `~/.config/ruster/config.toml`.
//!
//! Policy: every default lives in [`Config::default`], and the commented file
//! written on first run is rendered from it and from [`KEYS`], so the file,
//! the code and `docs/configuration.md` cannot drift apart. A file that does
//! not parse stops start-up with a message naming the file, line and key;
//! an unknown key is only warned about, so an older daemon can read a newer
//! file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One `[providers.NAME]` table: adds a provider or overrides a built-in one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `ollama` (`/api/chat`, NDJSON) or `openai` (`/chat/completions`, SSE).
    pub kind: Option<String>,
    /// Where the provider listens, e.g. `http://localhost:11434`.
    pub base_url: Option<String>,
    /// The environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// The API key itself (prefer `api_key_env`: keys in files leak).
    pub api_key: Option<String>,
}

/// The whole configuration. Field docs end with the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The UNIX socket clients connect to. Defaults to `/tmp/ruster.sock`.
    pub socket_path: String,
    /// The model of new sessions, as `provider/model`. Defaults to `ollama/llama3.2`.
    pub default_model: String,
    /// Folders searched for skills (`<dir>/<name>/SKILL.md`), earlier first.
    pub skills_dirs: Vec<String>,
    /// Tokens the skills index may take in every turn's context. Defaults to 1500.
    pub skills_index_tokens: u32,
    /// Lowest relevance score that activates a skill on its own. Defaults to 2.2.
    pub skill_match_threshold: f32,
    /// Most skills active in one turn (explicit and pinned ones count). Defaults to 3.
    pub max_active_skills: usize,
    /// An embedding model (`provider/model`, like `ollama/nomic-embed-text`)
    /// whose similarity is blended into skill matching and memory recall.
    /// Defaults to none (lexical relevance only).
    pub embedding_model: Option<String>,
    /// Seconds one turn waits for its message's embedding before it matches
    /// lexically only. Defaults to 3.
    pub embedding_timeout_secs: u64,
    /// Let models run scripts from skill folders (`run_skill_script`). Defaults to false.
    pub allow_skill_scripts: bool,
    /// Seconds a skill script may run before it is killed. Defaults to 30.
    pub skill_script_timeout_secs: u64,
    /// Offer the built-in tools to models. Defaults to true.
    pub tools_enabled: bool,
    /// Models (`provider/model`) never offered tools. Defaults to none.
    pub models_without_tools: Vec<String>,
    /// Tool-call rounds in one turn before it ends with `tool_limit`. Defaults to 4.
    pub max_tool_rounds: u32,
    /// Seconds between keepalive events to every client. Defaults to 30.
    pub proactive_interval_secs: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides. Defaults to `info`.
    pub log_level: String,
    /// Where sessions, state and logs live. Defaults to `~/.var/app/ruster`.
    pub data_dir: String,
    /// A gateway that reaches every provider as `{proxy_url}/{provider}/...`. Defaults to none.
    pub proxy_url: Option<String>,
    /// Bearer token for `proxy_url` (`RUSTER_PROXY_TOKEN` overrides). Defaults to none.
    pub proxy_token: Option<String>,
    /// The system prompt of every session, before the session's own.
    pub system_prompt: String,
    /// The context window a turn is fitted into, in (estimated) tokens. Defaults to 8192.
    pub context_tokens: u32,
    /// Tokens of the context kept free for the reply. Defaults to 1024.
    pub reply_reserve_tokens: u32,
    /// Longest reply in tokens, asked of the provider; 0 leaves it to the
    /// provider. Defaults to 0.
    pub max_reply_tokens: u32,
    /// Longest request line a client may send. Defaults to 1 MiB.
    pub max_line_bytes: usize,
    /// Most clients connected at once. Defaults to 1024.
    pub max_connections: usize,
    /// Events queued for a client that is not reading before it is dropped. Defaults to 4096.
    pub max_queued_events: usize,
    /// Other users (uids) allowed on the socket besides the daemon's own. Defaults to none.
    pub allowed_uids: Vec<u32>,
    /// Seconds to connect to a provider. Defaults to 10.
    pub llm_connect_timeout_secs: u64,
    /// Longest silence, in seconds, while waiting for a provider's answer or
    /// between two lines of its stream. Defaults to 120.
    pub llm_read_timeout_secs: u64,
    /// Retries of a provider call that failed before its first token. Defaults to 2.
    pub llm_retries: u32,
    /// First retry delay in milliseconds, doubled each retry. Defaults to 500.
    pub llm_retry_base_ms: u64,
    /// The heartbeat prompt of a session with neither a `HEARTBEAT.md` nor
    /// its own prompt.
    pub heartbeat_prompt: String,
    /// Tokens a session's heartbeats may spend per day. Defaults to 20000.
    pub heartbeat_max_tokens_per_day: u64,
    /// Local hours without heartbeats, like `22:00-07:00`. Defaults to none.
    pub quiet_hours: Option<String>,
    /// `notify` events accepted per source and session per minute. Defaults to 10.
    pub notify_rate_per_min: u32,
    /// Added providers or overrides of built-in ones.
    pub providers: BTreeMap<String, ProviderConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            socket_path: "/tmp/ruster.sock".into(),
            default_model: "ollama/llama3.2".into(),
            skills_dirs: vec![
                "~/.config/ruster/skills".into(),
                "/usr/share/ruster/skills".into(),
                "~/.agents/skills".into(),
            ],
            skills_index_tokens: 1500,
            skill_match_threshold: crate::skills::MatchConfig::default().threshold,
            max_active_skills: 3,
            embedding_model: None,
            embedding_timeout_secs: 3,
            allow_skill_scripts: false,
            skill_script_timeout_secs: 30,
            tools_enabled: true,
            models_without_tools: Vec::new(),
            max_tool_rounds: 4,
            proactive_interval_secs: 30,
            log_level: "info".into(),
            data_dir: "~/.var/app/ruster".into(),
            proxy_url: None,
            proxy_token: None,
            system_prompt: "You are Ruster, a helpful personal assistant running on the user's \
                            own Linux machine. Answer clearly and briefly."
                .into(),
            context_tokens: 8192,
            reply_reserve_tokens: 1024,
            max_reply_tokens: 0,
            max_line_bytes: 1 << 20,
            max_connections: 1024,
            max_queued_events: 4096,
            allowed_uids: Vec::new(),
            llm_connect_timeout_secs: 10,
            llm_read_timeout_secs: 120,
            llm_retries: 2,
            llm_retry_base_ms: 500,
            heartbeat_prompt: "Check whether anything needs the user's attention now (due tasks, \
                               reminders, events). If nothing does, reply exactly HEARTBEAT_OK."
                .into(),
            heartbeat_max_tokens_per_day: 20_000,
            quiet_hours: None,
            notify_rate_per_min: 10,
            providers: BTreeMap::new(),
        }
    }
}

/// Every top-level key with the comment written above it in a new file.
/// A unit test checks that this list and the struct agree.
pub const KEYS: &[(&str, &str)] = &[
    ("socket_path", "The UNIX socket clients connect to (JSON Lines)."),
    ("default_model", "Model of new sessions: provider/model (ollama, llamacpp, openai, openrouter,\n# groq, xai, gemini, vllm, lmstudio, or a [providers.NAME] of yours)."),
    ("skills_dirs", "Folders searched for skills (<dir>/<name>/SKILL.md); earlier folders win."),
    ("skills_index_tokens", "Tokens the skills index (names and descriptions) may take in every turn."),
    ("skill_match_threshold", "Lowest relevance score at which the daemon activates a skill by itself (higher: fewer)."),
    ("max_active_skills", "Most skills active in one turn, explicit and pinned ones included."),
    ("embedding_model", "Embedding model (provider/model, like \"ollama/nomic-embed-text\" or\n# \"openai/text-embedding-3-small\") blended into skill matching and memory recall;\n# skill vectors are cached in <data_dir>/state/embeddings.json (unset: lexical only;\n# a change needs a restart)."),
    ("embedding_timeout_secs", "Seconds a turn waits for its message's embedding before matching lexically only."),
    ("allow_skill_scripts", "Let models run scripts from skill folders (run_skill_script): no shell, empty environment, output capped."),
    ("skill_script_timeout_secs", "Seconds a skill script may run before it is killed."),
    ("tools_enabled", "Offer the built-in tools (remember, recall, current_time, activate_skill, ...) to models."),
    ("models_without_tools", "Models never offered tools, like [\"ollama/gemma:2b\"] (others that reject them are found out once)."),
    ("max_tool_rounds", "Tool-call rounds in one turn before it ends with finish_reason tool_limit."),
    ("proactive_interval_secs", "Seconds between keepalive events sent to every client."),
    ("log_level", "error, warn, info, debug or trace (RUST_LOG overrides)."),
    ("data_dir", "Where sessions, state and logs are kept."),
    ("proxy_url", "Reach every provider through one gateway as {proxy_url}/{provider}/... (unset: direct)."),
    ("proxy_token", "Bearer token for proxy_url (RUSTER_PROXY_TOKEN overrides)."),
    ("system_prompt", "System prompt of every session, before the session's own."),
    ("context_tokens", "Context window a turn is fitted into, in estimated tokens (also Ollama's num_ctx)."),
    ("reply_reserve_tokens", "Tokens of the context kept free for the reply."),
    ("max_reply_tokens", "Longest reply, in tokens, asked of the provider (0: the provider decides)."),
    ("max_line_bytes", "Longest request line a client may send, in bytes."),
    ("max_connections", "Most clients connected at once."),
    ("max_queued_events", "Events queued for a client that stopped reading before it is disconnected."),
    ("allowed_uids", "Other users (uids) allowed to use the socket besides the daemon's own."),
    ("llm_connect_timeout_secs", "Seconds allowed to connect to a provider."),
    ("llm_read_timeout_secs", "Longest silence from a provider, in seconds, before the turn fails (llm_stream)."),
    ("llm_retries", "Retries of a provider call that failed before its first token (connect, 429, 5xx)."),
    ("llm_retry_base_ms", "First retry delay in milliseconds, doubled on each retry (Retry-After wins)."),
    ("heartbeat_prompt", "Heartbeat prompt of a session with no HEARTBEAT.md and no prompt of its own."),
    ("heartbeat_max_tokens_per_day", "Tokens one session's heartbeats may spend per day; past it they pause until tomorrow."),
    ("quiet_hours", "Local hours without heartbeats, like \"22:00-07:00\" (unset: none)."),
    ("notify_rate_per_min", "notify events accepted per source and session per minute (rate_limited past it)."),
    ("providers", "Providers added or overridden, one table each:\n# [providers.home]\n# kind = \"openai\"            # or \"ollama\"\n# base_url = \"http://192.0.2.7:8080/v1\"\n# api_key_env = \"HOME_LLM_KEY\""),
];

/// Why the configuration could not be loaded. Each message names the file.
#[derive(Debug)]
pub enum ConfigError {
    /// The file exists but could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file could not be created on first run.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type; `detail`
    /// is toml's message, which names the line, column and key.
    Parse { path: PathBuf, detail: String },
    /// A value is out of range or malformed.
    Invalid {
        path: PathBuf,
        key: String,
        detail: String,
    },
    /// `$HOME` is unknown, so no default path can be built.
    NoHome,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::Write { path, source } => {
                write!(
                    f,
                    "cannot write default config {}: {source}",
                    path.display()
                )
            }
            ConfigError::Parse { path, detail } => {
                write!(
                    f,
                    "config {} is invalid: {}",
                    path.display(),
                    detail.trim_end()
                )
            }
            ConfigError::Invalid { path, key, detail } => {
                write!(f, "config {}: key '{key}': {detail}", path.display())
            }
            ConfigError::NoHome => write!(f, "cannot find the home directory; set $HOME"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A loaded configuration, its file, and the warnings met while loading
/// (logged once logging is up).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    pub warnings: Vec<String>,
    /// Whether the file was just written with the defaults.
    pub created: bool,
}

/// Loads the config at `path`, writing the commented defaults there first
/// when it does not exist.
pub fn load_or_create(path: &Path) -> Result<Loaded, ConfigError> {
    let mut created = false;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_default(path)?;
            created = true;
            default_file()
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let (config, warnings) = parse(&text).map_err(|e| match e {
        ParseError::Toml(detail) => ConfigError::Parse {
            path: path.to_path_buf(),
            detail,
        },
        ParseError::Invalid { key, detail } => ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            detail,
        },
    })?;
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        warnings,
        created,
    })
}

fn write_default(path: &Path) -> Result<(), ConfigError> {
    let err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, default_file()).map_err(err)
}

/// Why a config text was refused.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    Toml(String),
    Invalid { key: String, detail: String },
}

/// Parses a config text: the config, plus warnings for unknown keys.
pub fn parse(text: &str) -> Result<(Config, Vec<String>), ParseError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ParseError::Toml(e.to_string()))?;
    let warnings = table
        .keys()
        .filter(|k| !KEYS.iter().any(|(known, _)| known == k))
        .map(|k| format!("unknown config key '{k}' ignored (check its spelling)"))
        .collect();
    let config: Config = toml::from_str(text).map_err(|e| ParseError::Toml(e.to_string()))?;
    config.validate()?;
    Ok((config, warnings))
}

impl Config {
    fn validate(&self) -> Result<(), ParseError> {
        let invalid = |key: &str, detail: &str| {
            Err(ParseError::Invalid {
                key: key.into(),
                detail: detail.into(),
            })
        };
        if self.socket_path.trim().is_empty() {
            return invalid("socket_path", "must not be empty");
        }
        if self.max_line_bytes < 1024 {
            return invalid("max_line_bytes", "must be at least 1024");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.max_queued_events < 16 {
            return invalid("max_queued_events", "must be at least 16");
        }
        if self.context_tokens <= self.reply_reserve_tokens {
            return invalid("context_tokens", "must be larger than reply_reserve_tokens");
        }
        if self.llm_read_timeout_secs == 0 || self.llm_connect_timeout_secs == 0 {
            return invalid(
                "llm_read_timeout_secs",
                "timeouts must be at least 1 second",
            );
        }
        if let Some(q) = &self.quiet_hours {
            if parse_quiet_hours(q).is_none() {
                return invalid(
                    "quiet_hours",
                    "write it as \"HH:MM-HH:MM\" in local time, like \"22:00-07:00\"",
                );
            }
        }
        if let Err(e) = crate::llm::ModelRef::parse(&self.default_model) {
            return invalid("default_model", &e);
        }
        if self.embedding_timeout_secs == 0 {
            return invalid("embedding_timeout_secs", "must be at least 1 second");
        }
        for (name, p) in &self.providers {
            if let Some(kind) = &p.kind {
                if crate::llm::Kind::parse(kind).is_none() {
                    return invalid(
                        &format!("providers.{name}.kind"),
                        "must be \"ollama\" or \"openai\"",
                    );
                }
            }
        }
        Ok(())
    }

    /// Takes the keys of `fresh` that apply while running (prompts, skills,
    /// tools, heartbeat and context settings, log-free), and returns the
    /// names of the others that differ (they need a restart).
    pub fn apply_reloadable(&mut self, mut fresh: Config) -> Vec<&'static str> {
        let mut restart = Vec::new();
        // Keys read once at start-up: keep the running value, report a change.
        macro_rules! fixed {
            ($($key:ident),*) => {$(
                if self.$key != fresh.$key {
                    restart.push(stringify!($key));
                    fresh.$key = self.$key.clone();
                }
            )*};
        }
        fixed!(
            socket_path,
            data_dir,
            skills_dirs,
            log_level,
            proxy_url,
            proxy_token,
            max_line_bytes,
            max_connections,
            max_queued_events,
            allowed_uids,
            llm_connect_timeout_secs,
            llm_read_timeout_secs,
            llm_retries,
            llm_retry_base_ms,
            providers,
            proactive_interval_secs,
            context_tokens,
            max_reply_tokens,
            reply_reserve_tokens,
            embedding_model
        );
        *self = fresh;
        restart
    }

    /// The configuration as the `config` action shows it: every key and
    /// token replaced by `"***"`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            if obj.get("proxy_token").is_some_and(|t| !t.is_null()) {
                obj.insert("proxy_token".into(), "***".into());
            }
            if let Some(provs) = obj.get_mut("providers").and_then(|p| p.as_object_mut()) {
                for p in provs.values_mut() {
                    if let Some(p) = p.as_object_mut() {
                        if p.get("api_key").is_some_and(|k| !k.is_null()) {
                            p.insert("api_key".into(), "***".into());
                        }
                    }
                }
            }
        }
        v
    }
}

/// The text written on first run: every key, commented out at its default,
/// under its explanation.
///
/// Values are written as JSON, which is valid TOML for every scalar and
/// array this config has (strings, numbers, booleans, lists of them): that
/// spares the binary toml's serializer.
pub fn default_file() -> String {
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    let mut out = String::from(
        "# Ruster configuration. Every key is shown commented out at its default;\n\
         # uncomment and edit to change it. `~` is your home directory.\n",
    );
    for (key, doc) in KEYS {
        out.push_str(&format!("\n# {doc}\n"));
        match defaults.get(*key) {
            None | Some(serde_json::Value::Null | serde_json::Value::Object(_)) => {}
            Some(value) => out.push_str(&format!("# {key} = {value}\n")),
        }
    }
    out
}

/// `"22:00-07:00"` as minutes since midnight (start, end); the range may
/// wrap past midnight.
pub fn parse_quiet_hours(s: &str) -> Option<(u32, u32)> {
    let minutes = |hm: &str| {
        let (h, m) = hm.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = s.split_once('-')?;
    Some((minutes(a)?, minutes(b)?))
}

/// Expands a leading `~` or `~/` to `home`.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_defaults_without_warnings() {
        let (config, warnings) = parse(&default_file()).unwrap();
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn uncommented_defaults_are_valid_toml_of_the_defaults() {
        let text: String = default_file()
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| KEYS.iter().any(|(k, _)| l.starts_with(&format!("{k} = "))))
            .map(|l| format!("{l}\n"))
            .collect();
        let (config, warnings) = parse(&text).unwrap();
        assert_eq!(config, Config::default(), "{text}");
        assert!(warnings.is_empty());
    }

    #[test]
    fn keys_list_matches_struct() {
        let value = serde_json::to_value(Config::default()).unwrap();
        let table = value.as_object().unwrap();
        for key in table.keys() {
            assert!(KEYS.iter().any(|(k, _)| k == key), "KEYS lacks {key}");
        }
        assert_eq!(KEYS.len(), table.len());
    }

    #[test]
    fn every_default_key_is_written_commented() {
        let text = default_file();
        for (key, _) in KEYS {
            if !matches!(
                *key,
                "proxy_url" | "proxy_token" | "quiet_hours" | "embedding_model" | "providers"
            ) {
                assert!(
                    text.contains(&format!("# {key} = ")),
                    "{key} missing:\n{text}"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, warnings) = parse("socket_pth = \"/x\"\n").unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("socket_pth"));
    }

    #[test]
    fn type_errors_name_line_and_key() {
        let err = parse("log_level = \"info\"\nmax_connections = \"many\"\n").unwrap_err();
        let ParseError::Toml(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("max_connections"), "{msg}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            parse("default_model = \"ollama/\"\n"),
            Err(ParseError::Invalid { key, .. }) if key == "default_model"
        ));
        assert!(matches!(
            parse("[providers.x]\nkind = \"grpc\"\n"),
            Err(ParseError::Invalid { key, .. }) if key == "providers.x.kind"
        ));
    }

    #[test]
    fn providers_tables_parse() {
        let (c, _) =
            parse("[providers.home]\nkind = \"openai\"\nbase_url = \"http://h:1/v1\"\n").unwrap();
        assert_eq!(
            c.providers["home"].base_url.as_deref(),
            Some("http://h:1/v1")
        );
    }

    #[test]
    fn redaction_hides_secrets() {
        let (c, _) =
            parse("proxy_token = \"tok\"\n[providers.x]\nkind = \"openai\"\napi_key = \"sk-1\"\n")
                .unwrap();
        let text = c.redacted().to_string();
        assert!(!text.contains("tok\"") && !text.contains("sk-1"), "{text}");
        assert!(text.contains("***"));
    }

    #[test]
    fn reload_takes_only_reloadable_keys() {
        let mut running = Config::default();
        let (fresh, _) = parse("system_prompt = \"new\"\nsocket_path = \"/elsewhere\"\n").unwrap();
        let restart = running.apply_reloadable(fresh);
        assert_eq!(running.system_prompt, "new");
        assert_eq!(running.socket_path, Config::default().socket_path);
        assert_eq!(restart, ["socket_path"]);
    }

    #[test]
    fn embedding_keys() {
        let (c, _) = parse("embedding_model = \"ollama/nomic-embed-text\"\n").unwrap();
        assert_eq!(
            c.embedding_model.as_deref(),
            Some("ollama/nomic-embed-text")
        );
        assert_eq!(c.embedding_timeout_secs, 3);
        assert!(matches!(
            parse("embedding_timeout_secs = 0\n"),
            Err(ParseError::Invalid { key, .. }) if key == "embedding_timeout_secs"
        ));
        let mut running = Config::default();
        let restart = running.apply_reloadable(c);
        assert_eq!(restart, ["embedding_model"]);
        assert_eq!(running.embedding_model, None);
    }

    #[test]
    fn quiet_hours_parse() {
        assert_eq!(parse_quiet_hours("22:00-07:30"), Some((1320, 450)));
        assert_eq!(parse_quiet_hours("25:00-07:00"), None);
        assert!(parse("quiet_hours = \"late\"\n").is_err());
    }

    #[test]
    fn tilde_expands() {
        let home = Path::new("/home/u");
        assert_eq!(expand_tilde("~/x", home), PathBuf::from("/home/u/x"));
        assert_eq!(expand_tilde("~", home), PathBuf::from("/home/u"));
        assert_eq!(expand_tilde("/a/~", home), PathBuf::from("/a/~"));
    }
}
