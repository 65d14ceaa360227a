//! What `selfheal trace parse [FILE] [--repo DIR]` prints: the parsed trace as one JSON
//! value, plus the culprit's repository location when a repository is given. With a
//! repository, the repository decides which frames are the service's own; `culprit_basis`
//! says what decided. Never panics; a text without a trace gives `{"found": false, …}`.

use std::path::Path;

use serde_json::{Value, json};

use crate::repo::{GitTree, RepoFiles, RepoLocation, WorkTree, map_to_repo, map_to_repo_at, resolve_version};
use crate::{CulpritBasis, ParseOptions, Project};

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

/// [`cli_parse`] with every option. With a repository, in-app frames (and so the culprit)
/// come from the repository at the deployed commit ([`crate::Project`]: its files and build
/// files); without one, from heuristics, and the output says so (`culprit_basis`, `note`).
pub fn cli_parse_with(input: &str, opts: &CliOptions<'_>) -> Value {
    let mut popts = opts.parse.clone();
    if let Some(root) = opts.source_root
        && !root.trim().is_empty()
    {
        popts.source_roots.push(root.to_string());
    }
    // The repository's files at the deployed commit when the version names one, else its
    // working tree.
    let commit = match (opts.repo, opts.version) {
        (Some(repo), Some(v)) => resolve_version(repo, v),
        _ => None,
    };
    let tree: Option<Box<dyn RepoFiles>> = opts.repo.map(|repo| -> Box<dyn RepoFiles> {
        match commit.as_deref().map(|c| GitTree::open(repo, c)) {
            Some(Ok(tree)) => Box::new(tree),
            _ => Box::new(WorkTree::new(repo)),
        }
    });
    let project = tree.as_deref().map(Project::from_files);
    let parsed = match &project {
        Some(Ok(project)) => crate::parse_with_project(input, &popts, project),
        _ => crate::parse(input, &popts),
    };
    let Some(trace) = parsed else {
        return json!({
            "found": false,
            "reason": "no stack trace recognised",
            "fingerprint": null,
        });
    };
    let note = match (&project, trace.culprit_basis) {
        (None, _) => Some("no repository given: in-app frames are guessed from paths and names (lower confidence); pass --repo".to_string()),
        (Some(Err(e)), _) => Some(format!("the repository could not be read ({e}): in-app frames are guessed from paths and names (lower confidence)")),
        (Some(Ok(_)), CulpritBasis::Heuristic) => Some("no frame of the trace is a file or package of the repository: in-app frames are guessed from paths and names (lower confidence)".to_string()),
        _ => None,
    };
    let mut out = json!({
        "found": true,
        "runtime": trace.runtime,
        "exception": trace.exception.ty,
        "message": trace.exception.message,
        "causes": trace.causes,
        "frames": trace.frames,
        "culprit": trace.culprit,
        "culprit_basis": trace.culprit_basis,
        "fingerprint": trace.fingerprint,
        "thread": trace.thread,
    });
    let root = trace.root_cause();
    if let Value::Object(map) = &mut out {
        map.insert("root_cause".into(), json!({"type": root.ty, "message": root.message}));
        if let Some(n) = note {
            map.insert("note".into(), json!(n));
        }
        if let Some(Ok(project)) = &project {
            map.insert("project".into(), json!(project.own_names()));
        }
        if let Some(repo) = opts.repo {
            if opts.version.is_some() {
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
