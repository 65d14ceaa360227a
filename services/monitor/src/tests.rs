//! Behaviour of the whole monitor on the pricing-api fixtures.

use std::sync::Arc;
use std::time::Duration;

use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Anomaly, AnomalyKind, Severity, TelemetryEvent};

use crate::testdata::*;
use crate::{MemoryStateStore, Monitor, MonitorConfig, fingerprint_of};

fn feed(m: &Monitor, events: impl IntoIterator<Item = TelemetryEvent>) -> Vec<Anomaly> {
    events.into_iter().flat_map(|e| m.observe(&e).unwrap()).collect()
}

fn ok(ts: i64) -> TelemetryEvent {
    fixture_ok_span(ts, &format!("{:032x}", ts))
}

fn fail(ts: i64) -> TelemetryEvent {
    fixture_failing_span(ts, &format!("f{:031x}", ts), "0.0")
}

/// 20 ok spans and 2 failing ones over 2.2 s, the first failure after 10 requests.
fn first_burst() -> Vec<TelemetryEvent> {
    let mut v = Vec::new();
    for i in 0..22 {
        let ts = T0 + i * 100;
        v.push(if i == 10 || i == 21 { fail(ts) } else { ok(ts) });
    }
    v
}

#[test]
fn first_failures_open_exactly_one_incident_with_evidence() {
    let m = Monitor::new(MonitorConfig::default());
    let out = feed(&m, first_burst());
    assert_eq!(out.len(), 1, "{out:#?}");
    let a = &out[0];
    assert_eq!(a.signals, vec![AnomalyKind::NewFingerprint, AnomalyKind::ErrorRate]);
    assert_eq!(a.service, "pricing-api");
    assert_eq!(a.operation.as_deref(), Some("POST /price"));
    assert_eq!(a.service_version.as_deref(), Some("8e91235"));
    assert_eq!(Some(a.fingerprint.clone()), fingerprint_of(&fail(T0)));
    // Opened on the first failure, with the counts of the window so far.
    assert_eq!((a.error_count, a.request_count), (1, 11));
    assert!((a.error_rate - 1.0 / 11.0).abs() < 1e-9);
    assert_eq!(a.baseline_error_rate, 0.0);
    assert_eq!(
        a.summary,
        "error rate 9.1% (baseline 0.0%) on POST /price; new fingerprint ZeroDivisionError@calc"
    );
    assert!(
        a.window_start_ms < T0 + 1000 && a.window_end_ms >= T0 + 1000,
        "{} {}",
        a.window_start_ms,
        a.window_end_ms
    );
    let exc = a.exception.as_ref().unwrap();
    assert_eq!(exc.r#type, "ZeroDivisionError");
    assert_eq!(exc.message, "float division by zero");
    assert!(
        exc.stacktrace
            .as_ref()
            .unwrap()
            .contains("pricing_logic.py\", line 14, in calc")
    );
    assert_eq!(a.sample_trace_ids, vec![format!("f{:031x}", T0 + 1000)]);
    assert_eq!(a.sample_inputs.len(), 1);
    assert_eq!(
        a.sample_inputs[0].get("pricing.discount").map(String::as_str),
        Some("0.0")
    );
    assert!(!a.sample_inputs[0].contains_key("url.path"));
    assert!(
        a.evidence
            .iter()
            .any(|e| e.kind == "input" && e.detail.contains("pricing.discount=0.0")),
        "{:?}",
        a.evidence
    );
    assert!(
        a.evidence
            .iter()
            .any(|e| e.kind == "exception" && e.detail.contains("in calc (pricing_logic.py:14)"))
    );
    assert_eq!(a.timeline.first_error_ms, Some(T0 + 1000));
    assert!(a.timeline.anomaly_ms.is_some_and(|t| t > 0));
    assert_eq!(a.detected_ms, a.timeline.anomaly_ms.unwrap());
    let id = uuid::Uuid::parse_str(&a.incident_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
}

#[test]
fn a_first_failure_below_the_rate_threshold_is_still_reported_as_new() {
    // 1 failure in 21 requests is 4.8 %, under baseline 0 + 5 %: only the new fingerprint.
    let m = Monitor::new(MonitorConfig::default());
    let mut v: Vec<_> = (0..20).map(|i| ok(T0 + i * 10)).collect();
    v.push(fail(T0 + 200));
    let out = feed(&m, v);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].signals, vec![AnomalyKind::NewFingerprint]);
    assert_eq!((out[0].error_count, out[0].request_count), (1, 21));
}

#[test]
fn more_failures_and_their_log_records_join_the_open_incident() {
    let m = Monitor::new(MonitorConfig::default());
    assert_eq!(feed(&m, first_burst()).len(), 1);
    let more: Vec<_> = (0..10).map(|i| fail(T0 + 3000 + i * 100)).collect();
    // The log records of those same failures (same trace and span ids) count once.
    let logs: Vec<_> = more
        .iter()
        .map(|s| {
            let mut l = fixture_error_log(s.timestamp_ms, s.trace_id.as_deref().unwrap());
            l.span_id = s.span_id.clone();
            l
        })
        .collect();
    assert!(feed(&m, more).is_empty());
    assert!(feed(&m, logs).is_empty());
    let open = m.open_incidents();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].occurrences, 12);
    assert_eq!(open[0].first_error_ms, T0 + 1000);
}

#[test]
fn after_a_quiet_period_the_same_failure_opens_a_second_incident() {
    let m = Monitor::new(MonitorConfig::default());
    let first = feed(&m, first_burst());
    let later = T0 + 2100 + 61_000;
    // Healthy traffic keeps flowing; the incident closes, nothing is emitted.
    assert!(feed(&m, (0..10).map(|i| ok(later - 1000 + i * 100))).is_empty());
    assert!(
        m.open_incidents().is_empty(),
        "the healthy traffic's event time closed it"
    );
    let again = feed(&m, [fail(later + 100)]);
    assert_eq!(again.len(), 1, "{again:#?}");
    let a = &again[0];
    assert_ne!(a.incident_id, first[0].incident_id);
    assert_eq!(a.fingerprint, first[0].fingerprint);
    assert_eq!(
        a.signals,
        vec![AnomalyKind::ErrorRate],
        "not new any more, but above baseline"
    );
    assert!(
        a.summary.contains("recurring fingerprint ZeroDivisionError@calc"),
        "{}",
        a.summary
    );
    assert!(a.evidence.iter().any(|e| e.kind == "recurrence"));
    assert_eq!(m.open_incidents().len(), 1);
}

#[test]
fn a_known_failure_reappearing_under_the_rate_threshold_needs_min_errors() {
    let m = Monitor::new(MonitorConfig::default());
    feed(&m, first_burst());
    let later = T0 + 100_000;
    // 200 ok requests in the window: 1 or 2 failures stay under 5 %.
    assert!(feed(&m, (0..200).map(|i| ok(later + i * 10))).is_empty());
    assert!(feed(&m, [fail(later + 2000), fail(later + 2100)]).is_empty());
    let out = feed(&m, [fail(later + 2200)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].timeline.first_error_ms, Some(later + 2000));
    assert_eq!(out[0].error_count, 3);
}

#[test]
fn a_different_exception_is_a_different_incident() {
    let m = Monitor::new(MonitorConfig::default());
    let first = feed(&m, first_burst());
    let mut other = fail(T0 + 2500);
    let exc = other.exception.as_mut().unwrap();
    exc.r#type = "KeyError".into();
    exc.message = "'currency'".into();
    exc.stacktrace = Some(
        FIXTURE_STACKTRACE
            .replace("in calc", "in lookup")
            .replace("ZeroDivisionError: float division by zero", "KeyError: 'currency'"),
    );
    let out = feed(&m, [other]);
    assert_eq!(out.len(), 1);
    assert_ne!(out[0].fingerprint, first[0].fingerprint);
    assert!(out[0].signals.contains(&AnomalyKind::NewFingerprint));
    assert!(out[0].summary.contains("KeyError@lookup"), "{}", out[0].summary);
    assert_eq!(m.open_incidents().len(), 2);
}

#[test]
fn line_shifts_do_not_open_a_new_incident() {
    let m = Monitor::new(MonitorConfig::default());
    feed(&m, first_burst());
    let mut shifted = fail(T0 + 2500);
    shifted.exception.as_mut().unwrap().stacktrace = Some(
        FIXTURE_STACKTRACE
            .replace("line 14", "line 16")
            .replace("line 62", "line 70"),
    );
    assert!(feed(&m, [shifted]).is_empty());
    assert_eq!(m.open_incidents()[0].occurrences, 3);
}

#[test]
fn log_records_give_template_evidence() {
    let cfg = MonitorConfig {
        log_warmup_lines: 5,
        ..MonitorConfig::default()
    };
    let m = Monitor::new(cfg);
    for i in 0..6 {
        feed(
            &m,
            [log_line(
                T0 + i,
                Severity::Info,
                &format!("served POST /price in {i} ms"),
            )],
        );
    }
    feed(&m, (0..10).map(|i| ok(T0 + 100 + i * 10)));
    // The log record arrives before its span: it opens the incident itself.
    let out = feed(&m, [fixture_error_log(T0 + 500, "16e3cedc324b07dee46fea0010d98b59")]);
    assert_eq!(out.len(), 1, "{out:#?}");
    let a = &out[0];
    assert_eq!(a.operation.as_deref(), Some("POST /price"));
    assert_eq!(
        a.signals,
        vec![AnomalyKind::NewFingerprint, AnomalyKind::NewLogTemplate]
    );
    assert_eq!(a.log_templates.len(), 1);
    assert!(
        a.log_templates[0].template.starts_with("POST /price failed for item"),
        "{}",
        a.log_templates[0].template
    );
    assert_eq!(a.log_templates[0].count, 1);
    assert!(a.log_templates[0].examples[0].contains("discount=0.0"));
    assert!(
        a.evidence
            .iter()
            .any(|e| e.kind == "log_template" && e.detail.contains("new"))
    );
    assert_eq!(
        a.sample_inputs[0].get("pricing.discount").map(String::as_str),
        Some("0.0")
    );
    assert_eq!(a.sample_trace_ids, vec!["16e3cedc324b07dee46fea0010d98b59".to_string()]);
    // Its span, arriving later, is the same failure.
    let mut span = fixture_failing_span(T0 + 499, "16e3cedc324b07dee46fea0010d98b59", "0.0");
    span.span_id = Some(format!("{:016x}", T0 + 500));
    assert!(feed(&m, [span]).is_empty());
    assert_eq!(m.open_incidents()[0].occurrences, 1);
}

#[test]
fn a_new_error_log_template_alone_opens_an_incident() {
    let cfg = MonitorConfig {
        log_warmup_lines: 5,
        ..MonitorConfig::default()
    };
    let m = Monitor::new(cfg);
    for i in 0..6 {
        assert!(
            feed(
                &m,
                [log_line(
                    T0 + i,
                    Severity::Info,
                    &format!("served POST /price in {i} ms")
                )]
            )
            .is_empty()
        );
    }
    // Warnings are evidence, not incidents.
    assert!(feed(&m, [log_line(T0 + 10, Severity::Warn, "cache miss ratio high: 0.7")]).is_empty());
    let out = feed(
        &m,
        [log_line(
            T0 + 20,
            Severity::Error,
            "database connection to 10.1.2.3:5432 refused",
        )],
    );
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.signals, vec![AnomalyKind::NewLogTemplate]);
    assert!(a.exception.is_none());
    assert!(a.summary.contains("new log template at Error"), "{}", a.summary);
    assert!(
        a.log_templates
            .iter()
            .any(|t| t.template.contains("database connection"))
    );
    // The same template again belongs to that incident.
    assert!(
        feed(
            &m,
            [log_line(
                T0 + 30,
                Severity::Error,
                "database connection to 10.1.2.4:5432 refused"
            )]
        )
        .is_empty()
    );
    assert_eq!(m.open_incidents()[0].occurrences, 2);
}

#[test]
fn failed_requests_without_an_exception_open_an_error_rate_incident() {
    let m = Monitor::new(MonitorConfig::default());
    let mut v: Vec<_> = (0..20).map(|i| ok(T0 + i * 10)).collect();
    for i in 0..3 {
        let mut f = fail(T0 + 300 + i * 10);
        f.exception = None;
        f.status = selfheal_events::SpanStatus::Unset; // the HTTP status alone says it failed
        v.push(f);
    }
    let out = feed(&m, v);
    assert_eq!(out.len(), 1, "opens only at min_errors failures: {out:#?}");
    let a = &out[0];
    assert_eq!(a.signals, vec![AnomalyKind::ErrorRate]);
    assert_eq!((a.error_count, a.request_count), (3, 23));
    assert_eq!(
        a.fingerprint,
        crate::fingerprint::derived_fingerprint(&["error-rate", "pricing-api", "POST /price"])
    );
    assert_eq!(a.timeline.first_error_ms, Some(T0 + 300));
    assert_eq!(a.sample_trace_ids.len(), 3);
    assert!(a.exception.is_none());
}

#[test]
fn empty_service_is_dead_lettered() {
    let m = Monitor::new(MonitorConfig::default());
    let mut e = selfheal_events::examples::telemetry_event();
    e.service = "  ".into();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let r = rt.block_on(m.process(e, &RecordContext::default()));
    match r {
        Err(StageError::Invalid(reason)) => assert!(reason.contains("empty service name"), "{reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn redelivery_of_the_opening_record_repeats_the_same_incident() {
    let m = Monitor::new(MonitorConfig::default());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let e = selfheal_events::examples::telemetry_event();
    let ctx = RecordContext {
        topic: "telemetry.raw".into(),
        offset: 7,
        ..RecordContext::default()
    };
    let a = rt.block_on(m.process(e.clone(), &ctx)).unwrap();
    assert_eq!(a.len(), 1);
    // Retried after a failed publish: the same anomaly, not a second incident.
    let b = rt
        .block_on(m.process(
            e.clone(),
            &RecordContext {
                attempt: 1,
                ..ctx.clone()
            },
        ))
        .unwrap();
    assert_eq!(a, b);
    // The same record at another offset (a duplicate): nothing new.
    let c = rt.block_on(m.process(e, &RecordContext { offset: 8, ..ctx })).unwrap();
    assert!(c.is_empty());
    assert_eq!(m.open_incidents().len(), 1);
}

#[test]
fn replays_give_the_same_incidents() {
    let run = || {
        let m = Monitor::new(MonitorConfig::default());
        let mut events = first_burst();
        events.extend((0..30).map(|i| fail(T0 + 80_000 + i * 50)));
        feed(&m, events)
            .into_iter()
            .map(|a| {
                (
                    a.fingerprint,
                    a.signals,
                    a.error_count,
                    a.request_count,
                    a.window_start_ms,
                    a.sample_trace_ids,
                    a.timeline.first_error_ms,
                )
            })
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a.len(), 2);
    assert_eq!(a, run());
}

#[test]
fn skewed_clocks_and_late_events() {
    let m = Monitor::new(MonitorConfig::default());
    // A span stamped a day in the future by a broken clock uses the collector's time.
    let mut skewed = ok(T0 + 86_400_000);
    skewed.observed_ms = T0 + 50;
    feed(&m, [skewed]);
    feed(&m, (0..9).map(|i| ok(T0 + 100 + i * 10)));
    // A late failure (older than the others) is still counted in the window.
    let out = feed(&m, [fail(T0 - 3000)]);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].error_count, out[0].request_count), (1, 11));
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = MonitorConfig {
        state_dir: Some(dir.path().to_path_buf()),
        log_warmup_lines: 0,
        ..MonitorConfig::default()
    };
    let m = Monitor::new(cfg.clone());
    let first = feed(&m, first_burst());
    assert_eq!(first.len(), 1);
    feed(
        &m,
        [log_line(
            T0 + 2200,
            Severity::Error,
            "db connection to 10.0.0.1 refused",
        )],
    );
    let templates = |m: &Monitor| {
        m.with_detector(|d| {
            let mut t: Vec<(u64, String)> = d
                .log_templates()
                .signals()
                .miner("pricing-api")
                .unwrap()
                .templates()
                .map(|t| (t.id, t.text.clone()))
                .collect();
            t.sort();
            t
        })
    };
    let before = templates(&m);
    assert_eq!(before.len(), 1);
    m.save_state().unwrap();
    drop(m);

    let m = Monitor::new(cfg.clone());
    assert_eq!(templates(&m), before);
    // The open incident is still open: a replayed failure emits nothing.
    assert!(feed(&m, [fail(T0 + 3000)]).is_empty());
    assert_eq!(m.open_incidents()[0].incident_id, first[0].incident_id);
    // Templates kept their ids: the same log template is not new.
    let out = feed(
        &m,
        [log_line(
            T0 + 3100,
            Severity::Error,
            "db connection to 10.0.0.2 refused",
        )],
    );
    assert!(out.is_empty(), "{out:#?}");
    // After the quiet period the fingerprint is known: a recurrence, not a new fingerprint.
    let later = T0 + 200_000;
    let out = feed(&m, (0..3).map(|i| fail(later + i * 100)));
    assert_eq!(out.len(), 1);
    assert!(
        !out[0].signals.contains(&AnomalyKind::NewFingerprint),
        "{:?}",
        out[0].signals
    );

    // A monitor without the state directory sees it as new.
    let fresh = Monitor::new(MonitorConfig::default());
    let out = feed(&fresh, [fail(later)]);
    assert!(out[0].signals.contains(&AnomalyKind::NewFingerprint));
}

#[test]
fn state_is_saved_periodically_through_the_stage() {
    let store = MemoryStateStore::default();
    let cfg = MonitorConfig {
        state_save_interval: Duration::ZERO,
        ..MonitorConfig::default()
    };
    let m = Monitor::with_store(cfg.clone(), Arc::new(store.clone())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let e = selfheal_events::examples::telemetry_event();
    assert_eq!(
        rt.block_on(m.process(e.clone(), &RecordContext::default()))
            .unwrap()
            .len(),
        1
    );
    let saved = crate::StateStore::load(&store).unwrap().unwrap();
    assert_eq!(saved.open.len(), 1);
    assert_eq!(saved.seen.get("pricing-api").map(Vec::len), Some(1));
    let m2 = Monitor::with_store(cfg, Arc::new(store)).unwrap();
    assert!(m2.observe(&e).unwrap().is_empty());
}

#[test]
fn memory_is_bounded() {
    let cfg = MonitorConfig {
        max_services: 16,
        max_operations: 8,
        ..MonitorConfig::default()
    };
    let m = Monitor::new(cfg);
    for s in 0..100 {
        for op in 0..20 {
            let mut e = ok(T0 + s * 20 + op);
            e.service = format!("svc-{s}");
            e.name = format!("GET /items/{op}");
            m.observe(&e).unwrap();
        }
    }
    let (services, operations) = m.with_detector(|d| d.tracked());
    assert!(services <= 16, "{services}");
    assert!(operations <= 16 * 8, "{operations}");
    assert!(operations > 0);
}

#[test]
fn handled_exceptions_on_successful_requests_are_not_failures() {
    let m = Monitor::new(MonitorConfig::default());
    let mut handled = fail(T0);
    handled.status = selfheal_events::SpanStatus::Unset;
    handled
        .attributes
        .insert("http.response.status_code".into(), "200".into());
    assert!(feed(&m, [handled.clone()]).is_empty());
    let mut warn_log = fixture_error_log(T0 + 10, "abc");
    warn_log.severity = Severity::Warn;
    assert!(feed(&m, [warn_log]).is_empty());
    assert!(m.open_incidents().is_empty());
    // The same exception on a failing request is new: handled ones did not mark it seen.
    let out = feed(&m, [fail(T0 + 20)]);
    assert_eq!(out[0].signals, vec![AnomalyKind::NewFingerprint]);
}
