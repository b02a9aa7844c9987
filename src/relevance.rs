//! Lexical relevance: how well a short query matches each of a few hundred
//! documents made of weighted fields. Skills use it now (name, description,
//! headings, body); long-term memory will use it later (memory text).
//!
//! Policy: users paraphrase. "make me laugh" shares no word with "Tells
//! funny programming jokes", so plain BM25 over the words finds little.
//! Four cheap layers close most of the gap, all deterministic and offline:
//!
//! 1. tokens are lowercased, split on anything that is not a letter or a
//!    digit (Unicode-aware), stop words dropped;
//! 2. a light stemmer folds plurals and common suffixes (`jokes`, `joking`
//!    → `jok`; `planner`, `planning` → `plan`);
//! 3. a small built-in concept table adds a concept term (`~humor`) next to
//!    every word of a group (joke, funny, laugh, pun, ...), on both the
//!    query and the documents, so paraphrases meet on the concept;
//! 4. a query word of 5+ letters that no document contains is corrected to
//!    a known word one edit away (`wether` → `weather`).
//!
//! Scoring is BM25F: each field's term counts are length-normalised and
//! weighted before the usual BM25 saturation, so a word in a skill's name
//! counts more than the same word deep in a 30 KB body. IDF is computed as
//! if the collection also held [`Params::background_docs`] unrelated
//! documents: a user with one skill gets the same score scale as a user
//! with thirty, so one threshold works for both.
//!
//! The seam for semantic similarity (embeddings) is [`blend`]: the caller
//! adds its own per-document score; nothing here calls a model.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Tuning knobs of the scorer itself (not of what a caller does with the
/// scores).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// BM25 term-frequency saturation. Lower: repeated words count less.
    pub k1: f32,
    /// BM25 length normalisation, 0 (none) to 1 (full).
    pub b: f32,
    /// Unrelated documents the IDF pretends exist, so scores do not depend
    /// on how many documents there are.
    pub background_docs: f32,
    /// Weight of a concept term (`~humor`) relative to a word.
    pub concept_weight: f32,
    /// Weight of a typo-corrected word relative to a word typed right.
    pub fuzzy_weight: f32,
    /// Weight of a weak word ("work", "write", "new": see [`WEAK_WORDS`])
    /// in a query. Weak words are neutral for coverage.
    pub weak_weight: f32,
    /// Shortest word that is typo-corrected (shorter words have too many
    /// neighbours one edit away).
    pub fuzzy_min_len: usize,
    /// Concept terms are added to the first this many fields of a document
    /// only: a skill is *about* humor when its name or description says
    /// so, not when its long body mentions a language in passing.
    pub concept_fields: usize,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            k1: 1.2,
            b: 0.75,
            background_docs: 20.0,
            concept_weight: 1.0,
            fuzzy_weight: 0.8,
            weak_weight: 0.3,
            fuzzy_min_len: 5,
            concept_fields: usize::MAX,
        }
    }
}

/// The score of one document for one query.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hit {
    /// The BM25F score: 0 when nothing matched, about 2-4 per well-matched
    /// rare word.
    pub score: f32,
    /// Distinct query words (not concept terms) found in the document,
    /// directly, through a concept or through a typo correction.
    pub matched: usize,
    /// Distinct content words in the query (stop words excluded).
    pub words: usize,
    /// Of those, the words some document contains (after typo
    /// correction): a word no document knows (a city, a name) says
    /// nothing against a document; a known word left unmatched does.
    pub known: usize,
}

impl Hit {
    /// The share of the query's known words this document matched, 0 to 1
    /// (1 when the query has no known word).
    pub fn coverage(&self) -> f32 {
        if self.known == 0 {
            1.0
        } else {
            (self.matched as f32 / self.known as f32).min(1.0)
        }
    }
}

/// An index over documents whose fields are given in the same order for
/// every document (field 0 = name, 1 = description, ... for skills).
#[derive(Debug, Clone)]
pub struct Scorer {
    params: Params,
    fields: usize,
    /// Term → id.
    terms: HashMap<String, u32>,
    /// Documents containing each term id.
    df: Vec<u32>,
    /// Per document, per field: sorted (term id, count).
    docs: Vec<Vec<Vec<(u32, u16)>>>,
    /// Per document, per field: tokens.
    lens: Vec<Vec<u32>>,
    avg_len: Vec<f32>,
    /// Surface words seen in the documents (lowercased), for typo
    /// correction.
    words: Vec<String>,
}

impl Scorer {
    /// Indexes `docs`, each a list of field texts (missing trailing fields
    /// count as empty).
    pub fn new<S: AsRef<str>>(docs: &[Vec<S>], params: Params) -> Scorer {
        let fields = docs.iter().map(Vec::len).max().unwrap_or(0);
        let mut s = Scorer {
            params,
            fields,
            terms: HashMap::new(),
            df: Vec::new(),
            docs: Vec::with_capacity(docs.len()),
            lens: Vec::with_capacity(docs.len()),
            avg_len: vec![0.0; fields],
            words: Vec::new(),
        };
        let mut surface: std::collections::BTreeSet<String> = Default::default();
        let mut cache: HashMap<String, Vec<(u32, bool)>> = HashMap::new();
        for doc in docs {
            let mut per_field = Vec::with_capacity(fields);
            let mut lens = Vec::with_capacity(fields);
            let mut seen: Vec<u32> = Vec::new();
            for f in 0..fields {
                let text = doc.get(f).map(AsRef::as_ref).unwrap_or("");
                let mut counts: HashMap<u32, u16> = HashMap::new();
                let mut len = 0u32;
                for word in words(text) {
                    // Words repeat a lot: stem and look up each one once.
                    let ids = match cache.get(&word) {
                        Some(ids) => ids,
                        None => {
                            if word.chars().count() >= s.params.fuzzy_min_len {
                                surface.insert(word.clone());
                            }
                            let ids: Vec<(u32, bool)> = expand(&word)
                                .into_iter()
                                .map(|(t, _)| {
                                    let concept = t.starts_with('~');
                                    (s.intern(t), concept)
                                })
                                .collect();
                            cache.entry(word).or_insert(ids)
                        }
                    };
                    for &(id, concept) in ids {
                        if concept && f >= s.params.concept_fields {
                            continue;
                        }
                        let c = counts.entry(id).or_insert(0);
                        *c = c.saturating_add(1);
                        len += 1;
                    }
                }
                let mut v: Vec<(u32, u16)> = counts.into_iter().collect();
                v.sort_unstable();
                seen.extend(v.iter().map(|(t, _)| *t));
                s.avg_len[f] += len as f32;
                lens.push(len);
                per_field.push(v);
            }
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                s.df[t as usize] += 1;
            }
            s.docs.push(per_field);
            s.lens.push(lens);
        }
        let n = docs.len().max(1) as f32;
        for a in &mut s.avg_len {
            *a = (*a / n).max(1.0);
        }
        s.words = surface.into_iter().collect();
        s
    }

    fn intern(&mut self, term: String) -> u32 {
        if let Some(&id) = self.terms.get(&term) {
            return id;
        }
        let id = self.df.len() as u32;
        self.terms.insert(term, id);
        self.df.push(0);
        id
    }

    /// How many documents are indexed.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn idf(&self, id: u32) -> f32 {
        let n = self.docs.len() as f32 + self.params.background_docs;
        let df = self.df[id as usize] as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The query's weighted terms, each with the query words it came
    /// from (a bit per word, the first 64 words), the number of distinct
    /// words, and how many of them the collection knows.
    fn query_terms(&self, query: &str) -> (Vec<(u32, f32, u64)>, usize, usize) {
        let mut out: Vec<(u32, f32, u64)> = Vec::new();
        let mut seen_words: Vec<String> = Vec::new();
        let mut known_words = 0;
        for word in words(query) {
            if seen_words.contains(&word) {
                continue;
            }
            seen_words.push(word.clone());
            let weak = is_weak_word(&word);
            // Weak words never count as matched: their bit is out of range.
            let bit = if weak {
                0
            } else {
                1u64 << ((seen_words.len() - 1) % 64)
            };
            let mut expanded = expand(&word);
            let known = expanded.iter().any(|(t, _)| self.terms.contains_key(t));
            if !known && word.chars().count() >= self.params.fuzzy_min_len {
                if let Some(fixed) = self.correct(&word) {
                    expanded = expand(fixed)
                        .into_iter()
                        .map(|(t, wt)| (t, wt * self.params.fuzzy_weight))
                        .collect();
                }
            }
            // Known: some document has it, or the concept table does (a
            // topic word no skill covers, like "stock", is evidence the
            // prompt is about something else).
            let topical = expanded.iter().any(|(t, _)| t.starts_with('~'));
            if !weak && (topical || expanded.iter().any(|(t, _)| self.terms.contains_key(t))) {
                known_words += 1;
            }
            for (term, wt) in expanded {
                let mut wt = if term.starts_with('~') {
                    wt * self.params.concept_weight
                } else {
                    wt
                };
                if weak {
                    wt *= self.params.weak_weight;
                }
                if let Some(&id) = self.terms.get(&term) {
                    match out.iter_mut().find(|(t, _, _)| *t == id) {
                        Some(e) => {
                            e.1 = e.1.max(wt);
                            e.2 |= bit;
                        }
                        None => out.push((id, wt, bit)),
                    }
                }
            }
        }
        (out, seen_words.len(), known_words)
    }

    /// A known word one edit (insert, delete, substitute, swap) away, the
    /// first in sorted order: deterministic.
    fn correct(&self, word: &str) -> Option<&str> {
        let wl = word.chars().count();
        self.words
            .iter()
            .chain(concept_words())
            .filter(|c| c.chars().count().abs_diff(wl) <= 1)
            .find(|c| within_one_edit(word, c))
            .map(String::as_str)
    }

    /// Scores every document for `query` with per-field `weights` (missing
    /// weights count as 0), in document order.
    pub fn score(&self, query: &str, weights: &[f32]) -> Vec<Hit> {
        let (terms, nwords, known) = self.query_terms(query);
        let (k1, b) = (self.params.k1, self.params.b);
        let idf: Vec<f32> = terms.iter().map(|(id, _, _)| self.idf(*id)).collect();
        self.docs
            .iter()
            .zip(&self.lens)
            .map(|(fields, lens)| {
                let mut score = 0.0;
                let mut matched = 0u64;
                for (i, (id, qw, bits)) in terms.iter().enumerate() {
                    let mut tf = 0.0;
                    for f in 0..self.fields {
                        let w = weights.get(f).copied().unwrap_or(0.0);
                        if w <= 0.0 {
                            continue;
                        }
                        if let Ok(pos) = fields[f].binary_search_by_key(id, |(t, _)| *t) {
                            let c = fields[f][pos].1 as f32;
                            let norm = 1.0 - b + b * lens[f] as f32 / self.avg_len[f];
                            tf += w * c / norm;
                        }
                    }
                    if tf > 0.0 {
                        score += qw * idf[i] * tf / (k1 + tf);
                        matched |= bits;
                    }
                }
                Hit {
                    score,
                    matched: matched.count_ones() as usize,
                    words: nwords,
                    known,
                }
            })
            .collect()
    }
}

/// Blends a lexical score with an optional semantic one (e.g. a cosine
/// similarity in 0..1 scaled by the caller): `lexical + weight * extra`.
/// Without `extra` the lexical score is returned unchanged, so a daemon
/// with no embedding model behaves exactly as the lexical path alone.
pub fn blend(lexical: f32, extra: Option<f32>, weight: f32) -> f32 {
    lexical + extra.map_or(0.0, |e| weight * e)
}

/// The content words of `text`: lowercased, split on anything that is not
/// alphanumeric, stop words and pure numbers dropped. An apostrophe inside
/// a word is dropped with what follows (`what's` → `what`).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let raw = raw.split(['\'', '’']).next().unwrap_or("");
        if raw.is_empty() || raw.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let w = raw.to_lowercase();
        // `helped` is as empty as `help`.
        if w.chars().count() < 2 || is_stop_word(&w) || is_stop_word(&stem(&w)) {
            continue;
        }
        out.push(w);
    }
    out
}

/// A word's index terms: its stem (weight 1) and its concepts (weight 1,
/// scaled later by [`Params::concept_weight`]).
fn expand(word: &str) -> Vec<(String, f32)> {
    let s = stem(word);
    let mut out = Vec::with_capacity(2);
    if let Some(concepts) = concept_index().get(&s) {
        for c in concepts {
            out.push((format!("~{c}"), 1.0));
        }
    }
    out.insert(0, (s, 1.0));
    out
}

/// A light suffix stemmer for English: plurals, then one common suffix,
/// then a final `e`/`y` and a doubled consonant. Crude on purpose: it only
/// has to map a word and its usual variants to the same string.
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 {
        return word.to_string();
    }
    let mut w = word.to_string();
    // Plurals and third person.
    if w.ends_with("ies") && w.len() > 4 {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if ["sses", "xes", "ches", "shes", "zes"]
        .iter()
        .any(|suf| w.ends_with(suf))
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.pop();
    }
    // One derivational or inflectional suffix, keeping a stem of 3+.
    const SUFFIXES: &[&str] = &[
        "ments", "ment", "ness", "ings", "ing", "ers", "er", "ed", "ly", "ful", "able", "ible",
        "ive", "ize", "ise", "ion", "est",
    ];
    for suf in SUFFIXES {
        if w.len() >= suf.len() + 3 && w.ends_with(suf) {
            w.truncate(w.len() - suf.len());
            break;
        }
    }
    if w.len() > 3 && (w.ends_with('e') || w.ends_with('y')) {
        w.pop();
    }
    let b = w.as_bytes();
    if b.len() > 3 && b[b.len() - 1] == b[b.len() - 2] && !b"aeiouls".contains(&b[b.len() - 1]) {
        w.pop();
    }
    w
}

/// Whether `a` and `b` differ by at most one insertion, deletion,
/// substitution or swap of two neighbours.
fn within_one_edit(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return one_edit(a.as_bytes(), b.as_bytes());
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    one_edit(&a, &b)
}

fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if short.len() == long.len() {
        // Substitution, or swap of two neighbours.
        if short[prefix + 1..] == long[prefix + 1..] {
            return true;
        }
        prefix + 1 < short.len()
            && short[prefix] == long[prefix + 1]
            && short[prefix + 1] == long[prefix]
            && short[prefix + 2..] == long[prefix + 2..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

/// Words too common to say anything about what the user wants, including
/// the boilerplate of skill descriptions ("Use when the user asks").
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "ask",
    "asked",
    "asks",
    "at",
    "be",
    "been",
    "before",
    "being",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "for",
    "from",
    "get",
    "give",
    "go",
    "going",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "hello",
    "help",
    "her",
    "here",
    "hey",
    "hi",
    "him",
    "his",
    "how",
    "i",
    "if",
    "im",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "let",
    "lets",
    "like",
    "me",
    "mine",
    "more",
    "most",
    "much",
    "must",
    "my",
    "need",
    "needs",
    "no",
    "not",
    "now",
    "of",
    "off",
    "ok",
    "okay",
    "on",
    "one",
    "or",
    "other",
    "our",
    "out",
    "please",
    "pls",
    "plz",
    "really",
    "right",
    "she",
    "should",
    "so",
    "some",
    "something",
    "such",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "this",
    "those",
    "to",
    "today",
    "tonight",
    "tomorrow",
    "yesterday",
    "too",
    "up",
    "us",
    "use",
    "used",
    "user",
    "users",
    "uses",
    "using",
    "very",
    "want",
    "wants",
    "was",
    "way",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "you",
    "your",
    "yours",
    "claude",
    "whenever",
    "via",
    "etc",
    "eg",
    "ie",
    "tell",
    "show",
    "make",
    "can't",
    "cant",
    "dont",
    "don",
    "won",
    "ll",
    "ve",
    "re",
    "should",
    "gonna",
    "wanna",
    "maybe",
    "there",
    "thx",
    "ty",
];

fn is_stop_word(w: &str) -> bool {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOP_WORDS.iter().copied().collect())
        .contains(w)
}

/// Words that carry a little meaning but mostly pad a request ("write",
/// "start", "new", "work", "good"): kept with a low weight, and never
/// counted for or against coverage.
pub const WEAK_WORDS: &[&str] = &[
    "work", "works", "working", "write", "writing", "start", "starting", "keep", "find", "look",
    "looks", "looking", "take", "time", "times", "day", "days", "week", "weeks", "new", "good",
    "great", "best", "better", "list", "create", "set", "run", "check", "put", "see", "next",
    "try", "idea", "ideas", "message", "change", "changes", "file", "files", "long", "short",
    "little", "bit", "lot", "lots", "back", "still", "ever", "bad", "nice", "person", "people",
    "stuff", "call", "morning", "evening", "night", "hour", "hours", "minute", "minutes", "went",
    "come", "came", "home", "first", "last", "first", "year", "years", "many", "few", "every",
    "each", "sure", "well", "today's", "able", "tell", "told", "ready", "thought", "think",
];

fn is_weak_word(w: &str) -> bool {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| WEAK_WORDS.iter().copied().collect())
        .contains(w)
}

/// Concepts: groups of words people use for the same need. Written from
/// how people ask for things, not from any test prompt; a word may belong
/// to several groups. Each group adds one `~name` term.
const CONCEPTS: &[(&str, &str)] = &[
    ("humor", "joke jokes joking funny funniest laugh laughs laughing humor humour humorous pun puns comedy comedian comic hilarious amuse amusing chuckle giggle lol lmao gag witty wit silly riddle cheer"),
    ("weather", "weather forecast rain raining rainy snow snowing sunny sunshine temperature umbrella wind windy storm stormy thunderstorm cloudy hot cold chilly freezing humid humidity heatwave outside jacket coat drizzle fog foggy"),
    ("translate", "translate translation translator translating language languages french spanish german italian portuguese japanese chinese mandarin cantonese korean russian arabic dutch hindi greek turkish polish swedish norwegian danish finnish hebrew vietnamese thai idiom idioms phrase pronounce pronunciation"),
    ("convert", "convert conversion converter converting unit units mile miles km kilometer kilometre kilometers kg kilo kilogram kilograms pound pounds lb lbs ounce ounces oz gram grams liter litre liters litres ml gallon gallons cup cups tablespoon teaspoon inch inches cm centimeter feet foot meter metre meters mph kmh fahrenheit celsius currency currencies exchange dollar dollars euro euros usd eur gbp yen timezone"),
    ("focus", "focus focused concentrate concentration pomodoro timer countdown stopwatch timebox distracted distraction distractions procrastinate procrastinating procrastination productive productivity interval intervals deep-work"),
    ("cook", "recipe recipes cook cooking dinner lunch breakfast supper meal meals dish dishes ingredient ingredients bake baking grocery groceries vegetarian vegan fridge leftovers pasta rice chicken beef tofu eggs potato potatoes tomato tomatoes soup salad curry snack"),
    ("money", "expense expenses spent spend spending budget budgeting cost costs paid pay payment bought buy purchase purchased money bucks cash receipt bill bills income salary finances afford"),
    ("journal", "journal journaling diary reflect reflection gratitude grateful mood feelings emotions vent"),
    ("email", "email emails e-mail mail inbox reply replies respond draft letter recipient cc follow-up"),
    ("git", "git commit commits committing staged stage diff repo repository branch"),
    ("github", "github gh pr prs pull review reviewer reviewers"),
    ("shell", "shell bash zsh fish terminal command commands cli one-liner flag flags pipe grep sed awk chmod chown sudo xargs curl rm ls tar find"),
    ("meeting", "meeting meetings transcript standup stand-up recap agenda sync notes"),
    ("travel", "travel traveling travelling trip trips itinerary vacation holiday holidays visit visiting sightseeing sights tour tourist journey flight flights hotel destination abroad getaway honeymoon backpacking"),
    ("image", "image images picture pictures photo drawing draw illustration illustrate icon icons logo sprite sprites artwork render wallpaper avatar sketch paint painting"),
    ("study", "exam exams quiz study studying revise revision syllabus flashcards midterm coursework lecture"),
    ("design", "design ui ux interface layout typography font fonts css styling aesthetic landing"),
    ("a11y", "accessibility accessible a11y wcag contrast aria"),
    ("react", "react component components props jsx hooks"),
    ("monitor", "monitor monitoring metrics prometheus grafana observability dashboard dashboards telemetry"),
    ("access", "role roles rbac permission permissions iam privilege privileges"),
    ("brand", "brand branding colors colours palette typography"),
    ("comms", "newsletter announcement memo faq faqs update updates"),
    // Topics no skill of the dev set covers, listed so that their words
    // count against a skill that matched only a neighbour ("forecast").
    ("finance", "stock stocks market markets shares investing invest investment investor crypto bitcoin economy economic inflation mortgage portfolio"),
    ("testing", "playwright e2e browser screenshot screenshots selenium puppeteer"),
];

/// Stem → concepts, built once.
fn concept_index() -> &'static HashMap<String, Vec<&'static str>> {
    static INDEX: OnceLock<HashMap<String, Vec<&'static str>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m: HashMap<String, Vec<&'static str>> = HashMap::new();
        for (concept, list) in CONCEPTS {
            for w in list.split_whitespace() {
                for part in w.split('-') {
                    let e = m.entry(stem(part)).or_default();
                    if !e.contains(concept) {
                        e.push(concept);
                    }
                }
            }
        }
        m
    })
}

/// Every word of the concept table, for typo correction.
fn concept_words() -> std::slice::Iter<'static, String> {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            let mut v: Vec<String> = CONCEPTS
                .iter()
                .flat_map(|(_, l)| l.split_whitespace())
                .filter(|w| w.len() >= 5 && !w.contains('-'))
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        })
        .iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &[f32] = &[3.0, 1.0];

    fn scorer(docs: &[(&str, &str)]) -> Scorer {
        let docs: Vec<Vec<&str>> = docs.iter().map(|(a, b)| vec![*a, *b]).collect();
        Scorer::new(&docs, Params::default())
    }

    #[test]
    fn words_drop_stop_words_numbers_and_apostrophes() {
        assert_eq!(
            words("What's the Weather like in Zürich, 2026?"),
            ["weather", "zürich"]
        );
    }

    #[test]
    fn stemmer_folds_variants_together() {
        for group in [
            &["joke", "jokes", "joking"][..],
            &["plan", "plans", "planner", "planning"],
            &["recipe", "recipes"],
            &["translate", "translation", "translated"],
            &["convert", "converter", "converted", "converting"],
            &["category", "categories"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(
                stems.iter().all(|s| *s == stems[0]),
                "{group:?} → {stems:?}"
            );
        }
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit("wether", "weather"));
        assert!(within_one_edit("recipie", "recipe"));
        assert!(within_one_edit("transalte", "translate"));
        assert!(!within_one_edit("weather", "leather!"));
        assert!(!within_one_edit("abcde", "edcba"));
    }

    #[test]
    fn paraphrase_meets_through_a_concept() {
        let s = scorer(&[
            ("joke-teller", "Tells funny programming jokes."),
            ("weather-lookup", "Looks up the forecast for a city."),
        ]);
        let hits = s.score("make me laugh", W);
        assert!(hits[0].score > 0.5 && hits[1].score == 0.0, "{hits:?}");
        let hits = s.score("will it rain tomorrow", W);
        assert!(hits[1].score > 0.5 && hits[0].score == 0.0, "{hits:?}");
    }

    #[test]
    fn typos_are_corrected_once_long_enough() {
        let s = scorer(&[("weather-lookup", "Looks up the weather.")]);
        assert!(s.score("wether in lyon", W)[0].score > 0.5);
        assert_eq!(s.score("wth", W)[0].score, 0.0);
    }

    #[test]
    fn score_scale_does_not_depend_on_collection_size() {
        let one = scorer(&[("joke-teller", "Tells funny jokes.")]);
        let mut many: Vec<(&str, &str)> = vec![("joke-teller", "Tells funny jokes.")];
        many.extend([("a", "alpha things"), ("b", "beta stuff"), ("c", "gamma")]);
        let many = scorer(&many);
        let (x, y) = (
            one.score("a joke", W)[0].score,
            many.score("a joke", W)[0].score,
        );
        assert!((x - y).abs() / y < 0.25, "{x} vs {y}");
    }

    #[test]
    fn blend_without_extra_is_lexical() {
        assert_eq!(blend(1.5, None, 2.0), 1.5);
        assert_eq!(blend(1.5, Some(0.5), 2.0), 2.5);
    }

    #[test]
    fn empty_inputs_are_fine() {
        let s = Scorer::new::<&str>(&[], Params::default());
        assert!(s.score("anything", W).is_empty());
        let s = scorer(&[("x", "")]);
        assert_eq!(s.score("", W)[0], Hit::default());
    }
}
