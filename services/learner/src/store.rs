//! Where the learner keeps what it learned: a small trait, and its RocksDB implementation.
//!
//! Layout (one key space, prefixes keep the kinds apart; components are escaped so a `/` in
//! a fingerprint or strategy cannot fake another key):
//!
//! - `outcome/<incident_id>` → the Outcome as JSON: the idempotency record, and the
//!   answer of `GET /v1/outcomes/{incident_id}`;
//! - `fix/<fingerprint>/<strategy>` → [`FixAggregate`] as JSON.
//!
//! An outcome and the aggregates it changes are written in one atomic, synced batch, so a
//! crash can never count an outcome without remembering it (or the opposite).

use std::path::Path;

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use selfheal_events::Outcome;

use crate::aggregate::FixAggregate;
use crate::error::LearnerError;

const OUTCOME_PREFIX: &str = "outcome/";
const FIX_PREFIX: &str = "fix/";

/// Storage of outcomes and fix aggregates.
pub trait KnowledgeStore: Send + Sync {
    /// The stored outcome of an incident.
    fn outcome(&self, incident_id: &str) -> Result<Option<Outcome>, LearnerError>;
    /// The aggregate of one strategy for one fingerprint.
    fn fix(&self, fingerprint: &str, strategy: &str) -> Result<Option<FixAggregate>, LearnerError>;
    /// Every aggregate of a fingerprint, unordered.
    fn fixes(&self, fingerprint: &str) -> Result<Vec<FixAggregate>, LearnerError>;
    /// Every aggregate of every fingerprint, unordered.
    fn all_fixes(&self) -> Result<Vec<FixAggregate>, LearnerError>;
    /// Stores the outcome and the aggregates it changed, all or nothing.
    fn commit(&self, outcome: &Outcome, changed: &[FixAggregate]) -> Result<(), LearnerError>;
}

/// Escapes a key component: `%` and `/` are percent-encoded.
fn escape(component: &str) -> String {
    component.replace('%', "%25").replace('/', "%2F")
}

fn outcome_key(incident_id: &str) -> String {
    format!("{OUTCOME_PREFIX}{}", escape(incident_id))
}

fn fix_prefix(fingerprint: &str) -> String {
    format!("{FIX_PREFIX}{}/", escape(fingerprint))
}

fn fix_key(fingerprint: &str, strategy: &str) -> String {
    format!("{}{}", fix_prefix(fingerprint), escape(strategy))
}

/// The learning store in a RocksDB database.
pub struct RocksStore {
    db: DB,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).finish()
    }
}

impl RocksStore {
    /// Opens (creating if needed, with its parent directories) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LearnerError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LearnerError::Io {
                path: parent.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, path)?;
        Ok(RocksStore { db })
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LearnerError> {
        match self.db.get(key.as_bytes())? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| LearnerError::Corrupt {
                    key: key.to_string(),
                    message: e.to_string(),
                }),
        }
    }

    fn scan_fixes(&self, prefix: &str) -> Result<Vec<FixAggregate>, LearnerError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(prefix.as_bytes(), Direction::Forward))
        {
            let (key, value) = item?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let agg: FixAggregate = serde_json::from_slice(&value).map_err(|e| LearnerError::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                message: e.to_string(),
            })?;
            out.push(agg);
        }
        Ok(out)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, LearnerError> {
    serde_json::to_vec(value).map_err(|e| LearnerError::Invalid(e.to_string()))
}

impl KnowledgeStore for RocksStore {
    fn outcome(&self, incident_id: &str) -> Result<Option<Outcome>, LearnerError> {
        self.get_json(&outcome_key(incident_id))
    }

    fn fix(&self, fingerprint: &str, strategy: &str) -> Result<Option<FixAggregate>, LearnerError> {
        self.get_json(&fix_key(fingerprint, strategy))
    }

    fn fixes(&self, fingerprint: &str) -> Result<Vec<FixAggregate>, LearnerError> {
        self.scan_fixes(&fix_prefix(fingerprint))
    }

    fn all_fixes(&self) -> Result<Vec<FixAggregate>, LearnerError> {
        self.scan_fixes(FIX_PREFIX)
    }

    fn commit(&self, outcome: &Outcome, changed: &[FixAggregate]) -> Result<(), LearnerError> {
        let mut batch = WriteBatch::default();
        batch.put(outcome_key(&outcome.incident_id).as_bytes(), to_json(outcome)?);
        for agg in changed {
            batch.put(fix_key(&agg.fingerprint, &agg.strategy).as_bytes(), to_json(agg)?);
        }
        // Synced: the runner stores the Kafka offset right after this returns, so the
        // outcome must be on disk, not only in the page cache.
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_in_components_cannot_collide() {
        assert_ne!(fix_key("a/b", "c"), fix_key("a", "b/c"));
        assert!(!fix_key("a/b", "c").starts_with(&fix_prefix("a")));
        assert_eq!(escape("%2F"), "%252F");
    }
}
