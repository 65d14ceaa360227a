//! End-to-end tests against a real Kafka broker and schema registry
