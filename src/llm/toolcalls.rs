//! Assembling streamed tool-call fragments into whole [`ToolCall`]s.
//!
//! Policy: fragments are grouped by their `index` when the provider sends
//! one; without an index (Mistral, Gemini) a fragment that carries an id or
//! a name starts a new call and any other fragment continues the last one.
//! The id and the name are taken from the first fragment that has them and
//! never overwritten; arguments are concatenated. Nothing a later fragment
//! carries can erase what was assembled (OpenRouter repeats its finish
//! chunk; some servers resend a whole call). Calls are returned in the order
//! they first appeared, with a made-up `call_N` id where the provider sent
//! none (older Ollama).

use crate::llm::types::ToolCall;

#[derive(Debug, Default)]
struct Partial {
    index: Option<usize>,
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

/// Collects `Delta::ToolCall` fragments of one reply.
#[derive(Debug, Default)]
pub struct ToolCallAccumulator {
    calls: Vec<Partial>,
}

impl ToolCallAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no fragment has produced a call yet.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn push(
        &mut self,
        index: Option<usize>,
        id: Option<String>,
        name: Option<String>,
        arguments: &str,
    ) {
        // An empty id or name is the same as none (some servers send "").
        let id = id.filter(|s| !s.is_empty());
        let name = name.filter(|s| !s.is_empty());
        let pos = match index {
            Some(i) => self.calls.iter().position(|c| c.index == Some(i)),
            None => {
                // The same id again (a provider repeating it on each
                // fragment) continues that call rather than starting one.
                let same_id = id
                    .as_ref()
                    .and_then(|id| self.calls.iter().position(|c| c.id.as_ref() == Some(id)));
                if same_id.is_some() {
                    same_id
                } else if id.is_some() || name.is_some() {
                    None
                } else {
                    self.calls.len().checked_sub(1)
                }
            }
        };
        let pos = match pos {
            Some(p) => p,
            None => {
                if id.is_none() && name.is_none() && arguments.is_empty() {
                    return; // an empty fragment creates nothing
                }
                self.calls.push(Partial {
                    index,
                    ..Partial::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        // A resent whole call (same id, the complete arguments again) must
        // not double the arguments. A genuine continuation fragment never
        // repeats the id, and appending to already-complete JSON would only
        // break it, so this test cannot drop real text.
        let resent = id.is_some()
            && call.id == id
            && !call.arguments.is_empty()
            && call.arguments == arguments
            && serde_json::from_str::<serde_json::Value>(arguments).is_ok();
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        if !resent {
            call.arguments.push_str(arguments);
        }
    }

    /// The assembled calls, in order of first appearance.
    pub fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .enumerate()
            .map(|(n, c)| ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{n}")),
                name: c.name.unwrap_or_default(),
                // No argument text at all means "no arguments" (a tool
                // without parameters): `{}` is what the tool loop can parse.
                arguments: if c.arguments.trim().is_empty() {
                    "{}".to_string()
                } else {
                    c.arguments
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn indexed_fragments_assemble() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(Some(0), s("call_a"), s("read"), "");
        acc.push(Some(0), None, None, "{\"p\":");
        acc.push(Some(1), s("call_b"), s("write"), "{}");
        acc.push(Some(0), None, None, "1}");
        assert_eq!(
            acc.finish(),
            [
                call("call_a", "read", "{\"p\":1}"),
                call("call_b", "write", "{}")
            ]
        );
    }

    #[test]
    fn no_index_new_call_on_id_or_name_else_append() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(None, s("k1"), s("f"), "{\"a\"");
        acc.push(None, None, None, ":1}");
        acc.push(None, None, s("g"), "{}");
        assert_eq!(
            acc.finish(),
            [call("k1", "f", "{\"a\":1}"), call("call_1", "g", "{}")]
        );
    }

    #[test]
    fn id_and_name_only_from_first_fragment() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(Some(0), s("first"), s("tool"), "{");
        acc.push(Some(0), s("second"), s("other"), "}");
        assert_eq!(acc.finish(), [call("first", "tool", "{}")]);
    }

    #[test]
    fn repeated_or_empty_fragments_do_not_wipe() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(Some(0), s("c"), s("ls"), "{\"path\":\".\"}");
        acc.push(Some(0), None, None, "");
        acc.push(None, None, None, "");
        acc.push(Some(0), s(""), s(""), "");
        // A whole call sent again is not appended twice.
        acc.push(Some(0), s("c"), s("ls"), "{\"path\":\".\"}");
        assert_eq!(acc.finish(), [call("c", "ls", "{\"path\":\".\"}")]);
    }

    #[test]
    fn same_id_without_index_continues_call() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(None, s("x"), s("f"), "{\"a\":");
        acc.push(None, s("x"), None, "2}");
        assert_eq!(acc.finish(), [call("x", "f", "{\"a\":2}")]);
    }

    #[test]
    fn made_up_ids_and_empty_arguments() {
        let mut acc = ToolCallAccumulator::new();
        assert!(acc.is_empty());
        acc.push(None, None, s("clock"), "");
        acc.push(None, None, s("clock"), "  ");
        assert!(!acc.is_empty());
        assert_eq!(
            acc.finish(),
            [call("call_0", "clock", "{}"), call("call_1", "clock", "{}")]
        );
        assert!(ToolCallAccumulator::new().finish().is_empty());
    }

    #[test]
    fn stray_arguments_without_any_call_start_one() {
        let mut acc = ToolCallAccumulator::new();
        acc.push(None, None, None, "{}");
        assert_eq!(acc.finish(), [call("call_0", "", "{}")]);
    }
}
