//! Long-term memory: facts kept across turns, sessions and restarts.
//!
//! Each session has `sessions/<id>/memory.jsonl`; global memories live in
//! `state/memory.jsonl`. Policy: append-only, one line per `remember` and a
//! tombstone line per `forget`; when tombstones pile up the file is
//! rewritten (atomically) on load. Recall needs no tool call: every turn
//! scores the memories against the user's message with the same scorer as
//! the skills matcher ([`crate::relevance`]) and the best few go into the
//! context, so even a tiny local model sees the facts that matter.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::relevance::{self, Params, Scorer};
use crate::session::write_atomic;

/// Longest memory text, in bytes.
pub const MAX_MEMORY_TEXT: usize = 2000;
/// Most memories in one file (one session's, or the global ones).
pub const MAX_MEMORIES: usize = 10_000;
/// Memories put into one turn's context.
pub const RECALL_LIMIT: usize = 4;
/// Lowest score a memory needs to be recalled: at least one real word in
/// common with the message (scores of a single shared rare word land
/// around 1 to 2).
pub const RECALL_THRESHOLD: f32 = 0.8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub memory_id: String,
    pub text: String,
    pub created_at: String,
}

/// One line of a memory file.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Forget { forget: String },
    Add(Memory),
}

/// One memory file, loaded.
pub struct MemoryFile {
    path: PathBuf,
    items: Vec<Memory>,
    /// The relevance index of `items`, built on the first search and
    /// dropped when they change: building it is most of a search's cost
    /// (60 ms for 10,000 memories; a search on a built index is ~1 ms).
    index: Option<Scorer>,
}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFile")
            .field("path", &self.path)
            .field("items", &self.items.len())
            .finish()
    }
}

/// One set of memories to search, with its index.
pub struct Set<'m, 'i> {
    pub items: &'m [Memory],
    pub index: &'i Scorer,
    pub global: bool,
}

/// Memory ids are unique across the daemon: `m` and a counter seeded from
/// the clock in milliseconds, so restarts never reuse one.
fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let _ = NEXT.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
    format!("m{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

impl MemoryFile {
    /// Reads `path` (missing: empty); rewrites it when more than half of
    /// its lines are dead.
    pub fn load(path: &Path) -> MemoryFile {
        let mut items: Vec<Memory> = Vec::new();
        let mut lines = 0;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    lines += 1;
                    match serde_json::from_str::<Line>(line) {
                        Ok(Line::Add(m)) => items.push(m),
                        Ok(Line::Forget { forget }) => items.retain(|m| m.memory_id != forget),
                        Err(e) => log::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("{}: {e}", path.display()),
        }
        let file = MemoryFile {
            path: path.to_path_buf(),
            items,
            index: None,
        };
        if lines > 16 && lines > 2 * file.items.len() {
            if let Err(e) = file.compact() {
                log::warn!("{}: cannot compact: {e}", path.display());
            }
        }
        file
    }

    pub fn items(&self) -> &[Memory] {
        &self.items
    }

    /// Builds the relevance index if the memories changed since the last.
    pub fn prepare(&mut self) {
        if self.index.is_none() {
            self.index = Some(index_of(&self.items));
        }
    }

    /// The memories with their index, for [`search_sets`]; call
    /// [`Self::prepare`] first (without it the set is searched as empty).
    pub fn set(&self, global: bool) -> Set<'_, '_> {
        static EMPTY: std::sync::OnceLock<Scorer> = std::sync::OnceLock::new();
        match &self.index {
            Some(index) => Set {
                items: &self.items,
                index,
                global,
            },
            None => Set {
                items: &[],
                index: EMPTY.get_or_init(|| index_of(&[])),
                global,
            },
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.items.iter().any(|m| m.memory_id == id)
    }

    /// Stores a new memory. `Err` is a message for the user.
    pub fn add(&mut self, text: &str) -> Result<Memory, String> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_MEMORY_TEXT {
            return Err(format!(
                "a memory holds 1 to {MAX_MEMORY_TEXT} bytes of text"
            ));
        }
        if self.items.len() >= MAX_MEMORIES {
            return Err(format!(
                "{MAX_MEMORIES} memories are stored here already; forget some first"
            ));
        }
        let m = Memory {
            memory_id: next_id(),
            text: text.to_string(),
            created_at: crate::time::now_rfc3339(),
        };
        self.append(&Line::Add(m.clone()))
            .map_err(|e| format!("could not store the memory: {e}"))?;
        self.items.push(m.clone());
        self.index = None;
        Ok(m)
    }

    /// Forgets `id`; `Ok(false)` when it is not here.
    pub fn forget(&mut self, id: &str) -> io::Result<bool> {
        if !self.contains(id) {
            return Ok(false);
        }
        self.append(&Line::Forget {
            forget: id.to_string(),
        })?;
        self.items.retain(|m| m.memory_id != id);
        Ok(true)
    }

    fn append(&self, line: &Line) -> io::Result<()> {
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(text.as_bytes())
    }

    fn compact(&self) -> io::Result<()> {
        let mut text = String::new();
        for m in &self.items {
            text.push_str(&serde_json::to_string(&Line::Add(m.clone()))?);
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())
    }
}

/// A memory with where it came from and how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    pub memory: &'a Memory,
    pub global: bool,
    pub score: f32,
}

/// Weight of a memory's semantic score (0 to 1, see [`crate::embed`]) in
/// [`search_with`]: a memory that shares no word with the message needs a
/// semantic score of at least `RECALL_THRESHOLD / SEMANTIC_WEIGHT` (0.4).
pub const SEMANTIC_WEIGHT: f32 = 2.0;

/// Scores `sets` of memories (each with its `global` flag) against
/// `query`, best first, keeping those at or above `threshold`.
pub fn search<'a>(sets: &[(&'a [Memory], bool)], query: &str, threshold: f32) -> Vec<Scored<'a>> {
    search_with(sets, query, threshold, &|_| None)
}

/// [`search`] with an optional semantic score per memory (`extra`, e.g.
/// from embeddings), blended in with [`SEMANTIC_WEIGHT`] by the same
/// [`relevance::blend`] as the skills matcher. A memory needs a shared
/// word or a positive semantic score, and a blended score of at least
/// `threshold`.
pub fn search_with<'a>(
    sets: &[(&'a [Memory], bool)],
    query: &str,
    threshold: f32,
    extra: &dyn Fn(&Memory) -> Option<f32>,
) -> Vec<Scored<'a>> {
    let indexes: Vec<Scorer> = sets.iter().map(|(items, _)| index_of(items)).collect();
    let sets: Vec<Set<'a, '_>> = sets
        .iter()
        .zip(&indexes)
        .map(|((items, global), index)| Set {
            items,
            index,
            global: *global,
        })
        .collect();
    search_sets(&sets, query, threshold, extra)
}

/// Like [`search_with`], over sets whose indexes are already built.
pub fn search_sets<'a>(
    sets: &[Set<'a, '_>],
    query: &str,
    threshold: f32,
    extra: &dyn Fn(&Memory) -> Option<f32>,
) -> Vec<Scored<'a>> {
    let mut out: Vec<Scored<'a>> = Vec::new();
    for set in sets {
        if set.items.is_empty() {
            continue;
        }
        let hits = set.index.score(query, &[1.0]);
        out.extend(hits.into_iter().zip(set.items).filter_map(|(hit, memory)| {
            let e = extra(memory);
            let score = relevance::blend(hit.score, e, SEMANTIC_WEIGHT);
            let related = hit.matched > 0 || e.is_some_and(|e| e > 0.0);
            (related && score >= threshold).then_some(Scored {
                memory,
                global: set.global,
                score,
            })
        }));
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// The relevance index of some memories: one field, the text.
fn index_of(items: &[Memory]) -> Scorer {
    let docs: Vec<Vec<&str>> = items.iter().map(|m| vec![m.text.as_str()]).collect();
    Scorer::new(&docs, Params::default())
}

/// The context block of recalled memories, or `None` when none matched.
pub fn recall_block(found: &[Scored]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let mut block = String::from("[Things the user told you to remember (use them if they help):");
    for s in found.iter().take(RECALL_LIMIT) {
        let day = s.memory.created_at.get(..10).unwrap_or("");
        block.push_str(&format!("\n- ({day}) {}", s.memory.text));
    }
    block.push(']');
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ruster-mem-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("memory.jsonl")
    }

    #[test]
    fn remember_forget_reload_compact() {
        let path = temp("cycle");
        let mut f = MemoryFile::load(&path);
        let cat = f.add("My cat is called Miso").unwrap();
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(f.add(&format!("note {i}")).unwrap().memory_id);
        }
        for id in &ids {
            assert!(f.forget(id).unwrap());
        }
        assert!(!f.forget("m0").unwrap());
        let again = MemoryFile::load(&path);
        assert_eq!(again.items(), std::slice::from_ref(&cat));
        // 41 lines for 1 live memory: compacted on load.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert!(f.add("").is_err());
        assert!(f.add(&"x".repeat(MAX_MEMORY_TEXT + 1)).is_err());
    }

    #[test]
    fn ids_are_unique() {
        let a = next_id();
        let b = next_id();
        assert_ne!(a, b);
    }

    #[test]
    fn recall_finds_related_facts_only() {
        let mk = |id: &str, text: &str| Memory {
            memory_id: id.into(),
            text: text.into(),
            created_at: "2026-11-20T10:00:00Z".into(),
        };
        let session = [
            mk("m1", "My cat is called Miso"),
            mk("m2", "I work as a nurse on night shifts"),
        ];
        let global = [mk("m3", "The user's favourite colour is green")];
        let sets = [(&session[..], false), (&global[..], true)];
        let found = search(&sets, "what is my cat's name?", RECALL_THRESHOLD);
        assert_eq!(
            found.first().map(|s| s.memory.memory_id.as_str()),
            Some("m1")
        );
        assert!(found.iter().all(|s| s.memory.memory_id != "m2"));
        assert!(search(&sets, "how do I bake bread?", RECALL_THRESHOLD).is_empty());
        // A semantic score recalls a memory that shares no word.
        let bread = |m: &Memory| (m.memory_id == "m2").then_some(0.9);
        let found2 = search_with(&sets, "how do I bake bread?", RECALL_THRESHOLD, &bread);
        assert_eq!(found2.len(), 1);
        assert_eq!(found2[0].memory.memory_id, "m2");
        let block = recall_block(&found).unwrap();
        assert!(
            block.contains("(2026-11-20) My cat is called Miso"),
            "{block}"
        );
    }
}
