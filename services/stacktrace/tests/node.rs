//! Node.js / V8 traces.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Relation, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Node, "{t:#?}");
    t
}

#[test]
fn uncaught_type_error_with_source_excerpt() {
    let text = "/app/src/pricing.js:14
    return order.items.reduce((sum, i) => sum + i.price, 0) / order.count;
                       ^

TypeError: Cannot read properties of undefined (reading 'reduce')
    at unitPrice (/app/src/pricing.js:14:24)
    at Object.<anonymous> (/app/src/index.js:5:13)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at Module._extensions..js (node:internal/modules/cjs/loader:1310:10)
    at node:internal/main/run_main_module:23:47

Node.js v20.11.0
";
    let t = p(text);
    assert_eq!(t.exception.ty, "TypeError");
    assert_eq!(
        t.exception.message,
        "Cannot read properties of undefined (reading 'reduce')"
    );
    assert_eq!(t.frames.len(), 5);
    let f = &t.frames[0];
    assert_eq!(
        (f.function.as_str(), f.file.as_deref(), f.line, f.column),
        ("unitPrice", Some("/app/src/pricing.js"), Some(14), Some(24))
    );
    assert_eq!(t.frames[1].function, "Object.<anonymous>");
    assert!(!t.frames[2].in_app);
    assert_eq!(t.frames[4].function, "<anonymous>");
    assert!(!t.frames[4].in_app);
    assert_eq!(t.culprit.map(|f| f.function), Some("unitPrice".into()));
}

#[test]
fn express_async_frames_and_node_modules() {
    let text = "Error: price not found for sku 1234
    at PriceRepo.find (/usr/src/app/dist/repo.js:22:11)
    at async PriceService.quote (/usr/src/app/dist/service.js:40:19)
    at async Promise.all (index 0)
    at async /usr/src/app/dist/routes.js:18:5
    at Layer.handle [as handle_request] (/usr/src/app/node_modules/express/lib/router/layer.js:95:5)
    at new Promise (<anonymous>)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
";
    let t = p(text);
    let f: Vec<(&str, bool)> = t.frames.iter().map(|f| (f.function.as_str(), f.in_app)).collect();
    assert_eq!(
        f,
        [
            ("PriceRepo.find", true),
            ("PriceService.quote", true),
            ("Promise.all", false),
            ("<anonymous>", true),
            ("Layer.handle [as handle_request]", false),
            ("Promise", false),
            ("process.processTicksAndRejections", false),
        ]
    );
    assert_eq!(t.frames[3].file.as_deref(), Some("/usr/src/app/dist/routes.js"));
}

#[test]
fn error_code_esm_urls_and_eval() {
    let text = "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client
    at ServerResponse.setHeader (node:_http_outgoing:652:11)
    at send (file:///app/src/respond.mjs:8:7)
    at eval (eval at compile (/app/src/tpl.js:3:10), <anonymous>:1:1)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "Error [ERR_HTTP_HEADERS_SENT]");
    assert_eq!(t.frames[1].file.as_deref(), Some("/app/src/respond.mjs"));
    assert_eq!(t.frames[2].file.as_deref(), Some("/app/src/tpl.js"));
    assert_eq!(t.culprit.map(|f| f.function), Some("send".into()));
}

#[test]
fn cause_chain_from_util_inspect() {
    let text = "Error: checkout failed
    at checkout (/app/src/checkout.js:30:11)
    at async main (/app/src/index.js:8:3) {
  [cause]: Error: connect ECONNREFUSED 10.0.0.5:5432
      at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {
    errno: -111,
    code: 'ECONNREFUSED',
    syscall: 'connect',
    address: '10.0.0.5',
    port: 5432
  }
}
";
    let t = p(text);
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.causes.len(), 1);
    assert_eq!(t.causes[0].relation, Relation::Cause);
    assert_eq!(t.causes[0].message, "connect ECONNREFUSED 10.0.0.5:5432");
    assert_eq!(t.root_cause().ty, "Error");
    assert_eq!(t.causes[0].frames.len(), 1);
    // No in-app frame in the root cause: the culprit is the outer one's.
    assert_eq!(t.culprit.map(|f| f.function), Some("checkout".into()));
}

#[test]
fn multi_line_message_and_custom_type() {
    let text = "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

3 !== 4

    at Context.<anonymous> (/app/test/price.test.js:12:12)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "AssertionError [ERR_ASSERTION]");
    assert_eq!(t.exception.message, "Expected values to be strictly equal:\n\n3 !== 4");
    let text = "PaymentDeclined: card ending 4242 was declined
reason: insufficient funds
    at charge (/app/pay.js:9:9)
";
    let t = p(text);
    assert_eq!(t.exception.ty, "PaymentDeclined");
    assert_eq!(
        t.exception.message,
        "card ending 4242 was declined\nreason: insufficient funds"
    );
}

#[test]
fn fingerprint_stable_across_bundle_hash_and_columns() {
    let a = "TypeError: x is not a function\n    at render (/app/static/js/main.3fa2b1c9.js:2:1234)\n";
    let b = "TypeError: y is not a function\n    at render (/app/static/js/main.9bc1d2e4.js:2:1301)\n";
    assert_eq!(p(a).fingerprint, p(b).fingerprint);
}
