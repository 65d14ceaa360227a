//! Ruby and Rails backtraces.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use selfheal_stacktrace::{ParseOptions, ParsedTrace, Runtime, parse};

fn p(text: &str) -> ParsedTrace {
    let t = parse(text, &ParseOptions::default()).expect("a trace");
    assert_eq!(t.runtime, Runtime::Ruby, "{t:#?}");
    t
}

#[test]
fn uncaught_interpreter_report() {
    let text = "/app/lib/pricing.rb:14:in `/': divided by 0 (ZeroDivisionError)
\tfrom /app/lib/pricing.rb:14:in `unit_price'
\tfrom /app/bin/quote:5:in `<main>'
";
    let t = p(text);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "divided by 0");
    assert_eq!(t.frames.len(), 3);
    assert_eq!(t.frames[0].function, "/");
    assert_eq!(t.frames[1].function, "unit_price");
    assert_eq!(t.culprit.map(|f| f.function), Some("/".into()));
}

#[test]
fn ruby_34_labels_and_causes() {
    let text = "/app/lib/orders.rb:20:in 'Orders.place': could not place order (Orders::Error)
\tfrom /app/app.rb:8:in 'block in <main>'
\tfrom <internal:kernel>:187:in 'loop'
/app/lib/stock.rb:9:in 'Stock#reserve': out of stock: sku 42 (Stock::Unavailable)
\tfrom /app/lib/orders.rb:18:in 'Orders.place'
";
    let t = p(text);
    assert_eq!(t.exception.ty, "Orders::Error");
    assert_eq!(t.frames[0].module.as_deref(), Some("Orders"));
    assert_eq!(t.frames[0].function, "place");
    assert!(!t.frames[2].in_app);
    assert_eq!(t.causes.len(), 1);
    assert_eq!(t.causes[0].ty, "Stock::Unavailable");
    assert_eq!(t.causes[0].message, "out of stock: sku 42");
    assert_eq!(t.causes[0].frames[0].module.as_deref(), Some("Stock"));
    assert_eq!(
        t.culprit.map(|f| (f.function, f.line)),
        Some(("reserve".into(), Some(9)))
    );
}

#[test]
fn rails_log_form_with_gems() {
    let text = "Started GET \"/prices/7\" for 10.0.0.1 at 2024-05-01 12:00:00 +0000
Processing by PricesController#show as JSON
Completed 500 Internal Server Error in 12ms (ActiveRecord: 1.2ms)

ZeroDivisionError (divided by 0):

app/models/price.rb:14:in `/'
app/models/price.rb:14:in `unit'
app/controllers/prices_controller.rb:6:in `show'
actionpack (7.1.3) lib/action_controller/metal/basic_implicit_render.rb:6:in `send_action'
/usr/local/bundle/gems/actionpack-7.1.3/lib/abstract_controller/base.rb:224:in `process_action'
";
    let t = p(text);
    assert_eq!(t.exception.ty, "ZeroDivisionError");
    assert_eq!(t.exception.message, "divided by 0");
    assert_eq!(t.frames.len(), 5);
    assert!(t.frames[2].in_app);
    assert!(!t.frames[3].in_app, "{:?}", t.frames[3]);
    assert!(!t.frames[4].in_app);
    assert_eq!(t.culprit.map(|f| f.file), Some(Some("app/models/price.rb".into())));
}

#[test]
fn rails_multi_line_message() {
    let text = "ActiveRecord::StatementInvalid (PG::UndefinedTable: ERROR:  relation \"prices\" does not exist
LINE 1: SELECT \"prices\".* FROM \"prices\"
                             ^
):

app/models/price.rb:3:in `current'
app/controllers/prices_controller.rb:6:in `show'
";
    let t = p(text);
    assert_eq!(t.exception.ty, "ActiveRecord::StatementInvalid");
    assert!(t.exception.message.starts_with("PG::UndefinedTable: ERROR:  relation"));
    assert!(t.exception.message.contains("LINE 1:"));
    assert_eq!(t.frames.len(), 2);
}

#[test]
fn plain_header_above_bare_frames() {
    let text = "RuntimeError: payment gateway timeout
/app/app/workers/charge_worker.rb:12:in `perform'
/usr/local/bundle/gems/sidekiq-7.2.0/lib/sidekiq/processor.rb:202:in `execute_job'
";
    let t = p(text);
    assert_eq!(t.exception.ty, "RuntimeError");
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.culprit.map(|f| f.function), Some("perform".into()));
}

#[test]
fn multi_line_message_in_report() {
    let text = "/app/x.rb:4:in `check': invalid order (ArgumentError)
quantity must be positive
\tfrom /app/x.rb:9:in `<main>'
";
    let t = p(text);
    assert_eq!(t.exception.message, "invalid order\nquantity must be positive");
    assert_eq!(t.frames.len(), 2);
}

#[test]
fn block_levels_fingerprint_like_plain_blocks() {
    let a = p("/app/a.rb:1:in `block (2 levels) in run': boom (RuntimeError)\n");
    let b = p("/app/a.rb:7:in `block (3 levels) in run': boom (RuntimeError)\n");
    assert_eq!(a.fingerprint, b.fingerprint);
}
