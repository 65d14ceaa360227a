//! Go: modules (`go.mod`) tested with `go test`, the Go fix templates and regression tests.
//!
//! The suite runs offline in the sandbox with `GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local`
//! and the module cache of the repairer's environment (`GOMODCACHE`, else
//! `$SELFHEAL_CACHE/go/mod`, else Go's default `~/go/pkg/mod`), read-only there.
//!
//! The build cache needs more care: Go refuses a read-only one and the sandbox sees the host
//! read-only, while a cold cache costs minutes (a service with the OpenTelemetry SDK compiles
//! protobuf and the SDK: 2–4 min on two busy cores, against 4 s warm). So the suite's
//! preparation, run once per sandbox copy outside the sandbox, (1) downloads the modules
//! (network allowed there), (2) compiles every package and its tests into the host's build
//! cache (`$SELFHEAL_CACHE/go/build`) without running anything (`go test -exec true`), and
//! (3) hard-links that cache into the copy as `.selfheal/gocache`. Inside the sandbox a `go`
//! shim first on `PATH` (`$SELFHEAL_CACHE/go/shim/go`, written by the preparation) points
//! `GOCACHE` at that copy when it exists, then runs the real `go`; so the catalog's own test
//! command (`go test ./...`) works unchanged.

pub mod model_test;
pub mod regression;
pub mod syntax;
pub mod templates;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use selfheal_events::{RegressionTest, RootCause};

use super::{Language, ModelTestRequest, ModelTestRules, Project, RegressionError, RegressionRequest, TestSuite};
use crate::sandbox::TestSummary;
use crate::templates::FixTemplate;

/// The Go language.
#[derive(Debug, Clone, Default)]
pub struct Go {
    /// Where the module cache, the build cache and the shim live (`$SELFHEAL_CACHE`).
    cache: PathBuf,
    /// `GOMODCACHE`, when the environment names one.
    modcache: Option<PathBuf>,
    /// The real `go` binary (not the shim), when found on `PATH`.
    go: Option<PathBuf>,
    /// `PATH` of the repairer, appended after the shim's directory.
    path: String,
    /// The repairer's `GOPROXY`, for the preparation's downloads.
    proxy: Option<String>,
}

/// The preparation (see the module docs): `$1` shim directory, `$2` real go, `$3` host build
/// cache. Runs in the sandbox copy, outside the sandbox, with the suite's environment.
const PREPARE: &str = r#"set -eu
shim_dir=$1 real_go=$2 host_cache=$3
mkdir -p "$shim_dir" "$host_cache"
shim="$shim_dir/go"
tmp="$shim.$$"
cat >"$tmp" <<EOF
#!/bin/sh
# Written by selfheal's repairer (languages/go): use the build cache prepared in the sandbox
# copy (the host's is read-only inside the sandbox), then run the real go.
if [ -d "\$PWD/.selfheal/gocache" ]; then GOCACHE="\$PWD/.selfheal/gocache"; export GOCACHE; fi
exec '$real_go' "\$@"
EOF
chmod +x "$tmp"
mv -f "$tmp" "$shim"
GOPROXY="${SELFHEAL_GOPROXY:-https://proxy.golang.org,direct}" GOCACHE="$host_cache" "$real_go" mod download
GOCACHE="$host_cache" "$real_go" test -count=1 -run '^$' -exec true ./... >/dev/null
rm -rf .selfheal/gocache
mkdir -p .selfheal
cp -al "$host_cache" .selfheal/gocache 2>/dev/null || cp -a "$host_cache" .selfheal/gocache
"#;

impl Go {
    /// Settings from the environment: `SELFHEAL_CACHE` (default `~/.cache/selfheal`),
    /// `GOMODCACHE`, `PATH`, `GOPROXY`.
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        let cache = std::env::var_os("SELFHEAL_CACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache/selfheal"));
        let modcache = std::env::var_os("GOMODCACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let shim_dir = cache.join("go/shim");
        let go = std::env::split_paths(&path)
            .filter(|dir| *dir != shim_dir)
            .map(|dir| dir.join("go"))
            .find(|candidate| candidate.is_file());
        let proxy = std::env::var("GOPROXY").ok().filter(|p| !p.is_empty() && p != "off");
        Go {
            cache,
            modcache,
            go,
            path,
            proxy,
        }
    }

    fn shim_dir(&self) -> PathBuf {
        self.cache.join("go/shim")
    }

    fn modcache(&self) -> PathBuf {
        self.modcache.clone().unwrap_or_else(|| self.cache.join("go/mod"))
    }

    fn suite(&self) -> TestSuite {
        let host_cache = self.cache.join("go/build");
        let shim = self.shim_dir();
        let mut env = BTreeMap::from([
            ("GOFLAGS".to_string(), "-mod=mod".to_string()),
            ("GOPROXY".to_string(), "off".to_string()),
            ("GOTOOLCHAIN".to_string(), "local".to_string()),
            ("GOMODCACHE".to_string(), self.modcache().display().to_string()),
            // Outside the sandbox (the preparation) this is the persistent cache; inside, the
            // shim replaces it with the copy's.
            ("GOCACHE".to_string(), host_cache.display().to_string()),
            ("PATH".to_string(), format!("{}:{}", shim.display(), self.path)),
        ]);
        if let Some(proxy) = &self.proxy {
            env.insert("SELFHEAL_GOPROXY".into(), proxy.clone());
        }
        let go = self
            .go
            .as_ref()
            .map_or_else(|| "go".to_string(), |g| g.display().to_string());
        TestSuite {
            command: ["go", "test", "./..."].map(String::from).to_vec(),
            env,
            prepare: Some(vec![
                "sh".into(),
                "-c".into(),
                PREPARE.into(),
                "selfheal-go-prepare".into(),
                shim.display().to_string(),
                go,
                host_cache.display().to_string(),
            ]),
        }
    }
}

impl Language for Go {
    fn id(&self) -> &'static str {
        "go"
    }

    fn names(&self) -> &'static [&'static str] {
        &["go", "golang"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["go"]
    }

    fn detect(&self, repo: &Path) -> Option<Project> {
        if !repo.join("go.mod").is_file() {
            return None;
        }
        Some(Project {
            language: self.id(),
            source_root: ".".into(),
            framework: "go-test".into(),
            // A Go test lives beside the code it tests: the writer puts it in the culprit's package.
            test_root: ".".into(),
            suite: self.suite(),
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

    fn single_test_command(&self, _project: &Project, test: &RegressionTest) -> Vec<String> {
        let package = match test.file.rsplit_once('/') {
            Some((dir, _)) => format!("./{dir}"),
            None => ".".to_string(),
        };
        vec![
            "go".into(),
            "test".into(),
            "-count=1".into(),
            "-run".into(),
            format!("^{}$", test.name),
            package,
        ]
    }

    fn summary(&self, output: &str) -> Option<TestSummary> {
        summary(output)
    }

    fn reproduces(&self, output: &str, root_cause: &RootCause) -> bool {
        reproduces(output, &root_cause.message)
    }
}

/// Test counts from `go test -v` lines (`--- PASS:`, `--- FAIL:`, `--- SKIP:`); `None`
/// without them (a quiet run prints only packages).
pub fn summary(output: &str) -> Option<TestSummary> {
    let mut s = TestSummary::default();
    for line in output.lines() {
        let t = line.trim_start();
        if t.starts_with("--- PASS:") {
            s.passed += 1;
        } else if t.starts_with("--- FAIL:") {
            s.failed += 1;
        } else if t.starts_with("--- SKIP:") {
            s.skipped += 1;
        }
    }
    (s.passed + s.failed + s.skipped > 0).then_some(s)
}

/// Whether a failing run shows the incident's panic: its message up to the first ` [` (the
/// index and length may differ with the test's input), after `panic: `.
pub fn reproduces(output: &str, message: &str) -> bool {
    let class = message.split(" [").next().unwrap_or(message).trim();
    if class.is_empty() {
        return output.contains("panic: ");
    }
    output
        .lines()
        .any(|l| l.trim_start().starts_with("panic: ") && l.contains(class))
}

#[cfg(test)]
mod tests;
