//! Log templates as incident evidence: one Drain model per service
//! ([`selfheal_drain::signals::LogSignals`]) fed with log bodies in event time, and a
//! short memory of the warning-and-above templates of each service's current window so
//! that an incident opened by a span can carry the log lines around it.

use selfheal_drain::MinerConfig;
use selfheal_drain::signals::{Level, LogEvidence, LogSignals, SignalConfig, SignalKind};
use selfheal_events::{Severity, TemplateEvidence};

use crate::fingerprint::{MAX_TEXT_BYTES, truncate_head};
use crate::lru::Lru;

/// Warning-and-above templates remembered per service.
const RECENT_PER_SERVICE: usize = 16;
/// Example lines kept per template.
const EXAMPLES: usize = 3;
/// Bytes kept of an example line.
const EXAMPLE_BYTES: usize = 512;
/// Templates mined per service (the miner forgets the least recently seen beyond it).
const MAX_TEMPLATES: usize = 2000;

/// What the monitor remembers of one template seen at warning level or above.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentTemplate {
    /// Template id of the service's miner.
    pub id: u64,
    /// Template text.
    pub text: String,
    /// Lines in the current window.
    pub count: u64,
    /// A few lines.
    pub examples: Vec<String>,
    /// Event time of the first line in the window.
    pub first_ms: i64,
    /// Event time of the newest line.
    pub last_ms: i64,
    /// Highest level seen.
    pub level: Level,
    /// The signal that fired for it in this window, if any.
    pub signal: Option<SignalKind>,
}

impl RecentTemplate {
    /// As anomaly evidence.
    pub fn evidence(&self) -> TemplateEvidence {
        TemplateEvidence {
            template_id: i64::try_from(self.id).unwrap_or(i64::MAX),
            template: self.text.clone(),
            count: i64::try_from(self.count).unwrap_or(i64::MAX),
            examples: self.examples.clone(),
        }
    }
}

/// A signal that should open an incident of its own when nothing else explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTrigger {
    /// The signal.
    pub kind: SignalKind,
    /// The template.
    pub template: RecentTemplate,
}

/// What one log line did to the models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogObservation {
    /// The template of the line, when it is at warning level or above.
    pub template: Option<u64>,
    /// Signals that may open an incident of their own.
    pub triggers: Vec<LogTrigger>,
}

/// Log levels from event severities.
pub fn level_of(s: Severity) -> Option<Level> {
    match s {
        Severity::Unspecified => None,
        Severity::Trace => Some(Level::Trace),
        Severity::Debug => Some(Level::Debug),
        Severity::Info => Some(Level::Info),
        Severity::Warn => Some(Level::Warn),
        Severity::Error => Some(Level::Error),
        Severity::Fatal => Some(Level::Fatal),
    }
}

/// Per-service template models and recent warning templates.
#[derive(Debug)]
pub struct LogTemplates {
    signals: LogSignals,
    recent: Lru<String, Vec<RecentTemplate>>,
    window_ms: i64,
}

/// The detector settings the monitor uses.
pub fn signal_config(window_ms: i64, warmup_lines: u64, max_services: usize) -> SignalConfig {
    SignalConfig {
        miner: MinerConfig {
            max_clusters: MAX_TEMPLATES,
            ..MinerConfig::default()
        },
        window_ms: u64::try_from(window_ms).unwrap_or(10_000).max(1),
        warmup_lines,
        max_services,
        ..SignalConfig::default()
    }
}

impl LogTemplates {
    /// Empty models.
    pub fn new(config: SignalConfig) -> Self {
        let window_ms = i64::try_from(config.window_ms).unwrap_or(i64::MAX);
        let max_services = config.max_services;
        LogTemplates {
            signals: LogSignals::new(config),
            recent: Lru::new(max_services),
            window_ms,
        }
    }

    /// Models restored from [`Self::snapshot`] bytes.
    pub fn restore(bytes: &[u8], config: SignalConfig) -> Result<Self, selfheal_drain::Error> {
        let window_ms = i64::try_from(config.window_ms).unwrap_or(i64::MAX);
        let max_services = config.max_services;
        Ok(LogTemplates {
            signals: LogSignals::restore(bytes, config)?,
            recent: Lru::new(max_services),
            window_ms,
        })
    }

    /// The miners and baselines, for persistence.
    pub fn snapshot(&self) -> Vec<u8> {
        self.signals.snapshot()
    }

    /// The underlying detector.
    pub fn signals(&self) -> &LogSignals {
        &self.signals
    }

    /// Feeds one log body of `service`; returns the new-template and surge signals it
    /// caused at warning level or above.
    pub fn observe(&mut self, service: &str, ts: i64, severity: Severity, body: &str) -> LogObservation {
        // One line per record: a multi-line body (a traceback) is mined by its first line.
        let line = truncate_head(body, MAX_TEXT_BYTES)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if line.is_empty() {
            return LogObservation::default();
        }
        let level = level_of(severity).or_else(|| Level::detect(line));
        let ev = self
            .signals
            .observe(service, u64::try_from(ts).unwrap_or(0), level, line);
        let mut triggers = Vec::new();
        let mut template = None;
        let window_ms = self.window_ms;
        let recent = self.recent.get_or_insert_with(service.to_string(), Vec::new);
        recent.retain(|t| t.last_ms > ts - window_ms);
        if level.is_some_and(|l| l >= Level::Warn)
            && let Some(t) = self.signals.miner(service).and_then(|m| {
                let seq = m.lines_seen();
                m.templates().find(|t| t.last_seen == seq)
            })
        {
            let entry = match recent.iter().position(|r| r.id == t.id) {
                Some(i) => &mut recent[i],
                None => {
                    if recent.len() >= RECENT_PER_SERVICE
                        && let Some(oldest) = recent.iter().enumerate().min_by_key(|(_, r)| r.last_ms).map(|(i, _)| i)
                    {
                        recent.swap_remove(oldest);
                    }
                    recent.push(RecentTemplate {
                        id: t.id,
                        text: t.text.clone(),
                        count: 0,
                        examples: Vec::new(),
                        first_ms: ts,
                        last_ms: ts,
                        level: Level::Warn,
                        signal: None,
                    });
                    let last = recent.len() - 1;
                    &mut recent[last]
                }
            };
            template = Some(t.id);
            entry.text = t.text.clone();
            entry.count += 1;
            entry.last_ms = entry.last_ms.max(ts);
            entry.first_ms = entry.first_ms.min(ts);
            entry.level = entry.level.max(level.unwrap_or(Level::Warn));
            if entry.examples.len() < EXAMPLES {
                entry.examples.push(truncate_head(line, EXAMPLE_BYTES).to_string());
            }
        }
        for e in ev {
            if let Some(t) = mark(recent, &e, ts) {
                triggers.push(LogTrigger {
                    kind: e.kind,
                    template: t,
                });
            }
        }
        LogObservation { template, triggers }
    }

    /// Warning-and-above templates of `service` within one window before `ts`, those
    /// that fired a signal first, then by count; at most `n`.
    pub fn recent(&self, service: &str, ts: i64, n: usize) -> Vec<RecentTemplate> {
        let mut v: Vec<RecentTemplate> = self
            .recent
            .peek(service)
            .map(|r| {
                r.iter()
                    .filter(|t| t.last_ms > ts - self.window_ms && t.first_ms <= ts + self.window_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| {
            b.signal
                .is_some()
                .cmp(&a.signal.is_some())
                .then(b.count.cmp(&a.count))
                .then(a.id.cmp(&b.id))
        });
        v.truncate(n);
        v
    }
}

/// Records a signal on the recent template it concerns; returns the template when the
/// signal is at warning level or above (a surge of info lines is not an incident).
fn mark(recent: &mut Vec<RecentTemplate>, e: &LogEvidence, ts: i64) -> Option<RecentTemplate> {
    let level = e.level?;
    if level < Level::Warn {
        return None;
    }
    let entry = match recent.iter().position(|r| r.id == e.template_id) {
        Some(i) => &mut recent[i],
        None => {
            recent.push(RecentTemplate {
                id: e.template_id,
                text: e.template.clone(),
                count: e.window_count,
                examples: e
                    .examples
                    .iter()
                    .take(EXAMPLES)
                    .map(|x| truncate_head(x, EXAMPLE_BYTES).to_string())
                    .collect(),
                first_ms: ts,
                last_ms: ts,
                level,
                signal: None,
            });
            let last = recent.len() - 1;
            &mut recent[last]
        }
    };
    entry.signal = Some(e.kind);
    if e.kind == SignalKind::RateSurge {
        entry.count = entry.count.max(e.window_count);
    }
    Some(entry.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn warning_templates_are_remembered_and_new_ones_signal() {
        let mut l = LogTemplates::new(signal_config(10_000, 3, 10));
        for i in 0..5 {
            let o = l.observe(
                "api",
                1000 + i,
                Severity::Info,
                &format!("served request {i} in {i} ms"),
            );
            assert_eq!(o, LogObservation::default());
        }
        let o = l.observe(
            "api",
            2000,
            Severity::Error,
            "payment failed for order 42: card declined",
        );
        assert!(o.template.is_some());
        let t = o.triggers;
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].kind, SignalKind::NewTemplate);
        let o = l.observe(
            "api",
            2100,
            Severity::Error,
            "payment failed for order 43: card declined",
        );
        assert!(o.triggers.is_empty());
        assert_eq!(o.template, Some(t[0].template.id));
        let r = l.recent("api", 2200, 5);
        assert_eq!(r.len(), 1, "info lines are not remembered: {r:?}");
        assert_eq!(r[0].count, 2);
        assert_eq!(r[0].signal, Some(SignalKind::NewTemplate));
        assert_eq!(r[0].examples.len(), 2);
        assert!(r[0].text.contains("payment failed"), "{}", r[0].text);
        // A window later it is no longer recent.
        assert!(l.recent("api", 20_000, 5).is_empty());
        assert!(l.recent("other", 2200, 5).is_empty());
    }

    #[test]
    fn snapshot_keeps_template_ids() {
        let mut l = LogTemplates::new(signal_config(10_000, 0, 10));
        l.observe("api", 1000, Severity::Error, "db connection to 10.0.0.1 refused");
        let id = l.recent("api", 1000, 1)[0].id;
        let mut r = LogTemplates::restore(&l.snapshot(), signal_config(10_000, 0, 10)).unwrap();
        let o = r.observe("api", 5000, Severity::Error, "db connection to 10.0.0.2 refused");
        assert!(o.triggers.is_empty(), "known template after restore: {o:?}");
        assert_eq!(o.template, Some(id));
        assert_eq!(r.recent("api", 5000, 1)[0].id, id);
    }
}
