use serde_json::{json, Value};

use super::{Ctx, Tool};

/// The local date, time and zone.
pub struct CurrentTime;

impl Tool for CurrentTime {
    fn name(&self) -> &'static str {
        "current_time"
    }
    fn description(&self) -> &'static str {
        "Get the current local date, time and time zone."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn run(&self, _: &mut Ctx, _: &Value) -> Result<String, String> {
        Ok(crate::time::local_now_human())
    }
}
