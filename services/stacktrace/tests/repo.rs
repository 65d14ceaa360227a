//! Mapping culprit frames into a repository: every strategy, the refusals, and reading
//! the deployed commit through git.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use selfheal_stacktrace::repo::{RepoLocation, map_to_repo, map_to_repo_at, resolve_version};
use selfheal_stacktrace::{CliOptions, Frame, ParseOptions, cli_parse_with};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn numbered(n: usize, at: usize, line: &str) -> String {
    (1..=n)
        .map(|i| {
            if i == at {
                format!("{line}\n")
            } else {
                format!("// line {i}\n")
            }
        })
        .collect()
}

fn frame(function: &str, module: Option<&str>, file: &str, line: u32) -> Frame {
    Frame {
        function: function.into(),
        module: module.map(Into::into),
        file: Some(file.into()),
        line: Some(line),
        column: None,
        in_app: true,
    }
}

fn found(loc: &RepoLocation) -> (&str, bool, &str) {
    match loc {
        RepoLocation::Found {
            path, exact, strategy, ..
        } => (path, *exact, strategy),
        RepoLocation::NotFound { tried, reason } => panic!("not found: {reason} (tried {tried:?})"),
    }
}

#[test]
fn container_prefix_and_source_root() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "src/pricing.py",
        &numbered(20, 14, "def calc(): return a / b"),
    );
    let f = frame("calc", None, "/app/src/pricing.py", 14);
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)),
        ("src/pricing.py", true, "container prefix")
    );
    let f = frame("calc", None, "/srv/pricing-api/current/src/pricing.py", 14);
    let loc = map_to_repo(&f, repo.path(), Some("/srv/pricing-api/current"));
    assert_eq!(found(&loc), ("src/pricing.py", true, "source root"));
    if let RepoLocation::Found { snippet, line, .. } = &loc {
        assert_eq!(*line, Some(14));
        assert_eq!(snippet.len(), 11);
        assert_eq!(snippet[5].line, 14);
        assert_eq!(snippet[5].text, "def calc(): return a / b");
    }
}

#[test]
fn ci_build_paths_and_go_trimpath() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "stock/client.go",
        &numbered(90, 77, "func (c *Client) Reserve() {"),
    );
    write(repo.path(), "config/load.go", &numbered(30, 25, "func Load() {"));
    let f = frame(
        "(*Client).Reserve",
        Some("github.com/acme/shop/stock"),
        "/home/runner/work/shop/shop/stock/client.go",
        77,
    );
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)),
        ("stock/client.go", true, "path suffix")
    );
    let f = frame(
        "Load",
        Some("github.com/acme/svc/config"),
        "github.com/acme/svc/config/load.go",
        25,
    );
    assert_eq!(found(&map_to_repo(&f, repo.path(), None)).0, "config/load.go");
}

#[test]
fn jvm_package_paths() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "orders/src/main/java/com/acme/orders/PriceRepository.java",
        &numbered(40, 33, "    Price load(long id) {"),
    );
    write(
        repo.path(),
        "legacy/src/main/java/com/acme/old/PriceRepository.java",
        "class PriceRepository {}\n",
    );
    write(
        repo.path(),
        "app/src/main/kotlin/com/acme/Pricing.kt",
        &numbered(12, 5, "fun price() = 1"),
    );
    let f = frame(
        "load",
        Some("com.acme.orders.PriceRepository"),
        "PriceRepository.java",
        33,
    );
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)),
        (
            "orders/src/main/java/com/acme/orders/PriceRepository.java",
            true,
            "path suffix"
        )
    );
    let f = frame("price", Some("com.acme.PricingKt"), "Pricing.kt", 5);
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)).0,
        "app/src/main/kotlin/com/acme/Pricing.kt"
    );
    let inner = frame(
        "total",
        Some("com.acme.orders.PriceRepository$Line"),
        "PriceRepository.java",
        33,
    );
    assert_eq!(
        found(&map_to_repo(&inner, repo.path(), None)).0,
        "orders/src/main/java/com/acme/orders/PriceRepository.java"
    );
}

#[test]
fn windows_and_bundler_paths() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "src/Acme.Orders/Repo.cs",
        &numbered(100, 88, "public void Save(Order o) {"),
    );
    write(
        repo.path(),
        "web/src/checkout.ts",
        &numbered(10, 3, "export function checkout() {"),
    );
    let f = frame("Save", Some("Acme.Orders.Repo"), "C:\\build\\Acme.Orders\\Repo.cs", 88);
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)),
        ("src/Acme.Orders/Repo.cs", true, "path suffix")
    );
    let f = frame("checkout", None, "webpack:///./src/checkout.ts", 3);
    assert_eq!(found(&map_to_repo(&f, repo.path(), None)).0, "web/src/checkout.ts");
}

#[test]
fn relative_paths() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "app/models/price.rb", &numbered(20, 14, "  def unit"));
    let f = frame("unit", None, "app/models/price.rb", 14);
    assert_eq!(
        found(&map_to_repo(&f, repo.path(), None)),
        ("app/models/price.rb", true, "relative path")
    );
}

#[test]
fn ambiguous_matches_are_not_guessed() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "a/util.py", "def f(): pass\n");
    write(repo.path(), "b/util.py", "def f(): pass\n");
    let f = frame("f", None, "/opt/svc/lib/util.py", 1);
    match map_to_repo(&f, repo.path(), None) {
        RepoLocation::NotFound { reason, tried } => {
            assert!(reason.starts_with("ambiguous"), "{reason}");
            assert!(reason.contains("a/util.py") && reason.contains("b/util.py"));
            assert!(!tried.is_empty());
        }
        other => panic!("guessed {other:?}"),
    }
}

#[test]
fn base_name_only_match_is_not_exact() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "tools/helpers.py", &numbered(10, 3, "def helper():"));
    let f = frame("helper", None, "/opt/lib/helpers.py", 3);
    match map_to_repo(&f, repo.path(), None) {
        RepoLocation::Found { path, exact, note, .. } => {
            assert_eq!(path, "tools/helpers.py");
            assert!(!exact);
            assert!(note.unwrap().contains("only the file name matched"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn line_outside_file_and_missing_function_are_not_exact() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "pricing_logic.py", "def calc(a, b):\n    return a / b\n");
    let f = frame("calc", None, "/app/pricing_logic.py", 14);
    match map_to_repo(&f, repo.path(), None) {
        RepoLocation::Found {
            exact, note, snippet, ..
        } => {
            assert!(!exact);
            assert!(snippet.is_empty());
            assert!(note.unwrap().contains("line 14 is outside the file"));
        }
        other => panic!("{other:?}"),
    }
    let f = frame("unit_price", None, "/app/pricing_logic.py", 2);
    match map_to_repo(&f, repo.path(), None) {
        RepoLocation::Found { exact, note, .. } => {
            assert!(!exact);
            assert!(note.unwrap().contains("unit_price does not appear"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn skipped_directories_and_non_paths() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "node_modules/lib/src/index.js", "x\n");
    write(repo.path(), ".venv/lib/python3.12/site-packages/x/core.py", "x\n");
    write(repo.path(), "target/debug/build/out.rs", "x\n");
    for file in ["/app/src/index.js", "/app/x/core.py", "/home/dev/out.rs"] {
        let loc = map_to_repo(&frame("f", None, file, 1), repo.path(), None);
        assert!(matches!(loc, RepoLocation::NotFound { .. }), "{file}: {loc:?}");
    }
    let loc = map_to_repo(&frame("f", None, "<frozen importlib._bootstrap>", 1), repo.path(), None);
    assert!(matches!(loc, RepoLocation::NotFound { ref reason, .. } if reason.contains("not a source path")));
    let mut no_file = frame("f", None, "x", 1);
    no_file.file = None;
    assert!(matches!(
        map_to_repo(&no_file, repo.path(), None),
        RepoLocation::NotFound { .. }
    ));
    let escape = map_to_repo(&frame("f", None, "../../etc/passwd", 1), repo.path(), None);
    assert!(matches!(escape, RepoLocation::NotFound { .. }));
    let missing_repo = map_to_repo(&frame("f", None, "/app/x.py", 1), &repo.path().join("nope"), None);
    assert!(matches!(missing_repo, RepoLocation::NotFound { .. }));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn deployed_version_is_read_from_git() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    write(
        dir,
        "pricing_logic.py",
        &numbered(20, 14, "    return price / quantity"),
    );
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "v1"]);
    git(dir, &["tag", "v1.4.0"]);
    let v1 = git(dir, &["rev-parse", "HEAD"]);
    // The working tree moves on: the division is now at line 19.
    write(
        dir,
        "pricing_logic.py",
        &numbered(25, 19, "    return price / quantity if quantity else 0"),
    );
    git(dir, &["commit", "-q", "-am", "v2"]);

    assert_eq!(resolve_version(dir, "1.4.0").as_deref(), Some(v1.as_str()));
    assert_eq!(resolve_version(dir, "v1.4.0").as_deref(), Some(v1.as_str()));
    let short = v1.get(..9).unwrap();
    assert_eq!(
        resolve_version(dir, &format!("2.0.0+{short}")).as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        resolve_version(dir, &format!("main-{short}")).as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(resolve_version(dir, "9.9.9"), None);
    assert_eq!(resolve_version(dir, "--output=/tmp/x"), None);

    let f = frame("calc", None, "/app/pricing_logic.py", 14);
    match map_to_repo_at(&f, dir, &v1, None) {
        RepoLocation::Found { path, snippet, .. } => {
            assert_eq!(path, "pricing_logic.py");
            let l = snippet.iter().find(|s| s.line == 14).unwrap();
            assert_eq!(l.text, "    return price / quantity");
        }
        other => panic!("{other:?}"),
    }
    let bad = map_to_repo_at(&f, dir, "-x", None);
    assert!(matches!(bad, RepoLocation::NotFound { .. }));

    let trace = "Traceback (most recent call last):\n  File \"/app/pricing_logic.py\", line 14, in calc\n    return price / quantity\nZeroDivisionError: float division by zero\n";
    let out = cli_parse_with(
        trace,
        &CliOptions {
            repo: Some(dir),
            source_root: Some("/app"),
            version: Some("1.4.0"),
            parse: ParseOptions::default(),
        },
    );
    assert_eq!(out["commit"], v1.as_str());
    assert_eq!(out["repo"]["path"], "pricing_logic.py");
    assert_eq!(out["repo"]["line"], 14);
    assert_eq!(out["repo"]["exact"], false, "calc is not in the synthetic file: {out}");
}
