//! [`FakeLlm`]: a minimal HTTP/1.1 server standing in for Ollama or an
//! OpenAI-compatible provider.
//!
//! It listens on `127.0.0.1:0`, serves each connection on its own thread,
//! records every request ([`Recorded`]: method, path, headers, body) and
//! answers with the next scripted [`Reply`] from its queue, or with its
//! default reply when the queue is empty. Every answer says
//! `Connection: close`: one request per connection keeps the parser small.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A stall ends when the test ends (the server is dropped), or after this.
const MAX_HANG: Duration = Duration::from_secs(60);

/// Delay between the lines of a [`Reply::fixture`], so that streaming (as
/// opposed to buffering the whole reply) is observable.
const FIXTURE_GAP: Duration = Duration::from_millis(5);

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    pub raw_body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `messages` array of the request body.
    #[track_caller]
    pub fn messages(&self) -> &Vec<Value> {
        self.body["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("request body without `messages`: {}", self.body))
    }

    /// The content of the system message ("" when there is none).
    pub fn system(&self) -> String {
        self.messages()
            .iter()
            .find(|m| m["role"] == "system")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    }

    /// The content of the last message, which must be the user's.
    pub fn last_user(&self) -> String {
        let last = self.messages().last().expect("a request without messages");
        assert_eq!(last["role"], "user", "the last message sent: {last}");
        last["content"].as_str().unwrap_or("").to_string()
    }

    /// True if any message has this role and its content contains `text`.
    pub fn has_message(&self, role: &str, text: &str) -> bool {
        self.messages()
            .iter()
            .any(|m| m["role"] == role && m["content"].as_str().is_some_and(|c| c.contains(text)))
    }

    /// True if `text` appears anywhere in the request body.
    pub fn body_contains(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.raw_body).contains(text)
    }
}

/// What the fake server does with one request.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: Kind,
    status: u16,
    headers: Vec<(String, String)>,
    /// Pause before each piece after the first.
    gap: Duration,
    end: End,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `Transfer-Encoding: chunked`, one HTTP chunk per piece.
    Chunked(Vec<Vec<u8>>),
    /// `Content-Length` body.
    Body(Vec<u8>),
    /// Read the request, then never answer.
    Hang,
    /// Read the request, then close the connection without a byte.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// Terminating chunk, then close.
    Finish,
    /// Stop sending, keep the connection open (a stall).
    Hang,
    /// Close without the terminating chunk (a broken stream).
    Drop,
}

impl Reply {
    /// A streamed answer: `chunks` each sent as one HTTP chunk and flushed.
    pub fn stream(status: u16, content_type: &str, chunks: Vec<Vec<u8>>) -> Reply {
        Reply {
            kind: Kind::Chunked(chunks),
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            gap: Duration::ZERO,
            end: End::Finish,
        }
    }

    /// Replays a fixture file, one line per chunk with a small delay. The
    /// content type follows the extension (`.ndjson`, `.sse`).
    #[track_caller]
    pub fn fixture(path: impl AsRef<Path>) -> Reply {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("ndjson") => "application/x-ndjson",
            Some("sse") => "text/event-stream",
            _ => "application/json",
        };
        Reply::stream(200, content_type, split_lines(&bytes)).gap(FIXTURE_GAP)
    }

    /// A plain (non-streamed) answer, e.g. an error status with its body.
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !h
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            h.push(("Content-Type".into(), "application/json".into()));
        }
        Reply {
            kind: Kind::Body(body.as_bytes().to_vec()),
            status: code,
            headers: h,
            gap: Duration::ZERO,
            end: End::Finish,
        }
    }

    /// Never answers (the connection stays open).
    pub fn hang() -> Reply {
        Reply {
            kind: Kind::Hang,
            status: 0,
            headers: vec![],
            gap: Duration::ZERO,
            end: End::Hang,
        }
    }

    /// Closes the connection at once, without a status line.
    pub fn close() -> Reply {
        Reply {
            kind: Kind::Close,
            status: 0,
            headers: vec![],
            gap: Duration::ZERO,
            end: End::Drop,
        }
    }

    /// Waits `gap` between pieces.
    pub fn gap(mut self, gap: Duration) -> Reply {
        self.gap = gap;
        self
    }

    /// After the pieces, keeps the connection open and silent.
    pub fn then_hang(mut self) -> Reply {
        self.end = End::Hang;
        self
    }

    /// After the pieces, closes without the terminating chunk.
    pub fn then_drop(mut self) -> Reply {
        self.end = End::Drop;
        self
    }
}

/// Splits bytes after each `\n` (a last piece without `\n` is kept).
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// An Ollama `/api/chat` stream of `tokens`, ending with a `done:true` line
/// when `done_reason` is given (and no end marker when it is `None`).
pub fn ollama_stream(tokens: &[&str], done_reason: Option<&str>) -> Reply {
    let mut lines: Vec<Vec<u8>> = tokens
        .iter()
        .map(|t| {
            let v = json!({"model":"test-model","created_at":"2026-01-05T10:00:00Z",
                           "message":{"role":"assistant","content":t},"done":false});
            format!("{v}\n").into_bytes()
        })
        .collect();
    if let Some(reason) = done_reason {
        let v = json!({"model":"test-model","created_at":"2026-01-05T10:00:01Z",
                       "message":{"role":"assistant","content":""},"done":true,"done_reason":reason,
                       "prompt_eval_count":9,"eval_count":tokens.len()});
        lines.push(format!("{v}\n").into_bytes());
    }
    Reply::stream(200, "application/x-ndjson", lines).gap(FIXTURE_GAP)
}

/// An OpenAI-style SSE stream of `tokens`, ending with `finish_reason` and
/// `data: [DONE]` when `finish_reason` is given (no end marker otherwise).
pub fn openai_stream(tokens: &[&str], finish_reason: Option<&str>) -> Reply {
    let chunk = |delta: Value, finish: Value| {
        let v = json!({"id":"chatcmpl-e2e","object":"chat.completion.chunk","created":1767607200,
                       "model":"test-model","choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
        format!("data: {v}\n\n").into_bytes()
    };
    let mut pieces: Vec<Vec<u8>> = tokens
        .iter()
        .map(|t| chunk(json!({"content": t}), Value::Null))
        .collect();
    if let Some(reason) = finish_reason {
        pieces.push(chunk(json!({}), json!(reason)));
        pieces.push(b"data: [DONE]\n\n".to_vec());
    }
    Reply::stream(200, "text/event-stream", pieces).gap(FIXTURE_GAP)
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Chooses a reply by looking at the request; `None` falls back to the
/// queue, then the default.
pub type Responder = Box<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

/// Chooses the vector of one input text of an embeddings request.
pub type Embedder = Box<dyn Fn(&str) -> Vec<f32> + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    queue: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    responder: Mutex<Option<Responder>>,
    embedder: Mutex<Option<Embedder>>,
    stop: AtomicBool,
}

/// True for a request to an embeddings endpoint (Ollama `/api/embed`,
/// OpenAI-style `/embeddings`).
pub fn is_embed_path(path: &str) -> bool {
    path.ends_with("/api/embed") || path.ends_with("/embeddings")
}

/// The input texts of an embeddings request (`input` a string or an array).
pub fn embed_inputs_of(r: &Recorded) -> Vec<String> {
    match &r.body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The answer to an embeddings request, in the wire format of its path.
fn embed_reply(r: &Recorded, f: &Embedder) -> Reply {
    let vectors: Vec<Vec<f32>> = embed_inputs_of(r).iter().map(|t| f(t)).collect();
    let body = if r.path.ends_with("/api/embed") {
        json!({"model": r.body["model"], "embeddings": vectors})
    } else {
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"object": "embedding", "embedding": v, "index": i}))
            .collect();
        json!({"object": "list", "model": r.body["model"], "data": data})
    };
    Reply::status(200, &[], &body.to_string())
}

/// The fake provider. Dropping it stops it (stalled connections close).
pub struct FakeLlm {
    port: u16,
    shared: Arc<Shared>,
}

impl FakeLlm {
    /// Starts a server answering every request with `default` unless a
    /// reply was queued with [`FakeLlm::push`].
    pub fn start(default: Reply) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake LLM");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            responder: Mutex::new(None),
            embedder: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name(format!("fake-llm-{port}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let s = s.clone();
                    std::thread::spawn(move || serve(conn, &s));
                }
            })
            .unwrap();
        FakeLlm { port, shared }
    }

    /// Fake Ollama replaying `tests/fixtures/e2e/ollama-plain.ndjson`.
    pub fn ollama() -> FakeLlm {
        FakeLlm::start(Reply::fixture(super::fixture("ollama-plain.ndjson")))
    }

    /// Fake OpenAI-compatible server replaying `openai-plain.sse`.
    pub fn openai() -> FakeLlm {
        FakeLlm::start(Reply::fixture(super::fixture("openai-plain.sse")))
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues a reply for the next request.
    pub fn push(&self, reply: Reply) {
        self.shared.queue.lock().unwrap().push_back(reply);
    }

    /// Replaces the reply used when the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = reply;
    }

    /// Lets `f` choose the reply to each request by its content (a
    /// request it answers `None` for gets the queued or default reply).
    /// Consulted before the queue.
    pub fn respond_with(&self, f: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static) {
        *self.shared.responder.lock().unwrap() = Some(Box::new(f));
    }

    /// Answers embeddings requests (`/api/embed`, `/embeddings`) with the
    /// vector `f` chooses for each input text. Consulted before everything
    /// else, for those paths only; without it they are answered like any
    /// other request.
    pub fn embed_with(&self, f: impl Fn(&str) -> Vec<f32> + Send + Sync + 'static) {
        *self.shared.embedder.lock().unwrap() = Some(Box::new(f));
    }

    /// Every input text of the embeddings requests received so far.
    pub fn embed_inputs(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| is_embed_path(&r.path))
            .flat_map(embed_inputs_of)
            .collect()
    }

    /// The requests received so far other than embeddings requests.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !is_embed_path(&r.path))
            .collect()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The last request; panics if there was none.
    #[track_caller]
    pub fn last_request(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the fake LLM received no request")
    }

    /// Waits (bounded, 10 s) until at least `n` requests arrived.
    #[track_caller]
    pub fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        super::wait_for(
            Duration::from_secs(10),
            &format!("{n} request(s) at the fake LLM"),
            || {
                let r = self.requests();
                (r.len() >= n).then_some(r)
            },
        )
    }

    /// One line per recorded request, for failure messages.
    pub fn summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                let body = String::from_utf8_lossy(&r.raw_body);
                let cut: String = body.chars().take(400).collect();
                format!("{} {} {}", r.method, r.path, cut)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- requests received by the fake LLM on port {} ---\n{}",
                self.port,
                self.summary()
            );
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one connection: read and record the request, then answer.
fn serve(conn: TcpStream, shared: &Shared) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let embedded = if is_embed_path(&request.path) {
        shared
            .embedder
            .lock()
            .unwrap()
            .as_ref()
            .map(|f| embed_reply(&request, f))
    } else {
        None
    };
    let chosen = embedded.or_else(|| {
        shared
            .responder
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|f| f(&request))
    });
    shared.requests.lock().unwrap().push(request);
    let reply = chosen.unwrap_or_else(|| {
        shared
            .queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| shared.default.lock().unwrap().clone())
    });
    let _ = answer(conn, &reply, shared);
}

fn read_request(r: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        body.resize(len.parse().ok()?, 0);
        r.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut piece = vec![0; size + 2]; // with its \r\n
            r.read_exact(&mut piece).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&piece[..size]);
        }
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(Recorded {
        method,
        path,
        headers,
        body: json,
        raw_body: body,
    })
}

fn answer(mut conn: TcpStream, reply: &Reply, shared: &Shared) -> std::io::Result<()> {
    let chunks = match &reply.kind {
        Kind::Close => return conn.shutdown(Shutdown::Both),
        Kind::Hang => {
            hang(shared);
            return Ok(());
        }
        Kind::Body(body) => {
            let mut head = status_line(reply);
            head += &format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(body)?;
            conn.flush()?;
            return conn.shutdown(Shutdown::Both);
        }
        Kind::Chunked(chunks) => chunks,
    };
    let head = status_line(reply) + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    conn.write_all(head.as_bytes())?;
    conn.flush()?;
    for (i, piece) in chunks.iter().enumerate() {
        if i > 0 && !reply.gap.is_zero() {
            std::thread::sleep(reply.gap);
        }
        if piece.is_empty() {
            continue; // an empty chunk would end the body
        }
        conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
        conn.write_all(piece)?;
        conn.write_all(b"\r\n")?;
        conn.flush()?;
    }
    match reply.end {
        End::Finish => {
            conn.write_all(b"0\r\n\r\n")?;
            conn.flush()?;
            conn.shutdown(Shutdown::Both)
        }
        End::Drop => conn.shutdown(Shutdown::Both),
        End::Hang => {
            hang(shared);
            Ok(())
        }
    }
}

fn status_line(reply: &Reply) -> String {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut s = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    for (k, v) in &reply.headers {
        s += &format!("{k}: {v}\r\n");
    }
    s
}

/// Holds a connection open and silent until the server stops (or 60 s).
fn hang(shared: &Shared) {
    let deadline = Instant::now() + MAX_HANG;
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
