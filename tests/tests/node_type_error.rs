//! The Node.js incident for real: `examples/orders-node` (node:http under the OpenTelemetry
//! Node SDK, OTLP/HTTP) throws `TypeError: Cannot read properties of undefined (reading
//! 'baseCents')` at `shipping.js:50` for a country without a shipping zone; the seven
//! services, each its own process against the real Kafka broker and schema registry, detect
//! it, localise it, fix it with `node.property-guard` (the module's own `BadRequestError`) and
//! a node:test regression test proven with the real `node --test` offline in the sandbox,
//! canary it, promote it and verify it. After promotion the same request is a 400.
//!
//! Needs the workspace binaries (`cargo build --workspace`), `node` and the `node_modules`
//! that `scripts/prepare-examples.sh` installs; `scripts/test.sh` does all of it. The checks
//! are `selfheal_e2e::examples::heal_end_to_end`'s, with the data of `ORDERS_NODE`.
#![allow(missing_docs)]

use selfheal_e2e::examples::{ORDERS_NODE, heal_end_to_end};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_type_error_incident_is_healed_by_seven_processes() {
    heal_end_to_end(&ORDERS_NODE).await;
}
