//! The wire contract: every request and event name of the socket protocol.
//!
//! This module is the single source of the names in `docs/protocol.md`
//! (`PROTOCOL.md` version 1). Names are stable: add fields, never rename or
//! remove them. A conversation looks like this (`>` client, `<` daemon):
//!
//! ```text
//! > {"action":"create","session_id":"test","model":"ollama/llama3.2","id":1}
//! < {"event":"created","session_id":"test","model":"ollama/llama3.2","new":true,"id":1}
//! > {"action":"send","session_id":"test","message":"Hello","id":2}
//! < {"event":"response","session_id":"test","delta":"Hi ","done":false,"id":2}
//! < {"event":"response","session_id":"test","delta":"there.","done":true,"finish_reason":"stop","id":2}
//! > {"action":"nope"}
//! < {"event":"error","code":"unknown_action","message":"unknown action 'nope'; ..."}
//! ```
//!
//! Requests are parsed by hand from a `serde_json::Value` rather than derived,
//! so that every wrong field gets a message naming it and the request's `id`
//! can be echoed even when the rest of the request is bad.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::llm::Usage;

/// Every action a client may send, for the `unknown_action` message.
pub const ACTIONS: &[&str] = &[
    "create",
    "send",
    "cancel",
    "list",
    "history",
    "delete",
    "subscribe",
    "unsubscribe",
    "ping",
    "status",
    "config",
    "remind",
    "reminders",
    "unremind",
    "heartbeat",
    "notify",
    "remember",
    "memories",
    "forget",
    "skills",
    "reload",
    "pin_skill",
    "unpin_skill",
];

/// The longest session id, in bytes (all allowed characters are ASCII).
pub const MAX_SESSION_ID: usize = 64;
/// `history` returns at most this many messages per page.
pub const MAX_HISTORY_LIMIT: usize = 1000;
/// `history` page size when the request gives none.
pub const DEFAULT_HISTORY_LIMIT: usize = 20;

/// A request's `id`, echoed on every event that answers it. Only a string
/// or a number is accepted, so it is kept as the JSON value it came as.
pub type RequestId = Value;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Create {
        session_id: String,
        model: Option<String>,
        system: Option<String>,
    },
    Send {
        session_id: String,
        message: String,
        model: Option<String>,
    },
    Cancel {
        session_id: String,
    },
    List,
    History {
        session_id: String,
        limit: usize,
        offset: usize,
    },
    Delete {
        session_id: String,
    },
    Subscribe {
        session_id: String,
    },
    Unsubscribe {
        session_id: String,
    },
    Ping,
    Status,
    Config,
    Remind {
        session_id: String,
        message: String,
        due: Due,
        repeat_secs: Option<u64>,
    },
    Reminders {
        session_id: Option<String>,
    },
    Unremind {
        reminder_id: String,
    },
    Heartbeat {
        session_id: String,
        every_secs: u64,
        prompt: Option<String>,
    },
    Notify {
        session_id: String,
        source: String,
        message: String,
        delivery: Delivery,
    },
    Remember {
        session_id: Option<String>,
        text: String,
    },
    Memories {
        session_id: Option<String>,
        query: Option<String>,
    },
    Forget {
        memory_id: String,
    },
    Skills,
    Reload,
    PinSkill {
        session_id: String,
        skill: String,
    },
    UnpinSkill {
        session_id: String,
        skill: String,
    },
}

/// When a reminder is due, as the request said it.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// `in_secs`: this many seconds from now.
    In(u64),
    /// `at`: an RFC 3339 time, as seconds since the epoch.
    At(i64),
}

/// How a `notify` event reaches the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Kept and put into the context of the session's next turn.
    NextTurn,
    /// Starts a turn now, whose reply is a `proactive` event.
    Immediate,
    /// Only stored in history (role `event`).
    Silent,
}

/// A request that could not be parsed: the error to answer with, and the
/// `id` and `session_id` to echo when they could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    pub id: Option<RequestId>,
    pub session_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl Request {
    /// Parses one request line (without its line end).
    pub fn parse(line: &[u8]) -> Result<(Option<RequestId>, Request), BadRequest> {
        let bad = |id, code, message: String| BadRequest {
            id,
            session_id: None,
            code,
            message,
        };
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            bad(
                None,
                ErrorCode::InvalidJson,
                format!("the line is not valid JSON ({e}); send one JSON object per line"),
            )
        })?;
        let Value::Object(obj) = value else {
            return Err(bad(
                None,
                ErrorCode::InvalidJson,
                "the line is not a JSON object; send one object per line, like {\"action\":\"ping\"}"
                    .into(),
            ));
        };
        // `null` is "any other type" to the contract, so it is refused too.
        let id = match obj.get("id") {
            None => None,
            Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            Some(_) => {
                return Err(bad(
                    None,
                    ErrorCode::InvalidRequest,
                    "field 'id' must be a string or a number".into(),
                ))
            }
        };
        let fields = Fields { obj: &obj };
        Request::from_fields(&fields)
            .map(|r| (id.clone(), r))
            .map_err(|(code, message)| {
                BadRequest {
                    id,
                    // Echo a well-formed session id, so a client can tell which
                    // session a failed request was about.
                    session_id: obj
                        .get("session_id")
                        .and_then(Value::as_str)
                        .filter(|s| valid_session_id(s))
                        .map(str::to_string),
                    code,
                    message,
                }
            })
    }

    fn from_fields(f: &Fields) -> Result<Request, (ErrorCode, String)> {
        let action = match f.obj.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(invalid("field 'action' must be a string, like \"ping\"")),
            None => return Err(invalid("missing field 'action' (a string, like \"ping\")")),
        };
        Ok(match action {
            "create" => Request::Create {
                session_id: f.session_id()?,
                model: f.opt_str("model")?,
                system: f.opt_str("system")?,
            },
            "send" => Request::Send {
                session_id: f.session_id()?,
                message: f.str("message")?,
                model: f.opt_str("model")?,
            },
            "cancel" => Request::Cancel {
                session_id: f.session_id()?,
            },
            "list" => Request::List,
            "history" => Request::History {
                session_id: f.session_id()?,
                limit: f
                    .opt_usize("limit")?
                    .unwrap_or(DEFAULT_HISTORY_LIMIT)
                    .min(MAX_HISTORY_LIMIT),
                offset: f.opt_usize("offset")?.unwrap_or(0),
            },
            "delete" => Request::Delete {
                session_id: f.session_id()?,
            },
            "subscribe" => Request::Subscribe {
                session_id: f.session_id()?,
            },
            "unsubscribe" => Request::Unsubscribe {
                session_id: f.session_id()?,
            },
            "ping" => Request::Ping,
            "status" => Request::Status,
            "config" => Request::Config,
            "remind" => Request::Remind {
                session_id: f.session_id()?,
                message: f.str("message")?,
                due: match (f.opt_u64("in_secs")?, f.opt_str("at")?) {
                    (Some(secs), None) if secs > 0 => Due::In(secs),
                    (None, Some(at)) => Due::At(crate::time::parse_rfc3339(&at).ok_or_else(|| {
                        invalid(&format!(
                            "field 'at' is not an RFC 3339 time: {:?}; write it like \"2026-11-24T15:00:00Z\"",
                            truncate(&at, 64)
                        ))
                    })?),
                    (Some(_), None) => return Err(invalid("field 'in_secs' must be at least 1")),
                    (Some(_), Some(_)) => return Err(invalid("give either 'in_secs' or 'at', not both")),
                    (None, None) => {
                        return Err(invalid(
                            "missing field 'in_secs' (seconds from now) or 'at' (an RFC 3339 time)",
                        ))
                    }
                },
                repeat_secs: f.opt_u64("repeat_secs")?.filter(|&n| n > 0),
            },
            "reminders" => Request::Reminders {
                session_id: f.opt_session_id()?,
            },
            "remember" => Request::Remember {
                session_id: f.opt_session_id()?,
                text: f.str("text")?,
            },
            "memories" => Request::Memories {
                session_id: f.opt_session_id()?,
                query: f.opt_str("query")?,
            },
            "forget" => Request::Forget {
                memory_id: f.str("memory_id")?,
            },
            "unremind" => Request::Unremind {
                reminder_id: f.str("reminder_id")?,
            },
            "heartbeat" => Request::Heartbeat {
                session_id: f.session_id()?,
                every_secs: f
                    .opt_u64("every_secs")?
                    .ok_or_else(|| invalid("missing field 'every_secs' (seconds; 0 turns the heartbeat off)"))?,
                prompt: f.opt_str("prompt")?,
            },
            "skills" => Request::Skills,
            "reload" => Request::Reload,
            "pin_skill" => Request::PinSkill {
                session_id: f.session_id()?,
                skill: f.str("skill")?,
            },
            "unpin_skill" => Request::UnpinSkill {
                session_id: f.session_id()?,
                skill: f.str("skill")?,
            },
            "notify" => Request::Notify {
                session_id: f.session_id()?,
                source: f.opt_str("source")?.unwrap_or_else(|| "unknown".into()),
                message: f.str("message")?,
                delivery: match f.opt_str("delivery")?.as_deref() {
                    None | Some("next_turn") => Delivery::NextTurn,
                    Some("immediate") => Delivery::Immediate,
                    Some("silent") => Delivery::Silent,
                    Some(other) => {
                        return Err(invalid(&format!(
                            "field 'delivery' must be \"next_turn\", \"immediate\" or \"silent\", not {:?}",
                            truncate(other, 32)
                        )))
                    }
                },
            },
            other => {
                return Err((
                    ErrorCode::UnknownAction,
                    format!(
                        "unknown action '{}'; the actions are: {}",
                        truncate(other, 64),
                        ACTIONS.join(", ")
                    ),
                ))
            }
        })
    }
}

fn invalid(msg: &str) -> (ErrorCode, String) {
    (ErrorCode::InvalidRequest, msg.to_string())
}

/// Typed access to a request's fields, with messages that name the field.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn opt_str(&self, key: &str) -> Result<Option<String>, (ErrorCode, String)> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(&format!("field '{key}' must be a string"))),
        }
    }

    fn str(&self, key: &str) -> Result<String, (ErrorCode, String)> {
        self.opt_str(key)?
            .ok_or_else(|| invalid(&format!("missing field '{key}' (a string)")))
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, (ErrorCode, String)> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(invalid(&format!(
                "field '{key}' must be a whole number of 0 or more"
            ))),
        }
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>, (ErrorCode, String)> {
        Ok(self
            .opt_u64(key)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    }

    /// An optional `session_id`, checked when present.
    fn opt_session_id(&self) -> Result<Option<String>, (ErrorCode, String)> {
        match self.obj.get("session_id") {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.session_id().map(Some),
        }
    }

    fn session_id(&self) -> Result<String, (ErrorCode, String)> {
        let id = self.str("session_id")?;
        if valid_session_id(&id) {
            Ok(id)
        } else {
            Err((
                ErrorCode::InvalidSessionId,
                format!(
                    "invalid session_id {:?}: use 1 to {MAX_SESSION_ID} characters of A-Z a-z 0-9 . _ -, not starting with '.'",
                    truncate(&id, 80)
                ),
            ))
        }
    }
}

/// Whether `id` may name a session (and so a folder on disk).
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Cuts `s` to at most `max` bytes on a character boundary, for messages
/// that echo client input.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The `code` of an `error` event: for programs (the `message` is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a JSON object.
    InvalidJson,
    /// A field is missing or has the wrong type.
    InvalidRequest,
    /// `action` is not one of [`ACTIONS`].
    UnknownAction,
    /// See [`valid_session_id`].
    InvalidSessionId,
    /// The session does not exist.
    SessionNotFound,
    /// The line exceeds `max_line_bytes`.
    LineTooLong,
    /// Sent once, then the connection is closed.
    TooManyConnections,
    /// The peer's uid is not allowed; then the connection is closed.
    PermissionDenied,
    /// A queued `send` that will not run because the daemon is stopping.
    ShuttingDown,
    /// The model string is malformed or names an unknown provider.
    InvalidModel,
    /// The provider could not be reached (after retries).
    LlmUnreachable,
    /// The provider answered with an error status.
    LlmError,
    /// The provider's stream broke off, stalled or was malformed.
    LlmStream,
    /// An unknown memory, reminder or skill.
    NotFound,
    /// A `notify` source sent more than its rate allows.
    RateLimited,
    /// A bug: the daemon logged the details.
    Internal,
}

/// Why a turn ended, on its terminal `response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Stop,
    Length,
    Cancelled,
    ToolLimit,
}

/// One entry of `list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub model: String,
    pub messages: usize,
    pub created_at: String,
    pub updated_at: String,
    pub busy: bool,
}

/// One entry of `reminders`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReminderInfo {
    pub reminder_id: String,
    pub session_id: String,
    pub message: String,
    pub due: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_secs: Option<u64>,
}

/// One entry of `memories`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInfo {
    pub memory_id: String,
    pub text: String,
    /// `session` or `global`.
    pub scope: &'static str,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// Why a skill is active in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillReason {
    /// `/name` or `$name` in the message.
    Explicit,
    /// Pinned to the session.
    Pinned,
    /// The daemon's own relevance match.
    Matched,
    /// The model asked for it.
    Model,
}

/// What made a `proactive` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProactiveKind {
    Reminder,
    Heartbeat,
    Event,
}

/// An event the daemon sends. Serialized as `{"event":"<name>", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Created {
        session_id: String,
        model: String,
        new: bool,
    },
    /// One piece of a streamed reply; the last one has `done: true`.
    Response {
        session_id: String,
        delta: String,
        done: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        finish_reason: Option<Finish>,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// Reasoning text of a thinking model: never part of the reply.
    Thinking {
        session_id: String,
        delta: String,
    },
    Cancelled {
        session_id: String,
        running: bool,
    },
    Sessions {
        sessions: Vec<SessionInfo>,
    },
    History {
        session_id: String,
        total: usize,
        offset: usize,
        messages: Vec<Value>,
    },
    Deleted {
        session_id: String,
    },
    Subscribed {
        session_id: String,
    },
    Unsubscribed {
        session_id: String,
    },
    Pong,
    Status {
        version: &'static str,
        uptime_secs: u64,
        sessions: usize,
        connections: usize,
        skills: usize,
        default_model: String,
    },
    Config {
        path: String,
        config: Value,
    },
    Keepalive {
        ts: String,
    },
    Scheduled {
        session_id: String,
        reminder_id: String,
        due: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        repeat_secs: Option<u64>,
    },
    Reminders {
        reminders: Vec<ReminderInfo>,
    },
    Unscheduled {
        reminder_id: String,
    },
    HeartbeatSet {
        session_id: String,
        every_secs: u64,
    },
    Notified {
        session_id: String,
    },
    Remembered {
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        memory_id: String,
    },
    Memories {
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        memories: Vec<MemoryInfo>,
    },
    Forgotten {
        memory_id: String,
    },
    /// A tool the model called during a turn, with its result.
    Tool {
        session_id: String,
        tool: String,
        arguments: Value,
        result: String,
    },
    /// Older history was summarized to fit the context budget.
    Compacted {
        session_id: String,
        messages: usize,
    },
    /// The skills found, with the warnings of those that loaded and the
    /// reasons of those skipped.
    Skills {
        skills: Vec<Value>,
        skipped: Vec<Value>,
    },
    Reloaded {
        skills: usize,
    },
    SkillPinned {
        session_id: String,
        skill: String,
    },
    SkillUnpinned {
        session_id: String,
        skill: String,
    },
    /// A skill shapes this turn; sent before the text it shapes.
    Skill {
        session_id: String,
        skill: String,
        reason: SkillReason,
    },
    /// Something the daemon says on its own: a reminder, a heartbeat's
    /// finding, the reply to an external event.
    Proactive {
        session_id: String,
        message: String,
        kind: ProactiveKind,
        ts: String,
    },
    Shutdown,
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
}

impl Event {
    pub fn error(code: ErrorCode, message: impl Into<String>, session_id: Option<&str>) -> Event {
        Event::Error {
            code,
            message: message.into(),
            session_id: session_id.map(str::to_string),
        }
    }

    /// The event as one JSON line (with its `\n`), carrying `id` when given.
    pub fn to_line(&self, id: Option<&RequestId>) -> String {
        #[derive(Serialize)]
        struct WithId<'a> {
            #[serde(flatten)]
            event: &'a Event,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a RequestId>,
        }
        // Serializing these types cannot fail: no maps with non-string keys,
        // and serde_json writes no NaN (f64 fields do not exist here).
        let mut line = serde_json::to_string(&WithId { event: self, id }).unwrap_or_else(|_| {
            r#"{"event":"error","code":"internal","message":"serialization failed"}"#.into()
        });
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<(Option<RequestId>, Request), BadRequest> {
        Request::parse(s.as_bytes())
    }

    #[test]
    fn parses_send_with_id_and_unknown_fields() {
        let (id, req) =
            parse(r#"{"action":"send","session_id":"a","message":"hi","id":7,"extra":[1]}"#)
                .unwrap();
        assert_eq!(id, Some(json!(7)));
        assert_eq!(
            req,
            Request::Send {
                session_id: "a".into(),
                message: "hi".into(),
                model: None
            }
        );
    }

    #[test]
    fn explicit_null_is_absent() {
        let (_, req) = parse(r#"{"action":"create","session_id":"a","model":null}"#).unwrap();
        assert_eq!(
            req,
            Request::Create {
                session_id: "a".into(),
                model: None,
                system: None
            }
        );
    }

    #[test]
    fn errors_have_the_right_codes() {
        let code = |s: &str| parse(s).unwrap_err().code;
        assert_eq!(code("nope"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"id":1}"#), ErrorCode::InvalidRequest);
        assert_eq!(code(r#"{"action":5}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code(r#"{"action":"ping","id":true}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(r#"{"action":"fly"}"#), ErrorCode::UnknownAction);
        assert_eq!(
            code(r#"{"action":"send","session_id":"../etc","message":"x"}"#),
            ErrorCode::InvalidSessionId
        );
        assert_eq!(
            code(r#"{"action":"send","session_id":"a"}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(r#"{"action":"history","session_id":"a","limit":-1}"#),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn bad_request_echoes_id() {
        let err = parse(r#"{"action":"send","session_id":"a","id":"x"}"#).unwrap_err();
        assert_eq!(err.id, Some(json!("x")));
        assert_eq!(err.session_id.as_deref(), Some("a"));
        assert!(err.message.contains("'message'"), "{}", err.message);
    }

    #[test]
    fn session_ids() {
        for ok in ["a", "A.b_c-1", &"x".repeat(64)] {
            assert!(valid_session_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "../etc",
            "a\0b",
            "é",
            &"x".repeat(65),
            "a b",
        ] {
            assert!(!valid_session_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn parses_proactive_requests() {
        let (_, r) =
            parse(r#"{"action":"remind","session_id":"w","message":"m","in_secs":30}"#).unwrap();
        assert_eq!(
            r,
            Request::Remind {
                session_id: "w".into(),
                message: "m".into(),
                due: Due::In(30),
                repeat_secs: None
            }
        );
        let (_, r) = parse(
            r#"{"action":"remind","session_id":"w","message":"m","at":"1970-01-01T00:01:00Z"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            Request::Remind {
                due: Due::At(60),
                ..
            }
        ));
        for bad in [
            r#"{"action":"remind","session_id":"w","message":"m"}"#,
            r#"{"action":"remind","session_id":"w","message":"m","at":"soon"}"#,
            r#"{"action":"remind","session_id":"w","message":"m","in_secs":0}"#,
            r#"{"action":"remind","session_id":"w","message":"m","in_secs":-5}"#,
            r#"{"action":"notify","session_id":"w","message":"m","delivery":"loud"}"#,
            r#"{"action":"heartbeat","session_id":"w"}"#,
        ] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                ErrorCode::InvalidRequest,
                "{bad}"
            );
        }
        let (_, r) = parse(r#"{"action":"notify","session_id":"w","message":"m"}"#).unwrap();
        assert!(matches!(
            r,
            Request::Notify {
                delivery: Delivery::NextTurn,
                ..
            }
        ));
    }

    #[test]
    fn history_limit_is_capped() {
        let (_, req) = parse(r#"{"action":"history","session_id":"a","limit":5000}"#).unwrap();
        assert_eq!(
            req,
            Request::History {
                session_id: "a".into(),
                limit: MAX_HISTORY_LIMIT,
                offset: 0
            }
        );
    }

    #[test]
    fn events_serialize_exactly() {
        let ev = Event::Response {
            session_id: "t".into(),
            delta: "Hi".into(),
            done: true,
            finish_reason: Some(Finish::Stop),
            usage: None,
        };
        assert_eq!(
            ev.to_line(Some(&json!(2))),
            "{\"event\":\"response\",\"session_id\":\"t\",\"delta\":\"Hi\",\"done\":true,\"finish_reason\":\"stop\",\"id\":2}\n"
        );
        assert_eq!(Event::Pong.to_line(None), "{\"event\":\"pong\"}\n");
        assert_eq!(
            Event::error(ErrorCode::LineTooLong, "too long", None).to_line(None),
            "{\"event\":\"error\",\"code\":\"line_too_long\",\"message\":\"too long\"}\n"
        );
    }
}
