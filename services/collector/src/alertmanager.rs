//! Alertmanager webhook (JSON, version 4) to one Alert `TelemetryEvent` per alert.
//!
//! Service from the `service` label, else `job`; severity from the `severity` label; body
//! from the `summary` annotation, else `description`; name from `alertname`. Labels become
//! attributes, annotations become `annotation.<name>` attributes, and `alert.status`
//! (`firing` / `resolved`), `alert.fingerprint`, `alert.generator_url` are added.

use std::collections::HashMap;

use selfheal_events::{Severity, SignalKind, TelemetryEvent};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::attributes::{MAX_ATTRIBUTES, MAX_TEXT_BYTES, UNKNOWN_SERVICE, bound};
use crate::otlp::{DecodeError, severity_from_text};

/// The `source` of alert events.
pub const SOURCE_ALERTMANAGER: &str = "alertmanager";

/// The webhook body (only the fields the collector reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// Payload version; `4` today.
    #[serde(default)]
    pub version: Option<String>,
    /// The alerts of the notification.
    pub alerts: Vec<Alert>,
    /// Labels common to all alerts, used when an alert lacks one.
    #[serde(default)]
    pub common_labels: HashMap<String, String>,
}

/// One alert of the notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    #[serde(default)]
    pub status: String,
    /// Identifying labels.
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Informational annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// RFC 3339 start time.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339 end time (`0001-01-01T00:00:00Z` while firing).
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Link to the alert's source.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprint of the label set.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Decodes a webhook body.
pub fn decode(body: &[u8]) -> Result<WebhookMessage, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError(format!("invalid Alertmanager webhook JSON: {e}")))
}

fn parse_ms(ts: Option<&str>) -> Option<i64> {
    let t = OffsetDateTime::parse(ts?, &Rfc3339).ok()?;
    // Alertmanager's "unset" time is year 1.
    (t.year() > 1970).then(|| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Severity from an alert's `severity` label, including the usual paging words.
pub fn alert_severity(label: &str) -> Severity {
    match label.trim().to_ascii_lowercase().as_str() {
        "page" | "p1" | "disaster" => Severity::Fatal,
        "high" | "major" | "p2" => Severity::Error,
        "medium" | "minor" | "average" | "p3" => Severity::Warn,
        "low" | "none" | "p4" | "p5" => Severity::Info,
        other => severity_from_text(other),
    }
}

/// One event per alert.
pub fn alerts_to_events(message: &WebhookMessage, now_ms: i64) -> Vec<TelemetryEvent> {
    message
        .alerts
        .iter()
        .map(|alert| {
            let label = |k: &str| {
                alert
                    .labels
                    .get(k)
                    .or_else(|| message.common_labels.get(k))
                    .filter(|v| !v.is_empty())
                    .cloned()
            };
            let resolved = alert.status == "resolved";
            let timestamp_ms = if resolved {
                parse_ms(alert.ends_at.as_deref())
            } else {
                None
            }
            .or_else(|| parse_ms(alert.starts_at.as_deref()))
            .unwrap_or(now_ms);
            let mut attributes: HashMap<String, String> = alert
                .labels
                .iter()
                .take(MAX_ATTRIBUTES / 2)
                .map(|(k, v)| (bound(k.clone(), 256), bound(v.clone(), MAX_TEXT_BYTES)))
                .collect();
            for (k, v) in alert.annotations.iter().take(MAX_ATTRIBUTES / 2) {
                attributes.insert(bound(format!("annotation.{k}"), 256), bound(v.clone(), MAX_TEXT_BYTES));
            }
            attributes.insert("alert.status".into(), bound(alert.status.clone(), 64));
            if let Some(f) = &alert.fingerprint {
                attributes.insert("alert.fingerprint".into(), bound(f.clone(), 256));
            }
            if let Some(u) = &alert.generator_url {
                attributes.insert("alert.generator_url".into(), bound(u.clone(), 2048));
            }
            TelemetryEvent {
                event_id: uuid::Uuid::new_v4().to_string(),
                kind: SignalKind::Alert,
                service: bound(
                    label("service")
                        .or_else(|| label("job"))
                        .unwrap_or_else(|| UNKNOWN_SERVICE.into()),
                    256,
                ),
                service_version: label("version").map(|v| bound(v, 256)),
                instance: label("instance").or_else(|| label("pod")).map(|v| bound(v, 256)),
                environment: label("environment").or_else(|| label("env")).map(|v| bound(v, 256)),
                timestamp_ms,
                observed_ms: now_ms,
                name: bound(label("alertname").unwrap_or_default(), 1024),
                severity: label("severity").map(|s| alert_severity(&s)).unwrap_or_default(),
                body: alert
                    .annotations
                    .get("summary")
                    .or_else(|| alert.annotations.get("description"))
                    .map(|b| bound(b.clone(), MAX_TEXT_BYTES)),
                attributes,
                source: SOURCE_ALERTMANAGER.into(),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WEBHOOK: &str = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0,
      "status": "firing", "receiver": "selfheal",
      "groupLabels": {"alertname": "HighErrorRate"},
      "commonLabels": {"alertname": "HighErrorRate", "env": "prod"},
      "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "pricing-api", "severity": "critical", "instance": "pod-1"},
         "annotations": {"summary": "5xx above 5%", "description": "long text"},
         "startsAt": "2026-01-02T03:04:05.678Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus/graph", "fingerprint": "abc123"},
        {"status": "resolved", "labels": {"alertname": "Down", "job": "checkout", "severity": "warning"},
         "annotations": {"description": "gone"},
         "startsAt": "2026-01-02T03:00:00Z", "endsAt": "2026-01-02T03:10:00Z"},
        {"status": "firing", "labels": {}, "annotations": {}}
      ]
    }"#;

    #[test]
    fn one_alert_event_per_alert() {
        let msg = decode(WEBHOOK.as_bytes()).unwrap();
        let events = alerts_to_events(&msg, 99);
        assert_eq!(events.len(), 3);
        let a = &events[0];
        assert_eq!(a.kind, SignalKind::Alert);
        assert_eq!(a.service, "pricing-api");
        assert_eq!(a.name, "HighErrorRate");
        assert_eq!(a.severity, Severity::Fatal);
        assert_eq!(a.body.as_deref(), Some("5xx above 5%"));
        assert_eq!(a.instance.as_deref(), Some("pod-1"));
        assert_eq!(a.environment.as_deref(), Some("prod"), "from the common labels");
        assert_eq!(a.timestamp_ms, 1_767_323_045_678);
        assert_eq!(a.attributes["alert.status"], "firing");
        assert_eq!(a.attributes["annotation.description"], "long text");
        assert_eq!(a.attributes["alert.fingerprint"], "abc123");
        assert_eq!(a.source, "alertmanager");
        let b = &events[1];
        assert_eq!(b.service, "checkout", "job when no service label");
        assert_eq!(b.severity, Severity::Warn);
        assert_eq!(b.body.as_deref(), Some("gone"));
        assert_eq!(
            b.timestamp_ms, 1_767_323_400_000,
            "resolved alerts are stamped with their end"
        );
        let c = &events[2];
        assert_eq!(c.service, "unknown_service");
        assert_eq!(c.timestamp_ms, 99);
        assert_eq!(c.severity, Severity::Unspecified);
    }

    #[test]
    fn bad_webhooks_are_decode_errors() {
        assert!(decode(b"{}").is_err(), "alerts is required");
        assert!(decode(b"not json").is_err());
        assert_eq!(alert_severity("HIGH"), Severity::Error);
        assert_eq!(alert_severity("info"), Severity::Info);
    }
}
