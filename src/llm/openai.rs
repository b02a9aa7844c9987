//! The OpenAI-compatible chat protocol: `POST {base}/chat/completions` with
//! `stream: true`, answered as Server-Sent Events (see [`crate::llm::sse`]).
//! Spoken by OpenAI, llama.cpp's server, vLLM, OpenRouter, DeepSeek, xAI,
//! Groq, Mistral, Gemini's compatibility endpoint and Azure.
//!
//! Policy: read the common subset and tolerate every known variation:
//! unknown fields are ignored; `index` may be missing on tool calls; usage
//! may arrive in its own `choices: []` chunk, in the finish chunk, or not at
//! all; reasoning comes as `reasoning_content` or `reasoning`. Any error
//! reported inside the stream (an `event: error`, llama.cpp's `error:` line,
//! a top-level `error` member, `finish_reason: "error"`) becomes one
//! [`Delta::Error`]; only data that is not JSON is a [`WireError`].

use crate::llm::http_error::message_from_json;
use crate::llm::sse::SseEvent;
use crate::llm::types::{ChatMessage, ChatRequest, Delta, FinishReason, Role, Usage, WireError};
use serde_json::{json, Value};

/// The JSON body of a streamed chat completion request.
pub fn request_body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        // Without this, OpenAI-style servers send no token counts at all.
        "stream_options": { "include_usage": true },
    });
    if let Some(n) = req.max_tokens {
        body["max_tokens"] = n.into();
    }
    // An empty `tools` array is an error at some servers: omit it.
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

fn message_json(m: &ChatMessage) -> Value {
    match m.role {
        Role::System => json!({ "role": "system", "content": m.content }),
        Role::User => json!({ "role": "user", "content": m.content }),
        Role::Assistant => {
            let mut obj = json!({ "role": "assistant", "content": m.content });
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            // The wire wants the arguments as JSON *text*.
                            "function": { "name": c.name, "arguments": c.arguments },
                        })
                    })
                    .collect();
                obj["tool_calls"] = Value::Array(calls);
                // OpenAI's own form for a pure tool-call turn; some servers
                // reject `""` next to `tool_calls`.
                if m.content.is_empty() {
                    obj["content"] = Value::Null;
                }
            }
            obj
        }
        Role::Tool => {
            let mut obj = json!({ "role": "tool", "content": m.content });
            if let Some(id) = &m.tool_call_id {
                obj["tool_call_id"] = Value::String(id.clone());
            }
            obj
        }
    }
}

/// The deltas of one SSE event, in order: error, or thinking, text, tool
/// calls, finish, usage.
pub fn parse_event(ev: &SseEvent) -> Result<Vec<Delta>, WireError> {
    let data = ev.data.trim();
    if data == "[DONE]" {
        return Ok(vec![Delta::Done]);
    }
    if ev.event.as_deref() == Some("error") {
        // Whatever its shape, an error event is an error: never a WireError.
        let msg = serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| message_from_json(&v))
            .unwrap_or_else(|| non_empty_or(data, "error event without a message"));
        return Ok(vec![Delta::Error(msg)]);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| WireError::not_json("SSE data", data.as_bytes(), &e))?;
    let obj = match &v {
        Value::Object(o) => o,
        // An error wrapped in an array (Gemini's style).
        Value::Array(_) => {
            return match message_from_json(&v) {
                Some(msg) => Ok(vec![Delta::Error(msg)]),
                None => Err(WireError(format!(
                    "SSE data is an unexpected array: {data:.120}"
                ))),
            }
        }
        _ => {
            return Err(WireError(format!(
                "SSE data is not a JSON object: {data:.120}"
            )))
        }
    };
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        let msg = message_from_json(&v).unwrap_or_else(|| "provider reported an error".into());
        return Ok(vec![Delta::Error(msg)]);
    }

    let mut out = Vec::new();
    // Only the first choice: the daemon never asks for `n > 1`. An empty
    // `choices` (Azure's prompt-filter chunk, the usage chunk) adds nothing.
    let choice = obj
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    if let Some(choice) = choice {
        if let Some(delta) = choice.get("delta") {
            // Some servers send both names with the same text: take one.
            let thought = nonempty_str(delta.get("reasoning_content"))
                .or_else(|| nonempty_str(delta.get("reasoning")));
            if let Some(t) = thought {
                out.push(Delta::Thinking(t.to_string()));
            }
            if let Some(t) = nonempty_str(delta.get("content")) {
                out.push(Delta::Text(t.to_string()));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                out.extend(calls.iter().map(tool_call_delta));
            }
        }
        if let Some(reason) = nonempty_str(choice.get("finish_reason")) {
            if reason == "error" {
                // OpenRouter: the error object may sit on the choice.
                let msg = choice
                    .get("error")
                    .and_then(message_from_json)
                    .unwrap_or_else(|| "the provider ended the reply with an error".into());
                out.push(Delta::Error(msg));
                return Ok(out);
            }
            out.push(Delta::Finish(FinishReason::from_wire(reason)));
        }
    }
    if let Some(usage) = obj.get("usage").and_then(Value::as_object) {
        let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        out.push(Delta::Usage(Usage {
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
        }));
    }
    Ok(out)
}

fn tool_call_delta(call: &Value) -> Delta {
    let func = call.get("function");
    let field = |k: &str| func.and_then(|f| f.get(k));
    let arguments = match field("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // A server that sends an object (not the spec, seen in the wild).
        Some(other) => other.to_string(),
    };
    Delta::ToolCall {
        index: call
            .get("index")
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

fn non_empty_or(s: &str, default: &str) -> String {
    if s.is_empty() {
        default.to_string()
    } else {
        s.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseReader;
    use crate::llm::toolcalls::ToolCallAccumulator;
    use crate::llm::types::{ToolCall, ToolSpec};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/providers/", $name))
        };
    }

    /// Reads a transcript through the SSE reader and parses every event.
    fn run(bytes: &[u8]) -> Vec<Delta> {
        let mut r = SseReader::new(bytes, 1 << 16);
        let mut out = Vec::new();
        while let Some(ev) = r.next_event().unwrap() {
            out.extend(parse_event(&ev).expect("every event parses"));
        }
        out
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

    fn usages(ds: &[Delta]) -> Vec<(u64, u64)> {
        ds.iter()
            .filter_map(|d| match d {
                Delta::Usage(u) => Some((u.prompt_tokens, u.completion_tokens)),
                _ => None,
            })
            .collect()
    }

    fn finishes(ds: &[Delta]) -> Vec<FinishReason> {
        ds.iter()
            .filter_map(|d| match d {
                Delta::Finish(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    fn errors(ds: &[Delta]) -> Vec<&str> {
        ds.iter()
            .filter_map(|d| match d {
                Delta::Error(e) => Some(e.as_str()),
                _ => None,
            })
            .collect()
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn plain_with_usage_chunk() {
        let ds = run(fixture!("sse-plain-usage.sse"));
        assert_eq!(text(&ds), "Tea is ready.");
        assert_eq!(finishes(&ds), [FinishReason::Stop]);
        assert_eq!(usages(&ds), [(11, 3)]);
        assert_eq!(ds.last(), Some(&Delta::Done));
    }

    #[test]
    fn plain_without_usage() {
        let ds = run(fixture!("sse-no-usage.sse"));
        assert_eq!(text(&ds), "Tea is ready.");
        assert!(usages(&ds).is_empty());
        assert_eq!(ds.last(), Some(&Delta::Done));
    }

    #[test]
    fn length() {
        let ds = run(fixture!("sse-length.sse"));
        assert_eq!(text(&ds), "Once");
        assert_eq!(finishes(&ds), [FinishReason::Length]);
    }

    #[test]
    fn tool_call_fragments() {
        let ds = run(fixture!("sse-tool-fragments.sse"));
        assert_eq!(text(&ds), "");
        assert_eq!(
            calls(&ds),
            [call("call_note1", "read_note", r#"{"title":"todo"}"#)]
        );
        assert_eq!(finishes(&ds), [FinishReason::ToolCalls]);
        assert_eq!(usages(&ds), [(40, 12)]);
    }

    #[test]
    fn parallel_calls() {
        let ds = run(fixture!("sse-parallel-calls.sse"));
        assert_eq!(
            calls(&ds),
            [
                call("call_p0", "add", r#"{"a":1,"b":2}"#),
                call("call_p1", "mul", r#"{"a":3,"b":4}"#)
            ]
        );
    }

    #[test]
    fn calls_without_index() {
        let ds = run(fixture!("sse-no-index-call.sse"));
        assert_eq!(
            calls(&ds),
            [
                call("k1", "lookup", r#"{"q":"rust"}"#),
                call("k2", "lookup", r#"{"q":"serde"}"#)
            ]
        );
        // Finish and usage came in the same chunk as the second call.
        assert_eq!(finishes(&ds), [FinishReason::ToolCalls]);
        assert_eq!(usages(&ds), [(30, 20)]);
    }

    #[test]
    fn whole_call_in_one_delta() {
        let ds = run(fixture!("sse-whole-call.sse"));
        assert_eq!(calls(&ds), [call("call_w1", "clock", "{}")]);
        assert_eq!(usages(&ds), [(25, 5)]);
    }

    #[test]
    fn reasoning_content() {
        let ds = run(fixture!("sse-reasoning-content.sse"));
        assert_eq!(thinking(&ds), "Two plus two.");
        assert_eq!(text(&ds), "4");
        assert_eq!(usages(&ds), [(9, 7)]);
    }

    #[test]
    fn reasoning_with_keepalive_comments() {
        let ds = run(fixture!("sse-reasoning-keepalive.sse"));
        assert_eq!(thinking(&ds), "Greet back.");
        assert_eq!(text(&ds), "Hi there");
        assert_eq!(finishes(&ds), [FinishReason::Stop]);
        // Usage on an empty-delta choice, and again in a `choices: []` chunk.
        assert_eq!(usages(&ds), [(6, 4), (6, 4)]);
    }

    #[test]
    fn midstream_error_object() {
        let ds = run(fixture!("sse-error-object.sse"));
        assert_eq!(text(&ds), "Half");
        assert_eq!(errors(&ds), ["The upstream model failed."]);
        assert!(!ds.contains(&Delta::Done));
    }

    #[test]
    fn midstream_error_numeric_code() {
        let ds = run(fixture!("sse-error-numeric.sse"));
        assert_eq!(ds, [Delta::Error("Provider went away.".into())]);
    }

    #[test]
    fn finish_reason_error() {
        let ds = run(fixture!("sse-finish-error.sse"));
        assert_eq!(text(&ds), "Some");
        assert_eq!(errors(&ds), ["Backend dropped the stream"]);
        assert!(finishes(&ds).is_empty());
    }

    #[test]
    fn llamacpp_error_field() {
        let ds = run(fixture!("sse-llamacpp-error-field.sse"));
        assert_eq!(text(&ds), "Par");
        assert_eq!(errors(&ds), ["context window is full"]);
    }

    #[test]
    fn quirky_framing() {
        let ds = run(fixture!("sse-framing.sse"));
        // The data here are not chunks: only framing matters, so each
        // non-[DONE] event yields nothing and [DONE] arrives without a
        // trailing blank line.
        assert_eq!(ds, [Delta::Done]);
    }

    #[test]
    fn multiline_data() {
        let ds = run(fixture!("sse-multiline.sse"));
        assert_eq!(ds, [Delta::Text("two lines".into()), Delta::Done]);
    }

    #[test]
    fn azure_prompt_filter_chunk_is_nothing() {
        let ds = run(fixture!("sse-azure-filter.sse"));
        assert_eq!(
            ds,
            [
                Delta::Text("Fine".into()),
                Delta::Finish(FinishReason::Stop),
                Delta::Usage(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 1
                }),
                Delta::Done
            ]
        );
    }

    #[test]
    fn duplicate_finish_keeps_the_call() {
        let ds = run(fixture!("sse-duplicate-finish.sse"));
        assert_eq!(
            calls(&ds),
            [call("tool_0_ls", "list_dir", r#"{"path":"."}"#)]
        );
        assert_eq!(finishes(&ds).len(), 2);
    }

    fn data(s: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: s.into(),
        }
    }

    #[test]
    fn odd_events() {
        assert!(parse_event(&data("not json")).is_err());
        assert!(parse_event(&data("42")).is_err());
        assert!(parse_event(&data("[1]")).is_err());
        assert_eq!(parse_event(&data("{}")).unwrap(), []);
        assert_eq!(parse_event(&data(" [DONE] ")).unwrap(), [Delta::Done]);
        assert_eq!(
            parse_event(&data(r#"{"error":"plain string"}"#)).unwrap(),
            [Delta::Error("plain string".into())]
        );
        assert_eq!(
            parse_event(&data(r#"[{"error":{"message":"in array"}}]"#)).unwrap(),
            [Delta::Error("in array".into())]
        );
        // An `event: error` whose data is not JSON is still an error.
        let ev = SseEvent {
            event: Some("error".into()),
            data: "overloaded".into(),
        };
        assert_eq!(
            parse_event(&ev).unwrap(),
            [Delta::Error("overloaded".into())]
        );
        // `usage: null`, `finish_reason: null`, `content: null` add nothing.
        let quiet = r#"{"choices":[{"index":0,"delta":{"content":null},"finish_reason":null}],"usage":null}"#;
        assert_eq!(parse_event(&data(quiet)).unwrap(), []);
        // Both reasoning names with the same text: one Thinking.
        let both = r#"{"choices":[{"delta":{"reasoning_content":"r","reasoning":"r"}}]}"#;
        assert_eq!(
            parse_event(&data(both)).unwrap(),
            [Delta::Thinking("r".into())]
        );
    }

    #[test]
    fn request_body_shape() {
        let mut asst = ChatMessage::new(Role::Assistant, "");
        asst.tool_calls = vec![call("call_1", "get_time", r#"{"zone":"UTC"}"#)];
        let mut result = ChatMessage::new(Role::Tool, "12:00");
        result.tool_call_id = Some("call_1".into());
        let messages = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Time?"),
            asst,
            result,
            ChatMessage::new(Role::Assistant, "It is noon."),
        ];
        let tools = [ToolSpec {
            name: "get_time".into(),
            description: "Current time".into(),
            parameters: json!({"type":"object","properties":{}}),
        }];
        let req = ChatRequest {
            model: "gpt-4o-mini",
            messages: &messages,
            tools: &tools,
            context_tokens: Some(4096),
            max_tokens: Some(100),
        };
        assert_eq!(
            request_body(&req),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role":"system","content":"Be brief."},
                    {"role":"user","content":"Time?"},
                    {"role":"assistant","content":null,"tool_calls":[
                        {"id":"call_1","type":"function",
                         "function":{"name":"get_time","arguments":"{\"zone\":\"UTC\"}"}}
                    ]},
                    {"role":"tool","content":"12:00","tool_call_id":"call_1"},
                    {"role":"assistant","content":"It is noon."}
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 100,
                "tools": [{"type":"function","function":{
                    "name":"get_time","description":"Current time",
                    "parameters":{"type":"object","properties":{}}
                }}]
            })
        );
    }

    #[test]
    fn request_body_minimal() {
        let messages = [ChatMessage::new(Role::User, "hi")];
        let req = ChatRequest {
            model: "m",
            messages: &messages,
            tools: &[],
            context_tokens: None,
            max_tokens: None,
        };
        let body = request_body(&req);
        assert!(body.get("tools").is_none());
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["stream"], json!(true));
    }
}
