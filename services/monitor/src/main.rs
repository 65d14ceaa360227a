//! monitor: anomaly detection and incident grouping

fn main() {}
