//! The HTTP receiver: OTLP/HTTP (`/v1/traces`, `/v1/logs`, `/v1/metrics`), Alertmanager
//! (`/v1/alertmanager`) and Loki push (`/loki/api/v1/push`), plus the operations routes.
//!
//! Order of checks on every ingest request: bearer token (401), in-flight bound (429),
//! content type and encoding (415), body size (413), decoding (400), storage (503 with
//! `Retry-After` while Kafka or the registry is down). 200 means every accepted item was
//! acknowledged by the broker.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use selfheal_core::http::{Health, ops_router};
use selfheal_core::metrics::Metrics;
use tokio::sync::Semaphore;

use crate::otlp::{Converted, DecodeError, Encoding};
use crate::sink::{EventSink, SinkError};
use crate::{alertmanager, loki, otlp};

/// The `service` label of the collector's own counters.
pub const METRICS_SERVICE: &str = "collector";

/// Limits and auth of the receiver.
#[derive(Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, compressed or decompressed, in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once; more get 429.
    pub max_in_flight: usize,
    /// When set, ingest requests must carry `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// Seconds a sender is told to wait (`Retry-After`) on 429 and 503.
    pub retry_after_secs: u64,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("retry_after_secs", &self.retry_after_secs)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 8 * 1024 * 1024,
            max_in_flight: 64,
            auth_token: None,
            retry_after_secs: 5,
        }
    }
}

#[derive(Clone)]
struct AppState {
    sink: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    config: Arc<ServerConfig>,
}

/// What an endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Traces,
    Logs,
    Metrics,
    Alertmanager,
    Loki,
}

impl Signal {
    fn is_otlp(self) -> bool {
        matches!(self, Signal::Traces | Signal::Logs | Signal::Metrics)
    }
    fn counter(self) -> &'static str {
        match self {
            Signal::Traces => "otlp_spans",
            Signal::Logs => "otlp_logs",
            Signal::Metrics => "otlp_metric_points",
            Signal::Alertmanager => "alerts",
            Signal::Loki => "loki_lines",
        }
    }
}

/// The receiver's routes (ingest and operations) over `sink`.
pub fn router(sink: Arc<dyn EventSink>, metrics: Arc<Metrics>, health: Health, config: ServerConfig) -> Router {
    let state = AppState {
        sink,
        metrics: metrics.clone(),
        in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
        config: Arc::new(config.clone()),
    };
    let route = |signal: Signal| post(move |State(s): State<AppState>, req: Request| ingest(s, signal, req));
    Router::new()
        .route("/v1/traces", route(Signal::Traces))
        .route("/v1/logs", route(Signal::Logs))
        .route("/v1/metrics", route(Signal::Metrics))
        .route("/v1/alertmanager", route(Signal::Alertmanager))
        .route("/loki/api/v1/push", route(Signal::Loki))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
        .merge(ops_router(health, metrics))
}

/// An error answer: `google.rpc.Status` for OTLP protobuf requests, JSON otherwise.
struct Failure {
    status: StatusCode,
    message: String,
    protobuf: bool,
    retry_after: Option<u64>,
}

/// `google.rpc.Status`, the body OTLP/HTTP specifies for errors.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            protobuf: false,
            retry_after: None,
        }
    }
    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::INTERNAL_SERVER_ERROR => 13,
        _ => 3,
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = grpc_code(self.status);
        let mut resp = if self.protobuf {
            let body = RpcStatus {
                code,
                message: self.message,
            }
            .encode_to_vec();
            (self.status, [(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
        } else {
            (
                self.status,
                axum::Json(serde_json::json!({ "code": code, "message": self.message })),
            )
                .into_response()
        };
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Compares without an early exit, so response time says nothing about the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()))
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn encoding_for(signal: Signal, media: Option<&str>) -> Result<Encoding, Failure> {
    let unsupported = |what: &str| Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, what);
    match (signal, media) {
        (_, Some("application/json")) => Ok(Encoding::Json),
        (s, Some("application/x-protobuf")) if s.is_otlp() => Ok(Encoding::Protobuf),
        (Signal::Alertmanager, None) => Ok(Encoding::Json),
        (Signal::Loki, Some("application/x-protobuf")) => Err(unsupported(
            "Loki push: only the JSON form (Content-Type: application/json) is supported, not protobuf+snappy",
        )),
        (s, m) if s.is_otlp() => Err(unsupported(
            format!(
                "unsupported content type {:?}: OTLP/HTTP takes application/x-protobuf or application/json",
                m.unwrap_or("")
            )
            .as_str(),
        )),
        (_, m) => Err(unsupported(
            format!("unsupported content type {:?}: use application/json", m.unwrap_or("")).as_str(),
        )),
    }
}

/// Undoes `Content-Encoding`, refusing bodies that inflate beyond the limit.
fn decompress(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, Failure> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(body.as_ref())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
            if out.len() > max {
                return Err(Failure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body inflates beyond {max} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        other => Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {other:?}: send gzip or no encoding"),
        )),
    }
}

fn bad_request(e: DecodeError) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, e.0)
}

/// The events of a decoded body, with how many items were rejected.
fn convert(signal: Signal, body: &[u8], encoding: Encoding, now_ms: i64) -> Result<Converted, Failure> {
    Ok(match signal {
        Signal::Traces => otlp::traces_to_events(
            &otlp::decode::<ExportTraceServiceRequest>(body, encoding).map_err(bad_request)?,
            now_ms,
        ),
        Signal::Logs => otlp::logs_to_events(
            &otlp::decode::<ExportLogsServiceRequest>(body, encoding).map_err(bad_request)?,
            now_ms,
        ),
        Signal::Metrics => otlp::metrics_to_events(
            &otlp::decode::<ExportMetricsServiceRequest>(body, encoding).map_err(bad_request)?,
            now_ms,
        ),
        Signal::Alertmanager => Converted {
            events: alertmanager::alerts_to_events(&alertmanager::decode(body).map_err(bad_request)?, now_ms),
            ..Default::default()
        },
        Signal::Loki => Converted {
            events: loki::push_to_events(&loki::decode(body).map_err(bad_request)?, now_ms),
            ..Default::default()
        },
    })
}

/// The success answer: an `Export*ServiceResponse` in the request's encoding for OTLP.
fn success(signal: Signal, encoding: Encoding, converted: &Converted) -> Response {
    let rejected = converted.rejected;
    let message = if rejected > 0 {
        converted.reason.clone().unwrap_or_default()
    } else {
        String::new()
    };
    match (signal, encoding) {
        (Signal::Loki, _) => StatusCode::NO_CONTENT.into_response(),
        (Signal::Alertmanager, _) => {
            (StatusCode::OK, axum::Json(serde_json::json!({ "status": "success" }))).into_response()
        }
        (_, Encoding::Json) => {
            let field = match signal {
                Signal::Traces => "rejectedSpans",
                Signal::Logs => "rejectedLogRecords",
                _ => "rejectedDataPoints",
            };
            let body = if rejected > 0 {
                // OTLP/JSON writes 64-bit integers as strings.
                serde_json::json!({ "partialSuccess": { field: rejected.to_string(), "errorMessage": message } })
            } else {
                serde_json::json!({})
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        (_, Encoding::Protobuf) => {
            let partial = rejected > 0;
            let body = match signal {
                Signal::Traces => ExportTraceServiceResponse {
                    partial_success: partial.then_some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: message,
                    }),
                }
                .encode_to_vec(),
                Signal::Logs => ExportLogsServiceResponse {
                    partial_success: partial.then_some(ExportLogsPartialSuccess {
                        rejected_log_records: rejected,
                        error_message: message,
                    }),
                }
                .encode_to_vec(),
                _ => ExportMetricsServiceResponse {
                    partial_success: partial.then_some(ExportMetricsPartialSuccess {
                        rejected_data_points: rejected,
                        error_message: message,
                    }),
                }
                .encode_to_vec(),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
        }
    }
}

async fn ingest(state: AppState, signal: Signal, req: Request) -> Response {
    let metrics = state.metrics.clone();
    let protobuf = signal.is_otlp() && media_type(req.headers()).as_deref() == Some("application/x-protobuf");
    match handle(state, signal, req).await {
        Ok(resp) => resp,
        Err(mut failure) => {
            failure.protobuf = protobuf;
            let event = match failure.status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::TOO_MANY_REQUESTS => "saturated",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                StatusCode::INTERNAL_SERVER_ERROR => "store_rejected",
                _ => "bad_request",
            };
            metrics.event(METRICS_SERVICE, event);
            tracing::warn!(signal = ?signal, status = failure.status.as_u16(), reason = %failure.message, "telemetry request refused");
            failure.into_response()
        }
    }
}

async fn handle(state: AppState, signal: Signal, req: Request) -> Result<Response, Failure> {
    let cfg = &state.config;
    if let Some(token) = &cfg.auth_token
        && !authorized(req.headers(), token)
    {
        return Err(Failure::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
    }
    let _permit = state.in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(StatusCode::TOO_MANY_REQUESTS, "too many requests in flight").retry_after(cfg.retry_after_secs)
    })?;
    let encoding = encoding_for(signal, media_type(req.headers()).as_deref())?;
    let headers = req.headers().clone();
    let body = Bytes::from_request(req, &())
        .await
        .map_err(|rejection| Failure::new(rejection.status(), rejection.body_text()))?;
    let body = decompress(&headers, body, cfg.max_body_bytes)?;
    let converted = convert(signal, &body, encoding, selfheal_core::now_ms())?;
    if !converted.events.is_empty() {
        state.sink.publish(&converted.events).await.map_err(|e| match e {
            SinkError::Unavailable(_) => {
                Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(cfg.retry_after_secs)
            }
            SinkError::Rejected(_) => Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })?;
    }
    state
        .metrics
        .events
        .with_label_values(&[METRICS_SERVICE, signal.counter()])
        .inc_by(converted.events.len() as u64);
    if converted.rejected > 0 {
        state
            .metrics
            .events
            .with_label_values(&[METRICS_SERVICE, "otlp_rejected"])
            .inc_by(converted.rejected as u64);
    }
    Ok(success(signal, encoding, &converted))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use selfheal_events::{SignalKind, SpanStatus};
    use tower::ServiceExt;

    use super::*;
    use crate::sink::MemorySink;

    const TRACES_PB: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-traces.pb");
    const TRACES_JSON: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-traces.json");
    const LOGS_PB: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-logs.pb");

    fn app(sink: Arc<MemorySink>, config: ServerConfig) -> (Router, Arc<Metrics>) {
        let metrics = Metrics::shared();
        (router(sink, metrics.clone(), Health::new(), config), metrics)
    }

    async fn send(app: &Router, req: HttpRequest<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, headers, body)
    }

    fn request(path: &str, content_type: Option<&str>, body: &[u8]) -> HttpRequest<Body> {
        let mut b = HttpRequest::post(path);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body.to_vec())).unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[tokio::test]
    async fn protobuf_traces_are_stored_and_answered_with_an_export_response() {
        let sink = Arc::new(MemorySink::new());
        let (app, metrics) = app(sink.clone(), ServerConfig::default());
        let (status, headers, body) =
            send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let resp = ExportTraceServiceResponse::decode(body).unwrap();
        assert_eq!(resp.partial_success, None);
        let events = sink.events();
        assert_eq!(events.len(), 4);
        assert!(
            events
                .iter()
                .all(|e| e.service == "pricing-api" && e.kind == SignalKind::Span)
        );
        assert_eq!(events.iter().filter(|e| e.status == SpanStatus::Error).count(), 2);
        assert!(
            metrics
                .render()
                .contains(r#"selfheal_events_total{event="otlp_spans",service="collector"} 4"#),
            "{}",
            metrics.render()
        );
    }

    #[tokio::test]
    async fn json_and_gzip_requests_are_accepted() {
        let sink = Arc::new(MemorySink::new());
        let (app, _) = app(sink.clone(), ServerConfig::default());
        let (status, headers, body) = send(
            &app,
            request("/v1/traces", Some("application/json; charset=utf-8"), TRACES_JSON),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(&body[..], b"{}");
        let req = HttpRequest::post("/v1/logs")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip(LOGS_PB)))
            .unwrap();
        let (status, _, _) = send(&app, req).await;
        assert_eq!(status, StatusCode::OK);
        let events = sink.events();
        assert_eq!(events.len(), 6);
        assert_eq!(events.iter().filter(|e| e.kind == SignalKind::Log).count(), 2);
    }

    #[tokio::test]
    async fn malformed_bodies_are_400_with_a_reason() {
        let sink = Arc::new(MemorySink::new());
        let (app, metrics) = app(sink.clone(), ServerConfig::default());
        let (status, headers, body) = send(
            &app,
            request(
                "/v1/traces",
                Some("application/x-protobuf"),
                b"\xff\xff\xff\xff garbage",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let st = RpcStatus::decode(body).unwrap();
        assert_eq!(st.code, 3);
        assert!(st.message.contains("invalid OTLP protobuf"), "{}", st.message);

        let (status, _, body) = send(
            &app,
            request("/v1/logs", Some("application/json"), b"{\"resourceLogs\": ["),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["message"].as_str().unwrap().contains("invalid JSON"), "{v}");

        let req = HttpRequest::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(&b"not gzip at all"[..]))
            .unwrap();
        let (status, _, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(RpcStatus::decode(body).unwrap().message.contains("gzip"));

        let (status, _, _) = send(
            &app,
            request("/v1/alertmanager", Some("application/json"), b"{\"alerts\": 3}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(sink.events().is_empty());
        assert!(
            metrics
                .render()
                .contains(r#"event="bad_request",service="collector"} 4"#)
        );
    }

    #[tokio::test]
    async fn unsupported_types_and_encodings_are_415() {
        let (app, _) = app(Arc::new(MemorySink::new()), ServerConfig::default());
        let (status, _, body) = send(&app, request("/v1/traces", Some("text/plain"), b"hello")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(String::from_utf8_lossy(&body).contains("application/x-protobuf"));
        let (status, _, _) = send(&app, request("/v1/metrics", None, b"")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (status, _, body) = send(
            &app,
            request("/loki/api/v1/push", Some("application/x-protobuf"), b"\x00"),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(String::from_utf8_lossy(&body).contains("only the JSON form"));
        let req = HttpRequest::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "br")
            .body(Body::from(TRACES_PB))
            .unwrap();
        assert_eq!(send(&app, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn oversized_bodies_are_413_also_after_inflating() {
        let sink = Arc::new(MemorySink::new());
        let config = ServerConfig {
            max_body_bytes: 1024,
            ..ServerConfig::default()
        };
        let (app, _) = app(sink.clone(), config);
        let (status, _, _) = send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // Small on the wire, large once inflated.
        let bomb = gzip(&vec![b' '; 100_000]);
        assert!(bomb.len() < 1024);
        let req = HttpRequest::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(bomb))
            .unwrap();
        assert_eq!(send(&app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(sink.events().is_empty());
    }

    #[tokio::test]
    async fn an_unavailable_store_is_503_with_retry_after() {
        let sink = Arc::new(MemorySink::new());
        sink.set_unavailable(true);
        let (app, metrics) = app(sink.clone(), ServerConfig::default());
        let (status, headers, body) =
            send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert_eq!(RpcStatus::decode(body).unwrap().code, 14);
        assert!(
            metrics
                .render()
                .contains(r#"event="unavailable",service="collector"} 1"#)
        );
        assert!(!metrics.render().contains("otlp_spans"), "nothing counted as received");
        sink.set_unavailable(false);
        assert_eq!(
            send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB))
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn bearer_token_is_required_when_configured() {
        let sink = Arc::new(MemorySink::new());
        let config = ServerConfig {
            auth_token: Some("s3cret".into()),
            ..ServerConfig::default()
        };
        let (app, _) = app(sink.clone(), config);
        let (status, headers, body) =
            send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!String::from_utf8_lossy(&body).contains("s3cret"));
        let wrong = HttpRequest::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::AUTHORIZATION, "Bearer s3cres")
            .body(Body::from(TRACES_PB))
            .unwrap();
        assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
        let right = HttpRequest::post("/v1/traces")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::from(TRACES_PB))
            .unwrap();
        assert_eq!(send(&app, right).await.0, StatusCode::OK);
        assert_eq!(sink.events().len(), 4);
        // Operations routes stay open.
        assert_eq!(
            send(&app, HttpRequest::get("/healthz").body(Body::empty()).unwrap())
                .await
                .0,
            StatusCode::OK
        );
    }

    /// A sink that parks every publish until released, announcing that it parked.
    struct GateSink {
        entered: tokio::sync::Notify,
        release: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl EventSink for GateSink {
        async fn publish(&self, _events: &[selfheal_events::TelemetryEvent]) -> Result<(), SinkError> {
            self.entered.notify_one();
            self.release.notified().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn saturation_is_429_with_retry_after() {
        let gate = Arc::new(GateSink {
            entered: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        });
        let config = ServerConfig {
            max_in_flight: 1,
            ..ServerConfig::default()
        };
        let app = router(gate.clone(), Metrics::shared(), Health::new(), config);
        let first = tokio::spawn(
            app.clone()
                .oneshot(request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)),
        );
        // The first request holds the only permit once it is parked in the sink.
        gate.entered.notified().await;
        let (status, headers, _) = send(&app, request("/v1/traces", Some("application/x-protobuf"), TRACES_PB)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        gate.release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn partial_success_reports_rejected_spans() {
        let sink = Arc::new(MemorySink::new());
        let (app, metrics) = app(sink.clone(), ServerConfig::default());
        let mut req: ExportTraceServiceRequest = otlp::decode(TRACES_PB, Encoding::Protobuf).unwrap();
        req.resource_spans[0].scope_spans[0].spans[0].span_id.clear();
        let (status, _, body) = send(
            &app,
            request("/v1/traces", Some("application/x-protobuf"), &req.encode_to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let partial = ExportTraceServiceResponse::decode(body)
            .unwrap()
            .partial_success
            .unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(partial.error_message.contains("invalid trace or span id"));
        assert_eq!(sink.events().len(), 3);
        assert!(
            metrics
                .render()
                .contains(r#"event="otlp_rejected",service="collector"} 1"#)
        );
        let json = serde_json::to_vec(&req).unwrap();
        let (status, _, body) = send(&app, request("/v1/traces", Some("application/json"), &json)).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedSpans"], "1");
    }

    #[tokio::test]
    async fn alertmanager_and_loki_endpoints_store_events() {
        let sink = Arc::new(MemorySink::new());
        let (app, _) = app(sink.clone(), ServerConfig::default());
        let webhook = br#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"Errors","service":"pricing-api","severity":"critical"},"annotations":{"summary":"errors"},"startsAt":"2026-01-01T00:00:00Z"}]}"#;
        let (status, _, _) = send(&app, request("/v1/alertmanager", Some("application/json"), webhook)).await;
        assert_eq!(status, StatusCode::OK);
        let push = br#"{"streams":[{"stream":{"service_name":"pricing-api","level":"error"},"values":[["1700000000000000000","boom"]]}]}"#;
        let (status, _, _) = send(&app, request("/loki/api/v1/push", Some("application/json"), push)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let events = sink.events();
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].kind, events[0].source.as_str()),
            (SignalKind::Alert, "alertmanager")
        );
        assert_eq!((events[1].kind, events[1].source.as_str()), (SignalKind::Log, "loki"));
    }
}
