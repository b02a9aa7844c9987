//! `docs/configuration.md` against the code, so the page cannot drift:
//! - its key table (the `## Keys` section) names exactly the keys of
//!   [`ruster::config::KEYS`], each once;
//! - each documented default (second cell, a TOML/JSON literal in
//!   backticks, or `unset` for an option without a value) equals
//!   `serde_json::to_value(Config::default())[key]`;
//! - the keys the page says `reload` applies are exactly those
//!   [`Config::apply_reloadable`] takes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ruster::config::{Config, KEYS};
use serde_json::Value;

fn page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The lines of the section that starts with `heading`, up to the next
/// heading of any level.
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| l.trim() != heading);
    assert!(
        lines.next().is_some(),
        "docs/configuration.md has no `{heading}` heading"
    );
    lines.take_while(|l| !l.starts_with('#')).collect()
}

/// `key -> default cell`, from the rows of the key table whose first cell
/// is a key in backticks.
fn documented_defaults() -> BTreeMap<String, String> {
    let text = page();
    let mut rows = BTreeMap::new();
    for line in section(&text, "## Keys") {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(key) = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        assert!(
            cells.len() >= 3,
            "the row of `{key}` needs three cells (key, default, meaning): {line}"
        );
        let previous = rows.insert(key.to_string(), cells[1].to_string());
        assert!(previous.is_none(), "`{key}` is documented twice");
    }
    assert!(!rows.is_empty(), "no key rows found under `## Keys`");
    rows
}

/// A default cell as a JSON value: `unset` is null, anything else a TOML or
/// JSON literal in backticks.
fn parse_default(key: &str, cell: &str) -> Value {
    if cell == "unset" {
        return Value::Null;
    }
    let literal = cell
        .strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or_else(|| {
            panic!("the default of `{key}` should be a literal in backticks or `unset`: {cell}")
        });
    if let Ok(v) = serde_json::from_str::<Value>(literal) {
        return v;
    }
    let table: toml::Table = toml::from_str(&format!("v = {literal}")).unwrap_or_else(|e| {
        panic!("the default of `{key}` is neither JSON nor TOML: {literal}: {e}")
    });
    serde_json::to_value(&table["v"]).unwrap()
}

/// Equal values; numbers within float rounding (`f32` fields such as
/// `skill_match_threshold` come out of serde as `2.200000047683716`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_key_is_documented_once_and_nothing_else() {
    let documented: BTreeSet<String> = documented_defaults().into_keys().collect();
    let code: BTreeSet<String> = KEYS.iter().map(|(k, _)| k.to_string()).collect();
    let missing: Vec<_> = code.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/configuration.md's key table differs from config::KEYS:\n\
         not documented: {missing:?}\ndocumented but not a key: {extra:?}"
    );
}

#[test]
fn every_documented_default_is_the_code_default() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut wrong = Vec::new();
    for (key, cell) in documented_defaults() {
        let Some(code) = defaults.get(&key) else {
            continue; // reported by the test above
        };
        let doc = parse_default(&key, &cell);
        if !same(&doc, code) {
            wrong.push(format!("`{key}`: documented {doc}, code {code}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "defaults in docs/configuration.md differ from Config::default():\n{}",
        wrong.join("\n")
    );
}

/// `value` changed into another value of the same type that still
/// deserializes as the config.
fn changed(key: &str, value: &Value) -> Value {
    let candidates: Vec<Value> = match value {
        Value::Bool(b) => vec![Value::Bool(!b)],
        Value::Number(n) => vec![match n.as_u64() {
            Some(u) => serde_json::json!(u + 1),
            None => serde_json::json!(n.as_f64().unwrap() + 1.0),
        }],
        Value::String(s) => vec![Value::String(format!("{s}x"))],
        Value::Null => vec![serde_json::json!("22:00-07:00")],
        Value::Array(items) => [serde_json::json!("x"), serde_json::json!(4242)]
            .into_iter()
            .map(|extra| {
                let mut v = items.clone();
                v.push(extra);
                Value::Array(v)
            })
            .collect(),
        Value::Object(_) => vec![serde_json::json!({"changed": {"kind": "openai"}})],
    };
    let base = serde_json::to_value(Config::default()).unwrap();
    for candidate in candidates {
        let mut v = base.clone();
        v[key] = candidate.clone();
        if serde_json::from_value::<Config>(v).is_ok() {
            return candidate;
        }
    }
    panic!("cannot build a changed value of `{key}` from {value}");
}

#[test]
fn documented_reloadable_keys_are_the_code_s() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut reloadable = BTreeSet::new();
    for (key, _) in KEYS {
        let mut v = defaults.clone();
        v[*key] = changed(key, &defaults[*key]);
        let fresh: Config = serde_json::from_value(v).unwrap();
        let mut running = Config::default();
        if running.apply_reloadable(fresh).is_empty() {
            reloadable.insert(key.to_string());
        }
    }

    // "The `reload` request re-reads the file and applies these keys at
    // once: `a`, `b` ... and `z`. Every other key ..."
    let text = page();
    let start = text
        .find("applies these keys at once:")
        .expect("docs/configuration.md should list the keys `reload` applies");
    let rest = &text[start..];
    let list = &rest[..rest
        .find("Every other key")
        .expect("the reload list ends with \"Every other key\"")];
    let documented: BTreeSet<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| KEYS.iter().any(|(k, _)| k == w))
        .map(str::to_string)
        .collect();
    assert_eq!(
        documented, reloadable,
        "the keys docs/configuration.md says `reload` applies (left) differ from \
         those Config::apply_reloadable takes (right)"
    );
}
