//! Codec benchmark: encode and decode of every contract record, in ns per record, for three
//! paths in one run on one machine:
//!
//! - `codec`: [`selfheal_events::Codec`] as the services call it (warm: schemas, ids and
//!   plans cached), value encode (`encode_value`) and `decode`;
//! - `serde_json`: `serde_json::to_vec` / `from_slice` of the same record;
//! - `naive`: the generic `apache-avro` `Value` path the codec used before: the schema
//!   derived per record, `to_value` + datum writer to encode; datum reader into a `Value`
//!   (writer schema cached, as `schema_registry_converter` does), `resolve` against the
//!   schema derived per record, `from_value` to decode.
//!
//! `cargo run --release -p selfheal-events --example codec-bench -- [--registry URL] [--seconds S]`
//! (see `load-tests/codec/bench.sh`). The registry is only asked on first use.

use std::hint::black_box;
use std::time::{Duration, Instant};

use selfheal_events::{Codec, Record, examples};

/// One measurement: ns per call. (Allocation counts need a counting global allocator, an
/// `unsafe impl`, which the workspace's `unsafe_code = "forbid"` rules out.)
#[derive(Clone, Copy)]
struct Cost {
    ns: f64,
}

/// Runs `f` for about `budget`, in five rounds after a warm-up; the median round counts.
fn measure(budget: Duration, mut f: impl FnMut()) -> Cost {
    let warm = Instant::now();
    let mut calls_per_round = 0u64;
    while warm.elapsed() < budget / 10 {
        f();
        calls_per_round += 1;
    }
    let calls_per_round = (calls_per_round * 2).max(10);
    let mut rounds: Vec<Cost> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..calls_per_round {
                f();
            }
            let ns = t0.elapsed().as_nanos() as f64 / calls_per_round as f64;
            Cost { ns }
        })
        .collect();
    rounds.sort_by(|a, b| a.ns.total_cmp(&b.ns));
    rounds[2]
}

struct Row {
    name: &'static str,
    avro_bytes: usize,
    json_bytes: usize,
    codec: (Cost, Cost),
    json: (Cost, Cost),
    naive: (Cost, Cost),
}

fn bench<R: Record + PartialEq>(
    rt: &tokio::runtime::Runtime,
    codec: &Codec,
    topic: &str,
    name: &'static str,
    record: &R,
    budget: Duration,
) -> Result<Row, Box<dyn std::error::Error>> {
    // Warm the codec (registers the subject, fetches the writer schema, compiles the plan)
    // and check every path gives the record back before timing anything.
    let framed = rt.block_on(codec.encode_value(topic, record))?;
    let back: R = rt.block_on(codec.decode(&framed))?;
    assert_eq!(&back, record, "{name}: codec round trip");
    let json = serde_json::to_vec(record)?;
    assert_eq!(
        &serde_json::from_slice::<R>(&json)?,
        record,
        "{name}: serde_json round trip"
    );
    let writer = R::get_schema();
    #[allow(deprecated)] // the generic path as it was called
    let naive_body = apache_avro::to_avro_datum(&R::get_schema(), apache_avro::to_value(record)?)?;
    #[allow(deprecated)]
    let generic = apache_avro::from_avro_datum(&writer, &mut &framed[5..], None)?;
    assert_eq!(
        &apache_avro::from_value::<R>(&generic)?,
        record,
        "{name}: the generic reader reads the codec's body"
    );

    let codec_enc = measure(budget, || {
        black_box(rt.block_on(codec.encode_value(topic, black_box(record))).ok());
    });
    let codec_dec = measure(budget, || {
        black_box(rt.block_on(codec.decode::<R>(black_box(&framed))).ok());
    });
    let json_enc = measure(budget, || {
        black_box(serde_json::to_vec(black_box(record)).ok());
    });
    let json_dec = measure(budget, || {
        black_box(serde_json::from_slice::<R>(black_box(&json)).ok());
    });
    let naive_enc = measure(budget, || {
        let schema = R::get_schema();
        #[allow(deprecated)]
        let body = apache_avro::to_value(black_box(record)).and_then(|v| apache_avro::to_avro_datum(&schema, v));
        black_box(body.ok());
    });
    let naive_dec = measure(budget, || {
        #[allow(deprecated)]
        let value = apache_avro::from_avro_datum(&writer, &mut &black_box(&naive_body)[..], None)
            .and_then(|v| v.resolve(&R::get_schema()))
            .and_then(|v| apache_avro::from_value::<R>(&v));
        black_box(value.ok());
    });
    Ok(Row {
        name,
        avro_bytes: framed.len(),
        json_bytes: json.len(),
        codec: (codec_enc, codec_dec),
        json: (json_enc, json_dec),
        naive: (naive_enc, naive_dec),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = std::env::var("SELFHEAL_SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8085/apis/ccompat/v7".into());
    let mut seconds = 0.5f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--registry" => registry = args.next().ok_or("--registry URL")?,
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let budget = Duration::from_secs_f64(seconds);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let codec = Codec::new(&registry)?;
    let run = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let t = |name: &str| format!("{run}-{name}");
    let rows = vec![
        bench(
            &rt,
            &codec,
            &t("telemetry"),
            "TelemetryEvent",
            &examples::telemetry_event(),
            budget,
        )?,
        bench(&rt, &codec, &t("anomalies"), "Anomaly", &examples::anomaly(), budget)?,
        bench(
            &rt,
            &codec,
            &t("diagnoses"),
            "Diagnosis",
            &examples::diagnosis(),
            budget,
        )?,
        bench(&rt, &codec, &t("patches"), "Patch", &examples::patch(), budget)?,
        bench(
            &rt,
            &codec,
            &t("patches-llm"),
            "Patch (model-written)",
            &examples::patch_llm(),
            budget,
        )?,
        bench(&rt, &codec, &t("approvals"), "Approval", &examples::approval(), budget)?,
        bench(&rt, &codec, &t("rollouts"), "Rollout", &examples::rollout(), budget)?,
        bench(&rt, &codec, &t("outcomes"), "Outcome", &examples::outcome(), budget)?,
    ];
    // Keys, as the collector encodes them with every span.
    let ev = examples::telemetry_event();
    let topic = t("telemetry");
    let key_cost = measure(budget, || {
        black_box(rt.block_on(codec.encode(&topic, black_box(&ev))).ok());
    });

    println!("ns per record (median of 5 rounds); enc = encode, dec = decode");
    println!();
    println!(
        "| record | Avro B | JSON B | codec enc ns | codec dec ns | serde_json enc ns | serde_json dec ns | naive enc ns | naive dec ns | codec ÷ serde_json (enc+dec) | naive ÷ codec (enc+dec) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let codec = r.codec.0.ns + r.codec.1.ns;
        let json = r.json.0.ns + r.json.1.ns;
        let naive = r.naive.0.ns + r.naive.1.ns;
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} |",
            r.name,
            r.avro_bytes,
            r.json_bytes,
            r.codec.0.ns,
            r.codec.1.ns,
            r.json.0.ns,
            r.json.1.ns,
            r.naive.0.ns,
            r.naive.1.ns,
            codec / json,
            naive / codec,
        );
    }
    println!();
    println!(
        "TelemetryEvent key + value (`Codec::encode`, what the collector calls per span): {:.0} ns",
        key_cost.ns
    );
    Ok(())
}
