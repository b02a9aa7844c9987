//! Model providers: `provider/model` strings, the provider table, and one
//! streamed completion per call.
//!
//! A completion runs on its own small reader thread that makes the HTTP
//! request (with retries before the first byte), reads the stream line by
//! line with ureq and sends each parsed [`Delta`] over a bounded channel.
//! The turn waits on that channel together with its cancel channel and a
//! silence timeout: a blocking read cannot be interrupted, so this is how a
//! cancel or a stalled provider ends a turn at once. The reader thread,
//! no longer listened to, exits at its next send or when ureq's body
//! timeout fires.

pub mod http_error;
pub mod ollama;
pub mod openai;
pub mod sse;
pub mod toolcalls;
pub mod types;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::{Duration, Instant};
use ureq::tls::{RootCerts, TlsConfig};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::config::Config;
pub use types::*;

/// The longest single line of a provider's stream. Generous: a line holds
/// one token or one tool call, never a whole reply.
pub const MAX_STREAM_LINE: usize = 4 << 20;
/// The most of an error body read to find its message.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// The longest wait a provider's `Retry-After` can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Caps how long an abandoned reader thread can linger on a stream nobody
/// listens to (ureq's body timeout covers the whole body).
const MAX_BODY_SECS: u64 = 3600;
/// Deltas buffered between the reader thread and the turn.
const DELTA_QUEUE: usize = 256;
/// The most of an embeddings answer read (a batch of 64 vectors of 3072
/// floats is about 4 MB of JSON).
const MAX_EMBED_BODY: u64 = 64 << 20;

/// The two wire protocols that cover the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST {base}/api/chat`, NDJSON.
    Ollama,
    /// `POST {base}/chat/completions`, SSE.
    OpenAi,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "ollama" => Some(Kind::Ollama),
            "openai" => Some(Kind::OpenAi),
            _ => None,
        }
    }

    fn endpoint(self) -> &'static str {
        match self {
            Kind::Ollama => "/api/chat",
            Kind::OpenAi => "/chat/completions",
        }
    }
}

/// Built-in providers: name, protocol, base URL, API key variable.
const BUILT_IN: &[(&str, Kind, &str, Option<&str>)] = &[
    ("ollama", Kind::Ollama, "http://localhost:11434", None),
    ("llamacpp", Kind::OpenAi, "http://localhost:8080/v1", None),
    (
        "openai",
        Kind::OpenAi,
        "https://api.openai.com/v1",
        Some("OPENAI_API_KEY"),
    ),
    (
        "openrouter",
        Kind::OpenAi,
        "https://openrouter.ai/api/v1",
        Some("OPENROUTER_API_KEY"),
    ),
    (
        "groq",
        Kind::OpenAi,
        "https://api.groq.com/openai/v1",
        Some("GROQ_API_KEY"),
    ),
    (
        "xai",
        Kind::OpenAi,
        "https://api.x.ai/v1",
        Some("XAI_API_KEY"),
    ),
    (
        "gemini",
        Kind::OpenAi,
        "https://generativelanguage.googleapis.com/v1beta/openai",
        Some("GEMINI_API_KEY"),
    ),
    (
        "vllm",
        Kind::OpenAi,
        "http://localhost:8000/v1",
        Some("VLLM_API_KEY"),
    ),
    ("lmstudio", Kind::OpenAi, "http://localhost:1234/v1", None),
];

/// A `provider/model` string, split at the first `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    /// `ollama/llama3.2`, `openrouter/meta-llama/llama-3.1-8b`; no `/`
    /// means the `ollama` provider.
    pub fn parse(s: &str) -> Result<ModelRef, String> {
        let s = s.trim();
        let (provider, model) = s.split_once('/').unwrap_or(("ollama", s));
        if provider.is_empty() || model.is_empty() {
            return Err(format!(
                "model {s:?} is malformed: write provider/model, like \"ollama/llama3.2\""
            ));
        }
        if s.chars().any(char::is_control) || provider.contains(char::is_whitespace) {
            return Err(format!("model {s:?} has spaces or control characters"));
        }
        Ok(ModelRef {
            provider: provider.into(),
            model: model.into(),
        })
    }
}

/// A provider, resolved from the built-in table and the config.
#[derive(Clone)]
pub struct Provider {
    pub name: String,
    pub kind: Kind,
    pub base_url: String,
    api_key: Option<String>,
}

// Hand-written so that no `{:?}` can ever print an API key into a log.
impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Where one completion goes: the provider and the model name it knows.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Provider,
    pub model: String,
}

/// Why a completion failed.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    /// The provider could not be reached (after retries).
    Unreachable(String),
    /// The provider answered with an error status (after retries).
    Status { status: u16, message: String },
    /// The stream broke off, stalled or was malformed.
    Stream(String),
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::Unreachable(m) | LlmError::Stream(m) => f.write_str(m),
            LlmError::Status { status, message } => write!(f, "HTTP {status}: {message}"),
        }
    }
}

/// What the reader thread sends to the turn.
#[derive(Debug)]
pub enum StreamMsg {
    /// The provider accepted the request; its stream begins.
    Started,
    /// The stream is alive (a delta went to the sink); sent only when the
    /// channel is empty, so the turn notices a reader that died.
    Alive,
    Delta(Delta),
    /// The stream ended: cleanly if a [`Delta::Finish`] or [`Delta::Done`]
    /// came before, else it broke off.
    Eof,
    Failed(LlmError),
}

/// A running completion. Dropping it abandons the reader thread.
pub struct Completion {
    pub rx: Receiver<StreamMsg>,
    stop: Arc<AtomicBool>,
    /// When the reader last parsed a delta (milliseconds since `born`):
    /// deltas that go to the sink do not pass through `rx`, so the turn
    /// times the provider's silence with this.
    last: Arc<AtomicU64>,
    born: Instant,
}

impl Completion {
    /// How long the provider has been silent.
    pub fn silent_for(&self) -> Duration {
        let now = self.born.elapsed();
        now.saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Settings of the client, from the config.
#[derive(Debug, Clone)]
struct Settings {
    retries: u32,
    retry_base: Duration,
    context_tokens: u32,
    max_tokens: Option<u32>,
    proxy_url: Option<String>,
    proxy_token: Option<String>,
}

/// The provider client: resolves model strings and starts completions.
/// Cheap to share and to clone: the ureq agent's connection pool is behind
/// an `Arc`.
#[derive(Clone)]
pub struct Llm {
    /// Built on first use: loading the system's CA certificates costs a few
    /// milliseconds that start-up need not pay, nor a daemon that only
    /// talks to local models over plain HTTP.
    agent: Arc<OnceLock<ureq::Agent>>,
    timeouts: (Duration, Duration),
    settings: Settings,
    providers: BTreeMap<String, Provider>,
}

impl Llm {
    pub fn new(config: &Config) -> Llm {
        let proxy_token = std::env::var("RUSTER_PROXY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| config.proxy_token.clone());
        Llm {
            agent: Arc::new(OnceLock::new()),
            timeouts: (
                Duration::from_secs(config.llm_connect_timeout_secs),
                Duration::from_secs(config.llm_read_timeout_secs),
            ),
            settings: Settings {
                retries: config.llm_retries,
                retry_base: Duration::from_millis(config.llm_retry_base_ms),
                context_tokens: config.context_tokens,
                max_tokens: (config.max_reply_tokens > 0).then_some(config.max_reply_tokens),
                proxy_url: config
                    .proxy_url
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .map(|u| u.trim_end_matches('/').to_string()),
                proxy_token,
            },
            providers: providers(config),
        }
    }

    /// The HTTP agent, built the first time a provider is called.
    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            let tls = TlsConfig::builder()
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .root_certs(RootCerts::new_with_certs(&system_roots()))
                .build();
            ureq::Agent::config_builder()
                .timeout_connect(Some(self.timeouts.0))
                .timeout_recv_response(Some(self.timeouts.1))
                .timeout_recv_body(Some(Duration::from_secs(MAX_BODY_SECS)))
                .http_status_as_error(false)
                .user_agent(concat!("ruster/", env!("CARGO_PKG_VERSION")))
                .tls_config(tls)
                .build()
                .into()
        })
    }

    /// Resolves a model string against the provider table.
    pub fn resolve(&self, model: &str) -> Result<Target, String> {
        let m = ModelRef::parse(model)?;
        let provider = self.providers.get(&m.provider).ok_or_else(|| {
            format!(
                "unknown provider '{}' in model {model:?}; known: {} (add [providers.{}] to the config)",
                m.provider,
                self.providers.keys().cloned().collect::<Vec<_>>().join(", "),
                m.provider
            )
        })?;
        Ok(Target {
            provider: provider.clone(),
            model: m.model,
        })
    }

    /// The URL a request to `provider` goes to, direct or through the proxy.
    pub fn url(&self, provider: &Provider) -> String {
        self.url_for(provider, provider.kind.endpoint())
    }

    /// The URL of `endpoint` (`/api/chat`, `/embeddings`, ...) of
    /// `provider`, direct or through the proxy.
    fn url_for(&self, provider: &Provider, endpoint: &str) -> String {
        let base = provider.base_url.trim_end_matches('/');
        match &self.settings.proxy_url {
            None => format!("{base}{endpoint}"),
            Some(proxy) => format!("{proxy}/{}{}{endpoint}", provider.name, url_path(base)),
        }
    }

    /// The bearer token of a request to `provider`: the proxy's when one
    /// is set, else the provider's API key.
    fn bearer(&self, provider: &Provider) -> Option<String> {
        match &self.settings.proxy_url {
            Some(_) => self.settings.proxy_token.clone(),
            None => provider.api_key.clone(),
        }
    }

    /// Embeds `texts` with an embedding model, one vector per text in
    /// order, within the agent's timeouts. See [`Llm::embed_within`].
    pub fn embed(&self, target: &Target, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        self.embed_within(target, texts, None)
    }

    /// Embeds `texts`: Ollama `POST {base}/api/embed` (`{"model","input"}`
    /// → `{"embeddings":[[..]]}`) or OpenAI-style `POST {base}/embeddings`
    /// (→ `{"data":[{"embedding":[..],"index":0}]}`). One attempt, no
    /// retry; `timeout` bounds the whole call when given.
    pub fn embed_within(
        &self,
        target: &Target,
        texts: &[String],
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint = match target.provider.kind {
            Kind::Ollama => "/api/embed",
            Kind::OpenAi => "/embeddings",
        };
        let url = self.url_for(&target.provider, endpoint);
        let body = serde_json::json!({"model": target.model, "input": texts});
        let mut req = self
            .agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(token) = self.bearer(&target.provider) {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let req = req.config().timeout_global(timeout).build();
        let mut resp = req
            .send(&serde_json::to_vec(&body).unwrap_or_default()[..])
            .map_err(|e| {
                LlmError::Unreachable(format!(
                    "cannot reach provider '{}' at {url}: {}",
                    target.provider.name,
                    describe(&e)
                ))
            })?;
        let status = resp.status().as_u16();
        let limit = if resp.status().is_success() {
            MAX_EMBED_BODY
        } else {
            MAX_ERROR_BODY
        };
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| {
                LlmError::Stream(format!("embeddings answer unreadable: {}", describe(&e)))
            })?;
        if !resp.status().is_success() {
            return Err(LlmError::Status {
                status,
                message: http_error::error_message(&bytes),
            });
        }
        let vectors = parse_embeddings(target.provider.kind, &bytes).map_err(LlmError::Stream)?;
        if vectors.len() != texts.len() {
            return Err(LlmError::Stream(format!(
                "embeddings answer holds {} vectors for {} inputs",
                vectors.len(),
                texts.len()
            )));
        }
        Ok(vectors)
    }

    /// Starts one streamed completion on a reader thread. `sink`, when
    /// given, sees every text and reasoning delta on that thread as it is
    /// parsed, before the turn does: the shortest path from the provider's
    /// socket to the clients'.
    pub fn complete(
        &self,
        target: &Target,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        sink: Option<Sink>,
    ) -> std::io::Result<Completion> {
        let req = ChatRequest {
            model: &target.model,
            messages,
            tools,
            context_tokens: Some(self.settings.context_tokens),
            max_tokens: self.settings.max_tokens,
        };
        let body = match target.provider.kind {
            Kind::Ollama => ollama::request_body(&req),
            Kind::OpenAi => openai::request_body(&req),
        };
        let call = Call {
            agent: self.agent().clone(),
            url: self.url(&target.provider),
            bearer: self.bearer(&target.provider),
            body: serde_json::to_vec(&body).unwrap_or_default(),
            kind: target.provider.kind,
            provider: target.provider.name.clone(),
            retries: self.settings.retries,
            retry_base: self.settings.retry_base,
        };
        let (tx, rx) = bounded(DELTA_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let (last, born) = (Arc::new(AtomicU64::new(0)), Instant::now());
        let last2 = last.clone();
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("llm-read".into())
            // ureq with rustls needs more than the tiny stacks of the
            // socket threads; untouched stack pages cost no memory.
            .stack_size(512 << 10)
            .spawn(move || {
                call.run(
                    Forward {
                        tx,
                        sink,
                        last: last2,
                        born,
                        stop: stop2.clone(),
                    },
                    &stop2,
                )
            })?;
        Ok(Completion {
            rx,
            stop,
            last,
            born,
        })
    }
}

/// The vectors of an embeddings answer, in input order.
fn parse_embeddings(kind: Kind, bytes: &[u8]) -> Result<Vec<Vec<f32>>, String> {
    #[derive(serde::Deserialize)]
    struct Ollama {
        embeddings: Vec<Vec<f32>>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        embedding: Vec<f32>,
        #[serde(default)]
        index: Option<usize>,
    }
    #[derive(serde::Deserialize)]
    struct OpenAi {
        data: Vec<Item>,
    }
    let bad = |e: serde_json::Error| format!("malformed embeddings answer: {e}");
    let vectors = match kind {
        Kind::Ollama => {
            serde_json::from_slice::<Ollama>(bytes)
                .map_err(bad)?
                .embeddings
        }
        Kind::OpenAi => {
            let mut data = serde_json::from_slice::<OpenAi>(bytes).map_err(bad)?.data;
            if data.iter().all(|d| d.index.is_some()) {
                data.sort_by_key(|d| d.index);
            }
            data.into_iter().map(|d| d.embedding).collect()
        }
    };
    if vectors.iter().any(|v| v.is_empty()) {
        return Err("malformed embeddings answer: an empty vector".into());
    }
    Ok(vectors)
}

/// Where Linux distributions keep their CA bundle, most common first.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Raspberry Pi OS
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/cert.pem",                  // Alpine, Arch, macOS-like layouts
    "/etc/ssl/ca-bundle.pem",             // openSUSE
];

/// The system's trusted CA certificates (`SSL_CERT_FILE` first). Using
/// them instead of a bundled root list keeps the binary small and follows
/// the distribution's updates. None found: HTTPS calls fail with a
/// certificate error, and the log says why.
fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    for path in candidates {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            log::debug!("{} CA certificates from {path}", certs.len());
            return certs;
        }
    }
    log::warn!(
        "no CA certificates found ({} or SSL_CERT_FILE): HTTPS providers will fail; install ca-certificates",
        CA_BUNDLES.join(", ")
    );
    Vec::new()
}

/// The path part of a URL (`http://h:1/v1` → `/v1`), for proxy routing.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The provider table: built-ins, then the config's tables over them.
fn providers(config: &Config) -> BTreeMap<String, Provider> {
    let mut map = BTreeMap::new();
    for (name, kind, base, key_env) in BUILT_IN {
        map.insert(
            name.to_string(),
            Provider {
                name: name.to_string(),
                kind: *kind,
                base_url: base.to_string(),
                api_key: key_env
                    .and_then(|v| std::env::var(v).ok())
                    .filter(|k| !k.is_empty()),
            },
        );
    }
    for (name, pc) in &config.providers {
        let existing = map.get(name).cloned();
        let kind = pc
            .kind
            .as_deref()
            .and_then(Kind::parse)
            .or(existing.as_ref().map(|p| p.kind))
            .unwrap_or(Kind::OpenAi);
        let base_url = pc
            .base_url
            .clone()
            .or(existing.as_ref().map(|p| p.base_url.clone()))
            .unwrap_or_else(|| "http://localhost:8080/v1".into());
        let api_key = pc
            .api_key_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|k| !k.is_empty())
            .or_else(|| pc.api_key.clone())
            .or(existing.and_then(|p| p.api_key));
        map.insert(
            name.clone(),
            Provider {
                name: name.clone(),
                kind,
                base_url,
                api_key,
            },
        );
    }
    map
}

/// One HTTP call, owned by its reader thread.
struct Call {
    agent: ureq::Agent,
    url: String,
    bearer: Option<String>,
    body: Vec<u8>,
    kind: Kind,
    provider: String,
    retries: u32,
    retry_base: Duration,
}

impl Call {
    fn run(self, mut out: Forward, stop: &AtomicBool) {
        let tx = &out.tx.clone();
        let response = match self.request(stop) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(StreamMsg::Failed(e));
                return;
            }
        };
        out.touch();
        if tx.send(StreamMsg::Started).is_err() {
            return;
        }
        let reader = BufReader::with_capacity(8 << 10, response.into_body().into_reader());
        let result = match self.kind {
            Kind::Ollama => read_ndjson(reader, &mut out),
            Kind::OpenAi => read_sse(reader, &mut out),
        };
        let _ = tx.send(match result {
            Ok(()) => StreamMsg::Eof,
            Err(e) => StreamMsg::Failed(e),
        });
    }

    /// Sends the request, retrying failures that happen before the stream
    /// starts: no connection, 429 and 5xx (`Retry-After` honoured).
    fn request(&self, stop: &AtomicBool) -> Result<ureq::http::Response<ureq::Body>, LlmError> {
        let mut attempt = 0;
        loop {
            let (err, retryable, wait) = match self.send_once() {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let wait = http_error::retry_after(
                        header("retry-after").as_deref(),
                        header("retry-after-ms").as_deref(),
                    );
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_ERROR_BODY)
                        .read_to_vec()
                        .unwrap_or_default();
                    let err = LlmError::Status {
                        status,
                        message: http_error::error_message(&body),
                    };
                    (err, http_error::is_retryable(status, &body), wait)
                }
                Err(e) => (
                    LlmError::Unreachable(format!(
                        "cannot reach provider '{}' at {}: {}",
                        self.provider,
                        self.url,
                        describe(&e)
                    )),
                    true,
                    None,
                ),
            };
            if !retryable || attempt >= self.retries || stop.load(Ordering::Relaxed) {
                return Err(err);
            }
            let backoff = self.retry_base.saturating_mul(1 << attempt.min(16));
            let wait = wait.map_or(backoff, |w| w.min(MAX_RETRY_AFTER));
            log::info!(
                "provider '{}' failed ({err}); retry {} of {} in {:?}",
                self.provider,
                attempt + 1,
                self.retries,
                wait
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn send_once(&self) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(
                "Accept",
                match self.kind {
                    Kind::Ollama => "application/x-ndjson",
                    Kind::OpenAi => "text/event-stream",
                },
            );
        if let Some(token) = &self.bearer {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        req.send(&self.body[..])
    }
}

/// A short, key-free description of a transport error.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        other => other.to_string(),
    }
}

/// Sees text and reasoning deltas on the reader thread (see [`Llm::complete`]).
pub type Sink = Box<dyn FnMut(&Delta) + Send>;

/// Where parsed deltas go: the optional sink first, then the turn.
struct Forward {
    tx: Sender<StreamMsg>,
    sink: Option<Sink>,
    last: Arc<AtomicU64>,
    born: Instant,
    /// Set when the turn dropped its [`Completion`].
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// `false` when the turn stopped listening. Text and reasoning go to
    /// the sink alone when there is one: waking the turn's thread for
    /// every token would only compete with the writer for the CPU.
    /// Notes that the provider just said something.
    fn touch(&self) {
        self.last
            .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn send(&mut self, d: Delta) -> bool {
        self.touch();
        if let (Some(sink), Delta::Text(_) | Delta::Thinking(_)) = (self.sink.as_mut(), &d) {
            sink(&d);
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            return !self.tx.is_empty() || self.tx.send(StreamMsg::Alive).is_ok();
        }
        self.tx.send(StreamMsg::Delta(d)).is_ok()
    }
}

/// Relays an Ollama NDJSON stream.
fn read_ndjson(mut reader: impl BufRead, out: &mut Forward) -> Result<(), LlmError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = std::io::Read::take(&mut reader, MAX_STREAM_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| LlmError::Stream(format!("the stream broke off: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_STREAM_LINE {
            return Err(LlmError::Stream(format!(
                "a stream line exceeded {MAX_STREAM_LINE} bytes"
            )));
        }
        if line.last() != Some(&b'\n') {
            // The connection closed in the middle of a line: the line is
            // torn, not a message (a `done` line cannot be half there).
            return Ok(());
        }
        let deltas = ollama::parse_line(&line)
            .map_err(|e| LlmError::Stream(format!("malformed stream line: {e}")))?;
        for d in deltas {
            if !out.send(d) {
                return Ok(());
            }
        }
    }
}

/// Relays an OpenAI-style SSE stream.
fn read_sse(reader: impl BufRead, out: &mut Forward) -> Result<(), LlmError> {
    let mut events = sse::SseReader::new(reader, MAX_STREAM_LINE);
    loop {
        let ev = match events.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(()),
            Err(e) => return Err(LlmError::Stream(format!("the stream broke off: {e}"))),
        };
        let deltas = openai::parse_event(&ev)
            .map_err(|e| LlmError::Stream(format!("malformed stream event: {e}")))?;
        for d in deltas {
            let done = d == Delta::Done;
            if !out.send(d) || done {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_strings() {
        let m = ModelRef::parse("openrouter/meta-llama/llama-3.1-8b").unwrap();
        assert_eq!(
            (m.provider.as_str(), m.model.as_str()),
            ("openrouter", "meta-llama/llama-3.1-8b")
        );
        let m = ModelRef::parse("qwen3:0.6b").unwrap();
        assert_eq!(
            (m.provider.as_str(), m.model.as_str()),
            ("ollama", "qwen3:0.6b")
        );
        for bad in ["", "/x", "ollama/", "a b/c", "x/\u{0}"] {
            assert!(ModelRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn llm(extra: &str) -> Llm {
        let (config, _) = crate::config::parse(extra).unwrap();
        Llm::new(&config)
    }

    #[test]
    fn urls_direct_and_through_proxy() {
        let l = llm("");
        let t = l.resolve("llamacpp/any").unwrap();
        assert_eq!(
            l.url(&t.provider),
            "http://localhost:8080/v1/chat/completions"
        );
        assert_eq!(
            l.url(&l.resolve("ollama/x").unwrap().provider),
            "http://localhost:11434/api/chat"
        );
        let l = llm("proxy_url = \"http://gw:9/\"\n");
        assert_eq!(
            l.url(&l.resolve("llamacpp/any").unwrap().provider),
            "http://gw:9/llamacpp/v1/chat/completions"
        );
        assert_eq!(
            l.url(&l.resolve("ollama/x").unwrap().provider),
            "http://gw:9/ollama/api/chat"
        );
        assert_eq!(
            l.url(&l.resolve("xai/grok").unwrap().provider),
            "http://gw:9/xai/v1/chat/completions"
        );
    }

    #[test]
    fn config_adds_and_overrides_providers() {
        let l = llm("[providers.home]\nbase_url = \"http://h:1/v1\"\n[providers.ollama]\nbase_url = \"http://o:2\"\n");
        let home = l.resolve("home/m").unwrap();
        assert_eq!(home.provider.kind, Kind::OpenAi);
        let o = l.resolve("ollama/m").unwrap();
        assert_eq!(
            (o.provider.kind, o.provider.base_url.as_str()),
            (Kind::Ollama, "http://o:2")
        );
        let err = l.resolve("nope/m").unwrap_err();
        assert!(err.contains("unknown provider 'nope'"), "{err}");
    }

    #[test]
    fn embeddings_answers_parse() {
        let o = parse_embeddings(
            Kind::Ollama,
            br#"{"model":"m","embeddings":[[1,0.5],[0,1]]}"#,
        );
        assert_eq!(o.unwrap(), vec![vec![1.0, 0.5], vec![0.0, 1.0]]);
        let a = parse_embeddings(
            Kind::OpenAi,
            br#"{"data":[{"embedding":[0,1],"index":1},{"embedding":[1,0],"index":0}]}"#,
        );
        assert_eq!(a.unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(parse_embeddings(Kind::OpenAi, b"{}").is_err());
        assert!(parse_embeddings(Kind::Ollama, br#"{"embeddings":[[]]}"#).is_err());
    }

    #[test]
    fn embedding_urls_follow_the_proxy() {
        let l = llm("");
        assert_eq!(
            l.url_for(&l.resolve("openai/x").unwrap().provider, "/embeddings"),
            "https://api.openai.com/v1/embeddings"
        );
        let l = llm("proxy_url = \"http://gw:9\"\n");
        assert_eq!(
            l.url_for(&l.resolve("ollama/x").unwrap().provider, "/api/embed"),
            "http://gw:9/ollama/api/embed"
        );
    }

    #[test]
    fn debug_never_shows_keys() {
        let l = llm("[providers.k]\napi_key = \"sk-secret\"\n");
        let shown = format!("{:?}", l.resolve("k/m").unwrap());
        assert!(!shown.contains("sk-secret"), "{shown}");
    }
}
