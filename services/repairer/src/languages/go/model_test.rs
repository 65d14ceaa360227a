//! The model's Go regression test: a whole `_test.go` file in the culprit's package
//! directory (so `go test` finds it and unexported functions are callable), with one
//! `func TestSelfheal…(t *testing.T)` that the single-test command runs by name
//! (`go test -run ^Name$ ./<dir>`). Only the standard library and the module's own packages
//! resolve: the suite runs with `GOPROXY=off`. No cgo: the suite's preparation compiles the
//! tests outside the sandbox.

use selfheal_events::RegressionTest;

use super::syntax::{imports, mask, package_name};
use crate::languages::model_test::{
    ModelTestAnswer, ModelTestRequest, ModelTestRules, ModelTestSpec, check_model_path, is_plain_name, join, parent,
};
use crate::languages::{RegressionError, id_token, refuse, safe_chars};

/// The rules of one incident.
pub struct GoModelTest {
    spec: ModelTestSpec,
    /// The culprit's package directory (`""` at the module root).
    dir: String,
    /// The culprit's package name.
    package: String,
    header: String,
}

/// The rules for `request`; declines when the culprit file has no package clause or is not
/// in a plain directory.
pub fn rules(request: &ModelTestRequest<'_>) -> Result<GoModelTest, RegressionError> {
    let site = request.site;
    let rc = site.root_cause;
    let package = package_name(&mask(site.source)).ok_or_else(|| refuse("the culprit file has no package clause"))?;
    let dir = parent(&rc.file).to_string();
    if !dir.is_empty() {
        check_model_path(&dir).map_err(|_| refuse(format!("`{}` is not in a plain directory", rc.file)))?;
    }
    let token = id_token(&site.diag.incident_id, request.long_name);
    let file = join(&dir, &format!("selfheal_{}_test.go", token.to_ascii_lowercase()));
    let name_hint = format!("TestSelfheal_{token}_…");
    let package_dir = if dir.is_empty() {
        "the module root".to_string()
    } else {
        format!("`{dir}`")
    };
    let spec = ModelTestSpec {
        language: "Go",
        fence: "go",
        framework: "go test (package testing)".into(),
        placement: format!(
            "Your regression test is a new file in the culprit's package directory {package_dir} (package `{package}`): \
             selfheal saves it as `{file}` unless you give another `<name>_test.go` path in that directory. It runs \
             with `go test -count=1 -run '^<test.name>$' ./{dir}` offline (GOPROXY=off)."
        ),
        file,
        path: true,
        name_hint: name_hint.clone(),
        rules: vec![
            format!(
                "The test is a complete Go file (`package {package}` clause, imports, one test function) whose \
                 function `func {name_hint}(t *testing.T)` is named in test.name (Test followed by letters, digits, _)."
            ),
            format!(
                "test.path, when given, is a new `<name>_test.go` file directly in {package_dir}; the package clause \
                 is `package {package}` (or `package {package}_test`)."
            ),
            "Import only the standard library and this module's own packages (no network, no new modules), never \
             \"C\". Call the culprit function with the failing input: before your change the call panics with the \
             incident's panic, after it the test passes."
                .into(),
        ],
    };
    Ok(GoModelTest {
        spec,
        header: format!(
            "// Regression test written by a language model for incident {} (fingerprint {}).\n\
             // Reviewed by selfheal's self-critique, proven in the sandbox (fails before the fix,\n\
             // passes after it) and checked by the patch policy before it was committed.\n\n",
            safe_chars(&site.diag.incident_id),
            safe_chars(&site.diag.fingerprint)
        ),
        dir,
        package,
    })
}

impl ModelTestRules for GoModelTest {
    fn spec(&self) -> &ModelTestSpec {
        &self.spec
    }

    fn check(&self, answer: &ModelTestAnswer<'_>) -> Result<RegressionTest, String> {
        let name = answer.name;
        let after_test = name.strip_prefix("Test").unwrap_or_default();
        if !is_plain_name(name) || after_test.starts_with(|c: char| c.is_ascii_lowercase()) || after_test.is_empty() {
            let shown: String = name.chars().take(60).collect();
            return Err(format!(
                "test.name `{shown}` is not a Go test function name (Test followed by an upper-case letter, digit or _)"
            ));
        }
        let file = match answer.path {
            None => self.spec.file.clone(),
            Some(path) => {
                check_model_path(path)?;
                if !path.ends_with("_test.go") {
                    return Err(format!(
                        "test.path `{path}` does not end in `_test.go`: go test would not run it"
                    ));
                }
                let base = path.rsplit('/').next().unwrap_or(path);
                if base.starts_with('_') {
                    return Err(format!("test.path `{path}` starts with `_`: go ignores such files"));
                }
                if parent(path) != self.dir {
                    return Err(format!(
                        "test.path `{path}` is not in the culprit's package directory `{}`",
                        if self.dir.is_empty() { "." } else { &self.dir }
                    ));
                }
                path.to_string()
            }
        };
        let masked = mask(answer.code);
        let package = package_name(&masked);
        let external = format!("{}_test", self.package);
        if package.as_deref() != Some(self.package.as_str()) && package.as_deref() != Some(external.as_str()) {
            return Err(format!(
                "test.code's package clause must be `package {}` (or `package {external}`)",
                self.package
            ));
        }
        if imports(answer.code).iter().any(|i| i == "C") {
            return Err("test.code imports \"C\": cgo is not allowed in a regression test".into());
        }
        let defined = masked.lines().any(|l| {
            l.strip_prefix(&format!("func {name}("))
                .is_some_and(|rest| rest.replace(' ', "").starts_with("t*testing.T)"))
        });
        if !defined {
            return Err(format!("test.code does not define `func {name}(t *testing.T)`"));
        }
        Ok(RegressionTest {
            file,
            name: name.to_string(),
            code: format!(
                "{}{}{}",
                self.header,
                answer.code,
                if answer.code.ends_with('\n') { "" } else { "\n" }
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::languages::{Project, Site, TestSuite};
    use selfheal_events::{Diagnosis, RootCause};

    fn go_rules(file: &str, source: &str) -> Result<GoModelTest, RegressionError> {
        let diag = Diagnosis {
            incident_id: "0193a1b2-c3d4".into(),
            ..Diagnosis::default()
        };
        let rc = RootCause {
            file: file.into(),
            line: 3,
            ..RootCause::default()
        };
        let project = Project {
            language: "go",
            source_root: ".".into(),
            framework: "go-test".into(),
            test_root: ".".into(),
            suite: TestSuite::default(),
        };
        rules(&ModelTestRequest {
            site: Site {
                diag: &diag,
                root_cause: &rc,
                source,
            },
            project: &project,
            repo: std::path::Path::new("."),
            long_name: false,
        })
    }

    #[test]
    fn the_test_goes_in_the_culprits_package_and_is_run_by_name() {
        let r = go_rules("stats/stats.go", "// Package stats.\npackage stats\n\nfunc F() {}\n").unwrap();
        assert_eq!(r.spec().file, "stats/selfheal_0193a1b2_test.go");
        let code = "package stats\n\nimport \"testing\"\n\nfunc TestSelfheal_x(t *testing.T) {\n\tF()\n}\n";
        let ok = |path| ModelTestAnswer {
            name: "TestSelfheal_x",
            code,
            path,
        };
        let test = r.check(&ok(None)).unwrap();
        assert_eq!(test.file, "stats/selfheal_0193a1b2_test.go");
        assert!(test.code.starts_with("// Regression test written by a language model"));
        assert!(test.code.ends_with(code));
        assert_eq!(
            r.check(&ok(Some("stats/avg_test.go"))).unwrap().file,
            "stats/avg_test.go"
        );
        for (path, why) in [
            ("stats/avg.go", "_test.go"),
            ("other/avg_test.go", "package directory"),
            ("stats/_avg_test.go", "ignores"),
            ("stats/../x_test.go", "plain path"),
        ] {
            let err = r.check(&ok(Some(path))).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        let named = |name: &str, code: &str| r.check(&ModelTestAnswer { name, code, path: None });
        assert!(
            named("Testx", code)
                .unwrap_err()
                .contains("not a Go test function name")
        );
        assert!(named("TestOther", code).unwrap_err().contains("does not define"));
        assert!(
            named("TestSelfheal_x", &code.replace("package stats", "package other"))
                .unwrap_err()
                .contains("package clause")
        );
        assert!(named("TestSelfheal_x", &code.replace("package stats", "package stats_test")).is_ok());
        let cgo = code.replace("import \"testing\"", "import \"C\"\nimport \"testing\"");
        assert!(named("TestSelfheal_x", &cgo).unwrap_err().contains("cgo"));
        assert!(
            go_rules("a.go", "func F() {}\n").is_err(),
            "no package clause: declined"
        );
        assert_eq!(
            go_rules("main.go", "package main\n").unwrap().spec().file,
            "selfheal_0193a1b2_test.go"
        );
    }
}
