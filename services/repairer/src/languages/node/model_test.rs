//! The model's JavaScript regression test: a new `*.test.js` (`.mjs`/`.cjs` by module kind)
//! file in the project's test directory, for the framework `package.json` names
//! (node:test, Jest or Vitest); the single-test command runs that file. The module kind of
//! the model's code decides the extension: `import`/`export` is an ES module (`.mjs`, or
//! `.js` in a `"type": "module"` package), `require` is CommonJS (`.cjs`, or `.js`
//! elsewhere); Jest only finds `.js`.

use selfheal_events::RegressionTest;

use super::syntax::mask;
use crate::languages::model_test::{
    ModelTestAnswer, ModelTestRequest, ModelTestRules, ModelTestSpec, check_model_path, join, relative,
};
use crate::languages::{RegressionError, id_token, refuse, safe_chars};

/// The rules of one incident.
pub struct NodeModelTest {
    spec: ModelTestSpec,
    /// `node-test`, `jest` or `vitest`.
    framework: &'static str,
    /// Where new tests go (`test`, `.`).
    test_root: String,
    /// `"type": "module"` in package.json: `.js` is an ES module.
    type_module: bool,
    /// The default file without its extension.
    stem: String,
    header: String,
}

/// Whether (masked) code is an ES module.
fn is_esm(masked: &str) -> bool {
    masked.lines().map(str::trim_start).any(|l| {
        l.starts_with("export ")
            || (l.starts_with("import ") && (l.contains(" from ") || l.contains("'") || l.contains('"')))
    })
}

/// The rules for `request`; declines TypeScript culprits (the project's compiler would be
/// needed).
pub fn rules(request: &ModelTestRequest<'_>) -> Result<NodeModelTest, RegressionError> {
    let site = request.site;
    let rc = site.root_cause;
    if [".ts", ".tsx", ".mts", ".cts"].iter().any(|e| rc.file.ends_with(e)) {
        return Err(refuse(
            "TypeScript sources need the project's compiler: no model test is asked for",
        ));
    }
    let type_module = std::fs::read_to_string(request.repo.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|p| p.get("type").and_then(|t| t.as_str()) == Some("module"));
    let framework: &'static str = match request.project.framework.as_str() {
        "jest" => "jest",
        "vitest" => "vitest",
        _ => "node-test",
    };
    let culprit_esm =
        rc.file.ends_with(".mjs") || (!rc.file.ends_with(".cjs") && (type_module || is_esm(&mask(site.source))));
    let test_root = request.project.test_root.trim_end_matches('/').to_string();
    let stem = join(
        &test_root,
        &format!("selfheal-{}.test", id_token(&site.diag.incident_id, request.long_name)),
    );
    let file = format!("{stem}.{}", extension(culprit_esm, type_module, framework));
    let import = relative(&file, &rc.file);
    let (framework_name, how) = match framework {
        "jest" => (
            "Jest",
            "Use Jest's globals `test`/`it` and `expect` (CommonJS `require` for the code under test; Jest finds only \
             `.test.js` files).",
        ),
        "vitest" => ("Vitest", "Import `test` and `expect` from 'vitest'."),
        _ => (
            "node:test",
            "Use `node:test` and `node:assert/strict` (`const test = require('node:test')` in CommonJS, \
             `import test from 'node:test'` in an ES module).",
        ),
    };
    let style = if culprit_esm {
        "an ES module (`import … from`)"
    } else {
        "CommonJS (`require`)"
    };
    let under = if test_root.is_empty() || test_root == "." {
        "the repository".to_string()
    } else {
        format!("`{test_root}/`")
    };
    let spec = ModelTestSpec {
        language: "JavaScript",
        fence: "javascript",
        framework: framework_name.into(),
        placement: format!(
            "Your regression test is a new {framework_name} file under {under}: selfheal saves it as `{file}` unless \
             you give another new `*.test.js` path there. From `{file}` the culprit module is `{import}`; the culprit \
             file is {style}. The suite runs `{}` from the repository root, offline, with the installed node_modules.",
            request.project.suite.command.join(" ")
        ),
        file,
        path: true,
        name_hint: "the test's title".into(),
        rules: vec![
            format!(
                "The test is a complete JavaScript test file for {framework_name}: {how} test.name is the title of \
                 your one test (letters, digits, spaces, _ - . , : ( )), and test.code contains it."
            ),
            format!(
                "test.path, when given, is a new `*.test.js` (`.test.mjs`/`.test.cjs` by module kind) file under \
                 {under}, never in node_modules."
            ),
            "Use only Node's built-in modules, the installed dependencies and the project's own files (no network). \
             Call the culprit function with the failing input: before your change it throws the incident's error, \
             after it the test passes."
                .into(),
        ],
    };
    Ok(NodeModelTest {
        spec,
        framework,
        type_module,
        stem,
        test_root,
        header: format!(
            "// Regression test written by a language model for incident {} (fingerprint {}).\n\
             // Reviewed by selfheal's self-critique, proven in the sandbox (fails before the fix,\n\
             // passes after it) and checked by the patch policy before it was committed.\n",
            safe_chars(&site.diag.incident_id),
            safe_chars(&site.diag.fingerprint)
        ),
    })
}

/// The default extension for a module kind.
fn extension(esm: bool, type_module: bool, framework: &str) -> &'static str {
    match (esm, type_module) {
        _ if framework == "jest" => "js",
        (true, false) => "mjs",
        (false, true) => "cjs",
        _ => "js",
    }
}

impl ModelTestRules for NodeModelTest {
    fn spec(&self) -> &ModelTestSpec {
        &self.spec
    }

    fn check(&self, answer: &ModelTestAnswer<'_>) -> Result<RegressionTest, String> {
        let name = answer.name.trim();
        let plain = !name.is_empty()
            && name.chars().count() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _-.,:()".contains(c));
        if !plain {
            let shown: String = name.chars().take(60).collect();
            return Err(format!(
                "test.name `{shown}` is not a plain test title (letters, digits, spaces, _ - . , : ( ))"
            ));
        }
        if !answer.code.contains(name) {
            return Err(format!("test.code does not contain the test title `{name}`"));
        }
        let masked = mask(answer.code);
        let esm = is_esm(&masked);
        let uses = match self.framework {
            "jest" => masked.contains("test(") || masked.contains("it("),
            "vitest" => answer.code.contains("'vitest'") || answer.code.contains("\"vitest\""),
            _ => answer.code.contains("'node:test'") || answer.code.contains("\"node:test\""),
        };
        if !uses {
            return Err(format!(
                "test.code is not a {} test ({})",
                self.spec.framework,
                match self.framework {
                    "jest" => "no test(…) or it(…)",
                    "vitest" => "nothing is imported from 'vitest'",
                    _ => "node:test is not imported",
                }
            ));
        }
        let file = match answer.path {
            None => format!("{}.{}", self.stem, extension(esm, self.type_module, self.framework)),
            Some(path) => {
                check_model_path(path)?;
                let root = self.test_root.as_str();
                if !(root.is_empty() || root == "." || path.starts_with(&format!("{root}/"))) {
                    return Err(format!("test.path `{path}` is not under the test directory `{root}/`"));
                }
                path.to_string()
            }
        };
        let allowed: &[&str] = match (self.framework, esm, self.type_module) {
            ("jest", _, _) => &[".test.js"],
            (_, true, true) => &[".test.js", ".test.mjs"],
            (_, true, false) => &[".test.mjs"],
            (_, false, true) => &[".test.cjs"],
            (_, false, false) => &[".test.js", ".test.cjs"],
        };
        if !allowed.iter().any(|e| file.ends_with(e)) {
            return Err(format!(
                "test.path `{file}` must end in {} for this {} test",
                allowed.join(" or "),
                if esm { "ES module" } else { "CommonJS" }
            ));
        }
        // A directive prologue ('use strict') may follow comments: the header goes first.
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

    fn node_rules(framework: &str, test_root: &str) -> NodeModelTest {
        let diag = Diagnosis {
            incident_id: "0193c0de-aaaa".into(),
            ..Diagnosis::default()
        };
        let rc = RootCause {
            file: "src/pricing.js".into(),
            line: 2,
            ..RootCause::default()
        };
        let project = Project {
            language: "node",
            source_root: ".".into(),
            framework: framework.into(),
            test_root: test_root.into(),
            suite: TestSuite::default(),
        };
        let rules = rules(&ModelTestRequest {
            site: Site {
                diag: &diag,
                root_cause: &rc,
                source: "'use strict';\nfunction f(o) { return o.a.b; }\nmodule.exports = { f };\n",
            },
            project: &project,
            repo: std::path::Path::new("/nonexistent"),
            long_name: false,
        });
        rules.unwrap()
    }

    const CJS: &str = "'use strict';\nconst test = require('node:test');\nconst { f } = require('../src/pricing');\n\ntest('f survives', () => { f({}); });\n";
    const ESM: &str = "import test from 'node:test';\nimport { f } from '../src/pricing.js';\n\ntest('f survives', () => { f({}); });\n";

    #[test]
    fn a_new_test_file_of_the_right_kind_under_the_test_directory() {
        let r = node_rules("node-test", "test");
        assert_eq!(r.spec().file, "test/selfheal-0193c0de.test.js");
        assert!(r.spec().placement.contains("the culprit module is `../src/pricing.js`"));
        let answer = |code, path| ModelTestAnswer {
            name: "f survives",
            code,
            path,
        };
        let test = r.check(&answer(CJS, None)).unwrap();
        assert_eq!(test.file, "test/selfheal-0193c0de.test.js");
        assert!(test.code.starts_with("// Regression test written by a language model") && test.code.ends_with(CJS));
        assert_eq!(
            r.check(&answer(ESM, None)).unwrap().file,
            "test/selfheal-0193c0de.test.mjs"
        );
        assert_eq!(
            r.check(&answer(CJS, Some("test/pricing-f.test.js"))).unwrap().file,
            "test/pricing-f.test.js"
        );
        for (code, path, why) in [
            (CJS, "src/x.test.js", "not under the test directory"),
            (CJS, "test/x.js", "must end in"),
            (ESM, "test/x.test.js", "must end in .test.mjs"),
            (CJS, "test/node_modules/x.test.js", "node_modules"),
            (CJS, "test/../x.test.js", "plain path"),
        ] {
            let err = r.check(&answer(code, Some(path))).unwrap_err();
            assert!(err.contains(why), "{path}: {err}");
        }
        let titled = |name: &str, code: &str| r.check(&ModelTestAnswer { name, code, path: None });
        assert!(titled("f `${x}`", CJS).unwrap_err().contains("plain test title"));
        assert!(titled("another title", CJS).unwrap_err().contains("does not contain"));
        assert!(
            titled("f survives", &CJS.replace("node:test", "tap"))
                .unwrap_err()
                .contains("node:test is not imported")
        );
        let jest = node_rules("jest", "__tests__");
        assert_eq!(jest.spec().framework, "Jest");
        let jest_code = "const { f } = require('../src/pricing');\ntest('f survives', () => { expect(() => f({})).not.toThrow(); });\n";
        assert_eq!(
            jest.check(&answer(jest_code, None)).unwrap().file,
            "__tests__/selfheal-0193c0de.test.js"
        );
    }
}
