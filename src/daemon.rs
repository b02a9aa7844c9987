//! The daemon's shared state and the handling of each request.
//!
//! One [`Daemon`] is shared (`Arc`) by every connection and turn thread.
//! Requests are handled on their connection's thread; answers go through the
//! hub, so they keep their order with the turn events of that connection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::{HashMap, VecDeque};

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::embed::Embedder;
use crate::hub::{ConnId, Hub};
use crate::llm::Llm;
use crate::memory::MemoryFile;
use crate::paths::Paths;
use crate::proactive::{Scheduler, Wake};
use crate::protocol::{Delivery, Due, ErrorCode, Event, ReminderInfo, Request, RequestId};
use crate::reminders::{Reminder, Reminders, MAX_REMINDERS, MAX_REMINDER_TEXT};
use crate::session::{
    HeartbeatSettings, Message, MsgRole, QueuedTurn, Session, SessionStore, TurnKind,
};
use crate::skills::Catalog;
use crate::time::{rfc3339, unix_now};

/// Sends waiting behind a session's running turn before more are refused:
/// a client cannot grow a queue without bound.
pub const MAX_QUEUED_TURNS: usize = 64;

/// How long a cancelled turn gets to end before its session is deleted or
/// the daemon exits.
pub const STOP_TURNS_LIMIT: Duration = Duration::from_secs(5);

/// The connection a request came from.
pub struct Client {
    pub id: ConnId,
    /// Cloned into every turn this client starts and dropped when the
    /// turn's terminal event is out: the connection's reader waits for all
    /// of them after its client half-closes (`echo ... | nc -U`), so the
    /// replies still reach it.
    pub turns: Sender<()>,
}

pub struct Daemon {
    /// The configuration; `reload` swaps in a new one with the reloadable
    /// keys changed (see [`Daemon::reload_config`]).
    config: RwLock<Arc<Config>>,
    pub config_path: PathBuf,
    pub paths: Paths,
    pub hub: Arc<Hub>,
    pub store: SessionStore,
    pub llm: Llm,
    started: Instant,
    shutting_down: AtomicBool,
    /// Turn worker threads alive, so shutdown can wait for them.
    pub workers: AtomicUsize,
    pub reminders: Mutex<Reminders>,
    /// Models found to reject tools (asked again without them).
    toolless: Mutex<std::collections::HashSet<String>>,
    /// Memories shared by every session. Lock order: a session's lock
    /// first, then this one.
    pub global_memory: Mutex<MemoryFile>,
    /// The skills found; replaced whole by a rescan.
    skills: RwLock<Arc<Catalog>>,
    /// Semantic similarity for skills and memories, when `embedding_model`
    /// is set (see [`crate::embed`]).
    pub embedder: Option<Embedder>,
    pub scheduler: Scheduler,
    /// Recent `notify` times per (session, source), for the rate limit.
    notify_times: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
    /// Connections whose threads are alive (counted from accept to the
    /// end of their reader thread), for `max_connections` and shutdown.
    pub conns: AtomicUsize,
}

impl Daemon {
    pub fn new(config: Config, config_path: PathBuf, paths: Paths) -> std::io::Result<Daemon> {
        let store = SessionStore::open(&paths.sessions, &config.default_model)?;
        std::fs::create_dir_all(&paths.state)?;
        let reminders = Reminders::load(&paths.state);
        let skills = Catalog::discover(&paths.skills);
        let global_memory = MemoryFile::load(&paths.state.join("memory.jsonl"));
        let llm = Llm::new(&config);
        let embedder = Embedder::new(&config, llm.clone(), &paths.state);
        if let Some(e) = &embedder {
            // Background: only skills missing from the cache cost a call.
            e.refresh_skills(&skills);
        }
        Ok(Daemon {
            hub: Arc::new(Hub::new(config.max_queued_events)),
            llm,
            embedder,
            store,
            config: RwLock::new(Arc::new(config)),
            config_path,
            paths,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            workers: AtomicUsize::new(0),
            reminders: Mutex::new(reminders),
            skills: RwLock::new(Arc::new(skills)),
            global_memory: Mutex::new(global_memory),
            toolless: Mutex::new(std::collections::HashSet::new()),
            scheduler: Scheduler::new(),
            notify_times: Mutex::new(HashMap::new()),
            conns: AtomicUsize::new(0),
        })
    }

    /// The configuration in force (cheap: a shared pointer).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Re-reads the config file and applies the keys that can change
    /// while running; the others (socket, data folder, limits, providers)
    /// need a restart and are logged if they differ. `Err` is for the user.
    pub fn reload_config(&self) -> Result<(), String> {
        let (fresh, warnings) = std::fs::read_to_string(&self.config_path)
            .map_err(|e| format!("cannot read {}: {e}", self.config_path.display()))
            .and_then(|text| {
                crate::config::parse(&text).map_err(|e| {
                    format!(
                        "config {} is invalid, nothing was reloaded: {e:?}",
                        self.config_path.display()
                    )
                })
            })?;
        for w in warnings {
            log::warn!("{}: {w}", self.config_path.display());
        }
        let mut next = (*self.config()).clone();
        let restart = next.apply_reloadable(fresh);
        if !restart.is_empty() {
            log::warn!(
                "reload: {} changed; restart the daemon to apply",
                restart.join(", ")
            );
        }
        *self.config.write() = Arc::new(next);
        Ok(())
    }

    pub fn live_connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Answers one request from connection `conn`.
    pub fn handle(self: &Arc<Self>, client: &Client, id: Option<RequestId>, req: Request) {
        let conn = client.id;
        let id = id.as_ref();
        let answer = |ev: Event| self.hub.send(conn, &ev, id);
        match req {
            Request::Ping => answer(Event::Pong),
            Request::Status => answer(Event::Status {
                version: env!("CARGO_PKG_VERSION"),
                uptime_secs: self.started.elapsed().as_secs(),
                sessions: self.store.count(),
                connections: self.hub.connections(),
                skills: self.skills.read().len(),
                default_model: self.config().default_model.clone(),
            }),
            Request::Config => answer(Event::Config {
                path: self.config_path.display().to_string(),
                config: self.config().redacted(),
            }),
            Request::List => answer(Event::Sessions {
                sessions: self.store.list(),
            }),
            Request::Create {
                session_id,
                model,
                system,
            } => self.create(conn, id, &session_id, model, system),
            Request::Send {
                session_id,
                message,
                model,
            } => {
                if let Err(ev) = self.send(client, id, &session_id, message, model) {
                    answer(ev);
                }
            }
            Request::Cancel { session_id } => match self.store.get(&session_id) {
                None => answer(no_session(&session_id)),
                Some(s) => {
                    let running = s
                        .lock()
                        .cancel
                        .as_ref()
                        .is_some_and(|c| c.try_send(()).is_ok());
                    answer(Event::Cancelled {
                        session_id,
                        running,
                    })
                }
            },
            Request::History {
                session_id,
                limit,
                offset,
            } => match self.store.get(&session_id) {
                None => answer(no_session(&session_id)),
                Some(s) => {
                    let mut st = s.lock();
                    let all = s.history(&mut st);
                    let total = all.len();
                    let end = total.saturating_sub(offset);
                    let start = end.saturating_sub(limit);
                    let messages = all[start..end]
                        .iter()
                        .filter_map(|m| serde_json::to_value(m).ok())
                        .collect();
                    drop(st);
                    answer(Event::History {
                        session_id,
                        total,
                        offset,
                        messages,
                    })
                }
            },
            Request::Delete { session_id } => match self.store.get(&session_id) {
                None => answer(no_session(&session_id)),
                Some(s) => {
                    {
                        let mut st = s.lock();
                        st.deleted = true;
                        if let Some(c) = &st.cancel {
                            let _ = c.try_send(());
                        }
                    }
                    // The cancelled turn is still writing its last lines:
                    // remove the folder once its worker is gone.
                    let deadline = Instant::now() + STOP_TURNS_LIMIT;
                    while s.lock().busy && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if let Err(e) = self.reminders.lock().remove_session(&session_id) {
                        log::warn!("session {session_id}: cannot drop its reminders: {e}");
                    }
                    match self.store.remove(&s) {
                        Ok(()) => {
                            log::info!("session {session_id}: deleted");
                            answer(Event::Deleted {
                                session_id: session_id.clone(),
                            });
                            self.hub.forget_session(&session_id);
                        }
                        Err(e) => {
                            log::error!("session {session_id}: cannot remove its folder: {e}");
                            answer(Event::error(
                                ErrorCode::Internal,
                                format!("could not remove the session's folder: {e}"),
                                Some(&session_id),
                            ))
                        }
                    }
                }
            },
            Request::Subscribe { session_id } => match self.store.get(&session_id) {
                Some(s) => {
                    self.hub.subscribe(conn, &session_id);
                    answer(Event::Subscribed { session_id });
                    self.deliver_undelivered(conn, &s);
                }
                None => answer(no_session(&session_id)),
            },
            Request::Unsubscribe { session_id } => {
                if self.store.get(&session_id).is_some() {
                    self.hub.unsubscribe(conn, &session_id);
                    answer(Event::Unsubscribed { session_id })
                } else {
                    answer(no_session(&session_id))
                }
            }
            Request::Remind {
                session_id,
                message,
                due,
                repeat_secs,
            } => answer(match self.store.get(&session_id) {
                None => no_session(&session_id),
                Some(_) => self.remind(&session_id, &message, due, repeat_secs),
            }),
            Request::Reminders { session_id } => answer(Event::Reminders {
                reminders: self
                    .reminders
                    .lock()
                    .list(session_id.as_deref())
                    .into_iter()
                    .map(reminder_info)
                    .collect(),
            }),
            Request::Unremind { reminder_id } => {
                let removed = self.reminders.lock().remove(&reminder_id);
                answer(match removed {
                    Ok(Some(_)) => Event::Unscheduled { reminder_id },
                    Ok(None) => Event::error(
                        ErrorCode::NotFound,
                        format!(
                            "no reminder '{}'; list them with {{\"action\":\"reminders\"}}",
                            crate::protocol::truncate(&reminder_id, 64)
                        ),
                        None,
                    ),
                    Err(e) => internal("could not save reminders", e),
                })
            }
            Request::Heartbeat {
                session_id,
                every_secs,
                prompt,
            } => answer(match self.store.get(&session_id) {
                None => no_session(&session_id),
                Some(s) => self.set_heartbeat(&s, every_secs, prompt),
            }),
            Request::Remember { session_id, text } => answer(self.remember(session_id, &text)),
            Request::Memories { session_id, query } => {
                answer(self.memories(session_id, query.as_deref()))
            }
            Request::Forget { memory_id } => answer(self.forget(&memory_id)),
            Request::Skills => {
                let catalog = self.catalog();
                answer(Event::Skills {
                    skills: catalog
                        .skills()
                        .iter()
                        .filter_map(|s| serde_json::to_value(s).ok())
                        .collect(),
                    skipped: catalog
                        .skipped()
                        .iter()
                        .filter_map(|s| serde_json::to_value(s).ok())
                        .collect(),
                })
            }
            Request::Reload => {
                if let Err(e) = self.reload_config() {
                    return answer(Event::error(ErrorCode::InvalidRequest, e, None));
                }
                let catalog = Arc::new(Catalog::discover(&self.paths.skills));
                let n = catalog.len();
                *self.skills.write() = catalog;
                log::info!("reloaded: {n} skills");
                answer(Event::Reloaded { skills: n })
            }
            Request::PinSkill { session_id, skill } => answer(self.pin(&session_id, skill, true)),
            Request::UnpinSkill { session_id, skill } => {
                answer(self.pin(&session_id, skill, false))
            }
            Request::Notify {
                session_id,
                source,
                message,
                delivery,
            } => answer(match self.store.get(&session_id) {
                None => no_session(&session_id),
                Some(s) => self.notify(&s, &source, message, delivery),
            }),
        }
    }

    /// Whether `model` is offered tools.
    pub fn tools_for(&self, model: &str) -> bool {
        self.config().tools_enabled
            && !self
                .config()
                .models_without_tools
                .iter()
                .any(|m| m == model)
            && !self.toolless.lock().contains(model)
    }

    pub fn mark_toolless(&self, model: &str) {
        self.toolless.lock().insert(model.to_string());
    }

    /// Stores a memory in the session (or globally without one).
    pub fn remember(&self, session_id: Option<String>, text: &str) -> Event {
        let stored = match &session_id {
            None => self.global_memory.lock().add(text),
            Some(sid) => match self.store.get(sid) {
                None => return no_session(sid),
                Some(s) => {
                    let mut st = s.lock();
                    s.memory(&mut st).add(text)
                }
            },
        };
        match stored {
            Ok(m) => {
                log::info!(
                    "remembered {} ({})",
                    m.memory_id,
                    session_id.as_deref().unwrap_or("global")
                );
                Event::Remembered {
                    session_id,
                    memory_id: m.memory_id,
                }
            }
            Err(e) => Event::error(ErrorCode::InvalidRequest, e, session_id.as_deref()),
        }
    }

    /// The memories of a session and the global ones (or only the global
    /// ones), newest first, or scored against `query`, best first.
    pub fn memories(&self, session_id: Option<String>, query: Option<&str>) -> Event {
        let session = match &session_id {
            None => None,
            Some(sid) => match self.store.get(sid) {
                None => return no_session(sid),
                Some(s) => Some(s),
            },
        };
        let mut st = session.as_ref().map(|s| s.lock());
        let own: Vec<crate::memory::Memory> = match (&session, st.as_mut()) {
            (Some(s), Some(st)) => s.memory(st).items().to_vec(),
            _ => Vec::new(),
        };
        let global = self.global_memory.lock();
        let info = |m: &crate::memory::Memory, is_global: bool, score: Option<f32>| {
            crate::protocol::MemoryInfo {
                memory_id: m.memory_id.clone(),
                text: m.text.clone(),
                scope: if is_global { "global" } else { "session" },
                created_at: m.created_at.clone(),
                score,
            }
        };
        let memories = match query.filter(|q| !q.trim().is_empty()) {
            Some(q) => crate::memory::search(&[(&own[..], false), (global.items(), true)], q, 0.0)
                .into_iter()
                .map(|s| info(s.memory, s.global, Some((s.score * 100.0).round() / 100.0)))
                .collect(),
            None => {
                let mut all: Vec<_> = own
                    .iter()
                    .map(|m| info(m, false, None))
                    .chain(global.items().iter().map(|m| info(m, true, None)))
                    .collect();
                all.sort_by(|a, b| {
                    b.created_at
                        .cmp(&a.created_at)
                        .then(b.memory_id.cmp(&a.memory_id))
                });
                all
            }
        };
        Event::Memories {
            session_id,
            memories,
        }
    }

    /// Forgets a memory wherever it is: ids are unique across the daemon.
    pub fn forget(&self, id: &str) -> Event {
        let not_found = || {
            Event::error(
                ErrorCode::NotFound,
                format!(
                    "no memory '{}'; list them with {{\"action\":\"memories\"}}",
                    crate::protocol::truncate(id, 64)
                ),
                None,
            )
        };
        if !id.starts_with('m') || id.len() > 32 {
            return not_found();
        }
        let done = |r: std::io::Result<bool>| match r {
            Ok(true) => Some(Event::Forgotten {
                memory_id: id.to_string(),
            }),
            Ok(false) => None,
            Err(e) => Some(internal("could not update the memory file", e)),
        };
        if let Some(ev) = done(self.global_memory.lock().forget(id)) {
            return ev;
        }
        // A session's memory file mentions the id only if it holds it: a
        // cheap text search spares reading every file as JSON.
        for sid in self.store.ids() {
            let path = self.paths.session_dir(&sid).join("memory.jsonl");
            let holds =
                std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&format!("\"{id}\"")));
            if !holds {
                continue;
            }
            if let Some(s) = self.store.get(&sid) {
                let mut st = s.lock();
                if let Some(ev) = done(s.memory(&mut st).forget(id)) {
                    return ev;
                }
            }
        }
        not_found()
    }

    /// The skills, rescanned first if a skill file or folder changed (a
    /// cheap mtime check), so edits apply on the next turn.
    pub fn catalog(&self) -> Arc<Catalog> {
        let current = self.skills.read().clone();
        if !current.changed() {
            return current;
        }
        let fresh = Arc::new(current.rescan());
        log::info!("skills changed on disk: {} skills now", fresh.len());
        *self.skills.write() = fresh.clone();
        fresh
    }

    fn pin(&self, sid: &str, skill: String, pin: bool) -> Event {
        let Some(session) = self.store.get(sid) else {
            return no_session(sid);
        };
        if pin && self.catalog().get(&skill).is_none() {
            return Event::error(
                ErrorCode::NotFound,
                format!(
                    "no skill named '{}'; list them with {{\"action\":\"skills\"}}",
                    crate::protocol::truncate(&skill, 64)
                ),
                Some(sid),
            );
        }
        let mut st = session.lock();
        let pins = &mut st.meta.pinned_skills;
        let had = pins.contains(&skill);
        if !pin && !had {
            return Event::error(
                ErrorCode::NotFound,
                format!(
                    "skill '{}' is not pinned to '{sid}'",
                    crate::protocol::truncate(&skill, 64)
                ),
                Some(sid),
            );
        }
        if pin && !had {
            pins.push(skill.clone());
        } else if !pin {
            pins.retain(|p| p != &skill);
        }
        if let Err(e) = session.save_meta(&st) {
            return internal("could not save the session's meta.json", e);
        }
        let session_id = sid.to_string();
        if pin {
            Event::SkillPinned { session_id, skill }
        } else {
            Event::SkillUnpinned { session_id, skill }
        }
    }

    pub fn remind(&self, sid: &str, message: &str, due: Due, repeat_secs: Option<u64>) -> Event {
        let now = unix_now();
        let due = match due {
            Due::In(secs) => now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX / 2)),
            Due::At(at) if at <= now => {
                return Event::error(
                    ErrorCode::InvalidRequest,
                    format!(
                        "'at' ({}) is in the past; it is now {}",
                        rfc3339(at),
                        rfc3339(now)
                    ),
                    Some(sid),
                )
            }
            Due::At(at) => at,
        };
        if message.trim().is_empty() || message.len() > MAX_REMINDER_TEXT {
            return Event::error(
                ErrorCode::InvalidRequest,
                format!("field 'message' must hold 1 to {MAX_REMINDER_TEXT} bytes"),
                Some(sid),
            );
        }
        let mut reminders = self.reminders.lock();
        if reminders.len() >= MAX_REMINDERS {
            return Event::error(
                ErrorCode::InvalidRequest,
                format!("{MAX_REMINDERS} reminders are pending already; remove some with unremind"),
                Some(sid),
            );
        }
        match reminders.add(sid, message, due, repeat_secs) {
            Ok(r) => {
                drop(reminders);
                log::info!(
                    "session {sid}: reminder {} due {}",
                    r.reminder_id,
                    rfc3339(r.due)
                );
                self.scheduler.wake(Wake::Reminder {
                    id: r.reminder_id.clone(),
                    due: r.due,
                });
                Event::Scheduled {
                    session_id: sid.to_string(),
                    reminder_id: r.reminder_id,
                    due: rfc3339(r.due),
                    repeat_secs: r.repeat_secs,
                }
            }
            Err(e) => internal("could not save reminders", e),
        }
    }

    fn set_heartbeat(&self, session: &Session, every_secs: u64, prompt: Option<String>) -> Event {
        let mut st = session.lock();
        st.meta.heartbeat = (every_secs > 0).then(|| HeartbeatSettings {
            every_secs,
            prompt,
            day: String::new(),
            tokens_today: 0,
        });
        if let Err(e) = session.save_meta(&st) {
            return internal("could not save the session's meta.json", e);
        }
        drop(st);
        session.activity(&format!("heartbeat every {every_secs}s"));
        if every_secs > 0 {
            self.scheduler.wake(Wake::Heartbeat {
                session: session.id.clone(),
                due: unix_now().saturating_add(every_secs as i64),
            });
        }
        Event::HeartbeatSet {
            session_id: session.id.clone(),
            every_secs,
        }
    }

    fn notify(
        self: &Arc<Self>,
        session: &Arc<Session>,
        source: &str,
        message: String,
        delivery: Delivery,
    ) -> Event {
        let sid = session.id.as_str();
        if message.trim().is_empty() || message.len() > MAX_REMINDER_TEXT {
            return Event::error(
                ErrorCode::InvalidRequest,
                format!("field 'message' must hold 1 to {MAX_REMINDER_TEXT} bytes"),
                Some(sid),
            );
        }
        if !self.notify_allowed(sid, source) {
            return Event::error(
                ErrorCode::RateLimited,
                format!(
                    "source '{}' sent more than {} events to '{sid}' in the last minute (notify_rate_per_min); this one was not stored",
                    crate::protocol::truncate(source, 64),
                    self.config().notify_rate_per_min
                ),
                Some(sid),
            );
        }
        let mut msg = Message::new(MsgRole::Event, message);
        msg.extra.insert("source".into(), source.into());
        msg.extra.insert(
            "delivery".into(),
            serde_json::to_value(delivery).unwrap_or_default(),
        );
        let mut st = session.lock();
        let index = match session.append(&mut st, msg) {
            Ok(i) => i,
            Err(e) => return internal("could not store the event", e),
        };
        match delivery {
            Delivery::Silent => {}
            Delivery::NextTurn => {
                st.meta.next_turn_events.push(index);
                if let Err(e) = session.save_meta(&st) {
                    return internal("could not save the session's meta.json", e);
                }
            }
            Delivery::Immediate => match self.llm.resolve(&st.meta.model) {
                Ok(target) => st.queue_silent(target, TurnKind::Event { index }),
                Err(e) => return Event::error(ErrorCode::InvalidModel, e, Some(sid)),
            },
        }
        drop(st);
        session.activity(&format!("event from {source} ({delivery:?})"));
        self.start_worker(session);
        Event::Notified {
            session_id: sid.to_string(),
        }
    }

    /// Counts a `notify` against its source's per-minute allowance.
    fn notify_allowed(&self, sid: &str, source: &str) -> bool {
        let now = Instant::now();
        let window = Duration::from_secs(60);
        let mut times = self.notify_times.lock();
        // Forget sources that have been quiet for a minute, so the table
        // cannot grow without bound.
        times.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        let q = times
            .entry((sid.to_string(), source.to_string()))
            .or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= self.config().notify_rate_per_min as usize {
            return false;
        }
        q.push_back(now);
        true
    }

    fn create(
        &self,
        conn: ConnId,
        id: Option<&RequestId>,
        sid: &str,
        model: Option<String>,
        system: Option<String>,
    ) {
        let answer = |ev: Event| self.hub.send(conn, &ev, id);
        if let Some(m) = &model {
            if let Err(e) = self.llm.resolve(m) {
                return answer(Event::error(ErrorCode::InvalidModel, e, Some(sid)));
            }
        }
        let initial_model = model
            .clone()
            .unwrap_or_else(|| self.config().default_model.clone());
        let (session, new) = match self.store.create(sid, &initial_model, system.clone()) {
            Ok(r) => r,
            Err(e) => {
                log::error!("session {sid}: cannot create it: {e}");
                return answer(Event::error(
                    ErrorCode::Internal,
                    format!("could not create the session on disk: {e}"),
                    Some(sid),
                ));
            }
        };
        let model = {
            let mut st = session.lock();
            if !new && (model.is_some() || system.is_some()) {
                if let Some(m) = model {
                    st.meta.model = m;
                }
                if system.is_some() {
                    st.meta.system = system;
                }
                if let Err(e) = session.save_meta(&st) {
                    log::error!("session {sid}: cannot save meta.json: {e}");
                }
            }
            st.meta.model.clone()
        };
        if new {
            session.activity(&format!("created (model {model})"));
            log::info!("session {sid}: created (model {model})");
        }
        self.hub.subscribe(conn, sid);
        let created = Event::Created {
            session_id: sid.to_string(),
            model,
            new,
        };
        // The answer first, then what was waiting for a client.
        answer(created);
        self.deliver_undelivered(conn, &session);
    }

    /// Accepts a `send`: stores the user message and queues the turn.
    /// `Err` is the error to answer with (nothing was stored).
    fn send(
        self: &Arc<Self>,
        client: &Client,
        id: Option<&RequestId>,
        sid: &str,
        message: String,
        model: Option<String>,
    ) -> Result<(), Event> {
        let session = self.store.get(sid).ok_or_else(|| no_session(sid))?;
        if self.is_shutting_down() {
            return Err(Event::error(
                ErrorCode::ShuttingDown,
                "the daemon is shutting down; send again once it is back",
                Some(sid),
            ));
        }
        let mut st = session.lock();
        if st.queue.len() >= MAX_QUEUED_TURNS {
            return Err(Event::error(
                ErrorCode::RateLimited,
                format!("{MAX_QUEUED_TURNS} messages already wait in session '{sid}'; wait for their replies (or cancel) before sending more"),
                Some(sid),
            ));
        }
        let model = model.unwrap_or_else(|| st.meta.model.clone());
        let target = self
            .llm
            .resolve(&model)
            .map_err(|e| Event::error(ErrorCode::InvalidModel, e, Some(sid)))?;
        self.hub.subscribe(client.id, sid);
        let preview: String = message.chars().take(80).collect();
        let index = session
            .append(&mut st, Message::new(MsgRole::User, message))
            .map_err(|e| {
                log::error!("session {sid}: cannot store the message: {e}");
                Event::error(
                    ErrorCode::Internal,
                    format!("could not store your message: {e}"),
                    Some(sid),
                )
            })?;
        session.activity(&format!("user: {preview}"));
        st.queue.push_back(QueuedTurn {
            id: id.cloned(),
            target,
            model,
            kind: TurnKind::User { index },
            origin: Some(client.turns.clone()),
        });
        drop(st);
        self.start_worker(&session);
        self.deliver_undelivered(client.id, &session);
        Ok(())
    }

    /// Starts the session's worker unless one is running.
    pub fn start_worker(self: &Arc<Self>, session: &Arc<Session>) {
        let mut st = session.lock();
        if !st.busy && !st.queue.is_empty() {
            st.busy = true;
            drop(st);
            crate::agent::spawn_worker(self.clone(), session.clone());
        }
    }

    /// Sends a newly subscribed client the proactive messages of the
    /// session that no client has received yet (each exactly once).
    fn deliver_undelivered(&self, conn: ConnId, session: &Session) {
        let mut st = session.lock();
        if st.meta.undelivered.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut st.meta.undelivered);
        let history = session.history(&mut st);
        for m in pending.iter().filter_map(|&i| history.get(i)) {
            let kind = m
                .extra
                .get("kind")
                .and_then(|k| serde_json::from_value(k.clone()).ok())
                .unwrap_or(crate::protocol::ProactiveKind::Reminder);
            self.hub.send(
                conn,
                &Event::Proactive {
                    session_id: session.id.clone(),
                    message: m.content.clone(),
                    kind,
                    ts: m.ts.clone(),
                },
                None,
            );
        }
        if let Err(e) = session.save_meta(&st) {
            log::warn!("session {}: cannot save meta.json: {e}", session.id);
        }
    }

    /// Stops every turn: running ones end as cancelled (their text kept),
    /// queued ones with `shutting_down`. Waits up to `limit` for them.
    pub fn stop_turns(&self, limit: Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for s in self.store.loaded() {
            if let Some(c) = &s.lock().cancel {
                let _ = c.try_send(());
            }
        }
        let deadline = Instant::now() + limit;
        while self.workers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn reminder_info(r: Reminder) -> ReminderInfo {
    ReminderInfo {
        reminder_id: r.reminder_id,
        session_id: r.session_id,
        message: r.message,
        due: rfc3339(r.due),
        repeat_secs: r.repeat_secs,
    }
}

/// An `internal` error for a failed write; the details go to the log.
fn internal(what: &str, e: std::io::Error) -> Event {
    log::error!("{what}: {e}");
    Event::error(ErrorCode::Internal, format!("{what}: {e}"), None)
}

/// `session_not_found`, with how to create the session.
fn no_session(sid: &str) -> Event {
    Event::error(
        ErrorCode::SessionNotFound,
        format!("no session named '{sid}'; create it first with {{\"action\":\"create\",\"session_id\":\"{sid}\"}}"),
        Some(sid),
    )
}
