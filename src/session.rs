//! Sessions and their files: `meta.json`, `history.jsonl`, `activity.log`.
//!
//! Policy: `history.jsonl` is append-only, one whole line per `write` call;
//! `meta.json` is replaced atomically (temp file, fsync, rename). A torn
//! last line left by a crash is skipped with a warning, kept aside in
//! `history.torn`, and cut off so the next append starts on a clean line.
//! Start-up reads only folder names: a session's meta is read the first
//! time it is used, its history the first time a turn or `history` needs it.
//!
//! Locks: the store's map lock is held only to look up, insert or remove an
//! entry, never across file I/O or a model call. Each session has its own
//! mutex for its state; it is held across that session's small appends,
//! never across a model call.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::llm::Target;
use crate::memory::MemoryFile;
use crate::protocol::{RequestId, SessionInfo};
use crate::time::now_rfc3339;

/// Who wrote a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgRole {
    User,
    Assistant,
    Tool,
    Proactive,
    Event,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One line of `history.jsonl`, and one entry of a `history` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: MsgRole,
    pub content: String,
    pub ts: String,
    /// Skills active for an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// The turn was cancelled: `content` is what had streamed by then.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancelled: bool,
    /// The turn failed with this error code: `content` is what had streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The model that wrote an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Fields written by later versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(role: MsgRole, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            ts: now_rfc3339(),
            skills: Vec::new(),
            cancelled: false,
            error: None,
            model: None,
            extra: Map::new(),
        }
    }
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub model: String,
    /// The session's own system prompt, after the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Lines in `history.jsonl`, so `list` need not read it.
    #[serde(default)]
    pub messages: usize,
    /// History indices of proactive messages no client has received yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<usize>,
    /// History indices of `next_turn` events waiting for the next turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_turn_events: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatSettings>,
    /// The summary of compacted history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::compact::Summary>,
    /// Skills active in every turn of this session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_skills: Vec<String>,
    /// Fields written by later versions, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Meta {
    /// The meta of a new session, created now.
    pub fn new(model: &str, system: Option<String>) -> Meta {
        let now = now_rfc3339();
        Meta {
            model: model.to_string(),
            system,
            created_at: now.clone(),
            updated_at: now,
            messages: 0,
            undelivered: Vec::new(),
            next_turn_events: Vec::new(),
            heartbeat: None,
            pinned_skills: Vec::new(),
            summary: None,
            extra: Map::new(),
        }
    }
}

/// A session's heartbeat, as set by the `heartbeat` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatSettings {
    pub every_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The local day (`YYYY-MM-DD` UTC) `tokens_today` counts for.
    #[serde(default)]
    pub day: String,
    /// Tokens heartbeat turns spent on `day`.
    #[serde(default)]
    pub tokens_today: u64,
}

/// What a queued turn answers.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnKind {
    /// A user's `send`; the message is at this history index. Streamed.
    User { index: usize },
    /// A heartbeat with this prompt: silent, with a minimal context; its
    /// reply becomes a `proactive` event unless it is `HEARTBEAT_OK`.
    Heartbeat { prompt: String },
    /// An `immediate` notify event at this history index: silent; its
    /// reply becomes a `proactive` event of kind `event`.
    Event { index: usize },
}

impl State {
    /// Queues a silent turn (a heartbeat or an `immediate` event) with the
    /// session's model.
    pub fn queue_silent(&mut self, target: Target, kind: TurnKind) {
        let model = self.meta.model.clone();
        self.queue.push_back(QueuedTurn {
            id: None,
            target,
            model,
            kind,
            origin: None,
        });
    }
}

/// A turn waiting to run.
#[derive(Debug)]
pub struct QueuedTurn {
    pub id: Option<RequestId>,
    pub target: Target,
    pub model: String,
    pub kind: TurnKind,
    /// Held until the turn's terminal event is out (see `daemon::Client`).
    pub origin: Option<Sender<()>>,
}

/// A session's mutable state, behind its mutex.
#[derive(Debug)]
pub struct State {
    pub meta: Meta,
    history: Option<Vec<Message>>,
    /// Sends not yet started, in arrival order.
    pub queue: VecDeque<QueuedTurn>,
    /// Whether a worker thread serves this session now.
    pub busy: bool,
    /// Cancels the running turn.
    pub cancel: Option<Sender<()>>,
    /// Set by `delete`: the worker stops, nothing more is written.
    pub deleted: bool,
    /// A heartbeat turn is queued or running (they never overlap).
    pub heartbeat_queued: bool,
    /// The session's long-term memory, read the first time it is needed.
    memory: Option<MemoryFile>,
}

/// One named session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    dir: PathBuf,
    state: Mutex<State>,
}

impl Session {
    /// The session's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The history, read from disk the first time.
    pub fn history<'a>(&self, state: &'a mut State) -> &'a mut Vec<Message> {
        if state.history.is_none() {
            let msgs = load_history(&self.dir);
            if msgs.len() != state.meta.messages {
                state.meta.messages = msgs.len();
                let _ = write_meta(&self.dir, &state.meta, true);
            }
            state.history = Some(msgs);
        }
        state.history.get_or_insert_with(Vec::new)
    }

    /// The session's long-term memory, read from disk the first time.
    pub fn memory<'a>(&self, state: &'a mut State) -> &'a mut MemoryFile {
        state
            .memory
            .get_or_insert_with(|| MemoryFile::load(&self.dir.join("memory.jsonl")))
    }

    /// Appends a message to the history file and to memory, and updates
    /// the meta's count. Returns the message's index.
    pub fn append(&self, state: &mut State, msg: Message) -> io::Result<usize> {
        if state.deleted {
            return Err(io::Error::new(io::ErrorKind::NotFound, "session deleted"));
        }
        let mut line = serde_json::to_string(&msg)?;
        line.push('\n');
        let history = self.history(state);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("history.jsonl"))?
            .write_all(line.as_bytes())?;
        history.push(msg);
        let index = history.len() - 1;
        state.meta.messages = index + 1;
        state.meta.updated_at = now_rfc3339();
        write_meta(&self.dir, &state.meta, false)?;
        Ok(index)
    }

    /// Replaces the meta (model, system prompt) and writes it.
    pub fn save_meta(&self, state: &State) -> io::Result<()> {
        write_meta(&self.dir, &state.meta, true)
    }

    /// Appends one human-readable line to `activity.log`; failures are
    /// logged, never fatal.
    pub fn activity(&self, what: &str) {
        if !self.dir.is_dir() {
            return; // deleted while a turn was ending
        }
        let line = format!("{} {}\n", now_rfc3339(), what.replace('\n', " "));
        let res = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("activity.log"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = res {
            log::warn!("session {}: cannot write activity.log: {e}", self.id);
        }
    }

    pub fn info(&self) -> SessionInfo {
        let st = self.lock();
        SessionInfo {
            session_id: self.id.clone(),
            model: st.meta.model.clone(),
            messages: st.meta.messages,
            created_at: st.meta.created_at.clone(),
            updated_at: st.meta.updated_at.clone(),
            busy: st.busy,
        }
    }
}

/// A stored session, read or not yet.
enum Slot {
    OnDisk,
    Loaded(Arc<Session>),
}

/// Every session under `<data_dir>/sessions`.
pub struct SessionStore {
    root: PathBuf,
    default_model: String,
    sessions: RwLock<HashMap<String, Slot>>,
}

impl SessionStore {
    /// Opens the store, reading only the folder names.
    pub fn open(root: &Path, default_model: &str) -> io::Result<SessionStore> {
        fs::create_dir_all(root)?;
        let mut sessions = HashMap::new();
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name();
            match name.to_str() {
                Some(id) if crate::protocol::valid_session_id(id) && entry.path().is_dir() => {
                    sessions.insert(id.to_string(), Slot::OnDisk);
                }
                _ => log::debug!("ignoring {} in the sessions folder", entry.path().display()),
            }
        }
        Ok(SessionStore {
            root: root.to_path_buf(),
            default_model: default_model.to_string(),
            sessions: RwLock::new(sessions),
        })
    }

    pub fn count(&self) -> usize {
        self.sessions.read().len()
    }

    /// The session named `id`, reading its meta the first time.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        match self.sessions.read().get(id)? {
            Slot::Loaded(s) => return Some(s.clone()),
            Slot::OnDisk => {}
        }
        // Read the meta without the map lock; if two threads race here the
        // first insert wins and the other's copy is dropped.
        let dir = self.root.join(id);
        let meta = read_meta(&dir, &self.default_model);
        let session = Arc::new(Session {
            id: id.to_string(),
            dir,
            state: Mutex::new(State::new(meta)),
        });
        let mut map = self.sessions.write();
        match map.get(id) {
            Some(Slot::Loaded(s)) => Some(s.clone()),
            Some(Slot::OnDisk) => {
                map.insert(id.to_string(), Slot::Loaded(session.clone()));
                Some(session)
            }
            None => None, // deleted meanwhile
        }
    }

    /// Creates the session, or returns the existing one (`false`).
    pub fn create(
        &self,
        id: &str,
        model: &str,
        system: Option<String>,
    ) -> io::Result<(Arc<Session>, bool)> {
        if let Some(s) = self.get(id) {
            return Ok((s, false));
        }
        let dir = self.root.join(id);
        fs::create_dir_all(&dir)?;
        let meta = Meta::new(model, system);
        write_meta(&dir, &meta, true)?;
        let session = Arc::new(Session {
            id: id.to_string(),
            dir,
            state: Mutex::new(State::new(meta)),
        });
        let mut map = self.sessions.write();
        if let Some(Slot::Loaded(existing)) = map.get(id) {
            return Ok((existing.clone(), false));
        }
        map.insert(id.to_string(), Slot::Loaded(session.clone()));
        Ok((session, true))
    }

    /// Removes the session from the map and its folder from disk. The
    /// caller has cancelled its turns.
    pub fn remove(&self, session: &Session) -> io::Result<()> {
        self.sessions.write().remove(&session.id);
        fs::remove_dir_all(&session.dir)
    }

    /// Every stored session, sorted by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut ids: Vec<String> = self.sessions.read().keys().cloned().collect();
        ids.sort();
        ids.iter()
            .filter_map(|id| self.get(id))
            .map(|s| s.info())
            .collect()
    }

    /// The heartbeats of every stored session, read from their meta files
    /// without keeping the sessions loaded (the proactive thread calls this
    /// once, after the socket is up).
    pub fn heartbeats(&self) -> Vec<(String, HeartbeatSettings)> {
        let ids: Vec<(String, Option<Arc<Session>>)> = self
            .sessions
            .read()
            .iter()
            .map(|(id, slot)| match slot {
                Slot::Loaded(s) => (id.clone(), Some(s.clone())),
                Slot::OnDisk => (id.clone(), None),
            })
            .collect();
        ids.into_iter()
            .filter_map(|(id, loaded)| {
                let hb = match loaded {
                    Some(s) => s.lock().meta.heartbeat.clone(),
                    None => read_meta(&self.root.join(&id), &self.default_model).heartbeat,
                };
                hb.map(|h| (id, h))
            })
            .collect()
    }

    /// Ids of every stored session.
    pub fn ids(&self) -> Vec<String> {
        self.sessions.read().keys().cloned().collect()
    }

    /// The sessions read so far (those that can have turns running).
    pub fn loaded(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .values()
            .filter_map(|s| match s {
                Slot::Loaded(s) => Some(s.clone()),
                Slot::OnDisk => None,
            })
            .collect()
    }
}

impl State {
    fn new(meta: Meta) -> State {
        State {
            meta,
            history: None,
            queue: VecDeque::new(),
            busy: false,
            cancel: None,
            deleted: false,
            heartbeat_queued: false,
            memory: None,
        }
    }
}

/// Reads `meta.json`; a missing or broken one is rebuilt from defaults with
/// a warning, so the history next to it is never lost.
fn read_meta(dir: &Path, default_model: &str) -> Meta {
    let path = dir.join("meta.json");
    match fs::read(&path).map(|b| serde_json::from_slice::<Meta>(&b)) {
        Ok(Ok(meta)) => return meta,
        Ok(Err(e)) => log::warn!("{}: {e}; using defaults", path.display()),
        Err(e) => log::warn!("{}: {e}; using defaults", path.display()),
    }
    Meta::new(default_model, None)
}

/// Writes `meta.json`. `durable: false` (no fsync) is for the rewrite after
/// every message, which happens before the model is called: what changes
/// there (the count and update time) is rebuilt from `history.jsonl` on
/// load, and the rename keeps the file whole.
fn write_meta(dir: &Path, meta: &Meta, durable: bool) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta)?;
    write_replace(&dir.join("meta.json"), &bytes, durable)
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replace(path, bytes, true)
}

/// Writes `tmp` then renames it over `path`; `durable` adds an fsync
/// before the rename (milliseconds on an SD card).
fn write_replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Reads `history.jsonl`: bad lines are skipped with a warning naming the
/// line; a torn last line is moved to `history.torn`.
fn load_history(dir: &Path) -> Vec<Message> {
    let path = dir.join("history.jsonl");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            log::warn!("{}: {e}", path.display());
            return Vec::new();
        }
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        let torn = &bytes[complete..];
        log::warn!(
            "{}: the last line is torn ({} bytes, no line end; a crash mid-write?): skipped and kept in history.torn",
            path.display(),
            torn.len()
        );
        let saved = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("history.torn"))
            .and_then(|mut f| f.write_all(torn).and_then(|_| f.write_all(b"\n")));
        let cut = saved.and_then(|_| {
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(complete as u64)
        });
        if let Err(e) = cut {
            log::warn!("{}: cannot cut the torn line: {e}", path.display());
        }
    }
    let mut out = Vec::new();
    for (n, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Message>(line) {
            Ok(m) => out.push(m),
            Err(e) => log::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ruster-session-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn torn_last_line_is_cut_and_kept_aside() {
        let dir = temp_dir("torn");
        let good = serde_json::to_string(&Message::new(MsgRole::User, "hi")).unwrap();
        fs::write(
            dir.join("history.jsonl"),
            format!("{good}\nnot json\n{good}\n{{\"role\":\"us"),
        )
        .unwrap();
        let msgs = load_history(&dir);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            fs::read_to_string(dir.join("history.torn")).unwrap(),
            "{\"role\":\"us\n"
        );
        assert!(fs::read_to_string(dir.join("history.jsonl"))
            .unwrap()
            .ends_with('\n'));
    }

    #[test]
    fn store_creates_lists_and_reopens_lazily() {
        let root = temp_dir("store");
        let store = SessionStore::open(&root, "ollama/x").unwrap();
        let (s, new) = store
            .create("a", "ollama/m", Some("be brief".into()))
            .unwrap();
        assert!(new);
        {
            let mut st = s.lock();
            s.append(&mut st, Message::new(MsgRole::User, "one"))
                .unwrap();
        }
        assert!(!store.create("a", "ollama/m", None).unwrap().1);
        let store = SessionStore::open(&root, "ollama/x").unwrap();
        assert_eq!(store.count(), 1);
        let list = store.list();
        assert_eq!((list[0].session_id.as_str(), list[0].messages), ("a", 1));
        let s = store.get("a").unwrap();
        let mut st = s.lock();
        assert_eq!(st.meta.system.as_deref(), Some("be brief"));
        assert_eq!(s.history(&mut st)[0].content, "one");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let line = r#"{"role":"assistant","content":"x","ts":"t","tool_calls":[1]}"#;
        let m: Message = serde_json::from_str(line).unwrap();
        assert!(serde_json::to_string(&m).unwrap().contains("tool_calls"));
    }
}
