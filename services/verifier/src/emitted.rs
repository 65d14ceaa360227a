//! Which incidents already have an Outcome, so a replayed rollout step does not make a second one.
//!
//! Keyed by incident id, remembering the source record (partition, offset) that produced the
//! Outcome: the runner redoes the same record when publishing failed, and that redo must
//! produce the Outcome again, while a different record for the same incident (a replay, a
//! duplicate step) must produce nothing. Bounded in memory; optionally persisted as one
//! JSON file per incident under a state directory so a restart does not forget.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use selfheal_events::Outcome;
use serde::{Deserialize, Serialize};

/// One emitted Outcome and the record that produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Emitted {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The Outcome.
    pub outcome: Outcome,
}

/// Remembered Outcomes, bounded.
#[derive(Debug)]
pub struct EmittedLog {
    inner: Mutex<Inner>,
    dir: Option<PathBuf>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Emitted>,
    order: VecDeque<String>,
}

impl EmittedLog {
    /// A log keeping `capacity` incidents in memory, persisted under `dir` when given.
    pub fn new(dir: Option<PathBuf>, capacity: usize) -> std::io::Result<Self> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(EmittedLog {
            inner: Mutex::new(Inner::default()),
            dir,
            capacity: capacity.max(1),
        })
    }

    /// The Outcome already emitted for `incident_id`, if any.
    pub fn get(&self, incident_id: &str) -> Option<Emitted> {
        if let Some(e) = self.inner.lock().ok().and_then(|i| i.map.get(incident_id).cloned()) {
            return Some(e);
        }
        let path = self.path_of(incident_id)?;
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Remembers an emitted Outcome.
    pub fn put(&self, emitted: Emitted) -> std::io::Result<()> {
        let id = emitted.outcome.incident_id.clone();
        if let Some(path) = self.path_of(&id) {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&emitted).map_err(std::io::Error::other)?)?;
            std::fs::rename(tmp, path)?;
        }
        if let Ok(mut inner) = self.inner.lock() {
            if inner.map.insert(id.clone(), emitted).is_none() {
                inner.order.push_back(id);
            }
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.map.remove(&old);
                }
            }
        }
        Ok(())
    }

    fn path_of(&self, incident_id: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        safe_file_stem(incident_id).map(|stem| dir.join(format!("{stem}.json")))
    }
}

/// Incident ids come from Kafka: only ids that are plain file names are used as file names.
pub fn safe_file_stem(id: &str) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    ok.then_some(id)
}
