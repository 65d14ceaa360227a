//! OTLP attribute values flattened to strings, resource facts, and size bounds on the
//! untrusted text that travels on `telemetry.raw`.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// `service.name` when a sender sets none (what the OpenTelemetry SDKs report themselves).
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Largest attribute value, log body or message kept, in bytes; longer text is cut.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Largest stack trace kept, in bytes.
pub const MAX_STACKTRACE_BYTES: usize = 64 * 1024;
/// Most attributes kept per event (a record must stay well below Kafka's message limit).
pub const MAX_ATTRIBUTES: usize = 128;
/// Marker appended to text that was cut.
const TRUNCATED: &str = "…[truncated]";

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn bound(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATED);
    text
}

/// Formats a double the way the instrumenting runtimes print it, so `0.0` stays `"0.0"`
/// (the regression test the repairer writes reuses these inputs verbatim).
pub fn format_double(d: f64) -> String {
    if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e16 {
        format!("{d:.1}")
    } else {
        d.to_string()
    }
}

/// An attribute value as text: strings as they are, scalars printed, arrays and maps as JSON.
pub fn any_value_to_string(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format_double(*d),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(_) => any_value_to_json(value).to_string(),
        None => String::new(),
    }
}

/// An attribute value as JSON (bytes as hex; non-finite doubles as strings).
pub fn any_value_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(d.to_string())),
        Some(Value::BytesValue(b)) => J::String(hex::encode(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(any_value_to_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|k| {
                    (
                        k.key.clone(),
                        k.value.as_ref().map(any_value_to_json).unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
        None => J::Null,
    }
}

/// Attributes flattened to bounded strings, skipping `skip` keys, at most [`MAX_ATTRIBUTES`].
pub fn flatten(attributes: &[KeyValue], skip: &[&str]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter(|kv| !skip.contains(&kv.key.as_str()))
        .take(MAX_ATTRIBUTES)
        .map(|kv| {
            let value = kv.value.as_ref().map(any_value_to_string).unwrap_or_default();
            (bound(kv.key.clone(), 256), bound(value, MAX_TEXT_BYTES))
        })
        .collect()
}

/// The value of attribute `key` as text, when present.
pub fn get(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(any_value_to_string)
}

/// Lowercase hex of an id; `None` for an empty or all-zero id (both mean "no id" in OTLP).
pub fn hex_id(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        None
    } else {
        Some(hex::encode(bytes))
    }
}

/// Nanoseconds since the epoch to milliseconds.
pub fn nanos_to_ms(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

/// The facts about the emitting service that every event of one resource shares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceInfo {
    /// `service.name`, or [`UNKNOWN_SERVICE`].
    pub service: String,
    /// `service.version`.
    pub version: Option<String>,
    /// `service.instance.id`, else `host.name`.
    pub instance: Option<String>,
    /// `deployment.environment.name`, else `deployment.environment`.
    pub environment: Option<String>,
    /// All resource attributes, flattened.
    pub attributes: HashMap<String, String>,
}

impl ResourceInfo {
    /// Reads the resource of a batch (absent resource: unknown service).
    pub fn from_resource(resource: Option<&Resource>) -> Self {
        let attrs: &[KeyValue] = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let non_empty = |key: &str| get(attrs, key).filter(|v| !v.is_empty()).map(|v| bound(v, 256));
        ResourceInfo {
            service: non_empty("service.name").unwrap_or_else(|| UNKNOWN_SERVICE.to_string()),
            version: non_empty("service.version"),
            instance: non_empty("service.instance.id").or_else(|| non_empty("host.name")),
            environment: non_empty("deployment.environment.name").or_else(|| non_empty("deployment.environment")),
            attributes: flatten(attrs, &[]),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    #[test]
    fn scalars_print_like_their_runtime() {
        assert_eq!(
            any_value_to_string(&AnyValue {
                value: Some(Value::DoubleValue(0.0))
            }),
            "0.0"
        );
        assert_eq!(
            any_value_to_string(&AnyValue {
                value: Some(Value::DoubleValue(49.99))
            }),
            "49.99"
        );
        assert_eq!(
            any_value_to_string(&AnyValue {
                value: Some(Value::IntValue(-3))
            }),
            "-3"
        );
        assert_eq!(
            any_value_to_string(&AnyValue {
                value: Some(Value::BoolValue(true))
            }),
            "true"
        );
        assert_eq!(
            any_value_to_string(&AnyValue {
                value: Some(Value::BytesValue(vec![0xab, 1]))
            }),
            "ab01"
        );
    }

    #[test]
    fn arrays_and_maps_become_json_text() {
        let arr = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Value::IntValue(1)),
                    },
                    AnyValue {
                        value: Some(Value::StringValue("a".into())),
                    },
                ],
            })),
        };
        assert_eq!(any_value_to_string(&arr), r#"[1,"a"]"#);
        let map = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![kv("k", Value::BoolValue(false))],
            })),
        };
        assert_eq!(any_value_to_string(&map), r#"{"k":false}"#);
    }

    #[test]
    fn resource_falls_back_to_otel_defaults() {
        let info = ResourceInfo::from_resource(None);
        assert_eq!(info.service, UNKNOWN_SERVICE);
        let r = Resource {
            attributes: vec![
                kv("service.name", Value::StringValue("".into())),
                kv("host.name", Value::StringValue("h1".into())),
                kv("deployment.environment", Value::StringValue("prod".into())),
            ],
            ..Default::default()
        };
        let info = ResourceInfo::from_resource(Some(&r));
        assert_eq!(info.service, UNKNOWN_SERVICE, "an empty service.name is no name");
        assert_eq!(info.instance.as_deref(), Some("h1"));
        assert_eq!(info.environment.as_deref(), Some("prod"));
    }

    #[test]
    fn ids_and_bounds() {
        assert_eq!(hex_id(&[]), None);
        assert_eq!(hex_id(&[0; 8]), None);
        assert_eq!(hex_id(&[0xAB, 0x01]).as_deref(), Some("ab01"));
        let cut = bound("é".repeat(100), 51);
        assert!(cut.len() <= 51 && cut.ends_with(TRUNCATED), "{cut}");
        assert_eq!(bound("short".into(), 51), "short");
    }
}
