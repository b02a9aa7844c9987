//! Pending reminders: `<data_dir>/state/reminders.jsonl`.
//!
//! Policy: the file holds one reminder per line and is rewritten whole
//! (atomically) on every change: reminders are few and change rarely, and a
//! whole-file rewrite needs no tombstones or compaction. A bad line is
//! skipped with a warning naming it. Reminder ids are `r` plus the creation
//! time in milliseconds, bumped on a clash, so they stay unique across
//! restarts without a counter file.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::session::write_atomic;

/// Most reminders pending at once, across all sessions.
pub const MAX_REMINDERS: usize = 10_000;
/// Longest reminder text, in bytes.
pub const MAX_REMINDER_TEXT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub reminder_id: String,
    pub session_id: String,
    pub message: String,
    /// When it is due, in seconds since the epoch.
    pub due: i64,
    /// Repeats every this many seconds after firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_secs: Option<u64>,
}

/// The reminders, by id, mirrored to the file.
pub struct Reminders {
    path: PathBuf,
    items: BTreeMap<String, Reminder>,
    last_id: u128,
}

impl Reminders {
    /// Reads the file (a missing one is an empty store).
    pub fn load(state_dir: &Path) -> Reminders {
        let path = state_dir.join("reminders.jsonl");
        let mut items = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Reminder>(line) {
                        Ok(r) => {
                            items.insert(r.reminder_id.clone(), r);
                        }
                        Err(e) => log::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("{}: {e}", path.display()),
        }
        Reminders {
            path,
            items,
            last_id: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Reminder> {
        self.items.get(id)
    }

    /// Every reminder, or those of one session, soonest first.
    pub fn list(&self, session: Option<&str>) -> Vec<Reminder> {
        let mut out: Vec<Reminder> = self
            .items
            .values()
            .filter(|r| session.is_none_or(|s| r.session_id == s))
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.due, r.reminder_id.clone()));
        out
    }

    /// Adds a reminder and saves; returns it with its new id.
    pub fn add(
        &mut self,
        session_id: &str,
        message: &str,
        due: i64,
        repeat_secs: Option<u64>,
    ) -> io::Result<Reminder> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut n = now_ms.max(self.last_id + 1);
        while self.items.contains_key(&format!("r{n}")) {
            n += 1;
        }
        self.last_id = n;
        let r = Reminder {
            reminder_id: format!("r{n}"),
            session_id: session_id.to_string(),
            message: message.to_string(),
            due,
            repeat_secs,
        };
        self.items.insert(r.reminder_id.clone(), r.clone());
        self.save()?;
        Ok(r)
    }

    /// Removes a reminder and saves; `None` if there was none.
    pub fn remove(&mut self, id: &str) -> io::Result<Option<Reminder>> {
        let removed = self.items.remove(id);
        if removed.is_some() {
            self.save()?;
        }
        Ok(removed)
    }

    /// Removes every reminder of a deleted session.
    pub fn remove_session(&mut self, session: &str) -> io::Result<()> {
        let before = self.items.len();
        self.items.retain(|_, r| r.session_id != session);
        if self.items.len() != before {
            self.save()?;
        }
        Ok(())
    }

    /// Marks `id` fired at `now`: a repeating one moves to its next due time
    /// (skipping repeats missed while the daemon was down), others go.
    pub fn fired(&mut self, id: &str, now: i64) -> io::Result<Option<Reminder>> {
        let next = match self.items.get_mut(id) {
            None => return Ok(None),
            Some(r) => match r.repeat_secs {
                Some(every) if every > 0 => {
                    let every = every as i64;
                    let missed = (now - r.due).max(0) / every;
                    r.due += (missed + 1) * every;
                    Some(r.clone())
                }
                _ => None,
            },
        };
        if next.is_none() {
            self.items.remove(id);
        }
        self.save()?;
        Ok(next)
    }

    fn save(&self) -> io::Result<()> {
        let mut text = String::new();
        for r in self.items.values() {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ruster-rem-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn add_fire_repeat_and_reload() {
        let d = dir("cycle");
        let mut r = Reminders::load(&d);
        let a = r.add("s", "stretch", 100, Some(60)).unwrap();
        let b = r.add("s", "once", 50, None).unwrap();
        assert_ne!(a.reminder_id, b.reminder_id);
        assert_eq!(r.list(None)[0].message, "once", "soonest first");
        assert_eq!(r.fired(&b.reminder_id, 55).unwrap(), None);
        // Fired 130 s late: the missed repeats are skipped, not replayed.
        let next = r.fired(&a.reminder_id, 230).unwrap().unwrap();
        assert_eq!(next.due, 280);
        let again = Reminders::load(&d);
        assert_eq!(again.list(Some("s")), vec![next]);
        assert!(again.list(Some("other")).is_empty());
    }

    #[test]
    fn bad_lines_are_skipped() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("reminders.jsonl"),
            "junk\n{\"reminder_id\":\"r1\",\"session_id\":\"s\",\"message\":\"m\",\"due\":5}\n",
        )
        .unwrap();
        assert_eq!(Reminders::load(&d).len(), 1);
    }
}
