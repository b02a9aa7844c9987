//! The packaging files against the repository:
//! - every file `aur/PKGBUILD`'s `package()` installs from the checkout
//!   exists (its `install` lines, globs expanded), lands under `$pkgdir`,
//!   and every example skill is installed to `/usr/share/ruster/skills/`;
//! - `aur/.SRCINFO` says what the PKGBUILD says (pkgname, pkgver, pkgrel,
//!   depends, makedepends, optdepends, arch, ...);
//! - `Cargo.toml`'s version is the PKGBUILD's pkgver;
//! - `systemd/ruster.service` has `ExecStart`, `Restart=on-failure`,
//!   `Environment=MALLOC_ARENA_MAX=2`, `NoNewPrivileges=yes` and no
//!   `PrivateTmp=yes` (the socket lives in /tmp), and, where
//!   `systemd-analyze` exists, a copy pointed at the built binary verifies
//!   cleanly (else the test prints a SKIPPED line).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Splits a shell line into words: single and double quotes grouped (and
/// removed), a `#` outside quotes starts a comment. Enough for a PKGBUILD.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The PKGBUILD's top-level variables (`x=v` and `x=(a b ...)`, arrays
/// possibly over several lines) and the body lines of its functions.
struct Pkgbuild {
    vars: BTreeMap<String, Vec<String>>,
    functions: BTreeMap<String, Vec<String>>,
}

fn pkgbuild() -> Pkgbuild {
    let text = read("aur/PKGBUILD");
    let mut vars = BTreeMap::new();
    let mut functions = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_suffix("() {") {
            let body: Vec<String> = lines
                .by_ref()
                .take_while(|l| *l != "}")
                .map(str::to_string)
                .collect();
            functions.insert(name.trim().to_string(), body);
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = if let Some(first) = value.strip_prefix('(') {
            let mut all = first.to_string();
            while !all.trim_end().ends_with(')') {
                let next = lines
                    .next()
                    .unwrap_or_else(|| panic!("array {name} is not closed"));
                all.push('\n');
                all.push_str(next);
            }
            let inner = all.trim_end().strip_suffix(')').unwrap();
            inner.lines().flat_map(words).collect()
        } else {
            words(value)
        };
        vars.insert(name.to_string(), value);
    }
    Pkgbuild { vars, functions }
}

impl Pkgbuild {
    fn var(&self, name: &str) -> &[String] {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("PKGBUILD does not set {name}"))
    }

    fn scalar(&self, name: &str) -> &str {
        let v = self.var(name);
        assert_eq!(v.len(), 1, "PKGBUILD's {name} should be one value: {v:?}");
        &v[0]
    }
}

/// One `install` command of `package()`: its sources (relative to the
/// checkout) and its destination (under `$pkgdir`).
#[derive(Debug)]
struct Install {
    sources: Vec<String>,
    dest: String,
    /// `-t DIR`: `dest` is a folder that receives each source.
    into_dir: bool,
}

fn installs(p: &Pkgbuild) -> Vec<Install> {
    let body = p
        .functions
        .get("package")
        .expect("PKGBUILD has no package() function");
    assert!(
        body.iter().any(|l| l.trim() == "cd \"$startdir/..\""),
        "package() should install from the checkout (cd \"$startdir/..\")"
    );
    let mut out = Vec::new();
    for line in body {
        let w = words(line);
        if w.first().map(String::as_str) != Some("install") {
            continue;
        }
        let mut target_dir = None;
        let mut rest = Vec::new();
        let mut args = w[1..].iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-t" => target_dir = args.next().cloned(),
                "-m" | "-o" | "-g" => {
                    args.next();
                }
                s if s.starts_with('-') => {}
                _ => rest.push(a.clone()),
            }
        }
        let install = match target_dir {
            Some(dest) => Install {
                sources: rest,
                dest,
                into_dir: true,
            },
            None => {
                let dest = rest
                    .pop()
                    .unwrap_or_else(|| panic!("install without a destination: {line}"));
                Install {
                    sources: rest,
                    dest,
                    into_dir: false,
                }
            }
        };
        assert!(
            !install.sources.is_empty(),
            "install without a source: {line}"
        );
        assert!(
            install.dest.starts_with("$pkgdir/"),
            "install destinations belong under \"$pkgdir\": {line}"
        );
        out.push(install);
    }
    assert!(!out.is_empty(), "package() has no install lines");
    out
}

/// `*` and `?` in the last part of a path, as the shell matches them.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// A source as the files it names in the checkout (a glob may name many;
/// none is an error, as the shell would install a file named `*.md`).
fn expand(source: &str) -> Vec<String> {
    if !source.contains(['*', '?']) {
        return vec![source.to_string()];
    }
    let (dir, pattern) = source.rsplit_once('/').unwrap_or((".", source));
    assert!(
        !dir.contains(['*', '?']),
        "only the last part of {source} may be a glob"
    );
    let mut found: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{source}: cannot list {dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && glob_match(pattern.as_bytes(), n.as_bytes()))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    found.sort();
    found
}

/// Where each checkout file ends up: `dest path under / -> source`.
fn installed_files(p: &Pkgbuild) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for i in installs(p) {
        let dest = i.dest.trim_start_matches("$pkgdir").to_string();
        for source in &i.sources {
            let files = expand(source);
            assert!(!files.is_empty(), "{source} matches no file in the repo");
            for file in files {
                let to = if i.into_dir {
                    let name = Path::new(&file).file_name().unwrap().to_string_lossy();
                    format!("{dest}/{name}")
                } else {
                    dest.clone()
                };
                map.insert(to, file);
            }
        }
    }
    map
}

#[test]
fn pkgbuild_installs_only_files_that_exist() {
    let p = pkgbuild();
    let name = p.scalar("pkgname").to_string();
    let files = installed_files(&p);
    for (dest, source) in &files {
        if let Some(built) = source.strip_prefix("target/release/") {
            // The binary cargo builds in build(): the package's own.
            assert_eq!(built, "ruster", "{source} is not the crate's binary");
            continue;
        }
        let path = repo().join(source);
        assert!(
            path.is_file(),
            "PKGBUILD installs {source} (to {dest}), which is not a file in the repo"
        );
    }
    let expect = [
        ("/usr/bin/ruster", "target/release/ruster"),
        (
            "/usr/lib/systemd/user/ruster.service",
            "systemd/ruster.service",
        ),
        (&*format!("/usr/share/licenses/{name}/LICENSE"), "LICENSE"),
        ("/usr/share/doc/ruster/README.md", "README.md"),
    ];
    for (dest, source) in expect {
        assert_eq!(
            files.get(dest).map(String::as_str),
            Some(source),
            "PKGBUILD should install {source} as {dest}; it installs {files:#?}"
        );
    }
    for example in ["client.py", "listen.py", "chat.sh", "notify-disk.sh"] {
        let dest = format!("/usr/share/doc/ruster/examples/{example}");
        assert_eq!(
            files.get(&dest).map(String::as_str),
            Some(&*format!("examples/{example}")),
            "PKGBUILD should install examples/{example} as {dest}"
        );
    }
}

#[test]
fn every_example_skill_is_packaged() {
    let files = installed_files(&pkgbuild());
    let dir = repo().join("examples/skills");
    let mut skills = 0;
    for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
        let skill = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().join("SKILL.md").is_file() {
            continue;
        }
        skills += 1;
        for file in std::fs::read_dir(entry.path())
            .unwrap()
            .filter_map(|e| e.ok())
        {
            let name = file.file_name().to_string_lossy().into_owned();
            let dest = format!("/usr/share/ruster/skills/{skill}/{name}");
            assert_eq!(
                files.get(&dest).map(String::as_str),
                Some(&*format!("examples/skills/{skill}/{name}")),
                "PKGBUILD should install examples/skills/{skill}/{name} as {dest}"
            );
        }
    }
    assert!(skills > 0, "examples/skills/ holds no skill");
}

#[test]
fn srcinfo_agrees_with_pkgbuild_and_cargo() {
    let p = pkgbuild();
    let srcinfo = read("aur/.SRCINFO");
    let mut info: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pkgnames = Vec::new();
    for line in srcinfo.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .trim()
            .split_once(" = ")
            .unwrap_or_else(|| panic!(".SRCINFO line is not `key = value`: {line}"));
        if k == "pkgname" {
            pkgnames.push(v.to_string());
        } else {
            info.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    let name = p.scalar("pkgname");
    assert_eq!(info["pkgbase"], [name], ".SRCINFO pkgbase");
    assert_eq!(pkgnames, [name], ".SRCINFO pkgname");
    for key in [
        "pkgver",
        "pkgrel",
        "pkgdesc",
        "url",
        "arch",
        "license",
        "depends",
        "makedepends",
        "optdepends",
        "options",
    ] {
        let got = info.get(key).cloned().unwrap_or_default();
        let want = p.vars.get(key).cloned().unwrap_or_default();
        assert_eq!(
            got, want,
            ".SRCINFO's {key} differs from the PKGBUILD's (regenerate it with \
             `makepkg --printsrcinfo > .SRCINFO`)"
        );
    }
    for key in ["arch", "depends", "makedepends"] {
        assert!(!p.var(key).is_empty(), "PKGBUILD should name its {key}");
    }
    assert!(
        p.var("makedepends")
            .iter()
            .any(|d| d == "cargo" || d == "rust"),
        "building needs cargo (or rust) in makedepends"
    );

    let cargo: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let package = cargo["package"].as_table().unwrap();
    assert_eq!(
        package["version"].as_str(),
        Some(p.scalar("pkgver")),
        "Cargo.toml's version and the PKGBUILD's pkgver differ"
    );
    assert_eq!(
        package["license"].as_str(),
        p.var("license").first().map(String::as_str),
        "Cargo.toml's license and the PKGBUILD's differ"
    );
    let build = p.functions.get("build").expect("PKGBUILD has no build()");
    assert!(
        build
            .iter()
            .any(|l| l.trim() == "cargo build --release --locked"),
        "build() should run `cargo build --release --locked`"
    );
}

/// The unit's settings, `Key=value` lines outside comments.
fn unit_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .collect()
}

#[test]
fn systemd_unit_has_what_the_daemon_needs() {
    let text = read("systemd/ruster.service");
    let lines = unit_lines(&text);
    let exec: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 1, "one ExecStart= line: {exec:?}");
    assert!(
        exec[0].ends_with("/ruster"),
        "ExecStart runs the daemon, with no subcommand: {}",
        exec[0]
    );
    for needed in [
        "[Service]",
        "[Install]",
        "Restart=on-failure",
        "Environment=MALLOC_ARENA_MAX=2",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            lines.contains(&needed),
            "systemd/ruster.service lacks `{needed}`"
        );
    }
    assert!(
        !lines.iter().any(
            |l| l.replace(' ', "").eq_ignore_ascii_case("PrivateTmp=yes")
                || l.replace(' ', "").eq_ignore_ascii_case("PrivateTmp=true")
        ),
        "PrivateTmp would hide the socket in /tmp from clients"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        println!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ruster-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("ruster.service");
    let bin = env!("CARGO_BIN_EXE_ruster");
    let text: String = read("systemd/ruster.service")
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                format!("ExecStart={bin}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("Failed to initialize manager") {
        println!(
            "SKIPPED: systemd-analyze cannot run here: {}",
            stderr.trim()
        );
        return;
    }
    // It exits 0 even for unknown keys and bad values: any complaint about
    // the unit file counts.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&*unit.to_string_lossy()) || l.contains("ruster.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify {}: {:?}\n{stderr}",
        unit.display(),
        out.status
    );
}
