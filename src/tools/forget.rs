use serde_json::{json, Value};

use super::{event_text, str_arg, Ctx, Tool};

/// Removes a fact from long-term memory.
pub struct Forget;

impl Tool for Forget {
    fn name(&self) -> &'static str {
        "forget"
    }
    fn description(&self) -> &'static str {
        "Delete a saved fact from long-term memory by its id (use recall to find ids)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"memory_id": {"type": "string"}},
            "required": ["memory_id"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let id = str_arg(args, "memory_id")?;
        event_text(&ctx.daemon.forget(id), || format!("forgot {id}"))
    }
}
