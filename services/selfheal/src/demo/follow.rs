//! Turning the records of five topics into one incident's story, in stage order.
//!
//! The demo reads anomalies, diagnoses, patches, rollouts and outcomes with one consumer.
//! Records of different topics are not ordered with respect to each other: a diagnosis
//! produced 100 ms after its anomaly can be delivered first. Every incident passes every
//! stage in order (failures travel down the chain as statuses), so a record that arrives
//! before its predecessor stage waits here until the predecessor is printed.

use std::collections::BTreeSet;

use selfheal_events::{Anomaly, Diagnosis, Outcome, Patch, Rollout};

use super::SERVICE;
use super::report::Story;
use super::timeline::{self, Entry};

/// One decoded record of the followed topics.
// Few records of one incident wait at a time; boxing them would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Rec {
    /// From `anomalies`.
    Anomaly(Anomaly),
    /// From `diagnoses`.
    Diagnosis(Diagnosis),
    /// From `patches`.
    Patch(Patch),
    /// From `rollouts`.
    Rollout(Rollout),
    /// From `outcomes`.
    Outcome(Outcome),
}

impl Rec {
    fn incident(&self) -> &str {
        match self {
            Rec::Anomaly(x) => &x.incident_id,
            Rec::Diagnosis(x) => &x.incident_id,
            Rec::Patch(x) => &x.incident_id,
            Rec::Rollout(x) => &x.incident_id,
            Rec::Outcome(x) => &x.incident_id,
        }
    }

    /// Position in the chain: anomaly 0, diagnosis 1, patch 2, rollout steps 3, outcome 4.
    fn rank(&self) -> u8 {
        match self {
            Rec::Anomaly(_) => 0,
            Rec::Diagnosis(_) => 1,
            Rec::Patch(_) => 2,
            Rec::Rollout(_) => 3,
            Rec::Outcome(_) => 4,
        }
    }
}

/// Records kept for incidents not yet followed, at most; older ones are dropped.
const MAX_EARLY: usize = 1000;

/// Follows the first incident of the demo's service.
#[derive(Debug, Default)]
pub struct Follower {
    /// What was printed so far.
    pub story: Story,
    incident: Option<String>,
    /// Highest rank printed for the followed incident.
    printed: Option<u8>,
    /// Records waiting for their predecessor stage (or for their incident's anomaly).
    waiting: Vec<Rec>,
    others: BTreeSet<String>,
}

impl Follower {
    /// A follower filling `story`.
    pub fn new(story: Story) -> Self {
        Follower {
            story,
            ..Follower::default()
        }
    }

    /// The followed incident, once its anomaly arrived.
    pub fn incident(&self) -> Option<&str> {
        self.incident.as_deref()
    }

    /// Takes one record; returns the entries to print now, in order. The outcome, once
    /// printed, is in `story.outcome`.
    pub fn accept(&mut self, rec: Rec) -> Vec<Entry> {
        let mut out = Vec::new();
        if let Rec::Anomaly(a) = &rec
            && self.incident.is_none()
            && a.service == SERVICE
        {
            self.incident = Some(a.incident_id.clone());
        }
        match self.incident.as_deref() {
            Some(id) if rec.incident() == id => self.waiting.push(rec),
            Some(_) => {
                if let Rec::Anomaly(a) = &rec
                    && self.others.insert(a.incident_id.clone())
                {
                    out.push(Entry {
                        t: None,
                        stage: "monitor",
                        lines: vec![format!(
                            "(another incident {} opened: {})",
                            crate::render::short(&a.incident_id),
                            crate::render::clip(&a.summary, 80)
                        )],
                    });
                }
                return out;
            }
            None => {
                if self.waiting.len() >= MAX_EARLY {
                    self.waiting.remove(0);
                }
                self.waiting.push(rec);
                return out;
            }
        }
        self.release(&mut out, false);
        out
    }

    /// Prints whatever waits for the followed incident, in stage order, even with a stage
    /// missing (used when nothing arrived for a while).
    pub fn flush(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        self.release(&mut out, true);
        out
    }

    /// Whether an outcome of the followed incident waits for an earlier stage.
    pub fn outcome_waiting(&self) -> bool {
        self.waiting
            .iter()
            .any(|r| matches!(r, Rec::Outcome(o) if Some(o.incident_id.as_str()) == self.incident.as_deref()))
    }

    fn release(&mut self, out: &mut Vec<Entry>, force: bool) {
        let Some(id) = self.incident.clone() else { return };
        loop {
            // The earliest-stage record of the incident; ties keep arrival order (rollout steps).
            let next = self
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, r)| r.incident() == id)
                .min_by_key(|(i, r)| (r.rank(), *i))
                .map(|(i, r)| (i, r.rank()));
            let Some((i, rank)) = next else { break };
            let ready = match self.printed {
                None => rank == 0,
                Some(p) => rank <= p + 1 || (rank == 3 && p == 3),
            };
            if !ready && !force {
                break;
            }
            let rec = self.waiting.remove(i);
            self.printed = Some(self.printed.map_or(rank, |p| p.max(rank)));
            self.take(rec, out);
        }
        // Records of other incidents that waited for an anomaly are of no use any more.
        self.waiting.retain(|r| r.incident() == id);
    }

    fn take(&mut self, rec: Rec, out: &mut Vec<Entry>) {
        let mut push = |story: &mut Story, e: Entry| {
            story.entries.push(e.clone());
            out.push(e);
        };
        match rec {
            Rec::Anomaly(a) => {
                push(&mut self.story, timeline::first_error(&a));
                push(&mut self.story, timeline::anomaly(&a));
                self.story.anomaly = Some(a);
            }
            Rec::Diagnosis(d) => {
                push(&mut self.story, timeline::diagnosis(&d));
                self.story.diagnosis = Some(d);
            }
            Rec::Patch(p) => {
                push(&mut self.story, timeline::patch(&p));
                self.story.patch = Some(p);
            }
            Rec::Rollout(r) => {
                push(&mut self.story, timeline::rollout(&r));
                self.story.rollouts.push(r);
            }
            Rec::Outcome(o) => {
                push(&mut self.story, timeline::outcome(&o));
                self.story.outcome = Some(o);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use selfheal_events::examples;

    fn stages(entries: &[Entry]) -> Vec<&'static str> {
        entries.iter().map(|e| e.stage).collect()
    }

    #[test]
    fn records_that_overtake_their_predecessors_wait_for_them() {
        let mut f = Follower::default();
        // The diagnosis and the patch arrive before the anomaly.
        assert!(f.accept(Rec::Diagnosis(examples::diagnosis())).is_empty());
        assert!(f.accept(Rec::Patch(examples::patch())).is_empty());
        let out = f.accept(Rec::Anomaly(examples::anomaly()));
        assert_eq!(stages(&out), vec!["service", "monitor", "diagnoser", "repairer"]);
        // The outcome overtakes the rollout steps.
        assert!(f.accept(Rec::Outcome(examples::outcome())).is_empty());
        assert!(f.outcome_waiting());
        let mut approved = examples::rollout();
        approved.step = selfheal_events::RolloutStep::Approved;
        let out = f.accept(Rec::Rollout(approved));
        assert_eq!(stages(&out), vec!["rollout", "verifier"]);
        assert!(f.story.outcome.is_some());
        assert_eq!(f.story.entries.len(), 6);
    }

    #[test]
    fn other_services_and_incidents_do_not_enter_the_story() {
        let mut f = Follower::default();
        let mut other = examples::anomaly();
        other.service = "checkout".into();
        other.incident_id = "other".into();
        assert!(f.accept(Rec::Anomaly(other.clone())).is_empty());
        f.accept(Rec::Anomaly(examples::anomaly()));
        let mut second = examples::anomaly();
        second.incident_id = "second".into();
        let out = f.accept(Rec::Anomaly(second.clone()));
        assert!(out[0].lines[0].contains("another incident"), "{out:?}");
        assert!(f.accept(Rec::Anomaly(second)).is_empty(), "mentioned once");
        let mut d = examples::diagnosis();
        d.incident_id = "second".into();
        assert!(f.accept(Rec::Diagnosis(d)).is_empty());
        assert_eq!(f.incident(), Some(examples::anomaly().incident_id.as_str()));
    }

    #[test]
    fn flush_prints_what_waits_even_with_a_stage_missing() {
        let mut f = Follower::default();
        f.accept(Rec::Anomaly(examples::anomaly()));
        assert!(f.accept(Rec::Outcome(examples::outcome())).is_empty());
        let out = f.flush();
        assert_eq!(stages(&out), vec!["verifier"]);
        assert!(f.story.outcome.is_some());
    }
}
