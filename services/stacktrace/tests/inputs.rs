//! Traces wrapped in what telemetry carries: JSON documents, JSON log lines, escaped
//! newlines, several log records, colours, CRLF; and inputs that are not traces at all.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{
    MAX_INPUT_BYTES, ParseOptions, Runtime, cli_parse, fingerprint_exception, fingerprint_fallback, parse, parse_lines,
};

const PY: &str = "Traceback (most recent call last):\n  File \"/app/pricing_logic.py\", line 14, in calc\n    return price / quantity\nZeroDivisionError: float division by zero\n";

fn opts() -> ParseOptions {
    ParseOptions::default()
}

#[test]
fn otel_exception_event_json() {
    let event = serde_json::json!({
        "name": "exception",
        "attributes": {
            "exception.type": "ZeroDivisionError",
            "exception.message": "float division by zero",
            "exception.stacktrace": PY,
            "exception.escaped": "False"
        }
    });
    let t = parse(&event.to_string(), &opts()).expect("trace");
    assert_eq!(t.runtime, Runtime::Python);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
    // Same fingerprint as the bare text.
    assert_eq!(
        parse(&event.to_string(), &opts()).unwrap().fingerprint,
        parse(PY, &opts()).unwrap().fingerprint
    );
}

#[test]
fn json_log_with_backtrace_array_and_type_fields() {
    let doc = serde_json::json!({
        "level": "error",
        "error": {
            "class": "ZeroDivisionError",
            "message": "divided by 0",
            "backtrace": [
                "/app/lib/pricing.rb:14:in `/'",
                "/app/lib/pricing.rb:14:in `unit_price'",
                "/app/app.rb:9:in `block in <main>'"
            ]
        }
    });
    let t = parse(&doc.to_string(), &opts()).expect("trace");
    assert_eq!(t.runtime, Runtime::Ruby);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "divided by 0");
    assert_eq!(t.frames.len(), 3);
}

#[test]
fn json_lines_each_carrying_one_line() {
    let text = [
        r#"{"log":"Exception in thread \"main\" java.lang.IllegalStateException: no price\n","stream":"stderr","time":"2024-05-01T12:00:00Z"}"#,
        r#"{"log":"\tat com.acme.Pricing.price(Pricing.java:20)\n","stream":"stderr","time":"2024-05-01T12:00:00Z"}"#,
        r#"{"log":"\tat com.acme.Main.main(Main.java:5)\n","stream":"stderr","time":"2024-05-01T12:00:00Z"}"#,
    ]
    .join("\n");
    let t = parse(&text, &opts()).expect("trace");
    assert_eq!(t.runtime, Runtime::Jvm);
    assert_eq!(t.exception.message, "no price");
    assert_eq!(t.frames.len(), 2);
}

#[test]
fn parse_lines_with_json_records_and_interleaving() {
    let records = [
        r#"{"message":"panic: runtime error: index out of range [3] with length 3","level":"error"}"#,
        "",
        "goroutine 1 [running]:",
        "main.pick(...)",
        "\t/app/pick.go:12",
        "main.main()",
        "\t/app/main.go:7 +0x1d",
    ];
    let t = parse_lines(&records, &opts()).expect("trace");
    assert_eq!(t.runtime, Runtime::Go);
    assert_eq!(t.exception.ty, "runtime.Error");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(12)));
}

#[test]
fn escaped_newlines_on_one_line() {
    let one_line = PY.replace('\n', "\\n").replace('"', "\\\"");
    let t = parse(&format!("error=\"{one_line}\""), &opts()).expect("trace");
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.function), Some("calc".into()));
}

#[test]
fn crlf_colours_and_kubernetes_cri_prefixes() {
    let crlf = PY.replace('\n', "\r\n");
    assert_eq!(
        parse(&crlf, &opts()).unwrap().exception.message,
        "float division by zero"
    );
    let coloured = "\x1b[31mTypeError: boom\x1b[0m\n    at f (\x1b[36m/app/x.js:1:2\x1b[0m)\n";
    let t = parse(coloured, &opts()).expect("trace");
    assert_eq!(t.frames[0].file.as_deref(), Some("/app/x.js"));
    let cri: String = PY
        .lines()
        .map(|l| format!("2024-05-01T12:00:00.123456789Z stderr F {l}\n"))
        .collect();
    let t = parse(&cri, &opts()).expect("trace");
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn trace_after_unrelated_log_lines() {
    let text = format!(
        "2024-05-01 12:00:00 INFO starting\n2024-05-01 12:00:01 INFO listening on :8080\n{PY}2024-05-01 12:00:02 INFO shutting down\n"
    );
    let t = parse(&text, &opts()).expect("trace");
    assert_eq!(t.exception.ty, "ZeroDivisionError");
}

#[test]
fn garbage_is_not_a_trace() {
    for text in [
        "",
        "   \n\n\t",
        "hello world",
        "GET /health 200 3ms",
        "{\"level\":\"info\",\"msg\":\"ok\"}",
        "[1, 2, 3]",
        "{not json",
        "at at at at",
        "File \"",
        "panic:",
        "Caused by:",
        "\u{0}\u{1}\u{2}\u{7f}",
        "ééé ☃ 𝄞",
        "--->",
        "thread '' panicked at",
    ] {
        assert!(parse(text, &opts()).is_none(), "{text:?}");
        let out = cli_parse(text, None, None);
        assert_eq!(out["found"], false);
    }
}

#[test]
fn huge_and_pathological_inputs_are_bounded() {
    let big = "a".repeat(MAX_INPUT_BYTES * 3);
    assert!(parse(&big, &opts()).is_none());
    let long_line = format!(
        "Traceback (most recent call last):\n  File \"/app/{}.py\", line 1, in f\nValueError: x\n",
        "d/".repeat(5000)
    );
    let _ = parse(&long_line, &opts());
    let many_frames: String = std::iter::once("java.lang.StackOverflowError\n".to_string())
        .chain((0..20_000).map(|i| format!("\tat com.acme.R.f(R.java:{i})\n")))
        .collect();
    let t = parse(&many_frames, &opts()).expect("trace");
    assert!(t.frames.len() <= selfheal_stacktrace::MAX_FRAMES);
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(&deep_json, &opts()).is_none());
    let many_causes: String = (0..500)
        .map(|i| format!("Caused by: java.lang.RuntimeException: {i}\n\tat com.acme.A.a(A.java:{i})\n"))
        .collect();
    let t = parse(
        &format!("java.lang.RuntimeException: top\n\tat com.acme.A.a(A.java:1)\n{many_causes}"),
        &opts(),
    )
    .expect("trace");
    assert!(t.causes.len() <= selfheal_stacktrace::MAX_CAUSES);
}

#[test]
fn multibyte_text_around_cut_points() {
    let text = format!("{}{}", "é".repeat(MAX_INPUT_BYTES / 2), PY);
    let _ = parse(&text, &opts());
    let line = format!("TypeError: {}\n    at f (/app/x.js:1:2)\n", "☃".repeat(3000));
    let t = parse(&line, &opts()).expect("trace");
    assert_eq!(t.frames.len(), 1);
}

#[test]
fn fallback_fingerprint_masks_values() {
    let a = fingerprint_fallback(
        "KeyError",
        "'user-7f3a' not in cache (shard 12, id 550e8400-e29b-41d4-a716-446655440000)",
    );
    let b = fingerprint_fallback(
        "KeyError",
        "'user-99' not in cache (shard 3, id 123e4567-e89b-12d3-a456-426614174000)",
    );
    assert_eq!(a, b);
    assert_ne!(a, fingerprint_fallback("KeyError", "cache disabled"));
    assert_eq!(a.len(), 16);
    assert_eq!(fingerprint_exception("X", &[]), fingerprint_fallback("X", ""));
}

#[test]
fn fingerprint_differs_between_runtimes_shapes() {
    let py = parse(PY, &opts()).unwrap();
    let node = parse(
        "ZeroDivisionError: float division by zero\n    at calc (/app/pricing_logic.js:14:3)\n",
        &opts(),
    )
    .unwrap();
    assert_ne!(py.fingerprint, node.fingerprint);
}

#[test]
fn serde_round_trip_and_lowercase_runtime() {
    let t = parse(PY, &opts()).unwrap();
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["runtime"], "python");
    assert_eq!(json["exception"]["type"], "ZeroDivisionError");
    let back: selfheal_stacktrace::ParsedTrace = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
}

#[test]
fn cli_output_shape() {
    let out = cli_parse(PY, None, None);
    for key in [
        "runtime",
        "exception",
        "message",
        "causes",
        "frames",
        "culprit",
        "fingerprint",
        "root_cause",
    ] {
        assert!(out.get(key).is_some(), "{key}");
    }
    assert!(out.get("repo").is_none());
    assert_eq!(out["frames"][0]["in_app"], true);
}

#[test]
fn otel_event_type_fills_frames_only_stacktraces() {
    use selfheal_stacktrace::parse_exception_event;
    let frames_only =
        "/app/lib/pricing.rb:14:in `/'\n/app/lib/pricing.rb:14:in `unit_price'\n/app/app.rb:9:in `block in <main>'";
    let t = parse_exception_event("ZeroDivisionError", "divided by 0", frames_only, &opts()).expect("trace");
    assert_eq!(t.runtime, Runtime::Ruby);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "divided by 0");
    let other = parse_exception_event("TypeError", "nil can't be coerced", frames_only, &opts()).expect("trace");
    assert_ne!(t.fingerprint, other.fingerprint);
    // A full trace keeps its own type; the event agrees anyway.
    let py = parse_exception_event("ZeroDivisionError", "float division by zero", PY, &opts()).expect("trace");
    assert_eq!(py.fingerprint, parse(PY, &opts()).unwrap().fingerprint);
    assert!(parse_exception_event("ValueError", "x", "no trace here", &opts()).is_none());
}

#[test]
fn interleaved_lines_inside_jvm_node_and_go_traces() {
    let jvm = "java.lang.IllegalStateException: closed
\tat com.acme.Pool.take(Pool.java:40)
2024-05-01 12:00:00.001  INFO 1 --- [pool-2-thread-1] c.a.Other : unrelated
\tat com.acme.Service.run(Service.java:12)
";
    let t = parse(jvm, &opts()).expect("jvm");
    assert_eq!(t.frames.len(), 2);
    let node = "Error: boom
    at a (/app/a.js:1:1)
[2024-05-01T12:00:00.002Z] info: request done
    at b (/app/b.js:2:2)
";
    let t = parse(node, &opts()).expect("node");
    assert_eq!(t.frames.len(), 2);
    let go = "panic: boom

goroutine 1 [running]:
main.a()
\t/app/a.go:3 +0x1
main.main()
\t/app/main.go:9 +0x2
2024/05/01 12:00:00 shutting down
";
    let t = parse(go, &opts()).expect("go");
    assert_eq!(t.frames.len(), 2);
}

#[test]
fn structlog_json_line_among_plain_lines() {
    let text = format!(
        "starting worker\n{}\nworker stopped\n",
        serde_json::json!({"event": "job failed", "level": "error", "exception": PY})
    );
    let t = parse(&text, &opts()).expect("trace");
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn hostile_repetition_stays_fast() {
    // Many `... N more` lines under one cause must not copy frames again and again.
    let mut text = String::from("java.lang.RuntimeException: top\n");
    for i in 0..400 {
        text.push_str(&format!("\tat com.acme.A.a{i}(A.java:{i})\n"));
    }
    text.push_str("Caused by: java.lang.IllegalStateException: x\n");
    for _ in 0..4000 {
        text.push_str("\t... 400 more\n");
    }
    let t = parse(&text, &opts()).expect("trace");
    assert_eq!(t.causes[0].frames.len(), 400);
    // Many old-style Rust panic starts without an end.
    let rust: String = (0..4000).map(|_| "thread 'main' panicked at 'no end\n").collect();
    assert!(parse(&rust, &opts()).is_none());
}
