//! Rust panics, backtraces and anyhow reports.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Rust, "{t:#?}");
    t
}

#[test]
fn panic_without_backtrace() {
    let text = "thread 'main' panicked at src/pricing.rs:14:5:
attempt to divide by zero
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
";
    let t = p(text);
    assert_eq!(t.exception.ty, "panic");
    assert_eq!(t.exception.message, "attempt to divide by zero");
    assert_eq!(t.thread.as_deref(), Some("main"));
    assert_eq!(t.frames.len(), 1);
    let f = &t.frames[0];
    assert_eq!(
        (f.function.as_str(), f.file.as_deref(), f.line, f.column),
        ("", Some("src/pricing.rs"), Some(14), Some(5))
    );
    assert!(f.in_app);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn panic_messages_distinguish_location_only_fingerprints() {
    let a = p("thread 'main' panicked at src/a.rs:1:1:\nindex out of bounds: the len is 1 but the index is 2\n");
    let b = p("thread 'main' panicked at src/a.rs:9:1:\nindex out of bounds: the len is 3 but the index is 7\n");
    let c = p("thread 'main' panicked at src/a.rs:9:1:\ncalled `Option::unwrap()` on a `None` value\n");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn newer_thread_id_and_multi_line_assert() {
    let text = "thread 'pricing::tests::rounds' (31207) panicked at src/pricing.rs:88:9:
assertion `left == right` failed
  left: 3
 right: 4
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
";
    let t = p(text);
    assert_eq!(t.thread.as_deref(), Some("pricing::tests::rounds"));
    assert_eq!(
        t.exception.message,
        "assertion `left == right` failed\n  left: 3\n right: 4"
    );
}

#[test]
fn old_format_with_quoted_message() {
    let t = p(
        "thread '<unnamed>' panicked at 'called `Result::unwrap()` on an `Err` value: Os { code: 2 }', src/config.rs:20:40\n",
    );
    assert_eq!(t.thread.as_deref(), Some("<unnamed>"));
    assert_eq!(
        t.exception.message,
        "called `Result::unwrap()` on an `Err` value: Os { code: 2 }"
    );
    assert_eq!(t.frames[0].line, Some(20));
    let t = p("thread 'main' panicked at 'first line\nsecond line', src/main.rs:3:5\n");
    assert_eq!(t.exception.message, "first line\nsecond line");
}

#[test]
fn short_backtrace() {
    let text = "thread 'tokio-runtime-worker' panicked at src/handlers/price.rs:42:18:
called `Option::unwrap()` on a `None` value
stack backtrace:
   0: rust_begin_unwind
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/panicking.rs:665:5
   1: core::panicking::panic_fmt
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/panicking.rs:74:14
   2: core::panicking::panic
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/panicking.rs:148:5
   3: core::option::unwrap_failed
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/option.rs:2015:5
   4: pricing_api::handlers::price::quote
             at ./src/handlers/price.rs:42:18
   5: pricing_api::handlers::price::handler::{{closure}}
             at ./src/handlers/price.rs:20:5
   6: <axum::handler::future::IntoServiceFuture<F> as core::future::future::Future>::poll
             at /home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/axum-0.7.5/src/handler/future.rs:36:5
   7: tokio::runtime::task::core::Core<T,S>::poll
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
";
    let t = p(text);
    assert_eq!(t.frames.len(), 8);
    let f = &t.frames[4];
    assert_eq!(f.module.as_deref(), Some("pricing_api::handlers::price"));
    assert_eq!(f.function, "quote");
    assert_eq!(f.file.as_deref(), Some("./src/handlers/price.rs"));
    assert!(f.in_app);
    assert_eq!(t.frames[5].function, "{{closure}}");
    assert!(!t.frames[0].in_app);
    assert!(!t.frames[3].in_app);
    assert!(!t.frames[6].in_app);
    assert!(!t.frames[7].in_app);
    assert_eq!(
        t.culprit.map(|f| (f.function, f.line)),
        Some(("quote".into(), Some(42)))
    );
}

#[test]
fn full_backtrace_with_addresses_and_hashes() {
    let text = "thread 'main' panicked at /home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_json-1.0.120/src/value/index.rs:102:18:
cannot index into a string
stack backtrace:
   0:     0x55d4f8c3b1e3 - std::backtrace_rs::backtrace::libunwind::trace::h1e2b8f3a7c5d9e0f
                               at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/../../backtrace/src/backtrace/libunwind.rs:116:5
   1:     0x55d4f8c2a1b2 - serde_json::value::index::Index::index_into::h0a1b2c3d4e5f6a7b
                               at /home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_json-1.0.120/src/value/index.rs:102:18
   2:     0x55d4f8c2a0f1 - config_loader::read_port::h9f8e7d6c5b4a3928
                               at /home/dev/config-loader/src/lib.rs:31:16
   3:     0x55d4f8c29e55 - config_loader::main::h1122334455667788
                               at /home/dev/config-loader/src/main.rs:8:5
   4:     0x7f3a2b1c4d90 - __libc_start_main
   5:     0x55d4f8c29a35 - _start
   6:                0x0 - <unknown>
";
    let t = p(text);
    assert_eq!(t.frames[0].function, "trace");
    assert_eq!(t.frames[2].module.as_deref(), Some("config_loader"));
    assert_eq!(t.frames[2].function, "read_port");
    // The panic location (in a dependency) is also frame 1: no extra frame.
    assert_eq!(t.frames.len(), 7);
    assert!(!t.frames[4].in_app);
    assert!(!t.frames[6].in_app);
    assert_eq!(
        t.culprit.map(|f| (f.function, f.line)),
        Some(("read_port".into(), Some(31)))
    );
}

#[test]
fn track_caller_location_not_in_backtrace_is_prepended() {
    let text = "thread 'main' panicked at src/main.rs:7:10:
boom
stack backtrace:
   0: rust_begin_unwind
   1: app::main
   2: core::ops::function::FnOnce::call_once
";
    let t = p(text);
    assert_eq!(t.frames.len(), 4);
    assert_eq!(t.frames[0].file.as_deref(), Some("src/main.rs"));
    assert_eq!(t.culprit.and_then(|f| f.line), Some(7));
}

#[test]
fn anyhow_report_from_main() {
    let text = "Error: failed to load pricing rules

Caused by:
    0: reading /etc/pricing/rules.toml
    1: No such file or directory (os error 2)

Stack backtrace:
   0: anyhow::error::<impl anyhow::Error>::msg
             at /home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/anyhow-1.0.86/src/error.rs:83:36
   1: pricing::rules::load
             at ./src/rules.rs:12:9
   2: pricing::main
             at ./src/main.rs:4:5
";
    let t = p(text);
    assert_eq!(t.exception.ty, "Error");
    assert_eq!(t.exception.message, "failed to load pricing rules");
    let msgs: Vec<&str> = t.causes.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "reading /etc/pricing/rules.toml",
            "No such file or directory (os error 2)"
        ]
    );
    assert_eq!(t.root_cause().message, "No such file or directory (os error 2)");
    assert_eq!(t.culprit.map(|f| f.function), Some("load".into()));
}

#[test]
fn stack_overflow() {
    let t = p("\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow\n");
    assert_eq!(t.exception.ty, "stack overflow");
    assert!(t.frames.is_empty());
}

#[test]
fn a_plain_error_line_is_not_a_trace() {
    assert!(parse("Error: invalid config", &ParseOptions::default()).is_none());
}
