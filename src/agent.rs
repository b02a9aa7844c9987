//! One agent turn, and the worker thread that runs a session's turns in
//! the order their sends arrived.
//!
//! A session has at most one worker; it starts when a `send` finds the
//! session idle and exits when the queue is empty. Turns of different
//! sessions run in parallel on their own workers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, bounded, never, select, Receiver};

use crate::context;
use crate::daemon::Daemon;
use crate::llm::toolcalls::ToolCallAccumulator;
use crate::llm::{
    ChatMessage, Delta, FinishReason, LlmError, Role, StreamMsg, ToolCall, ToolSpec, Usage,
};
use crate::protocol::{ErrorCode, Event, Finish, ProactiveKind, SkillReason};
use crate::session::{Message, MsgRole, QueuedTurn, Session, State, TurnKind};
use crate::skills::{Catalog, MatchConfig, Skill};
use crate::tools;

/// How a turn ended.
enum Outcome {
    Finished(Finish),
    Cancelled,
    Failed(ErrorCode, String),
}

/// Starts the worker of `session`; the caller has set `busy`.
pub fn spawn_worker(daemon: Arc<Daemon>, session: Arc<Session>) {
    daemon.workers.fetch_add(1, Ordering::SeqCst);
    let name = format!("turn-{}", crate::protocol::truncate(&session.id, 10));
    let d = daemon.clone();
    let s = session.clone();
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(256 << 10)
        .spawn(move || {
            worker(&d, &s);
            d.workers.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        log::error!("session {}: cannot start a turn thread: {e}", session.id);
        daemon.workers.fetch_sub(1, Ordering::SeqCst);
        let mut st = session.lock();
        st.busy = false;
        for turn in st.queue.drain(..) {
            daemon.hub.publish(
                &session.id,
                &Event::error(
                    ErrorCode::Internal,
                    "the daemon could not start the turn; see its log",
                    Some(&session.id),
                ),
                turn.id.as_ref(),
            );
        }
    }
}

fn worker(d: &Daemon, s: &Session) {
    // The finished turn stays alive (with its origin guard) until its
    // terminal event is out.
    let mut last: Option<(Option<Event>, QueuedTurn)> = None;
    loop {
        let (turn, plan, warm, cancel_rx) = {
            let mut st = s.lock();
            st.cancel = None;
            // The previous turn's terminal event goes out under the lock,
            // after `busy` is settled, so a client that sees it and asks
            // `list` sees the session idle.
            let stop = st.deleted || d.is_shutting_down();
            if st.queue.is_empty() || stop {
                st.busy = false;
            }
            if let Some((ev, done)) = last.take() {
                if matches!(done.kind, TurnKind::Heartbeat { .. }) {
                    st.heartbeat_queued = false;
                }
                if let Some(ev) = ev {
                    d.hub.publish(&s.id, &ev, done.id.as_ref());
                }
            }
            if stop {
                let (code, why) = if st.deleted {
                    (
                        ErrorCode::SessionNotFound,
                        "the session was deleted before this message's turn ran",
                    )
                } else {
                    (ErrorCode::ShuttingDown, "the daemon is shutting down; your message is in history, send it again later")
                };
                st.heartbeat_queued = false;
                for turn in st.queue.drain(..) {
                    if matches!(turn.kind, TurnKind::User { .. }) {
                        d.hub.publish(
                            &s.id,
                            &Event::error(code, why, Some(&s.id)),
                            turn.id.as_ref(),
                        );
                    }
                }
                return;
            }
            let Some(turn) = st.queue.pop_front() else {
                return;
            };
            let (tx, rx) = bounded(1);
            st.cancel = Some(tx);
            let plan = match turn.kind {
                TurnKind::User { index } => {
                    let skip: Vec<usize> =
                        std::iter::once(index).chain(queued_indices(&st)).collect();
                    let summary = st.meta.summary.clone();
                    crate::compact::plan(
                        budget(d, &turn.model),
                        summary.as_ref(),
                        s.history(&mut st),
                        &skip,
                    )
                }
                _ => None,
            };
            let warm = warm_up_input(d, s, &mut st, &turn);
            (turn, plan, warm, rx)
        };
        // The network calls of a turn's preparation run outside the
        // session's lock, so `list` or `history` never wait for them.
        if let (Some(e), Some((text, missing))) = (d.embedder.as_ref(), warm) {
            let _ = e.query(
                &text,
                missing,
                Duration::from_secs(d.config().embedding_timeout_secs),
            );
        }
        if let Some(plan) = plan {
            compact(d, s, &turn, plan, &cancel_rx);
        }
        let (messages, skills) = {
            let mut st = s.lock();
            let (messages, skills) = context_for(d, s, &mut st, &turn);
            // Announced before the text they shape.
            for (skill, reason) in &skills {
                d.hub.publish(
                    &s.id,
                    &Event::Skill {
                        session_id: s.id.clone(),
                        skill: skill.clone(),
                        reason: *reason,
                    },
                    turn.id.as_ref(),
                );
            }
            (messages, skills)
        };
        let streamed = matches!(turn.kind, TurnKind::User { .. });
        let started = Instant::now();
        let mut skills = skills;
        let (outcome, reply, usage) =
            run_turn(d, s, &turn, &messages, &cancel_rx, streamed, &mut skills);
        let terminal = match &turn.kind {
            TurnKind::User { .. } => Some(finish_turn(
                s, &turn, reply, skills, usage, outcome, started,
            )),
            TurnKind::Heartbeat { .. } => {
                let finished = matches!(outcome, Outcome::Finished(_));
                crate::proactive::heartbeat_done(
                    d,
                    s,
                    &messages,
                    &reply,
                    usage,
                    finished,
                    &outcome_text(&outcome),
                );
                None
            }
            TurnKind::Event { .. } => {
                match &outcome {
                    Outcome::Finished(_) if !reply.trim().is_empty() => {
                        crate::proactive::deliver(d, s, ProactiveKind::Event, reply.trim());
                    }
                    _ => s.activity(&format!("event turn: {}", outcome_text(&outcome))),
                }
                None
            }
        };
        last = Some((terminal, turn));
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Finished(f) => format!("finished ({f:?})"),
        Outcome::Cancelled => "cancelled".into(),
        Outcome::Failed(code, m) => format!("failed ({code:?}): {m}"),
    }
}

/// The context of `turn`.
///
/// A user turn sees the history without its own and the still-queued user
/// messages (their replies come later), the `next_turn` events waiting for
/// it, then its message. A heartbeat sees only the system prompt, the time
/// and its prompt: it must stay cheap, whatever the history's length.
fn context_for(
    d: &Daemon,
    s: &Session,
    st: &mut State,
    turn: &QueuedTurn,
) -> (Vec<ChatMessage>, Vec<(String, SkillReason)>) {
    let config = &d.config();
    let mut volatile = vec![format!(
        "Local date and time: {}",
        crate::time::local_now_human()
    )];
    let system = st.meta.system.clone();
    let (current, user) = match &turn.kind {
        TurnKind::Heartbeat { prompt } => {
            volatile.extend(recall(d, s, st, prompt));
            let messages = context::build(&context::Inputs {
                system: &config.system_prompt,
                session_system: system.as_deref(),
                skills_index: None,
                summary: None,
                history: &[],
                volatile,
                user: prompt,
                budget_tokens: budget(d, &turn.model),
            });
            return (messages, Vec::new());
        }
        TurnKind::User { index } => {
            let events = std::mem::take(&mut st.meta.next_turn_events);
            if !events.is_empty() {
                if let Err(e) = s.save_meta(st) {
                    log::warn!("session {}: cannot save meta.json: {e}", s.id);
                }
            }
            let history = s.history(st);
            volatile.extend(
                events
                    .iter()
                    .filter_map(|&i| history.get(i))
                    .map(describe_event),
            );
            (
                *index,
                history
                    .get(*index)
                    .map(|m| m.content.clone())
                    .unwrap_or_default(),
            )
        }
        TurnKind::Event { index } => {
            let history = s.history(st);
            let text = history.get(*index).map(describe_event).unwrap_or_default();
            (
                *index,
                format!("{text}\n\nTell the user about this event if it matters to them, briefly."),
            )
        }
    };
    let queued = queued_indices(st);
    volatile.extend(recall(d, s, st, &user));
    let catalog = d.catalog();
    let active = match turn.kind {
        TurnKind::User { .. } => activate(d, &catalog, &s.id, &user, &st.meta.pinned_skills),
        _ => Vec::new(),
    };
    for (skill, _) in &active {
        volatile.push(format!(
            "<skill name=\"{}\">\nThe skill '{}' applies to this message: follow its instructions.\n\n{}\n</skill>",
            skill.name,
            skill.name,
            skill.body.trim()
        ));
    }
    let index = catalog.index_block(config.skills_index_tokens as usize);
    let summary = st.meta.summary.clone();
    let covered = summary.as_ref().map_or(0, |s| s.covers);
    let history = s.history(st);
    let earlier: Vec<&Message> = history
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= covered && *i != current && !queued.contains(i))
        .map(|(_, m)| m)
        .collect();
    let messages = context::build(&context::Inputs {
        system: &config.system_prompt,
        session_system: system.as_deref(),
        skills_index: index.as_deref(),
        summary: summary.as_ref().map(|s| s.text.as_str()),
        history: &earlier,
        volatile,
        user: &user,
        budget_tokens: budget(d, &turn.model),
    });
    (
        messages,
        active
            .into_iter()
            .map(|(s, r)| (s.name.clone(), r))
            .collect(),
    )
}

/// The memories (the session's and the global ones) that match `query`,
/// as one context block; this is how facts reach models that never call
/// a tool.
fn recall(d: &Daemon, s: &Session, st: &mut State, query: &str) -> Option<String> {
    let own = s.memory(st);
    // With an embedding model: the message's vector (embedded once per
    // turn, with a few memories that have none yet), outside the global
    // memory lock; `None` means lexical only.
    let semantic = d.embedder.as_ref().and_then(|e| {
        let missing = e.missing(&[own.items(), d.global_memory.lock().items()]);
        let timeout = Duration::from_secs(d.config().embedding_timeout_secs);
        e.query(query, missing, timeout).map(|v| (e, v))
    });
    own.prepare();
    let mut global = d.global_memory.lock();
    global.prepare();
    let found = crate::memory::search_sets(
        &[own.set(false), global.set(true)],
        query,
        crate::memory::RECALL_THRESHOLD,
        &|m| semantic.as_ref().and_then(|(e, v)| e.memory_score(v, m)),
    );
    if !found.is_empty() {
        log::debug!(
            "session {}: recalled {} memories",
            s.id,
            found.len().min(crate::memory::RECALL_LIMIT)
        );
    }
    crate::memory::recall_block(&found)
}

/// The skills active for a user message, cheapest reason first: named
/// explicitly, pinned to the session, then matched by relevance; at most
/// `max_active_skills`.
fn activate<'c>(
    d: &Daemon,
    catalog: &'c Catalog,
    sid: &str,
    message: &str,
    pinned: &[String],
) -> Vec<(&'c Skill, SkillReason)> {
    let max = d.config().max_active_skills;
    let mut active: Vec<(&Skill, SkillReason)> = Vec::new();
    let mut add = |skill: &'c Skill, reason| {
        if active.len() < max && !active.iter().any(|(s, _)| s.name == skill.name) {
            active.push((skill, reason));
        }
    };
    for skill in catalog.explicit(message) {
        add(skill, SkillReason::Explicit);
    }
    for name in pinned {
        match catalog.get(name) {
            Some(skill) => add(skill, SkillReason::Pinned),
            None => log::warn!("session {sid}: pinned skill '{name}' is no longer installed"),
        }
    }
    let cfg = MatchConfig {
        threshold: d.config().skill_match_threshold,
        max_skills: max,
        ..MatchConfig::default()
    };
    if !catalog.is_empty() {
        log::debug!("session {sid}: {}", catalog.explain(message, &cfg));
    }
    // Semantic scores per skill, when an embedding model answers (the
    // message's vector is usually cached from `recall`).
    let extra: Option<Vec<f32>> = d
        .embedder
        .as_ref()
        .filter(|_| !catalog.is_empty())
        .and_then(|e| {
            let timeout = Duration::from_secs(d.config().embedding_timeout_secs);
            let v = e.query(message, Vec::new(), timeout)?;
            let scores = e.skill_scores(catalog, &v);
            log::debug!("session {sid}: {}", e.explain(catalog, &scores));
            Some(scores)
        });
    for (skill, _) in catalog.matched_with(message, &cfg, extra.as_deref()) {
        add(skill, SkillReason::Matched);
    }
    active
}

/// A message to embed, and the memories without a vector (id, hash, text).
type WarmUp = (String, Vec<(String, u64, String)>);

/// What to embed before the context is built (under the lock, it only
/// copies): the text recall and skills will match, and the memories that
/// have no vector yet. The embedder keeps the vectors for `recall` and
/// `activate`, which then find them without a call.
fn warm_up_input(d: &Daemon, s: &Session, st: &mut State, turn: &QueuedTurn) -> Option<WarmUp> {
    let e = d.embedder.as_ref()?;
    let text = match &turn.kind {
        TurnKind::User { index } => s.history(st).get(*index)?.content.clone(),
        TurnKind::Heartbeat { prompt } => prompt.clone(),
        TurnKind::Event { .. } => return None,
    };
    let global = d.global_memory.lock();
    let missing = e.missing(&[s.memory(st).items(), global.items()]);
    Some((text, missing))
}

/// History indices of the messages of turns still queued.
fn queued_indices(st: &State) -> Vec<usize> {
    st.queue
        .iter()
        .filter_map(|t| match t.kind {
            TurnKind::User { index } | TurnKind::Event { index } => Some(index),
            TurnKind::Heartbeat { .. } => None,
        })
        .collect()
}

/// Asks the model for the summary of the history `plan` drops, stores it
/// and tells the subscribers. A failure only means the turn sends less
/// history this time; it is logged.
fn compact(
    d: &Daemon,
    s: &Session,
    turn: &QueuedTurn,
    plan: crate::compact::Plan,
    cancel: &Receiver<()>,
) {
    let mut text = String::new();
    let round = stream_round(d, s, turn, &plan.request, &[], cancel, false, &mut text);
    if !matches!(round.outcome, Outcome::Finished(_)) || text.trim().is_empty() {
        log::warn!(
            "session {}: compaction failed: {}",
            s.id,
            outcome_text(&round.outcome)
        );
        return;
    }
    let mut st = s.lock();
    st.meta.summary = Some(crate::compact::Summary {
        text: text.trim().to_string(),
        covers: plan.covers,
    });
    if let Err(e) = s.save_meta(&st) {
        log::warn!("session {}: cannot save the summary: {e}", s.id);
    }
    drop(st);
    log::info!(
        "session {}: compacted {} messages ({} now summarized)",
        s.id,
        plan.newly,
        plan.covers
    );
    s.activity(&format!(
        "compacted: the first {} messages are summarized",
        plan.covers
    ));
    d.hub.publish(
        &s.id,
        &Event::Compacted {
            session_id: s.id.clone(),
            messages: plan.covers,
        },
        turn.id.as_ref(),
    );
}

/// Tokens the messages of a turn may use: the window, less the reply's
/// reserve, less the tool definitions when the model is offered them.
fn budget(d: &Daemon, model: &str) -> usize {
    let config = d.config();
    let window = (config.context_tokens - config.reply_reserve_tokens) as usize;
    let tools = if d.tools_for(model) {
        tools::specs_tokens(&config)
    } else {
        0
    };
    window.saturating_sub(tools)
}

/// An external event as the model reads it: source, time, text.
fn describe_event(m: &Message) -> String {
    let source = m
        .extra
        .get("source")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    format!("Event from {source} at {}: {}", m.ts, m.content)
}

/// Runs one turn to its end: how it ended, its reply and the usage the
/// provider reported. `streamed` turns publish their deltas as they come.
///
/// The tool loop: while the model answers with tool calls, each call runs,
/// is announced with a `tool` event, and goes with its result into the
/// request and the history; then the model is asked again, at most
/// `max_tool_rounds` times. A model that rejects tools is asked once more
/// without them and remembered as tool-less.
fn run_turn(
    d: &Daemon,
    s: &Session,
    turn: &QueuedTurn,
    messages: &[ChatMessage],
    cancel: &Receiver<()>,
    streamed: bool,
    skills: &mut Vec<(String, SkillReason)>,
) -> (Outcome, String, Option<Usage>) {
    let mut msgs = messages.to_vec();
    let mut reply = String::new();
    let mut usage = None;
    let specs = if d.tools_for(&turn.model) {
        tools::specs(&d.config())
    } else {
        Vec::new()
    };
    let mut offer: &[ToolSpec] = &specs;
    let mut rounds = 0;
    let mut shrunk = false;
    loop {
        let before = reply.len();
        let round = stream_round(d, s, turn, &msgs, offer, cancel, streamed, &mut reply);
        usage = round.usage.or(usage);
        if round.context_overflow && !shrunk && reply.len() == before {
            // The estimate was off for this model: halve the history once.
            shrunk = true;
            shrink_history(&mut msgs);
            log::info!(
                "session {}: the provider found the context too long; retrying with less history",
                s.id
            );
            continue;
        }
        if round.rejected_tools && !offer.is_empty() && reply.len() == before {
            log::info!(
                "model {} rejects tools; asking again without them (remembered)",
                turn.model
            );
            d.mark_toolless(&turn.model);
            offer = &[];
            continue;
        }
        if !matches!(round.outcome, Outcome::Finished(_)) || round.calls.is_empty() {
            return (round.outcome, reply, usage);
        }
        if rounds >= d.config().max_tool_rounds {
            log::info!(
                "session {}: max_tool_rounds ({}) reached",
                s.id,
                d.config().max_tool_rounds
            );
            return (Outcome::Finished(Finish::ToolLimit), reply, usage);
        }
        rounds += 1;
        run_tools(d, s, turn, round.calls, &mut msgs, skills);
    }
}

/// Runs the calls of one round, announcing each, and appends the
/// assistant's call message and the results to the request and history.
fn run_tools(
    d: &Daemon,
    s: &Session,
    turn: &QueuedTurn,
    calls: Vec<ToolCall>,
    msgs: &mut Vec<ChatMessage>,
    skills: &mut Vec<(String, SkillReason)>,
) {
    let mut call_msg = Message::new(MsgRole::Assistant, "");
    call_msg.extra.insert(
        "tool_calls".into(),
        serde_json::to_value(&calls).unwrap_or_default(),
    );
    let mut stored = vec![call_msg];
    msgs.push(ChatMessage {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: calls.clone(),
        tool_call_id: None,
    });
    for call in calls {
        let mut ctx = tools::Ctx {
            daemon: d,
            session: s,
            turn_id: turn.id.as_ref(),
            skills,
        };
        let (arguments, result) = tools::run(&mut ctx, &call.name, &call.arguments);
        log::info!(
            "session {}: tool {} -> {} bytes",
            s.id,
            call.name,
            result.len()
        );
        s.activity(&format!(
            "tool {}: {}",
            call.name,
            crate::protocol::truncate(&result, 120)
        ));
        d.hub.publish(
            &s.id,
            &Event::Tool {
                session_id: s.id.clone(),
                tool: call.name.clone(),
                arguments,
                result: result.clone(),
            },
            turn.id.as_ref(),
        );
        let mut m = Message::new(MsgRole::Tool, result.clone());
        m.extra
            .insert("tool_call_id".into(), call.id.clone().into());
        m.extra.insert("name".into(), call.name.clone().into());
        stored.push(m);
        msgs.push(ChatMessage {
            role: Role::Tool,
            content: result,
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id),
        });
    }
    let mut st = s.lock();
    for m in stored {
        if let Err(e) = s.append(&mut st, m) {
            log::warn!("session {}: cannot store a tool message: {e}", s.id);
        }
    }
}

/// Publishes a streamed turn's deltas from the provider's reader thread,
/// one thread hop closer to the client than the turn's own loop. A gate
/// closes it when the turn's round ends, so nothing is published after the
/// terminal event, and the text it let through is exactly what is stored.
struct Relay {
    gate: Arc<Mutex<RelayState>>,
    hub: Arc<crate::hub::Hub>,
    session: String,
    id: Option<crate::protocol::RequestId>,
}

struct RelayState {
    open: bool,
    text: String,
}

impl Relay {
    fn new(d: &Daemon, s: &Session, turn: &QueuedTurn) -> Relay {
        Relay {
            gate: Arc::new(Mutex::new(RelayState {
                open: true,
                text: String::new(),
            })),
            hub: d.hub.clone(),
            session: s.id.clone(),
            id: turn.id.clone(),
        }
    }

    fn sink(&self) -> crate::llm::Sink {
        let (gate, hub, session, id) = (
            self.gate.clone(),
            self.hub.clone(),
            self.session.clone(),
            self.id.clone(),
        );
        Box::new(move |delta| {
            let mut state = gate.lock();
            if !state.open {
                return;
            }
            let event = match delta {
                Delta::Text(text) => {
                    state.text.push_str(text);
                    Event::Response {
                        session_id: session.clone(),
                        delta: text.clone(),
                        done: false,
                        finish_reason: None,
                        usage: None,
                    }
                }
                Delta::Thinking(text) => Event::Thinking {
                    session_id: session.clone(),
                    delta: text.clone(),
                },
                _ => return,
            };
            // Under the gate, so a close waits for a publish in flight.
            hub.publish(&session, &event, id.as_ref());
        })
    }

    /// Stops publishing; returns the text published.
    fn close(self) -> String {
        let mut state = self.gate.lock();
        state.open = false;
        std::mem::take(&mut state.text)
    }
}

/// What one request to the model produced.
struct Round {
    outcome: Outcome,
    calls: Vec<ToolCall>,
    usage: Option<Usage>,
    /// The provider refused the request because of its `tools`.
    rejected_tools: bool,
    /// The provider refused the request as longer than its context.
    context_overflow: bool,
}

/// Drops the older half of the history between the system message and the
/// last user message.
fn shrink_history(msgs: &mut Vec<ChatMessage>) {
    let start = usize::from(msgs.first().is_some_and(|m| m.role == Role::System));
    let end = msgs.len().saturating_sub(1);
    if end > start {
        let drop = (end - start).div_ceil(2);
        msgs.drain(start..start + drop);
    }
}

/// Streams one completion: text into `reply` (published when `streamed`),
/// tool calls assembled.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn stream_round(
    d: &Daemon,
    s: &Session,
    turn: &QueuedTurn,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
    cancel: &Receiver<()>,
    streamed: bool,
    reply: &mut String,
) -> Round {
    let provider = &turn.target.provider.name;
    let mut usage: Option<Usage> = None;
    let mut calls = ToolCallAccumulator::new();
    let mut rejected_tools = false;
    let mut context_overflow = false;
    let relay = streamed.then(|| Relay::new(d, s, turn));
    let sink = relay.as_ref().map(Relay::sink);
    let outcome = match d.llm.complete(&turn.target, messages, tools, sink) {
        Err(e) => Outcome::Failed(
            ErrorCode::Internal,
            format!("cannot start the provider call: {e}"),
        ),
        Ok(completion) => {
            let silence = Duration::from_secs(d.config().llm_read_timeout_secs);
            let mut streaming = false;
            let mut finish: Option<FinishReason> = None;
            loop {
                // Silence is timed only once the provider has answered; until
                // then ureq's connect and response timeouts bound the wait.
                let timer = if streaming {
                    after(silence.saturating_sub(completion.silent_for()))
                } else {
                    never()
                };
                select! {
                    recv(completion.rx) -> msg => match msg {
                        Ok(StreamMsg::Started) => streaming = true,
                        Ok(StreamMsg::Alive) => {}
                        Ok(StreamMsg::Delta(delta)) => match delta {
                            // Published by the relay on the reader thread.
                            Delta::Text(text) => if !streamed {
                                reply.push_str(&text);
                            },
                            Delta::Thinking(_) => {}
                            Delta::ToolCall { index, id, name, arguments } => calls.push(index, id, name, &arguments),
                            Delta::Usage(u) => usage = Some(u),
                            Delta::Finish(r) => finish = Some(r),
                            Delta::Done => break Outcome::Finished(finish_of(finish.as_ref())),
                            Delta::Error(m) => break Outcome::Failed(
                                ErrorCode::LlmStream,
                                format!("provider '{provider}' reported an error mid-reply: {m}"),
                            ),
                        },
                        Ok(StreamMsg::Eof) => break match finish {
                            Some(r) => Outcome::Finished(finish_of(Some(&r))),
                            None => Outcome::Failed(ErrorCode::LlmStream, format!(
                                "provider '{provider}' ended its stream without an end marker: the reply is incomplete"
                            )),
                        },
                        Ok(StreamMsg::Failed(e)) => {
                            if let LlmError::Status { status: 400 | 413, message } = &e {
                                let m = message.to_lowercase();
                                rejected_tools = m.contains("tool");
                                context_overflow = m.contains("context") || m.contains("too long");
                            }
                            break failed(provider, e);
                        }
                        Err(_) => break Outcome::Failed(ErrorCode::Internal, "the provider reader stopped unexpectedly".into()),
                    },
                    recv(cancel) -> _ => break Outcome::Cancelled,
                    recv(timer) -> _ => if completion.silent_for() >= silence {
                        break Outcome::Failed(ErrorCode::LlmStream, format!(
                            "provider '{provider}' sent nothing for {}s (llm_read_timeout_secs); the turn was stopped",
                            silence.as_secs()
                        ));
                    },
                }
            }
        }
    };
    // Close the relay before anything else is published for this turn, and
    // keep exactly the text it let through.
    if let Some(relay) = relay {
        reply.push_str(&relay.close());
    }
    Round {
        outcome,
        calls: calls.finish(),
        usage,
        rejected_tools,
        context_overflow,
    }
}

fn finish_of(r: Option<&FinishReason>) -> Finish {
    match r {
        Some(FinishReason::Length) => Finish::Length,
        _ => Finish::Stop,
    }
}

fn failed(provider: &str, e: LlmError) -> Outcome {
    match e {
        LlmError::Unreachable(m) => Outcome::Failed(ErrorCode::LlmUnreachable, m),
        LlmError::Status { status, message } => Outcome::Failed(
            ErrorCode::LlmError,
            format!("provider '{provider}' answered HTTP {status}: {message}"),
        ),
        LlmError::Stream(m) => {
            Outcome::Failed(ErrorCode::LlmStream, format!("provider '{provider}': {m}"))
        }
    }
}

/// Persists the reply and the activity line; returns the terminal event.
fn finish_turn(
    s: &Session,
    turn: &QueuedTurn,
    reply: String,
    skills: Vec<(String, SkillReason)>,
    usage: Option<Usage>,
    outcome: Outcome,
    started: Instant,
) -> Event {
    let took = started.elapsed().as_secs_f32();
    let chars = reply.chars().count();
    let mut msg = Message::new(MsgRole::Assistant, reply);
    msg.model = Some(turn.model.clone());
    msg.skills = skills.into_iter().map(|(name, _)| name).collect();
    let keep = match &outcome {
        Outcome::Finished(_) => true,
        Outcome::Cancelled => {
            msg.cancelled = true;
            !msg.content.is_empty()
        }
        Outcome::Failed(code, _) => {
            msg.error = serde_json::to_value(code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            !msg.content.is_empty()
        }
    };
    if keep {
        let mut st = s.lock();
        if let Err(e) = s.append(&mut st, msg) {
            log::error!("session {}: cannot store the reply: {e}", s.id);
        }
    }
    let (activity, event) = match outcome {
        Outcome::Finished(f) => (
            format!("reply: {chars} chars in {took:.1}s ({f:?})"),
            Event::Response {
                session_id: s.id.clone(),
                delta: String::new(),
                done: true,
                finish_reason: Some(f),
                usage,
            },
        ),
        Outcome::Cancelled => (
            format!("cancelled after {chars} chars in {took:.1}s"),
            Event::Response {
                session_id: s.id.clone(),
                delta: String::new(),
                done: true,
                finish_reason: Some(Finish::Cancelled),
                usage,
            },
        ),
        Outcome::Failed(code, message) => {
            log::warn!("session {}: turn failed ({code:?}): {message}", s.id);
            (
                format!("error {code:?}: {message} (after {chars} chars)"),
                Event::error(code, message, Some(&s.id)),
            )
        }
    };
    log::info!("session {}: {activity}", s.id);
    s.activity(&activity);
    event
}
