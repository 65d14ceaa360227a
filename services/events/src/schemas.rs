//! The Avro schemas of every record, as JSON, and the `schemas/` directory generated from them.

use std::path::Path;

use apache_avro::AvroSchema;

use crate::Record;
use crate::records::*;

/// One schema file: its name under `schemas/` (without `.avsc`) and its canonical JSON.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// File name without extension.
    pub name: &'static str,
    /// The topic whose values (or keys) it describes.
    pub subject_suffix: &'static str,
    /// The schema, pretty-printed JSON.
    pub json: String,
}

fn pretty<T: AvroSchema>() -> String {
    let schema = T::get_schema();
    // serde_json pretty-printing of the canonical serialisation keeps docs and defaults.
    match serde_json::to_value(&schema) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
        Err(_) => String::new(),
    }
}

fn value_file<R: Record>() -> SchemaFile {
    SchemaFile {
        name: R::SCHEMA_FILE,
        subject_suffix: "value",
        json: pretty::<R>(),
    }
}

/// Every schema the pipeline registers: one per topic value, plus the two key schemas.
pub fn all() -> Vec<SchemaFile> {
    vec![
        value_file::<TelemetryEvent>(),
        value_file::<Anomaly>(),
        value_file::<Diagnosis>(),
        value_file::<Patch>(),
        value_file::<Approval>(),
        value_file::<Rollout>(),
        value_file::<Outcome>(),
        SchemaFile {
            name: "service_key",
            subject_suffix: "key",
            json: pretty::<ServiceKey>(),
        },
        SchemaFile {
            name: "incident_key",
            subject_suffix: "key",
            json: pretty::<IncidentKey>(),
        },
    ]
}

/// Writes every schema to `dir/<name>.avsc` (used by `cargo run -p selfheal-events --example gen-schemas`).
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for f in all() {
        std::fs::write(dir.join(format!("{}.avsc", f.name)), f.json)?;
    }
    Ok(())
}
