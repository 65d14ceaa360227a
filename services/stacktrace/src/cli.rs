//! What `selfheal trace parse [FILE] [--repo DIR]` prints: the parsed trace as one JSON
//! value, plus the culprit's repository location when a repository is given. Never
//! panics; a text without a trace gives `{"found": false, …}`.

use std::path::Path;

use serde_json::{Value, json};

use crate::ParseOptions;
use crate::repo::{RepoLocation, map_to_repo, map_to_repo_at, resolve_version};

/// Options of `selfheal trace parse`.
#[derive(Debug, Clone, Default)]
pub struct CliOptions<'a> {
    /// Repository to map the culprit into.
    pub repo: Option<&'a Path>,
    /// Where the service's code lives at run time (`/app`); also counts as in-app.
    pub source_root: Option<&'a str>,
    /// The deployed service version; mapped to a commit of `repo` when it can be.
    pub version: Option<&'a str>,
    /// Catalog knowledge for in-app decisions.
    pub parse: ParseOptions,
}

/// The JSON `selfheal trace parse` prints for `input`.
pub fn cli_parse(input: &str, repo: Option<&Path>, source_root: Option<&str>) -> Value {
    cli_parse_with(
        input,
        &CliOptions {
            repo,
            source_root,
            ..CliOptions::default()
        },
    )
}

/// [`cli_parse`] with every option.
pub fn cli_parse_with(input: &str, opts: &CliOptions<'_>) -> Value {
    let mut popts = opts.parse.clone();
    if let Some(root) = opts.source_root
        && !root.trim().is_empty()
    {
        popts.source_roots.push(root.to_string());
    }
    let Some(trace) = crate::parse(input, &popts) else {
        return json!({
            "found": false,
            "reason": "no stack trace recognised",
            "fingerprint": null,
        });
    };
    let mut out = json!({
        "found": true,
        "runtime": trace.runtime,
        "exception": trace.exception.ty,
        "message": trace.exception.message,
        "causes": trace.causes,
        "frames": trace.frames,
        "culprit": trace.culprit,
        "fingerprint": trace.fingerprint,
        "thread": trace.thread,
    });
    let root = trace.root_cause();
    if let Value::Object(map) = &mut out {
        map.insert("root_cause".into(), json!({"type": root.ty, "message": root.message}));
        if let Some(repo) = opts.repo {
            let mut commit = None;
            if let Some(v) = opts.version {
                commit = resolve_version(repo, v);
                map.insert("commit".into(), json!(commit));
            }
            let location = match &trace.culprit {
                Some(frame) => match &commit {
                    Some(c) => map_to_repo_at(frame, repo, c, opts.source_root),
                    None => map_to_repo(frame, repo, opts.source_root),
                },
                None => RepoLocation::NotFound {
                    tried: Vec::new(),
                    reason: "the trace has no in-app frame to map".into(),
                },
            };
            map.insert("repo".into(), serde_json::to_value(&location).unwrap_or(Value::Null));
        }
    }
    out
}
