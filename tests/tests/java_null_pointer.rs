//! The Java incident for real: `examples/inventory-java` (JDK HTTP server under the real
//! OpenTelemetry Java agent, OTLP/HTTP protobuf) throws a NullPointerException for an unknown
//! sku at `Inventory.java:33`; the seven services, each its own process against the real Kafka
//! broker and schema registry, detect it, localise it, fix it with `java.null-guard` and a
//! JUnit 5 regression test proven with the real `mvn -o` in the sandbox, canary it, promote
//! it and verify it. After promotion the same request is a 400.
//!
//! Needs the workspace binaries (`cargo build --workspace`), `mvn`, a JDK 17 and what
//! `examples/inventory-java/prepare-offline.sh` resolves (the agent jar and the Maven local
//! repository `$SELFHEAL_M2`); `scripts/test.sh` does all of it. The checks are
//! `selfheal_e2e::examples::heal_end_to_end`'s, with the data of `INVENTORY_JAVA`.
#![allow(missing_docs)]

use selfheal_e2e::examples::{INVENTORY_JAVA, heal_end_to_end};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_null_pointer_incident_is_healed_by_seven_processes() {
    heal_end_to_end(&INVENTORY_JAVA).await;
}
