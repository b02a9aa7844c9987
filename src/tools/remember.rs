use serde_json::{json, Value};

use super::{event_text, str_arg, Ctx, Tool};

/// Stores a fact in long-term memory.
pub struct Remember;

impl Tool for Remember {
    fn name(&self) -> &'static str {
        "remember"
    }
    fn description(&self) -> &'static str {
        "Save a fact about the user or their wishes in long-term memory, so it is known in later conversations."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The fact, as one short sentence."},
                "scope": {"type": "string", "enum": ["session", "global"], "description": "session (default): this conversation only; global: every conversation."}
            },
            "required": ["text"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let text = str_arg(args, "text")?;
        let session = match args.get("scope").and_then(Value::as_str) {
            Some("global") => None,
            _ => Some(ctx.session.id.clone()),
        };
        let ev = ctx.daemon.remember(session, text);
        event_text(&ev, || match &ev {
            crate::protocol::Event::Remembered { memory_id, .. } => {
                format!("remembered as {memory_id}")
            }
            _ => "remembered".into(),
        })
    }
}
