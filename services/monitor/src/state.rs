//! Persisted monitor state, so that a restart neither forgets which fingerprints a
//! service has shown (a known failure must not be reported as new) nor re-opens the
//! incidents that are open, and keeps log template ids stable.
//!
//! [`StateStore`] is the seam; [`FileStateStore`] writes two files into a directory
//! (`monitor-state.json`, `log-templates.json`), each atomically (write a temporary
//! file, then rename), and [`MemoryStateStore`] keeps them in memory for tests and
//! for `selfheal up` without a state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::baseline::Baseline;
use crate::error::MonitorError;
use crate::incidents::Incident;

/// Version of the state format.
pub const STATE_VERSION: u32 = 1;
/// Monitor state file name.
pub const STATE_FILE: &str = "monitor-state.json";
/// Log template snapshot file name.
pub const TEMPLATES_FILE: &str = "log-templates.json";

/// The baseline of one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedBaseline {
    /// The service.
    pub service: String,
    /// The operation.
    pub operation: String,
    /// Its baseline.
    pub baseline: Baseline,
}

/// Everything the monitor persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    /// Format version ([`STATE_VERSION`]).
    pub version: u32,
    /// Fingerprints each service has shown.
    pub seen: BTreeMap<String, Vec<String>>,
    /// Incidents open at the time of saving.
    pub open: Vec<Incident>,
    /// Error-rate baselines per operation.
    pub baselines: Vec<SavedBaseline>,
    /// The log template models (`selfheal_drain` snapshot bytes), stored separately.
    #[serde(skip)]
    pub log_templates: Vec<u8>,
}

/// Where the monitor keeps its state between runs.
pub trait StateStore: Send + Sync {
    /// The last saved state, `None` when nothing was saved yet.
    fn load(&self) -> Result<Option<SavedState>, MonitorError>;
    /// Replaces the saved state.
    fn save(&self, state: &SavedState) -> Result<(), MonitorError>;
}

/// State kept in two files of a directory.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    dir: PathBuf,
}

impl FileStateStore {
    /// A store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStateStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MonitorError + '_ {
    move |source| MonitorError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MonitorError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, MonitorError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl StateStore for FileStateStore {
    fn load(&self) -> Result<Option<SavedState>, MonitorError> {
        let path = self.dir.join(STATE_FILE);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let mut state: SavedState = serde_json::from_slice(&bytes).map_err(|e| MonitorError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(MonitorError::Corrupt {
                path: path.display().to_string(),
                reason: format!("unsupported version {}", state.version),
            });
        }
        state.log_templates = read_optional(&self.dir.join(TEMPLATES_FILE))?.unwrap_or_default();
        Ok(Some(state))
    }

    fn save(&self, state: &SavedState) -> Result<(), MonitorError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let bytes = serde_json::to_vec(state).map_err(|e| MonitorError::Corrupt {
            path: self.dir.join(STATE_FILE).display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.dir.join(TEMPLATES_FILE), &state.log_templates)?;
        write_atomic(&self.dir.join(STATE_FILE), &bytes)
    }
}

/// State kept in memory (shared between clones), e.g. to hand it from one monitor to the next.
#[derive(Debug, Clone, Default)]
pub struct MemoryStateStore {
    inner: Arc<Mutex<Option<SavedState>>>,
}

impl StateStore for MemoryStateStore {
    fn load(&self) -> Result<Option<SavedState>, MonitorError> {
        Ok(self.inner.lock().map(|g| g.clone()).unwrap_or_default())
    }

    fn save(&self, state: &SavedState) -> Result<(), MonitorError> {
        if let Ok(mut g) = self.inner.lock() {
            *g = Some(state.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_reports_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path().join("state"));
        assert_eq!(store.load().unwrap(), None);
        let mut s = SavedState {
            version: STATE_VERSION,
            ..SavedState::default()
        };
        s.seen.insert("api".into(), vec!["abc".into()]);
        s.log_templates = b"{\"x\":1}".to_vec();
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), Some(s));
        std::fs::write(store.dir().join(STATE_FILE), b"not json").unwrap();
        assert!(matches!(store.load(), Err(MonitorError::Corrupt { .. })));
    }
}
