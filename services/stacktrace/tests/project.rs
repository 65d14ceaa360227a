//! In-app frames decided by the service's repository: files that exist in it and the
//! packages its build files name, per runtime; and what `trace parse --repo` prints.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use selfheal_stacktrace::repo::MemoryTree;
use selfheal_stacktrace::{CliOptions, CulpritBasis, ParseOptions, Project, cli_parse_with, parse, parse_with_project};

fn project(paths: &[&str], build: &[(&str, &str)]) -> Project {
    let mut tree = MemoryTree::new(paths.iter().copied());
    for (p, text) in build {
        tree.insert(*p, *text);
    }
    Project::from_files(&tree).unwrap()
}

fn culprit(text: &str, p: &Project) -> (String, u32, CulpritBasis) {
    let t = parse_with_project(text, &ParseOptions::default(), p).expect("a trace");
    let c = t.culprit.expect("a culprit");
    (c.file.unwrap_or_default(), c.line.unwrap_or(0), t.culprit_basis)
}

/// A project whose package starts like a library's (`org.apache.…`) is still the
/// service's own when its files are in the repository; the JDK, JUnit and the root cause's
/// chain are handled.
#[test]
fn jvm_caused_by_chain_in_a_library_looking_package() {
    let trace = "java.lang.RuntimeException: wrapped\n\
        \tat org.apache.billing.Api.handle(Api.java:40)\n\
        \tat org.junit.runners.ParentRunner.run(ParentRunner.java:309)\n\
        Caused by: java.lang.NumberFormatException: For input string: \"x\"\n\
        \tat java.lang.Integer.parseInt(Integer.java:580)\n\
        \tat org.apache.commons.lang3.math.NumberUtils.toInt(NumberUtils.java:10)\n\
        \tat org.apache.billing.Parser.amount(Parser.java:17)\n\
        \tat org.apache.billing.Api.handle(Api.java:38)\n\
        \t... 1 more\n";
    let p = project(
        &[
            "billing/src/main/java/org/apache/billing/Api.java",
            "billing/src/main/java/org/apache/billing/Parser.java",
        ],
        &[],
    );
    assert_eq!(culprit(trace, &p), ("Parser.java".into(), 17, CulpritBasis::Repository));
    // Without the repository the heuristics take every org.apache frame for a library.
    let without = parse(trace, &ParseOptions::default()).unwrap();
    assert_ne!(without.culprit.map(|c| c.file), Some(Some("Parser.java".into())));
    assert_eq!(without.culprit_basis, CulpritBasis::Heuristic);
}

#[test]
fn jvm_frame_without_a_file_is_claimed_by_the_group_id() {
    let trace = "java.lang.IllegalStateException: boom\n\
        \tat com.acme.gen.Proxy$$Lambda$14.apply(Unknown Source)\n\
        \tat java.util.Optional.map(Optional.java:215)\n";
    let p = project(
        &["pom.xml"],
        &[(
            "pom.xml",
            "<project><parent><groupId>org.springframework.boot</groupId></parent><groupId>com.acme</groupId></project>",
        )],
    );
    let t = parse_with_project(trace, &ParseOptions::default(), &p).unwrap();
    assert_eq!(t.culprit.unwrap().function, "apply");
    assert_eq!(t.culprit_basis, CulpritBasis::Repository);
}

/// Go: the module path from go.mod claims a `-trimpath` frame and the panicking
/// goroutine's own frames, never the runtime or a dependency in the module cache.
#[test]
fn go_module_path_from_go_mod() {
    let trace = "panic: assignment to entry in nil map\n\n\
        goroutine 7 [running]:\n\
        github.com/spf13/cobra.(*Command).execute(0x1)\n\
        \t/go/pkg/mod/github.com/spf13/cobra@v1.8.0/command.go:987 +0xab1\n\
        example.org/shop/cart.(*Cart).Add(0xc000010000)\n\
        \texample.org/shop/cart/cart.go:31 +0x65\n\
        main.main()\n\
        \texample.org/shop/main.go:12 +0x20\n\n\
        goroutine 1 [chan receive]:\n\
        runtime.gopark(0x0)\n\
        \t/usr/local/go/src/runtime/proc.go:398 +0xce\n";
    let p = project(&["go.mod"], &[("go.mod", "module example.org/shop\n\ngo 1.22\n")]);
    assert_eq!(
        culprit(trace, &p),
        ("example.org/shop/cart/cart.go".into(), 31, CulpritBasis::Repository)
    );
}

/// Node: the package's own code installed under node_modules (a CLI tool's crash) is the
/// service's; `node:internal` and other packages are not; async frames are read.
#[test]
fn node_own_package_under_node_modules() {
    let trace = "TypeError: Cannot read properties of undefined (reading 'id')\n\
        \x20   at Object.get (/srv/node_modules/lodash/get.js:10:3)\n\
        \x20   at async loadUser (/srv/node_modules/@acme/users/lib/load.js:22:9)\n\
        \x20   at async process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n";
    let p = project(
        &["lib/load.js", "package.json"],
        &[("package.json", "{\"name\": \"@acme/users\", \"version\": \"1.0.0\"}")],
    );
    assert_eq!(
        culprit(trace, &p),
        (
            "/srv/node_modules/@acme/users/lib/load.js".into(),
            22,
            CulpritBasis::Repository
        )
    );
}

/// Python: a chained exception's root cause (the first block) in the service's package
/// installed in site-packages; the standard library and other packages are not in-app.
#[test]
fn python_chained_exceptions_and_installed_own_package() {
    let trace = "Traceback (most recent call last):\n\
        \x20 File \"/usr/lib/python3.12/site-packages/pricing/calc.py\", line 14, in calc\n\
        \x20   return p / d\n\
        ZeroDivisionError: float division by zero\n\n\
        The above exception was the direct cause of the following exception:\n\n\
        Traceback (most recent call last):\n\
        \x20 File \"/usr/lib/python3.12/site-packages/flask/app.py\", line 880, in full_dispatch_request\n\
        \x20   rv = self.dispatch_request()\n\
        \x20 File \"/usr/lib/python3.12/site-packages/pricing/api.py\", line 30, in quote\n\
        \x20   raise BadRequest() from e\n\
        werkzeug.exceptions.BadRequest: 400 Bad Request\n";
    let p = project(&["pricing/__init__.py", "pricing/calc.py", "pricing/api.py"], &[]);
    assert_eq!(
        culprit(trace, &p),
        (
            "/usr/lib/python3.12/site-packages/pricing/calc.py".into(),
            14,
            CulpritBasis::Repository
        )
    );
}

/// Rust: crate names from every Cargo.toml (and test targets); a dependency's generic code
/// instantiated for the service is not the service's line.
#[test]
fn rust_crates_from_cargo_manifests() {
    let trace = "thread 'main' panicked at /rustc/abc/library/core/src/option.rs:2024:5:\n\
        called `Option::unwrap()` on a `None` value\n\
        stack backtrace:\n\
        \x20  0: core::option::unwrap_failed\n\
        \x20            at /rustc/abc/library/core/src/option.rs:2024:5\n\
        \x20  1: serde_json::de::from_str<shop_core::Config>\n\
        \x20            at /home/u/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_json-1.0.1/src/de.rs:2676:5\n\
        \x20  2: shop_core::config::load\n\
        \x20            at ./core/src/config.rs:41:18\n\
        \x20  3: shop::main\n\
        \x20            at ./src/main.rs:9:5\n";
    let p = project(
        &["core/Cargo.toml", "core/src/config.rs", "Cargo.toml", "src/main.rs"],
        &[
            (
                "core/Cargo.toml",
                "[package]\nname = \"shop-core\"\nversion = \"0.1.0\"\n",
            ),
            (
                "Cargo.toml",
                "[package]\nname = \"shop\"\nversion = \"0.1.0\"\n[workspace]\nmembers = [\"core\"]\n",
            ),
        ],
    );
    assert_eq!(
        culprit(trace, &p),
        ("./core/src/config.rs".into(), 41, CulpritBasis::Repository)
    );
}

/// A repository that claims no frame of the trace leaves the heuristics, and says so.
#[test]
fn no_frame_in_the_repository_falls_back_and_says_so() {
    let trace =
        "Traceback (most recent call last):\n  File \"/srv/other/app.py\", line 3, in f\n    x()\nValueError: no\n";
    let p = project(&["service/main.py"], &[]);
    let t = parse_with_project(trace, &ParseOptions::default(), &p).unwrap();
    assert_eq!(t.culprit_basis, CulpritBasis::Heuristic);
    assert_eq!(t.culprit.unwrap().line, Some(3));
}

#[test]
fn trace_parse_with_a_repository_reports_the_basis_and_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let root: &Path = dir.path();
    std::fs::create_dir_all(root.join("src/main/java/org/apache/billing")).unwrap();
    std::fs::write(
        root.join("src/main/java/org/apache/billing/Parser.java"),
        (1..=20).map(|i| format!("// {i}\n")).collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        root.join("pom.xml"),
        "<project><groupId>org.apache.billing</groupId></project>",
    )
    .unwrap();
    let trace = "java.lang.NumberFormatException: x\n\
        \tat java.lang.Integer.parseInt(Integer.java:580)\n\
        \tat org.apache.billing.Parser.amount(Parser.java:17)\n";
    let out = cli_parse_with(
        trace,
        &CliOptions {
            repo: Some(root),
            ..CliOptions::default()
        },
    );
    assert_eq!(out["culprit_basis"], "repository", "{out}");
    assert_eq!(
        out["repo"]["path"], "src/main/java/org/apache/billing/Parser.java",
        "{out}"
    );
    assert_eq!(out["repo"]["line"], 17);
    assert!(
        out["project"].to_string().contains("jvm group org.apache.billing"),
        "{out}"
    );
    assert!(out.get("note").is_none(), "{out}");
    let bare = cli_parse_with(trace, &CliOptions::default());
    assert_eq!(bare["culprit_basis"], "heuristic");
    assert!(bare["note"].as_str().unwrap().contains("--repo"), "{bare}");
}
