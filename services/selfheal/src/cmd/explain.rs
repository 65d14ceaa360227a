//! `selfheal explain <incident-id>`: why the agent did what it did for one incident.
//!
//! It gathers the incident's own records — anomaly, diagnosis, patch, rollout steps,
//! outcome — from the pipeline topics (read up to their current end, without a consumer
//! group) or from a recording made by `selfheal record`, and tells them in order: the
//! evidence, each hypothesis and where it came from, what a language model was asked and
//! what it answered, every repair candidate with its critique, sandbox proof and policy
//! verdict, the winning diff, the rollout and the outcome, and what the model cost.
//!
//! The renderer ([`render_text`]) is a pure function from records to a string, so the demo
//! can reuse it and tests need no broker. Every text that came from telemetry or a model is
//! untrusted: it passes through [`render::sanitize`] before it reaches a terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use selfheal_core::{KafkaArgs, RegistryArgs};
use selfheal_events::{
    Anomaly, Codec, CodecError, Diagnosis, HypothesisSource, LlmReport, Outcome, Patch, PatchAttempt, PolicyVerdict,
    Record, Rollout, Validation, topics,
};
use serde::Serialize;

use crate::cmd::record;
use crate::render;
use crate::topics_io;

/// The topics an incident's story is read from, in the order it flows through them.
pub const TOPICS: [&str; 5] = [
    topics::ANOMALIES,
    topics::DIAGNOSES,
    topics::PATCHES,
    topics::ROLLOUTS,
    topics::OUTCOMES,
];

/// Records that may belong to the incident kept for decoding at most; past it the id is too
/// unspecific (a short prefix) and the reader stops rather than filling memory.
pub const MAX_CANDIDATES: usize = 10_000;

/// How long the topic reader waits for a record its end offsets promise.
const READ_IDLE: Duration = Duration::from_secs(15);

/// Arguments of `selfheal explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// The incident id (a unique prefix, as `selfheal tail` prints it, is enough).
    pub incident_id: String,
    /// Explain from a recording made by `selfheal record` instead of reading the topics.
    #[arg(long, env = "SELFHEAL_EXPLAIN_FROM")]
    pub from: Option<PathBuf>,
    /// Print one JSON object `{incident_id, anomaly, diagnosis, patch, rollouts, outcome}` for tools.
    #[arg(long, env = "SELFHEAL_EXPLAIN_JSON")]
    pub json: bool,
    /// Show prompts, answers, critiques and diffs in full instead of their first lines.
    #[arg(long, env = "SELFHEAL_EXPLAIN_FULL")]
    pub full: bool,
    /// Kafka connection (`--topic-prefix` names the topics read).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry (with `--from`, the recording's own registry is tried when this one cannot decode).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Every record of one incident, as the pipeline wrote them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentRecords {
    /// The incident id.
    pub incident_id: String,
    /// The monitor's anomaly, when read.
    pub anomaly: Option<Anomaly>,
    /// The diagnoser's last diagnosis.
    pub diagnosis: Option<Diagnosis>,
    /// The repairer's last patch.
    pub patch: Option<Patch>,
    /// Every rollout step, in the order written (exact replayed duplicates dropped).
    pub rollouts: Vec<Rollout>,
    /// The verifier's last outcome.
    pub outcome: Option<Outcome>,
}

impl IncidentRecords {
    /// Whether no record of the incident was found.
    pub fn is_empty(&self) -> bool {
        self.anomaly.is_none()
            && self.diagnosis.is_none()
            && self.patch.is_none()
            && self.rollouts.is_empty()
            && self.outcome.is_none()
    }

    /// The service, from the first record that names it.
    pub fn service(&self) -> Option<&str> {
        let names = [
            self.anomaly.as_ref().map(|a| a.service.as_str()),
            self.diagnosis.as_ref().map(|d| d.service.as_str()),
            self.patch.as_ref().map(|p| p.service.as_str()),
            self.rollouts.first().map(|r| r.service.as_str()),
            self.outcome.as_ref().map(|o| o.service.as_str()),
        ];
        names.into_iter().flatten().find(|s| !s.is_empty())
    }

    /// The failure fingerprint, from the first record that carries it.
    pub fn fingerprint(&self) -> Option<&str> {
        let prints = [
            self.anomaly.as_ref().map(|a| a.fingerprint.as_str()),
            self.diagnosis.as_ref().map(|d| d.fingerprint.as_str()),
            self.patch.as_ref().map(|p| p.fingerprint.as_str()),
            self.rollouts.first().map(|r| r.fingerprint.as_str()),
            self.outcome.as_ref().map(|o| o.fingerprint.as_str()),
        ];
        prints.into_iter().flatten().find(|s| !s.is_empty())
    }

    /// The incident's language-model totals: the latest report (outcome, then patch, then
    /// diagnosis), since each carries the incident's running totals.
    pub fn llm_totals(&self) -> Option<&LlmReport> {
        self.outcome
            .as_ref()
            .and_then(|o| o.llm.as_ref())
            .or_else(|| self.patch.as_ref().and_then(|p| p.llm.as_ref()))
            .or_else(|| self.diagnosis.as_ref().and_then(|d| d.llm.as_ref()))
    }

    /// The JSON object `--json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "incident_id": self.incident_id,
            "anomaly": self.anomaly,
            "diagnosis": self.diagnosis,
            "patch": self.patch,
            "rollouts": self.rollouts,
            "outcome": self.outcome,
        })
    }
}

/// One decoded pipeline record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// From `anomalies`.
    Anomaly(Box<Anomaly>),
    /// From `diagnoses`.
    Diagnosis(Box<Diagnosis>),
    /// From `patches`.
    Patch(Box<Patch>),
    /// From `rollouts`.
    Rollout(Box<Rollout>),
    /// From `outcomes`.
    Outcome(Box<Outcome>),
}

impl Decoded {
    /// The incident the record belongs to.
    pub fn incident_id(&self) -> &str {
        match self {
            Decoded::Anomaly(r) => &r.incident_id,
            Decoded::Diagnosis(r) => &r.incident_id,
            Decoded::Patch(r) => &r.incident_id,
            Decoded::Rollout(r) => &r.incident_id,
            Decoded::Outcome(r) => &r.incident_id,
        }
    }
}

/// Picks the incident `wanted` names among decoded records, in the order they were read:
/// an exact id wins; otherwise a prefix naming exactly one incident. The last anomaly,
/// diagnosis, patch and outcome win (a replay may duplicate them); rollout steps are kept
/// in order, dropping exact duplicates. `Ok(None)` when no record matches; an error when
/// the prefix is ambiguous.
pub fn select(wanted: &str, decoded: Vec<Decoded>) -> Result<Option<IncidentRecords>> {
    let id = if decoded.iter().any(|d| d.incident_id() == wanted) {
        wanted.to_string()
    } else {
        let mut ids: Vec<&str> = decoded
            .iter()
            .map(Decoded::incident_id)
            .filter(|id| id.starts_with(wanted))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        match ids.as_slice() {
            [] => return Ok(None),
            [one] => one.to_string(),
            many => bail!(
                "`{}` is the start of {} incident ids ({}); give more of it",
                render::one_line(wanted, Some(80)),
                many.len(),
                many.iter()
                    .take(5)
                    .map(|id| render::one_line(id, Some(80)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let mut r = IncidentRecords {
        incident_id: id.clone(),
        ..Default::default()
    };
    for d in decoded.into_iter().filter(|d| d.incident_id() == id) {
        match d {
            Decoded::Anomaly(a) => r.anomaly = Some(*a),
            Decoded::Diagnosis(x) => r.diagnosis = Some(*x),
            Decoded::Patch(p) => r.patch = Some(*p),
            Decoded::Rollout(x) => {
                if !r.rollouts.contains(&x) {
                    r.rollouts.push(*x);
                }
            }
            Decoded::Outcome(o) => r.outcome = Some(*o),
        }
    }
    Ok(Some(r))
}

/// A value that may belong to the incident, with the logical topic it came from.
#[derive(Debug, Clone)]
struct Candidate {
    topic: String,
    value: Vec<u8>,
}

/// Whether `value` can hold a record of an incident whose id starts with `wanted`: Avro
/// stores strings as raw UTF-8 bytes, so such a record contains them. A cheap, sound
/// filter that spares decoding every other incident's records.
fn may_mention(value: &[u8], wanted: &[u8]) -> bool {
    !wanted.is_empty() && value.windows(wanted.len()).any(|w| w == wanted)
}

/// What was read to find the incident, for the answer and for the "not found" message.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Where the records came from: topics at brokers, or a file.
    pub source: String,
    /// Records read.
    pub scanned: u64,
    /// Records that may belong to the incident but did not decode.
    pub undecodable: u64,
}

/// Decodes the candidates, trying each registry in turn for values whose schema id the first does not know.
async fn decode_all(codecs: &[Codec], candidates: Vec<Candidate>, scan: &mut Scan) -> Vec<Decoded> {
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        match decode_one(codecs, &c).await {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) => {
                scan.undecodable += 1;
                tracing::warn!(topic = %c.topic, error = %e, "record does not decode; skipped");
            }
        }
    }
    out
}

async fn decode_one(codecs: &[Codec], c: &Candidate) -> Result<Option<Decoded>, CodecError> {
    Ok(Some(match c.topic.as_str() {
        topics::ANOMALIES => Decoded::Anomaly(Box::new(decode_with(codecs, &c.value).await?)),
        topics::DIAGNOSES => Decoded::Diagnosis(Box::new(decode_with(codecs, &c.value).await?)),
        topics::PATCHES => Decoded::Patch(Box::new(decode_with(codecs, &c.value).await?)),
        topics::ROLLOUTS => Decoded::Rollout(Box::new(decode_with(codecs, &c.value).await?)),
        topics::OUTCOMES => Decoded::Outcome(Box::new(decode_with(codecs, &c.value).await?)),
        _ => return Ok(None),
    }))
}

async fn decode_with<R: Record>(codecs: &[Codec], bytes: &[u8]) -> Result<R, CodecError> {
    let mut last = CodecError::Registry("no registry configured".into());
    for codec in codecs {
        match codec.decode::<R>(bytes).await {
            Ok(r) => return Ok(r),
            Err(e @ (CodecError::NotWireFormat(_) | CodecError::TooLarge(_))) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Reads the incident's records from the pipeline topics (`anomalies` … `outcomes` under the
/// prefix of `kafka`), from the beginning up to their end offsets at start. Topics that do not
/// exist yet are skipped; the call fails only when none can be read.
pub async fn gather_from_topics(
    kafka: &KafkaArgs,
    codec: &Codec,
    wanted: &str,
) -> Result<(Option<IncidentRecords>, Scan)> {
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    for t in TOPICS {
        let full = kafka.topic(t);
        match topics_io::partition_ranges_async(kafka, std::slice::from_ref(&full)).await {
            Ok(r) if !r.is_empty() => existing.push(full),
            Ok(_) => missing.push(format!("{full}: no partitions")),
            Err(e) => missing.push(format!("{e:#}")),
        }
    }
    if existing.is_empty() {
        bail!(
            "none of the pipeline topics can be read at {}: {}",
            kafka.brokers,
            missing.join("; ")
        );
    }
    let mut scan = Scan {
        source: format!("topics {} at {}", existing.join(", "), kafka.brokers),
        ..Default::default()
    };
    if !missing.is_empty() {
        scan.source.push_str(&format!(" (not read: {})", missing.join("; ")));
    }
    let prefix = kafka.topic_prefix.as_str();
    let mut candidates = Vec::new();
    let mut overflow = false;
    let n = topics_io::read_to_end(kafka, &existing, READ_IDLE, |r| {
        let Some(value) = r.value else { return };
        if overflow || !may_mention(&value, wanted.as_bytes()) {
            return;
        }
        if candidates.len() >= MAX_CANDIDATES {
            overflow = true;
            return;
        }
        let topic = r.topic.strip_prefix(prefix).unwrap_or(&r.topic).to_string();
        candidates.push(Candidate { topic, value });
    })
    .await?;
    scan.scanned = n;
    if overflow {
        bail!("more than {MAX_CANDIDATES} records mention `{wanted}`; give the full incident id");
    }
    let decoded = decode_all(std::slice::from_ref(codec), candidates, &mut scan).await;
    Ok((select(wanted, decoded)?, scan))
}

/// Reads the incident's records from a recording made by `selfheal record`. Values carry
/// schema ids of the registry they were written with: `registry` is tried first, then the
/// registry the recording names.
pub async fn gather_from_recording(
    path: &Path,
    registry: &str,
    wanted: &str,
) -> Result<(Option<IncidentRecords>, Scan)> {
    let (header, lines) = record::read_recording(path)?;
    let mut codecs = vec![Codec::new(registry)?];
    if header.registry.trim_end_matches('/') != registry.trim_end_matches('/') && !header.registry.is_empty() {
        codecs.push(Codec::new(&header.registry)?);
    }
    let mut scan = Scan {
        source: format!("{} (topics {})", path.display(), header.topics.join(", ")),
        ..Default::default()
    };
    let mut candidates = Vec::new();
    for line in lines.iter().filter(|l| TOPICS.contains(&l.topic.as_str())) {
        scan.scanned += 1;
        let Some(value) = line.value()? else { continue };
        if !may_mention(&value, wanted.as_bytes()) {
            continue;
        }
        if candidates.len() >= MAX_CANDIDATES {
            bail!("more than {MAX_CANDIDATES} records mention `{wanted}`; give the full incident id");
        }
        candidates.push(Candidate {
            topic: line.topic.clone(),
            value,
        });
    }
    let decoded = decode_all(&codecs, candidates, &mut scan).await;
    Ok((select(wanted, decoded)?, scan))
}

/// Gathers the incident's records from the source `args` names; fails with a message
/// naming what was read when the incident is unknown.
pub async fn gather(args: &ExplainArgs) -> Result<IncidentRecords> {
    let wanted = args.incident_id.trim();
    if wanted.is_empty() {
        bail!("the incident id is empty");
    }
    let (found, scan) = match &args.from {
        Some(path) => gather_from_recording(path, &args.registry.url, wanted).await?,
        None => {
            let codec = Codec::new(&args.registry.url)?;
            gather_from_topics(&args.kafka, &codec, wanted).await?
        }
    };
    let undecodable = if scan.undecodable > 0 {
        format!(", {} of them mentioning it did not decode", scan.undecodable)
    } else {
        String::new()
    };
    found.filter(|r| !r.is_empty()).ok_or_else(|| {
        anyhow!(
            "no record of incident `{}` in {}: {} records scanned{undecodable}",
            render::one_line(wanted, Some(80)),
            scan.source,
            scan.scanned
        )
    })
}

/// `selfheal explain`: gathers the incident and prints the explanation (or the JSON object).
pub async fn run(args: &ExplainArgs, out: &mut dyn Write) -> Result<()> {
    let records = gather(args).await?;
    if args.json {
        writeln!(out, "{}", records.to_json())?;
    } else {
        let opts = if args.full {
            RenderOptions::full()
        } else {
            RenderOptions::default()
        };
        write!(out, "{}", render_text(&records, &opts))?;
    }
    out.flush().context("writing the explanation")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------------------

/// How much of long texts (prompts, answers, critiques, diffs, code) to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Lines shown of a long text block; `None` shows all.
    pub max_lines: Option<usize>,
    /// Characters shown of one line; `None` shows all.
    pub max_line_chars: Option<usize>,
}

impl Default for RenderOptions {
    /// Bounded: the first lines of each block, lines cut at a terminal-friendly width.
    fn default() -> Self {
        RenderOptions {
            max_lines: Some(12),
            max_line_chars: Some(200),
        }
    }
}

impl RenderOptions {
    /// Everything, in full (`--full`).
    pub fn full() -> Self {
        RenderOptions {
            max_lines: None,
            max_line_chars: None,
        }
    }
}

/// The text being built, with indentation helpers; every untrusted string goes through
/// [`render::sanitize`] on its way in.
struct Doc<'a> {
    s: String,
    opts: &'a RenderOptions,
}

impl Doc<'_> {
    /// A line of trusted structure around untrusted values (already cleaned by `t`).
    fn line(&mut self, indent: usize, text: impl AsRef<str>) {
        self.s.extend(std::iter::repeat_n(' ', indent));
        self.s.push_str(text.as_ref());
        self.s.push('\n');
    }

    /// Untrusted text as one bounded line.
    fn t(&self, text: &str) -> String {
        render::one_line(text, self.opts.max_line_chars)
    }

    /// A block of untrusted text, indented, bounded unless `--full`.
    fn block(&mut self, indent: usize, text: &str) {
        let clean = render::sanitize(text);
        let lines: Vec<&str> = clean.trim_end().lines().collect();
        let shown = self.opts.max_lines.unwrap_or(usize::MAX).min(lines.len());
        for l in &lines[..shown] {
            let l = l.trim_end();
            let cut = match self.opts.max_line_chars {
                Some(max) if l.chars().count() > max => {
                    let mut c: String = l.chars().take(max).collect();
                    c.push('…');
                    c
                }
                _ => l.to_string(),
            };
            self.line(indent, format!("│ {cut}"));
        }
        if lines.len() > shown {
            self.line(
                indent,
                format!("… {} more lines (--full shows all)", lines.len() - shown),
            );
        }
    }

    fn heading(&mut self, title: impl AsRef<str>) {
        self.s.push('\n');
        self.line(0, format!("── {}", title.as_ref()));
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn source_word(s: HypothesisSource) -> &'static str {
    match s {
        HypothesisSource::Rule => "rule",
        HypothesisSource::Learned => "learned",
        HypothesisSource::Llm => "model",
    }
}

fn cost(c: Option<f64>) -> String {
    c.map(|c| format!("${c:.4}")).unwrap_or_else(|| "cost unknown".into())
}

/// The whole explanation of one incident, for a person at a terminal.
pub fn render_text(r: &IncidentRecords, opts: &RenderOptions) -> String {
    let mut d = Doc { s: String::new(), opts };
    let service = r.service().map(|s| d.t(s)).unwrap_or_else(|| "?".into());
    let fingerprint = r.fingerprint().map(|s| d.t(s)).unwrap_or_else(|| "?".into());
    let id = d.t(&r.incident_id);
    d.line(
        0,
        format!("incident {id} · service {service} · fingerprint {fingerprint}"),
    );
    anomaly(&mut d, r.anomaly.as_ref());
    diagnosis(&mut d, r.diagnosis.as_ref());
    repair(&mut d, r);
    rollouts(&mut d, &r.rollouts);
    outcome(&mut d, r.outcome.as_ref());
    llm_totals(&mut d, r);
    d.s
}

fn anomaly(d: &mut Doc<'_>, a: Option<&Anomaly>) {
    let Some(a) = a else {
        d.heading("anomaly: not read (no record on `anomalies` for this incident)");
        return;
    };
    d.heading(format!("anomaly · detected {}", render::clock(a.detected_ms)));
    let summary = d.t(&a.summary);
    d.line(2, summary);
    let signals: Vec<String> = a.signals.iter().map(|s| format!("{s:?}")).collect();
    d.line(
        2,
        format!(
            "signals: {} · {} of {} requests failed ({}; baseline {})",
            if signals.is_empty() {
                "-".into()
            } else {
                signals.join(", ")
            },
            a.error_count,
            a.request_count,
            pct(a.error_rate),
            pct(a.baseline_error_rate)
        ),
    );
    if a.operation.is_some() || a.service_version.is_some() {
        let op = a.operation.as_deref().map(|o| d.t(o)).unwrap_or_else(|| "?".into());
        let v = a
            .service_version
            .as_deref()
            .map(|v| d.t(v))
            .unwrap_or_else(|| "?".into());
        d.line(2, format!("operation: {op} · version {v}"));
    }
    if let Some(e) = &a.exception {
        let line = format!("exception: {}: {}", d.t(&e.r#type), d.t(&e.message));
        d.line(2, line);
    }
    for input in a.sample_inputs.iter().take(1) {
        let mut kv: Vec<String> = input.iter().map(|(k, v)| format!("{}={}", d.t(k), d.t(v))).collect();
        kv.sort();
        d.line(2, format!("failing input: {}", kv.join(", ")));
    }
    for e in &a.evidence {
        let line = format!("evidence: {}: {}", d.t(&e.kind), d.t(&e.detail));
        d.line(2, line);
    }
}

fn diagnosis(d: &mut Doc<'_>, x: Option<&Diagnosis>) {
    let Some(x) = x else {
        d.heading("diagnosis: none (no record on `diagnoses` for this incident)");
        return;
    };
    d.heading(format!("diagnosis · {:?} · confidence {:.2}", x.status, x.confidence));
    let summary = d.t(&x.summary);
    d.line(2, summary);
    if let Some(rc) = &x.root_cause {
        let line = format!(
            "root cause: {}:{} in {} — {}: {}",
            d.t(&rc.file),
            rc.line,
            d.t(&rc.function),
            d.t(&rc.exception_type),
            d.t(&rc.message)
        );
        d.line(2, line);
        if let Some(code) = &rc.code_snippet {
            d.block(4, code);
        }
    }
    if x.hypotheses.is_empty() {
        d.line(2, "hypotheses: none");
    } else {
        d.line(2, "hypotheses:");
    }
    for h in &x.hypotheses {
        let place = match (&h.file, h.line, &h.function) {
            (Some(f), Some(l), Some(func)) => format!("  ({}:{l} in {})", d.t(f), d.t(func)),
            (Some(f), Some(l), None) => format!("  ({}:{l})", d.t(f)),
            (Some(f), None, _) => format!("  ({})", d.t(f)),
            _ => String::new(),
        };
        let line = format!(
            "#{} [{} · {:.2}] {} — {}{place}",
            h.rank,
            source_word(h.source),
            h.confidence,
            d.t(&h.category),
            d.t(&h.summary)
        );
        d.line(4, line);
        for e in &h.evidence {
            let line = format!("{}: {}", d.t(&e.kind), d.t(&e.detail));
            d.line(8, line);
        }
    }
    for k in &x.known_fixes {
        let heal = render::secs(k.median_heal_secs);
        let line = format!(
            "known fix: {} healed {} of {} incidents (median {heal})",
            d.t(&k.strategy),
            k.healed,
            k.attempts
        );
        d.line(2, line);
    }
    if let Some(llm) = &x.llm {
        llm_exchanges(d, "diagnoser", llm);
    }
}

fn llm_exchanges(d: &mut Doc<'_>, stage: &str, llm: &LlmReport) {
    let model = d.t(&llm.model);
    d.heading(format!("language model asked by the {stage} · {model}"));
    if llm.exchanges.is_empty() {
        d.line(2, "no exchange recorded");
    }
    for (i, x) in llm.exchanges.iter().enumerate() {
        let c = x.cost_usd.map(|c| format!(" · ${c:.4}")).unwrap_or_default();
        let purpose = d.t(&x.purpose);
        d.line(
            2,
            format!(
                "exchange {} · {purpose} · round {} · {} ms · {} in / {} out tokens · {} redactions{c}",
                i + 1,
                x.round,
                x.latency_ms,
                x.input_tokens,
                x.output_tokens,
                x.redactions
            ),
        );
        d.line(4, "prompt:");
        d.block(6, &x.prompt);
        match &x.answer {
            Some(a) => {
                d.line(4, "answer:");
                d.block(6, a);
            }
            None => d.line(4, "answer: none"),
        }
        if let Some(e) = &x.error {
            let e = d.t(e);
            d.line(4, format!("error: {e}"));
        }
    }
    for n in &llm.notes {
        let n = d.t(n);
        d.line(2, format!("note: {n}"));
    }
}

fn validation_line(v: &Validation) -> String {
    format!(
        "failed before {} · passed after {} · suite passed {} ({} run, {} failed) · {} · {}",
        yes_no(v.failed_before),
        yes_no(v.passed_after),
        yes_no(v.suite_passed),
        v.tests_run,
        v.tests_failed,
        render::secs(Some(v.duration_ms as f64 / 1000.0)),
        render::one_line(&v.sandbox, Some(120))
    )
}

fn validation(d: &mut Doc<'_>, indent: usize, v: &Validation) {
    d.line(indent, format!("validation: {}", validation_line(v)));
    if !v.output_tail.trim().is_empty() {
        d.block(indent + 2, &v.output_tail);
    }
}

fn policy(d: &mut Doc<'_>, indent: usize, p: &PolicyVerdict) {
    if p.allowed {
        d.line(
            indent,
            format!("policy: allowed ({} rules evaluated)", p.rules_evaluated),
        );
    } else {
        d.line(
            indent,
            format!("policy: DENIED ({} rules evaluated)", p.rules_evaluated),
        );
    }
    for v in &p.violations {
        let v = d.t(v);
        d.line(indent + 2, format!("violation: {v}"));
    }
}

fn attempt(d: &mut Doc<'_>, i: usize, a: &PatchAttempt) {
    let line = format!("attempt {} · {} → {}", i + 1, d.t(&a.strategy), d.t(&a.result));
    d.line(2, line);
    let reason = d.t(&a.reason);
    d.line(4, format!("reason: {reason}"));
    if let Some(c) = &a.critique {
        d.line(4, "critique:");
        d.block(6, c);
    }
    if let Some(v) = &a.validation {
        validation(d, 4, v);
    }
    if let Some(p) = &a.policy {
        policy(d, 4, p);
    }
    if let Some(diff) = a.diff.as_deref().filter(|s| !s.trim().is_empty()) {
        d.line(4, "diff:");
        d.block(6, diff);
    }
}

fn repair(d: &mut Doc<'_>, r: &IncidentRecords) {
    let Some(p) = &r.patch else {
        d.heading("repair: no record on `patches` for this incident");
        // The outcome keeps the attempts too, so the candidates are still told.
        if let Some(o) = r.outcome.as_ref().filter(|o| !o.attempts.is_empty()) {
            d.line(2, "attempts, as the outcome keeps them:");
            for (i, a) in o.attempts.iter().enumerate() {
                attempt(d, i, a);
            }
        }
        return;
    };
    d.heading(format!("repair · {:?}", p.status));
    let summary = d.t(&p.summary);
    d.line(2, summary);
    if p.attempts.is_empty() {
        d.line(2, "no candidate was tried");
    }
    for (i, a) in p.attempts.iter().enumerate() {
        attempt(d, i, a);
    }
    match &p.strategy {
        Some(s) => {
            let learned = if p.learned { " (learned)" } else { "" };
            let branch = p.branch.as_deref().map(|b| d.t(b)).unwrap_or_else(|| "-".into());
            let commit = p.commit.as_deref().map(|c| d.t(c)).unwrap_or_else(|| "-".into());
            let line = format!("winning patch: {}{learned} · branch {branch} · commit {commit}", d.t(s));
            d.line(2, line);
            if !p.files_changed.is_empty() {
                let files: Vec<String> = p.files_changed.iter().map(|f| d.t(f)).collect();
                d.line(4, format!("files: {}", files.join(", ")));
            }
            if let Some(t) = &p.regression_test {
                let line = format!("regression test: {}::{}", d.t(&t.file), d.t(&t.name));
                d.line(4, line);
            }
            if let Some(v) = &p.validation {
                validation(d, 4, v);
            }
            if let Some(pol) = &p.policy {
                policy(d, 4, pol);
            }
            if !p.diff.trim().is_empty() {
                d.line(4, "diff:");
                d.block(6, &p.diff);
            }
        }
        None => d.line(2, "winning patch: none"),
    }
    if let Some(llm) = &p.llm {
        llm_exchanges(d, "repairer", llm);
    }
}

fn rollouts(d: &mut Doc<'_>, steps: &[Rollout]) {
    let Some(first) = steps.first() else {
        d.heading("rollout: no step on `rollouts` for this incident");
        return;
    };
    let deployer = d.t(&first.deployer);
    d.heading(format!("rollout · deployer {deployer}"));
    for s in steps {
        let detail = d.t(&s.detail);
        d.line(
            2,
            format!(
                "{} · {} · {detail}",
                render::clock(s.step_ms),
                render::step_word(s.step)
            ),
        );
        if let (Some(c), Some(st)) = (s.canary_error_rate, s.stable_error_rate) {
            d.line(
                4,
                format!(
                    "canary {} of {} requests vs stable {} of {} · {}% of traffic to the canary",
                    pct(c),
                    s.canary_requests,
                    pct(st),
                    s.stable_requests,
                    s.traffic_percent
                ),
            );
        }
        if let Some(a) = &s.approval {
            let reason = a.reason.as_deref().map(|r| format!(": {}", d.t(r))).unwrap_or_default();
            let line = format!(
                "{} by {} ({:?}){reason}",
                if a.approved { "approved" } else { "rejected" },
                d.t(&a.by),
                a.mode
            );
            d.line(4, line);
        }
    }
    // Reports accumulate step after step: the last one holds every measurement.
    if let Some(report) = steps.iter().rev().find_map(|s| s.canary_report.as_ref()) {
        canary_report(d, report);
    }
}

/// The statistical canary analysis: per measurement and metric, both sample sizes, the test,
/// its statistic and p-value, the effect against its bound and the verdict.
fn canary_report(d: &mut Doc<'_>, report: &selfheal_events::CanaryReport) {
    let decision = d.t(&report.decision);
    let verdict = d.t(&report.verdict);
    d.line(
        2,
        format!("canary analysis · last verdict {verdict} · decision {decision}"),
    );
    for m in &report.metrics {
        let effect = if m.metric == "latency" {
            format!("median ×{:.2} (bound ×{:.2})", m.effect, m.bound)
        } else if m.test == "fingerprint" {
            format!("{} occurrences (bound 0)", m.effect)
        } else {
            format!("{:+.1}% (bound {:.1}%)", m.effect * 100.0, m.bound * 100.0)
        };
        d.line(
            4,
            format!(
                "step {} ({}%) #{} · {} · {} · n canary {} / stable {} · statistic {:.2} · p={:.4} · effect {effect} · {}",
                m.step + 1,
                m.weight,
                m.measurement,
                d.t(&m.metric),
                d.t(&m.test),
                m.canary_samples,
                m.stable_samples,
                m.statistic,
                m.p_value,
                d.t(&m.verdict).to_uppercase()
            ),
        );
        if let (Some(c), Some(s)) = (&m.canary_latency_ms, &m.stable_latency_ms)
            && let ([c50, c95, c99], [s50, s95, s99]) = (c.as_slice(), s.as_slice())
        {
            d.line(
                6,
                format!("p50/p95/p99 canary {c50:.1}/{c95:.1}/{c99:.1} ms · stable {s50:.1}/{s95:.1}/{s99:.1} ms"),
            );
        }
    }
}

fn outcome(d: &mut Doc<'_>, o: Option<&Outcome>) {
    let Some(o) = o else {
        d.heading("outcome: none yet (no record on `outcomes` for this incident)");
        return;
    };
    d.heading(format!("outcome · {}", render::status_word(o.status)));
    let summary = d.t(&o.summary);
    d.line(2, summary);
    if let Some(f) = &o.fix {
        let learned = if f.learned { " (learned)" } else { "" };
        let line = format!("fix: {}{learned}", d.t(&f.strategy));
        d.line(2, line);
    }
    if let Some(v) = &o.verification {
        d.line(
            2,
            format!(
                "verification: {} occurrences in {} requests over {}",
                v.occurrences,
                v.requests,
                render::secs(Some(v.window_ms as f64 / 1000.0))
            ),
        );
    }
    let t = &o.timeline;
    let steps = [
        ("anomaly", t.anomaly_ms),
        ("diagnosis", t.diagnosis_ms),
        ("patch", t.patch_ms),
        ("approval", t.approval_ms),
        ("canary", t.canary_ms),
        ("promotion", t.promotion_ms),
        ("rollback", t.rollback_ms),
        ("outcome", t.outcome_ms),
    ];
    let marks: Vec<String> = steps
        .iter()
        .filter(|(_, ms)| ms.is_some())
        .map(|(name, ms)| format!("{name} +{}", render::secs(render::since_first_error(t, *ms))))
        .collect();
    if t.first_error_ms.is_some() && !marks.is_empty() {
        d.line(2, format!("timeline from first error: {}", marks.join(", ")));
    }
}

fn llm_totals(d: &mut Doc<'_>, r: &IncidentRecords) {
    let Some(t) = r.llm_totals() else {
        d.heading("language model: not asked");
        return;
    };
    d.heading("language model totals for the incident");
    let model = d.t(&t.model);
    d.line(2, format!("model: {model}"));
    d.line(
        2,
        format!(
            "calls {} · {} in / {} out tokens · {} · budget exhausted: {}",
            t.calls,
            t.input_tokens,
            t.output_tokens,
            cost(t.cost_usd),
            if t.budget_exhausted { "YES" } else { "no" }
        ),
    );
    // Notes of every stage, once each: the outcome's totals may not repeat the stages' notes.
    let mut notes: Vec<&str> = Vec::new();
    let reports = [
        r.diagnosis.as_ref().and_then(|x| x.llm.as_ref()),
        r.patch.as_ref().and_then(|x| x.llm.as_ref()),
        r.outcome.as_ref().and_then(|x| x.llm.as_ref()),
    ];
    for rep in reports.into_iter().flatten() {
        for n in &rep.notes {
            if !notes.contains(&n.as_str()) {
                notes.push(n);
            }
        }
    }
    for n in notes {
        let n = d.t(n);
        d.line(2, format!("note: {n}"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use selfheal_events::examples;

    use super::*;

    fn llm_incident() -> IncidentRecords {
        let patch = examples::patch_llm();
        let mut diagnosis = examples::diagnosis();
        diagnosis.incident_id = patch.incident_id.clone();
        IncidentRecords {
            incident_id: patch.incident_id.clone(),
            diagnosis: Some(diagnosis),
            patch: Some(patch),
            ..Default::default()
        }
    }

    fn healed_incident() -> IncidentRecords {
        IncidentRecords {
            incident_id: examples::outcome().incident_id,
            anomaly: Some(examples::anomaly()),
            diagnosis: Some(examples::diagnosis()),
            patch: Some(examples::patch()),
            rollouts: vec![examples::rollout()],
            outcome: Some(examples::outcome()),
        }
    }

    #[test]
    fn a_lost_model_repair_shows_critique_failed_before_and_exchanges() {
        let r = llm_incident();
        let text = render_text(&r, &RenderOptions::default());
        // The critique that rejected the first candidate, and the sandbox's reason for the second.
        assert!(
            text.contains("round 1: revise: RATES.get(currency, 1.0) prices unknown currencies at par"),
            "{text}"
        );
        assert!(text.contains("round 2: revise: still defaults silently."), "{text}");
        assert!(text.contains("→ rejected-by-critique"), "{text}");
        assert!(text.contains("→ failed-before-missing"), "{text}");
        assert!(
            text.contains("the regression test passed on the unpatched code, so it does not reproduce the incident"),
            "{text}"
        );
        assert!(
            text.contains("failed before NO · passed after yes · suite passed yes (27 run, 0 failed)"),
            "{text}"
        );
        // Both exchanges with their purpose, round, latency and tokens.
        assert!(
            text.contains("exchange 1 · patch · round 0 · 2310 ms · 1850 in / 240 out tokens · 0 redactions"),
            "{text}"
        );
        assert!(
            text.contains("exchange 2 · critique · round 1 · 980 ms · 1720 in / 90 out tokens · 0 redactions"),
            "{text}"
        );
        assert!(
            text.contains("│ [system] You review a candidate fix against a checklist..."),
            "{text}"
        );
        assert!(text.contains("winning patch: none"), "{text}");
        // Totals and notes.
        assert!(
            text.contains("calls 5 · 9120 in / 1310 out tokens · cost unknown · budget exhausted: no"),
            "{text}"
        );
        assert!(
            text.contains("note: 2 candidates written, 1 accepted by the critique"),
            "{text}"
        );
        // Attempts in order.
        let first = text
            .find("attempt 1 · python.zero-division-guard → not-applicable")
            .unwrap();
        let second = text.find("attempt 2 · llm → rejected-by-critique").unwrap();
        let third = text.find("attempt 3 · llm → failed-before-missing").unwrap();
        assert!(first < second && second < third, "{text}");
    }

    #[test]
    fn a_hostile_answer_is_printed_without_its_escape_sequences() {
        let mut r = llm_incident();
        let llm = r.patch.as_mut().unwrap().llm.as_mut().unwrap();
        llm.exchanges[0].answer = Some("before\x1b[2Jafter\x1b]0;owned\x07 end".into());
        llm.exchanges[0].error = Some("bad\x1b[31m json".into());
        llm.notes.push("note\u{9b}2J with C1".into());
        r.patch.as_mut().unwrap().attempts[1].critique = Some("crit\x1b[Hique".into());
        let text = render_text(&r, &RenderOptions::full());
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(!text.contains('\u{9b}'), "{text:?}");
        assert!(!text.contains("[2J"), "{text:?}");
        assert!(text.contains("│ beforeafter end"), "{text}");
        assert!(text.contains("error: bad json"), "{text}");
        assert!(text.contains("note: note with C1"), "{text}");
        assert!(text.contains("│ critique"), "{text}");
        // No control character but line breaks survives anywhere in the output.
        assert!(text.chars().all(|c| c == '\n' || !c.is_control()), "{text:?}");
    }

    #[test]
    fn the_canary_report_is_shown_per_step_and_metric() {
        let mut r = healed_incident();
        let mut promoted = r.rollouts[0].clone();
        promoted.canary_report = Some(selfheal_events::CanaryReport {
            metrics: vec![
                selfheal_events::CanaryMetric {
                    step: 0,
                    measurement: 1,
                    weight: 25,
                    metric: "error-rate".into(),
                    test: "fisher-exact".into(),
                    canary_samples: 38,
                    stable_samples: 118,
                    statistic: 0.0,
                    p_value: 1.0,
                    effect: -0.076,
                    bound: 0.01,
                    verdict: "pass".into(),
                    reason: "error-rate canary 0.0% (0/38) vs stable 7.6% (9/118), p=1.0000".into(),
                    ..Default::default()
                },
                selfheal_events::CanaryMetric {
                    step: 0,
                    measurement: 1,
                    weight: 25,
                    metric: "latency".into(),
                    test: "mann-whitney-u".into(),
                    canary_samples: 38,
                    stable_samples: 109,
                    statistic: 2000.0,
                    p_value: 0.42,
                    effect: 1.05,
                    bound: 1.5,
                    verdict: "pass".into(),
                    canary_latency_ms: Some(vec![2.1, 4.0, 6.5]),
                    stable_latency_ms: Some(vec![2.0, 3.9, 7.0]),
                    ..Default::default()
                },
            ],
            verdict: "pass".into(),
            decision: "promote".into(),
        });
        r.rollouts = vec![promoted];
        let text = render_text(&r, &RenderOptions::default());
        assert!(
            text.contains("canary analysis · last verdict pass · decision promote"),
            "{text}"
        );
        assert!(
            text.contains(
                "step 1 (25%) #1 · error-rate · fisher-exact · n canary 38 / stable 118 · statistic 0.00 · p=1.0000 · effect -7.6% (bound 1.0%) · PASS"
            ),
            "{text}"
        );
        assert!(
            text.contains("latency · mann-whitney-u · n canary 38 / stable 109"),
            "{text}"
        );
        assert!(text.contains("effect median ×1.05 (bound ×1.50)"), "{text}");
        assert!(
            text.contains("p50/p95/p99 canary 2.1/4.0/6.5 ms · stable 2.0/3.9/7.0 ms"),
            "{text}"
        );
    }

    #[test]
    fn a_healed_incident_is_told_from_anomaly_to_outcome() {
        let r = healed_incident();
        let text = render_text(&r, &RenderOptions::default());
        let order = [
            "── anomaly",
            "── diagnosis · Localized · confidence 0.94",
            "── repair · Proposed",
            "── rollout · deployer local-process",
            "── outcome · HEALED",
            "── language model: not asked",
        ];
        let mut at = 0;
        for h in order {
            let i = text[at..]
                .find(h)
                .unwrap_or_else(|| panic!("{h} missing or out of order:\n{text}"));
            at += i + h.len();
        }
        assert!(
            text.contains("#1 [rule · 0.94] division-by-zero — divisor `d` is 0.0 for some inputs"),
            "{text}"
        );
        assert!(
            text.contains("input: pricing.discount=0.0 in 41 failing spans"),
            "{text}"
        );
        assert!(
            text.contains("root cause: pricing_logic.py:14 in calc — ZeroDivisionError"),
            "{text}"
        );
        let p = examples::patch();
        let strategy = p.strategy.clone().unwrap();
        assert!(text.contains(&format!("winning patch: {strategy}")), "{text}");
        let first_diff_line = p.diff.lines().next().unwrap();
        assert!(text.contains(&format!("│ {first_diff_line}")), "{text}");
        assert!(text.contains("promoted"), "{text}");
        assert!(text.contains("approved by catalog (Automatic)"), "{text}");
        assert!(text.contains("outcome +26.0s"), "{text}");
    }

    #[test]
    fn long_texts_are_bounded_unless_full() {
        let mut r = llm_incident();
        let prompt: String = (1..=40).map(|i| format!("prompt line {i}\n")).collect();
        r.patch.as_mut().unwrap().llm.as_mut().unwrap().exchanges[0].prompt = prompt;
        let short = render_text(&r, &RenderOptions::default());
        assert!(short.contains("│ prompt line 12\n"), "{short}");
        assert!(!short.contains("prompt line 13\n"), "{short}");
        assert!(short.contains("… 28 more lines (--full shows all)"), "{short}");
        let full = render_text(&r, &RenderOptions::full());
        assert!(full.contains("│ prompt line 40\n"), "{full}");
        assert!(!full.contains("more lines"), "{full}");
    }

    #[test]
    fn missing_records_are_named_not_invented() {
        let r = IncidentRecords {
            incident_id: "inc-1".into(),
            outcome: Some(examples::outcome()),
            ..Default::default()
        };
        let text = render_text(&r, &RenderOptions::default());
        assert!(text.contains("anomaly: not read"), "{text}");
        assert!(text.contains("diagnosis: none"), "{text}");
        assert!(text.contains("repair: no record on `patches`"), "{text}");
        // The outcome's own copy of the attempts is still shown.
        assert!(
            text.contains("attempt 1 · python.zero-division-guard → selected"),
            "{text}"
        );
        assert!(text.contains("rollout: no step"), "{text}");
    }

    #[test]
    fn json_has_the_documented_keys_and_whole_records() {
        let r = healed_incident();
        let v = r.to_json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec!["incident_id", "anomaly", "diagnosis", "patch", "rollouts", "outcome"];
        expected.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        let back: Patch = serde_json::from_value(v["patch"].clone()).unwrap();
        assert_eq!(back, examples::patch());
        assert_eq!(v["rollouts"].as_array().unwrap().len(), 1);
    }

    fn decoded_of(id: &str) -> Vec<Decoded> {
        let mut d1 = examples::diagnosis();
        d1.incident_id = id.into();
        d1.summary = "first".into();
        let mut d2 = d1.clone();
        d2.summary = "second".into();
        let mut r1 = examples::rollout();
        r1.incident_id = id.into();
        let mut r2 = r1.clone();
        r2.step = selfheal_events::RolloutStep::CanaryStarted;
        vec![
            Decoded::Diagnosis(Box::new(d1)),
            Decoded::Rollout(Box::new(r1.clone())),
            Decoded::Rollout(Box::new(r2)),
            Decoded::Rollout(Box::new(r1)),
            Decoded::Diagnosis(Box::new(d2)),
        ]
    }

    #[test]
    fn the_last_record_wins_and_rollout_steps_keep_their_order() {
        let mut all = decoded_of("aaaa-1");
        all.extend(decoded_of("bbbb-2"));
        let r = select("aaaa-1", all).unwrap().unwrap();
        assert_eq!(r.incident_id, "aaaa-1");
        assert_eq!(r.diagnosis.unwrap().summary, "second");
        let steps: Vec<_> = r.rollouts.iter().map(|s| s.step).collect();
        assert_eq!(
            steps,
            vec![
                selfheal_events::RolloutStep::Promoted,
                selfheal_events::RolloutStep::CanaryStarted
            ],
            "a replayed duplicate is dropped, order kept"
        );
        assert!(r.rollouts.iter().all(|s| s.incident_id == "aaaa-1"));
    }

    #[test]
    fn a_unique_prefix_names_the_incident_an_ambiguous_one_is_refused() {
        let mut all = decoded_of("aaaa-1");
        all.extend(decoded_of("aaab-2"));
        assert_eq!(select("aaaa", all.clone()).unwrap().unwrap().incident_id, "aaaa-1");
        let err = format!("{:#}", select("aaa", all.clone()).unwrap_err());
        assert!(err.contains("aaaa-1") && err.contains("aaab-2"), "{err}");
        assert!(select("zzz", all).unwrap().is_none());
    }

    #[test]
    fn the_byte_filter_keeps_every_record_that_can_match() {
        assert!(may_mention(b"\x00\x00\x00\x00\x01\x0cinc-42rest", b"inc-42"));
        assert!(may_mention(b"\x0cinc-42", b"inc-4"));
        assert!(!may_mention(b"\x0cinc-43", b"inc-42"));
        assert!(!may_mention(b"abc", b""));
    }
}
