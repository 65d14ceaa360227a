//! Loki push API (JSON form) to one Log `TelemetryEvent` per line.
//!
//! Service from the stream label `service_name`, else `service`, `app`, `job`; severity
//! from `level` / `detected_level`, else from the line's leading level word (`ERROR ...`,
//! `level=error`); stream labels and structured metadata become attributes. The protobuf +
//! snappy form is answered with 415 by the HTTP layer.

use std::collections::HashMap;

use selfheal_events::{Severity, SignalKind, TelemetryEvent};
use serde::Deserialize;

use crate::attributes::{MAX_ATTRIBUTES, MAX_TEXT_BYTES, UNKNOWN_SERVICE, bound};
use crate::otlp::{DecodeError, severity_from_text};

/// The `source` of Loki events.
pub const SOURCE_LOKI: &str = "loki";

/// A push request.
#[derive(Debug, Clone, Deserialize)]
pub struct PushRequest {
    /// The streams pushed.
    pub streams: Vec<Stream>,
}

/// One stream: a label set and its lines.
#[derive(Debug, Clone, Deserialize)]
pub struct Stream {
    /// The stream's labels.
    #[serde(default)]
    pub stream: HashMap<String, String>,
    /// `[ts_ns_string, line]` or `[ts_ns_string, line, {structured metadata}]`.
    #[serde(default)]
    pub values: Vec<Entry>,
}

/// One line of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// Timestamp and line.
    Plain(String, String),
    /// Timestamp, line and structured metadata.
    WithMetadata(String, String, HashMap<String, String>),
}

/// Decodes a JSON push body.
pub fn decode(body: &[u8]) -> Result<PushRequest, DecodeError> {
    let req: PushRequest =
        serde_json::from_slice(body).map_err(|e| DecodeError(format!("invalid Loki push JSON: {e}")))?;
    for s in &req.streams {
        for e in &s.values {
            let ts = match e {
                Entry::Plain(ts, _) | Entry::WithMetadata(ts, _, _) => ts,
            };
            if ts.parse::<u64>().is_err() {
                return Err(DecodeError(format!(
                    "invalid Loki push JSON: timestamp {:?} is not nanoseconds",
                    bound(ts.clone(), 64)
                )));
            }
        }
    }
    Ok(req)
}

/// The severity a line announces in its first few words, when it does.
fn severity_in_line(line: &str) -> Severity {
    line.split_whitespace()
        .take(4)
        .map(|w| {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '=');
            let w = w.strip_prefix("level=").or_else(|| w.strip_prefix("lvl=")).unwrap_or(w);
            severity_from_text(w.trim_matches('"'))
        })
        .find(|s| *s != Severity::Unspecified)
        .unwrap_or_default()
}

/// One event per line.
pub fn push_to_events(request: &PushRequest, now_ms: i64) -> Vec<TelemetryEvent> {
    let mut out = Vec::new();
    for s in &request.streams {
        let label = |k: &str| s.stream.get(k).filter(|v| !v.is_empty()).cloned();
        let service = ["service_name", "service", "app", "job"]
            .iter()
            .find_map(|k| label(k))
            .unwrap_or_else(|| UNKNOWN_SERVICE.into());
        let level = label("level")
            .or_else(|| label("detected_level"))
            .map(|l| severity_from_text(&l));
        let labels: HashMap<String, String> = s
            .stream
            .iter()
            .take(MAX_ATTRIBUTES / 2)
            .map(|(k, v)| (bound(k.clone(), 256), bound(v.clone(), MAX_TEXT_BYTES)))
            .collect();
        for entry in &s.values {
            let (ts, line, metadata) = match entry {
                Entry::Plain(ts, line) => (ts, line, None),
                Entry::WithMetadata(ts, line, m) => (ts, line, Some(m)),
            };
            let mut attributes = labels.clone();
            for (k, v) in metadata.into_iter().flatten().take(MAX_ATTRIBUTES / 2) {
                attributes.insert(bound(k.clone(), 256), bound(v.clone(), MAX_TEXT_BYTES));
            }
            let severity = match level {
                Some(l) if l != Severity::Unspecified => l,
                _ => severity_in_line(line),
            };
            out.push(TelemetryEvent {
                event_id: uuid::Uuid::new_v4().to_string(),
                kind: SignalKind::Log,
                service: bound(service.clone(), 256),
                service_version: label("service_version").or_else(|| label("version")),
                instance: label("instance").or_else(|| label("pod")).or_else(|| label("host")),
                environment: label("environment").or_else(|| label("env")),
                timestamp_ms: ts.parse::<u64>().map(|n| (n / 1_000_000) as i64).unwrap_or(now_ms),
                observed_ms: now_ms,
                name: label("logger").or_else(|| label("filename")).unwrap_or_default(),
                severity,
                body: Some(bound(line.clone(), MAX_TEXT_BYTES)),
                attributes,
                source: SOURCE_LOKI.into(),
                ..Default::default()
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_log_events() {
        let body = br#"{"streams":[
          {"stream":{"service_name":"pricing-api","job":"x","level":"error","env":"demo"},
           "values":[["1700000000123456789","boom"],["1700000000200000000","again",{"trace_id":"abc"}]]},
          {"stream":{"app":"cart"},"values":[["1","2024-01-01 WARNING disk low"],["2","level=debug msg=x"],["3","hello"]]}
        ]}"#;
        let events = push_to_events(&decode(body).unwrap(), 5);
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].service, "pricing-api");
        assert_eq!(events[0].kind, SignalKind::Log);
        assert_eq!(events[0].severity, Severity::Error);
        assert_eq!(events[0].timestamp_ms, 1_700_000_000_123);
        assert_eq!(events[0].body.as_deref(), Some("boom"));
        assert_eq!(events[0].environment.as_deref(), Some("demo"));
        assert_eq!(events[1].attributes["trace_id"], "abc");
        assert_eq!(events[1].attributes["job"], "x");
        assert_eq!(events[2].service, "cart");
        assert_eq!(events[2].severity, Severity::Warn, "guessed from the line");
        assert_eq!(events[3].severity, Severity::Debug);
        assert_eq!(events[4].severity, Severity::Unspecified);
        assert_eq!(events[4].source, "loki");
    }

    #[test]
    fn malformed_pushes_are_decode_errors() {
        assert!(decode(b"{}").is_err());
        assert!(decode(br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#).is_err());
        assert!(decode(br#"{"streams":[{"stream":{},"values":[[1,"x"]]}]}"#).is_err());
    }
}
