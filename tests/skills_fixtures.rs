//! The skill loader against real published skills and synthetic broken
//! ones: `../shared/fixtures/skills/` (every folder must load) and
//! `../shared/fixtures/skills-broken/` (each case ends as its
//! `expected.json` says; where it offers a choice, the choice made is the
//! one documented in `docs/skills.md`).

use std::path::PathBuf;

use ruster::skills::{Catalog, SKILL_FILE};

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.join("skills").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not found; skill fixtures not tested",
            dir.display()
        );
        None
    }
}

#[test]
fn every_real_skill_loads() {
    let Some(dir) = fixtures() else { return };
    let roots: Vec<PathBuf> = [
        "anthropics",
        "openai",
        "vercel-labs",
        "github-awesome-copilot",
    ]
    .iter()
    .map(|r| dir.join("skills").join(r))
    .collect();
    let catalog = Catalog::discover(&roots);
    assert!(catalog.skipped().is_empty(), "{:#?}", catalog.skipped());
    let folders: usize = roots
        .iter()
        .map(|r| {
            std::fs::read_dir(r)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.path().join(SKILL_FILE).is_file())
                .count()
        })
        .sum();
    assert_eq!(catalog.len(), folders, "one skill per folder");

    // Spot checks on the quirks the fixtures README lists.
    let get = |n: &str| catalog.get(n).unwrap_or_else(|| panic!("{n} missing"));
    let template = get("template-skill");
    assert!(
        template.warnings[0].contains("differs from its folder"),
        "{:?}",
        template.warnings
    );
    assert!(get("vercel-composition-patterns")
        .description
        .starts_with("React composition"));
    let api = get("claude-api");
    assert!(api.description.chars().count() > 1024);
    assert!(api.warnings.iter().any(|w| w.contains("over the spec")));
    assert!(
        !get("exam-ready").description.ends_with('\n'),
        "folded scalar trimmed"
    );
    assert_eq!(
        get("qdrant-monitoring").allowed_tools,
        ["Read", "Grep", "Glob"]
    );
    assert_eq!(
        get("azure-role-selector").allowed_tools[0],
        "Azure MCP/documentation"
    );
    assert_eq!(get("git-commit").allowed_tools, ["Bash"]);
    assert_eq!(
        get("audit-integrity").metadata.as_ref().unwrap()["version"],
        "1.0"
    );
    assert!(get("audit-integrity").compatibility.is_some());
    assert_eq!(
        get("web-design-guidelines").metadata.as_ref().unwrap()["argument-hint"],
        "<file-or-pattern>"
    );
    assert!(get("gh-address-comments").metadata.as_ref().unwrap()["short-description"].is_string());
    assert_eq!(
        get("brand-guidelines").license.as_deref(),
        Some("Complete terms in LICENSE.txt")
    );
    // Nested sub-skills one level down are resources, not skills.
    assert!(catalog.get("qdrant-monitoring-debugging").is_none());
    // Progressive disclosure reaches bundled references.
    let text = catalog
        .read_file("audit-integrity", "references")
        .unwrap_err();
    assert!(text.contains("not a file"), "{text}");
    let refs = std::fs::read_dir(get("audit-integrity").dir.join("references"))
        .unwrap()
        .filter_map(Result::ok)
        .next()
        .unwrap()
        .file_name();
    let rel = format!("references/{}", refs.to_string_lossy());
    assert!(!catalog
        .read_file("audit-integrity", &rel)
        .unwrap()
        .is_empty());
    assert!(catalog
        .read_file("audit-integrity", "../../anthropics/template/SKILL.md")
        .is_err());
}

#[test]
fn broken_skills_end_as_expected() {
    let Some(dir) = fixtures() else { return };
    let root = dir.join("skills-broken");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).unwrap())
            .unwrap();
    let catalog = Catalog::discover(std::slice::from_ref(&root));
    let mut report = Vec::new();
    for (case, want) in expected.as_object().unwrap() {
        let suggested = want["suggested"].as_str().unwrap();
        let path = root.join(case).join(SKILL_FILE);
        let loaded = catalog.skills().iter().find(|s| s.dir == root.join(case));
        let skipped = catalog.skipped().iter().find(|s| s.path == path);
        // Our choices where expected.json offers one: huge descriptions
        // and mismatched names load with a warning; duplicate keys are
        // refused (strict YAML); `skill.md` is not `SKILL.md` (ignored).
        let outcome = match (loaded, skipped) {
            (Some(s), None) if s.warnings.is_empty() => "load",
            (Some(_), None) => "load-with-warning",
            (None, Some(_)) => "skip-with-warning",
            (None, None) => "ignore",
            _ => "both?",
        };
        let ok = match case.as_str() {
            "huge-description" | "name-mismatch" => outcome == "load-with-warning",
            "lowercase-filename" | "no-skill-file" => outcome == "ignore",
            _ => suggested.starts_with(outcome),
        };
        if let (Some(s), Some(name)) = (loaded, want.get("name").and_then(|n| n.as_str())) {
            assert_eq!(s.name, name, "{case}");
        }
        if let Some(s) = skipped {
            eprintln!("  {case}: skipped: {}", s.reason);
        }
        if !ok {
            report.push(format!("{case}: suggested {suggested:?}, got {outcome}"));
        }
    }
    assert!(report.is_empty(), "{report:#?}");
    // Nothing in skills-broken beyond expected.json's cases.
    assert_eq!(
        catalog.skills().len() + catalog.skipped().len(),
        expected.as_object().unwrap().len() - 2,
        "lowercase-filename and no-skill-file are ignored"
    );
}
