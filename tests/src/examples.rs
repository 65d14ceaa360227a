//! The example services of `examples/`, one per language, as data: how to copy each into a
//! fresh git repository, what its bug looks like on the wire and in a recorded trace, and what
//! selfheal must make of it (culprit, template, regression test, the healed answer). The
//! per-language end-to-end tests ([`heal_end_to_end`]) and the `selfheal fix` test run the same
//! checks on every example from this data.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use selfheal_events::{Codec, Outcome, OutcomeStatus, Rollout, RolloutStep};

use crate::pipeline::{Pipeline, Proc, decode_all, free_port, git, next_outcome, repo_root, tempdir, wait_http_ok};
use crate::{brokers, registry_url, require_broker, unique};

/// One HTTP request of the example's API.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub method: &'static str,
    /// Path and query.
    pub path: &'static str,
    /// JSON body, if any.
    pub body: Option<&'static str>,
}

/// An example service and what healing its bug must produce.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Directory under `examples/` and service name.
    pub service: &'static str,
    /// Its catalog entry beside `examples/catalog.toml`.
    pub catalog: &'static str,
    /// The bug's stack trace as the running service recorded it (relative to the example).
    pub trace: &'static str,
    /// A request the service answers 200.
    pub good: Call,
    /// The request that crashes it (500).
    pub bad: Call,
    /// Text of the 500's body.
    pub crash_text: &'static str,
    /// Culprit file (repository-relative), line and function.
    pub culprit: (&'static str, i32, &'static str),
    /// How the root cause's exception type ends.
    pub exception: &'static str,
    /// The fix template expected to heal it.
    pub template: &'static str,
    /// Lines the fix's diff must add.
    pub diff_lines: &'static [&'static str],
    /// Where the regression test goes: file name prefix and suffix.
    pub test_file: (&'static str, &'static str),
    /// Text the regression test must hold (it exercises the culprit).
    pub test_code: &'static str,
    /// Tests the suite runs with the regression test, when the runner reports a count.
    pub tests_run: Option<i32>,
    /// Text of the healed service's 400 for the bad request.
    pub healed_text: &'static str,
    /// How long the first deployment may take to answer its health check.
    pub start_timeout: Duration,
}

pub const PRICING_API: Example = Example {
    service: "pricing-api",
    catalog: "catalog.toml",
    trace: "testdata/zero-division-log.txt",
    good: Call {
        method: "POST",
        path: "/price",
        body: Some(r#"{"item": "book", "price": 10.0, "discount": 0.8}"#),
    },
    bad: Call {
        method: "POST",
        path: "/price",
        body: Some(r#"{"item": "lamp", "price": 49.99, "discount": 0.0}"#),
    },
    crash_text: "ZeroDivisionError",
    culprit: ("pricing_logic.py", 14, "calc"),
    exception: "ZeroDivisionError",
    template: "python.zero-division-guard",
    diff_lines: &["+    return p / d if d != 0 else p"],
    test_file: ("tests/test_selfheal_", ".py"),
    test_code: "calc(",
    tests_run: None,
    healed_text: "",
    start_timeout: Duration::from_secs(90),
};

pub const INVENTORY_JAVA: Example = Example {
    service: "inventory-java",
    catalog: "catalog.inventory-java.toml",
    trace: "testdata/npe-unknown-sku.txt",
    good: Call {
        method: "GET",
        path: "/quote?sku=widget&quantity=2",
        body: None,
    },
    bad: Call {
        method: "GET",
        path: "/quote?sku=gizmo&quantity=2",
        body: None,
    },
    crash_text: "because \\\"item\\\" is null",
    culprit: ("src/main/java/com/example/inventory/Inventory.java", 33, "quote"),
    exception: "NullPointerException",
    template: "java.null-guard",
    diff_lines: &[
        "+        if (item == null) {",
        "+            throw new IllegalArgumentException(\"unknown sku: \" + sku);",
    ],
    test_file: ("src/test/java/com/example/inventory/Selfheal", "Test.java"),
    test_code: "assertThrows(IllegalArgumentException.class",
    tests_run: Some(12),
    healed_text: "unknown sku: gizmo",
    // run.sh builds with Maven, then the JVM starts the agent: slow on a busy machine.
    start_timeout: Duration::from_secs(360),
};

pub const INVENTORY_GO: Example = Example {
    service: "inventory-go",
    catalog: "catalog.inventory-go.toml",
    trace: "testdata/panic-dashless-location.txt",
    good: Call {
        method: "POST",
        path: "/pick",
        body: Some(r#"{"sku": "lamp", "location": "C-3", "quantity": 2}"#),
    },
    bad: Call {
        method: "POST",
        path: "/pick",
        body: Some(r#"{"sku": "lamp", "location": "A12", "quantity": 1}"#),
    },
    crash_text: "index out of range [1] with length 1",
    culprit: ("stock/location.go", 26, "ParseLocation"),
    exception: "runtime.Error",
    template: "go.index-guard",
    diff_lines: &[
        "+\tif len(parts) <= 1 {",
        "+\t\treturn Location{}, fmt.Errorf(\"%w: parts[1] out of range\", ErrInvalid)",
    ],
    test_file: ("stock/selfheal_", "_test.go"),
    test_code: "ParseLocation(",
    // `go test ./...` reports packages, not tests.
    tests_run: None,
    healed_text: "bad request",
    // `go build` of the OpenTelemetry modules before the first start.
    start_timeout: Duration::from_secs(300),
};

pub const ORDERS_NODE: Example = Example {
    service: "orders-node",
    catalog: "catalog.orders-node.toml",
    trace: "testdata/typeerror-unknown-country.txt",
    good: Call {
        method: "POST",
        path: "/quote",
        body: Some(r#"{"sku": "lamp", "country": "DE", "weightKg": 2.5}"#),
    },
    bad: Call {
        method: "POST",
        path: "/quote",
        body: Some(r#"{"sku": "lamp", "country": "XX", "weightKg": 2}"#),
    },
    crash_text: "reading 'baseCents'",
    culprit: ("shipping.js", 50, "shippingQuote"),
    exception: "TypeError",
    template: "node.property-guard",
    diff_lines: &["+  if (zone == null) {", "+    throw new BadRequestError("],
    test_file: ("test/selfheal-", ".test.js"),
    test_code: "shippingQuote",
    tests_run: None,
    healed_text: "bad request",
    start_timeout: Duration::from_secs(90),
};

impl Example {
    /// The example's directory in this checkout.
    pub fn source(&self) -> PathBuf {
        repo_root().join("examples").join(self.service)
    }

    /// The recorded trace of its bug.
    pub fn trace_file(&self) -> PathBuf {
        self.source().join(self.trace)
    }

    /// The environment the example's tools need offline (Maven local repository, Go module
    /// cache, the Python venv), checked to be prepared: what `scripts/test.sh` prepares.
    pub fn env(&self) -> Vec<(String, String)> {
        let cache = std::env::var_os("SELFHEAL_CACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/selfheal"));
        let var_or = |name: &str, default: PathBuf| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        match self.service {
            "inventory-java" => {
                let m2 = var_or("SELFHEAL_M2", cache.join("m2"));
                let agent = m2.join(
                    "io/opentelemetry/javaagent/opentelemetry-javaagent/2.31.1/opentelemetry-javaagent-2.31.1.jar",
                );
                assert!(
                    agent.is_file() && m2.join("org/junit/jupiter/junit-jupiter").is_dir(),
                    "{} lacks the Java example's agent or dependencies: run \
                     `eval \"$(examples/inventory-java/prepare-offline.sh)\"` (scripts/test.sh does)",
                    m2.display()
                );
                vec![("SELFHEAL_M2".into(), m2.display().to_string())]
            }
            "inventory-go" => {
                let modcache = var_or("GOMODCACHE", cache.join("go/mod"));
                assert!(
                    modcache.join("go.opentelemetry.io").is_dir(),
                    "{} lacks the Go example's modules: run `eval \"$(scripts/prepare-examples.sh)\"` \
                     (scripts/test.sh does)",
                    modcache.display()
                );
                vec![
                    ("GOMODCACHE".into(), modcache.display().to_string()),
                    ("GOFLAGS".into(), "-mod=mod".into()),
                    ("GOPROXY".into(), "off".into()),
                ]
            }
            "orders-node" => {
                assert!(
                    self.node_modules().join("@opentelemetry/sdk-node").is_dir(),
                    "{} lacks the Node example's packages: run `eval \"$(scripts/prepare-examples.sh)\"` \
                     (scripts/test.sh does)",
                    self.node_modules().display()
                );
                vec![]
            }
            _ => vec![("SELFHEAL_PYTHON".into(), crate::pipeline::python())],
        }
    }

    /// The Node example's installed packages (`npm ci` by scripts/prepare-examples.sh).
    fn node_modules(&self) -> PathBuf {
        std::env::var_os("SELFHEAL_NODE_MODULES")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.source().join("node_modules"))
    }

    /// A copy of the example's files (those git tracks or would track: no build output, no
    /// `node_modules`) as a fresh git repository `dir/<service>` on `main`; the Node example
    /// gets a link to the installed `node_modules`, ignored by git as in a real checkout.
    /// Returns the repository and its first commit.
    pub fn make_repo(&self, dir: &Path) -> (PathBuf, String) {
        let repo = dir.join(self.service);
        let src = self.source();
        let listed = Command::new("git")
            .arg("-C")
            .arg(&src)
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "."])
            .output()
            .unwrap();
        assert!(listed.status.success(), "git ls-files in {}", src.display());
        for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let rel = Path::new(std::str::from_utf8(name).unwrap());
            if !src.join(rel).is_file() {
                continue; // deleted in the working tree
            }
            let to = repo.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(src.join(rel), &to).unwrap();
        }
        if self.service == "orders-node" {
            std::os::unix::fs::symlink(self.node_modules(), repo.join("node_modules")).unwrap();
        }
        git(&repo, &["init", "-q", "-b", "main"]);
        git(
            &repo,
            &["-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "add", "-A"],
        );
        git(
            &repo,
            &[
                "-c",
                "user.name=e2e",
                "-c",
                "user.email=e2e@localhost",
                "commit",
                "-qm",
                &format!("{} v1", self.service),
            ],
        );
        assert_eq!(
            git(&repo, &["status", "--porcelain"]),
            "",
            "the copy of {} is not clean",
            self.service
        );
        let v1 = git(&repo, &["rev-parse", "HEAD"]);
        (repo, v1)
    }

    /// The example's own catalog entry, pointed at `repo` and at the given ports.
    pub fn catalog_entry(&self, repo: &Path, port: u16, canary_port: u16) -> String {
        let text = std::fs::read_to_string(repo_root().join("examples").join(self.catalog)).unwrap();
        let header = format!("[services.{}]", self.service);
        let start = text
            .find(&header)
            .unwrap_or_else(|| panic!("{} has no {header}", self.catalog));
        // This service's tables only (catalog.toml holds other services too).
        let mut entry = String::new();
        let mut ours = false;
        for line in text[start..].lines() {
            if line.starts_with('[') {
                ours = line.starts_with(&header[..header.len() - 1]);
            }
            if ours {
                entry.push_str(line);
                entry.push('\n');
            }
        }
        let set = |entry: String, key: &str, value: &str| {
            let re = regex::Regex::new(&format!(r"(?m)^{key} = .*$")).unwrap();
            assert!(re.is_match(&entry), "{} has no `{key}`", self.catalog);
            re.replace(&entry, format!("{key} = {value}").as_str()).into_owned()
        };
        let entry = set(entry, "repository", &format!("{:?}", repo.display().to_string()));
        let entry = set(entry, "port", &port.to_string());
        set(entry, "canary_port", &canary_port.to_string())
    }
}

/// Requests at about `rate` per second until stopped: one in ten is the example's bad
/// request, the others its good one. Counts the answers by status class.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicU64; 6]>,
    task: tokio::task::JoinHandle<()>,
}

/// Sends one request to the service on `port`: status and body.
pub async fn send(client: &reqwest::Client, port: u16, call: &Call) -> reqwest::Result<(u16, String)> {
    let url = format!("http://127.0.0.1:{port}{}", call.path);
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).unwrap();
    let mut request = client.request(method, url);
    if let Some(body) = call.body {
        request = request.header("content-type", "application/json").body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

impl Traffic {
    pub fn start(port: u16, rate: u64, good: Call, bad: Call) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
        let (s, c) = (stop.clone(), counts.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut n: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let call = if n.is_multiple_of(10) { &bad } else { &good };
                let class = match send(&client, port, call).await {
                    Ok((status, _)) => usize::from(status / 100),
                    Err(_) => 0,
                };
                c[class.min(5)].fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1000 / rate)).await;
            }
        });
        Traffic { stop, counts, task }
    }

    pub fn summary(&self) -> String {
        let c: Vec<u64> = self.counts.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        format!("2xx {} 4xx {} 5xx {} errors {}", c[2], c[4], c[5], c[0])
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

/// The example's incident for real: the seven services, each its own process against the real
/// broker and registry, and the example deployed by the rollout from a git copy. The bad
/// request is a 500; under traffic the incident must be detected, localised at the example's
/// culprit, fixed by its template with a regression test that failed before and passes after
/// in the sandbox, canaried, promoted and verified Healed; then the bad request is a 400.
pub async fn heal_end_to_end(example: &Example) {
    if !require_broker().await {
        return;
    }
    let tool_env = example.env();
    let dir = tempdir();
    let (repo, _v1) = example.make_repo(&dir);
    let prefix = format!("{}.", unique(&format!("e2e-{}", example.service)));
    let (collector_port, learner_port, app_port, canary_port) = (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("catalog.toml"),
        example.catalog_entry(&repo, app_port, canary_port),
    )
    .unwrap();
    let mut env: HashMap<String, String> = tool_env.into_iter().collect();
    env.insert("SELFHEAL_KAFKA_BROKERS".into(), brokers());
    env.insert("SELFHEAL_SCHEMA_REGISTRY_URL".into(), registry_url());
    env.insert("SELFHEAL_TOPIC_PREFIX".into(), prefix.clone());
    env.insert(
        "SELFHEAL_CATALOG".into(),
        dir.join("catalog.toml").display().to_string(),
    );
    env.insert(
        "SELFHEAL_LEARNER_URL".into(),
        format!("http://127.0.0.1:{learner_port}"),
    );
    env.insert("SELFHEAL_LOG".into(), "info".into());
    // Failures reach the collector within a fraction of a second.
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into());
    env.insert("OTEL_BLRP_SCHEDULE_DELAY".into(), "200".into());
    let pipeline = Pipeline { dir: dir.clone(), env };
    let health_secs = example.start_timeout.as_secs().to_string();
    let _services: Vec<Proc> = vec![
        pipeline.spawn(
            "selfheal-learner",
            &[
                ("SELFHEAL_LEARNER_DB", dir.join("learner.db").display().to_string()),
                ("SELFHEAL_LEARNER_API_ADDR", format!("127.0.0.1:{learner_port}")),
            ],
        ),
        pipeline.spawn(
            "selfheal-collector",
            &[("SELFHEAL_OTLP_HTTP_ADDR", format!("127.0.0.1:{collector_port}"))],
        ),
        pipeline.spawn(
            "selfheal-monitor",
            &[
                ("SELFHEAL_MONITOR_WINDOW_SECS", "5".into()),
                ("SELFHEAL_MONITOR_INCIDENT_QUIET_SECS", "8".into()),
            ],
        ),
        pipeline.spawn("selfheal-diagnoser", &[]),
        pipeline.spawn(
            "selfheal-repairer",
            &[("SELFHEAL_REPAIRER_WORK_DIR", dir.join("repairer").display().to_string())],
        ),
        pipeline.spawn(
            "selfheal-verifier",
            &[
                ("SELFHEAL_VERIFY_WINDOW_SECS", "8".into()),
                ("SELFHEAL_VERIFY_MIN_REQUESTS", "5".into()),
            ],
        ),
        pipeline.spawn(
            "selfheal-rollout",
            &[
                ("SELFHEAL_ROLLOUT_STATE_DIR", dir.join("rollout").display().to_string()),
                (
                    "SELFHEAL_COLLECTOR_OTLP_URL",
                    format!("http://127.0.0.1:{collector_port}"),
                ),
                ("SELFHEAL_CANARY_SECS", "10".into()),
                ("SELFHEAL_CANARY_MAX_SECS", "60".into()),
                ("SELFHEAL_MIN_REQUESTS", "5".into()),
                ("SELFHEAL_HEALTH_TIMEOUT_SECS", health_secs),
            ],
        ),
    ];
    wait_http_ok(
        &format!("http://127.0.0.1:{collector_port}/healthz"),
        Duration::from_secs(60),
    )
    .await;
    wait_http_ok(
        &format!("http://127.0.0.1:{learner_port}/v1/fixes"),
        Duration::from_secs(60),
    )
    .await;
    wait_http_ok(&format!("http://127.0.0.1:{app_port}/healthz"), example.start_timeout).await;

    // The bug, as a user meets it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (status, body) = send(&client, app_port, &example.good).await.unwrap();
    assert_eq!(status, 200, "the good request: {body}");
    let (status, body) = send(&client, app_port, &example.bad).await.unwrap();
    assert_eq!(status, 500, "the bad request before the fix: {body}");
    assert!(body.contains(example.crash_text), "{body}");

    let traffic = Traffic::start(app_port, 20, example.good, example.bad);
    let codec = Codec::new(&registry_url()).unwrap();
    let outcome = next_outcome(&codec, &format!("{prefix}outcomes"), &[], Duration::from_secs(900)).await;
    let seen = traffic.summary();
    check_outcome(example, &outcome, &repo, &seen);

    // The promoted service answers the bad request with a client error.
    let (status, body) = send(&client, app_port, &example.bad).await.unwrap();
    assert_eq!(status, 400, "the bad request after promotion: {body}");
    assert!(body.contains(example.healed_text), "{body}");

    let rollouts: Vec<Rollout> = decode_all(&codec, &format!("{prefix}rollouts"), 50).await;
    let steps: Vec<RolloutStep> = rollouts
        .iter()
        .filter(|r| r.incident_id == outcome.incident_id)
        .map(|r| r.step)
        .collect();
    assert_eq!(
        steps,
        [
            RolloutStep::Approved,
            RolloutStep::CanaryStarted,
            RolloutStep::CanaryAnalyzed,
            RolloutStep::Promoted
        ]
    );
    traffic.stop().await;
    eprintln!("{}: healed by {} ({seen})", example.service, example.template);
}

/// The Outcome must be the example's heal: culprit, template, diff, regression test proven in
/// the sandbox, policy allowed, promoted; the repository's branch and `main` hold the fix.
fn check_outcome(example: &Example, outcome: &Outcome, repo: &Path, traffic: &str) {
    assert_eq!(
        outcome.status,
        OutcomeStatus::Healed,
        "{}; traffic {traffic}",
        outcome.summary
    );
    assert_eq!(outcome.service, example.service);
    let root = outcome.root_cause.clone().expect("root cause");
    assert_eq!((root.file.as_str(), root.line, root.function.as_str()), example.culprit);
    assert!(root.exception_type.ends_with(example.exception), "{root:?}");
    let fix = outcome.fix.clone().expect("a fix");
    assert_eq!(fix.strategy, example.template);
    for line in example.diff_lines {
        assert!(fix.diff.contains(line), "no `{line}` in\n{}", fix.diff);
    }
    let validation = outcome.validation.clone().expect("validation");
    assert!(
        validation.failed_before && validation.passed_after && validation.suite_passed,
        "{validation:?}"
    );
    assert_eq!(validation.tests_failed, 0, "{validation:?}");
    if let Some(n) = example.tests_run {
        assert_eq!(validation.tests_run, n, "{validation:?}");
    }
    let test = outcome.regression_test.clone().expect("regression test");
    assert!(
        test.file.starts_with(example.test_file.0) && test.file.ends_with(example.test_file.1),
        "{}",
        test.file
    );
    assert!(test.code.contains(example.test_code), "{}", test.code);
    assert!(outcome.policy.as_ref().is_some_and(|p| p.allowed));
    assert_eq!(
        outcome.rollout.clone().expect("rollout").final_step,
        RolloutStep::Promoted
    );
    let branch = fix.branch.clone().expect("branch");
    let fixed = git(repo, &["show", &format!("{branch}:{}", example.culprit.0)]);
    let first_added = example.diff_lines[0].trim_start_matches('+');
    assert!(fixed.contains(first_added), "{fixed}");
    assert!(git(repo, &["show", &format!("{branch}:{}", test.file)]).contains(example.test_code));
    assert_eq!(git(repo, &["rev-parse", "main"]), fix.commit.clone().unwrap());
}
