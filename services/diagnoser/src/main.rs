//! diagnoser: root-cause analysis of anomalies

fn main() {}
