//! collector: OTLP, Alertmanager and Loki receivers to telemetry.raw.

pub mod attributes;
pub mod otlp;
