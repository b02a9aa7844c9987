//! How well the daemon's own matcher routes prompts to skills (reason
//! `matched`, no model help), measured on `../shared/routing-dev` and on
//! the project's own paraphrases (`tests/fixtures/skills/routing-extra.jsonl`).
//!
//! Prints precision, recall and the rate of activations on prompts that
//! need no skill, and asserts floors a little below what the matcher
//! reaches, so a regression fails. Also prints discovery time and index
//! cost for 100 skills (printed only: timing depends on the machine).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ruster::skills::{Catalog, MatchConfig};

struct Case {
    prompt: String,
    expect: Vec<String>,
    also_ok: Vec<String>,
}

fn load_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            Case {
                prompt: v["prompt"].as_str().expect("prompt").to_string(),
                expect: list(&v, "expect"),
                also_ok: list(&v, "also_ok"),
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Figures {
    tp: usize,
    fp: usize,
    fn_: usize,
    none_prompts: usize,
    none_activated: usize,
}

impl Figures {
    fn precision(&self) -> f32 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f32 / (self.tp + self.fp) as f32
        }
    }
    fn recall(&self) -> f32 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f32 / (self.tp + self.fn_) as f32
        }
    }
    fn none_rate(&self) -> f32 {
        if self.none_prompts == 0 {
            0.0
        } else {
            self.none_activated as f32 / self.none_prompts as f32
        }
    }
}

/// Runs every case; prints each miss with the scores that explain it.
fn measure(label: &str, catalog: &Catalog, cases: &[Case], cfg: &MatchConfig) -> Figures {
    measure_quietly(label, catalog, cases, cfg, false)
}

fn measure_quietly(
    label: &str,
    catalog: &Catalog,
    cases: &[Case],
    cfg: &MatchConfig,
    quiet: bool,
) -> Figures {
    let mut f = Figures::default();
    for c in cases {
        let got: Vec<String> = catalog
            .matched(&c.prompt, cfg)
            .into_iter()
            .map(|(s, _)| s.name.clone())
            .collect();
        let tp = got.iter().filter(|g| c.expect.contains(g)).count();
        let fp = got
            .iter()
            .filter(|g| !c.expect.contains(g) && !c.also_ok.contains(g))
            .count();
        let fn_ = c.expect.iter().filter(|e| !got.contains(e)).count();
        f.tp += tp;
        f.fp += fp;
        f.fn_ += fn_;
        if c.expect.is_empty() {
            f.none_prompts += 1;
            if fp > 0 {
                f.none_activated += 1;
            }
        }
        if !quiet && (fp > 0 || fn_ > 0) {
            eprintln!(
                "  [{label}] {:?}: expected {:?}, got {:?}\n      {}",
                c.prompt,
                c.expect,
                got,
                catalog.explain(&c.prompt, cfg)
            );
        }
    }
    if quiet {
        return f;
    }
    eprintln!(
        "ROUTING {label}: precision {:.2}, recall {:.2}, no-skill activation rate {:.2} \
         ({} prompts, {} need no skill)",
        f.precision(),
        f.recall(),
        f.none_rate(),
        cases.len(),
        f.none_prompts
    );
    f
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn routing_dev() -> Option<PathBuf> {
    let dir = manifest().join("../shared/routing-dev");
    if dir.join("dev.jsonl").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not found; routing-dev figures not measured",
            dir.display()
        );
        None
    }
}

fn extra_cases() -> Vec<Case> {
    load_cases(&manifest().join("tests/fixtures/skills/routing-extra.jsonl"))
}

fn assert_floors(f: &Figures, precision: f32, recall: f32, none_rate: f32) {
    assert!(
        f.precision() >= precision && f.recall() >= recall && f.none_rate() <= none_rate,
        "regression: precision {:.2} (floor {precision}), recall {:.2} (floor {recall}), \
         no-skill rate {:.2} (ceiling {none_rate})",
        f.precision(),
        f.recall(),
        f.none_rate()
    );
}

#[test]
fn dev_set_routes_well() {
    let Some(dir) = routing_dev() else { return };
    let catalog = Catalog::discover(&[dir.join("skills")]);
    assert_eq!(catalog.len(), 30, "skipped: {:?}", catalog.skipped());
    let f = measure(
        "dev",
        &catalog,
        &load_cases(&dir.join("dev.jsonl")),
        &MatchConfig::default(),
    );
    assert_floors(&f, 0.9, 0.9, 0.17);
}

#[test]
fn extra_set_routes_well_against_the_dev_skills() {
    let Some(dir) = routing_dev() else { return };
    let catalog = Catalog::discover(&[dir.join("skills")]);
    let f = measure(
        "extra/dev-skills",
        &catalog,
        &extra_cases(),
        &MatchConfig::default(),
    );
    assert_floors(&f, 0.88, 0.75, 0.2);
}

/// Runs on a fresh clone: the project's own small skills.
#[test]
fn extra_set_routes_well_against_own_skills() {
    let catalog = Catalog::discover(&[manifest().join("tests/fixtures/skills")]);
    let f = measure(
        "extra/own-skills",
        &catalog,
        &extra_cases(),
        &MatchConfig::default(),
    );
    assert_floors(&f, 0.85, 0.85, 0.25);
}

/// The seed's promise with a lone skill: "Tell me a joke" activates it.
#[test]
fn a_lone_joke_teller_is_matched() {
    let dir = std::env::temp_dir().join(format!("ruster-routing-lone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("joke-teller")).unwrap();
    std::fs::copy(
        manifest().join("tests/fixtures/skills/joke-teller/SKILL.md"),
        dir.join("joke-teller/SKILL.md"),
    )
    .unwrap();
    let catalog = Catalog::discover(std::slice::from_ref(&dir));
    let cfg = MatchConfig::default();
    for (prompt, hit) in [
        ("Tell me a joke", true),
        ("make me laugh", true),
        ("what time is it in tokyo", false),
    ] {
        let got = catalog.matched(prompt, &cfg);
        assert_eq!(
            !got.is_empty(),
            hit,
            "{prompt}: {}",
            catalog.explain(prompt, &cfg)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Discovery time and index cost with 100 skills (routing-dev ×4, renamed
/// so all load). Printed only.
#[test]
fn hundred_skills_discovery_and_index_cost() {
    let Some(dir) = routing_dev() else { return };
    let tmp = std::env::temp_dir().join(format!("ruster-100-skills-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut n = 0;
    'copy: for round in 0..4 {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir.join("skills"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("SKILL.md").is_file())
            .collect();
        folders.sort();
        for f in folders {
            if n == 100 {
                break 'copy;
            }
            let text = std::fs::read_to_string(f.join("SKILL.md")).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let new = format!("{name}-{round}");
            // Rename in the front matter too, so the copies do not clash.
            let text = text
                .lines()
                .map(|l| {
                    if l.starts_with("name:") {
                        format!("name: {new}")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::create_dir_all(tmp.join(&new)).unwrap();
            std::fs::write(tmp.join(&new).join("SKILL.md"), text).unwrap();
            n += 1;
        }
    }
    // Warm the page cache once, then time a cold-process-like scan.
    let _ = Catalog::discover(std::slice::from_ref(&tmp));
    let t = Instant::now();
    let catalog = Catalog::discover(std::slice::from_ref(&tmp));
    let discover = t.elapsed();
    let t = Instant::now();
    let changed = catalog.changed();
    let check = t.elapsed();
    assert_eq!(catalog.len(), 100, "{:?}", catalog.skipped());
    assert!(!changed);
    let full = catalog.index_block(usize::MAX).unwrap();
    let fitted = catalog.index_block(2000).unwrap();
    let bodies: usize = catalog.skills().iter().map(|s| s.body.len()).sum();
    let t = Instant::now();
    let _ = catalog.matched("what's the weather like in berlin", &MatchConfig::default());
    let matching = t.elapsed();
    eprintln!(
        "SKILLS x100: discovery {:.1} ms, changed() {:.0} µs, match one prompt {:.2} ms, \
         index {} tokens in full, {} tokens within a 2000 budget, bodies {} KB in memory",
        discover.as_secs_f64() * 1000.0,
        check.as_secs_f64() * 1e6,
        matching.as_secs_f64() * 1000.0,
        full.len().div_ceil(4),
        fitted.len().div_ceil(4),
        bodies / 1024
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A sweep of the matcher's knobs, for tuning by hand:
/// `cargo test --test skill_routing tune -- --ignored --nocapture`.
/// Dev is split in halves (odd and even lines) so a setting chosen on one
/// half can be checked on the other.
#[test]
#[ignore]
fn tune() {
    let Some(dir) = routing_dev() else { return };
    let dev_skills = Catalog::discover(&[dir.join("skills")]);
    let own = Catalog::discover(&[manifest().join("tests/fixtures/skills")]);
    let dev = load_cases(&dir.join("dev.jsonl"));
    let (odd, even): (Vec<_>, Vec<_>) = dev.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let odd: Vec<Case> = odd.into_iter().map(|(_, c)| c).collect();
    let even: Vec<Case> = even.into_iter().map(|(_, c)| c).collect();
    let extra = extra_cases();
    for threshold in [1.6f32, 1.8, 2.0, 2.2, 2.5] {
        for coverage_power in [0.0f32, 0.5, 0.75, 1.0] {
            for relative in [0.8f32, 0.9] {
                let cfg = MatchConfig {
                    threshold,
                    coverage_power,
                    relative,
                    ..MatchConfig::default()
                };
                let row: Vec<String> = [
                    measure_quietly("", &dev_skills, &odd, &cfg, true),
                    measure_quietly("", &dev_skills, &even, &cfg, true),
                    measure_quietly("", &dev_skills, &extra, &cfg, true),
                    measure_quietly("", &own, &extra, &cfg, true),
                ]
                .iter()
                .map(|f| {
                    format!(
                        "{:.2}/{:.2}/{:.2}",
                        f.precision(),
                        f.recall(),
                        f.none_rate()
                    )
                })
                .collect();
                eprintln!(
                    "t={threshold} cov={coverage_power} rel={relative}: {}",
                    row.join("  ")
                );
            }
        }
    }
}
