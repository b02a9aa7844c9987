//! Ruster: a small, persistent, proactive LLM agent daemon for Linux.
//!
//! Every interaction goes through one UNIX socket speaking JSON Lines
//! ([`protocol`]). A tour of the crate, from the socket inward:
//!
//! - [`app`]: the command line, start-up, signals and shutdown;
//! - [`cli`]: the human client (`ruster chat`, `send`, `status`, ...);
//! - [`server`]: the socket, one reader and one writer thread per client;
//! - [`hub`]: fan-out of events to the clients' bounded queues;
//! - [`daemon`]: the shared state and the handling of each request;
//! - [`session`]: sessions and their files (`meta.json`, `history.jsonl`);
//! - [`agent`]: one turn, streamed from the model to every subscriber;
//! - [`context`]: what a turn sends to the model, in cache-friendly order;
//! - [`llm`]: providers, model strings, the NDJSON and SSE readers;
//! - [`relevance`], [`embed`]: lexical relevance, and the optional
//!   embeddings blended into it;
//! - [`config`], [`paths`], [`logging`], [`time`], [`proactive`].
//!
//! The wire names live in one place:
//!
//! ```
//! use ruster::protocol::{Event, Request};
//!
//! let (id, req) = Request::parse(br#"{"action":"ping","id":1}"#).unwrap();
//! assert_eq!(req, Request::Ping);
//! assert_eq!(Event::Pong.to_line(id.as_ref()), "{\"event\":\"pong\",\"id\":1}\n");
//! ```
//!
//! Model strings are `provider/model`; no `/` means Ollama:
//!
//! ```
//! use ruster::llm::ModelRef;
//!
//! let m = ModelRef::parse("qwen3:0.6b").unwrap();
//! assert_eq!((m.provider.as_str(), m.model.as_str()), ("ollama", "qwen3:0.6b"));
//! ```

pub mod agent;
pub mod app;
pub mod cli;
pub mod compact;
pub mod config;
pub mod context;
pub mod daemon;
pub mod embed;
pub mod hub;
pub mod llm;
pub mod logging;
pub mod memory;
pub mod paths;
pub mod proactive;
pub mod protocol;
pub mod relevance;
pub mod reminders;
pub mod server;
pub mod session;
pub mod skills;
pub mod time;
pub mod tools;
