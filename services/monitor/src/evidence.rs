//! What goes into an anomaly besides counts: a failing request's inputs, and the
//! one-line summary for a person.

use std::collections::HashMap;

use selfheal_events::TelemetryEvent;

use crate::fingerprint::truncate_head;

/// Attribute prefixes that describe transport, not the request's inputs.
const TRANSPORT_PREFIXES: &[&str] = &[
    "http.",
    "url.",
    "net.",
    "network.",
    "server.",
    "client.",
    "user_agent.",
    "exception.",
    "code.",
    "thread.",
    "otel.",
    "telemetry.",
    "error.",
    "rpc.",
    "messaging.",
    "db.system",
];
/// Bytes kept of one input value.
pub const MAX_INPUT_VALUE: usize = 256;
/// Inputs kept per failing request.
pub const MAX_INPUT_KEYS: usize = 32;
/// Bytes kept of one input key.
const MAX_INPUT_KEY: usize = 128;

/// The inputs of a failing request: its attributes without transport details
/// (`http.*`, `url.*`, `net.*`, `server.*`, `client.*`, `user_agent.*`, …), each value
/// bounded to [`MAX_INPUT_VALUE`] bytes, at most [`MAX_INPUT_KEYS`] keys (by name).
pub fn sample_inputs(event: &TelemetryEvent) -> HashMap<String, String> {
    let mut keys: Vec<&String> = event
        .attributes
        .keys()
        .filter(|k| !k.is_empty() && !TRANSPORT_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    keys.sort();
    keys.into_iter()
        .take(MAX_INPUT_KEYS)
        .filter_map(|k| {
            let v = event.attributes.get(k)?;
            Some((
                truncate_head(k, MAX_INPUT_KEY).to_string(),
                truncate_head(v, MAX_INPUT_VALUE).to_string(),
            ))
        })
        .collect()
}

/// `0.098` → `9.8%`.
pub fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testdata::*;

    #[test]
    fn inputs_keep_the_request_data_only() {
        let e = fixture_failing_span(T0, "t", "0.0");
        let i = sample_inputs(&e);
        assert_eq!(i.get("pricing.discount").map(String::as_str), Some("0.0"));
        assert_eq!(i.get("pricing.item").map(String::as_str), Some("lamp"));
        assert!(
            !i.keys()
                .any(|k| k.starts_with("http.") || k.starts_with("url.") || k.starts_with("client."))
        );
        assert_eq!(i.len(), 3, "{i:?}");
        let mut big = e.clone();
        big.attributes.insert("pricing.note".into(), "é".repeat(1000));
        for n in 0..100 {
            big.attributes.insert(format!("z{n:03}"), "v".into());
        }
        let i = sample_inputs(&big);
        assert_eq!(i.len(), MAX_INPUT_KEYS);
        assert!(i.get("pricing.note").unwrap().len() <= MAX_INPUT_VALUE);
        assert_eq!(percent(0.098), "9.8%");
    }
}
