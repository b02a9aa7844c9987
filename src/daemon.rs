//! The daemon's shared state and the handling of each request.
//!
//! One [`Daemon`] is shared (`Arc`) by every connection and turn thread.
//! Requests are handled on their connection's thread; answers go through the
//! hub, so they keep their order with the turn events of that connection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::config::Config;
use crate::hub::{ConnId, Hub};
use crate::llm::Llm;
use crate::paths::Paths;
use crate::protocol::{ErrorCode, Event, Request, RequestId};
use crate::session::{Message, MsgRole, QueuedTurn, SessionStore};

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
    pub config: Config,
    pub config_path: PathBuf,
    pub paths: Paths,
    pub hub: Hub,
    pub store: SessionStore,
    pub llm: Llm,
    started: Instant,
    shutting_down: AtomicBool,
    /// Turn worker threads alive, so shutdown can wait for them.
    pub workers: AtomicUsize,
    /// Connections whose threads are alive (counted from accept to the
    /// end of their reader thread), for `max_connections` and shutdown.
    pub conns: AtomicUsize,
}

impl Daemon {
    pub fn new(config: Config, config_path: PathBuf, paths: Paths) -> std::io::Result<Daemon> {
        let store = SessionStore::open(&paths.sessions, &config.default_model)?;
        Ok(Daemon {
            hub: Hub::new(config.max_queued_events),
            llm: Llm::new(&config),
            store,
            config,
            config_path,
            paths,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            workers: AtomicUsize::new(0),
            conns: AtomicUsize::new(0),
        })
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
        let not_found = |sid: &str| {
            Event::error(
                ErrorCode::SessionNotFound,
                format!("no session named '{sid}'; create it first with {{\"action\":\"create\",\"session_id\":\"{sid}\"}}"),
                Some(sid),
            )
        };
        match req {
            Request::Ping => answer(Event::Pong),
            Request::Status => answer(Event::Status {
                version: env!("CARGO_PKG_VERSION"),
                uptime_secs: self.started.elapsed().as_secs(),
                sessions: self.store.count(),
                connections: self.hub.connections(),
                skills: 0,
                default_model: self.config.default_model.clone(),
            }),
            Request::Config => answer(Event::Config {
                path: self.config_path.display().to_string(),
                config: self.config.redacted(),
            }),
            Request::List => answer(Event::Sessions {
                sessions: self.store.list(),
            }),
            Request::Create {
                session_id,
                model,
                system,
            } => answer(self.create(conn, &session_id, model, system)),
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
                None => answer(not_found(&session_id)),
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
                None => answer(not_found(&session_id)),
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
                None => answer(not_found(&session_id)),
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
            Request::Subscribe { session_id } => {
                if self.store.get(&session_id).is_some() {
                    self.hub.subscribe(conn, &session_id);
                    answer(Event::Subscribed { session_id })
                } else {
                    answer(not_found(&session_id))
                }
            }
            Request::Unsubscribe { session_id } => {
                if self.store.get(&session_id).is_some() {
                    self.hub.unsubscribe(conn, &session_id);
                    answer(Event::Unsubscribed { session_id })
                } else {
                    answer(not_found(&session_id))
                }
            }
        }
    }

    fn create(
        &self,
        conn: ConnId,
        sid: &str,
        model: Option<String>,
        system: Option<String>,
    ) -> Event {
        if let Some(m) = &model {
            if let Err(e) = self.llm.resolve(m) {
                return Event::error(ErrorCode::InvalidModel, e, Some(sid));
            }
        }
        let initial_model = model
            .clone()
            .unwrap_or_else(|| self.config.default_model.clone());
        let (session, new) = match self.store.create(sid, &initial_model, system.clone()) {
            Ok(r) => r,
            Err(e) => {
                log::error!("session {sid}: cannot create it: {e}");
                return Event::error(
                    ErrorCode::Internal,
                    format!("could not create the session on disk: {e}"),
                    Some(sid),
                );
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
        Event::Created {
            session_id: sid.to_string(),
            model,
            new,
        }
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
        let session = self.store.get(sid).ok_or_else(|| {
            Event::error(
                ErrorCode::SessionNotFound,
                format!("no session named '{sid}'; create it first with {{\"action\":\"create\",\"session_id\":\"{sid}\"}}"),
                Some(sid),
            )
        })?;
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
            index,
            origin: Some(client.turns.clone()),
        });
        if !st.busy {
            st.busy = true;
            drop(st);
            crate::agent::spawn_worker(self.clone(), session);
        }
        Ok(())
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
