//! The `.avsc` files and the Rust types must not drift apart, and each example record must
//! round-trip through its schema file.

#![allow(deprecated, clippy::unwrap_used)] // the datum helpers are the shortest honest round trip; GenericDatum* are newer spellings of the same
use std::path::PathBuf;

use apache_avro::schema::Schema;
use apache_avro::{AvroSchema, from_avro_datum, to_avro_datum, to_value};
use selfheal_events::*;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn file_schema(name: &str) -> Schema {
    let text = std::fs::read_to_string(schema_dir().join(format!("{name}.avsc")))
        .unwrap_or_else(|e| panic!("schemas/{name}.avsc: {e}"));
    Schema::parse_str(&text).unwrap_or_else(|e| panic!("schemas/{name}.avsc does not parse: {e}"))
}

/// Round-trips the example through the schema *file* (not the derived schema) and back.
fn round_trip<R: Record + PartialEq>(name: &str) {
    round_trip_example::<R>(name, name);
}

/// Round-trips `examples/<example>.json` through `schemas/<name>.avsc`.
fn round_trip_example<R: Record + PartialEq>(name: &str, example: &str) {
    let schema = file_schema(name);
    assert_eq!(
        schema.canonical_form(),
        R::get_schema().canonical_form(),
        "schemas/{name}.avsc differs from the Rust type; run `cargo run -p selfheal-events --example gen-schemas`"
    );
    let text = std::fs::read_to_string(schema_dir().join("examples").join(format!("{example}.json"))).unwrap();
    let record: R = serde_json::from_str(&text).unwrap_or_else(|e| panic!("examples/{example}.json: {e}"));
    let value = to_value(&record).unwrap();
    assert!(
        value.validate(&schema),
        "examples/{example}.json does not validate against schemas/{name}.avsc"
    );
    let bytes = to_avro_datum(&schema, value).unwrap();
    let back = from_avro_datum(&schema, &mut bytes.as_slice(), None).unwrap();
    let back: R = apache_avro::from_value(&back).unwrap();
    assert_eq!(back, record, "{name} changed on the way through Avro");
}

#[test]
fn telemetry_event_round_trips() {
    round_trip::<TelemetryEvent>("telemetry_event");
}
#[test]
fn anomaly_round_trips() {
    round_trip::<Anomaly>("anomaly");
}
#[test]
fn diagnosis_round_trips() {
    round_trip::<Diagnosis>("diagnosis");
}
#[test]
fn patch_round_trips() {
    round_trip::<Patch>("patch");
}
#[test]
fn model_written_patch_round_trips() {
    round_trip_example::<Patch>("patch", "patch_llm");
    let p = examples::patch_llm();
    let llm = p.llm.clone().unwrap();
    assert_eq!(llm.exchanges.len(), 2);
    assert!(
        p.attempts
            .iter()
            .any(|a| a.critique.is_some() && a.validation.is_some())
    );
}
#[test]
fn approval_round_trips() {
    round_trip::<Approval>("approval");
}
#[test]
fn rollout_round_trips() {
    round_trip::<Rollout>("rollout");
}
#[test]
fn outcome_round_trips() {
    round_trip::<Outcome>("outcome");
}

#[test]
fn keys_match_their_files() {
    assert_eq!(
        file_schema("service_key").canonical_form(),
        ServiceKey::get_schema().canonical_form()
    );
    assert_eq!(
        file_schema("incident_key").canonical_form(),
        IncidentKey::get_schema().canonical_form()
    );
}

#[test]
fn every_schema_file_is_generated_from_a_type() {
    let generated: Vec<String> = schemas::all().iter().map(|f| format!("{}.avsc", f.name)).collect();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".avsc") {
            assert!(generated.contains(&name), "schemas/{name} has no Rust type");
        }
    }
}

#[test]
fn every_record_past_the_monitor_carries_incident_service_and_fingerprint() {
    for name in ["anomaly", "diagnosis", "patch", "rollout", "outcome"] {
        let Schema::Record(rec) = file_schema(name) else {
            panic!("{name} is not a record")
        };
        for field in ["incident_id", "service", "fingerprint", "timeline"] {
            assert!(rec.lookup.contains_key(field), "{name} lacks {field}");
        }
    }
}

#[test]
fn a_new_optional_field_is_backward_compatible_and_a_new_required_one_is_not() {
    use apache_avro::schema_compatibility::SchemaCompatibility;
    let old = file_schema("outcome");
    let text = std::fs::read_to_string(schema_dir().join("outcome.avsc")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fields = json["fields"].as_array_mut().unwrap();
    fields.push(serde_json::json!({"name": "ticket", "type": ["null", "string"], "default": null}));
    let optional = Schema::parse(&json).unwrap();
    assert!(SchemaCompatibility::can_read(&old, &optional).is_ok());
    json["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "owner", "type": "string"}));
    let required = Schema::parse(&json).unwrap();
    let err = SchemaCompatibility::can_read(&old, &required).unwrap_err().to_string();
    assert!(err.contains("owner"), "the error names the field: {err}");
}

#[test]
fn examples_module_loads_every_example() {
    assert_eq!(examples::anomaly().service, "pricing-api");
    assert_eq!(examples::outcome().status, OutcomeStatus::Healed);
    assert_eq!(examples::rollout().patch.incident_id, examples::patch().incident_id);
}
