//! Compaction: when a session's history outgrows the context budget, the
//! oldest part is summarized once by the model, the summary is stored in
//! `meta.json`, and later turns send the summary (in the stable front of the
//! context) instead of those messages. `history` still returns everything.
//!
//! Policy: compact rarely and in large steps. Compaction starts when the
//! history would fill more than 3/4 of the budget, and keeps only the
//! newest third, so the next one is many turns away and the cached prefix
//! (system prompt, index, summary) stays unchanged in between. The cut
//! always falls before a user message; tool calls and their results never
//! reach the context of later turns, so a cut cannot separate them.

use serde::{Deserialize, Serialize};

use crate::context::estimate_tokens;
use crate::llm::{ChatMessage, Role};
use crate::session::{Message, MsgRole};

/// The stored summary of the history before `covers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub text: String,
    /// History messages (a prefix) the summary stands for.
    pub covers: usize,
}

/// A compaction to run: the request for the summary, and what it covers.
#[derive(Debug)]
pub struct Plan {
    pub request: Vec<ChatMessage>,
    /// The summary will stand for `history[..covers]`.
    pub covers: usize,
    /// Messages newly summarized (for the `compacted` event's log line).
    pub newly: usize,
}

/// Whether a message ever reaches a later turn's context.
pub fn in_context(m: &Message) -> bool {
    matches!(
        m.role,
        MsgRole::User | MsgRole::Assistant | MsgRole::Proactive
    ) && !m.content.is_empty()
}

/// Decides whether `history` needs compacting for a context of `budget`
/// tokens; `skip` are indices not part of it (this and queued turns).
pub fn plan(
    budget: usize,
    summary: Option<&Summary>,
    history: &[Message],
    skip: &[usize],
) -> Option<Plan> {
    let from = summary.map_or(0, |s| s.covers).min(history.len());
    let eligible: Vec<usize> = (from..history.len())
        .filter(|i| !skip.contains(i) && in_context(&history[*i]))
        .collect();
    let total: usize = eligible
        .iter()
        .map(|&i| estimate_tokens(&history[i].content))
        .sum();
    if total <= budget * 3 / 4 {
        return None;
    }
    // Keep the newest messages that fit in a third of the budget.
    let mut kept = 0;
    let mut cut = history.len();
    for &i in eligible.iter().rev() {
        let cost = estimate_tokens(&history[i].content);
        if kept + cost > budget / 3 {
            break;
        }
        kept += cost;
        cut = i;
    }
    // Start the kept part on a user message.
    while cut < history.len() && history[cut].role != MsgRole::User {
        cut += 1;
    }
    let dropped: Vec<&Message> = eligible
        .iter()
        .filter(|&&i| i < cut)
        .map(|&i| &history[i])
        .collect();
    if dropped.is_empty() {
        return None;
    }
    // The request must fit too: keep the newest of what is dropped within
    // half the budget (older parts are already in the previous summary).
    let mut transcript: Vec<String> = Vec::new();
    let mut used = 0;
    for m in dropped.iter().rev() {
        let who = if m.role == MsgRole::User {
            "User"
        } else {
            "Assistant"
        };
        let line = format!("{who}: {}", m.content.trim());
        used += estimate_tokens(&line);
        if used > budget / 2 {
            break;
        }
        transcript.push(line);
    }
    transcript.reverse();
    let earlier = summary.map_or(String::new(), |s| {
        format!("Summary so far:\n{}\n\n", s.text)
    });
    let request = vec![
        ChatMessage::new(
            Role::System,
            "You keep notes of a conversation for your own later use.",
        ),
        ChatMessage::new(
            Role::User,
            format!(
                "{earlier}Conversation to add:\n{}\n\nWrite an updated summary of the whole conversation: facts about the user, names, numbers, decisions, preferences and open questions. At most 200 words, no preamble.",
                transcript.join("\n")
            ),
        ),
    ];
    Some(Plan {
        request,
        covers: cut,
        newly: dropped.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(n: usize, words: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                let role = if i % 2 == 0 {
                    MsgRole::User
                } else {
                    MsgRole::Assistant
                };
                Message::new(role, format!("message {i} {}", "word ".repeat(words)))
            })
            .collect()
    }

    #[test]
    fn small_history_is_not_compacted() {
        assert!(plan(1000, None, &history(4, 10), &[]).is_none());
    }

    #[test]
    fn large_history_is_cut_before_a_user_message_and_fits() {
        let h = history(100, 20); // ~30 tokens each, ~3000 in all
        let p = plan(1000, None, &h, &[99]).unwrap();
        assert_eq!(h[p.covers].role, MsgRole::User);
        let kept: usize = (p.covers..99).map(|i| estimate_tokens(&h[i].content)).sum();
        assert!(kept <= 1000 / 3, "{kept}");
        let req: usize = p.request.iter().map(|m| estimate_tokens(&m.content)).sum();
        assert!(req < 1000, "{req}");
        // Once summarized, the same history needs nothing until it grows.
        let s = Summary {
            text: "earlier".into(),
            covers: p.covers,
        };
        assert!(plan(1000, Some(&s), &h, &[99]).is_none());
    }
}
