use serde_json::{json, Value};

use super::{str_arg, Ctx, Tool};
use crate::protocol::Event;

/// Searches long-term memory.
pub struct Recall;

impl Tool for Recall {
    fn name(&self) -> &'static str {
        "recall"
    }
    fn description(&self) -> &'static str {
        "Search long-term memory for facts saved earlier."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for."}},
            "required": ["query"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let query = str_arg(args, "query")?;
        match ctx
            .daemon
            .memories(Some(ctx.session.id.clone()), Some(query))
        {
            Event::Memories { memories, .. } if memories.is_empty() => Ok("nothing found".into()),
            Event::Memories { memories, .. } => Ok(memories
                .iter()
                .take(10)
                .map(|m| {
                    format!(
                        "{} ({}, {}): {}",
                        m.memory_id,
                        m.scope,
                        &m.created_at[..10.min(m.created_at.len())],
                        m.text
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")),
            Event::Error { message, .. } => Err(message),
            _ => Err("unexpected answer".into()),
        }
    }
}
