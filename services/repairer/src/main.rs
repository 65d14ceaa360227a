//! repairer: fixes, regression tests, sandbox validation, policy gate, branches

fn main() {}
