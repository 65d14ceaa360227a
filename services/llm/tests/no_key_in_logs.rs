//! The key reaches the Anthropic fake but never a log line. In its own test binary because
//! tracing's per-callsite interest cache is process-wide: tests running on other threads
//! without a subscriber would make this thread's scoped subscriber miss DEBUG events.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fake;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fake::{Fake, Reply};
use selfheal_llm::prompt::{DATA_RULES, untrusted};
use selfheal_llm::{ChatRequest, LlmConfig, ProviderKind};

const ANTHROPIC_KEY: &str = "sk-ant-api03-ANTHROPICKEY0123456789";

/// A tracing subscriber writing everything (TRACE, all targets) to a buffer, for this thread.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Buf(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn anthropic_headers_and_key_never_in_logs() {
    let (logs, _guard) = capture_logs();
    // First a 529 whose body echoes the key (as some gateways do), so the retry path logs too.
    let fake = Fake::start(vec![
        Reply::json(
            529,
            serde_json::json!({"error": {"message": format!("overloaded for key {ANTHROPIC_KEY}")}}),
        )
        .header("retry-after", "0"),
        Reply::anthropic("diagnosis", 100, 20),
    ])
    .await;
    let cfg = LlmConfig {
        provider: Some(ProviderKind::Anthropic),
        endpoint: Some(fake.base.clone()),
        model: Some("claude-test".into()),
        ..LlmConfig::default()
    };
    let client = cfg
        .client_with_env(|n| (n == "ANTHROPIC_API_KEY").then(|| ANTHROPIC_KEY.to_string()))
        .unwrap()
        .unwrap();
    let budget = client.budget();
    let user = format!(
        "Evidence:\n{}",
        untrusted("log lines", "login failed for bob@example.com password=hunter2")
    );
    let req = ChatRequest::new(format!("Diagnose.\n{DATA_RULES}"), user, 512);
    let (resp, exchange) = client.chat(&budget, &req).await.unwrap();
    tracing::info!(client = ?client, "client after the call");

    assert_eq!(resp.text, "diagnosis");
    assert_eq!(resp.usage.input_tokens + resp.usage.output_tokens, 120);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["x-api-key"], ANTHROPIC_KEY);
    let seen = &seen[1..];
    assert_eq!(seen[0].path, "/v1/messages");
    // The key does arrive where it must...
    assert_eq!(seen[0].headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
    assert!(!seen[0].headers.contains_key("authorization"));
    let body = &seen[0].body;
    assert_eq!(body["model"], "claude-test");
    assert!(body["system"].as_str().unwrap().starts_with("Diagnose."));
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["max_tokens"], 512);
    // ... secrets from telemetry do not.
    let sent = body["messages"][0]["content"].as_str().unwrap();
    assert!(!sent.contains("hunter2") && !sent.contains("bob@example.com"), "{sent}");
    assert!(sent.contains("[REDACTED:password]") && sent.contains("[REDACTED:email]"));
    assert!(!exchange.prompt.contains("hunter2"));

    // ... and the key never reaches the logs, while the logs did record the call.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("LLM request"), "nothing captured: {logs}");
    assert!(
        logs.contains("LLM call will be retried") && logs.contains("529"),
        "{logs}"
    );
    // The echoed key was redacted out of the error body that the retry line logs.
    assert!(logs.contains("overloaded for key [REDACTED:anthropic_key]"), "{logs}");
    assert!(logs.contains("client after the call"));
    assert!(
        !logs.contains(ANTHROPIC_KEY) && !logs.contains("ANTHROPICKEY"),
        "key leaked into logs"
    );
}
