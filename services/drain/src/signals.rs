//! Monitor signals built on the miner: one model per service, and two kinds
//! of evidence for the anomaly stream.
//!
//! - [`SignalKind::NewTemplate`]: a line at warning level or above created a
//!   template never seen before (after the service's first `warmup_lines`,
//!   when every template is new).
//! - [`SignalKind::RateSurge`]: in a closed window of event time a known
//!   template matched far more lines than its baseline, an exponentially
//!   weighted average of its per-window counts.
//!
//! The detector is plain synchronous state, fed with event timestamps, so the
//! monitor stage decides where lines come from and where evidence goes, and
//! can persist everything with [`LogSignals::snapshot`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::miner::{MinerConfig, Snapshot, TemplateMiner};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO, NOTICE.
    Info,
    /// WARN, WARNING.
    Warn,
    /// ERROR, ERR, SEVERE.
    Error,
    /// FATAL, CRITICAL, PANIC, EMERG, ALERT.
    Fatal,
}

impl Level {
    /// Parses a level name (case-insensitive, surrounding brackets and colons ignored).
    pub fn parse(s: &str) -> Option<Level> {
        let s = s.trim_matches(|c: char| !c.is_ascii_alphabetic());
        if s.len() > 8 {
            return None;
        }
        let mut up = [0u8; 8];
        for (d, c) in up.iter_mut().zip(s.bytes()) {
            *d = c.to_ascii_uppercase();
        }
        Some(match &up[..s.len()] {
            b"TRACE" => Level::Trace,
            b"DEBUG" | b"DBG" => Level::Debug,
            b"INFO" | b"NOTICE" => Level::Info,
            b"WARN" | b"WARNING" => Level::Warn,
            b"ERROR" | b"ERR" | b"SEVERE" => Level::Error,
            b"FATAL" | b"CRITICAL" | b"CRIT" | b"PANIC" | b"EMERG" | b"ALERT" => Level::Fatal,
            _ => return None,
        })
    }

    /// Finds a level among the first tokens of a line (`ERROR`, `[warn]`,
    /// `level=error`, `"level":"error"`).
    pub fn detect(line: &str) -> Option<Level> {
        for tok in line.split_whitespace().take(8) {
            let t = tok.trim_start_matches('{').trim_end_matches(',');
            let value = match ["level=", "\"level\":", "severity=", "\"severity\":"]
                .iter()
                .find_map(|k| t.strip_prefix(k))
            {
                Some(v) => {
                    let v = v.trim_start_matches('"');
                    &v[..v.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(v.len())]
                }
                None => t,
            };
            if let Some(l) = Level::parse(value) {
                return Some(l);
            }
        }
        None
    }
}

/// Settings of the detector.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    /// Miner settings, the same for every service.
    pub miner: MinerConfig,
    /// Length of a rate window in milliseconds of event time.
    pub window_ms: u64,
    /// Lowest level at which a new template is evidence.
    pub new_template_min_level: Level,
    /// Lines of a service during which new templates are learnt silently.
    pub warmup_lines: u64,
    /// A window count above `surge_factor` times the baseline is a surge.
    pub surge_factor: f64,
    /// Fewest lines in a window for a surge (no alarms on 1 → 6 lines).
    pub surge_min_count: u64,
    /// Windows a template must have existed before its rate can surge.
    pub baseline_windows: u32,
    /// Weight of the newest window in the baseline average.
    pub baseline_alpha: f64,
    /// Example lines kept per template and window.
    pub max_examples: usize,
    /// Bytes kept of an example line.
    pub max_example_len: usize,
    /// Services modelled at once; the least recently active one is dropped beyond it.
    pub max_services: usize,
}

impl Default for SignalConfig {
    fn default() -> Self {
        Self {
            miner: MinerConfig::default(),
            window_ms: 60_000,
            new_template_min_level: Level::Warn,
            warmup_lines: 100,
            surge_factor: 5.0,
            surge_min_count: 20,
            baseline_windows: 3,
            baseline_alpha: 0.2,
            max_examples: 3,
            max_example_len: 512,
            max_services: 1000,
        }
    }
}

/// Which signal a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    /// A template never seen before, at warning level or above.
    NewTemplate,
    /// A known template far above its baseline rate.
    RateSurge,
}

/// Anomaly evidence about one template of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvidence {
    /// The service whose logs produced it.
    pub service: String,
    /// Which signal fired.
    pub kind: SignalKind,
    /// Stable template id.
    pub template_id: u64,
    /// Template text.
    pub template: String,
    /// Highest level seen on the template's lines in the window, when known.
    pub level: Option<Level>,
    /// Example lines (truncated to `max_example_len`).
    pub examples: Vec<String>,
    /// Lines of the template in the window (1 for a new template).
    pub window_count: u64,
    /// Lines of the template since it was first seen.
    pub total_count: u64,
    /// Baseline lines per window before this window (0 for a new template).
    pub baseline: f64,
    /// Start of the window, milliseconds of event time.
    pub window_start_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WindowStat {
    count: u64,
    level: Option<Level>,
    #[serde(skip)]
    examples: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Rate {
    baseline: f64,
    windows: u32,
}

#[derive(Debug)]
struct ServiceModel {
    miner: TemplateMiner,
    lines: u64,
    window_start: u64,
    last_active: u64,
    window: HashMap<u64, WindowStat>,
    rates: HashMap<u64, Rate>,
}

/// Per-service template models and the signals built on them.
#[derive(Debug)]
pub struct LogSignals {
    config: SignalConfig,
    services: HashMap<String, ServiceModel>,
    clock: u64,
}

fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl LogSignals {
    /// A detector with no service seen yet.
    pub fn new(config: SignalConfig) -> Self {
        Self {
            config,
            services: HashMap::new(),
            clock: 0,
        }
    }

    /// The miner of a service, if it has one.
    pub fn miner(&self, service: &str) -> Option<&TemplateMiner> {
        self.services.get(service).map(|s| &s.miner)
    }

    /// Services currently modelled.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Feeds one log line of `service` at event time `ts_ms`; `level` is
    /// detected from the line when not given. Returns the evidence it causes:
    /// surges of windows that this timestamp closes, and a new template.
    pub fn observe(&mut self, service: &str, ts_ms: u64, level: Option<Level>, line: &str) -> Vec<LogEvidence> {
        let mut out = Vec::new();
        self.clock += 1;
        if !self.services.contains_key(service) {
            if self.services.len() >= self.config.max_services.max(1) {
                self.drop_idlest();
            }
            let window_start = ts_ms - ts_ms % self.config.window_ms.max(1);
            self.services.insert(
                service.to_owned(),
                ServiceModel {
                    miner: TemplateMiner::new(self.config.miner.clone()),
                    lines: 0,
                    window_start,
                    last_active: 0,
                    window: HashMap::new(),
                    rates: HashMap::new(),
                },
            );
        }
        let cfg = &self.config;
        let Some(model) = self.services.get_mut(service) else {
            return out;
        };
        model.last_active = self.clock;
        close_windows(cfg, service, model, ts_ms, &mut out);
        let level = level.or_else(|| Level::detect(line));
        let m = model.miner.add_line_id(line);
        model.lines += 1;
        let stat = model.window.entry(m.template_id).or_default();
        stat.count += 1;
        stat.level = stat.level.max(level);
        if stat.examples.len() < cfg.max_examples {
            stat.examples.push(clip(line, cfg.max_example_len));
        }
        if m.is_new && model.lines > cfg.warmup_lines && level.is_some_and(|l| l >= cfg.new_template_min_level) {
            out.push(LogEvidence {
                service: service.to_owned(),
                kind: SignalKind::NewTemplate,
                template_id: m.template_id,
                template: model
                    .miner
                    .get(m.template_id)
                    .map(|t| t.text.clone())
                    .unwrap_or_default(),
                level,
                examples: vec![clip(line, cfg.max_example_len)],
                window_count: 1,
                total_count: 1,
                baseline: 0.0,
                window_start_ms: model.window_start,
            });
        }
        out
    }

    /// Closes every window that ended at or before `now_ms` (call it on a
    /// timer so that a service that went quiet is still evaluated).
    pub fn flush(&mut self, now_ms: u64) -> Vec<LogEvidence> {
        let mut out = Vec::new();
        for (name, model) in &mut self.services {
            close_windows(&self.config, name, model, now_ms, &mut out);
        }
        out
    }

    fn drop_idlest(&mut self) {
        if let Some(name) = self
            .services
            .iter()
            .min_by_key(|(_, m)| m.last_active)
            .map(|(n, _)| n.clone())
        {
            self.services.remove(&name);
        }
    }

    /// Serialises every service's miner, baselines and current window counts.
    pub fn snapshot(&self) -> Vec<u8> {
        let services = self
            .services
            .iter()
            .map(|(name, m)| ServiceState {
                service: name.clone(),
                miner: m.miner.snapshot_state(),
                lines: m.lines,
                window_start: m.window_start,
                window: m.window.iter().map(|(id, s)| (*id, s.count, s.level)).collect(),
                rates: m.rates.iter().map(|(id, r)| (*id, *r)).collect(),
            })
            .collect();
        serde_json::to_vec(&SignalsState { version: 1, services }).unwrap_or_default()
    }

    /// Rebuilds a detector from [`Self::snapshot`] bytes.
    pub fn restore(bytes: &[u8], config: SignalConfig) -> Result<Self, Error> {
        let state: SignalsState = serde_json::from_slice(bytes)?;
        if state.version != 1 {
            return Err(Error::Version(state.version));
        }
        let mut s = LogSignals::new(config);
        for st in state.services {
            let miner = TemplateMiner::restore_state(st.miner, s.config.miner.clone())?;
            s.services.insert(
                st.service,
                ServiceModel {
                    miner,
                    lines: st.lines,
                    window_start: st.window_start,
                    last_active: 0,
                    window: st
                        .window
                        .into_iter()
                        .map(|(id, count, level)| {
                            (
                                id,
                                WindowStat {
                                    count,
                                    level,
                                    examples: Vec::new(),
                                },
                            )
                        })
                        .collect(),
                    rates: st.rates.into_iter().collect(),
                },
            );
        }
        Ok(s)
    }
}

/// Closes the windows of `model` that end at or before `now_ms`.
fn close_windows(cfg: &SignalConfig, service: &str, model: &mut ServiceModel, now_ms: u64, out: &mut Vec<LogEvidence>) {
    let w = cfg.window_ms.max(1);
    if now_ms < model.window_start.saturating_add(w) {
        return;
    }
    let alpha = cfg.baseline_alpha.clamp(0.0, 1.0);
    let closed = (now_ms - model.window_start) / w;
    let window = std::mem::take(&mut model.window);
    for (id, stat) in &window {
        let Some(rate) = model.rates.get(id) else { continue };
        let c = stat.count as f64;
        if rate.windows >= cfg.baseline_windows
            && stat.count >= cfg.surge_min_count
            && c > cfg.surge_factor * rate.baseline.max(1.0)
            && let Some(t) = model.miner.get(*id)
        {
            out.push(LogEvidence {
                service: service.to_owned(),
                kind: SignalKind::RateSurge,
                template_id: *id,
                template: t.text.clone(),
                level: stat.level,
                examples: stat.examples.clone(),
                window_count: stat.count,
                total_count: t.count,
                baseline: rate.baseline,
                window_start_ms: model.window_start,
            });
        }
    }
    let miner = &model.miner;
    for id in window.keys() {
        if miner.get(*id).is_some() {
            model.rates.entry(*id).or_default();
        }
    }
    // Evicted templates lose their baseline with their id.
    model.rates.retain(|id, _| miner.get(*id).is_some());
    // The closed window, then any empty windows up to now, enter every baseline.
    let empty_after = closed.saturating_sub(1).min(1000) as i32;
    for (id, rate) in &mut model.rates {
        let c = window.get(id).map_or(0.0, |s| s.count as f64);
        rate.baseline = if rate.windows == 0 {
            c
        } else {
            alpha * c + (1.0 - alpha) * rate.baseline
        };
        rate.baseline *= (1.0 - alpha).powi(empty_after);
        rate.windows = rate.windows.saturating_add(u32::try_from(closed).unwrap_or(u32::MAX));
    }
    model.window_start += closed * w;
}

#[derive(Serialize, Deserialize)]
struct SignalsState {
    version: u32,
    services: Vec<ServiceState>,
}

#[derive(Serialize, Deserialize)]
struct ServiceState {
    service: String,
    miner: Snapshot,
    lines: u64,
    window_start: u64,
    window: Vec<(u64, u64, Option<Level>)>,
    rates: Vec<(u64, Rate)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SignalConfig {
        SignalConfig {
            warmup_lines: 5,
            window_ms: 1000,
            ..SignalConfig::default()
        }
    }

    #[test]
    fn levels_are_parsed_and_detected() {
        assert_eq!(Level::parse("[WARN]"), Some(Level::Warn));
        assert_eq!(Level::parse("error:"), Some(Level::Error));
        assert_eq!(Level::parse("informative"), None);
        assert_eq!(Level::detect("2024-05-01 10:00:00 ERROR db: down"), Some(Level::Error));
        assert_eq!(Level::detect("ts=1 level=warn msg=slow"), Some(Level::Warn));
        assert_eq!(Level::detect(r#"{"level":"fatal","msg":"x"}"#), Some(Level::Fatal));
        assert_eq!(Level::detect("nothing here"), None);
        assert!(Level::Fatal > Level::Warn && Level::Warn > Level::Info);
    }

    #[test]
    fn new_template_at_warning_or_above_is_evidence() {
        let mut s = LogSignals::new(cfg());
        // Warm-up: everything is new, nothing is reported.
        for i in 0..5 {
            assert!(
                s.observe("api", 10, None, &format!("ERROR boot step {i} failed shape{i} x{i}"))
                    .is_empty()
            );
        }
        for i in 0..20 {
            assert!(
                s.observe("api", 20, Some(Level::Info), &format!("served request {i} in {i} ms"))
                    .len()
                    <= 1
            );
        }
        assert!(
            s.observe("api", 30, Some(Level::Info), "cache warmed with all entries")
                .is_empty()
        );
        let ev = s.observe(
            "api",
            40,
            None,
            "2024-05-01 ERROR pricing: Division by zero in compute_discount for order 42",
        );
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].kind, SignalKind::NewTemplate);
        assert_eq!(ev[0].level, Some(Level::Error));
        assert_eq!(ev[0].service, "api");
        assert!(ev[0].template.contains("Division by zero"));
        assert_eq!(ev[0].examples.len(), 1);
        // The same template again is not new.
        let ev = s.observe(
            "api",
            50,
            None,
            "2024-05-01 ERROR pricing: Division by zero in compute_discount for order 7",
        );
        assert!(ev.is_empty());
        // Another service has its own model (and its own warm-up).
        assert!(
            s.observe(
                "web",
                50,
                None,
                "ERROR Division by zero in compute_discount for order 9"
            )
            .is_empty()
        );
        assert!(s.miner("web").is_some());
    }

    fn feed(s: &mut LogSignals, window: u64, n: u64) {
        for i in 0..n {
            s.observe(
                "api",
                window * 1000 + i % 1000,
                Some(Level::Info),
                &format!("GET /items/{i} returned 200"),
            );
        }
    }

    #[test]
    fn rate_surge_against_baseline() {
        let mut s = LogSignals::new(cfg());
        for w in 0..6 {
            feed(&mut s, w, 10);
        }
        let ev = s.flush(6000);
        assert!(ev.iter().all(|e| e.kind != SignalKind::RateSurge), "{ev:?}");
        feed(&mut s, 6, 200);
        // The next window's first line closes the surging window.
        let ev = s.observe("api", 7000, Some(Level::Info), "GET /items/1 returned 200");
        let surge: Vec<_> = ev.iter().filter(|e| e.kind == SignalKind::RateSurge).collect();
        assert_eq!(surge.len(), 1, "{ev:?}");
        assert_eq!(surge[0].window_count, 200);
        assert!(
            surge[0].baseline > 5.0 && surge[0].baseline < 15.0,
            "{}",
            surge[0].baseline
        );
        assert_eq!(surge[0].examples.len(), 3);
        assert_eq!(surge[0].window_start_ms, 6000);
        assert!(surge[0].total_count >= 260);
    }

    #[test]
    fn no_surge_for_small_counts_or_young_templates() {
        let mut s = LogSignals::new(cfg());
        feed(&mut s, 0, 1);
        feed(&mut s, 1, 1);
        feed(&mut s, 2, 1);
        feed(&mut s, 3, 10); // 10x the baseline but under surge_min_count
        let ev = s.flush(10_000);
        assert!(ev.is_empty(), "{ev:?}");
        let mut s = LogSignals::new(cfg());
        feed(&mut s, 0, 5);
        feed(&mut s, 1, 500); // only one window of history
        assert!(s.flush(2000).is_empty());
    }

    #[test]
    fn snapshot_keeps_models_and_baselines() {
        let mut s = LogSignals::new(cfg());
        for w in 0..6 {
            feed(&mut s, w, 10);
        }
        let id = s.observe("api", 6000, None, "GET /items/5 returned 200").len();
        assert_eq!(id, 0);
        let bytes = s.snapshot();
        let mut r = LogSignals::restore(&bytes, cfg()).unwrap();
        let before: Vec<_> = s.miner("api").unwrap().templates().cloned().collect();
        let after: Vec<_> = r.miner("api").unwrap().templates().cloned().collect();
        assert_eq!(before, after);
        feed(&mut r, 6, 200);
        let ev = r.flush(7000);
        assert_eq!(
            ev.iter().filter(|e| e.kind == SignalKind::RateSurge).count(),
            1,
            "{ev:?}"
        );
        assert!(LogSignals::restore(b"{}", cfg()).is_err());
    }

    #[test]
    fn services_are_bounded() {
        let mut s = LogSignals::new(SignalConfig {
            max_services: 3,
            ..cfg()
        });
        for i in 0..10 {
            s.observe(&format!("svc{i}"), 0, None, "hello");
        }
        assert_eq!(s.services().count(), 3);
        assert!(s.miner("svc9").is_some());
    }
}
