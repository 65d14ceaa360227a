//! `selfheal knowledge [FINGERPRINT]`: what the learning store remembers, from the
//! learner's HTTP API, as a table.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use selfheal_events::KnownFix;
use serde_json::Value;

/// Arguments of `selfheal knowledge`.
#[derive(Debug, clap::Args)]
pub struct KnowledgeArgs {
    /// A failure fingerprint; all fingerprints when absent.
    pub fingerprint: Option<String>,
    /// Base URL of the learner's API.
    #[arg(long, env = "SELFHEAL_LEARNER_URL", default_value = "http://127.0.0.1:8090")]
    pub learner_url: String,
    /// Print the API's JSON as is.
    #[arg(long, env = "SELFHEAL_KNOWLEDGE_JSON")]
    pub json: bool,
}

/// The fixes of one fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The fingerprint.
    pub fingerprint: String,
    /// Its fixes, best first.
    pub fixes: Vec<KnownFix>,
}

fn entry(v: &Value, fallback_fp: Option<&str>) -> Option<Entry> {
    let fingerprint = v
        .get("fingerprint")
        .and_then(Value::as_str)
        .or(fallback_fp)?
        .to_string();
    let fixes = serde_json::from_value(v.get("fixes")?.clone()).ok()?;
    Some(Entry { fingerprint, fixes })
}

/// Reads the learner's answer: one `{"fingerprint","fixes"}` object, a list of them, an object
/// holding such a list, or a map from fingerprint to fixes.
pub fn parse_entries(v: &Value) -> Result<Vec<Entry>> {
    if let Some(e) = entry(v, None) {
        return Ok(vec![e]);
    }
    let list = match v {
        Value::Array(a) => Some(a),
        Value::Object(o) => ["fingerprints", "entries", "fixes", "items"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array)),
        _ => None,
    };
    if let Some(list) = list {
        return Ok(list.iter().filter_map(|x| entry(x, None)).collect());
    }
    if let Value::Object(o) = v {
        let mut out = Vec::new();
        for (fp, x) in o {
            if let Ok(fixes) = serde_json::from_value::<Vec<KnownFix>>(x.clone()) {
                out.push(Entry {
                    fingerprint: fp.clone(),
                    fixes,
                });
            } else if let Some(e) = entry(x, Some(fp)) {
                out.push(e);
            }
        }
        return Ok(out);
    }
    Err(anyhow!(
        "unexpected answer from the learner: {}",
        crate::render::clip(&v.to_string(), 200)
    ))
}

/// Writes the table.
pub fn write_table(entries: &[Entry], out: &mut dyn std::io::Write) -> Result<()> {
    if entries.iter().all(|e| e.fixes.is_empty()) {
        writeln!(
            out,
            "the learning store knows no fix{}",
            if entries.len() == 1 {
                " for this fingerprint"
            } else {
                " yet"
            }
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<18} {:<36} {:>7} {:>9} {:>11}  last incident",
        "fingerprint", "strategy", "healed", "attempts", "median heal"
    )?;
    for e in entries {
        for f in &e.fixes {
            writeln!(
                out,
                "{:<18} {:<36} {:>7} {:>9} {:>11}  {}",
                crate::render::short(&e.fingerprint),
                f.strategy,
                f.healed,
                f.attempts,
                f.median_heal_secs
                    .map(|s| format!("{s:.1}s"))
                    .unwrap_or_else(|| "-".into()),
                f.last_incident_id.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(())
}

/// Fetches and prints.
pub async fn run(args: &KnowledgeArgs, out: &mut (dyn std::io::Write + Send)) -> Result<()> {
    let base = args.learner_url.trim_end_matches('/');
    let url = match &args.fingerprint {
        Some(fp) => format!("{base}/v1/fixes/{}", fp.trim()),
        None => format!("{base}/v1/fixes"),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()?;
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url} (is the learner running?)"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        return Err(anyhow!("GET {url}: HTTP {status}: {}", crate::render::clip(&text, 200)));
    }
    let v: Value = serde_json::from_str(&text).with_context(|| format!("the answer of {url} is not JSON"))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    write_table(&parse_entries(&v)?, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fix() -> Value {
        serde_json::json!({"strategy": "python.zero-division-guard", "healed": 2, "attempts": 3,
            "median_heal_secs": 26.5, "last_incident_id": "inc-1", "last_diff": null})
    }

    #[test]
    fn reads_one_fingerprint_a_list_and_a_map() {
        let one = serde_json::json!({"fingerprint": "fp1", "fixes": [fix()]});
        assert_eq!(parse_entries(&one).unwrap()[0].fixes[0].healed, 2);
        let list = serde_json::json!([{"fingerprint": "fp1", "fixes": [fix()]}, {"fingerprint": "fp2", "fixes": []}]);
        assert_eq!(parse_entries(&list).unwrap().len(), 2);
        let wrapped = serde_json::json!({"fingerprints": [{"fingerprint": "fp1", "fixes": [fix()]}]});
        assert_eq!(parse_entries(&wrapped).unwrap()[0].fingerprint, "fp1");
        let map = serde_json::json!({"fp1": [fix()]});
        assert_eq!(parse_entries(&map).unwrap()[0].fingerprint, "fp1");
    }

    #[test]
    fn table_lists_strategy_counts_and_median() {
        let e = parse_entries(&serde_json::json!({"fingerprint": "fp1", "fixes": [fix()]})).unwrap();
        let mut out = Vec::new();
        write_table(&e, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("python.zero-division-guard") && text.contains("26.5s") && text.contains("inc-1"),
            "{text}"
        );
        let mut out = Vec::new();
        write_table(
            &[Entry {
                fingerprint: "x".into(),
                fixes: vec![],
            }],
            &mut out,
        )
        .unwrap();
        assert!(String::from_utf8(out).unwrap().contains("knows no fix"));
    }
}
