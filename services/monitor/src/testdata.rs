//! Test records: the real pricing-api OTLP fixtures
//! (`examples/pricing-api/testdata/zero-division-{traces,logs}.json`) converted by hand
//! into the `TelemetryEvent`s the collector makes of them.

use std::collections::HashMap;

use selfheal_events::{ExceptionInfo, Severity, SignalKind, SpanStatus, TelemetryEvent};

/// Event time of the first fixture span (ms).
pub const T0: i64 = 1_795_806_815_761;

/// `exception.stacktrace` of the fixture's failing spans and error log records.
pub const FIXTURE_STACKTRACE: &str = "Traceback (most recent call last):\n  File \"/work/main/examples/pricing-api/app.py\", line 165, in _post_price\n    result = quote(item, price, discount)\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/main/examples/pricing-api/app.py\", line 62, in quote\n    total = pricing_logic.calc(price, discount)\n            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/work/main/examples/pricing-api/pricing_logic.py\", line 14, in calc\n    def calc(p, d): return p / d\n                           ~~^~~\nZeroDivisionError: float division by zero\n";

fn base(ts: i64, trace_id: &str) -> TelemetryEvent {
    let mut e = selfheal_events::examples::telemetry_event();
    e.event_id = format!("{trace_id}-{ts}-{:?}", e.kind);
    e.service = "pricing-api".into();
    e.service_version = Some("8e91235".into());
    e.instance = Some("vm:8081".into());
    e.timestamp_ms = ts;
    e.observed_ms = ts + 200;
    e.trace_id = Some(trace_id.to_string());
    e.resource = HashMap::from([
        ("service.name".to_string(), "pricing-api".to_string()),
        ("service.version".to_string(), "8e91235".to_string()),
        ("telemetry.sdk.language".to_string(), "python".to_string()),
    ]);
    e
}

fn span_attrs(item: &str, price: &str, discount: &str, status: &str) -> HashMap<String, String> {
    [
        ("http.request.method", "POST"),
        ("url.path", "/price"),
        ("url.scheme", "http"),
        ("http.route", "/price"),
        ("server.port", "8081"),
        ("client.address", "127.0.0.1"),
        ("user_agent.original", "selfheal-traffic/1"),
        ("pricing.item", item),
        ("pricing.price", price),
        ("pricing.discount", discount),
        ("http.response.status_code", status),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A successful `POST /price` SERVER span at `ts`.
pub fn fixture_ok_span(ts: i64, trace_id: &str) -> TelemetryEvent {
    let mut e = base(ts, trace_id);
    e.span_id = Some(format!("{:016x}", ts));
    e.status = SpanStatus::Unset;
    e.status_message = None;
    e.attributes = span_attrs("book", "10.0", "0.8", "200");
    e.exception = None;
    e
}

/// A failing `POST /price` SERVER span at `ts` with the fixture's ZeroDivisionError.
pub fn fixture_failing_span(ts: i64, trace_id: &str, discount: &str) -> TelemetryEvent {
    let mut e = base(ts, trace_id);
    e.span_id = Some(format!("{:016x}", ts));
    e.status = SpanStatus::Error;
    e.status_message = Some("ZeroDivisionError: float division by zero".into());
    e.attributes = span_attrs("lamp", "49.99", discount, "500");
    e.attributes.insert("error.type".into(), "ZeroDivisionError".into());
    e.exception = Some(ExceptionInfo {
        r#type: "ZeroDivisionError".into(),
        message: "float division by zero".into(),
        stacktrace: Some(FIXTURE_STACKTRACE.into()),
    });
    e
}

/// The ERROR log record pricing-api writes for a failing request (exception as attributes).
pub fn fixture_error_log(ts: i64, trace_id: &str) -> TelemetryEvent {
    let mut e = base(ts, trace_id);
    e.kind = SignalKind::Log;
    e.event_id = format!("{trace_id}-{ts}-log");
    e.span_id = Some(format!("{:016x}", ts));
    e.name = "pricing_api".into();
    e.span_kind = None;
    e.status = SpanStatus::Unset;
    e.status_message = None;
    e.duration_ms = None;
    e.severity = Severity::Error;
    e.body = Some(
        "POST /price failed for item 'lamp' (price=49.99, discount=0.0): ZeroDivisionError: float division by zero"
            .into(),
    );
    e.exception = None;
    e.attributes = [
        ("pricing.item", "lamp"),
        ("pricing.price", "49.99"),
        ("pricing.discount", "0.0"),
        ("http.request.method", "POST"),
        ("url.path", "/price"),
        ("http.response.status_code", "500"),
        ("code.file.path", "/work/main/examples/pricing-api/app.py"),
        ("code.function.name", "_post_price"),
        ("code.line.number", "170"),
        ("exception.type", "ZeroDivisionError"),
        ("exception.message", "float division by zero"),
        ("exception.stacktrace", FIXTURE_STACKTRACE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    e
}

/// A plain log line of pricing-api at `severity`.
pub fn log_line(ts: i64, severity: Severity, body: &str) -> TelemetryEvent {
    let mut e = fixture_error_log(ts, "00000000000000000000000000000000");
    e.event_id = format!("log-{ts}-{}", body.len());
    e.trace_id = None;
    e.span_id = None;
    e.severity = severity;
    e.body = Some(body.to_string());
    e.attributes = HashMap::new();
    e
}
