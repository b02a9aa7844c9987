//! Reading a provider's non-2xx reply: the human message, whether to retry,
//! and how long to wait.
//!
//! Policy: the user should see the provider's own sentence ("model 'x' not
//! found"), never a JSON blob, whatever the error shape (Ollama, OpenAI,
//! OpenRouter, vLLM, Gemini's array, llama.cpp); a body we do not recognise
//! is shown trimmed and cut, so an HTML proxy page cannot flood the log.
//! Retries are for transient states only (timeouts, rate limits, overload,
//! 5xx); a spent quota or a bad request is not transient.

use serde_json::Value;
use std::time::Duration;

/// How much of an unrecognised body is shown.
const MAX_TEXT_CHARS: usize = 300;

/// The human-readable message of an error body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(msg) = message_from_json(&v) {
            return msg;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_string();
    }
    // `chars().take` cuts on a char boundary (never splits UTF-8).
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// The message inside any known error JSON shape, `None` when there is none.
/// Shared with the stream parsers, which meet the same shapes mid-stream.
pub(crate) fn message_from_json(v: &Value) -> Option<String> {
    match v {
        // Gemini wraps its error object in a one-element array.
        Value::Array(items) => items.iter().find_map(message_from_json),
        Value::String(s) => non_empty(s),
        Value::Object(map) => {
            if let Some(err) = map.get("error") {
                match err {
                    // Ollama: {"error":"..."}
                    Value::String(s) => return non_empty(s),
                    // OpenAI, OpenRouter, llama.cpp, Anthropic, Gemini.
                    Value::Object(inner) => {
                        if let Some(m) = inner.get("message").and_then(Value::as_str) {
                            if let Some(m) = non_empty(m) {
                                return Some(m);
                            }
                        }
                        // No message: the code or type is better than nothing.
                        for key in ["code", "type", "status"] {
                            match inner.get(key) {
                                Some(Value::String(s)) if !s.trim().is_empty() => {
                                    return Some(s.trim().to_string())
                                }
                                Some(Value::Number(n)) => return Some(format!("error {n}")),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            // vLLM's flat {"object":"error","message":...}; FastAPI's
            // {"detail":"..."} (LiteLLM and other Python proxies).
            ["message", "detail"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str).and_then(non_empty))
        }
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Whether a failed request is worth retrying after a pause.
pub fn is_retryable(status: u16, body: &[u8]) -> bool {
    match status {
        // 429 also means "no quota left" at OpenAI: retrying cannot help.
        429 => !contains(body, b"insufficient_quota"),
        // Timeout, conflict (OpenAI's lock timeout), too early, 5xx that
        // mean "busy or restarting", Anthropic's overloaded, and the
        // Cloudflare 520-524 origin failures.
        408 | 409 | 425 | 500 | 502 | 503 | 504 | 520..=524 | 529 => true,
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The wait a provider asked for, from the `retry-after-ms` header
/// (preferred: finer) or `retry-after` in seconds (integer or decimal).
/// An HTTP-date, a negative or a nonsense value gives `None`: the caller
/// uses its own backoff then.
pub fn retry_after(retry_after: Option<&str>, retry_after_ms: Option<&str>) -> Option<Duration> {
    let ms = retry_after_ms
        .and_then(parse_non_negative)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
    ms.or_else(|| {
        retry_after
            .and_then(parse_non_negative)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    })
}

fn parse_non_negative(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/providers/", $name))
        };
    }

    #[test]
    fn messages_from_every_shape() {
        let cases: [(&[u8], &str); 8] = [
            (
                fixture!("error-ollama.json"),
                "model \"tinyllama\" not found, try pulling it first",
            ),
            (fixture!("error-openai.json"), "Invalid API key supplied."),
            (
                fixture!("error-openai-quota.json"),
                "Your plan has no quota left.",
            ),
            (
                fixture!("error-openai-rate-limit.json"),
                "Too many tokens per minute; retry in 2s.",
            ),
            (fixture!("error-openrouter-402.json"), "Out of credits."),
            (
                fixture!("error-vllm.json"),
                "Prompt is longer than the context window.",
            ),
            (
                fixture!("error-gemini-array.json"),
                "Bad argument in request.",
            ),
            (
                fixture!("error-llamacpp.json"),
                "request (900 tokens) exceeds the available context size (512 tokens)",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(error_message(body), want);
        }
    }

    #[test]
    fn html_and_odd_bodies_fall_back_to_text() {
        let msg = error_message(fixture!("error-html.txt"));
        assert!(msg.starts_with("<html>"), "{msg}");
        assert!(msg.ends_with("</html>"), "trimmed: {msg:?}");
        assert_eq!(error_message(b""), "empty body");
        assert_eq!(error_message(b" \r\n "), "empty body");
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message(br#"{"error":{"code":502}}"#), "error 502");
        assert_eq!(
            error_message(br#"{"error":{"type":"overloaded"}}"#),
            "overloaded"
        );
        // Valid JSON with no message: show the text.
        assert_eq!(error_message(br#"{"ok":false}"#), r#"{"ok":false}"#);
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let body = "é".repeat(400);
        let msg = error_message(body.as_bytes());
        assert_eq!(msg.chars().count(), 300);
        assert!(msg.chars().all(|c| c == 'é'));
        // Invalid UTF-8 does not panic.
        assert_eq!(error_message(b"\xff\xfe oops"), "\u{fffd}\u{fffd} oops");
    }

    #[test]
    fn retryable_statuses() {
        let rate = fixture!("error-openai-rate-limit.json");
        let quota = fixture!("error-openai-quota.json");
        assert!(is_retryable(429, rate));
        assert!(!is_retryable(429, quota));
        for s in [408, 409, 425, 500, 502, 503, 504, 529] {
            assert!(is_retryable(s, b""), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 422, 501] {
            assert!(!is_retryable(s, fixture!("error-openai.json")), "{s}");
        }
        assert!(!is_retryable(402, fixture!("error-openrouter-402.json")));
    }

    #[test]
    fn retry_after_values() {
        let d = |s: f64| Some(Duration::from_secs_f64(s));
        assert_eq!(retry_after(Some("19"), Some("18642")), d(18.642));
        assert_eq!(retry_after(Some("19"), None), d(19.0));
        assert_eq!(retry_after(Some(" 1.5 "), None), d(1.5));
        assert_eq!(retry_after(Some("2"), Some("soon")), d(2.0));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
            None
        );
        assert_eq!(retry_after(Some("-3"), None), None);
        assert_eq!(retry_after(Some("NaN"), None), None);
        assert_eq!(retry_after(Some("1e300"), None), None);
        assert_eq!(retry_after(None, None), None);
    }
}
