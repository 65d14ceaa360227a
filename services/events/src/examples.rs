//! The example records kept next to the schemas (`schemas/examples/*.json`), for tests of
//! every crate: build records from the same files that prove the schemas.

use crate::records::*;

macro_rules! example {
    ($(#[$doc:meta])* $fn:ident, $ty:ty, $file:literal) => {
        $(#[$doc])*
        pub fn $fn() -> $ty {
            // The files are checked by this crate's tests; a broken one is a build defect.
            #[allow(clippy::expect_used)]
            serde_json::from_str(include_str!(concat!("../../../schemas/examples/", $file)))
                .expect(concat!("schemas/examples/", $file, " matches its Rust type"))
        }
    };
}

example!(
    /// A failing `POST /price` span of pricing-api with its ZeroDivisionError.
    telemetry_event, TelemetryEvent, "telemetry_event.json");
example!(
    /// The incident the monitor opens for it.
    anomaly, Anomaly, "anomaly.json");
example!(
    /// The diagnoser's analysis: pricing_logic.py:14 in calc.
    diagnosis, Diagnosis, "diagnosis.json");
example!(
    /// The repairer's guarded-divisor fix.
    patch, Patch, "patch.json");
example!(
    /// A model-written repair that lost: one candidate rejected by its critique, one by the sandbox.
    patch_llm, Patch, "patch_llm.json");
example!(
    /// A person's approval.
    approval, Approval, "approval.json");
example!(
    /// The promotion step of the rollout.
    rollout, Rollout, "rollout.json");
example!(
    /// The healed outcome.
    outcome, Outcome, "outcome.json");
