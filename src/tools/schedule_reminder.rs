use serde_json::{json, Value};

use super::{event_text, str_arg, Ctx, Tool};
use crate::protocol::{Due, Event};

/// Schedules a reminder for the user.
pub struct ScheduleReminder;

impl Tool for ScheduleReminder {
    fn name(&self) -> &'static str {
        "schedule_reminder"
    }
    fn description(&self) -> &'static str {
        "Remind the user of something later: give either in_minutes or an RFC 3339 time 'at'."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "message": {"type": "string", "description": "What to remind the user of."},
                "in_minutes": {"type": "number", "description": "Minutes from now."},
                "at": {"type": "string", "description": "An RFC 3339 time, like 2026-11-24T15:00:00Z."}
            },
            "required": ["message"]
        })
    }
    fn run(&self, ctx: &mut Ctx, args: &Value) -> Result<String, String> {
        let message = str_arg(args, "message")?;
        let due = match (
            args.get("in_minutes").and_then(Value::as_f64),
            args.get("at").and_then(Value::as_str),
        ) {
            (Some(m), _) if m > 0.0 && m < 1e7 => Due::In((m * 60.0).round().max(1.0) as u64),
            (_, Some(at)) => Due::At(
                crate::time::parse_rfc3339(at)
                    .ok_or_else(|| format!("'at' is not an RFC 3339 time: {at}"))?,
            ),
            _ => return Err("give in_minutes (a positive number) or at (an RFC 3339 time)".into()),
        };
        let ev = ctx.daemon.remind(&ctx.session.id, message, due, None);
        event_text(&ev, || match &ev {
            Event::Scheduled {
                reminder_id, due, ..
            } => format!("reminder {reminder_id} set for {due}"),
            _ => "reminder set".into(),
        })
    }
}
