//! JVM traces: Java, Kotlin and Scala in every form the parser handles.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Relation, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Jvm, "{t:#?}");
    t
}

#[test]
fn exception_in_thread_main() {
    let text = "Exception in thread \"main\" java.lang.ArithmeticException: / by zero
\tat com.acme.pricing.PriceCalculator.unitPrice(PriceCalculator.java:42)
\tat com.acme.pricing.PriceCalculator.quote(PriceCalculator.java:27)
\tat com.acme.pricing.Main.main(Main.java:12)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "java.lang.ArithmeticException");
    assert_eq!(t.exception.message, "/ by zero");
    assert_eq!(t.thread.as_deref(), Some("main"));
    assert_eq!(t.frames.len(), 3);
    let f = &t.frames[0];
    assert_eq!(f.module.as_deref(), Some("com.acme.pricing.PriceCalculator"));
    assert_eq!(f.function, "unitPrice");
    assert_eq!(f.file.as_deref(), Some("PriceCalculator.java"));
    assert_eq!(f.line, Some(42));
    assert!(f.in_app);
    assert_eq!(t.culprit.as_ref().map(|f| f.line), Some(Some(42)));
}

const SPRING: &str = "2024-05-01 12:00:00.123 ERROR 1 --- [nio-8080-exec-3] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception [Request processing failed: java.lang.IllegalStateException: pricing failed for order 9f1c] with root cause

java.lang.IllegalStateException: pricing failed for order 9f1c
\tat com.acme.orders.OrderService.price(OrderService.java:77) ~[classes/:na]
\tat com.acme.orders.OrderController.create(OrderController.java:41) ~[classes/:na]
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method) ~[na:na]
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:77) ~[na:na]
\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885) ~[spring-webmvc-6.0.9.jar:6.0.9]
\tat org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61) ~[tomcat-embed-core-10.1.8.jar:10.1.8]
\tat java.base/java.lang.Thread.run(Thread.java:833) ~[na:na]
Caused by: java.sql.SQLException: Connection is not available, request timed out after 30000ms.
\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696) ~[HikariCP-5.0.1.jar:na]
\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181) ~[HikariCP-5.0.1.jar:na]
\tat com.acme.orders.PriceRepository.load(PriceRepository.java:33) ~[classes/:na]
\tat com.acme.orders.OrderService.price(OrderService.java:70) ~[classes/:na]
\t... 5 common frames omitted
2024-05-01 12:00:00.200  INFO 1 --- [nio-8080-exec-4] c.a.o.OrderController : GET /orders/1
";

#[test]
fn spring_boot_logback_with_cause() {
    let t = p(SPRING);
    assert_eq!(t.exception.ty, "java.lang.IllegalStateException");
    assert_eq!(t.exception.message, "pricing failed for order 9f1c");
    assert_eq!(t.frames.len(), 7);
    assert!(t.frames[0].in_app);
    assert!(!t.frames[2].in_app, "{:?}", t.frames[2]);
    assert_eq!(t.frames[2].file, None);
    assert!(!t.frames[4].in_app);
    assert_eq!(t.causes.len(), 1);
    let c = &t.causes[0];
    assert_eq!(c.ty, "java.sql.SQLException");
    assert_eq!(c.relation, Relation::Cause);
    // 4 own frames + the 5 omitted ones, copied from the enclosing trace.
    assert_eq!(c.frames.len(), 9);
    assert_eq!(c.frames[8].function, "run");
    let culprit = t.culprit.expect("culprit");
    assert_eq!(culprit.module.as_deref(), Some("com.acme.orders.PriceRepository"));
    assert_eq!(culprit.line, Some(33));
}

#[test]
fn fingerprint_ignores_timeout_numbers_and_line_shifts() {
    let a = p(SPRING);
    let shifted = SPRING
        .replace("PriceRepository.java:33", "PriceRepository.java:35")
        .replace("30000ms", "5000ms")
        .replace("9f1c", "77aa");
    let b = p(&shifted);
    assert_eq!(a.fingerprint, b.fingerprint);
    let other = SPRING.replace("PriceRepository.load", "PriceRepository.save");
    assert_ne!(a.fingerprint, p(&other).fingerprint);
}

#[test]
fn caused_by_with_more_expansion_finds_in_app_frame() {
    let text = "com.acme.billing.BillingException: could not charge
\tat com.acme.billing.Charger.charge(Charger.java:58)
\tat com.acme.billing.Api.handle(Api.java:20)
\tat java.lang.Thread.run(Thread.java:750)
Caused by: java.net.ConnectException: Connection refused
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat java.base/sun.nio.ch.Net.connect(Net.java:579)
\tat java.base/java.net.Socket.connect(Socket.java:633)
\t... 3 more
";
    let t = p(text);
    assert_eq!(t.root_cause().ty, "java.net.ConnectException");
    let root = &t.causes[0];
    assert_eq!(root.frames.len(), 6);
    assert_eq!(root.frames[3].function, "charge");
    // The innermost in-app frame of the root cause comes from the expanded frames.
    assert_eq!(
        t.culprit.map(|f| (f.function, f.line)),
        Some(("charge".into(), Some(58)))
    );
}

#[test]
fn suppressed_with_nested_cause() {
    let text = "java.io.IOException: write failed
\tat com.acme.export.Exporter.write(Exporter.java:31)
\tat com.acme.export.Exporter.run(Exporter.java:12)
\tSuppressed: java.io.IOException: close failed
\t\tat com.acme.export.Sink.close(Sink.java:40)
\t\tat com.acme.export.Exporter.run(Exporter.java:14)
\tCaused by: java.lang.IllegalStateException: already closed
\t\tat com.acme.export.Sink.flush(Sink.java:55)
\t\t... 2 more
Caused by: java.nio.file.NoSuchFileException: /data/out.csv
\tat java.base/sun.nio.fs.UnixException.translateToIOException(UnixException.java:92)
\tat com.acme.export.Exporter.open(Exporter.java:25)
\t... 2 more
";
    let t = p(text);
    let summary: Vec<(&str, Relation, bool, usize)> = t
        .causes
        .iter()
        .map(|c| (c.ty.as_str(), c.relation, c.primary, c.frames.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("java.io.IOException", Relation::Suppressed, false, 2),
            ("java.lang.IllegalStateException", Relation::Cause, false, 3),
            ("java.nio.file.NoSuchFileException", Relation::Cause, true, 4),
        ]
    );
    assert_eq!(t.root_cause().ty, "java.nio.file.NoSuchFileException");
    assert_eq!(t.culprit.map(|f| (f.function, f.line)), Some(("open".into(), Some(25))));
}

#[test]
fn lambdas_inner_classes_unknown_source_and_modules() {
    let text = "java.lang.NullPointerException: Cannot invoke \"com.acme.Item.price()\" because \"item\" is null
\tat com.acme.cart.Cart$Line.total(Cart.java:88)
\tat com.acme.cart.Cart.lambda$sum$0(Cart.java:51)
\tat com.acme.cart.Cart$$Lambda$412/0x0000000800c4e448.applyAsLong(Unknown Source)
\tat java.base/java.util.stream.ReferencePipeline$5$1.accept(ReferencePipeline.java:229)
\tat com.acme.cart.Cart$1.run(Cart.java:60)
\tat app//com.acme.cart.Main.main(Main.java:9)
\tat java.base@17.0.2/java.lang.Thread.run(Thread.java:833)
";
    let t = p(text);
    assert!(t.exception.message.contains("because \"item\" is null"));
    let f: Vec<(Option<&str>, &str, Option<u32>, bool)> = t
        .frames
        .iter()
        .map(|f| (f.module.as_deref(), f.function.as_str(), f.line, f.in_app))
        .collect();
    assert_eq!(f[0], (Some("com.acme.cart.Cart$Line"), "total", Some(88), true));
    assert_eq!(f[1], (Some("com.acme.cart.Cart"), "lambda$sum$0", Some(51), true));
    assert_eq!(f[2].0, Some("com.acme.cart.Cart$$Lambda$412/0x0000000800c4e448"));
    assert_eq!(f[2].2, None);
    assert!(!f[3].3);
    assert_eq!(f[5], (Some("com.acme.cart.Main"), "main", Some(9), true));
    assert!(!f[6].3);
}

#[test]
fn kotlin_coroutines() {
    let text = "Exception in thread \"DefaultDispatcher-worker-1\" kotlin.KotlinNullPointerException
\tat com.acme.inventory.StockService.reserve(StockService.kt:44)
\tat com.acme.inventory.StockService$reserveAll$2.invokeSuspend(StockService.kt:30)
\tat kotlin.coroutines.jvm.internal.BaseContinuationImpl.resumeWith(ContinuationImpl.kt:33)
\tat kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)
\tat kotlinx.coroutines.scheduling.CoroutineScheduler$Worker.run(CoroutineScheduler.kt:750)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "kotlin.KotlinNullPointerException");
    assert_eq!(t.exception.message, "");
    assert_eq!(t.thread.as_deref(), Some("DefaultDispatcher-worker-1"));
    assert!(t.frames[1].in_app);
    assert!(!t.frames[2].in_app);
    assert_eq!(t.culprit.map(|f| f.file), Some(Some("StockService.kt".into())));
}

#[test]
fn scala_anonfun() {
    let text = "scala.MatchError: Refund(12) (of class com.acme.pay.Refund)
\tat com.acme.pay.Ledger$.$anonfun$apply$1(Ledger.scala:23)
\tat scala.collection.immutable.List.map(List.scala:293)
\tat com.acme.pay.Ledger$.apply(Ledger.scala:21)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "scala.MatchError");
    assert_eq!(t.frames[0].module.as_deref(), Some("com.acme.pay.Ledger$"));
    assert_eq!(t.frames[0].function, "$anonfun$apply$1");
    assert!(!t.frames[1].in_app);
    assert_eq!(t.culprit.map(|f| f.line), Some(Some(23)));
}

#[test]
fn headerless_truncated_trace() {
    let text = "\tat com.acme.Worker.step(Worker.java:10)\n\tat com.acme.Worker.run(Worker.java:5)\n";
    let t = p(text);
    assert_eq!(t.exception.ty, "");
    assert_eq!(t.frames.len(), 2);
}

#[test]
fn multi_line_message_and_unqualified_log_header() {
    let text = "java.lang.IllegalArgumentException: invalid order:
  quantity must be positive
  sku must not be blank
\tat com.acme.Validator.check(Validator.java:19)
";
    let t = p(text);
    assert_eq!(
        t.exception.message,
        "invalid order:\n  quantity must be positive\n  sku must not be blank"
    );
    let jul = "May 01, 2024 12:00:00 PM com.acme.Feeder run\nSEVERE: feed failed: TimeoutException: no answer in 5s\n\tat com.acme.Feeder.run(Feeder.java:50)\n";
    let t = p(jul);
    assert_eq!(t.exception.ty, "TimeoutException");
    assert_eq!(t.exception.message, "no answer in 5s");
}

#[test]
fn app_packages_from_catalog() {
    let text = "java.lang.RuntimeException: boom
\tat io.vendor.sdk.Client.call(Client.java:10)
\tat com.acme.svc.Handler.handle(Handler.java:20)
\tat org.acme.other.Thing.go(Thing.java:30)
";
    let opts = ParseOptions {
        source_roots: vec![],
        app_packages: vec!["com.acme".into()],
    };
    let t = parse(text, &opts).expect("trace");
    let flags: Vec<bool> = t.frames.iter().map(|f| f.in_app).collect();
    assert_eq!(flags, [false, true, false]);
    assert_eq!(t.culprit.map(|f| f.function), Some("handle".into()));
}

#[test]
fn circular_reference_is_skipped() {
    let text = "java.lang.RuntimeException: outer
\tat com.acme.A.a(A.java:1)
Caused by: java.lang.IllegalStateException: inner
\tat com.acme.B.b(B.java:2)
\t[CIRCULAR REFERENCE: java.lang.RuntimeException: outer]
";
    let t = p(text);
    assert_eq!(t.causes.len(), 1);
    assert_eq!(t.culprit.map(|f| f.function), Some("b".into()));
}
