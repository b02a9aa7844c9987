use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{str_arg, Ctx, Tool};

/// Most output kept from a script, per stream.
const MAX_OUTPUT: u64 = 16 << 10;

/// Runs a script from a skill's folder. Offered, and allowed, only when
/// the config says `allow_skill_scripts = true`: a skill is someone else's
/// text, and its scripts are someone else's code.
pub struct RunSkillScript;

impl Tool for RunSkillScript {
    fn name(&self) -> &'static str {
        "run_skill_script"
    }
    fn description(&self) -> &'static str {
        "Run a script from a skill's folder (like scripts/check.py) when the skill's instructions say to; returns its exit code and output."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "skill": {"type": "string"},
                "path": {"type": "string", "description": "Relative to the skill's folder."},
                "args": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["skill", "path"]
        })
    }
    fn offered(&self, config: &crate::config::Config) -> bool {
        config.allow_skill_scripts
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let config = ctx.daemon.config();
        if !config.allow_skill_scripts {
            return Err("running skill scripts is turned off (allow_skill_scripts = false)".into());
        }
        let skill = str_arg(args, "skill")?;
        let rel = str_arg(args, "path")?;
        let catalog = ctx.daemon.catalog();
        let path = catalog.resolve(skill, rel)?;
        let dir = catalog
            .get(skill)
            .map(|s| s.dir.clone())
            .ok_or("no such skill")?;
        let script_args: Vec<String> = match args.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or("'args' must be a list of strings")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("'args' must be a list of strings".into()),
        };
        let timeout = Duration::from_secs(config.skill_script_timeout_secs);
        log::info!(
            "session {}: running skill script {}",
            ctx.session.id,
            path.display()
        );
        run_script(&path, &dir, &script_args, timeout)
    }
}

/// Runs `path` without a shell, in `dir`, with an empty environment but
/// `PATH`, `HOME` and `LANG` (API keys never reach a script), output capped
/// and killed after `timeout`.
fn run_script(
    path: &Path,
    dir: &Path,
    args: &[String],
    timeout: Duration,
) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    let mut cmd = if executable {
        Command::new(path)
    } else {
        let interpreter = match path.extension().and_then(|e| e.to_str()) {
            Some("py") => "python3",
            Some("sh") => "sh",
            Some("js") => "node",
            _ => {
                return Err(format!(
                    "{} is not executable and not a .py, .sh or .js file",
                    path.display()
                ))
            }
        };
        let mut c = Command::new(interpreter);
        c.arg(path);
        c
    };
    // Its own process group, so a timeout kills what it started too (a
    // child holding the output pipes would otherwise outlive it).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for key in ["PATH", "HOME", "LANG"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let capture = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut out);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = capture(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = capture(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                // SAFETY: kill sends a signal to the group we created.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let head = match status {
        Some(s) => format!(
            "exit code {}",
            s.code().map_or("none (signal)".into(), |c| c.to_string())
        ),
        None => format!(
            "killed after {}s (skill_script_timeout_secs)",
            timeout.as_secs()
        ),
    };
    Ok(format!(
        "{head}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_without_a_shell_capped_and_timed() {
        let dir = std::env::temp_dir().join(format!("ruster-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(
            &script,
            "echo \"got $1\"; echo oops >&2; [ -n \"$OPENAI_API_KEY\" ] && echo LEAK\n",
        )
        .unwrap();
        let out = run_script(&script, &dir, &["a;b $(x)".into()], Duration::from_secs(5)).unwrap();
        assert!(out.starts_with("exit code"), "{out}");
        assert!(
            out.contains("got a;b $(x)"),
            "arguments reach the script verbatim: {out}"
        );
        assert!(out.contains("oops") && !out.contains("LEAK"), "{out}");
        std::fs::write(&script, "sleep 5\n").unwrap();
        let out = run_script(&script, &dir, &[], Duration::from_millis(200)).unwrap();
        assert!(out.starts_with("killed after"), "{out}");
    }
}
