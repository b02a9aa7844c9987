//! The tools a model may call during a turn: one registry, one small file
//! per tool, each a struct with its name, description, JSON schema and
//! `run`. Adding a tool is adding a file and a line to [`REGISTRY`].
//!
//! Policy: a tool never panics and never fails the turn. Bad arguments,
//! unknown tools and failed actions are all returned to the model as an
//! error text it can read and correct.

mod activate_skill;
mod current_time;
mod forget;
mod read_skill_file;
mod recall;
mod remember;
mod run_skill_script;
mod schedule_reminder;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::llm::ToolSpec;
use crate::protocol::{RequestId, SkillReason};
use crate::session::Session;

/// What a tool may use while it runs.
pub struct Ctx<'a> {
    pub daemon: &'a Daemon,
    pub session: &'a Session,
    /// The `id` of the send whose turn this is (for events).
    pub turn_id: Option<&'a RequestId>,
    /// Skills active in this turn; `activate_skill` adds to it.
    pub skills: &'a mut Vec<(String, SkillReason)>,
}

/// One built-in tool.
pub trait Tool: Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// The JSON schema of the arguments object.
    fn parameters(&self) -> Value;
    /// Runs the tool; `Err` is an error message for the model.
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String>;
    /// Whether the config lets models see this tool.
    fn offered(&self, _config: &crate::config::Config) -> bool {
        true
    }
}

static REGISTRY: &[&dyn Tool] = &[
    &current_time::CurrentTime,
    &remember::Remember,
    &recall::Recall,
    &forget::Forget,
    &activate_skill::ActivateSkill,
    &read_skill_file::ReadSkillFile,
    &schedule_reminder::ScheduleReminder,
    &run_skill_script::RunSkillScript,
];

/// The tools as offered to a model under `config`.
pub fn specs(config: &crate::config::Config) -> Vec<ToolSpec> {
    REGISTRY
        .iter()
        .filter(|t| t.offered(config))
        .map(|t| ToolSpec {
            name: t.name().into(),
            description: t.description().into(),
            parameters: t.parameters(),
        })
        .collect()
}

/// The context tokens the tool definitions take under `config`.
pub fn specs_tokens(config: &crate::config::Config) -> usize {
    specs(config)
        .iter()
        .map(|s| {
            crate::context::estimate_tokens(&format!(
                "{} {} {}",
                s.name, s.description, s.parameters
            ))
        })
        .sum()
}

/// Runs the call `name(arguments)`; returns the arguments as parsed (for
/// the `tool` event) and the result text for the model.
pub fn run(ctx: &mut Ctx, name: &str, arguments: &str) -> (Value, String) {
    let args: Value = match arguments.trim() {
        "" => Value::Object(Default::default()),
        text => match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(other) => return (other, "error: the arguments must be a JSON object".into()),
            Err(e) => {
                return (
                    Value::String(arguments.to_string()),
                    format!("error: the arguments are not valid JSON ({e}); send a JSON object"),
                )
            }
        },
    };
    let Some(tool) = REGISTRY.iter().find(|t| t.name() == name) else {
        let known: Vec<&str> = REGISTRY.iter().map(|t| t.name()).collect();
        return (
            args,
            format!(
                "error: there is no tool '{name}'; the tools are: {}",
                known.join(", ")
            ),
        );
    };
    let result = match tool.run(ctx, &args) {
        Ok(text) => text,
        Err(e) => format!("error: {e}"),
    };
    (args, result)
}

/// A required string argument.
fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("missing argument '{key}' (a string)"))
}

/// The answer event's text for the model: its message if it is an error.
fn event_text(ev: &crate::protocol::Event, ok: impl FnOnce() -> String) -> Result<String, String> {
    match ev {
        crate::protocol::Event::Error { message, .. } => Err(message.clone()),
        _ => Ok(ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_unique_name() {
        let mut config = crate::config::Config::default();
        assert!(
            !specs(&config).iter().any(|s| s.name == "run_skill_script"),
            "scripts are off by default"
        );
        config.allow_skill_scripts = true;
        let specs = specs(&config);
        for s in &specs {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
            assert_eq!(specs.iter().filter(|o| o.name == s.name).count(), 1);
        }
    }
}
