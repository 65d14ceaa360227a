//! Unit tests of the governance crate: the policy suite, the engine, the diff reader.

// Tests fail loudly on purpose; the workspace lint is about production code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diff;
mod engine;
mod rego_suite;
