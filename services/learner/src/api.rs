//! The learner's query API: what worked for a fingerprint, everything learned, one outcome.
//!
//! `GET /v1/fixes/{fingerprint}` → `{"fingerprint": "...", "fixes": [KnownFix...]}` best first
//! (an empty list for an unknown fingerprint, so clients need no special case);
//! `GET /v1/fixes/{fingerprint}?exception_type=KeyError` adds, after them, the templates that
//! healed the same crash class at other sites (scope `crash-class`);
//! `GET /v1/fixes` → `{"fingerprints": [{"fingerprint", "fixes"}...]}`;
//! `GET /v1/outcomes/{incident_id}` → the stored Outcome, or 404.
//! A storage failure answers 503 with `{"error": "..."}`, never a made-up empty answer.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use selfheal_events::KnownFix;
use serde::{Deserialize, Serialize};

use crate::Learner;
use crate::error::LearnerError;

/// Body of `GET /v1/fixes/{fingerprint}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerprintFixes {
    /// The fingerprint asked about.
    pub fingerprint: String,
    /// Its fixes, best first.
    pub fixes: Vec<KnownFix>,
}

/// Body of `GET /v1/fixes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllFixes {
    /// Every fingerprint with at least one fix tried, ordered by fingerprint.
    pub fingerprints: Vec<FingerprintFixes>,
}

/// Query of `GET /v1/fixes/{fingerprint}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FixesQuery {
    /// The incident's exception type: adds the crash class's templates after the fingerprint's fixes.
    pub exception_type: Option<String>,
}

/// The `/v1` routes over a learner.
pub fn router(learner: Learner) -> Router {
    Router::new()
        .route("/v1/fixes", get(all_fixes))
        .route("/v1/fixes/{fingerprint}", get(fixes))
        .route("/v1/outcomes/{incident_id}", get(outcome))
        .with_state(learner)
}

fn unavailable(e: LearnerError) -> Response {
    tracing::error!(error = %e, "learning store read failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

async fn fixes(
    State(learner): State<Learner>,
    Path(fingerprint): Path<String>,
    Query(query): Query<FixesQuery>,
) -> Response {
    match learner.try_fixes_for_incident(&fingerprint, query.exception_type.as_deref()) {
        Ok(fixes) => Json(FingerprintFixes { fingerprint, fixes }).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn all_fixes(State(learner): State<Learner>) -> Response {
    match learner.all_fixes() {
        Ok(fingerprints) => Json(AllFixes { fingerprints }).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn outcome(State(learner): State<Learner>, Path(incident_id): Path<String>) -> Response {
    match learner.outcome(&incident_id) {
        Ok(Some(o)) => Json(o).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no outcome for incident {incident_id}") })),
        )
            .into_response(),
        Err(e) => unavailable(e),
    }
}
