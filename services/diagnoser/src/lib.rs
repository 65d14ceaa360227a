//! diagnoser: root-cause analysis of anomalies.
//!
//! For each anomaly the diagnoser finds the service in the catalog, opens its repository at
//! the deployed version ([`repository`]), parses the exception's stack trace with
//! `selfheal-stacktrace`, maps the innermost in-app frame of the root cause to a file and
//! line, reads the code there ([`analysis`]), ranks hypotheses from a rule table
//! ([`rules`]) and asks the learning store whether the fingerprint was fixed before
//! ([`knowledge`]). When a language model is configured ([`Diagnoser::with_llm`]) and the
//! rules are not sure, the model is asked for more hypotheses ([`hypotheses`]); they sit
//! beside the rule-based ones, marked as the model's, and never change where the trace
//! says the failure is.
//!
//! Every anomaly yields exactly one [`Diagnosis`]: a service missing from the catalog, a
//! missing repository, a trace without a stack or with files the repository does not have
//! each end in a status that says why, so the chain continues to an Outcome. The analysis
//! is a function of the anomaly and the repository's commit, so replays give the same
//! diagnosis (only `timeline.diagnosis_ms`, the learner's answer and, when a model is
//! configured, its hypotheses can differ: a replay asks the model again).

pub mod analysis;
pub mod error;
pub mod hypotheses;
pub mod knowledge;
pub mod repository;
pub mod rules;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use selfheal_catalog::Catalog;
use selfheal_core::{RecordContext, Stage, StageError};
use selfheal_events::{Anomaly, Diagnosis, DiagnosisStatus, Evidence, Hypothesis, HypothesisSource, KnownFix};

pub use analysis::{Analysis, Located};
pub use error::DiagnoserError;
pub use hypotheses::{DiagnoserLlmSettings, ModelHypotheses};
pub use knowledge::{DEFAULT_LEARNER_URL, HttpKnowledgeClient, KnowledgeClient, NoKnowledge};
pub use repository::{CommitSummary, GitRepositories, RepoSnapshot, SourceRepository};
pub use selfheal_llm::LlmClient;

/// Known fixes carried at most in one diagnosis.
const MAX_KNOWN_FIXES: usize = 10;
/// Confidence added when the culprit frame is located exactly.
const EXACT_LOCATION: f64 = 0.25;
/// Confidence added when a file was found but not everything agreed.
const APPROXIMATE_LOCATION: f64 = 0.12;
/// Confidence added when the code on the line supports the rule.
const CODE_SUPPORT: f64 = 0.07;
/// Confidence added when the failing inputs support the rule.
const INPUT_SUPPORT: f64 = 0.07;
/// No hypothesis is certain.
const MAX_CONFIDENCE: f64 = 0.99;

struct Inner {
    catalog: Catalog,
    repos: Arc<dyn SourceRepository>,
    knowledge: Arc<dyn KnowledgeClient>,
}

/// The diagnosis stage.
#[derive(Clone)]
pub struct Diagnoser {
    inner: Arc<Inner>,
    llm: Option<Arc<ModelHypotheses>>,
}

impl std::fmt::Debug for Diagnoser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diagnoser")
            .field("services", &self.inner.catalog.len())
            .field("llm", &self.llm)
            .finish_non_exhaustive()
    }
}

impl Diagnoser {
    /// A diagnoser reading repositories with git.
    pub fn new(catalog: Catalog, knowledge: Arc<dyn KnowledgeClient>) -> Self {
        Self::with_repositories(catalog, knowledge, Arc::new(GitRepositories))
    }

    /// A diagnoser with a custom repository access.
    pub fn with_repositories(
        catalog: Catalog,
        knowledge: Arc<dyn KnowledgeClient>,
        repos: Arc<dyn SourceRepository>,
    ) -> Self {
        Diagnoser {
            inner: Arc::new(Inner {
                catalog,
                repos,
                knowledge,
            }),
            llm: None,
        }
    }

    /// The same diagnoser asking `client` for hypotheses when the rules are not sure
    /// (see [`hypotheses`]); `None` (nothing configured) keeps the deterministic path only.
    pub fn with_llm(mut self, client: Option<LlmClient>, settings: DiagnoserLlmSettings) -> Self {
        self.llm = client.map(|c| Arc::new(ModelHypotheses::new(c, settings)));
        self
    }

    /// A diagnoser from plain configuration: the catalog file and the learner's base URL.
    pub fn from_config(catalog_path: &Path, learner_url: &str) -> Result<Self, DiagnoserError> {
        let catalog = Catalog::load(catalog_path)?;
        Ok(Self::new(catalog, Arc::new(HttpKnowledgeClient::new(learner_url)?)))
    }

    /// Diagnoses one anomaly. Only an internal failure of the analysis thread is an error.
    pub async fn diagnose(&self, anomaly: &Anomaly) -> Result<Diagnosis, DiagnoserError> {
        let inner = self.inner.clone();
        let input = anomaly.clone();
        let want = self.llm.as_ref().map(|m| m.settings().context_request());
        // git and file reads block: keep them off the async workers.
        let mut analysis =
            tokio::task::spawn_blocking(move || analysis::analyze(&inner.catalog, inner.repos.as_ref(), &input, want))
                .await
                .map_err(|e| DiagnoserError::Internal(format!("analysis task failed: {e}")))?;
        let model_context = analysis.model_context.take();

        let mut learned_note: Option<Evidence> = None;
        let mut known_fixes: Vec<KnownFix> = Vec::new();
        if anomaly.fingerprint.trim().is_empty() {
            learned_note = Some(Evidence {
                kind: "learned".into(),
                detail: "no fingerprint, learning store not consulted".into(),
            });
        } else {
            let exception_type = anomaly.exception.as_ref().map(|e| e.r#type.as_str());
            match self
                .inner
                .knowledge
                .known_fixes(&anomaly.fingerprint, exception_type)
                .await
            {
                Ok(mut fixes) => {
                    fixes.truncate(MAX_KNOWN_FIXES);
                    if fixes.is_empty() {
                        learned_note = Some(Evidence {
                            kind: "learned".into(),
                            detail: format!(
                                "no fix remembered for fingerprint {}",
                                rules::quote(&anomaly.fingerprint)
                            ),
                        });
                    }
                    known_fixes = fixes;
                }
                Err(e) => {
                    tracing::warn!(incident_id = %anomaly.incident_id, error = %e, "learning store not available; diagnosing without known fixes");
                    learned_note = Some(Evidence {
                        kind: "learned".into(),
                        detail: format!("{e}; known fixes not consulted"),
                    });
                }
            }
        }
        let mut diagnosis = assemble(anomaly, analysis, known_fixes, learned_note);
        if let Some(model) = &self.llm {
            let entry = self.inner.catalog.service(&anomaly.service);
            model
                .consult(anomaly, entry, model_context.as_ref(), &mut diagnosis)
                .await;
        }
        Ok(diagnosis)
    }
}

fn location_bonus(located: Located) -> f64 {
    match located {
        Located::Exact => EXACT_LOCATION,
        Located::Approximate => APPROXIMATE_LOCATION,
        Located::No => 0.0,
    }
}

/// Builds the Diagnosis from the analysis and what the learner said.
fn assemble(anomaly: &Anomaly, a: Analysis, known_fixes: Vec<KnownFix>, learned_note: Option<Evidence>) -> Diagnosis {
    let localized = a.status == DiagnosisStatus::Localized;
    let rc = a.root_cause.as_ref().filter(|_| localized);
    let (file, line, function) = match rc {
        Some(rc) => (
            Some(rc.file.clone()),
            (rc.line > 0).then_some(rc.line),
            Some(rc.function.clone()),
        ),
        None => (None, None, None),
    };
    let mut common: Vec<Evidence> = Vec::new();
    if anomaly.request_count > 0 || anomaly.error_count > 0 {
        common.push(Evidence {
            kind: "failing_spans".into(),
            detail: if anomaly.request_count > 0 {
                format!(
                    "{} of {} requests failed ({:.1}%) in the detection window",
                    anomaly.error_count,
                    anomaly.request_count,
                    anomaly.error_rate * 100.0
                )
            } else {
                format!("{} failing requests in the detection window", anomaly.error_count)
            },
        });
    }
    common.extend(a.context.iter().filter(|e| e.kind == "frame").cloned());

    let bonus = location_bonus(if localized { a.located } else { Located::No });
    let mut hypotheses: Vec<Hypothesis> = a
        .findings
        .iter()
        .map(|f| {
            let mut confidence = f.strength + bonus;
            if f.code_support {
                confidence += CODE_SUPPORT;
            }
            if f.input_support {
                confidence += INPUT_SUPPORT;
            }
            let mut evidence = common.clone();
            evidence.extend(f.evidence.iter().cloned());
            Hypothesis {
                rank: 0,
                category: f.category.to_string(),
                summary: f.summary.clone(),
                confidence: round2(confidence.min(MAX_CONFIDENCE)),
                source: HypothesisSource::Rule,
                file: file.clone(),
                line,
                function: function.clone(),
                evidence,
            }
        })
        .collect();
    if let Some(best) = known_fixes.first() {
        let attempts = best.attempts.max(0);
        let healed = best.healed.clamp(0, attempts);
        let rate = f64::from(healed + 1) / f64::from(attempts + 2);
        let category = a.findings.first().map(|f| f.category).unwrap_or("unknown");
        let median = best
            .median_heal_secs
            .map(|s| format!(", median {s:.0}s to heal"))
            .unwrap_or_default();
        // A template that healed the same crash class elsewhere says less about this failure
        // than a fix of this very fingerprint: it is told apart and weighs less.
        let elsewhere = best.scope.as_deref() == Some("crash-class");
        let exception = anomaly.exception.as_ref().map(|e| e.r#type.as_str()).unwrap_or("");
        let place = best
            .service
            .as_deref()
            .map(|svc| format!(" in {}", rules::quote(svc)))
            .unwrap_or_default();
        let mut evidence = vec![Evidence {
            kind: "learned".into(),
            detail: if elsewhere {
                format!(
                    "crash class {} fixed before{place} by the template `{}`: healed {healed} of {attempts}{median}",
                    rules::quote(exception),
                    rules::quote(&best.strategy)
                )
            } else {
                format!(
                    "fingerprint {} fixed before by `{}`: healed {healed} of {attempts}{median}",
                    rules::quote(&anomaly.fingerprint),
                    rules::quote(&best.strategy)
                )
            },
        }];
        if let Some(last) = &best.last_incident_id {
            evidence.push(Evidence {
                kind: "learned".into(),
                detail: format!("last applied in incident {}", rules::quote(last)),
            });
        }
        hypotheses.push(Hypothesis {
            rank: 0,
            category: category.to_string(),
            summary: if elsewhere {
                format!(
                    "same crash class healed elsewhere: `{}` healed {healed} of {attempts} {} incidents{place}",
                    rules::quote(&best.strategy),
                    rules::quote(exception)
                )
            } else {
                format!(
                    "seen before: `{}` healed {healed} of {attempts} incidents with this fingerprint",
                    rules::quote(&best.strategy)
                )
            },
            confidence: if elsewhere {
                round2((0.1 + 0.3 * rate + bonus * 0.5).min(MAX_CONFIDENCE))
            } else {
                round2((0.2 + 0.5 * rate + bonus * 0.5).min(MAX_CONFIDENCE))
            },
            source: HypothesisSource::Learned,
            file: file.clone(),
            line,
            function: function.clone(),
            evidence,
        });
    }
    hypotheses.sort_by(|x, y| y.confidence.total_cmp(&x.confidence));
    for (i, h) in hypotheses.iter_mut().enumerate() {
        h.rank = i32::try_from(i + 1).unwrap_or(i32::MAX);
    }
    // Facts about the whole diagnosis go with the leading hypothesis.
    if let Some(top) = hypotheses.first_mut() {
        top.evidence
            .extend(a.context.iter().filter(|e| e.kind != "frame").cloned());
        top.evidence.extend(learned_note);
    }

    let confidence = if localized {
        hypotheses.first().map(|h| h.confidence).unwrap_or(0.0)
    } else {
        0.0
    };
    let headline = a.findings.first().map(|f| f.headline.clone()).unwrap_or_default();
    let summary = match (&a.location, localized) {
        (Some(loc), true) => format!("{loc} — {headline} (confidence {confidence:.2})"),
        _ => {
            let reason = a.reason.clone().unwrap_or_else(|| "not localised".into());
            match a.findings.first() {
                Some(f) if f.category != "unknown" => format!("{reason} (likely {headline})"),
                _ => reason,
            }
        }
    };
    let mut timeline = anomaly.timeline.clone();
    timeline.diagnosis_ms = Some(selfheal_core::now_ms());
    Diagnosis {
        incident_id: anomaly.incident_id.clone(),
        service: anomaly.service.clone(),
        fingerprint: anomaly.fingerprint.clone(),
        status: a.status,
        summary,
        runtime: a.runtime,
        repository: a.repository,
        commit: a.commit,
        root_cause: if localized { a.root_cause } else { None },
        confidence,
        hypotheses,
        frames: a.frames,
        exception: anomaly.exception.clone(),
        sample_inputs: anomaly.sample_inputs.clone(),
        known_fixes,
        timeline,
        llm: None,
    }
}

/// Two decimals: confidences are estimates, and stable numbers make replays compare equal.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[async_trait]
impl Stage for Diagnoser {
    type Input = Anomaly;
    type Output = Diagnosis;

    fn name(&self) -> &'static str {
        "diagnoser"
    }

    async fn process(&self, input: Anomaly, _ctx: &RecordContext) -> Result<Vec<Diagnosis>, StageError> {
        if input.incident_id.trim().is_empty() {
            return Err(StageError::Invalid("anomaly has no incident_id".into()));
        }
        let diagnosis = self
            .diagnose(&input)
            .await
            .map_err(|e| StageError::Transient(e.to_string()))?;
        tracing::info!(incident_id = %diagnosis.incident_id, status = ?diagnosis.status, summary = %diagnosis.summary, "diagnosed");
        Ok(vec![diagnosis])
    }
}

#[cfg(test)]
mod tests;
