//! Decides whether a frame is the service's own code ("in-app").
//!
//! With the service's repository ([`crate::Project`]) the repository decides: a frame is
//! in-app when its file exists in the repository or its package is one the build files
//! name, plus the catalog's roots and packages outside library paths
//! ([`classify_with_project`]). The rules below are the fallback without a repository (or
//! when the repository claims no frame of the trace); their results are marked
//! [`crate::CulpritBasis::Heuristic`].
//!
//! The fallback rule, in order:
//! 1. A path that is clearly third-party or runtime code is never in-app: standard
//!    library directories, `site-packages`/`dist-packages`, virtualenvs, `node_modules`,
//!    `node:` internals, `vendor/`, Go's module cache and GOROOT, Cargo's registry and
//!    the Rust sources under `/rustc/`, installed gems, frames without a source in a
//!    runtime namespace.
//! 2. A frame under one of the catalog's source roots, or whose module is under one of
//!    the catalog's app packages, is in-app.
//! 3. When the catalog gave roots or packages and the frame matched none, it is not
//!    in-app. (If that leaves a whole trace without any in-app frame, the caller
//!    classifies again without the catalog: the catalog is probably stale.)
//! 4. Otherwise runtime heuristics: well-known library namespaces (`java.*`,
//!    `org.springframework.*`, `System.*`, Go's standard library, `tokio::`…) are not
//!    in-app, everything else is.

use crate::{Frame, ParseOptions, Project, Runtime};

/// Normalises a path for prefix tests: forward slashes, no `file://`.
fn norm_path(p: &str) -> String {
    let p = p.strip_prefix("file://").unwrap_or(p);
    p.replace('\\', "/")
}

/// Whether the file path is third-party or runtime code for this runtime.
fn library_path(runtime: Runtime, file: &str) -> bool {
    let f = norm_path(file);
    let lower = f.to_ascii_lowercase();
    let common = [
        "/vendor/",
        "/third_party/",
        "/third-party/",
        "/node_modules/",
        "/site-packages/",
        "/dist-packages/",
    ];
    if common.iter().any(|m| lower.contains(m)) || lower.starts_with("vendor/") {
        return true;
    }
    match runtime {
        Runtime::Python => {
            lower.starts_with('<') && lower != "<stdin>" && !lower.starts_with("<ipython")
                || lower.contains("/.venv/")
                || lower.contains("/venv/")
                || lower.contains("/.pyenv/")
                || lower.contains("/lib/python2")
                || lower.contains("/lib/python3")
                || lower.contains("/lib64/python")
                || lower.contains("/python3.")
                    && !lower.contains("/app/")
                    && (lower.starts_with("/usr/") || lower.starts_with("/opt/"))
                || lower.contains("/lib/pypy")
                || lower.contains("/python/lib/")
                || lower.contains(":/python3") && lower.contains("/lib/")
        }
        Runtime::Node => {
            lower.starts_with("node:")
                || lower.starts_with("internal/")
                || lower == "<anonymous>"
                || lower == "native"
                || !f.contains('/') && !f.contains('\\')
        }
        Runtime::Go => {
            lower.contains("/pkg/mod/")
                || lower.contains("@v")
                || lower.contains("/usr/local/go/src/")
                || lower.contains("/usr/lib/go")
                || lower.contains("/go/libexec/src/")
                || lower.contains("$goroot")
                || goroot_std(&f)
        }
        Runtime::Rust => {
            lower.starts_with("/rustc/")
                || lower.contains("/.cargo/registry/")
                || lower.contains("/.cargo/git/")
                || lower.contains("/cargo/registry/")
                || lower.contains("/cargo/git/")
                || lower.contains("/rustlib/src/")
                || lower.contains("/library/std/src/")
                || lower.contains("/library/core/src/")
                || lower.contains("/library/alloc/src/")
        }
        Runtime::Ruby => {
            lower.contains("/gems/")
                || lower.contains("/bundle/")
                || lower.contains("/rubygems")
                || lower.contains("/lib/ruby/")
                || lower.contains("/.rbenv/")
                || lower.contains("/.rvm/")
                || lower.starts_with("<internal:")
                || lower.contains("[gem_root]")
                || f.contains(" (") && f.contains(") ")
        }
        Runtime::Jvm | Runtime::Dotnet => false,
    }
}

/// `…/go/src/net/http/server.go`-style GOROOT paths (the segment after `src` has no dot).
fn goroot_std(f: &str) -> bool {
    for marker in ["/go/src/", "/goroot/src/"] {
        if let Some(idx) = f.find(marker) {
            let rest = f.get(idx + marker.len()..).unwrap_or("");
            let first = rest.split('/').next().unwrap_or("");
            if !first.contains('.') && GO_STD.contains(&first) {
                return true;
            }
        }
    }
    false
}

/// Top-level packages of Go's standard library.
const GO_STD: &[&str] = &[
    "archive",
    "bufio",
    "builtin",
    "bytes",
    "cmp",
    "compress",
    "container",
    "context",
    "crypto",
    "database",
    "debug",
    "embed",
    "encoding",
    "errors",
    "expvar",
    "flag",
    "fmt",
    "go",
    "hash",
    "html",
    "image",
    "index",
    "internal",
    "io",
    "iter",
    "log",
    "maps",
    "math",
    "mime",
    "net",
    "os",
    "path",
    "plugin",
    "reflect",
    "regexp",
    "runtime",
    "slices",
    "sort",
    "strconv",
    "strings",
    "structs",
    "sync",
    "syscall",
    "testing",
    "text",
    "time",
    "unicode",
    "unique",
    "unsafe",
    "weak",
    "vendor",
];

const JVM_LIBS: &[&str] = &[
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "groovy.",
    "org.springframework.",
    "org.apache.",
    "org.eclipse.",
    "io.netty.",
    "io.micronaut.",
    "io.quarkus.",
    "io.vertx.",
    "reactor.",
    "io.reactivex.",
    "rx.",
    "com.fasterxml.",
    "org.hibernate.",
    "com.zaxxer.",
    "org.junit.",
    "junit.",
    "org.slf4j.",
    "ch.qos.",
    "com.google.",
    "io.grpc.",
    "okhttp3.",
    "okio.",
    "retrofit2.",
    "akka.",
    "org.jboss.",
    "jakarta.",
    "org.glassfish.",
    "org.postgresql.",
    "com.mysql.",
    "org.h2.",
    "feign.",
    "net.bytebuddy.",
    "org.gradle.",
    "org.mockito.",
    "org.codehaus.",
    "com.amazonaws.",
    "software.amazon.",
    "io.opentelemetry.",
    "io.micrometer.",
    "org.aspectj.",
    "cats.",
    "zio.",
    "play.",
    "org.jetbrains.",
    "io.ktor.",
    "org.flywaydb.",
    "org.jooq.",
    "com.mongodb.",
    "org.mongodb.",
    "redis.clients.",
    "io.lettuce.",
    "org.elasticsearch.",
    "com.datastax.",
    "org.testng.",
    "app//java.",
    "$proxy",
    "com.oracle.",
    "oracle.",
    "org.xml.",
    "org.w3c.",
];

const DOTNET_LIBS: &[&str] = &[
    "System.",
    "Microsoft.",
    "Newtonsoft.",
    "Npgsql.",
    "Grpc.",
    "Polly.",
    "Serilog.",
    "NLog.",
    "Dapper.",
    "AutoMapper.",
    "MediatR.",
    "Castle.",
    "StackExchange.",
    "MongoDB.",
    "Amazon.",
    "Azure.",
    "Google.",
    "Xunit.",
    "NUnit.",
    "Moq.",
    "Swashbuckle.",
    "FluentValidation.",
    "Hangfire.",
    "MassTransit.",
    "Confluent.",
    "RabbitMQ.",
    "Mono.",
    "(wrapper",
    "Pomelo.",
    "Oracle.",
    "MySql.",
    "Dotnet.",
    "Internal.",
    "Orleans.",
    "Refit.",
];

const RUST_LIBS: &[&str] = &[
    "std",
    "core",
    "alloc",
    "backtrace",
    "backtrace_rs",
    "tokio",
    "hyper",
    "hyper_util",
    "axum",
    "axum_core",
    "tower",
    "tower_http",
    "futures",
    "futures_util",
    "futures_core",
    "futures_executor",
    "serde",
    "serde_json",
    "reqwest",
    "actix_web",
    "actix_rt",
    "actix_http",
    "actix_server",
    "rocket",
    "tracing",
    "tracing_core",
    "h2",
    "mio",
    "async_std",
    "rayon",
    "rayon_core",
    "crossbeam",
    "crossbeam_channel",
    "parking_lot",
    "anyhow",
    "eyre",
    "color_eyre",
    "sqlx",
    "diesel",
    "warp",
    "tonic",
    "prost",
    "rdkafka",
    "test",
    "panic_unwind",
    "panic_abort",
    "libtest",
    "criterion",
];

const RUST_NOISE: &[&str] = &[
    "rust_begin_unwind",
    "rust_panic",
    "__rust_",
    "__libc_start",
    "_start",
    "start_thread",
    "clone",
    "__clone",
    "main",
    "<unknown>",
    "BaseThreadInitThunk",
    "RtlUserThreadStart",
];

/// Whether `name` is `prefix` itself or starts with it followed by a separator.
fn under_package(name: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches(['.', '/', ':']);
    if prefix.is_empty() {
        return false;
    }
    if name == prefix {
        return true;
    }
    match name.strip_prefix(prefix) {
        Some(rest) => rest.starts_with(['.', '/', ':', '$', '(']),
        None => false,
    }
}

/// Whether the file is under one of the source roots.
fn under_root(file: &str, roots: &[String]) -> bool {
    let f = norm_path(file);
    roots.iter().any(|root| {
        let r = norm_path(root.trim());
        let r = r.trim_end_matches('/');
        if r.is_empty() {
            return false;
        }
        if r.starts_with('/') || r.contains(":/") {
            f == r || f.starts_with(&format!("{r}/"))
        } else {
            let r = r.trim_start_matches("./");
            f.starts_with(&format!("{r}/")) || f.contains(&format!("/{r}/")) || f.starts_with(&format!("./{r}/"))
        }
    })
}

/// The qualified name used for package matching.
fn qualified(frame: &Frame) -> String {
    match &frame.module {
        Some(m) if !m.is_empty() => format!("{m}.{}", frame.function),
        _ => frame.function.clone(),
    }
}

/// Go package path of a frame (`github.com/acme/svc/pay` of `github.com/acme/svc/pay.F`).
fn go_package(frame: &Frame) -> &str {
    frame.module.as_deref().unwrap_or("")
}

/// Whether the catalog's roots or packages claim the frame (ignoring library paths).
pub(crate) fn matches_catalog(frame: &Frame, opts: &ParseOptions) -> bool {
    if let Some(file) = &frame.file
        && under_root(file, &opts.source_roots)
    {
        return true;
    }
    let q = qualified(frame);
    let module = frame.module.as_deref().unwrap_or("");
    opts.app_packages
        .iter()
        .any(|p| under_package(&q, p) || under_package(module, p))
}

/// Classifies one frame with the service's repository: the repository's own files and
/// packages, and the catalog's roots and packages outside library paths.
pub(crate) fn classify_with_project(runtime: Runtime, frame: &Frame, opts: &ParseOptions, project: &Project) -> bool {
    let library = frame.file.as_deref().is_some_and(|f| library_path(runtime, f));
    if project.owns(runtime, frame, library) {
        return true;
    }
    !library && matches_catalog(frame, opts)
}

/// Classifies one frame. `use_catalog` false ignores the catalog's roots and packages.
pub(crate) fn classify(runtime: Runtime, frame: &Frame, opts: &ParseOptions, use_catalog: bool) -> bool {
    if let Some(file) = &frame.file
        && library_path(runtime, file)
    {
        return false;
    }
    if use_catalog {
        if let Some(file) = &frame.file
            && under_root(file, &opts.source_roots)
        {
            return true;
        }
        let q = qualified(frame);
        let module = frame.module.as_deref().unwrap_or("");
        if opts
            .app_packages
            .iter()
            .any(|p| under_package(&q, p) || under_package(module, p))
        {
            return true;
        }
        if !opts.source_roots.is_empty() || !opts.app_packages.is_empty() {
            return false;
        }
    }
    heuristic(runtime, frame)
}

/// Runtime heuristics on names, for frames the path rules did not decide.
fn heuristic(runtime: Runtime, frame: &Frame) -> bool {
    let q = qualified(frame);
    match runtime {
        Runtime::Jvm => {
            let lower = q.to_ascii_lowercase();
            if JVM_LIBS.iter().any(|p| lower.starts_with(p)) {
                return false;
            }
            if q.contains("$$EnhancerBySpringCGLIB$$") || q.contains("$$FastClassBySpringCGLIB$$") {
                return false;
            }
            frame.file.as_deref() != Some("Native Method")
        }
        Runtime::Dotnet => !DOTNET_LIBS.iter().any(|p| q.starts_with(p)),
        Runtime::Go => {
            let pkg = go_package(frame);
            let first = pkg.split('/').next().unwrap_or("");
            if pkg.is_empty() {
                return !frame.function.starts_with("runtime.") && frame.function != "panic";
            }
            if pkg.starts_with("golang.org/x/") || pkg.starts_with("google.golang.org/") {
                return false;
            }
            !GO_STD.contains(&first) || first.contains('.')
        }
        Runtime::Rust => {
            let name = frame.function.trim_start_matches('<');
            let module = frame.module.as_deref().unwrap_or("");
            let path = if module.is_empty() {
                name.to_string()
            } else {
                module.trim_start_matches('<').to_string()
            };
            let krate = path.split("::").next().unwrap_or("");
            if RUST_LIBS.contains(&krate) {
                return false;
            }
            if RUST_NOISE
                .iter()
                .any(|n| frame.function == *n || n.starts_with("__") && frame.function.starts_with(n))
            {
                return false;
            }
            true
        }
        Runtime::Node => frame.file.is_some(),
        Runtime::Python | Runtime::Ruby => frame.file.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(function: &str, module: Option<&str>, file: Option<&str>) -> Frame {
        Frame {
            function: function.into(),
            module: module.map(Into::into),
            file: file.map(Into::into),
            ..Frame::default()
        }
    }

    #[test]
    fn python_paths() {
        let o = ParseOptions::default();
        let app = f("calc", None, Some("/some/abs/path/pricing_logic.py"));
        assert!(classify(Runtime::Python, &app, &o, true));
        let lib = f("x", None, Some("/usr/local/lib/python3.11/site-packages/flask/app.py"));
        assert!(!classify(Runtime::Python, &lib, &o, true));
        let std = f("x", None, Some("/usr/lib/python3.11/http/server.py"));
        assert!(!classify(Runtime::Python, &std, &o, true));
        let frozen = f("x", None, Some("<frozen importlib._bootstrap>"));
        assert!(!classify(Runtime::Python, &frozen, &o, true));
    }

    #[test]
    fn catalog_roots_and_packages() {
        let o = ParseOptions {
            source_roots: vec!["/app".into()],
            app_packages: vec!["com.acme".into()],
        };
        assert!(classify(Runtime::Python, &f("x", None, Some("/app/x.py")), &o, true));
        assert!(!classify(Runtime::Python, &f("x", None, Some("/srv/x.py")), &o, true));
        assert!(!classify(
            Runtime::Python,
            &f("x", None, Some("/app/.venv/lib/python3.12/site-packages/x.py")),
            &o,
            true
        ));
        assert!(classify(
            Runtime::Jvm,
            &f("run", Some("com.acme.Foo"), Some("Foo.java")),
            &o,
            true
        ));
        assert!(!classify(
            Runtime::Jvm,
            &f("run", Some("com.acmex.Foo"), None),
            &o,
            true
        ));
        assert!(classify(
            Runtime::Jvm,
            &f("run", Some("com.acmex.Foo"), None),
            &o,
            false
        ));
    }

    #[test]
    fn go_std_and_modules() {
        let o = ParseOptions::default();
        assert!(!classify(
            Runtime::Go,
            &f(
                "(*conn).serve",
                Some("net/http"),
                Some("/usr/local/go/src/net/http/server.go")
            ),
            &o,
            true
        ));
        assert!(!classify(
            Runtime::Go,
            &f(
                "Next",
                Some("github.com/gin-gonic/gin"),
                Some("/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/context.go")
            ),
            &o,
            true
        ));
        assert!(classify(
            Runtime::Go,
            &f("main", Some("main"), Some("/src/main.go")),
            &o,
            true
        ));
        assert!(classify(
            Runtime::Go,
            &f("F", Some("github.com/acme/svc/pay"), Some("/src/pay/pay.go")),
            &o,
            true
        ));
        assert!(!classify(
            Runtime::Go,
            &f("(*Mutex).Lock", Some("sync"), None),
            &o,
            true
        ));
    }
}
