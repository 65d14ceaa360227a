//! monitor: anomaly detection and incident grouping.
//!
//! The [`Monitor`] stage reads `TelemetryEvent`s from `telemetry.raw` and writes one
//! `Anomaly` per incident to `anomalies`. It detects, per service and operation,
//! error rates above the operation's own recent baseline (the rule is in [`baseline`]),
//! exception fingerprints the service never showed before ([`fingerprint`]), known
//! fingerprints coming back, and log templates that are new at error level or surging
//! ([`logs`]); it groups all of them into incidents ([`incidents`]), one at a time per
//! (service, fingerprint). How an event is handled, step by step, is in [`detector`].
//!
//! Everything runs in event time, so replaying an incident topic gives the same
//! incidents. State that must survive a restart (seen fingerprints, open incidents,
//! baselines, log templates) goes through a [`StateStore`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod baseline;
pub mod config;
pub mod detector;
pub mod error;
pub mod evidence;
pub mod fingerprint;
pub mod incidents;
pub mod logs;
pub mod lru;
pub mod stage;
pub mod state;
pub mod window;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

pub use config::MonitorConfig;
pub use detector::Detector;
pub use error::MonitorError;
pub use fingerprint::fingerprint_of;
pub use stage::Monitor;
pub use state::{FileStateStore, MemoryStateStore, SavedState, StateStore};
