//! Ollama's native chat protocol: `POST /api/chat`, streamed as NDJSON (one
//! JSON object per line).
//!
//! Policy: be liberal in what is read. Every field is optional except that a
//! non-blank line must be a JSON object; unknown fields are ignored (the
//! server adds some every few releases), old servers without `done_reason`,
//! tool-call `id` or `function.index` are accepted. A `{"error": ...}` line
//! is the provider telling us it failed (a [`Delta::Error`]); a line that is
//! not JSON is a broken stream (a [`WireError`]).

use crate::llm::http_error::message_from_json;
use crate::llm::types::{ChatMessage, ChatRequest, Delta, FinishReason, Role, Usage, WireError};
use serde_json::{json, Map, Value};

/// The JSON body of a streamed `/api/chat` request.
pub fn request_body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message_json(m, &req.messages[..i]))
        .collect();
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
    });
    let mut options = Map::new();
    if let Some(n) = req.context_tokens {
        options.insert("num_ctx".into(), n.into());
    }
    if let Some(n) = req.max_tokens {
        options.insert("num_predict".into(), n.into());
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    // An empty `tools` list is omitted: some models reject any `tools` key.
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    }
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// One message; `earlier` is the context before it, searched to name the
/// tool a `tool` message answers (Ollama matches results by `tool_name`,
/// not by call id).
fn message_json(m: &ChatMessage, earlier: &[ChatMessage]) -> Value {
    let mut obj = json!({ "role": role_str(m.role), "content": m.content });
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                // Ollama wants the arguments as an object. Text that is not
                // JSON (a model's broken output, kept so the tool loop can
                // show it the error) is sent as the raw string.
                let args = serde_json::from_str::<Value>(&c.arguments)
                    .unwrap_or_else(|_| Value::String(c.arguments.clone()));
                json!({ "function": { "name": c.name, "arguments": args } })
            })
            .collect();
        obj["tool_calls"] = Value::Array(calls);
    }
    if m.role == Role::Tool {
        if let Some(name) = m
            .tool_call_id
            .as_deref()
            .and_then(|id| tool_name(id, earlier))
        {
            obj["tool_name"] = Value::String(name.to_string());
        }
    }
    obj
}

fn tool_name<'a>(call_id: &str, earlier: &'a [ChatMessage]) -> Option<&'a str> {
    earlier
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == call_id)
        .map(|c| c.name.as_str())
}

/// The deltas of one NDJSON line (with or without its line end), in the
/// order a reader should apply them: thinking, text, tool calls, then usage
/// and finish on the `done` line.
pub fn parse_line(line: &[u8]) -> Result<Vec<Delta>, WireError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let v: Value =
        serde_json::from_slice(line).map_err(|e| WireError::not_json("Ollama line", line, &e))?;
    let Value::Object(obj) = &v else {
        return Err(WireError(format!(
            "Ollama line is not a JSON object: {}",
            excerpt(line)
        )));
    };
    if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
        let msg = message_from_json(&v)
            .or_else(|| message_from_json(err))
            .unwrap_or_else(|| err.to_string());
        return Ok(vec![Delta::Error(msg)]);
    }

    let mut out = Vec::new();
    if let Some(msg) = obj.get("message").and_then(Value::as_object) {
        if let Some(t) = nonempty_str(msg.get("thinking")) {
            out.push(Delta::Thinking(t.to_string()));
        }
        if let Some(t) = nonempty_str(msg.get("content")) {
            out.push(Delta::Text(t.to_string()));
        }
        if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
            out.extend(calls.iter().map(tool_call_delta));
        }
    }
    if obj.get("done").and_then(Value::as_bool) == Some(true) {
        let prompt = obj.get("prompt_eval_count").and_then(Value::as_u64);
        let completion = obj.get("eval_count").and_then(Value::as_u64);
        // A `load` line (or a fully cached prompt) carries no counts: no
        // Usage then, rather than a misleading zero.
        if prompt.is_some() || completion.is_some() {
            out.push(Delta::Usage(Usage {
                prompt_tokens: prompt.unwrap_or(0),
                completion_tokens: completion.unwrap_or(0),
            }));
        }
        let reason = nonempty_str(obj.get("done_reason"))
            .map(FinishReason::from_wire)
            // Servers before `done_reason` existed (2023) only stopped.
            .unwrap_or(FinishReason::Stop);
        out.push(Delta::Finish(reason));
    }
    Ok(out)
}

/// One whole Ollama tool call as a fragment. Ollama sends the arguments as
/// an object; the rest of the daemon wants JSON text.
fn tool_call_delta(call: &Value) -> Delta {
    let func = call.get("function");
    let field = |k: &str| func.and_then(|f| f.get(k));
    let arguments = match field("arguments") {
        None | Some(Value::Null) => "{}".to_string(),
        // A server that already sends text: keep it as is.
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Delta::ToolCall {
        // No `function.index` (servers before 2025): `None` lets the
        // accumulator start a new call for each named call, which also
        // works when calls of one reply arrive on separate lines (a
        // per-line position would make them all index 0 and merge them).
        index: field("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok()),
        id: nonempty_str(call.get("id")).map(str::to_string),
        name: nonempty_str(field("name")).map(str::to_string),
        arguments,
    }
}

fn nonempty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::toolcalls::ToolCallAccumulator;
    use crate::llm::types::{ToolCall, ToolSpec};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/providers/", $name))
        };
    }

    /// Feeds a transcript line by line, as the HTTP reader will. An
    /// unterminated last line is returned separately (a cut connection).
    fn run(bytes: &[u8]) -> (Vec<Delta>, Option<Result<Vec<Delta>, WireError>>) {
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let tail = parts.pop().filter(|t| !t.is_empty());
        for line in parts {
            out.extend(parse_line(line).expect("every full line parses"));
        }
        (out, tail.map(parse_line))
    }

    fn text(ds: &[Delta]) -> String {
        ds.iter()
            .filter_map(|d| match d {
                Delta::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn thinking(ds: &[Delta]) -> String {
        ds.iter()
            .filter_map(|d| match d {
                Delta::Thinking(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn calls(ds: &[Delta]) -> Vec<ToolCall> {
        let mut acc = ToolCallAccumulator::new();
        for d in ds {
            if let Delta::ToolCall {
                index,
                id,
                name,
                arguments,
            } = d
            {
                acc.push(*index, id.clone(), name.clone(), arguments);
            }
        }
        acc.finish()
    }

    fn usage(p: u64, c: u64) -> Delta {
        Delta::Usage(Usage {
            prompt_tokens: p,
            completion_tokens: c,
        })
    }

    #[test]
    fn plain() {
        let (ds, tail) = run(fixture!("ollama-plain.ndjson"));
        assert!(tail.is_none());
        assert_eq!(text(&ds), "Hello there!");
        assert_eq!(
            ds[ds.len() - 2..],
            [usage(21, 3), Delta::Finish(FinishReason::Stop)]
        );
    }

    #[test]
    fn thinking_then_content() {
        let (ds, _) = run(fixture!("ollama-thinking.ndjson"));
        assert_eq!(thinking(&ds), "Add them.");
        assert_eq!(text(&ds), "5");
        let first_text = ds.iter().position(|d| matches!(d, Delta::Text(_)));
        let last_thought = ds.iter().rposition(|d| matches!(d, Delta::Thinking(_)));
        assert!(last_thought < first_text);
    }

    #[test]
    fn tool_call_with_object_arguments() {
        let (ds, _) = run(fixture!("ollama-tool-calls.ndjson"));
        assert_eq!(text(&ds), "");
        let got = calls(&ds);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "call_ab12cd34");
        assert_eq!(got[0].name, "set_timer");
        let args: Value = serde_json::from_str(&got[0].arguments).unwrap();
        assert_eq!(
            args,
            json!({"minutes":5,"label":"tea & <biscuits>","repeat":null,"tags":["kitchen"]})
        );
        // Ollama reports "stop" even after a tool call.
        assert_eq!(ds.last(), Some(&Delta::Finish(FinishReason::Stop)));
    }

    #[test]
    fn legacy_tool_call_without_id_or_index() {
        let (ds, _) = run(fixture!("ollama-tool-calls-legacy.ndjson"));
        let got = calls(&ds);
        assert_eq!(
            got,
            [ToolCall {
                id: "call_0".into(),
                name: "set_timer".into(),
                arguments: r#"{"minutes":3}"#.into()
            }]
        );
    }

    #[test]
    fn parallel_tool_calls() {
        let (ds, _) = run(fixture!("ollama-tool-calls-parallel.ndjson"));
        let got = calls(&ds);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "call_00000001");
        assert_eq!(got[1].arguments, r#"{"zone":"Asia/Tokyo"}"#);
    }

    #[test]
    fn legacy_calls_on_separate_lines_stay_separate() {
        let a = br#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{}}}]},"done":false}"#;
        let b = br#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"b","arguments":{"x":1}}}]},"done":false}"#;
        let mut ds = parse_line(a).unwrap();
        ds.extend(parse_line(b).unwrap());
        let got = calls(&ds);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].name.as_str(), got[1].name.as_str()), ("a", "b"));
        assert_eq!(got[0].arguments, "{}");
    }

    #[test]
    fn go_escapes_and_unicode() {
        let (ds, _) = run(fixture!("ollama-escapes.ndjson"));
        assert_eq!(text(&ds), "if a<b && b>c say \"hi\"\n\tok 🦀 é");
    }

    #[test]
    fn error_midstream() {
        let (ds, _) = run(fixture!("ollama-error-midstream.ndjson"));
        assert_eq!(text(&ds), "Working");
        assert_eq!(ds.last(), Some(&Delta::Error("the runner crashed".into())));
        assert!(!ds.iter().any(|d| matches!(d, Delta::Finish(_))));
    }

    #[test]
    fn truncated_without_done() {
        let (ds, tail) = run(fixture!("ollama-truncated.ndjson"));
        assert_eq!(text(&ds), "Cut off");
        assert!(!ds.iter().any(|d| matches!(d, Delta::Finish(_))));
        assert!(tail.unwrap().is_err(), "the partial line is a wire error");
    }

    #[test]
    fn legacy_without_done_reason_is_stop() {
        let (ds, _) = run(fixture!("ollama-legacy-no-reason.ndjson"));
        assert_eq!(text(&ds), "Old");
        assert_eq!(ds.last(), Some(&Delta::Finish(FinishReason::Stop)));
    }

    #[test]
    fn odd_lines() {
        assert_eq!(parse_line(b"").unwrap(), []);
        assert_eq!(parse_line(b"  \r\n").unwrap(), []);
        assert!(parse_line(b"<html>").is_err());
        assert!(parse_line(b"[1,2]").is_err());
        let load = br#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"load"}"#;
        assert_eq!(
            parse_line(load).unwrap(),
            [Delta::Finish(FinishReason::Other("load".into()))]
        );
        assert_eq!(
            parse_line(br#"{"error":{"message":"nested"}}"#).unwrap(),
            [Delta::Error("nested".into())]
        );
        // Line end included, as a `read_until(b'\n')` hands it over.
        assert_eq!(
            parse_line(b"{\"message\":{\"content\":\"x\"},\"done\":false}\r\n").unwrap(),
            [Delta::Text("x".into())]
        );
    }

    #[test]
    fn wire_error_is_short_and_an_error() {
        let long = format!("<html>{}</html>", "x".repeat(500));
        let err = parse_line(long.as_bytes()).unwrap_err();
        assert!(
            err.to_string().starts_with("Ollama line is not JSON"),
            "{err}"
        );
        assert!(err.to_string().len() < 250, "excerpt is cut: {err}");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(!boxed.to_string().is_empty());
    }

    #[test]
    fn request_body_shape() {
        let mut asst = ChatMessage::new(Role::Assistant, "");
        asst.tool_calls = vec![
            ToolCall {
                id: "call_1".into(),
                name: "get_time".into(),
                arguments: r#"{"zone":"UTC"}"#.into(),
            },
            ToolCall {
                id: "call_2".into(),
                name: "broken".into(),
                arguments: "{not json".into(),
            },
        ];
        let mut result = ChatMessage::new(Role::Tool, "12:00");
        result.tool_call_id = Some("call_1".into());
        let mut orphan = ChatMessage::new(Role::Tool, "?");
        orphan.tool_call_id = Some("nope".into());
        let messages = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Time?"),
            asst,
            result,
            orphan,
        ];
        let tools = [ToolSpec {
            name: "get_time".into(),
            description: "Current time".into(),
            parameters: json!({"type":"object","properties":{"zone":{"type":"string"}}}),
        }];
        let req = ChatRequest {
            model: "qwen3:0.6b",
            messages: &messages,
            tools: &tools,
            context_tokens: Some(8192),
            max_tokens: Some(256),
        };
        let body = request_body(&req);
        assert_eq!(
            body,
            json!({
                "model": "qwen3:0.6b",
                "messages": [
                    {"role":"system","content":"Be brief."},
                    {"role":"user","content":"Time?"},
                    {"role":"assistant","content":"","tool_calls":[
                        {"function":{"name":"get_time","arguments":{"zone":"UTC"}}},
                        {"function":{"name":"broken","arguments":"{not json"}}
                    ]},
                    {"role":"tool","content":"12:00","tool_name":"get_time"},
                    {"role":"tool","content":"?"}
                ],
                "stream": true,
                "options": {"num_ctx": 8192, "num_predict": 256},
                "tools": [{"type":"function","function":{
                    "name":"get_time","description":"Current time",
                    "parameters":{"type":"object","properties":{"zone":{"type":"string"}}}
                }}]
            })
        );
    }

    #[test]
    fn request_body_minimal_has_no_options_or_tools() {
        let messages = [ChatMessage::new(Role::User, "hi")];
        let req = ChatRequest {
            model: "llama3.2",
            messages: &messages,
            tools: &[],
            context_tokens: None,
            max_tokens: None,
        };
        assert_eq!(
            request_body(&req),
            json!({"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":true})
        );
    }
}
