//! The codec against the real schema registry (`SELFHEAL_SCHEMA_REGISTRY_URL`, default
//! Apicurio's ccompat API on 8085): schemas registered on first use, writer schemas fetched
//! once per id, and an older writer's records still decoding once the caches are warm.
//! Fails, never skips, when the registry is missing: `scripts/test.sh` starts it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use apache_avro::AvroSchema;
use apache_avro::types::Value;
use selfheal_events::{Codec, TelemetryEvent, examples};

fn registry_url() -> String {
    std::env::var("SELFHEAL_SCHEMA_REGISTRY_URL").unwrap_or_else(|_| "http://127.0.0.1:8085/apis/ccompat/v7".into())
}

async fn require_registry(url: &str) {
    let probe = reqwest::get(format!("{url}/subjects")).await;
    assert!(
        probe.as_ref().is_ok_and(|r| r.status().is_success()),
        "this test needs the real schema registry at {url}; start it with `deploy/testbed.sh up` or run `scripts/test.sh`"
    );
}

/// Registers `schema` under `subject` as another producer would, returning its id.
async fn register_raw(url: &str, subject: &str, schema: &serde_json::Value) -> u32 {
    let resp = reqwest::Client::new()
        .post(format!("{url}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(serde_json::json!({"schema": schema.to_string()}).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "registering under {subject}: HTTP {}",
        resp.status()
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    body["id"].as_u64().unwrap() as u32
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn an_older_writer_schema_decodes_after_the_cache_is_warm() {
    let url = registry_url();
    require_registry(&url).await;
    let codec = Codec::new(&url).unwrap();
    let topic = format!("telemetry-{}", uuid::Uuid::new_v4().simple());
    let current_id = codec.register::<TelemetryEvent>(&topic).await.unwrap();

    // Warm every cache: the type's schema, the subject's id, the writer schema by id, the plan.
    let ev = examples::telemetry_event();
    for _ in 0..3 {
        let (_, value) = codec.encode(&topic, &ev).await.unwrap();
        assert_eq!(u32::from_be_bytes([value[1], value[2], value[3], value[4]]), current_id);
        assert_eq!(codec.decode::<TelemetryEvent>(&value).await.unwrap(), ev);
    }

    // An older producer still runs: its schema has no `environment` yet and a `shard` field
    // today's type has dropped. (BACKWARD-compatible as a later version of the subject.)
    let mut old: serde_json::Value = serde_json::to_value(TelemetryEvent::get_schema()).unwrap();
    let fields = old["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "environment");
    fields.insert(1, serde_json::json!({"name": "shard", "type": "int", "default": 0}));
    let old_id = register_raw(&url, &format!("{topic}-value"), &old).await;
    assert_ne!(old_id, current_id);
    let old_schema = apache_avro::Schema::parse(&old).unwrap();
    let mut value = apache_avro::to_value(&ev).unwrap();
    let Value::Record(fields) = &mut value else {
        panic!("a record")
    };
    fields.retain(|(k, _)| k != "environment");
    fields.insert(1, ("shard".into(), Value::Int(7)));
    #[allow(deprecated)] // the shortest honest way to write a body with an arbitrary schema
    let body = apache_avro::to_avro_datum(&old_schema, value).unwrap();

    let mut expected = ev.clone();
    expected.environment = None;
    let older = framed(old_id, &body);
    assert_eq!(
        codec.decode::<TelemetryEvent>(&older).await.unwrap(),
        expected,
        "the older record decodes into today's type, the missing optional field as None"
    );
    // Both writers stay decodable side by side, in any order, many times over.
    for _ in 0..3 {
        let (_, current) = codec.encode(&topic, &ev).await.unwrap();
        assert_eq!(codec.decode::<TelemetryEvent>(&current).await.unwrap(), ev);
        assert_eq!(codec.decode::<TelemetryEvent>(&older).await.unwrap(), expected);
    }
    let json = codec.decode_json(&older).await.unwrap();
    assert_eq!(json["shard"], 7, "the generic view shows the record as written");
}

#[tokio::test]
async fn keys_are_the_service_for_telemetry_and_the_incident_after_it() {
    let url = registry_url();
    require_registry(&url).await;
    let codec = Codec::new(&url).unwrap();
    let topic = format!("telemetry-{}", uuid::Uuid::new_v4().simple());
    let ev = examples::telemetry_event();
    let (key, _) = codec.encode(&topic, &ev).await.unwrap();
    assert_eq!(
        codec.decode_json(&key).await.unwrap(),
        serde_json::json!({"service": ev.service})
    );
    let anomalies = format!("anomalies-{}", uuid::Uuid::new_v4().simple());
    let anomaly = examples::anomaly();
    let (key, value) = codec.encode(&anomalies, &anomaly).await.unwrap();
    assert_eq!(
        codec.decode_json(&key).await.unwrap(),
        serde_json::json!({"incident_id": anomaly.incident_id})
    );
    assert_eq!(codec.decode::<selfheal_events::Anomaly>(&value).await.unwrap(), anomaly);
}
