//! A small HTTP reverse proxy that splits traffic between stable and canary by weight.
//!
//! Routing is per request (not per connection, so keep-alive clients are split too) and
//! deterministic: a weighted round-robin that sends request `n` to the canary exactly when
//! `floor((n+1)·w/100) > floor(n·w/100)`, so 25 % is exactly one request in four.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::DeployError;

/// Largest request or response body the proxy forwards.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where traffic goes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    /// The stable version's address.
    pub stable: SocketAddr,
    /// The canary's address, when one runs.
    pub canary: Option<SocketAddr>,
    /// Percent of requests for the canary, 0..=100.
    pub canary_percent: u8,
}

struct Inner {
    backends: RwLock<Backends>,
    counter: AtomicU64,
    client: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub struct WeightedProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WeightedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightedProxy")
            .field("addr", &self.addr)
            .field("backends", &self.backends())
            .finish()
    }
}

impl Drop for WeightedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether request `n` (0-based) goes to the canary at `percent`.
pub fn goes_to_canary(n: u64, percent: u8) -> bool {
    let w = u64::from(percent.min(100));
    (n + 1) * w / 100 > n * w / 100
}

impl WeightedProxy {
    /// Listens on `listen` and forwards everything to `stable` until a canary is set.
    pub async fn start(listen: SocketAddr, stable: SocketAddr) -> Result<Self, DeployError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| DeployError::Proxy(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| DeployError::Proxy(e.to_string()))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DeployError::Proxy(e.to_string()))?;
        let inner = Arc::new(Inner {
            backends: RwLock::new(Backends {
                stable,
                canary: None,
                canary_percent: 0,
            }),
            counter: AtomicU64::new(0),
            client,
        });
        let app = axum::Router::new().fallback(forward).with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "traffic proxy stopped");
            }
        });
        Ok(WeightedProxy { addr, inner, task })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where traffic goes now.
    pub fn backends(&self) -> Backends {
        match self.inner.backends.read() {
            Ok(b) => *b,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Replaces the routing table; the round-robin restarts so the split is exact from now on.
    pub fn set(&self, backends: Backends) {
        match self.inner.backends.write() {
            Ok(mut b) => *b = backends,
            Err(poisoned) => *poisoned.into_inner() = backends,
        }
        self.inner.counter.store(0, Ordering::SeqCst);
    }
}

/// Headers that belong to one hop and must not be forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

fn copy_headers(from: &HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::new();
    for (k, v) in from {
        if !hop_by_hop(k) {
            to.append(k.clone(), v.clone());
        }
    }
    to
}

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let backends = match inner.backends.read() {
        Ok(b) => *b,
        Err(poisoned) => *poisoned.into_inner(),
    };
    let target = match backends.canary {
        Some(canary) if goes_to_canary(inner.counter.fetch_add(1, Ordering::SeqCst), backends.canary_percent) => canary,
        _ => backends.stable,
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("http://{target}{path}");
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let upstream = inner
        .client
        .request(parts.method, &url)
        .headers(copy_headers(&parts.headers))
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%target, error = %e, "backend unreachable");
            return (StatusCode::BAD_GATEWAY, "backend unreachable").into_response();
        }
    };
    let status = upstream.status();
    let headers = copy_headers(upstream.headers());
    match upstream.bytes().await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(_) => (StatusCode::BAD_GATEWAY, "backend response cut off").into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_is_exact() {
        for percent in [0u8, 1, 10, 25, 33, 50, 100] {
            let canary = (0..100).filter(|n| goes_to_canary(*n, percent)).count();
            assert_eq!(canary, usize::from(percent), "{percent}%");
        }
        let first4: Vec<bool> = (0..4).map(|n| goes_to_canary(n, 25)).collect();
        assert_eq!(first4.iter().filter(|c| **c).count(), 1);
    }

    async fn tiny_server(name: &'static str) -> SocketAddr {
        let app = axum::Router::new().fallback(move || async move { name });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn splits_real_traffic_exactly() {
        let stable = tiny_server("stable").await;
        let canary = tiny_server("canary").await;
        let proxy = WeightedProxy::start("127.0.0.1:0".parse().unwrap(), stable)
            .await
            .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://{}/price?x=1", proxy.addr());
        let body = client.post(&url).body("{}").send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "stable");
        proxy.set(Backends {
            stable,
            canary: Some(canary),
            canary_percent: 25,
        });
        let mut canary_hits = 0;
        for _ in 0..40 {
            if client.get(&url).send().await.unwrap().text().await.unwrap() == "canary" {
                canary_hits += 1;
            }
        }
        assert_eq!(canary_hits, 10);
        proxy.set(Backends {
            stable: canary,
            canary: None,
            canary_percent: 0,
        });
        assert_eq!(client.get(&url).send().await.unwrap().text().await.unwrap(), "canary");
    }

    #[tokio::test]
    async fn dead_backend_is_bad_gateway() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let proxy = WeightedProxy::start("127.0.0.1:0".parse().unwrap(), dead)
            .await
            .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client.get(format!("http://{}/", proxy.addr())).send().await.unwrap();
        assert_eq!(r.status(), 502);
    }
}
