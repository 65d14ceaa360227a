//! Recognising the same failure: the exception of a telemetry event and its fingerprint.
//!
//! The definition lives in `selfheal_observe::fingerprint`, shared with the rollout and the
//! verifier (no stage library depends on another); it is re-exported here under its old path.

pub use selfheal_observe::fingerprint::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testdata::*;
    use selfheal_events::{ExceptionInfo, Severity};
    use selfheal_stacktrace::fingerprint_fallback;

    #[test]
    fn span_and_log_of_one_exception_share_a_fingerprint() {
        let span = fixture_failing_span(0, "16e3cedc324b07dee46fea0010d98b59", "0.0");
        let log = fixture_error_log(0, "16e3cedc324b07dee46fea0010d98b59");
        assert!(span.exception.is_some());
        assert!(log.exception.is_none(), "the log carries its exception as attributes");
        let a = fingerprint_of(&span).unwrap();
        let b = fingerprint_of(&log).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        // The collector may also lift the log's attributes into `exception`: same value.
        let mut lifted = log.clone();
        lifted.exception = exception_of(&log);
        assert_eq!(fingerprint_of(&lifted).unwrap(), a);
        let f = failure_of(&span).unwrap();
        assert_eq!(f.label(), "ZeroDivisionError@calc");
        assert_eq!(f.location.as_deref(), Some("pricing_logic.py:14"));
    }

    #[test]
    fn example_event_has_a_fingerprint_and_plain_spans_none() {
        let e = selfheal_events::examples::telemetry_event();
        assert_eq!(failure_of(&e).unwrap().label(), "ZeroDivisionError@calc");
        let mut ok = e.clone();
        ok.exception = None;
        assert_eq!(fingerprint_of(&ok), None);
    }

    #[test]
    fn stable_when_line_numbers_and_paths_shift() {
        let a = fingerprint_of(&fixture_failing_span(0, "t1", "0.0")).unwrap();
        let mut shifted = fixture_failing_span(0, "t2", "0.0");
        let exc = shifted.exception.as_mut().unwrap();
        exc.stacktrace = Some(
            FIXTURE_STACKTRACE
                .replace("line 165", "line 171")
                .replace("line 62", "line 64")
                .replace("line 14", "line 19")
                .replace("/work/main/examples/", "/srv/release-42/"),
        );
        assert_eq!(fingerprint_of(&shifted).unwrap(), a);
        let mut other = fixture_failing_span(0, "t3", "0.0");
        let exc = other.exception.as_mut().unwrap();
        exc.r#type = "ValueError".into();
        exc.stacktrace =
            Some(FIXTURE_STACKTRACE.replace("ZeroDivisionError: float division by zero", "ValueError: bad discount"));
        assert_ne!(fingerprint_of(&other).unwrap(), a);
    }

    #[test]
    fn without_a_trace_type_and_message_decide() {
        let mut e = fixture_failing_span(0, "t1", "0.0");
        e.exception = Some(ExceptionInfo {
            r#type: "KeyError".into(),
            message: "'user_1'".into(),
            stacktrace: None,
        });
        let a = fingerprint_of(&e).unwrap();
        e.exception = Some(ExceptionInfo {
            r#type: "KeyError".into(),
            message: "'user_2'".into(),
            stacktrace: None,
        });
        assert_eq!(fingerprint_of(&e).unwrap(), a);
        assert_eq!(a, fingerprint_fallback("KeyError", "'user_9'"));
    }

    #[test]
    fn a_traceback_in_an_error_log_body_counts() {
        let mut e = fixture_error_log(0, "t1");
        e.attributes.retain(|k, _| !k.starts_with("exception."));
        e.body = Some(FIXTURE_STACKTRACE.to_string());
        let f = failure_of(&e).unwrap();
        assert_eq!(f.exception.r#type, "ZeroDivisionError");
        assert_eq!(
            Some(f.fingerprint),
            fingerprint_of(&fixture_failing_span(0, "t", "0.0"))
        );
        // Not at info level, and not a bare error line.
        e.severity = Severity::Info;
        assert_eq!(failure_of(&e), None);
        e.severity = Severity::Error;
        e.body = Some("ZeroDivisionError: float division by zero".into());
        assert_eq!(failure_of(&e), None);
    }

    #[test]
    fn huge_traces_are_bounded_and_keep_their_end() {
        let mut e = fixture_failing_span(0, "t1", "0.0");
        let mut st = String::from("Traceback (most recent call last):\n");
        for i in 0..2000 {
            st.push_str(&format!(
                "  File \"/usr/lib/python3.11/x{i}.py\", line {i}, in f{i}\n    f()\n"
            ));
        }
        st.push_str(FIXTURE_STACKTRACE.trim_start_matches("Traceback (most recent call last):\n"));
        e.exception.as_mut().unwrap().stacktrace = Some(st);
        e.exception.as_mut().unwrap().message = "x".repeat(100_000);
        let f = failure_of(&e).unwrap();
        assert!(f.exception.stacktrace.as_ref().unwrap().len() <= MAX_TEXT_BYTES);
        assert!(f.exception.message.len() <= MAX_TEXT_BYTES);
        assert_eq!(f.culprit.as_deref(), Some("calc"));
        assert_eq!(truncate_middle("abc", 10), "abc");
        assert_eq!(truncate_head("héllo", 2), "h");
    }

    #[test]
    fn derived_fingerprints_differ_by_part() {
        let a = derived_fingerprint(&["error-rate", "svc", "GET /a"]);
        assert_eq!(a.len(), 16);
        assert_eq!(a, derived_fingerprint(&["error-rate", "svc", "GET /a"]));
        assert_ne!(a, derived_fingerprint(&["error-rate", "svc", "GET /b"]));
    }
}
