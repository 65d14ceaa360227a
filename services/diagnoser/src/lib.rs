//! diagnoser: root-cause analysis of anomalies
