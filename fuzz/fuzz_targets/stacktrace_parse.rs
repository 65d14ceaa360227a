//! Fuzzes stack trace parsing: `parse`, `parse_lines`, fingerprints and `cli_parse`
//! must never panic, and what they return must be self-consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use selfheal_stacktrace::{
    ParseOptions, cli_parse, fingerprint_exception, fingerprint_fallback, parse, parse_lines,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = ParseOptions {
        source_roots: vec!["/app".into(), "src/".into()],
        app_packages: vec!["com.acme".into(), "github.com/acme/svc".into()],
    };
    if let Some(t) = parse(&text, &opts) {
        assert_eq!(t.fingerprint.len(), 16);
        assert!(t.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        if let Some(c) = &t.culprit {
            assert!(c.in_app);
            assert!(t.all_frames().any(|f| f == c));
        }
        let _ = fingerprint_exception(&t.exception.ty, &t.frames);
        let json = serde_json_roundtrip(&t);
        assert!(json);
    }
    let lines: Vec<&str> = text.lines().collect();
    let _ = parse_lines(&lines, &ParseOptions::default());
    assert_eq!(fingerprint_fallback(&text, &text).len(), 16);
    let _ = cli_parse(&text, None, None);
});

/// A parsed trace survives a JSON round trip unchanged.
fn serde_json_roundtrip(t: &selfheal_stacktrace::ParsedTrace) -> bool {
    let Ok(json) = serde_json::to_string(t) else {
        return false;
    };
    match serde_json::from_str::<selfheal_stacktrace::ParsedTrace>(&json) {
        Ok(back) => &back == t,
        Err(_) => false,
    }
}
