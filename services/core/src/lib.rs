//! The stage runtime: Stage trait, runner, dead letters, Kafka and registry clients, health, metrics, telemetry
