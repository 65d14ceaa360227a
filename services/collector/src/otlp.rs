//! OTLP traces, logs and metrics (protobuf or OTLP/JSON) to `TelemetryEvent`s.
//!
//! Pure functions: the HTTP layer decodes a body with [`decode`] and converts the request
//! with [`traces_to_events`], [`logs_to_events`] or [`metrics_to_events`].
//!
//! Metric points: gauges and sums give one event per point with `value` = the point's
//! value. Histograms, exponential histograms and summaries give one event per point with
//! `value` = the point's sum (absent when the sender did not record one) and the count,
//! min and max as attributes `metric.count`, `metric.min`, `metric.max`; every metric
//! event carries `metric.type` (`gauge`, `sum`, `histogram`, `exponential_histogram`,
//! `summary`), and sums also `metric.monotonic` and `metric.temporality`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use selfheal_events::{ExceptionInfo, Severity, SignalKind, SpanStatus, TelemetryEvent};

use crate::attributes::{
    MAX_STACKTRACE_BYTES, MAX_TEXT_BYTES, ResourceInfo, any_value_to_json, bound, flatten, format_double, get, hex_id,
    nanos_to_ms,
};

/// The `source` of every event received over OTLP/HTTP.
pub const SOURCE_OTLP_HTTP: &str = "otlp-http";
/// Attribute keys that make up an exception (semantic conventions).
const EXCEPTION_KEYS: [&str; 3] = ["exception.type", "exception.message", "exception.stacktrace"];
/// OTLP's flag on a data point whose value was not recorded.
const NO_RECORDED_VALUE: u32 = 1;

/// The events of one request, and how many of its items were rejected and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    /// One event per accepted item.
    pub events: Vec<TelemetryEvent>,
    /// Items that could not be converted (they are reported back as a partial success).
    pub rejected: i64,
    /// Why the first rejected item was rejected.
    pub reason: Option<String>,
}

impl Converted {
    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        self.reason.get_or_insert(reason);
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

/// Why a body could not be decoded (the sender gets this text with a 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes an OTLP request in either encoding.
///
/// The OTLP/JSON path accepts what the specification allows but `opentelemetry-proto`'s
/// serde derive does not: 64-bit timestamps as JSON numbers and 64-bit integers
/// (`asInt`, `count`, `bucketCounts`, `zeroCount`) as decimal strings.
pub fn decode<T>(body: &[u8], encoding: Encoding) -> Result<T, DecodeError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|e| DecodeError(format!("invalid OTLP protobuf: {e}"))),
        Encoding::Json => {
            let mut value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| DecodeError(format!("invalid JSON: {e}")))?;
            if !value.is_object() {
                return Err(DecodeError("invalid OTLP/JSON: the body is not a JSON object".into()));
            }
            normalize_json(&mut value, None);
            serde_json::from_value(value).map_err(|e| DecodeError(format!("invalid OTLP/JSON: {e}")))
        }
    }
}

/// Rewrites the 64-bit fields of OTLP/JSON into the forms the serde derive expects.
fn normalize_json(value: &mut serde_json::Value, key: Option<&str>) {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            for (k, v) in map.iter_mut() {
                normalize_json(v, Some(k.as_str()));
            }
        }
        J::Array(items) => {
            let element_key = if key == Some("bucketCounts") { key } else { None };
            for v in items.iter_mut() {
                normalize_json(v, element_key);
            }
        }
        J::Number(n) if key.is_some_and(|k| k.ends_with("UnixNano")) => {
            *value = J::String(n.to_string());
        }
        J::String(s) if matches!(key, Some("asInt" | "count" | "zeroCount" | "bucketCounts")) => {
            if let Ok(i) = s.parse::<i64>() {
                *value = J::from(i);
            } else if let Ok(u) = s.parse::<u64>() {
                *value = J::from(u);
            }
        }
        _ => {}
    }
}

fn event(resource: &ResourceInfo, kind: SignalKind, name: String, now_ms: i64) -> TelemetryEvent {
    TelemetryEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        kind,
        service: resource.service.clone(),
        service_version: resource.version.clone(),
        instance: resource.instance.clone(),
        environment: resource.environment.clone(),
        timestamp_ms: now_ms,
        observed_ms: now_ms,
        name: bound(name, 1024),
        resource: resource.attributes.clone(),
        source: SOURCE_OTLP_HTTP.to_string(),
        ..Default::default()
    }
}

/// The exception described by `exception.*` attributes, when there is one.
pub fn exception_from_attributes(attributes: &[KeyValue]) -> Option<ExceptionInfo> {
    let r#type = get(attributes, "exception.type").filter(|s| !s.is_empty());
    let message = get(attributes, "exception.message").filter(|s| !s.is_empty());
    if r#type.is_none() && message.is_none() {
        return None;
    }
    Some(ExceptionInfo {
        r#type: bound(r#type.unwrap_or_default(), 1024),
        message: bound(message.unwrap_or_default(), MAX_TEXT_BYTES),
        stacktrace: get(attributes, "exception.stacktrace")
            .filter(|s| !s.is_empty())
            .map(|s| bound(s, MAX_STACKTRACE_BYTES)),
    })
}

fn span_kind(kind: i32) -> Option<String> {
    let name = match span::SpanKind::try_from(kind).ok()? {
        span::SpanKind::Unspecified => return None,
        span::SpanKind::Internal => "internal",
        span::SpanKind::Server => "server",
        span::SpanKind::Client => "client",
        span::SpanKind::Producer => "producer",
        span::SpanKind::Consumer => "consumer",
    };
    Some(name.to_string())
}

fn span_to_event(span: &Span, resource: &ResourceInfo, now_ms: i64) -> Result<TelemetryEvent, String> {
    let trace_id = hex_id(&span.trace_id).filter(|_| span.trace_id.len() == 16);
    let span_id = hex_id(&span.span_id).filter(|_| span.span_id.len() == 8);
    let (Some(trace_id), Some(span_id)) = (trace_id, span_id) else {
        return Err(format!(
            "span {:?} has an invalid trace or span id",
            bound(span.name.clone(), 128)
        ));
    };
    let mut e = event(resource, SignalKind::Span, span.name.clone(), now_ms);
    e.timestamp_ms = nanos_to_ms(span.start_time_unix_nano);
    e.duration_ms = Some(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as f64 / 1e6);
    e.trace_id = Some(trace_id);
    e.span_id = Some(span_id);
    e.parent_span_id = hex_id(&span.parent_span_id);
    e.span_kind = span_kind(span.kind);
    if let Some(s) = &span.status {
        e.status = match status::StatusCode::try_from(s.code) {
            Ok(status::StatusCode::Ok) => SpanStatus::Ok,
            Ok(status::StatusCode::Error) => SpanStatus::Error,
            _ => SpanStatus::Unset,
        };
        e.status_message = Some(bound(s.message.clone(), MAX_TEXT_BYTES)).filter(|m| !m.is_empty());
    }
    e.attributes = flatten(&span.attributes, &[]);
    // The last exception event is the one that ended the span.
    e.exception = span
        .events
        .iter()
        .rev()
        .filter(|ev| ev.name == "exception")
        .find_map(|ev| exception_from_attributes(&ev.attributes));
    Ok(e)
}

/// One event per span; spans without a valid trace and span id are rejected.
pub fn traces_to_events(request: &ExportTraceServiceRequest, now_ms: i64) -> Converted {
    let mut out = Converted::default();
    for rs in &request.resource_spans {
        let resource = ResourceInfo::from_resource(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                match span_to_event(span, &resource, now_ms) {
                    Ok(e) => out.events.push(e),
                    Err(reason) => out.reject(reason),
                }
            }
        }
    }
    out
}

/// Severity from an OTel severity number (1..=24), else from a level name.
pub fn severity(number: i32, text: &str) -> Severity {
    match number {
        1..=4 => Severity::Trace,
        5..=8 => Severity::Debug,
        9..=12 => Severity::Info,
        13..=16 => Severity::Warn,
        17..=20 => Severity::Error,
        21..=24 => Severity::Fatal,
        _ => severity_from_text(text),
    }
}

/// Severity from a level name as loggers spell it (`WARNING`, `err`, `critical`, …).
pub fn severity_from_text(text: &str) -> Severity {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "trace" | "finest" | "finer" => Severity::Trace,
        "debug" | "fine" | "dbug" => Severity::Debug,
        "info" | "information" | "informational" | "notice" | "config" => Severity::Info,
        "warn" | "warning" => Severity::Warn,
        "error" | "err" | "eror" | "severe" => Severity::Error,
        "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" => Severity::Fatal,
        _ => Severity::Unspecified,
    }
}

fn log_to_event(record: &LogRecord, scope: &str, resource: &ResourceInfo, now_ms: i64) -> TelemetryEvent {
    let name = if scope.is_empty() {
        record.event_name.clone()
    } else {
        scope.to_string()
    };
    let mut e = event(resource, SignalKind::Log, name, now_ms);
    let nanos = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };
    if nanos != 0 {
        e.timestamp_ms = nanos_to_ms(nanos);
    }
    e.severity = severity(record.severity_number, &record.severity_text);
    e.body = record.body.as_ref().map(|b| match any_value_to_json(b) {
        serde_json::Value::String(s) => bound(s, MAX_TEXT_BYTES),
        serde_json::Value::Null => String::new(),
        other => bound(other.to_string(), MAX_TEXT_BYTES),
    });
    e.trace_id = hex_id(&record.trace_id);
    e.span_id = hex_id(&record.span_id);
    e.exception = exception_from_attributes(&record.attributes);
    // The exception travels in `exception`; keeping it twice would double the record.
    let skip: &[&str] = if e.exception.is_some() { &EXCEPTION_KEYS } else { &[] };
    e.attributes = flatten(&record.attributes, skip);
    e
}

/// One event per log record.
pub fn logs_to_events(request: &ExportLogsServiceRequest, now_ms: i64) -> Converted {
    let mut out = Converted::default();
    for rl in &request.resource_logs {
        let resource = ResourceInfo::from_resource(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            for record in &sl.log_records {
                out.events.push(log_to_event(record, scope, &resource, now_ms));
            }
        }
    }
    out
}

/// A data point flattened to what every point type has in common.
struct Point<'a> {
    attributes: &'a [KeyValue],
    time_unix_nano: u64,
    flags: u32,
    value: Option<f64>,
    extra: Vec<(&'static str, String)>,
}

fn temporality(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        _ => "unspecified",
    }
}

fn number_value(v: Option<number_data_point::Value>) -> Option<f64> {
    match v? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

fn points(metric: &Metric) -> (&'static str, Vec<Point<'_>>) {
    let opt = |name: &'static str, v: Option<f64>| v.map(|v| (name, format_double(v)));
    match &metric.data {
        Some(metric::Data::Gauge(g)) => (
            "gauge",
            g.data_points
                .iter()
                .map(|p| Point {
                    attributes: &p.attributes,
                    time_unix_nano: p.time_unix_nano,
                    flags: p.flags,
                    value: number_value(p.value),
                    extra: vec![],
                })
                .collect(),
        ),
        Some(metric::Data::Sum(s)) => (
            "sum",
            s.data_points
                .iter()
                .map(|p| Point {
                    attributes: &p.attributes,
                    time_unix_nano: p.time_unix_nano,
                    flags: p.flags,
                    value: number_value(p.value),
                    extra: vec![
                        ("metric.monotonic", s.is_monotonic.to_string()),
                        ("metric.temporality", temporality(s.aggregation_temporality).to_string()),
                    ],
                })
                .collect(),
        ),
        Some(metric::Data::Histogram(h)) => (
            "histogram",
            h.data_points
                .iter()
                .map(|p| Point {
                    attributes: &p.attributes,
                    time_unix_nano: p.time_unix_nano,
                    flags: p.flags,
                    value: p.sum,
                    extra: [
                        Some(("metric.count", p.count.to_string())),
                        opt("metric.min", p.min),
                        opt("metric.max", p.max),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                })
                .collect(),
        ),
        Some(metric::Data::ExponentialHistogram(h)) => (
            "exponential_histogram",
            h.data_points
                .iter()
                .map(|p| Point {
                    attributes: &p.attributes,
                    time_unix_nano: p.time_unix_nano,
                    flags: p.flags,
                    value: p.sum,
                    extra: [
                        Some(("metric.count", p.count.to_string())),
                        opt("metric.min", p.min),
                        opt("metric.max", p.max),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                })
                .collect(),
        ),
        Some(metric::Data::Summary(s)) => (
            "summary",
            s.data_points
                .iter()
                .map(|p| Point {
                    attributes: &p.attributes,
                    time_unix_nano: p.time_unix_nano,
                    flags: p.flags,
                    value: Some(p.sum),
                    extra: vec![("metric.count", p.count.to_string())],
                })
                .collect(),
        ),
        None => ("none", vec![]),
    }
}

/// One event per metric data point; gauge and sum points without a value are rejected,
/// points flagged "no recorded value" are skipped.
pub fn metrics_to_events(request: &ExportMetricsServiceRequest, now_ms: i64) -> Converted {
    let mut out = Converted::default();
    for rm in &request.resource_metrics {
        let resource = ResourceInfo::from_resource(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let (kind, points) = points(metric);
                for p in points {
                    if p.flags & NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    if p.value.is_none() && matches!(kind, "gauge" | "sum") {
                        out.reject(format!(
                            "data point of metric {:?} has no value",
                            bound(metric.name.clone(), 128)
                        ));
                        continue;
                    }
                    let mut e = event(&resource, SignalKind::Metric, metric.name.clone(), now_ms);
                    if p.time_unix_nano != 0 {
                        e.timestamp_ms = nanos_to_ms(p.time_unix_nano);
                    }
                    e.value = p.value;
                    e.unit = Some(metric.unit.clone()).filter(|u| !u.is_empty());
                    e.attributes = flatten(p.attributes, &[]);
                    e.attributes.insert("metric.type".into(), kind.into());
                    for (k, v) in p.extra {
                        e.attributes.insert(k.into(), v);
                    }
                    out.events.push(e);
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };

    const TRACES_PB: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-traces.pb");
    const TRACES_JSON: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-traces.json");
    const LOGS_PB: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-logs.pb");
    const LOGS_JSON: &[u8] = include_bytes!("../../../examples/pricing-api/testdata/zero-division-logs.json");

    /// Events without the fields that differ per conversion (event id, receive time).
    fn comparable(events: Vec<TelemetryEvent>) -> Vec<TelemetryEvent> {
        events
            .into_iter()
            .map(|e| TelemetryEvent {
                event_id: String::new(),
                observed_ms: 0,
                ..e
            })
            .collect()
    }

    #[test]
    fn zero_division_spans_carry_exception_inputs_and_ids() {
        let req: ExportTraceServiceRequest = decode(TRACES_PB, Encoding::Protobuf).unwrap();
        let out = traces_to_events(&req, 42);
        assert_eq!(out.rejected, 0);
        assert_eq!(out.events.len(), 4);
        let failing = out
            .events
            .iter()
            .find(|e| e.span_id.as_deref() == Some("7da5c956ce084cbd"))
            .unwrap();
        assert_eq!(failing.service, "pricing-api");
        assert_eq!(failing.service_version.as_deref(), Some("8e91235"));
        assert_eq!(failing.instance.as_deref(), Some("vm:8081"));
        assert_eq!(failing.environment.as_deref(), Some("demo"));
        assert_eq!(failing.trace_id.as_deref(), Some("16e3cedc324b07dee46fea0010d98b59"));
        assert_eq!(failing.kind, SignalKind::Span);
        assert_eq!(failing.name, "POST /price");
        assert_eq!(failing.span_kind.as_deref(), Some("server"));
        assert_eq!(failing.status, SpanStatus::Error);
        assert_eq!(failing.attributes["pricing.discount"], "0.0");
        assert_eq!(failing.attributes["pricing.item"], "lamp");
        assert_eq!(failing.attributes["http.response.status_code"], "500");
        assert_eq!(failing.timestamp_ms, 1795806815762);
        let d = failing.duration_ms.unwrap();
        assert!((d - 1.567525).abs() < 1e-6, "{d}");
        assert_eq!(failing.observed_ms, 42);
        assert_eq!(failing.source, "otlp-http");
        assert_eq!(failing.resource["telemetry.sdk.language"], "python");
        let ex = failing.exception.as_ref().unwrap();
        assert_eq!(ex.r#type, "ZeroDivisionError");
        assert_eq!(ex.message, "float division by zero");
        let st = ex.stacktrace.as_deref().unwrap();
        assert!(st.contains("pricing_logic.py\", line 14, in calc"), "{st}");

        let ok = out
            .events
            .iter()
            .find(|e| e.span_id.as_deref() == Some("c06dc85ac3935dfd"))
            .unwrap();
        assert_eq!(ok.status, SpanStatus::Unset);
        assert_eq!(ok.exception, None);
        assert_eq!(ok.attributes["pricing.discount"], "0.8");
        assert_eq!(ok.parent_span_id, None);
        assert_eq!(out.events.iter().filter(|e| e.exception.is_some()).count(), 2);
        let ids: std::collections::HashSet<_> = out.events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(ids.len(), 4, "event ids are unique");
    }

    #[test]
    fn json_fixtures_give_the_same_events_as_protobuf() {
        let pb: ExportTraceServiceRequest = decode(TRACES_PB, Encoding::Protobuf).unwrap();
        let js: ExportTraceServiceRequest = decode(TRACES_JSON, Encoding::Json).unwrap();
        let (a, b) = (traces_to_events(&pb, 1), traces_to_events(&js, 2));
        assert_eq!(a.events.len(), 4);
        assert_eq!(comparable(a.events), comparable(b.events));
        let pb: ExportLogsServiceRequest = decode(LOGS_PB, Encoding::Protobuf).unwrap();
        let js: ExportLogsServiceRequest = decode(LOGS_JSON, Encoding::Json).unwrap();
        let (a, b) = (logs_to_events(&pb, 1), logs_to_events(&js, 2));
        assert_eq!(a.events.len(), 2);
        assert_eq!(comparable(a.events), comparable(b.events));
    }

    #[test]
    fn zero_division_logs_are_errors_with_the_exception() {
        let req: ExportLogsServiceRequest = decode(LOGS_PB, Encoding::Protobuf).unwrap();
        let out = logs_to_events(&req, 7);
        assert_eq!(out.events.len(), 2);
        let lamp = out
            .events
            .iter()
            .find(|e| e.attributes.get("pricing.item").map(String::as_str) == Some("lamp"))
            .unwrap();
        assert_eq!(lamp.kind, SignalKind::Log);
        assert_eq!(lamp.severity, Severity::Error);
        assert_eq!(lamp.service, "pricing-api");
        assert_eq!(lamp.name, "pricing_api");
        assert_eq!(lamp.trace_id.as_deref(), Some("16e3cedc324b07dee46fea0010d98b59"));
        assert_eq!(lamp.span_id.as_deref(), Some("7da5c956ce084cbd"));
        assert!(
            lamp.body
                .as_deref()
                .unwrap()
                .contains("ZeroDivisionError: float division by zero")
        );
        assert_eq!(lamp.attributes["pricing.discount"], "0.0");
        assert!(
            !lamp.attributes.contains_key("exception.stacktrace"),
            "the exception is not stored twice"
        );
        let ex = lamp.exception.as_ref().unwrap();
        assert_eq!(ex.r#type, "ZeroDivisionError");
        assert!(ex.stacktrace.as_deref().unwrap().contains("line 14, in calc"));
    }

    #[test]
    fn severity_numbers_and_names() {
        assert_eq!(severity(1, ""), Severity::Trace);
        assert_eq!(severity(8, ""), Severity::Debug);
        assert_eq!(severity(9, "whatever"), Severity::Info);
        assert_eq!(severity(16, ""), Severity::Warn);
        assert_eq!(severity(17, ""), Severity::Error);
        assert_eq!(severity(24, ""), Severity::Fatal);
        assert_eq!(severity(0, "WARNING"), Severity::Warn);
        assert_eq!(severity(0, "critical"), Severity::Fatal);
        assert_eq!(severity(0, ""), Severity::Unspecified);
    }

    #[test]
    fn spans_without_ids_are_rejected_and_counted() {
        let mut req: ExportTraceServiceRequest = decode(TRACES_PB, Encoding::Protobuf).unwrap();
        req.resource_spans[0].scope_spans[0].spans[1].trace_id.clear();
        req.resource_spans[0].resource = None;
        let out = traces_to_events(&req, 0);
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.rejected, 1);
        assert!(out.reason.unwrap().contains("invalid trace or span id"));
        assert!(out.events.iter().all(|e| e.service == "unknown_service"));
    }

    #[test]
    fn otlp_json_metrics_with_string_ints_decode() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeMetrics":[{"metrics":[
            {"name":"queue.depth","unit":"1","gauge":{"dataPoints":[{"asInt":"42","timeUnixNano":1700000000000000000}]}},
            {"name":"http.server.duration","unit":"ms","histogram":{"aggregationTemporality":2,"dataPoints":[
               {"count":"3","sum":12.5,"bucketCounts":["1","2"],"explicitBounds":[5.0],"min":1.0,"max":9.0,"timeUnixNano":"1700000000000000000",
                "attributes":[{"key":"http.route","value":{"stringValue":"/price"}}]}]}},
            {"name":"requests","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asDouble":3.0},{"timeUnixNano":"1"}]}}
          ]}]}]}"#;
        let req: ExportMetricsServiceRequest = decode(body, Encoding::Json).unwrap();
        let out = metrics_to_events(&req, 5);
        assert_eq!(out.events.len(), 3);
        assert_eq!(out.rejected, 1, "the sum point without a value");
        let gauge = &out.events[0];
        assert_eq!(
            (gauge.name.as_str(), gauge.value, gauge.unit.as_deref()),
            ("queue.depth", Some(42.0), Some("1"))
        );
        assert_eq!(gauge.timestamp_ms, 1_700_000_000_000);
        assert_eq!(gauge.attributes["metric.type"], "gauge");
        let hist = &out.events[1];
        assert_eq!(hist.value, Some(12.5));
        assert_eq!(hist.attributes["metric.count"], "3");
        assert_eq!(hist.attributes["metric.max"], "9.0");
        assert_eq!(hist.attributes["http.route"], "/price");
        let sum = &out.events[2];
        assert_eq!(sum.value, Some(3.0));
        assert_eq!(sum.timestamp_ms, 5, "no time: the receive time");
        assert_eq!(sum.attributes["metric.temporality"], "delta");
        assert_eq!(sum.attributes["metric.monotonic"], "true");
    }

    #[test]
    fn protobuf_metrics_round_trip() {
        use prost::Message;
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "g".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![
                                    NumberDataPoint {
                                        value: Some(number_data_point::Value::AsDouble(0.5)),
                                        ..Default::default()
                                    },
                                    NumberDataPoint {
                                        flags: NO_RECORDED_VALUE,
                                        ..Default::default()
                                    },
                                ],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "h".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    count: 2,
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let decoded: ExportMetricsServiceRequest = decode(&req.encode_to_vec(), Encoding::Protobuf).unwrap();
        let out = metrics_to_events(&decoded, 0);
        assert_eq!(out.rejected, 0);
        assert_eq!(out.events.len(), 2, "the unrecorded point is skipped");
        assert_eq!(out.events[0].value, Some(0.5));
        assert_eq!(out.events[1].value, None, "a histogram without a sum has no value");
        assert_eq!(out.events[1].attributes["metric.count"], "2");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode::<ExportTraceServiceRequest>(b"\xff\xff\xff\xff", Encoding::Protobuf).is_err());
        assert!(decode::<ExportTraceServiceRequest>(b"{not json", Encoding::Json).is_err());
        assert!(decode::<ExportTraceServiceRequest>(b"[1,2]", Encoding::Json).is_err());
        let e = decode::<ExportTraceServiceRequest>(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap_err();
        assert!(e.0.contains("OTLP/JSON"), "{e}");
    }
}
