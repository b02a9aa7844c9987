//! One `SKILL.md`: YAML front matter between two `---` lines, then a
//! Markdown body (the Agent Skills format, <https://agentskills.io>).
//!
//! Policy: strict when reporting, lenient when loading. Real published
//! skills break the spec (Anthropic's `claude-api` description is over
//! 1,024 characters; several names differ from their folders), so those
//! load with a warning. A file that cannot be used at all is refused with
//! one reason: not UTF-8, empty, no front matter at the first line, no
//! closing `---`, YAML that does not parse (duplicate keys included), no
//! `name` or `description`, a description that is not text, a name of
//! characters other than `a-z`, `0-9` and single hyphens.

use std::fmt::Write as _;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// Longest `name` the spec allows.
pub const MAX_NAME: usize = 64;
/// Longest `description` the spec allows (longer loads with a warning).
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest `compatibility` the spec allows (longer loads with a warning).
pub const MAX_COMPATIBILITY: usize = 500;

/// A usable `SKILL.md`, with what was wrong but tolerated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub name: String,
    /// Trimmed; a folded scalar's trailing newline is gone.
    pub description: String,
    pub license: Option<String>,
    pub compatibility: Option<String>,
    /// The `metadata` map as JSON (any YAML shape is kept).
    pub metadata: Option<Value>,
    /// `allowed-tools`, from a string, a list or a flow sequence.
    pub allowed_tools: Vec<String>,
    /// The Markdown after the closing `---`, trimmed.
    pub body: String,
    /// Spec violations that did not stop loading.
    pub warnings: Vec<String>,
}

/// Parses a `SKILL.md` read from folder `folder_name`. `Err` is the reason
/// it cannot be used, worded to follow the file's path in a log line.
pub fn parse(bytes: &[u8], folder_name: &str) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 (invalid byte at offset {}); save it as UTF-8",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err("empty file; a skill needs front matter with name and description".into());
    }
    let (yaml, body) = split(text)?;
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| {
        // yaml-rust2 counts lines from 1 within the front matter; the
        // file has the opening `---` line before it.
        format!(
            "front matter is not valid YAML: {} at line {} column {}",
            e.info(),
            e.marker().line() + 1,
            e.marker().col() + 1
        )
    })?;
    let map = match docs.into_iter().next() {
        Some(Yaml::Hash(h)) => h,
        Some(Yaml::Null) | None => {
            return Err("front matter is empty; add name and description".into())
        }
        Some(_) => return Err("front matter is not a mapping of keys to values".into()),
    };
    let get = |key: &str| map.get(&Yaml::String(key.into()));

    let mut warnings = Vec::new();
    let name = match get("name") {
        None | Some(Yaml::Null) => return Err("no 'name' in the front matter".into()),
        Some(v) => scalar(v).ok_or("'name' is not a string")?,
    };
    check_name(&name)?;
    if name != folder_name {
        warnings.push(format!(
            "name '{name}' differs from its folder '{folder_name}'; it loads as '{name}'"
        ));
    }

    let description = match get("description") {
        None | Some(Yaml::Null) => return Err("no 'description' in the front matter".into()),
        Some(Yaml::String(s)) => s.trim().to_string(),
        Some(_) => return Err("'description' is not a string".into()),
    };
    if description.is_empty() {
        return Err("'description' is empty".into());
    }
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION {
        warnings.push(format!(
            "description is {chars} characters, over the spec's {MAX_DESCRIPTION}; \
             the index shows the first {MAX_DESCRIPTION}"
        ));
    }

    let mut text_key = |key: &str, max: Option<usize>| -> Option<String> {
        let v = get(key)?;
        if matches!(v, Yaml::Null) {
            return None;
        }
        match scalar(v) {
            Some(s) => {
                if let Some(max) = max.filter(|m| s.chars().count() > *m) {
                    warnings.push(format!("'{key}' is over the spec's {max} characters"));
                }
                Some(s)
            }
            None => {
                warnings.push(format!("'{key}' is not a string; ignored"));
                None
            }
        }
    };
    let license = text_key("license", None);
    let compatibility = text_key("compatibility", Some(MAX_COMPATIBILITY));

    let metadata = get("metadata")
        .filter(|v| !matches!(v, Yaml::Null))
        .map(to_json);
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        warnings.push("'metadata' is not a mapping (kept as given)".into());
    }

    let allowed_tools = match get("allowed-tools") {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => match scalar(v) {
            Some(s) => split_tools(&s),
            None => {
                warnings.push("'allowed-tools' is neither a string nor a list; ignored".into());
                Vec::new()
            }
        },
    };

    Ok(Parsed {
        name,
        description,
        license,
        compatibility,
        metadata,
        allowed_tools,
        body: body.trim().to_string(),
        warnings,
    })
}

/// Splits the front matter from the body. The first line must be `---`
/// (trailing spaces allowed, CRLF allowed); the front matter ends at the
/// next line that is `---`.
fn split(text: &str) -> Result<(&str, &str), String> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if first.trim_end() != "---" {
        return Err(
            "no front matter: the first line must be '---' (nothing, not even a blank line, \
             before it)"
                .into(),
        );
    }
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Ok((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    Err("front matter is not closed: no '---' line after it".into())
}

/// The spec's name rule: 1-64 of `a-z`, `0-9` and `-`, no leading,
/// trailing or double hyphen.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty()
        || name.len() > MAX_NAME
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(format!(
            "invalid name '{name}': use 1 to {MAX_NAME} lowercase letters, digits and single \
             hyphens, not starting or ending with a hyphen"
        ));
    }
    Ok(())
}

/// A scalar as text (`version: 1.0` and `name: '1.0'` both read as text);
/// `None` for lists, maps and null.
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.trim().to_string()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A YAML value as JSON: map keys become text; aliases and bad values
/// become null.
fn to_json(v: &Yaml) -> Value {
    match v {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = scalar(k).unwrap_or_else(|| {
                        let mut s = String::new();
                        let _ = write!(s, "{k:?}");
                        s
                    });
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// `allowed-tools` written as one string: the spec says space-separated;
/// commas are accepted too, and a space inside parentheses does not split
/// (`Bash(git add:*)` is one tool).
fn split_tools(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if depth == 0 && (c.is_whitespace() || c == ',') => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Parsed {
        parse(text.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn err(text: &[u8]) -> String {
        parse(text, "x").unwrap_err()
    }

    #[test]
    fn minimal() {
        let p = ok("---\nname: x\ndescription: Does x.\n---\n\n# X\n\nBody.\n");
        assert_eq!((p.name.as_str(), p.description.as_str()), ("x", "Does x."));
        assert_eq!(p.body, "# X\n\nBody.");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn bom_crlf_and_no_trailing_newline() {
        let p = ok("\u{feff}---\r\nname: x\r\ndescription: Does x.\r\n---\r\nBody\r\n");
        assert_eq!(
            (p.description.as_str(), p.body.as_str()),
            ("Does x.", "Body")
        );
        let p = ok("---\nname: x\ndescription: d\n---");
        assert_eq!(p.body, "");
    }

    #[test]
    fn folded_quoted_and_optional_keys() {
        let p = ok(
            "---\nname: 'x'\ndescription: >-\n  Keeps: colons\n  and \"quotes\".\n\
                    license: MIT\ncompatibility: Linux\nallowed-tools: [Read, 'Bash(git:*)']\n\
                    metadata:\n  version: '1.0'\n  n: 2\nfuture-key: {a: 1}\n---\n",
        );
        assert_eq!(p.description, "Keeps: colons and \"quotes\".");
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert_eq!(p.compatibility.as_deref(), Some("Linux"));
        assert_eq!(p.allowed_tools, ["Read", "Bash(git:*)"]);
        assert_eq!(
            p.metadata,
            Some(serde_json::json!({"version": "1.0", "n": 2}))
        );
    }

    #[test]
    fn allowed_tools_as_a_string() {
        let p =
            ok("---\nname: x\ndescription: d\nallowed-tools: Bash(git add:*) Read, Grep\n---\n");
        assert_eq!(p.allowed_tools, ["Bash(git add:*)", "Read", "Grep"]);
    }

    #[test]
    fn lenient_cases_load_with_a_warning() {
        let p = parse(b"---\nname: other\ndescription: d\n---\n", "x").unwrap();
        assert_eq!(p.name, "other");
        assert!(
            p.warnings[0].contains("differs from its folder 'x'"),
            "{:?}",
            p.warnings
        );
        let long = format!("---\nname: x\ndescription: {}\n---\n", "a".repeat(1025));
        assert!(ok(&long).warnings[0].contains("1025 characters"));
        let exact = format!("---\nname: x\ndescription: {}\n---\n", "é".repeat(1024));
        assert!(ok(&exact).warnings.is_empty(), "characters, not bytes");
    }

    #[test]
    fn unusable_files_say_why() {
        for (text, why) in [
            (&b""[..], "empty file"),
            (b"# Title\n", "no front matter"),
            (b"\n---\nname: x\ndescription: d\n---\n", "first line"),
            (b"---\nname: x\ndescription: d\n", "not closed"),
            (b"---\n---\n", "empty"),
            (b"---\ndescription: d\n---\n", "no 'name'"),
            (b"---\nname: x\n---\n", "no 'description'"),
            (b"---\nname: x\ndescription:\n  - a\n---\n", "not a string"),
            (b"---\nname: x\ndescription: ''\n---\n", "empty"),
            (
                b"---\nname: Bad_Name\ndescription: d\n---\n",
                "invalid name",
            ),
            (
                b"---\nname: x\nname: y\ndescription: d\n---\n",
                "duplicated key",
            ),
            (
                b"---\nname: x\ndescription: \"open\n\tbad: 1\n---\n",
                "not valid YAML",
            ),
            (b"---\nname: x\ndescription: caf\xe9\n---\n", "not UTF-8"),
            (b"---\n- a\n---\n", "not a mapping"),
        ] {
            let e = err(text);
            assert!(e.contains(why), "{:?}: {e}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn name_rule() {
        for good in ["a", "joke-teller", "v2-x", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a_b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
