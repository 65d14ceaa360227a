//! The model's Python regression test: one pytest function in a module body, saved by
//! selfheal as `<test_root>/test_selfheal_<id>.py` behind a header that puts the repository
//! root and the source root on `sys.path` (the model names no path).

use selfheal_events::RegressionTest;

use super::regression::test_file;
use super::syntax::is_identifier;
use crate::languages::model_test::{ModelTestAnswer, ModelTestRequest, ModelTestRules, ModelTestSpec};
use crate::languages::safe_chars;

/// The rules of one incident.
pub struct PythonModelTest {
    spec: ModelTestSpec,
    incident: String,
    fingerprint: String,
    source_root: String,
}

/// The rules for `request` (see the module docs).
pub fn rules(request: &ModelTestRequest<'_>) -> PythonModelTest {
    let rc = request.site.root_cause;
    let project = request.project;
    let file = test_file(&project.test_root, &request.site.diag.incident_id, request.long_name);
    let import = module_of(&rc.file, &project.source_root)
        .filter(|_| is_identifier(&rc.function))
        .map(|module| format!(" Import the function with `from {module} import {}`.", rc.function))
        .unwrap_or_default();
    PythonModelTest {
        spec: ModelTestSpec {
            language: "Python",
            fence: "python",
            framework: "pytest".into(),
            placement: format!(
                "Your regression test is saved by selfheal as `{file}`; selfheal puts the repository root and the \
                 source root on sys.path before your test code.{import}"
            ),
            file,
            path: false,
            name_hint: "test_…".into(),
            rules: vec![
                "The test is one function named test_… in a complete Python module body (imports included). It must \
                 fail on the current code with the incident's exception and pass with your change."
                    .into(),
            ],
        },
        incident: safe_chars(&request.site.diag.incident_id),
        fingerprint: safe_chars(&request.site.diag.fingerprint),
        source_root: project.source_root.clone(),
    }
}

impl ModelTestRules for PythonModelTest {
    fn spec(&self) -> &ModelTestSpec {
        &self.spec
    }

    fn check(&self, answer: &ModelTestAnswer<'_>) -> Result<RegressionTest, String> {
        let name = answer.name;
        if !(name.starts_with("test") && is_identifier(name)) {
            let shown: String = name.chars().take(60).collect();
            return Err(format!("test.name `{shown}` is not a pytest function name (test_…)"));
        }
        if !answer.code.contains(&format!("def {name}(")) {
            return Err(format!("test.code does not define `def {name}(`"));
        }
        Ok(RegressionTest {
            file: self.spec.file.clone(),
            name: name.to_string(),
            code: self.module(answer.code),
        })
    }
}

impl PythonModelTest {
    /// The regression test file: a header that says where it came from and makes the culprit
    /// importable, then the model's module body.
    pub fn module(&self, code: &str) -> String {
        let root = self.source_root.trim_start_matches("./").trim_end_matches('/');
        let root = if !root.is_empty()
            && root
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            && !root.split('/').any(|s| s == "..")
        {
            root
        } else {
            "."
        };
        format!(
            "\"\"\"Regression test written by a language model for incident {incident} (fingerprint {fingerprint}).\n\n\
             Reviewed by selfheal's self-critique, proven in the sandbox (fails before the fix, passes\n\
             after it) and checked by the patch policy before it was committed.\n\"\"\"\n\n\
             import os as _selfheal_os\n\
             import sys as _selfheal_sys\n\n\
             _SELFHEAL_ROOT = _selfheal_os.path.normpath(\n    \
             _selfheal_os.path.join(_selfheal_os.path.dirname(_selfheal_os.path.abspath(__file__)), \"..\")\n)\n\
             for _selfheal_path in (_selfheal_os.path.normpath(_selfheal_os.path.join(_SELFHEAL_ROOT, \"{root}\")), _SELFHEAL_ROOT):\n    \
             if _selfheal_path not in _selfheal_sys.path:\n        \
             _selfheal_sys.path.insert(0, _selfheal_path)\n\n\
             # --- written by the model ---\n{code}{newline}",
            incident = self.incident,
            fingerprint = self.fingerprint,
            newline = if code.ends_with('\n') { "" } else { "\n" },
        )
    }
}

/// The importable module of a repository-relative Python file under the source root.
fn module_of(file: &str, source_root: &str) -> Option<String> {
    let root = source_root.trim_start_matches("./").trim_end_matches('/');
    let stem = file.strip_suffix(".py")?;
    let relative = match root {
        "" | "." => stem,
        root => stem.strip_prefix(&format!("{root}/")).unwrap_or(stem),
    };
    let mut parts: Vec<&str> = relative.split('/').collect();
    if parts.last() == Some(&"__init__") {
        parts.pop();
    }
    (!parts.is_empty() && parts.iter().all(|p| is_identifier(p))).then(|| parts.join("."))
}
