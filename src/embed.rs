//! Optional semantic similarity: an embedding model's vectors blended into
//! skill matching and memory recall (`embedding_model` in the config).
//!
//! Policy:
//! - Nothing here ever blocks start-up or the socket. Skill vectors are
//!   computed on a background thread, after start-up and whenever a turn
//!   finds a skill without one (a skill added or edited); until then that
//!   skill is matched lexically only. They are cached on disk in
//!   `<data_dir>/state/embeddings.json`, keyed by a content hash (FNV-1a of
//!   name, description and body), so a restart with unchanged skills makes
//!   no model call for them.
//! - A turn embeds its message once (a small cache of recent messages
//!   serves both recall and skill matching) within
//!   `embedding_timeout_secs`, together with up to [`LAZY_MEMORIES`]
//!   memories that have no vector yet; the rest of those are embedded in
//!   the background. Memory vectors live in memory only, keyed by memory
//!   id and text hash, at most [`MAX_MEMORY_VECTORS`].
//! - Any failure (endpoint down, timeout, bad answer) is logged once at
//!   `warn` (then at `debug` until a call succeeds again), pauses model
//!   calls for [`RETRY_AFTER`], and leaves matching to the lexical scorer
//!   alone: the turn is never failed by the embedding model.
//! - A cosine similarity is not a score by itself: its scale depends on
//!   the model (unrelated texts are about 0.45 apart with
//!   `nomic-embed-text`, about 0.15 with `text-embedding-3-small`). The
//!   semantic score is the cosine's distance above a baseline, rescaled to
//!   0..1: `(cos - base) / (1 - base)`, clamped. The baseline is the mean
//!   cosine between the installed skills (how alike unrelated texts look to
//!   this model), or [`DEFAULT_BASELINE`] with fewer than two skills.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::llm::{Llm, Target};
use crate::memory::Memory;
use crate::protocol::truncate;
use crate::skills::{Catalog, Skill};

/// The cache file, under the state folder.
pub const CACHE_FILE: &str = "embeddings.json";
/// Memories without a vector embedded within a turn (with its message);
/// more are left to a background thread.
pub const LAZY_MEMORIES: usize = 16;
/// Most memory vectors kept (about 3 KB each for 768 dimensions).
pub const MAX_MEMORY_VECTORS: usize = 8192;
/// Texts per background request.
const BATCH: usize = 32;
/// How long model calls pause after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);
/// The semantic baseline with fewer than two skill vectors to learn it
/// from: conservative, so an uncalibrated model adds little.
pub const DEFAULT_BASELINE: f32 = 0.5;
/// Messages whose vectors are kept for reuse within a turn.
const RECENT_QUERIES: usize = 8;
/// How long a message's vector is reused.
const QUERY_TTL: Duration = Duration::from_secs(120);
/// Longest text sent to the model for a skill, in bytes.
const MAX_SKILL_TEXT: usize = 2000;
/// Changes when the text embedded for a skill is built differently, so
/// old cache entries are not reused.
const RECIPE: &[u8] = b"ruster-skill-text-v1";

/// FNV-1a, 64 bits: a stable content hash (not for security).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator, so ("ab","c") and ("a","bc") differ.
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The content hash of a skill: its name, description and body.
pub fn skill_hash(skill: &Skill) -> u64 {
    fnv1a(&[
        RECIPE,
        skill.name.as_bytes(),
        skill.description.as_bytes(),
        skill.body.as_bytes(),
    ])
}

/// The hash of a memory's text.
pub fn text_hash(text: &str) -> u64 {
    fnv1a(&[text.as_bytes()])
}

/// Cosine similarity of two vectors; 0 when their lengths differ or either
/// is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na <= 0.0 || nb <= 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)
}

/// A cosine as a semantic score in 0..1: how far above `baseline`.
pub fn semantic(cos: f32, baseline: f32) -> f32 {
    let base = baseline.clamp(0.0, 0.9);
    ((cos - base) / (1.0 - base)).clamp(0.0, 1.0)
}

/// The text embedded for a skill: its name, description and the body's
/// headings (what the skill is about), capped at [`MAX_SKILL_TEXT`].
pub fn skill_text(skill: &Skill) -> String {
    let mut text = format!(
        "{}: {}",
        skill.name.replace('-', " "),
        skill.description.trim()
    );
    for line in skill.body.lines() {
        let heading = line.trim_start();
        if heading.starts_with('#') {
            let h = heading.trim_start_matches('#').trim();
            if !h.is_empty() {
                text.push('\n');
                text.push_str(h);
            }
        }
        if text.len() >= MAX_SKILL_TEXT {
            break;
        }
    }
    truncate(&text, MAX_SKILL_TEXT).to_string()
}

/// The on-disk cache of skill vectors.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskCache {
    /// The `embedding_model` the vectors came from; another model's
    /// vectors are not reused.
    pub model: String,
    /// Content hash (16 hex digits) → vector.
    pub skills: HashMap<String, Vec<f32>>,
}

impl DiskCache {
    /// Reads `path`; a missing or unreadable file is an empty cache.
    pub fn load(path: &Path) -> DiskCache {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!("{}: unreadable, starting afresh: {e}", path.display());
                DiskCache::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DiskCache::default(),
            Err(e) => {
                log::warn!("{}: {e}", path.display());
                DiskCache::default()
            }
        }
    }

    /// Writes the cache atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::session::write_atomic(path, &bytes)
    }
}

fn hex(h: u64) -> String {
    format!("{h:016x}")
}

/// Skill vectors and what was learnt from them.
#[derive(Default)]
struct SkillVectors {
    /// Content hash → vector.
    by_hash: HashMap<u64, Vec<f32>>,
    /// Mean cosine between the installed skills' vectors, when known.
    baseline: Option<f32>,
    /// The hashes the baseline was computed over.
    baseline_of: Vec<u64>,
}

struct Inner {
    llm: Llm,
    target: Target,
    model: String,
    /// `nomic-embed-text` wants task prefixes.
    prefixes: bool,
    cache_path: PathBuf,
    skills: RwLock<SkillVectors>,
    /// Memory id → (text hash, vector).
    memories: Mutex<HashMap<String, (u64, Vec<f32>)>>,
    /// Recent messages: (text hash, when, vector).
    queries: Mutex<VecDeque<(u64, Instant, Vec<f32>)>>,
    skill_job: AtomicBool,
    memory_job: AtomicBool,
    /// Model calls pause until then after a failure.
    paused_until: Mutex<Option<Instant>>,
    /// A failure was logged at `warn` since the last success.
    warned: AtomicBool,
    full_logged: AtomicBool,
}

/// The embedding side of relevance; see the module docs.
pub struct Embedder {
    inner: Arc<Inner>,
}

impl Embedder {
    /// The embedder of `config`, or `None` without `embedding_model` (or
    /// with one that does not resolve: a warning, then lexical only).
    /// Reads the cache file; calls no model.
    pub fn new(config: &Config, llm: Llm, state_dir: &Path) -> Option<Embedder> {
        let model = config
            .embedding_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())?;
        let target = match llm.resolve(model) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("embedding_model: {e}; semantic matching is off");
                return None;
            }
        };
        let cache_path = state_dir.join(CACHE_FILE);
        let disk = DiskCache::load(&cache_path);
        let mut vectors = SkillVectors::default();
        if disk.model == model {
            for (k, v) in disk.skills {
                if let Ok(h) = u64::from_str_radix(&k, 16) {
                    vectors.by_hash.insert(h, v);
                }
            }
        } else if !disk.skills.is_empty() {
            log::info!(
                "{}: vectors of model {:?} not reused for {model:?}",
                cache_path.display(),
                disk.model
            );
        }
        log::info!(
            "semantic matching with {model} ({} cached skill vectors)",
            vectors.by_hash.len()
        );
        Some(Embedder {
            inner: Arc::new(Inner {
                prefixes: target.model.contains("nomic-embed"),
                llm,
                target,
                model: model.to_string(),
                cache_path,
                skills: RwLock::new(vectors),
                memories: Mutex::new(HashMap::new()),
                queries: Mutex::new(VecDeque::new()),
                skill_job: AtomicBool::new(false),
                memory_job: AtomicBool::new(false),
                paused_until: Mutex::new(None),
                warned: AtomicBool::new(false),
                full_logged: AtomicBool::new(false),
            }),
        })
    }

    /// The configured model string.
    pub fn model(&self) -> &str {
        &self.inner.model
    }

    /// Starts a background thread embedding the skills of `catalog` that
    /// have no vector (none when all are cached, or one already runs, or
    /// calls are paused after a failure). Never blocks.
    pub fn refresh_skills(&self, catalog: &Catalog) {
        let inner = &self.inner;
        let hashes: Vec<u64> = catalog.skills().iter().map(skill_hash).collect();
        let missing: Vec<(u64, String)> = {
            let v = inner.skills.read();
            catalog
                .skills()
                .iter()
                .zip(&hashes)
                .filter(|(_, h)| !v.by_hash.contains_key(h))
                .map(|(s, h)| (*h, inner.document(&skill_text(s))))
                .collect()
        };
        if missing.is_empty() {
            inner.update_baseline(&hashes);
            return;
        }
        if inner.paused() || inner.skill_job.swap(true, Ordering::SeqCst) {
            return;
        }
        let job = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("embed-skills".into())
            .stack_size(512 << 10)
            .spawn(move || {
                job.embed_skills(&missing, &hashes);
                job.skill_job.store(false, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the skill embedding thread: {e}");
            inner.skill_job.store(false, Ordering::SeqCst);
        }
    }

    /// Waits (at most `limit`) until no background job runs; for tests
    /// and benchmarks.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while self.inner.skill_job.load(Ordering::SeqCst)
            || self.inner.memory_job.load(Ordering::SeqCst)
        {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// The vector of a user's message, embedded within `timeout` (or reused
    /// from a recent call with the same text), together with up to
    /// [`LAZY_MEMORIES`] of `missing` memories (see [`Self::missing`]);
    /// the other missing memories go to a background thread. `None` when
    /// the model failed: match lexically.
    pub fn query(
        &self,
        text: &str,
        missing: Vec<(String, u64, String)>,
        timeout: Duration,
    ) -> Option<Vec<f32>> {
        let inner = &self.inner;
        let key = text_hash(text);
        let recent = {
            let mut q = inner.queries.lock();
            q.retain(|(_, at, _)| at.elapsed() < QUERY_TTL);
            q.iter()
                .find(|(h, _, _)| *h == key)
                .map(|(_, _, v)| v.clone())
        };
        let (now, later) = missing.split_at(missing.len().min(LAZY_MEMORIES));
        self.memories_later(later.to_vec());
        if inner.paused() {
            return recent;
        }
        let mut texts: Vec<String> = Vec::with_capacity(now.len() + 1);
        if recent.is_none() {
            texts.push(inner.query_text(text));
        }
        texts.extend(now.iter().map(|(_, _, t)| inner.document(t)));
        if texts.is_empty() {
            return recent;
        }
        let mut vectors = match inner.call(&texts, Some(timeout)) {
            Some(v) => v.into_iter(),
            None => return recent,
        };
        let q = match recent {
            Some(v) => v,
            None => {
                let v = vectors.next()?;
                let mut queue = inner.queries.lock();
                queue.push_back((key, Instant::now(), v.clone()));
                while queue.len() > RECENT_QUERIES {
                    queue.pop_front();
                }
                v
            }
        };
        inner.store_memories(
            now.iter()
                .zip(vectors)
                .map(|((id, h, _), v)| (id.clone(), *h, v)),
        );
        Some(q)
    }

    /// Of `sets` of memories, those without a vector for their current
    /// text: (id, text hash, text). Call under the memory locks; it only
    /// hashes and copies.
    pub fn missing(&self, sets: &[&[Memory]]) -> Vec<(String, u64, String)> {
        let have = self.inner.memories.lock();
        let mut out = Vec::new();
        // Newest first: the ones most likely to matter.
        for m in sets.iter().flat_map(|s| s.iter().rev()) {
            let h = text_hash(&m.text);
            if have.get(&m.memory_id).is_none_or(|(old, _)| *old != h) {
                out.push((m.memory_id.clone(), h, m.text.clone()));
            }
        }
        out
    }

    /// The semantic score (0..1) of memory `m` for the message vector
    /// `query`; `None` when `m` has no vector yet.
    pub fn memory_score(&self, query: &[f32], m: &Memory) -> Option<f32> {
        let base = self.baseline();
        let have = self.inner.memories.lock();
        let (h, v) = have.get(&m.memory_id)?;
        (*h == text_hash(&m.text)).then(|| semantic(cosine(query, v), base))
    }

    /// Per skill of `catalog` (in its order), the semantic score (0..1) for
    /// the message vector `query`; 0 for a skill without a vector yet, for
    /// which a background refresh is started.
    pub fn skill_scores(&self, catalog: &Catalog, query: &[f32]) -> Vec<f32> {
        let mut missing = false;
        let scores = {
            let v = self.inner.skills.read();
            let base = v.baseline.unwrap_or(DEFAULT_BASELINE);
            catalog
                .skills()
                .iter()
                .map(|s| match v.by_hash.get(&skill_hash(s)) {
                    Some(vec) => semantic(cosine(query, vec), base),
                    None => {
                        missing = true;
                        0.0
                    }
                })
                .collect()
        };
        if missing {
            self.refresh_skills(catalog);
        }
        scores
    }

    /// The debug line that explains the semantic side of a matching
    /// decision: the five best semantic scores (0..1) of `scores`, as
    /// [`Self::skill_scores`] gave them for `catalog`.
    /// `semantic scores weight=4.0 baseline=0.47 top: sock-sorter=0.81 ...`
    pub fn explain(&self, catalog: &Catalog, scores: &[f32]) -> String {
        let mut top: Vec<(&str, f32)> = catalog
            .skills()
            .iter()
            .map(|s| s.name.as_str())
            .zip(scores.iter().copied())
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let mut line = format!(
            "semantic scores weight={:.1} baseline={:.2} top:",
            crate::skills::MatchConfig::default().semantic_weight,
            self.baseline()
        );
        for (name, score) in top.into_iter().take(5) {
            line.push_str(&format!(" {name}={score:.2}"));
        }
        line
    }

    /// The baseline in force (see the module docs).
    pub fn baseline(&self) -> f32 {
        self.inner
            .skills
            .read()
            .baseline
            .unwrap_or(DEFAULT_BASELINE)
    }

    fn memories_later(&self, later: Vec<(String, u64, String)>) {
        let inner = &self.inner;
        if later.is_empty() || inner.paused() || inner.memory_job.swap(true, Ordering::SeqCst) {
            return;
        }
        let job = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("embed-memories".into())
            .stack_size(512 << 10)
            .spawn(move || {
                for chunk in later.chunks(BATCH) {
                    if job.full() {
                        break;
                    }
                    let texts: Vec<String> =
                        chunk.iter().map(|(_, _, t)| job.document(t)).collect();
                    let Some(vectors) = job.call(&texts, None) else {
                        break;
                    };
                    job.store_memories(
                        chunk
                            .iter()
                            .zip(vectors)
                            .map(|((id, h, _), v)| (id.clone(), *h, v)),
                    );
                }
                job.memory_job.store(false, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the memory embedding thread: {e}");
            inner.memory_job.store(false, Ordering::SeqCst);
        }
    }
}

impl Inner {
    fn paused(&self) -> bool {
        self.paused_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
    }

    /// One request to the model; failures are logged (see the module docs)
    /// and pause further calls.
    fn call(&self, texts: &[String], timeout: Option<Duration>) -> Option<Vec<Vec<f32>>> {
        let started = Instant::now();
        match self.llm.embed_within(&self.target, texts, timeout) {
            Ok(v) => {
                if self.warned.swap(false, Ordering::SeqCst) {
                    log::info!("embedding model {} answers again", self.model);
                }
                log::debug!(
                    "embedded {} texts with {} in {:?}",
                    texts.len(),
                    self.model,
                    started.elapsed()
                );
                Some(v)
            }
            Err(e) => {
                *self.paused_until.lock() = Some(Instant::now() + RETRY_AFTER);
                let what = format!("embedding model {} failed: {e}", self.model);
                if self.warned.swap(true, Ordering::SeqCst) {
                    log::debug!("{what}; matching lexically");
                } else {
                    log::warn!(
                        "{what}; matching lexically, retrying in {}s",
                        RETRY_AFTER.as_secs()
                    );
                }
                None
            }
        }
    }

    fn query_text(&self, text: &str) -> String {
        if self.prefixes {
            format!("search_query: {text}")
        } else {
            text.to_string()
        }
    }

    fn document(&self, text: &str) -> String {
        if self.prefixes {
            format!("search_document: {text}")
        } else {
            text.to_string()
        }
    }

    fn full(&self) -> bool {
        self.memories.lock().len() >= MAX_MEMORY_VECTORS
    }

    fn store_memories(&self, items: impl Iterator<Item = (String, u64, Vec<f32>)>) {
        let mut have = self.memories.lock();
        for (id, h, v) in items {
            if have.len() >= MAX_MEMORY_VECTORS && !have.contains_key(&id) {
                if !self.full_logged.swap(true, Ordering::SeqCst) {
                    log::info!(
                        "{MAX_MEMORY_VECTORS} memory vectors kept; further memories are recalled lexically"
                    );
                }
                break;
            }
            have.insert(id, (h, v));
        }
    }

    /// Embeds `missing` skills in batches, then saves the cache (only the
    /// vectors of `current`, the catalog's hashes) and relearns the
    /// baseline.
    fn embed_skills(&self, missing: &[(u64, String)], current: &[u64]) {
        let started = Instant::now();
        let mut done = 0;
        for chunk in missing.chunks(BATCH) {
            let texts: Vec<String> = chunk.iter().map(|(_, t)| t.clone()).collect();
            let Some(vectors) = self.call(&texts, None) else {
                break;
            };
            let mut v = self.skills.write();
            for ((h, _), vec) in chunk.iter().zip(vectors) {
                v.by_hash.insert(*h, vec);
                done += 1;
            }
        }
        if done == 0 {
            return;
        }
        log::info!(
            "embedded {done} of {} new skills in {:?}",
            missing.len(),
            started.elapsed()
        );
        let keep: HashSet<u64> = current.iter().copied().collect();
        let disk = {
            let mut v = self.skills.write();
            v.by_hash.retain(|h, _| keep.contains(h));
            DiskCache {
                model: self.model.clone(),
                skills: v
                    .by_hash
                    .iter()
                    .map(|(h, vec)| (hex(*h), vec.clone()))
                    .collect(),
            }
        };
        if let Err(e) = disk.save(&self.cache_path) {
            log::warn!("{}: cannot save: {e}", self.cache_path.display());
        }
        self.update_baseline(current);
    }

    /// Relearns the baseline from the vectors of `hashes` when they changed.
    fn update_baseline(&self, hashes: &[u64]) {
        if self.skills.read().baseline_of == hashes {
            return;
        }
        let mut v = self.skills.write();
        let vecs: Vec<&Vec<f32>> = hashes
            .iter()
            .take(200)
            .filter_map(|h| v.by_hash.get(h))
            .collect();
        let (baseline, n) = (mean_pairwise(&vecs), vecs.len());
        v.baseline = baseline;
        v.baseline_of = hashes.to_vec();
        if let Some(b) = baseline {
            log::debug!("semantic baseline {b:.3} over {n} skills");
        }
    }
}

/// The mean cosine between distinct vectors; `None` under two.
pub fn mean_pairwise(vecs: &[&Vec<f32>]) -> Option<f32> {
    let (mut sum, mut n) = (0f32, 0u32);
    for (i, a) in vecs.iter().enumerate() {
        for b in &vecs[i + 1..] {
            sum += cosine(a, b);
            n += 1;
        }
    }
    (n > 0).then(|| (sum / n as f32).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        let c = cosine(&[1.0, 1.0], &[1.0, 0.0]);
        assert!((c - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{c}");
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[], &[]), 0.0);
    }

    #[test]
    fn semantic_is_distance_above_baseline() {
        assert_eq!(semantic(0.4, 0.5), 0.0);
        assert_eq!(semantic(1.0, 0.5), 1.0);
        assert!((semantic(0.75, 0.5) - 0.5).abs() < 1e-6);
        assert!((semantic(0.5, 0.0) - 0.5).abs() < 1e-6);
        let a = vec![1.0, 0.0];
        let b = vec![0.0, 1.0];
        assert_eq!(mean_pairwise(&[&a]), None);
        assert_eq!(mean_pairwise(&[&a, &b]), Some(0.0));
    }

    #[test]
    fn hashing_is_stable_and_content_sensitive() {
        // FNV-1a 64 reference values.
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        let mut s = skill("sock-sorter", "Pairs socks", "# Sorting\nMatch them.");
        let h = skill_hash(&s);
        assert_eq!(h, skill_hash(&s.clone()));
        s.body.push('!');
        assert_ne!(h, skill_hash(&s));
    }

    fn skill(name: &str, description: &str, body: &str) -> Skill {
        Skill {
            name: name.into(),
            description: description.into(),
            path: PathBuf::from("/x/SKILL.md"),
            dir: PathBuf::from("/x"),
            license: None,
            compatibility: None,
            metadata: None,
            allowed_tools: Vec::new(),
            warnings: Vec::new(),
            body: body.into(),
        }
    }

    #[test]
    fn skill_text_has_name_description_and_headings() {
        let s = skill(
            "sock-sorter",
            "Pairs socks.",
            "# Sorting socks\nbody text\n## Odd ones\nmore",
        );
        assert_eq!(
            skill_text(&s),
            "sock sorter: Pairs socks.\nSorting socks\nOdd ones"
        );
        let long = skill("x", &"é".repeat(3000), "");
        assert!(skill_text(&long).len() <= MAX_SKILL_TEXT);
    }

    #[test]
    fn cache_round_trip() {
        let dir = std::env::temp_dir().join(format!("ruster-embed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join(CACHE_FILE);
        assert_eq!(DiskCache::load(&path), DiskCache::default());
        let cache = DiskCache {
            model: "ollama/nomic-embed-text".into(),
            skills: [(hex(42), vec![0.25, -1.5, 3.0])].into_iter().collect(),
        };
        cache.save(&path).unwrap();
        assert_eq!(DiskCache::load(&path), cache);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(DiskCache::load(&path), DiskCache::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unconfigured_or_unresolvable_is_off() {
        let dir = std::env::temp_dir();
        let (c, _) = crate::config::parse("").unwrap();
        assert!(Embedder::new(&c, Llm::new(&c), &dir).is_none());
        let (c, _) = crate::config::parse("embedding_model = \"nope/x\"\n").unwrap();
        assert!(Embedder::new(&c, Llm::new(&c), &dir).is_none());
    }

    #[test]
    fn cached_skills_need_no_call_and_scores_follow_vectors() {
        let dir = std::env::temp_dir().join(format!("ruster-embed2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = skill("sock-sorter", "Pairs socks", "");
        let b = skill("weather", "Forecasts", "");
        let cache = DiskCache {
            model: "dead/m".into(),
            skills: [
                (hex(skill_hash(&a)), vec![1.0, 0.0, 0.0]),
                (hex(skill_hash(&b)), vec![0.0, 1.0, 0.0]),
            ]
            .into_iter()
            .collect(),
        };
        cache.save(&dir.join(CACHE_FILE)).unwrap();
        // A provider nobody listens on: a call would fail and pause.
        let (c, _) = crate::config::parse(
            "embedding_model = \"dead/m\"\n[providers.dead]\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        )
        .unwrap();
        let e = Embedder::new(&c, Llm::new(&c), &dir).unwrap();
        let skills_dir = dir.join("skills");
        for s in [&a, &b] {
            let d = skills_dir.join(&s.name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("SKILL.md"),
                format!(
                    "---\nname: {}\ndescription: {}\n---\n",
                    s.name, s.description
                ),
            )
            .unwrap();
        }
        let catalog = Catalog::discover(&[skills_dir]);
        e.refresh_skills(&catalog);
        assert!(!e.inner.skill_job.load(Ordering::SeqCst));
        assert!(!e.inner.paused(), "a cached catalog made a model call");
        assert_eq!(e.baseline(), 0.0);
        let scores = e.skill_scores(&catalog, &[0.9, 0.1, 0.0]);
        assert!(scores[0] > 0.9 && scores[1] < 0.2, "{scores:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
