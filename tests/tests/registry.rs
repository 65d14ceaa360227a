//! The schema contract against both registries: the real one (Apicurio's Confluent-compatible
//! API) and the in-process one the embedded mode uses. Every test runs on both targets, so the
//! embedded registry agrees with the real one on every call the pipeline makes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use apache_avro::AvroSchema;
use selfheal_core::Shutdown;
use selfheal_core::registry::EmbeddedRegistry;
use selfheal_e2e::{registry_url, require, unique};
use selfheal_events::{Codec, CodecError, Outcome, Record, TelemetryEvent, examples};

async fn targets() -> Vec<(&'static str, String)> {
    let embedded = EmbeddedRegistry::start(SocketAddr::from(([127, 0, 0, 1], 0)), Shutdown::new())
        .await
        .unwrap();
    let real = registry_url();
    let found = match reqwest::get(format!("{real}/subjects")).await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{real}/subjects answered {}", r.status())),
        Err(e) => Err(format!("{real} does not answer ({e})")),
    };
    // Without the real one (and only when SELFHEAL_REQUIRE_BROKER=0 allows it), the embedded
    // registry is still checked.
    let mut targets = vec![("embedded", embedded.url())];
    if require::present(&require::REGISTRY, found).is_some() {
        targets.insert(0, ("apicurio", real));
    }
    targets
}

#[tokio::test]
async fn registration_is_idempotent_and_records_round_trip_by_id() {
    for (name, url) in targets().await {
        let codec = Codec::new(&url).unwrap();
        let topic = unique("outcomes");
        let id = codec.register::<Outcome>(&topic).await.unwrap();
        assert_eq!(
            codec.register::<Outcome>(&topic).await.unwrap(),
            id,
            "{name}: same schema, same id"
        );
        let outcome = examples::outcome();
        let (key, value) = codec.encode(&topic, &outcome).await.unwrap();
        assert_eq!(value[0], 0, "{name}: magic byte");
        assert_eq!(
            u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
            id,
            "{name}: schema id in the frame"
        );
        let back: Outcome = codec.decode(&value).await.unwrap();
        assert_eq!(back, outcome, "{name}: round trip");
        let json = codec.decode_json(&key).await.unwrap();
        assert_eq!(
            json["incident_id"], outcome.incident_id,
            "{name}: the key is the incident id"
        );

        // Lookup by id, raw, as any other client would.
        let body: serde_json::Value = reqwest::get(format!("{url}/schemas/ids/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let schema = apache_avro::Schema::parse_str(body["schema"].as_str().unwrap()).unwrap();
        assert_eq!(
            schema.canonical_form(),
            Outcome::get_schema().canonical_form(),
            "{name}: lookup by id"
        );
    }
}

#[tokio::test]
async fn an_incompatible_schema_change_is_refused_naming_the_field() {
    for (name, url) in targets().await {
        let codec = Codec::new(&url).unwrap();
        let topic = unique("outcomes");
        let subject = format!("{topic}-value");
        // An "older" schema without `summary`: today's type has `summary` without a default,
        // so it cannot read that older data — a BACKWARD break.
        let mut old: serde_json::Value = serde_json::to_value(Outcome::get_schema()).unwrap();
        old["fields"].as_array_mut().unwrap().retain(|f| f["name"] != "summary");
        codec.set_backward(&subject).await.unwrap();
        let resp = reqwest::Client::new()
            .post(format!("{url}/subjects/{subject}/versions"))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(serde_json::json!({"schema": old.to_string()}).to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{name}: the old schema registers");
        match codec.register::<Outcome>(&topic).await {
            Err(CodecError::Incompatible { subject: s, reason }) => {
                assert_eq!(s, subject);
                assert!(
                    reason.contains("summary"),
                    "{name}: the reason names the field: {reason}"
                );
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
        // The registry itself refuses it too (HTTP 409), whatever the client checks.
        let resp = reqwest::Client::new()
            .post(format!("{url}/subjects/{subject}/versions"))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(
                serde_json::json!({"schema": serde_json::to_value(Outcome::get_schema()).unwrap().to_string()})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            409,
            "{name}: registry refuses the incompatible version"
        );
        // A compatible evolution (a new optional field) is accepted.
        let mut newer: serde_json::Value = serde_json::to_value(Outcome::get_schema()).unwrap();
        let topic2 = unique("outcomes");
        codec.register::<Outcome>(&topic2).await.unwrap();
        newer["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "ticket", "type": ["null", "string"], "default": null}));
        let resp = reqwest::Client::new()
            .post(format!("{url}/subjects/{topic2}-value/versions"))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(serde_json::json!({"schema": newer.to_string()}).to_string())
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "{name}: an optional field is a compatible change"
        );
    }
}

#[tokio::test]
async fn unknown_schema_ids_are_permanent_errors_and_a_missing_registry_is_transient() {
    for (name, url) in targets().await {
        let codec = Codec::new(&url).unwrap();
        let unknown = [0u8, 0x7f, 0xff, 0xff, 0xf0, 2, 2];
        let err = codec.decode::<TelemetryEvent>(&unknown).await.unwrap_err();
        assert!(!err.is_transient(), "{name}: unknown id is not retried: {err}");
        let err = codec.decode::<TelemetryEvent>(b"plain text").await.unwrap_err();
        assert!(matches!(err, CodecError::NotWireFormat(_)), "{name}: {err}");
    }
    let down = Codec::new("http://127.0.0.1:1/apis/ccompat/v7").unwrap();
    let err = down.register::<TelemetryEvent>(&unique("t")).await.unwrap_err();
    assert!(err.is_transient(), "a registry that is down is retried: {err}");
    let err = down.decode::<TelemetryEvent>(&[0, 0, 0, 0, 1, 2]).await.unwrap_err();
    assert!(
        err.is_transient(),
        "decoding while the registry is down is retried: {err}"
    );
}

#[tokio::test]
async fn an_older_writer_schema_still_decodes_into_todays_type() {
    for (name, url) in targets().await {
        let codec = Codec::new(&url).unwrap();
        let topic = unique("telemetry");
        // Data written by an older producer that did not know `environment` (optional today).
        let mut old: serde_json::Value = serde_json::to_value(TelemetryEvent::get_schema()).unwrap();
        old["fields"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "environment");
        let old_schema = apache_avro::Schema::parse(&old).unwrap();
        let resp: serde_json::Value = reqwest::Client::new()
            .post(format!("{url}/subjects/{topic}-value/versions"))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(serde_json::json!({"schema": old.to_string()}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = resp["id"].as_u64().unwrap() as u32;
        let mut ev = examples::telemetry_event();
        ev.environment = None;
        let mut value = apache_avro::to_value(&ev).unwrap();
        if let apache_avro::types::Value::Record(fields) = &mut value {
            fields.retain(|(k, _)| k != "environment");
        }
        #[allow(deprecated)]
        let body = apache_avro::to_avro_datum(&old_schema, value).unwrap();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&id.to_be_bytes());
        framed.extend_from_slice(&body);
        let back: TelemetryEvent = codec.decode(&framed).await.unwrap();
        assert_eq!(back, ev, "{name}: resolved with the default");
        assert_eq!(TelemetryEvent::TOPIC, "telemetry.raw");
    }
}

/// Services start together and register the same subjects (one's output topic is the next
/// one's input): every one of them must come up, with the same schema id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_registering_one_subject_at_once_all_succeed() {
    for (name, url) in targets().await {
        for _ in 0..3 {
            let topic = unique("diagnoses");
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let url = url.clone();
                let topic = topic.clone();
                tasks.push(tokio::spawn(async move {
                    let codec = Codec::new(&url).unwrap();
                    codec.register::<selfheal_events::Diagnosis>(&topic).await
                }));
            }
            let mut ids = Vec::new();
            for t in tasks {
                ids.push(
                    t.await
                        .unwrap()
                        .unwrap_or_else(|e| panic!("{name}: a racing registration failed: {e}")),
                );
            }
            ids.dedup();
            assert_eq!(ids.len(), 1, "{name}: one schema, one id: {ids:?}");
        }
    }
}
