//! Policy guardrails: Rego policies evaluated in-process
