//! collector: OTLP, Alertmanager and Loki receivers to telemetry.raw
