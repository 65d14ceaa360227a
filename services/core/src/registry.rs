//! An in-process schema registry speaking the subset of the Confluent REST API the pipeline
//! uses, for the embedded demo and for users with nothing installed.
//!
//! It agrees with a real registry on every call the pipeline makes; the same integration
//! tests run against it and against Apicurio's Confluent-compatible API. Ids are global and
//! an identical schema (by Avro canonical form) gets the same id under every subject, as in
//! Confluent's registry. Storage is memory only.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use apache_avro::schema::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::shutdown::Shutdown;

/// The path under which the Confluent-compatible API is served (the same as Apicurio's).
pub const API_PREFIX: &str = "/apis/ccompat/v7";

#[derive(Default)]
struct Inner {
    /// Schema text by id - 1.
    schemas: Vec<(String, String)>,
    /// Registered ids per subject, version = index + 1.
    subjects: BTreeMap<String, Vec<u32>>,
    config: HashMap<String, String>,
    global: Option<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn err(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

// The error is the HTTP answer itself; handlers return it as is.
#[allow(clippy::result_large_err)]
fn parse(text: &str) -> Result<Schema, Response> {
    Schema::parse_str(text).map_err(|e| err(StatusCode::UNPROCESSABLE_ENTITY, 42201, format!("Invalid schema: {e}")))
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

const LEVELS: [&str; 7] = [
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
];

impl Inner {
    fn level(&self, subject: &str) -> String {
        self.config
            .get(subject)
            .cloned()
            .or_else(|| self.global.clone())
            .unwrap_or_else(|| "BACKWARD".into())
    }

    fn schema(&self, id: u32) -> Option<&(String, String)> {
        self.schemas.get(id.checked_sub(1)? as usize)
    }

    /// Compatibility messages of `new` against the versions the subject's level requires.
    fn check(&self, subject: &str, new: &Schema, against: Option<usize>) -> Vec<String> {
        let level = self.level(subject);
        let Some(ids) = self.subjects.get(subject) else {
            return vec![];
        };
        let versions: Vec<u32> = match against {
            Some(v) => ids.get(v).copied().into_iter().collect(),
            None if level.ends_with("TRANSITIVE") => ids.clone(),
            None => ids.last().copied().into_iter().collect(),
        };
        let mut messages = Vec::new();
        for id in versions {
            let Some((_, text)) = self.schema(id) else { continue };
            let Ok(old) = Schema::parse_str(text) else { continue };
            let backward = level.starts_with("BACKWARD") || level.starts_with("FULL");
            let forward = level.starts_with("FORWARD") || level.starts_with("FULL");
            if backward && let Err(e) = SchemaCompatibility::can_read(&old, new) {
                messages.push(format!(
                    "BACKWARD: new schema cannot read data written with id {id}: {e}"
                ));
            }
            if forward && let Err(e) = SchemaCompatibility::can_read(new, &old) {
                messages.push(format!(
                    "FORWARD: schema id {id} cannot read data written with the new schema: {e}"
                ));
            }
        }
        messages
    }
}

async fn register(State(s): State<Shared>, Path(subject): Path<String>, body: axum::Json<SchemaBody>) -> Response {
    if body.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            "only AVRO schemas are supported by the embedded registry",
        );
    }
    let new = match parse(&body.schema) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let canonical = new.canonical_form();
    let Ok(mut inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    // Already registered under this subject: same id, no new version.
    if let Some(ids) = inner.subjects.get(&subject) {
        for id in ids {
            if inner.schema(*id).is_some_and(|(c, _)| *c == canonical) {
                return axum::Json(json!({"id": id})).into_response();
            }
        }
    }
    let messages = inner.check(&subject, &new, None);
    if !messages.is_empty() {
        return err(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {messages:?}"
            ),
        );
    }
    let id = match inner.schemas.iter().position(|(c, _)| *c == canonical) {
        Some(i) => i as u32 + 1,
        None => {
            inner.schemas.push((canonical, body.schema.clone()));
            inner.schemas.len() as u32
        }
    };
    inner.subjects.entry(subject).or_default().push(id);
    axum::Json(json!({"id": id})).into_response()
}

async fn lookup(State(s): State<Shared>, Path(subject): Path<String>, body: axum::Json<SchemaBody>) -> Response {
    let new = match parse(&body.schema) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let canonical = new.canonical_form();
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    let Some(ids) = inner.subjects.get(&subject) else {
        return err(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."));
    };
    for (i, id) in ids.iter().enumerate() {
        if let Some((c, text)) = inner.schema(*id)
            && *c == canonical
        {
            return axum::Json(json!({"subject": subject, "id": id, "version": i + 1, "schema": text})).into_response();
        }
    }
    err(StatusCode::NOT_FOUND, 40403, "Schema not found")
}

async fn by_id(State(s): State<Shared>, Path(id): Path<u32>) -> Response {
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    match inner.schema(id) {
        Some((_, text)) => axum::Json(json!({"schema": text})).into_response(),
        None => err(StatusCode::NOT_FOUND, 40403, format!("Schema {id} not found")),
    }
}

async fn subjects(State(s): State<Shared>) -> Response {
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    axum::Json(inner.subjects.keys().cloned().collect::<Vec<_>>()).into_response()
}

async fn versions(State(s): State<Shared>, Path(subject): Path<String>) -> Response {
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    match inner.subjects.get(&subject) {
        Some(ids) => axum::Json((1..=ids.len()).collect::<Vec<_>>()).into_response(),
        None => err(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found.")),
    }
}

fn version_index(ids: &[u32], version: &str) -> Option<usize> {
    if version == "latest" || version == "-1" {
        return ids.len().checked_sub(1);
    }
    let v: usize = version.parse().ok()?;
    (v >= 1 && v <= ids.len()).then(|| v - 1)
}

async fn version(State(s): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Response {
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    let Some(ids) = inner.subjects.get(&subject) else {
        return err(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."));
    };
    let Some(i) = version_index(ids, &version) else {
        return err(StatusCode::NOT_FOUND, 40402, format!("Version {version} not found."));
    };
    let id = ids[i];
    let text = inner.schema(id).map(|(_, t)| t.clone()).unwrap_or_default();
    axum::Json(json!({"subject": subject, "id": id, "version": i + 1, "schema": text})).into_response()
}

async fn compatibility(
    State(s): State<Shared>,
    Path(params): Path<Vec<String>>,
    body: axum::Json<SchemaBody>,
) -> Response {
    let subject = params.first().cloned().unwrap_or_default();
    let new = match parse(&body.schema) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    let against = match params.get(1) {
        None => None,
        Some(v) => {
            let Some(ids) = inner.subjects.get(&subject) else {
                return err(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."));
            };
            match version_index(ids, v) {
                Some(i) => Some(i),
                None => return err(StatusCode::NOT_FOUND, 40402, format!("Version {v} not found.")),
            }
        }
    };
    let messages = inner.check(&subject, &new, against);
    axum::Json(json!({"is_compatible": messages.is_empty(), "messages": messages})).into_response()
}

async fn get_config(State(s): State<Shared>, subject: Option<Path<String>>) -> Response {
    let Ok(inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    let level = match subject {
        Some(Path(sub)) => inner.level(&sub),
        None => inner.global.clone().unwrap_or_else(|| "BACKWARD".into()),
    };
    axum::Json(json!({"compatibilityLevel": level})).into_response()
}

async fn put_config(State(s): State<Shared>, subject: Option<Path<String>>, body: axum::Json<ConfigBody>) -> Response {
    let level = body.compatibility.to_uppercase();
    if !LEVELS.contains(&level.as_str()) {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!("Invalid compatibility level {level}"),
        );
    }
    let Ok(mut inner) = s.lock() else {
        return err(StatusCode::INTERNAL_SERVER_ERROR, 50001, "registry state poisoned");
    };
    match subject {
        Some(Path(sub)) => {
            inner.config.insert(sub, level.clone());
        }
        None => inner.global = Some(level.clone()),
    }
    axum::Json(json!({"compatibility": level})).into_response()
}

/// The registry's routes, under [`API_PREFIX`].
pub fn router() -> Router {
    let state: Shared = Arc::default();
    let api = Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", post(register).get(versions))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(by_id))
        .route("/compatibility/subjects/{subject}/versions", post(compatibility))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .route("/config", get(get_config).put(put_config))
        .route("/config/{subject}", get(get_config).put(put_config))
        .with_state(state);
    Router::new().nest(API_PREFIX, api)
}

/// A running embedded registry.
#[derive(Debug, Clone)]
pub struct EmbeddedRegistry {
    /// The bound address.
    pub addr: SocketAddr,
}

impl EmbeddedRegistry {
    /// Starts the registry on `addr` (port 0 picks a free one) until shutdown.
    pub async fn start(addr: SocketAddr, shutdown: Shutdown) -> std::io::Result<Self> {
        let addr = crate::http::serve(addr, router(), shutdown).await?;
        Ok(EmbeddedRegistry { addr })
    }

    /// The base URL clients use, e.g. `http://127.0.0.1:41890/apis/ccompat/v7`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, API_PREFIX)
    }
}
