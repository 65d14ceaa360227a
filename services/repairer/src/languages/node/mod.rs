//! Node.js: `package.json` projects tested with node:test, Jest or Vitest, the JavaScript fix
//! templates and regression tests.
//!
//! The framework comes from `package.json` (a `vitest` or `jest` dependency or test script,
//! else node:test). The suite runs offline in the sandbox: the copy gets the repository's
//! installed `node_modules` (a symlink, made by the suite's preparation outside the sandbox;
//! read-only inside it), or, when the repository has none, `npm ci --ignore-scripts` installs
//! them there with network (no package script runs). npm's cache and logs go to the
//! sandbox's private `/tmp`.
//!
//! The sandbox caps the address space, and V8's default WebAssembly bounds checks reserve
//! about 10 GB of it per memory: any WebAssembly then fails with "Cannot allocate Wasm memory"
//! (undici's HTTP parser is WebAssembly, and `npx`, Jest and Vitest load it). So the suite runs
//! with `NODE_OPTIONS=--disable-wasm-trap-handler` (explicit bounds checks, no reservation)
//! when the `node` on `PATH` accepts it there (Node 20.15 and 22.2 on).

pub mod model_test;
pub mod regression;
pub mod syntax;
pub mod templates;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use selfheal_events::RegressionTest;

use super::{Language, ModelTestRequest, ModelTestRules, Project, RegressionError, RegressionRequest, TestSuite};
use crate::sandbox::TestSummary;
use crate::templates::FixTemplate;

/// The Node.js language.
#[derive(Debug, Clone, Copy, Default)]
pub struct Node;

/// The npm placeholder test script of `npm init`.
const NPM_PLACEHOLDER: &str = "no test specified";

/// The `NODE_OPTIONS` flag that lets WebAssembly run under the sandbox's address-space cap.
const WASM_WITHOUT_RESERVATION: &str = "--disable-wasm-trap-handler";

/// Whether the `node` on `PATH` accepts [`WASM_WITHOUT_RESERVATION`] in `NODE_OPTIONS` (asked
/// once: an older Node refuses to start with a flag it does not know there).
fn node_accepts_wasm_flag() -> bool {
    static ACCEPTS: OnceLock<bool> = OnceLock::new();
    *ACCEPTS.get_or_init(|| {
        std::process::Command::new("node")
            .args(["-e", "0"])
            .env("NODE_OPTIONS", WASM_WITHOUT_RESERVATION)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn package_json(repo: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(repo.join("package.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn has_dependency(pkg: &serde_json::Value, name: &str) -> bool {
    ["dependencies", "devDependencies", "peerDependencies"]
        .iter()
        .any(|k| pkg.get(k).and_then(|d| d.get(name)).is_some())
}

/// `node-test`, `jest` or `vitest`, from package.json.
pub fn framework(pkg: &serde_json::Value) -> &'static str {
    let script = pkg
        .get("scripts")
        .and_then(|s| s.get("test"))
        .and_then(|t| t.as_str())
        .unwrap_or("");
    if has_dependency(pkg, "vitest") || script.contains("vitest") {
        "vitest"
    } else if has_dependency(pkg, "jest") || script.contains("jest") {
        "jest"
    } else {
        "node-test"
    }
}

impl Language for Node {
    fn id(&self) -> &'static str {
        "node"
    }

    fn names(&self) -> &'static [&'static str] {
        &["node", "nodejs", "javascript", "typescript", "js", "ts"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        templates::EXTENSIONS
    }

    fn detect(&self, repo: &Path) -> Option<Project> {
        let pkg = package_json(repo)?;
        let framework = framework(&pkg);
        let script = pkg
            .get("scripts")
            .and_then(|s| s.get("test"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let command: Vec<String> = if !script.is_empty() && !script.contains(NPM_PLACEHOLDER) {
            vec!["npm".into(), "test".into()]
        } else {
            match framework {
                "jest" => vec!["npx".into(), "--no-install".into(), "jest".into()],
                "vitest" => vec!["npx".into(), "--no-install".into(), "vitest".into(), "run".into()],
                _ => vec!["node".into(), "--test".into()],
            }
        };
        let test_root = ["test", "tests", "__tests__"]
            .into_iter()
            .find(|d| repo.join(d).is_dir())
            .unwrap_or(".");
        let installed = repo.join("node_modules");
        let needs_modules = ["dependencies", "devDependencies"]
            .iter()
            .any(|k| pkg.get(k).and_then(|d| d.as_object()).is_some_and(|d| !d.is_empty()));
        let prepare = if installed.is_dir() {
            // The link names the real directory, not `<repo>/node_modules`: a repository under
            // /tmp is hidden by the sandbox's private /tmp, the install its link points to is not.
            let target = std::fs::canonicalize(&installed).unwrap_or(installed);
            if target.starts_with("/tmp") {
                // Even the real directory is under /tmp: copy it into the copy (which the
                // sandbox binds). A copy, not hard links, so sandboxed code cannot write
                // through to the repository's own install.
                Some(vec![
                    "cp".into(),
                    "-a".into(),
                    target.display().to_string(),
                    "node_modules".into(),
                ])
            } else {
                Some(vec![
                    "ln".into(),
                    "-sfn".into(),
                    target.display().to_string(),
                    "node_modules".into(),
                ])
            }
        } else if needs_modules {
            let verb = if repo.join("package-lock.json").is_file() {
                "ci"
            } else {
                "install"
            };
            Some(
                ["npm", verb, "--ignore-scripts", "--no-audit", "--no-fund"]
                    .map(String::from)
                    .to_vec(),
            )
        } else {
            None
        };
        let mut env = BTreeMap::from([
            ("npm_config_cache".to_string(), "/tmp/selfheal-npm-cache".to_string()),
            ("npm_config_update_notifier".to_string(), "false".to_string()),
            ("npm_config_audit".to_string(), "false".to_string()),
            ("npm_config_fund".to_string(), "false".to_string()),
            ("NODE_ENV".to_string(), "test".to_string()),
        ]);
        if node_accepts_wasm_flag() {
            env.insert("NODE_OPTIONS".into(), WASM_WITHOUT_RESERVATION.into());
        }
        Some(Project {
            language: self.id(),
            source_root: ".".into(),
            framework: framework.into(),
            test_root: test_root.into(),
            suite: TestSuite { command, env, prepare },
        })
    }

    fn templates(&self) -> Vec<Box<dyn FixTemplate>> {
        templates::all()
    }

    fn regression_test(&self, request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
        // The repository is not at hand here; the module kind is read from the culprit file
        // (and its extension), and a `.js` file in a `"type": "module"` package that uses
        // neither `import` nor `export` is treated as CommonJS.
        regression::write(request, false)
    }

    fn model_test(&self, request: &ModelTestRequest<'_>) -> Result<Box<dyn ModelTestRules>, RegressionError> {
        Ok(Box::new(model_test::rules(request)?))
    }

    fn single_test_command(&self, project: &Project, test: &RegressionTest) -> Vec<String> {
        match project.framework.as_str() {
            "jest" => ["npx", "--no-install", "jest", "--runTestsByPath", test.file.as_str()]
                .map(String::from)
                .to_vec(),
            "vitest" => ["npx", "--no-install", "vitest", "run", test.file.as_str()]
                .map(String::from)
                .to_vec(),
            _ => vec!["node".into(), "--test".into(), test.file.clone()],
        }
    }

    fn summary(&self, output: &str) -> Option<TestSummary> {
        summary(output)
    }
}

/// Test counts from node:test (TAP `# pass N` or spec `ℹ pass N`), Jest (`Tests: 1 failed,
/// 5 passed, 6 total`) or Vitest (`Tests  1 failed | 5 passed (6)`).
pub fn summary(output: &str) -> Option<TestSummary> {
    let mut s = TestSummary::default();
    let mut found = false;
    for line in output.lines() {
        let t = line.trim().trim_start_matches('#').trim_start_matches('ℹ').trim();
        let mut words = t.split_whitespace();
        if let (Some(key), Some(n), None) = (words.next(), words.next(), words.next())
            && let Ok(n) = n.parse::<u32>()
        {
            match key {
                "pass" => (s.passed, found) = (n, true),
                "fail" => (s.failed, found) = (n, true),
                "skipped" | "todo" => s.skipped += n,
                _ => {}
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("Tests:").or_else(|| t.strip_prefix("Tests ")) {
            for part in rest.split([',', '|']) {
                let mut w = part.split_whitespace();
                if let (Some(n), Some(what)) = (w.next().and_then(|n| n.parse::<u32>().ok()), w.next()) {
                    found = true;
                    match what {
                        "passed" => s.passed = n,
                        "failed" => s.failed = n,
                        "skipped" | "todo" => s.skipped += n,
                        _ => {}
                    }
                }
            }
        }
    }
    found.then_some(s)
}

#[cfg(test)]
mod tests;
