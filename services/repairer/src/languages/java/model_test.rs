//! The model's Java regression test: a new JUnit test class in the culprit's package, at
//! `…/src/test/java/<package>/<Class>.java` (the culprit module's test root), whose name
//! Surefire's and Gradle's default patterns find (`*Test`, `*Tests`, `*TestCase`, `Test*`);
//! the single-test command selects the class (`-Dtest=<Class>`, `--tests <package>.<Class>`).
//! The path follows from the package and the class, so a path the model names must be that
//! one.

use selfheal_events::RegressionTest;

use super::regression::test_path;
use super::syntax::JavaSource;
use crate::languages::model_test::{
    ModelTestAnswer, ModelTestRequest, ModelTestRules, ModelTestSpec, check_model_path, is_plain_name,
};
use crate::languages::{RegressionError, id_token, refuse, safe_chars};

/// The rules of one incident.
pub struct JavaModelTest {
    spec: ModelTestSpec,
    culprit: String,
    test_root: String,
    package: String,
    junit4: bool,
    header: String,
}

/// The rules for `request`; declines a culprit whose package cannot be read.
pub fn rules(request: &ModelTestRequest<'_>) -> Result<JavaModelTest, RegressionError> {
    let site = request.site;
    let rc = site.root_cause;
    if !rc.file.ends_with(".java") {
        return Err(refuse(format!("`{}` is not a Java source file", rc.file)));
    }
    let package = JavaSource::new(site.source)
        .package()
        .ok_or_else(|| refuse("the culprit file's package cannot be read"))?;
    let framework = request.project.framework.as_str();
    let junit4 = framework.starts_with("junit4");
    let tool = if framework.ends_with("gradle") {
        "Gradle"
    } else {
        "Maven"
    };
    let junit = if junit4 { "JUnit 4" } else { "JUnit 5" };
    let class = format!("Selfheal{}Test", id_token(&site.diag.incident_id, request.long_name));
    let test_root = request.project.test_root.clone();
    let file = test_path(&rc.file, &test_root, &package, &class);
    let package_clause = if package.is_empty() {
        "the default package (no package clause)".to_string()
    } else {
        format!("`package {package};`")
    };
    let (imports, annotation) = if junit4 {
        ("org.junit.Test and org.junit.Assert", "@Test from org.junit")
    } else {
        (
            "org.junit.jupiter.api.Test and org.junit.jupiter.api.Assertions",
            "@Test from org.junit.jupiter.api",
        )
    };
    let spec = ModelTestSpec {
        language: "Java",
        fence: "java",
        framework: format!("{junit} ({tool})"),
        placement: format!(
            "Your regression test is a new {junit} class in the culprit's package ({package_clause}), so \
             package-private members are reachable: selfheal saves class `{class}` as `{file}`. It runs alone with \
             the suite command narrowed to that class, offline (dependencies already in the local repository)."
        ),
        file,
        path: true,
        name_hint: format!("{class} (the test class's simple name)"),
        rules: vec![
            format!(
                "The test is one complete Java source file: {package_clause}, imports ({imports}), and one \
                 top-level class whose simple name is test.name and ends in `Test` (e.g. `{class}`), with a \
                 {annotation} method."
            ),
            "test.path, when given, is `<module>/src/test/java/<package directories>/<test.name>.java`, next to \
             the culprit's module; it must be a new file."
                .into(),
            "Use only the JDK, the test dependencies the build already declares and the project's own classes. Call \
             the culprit method with the failing input: before your change it throws the incident's exception, \
             after it the test passes."
                .into(),
        ],
    };
    Ok(JavaModelTest {
        spec,
        culprit: rc.file.clone(),
        test_root,
        package,
        junit4,
        header: format!(
            "// Regression test written by a language model for incident {} (fingerprint {}).\n\
             // Reviewed by selfheal's self-critique, proven in the sandbox (fails before the fix,\n\
             // passes after it) and checked by the patch policy before it was committed.\n",
            safe_chars(&site.diag.incident_id),
            safe_chars(&site.diag.fingerprint)
        ),
    })
}

impl ModelTestRules for JavaModelTest {
    fn spec(&self) -> &ModelTestSpec {
        &self.spec
    }

    fn check(&self, answer: &ModelTestAnswer<'_>) -> Result<RegressionTest, String> {
        let name = answer.name;
        let found = name.ends_with("Test") || name.ends_with("Tests") || name.ends_with("TestCase");
        if !is_plain_name(name) || !name.starts_with(|c: char| c.is_ascii_uppercase()) || !found {
            let shown: String = name.chars().take(60).collect();
            return Err(format!(
                "test.name `{shown}` is not a test class name the build finds (upper-case first, ending in Test)"
            ));
        }
        let source = JavaSource::new(answer.code);
        let package = source.package().unwrap_or_default();
        if package != self.package {
            return Err(if self.package.is_empty() {
                "test.code must be in the default package, like the culprit".to_string()
            } else {
                format!("test.code's package must be `{}`, the culprit's", self.package)
            });
        }
        if !source.types().iter().any(|t| t.name == name) {
            return Err(format!("test.code does not declare the class `{name}`"));
        }
        let junit = if self.junit4 { "org.junit." } else { "org.junit.jupiter" };
        if !answer.code.contains("@Test") || !answer.code.contains(junit) {
            return Err(format!(
                "test.code is not a {} test (@Test from {junit}…)",
                self.spec.framework
            ));
        }
        let file = test_path(&self.culprit, &self.test_root, &self.package, name);
        if let Some(path) = answer.path {
            check_model_path(path)?;
            if path != file {
                return Err(format!("test.path `{path}` must be `{file}` for class `{name}`"));
            }
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

    fn java_rules(file: &str, source: &str, framework: &str) -> Result<JavaModelTest, RegressionError> {
        let diag = Diagnosis {
            incident_id: "0193c0de-aaaa".into(),
            ..Diagnosis::default()
        };
        let rc = RootCause {
            file: file.into(),
            line: 3,
            ..RootCause::default()
        };
        let project = Project {
            language: "java",
            source_root: "src/main/java".into(),
            framework: framework.into(),
            test_root: "src/test/java".into(),
            suite: TestSuite::default(),
        };
        rules(&ModelTestRequest {
            site: Site {
                diag: &diag,
                root_cause: &rc,
                source,
            },
            project: &project,
            repo: std::path::Path::new("/nonexistent"),
            long_name: false,
        })
    }

    const CODE: &str = "package com.example.inventory;\n\nimport org.junit.jupiter.api.Test;\n\nclass UnknownSkuTest {\n    @Test\n    void refused() {}\n}\n";

    #[test]
    fn a_junit_class_in_the_culprits_package_under_its_modules_test_root() {
        let culprit = "shop/src/main/java/com/example/inventory/Inventory.java";
        let r = java_rules(
            culprit,
            "package com.example.inventory;\nclass Inventory {}\n",
            "junit5-maven",
        )
        .unwrap();
        assert_eq!(r.spec().framework, "JUnit 5 (Maven)");
        assert_eq!(
            r.spec().file,
            "shop/src/test/java/com/example/inventory/Selfheal0193c0deTest.java"
        );
        let answer = |name, code, path| ModelTestAnswer { name, code, path };
        let test = r.check(&answer("UnknownSkuTest", CODE, None)).unwrap();
        assert_eq!(
            test.file,
            "shop/src/test/java/com/example/inventory/UnknownSkuTest.java"
        );
        assert!(test.code.starts_with("// Regression test written by a language model") && test.code.ends_with(CODE));
        assert!(r.check(&answer("UnknownSkuTest", CODE, Some(&test.file))).is_ok());
        for (name, code, path, why) in [
            (
                "UnknownSkuTest",
                CODE,
                Some("src/test/java/UnknownSkuTest.java"),
                "must be",
            ),
            ("UnknownSku", CODE, None, "not a test class name"),
            ("unknownSkuTest", CODE, None, "not a test class name"),
            ("OtherTest", CODE, None, "does not declare the class"),
            (
                "UnknownSkuTest",
                &CODE.replace("com.example.inventory", "com.evil"),
                None,
                "package must be",
            ),
            (
                "UnknownSkuTest",
                &CODE.replace("org.junit.jupiter.api", "org.junit"),
                None,
                "not a JUnit 5",
            ),
        ] {
            let err = r.check(&answer(name, code, path)).unwrap_err();
            assert!(err.contains(why), "{name} {path:?}: {err}");
        }
        let junit4 = java_rules("src/main/java/a/B.java", "package a;\n", "junit4-gradle").unwrap();
        assert_eq!(junit4.spec().framework, "JUnit 4 (Gradle)");
        assert_eq!(junit4.spec().file, "src/test/java/a/Selfheal0193c0deTest.java");
        assert!(java_rules("a.kt", "", "").is_err());
    }
}
