use serde_json::{json, Value};

use super::{str_arg, Ctx, Tool};

/// Reads a file a skill's instructions refer to (progressive disclosure).
pub struct ReadSkillFile;

impl Tool for ReadSkillFile {
    fn name(&self) -> &'static str {
        "read_skill_file"
    }
    fn description(&self) -> &'static str {
        "Read a text file from a skill's folder, such as references/guide.md, when the skill's instructions point to it."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "skill": {"type": "string"},
                "path": {"type": "string", "description": "Relative to the skill's folder."}
            },
            "required": ["skill", "path"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        ctx.daemon
            .catalog()
            .read_file(str_arg(args, "skill")?, str_arg(args, "path")?)
    }
}
