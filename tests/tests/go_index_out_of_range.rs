//! The Go incident for real: `examples/inventory-go` (net/http under the OpenTelemetry Go SDK,
//! otelhttp, OTLP/HTTP) panics with `index out of range [1] with length 1` at
//! `stock/location.go:26` for a bin code without a dash; the seven services, each its own
//! process against the real Kafka broker and schema registry, detect it, localise it, fix it
//! with `go.index-guard` (the function's own `ErrInvalid`) and a `_test.go` regression test
//! proven with the real `go test` offline in the sandbox, canary it, promote it and verify it.
//! After promotion the same request is a 400.
//!
//! Needs the workspace binaries (`cargo build --workspace`), `go` and the module cache that
//! `scripts/prepare-examples.sh` fills (`GOMODCACHE`); `scripts/test.sh` does all of it. The
//! checks are `selfheal_e2e::examples::heal_end_to_end`'s, with the data of `INVENTORY_GO`.
#![allow(missing_docs)]

use selfheal_e2e::examples::{INVENTORY_GO, heal_end_to_end};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_index_out_of_range_incident_is_healed_by_seven_processes() {
    heal_end_to_end(&INVENTORY_GO).await;
}
