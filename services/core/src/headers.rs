//! Kafka header names, defined once, and W3C trace context carried in them.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};

/// W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state.
pub const TRACESTATE: &str = "tracestate";
/// The incident a record belongs to (also its key), for consumers that do not decode Avro.
pub const INCIDENT_ID: &str = "selfheal.incident_id";
/// The stage that wrote the record.
pub const PRODUCED_BY: &str = "selfheal.produced_by";

/// Dead-letter header: the stage that gave up on the record.
pub const DLQ_STAGE: &str = "selfheal.dlq.stage";
/// Dead-letter header: why.
pub const DLQ_ERROR: &str = "selfheal.dlq.error";
/// Dead-letter header: the class of error (`decode`, `invalid`, `too-large`).
pub const DLQ_ERROR_KIND: &str = "selfheal.dlq.error_kind";
/// Dead-letter header: source topic.
pub const DLQ_TOPIC: &str = "selfheal.dlq.topic";
/// Dead-letter header: source partition.
pub const DLQ_PARTITION: &str = "selfheal.dlq.partition";
/// Dead-letter header: source offset.
pub const DLQ_OFFSET: &str = "selfheal.dlq.offset";
/// Dead-letter header: when it was dead-lettered, epoch milliseconds.
pub const DLQ_TIMESTAMP: &str = "selfheal.dlq.timestamp_ms";

/// Copies UTF-8 headers of a consumed record into a map (later duplicates win).
pub fn to_map(headers: Option<&BorrowedHeaders>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if let Some(h) = headers {
        for header in h.iter() {
            if let Some(v) = header.value.and_then(|v| std::str::from_utf8(v).ok()) {
                map.insert(header.key.to_string(), v.to_string());
            }
        }
    }
    map
}

/// Builds owned headers from pairs.
pub fn owned(pairs: &[(&str, &str)]) -> OwnedHeaders {
    pairs
        .iter()
        .fold(OwnedHeaders::new_with_capacity(pairs.len()), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            })
        })
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

/// The OpenTelemetry context carried in a record's headers (empty when there is none).
pub fn extract_context(headers: &HashMap<String, String>) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MapExtractor(headers))
}

/// Writes `cx`'s span context as `traceparent`/`tracestate` into `headers`.
pub fn inject_context(cx: &opentelemetry::Context, headers: &mut HashMap<String, String>) {
    TraceContextPropagator::new().inject_context(cx, &mut MapInjector(headers));
}

/// The trace context to put on outputs: the current span's when it is valid, otherwise the
/// input's own headers passed through, so a trace is never broken by a service that has
/// no tracer installed.
pub fn outgoing_trace_headers(input: &HashMap<String, String>) -> HashMap<String, String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let mut out = HashMap::new();
    if cx.span().span_context().is_valid() {
        inject_context(&cx, &mut out);
    } else {
        for key in [TRACEPARENT, TRACESTATE] {
            if let Some(v) = input.get(key) {
                out.insert(key.to_string(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn traceparent_round_trips() {
        let mut h = HashMap::new();
        h.insert(
            TRACEPARENT.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
        );
        let cx = extract_context(&h);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut out = HashMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out.get(TRACEPARENT), h.get(TRACEPARENT));
    }

    #[test]
    fn without_a_tracer_the_input_context_passes_through() {
        let mut h = HashMap::new();
        h.insert(
            TRACEPARENT.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
        );
        let out = outgoing_trace_headers(&h);
        assert_eq!(out.get(TRACEPARENT), h.get(TRACEPARENT));
    }
}
