//! What rollout remembers per incident: patches waiting for approval and finished rollouts.
//!
//! One JSON file per incident under the state directory (`pending/<id>.json`,
//! `done/<id>.json`), so pending patches survive a restart and a replayed patch or
//! approval for a finished incident is recognised instead of deploying twice.

use std::path::{Path, PathBuf};

use selfheal_events::{Patch, Rollout};

/// Patches waiting for a person, and the last step of finished rollouts.
pub trait PendingStore: Send + Sync {
    /// Keeps a patch until it is approved or rejected.
    fn put(&self, patch: &Patch) -> std::io::Result<()>;
    /// The pending patch of an incident.
    fn get(&self, incident_id: &str) -> std::io::Result<Option<Patch>>;
    /// Forgets a pending patch.
    fn remove(&self, incident_id: &str) -> std::io::Result<()>;
    /// Every pending patch, oldest patch first (for `selfheal pending`).
    fn list(&self) -> std::io::Result<Vec<Patch>>;
    /// Records the final step of an incident's rollout.
    fn finish(&self, step: &Rollout) -> std::io::Result<()>;
    /// The final step of an incident's rollout, when it finished.
    fn finished(&self, incident_id: &str) -> std::io::Result<Option<Rollout>>;
}

/// [`PendingStore`] as JSON files under a directory.
#[derive(Debug, Clone)]
pub struct FilePendingStore {
    pending: PathBuf,
    done: PathBuf,
}

impl FilePendingStore {
    /// A store under `dir` (created when missing).
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let pending = dir.as_ref().join("pending");
        let done = dir.as_ref().join("done");
        std::fs::create_dir_all(&pending)?;
        std::fs::create_dir_all(&done)?;
        Ok(FilePendingStore { pending, done })
    }
}

/// Incident ids come from Kafka; only ids that are plain file names become file names.
pub fn valid_incident_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn file(dir: &Path, id: &str) -> std::io::Result<PathBuf> {
    if !valid_incident_id(id) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("incident id `{}` is not a plain name", id.escape_debug()),
        ));
    }
    Ok(dir.join(format!("{id}.json")))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl PendingStore for FilePendingStore {
    fn put(&self, patch: &Patch) -> std::io::Result<()> {
        write_json(&file(&self.pending, &patch.incident_id)?, patch)
    }

    fn get(&self, incident_id: &str) -> std::io::Result<Option<Patch>> {
        read_json(&file(&self.pending, incident_id)?)
    }

    fn remove(&self, incident_id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(file(&self.pending, incident_id)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn list(&self) -> std::io::Result<Vec<Patch>> {
        let mut patches = Vec::new();
        for entry in std::fs::read_dir(&self.pending)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Some(p) = read_json::<Patch>(&path)? {
                patches.push(p);
            }
        }
        patches.sort_by_key(|p| (p.timeline.patch_ms, p.incident_id.clone()));
        Ok(patches)
    }

    fn finish(&self, step: &Rollout) -> std::io::Result<()> {
        write_json(&file(&self.done, &step.incident_id)?, step)?;
        self.remove(&step.incident_id)
    }

    fn finished(&self, incident_id: &str) -> std::io::Result<Option<Rollout>> {
        read_json(&file(&self.done, incident_id)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pending_survives_reopen_and_finish_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let patch = selfheal_events::examples::patch();
        FilePendingStore::open(dir.path()).unwrap().put(&patch).unwrap();
        let store = FilePendingStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&patch.incident_id).unwrap(), Some(patch.clone()));
        assert_eq!(store.list().unwrap(), vec![patch.clone()]);
        let mut step = selfheal_events::examples::rollout();
        step.incident_id = patch.incident_id.clone();
        store.finish(&step).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.finished(&patch.incident_id).unwrap(), Some(step));
    }

    #[test]
    fn hostile_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilePendingStore::open(dir.path()).unwrap();
        let mut patch = selfheal_events::examples::patch();
        patch.incident_id = "../../etc/passwd".into();
        assert!(store.put(&patch).is_err());
        assert!(store.get("..").is_err());
    }
}
