use serde_json::{json, Value};

use super::{str_arg, Ctx, Tool};
use crate::protocol::{Event, SkillReason};

/// Loads a skill's instructions on the model's request.
pub struct ActivateSkill;

impl Tool for ActivateSkill {
    fn name(&self) -> &'static str {
        "activate_skill"
    }
    fn description(&self) -> &'static str {
        "Load the full instructions of one of the available skills listed in the system prompt."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"name": {"type": "string", "description": "The skill's name."}},
            "required": ["name"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let name = str_arg(args, "name")?;
        let catalog = ctx.daemon.catalog();
        let skill = catalog.get(name).ok_or_else(|| {
            format!("no skill named '{name}'; the available skills are listed in the system prompt")
        })?;
        if !ctx.skills.iter().any(|(n, _)| n == name) {
            ctx.skills.push((name.to_string(), SkillReason::Model));
            ctx.daemon.hub.publish(
                &ctx.session.id,
                &Event::Skill {
                    session_id: ctx.session.id.clone(),
                    skill: name.to_string(),
                    reason: SkillReason::Model,
                },
                ctx.turn_id,
            );
        }
        Ok(skill.body.trim().to_string())
    }
}
