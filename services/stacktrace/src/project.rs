//! What the service's repository says is its own code.
//!
//! A frame is the service's own ("in-app") when the repository says so, never because its
//! name is missing from a list of library prefixes:
//!
//! - its **file exists in the repository** (outside vendored and dependency directories):
//!   the traced path and a repository path agree on their trailing components (at least
//!   two, or the whole repository path); a JVM frame's file is its class's package as
//!   directories plus the file name (`com.acme.Foo` + `Foo.java` → `…/com/acme/Foo.java`);
//! - or its **package or module is the service's own**, read from the build files: the
//!   `go.mod` module path, the crate names of every `Cargo.toml` (package, library and
//!   target names), the `package.json` name, the Python packages (directories with an
//!   `__init__.py` at the root or under `src/`, the `pyproject.toml` name), the
//!   `pom.xml` / `build.gradle(.kts)` group for JVM frames that carry no file, a `.csproj`
//!   name or root namespace, a `.gemspec` name. Installed copies of the service's own
//!   package count too (`node_modules/<own>/`, `site-packages/<own>/`, Go's module cache
//!   `<own module>@v…`, Cargo's registry `<own crate>-<version>/`): a command-line tool's
//!   crash report is printed from its installed copy.
//!
//! Everything else — dependencies, the JDK, the Go runtime and standard library,
//! `node:internal`, Python's standard library, a test harness — is not in-app.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::repo::{RepoError, RepoFiles, WorkTree};
use crate::{Frame, Runtime};

/// Build files read at most (a monorepo's manifests; more are ignored). Reading one from a
/// commit runs `git show`, so this also bounds the time a diagnosis spends here.
const MAX_BUILD_FILES: usize = 300;

/// Directories whose build files describe test inputs, not the service (a fixture's
/// `package.json` naming `lodash` must not make lodash the service's own).
const FIXTURE_DIRS: &[&str] = &[
    "testdata",
    "test-data",
    "test_data",
    "fixtures",
    "__fixtures__",
    "test-fixtures",
];

/// Repository directories that hold other people's code, even when committed.
const FOREIGN_DIRS: &[&str] = &[
    "vendor",
    "third_party",
    "third-party",
    "thirdparty",
    "node_modules",
    "site-packages",
    "dist-packages",
    ".venv",
    "venv",
    "bower_components",
    "Pods",
];

/// What the repository says is the service's own code (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// Own repository paths split into components, by file name.
    by_name: HashMap<String, Vec<Vec<String>>>,
    /// Own paths, for counting.
    files: usize,
    /// JVM group ids (`com.acme`).
    jvm_groups: BTreeSet<String>,
    /// Go module paths.
    go_modules: BTreeSet<String>,
    /// npm package names.
    node_packages: BTreeSet<String>,
    /// Python import names.
    python_packages: BTreeSet<String>,
    /// Rust crate names as they appear in symbols (`-` → `_`).
    rust_crates: BTreeSet<String>,
    /// .NET root namespaces and assembly names.
    dotnet_namespaces: BTreeSet<String>,
    /// Ruby gem names.
    ruby_gems: BTreeSet<String>,
}

/// Splits a traced or repository path into components: `/` separators, no scheme, no
/// drive letter, no `.`/`..`/empty components.
fn components(path: &str) -> Vec<String> {
    let mut p = path.trim().replace('\\', "/");
    if let Some(i) = p.find(['?', '#']) {
        p.truncate(i);
    }
    for scheme in ["file://", "webpack:///", "webpack-internal:///", "app:///"] {
        if let Some(rest) = p.strip_prefix(scheme) {
            p = rest.to_string();
        }
    }
    if let Some(rest) = p.strip_prefix("webpack://") {
        p = rest.split_once('/').map(|(_, r)| r.to_string()).unwrap_or_default();
    }
    p.split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != ".." && !(c.len() == 2 && c.ends_with(':')))
        .map(str::to_string)
        .collect()
}

/// `-` and `.` to `_`, lowercase: how Python and Rust spell a distribution's import name.
fn import_name(name: &str) -> String {
    name.trim().replace(['-', '.'], "_").to_ascii_lowercase()
}

/// Whether `name` is `prefix` or starts with `prefix` followed by one of `seps`.
fn under(name: &str, prefix: &str, seps: &[char]) -> bool {
    !prefix.is_empty() && (name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(seps)))
}

/// The text between `<tag>` and `</tag>`, first occurrence.
fn xml_value<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text.get(start..)?.find(&close)?;
    text.get(start..start + len).map(str::trim).filter(|v| !v.is_empty())
}

/// `text` without the `<tag>…</tag>` blocks.
fn xml_without(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        out.push_str(rest.get(..i).unwrap_or(""));
        match rest.get(i..).and_then(|r| r.find(&close)) {
            Some(j) => rest = rest.get(i + j + close.len()..).unwrap_or(""),
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The project's own group of a `pom.xml` (its parent's when it declares none).
fn pom_group(text: &str) -> Option<String> {
    let mut own = text.to_string();
    for tag in [
        "parent",
        "dependencies",
        "dependencyManagement",
        "build",
        "profiles",
        "reporting",
        "pluginRepositories",
        "repositories",
        "distributionManagement",
        "exclusions",
    ] {
        own = xml_without(&own, tag);
    }
    xml_value(&own, "groupId")
        .or_else(|| xml_value(text, "parent").and_then(|p| xml_value(p, "groupId")))
        .filter(|g| !g.contains("${"))
        .map(str::to_string)
}

/// `group = "com.acme"` (Groovy or Kotlin DSL) of a Gradle build file.
fn gradle_group(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let t = l.trim();
        let rest = t.strip_prefix("group")?.trim_start();
        let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = rest.get(1..)?;
        let end = inner.find(quote)?;
        let g = inner.get(..end)?.trim();
        (!g.is_empty() && !g.contains('$')).then(|| g.to_string())
    })
}

/// The `module` line of a `go.mod`.
fn go_module(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("module")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let m = rest.trim().trim_matches('"');
        (!m.is_empty()).then(|| m.to_string())
    })
}

/// A string field of a TOML table.
fn toml_str<'a>(v: &'a toml::Table, table: &str, key: &str) -> Option<&'a str> {
    v.get(table)?.get(key)?.as_str()
}

impl Project {
    /// Reads the repository's file list and build files.
    pub fn from_files(files: &dyn RepoFiles) -> Result<Self, RepoError> {
        let all = files.list()?;
        let mut p = Project::default();
        let mut build: Vec<&str> = Vec::new();
        for path in &all {
            let comps = components(path);
            if comps.iter().any(|c| FOREIGN_DIRS.contains(&c.as_str())) {
                continue;
            }
            let Some(name) = comps.last().cloned() else { continue };
            if is_build_file(&name)
                && build.len() < MAX_BUILD_FILES
                && !comps.iter().any(|c| FIXTURE_DIRS.contains(&c.as_str()))
            {
                build.push(path);
            }
            p.python_package_of(&comps);
            p.rust_target_of(&comps);
            p.by_name.entry(name).or_default().push(comps);
            p.files += 1;
        }
        for path in build {
            // A build file that cannot be read tells nothing; the rest still counts.
            if let Ok(text) = files.read(path) {
                p.read_build_file(path, &text);
            }
        }
        Ok(p)
    }

    /// Reads the working tree at `root`.
    pub fn from_dir(root: &Path) -> Result<Self, RepoError> {
        Self::from_files(&WorkTree::new(root))
    }

    /// Whether the repository gave anything to decide with (files or build files).
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The module paths, packages and crates the build files name, for display.
    pub fn own_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(self.jvm_groups.iter().map(|g| format!("jvm group {g}")));
        out.extend(self.go_modules.iter().map(|m| format!("go module {m}")));
        out.extend(self.node_packages.iter().map(|n| format!("npm package {n}")));
        out.extend(self.python_packages.iter().map(|n| format!("python package {n}")));
        out.extend(self.rust_crates.iter().map(|n| format!("rust crate {n}")));
        out.extend(self.dotnet_namespaces.iter().map(|n| format!(".net namespace {n}")));
        out.extend(self.ruby_gems.iter().map(|n| format!("gem {n}")));
        out
    }

    /// `pkg/__init__.py` or `src/pkg/__init__.py` names a Python package.
    fn python_package_of(&mut self, comps: &[String]) {
        let n = comps.len();
        if comps.last().is_some_and(|c| c == "__init__.py") {
            let top = match comps {
                [pkg, _] => Some(pkg),
                [src, pkg, _] if src == "src" || src == "lib" => Some(pkg),
                _ => None,
            };
            if let Some(pkg) = top {
                self.python_packages.insert(pkg.clone());
            }
        } else if n == 1 && comps.first().is_some_and(|c| c.ends_with(".py")) {
            // A top-level module (`app.py`) is imported as `app`.
            if let Some(stem) = comps.first().and_then(|c| c.strip_suffix(".py")) {
                self.python_packages.insert(stem.to_string());
            }
        }
    }

    /// Cargo's auto-discovered targets: `tests/x.rs`, `examples/x.rs`, `benches/x.rs`,
    /// `src/bin/x.rs` are crates named `x`.
    fn rust_target_of(&mut self, comps: &[String]) {
        let n = comps.len();
        if n < 2 {
            return;
        }
        let (Some(dir), Some(file)) = (comps.get(n - 2), comps.get(n - 1)) else {
            return;
        };
        let Some(stem) = file.strip_suffix(".rs") else { return };
        let target_dir = matches!(dir.as_str(), "tests" | "examples" | "benches")
            || dir == "bin" && n >= 3 && comps.get(n - 3).is_some_and(|c| c == "src");
        if target_dir && stem != "mod" {
            self.rust_crates.insert(import_name(stem));
        }
    }

    fn read_build_file(&mut self, path: &str, text: &str) {
        let name = path.rsplit('/').next().unwrap_or(path);
        match name {
            "pom.xml" => self.jvm_groups.extend(pom_group(text)),
            "build.gradle" | "build.gradle.kts" => self.jvm_groups.extend(gradle_group(text)),
            "go.mod" => self.go_modules.extend(go_module(text)),
            "package.json" => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
                    && let Some(n) = v.get("name").and_then(|n| n.as_str())
                    && !n.trim().is_empty()
                {
                    self.node_packages.insert(n.trim().to_string());
                }
            }
            "Cargo.toml" => {
                if let Ok(v) = text.parse::<toml::Table>() {
                    for key in ["package", "lib"] {
                        if let Some(n) = toml_str(&v, key, "name") {
                            self.rust_crates.insert(import_name(n));
                        }
                    }
                    for key in ["bin", "test", "example", "bench"] {
                        for t in v.get(key).and_then(|t| t.as_array()).into_iter().flatten() {
                            if let Some(n) = t.get("name").and_then(|n| n.as_str()) {
                                self.rust_crates.insert(import_name(n));
                            }
                        }
                    }
                }
            }
            "pyproject.toml" => {
                if let Ok(v) = text.parse::<toml::Table>() {
                    let name = toml_str(&v, "project", "name").or_else(|| {
                        v.get("tool")
                            .and_then(|t| t.get("poetry"))
                            .and_then(|p| p.get("name"))
                            .and_then(|n| n.as_str())
                    });
                    if let Some(n) = name {
                        self.python_packages.insert(import_name(n));
                    }
                }
            }
            _ if name.ends_with(".csproj") || name.ends_with(".fsproj") => {
                if let Some(stem) = name.rsplit_once('.').map(|(s, _)| s) {
                    self.dotnet_namespaces.insert(stem.to_string());
                }
                for tag in ["RootNamespace", "AssemblyName"] {
                    if let Some(v) = xml_value(text, tag).filter(|v| !v.contains('$')) {
                        self.dotnet_namespaces.insert(v.to_string());
                    }
                }
            }
            _ if name.ends_with(".gemspec") => {
                if let Some(stem) = name.strip_suffix(".gemspec") {
                    self.ruby_gems.insert(stem.to_string());
                }
            }
            _ => {}
        }
    }

    /// Whether a traced path is a file of the repository: the trailing components agree,
    /// at least two of them or the whole repository path.
    pub fn has_file(&self, traced: &str) -> bool {
        self.has_components(&components(traced))
    }

    fn has_components(&self, pat: &[String]) -> bool {
        let Some(name) = pat.last() else { return false };
        let Some(candidates) = self.by_name.get(name) else {
            return false;
        };
        candidates.iter().any(|c| {
            let n = c.iter().rev().zip(pat.iter().rev()).take_while(|(a, b)| a == b).count();
            n >= 2 || n == c.len()
        })
    }

    /// Whether the path is an installed copy of the service's own package (see the module
    /// docs); `None` when the path is not under a dependency directory at all.
    fn installed_own(&self, runtime: Runtime, comps: &[String]) -> Option<bool> {
        let pos = |names: &[&str]| comps.iter().rposition(|c| names.contains(&c.as_str()));
        match runtime {
            Runtime::Node => {
                let i = pos(&["node_modules"])?;
                let first = comps.get(i + 1)?;
                let name = if first.starts_with('@') {
                    format!("{first}/{}", comps.get(i + 2)?)
                } else {
                    first.clone()
                };
                Some(self.node_packages.contains(&name))
            }
            Runtime::Python => {
                let i = pos(&["site-packages", "dist-packages"])?;
                let first = comps.get(i + 1)?;
                let name = first.strip_suffix(".py").unwrap_or(first);
                Some(self.python_packages.contains(name))
            }
            Runtime::Go => {
                let i = pos(&["mod"]).filter(|i| *i > 0 && comps.get(i - 1).is_some_and(|c| c == "pkg"))?;
                let rest: Vec<&str> = comps.get(i + 1..)?.iter().map(String::as_str).collect();
                let at = rest.iter().position(|c| c.contains('@'))?;
                let module_parts: Vec<String> = rest
                    .get(..=at)?
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        if k == at {
                            c.split('@').next().unwrap_or("").to_string()
                        } else {
                            (*c).to_string()
                        }
                    })
                    .collect();
                Some(self.go_modules.contains(&module_parts.join("/")))
            }
            Runtime::Rust => {
                let i = pos(&["registry", "checkouts"])?;
                // …/registry/src/<index>/<crate>-<version>/… or …/git/checkouts/<crate>-<hash>/<rev>/…
                let dir = if comps.get(i).is_some_and(|c| c == "registry") {
                    comps.get(i + 3)?
                } else {
                    comps.get(i + 1)?
                };
                let krate = dir.rsplit_once('-').map_or(dir.as_str(), |(k, _)| k);
                Some(self.rust_crates.contains(&import_name(krate)))
            }
            _ => None,
        }
    }

    /// Whether the frame is the service's own code. `library_path` says whether the
    /// runtime's rules put its file in third-party or runtime code.
    pub(crate) fn owns(&self, runtime: Runtime, frame: &Frame, library_path: bool) -> bool {
        let comps = frame.file.as_deref().map(components).unwrap_or_default();
        if library_path {
            return self.installed_own(runtime, &comps).unwrap_or(false);
        }
        match runtime {
            Runtime::Jvm => self.owns_jvm(frame),
            Runtime::Go => {
                let pkg = frame.module.as_deref().unwrap_or("");
                if self.go_modules.iter().any(|m| under(pkg, m, &['/', '.'])) {
                    return true;
                }
                // `-trimpath` builds print `<module>/<dir>/<file>.go`.
                let file = comps.join("/");
                if self.go_modules.iter().any(|m| under(&file, m, &['/'])) {
                    return true;
                }
                self.has_components(&comps)
            }
            Runtime::Rust => {
                let crates = rust_crates_of(frame);
                let own = crates.iter().filter(|c| self.rust_crates.contains(*c)).count();
                if own > 0 {
                    // `<theirs::T as ours::Trait>::m` may be code either crate wrote (a
                    // derive in the caller's crate); the file decides when there is one.
                    return own == crates.len() || comps.is_empty() || self.has_components(&comps);
                }
                if !crates.is_empty() && !self.rust_crates.is_empty() {
                    // A symbol of another crate: a dependency's generic code is compiled
                    // into the service, but it is not the service's own line.
                    return false;
                }
                self.has_components(&comps)
            }
            Runtime::Dotnet => {
                let q = qualified(frame);
                if self.dotnet_namespaces.iter().any(|n| under(&q, n, &['.'])) {
                    return true;
                }
                self.has_components(&comps)
            }
            Runtime::Python | Runtime::Node | Runtime::Ruby => self.has_components(&comps),
        }
    }

    /// A JVM frame: its class's file in the repository, else (no usable file) its class
    /// under the build's group.
    fn owns_jvm(&self, frame: &Frame) -> bool {
        let module = frame.module.as_deref().unwrap_or("");
        let class = module.rsplit('/').next().unwrap_or(module);
        let (package, simple) = class.rsplit_once('.').unwrap_or(("", class));
        let pkg_dirs: Vec<String> = if package.is_empty() {
            Vec::new()
        } else {
            package.split('.').map(str::to_string).collect()
        };
        let file = frame
            .file
            .as_deref()
            .filter(|f| f.contains('.') && !f.contains(' ') && !f.starts_with('<'));
        match file {
            Some(f) if !f.contains('/') && !f.contains('\\') => {
                let mut pat = pkg_dirs;
                pat.push(f.to_string());
                self.has_components(&pat)
            }
            Some(f) => self.has_components(&components(f)),
            None => {
                let top = simple.split('$').next().unwrap_or(simple);
                let by_class = ["java", "kt", "scala", "groovy"].iter().any(|ext| {
                    let mut pat = pkg_dirs.clone();
                    pat.push(format!("{top}.{ext}"));
                    self.has_components(&pat)
                });
                by_class || self.jvm_groups.iter().any(|g| under(class, g, &['.']))
            }
        }
    }
}

/// Whether a file name is one of the build files [`Project`] reads.
fn is_build_file(name: &str) -> bool {
    matches!(
        name,
        "pom.xml" | "build.gradle" | "build.gradle.kts" | "go.mod" | "package.json" | "Cargo.toml" | "pyproject.toml"
    ) || name.ends_with(".csproj")
        || name.ends_with(".fsproj")
        || name.ends_with(".gemspec")
}

/// `Module.function` as printed.
fn qualified(frame: &Frame) -> String {
    match &frame.module {
        Some(m) if !m.is_empty() => format!("{m}.{}", frame.function),
        _ => frame.function.clone(),
    }
}

/// The crates a Rust symbol names at its top level: `a` of `a::b::c`, both `a` and `c`
/// of `<a::T as c::Trait>::m` (the impl belongs to whichever is the service's).
fn rust_crates_of(frame: &Frame) -> Vec<String> {
    let full = match &frame.module {
        Some(m) if !m.is_empty() => format!("{m}::{}", frame.function),
        _ => frame.function.clone(),
    };
    let mut out = Vec::new();
    let s = full.trim();
    let heads: Vec<&str> = if let Some(inner) = s.strip_prefix('<') {
        // `<A as B>::m` or `<impl …>`: look at A and B, at the brackets' own depth
        // (`<core::ops::Range<u32> as url::RangeArg>`).
        let mut depth = 0i32;
        let mut end = inner.len();
        let mut split = None;
        for (i, ch) in inner.char_indices() {
            match ch {
                '<' => depth += 1,
                '>' if depth == 0 => {
                    end = i;
                    break;
                }
                '>' => depth -= 1,
                ' ' if depth == 0 && split.is_none() && inner.get(i..).is_some_and(|r| r.starts_with(" as ")) => {
                    split = Some(i);
                }
                _ => {}
            }
        }
        let inside = inner.get(..end).unwrap_or(inner);
        let (a, b) = match split.filter(|i| *i < end) {
            Some(i) => (inside.get(..i).unwrap_or(""), inside.get(i + 4..).unwrap_or("")),
            None => (inside, ""),
        };
        let a = a.strip_prefix("impl ").unwrap_or(a);
        vec![a, b]
    } else {
        vec![s]
    };
    for h in heads {
        let h = h
            .trim()
            .trim_start_matches(['&', '*'])
            .trim_start_matches("mut ")
            .trim_start_matches("dyn ");
        if let Some((krate, _)) = h.split_once("::")
            && !krate.is_empty()
            && krate.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            out.push(krate.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_files_name_the_project() {
        assert_eq!(
            pom_group(
                "<project><parent><groupId>org.springframework.boot</groupId></parent>\
                 <groupId>com.acme</groupId><dependencies><dependency><groupId>x.y</groupId></dependency></dependencies></project>"
            )
            .as_deref(),
            Some("com.acme")
        );
        assert_eq!(
            pom_group("<project><parent><groupId>com.acme</groupId></parent><artifactId>a</artifactId></project>")
                .as_deref(),
            Some("com.acme")
        );
        assert_eq!(
            gradle_group("plugins {}\ngroup = \"com.acme.pay\"\n").as_deref(),
            Some("com.acme.pay")
        );
        assert_eq!(gradle_group("group 'org.x'").as_deref(), Some("org.x"));
        assert_eq!(
            go_module("// c\nmodule github.com/acme/svc\n\ngo 1.22\n").as_deref(),
            Some("github.com/acme/svc")
        );
        assert_eq!(go_module("modules x"), None);
    }

    #[test]
    fn cargo_manifests_name_crates() {
        let mut tree = crate::repo::MemoryTree::new(["core/src/lib.rs", "tests/smoke.rs"]);
        tree.insert(
            "core/Cargo.toml",
            "[package]\nname = \"acme-core\"\nversion = \"0.1.0\"\n\n[lib]\nname = \"acme\"\n\n[[bin]]\nname = \"acme-cli\"\n",
        );
        tree.insert("Cargo.toml", "[workspace]\nmembers = [\"core\"]\n");
        let p = Project::from_files(&tree).unwrap_or_default();
        for krate in ["acme_core", "acme", "acme_cli", "smoke"] {
            assert!(p.rust_crates.contains(krate), "{krate}: {:?}", p.rust_crates);
        }
    }

    #[test]
    fn rust_symbols_name_their_crates() {
        let f = |m: &str, func: &str| Frame {
            function: func.into(),
            module: Some(m.into()),
            ..Frame::default()
        };
        assert_eq!(
            rust_crates_of(&f("tinytemplate::compiler::TemplateCompiler", "compile")),
            ["tinytemplate"]
        );
        assert_eq!(
            rust_crates_of(&f("<alloc::vec::Vec<T> as my_crate::Trait>", "call")),
            ["alloc", "my_crate"]
        );
        assert_eq!(
            rust_crates_of(&f("<core::ops::range::Range<u32> as url::RangeArg>", "slice_of")),
            ["core", "url"]
        );
    }

    #[test]
    fn paths_match_by_trailing_components() {
        let p = Project::from_files(&crate::repo::MemoryTree::new([
            "src/main/java/com/acme/Foo.java",
            "main.go",
            "vendor/github.com/x/y/z.go",
        ]))
        .unwrap_or_default();
        assert!(p.has_file("/build/src/main/java/com/acme/Foo.java"));
        assert!(p.has_file("/go/src/app/main.go"));
        assert!(!p.has_file("/other/Foo.java"));
        assert!(!p.has_file("/app/vendor/github.com/x/y/z.go"));
    }
}
