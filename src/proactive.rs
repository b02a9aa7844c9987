//! The proactive thread: reminders, heartbeats and the keepalive.
//!
//! One thread sleeps until the next due item of a timer heap (or the next
//! keepalive), woken early through a channel when something is scheduled.
//! No polling: between events it makes no system calls at all. Entries are
//! never removed from the heap; a popped entry that no longer matches its
//! reminder or heartbeat (changed or cancelled since) is skipped.
//!
//! Delivery loses nothing: every proactive message is appended to the
//! session's history (role `proactive`) and `activity.log`; when no client
//! is subscribed, its index is kept in `meta.json` until one subscribes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{after, never, select, unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::daemon::Daemon;
use crate::llm::{ChatMessage, Usage};
use crate::protocol::{Event, ProactiveKind};
use crate::session::{Message, MsgRole, Session, TurnKind};
use crate::time::{rfc3339, unix_now};

/// A heartbeat reply under this many characters that mentions
/// `HEARTBEAT_OK` is a model saying "nothing to report" in a sentence.
const HEARTBEAT_OK_MAX_CHARS: usize = 300;
const HEARTBEAT_OK: &str = "HEARTBEAT_OK";

/// Something newly due, sent to the proactive thread.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    Reminder { id: String, due: i64 },
    Heartbeat { session: String, due: i64 },
}

impl Wake {
    fn due(&self) -> i64 {
        match self {
            Wake::Reminder { due, .. } | Wake::Heartbeat { due, .. } => *due,
        }
    }
}

/// The channel into the proactive thread.
pub struct Scheduler {
    tx: Sender<Wake>,
    rx: Mutex<Option<Receiver<Wake>>>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl Scheduler {
    pub fn new() -> Scheduler {
        let (tx, rx) = unbounded();
        Scheduler {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    pub fn wake(&self, w: Wake) {
        let _ = self.tx.send(w);
    }
}

/// Starts the proactive thread (once).
pub fn start(daemon: Arc<Daemon>) {
    let Some(rx) = daemon.scheduler.rx.lock().take() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("proactive".into())
        .stack_size(256 << 10)
        .spawn(move || run(&daemon, &rx));
    if let Err(e) = spawned {
        log::error!("cannot start the proactive thread: {e}");
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn run(d: &Arc<Daemon>, rx: &Receiver<Wake>) {
    let mut heap: BinaryHeap<Reverse<(i64, Wake)>> = BinaryHeap::new();
    // The one current due time of each session's heartbeat: an entry with
    // another time was superseded by a newer `heartbeat` action.
    let mut heartbeat_due: HashMap<String, i64> = HashMap::new();
    let push =
        |heap: &mut BinaryHeap<Reverse<(i64, Wake)>>, hb: &mut HashMap<String, i64>, w: Wake| {
            if let Wake::Heartbeat { session, due } = &w {
                hb.insert(session.clone(), *due);
            }
            heap.push(Reverse((w.due(), w)));
        };
    // Read after the socket is up, so start-up never waits for it.
    for r in d.reminders.lock().list(None) {
        push(
            &mut heap,
            &mut heartbeat_due,
            Wake::Reminder {
                id: r.reminder_id,
                due: r.due,
            },
        );
    }
    let now = unix_now();
    for (session, hb) in d.store.heartbeats() {
        push(
            &mut heap,
            &mut heartbeat_due,
            Wake::Heartbeat {
                session,
                due: now + hb.every_secs as i64,
            },
        );
    }
    let keepalive = d.config().proactive_interval_secs as i64 * 1000;
    let mut next_keepalive = now_ms() + keepalive;
    loop {
        let next_item = heap.peek().map(|Reverse((due, _))| due * 1000);
        let next = match (keepalive > 0, next_item) {
            (true, Some(t)) => Some(t.min(next_keepalive)),
            (true, None) => Some(next_keepalive),
            (false, t) => t,
        };
        let timer = match next {
            Some(t) => after(Duration::from_millis((t - now_ms()).max(0) as u64)),
            None => never(),
        };
        select! {
            recv(rx) -> w => match w {
                Ok(w) => push(&mut heap, &mut heartbeat_due, w),
                Err(_) => return,
            },
            recv(timer) -> _ => {}
        }
        if d.is_shutting_down() {
            return;
        }
        let now = now_ms();
        if keepalive > 0 && now >= next_keepalive {
            d.hub.broadcast(&Event::Keepalive {
                ts: crate::time::now_rfc3339(),
            });
            next_keepalive = now + keepalive;
        }
        while heap
            .peek()
            .is_some_and(|Reverse((due, _))| due * 1000 <= now)
        {
            let Some(Reverse((_, w))) = heap.pop() else {
                break;
            };
            let again = match w {
                Wake::Reminder { id, due } => fire_reminder(d, &id, due),
                Wake::Heartbeat { session, due } => {
                    if heartbeat_due.get(&session) != Some(&due) {
                        continue;
                    }
                    heartbeat_due.remove(&session);
                    fire_heartbeat(d, &session)
                }
            };
            if let Some(w) = again {
                push(&mut heap, &mut heartbeat_due, w);
            }
        }
    }
}

/// Delivers a due reminder; returns its next occurrence if it repeats.
fn fire_reminder(d: &Daemon, id: &str, due: i64) -> Option<Wake> {
    let now = unix_now();
    let reminder = {
        let reminders = d.reminders.lock();
        match reminders.get(id) {
            Some(r) if r.due == due => r.clone(),
            _ => return None, // cancelled or rescheduled since
        }
    };
    let Some(session) = d.store.get(&reminder.session_id) else {
        log::info!(
            "reminder {id}: session {} is gone; dropping it",
            reminder.session_id
        );
        let _ = d.reminders.lock().remove(id);
        return None;
    };
    let late = now - reminder.due;
    let text = if late >= 60 {
        format!(
            "Reminder: {} (due {}, {} late: the daemon was not running)",
            reminder.message,
            rfc3339(reminder.due),
            human_duration(late)
        )
    } else {
        format!("Reminder: {}", reminder.message)
    };
    // Settle the store first: a client that sees the message and lists the
    // reminders must not find it still pending.
    let next = match d.reminders.lock().fired(id, now) {
        Ok(next) => next.map(|r| Wake::Reminder {
            id: r.reminder_id,
            due: r.due,
        }),
        Err(e) => {
            log::error!("reminder {id}: cannot save reminders: {e}");
            None
        }
    };
    deliver(d, &session, ProactiveKind::Reminder, &text);
    next
}

fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days", s / 86_400),
    }
}

/// Appends a proactive message to the session's history and sends it to
/// every subscribed client, or keeps it for the first one to subscribe.
pub fn deliver(d: &Daemon, s: &Session, kind: ProactiveKind, text: &str) {
    let mut st = s.lock();
    if st.deleted {
        return;
    }
    let mut msg = Message::new(MsgRole::Proactive, text);
    msg.extra.insert(
        "kind".into(),
        serde_json::to_value(kind).unwrap_or_default(),
    );
    let ts = msg.ts.clone();
    let index = match s.append(&mut st, msg) {
        Ok(i) => i,
        Err(e) => {
            log::error!("session {}: cannot store a proactive message: {e}", s.id);
            return;
        }
    };
    let event = Event::Proactive {
        session_id: s.id.clone(),
        message: text.to_string(),
        kind,
        ts,
    };
    let reached = d.hub.publish(&s.id, &event, None);
    if reached == 0 {
        st.meta.undelivered.push(index);
        if let Err(e) = s.save_meta(&st) {
            log::error!("session {}: cannot save meta.json: {e}", s.id);
        }
    }
    drop(st);
    let preview: String = text.chars().take(80).collect();
    let pending = if reached == 0 {
        " (kept for the next client)"
    } else {
        ""
    };
    s.activity(&format!("proactive {kind:?}: {preview}{pending}"));
    log::info!("session {}: proactive {kind:?} to {reached} clients", s.id);
}

/// Queues a heartbeat turn if one is due and allowed; returns the next.
fn fire_heartbeat(d: &Arc<Daemon>, sid: &str) -> Option<Wake> {
    let session = d.store.get(sid)?;
    let now = unix_now();
    let mut st = session.lock();
    let settings = st.meta.heartbeat.clone()?;
    let every = settings.every_secs as i64;
    let next = Some(Wake::Heartbeat {
        session: sid.to_string(),
        due: now + every,
    });
    if st.deleted {
        return None;
    }
    if st.heartbeat_queued {
        return next; // the last one still waits or runs: never overlap
    }
    if let Some((start, end)) = d
        .config()
        .quiet_hours
        .as_deref()
        .and_then(crate::config::parse_quiet_hours)
    {
        if let Some(minute) = crate::time::local_minutes_of_day(now) {
            let quiet = if start <= end {
                minute >= start && minute < end
            } else {
                minute >= start || minute < end
            };
            if quiet {
                return next;
            }
        }
    }
    let today = rfc3339(now)[..10].to_string();
    if settings.day == today && settings.tokens_today >= d.config().heartbeat_max_tokens_per_day {
        log::info!("session {sid}: heartbeat skipped: today's token budget is spent");
        return next;
    }
    let prompt = match heartbeat_file(session.dir()) {
        HeartbeatFile::NoTasks => return next, // idle heartbeats cost nothing
        HeartbeatFile::Tasks(text) => text,
        HeartbeatFile::Absent => settings
            .prompt
            .clone()
            .unwrap_or_else(|| d.config().heartbeat_prompt.clone()),
    };
    let target = match d.llm.resolve(&st.meta.model) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("session {sid}: heartbeat skipped: {e}");
            return next;
        }
    };
    st.heartbeat_queued = true;
    st.queue_silent(target, TurnKind::Heartbeat { prompt });
    drop(st);
    d.start_worker(&session);
    next
}

enum HeartbeatFile {
    Absent,
    /// The file has nothing to do: empty, only headings or comments.
    NoTasks,
    Tasks(String),
}

fn heartbeat_file(dir: &std::path::Path) -> HeartbeatFile {
    let Ok(text) = std::fs::read_to_string(dir.join("HEARTBEAT.md")) else {
        return HeartbeatFile::Absent;
    };
    if has_tasks(&text) {
        HeartbeatFile::Tasks(text)
    } else {
        HeartbeatFile::NoTasks
    }
}

/// Whether a `HEARTBEAT.md` asks for anything: text other than headings,
/// blank lines and `<!-- -->` comments.
fn has_tasks(text: &str) -> bool {
    let mut rest = text;
    let mut visible = String::new();
    while let Some(start) = rest.find("<!--") {
        visible.push_str(&rest[..start]);
        rest = rest[start..]
            .find("-->")
            .map_or("", |end| &rest[start + end + 3..]);
    }
    visible.push_str(rest);
    visible
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether a heartbeat reply says "nothing to report".
pub fn is_heartbeat_ok(reply: &str) -> bool {
    let r = reply.trim();
    r.is_empty()
        || r.starts_with(HEARTBEAT_OK)
        || (r.contains(HEARTBEAT_OK) && r.chars().count() < HEARTBEAT_OK_MAX_CHARS)
}

/// Handles a finished heartbeat turn: counts its tokens, and delivers its
/// reply unless it says there is nothing to report.
pub fn heartbeat_done(
    d: &Daemon,
    s: &Session,
    sent: &[ChatMessage],
    reply: &str,
    usage: Option<Usage>,
    finished: bool,
    outcome: &str,
) {
    let spent = usage.map_or_else(
        || {
            let prompt: usize = sent
                .iter()
                .map(|m| crate::context::estimate_tokens(&m.content))
                .sum();
            (prompt + crate::context::estimate_tokens(reply)) as u64
        },
        |u| u.prompt_tokens + u.completion_tokens,
    );
    {
        let mut st = s.lock();
        if let Some(hb) = st.meta.heartbeat.as_mut() {
            let today = rfc3339(unix_now())[..10].to_string();
            if hb.day != today {
                hb.day = today;
                hb.tokens_today = 0;
            }
            hb.tokens_today += spent;
            if let Err(e) = s.save_meta(&st) {
                log::warn!("session {}: cannot save meta.json: {e}", s.id);
            }
        }
    }
    if !finished {
        s.activity(&format!("heartbeat {outcome}"));
        return;
    }
    if is_heartbeat_ok(reply) {
        log::debug!(
            "session {}: heartbeat: nothing to report ({spent} tokens)",
            s.id
        );
        s.activity(&format!("heartbeat: nothing to report ({spent} tokens)"));
    } else {
        deliver(d, s, ProactiveKind::Heartbeat, reply.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_ok_is_recognised() {
        assert!(is_heartbeat_ok(""));
        assert!(is_heartbeat_ok("  HEARTBEAT_OK"));
        assert!(is_heartbeat_ok("All quiet today. HEARTBEAT_OK"));
        assert!(!is_heartbeat_ok("Your train leaves in 20 minutes."));
        assert!(!is_heartbeat_ok(&format!(
            "{} HEARTBEAT_OK",
            "x".repeat(400)
        )));
    }

    #[test]
    fn heartbeat_files_without_tasks_are_idle() {
        assert!(!has_tasks(""));
        assert!(!has_tasks(
            "# Heartbeat\n\n## Tasks\n<!-- add tasks here\n- like this -->\n"
        ));
        assert!(has_tasks("# Heartbeat\n- check the build\n"));
    }

    #[test]
    fn wakes_order_by_due_time() {
        let mut heap = BinaryHeap::new();
        for (i, due) in [30, 10, 20].into_iter().enumerate() {
            let w = Wake::Reminder {
                id: format!("r{i}"),
                due,
            };
            heap.push(Reverse((w.due(), w)));
        }
        let order: Vec<i64> = std::iter::from_fn(|| heap.pop().map(|Reverse((d, _))| d)).collect();
        assert_eq!(order, [10, 20, 30]);
    }
}
