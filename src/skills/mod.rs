//! Agent Skills: discovery, the index of every turn, activation helpers
//! and confined reads of a skill's own files.
//!
//! Policy:
//! - A skill is `<dir>/<folder>/SKILL.md` (exact case) in one of the
//!   configured folders, earlier folders first. Nothing deeper is looked
//!   at: a `SKILL.md` one level further down belongs to its parent skill's
//!   resources, not to the catalog. Dot-folders, plain files and folders
//!   without `SKILL.md` are ignored silently; a missing folder is a debug
//!   line.
//! - A skill loads under its front matter's `name` (what users type after
//!   `/`), even when it differs from its folder (a warning). On a name
//!   clash the first one found wins (earlier folder, then folder name in
//!   byte order); the others are skipped with a reason naming the winner.
//! - Broken files are skipped with one reason each; nothing here stops the
//!   daemon. Both lists are kept for the `skills` listing.
//! - Bodies are kept in memory (about 300 KB for 100 real skills): the
//!   text that was scored is the text that is injected, with no second
//!   read that could race an editor. [`Catalog::changed`] tells the daemon
//!   when to rescan.
//! - Nothing in a skill is ever executed here: this module reads files and
//!   has no code that runs anything.

pub mod frontmatter;

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::relevance::{self, Hit, Params, Scorer};
pub use frontmatter::{parse, Parsed};

/// The file that makes a folder a skill.
pub const SKILL_FILE: &str = "SKILL.md";
/// Largest `SKILL.md` read; bigger ones are skipped (the largest published
/// one is 74 KB).
pub const MAX_SKILL_BYTES: u64 = 1 << 20;
/// Largest file [`Catalog::read_file`] returns.
pub const MAX_READ_BYTES: u64 = 64 * 1024;
/// Body text indexed for matching: the start of a long body says what it
/// is about; the rest would only add noise and memory.
const MAX_INDEXED_BODY: usize = 16 * 1024;

/// One loaded skill.
#[derive(Debug, Clone, Serialize)]
pub struct Skill {
    /// The front matter's `name`.
    pub name: String,
    pub description: String,
    /// The `SKILL.md` file.
    pub path: PathBuf,
    /// The skill's folder (where its resources live).
    pub dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
    /// Spec violations tolerated while loading.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The Markdown instructions, injected when the skill is active.
    #[serde(skip)]
    pub body: String,
}

/// A `SKILL.md` that could not be used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// How the daemon's own matcher decides (`matched` activations).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchConfig {
    /// Lowest score that activates a skill.
    pub threshold: f32,
    /// Most skills activated by matching in one turn.
    pub max_skills: usize,
    /// A skill other than the best must score at least this fraction of the
    /// best one: two skills activate only when both clearly fit.
    pub relative: f32,
    /// Weights of the name, description, body headings and body text.
    pub weights: [f32; 4],
    /// How much a prompt's known but unmatched words lower a skill's
    /// score: the score is multiplied by `coverage ^ coverage_power`, where
    /// coverage is the share of the prompt's words (those any skill knows)
    /// that this skill matched. 0 turns it off. "the forecast for the stock
    /// market looks grim" matches weather on one word out of five.
    pub coverage_power: f32,
    /// The lowest coverage factor, so a long, chatty prompt that names its
    /// need once is lowered at most this much.
    pub coverage_floor: f32,
    /// Weight of the caller's semantic score in [`Catalog::matched_with`].
    pub semantic_weight: f32,
}

impl Default for MatchConfig {
    fn default() -> MatchConfig {
        MatchConfig {
            threshold: 2.2,
            max_skills: 2,
            relative: 0.9,
            weights: [3.0, 2.0, 0.8, 0.4],
            coverage_power: 1.0,
            coverage_floor: 0.34,
            semantic_weight: 4.0,
        }
    }
}

/// Every skill found, every file skipped, and what is needed to notice a
/// change on disk.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by name.
    skills: Vec<Skill>,
    skipped: Vec<Skipped>,
    dirs: Vec<PathBuf>,
    stamp: Vec<Stamp>,
    scorer: Scorer,
}

/// What [`Catalog::changed`] compares: a path's modification time and size.
type Stamp = (PathBuf, Option<(SystemTime, u64)>);

fn stamp_of(path: &Path) -> Stamp {
    let meta = fs::metadata(path)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
    (path.to_path_buf(), meta)
}

impl Catalog {
    /// Scans `dirs` (earlier first) for `<dir>/<folder>/SKILL.md`.
    pub fn discover(dirs: &[PathBuf]) -> Catalog {
        let mut skills: Vec<Skill> = Vec::new();
        let mut skipped = Vec::new();
        let mut stamp = Vec::new();
        for dir in dirs {
            stamp.push(stamp_of(dir));
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) => {
                    log::debug!("skills folder {}: {e}; none from there", dir.display());
                    continue;
                }
            };
            let mut folders: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            folders.sort();
            for folder in folders {
                stamp.push(stamp_of(&folder));
                let path = folder.join(SKILL_FILE);
                if !path.is_file() {
                    continue;
                }
                stamp.push(stamp_of(&path));
                match load(&folder, &path) {
                    Ok(skill) => {
                        if let Some(first) = skills.iter().find(|s| s.name == skill.name) {
                            let reason = format!(
                                "name '{}' is already used by {}, which wins",
                                skill.name,
                                first.path.display()
                            );
                            log::warn!("skill {}: skipped: {reason}", path.display());
                            skipped.push(Skipped { path, reason });
                        } else {
                            for w in &skill.warnings {
                                log::warn!("skill {}: {w}", path.display());
                            }
                            skills.push(skill);
                        }
                    }
                    Err(reason) => {
                        log::warn!("skill {}: skipped: {reason}", path.display());
                        skipped.push(Skipped { path, reason });
                    }
                }
            }
        }
        skills.sort_by(|a, b| a.name.cmp(&b.name));
        let docs: Vec<Vec<String>> = skills.iter().map(fields).collect();
        Catalog {
            scorer: Scorer::new(
                &docs,
                Params {
                    concept_fields: 2,
                    ..Params::default()
                },
            ),
            skills,
            skipped,
            dirs: dirs.to_vec(),
            stamp,
        }
    }

    /// A fresh scan of the same folders.
    pub fn rescan(&self) -> Catalog {
        Catalog::discover(&self.dirs)
    }

    /// Whether a skills folder, a skill folder or a `SKILL.md` changed
    /// (modification time or size) since the scan: one `stat` per path,
    /// no file read. Adding or removing a skill folder changes its
    /// parent's time; replacing a `SKILL.md` changes its folder's time.
    pub fn changed(&self) -> bool {
        self.stamp.iter().any(|(p, old)| stamp_of(p).1 != *old)
    }

    /// The loaded skills, sorted by name.
    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    /// The files that could not be used, in scan order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The folders scanned.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The skill named `name`.
    pub fn get(&self, name: &str) -> Option<&Skill> {
        self.skills
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.skills[i])
    }

    pub fn len(&self) -> usize {
        self.skills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// The index for the stable front of the context: one line per skill,
    /// sorted by name, so it changes only when the skills do. Descriptions
    /// are shortened (all to the same length) to fit `budget_tokens`;
    /// if even names alone do not fit, the last ones are counted instead of
    /// listed. `None` when there is no skill.
    pub fn index_block(&self, budget_tokens: usize) -> Option<String> {
        if self.skills.is_empty() {
            return None;
        }
        let descs: Vec<String> = self
            .skills
            .iter()
            .map(|s| one_line(&s.description))
            .collect();
        let longest = descs.iter().map(|d| d.chars().count()).max().unwrap_or(0);
        let full = render_index(&self.skills, &descs, frontmatter::MAX_DESCRIPTION, None);
        if tokens(&full) <= budget_tokens || longest == 0 {
            return Some(full);
        }
        // The longest per-description cap that fits: binary search.
        let (mut lo, mut hi) = (0usize, longest.min(frontmatter::MAX_DESCRIPTION));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if tokens(&render_index(&self.skills, &descs, mid, None)) <= budget_tokens {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // Under ~24 characters a description says nothing: names only.
        if lo >= 24 {
            return Some(render_index(&self.skills, &descs, lo, None));
        }
        let mut keep = self.skills.len();
        loop {
            let text = render_index(&self.skills, &descs, 0, Some(keep));
            if tokens(&text) <= budget_tokens || keep == 0 {
                return Some(text);
            }
            keep -= 1;
        }
    }

    /// Skills named explicitly in `message` as `/name` or `$name`, in the
    /// order they appear. The sigil must start a word (line start, space or
    /// an opening bracket or quote before it) and the name must end the
    /// word (not followed by `/`, a letter, a digit or `_`): `/joke-teller`
    /// and `($joke-teller)` match, `http://x/joke-teller` and
    /// `/joke-teller/x` do not.
    pub fn explicit(&self, message: &str) -> Vec<&Skill> {
        let mut out: Vec<&Skill> = Vec::new();
        let chars: Vec<(usize, char)> = message.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            if c != '/' && c != '$' {
                continue;
            }
            let starts_word = i == 0 || {
                let p = chars[i - 1].1;
                p.is_whitespace() || "([{\"'`<*_,;".contains(p)
            };
            if !starts_word {
                continue;
            }
            let rest = &message[at + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches('-');
            let after = rest[name.len()..].chars().next();
            let next_after = rest[name.len()..].chars().nth(1);
            let ends_word = match after {
                None => true,
                Some('/' | '_' | '\\') => false,
                Some(c) if c.is_alphanumeric() => false,
                // `/joke-teller.` ends a sentence; `/joke-teller.md` is a file.
                Some('.') => !next_after.is_some_and(char::is_alphanumeric),
                Some(_) => true,
            };
            if !ends_word || name.is_empty() {
                continue;
            }
            if let Some(skill) = self.get(name) {
                if !out.iter().any(|s| s.name == skill.name) {
                    out.push(skill);
                }
            }
        }
        out
    }

    /// Every skill's lexical score for `message` (coverage applied), best
    /// first (ties by name), with the raw hit.
    pub fn scores(&self, message: &str, cfg: &MatchConfig) -> Vec<(&Skill, f32, Hit)> {
        let hits = self.scorer.score(message, &cfg.weights);
        let mut out: Vec<(&Skill, f32, Hit)> = self
            .skills
            .iter()
            .zip(hits)
            .map(|(s, h)| (s, lexical(&h, cfg), h))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.name.cmp(&b.0.name)));
        out
    }

    /// Skills the daemon's own matcher activates for `message`: score at
    /// least `threshold` and at least `relative` times the best, at most
    /// `max_skills`, best first.
    pub fn matched(&self, message: &str, cfg: &MatchConfig) -> Vec<(&Skill, f32)> {
        self.matched_with(message, cfg, None)
    }

    /// [`matched`](Self::matched) with an optional semantic score per
    /// skill (in [`skills`](Self::skills) order, e.g. a cosine similarity),
    /// blended in with `cfg.semantic_weight`. The seam for embeddings.
    pub fn matched_with(
        &self,
        message: &str,
        cfg: &MatchConfig,
        extra: Option<&[f32]>,
    ) -> Vec<(&Skill, f32)> {
        let hits = self.scorer.score(message, &cfg.weights);
        let mut scored: Vec<(&Skill, f32)> = self
            .skills
            .iter()
            .zip(hits)
            .enumerate()
            .map(|(i, (s, h))| {
                let e = extra.and_then(|x| x.get(i).copied());
                (
                    s,
                    relevance::blend(lexical(&h, cfg), e, cfg.semantic_weight),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.name.cmp(&b.0.name)));
        let best = scored.first().map_or(0.0, |(_, s)| *s);
        scored
            .into_iter()
            .filter(|(_, s)| *s >= cfg.threshold && *s >= cfg.relative * best)
            .take(cfg.max_skills)
            .collect()
    }

    /// The debug log line that explains a matching decision: the five best
    /// scores, `*` on those activated.
    /// `skill scores threshold=2.50 top: joke-teller=4.12* translator=0.91`
    pub fn explain(&self, message: &str, cfg: &MatchConfig) -> String {
        let active: Vec<String> = self
            .matched(message, cfg)
            .into_iter()
            .map(|(s, _)| s.name.clone())
            .collect();
        let mut line = format!("skill scores threshold={:.2} top:", cfg.threshold);
        for (s, score, h) in self.scores(message, cfg).into_iter().take(5) {
            if h.score <= 0.0 {
                break;
            }
            let star = if active.contains(&s.name) { "*" } else { "" };
            line.push_str(&format!(
                " {}={score:.2}{star}({:.2} {}/{})",
                s.name, h.score, h.matched, h.known
            ));
        }
        line
    }

    /// A file of skill `skill_name`'s folder, for progressive disclosure:
    /// `rel_path` must be relative with no `..`, must stay inside the
    /// folder once symlinks are resolved, be a regular file of at most
    /// [`MAX_READ_BYTES`], and be UTF-8 text.
    pub fn read_file(&self, skill_name: &str, rel_path: &str) -> Result<String, String> {
        let path = self.resolve(skill_name, rel_path)?;
        let meta = fs::metadata(&path).map_err(|e| format!("'{rel_path}': {e}"))?;
        if !meta.is_file() {
            return Err(format!("'{rel_path}' is not a file"));
        }
        if meta.len() > MAX_READ_BYTES {
            return Err(format!(
                "'{rel_path}' is {} bytes, over the {MAX_READ_BYTES}-byte limit",
                meta.len()
            ));
        }
        let bytes = read_capped(&path, MAX_READ_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|_| format!("'{rel_path}' is not text"))?;
        if text.contains('\0') {
            return Err(format!("'{rel_path}' is not text"));
        }
        Ok(text)
    }

    /// The skill's folder, and `rel_path` inside it: relative with no
    /// `..`, and still inside once symlinks are resolved.
    pub fn resolve(&self, skill_name: &str, rel_path: &str) -> Result<PathBuf, String> {
        let skill = self
            .get(skill_name)
            .ok_or_else(|| format!("no skill named '{skill_name}'"))?;
        let rel = Path::new(rel_path);
        if rel_path.is_empty()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "'{rel_path}' is not a relative path inside the skill (no '..', not absolute)"
            ));
        }
        let root = skill
            .dir
            .canonicalize()
            .map_err(|e| format!("skill folder {}: {e}", skill.dir.display()))?;
        let path = root
            .join(rel)
            .canonicalize()
            .map_err(|e| format!("'{rel_path}': {e}"))?;
        if !path.starts_with(&root) {
            return Err(format!("'{rel_path}' leads outside the skill's folder"));
        }
        Ok(path)
    }
}

/// A hit's score lowered by its coverage of the prompt.
fn lexical(h: &Hit, cfg: &MatchConfig) -> f32 {
    if cfg.coverage_power <= 0.0 {
        h.score
    } else {
        h.score
            * h.coverage()
                .powf(cfg.coverage_power)
                .max(cfg.coverage_floor)
    }
}

/// Loads one skill folder.
fn load(folder: &Path, path: &Path) -> Result<Skill, String> {
    let bytes = read_capped(path, MAX_SKILL_BYTES)?;
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let p = parse(&bytes, &folder_name)?;
    Ok(Skill {
        name: p.name,
        description: p.description,
        path: path.to_path_buf(),
        dir: folder.to_path_buf(),
        license: p.license,
        compatibility: p.compatibility,
        metadata: p.metadata,
        allowed_tools: p.allowed_tools,
        warnings: p.warnings,
        body: p.body,
    })
}

/// Reads at most `max` bytes; a longer file is an error, not a truncation.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}

/// The texts a skill is matched on: name (and folder name when it
/// differs), description, body headings, body prose (code blocks left out:
/// they say how, not what).
fn fields(s: &Skill) -> Vec<String> {
    let mut name = s.name.replace('-', " ");
    if let Some(folder) = s.dir.file_name().map(|f| f.to_string_lossy()) {
        if folder != s.name {
            name.push(' ');
            name.push_str(&folder.replace('-', " "));
        }
    }
    let mut headings = String::new();
    let mut prose = String::new();
    let mut in_code = false;
    for line in s.body.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_code = !in_code;
        } else if in_code {
        } else if t.starts_with('#') {
            headings.push_str(t.trim_start_matches('#'));
            headings.push('\n');
        } else if prose.len() < MAX_INDEXED_BODY {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    vec![name, s.description.clone(), headings, prose]
}

fn tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// Whitespace (newlines of folded or literal scalars included) collapsed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, cut at a word boundary, with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':', '.']))
}

/// The index text: descriptions cut to `max` characters (0: names only),
/// only the first `keep` skills listed when given.
fn render_index(skills: &[Skill], descs: &[String], max: usize, keep: Option<usize>) -> String {
    let mut out = String::from(
        "<available_skills>\nSkills the user can call with /name; a skill's instructions are \
         added when it is used.\n",
    );
    let keep = keep.unwrap_or(skills.len());
    for (s, d) in skills.iter().zip(descs).take(keep) {
        if max == 0 {
            out.push_str(&format!("- {}\n", s.name));
        } else {
            out.push_str(&format!("- {}: {}\n", s.name, shorten(d, max)));
        }
    }
    if keep < skills.len() {
        out.push_str(&format!("- ({} more not listed)\n", skills.len() - keep));
    }
    out.push_str("</available_skills>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh temp folder per test.
    fn temp(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ruster-skills-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_skill(dir: &Path, folder: &str, name: &str, desc: &str, body: &str) {
        fs::create_dir_all(dir.join(folder)).unwrap();
        fs::write(
            dir.join(folder).join(SKILL_FILE),
            format!("---\nname: {name}\ndescription: {desc}\n---\n{body}"),
        )
        .unwrap();
    }

    fn own_fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/skills")
    }

    #[test]
    fn discovers_own_fixtures() {
        let c = Catalog::discover(&[own_fixtures()]);
        let joke = c.get("joke-teller").expect("joke-teller loads");
        assert!(joke.description.to_lowercase().contains("joke"));
        assert!(joke.body.contains('#'));
        assert!(c.skills().windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn earlier_dirs_win_and_clashes_are_skipped_with_a_reason() {
        let (a, b) = (temp("a"), temp("b"));
        write_skill(&a, "x", "x", "first", "");
        write_skill(&b, "x", "x", "second", "");
        write_skill(&b, "y", "x", "third, renamed", "");
        fs::write(b.join("README.md"), "not a skill").unwrap();
        fs::create_dir_all(b.join("empty")).unwrap();
        write_skill(&b.join("z"), "nested", "nested", "one level too deep", "");
        let c = Catalog::discover(&[a.clone(), b.clone(), a.join("missing")]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("x").unwrap().description, "first");
        assert_eq!(c.skipped().len(), 2, "{:?}", c.skipped());
        assert!(c.skipped()[0].reason.contains("already used"));
    }

    #[test]
    fn changed_notices_edits_additions_and_removals() {
        let d = temp("changed");
        write_skill(&d, "x", "x", "one", "");
        let c = Catalog::discover(std::slice::from_ref(&d));
        assert!(!c.changed());
        fs::write(
            d.join("x").join(SKILL_FILE),
            "---\nname: x\ndescription: two!\n---\n",
        )
        .unwrap();
        assert!(c.changed(), "edited in place (size differs)");
        let c = c.rescan();
        assert_eq!(c.get("x").unwrap().description, "two!");
        write_skill(&d, "y", "y", "new", "");
        assert!(c.changed(), "added");
        let c = c.rescan();
        fs::remove_dir_all(d.join("y")).unwrap();
        assert!(c.changed(), "removed");
    }

    #[test]
    fn index_is_sorted_fits_the_budget_and_is_absent_without_skills() {
        let d = temp("index");
        assert_eq!(
            Catalog::discover(std::slice::from_ref(&d)).index_block(100),
            None
        );
        for i in 0..20 {
            write_skill(
                &d,
                &format!("s{i:02}"),
                &format!("s{i:02}"),
                &"word ".repeat(60),
                "",
            );
        }
        let c = Catalog::discover(std::slice::from_ref(&d));
        let full = c.index_block(100_000).unwrap();
        assert!(full.starts_with("<available_skills>") && full.ends_with("</available_skills>"));
        assert!(full.find("- s00:").unwrap() < full.find("- s19:").unwrap());
        for budget in [1000, 400, 150, 20] {
            let text = c.index_block(budget).unwrap();
            assert!(
                tokens(&text) <= budget || budget < 40,
                "{budget}: {}",
                tokens(&text)
            );
            assert_eq!(c.index_block(budget).unwrap(), text, "deterministic");
        }
        assert!(c.index_block(400).unwrap().contains('…'));
        assert!(c.index_block(150).unwrap().contains("- s00\n"));
    }

    #[test]
    fn explicit_names_are_whole_tokens() {
        let d = temp("explicit");
        write_skill(&d, "joke-teller", "joke-teller", "jokes", "");
        write_skill(&d, "bin", "bin", "bins", "");
        let c = Catalog::discover(std::slice::from_ref(&d));
        let names = |m: &str| -> Vec<String> {
            c.explicit(m).into_iter().map(|s| s.name.clone()).collect()
        };
        assert_eq!(names("/joke-teller"), ["joke-teller"]);
        assert_eq!(names("please $joke-teller, now"), ["joke-teller"]);
        assert_eq!(names("(/joke-teller) and /bin."), ["joke-teller", "bin"]);
        assert_eq!(names("/joke-teller /joke-teller"), ["joke-teller"]);
        for none in [
            "http://x/joke-teller",
            "/usr/bin/env",
            "/bin/sh",
            "see a/joke-teller",
            "/joke-teller/x",
            "/joke-teller.md",
            "/joke-tellers",
            "/Joke-teller",
            "cost $5",
        ] {
            assert!(names(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn matching_respects_threshold_and_max() {
        let c = Catalog::discover(&[own_fixtures()]);
        let cfg = MatchConfig::default();
        let names = |m: &str, cfg: &MatchConfig| -> Vec<String> {
            c.matched(m, cfg)
                .into_iter()
                .map(|(s, _)| s.name.clone())
                .collect()
        };
        assert_eq!(names("Tell me a joke", &cfg), ["joke-teller"]);
        assert!(names("who wrote hamlet", &cfg).is_empty());
        let high = MatchConfig {
            threshold: 1000.0,
            ..MatchConfig::default()
        };
        assert!(names("Tell me a joke", &high).is_empty());
        let none = MatchConfig {
            max_skills: 0,
            ..MatchConfig::default()
        };
        assert!(names("Tell me a joke", &none).is_empty());
        // The semantic seam: a big extra score can carry a skill over.
        let extra: Vec<f32> = c
            .skills()
            .iter()
            .map(|s| if s.name == "joke-teller" { 1.0 } else { 0.0 })
            .collect();
        let got = c.matched_with("who wrote hamlet", &cfg, Some(&extra));
        assert_eq!(got[0].0.name, "joke-teller");
        assert!(c.explain("Tell me a joke", &cfg).contains("joke-teller="));
    }

    #[test]
    fn read_file_is_confined_capped_and_text_only() {
        let d = temp("read");
        write_skill(&d, "x", "x", "d", "see references/a.md");
        let x = d.join("x");
        fs::create_dir_all(x.join("references")).unwrap();
        fs::write(x.join("references/a.md"), "# A\n").unwrap();
        fs::write(x.join("big.txt"), "a".repeat(MAX_READ_BYTES as usize + 1)).unwrap();
        fs::write(x.join("bin.dat"), [0u8, 159, 146, 150]).unwrap();
        fs::write(d.join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(d.join("secret.txt"), x.join("link.txt")).unwrap();
        let c = Catalog::discover(std::slice::from_ref(&d));
        assert_eq!(c.read_file("x", "references/a.md").unwrap(), "# A\n");
        assert_eq!(c.read_file("x", "./references/a.md").unwrap(), "# A\n");
        for (path, why) in [
            ("../secret.txt", "not a relative path"),
            ("references/../../secret.txt", "not a relative path"),
            ("/etc/passwd", "not a relative path"),
            ("link.txt", "outside"),
            ("big.txt", "limit"),
            ("bin.dat", "not text"),
            ("references", "not a file"),
            ("nope.md", "No such file"),
            ("", "not a relative path"),
        ] {
            let e = c.read_file("x", path).unwrap_err();
            assert!(e.contains(why), "{path}: {e}");
        }
        assert!(c.read_file("nope", "a").unwrap_err().contains("no skill"));
    }

    #[test]
    fn shorten_cuts_at_words() {
        assert_eq!(shorten("abc def ghi", 20), "abc def ghi");
        assert_eq!(shorten("abc def ghi", 9), "abc def…");
    }
}
