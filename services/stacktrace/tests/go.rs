//! Go panics and goroutine dumps.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Relation, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Go, "{t:#?}");
    t
}

#[test]
fn runtime_error_divide_by_zero() {
    let text = "panic: runtime error: integer divide by zero

goroutine 1 [running]:
main.unitPrice(...)
\t/src/pricing/price.go:14
main.main()
\t/src/pricing/main.go:9 +0x1d
exit status 2
";
    let t = p(text);
    assert_eq!(t.exception.ty, "runtime.Error");
    assert_eq!(t.exception.message, "runtime error: integer divide by zero");
    assert_eq!(t.thread.as_deref(), Some("goroutine 1"));
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.frames[0].module.as_deref(), Some("main"));
    assert_eq!(t.frames[0].function, "unitPrice");
    assert_eq!(t.frames[0].file.as_deref(), Some("/src/pricing/price.go"));
    assert_eq!(t.frames[0].line, Some(14));
    assert!(t.frames[0].in_app);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(14)));
}

#[test]
fn nil_pointer_with_signal_in_http_handler() {
    let text = "2024/05/01 12:00:00 http: panic serving 10.0.0.7:51234: runtime error: invalid memory address or nil pointer dereference
goroutine 34 [running]:
net/http.(*conn).serve.func1()
\t/usr/local/go/src/net/http/server.go:1898 +0xbe
panic({0x6c5a40?, 0x9b3e70?})
\t/usr/local/go/src/runtime/panic.go:770 +0x132
github.com/acme/pricing/internal/handlers.(*PriceHandler).ServeHTTP(0x0, {0x7a1c38, 0xc0001c2000}, 0xc0001b6000)
\t/build/internal/handlers/price.go:42 +0x5a
net/http.serverHandler.ServeHTTP({0xc000190000?}, {0x7a1c38?, 0xc0001c2000?}, 0x6?)
\t/usr/local/go/src/net/http/server.go:3137 +0x8e
net/http.(*conn).serve(0xc0001a4000, {0x7a2418, 0xc000180f00})
\t/usr/local/go/src/net/http/server.go:2039 +0x5e8
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4
";
    let t = p(text);
    assert_eq!(t.exception.ty, "runtime.Error");
    assert!(t.exception.message.contains("nil pointer dereference"));
    assert_eq!(t.thread.as_deref(), Some("goroutine 34"));
    assert_eq!(t.frames.len(), 6);
    let c = t.culprit.expect("culprit");
    assert_eq!(c.module.as_deref(), Some("github.com/acme/pricing/internal/handlers"));
    assert_eq!(c.function, "(*PriceHandler).ServeHTTP");
    assert_eq!(c.line, Some(42));
    assert_eq!(t.frames[5].function, "(*Server).Serve");
    assert!(!t.frames[5].in_app);
}

#[test]
fn sigsegv_line_is_kept_in_message() {
    let text = "panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x47e2b3]

goroutine 1 [running]:
main.(*Cart).Total(...)
\t/app/cart.go:21
main.main()
\t/app/main.go:11 +0x13
";
    let t = p(text);
    assert!(
        t.exception
            .message
            .ends_with("[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x47e2b3]")
    );
    assert_eq!(t.frames[0].function, "(*Cart).Total");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(21)));
}

#[test]
fn several_goroutines_pick_the_panicking_one() {
    let text = "panic: stock service unavailable

goroutine 18 [running]:
github.com/acme/shop/stock.(*Client).Reserve(0xc0000a2000, {0xc0000b4000, 0x6})
\t/home/runner/work/shop/shop/stock/client.go:77 +0x1e5
github.com/acme/shop/orders.Place.func1()
\t/home/runner/work/shop/shop/orders/place.go:33 +0x45
created by github.com/acme/shop/orders.Place in goroutine 1
\t/home/runner/work/shop/shop/orders/place.go:30 +0x9c

goroutine 1 [chan receive, 2 minutes]:
main.main()
\t/home/runner/work/shop/shop/main.go:20 +0x88

goroutine 7 [select]:
github.com/acme/shop/metrics.loop()
\t/home/runner/work/shop/shop/metrics/loop.go:12 +0x70
";
    let t = p(text);
    assert_eq!(t.exception.ty, "panic");
    assert_eq!(t.exception.message, "stock service unavailable");
    assert_eq!(t.thread.as_deref(), Some("goroutine 18"));
    assert_eq!(t.frames.len(), 3);
    assert_eq!(t.frames[1].function, "Place.func1");
    assert_eq!(t.frames[2].function, "Place");
    assert_eq!(t.culprit.map(|f| f.function), Some("(*Client).Reserve".into()));
}

#[test]
fn recovered_and_repanicked() {
    let text = "panic: order 42 not found [recovered]
\tpanic: order 42 not found

goroutine 1 [running]:
main.handle.func1()
\t/app/main.go:15 +0x95
panic({0x4a0b20?, 0xc000012345?})
\t/usr/local/go/src/runtime/panic.go:914 +0x21f
main.lookup(0x2a)
\t/app/main.go:9 +0x65
main.handle()
\t/app/main.go:18 +0x3a
";
    let t = p(text);
    assert_eq!(t.causes.len(), 1);
    assert_eq!(t.causes[0].relation, Relation::Recovered);
    assert_eq!(t.exception.message, "order 42 not found");
    // The re-panicking deferred function is the innermost in-app frame.
    assert_eq!(t.culprit.map(|f| f.function), Some("handle.func1".into()));
    assert!(!t.frames[1].in_app);
}

#[test]
fn fatal_error_concurrent_map_writes_with_gp_headers() {
    let text = "fatal error: concurrent map writes

goroutine 21 gp=0xc000007a80 m=5 mp=0xc000100008 [running]:
runtime.fatal({0x4b6b5a?, 0x0?})
\t/usr/local/go/src/runtime/panic.go:1031 +0x5c fp=0xc00004af40 sp=0xc00004af10 pc=0x43b4dc
main.(*Cache).Put(...)
\t/app/cache.go:31
main.worker(0xc000012120, 0x3)
\t/app/main.go:22 +0x58 fp=0xc00004afc8 sp=0xc00004af70 pc=0x48f2b8
...additional frames elided...
created by main.main in goroutine 1
\t/app/main.go:40 +0x65
";
    let t = p(text);
    assert_eq!(t.exception.ty, "fatal error");
    assert_eq!(t.exception.message, "concurrent map writes");
    assert_eq!(t.thread.as_deref(), Some("goroutine 21"));
    assert_eq!(t.frames.len(), 4);
    assert!(!t.frames[0].in_app);
    assert_eq!(
        t.culprit.map(|f| (f.function, f.line)),
        Some(("(*Cache).Put".into(), Some(31)))
    );
}

#[test]
fn deadlock_without_running_goroutine() {
    let text = "fatal error: all goroutines are asleep - deadlock!

goroutine 1 [chan receive]:
main.main()
\t/app/main.go:7 +0x2d
exit status 2
";
    let t = p(text);
    assert_eq!(t.exception.message, "all goroutines are asleep - deadlock!");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(7)));
}

#[test]
fn typed_panic_value_and_trimpath_modules() {
    let text = "panic: (*errors.errorString) 0xc000010250

goroutine 1 [running]:
gopkg.in/yaml.v3.(*decoder).unmarshal(0xc0000b2000, 0xc0000b4000)
\tgopkg.in/yaml.v3@v3.0.1/decode.go:470 +0x3c
github.com/acme/svc/config.Load({0x5231a0, 0xb})
\tgithub.com/acme/svc/config/load.go:25 +0x8f
main.main()
\tgithub.com/acme/svc/main.go:12 +0x25
";
    let t = p(text);
    assert_eq!(t.exception.ty, "*errors.errorString");
    assert_eq!(t.frames[0].module.as_deref(), Some("gopkg.in/yaml.v3"));
    assert!(!t.frames[0].in_app);
    assert!(t.frames[1].in_app);
    assert_eq!(t.culprit.map(|f| f.function), Some("Load".into()));
}

#[test]
fn app_packages_decide_in_app() {
    let text = "panic: boom

goroutine 1 [running]:
github.com/vendorco/sdk.Do()
\t/build/sdk/do.go:5 +0x1
github.com/acme/svc/api.Handle()
\t/build/api/handle.go:9 +0x1
";
    let opts = ParseOptions {
        source_roots: vec![],
        app_packages: vec!["github.com/acme/svc".into()],
    };
    let t = parse(text, &opts).expect("trace");
    assert!(!t.frames[0].in_app);
    assert!(t.frames[1].in_app);
}

#[test]
fn panic_without_dump_only_for_runtime_errors() {
    assert!(parse("panic: something happened", &ParseOptions::default()).is_none());
    let t = p("panic: runtime error: index out of range [5] with length 3\n");
    assert!(t.frames.is_empty());
    assert_eq!(t.fingerprint.len(), 16);
}

#[test]
fn truncated_dump_without_panic_line() {
    let text = "goroutine 9 [running]:\nmain.step()\n\t/app/step.go:3 +0x1\n";
    let t = p(text);
    assert_eq!(t.exception.ty, "");
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(3)));
}
