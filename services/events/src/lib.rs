//! Avro contracts of every selfheal topic and their Confluent wire-format codec
