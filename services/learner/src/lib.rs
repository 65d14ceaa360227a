//! learner: the RocksDB learning store and its query API.
//!
//! The learner consumes `outcomes` and remembers, per failure fingerprint and fix strategy,
//! how often the fix was deployed, how often it healed and how fast ([`aggregate`]), in a
//! RocksDB database ([`store`]) that survives restarts. The diagnoser, the repairer and the
//! `selfheal knowledge` command ask it over HTTP ([`api`]) what worked before.
//!
//! Replays are harmless: each outcome is stored under its incident id, a repeat of the
//! same outcome changes nothing, and a corrected outcome for the same incident replaces
//! the old one's contribution instead of adding to it.

pub mod aggregate;
pub mod api;
pub mod error;
pub mod store;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use selfheal_core::http::{Health, ops_router};
use selfheal_core::metrics::Metrics;
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{KnownFix, Outcome};

pub use aggregate::{FixAggregate, rank, wilson_lower_bound};
pub use api::{AllFixes, FingerprintFixes};
pub use error::LearnerError;
pub use store::{KnowledgeStore, RocksStore};

/// Default database directory (`--db-path`, `SELFHEAL_LEARNER_DB`).
pub const DEFAULT_DB_PATH: &str = "./.selfheal/learner.db";
/// Default address of the query API (`--api-addr`, `SELFHEAL_LEARNER_API_ADDR`).
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8090";

/// What storing one outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new incident: stored and counted.
    New,
    /// The same outcome was stored before: nothing changed.
    Duplicate,
    /// A different outcome for a known incident: the old contribution was replaced.
    Replaced,
}

struct Inner {
    store: Arc<dyn KnowledgeStore>,
    /// Serialises read-modify-write of aggregates (the API only reads).
    write: Mutex<()>,
}

/// The aggregate of a fingerprint and strategy among those being changed, loaded from the
/// store (or new) the first time.
fn aggregate_for<'m>(
    store: &dyn KnowledgeStore,
    changed: &'m mut BTreeMap<(String, String), FixAggregate>,
    fingerprint: &str,
    strategy: &str,
) -> Result<&'m mut FixAggregate, LearnerError> {
    match changed.entry((fingerprint.to_string(), strategy.to_string())) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => {
            let agg = store
                .fix(fingerprint, strategy)?
                .unwrap_or_else(|| FixAggregate::new(fingerprint, strategy));
            Ok(e.insert(agg))
        }
    }
}

/// The learning stage and its store; cheap to clone (the API router holds a clone).
#[derive(Clone)]
pub struct Learner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner").finish_non_exhaustive()
    }
}

impl Learner {
    /// Opens (or creates) the RocksDB learning store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Learner, LearnerError> {
        Ok(Self::with_store(Arc::new(RocksStore::open(path)?)))
    }

    /// A learner over any store.
    pub fn with_store(store: Arc<dyn KnowledgeStore>) -> Learner {
        Learner {
            inner: Arc::new(Inner {
                store,
                write: Mutex::new(()),
            }),
        }
    }

    /// Stores one outcome and counts its fix, once per incident.
    pub fn record(&self, outcome: &Outcome) -> Result<Recorded, LearnerError> {
        if outcome.incident_id.trim().is_empty() {
            return Err(LearnerError::Invalid("outcome has no incident_id".into()));
        }
        // A poisoned lock only means another thread panicked mid-update; the store itself
        // is consistent (batches are atomic), so carry on.
        let _guard = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
        let store = &self.inner.store;
        let previous = store.outcome(&outcome.incident_id)?;
        if previous.as_ref() == Some(outcome) {
            return Ok(Recorded::Duplicate);
        }
        // Aggregates touched, by key; the old contribution is removed before the new one is added.
        let mut changed: BTreeMap<(String, String), FixAggregate> = BTreeMap::new();
        for old in previous.as_ref().map(aggregate::contributions).unwrap_or_default() {
            aggregate_for(store.as_ref(), &mut changed, &old.fingerprint, &old.strategy)?.remove(&old);
        }
        for new in aggregate::contributions(outcome) {
            aggregate_for(store.as_ref(), &mut changed, &new.fingerprint, &new.strategy)?.add(&new);
        }
        let changed: Vec<FixAggregate> = changed.into_values().collect();
        store.commit(outcome, &changed)?;
        Ok(if previous.is_some() {
            Recorded::Replaced
        } else {
            Recorded::New
        })
    }

    /// The fixes tried on a fingerprint, best first.
    pub fn try_fixes_for(&self, fingerprint: &str) -> Result<Vec<KnownFix>, LearnerError> {
        let mut aggs = self.inner.store.fixes(fingerprint)?;
        aggs.retain(|a| a.attempts > 0);
        rank(&mut aggs);
        Ok(aggs.iter().map(FixAggregate::to_known_fix).collect())
    }

    /// The fixes tried on a fingerprint, best first, then the templates that healed the same
    /// crash class elsewhere (scope `crash-class`, strategies not already listed), best first:
    /// what the diagnoser hands the repairer.
    pub fn try_fixes_for_incident(
        &self,
        fingerprint: &str,
        exception_type: Option<&str>,
    ) -> Result<Vec<KnownFix>, LearnerError> {
        let mut fixes = self.try_fixes_for(fingerprint)?;
        if let Some(class) = exception_type.and_then(aggregate::class_key) {
            let mut aggs = self.inner.store.fixes(&class)?;
            aggs.retain(|a| a.healed > 0 && !fixes.iter().any(|f| f.strategy == a.strategy));
            rank(&mut aggs);
            fixes.extend(aggs.iter().map(FixAggregate::to_known_fix));
        }
        Ok(fixes)
    }

    /// The fixes tried on a fingerprint, best first; empty (with an error logged) when the
    /// store cannot be read.
    pub fn fixes_for(&self, fingerprint: &str) -> Vec<KnownFix> {
        self.try_fixes_for(fingerprint).unwrap_or_else(|e| {
            tracing::error!(error = %e, fingerprint, "learning store read failed");
            Vec::new()
        })
    }

    /// Every fingerprint with its fixes, best first, ordered by fingerprint.
    pub fn all_fixes(&self) -> Result<Vec<FingerprintFixes>, LearnerError> {
        let mut by_fp: BTreeMap<String, Vec<FixAggregate>> = BTreeMap::new();
        for agg in self.inner.store.all_fixes()? {
            if agg.attempts > 0 {
                by_fp.entry(agg.fingerprint.clone()).or_default().push(agg);
            }
        }
        Ok(by_fp
            .into_iter()
            .map(|(fingerprint, mut aggs)| {
                rank(&mut aggs);
                FingerprintFixes {
                    fingerprint,
                    fixes: aggs.iter().map(FixAggregate::to_known_fix).collect(),
                }
            })
            .collect())
    }

    /// The stored outcome of an incident.
    pub fn outcome(&self, incident_id: &str) -> Result<Option<Outcome>, LearnerError> {
        self.inner.store.outcome(incident_id)
    }

    /// The `/v1` query routes (see [`api`]).
    pub fn api_router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// The query routes merged with `/healthz`, `/readyz` and `/metrics`.
    pub fn router(&self, health: Health, metrics: Arc<Metrics>) -> axum::Router {
        self.api_router().merge(ops_router(health, metrics))
    }
}

/// The learner is a stage whose output is its database, not a topic. The runner needs an
/// output record type, so it declares `Outcome` (a topic that exists anyway) and always
/// returns no records: nothing is ever published.
#[async_trait]
impl Stage for Learner {
    type Input = Outcome;
    type Output = Outcome;

    fn name(&self) -> &'static str {
        "learner"
    }

    async fn process(&self, input: Outcome, ctx: &RecordContext) -> Result<Vec<Outcome>, StageError> {
        let learner = self.clone();
        let incident = input.incident_id.clone();
        // RocksDB calls block (a synced write); keep them off the async workers.
        let result = tokio::task::spawn_blocking(move || learner.record(&input))
            .await
            .map_err(|e| StageError::Fatal(format!("learner task failed: {e}")))?;
        match result {
            Ok(recorded) => {
                tracing::info!(incident_id = %incident, offset = ctx.offset, ?recorded, "outcome learned");
                Ok(Vec::new())
            }
            Err(LearnerError::Invalid(m)) => Err(StageError::Invalid(m)),
            Err(e @ LearnerError::Corrupt { .. }) => Err(StageError::Fatal(e.to_string())),
            Err(e) => Err(StageError::Transient(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests;
