//! The provider-neutral shapes of a chat request and of a streamed reply.
//!
//! Both wire protocols (`ollama.rs`, `openai.rs`) translate from these into
//! their request bodies and from their stream lines back into [`Delta`]s, so
//! the turn logic in `agent.rs` never sees a provider's JSON.

use serde::{Deserialize, Serialize};

/// Who wrote a message in the context sent to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call the model made, complete (arguments assembled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id (`call_...`); Ollama's older servers send none,
    /// so one is made up when absent.
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, exactly as the model produced them (it may
    /// be invalid JSON: the tool loop reports that back to the model).
    pub arguments: String,
}

/// One message of the context sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Calls made by an assistant message (empty otherwise).
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this message answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool offered to the model: its name, what it does, and the JSON schema
/// of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// Everything a provider needs to start one streamed completion.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The model name as the provider knows it (after `provider/`).
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub tools: &'a [ToolSpec],
    /// The context window to ask for (Ollama's `options.num_ctx`).
    pub context_tokens: Option<u32>,
    /// A cap on the reply's length, when the caller wants one.
    pub max_tokens: Option<u32>,
}

/// Why the model stopped, as the wire says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    /// Anything else the provider said (`content_filter`, `load`, ...).
    Other(String),
}

impl FinishReason {
    pub fn from_wire(s: &str) -> FinishReason {
        match s {
            "stop" | "end_turn" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "tool_use" => FinishReason::ToolCalls,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

/// Token counts a provider reported for one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One piece of a streamed reply, in the order it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// Answer text, to relay to the user as it comes.
    Text(String),
    /// Reasoning text (Ollama `thinking`, `reasoning_content`, `reasoning`):
    /// shown, never part of the answer, never sent back to the model.
    Thinking(String),
    /// A fragment of a tool call. OpenAI-style streams send the id and name
    /// on the first fragment of a call and argument text in later ones;
    /// Ollama sends a whole call at once. `index` is `None` where the
    /// provider sends no index (Mistral, Gemini): such a fragment belongs to
    /// a new call when it carries an id or name, else to the last call.
    ToolCall {
        index: Option<usize>,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Usage(Usage),
    /// The provider's end marker for the reply, with its reason: Ollama's
    /// `done:true`, an OpenAI-style `finish_reason`. More lines (usage, a
    /// repeated finish) may follow it.
    Finish(FinishReason),
    /// OpenAI-style `data: [DONE]`: nothing more will come.
    Done,
    /// The provider reported an error inside the stream (after a 200).
    Error(String),
}

/// A provider sent bytes that are not its protocol (a stream line that is
/// not JSON, a cut line). Not a provider's error *report*: those arrive as
/// [`Delta::Error`]. The caller abandons the stream and says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl WireError {
    /// A "not JSON" error quoting at most 120 chars of the bad input, so a
    /// log line stays readable when a proxy answers with an HTML page.
    pub(crate) fn not_json(what: &str, bytes: &[u8], err: &serde_json::Error) -> WireError {
        let text = String::from_utf8_lossy(bytes);
        let excerpt: String = text.trim().chars().take(120).collect();
        WireError(format!("{what} is not JSON ({err}): {excerpt:?}"))
    }
}
