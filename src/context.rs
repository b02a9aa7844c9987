//! What a turn sends to the model, in an order chosen for the KV cache.
//!
//! Local servers (llama.cpp, Ollama) reuse the cached prefix of the previous
//! request, so the context puts what never changes first and what changes
//! every turn last:
//!
//! 1. stable front: the config's system prompt, then the session's (later:
//!    the skills index, the summary of compacted history);
//! 2. as much recent history as fits `context_tokens`, in order;
//! 3. volatile end, next to the new user message: the local date and time
//!    (later: recalled memories, this turn's skill bodies, notify events).
//!
//! A context whose front never changes is prefilled only for its new
//! tokens, so time to first token stays flat as a session grows.

use crate::llm::{ChatMessage, Role};
use crate::session::{Message, MsgRole};

/// Everything a turn's context is made of.
pub struct Inputs<'a> {
    /// The config's `system_prompt`.
    pub system: &'a str,
    /// The session's own system prompt.
    pub session_system: Option<&'a str>,
    /// The skills index: part of the stable front, it changes only when
    /// the skills do.
    pub skills_index: Option<&'a str>,
    /// The summary of compacted history (stable until the next compaction).
    pub summary: Option<&'a str>,
    /// Earlier messages, oldest first (the current one excluded).
    pub history: &'a [&'a Message],
    /// Blocks for the volatile end, in order (the date and time first, then
    /// events, then the bodies of this turn's skills).
    pub volatile: Vec<String>,
    /// The new user message.
    pub user: &'a str,
    /// Tokens the context may use (the window minus the reply's reserve).
    pub budget_tokens: usize,
}

/// A rough token count: about four bytes a token for English text, plus a
/// few tokens of per-message framing. Deliberately pessimistic for code
/// and non-Latin text is not attempted: the reply reserve absorbs errors.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4) + 4
}

/// Builds the messages of one turn.
pub fn build(inputs: &Inputs) -> Vec<ChatMessage> {
    let mut system = inputs.system.trim().to_string();
    if let Some(own) = inputs
        .session_system
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(own);
    }
    if let Some(index) = inputs.skills_index {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(index);
    }
    if let Some(summary) = inputs.summary {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str("Summary of the earlier conversation:\n");
        system.push_str(summary);
    }
    let user = if inputs.volatile.is_empty() {
        inputs.user.to_string()
    } else {
        format!("{}\n\n{}", inputs.volatile.join("\n\n"), inputs.user)
    };

    let fixed = estimate_tokens(&system) + estimate_tokens(&user);
    let mut left = inputs.budget_tokens.saturating_sub(fixed);
    // Newest first, until the budget is spent; then back in order.
    let mut kept: Vec<ChatMessage> = Vec::new();
    for m in inputs.history.iter().rev() {
        let role = match m.role {
            MsgRole::User => Role::User,
            // What the daemon said on its own (a reminder, a heartbeat's
            // finding) reads to the model as its own earlier words.
            MsgRole::Assistant | MsgRole::Proactive if !m.content.is_empty() => Role::Assistant,
            _ => continue,
        };
        let cost = estimate_tokens(&m.content);
        if cost > left {
            break;
        }
        left -= cost;
        kept.push(ChatMessage::new(role, m.content.clone()));
    }
    // A context that opens with a reply reads oddly to some chat templates.
    if kept.last().is_some_and(|m| m.role == Role::Assistant) {
        kept.pop();
    }

    let mut out = Vec::with_capacity(kept.len() + 2);
    if !system.is_empty() {
        out.push(ChatMessage::new(Role::System, system));
    }
    out.extend(kept.into_iter().rev());
    out.push(ChatMessage::new(Role::User, user));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: MsgRole, text: &str) -> Message {
        Message::new(role, text)
    }

    #[test]
    fn order_is_system_history_then_volatile_user() {
        let h = [msg(MsgRole::User, "a"), msg(MsgRole::Assistant, "b")];
        let refs: Vec<&Message> = h.iter().collect();
        let out = build(&Inputs {
            system: "sys",
            session_system: Some("own"),
            skills_index: Some("<available_skills/>"),
            summary: None,
            history: &refs,
            volatile: vec!["[Now: Monday]".into()],
            user: "hi",
            budget_tokens: 1000,
        });
        let shown: Vec<(Role, &str)> = out.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            shown,
            [
                (Role::System, "sys\n\nown\n\n<available_skills/>"),
                (Role::User, "a"),
                (Role::Assistant, "b"),
                (Role::User, "[Now: Monday]\n\nhi"),
            ]
        );
    }

    #[test]
    fn old_history_is_dropped_to_fit() {
        let h: Vec<Message> = (0..100)
            .map(|i| {
                msg(
                    if i % 2 == 0 {
                        MsgRole::User
                    } else {
                        MsgRole::Assistant
                    },
                    &"x".repeat(400),
                )
            })
            .collect();
        let refs: Vec<&Message> = h.iter().collect();
        let out = build(&Inputs {
            system: "s",
            session_system: None,
            skills_index: None,
            summary: None,
            history: &refs,
            volatile: vec![],
            user: "u",
            budget_tokens: 1000,
        });
        let used: usize = out.iter().map(|m| estimate_tokens(&m.content)).sum();
        assert!(used <= 1000, "{used}");
        assert!(out.len() > 3 && out.len() < 20, "{}", out.len());
        assert_eq!(
            out[1].role,
            Role::User,
            "history starts with a user message"
        );
    }
}
