//! The monitor as a pipeline stage: `telemetry.raw` → `anomalies`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Anomaly, TelemetryEvent};

use crate::config::MonitorConfig;
use crate::detector::Detector;
use crate::error::MonitorError;
use crate::incidents::Incident;
use crate::lru::Lru;
use crate::state::{FileStateStore, StateStore};

/// Source positions whose anomalies are remembered for redelivery.
const REMEMBERED_OUTPUTS: usize = 1024;

/// Locks a mutex, recovering the state if a panic poisoned it (the state is
/// consistent between events: every update completes before the lock is released).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The monitor stage.
pub struct Monitor {
    config: MonitorConfig,
    detector: Mutex<Detector>,
    store: Option<Arc<dyn StateStore>>,
    emitted: Mutex<Lru<String, Vec<Anomaly>>>,
    last_save: Mutex<Instant>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// A monitor with `config`; with `state_dir` set, it continues from the state saved
    /// there (unreadable state is logged and replaced by a fresh start).
    pub fn new(config: MonitorConfig) -> Self {
        let store: Option<Arc<dyn StateStore>> = config
            .state_dir
            .clone()
            .map(|d| Arc::new(FileStateStore::new(d)) as Arc<dyn StateStore>);
        match store {
            Some(s) => Self::with_store(config.clone(), s.clone()).unwrap_or_else(|e| {
                tracing::warn!("starting without the saved monitor state: {e}");
                Self::build(config.clone(), Detector::new(config), Some(s))
            }),
            None => Self::build(config.clone(), Detector::new(config), None),
        }
    }

    /// A monitor continuing from `store` (and saving into it); fails when the saved
    /// state cannot be read.
    pub fn with_store(config: MonitorConfig, store: Arc<dyn StateStore>) -> Result<Self, MonitorError> {
        let detector = match store.load()? {
            Some(saved) => {
                tracing::info!(
                    services = saved.seen.len(),
                    open_incidents = saved.open.len(),
                    "monitor state restored"
                );
                Detector::restore(config.clone(), saved)
            }
            None => Detector::new(config.clone()),
        };
        Ok(Self::build(config, detector, Some(store)))
    }

    fn build(config: MonitorConfig, detector: Detector, store: Option<Arc<dyn StateStore>>) -> Self {
        Monitor {
            detector: Mutex::new(detector),
            config,
            store,
            emitted: Mutex::new(Lru::new(REMEMBERED_OUTPUTS)),
            last_save: Mutex::new(Instant::now()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Processes one event outside the stage runner (tests, replays, `selfheal`).
    pub fn observe(&self, event: &TelemetryEvent) -> Result<Vec<Anomaly>, MonitorError> {
        lock(&self.detector).observe(event)
    }

    /// Incidents open right now.
    pub fn open_incidents(&self) -> Vec<Incident> {
        lock(&self.detector).open_incidents()
    }

    /// Runs `f` on the detector (inspection by tests and tools; hold it briefly).
    pub fn with_detector<R>(&self, f: impl FnOnce(&Detector) -> R) -> R {
        f(&lock(&self.detector))
    }

    /// The state as it would be saved.
    pub fn snapshot(&self) -> crate::state::SavedState {
        lock(&self.detector).snapshot()
    }

    /// Writes the state to the store now (call it at shutdown); a no-op without a store.
    pub fn save_state(&self) -> Result<(), MonitorError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = lock(&self.detector).snapshot();
        store.save(&state)?;
        *lock(&self.last_save) = Instant::now();
        Ok(())
    }

    /// Saves the state when the save interval has passed, off the async threads.
    async fn maybe_save(&self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        {
            let mut last = lock(&self.last_save);
            if last.elapsed() < self.config.state_save_interval {
                return;
            }
            *last = Instant::now();
        }
        let state = lock(&self.detector).snapshot();
        match tokio::task::spawn_blocking(move || store.save(&state)).await {
            Ok(Ok(())) => tracing::debug!("monitor state saved"),
            Ok(Err(e)) => tracing::warn!("monitor state not saved: {e}"),
            Err(e) => tracing::warn!("monitor state save task failed: {e}"),
        }
    }
}

#[async_trait]
impl Stage for Monitor {
    type Input = TelemetryEvent;
    type Output = Anomaly;

    fn name(&self) -> &'static str {
        "monitor"
    }

    /// Redelivery of the record that opened an incident (a retry after a failed publish,
    /// or a replay after a rebalance) returns the same anomaly, same incident id, so
    /// that it is published after all and recognised downstream by its key; any other
    /// record of an open incident emits nothing.
    async fn process(&self, input: TelemetryEvent, ctx: &RecordContext) -> Result<Vec<Anomaly>, StageError> {
        let position = format!("{}/{}/{}/{}", ctx.topic, ctx.partition, ctx.offset, input.event_id);
        if let Some(previous) = lock(&self.emitted).get_mut(&position) {
            return Ok(previous.clone());
        }
        let out = self.observe(&input).map_err(|e| match e {
            MonitorError::Invalid(reason) => StageError::Invalid(reason),
            other => StageError::Transient(other.to_string()),
        })?;
        if !out.is_empty() {
            lock(&self.emitted).insert(position, out.clone());
        }
        self.maybe_save().await;
        Ok(out)
    }
}
