//! Measures culprit localisation on an evaluation set of real traces with known culprits.
//!
//! The set lives in a directory (the crate's `eval/`): `cases/*.jsonl`, one case per line
//! (`id`, `runtime`, `repo`, `culprit` as `path:line`, `trace`, `source`), and
//! `repos/<repo>.json`, the repository facts a case refers to: the repository's file paths
//! and its build files (`files`, `build_files`), never its source code. Each case is parsed
//! the way `selfheal trace parse --repo` parses it, its culprit mapped into the listed
//! repository, and counted exact when path and line are the known ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::repo::{MemoryTree, RepoLocation, map_with};
use crate::{ParseOptions, Project, parse, parse_with_project};

/// One trace with its known culprit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalCase {
    /// Unique name, `<source>/<case>`.
    pub id: String,
    /// The runtime that printed the trace (`jvm`, `rust`, `go`, `node`, `python`…).
    pub runtime: String,
    /// Name of the repository facts in `repos/`.
    pub repo: String,
    /// The known culprit, `path:line` relative to the repository root.
    pub culprit: String,
    /// The trace text, as printed.
    pub trace: String,
    /// Where the case comes from.
    #[serde(default)]
    pub source: String,
}

/// What an evaluation case knows about its repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EvalRepo {
    /// Repository-relative paths of (at least) the project's source files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Build files by path (`pom.xml`, `go.mod`, `package.json`, `Cargo.toml`…), with their text.
    #[serde(default)]
    pub build_files: BTreeMap<String, String>,
}

impl EvalRepo {
    /// The repository as a [`MemoryTree`]: every listed path, build files with their text.
    pub fn tree(&self) -> MemoryTree {
        let mut t = MemoryTree::new(self.files.iter().cloned());
        for (p, text) in &self.build_files {
            t.insert(p.clone(), text.clone());
        }
        t
    }
}

/// How the culprit is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Runtime heuristics only, then mapped into the repository: what the parser did
    /// before it read the repository.
    Heuristic,
    /// In-app frames decided from the repository ([`crate::parse_in_repo`]).
    Repository,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: String,
    /// The runtime the case is filed under.
    pub runtime: String,
    /// The known culprit.
    pub expected: String,
    /// The culprit found, `path:line` in the repository (or the frame as printed when it
    /// could not be mapped), `None` when there was none.
    pub actual: Option<String>,
    /// Whether a trace of the expected runtime was recognised.
    pub parsed: bool,
    /// The runtime the parser recognised, when it found a trace.
    pub found_runtime: Option<String>,
    /// What decided the culprit (see [`crate::CulpritBasis`]).
    pub basis: Option<crate::CulpritBasis>,
    /// Whether `actual` is `expected`.
    pub exact: bool,
}

/// Figures for one runtime.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figure {
    /// Cases.
    pub cases: usize,
    /// Cases whose trace was recognised, as the expected runtime.
    pub parsed: usize,
    /// Cases whose culprit was exactly the known one.
    pub exact: usize,
}

impl Figure {
    /// Exact culprits as a percentage of the cases.
    pub fn exact_percent(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            100.0 * self.exact as f64 / self.cases as f64
        }
    }
}

/// Every case's outcome and the figures per runtime.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The method measured.
    pub method: Method,
    /// Per runtime.
    pub by_runtime: BTreeMap<String, Figure>,
    /// Per case, in the set's order.
    pub results: Vec<CaseResult>,
}

/// Errors reading an evaluation set.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A line or file is not what the format says.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line (0 for a whole file).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// An evaluation set read from its directory.
#[derive(Debug, Clone, Default)]
pub struct EvalSet {
    /// Every case, files in name order.
    pub cases: Vec<EvalCase>,
    /// Repository facts by name.
    pub repos: BTreeMap<String, EvalRepo>,
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|e| EvalError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn sorted_entries(dir: &Path, ext: &str) -> Result<Vec<std::path::PathBuf>, EvalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| EvalError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

impl EvalSet {
    /// Reads `cases/*.jsonl` and `repos/*.json` under `dir`; a case naming a repository
    /// that is not there is an error.
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let mut set = EvalSet::default();
        for path in sorted_entries(&dir.join("repos"), "json")? {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let repo: EvalRepo = serde_json::from_str(&read(&path)?).map_err(|e| EvalError::Format {
                path: path.display().to_string(),
                line: 0,
                message: e.to_string(),
            })?;
            set.repos.insert(name, repo);
        }
        for path in sorted_entries(&dir.join("cases"), "jsonl")? {
            for (i, line) in read(&path)?.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let case: EvalCase = serde_json::from_str(line).map_err(|e| EvalError::Format {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
                if !set.repos.contains_key(&case.repo) {
                    return Err(EvalError::Format {
                        path: path.display().to_string(),
                        line: i + 1,
                        message: format!("case {} names repository {} which is not in repos/", case.id, case.repo),
                    });
                }
                set.cases.push(case);
            }
        }
        Ok(set)
    }

    /// Runs every case with `method`.
    pub fn evaluate(&self, method: Method) -> Report {
        // One tree and one project per repository, shared by its cases (what
        // `parse_in_repo` builds on each call).
        let mut trees: BTreeMap<&str, (MemoryTree, Option<Project>)> = BTreeMap::new();
        let mut results = Vec::with_capacity(self.cases.len());
        let mut by_runtime: BTreeMap<String, Figure> = BTreeMap::new();
        for case in &self.cases {
            let Some(repo) = self.repos.get(&case.repo) else {
                continue;
            };
            let (tree, project) = trees.entry(case.repo.as_str()).or_insert_with(|| {
                let tree = repo.tree();
                let project = Project::from_files(&tree).ok();
                (tree, project)
            });
            let result = run_case(case, tree, project.as_ref(), method);
            let fig = by_runtime.entry(case.runtime.clone()).or_default();
            fig.cases += 1;
            fig.parsed += usize::from(result.parsed);
            fig.exact += usize::from(result.exact);
            results.push(result);
        }
        Report {
            method,
            by_runtime,
            results,
        }
    }
}

/// Parses one case and compares its culprit with the known one.
fn run_case(case: &EvalCase, tree: &MemoryTree, project: Option<&Project>, method: Method) -> CaseResult {
    let opts = ParseOptions::default();
    let parsed = match (method, project) {
        (Method::Repository, Some(project)) => parse_with_project(&case.trace, &opts, project),
        _ => parse(&case.trace, &opts),
    };
    let location = parsed
        .as_ref()
        .and_then(|p| p.culprit.as_ref())
        .map(|f| (f.clone(), map_with(tree, f, None)));
    let recognised = parsed.as_ref().is_some_and(|p| p.runtime.as_str() == case.runtime);
    let actual = location.map(|(frame, loc)| match loc {
        RepoLocation::Found { path, line, .. } => match line {
            Some(l) => format!("{path}:{l}"),
            None => path,
        },
        RepoLocation::NotFound { .. } => format!(
            "{} (not in the repository):{}",
            frame.file.as_deref().unwrap_or(&frame.function),
            frame.line.map(|l| l.to_string()).unwrap_or_default()
        ),
    });
    CaseResult {
        id: case.id.clone(),
        runtime: case.runtime.clone(),
        expected: case.culprit.clone(),
        exact: recognised && actual.as_deref() == Some(case.culprit.as_str()),
        actual,
        parsed: recognised,
        found_runtime: parsed.as_ref().map(|p| p.runtime.as_str().to_string()),
        basis: parsed.as_ref().map(|p| p.culprit_basis),
    }
}

/// The figures as a table, one line per runtime and a total.
pub fn format_figures(report: &Report) -> String {
    let mut out = format!(
        "{:<8} {:>6} {:>7} {:>6} {:>8}\n",
        "runtime", "cases", "parsed", "exact", "exact %"
    );
    let mut total = Figure::default();
    for (rt, f) in &report.by_runtime {
        out.push_str(&format!(
            "{:<8} {:>6} {:>7} {:>6} {:>7.1}%\n",
            rt,
            f.cases,
            f.parsed,
            f.exact,
            f.exact_percent()
        ));
        total.cases += f.cases;
        total.parsed += f.parsed;
        total.exact += f.exact;
    }
    out.push_str(&format!(
        "{:<8} {:>6} {:>7} {:>6} {:>7.1}%\n",
        "all",
        total.cases,
        total.parsed,
        total.exact,
        total.exact_percent()
    ));
    out
}
