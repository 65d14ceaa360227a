//! Codec benchmark: encode and decode of every contract record, in ns and heap allocations per
//! record, for three paths in one process:
//!
//! - `codec`: [`selfheal_events::Codec`] as the services call it, warm (schemas, subject ids,
//!   writer schemas and read plans cached): `encode_value` and `decode::<R>`, Confluent framing
//!   included;
//! - `serde_json`: `serde_json::to_vec` / `from_slice` of the same record;
//! - `naive`: the generic `apache-avro` `Value` path, schema parsed once: `to_value` +
//!   `to_avro_datum` to encode, `from_avro_datum` + `from_value` to decode (no framing).
//!
//! `selfheal-codec-bench [--registry URL] [--seconds S]`; see `load-tests/codec/bench.sh`.
//! The registry is asked only while warming up (register the subject, fetch the schema).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use selfheal_events::{Codec, Record, examples};

/// Counts allocations (alloc, alloc_zeroed and realloc each count one) while `COUNTING` is on;
/// while it is off the cost is one relaxed load, so timings are taken with it off.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time of the calling thread, in ns: unlike wall time it does not count the time the
/// thread was descheduled, which on a 2-core machine shared with builds is most of it.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// One measurement: ns (thread CPU time) and allocations per call.
#[derive(Clone, Copy, Default)]
struct Cost {
    ns: f64,
    allocs: f64,
}

/// `f(n)` runs the operation `n` times. A calibration (doubling `n` until a round takes a
/// tenth of `budget`), then seven timed rounds (the median counts), then one counted round of
/// 1,000 calls.
fn measure(budget: Duration, mut f: impl FnMut(u64)) -> Cost {
    let mut n = 1u64;
    loop {
        let t0 = thread_cpu_ns();
        f(n);
        if thread_cpu_ns() - t0 >= (budget / 10).as_nanos() || n >= 1 << 30 {
            break;
        }
        n *= 2;
    }
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t0 = thread_cpu_ns();
            f(n);
            (thread_cpu_ns() - t0) as f64 / n as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let before = ALLOCS.load(Relaxed);
    COUNTING.store(true, Relaxed);
    f(1000);
    COUNTING.store(false, Relaxed);
    let allocs = (ALLOCS.load(Relaxed) - before) as f64 / 1000.0;
    Cost { ns: rounds[3], allocs }
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
    // and check that every path gives the record back before timing anything.
    let framed = rt.block_on(codec.encode_value(topic, record))?;
    let back: R = rt.block_on(codec.decode(&framed))?;
    if &back != record {
        return Err(format!("{name}: the codec does not give the record back").into());
    }
    let json = serde_json::to_vec(record)?;
    if &serde_json::from_slice::<R>(&json)? != record {
        return Err(format!("{name}: serde_json does not give the record back").into());
    }
    let schema = R::get_schema();
    #[allow(deprecated)]
    let naive_body = apache_avro::to_avro_datum(&schema, apache_avro::to_value(record)?)?;
    // Both bodies must read back through the other path (bytes may differ: map entries are
    // written in hash order).
    #[allow(deprecated)]
    let generic = apache_avro::from_avro_datum(&schema, &mut &framed[5..], None)?;
    if &apache_avro::from_value::<R>(&generic)? != record {
        return Err(format!("{name}: apache-avro does not read the codec's body back").into());
    }
    let mut reframed = framed[..5].to_vec();
    reframed.extend_from_slice(&naive_body);
    if &rt.block_on(codec.decode::<R>(&reframed))? != record {
        return Err(format!("{name}: the codec does not read apache-avro's body back").into());
    }

    // The codec is async (a registry lookup on a cold cache); warm, every call completes at
    // its first poll, so `n` calls run inside one block_on to time the codec, not the runtime.
    let codec_enc = measure(budget, |n| {
        rt.block_on(async {
            for _ in 0..n {
                black_box(codec.encode_value(topic, black_box(record)).await.ok());
            }
        })
    });
    let codec_dec = measure(budget, |n| {
        rt.block_on(async {
            for _ in 0..n {
                black_box(codec.decode::<R>(black_box(&framed)).await.ok());
            }
        })
    });
    let json_enc = measure(budget, |n| {
        for _ in 0..n {
            black_box(serde_json::to_vec(black_box(record)).ok());
        }
    });
    let json_dec = measure(budget, |n| {
        for _ in 0..n {
            black_box(serde_json::from_slice::<R>(black_box(&json)).ok());
        }
    });
    let naive_enc = measure(budget, |n| {
        for _ in 0..n {
            #[allow(deprecated)]
            let body = apache_avro::to_value(black_box(record)).and_then(|v| apache_avro::to_avro_datum(&schema, v));
            black_box(body.ok());
        }
    });
    let naive_dec = measure(budget, |n| {
        for _ in 0..n {
            #[allow(deprecated)]
            let value = apache_avro::from_avro_datum(&schema, &mut &black_box(&naive_body)[..], None)
                .and_then(|v| apache_avro::from_value::<R>(&v));
            black_box(value.ok());
        }
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
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--registry" => registry = args.next().ok_or("--registry URL")?,
            "--seconds" => seconds = args.next().ok_or("--seconds S")?.parse()?,
            // For profiling one record type: `--only TelemetryEvent`.
            "--only" => only = Some(args.next().ok_or("--only RECORD")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let budget = Duration::from_secs_f64(seconds);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let codec = Codec::new(&registry)?;
    let run = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let t = |name: &str| format!("{run}-{name}");
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    macro_rules! row {
        ($topic:expr, $name:expr, $record:expr) => {
            if wanted($name) {
                rows.push(bench(&rt, &codec, &t($topic), $name, &$record, budget)?);
            }
        };
    }
    row!("telemetry", "TelemetryEvent", examples::telemetry_event());
    row!("anomalies", "Anomaly", examples::anomaly());
    row!("diagnoses", "Diagnosis", examples::diagnosis());
    row!("patches", "Patch", examples::patch());
    row!("patches-llm", "Patch (model-written)", examples::patch_llm());
    row!("approvals", "Approval", examples::approval());
    row!("rollouts", "Rollout", examples::rollout());
    row!("outcomes", "Outcome", examples::outcome());
    // Key + value, as the collector encodes every span.
    let ev = examples::telemetry_event();
    let topic = t("telemetry");
    let key_value = measure(budget, |n| {
        rt.block_on(async {
            for _ in 0..n {
                black_box(codec.encode(&topic, black_box(&ev)).await.ok());
            }
        })
    });

    println!("Per record: thread CPU ns, median of 7 rounds; allocations counted over 1,000 calls.");
    println!("enc = encode, dec = decode; codec includes the 5-byte Confluent header.");
    println!();
    println!(
        "| record | Avro B | JSON B | codec enc ns | codec dec ns | serde_json enc ns | serde_json dec ns | naive enc ns | naive dec ns | codec allocs enc/dec | serde_json allocs enc/dec | naive allocs enc/dec | codec ÷ serde_json (enc+dec ns) | naive ÷ codec (enc+dec ns) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let codec = r.codec.0.ns + r.codec.1.ns;
        let json = r.json.0.ns + r.json.1.ns;
        let naive = r.naive.0.ns + r.naive.1.ns;
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {}/{} | {}/{} | {}/{} | {:.2} | {:.1} |",
            r.name,
            r.avro_bytes,
            r.json_bytes,
            r.codec.0.ns,
            r.codec.1.ns,
            r.json.0.ns,
            r.json.1.ns,
            r.naive.0.ns,
            r.naive.1.ns,
            r.codec.0.allocs,
            r.codec.1.allocs,
            r.json.0.allocs,
            r.json.1.allocs,
            r.naive.0.allocs,
            r.naive.1.allocs,
            codec / json,
            naive / codec,
        );
    }
    println!();
    println!(
        "TelemetryEvent key + value (`Codec::encode`, what the collector calls per span): {:.0} ns, {} allocations",
        key_value.ns, key_value.allocs
    );
    Ok(())
}
