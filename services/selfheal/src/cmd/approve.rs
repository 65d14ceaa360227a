//! `selfheal approve`, `selfheal reject` and `selfheal pending`: the human side of the
//! approval step. A decision is an `Approval` record on `approvals`; the rollout service
//! waiting for it picks it up. `pending` lists patches whose rollout waits for one.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use selfheal_core::{KafkaArgs, Publisher, RegistryArgs, RuntimeArgs, Shutdown};
use selfheal_events::{Approval, ApprovalDecision, ApprovalMode, Codec, Record, Rollout, RolloutStep};

use crate::render::short;
use crate::topics_io;

/// Arguments of `selfheal approve` and `selfheal reject`.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The incident whose patch is decided (as shown by `selfheal pending`).
    pub incident_id: String,
    /// Who decides; defaults to $USER.
    #[arg(long, env = "SELFHEAL_APPROVER")]
    pub by: Option<String>,
    /// Why, recorded with the decision.
    #[arg(long, env = "SELFHEAL_APPROVAL_REASON")]
    pub reason: Option<String>,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `selfheal pending`.
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// Print one JSON object per pending rollout instead of a summary.
    #[arg(long, env = "SELFHEAL_PENDING_JSON")]
    pub json: bool,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The decision record for `incident_id`.
pub fn decision(incident_id: &str, approved: bool, by: &str, reason: Option<String>) -> Approval {
    Approval {
        incident_id: incident_id.to_string(),
        decision: ApprovalDecision {
            approved,
            by: by.to_string(),
            mode: ApprovalMode::Human,
            at_ms: selfheal_core::now_ms(),
            reason,
            channel: Some("cli".into()),
        },
    }
}

/// Who decides when `--by` is absent.
fn default_approver() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    {
        return u;
    }
    // Containers often run without $USER; the account name is still known.
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Publishes an approval (or rejection) and returns the record.
pub async fn decide(args: &DecideArgs, approved: bool, shutdown: &Shutdown) -> Result<Approval> {
    let incident = args.incident_id.trim();
    if incident.is_empty() {
        return Err(anyhow!("the incident id is empty"));
    }
    let by = args.by.clone().unwrap_or_else(default_approver);
    let record = decision(incident, approved, &by, args.reason.clone());
    let topic = args.kafka.topic(Approval::TOPIC);
    let codec = Arc::new(Codec::new(&args.registry.url)?);
    selfheal_core::kafka::probe(&args.kafka).await?;
    crate::topics_io::ensure_topics(&args.kafka, std::slice::from_ref(&topic)).await;
    // A person is waiting: retry a registry that is down for a while, not forever.
    tokio::time::timeout(
        Duration::from_secs(20),
        selfheal_core::service::register_schema::<Approval>(&codec, &topic, shutdown, &RuntimeArgs::default()),
    )
    .await
    .map_err(|_| anyhow!("the schema registry at {} did not answer within 20s", args.registry.url))?
    .with_context(|| format!("registering the approval schema at {}", args.registry.url))?;
    let publisher = Publisher::new(selfheal_core::kafka::producer(&args.kafka)?, codec, "selfheal-cli");
    let (partition, offset) = publisher
        .publish(&topic, &record, &HashMap::new())
        .await
        .with_context(|| format!("publishing to {topic}"))?;
    tracing::debug!(partition, offset, "approval published");
    Ok(record)
}

/// A rollout waiting for a decision.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The last rollout step of the incident (AwaitingApproval).
    pub rollout: Rollout,
}

/// The incidents whose last rollout step is `AwaitingApproval`, oldest first, from records in order.
pub fn pending_from(records: impl IntoIterator<Item = Rollout>) -> Vec<Pending> {
    let mut last: BTreeMap<String, Rollout> = BTreeMap::new();
    for r in records {
        // Records of one incident share a partition (keyed by incident), so arrival order is step order.
        last.insert(r.incident_id.clone(), r);
    }
    let mut pending: Vec<Pending> = last
        .into_values()
        .filter(|r| r.step == RolloutStep::AwaitingApproval)
        .map(|rollout| Pending { rollout })
        .collect();
    pending.sort_by_key(|p| p.rollout.step_ms);
    pending
}

/// Reads `rollouts` up to its current end and lists what waits for approval.
pub async fn pending(args: &PendingArgs, out: &mut (dyn std::io::Write + Send)) -> Result<usize> {
    let topic = args.kafka.topic(Rollout::TOPIC);
    let codec = Codec::new(&args.registry.url)?;
    let mut raw = Vec::new();
    topics_io::read_to_end(
        &args.kafka,
        std::slice::from_ref(&topic),
        Duration::from_secs(15),
        |r| raw.push(r),
    )
    .await?;
    let mut rollouts = Vec::with_capacity(raw.len());
    for r in &raw {
        let Some(v) = r.value.as_deref() else { continue };
        match codec.decode::<Rollout>(v).await {
            Ok(x) => rollouts.push(x),
            Err(e) => eprintln!(
                "{}/{} offset {}: cannot decode: {e}; skipped",
                r.topic, r.partition, r.offset
            ),
        }
    }
    let list = pending_from(rollouts);
    if args.json {
        for p in &list {
            writeln!(out, "{}", serde_json::to_string(&p.rollout)?)?;
        }
        return Ok(list.len());
    }
    if list.is_empty() {
        writeln!(out, "no patch awaits approval")?;
        return Ok(0);
    }
    for p in &list {
        write_pending(p, out)?;
    }
    writeln!(
        out,
        "decide with: selfheal approve <incident-id>   or   selfheal reject <incident-id> --reason '…'"
    )?;
    Ok(list.len())
}

fn write_pending(p: &Pending, out: &mut (dyn std::io::Write + Send)) -> Result<()> {
    let r = &p.rollout;
    let patch = &r.patch;
    writeln!(
        out,
        "incident {}  service {}  waiting since {}",
        r.incident_id,
        r.service,
        crate::render::clock(r.step_ms)
    )?;
    writeln!(
        out,
        "  strategy  {}{}",
        patch.strategy.as_deref().unwrap_or("-"),
        if patch.learned { " (learned)" } else { "" }
    )?;
    writeln!(
        out,
        "  branch    {} {}",
        patch.branch.as_deref().unwrap_or("-"),
        patch.commit.as_deref().map(short).unwrap_or("")
    )?;
    writeln!(
        out,
        "  files     {}",
        if patch.files_changed.is_empty() {
            "-".into()
        } else {
            patch.files_changed.join(", ")
        }
    )?;
    if let Some(v) = &patch.validation {
        writeln!(
            out,
            "  tests     regression failed before: {} · passed after: {} · suite: {} ({} run, {} failed)",
            v.failed_before, v.passed_after, v.suite_passed, v.tests_run, v.tests_failed
        )?;
    }
    writeln!(out, "  diff      {}", diff_summary(&patch.diff))?;
    writeln!(out, "  summary   {}", crate::render::clip(&patch.summary, 160))?;
    Ok(())
}

/// `N files, +A -R` of a unified diff.
pub fn diff_summary(diff: &str) -> String {
    let (mut files, mut added, mut removed) = (0, 0, 0);
    for line in diff.lines() {
        if line.starts_with("+++ ") {
            files += 1;
        } else if line.starts_with('+') && !line.starts_with("+++") {
            added += 1;
        } else if line.starts_with('-') && !line.starts_with("---") {
            removed += 1;
        }
    }
    format!("{files} file(s), +{added} -{removed}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn step(incident: &str, step: RolloutStep, ms: i64) -> Rollout {
        let mut r = selfheal_events::examples::rollout();
        r.incident_id = incident.into();
        r.step = step;
        r.step_ms = ms;
        r
    }

    #[test]
    fn only_incidents_whose_last_step_awaits_approval_are_pending() {
        let list = pending_from(vec![
            step("a", RolloutStep::AwaitingApproval, 1),
            step("b", RolloutStep::AwaitingApproval, 2),
            step("a", RolloutStep::Approved, 3),
            step("c", RolloutStep::Promoted, 4),
            step("d", RolloutStep::AwaitingApproval, 0),
        ]);
        let ids: Vec<&str> = list.iter().map(|p| p.rollout.incident_id.as_str()).collect();
        assert_eq!(ids, vec!["d", "b"]);
    }

    #[test]
    fn decision_is_human_with_reason() {
        let a = decision("inc-1", false, "alice", Some("not now".into()));
        assert_eq!(a.incident_id, "inc-1");
        assert!(!a.decision.approved);
        assert_eq!(a.decision.mode, ApprovalMode::Human);
        assert_eq!(a.decision.by, "alice");
        assert_eq!(a.decision.reason.as_deref(), Some("not now"));
        assert!(a.decision.at_ms > 0);
    }

    #[test]
    fn diff_summary_counts_files_and_lines() {
        let d = "--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n-a\n+b\n+c\n--- /dev/null\n+++ b/t.py\n@@ -0,0 +1 @@\n+t\n";
        assert_eq!(diff_summary(d), "2 file(s), +3 -1");
    }

    #[test]
    fn pending_listing_shows_service_strategy_files_and_diff() {
        let mut out = Vec::new();
        let p = Pending {
            rollout: step("inc-9", RolloutStep::AwaitingApproval, 5),
        };
        write_pending(&p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("inc-9") && text.contains(&p.rollout.service), "{text}");
        assert!(text.contains("file(s)"), "{text}");
    }
}
