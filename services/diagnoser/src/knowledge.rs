//! Asking the learning store what fixed a fingerprint before.
//!
//! The diagnoser must not wait on the learner: a short timeout, one quick retry, and a
//! diagnosis without known fixes (saying so) when it is down.

use std::time::Duration;

use async_trait::async_trait;
use selfheal_events::KnownFix;
use serde::Deserialize;

use crate::error::DiagnoserError;

/// Default learner API base URL (`--learner-url`, `SELFHEAL_LEARNER_URL`).
pub const DEFAULT_LEARNER_URL: &str = "http://127.0.0.1:8090";
/// Default timeout of one request to the learner.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before the single retry.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The learning store, as the diagnoser sees it.
#[async_trait]
pub trait KnowledgeClient: Send + Sync {
    /// Fixes remembered for `fingerprint`, best first, then (given the incident's
    /// `exception_type`) templates that healed the same crash class elsewhere, marked with
    /// scope `crash-class` (empty when none).
    async fn known_fixes(
        &self,
        fingerprint: &str,
        exception_type: Option<&str>,
    ) -> Result<Vec<KnownFix>, DiagnoserError>;
}

/// A knowledge client for deployments without a learner: knows nothing, never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKnowledge;

#[async_trait]
impl KnowledgeClient for NoKnowledge {
    async fn known_fixes(
        &self,
        _fingerprint: &str,
        _exception_type: Option<&str>,
    ) -> Result<Vec<KnownFix>, DiagnoserError> {
        Ok(Vec::new())
    }
}

/// The learner's `GET /v1/fixes/{fingerprint}` answer.
#[derive(Debug, Deserialize)]
struct FixesBody {
    fixes: Vec<KnownFix>,
}

/// The learner's HTTP API.
#[derive(Debug, Clone)]
pub struct HttpKnowledgeClient {
    base: String,
    client: reqwest::Client,
}

/// Percent-encodes everything but unreserved characters, so a fingerprint is one path segment.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a base URL names this host.
fn is_loopback(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map(|(_, r)| r).unwrap_or(base_url);
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl HttpKnowledgeClient {
    /// A client of the learner at `base_url` with the default 2 s timeout.
    pub fn new(base_url: &str) -> Result<Self, DiagnoserError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// A client with a custom timeout per request.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, DiagnoserError> {
        let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout);
        if is_loopback(base_url) {
            // A learner on this host must not be sent through an HTTP(S)_PROXY of the environment.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| DiagnoserError::Client(e.to_string()))?;
        Ok(HttpKnowledgeClient {
            base: base_url.trim_end_matches('/').to_string(),
            client,
        })
    }

    async fn once(&self, url: &str) -> Result<Vec<KnownFix>, DiagnoserError> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| DiagnoserError::KnowledgeUnavailable(e.to_string()))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(DiagnoserError::KnowledgeUnavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(DiagnoserError::KnowledgeProtocol(format!("HTTP {status}")));
        }
        let body: FixesBody = resp
            .json()
            .await
            .map_err(|e| DiagnoserError::KnowledgeProtocol(e.to_string()))?;
        Ok(body.fixes)
    }
}

#[async_trait]
impl KnowledgeClient for HttpKnowledgeClient {
    async fn known_fixes(
        &self,
        fingerprint: &str,
        exception_type: Option<&str>,
    ) -> Result<Vec<KnownFix>, DiagnoserError> {
        let mut url = format!("{}/v1/fixes/{}", self.base, path_segment(fingerprint));
        if let Some(t) = exception_type.map(str::trim).filter(|t| !t.is_empty()) {
            // The same escaping as a path segment is valid in a query value.
            url.push_str(&format!("?exception_type={}", path_segment(t)));
        }
        match self.once(&url).await {
            Err(DiagnoserError::KnowledgeUnavailable(first)) => {
                tracing::debug!(error = %first, "learning store unavailable; retrying once");
                tokio::time::sleep(RETRY_PAUSE).await;
                self.once(&url).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_one_path_segment() {
        assert_eq!(path_segment("3c9e5d1f2a44b7e0"), "3c9e5d1f2a44b7e0");
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:8090"));
        assert!(is_loopback("http://localhost:8090/"));
        assert!(is_loopback("http://[::1]:8090"));
        assert!(!is_loopback("http://learner.selfheal.svc:8090"));
        assert!(!is_loopback("http://10.0.0.7:8090"));
    }

    #[tokio::test]
    async fn a_learner_that_is_down_is_an_error_not_a_hang() {
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let client = HttpKnowledgeClient::with_timeout("http://127.0.0.1:9", Duration::from_millis(300)).unwrap();
        let err = client.known_fixes("abc", None).await.unwrap_err();
        assert!(matches!(err, DiagnoserError::KnowledgeUnavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn reads_the_learner_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let body = r#"{"fingerprint":"fp1","fixes":[{"strategy":"python.zero-division-guard","healed":2,"attempts":2,"median_heal_secs":26.0,"last_incident_id":"i1","last_diff":"d"}]}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
            request
        });
        let client = HttpKnowledgeClient::new(&format!("http://{addr}/")).unwrap();
        // An answer from a learner that predates the crash-class fields still reads.
        let fixes = client.known_fixes("fp1", Some("KeyError: x")).await.unwrap();
        assert_eq!(fixes.len(), 1);
        assert_eq!(fixes[0].scope, None);
        assert_eq!(fixes[0].strategy, "python.zero-division-guard");
        assert_eq!(fixes[0].healed, 2);
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /v1/fixes/fp1?exception_type=KeyError%3A%20x HTTP/1.1"),
            "{request}"
        );
    }
}
