//! monitor: anomaly detection and incident grouping
