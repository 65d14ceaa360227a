//! A language model at the HTTP level for the end-to-end tests: an Anthropic Messages API
//! (`POST /v1/messages`) that answers from a script chosen by what the request asks for, and
//! keeps every request body and API key header it received so tests can check what left
//! selfheal's processes. The stages talk to it through their real LLM client.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

/// Which of selfheal's questions a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// The diagnoser's ranked hypotheses.
    Hypotheses,
    /// The repairer's candidate (first or revision).
    Patch,
    /// The repairer's self-critique.
    Critique,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub question: Question,
    pub body: Value,
    pub api_key: Option<String>,
}

/// The answers the fake gives, as JSON text, per question.
#[derive(Debug, Clone)]
pub struct Script {
    pub hypotheses: String,
    pub patch: String,
    pub critique: String,
}

#[derive(Clone)]
struct FakeState {
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running fake; its URL is the Anthropic endpoint to configure.
pub struct FakeModel {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeModel {
    /// Serves `script` on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> FakeModel {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            script: Arc::new(script),
            seen: seen.clone(),
        };
        let app = Router::new().route("/v1/messages", post(answer)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeModel {
            url: format!("http://{addr}"),
            seen,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The schema each question puts into the system prompt tells them apart.
fn question(body: &Value) -> Question {
    let system = body["system"].as_str().unwrap_or_default();
    if system.contains("\"verdict\"") {
        Question::Critique
    } else if system.contains("\"edits\"") {
        Question::Patch
    } else {
        Question::Hypotheses
    }
}

async fn answer(State(state): State<FakeState>, headers: HeaderMap, body: axum::Json<Value>) -> axum::Json<Value> {
    let body = body.0;
    let q = question(&body);
    state.seen.lock().unwrap().push(Seen {
        question: q,
        body: body.clone(),
        api_key: headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    let text = match q {
        Question::Hypotheses => state.script.hypotheses.clone(),
        Question::Patch => state.script.patch.clone(),
        Question::Critique => state.script.critique.clone(),
    };
    // The Messages API's answer shape.
    axum::Json(json!({
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 1000, "output_tokens": 100}
    }))
}
