//! Java: Maven and Gradle projects with JUnit 5, the Java fix templates and regression tests.
//!
//! **Offline suites.** Maven runs as `mvn -o -B -ntp test` against a local repository that
//! was filled before the sandbox started (`TestSuite::prepare`, or a script such as
//! `examples/inventory-java/prepare-offline.sh`): `$SELFHEAL_M2` when set, else
//! `$SELFHEAL_CACHE/m2`, else Maven's own `~/.m2/repository` (the sandbox sees the host's
//! file system read-only, which is all an offline build needs). The repository is passed as
//! `MAVEN_OPTS=-Dmaven.repo.local=…` in the suite's environment, so it also holds when the
//! catalog names its own test command. The repository must not live under `/tmp`: the
//! sandbox mounts a private, empty `/tmp`. Gradle runs as `gradle --offline test` (`./gradlew`
//! when the project has one).
//!
//! **Memory.** The sandbox limits address space (`ulimit -v`), and a JVM reserves far more
//! than it uses (a heap sized from the machine's memory, code cache, class space): the suite's
//! environment bounds every JVM it starts — Maven's and Surefire's forks alike — through
//! `JAVA_TOOL_OPTIONS` (a catalog's `extra_env` may set its own).

pub mod model_test;
pub mod regression;
pub mod syntax;
pub mod templates;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use selfheal_events::RegressionTest;

use super::{Language, ModelTestRequest, ModelTestRules, Project, RegressionError, RegressionRequest, TestSuite};
use crate::sandbox::TestSummary;
use crate::templates::FixTemplate;

/// JVM options for sandboxed runs: small reservations so that a 1–2 GiB address-space limit
/// holds Maven's JVM and the test fork; serial GC and C1 only start fastest on small machines.
pub const JVM_OPTIONS: &str = "-Xmx384m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
     -XX:ReservedCodeCacheSize=64m -XX:CompressedClassSpaceSize=128m -XX:MaxMetaspaceSize=256m";

/// The Java language.
#[derive(Debug, Clone, Default)]
pub struct Java {
    /// Maven's local repository for offline runs; `None` leaves Maven's default.
    maven_repo: Option<PathBuf>,
}

impl Java {
    /// Java with the Maven local repository from the environment: `$SELFHEAL_M2`, else
    /// `$SELFHEAL_CACHE/m2`, else Maven's default.
    pub fn from_env() -> Self {
        let repo = std::env::var_os("SELFHEAL_M2")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("SELFHEAL_CACHE")
                    .filter(|v| !v.is_empty())
                    .map(|c| PathBuf::from(c).join("m2"))
            });
        Java { maven_repo: repo }
    }

    /// Java with this Maven local repository.
    pub fn with_maven_repo(repo: impl Into<PathBuf>) -> Self {
        Java {
            maven_repo: Some(repo.into()),
        }
    }

    fn maven_repo_arg(&self) -> Option<String> {
        self.maven_repo
            .as_ref()
            .map(|r| format!("-Dmaven.repo.local={}", r.display()))
    }

    /// The suite's environment: bounded JVMs, and Maven's local repository.
    fn suite_env(&self, build: Build) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("JAVA_TOOL_OPTIONS".to_string(), JVM_OPTIONS.to_string()),
            ("MALLOC_ARENA_MAX".to_string(), "2".to_string()),
        ]);
        if build == Build::Maven
            && let Some(arg) = self.maven_repo_arg()
        {
            env.insert("MAVEN_OPTS".to_string(), arg);
        }
        env
    }
}

/// The build tool of a detected project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Maven,
    Gradle,
}

impl Language for Java {
    fn id(&self) -> &'static str {
        "java"
    }

    fn names(&self) -> &'static [&'static str] {
        &["java", "jvm", "kotlin", "scala"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["java"]
    }

    fn detect(&self, repo: &Path) -> Option<Project> {
        let build = if repo.join("pom.xml").is_file() {
            Build::Maven
        } else if [
            "build.gradle",
            "build.gradle.kts",
            "settings.gradle",
            "settings.gradle.kts",
        ]
        .iter()
        .any(|f| repo.join(f).is_file())
        {
            Build::Gradle
        } else {
            return None;
        };
        let build_text = build_files_text(repo, build);
        let junit5 = build_text.contains("junit-jupiter") || build_text.contains("useJUnitPlatform");
        let junit4 = build_text.contains("<artifactId>junit</artifactId>") || build_text.contains("junit:junit");
        let tool = match build {
            Build::Maven => "maven",
            Build::Gradle => "gradle",
        };
        let framework = if junit5 {
            format!("junit5-{tool}")
        } else if junit4 {
            format!("junit4-{tool}")
        } else {
            tool.to_string()
        };
        let source_root = if repo.join("src/main/java").is_dir() {
            "src/main/java"
        } else {
            "."
        };
        let (command, prepare) = match build {
            Build::Maven => (self.maven_command(&["-o", "test"]), Some(self.maven_prepare())),
            Build::Gradle => {
                let gradle = if repo.join("gradlew").is_file() {
                    "./gradlew"
                } else {
                    "gradle"
                };
                (
                    vec![
                        gradle.to_string(),
                        "--offline".into(),
                        "--console=plain".into(),
                        "test".into(),
                    ],
                    Some(vec![gradle.to_string(), "--console=plain".into(), "testClasses".into()]),
                )
            }
        };
        Some(Project {
            language: self.id(),
            source_root: source_root.to_string(),
            framework,
            test_root: "src/test/java".to_string(),
            suite: TestSuite {
                command,
                env: self.suite_env(build),
                prepare,
            },
        })
    }

    fn templates(&self) -> Vec<Box<dyn FixTemplate>> {
        templates::all()
    }

    fn regression_test(&self, request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
        regression::write(request)
    }

    fn model_test(&self, request: &ModelTestRequest<'_>) -> Result<Box<dyn ModelTestRules>, RegressionError> {
        Ok(Box::new(model_test::rules(request)?))
    }

    fn single_test_command(&self, project: &Project, test: &RegressionTest) -> Vec<String> {
        narrow(&project.suite.command, &project.framework, test)
    }

    fn summary(&self, output: &str) -> Option<TestSummary> {
        parse_surefire_summary(output)
    }
}

impl Java {
    /// `mvn -B -ntp -Dstyle.color=never <args>` (the repository comes from `MAVEN_OPTS`).
    fn maven_command(&self, args: &[&str]) -> Vec<String> {
        ["mvn", "-B", "-ntp", "-Dstyle.color=never"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    }

    /// Online, before the sandbox: resolves dependencies, plugins and Surefire's JUnit
    /// provider by compiling and running a test filter that matches nothing (no project code
    /// runs).
    fn maven_prepare(&self) -> Vec<String> {
        self.maven_command(&[
            "test",
            "-Dtest=SelfhealPrepareMatchesNoTest",
            "-Dsurefire.failIfNoSpecifiedTests=false",
        ])
    }
}

/// The suite command narrowed to one test class: `-Dtest=<Class>` for Maven (with
/// `-Dsurefire.failIfNoSpecifiedTests=false`, so the other modules of a multi-module build
/// pass), `--tests <fully.qualified.Class>` for Gradle.
pub fn narrow(suite: &[String], framework: &str, test: &RegressionTest) -> Vec<String> {
    let class = Path::new(&test.file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut command = suite.to_vec();
    let gradle = framework.ends_with("gradle")
        || command
            .first()
            .is_some_and(|p| p.ends_with("gradle") || p.ends_with("gradlew"));
    if gradle {
        let qualified = test
            .file
            .split_once("src/test/java/")
            .map(|(_, rest)| rest.trim_end_matches(".java").replace('/', "."))
            .unwrap_or(class);
        command.extend(["--tests".to_string(), qualified]);
    } else {
        command.extend([
            format!("-Dtest={class}"),
            "-Dsurefire.failIfNoSpecifiedTests=false".to_string(),
        ]);
    }
    command
}

/// The text of the build files (root and one level of modules), for framework detection.
fn build_files_text(repo: &Path, build: Build) -> String {
    let names: &[&str] = match build {
        Build::Maven => &["pom.xml"],
        Build::Gradle => &["build.gradle", "build.gradle.kts"],
    };
    let mut text = String::new();
    let mut dirs = vec![repo.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(repo) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        for name in names {
            if let Ok(content) = std::fs::read_to_string(dir.join(name)) {
                text.push_str(&content);
            }
        }
    }
    text
}

/// Counts from Surefire's `Tests run: N, Failures: F, Errors: E, Skipped: S` (the last one
/// printed is the build's total; per-class lines end in `-- in <class>`).
pub fn parse_surefire_summary(output: &str) -> Option<TestSummary> {
    let line = output
        .lines()
        .rev()
        .map(|l| {
            l.trim_start_matches("[INFO]")
                .trim_start_matches("[ERROR]")
                .trim_start_matches("[WARNING]")
                .trim()
        })
        .find(|l| l.starts_with("Tests run:") && !l.contains(" in "))?;
    let count = |key: &str| -> Option<u32> {
        let at = line.find(key)? + key.len();
        line[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    let run = count("Tests run:")?;
    let failed = count("Failures:").unwrap_or(0);
    let errors = count("Errors:").unwrap_or(0);
    let skipped = count("Skipped:").unwrap_or(0);
    Some(TestSummary {
        passed: run.saturating_sub(failed + errors + skipped),
        failed,
        errors,
        skipped,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod maven_tests;

#[cfg(test)]
mod flow_tests;
