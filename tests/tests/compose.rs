//! docker-compose.yml and the Dockerfile, checked where there is no Docker engine.
//!
//! - The compose services run as local processes with the same binary, command, arguments and
//!   environment (the image's `ENV`, then compose's), the container world mapped onto this
//!   machine: `kafka` and `registry` to the real test bed, each container's ports to free
//!   local ports (a `network_mode: service:x` container shares x's), named volumes to temp
//!   directories, files of the image to the files the Dockerfile copies into it, the image's
//!   Python to the example's virtualenv. Together they heal the demo incident.
//! - Every variable compose sets is one its binary reads (the binary's `--help` lists it), and
//!   every binary answers `--version`.
//! - Every path compose names is in the image the Dockerfile builds (its COPY lines, the
//!   binaries it builds, the directories its RUN lines make) or in a volume of that service,
//!   and every repository of the catalog is in a volume that a one-shot service fills first.
//! - Each check fails on a compose file or Dockerfile broken the way they used to be.
//!
//! Two things are added to compose's environment because the test bed is shared: a unique
//! topic prefix, and that prefix on each consumer group id.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use selfheal_e2e::pipeline::{Proc, bin, free_port, git, next_outcome, python, repo_root, tempdir};
use selfheal_e2e::{brokers, registry_url, require_broker, unique};
use selfheal_events::{Codec, OutcomeStatus, RolloutStep};

/// Services the test bed provides in place of containers.
const TESTBED_SERVICES: [&str; 2] = ["kafka", "registry"];
/// The profiles this test turns on, as `docker compose --profile demo up` does.
const PROFILES: [&str; 1] = ["demo"];
/// PATH of the Debian base image: what `$PATH` means in the Dockerfile's `ENV`.
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Programs the Debian base image has without installing anything.
const BASE_PROGRAMS: [&str; 2] = ["bash", "sh"];
/// Variables that configure the container itself, not a selfheal binary.
const IMAGE_ONLY_ENV: [&str; 1] = ["PATH"];
/// Directories of the base image and its Debian packages: this machine's own stand in.
const SYSTEM_DIRS: [&str; 9] = [
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/lib",
    "/lib",
    "/etc",
    "/dev",
    "/tmp",
];

// ---- compose model --------------------------------------------------------------------

/// One service of the compose file, as far as this test needs it.
#[derive(Debug, Clone, Default)]
struct Service {
    name: String,
    image: Option<String>,
    build: bool,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    /// (named volume or host path, mount point in the container)
    volumes: Vec<(String, String)>,
    /// dependency → condition
    depends_on: BTreeMap<String, String>,
    network_mode: Option<String>,
    profiles: Vec<String>,
    /// The healthcheck's `test` as a command line (CMD-SHELL turned into `sh -c`).
    healthcheck: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
struct Compose {
    services: Vec<Service>,
    volumes: BTreeSet<String>,
}

impl Compose {
    fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The image the Dockerfile builds (the `image:` of the services with a `build:`).
    fn built_image(&self) -> Option<&str> {
        self.services.iter().find(|s| s.build).and_then(|s| s.image.as_deref())
    }

    /// The services that run the built image with the profiles of this test, in file order.
    fn image_services(&self) -> Vec<&Service> {
        let image = self.built_image();
        self.services
            .iter()
            .filter(|s| s.build || (image.is_some() && s.image.as_deref() == image))
            .filter(|s| s.profiles.is_empty() || s.profiles.iter().any(|p| PROFILES.contains(&p.as_str())))
            .collect()
    }

    /// The service whose network a service uses (`network_mode: service:x`).
    fn netns<'a>(&'a self, service: &'a str) -> &'a str {
        self.service(service)
            .and_then(|s| s.network_mode.as_deref())
            .and_then(|m| m.strip_prefix("service:"))
            .unwrap_or(service)
    }
}

/// Compose's `${VAR:-default}`, `${VAR-default}` and `${VAR}`, with the defaults (this test
/// does not take the caller's environment), and `$$`.
fn interpolate(text: &str) -> String {
    static VAR: OnceLock<Regex> = OnceLock::new();
    let re = VAR.get_or_init(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}").unwrap());
    re.replace_all(text, |c: &regex::Captures| {
        c.get(2).map_or("", |m| m.as_str()).to_string()
    })
    .replace("$$", "$")
}

fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&serde_yaml::Value>) -> Vec<String> {
    match v {
        Some(serde_yaml::Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        // A string command is split like compose does for simple cases (no quoting here).
        Some(other) => scalar(other)
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

fn parse_compose(text: &str) -> Result<Compose, String> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&interpolate(text)).map_err(|e| e.to_string())?;
    doc.apply_merge().map_err(|e| e.to_string())?;
    let services = doc.get("services").and_then(|s| s.as_mapping()).ok_or("no services")?;
    let mut out = Compose::default();
    for (name, s) in services {
        let name = scalar(name).ok_or("a service name is not a string")?;
        let mut service = Service {
            name: name.clone(),
            image: s.get("image").and_then(scalar),
            build: s.get("build").is_some(),
            command: strings(s.get("command")),
            network_mode: s.get("network_mode").and_then(scalar),
            profiles: strings(s.get("profiles")),
            ..Service::default()
        };
        match s.get("environment") {
            Some(serde_yaml::Value::Mapping(m)) => {
                for (k, v) in m {
                    let k = scalar(k).ok_or(format!("{name}: an environment name is not a string"))?;
                    service.environment.insert(k, scalar(v).unwrap_or_default());
                }
            }
            Some(serde_yaml::Value::Sequence(items)) => {
                for item in items.iter().filter_map(scalar) {
                    let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                    service.environment.insert(k.to_string(), v.to_string());
                }
            }
            _ => {}
        }
        for v in strings(s.get("volumes")) {
            let mut parts = v.splitn(3, ':');
            let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
                return Err(format!("{name}: volume `{v}` is not source:target"));
            };
            service.volumes.push((src.to_string(), dst.to_string()));
        }
        match s.get("depends_on") {
            Some(serde_yaml::Value::Mapping(m)) => {
                for (k, v) in m {
                    let condition = v
                        .get("condition")
                        .and_then(scalar)
                        .unwrap_or_else(|| "service_started".into());
                    service.depends_on.insert(scalar(k).unwrap_or_default(), condition);
                }
            }
            Some(serde_yaml::Value::Sequence(items)) => {
                for k in items.iter().filter_map(scalar) {
                    service.depends_on.insert(k, "service_started".into());
                }
            }
            _ => {}
        }
        if let Some(test) = s.get("healthcheck").and_then(|h| h.get("test")) {
            let words = strings(Some(test));
            service.healthcheck = match words.first().map(String::as_str) {
                Some("CMD") => Some(words[1..].to_vec()),
                Some("CMD-SHELL") => Some(vec!["sh".into(), "-c".into(), words[1..].join(" ")]),
                Some("NONE") | None => None,
                Some(_) => match test {
                    serde_yaml::Value::String(line) => Some(vec!["sh".into(), "-c".into(), line.clone()]),
                    _ => return Err(format!("{name}: healthcheck test must start with CMD or CMD-SHELL")),
                },
            };
        }
        out.services.push(service);
    }
    if let Some(volumes) = doc.get("volumes").and_then(|v| v.as_mapping()) {
        out.volumes = volumes.keys().filter_map(scalar).collect();
    }
    Ok(out)
}

// ---- Dockerfile model -----------------------------------------------------------------

/// What the Dockerfile's runtime stage (the last one) puts in the image.
#[derive(Debug, Clone, Default)]
struct Dockerfile {
    /// Binaries the builder stage builds (`ARG SELFHEAL_BINS`).
    bins: Vec<String>,
    /// `COPY src dest` from the build context.
    copies: Vec<(String, String)>,
    /// `COPY --from=stage src dest`: destinations of the build's outputs.
    staged: Vec<String>,
    /// Directories made by RUN lines (`mkdir -p d`, `python3 -m venv d`), venvs marked.
    made: Vec<(String, bool)>,
    /// Debian packages installed by RUN lines.
    packages: Vec<String>,
    /// `ENV` in order.
    env: Vec<(String, String)>,
    workdir: Option<String>,
    /// Home directories made by `useradd --home-dir`.
    homes: Vec<String>,
}

impl Dockerfile {
    fn venv(&self) -> Option<&str> {
        self.made.iter().find(|(_, venv)| *venv).map(|(d, _)| d.as_str())
    }
}

fn parse_dockerfile(text: &str) -> Dockerfile {
    // Join continuation lines, drop comments.
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            lines.push(std::mem::take(&mut current));
        }
    }
    let mut out = Dockerfile::default();
    for line in lines {
        let (instruction, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                // Only the last stage is the image; the builder's ARG is kept.
                let bins = std::mem::take(&mut out.bins);
                out = Dockerfile {
                    bins,
                    ..Dockerfile::default()
                };
            }
            "ARG" => {
                if let Some(list) = rest.trim().strip_prefix("SELFHEAL_BINS=") {
                    out.bins = list.trim_matches('"').split_whitespace().map(String::from).collect();
                }
            }
            "COPY" | "ADD" => {
                let from = words.iter().any(|w| w.starts_with("--from="));
                let plain: Vec<&str> = words.iter().copied().filter(|w| !w.starts_with("--")).collect();
                if let [src, dest] = plain[..] {
                    if from {
                        out.staged.push(dest.trim_end_matches('/').to_string());
                    } else {
                        out.copies.push((
                            src.trim_end_matches('/').to_string(),
                            dest.trim_end_matches('/').to_string(),
                        ));
                    }
                }
            }
            "RUN" => {
                for (i, w) in words.iter().enumerate() {
                    let after = || {
                        words[i + 1..]
                            .iter()
                            .take_while(|w| !["&&", ";", "||"].contains(w))
                            .filter(|w| !w.starts_with('-'))
                            .map(|w| w.to_string())
                            .collect::<Vec<_>>()
                    };
                    match *w {
                        "mkdir" => out.made.extend(after().into_iter().map(|d| (d, false))),
                        "venv" => out.made.extend(after().into_iter().take(1).map(|d| (d, true))),
                        "install" if i > 0 && words[i - 1] == "apt-get" => out.packages.extend(after()),
                        "--home-dir" => out.homes.extend(words.get(i + 1).map(|d| d.to_string())),
                        _ => {}
                    }
                }
            }
            "ENV" => {
                for w in words {
                    if let Some((k, v)) = w.split_once('=') {
                        out.env.push((k.to_string(), v.trim_matches('"').to_string()));
                    }
                }
            }
            "WORKDIR" => out.workdir = Some(rest.trim().to_string()),
            _ => {}
        }
    }
    out
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo_root().join(name)).unwrap()
}

// ---- the checks -------------------------------------------------------------------------

/// The variables a binary reads, from the `[env: NAME=…]` of its `--help`.
fn env_of_help(help: &str) -> BTreeSet<String> {
    static ENV: OnceLock<Regex> = OnceLock::new();
    let re = ENV.get_or_init(|| Regex::new(r"\[env: ([A-Za-z_][A-Za-z0-9_]*)=").unwrap());
    re.captures_iter(help).map(|c| c[1].to_string()).collect()
}

/// `<bin> --help` of a workspace binary, with no SELFHEAL variables of ours in sight.
fn help_of(name: &str) -> String {
    let out = Command::new(bin(name))
        .arg("--help")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_selfheal_bin(program: &str) -> bool {
    program.starts_with("selfheal")
}

/// Variables compose sets (and the image sets) that no binary reads: compose would pass them
/// and nothing would happen, the way `SELFHEAL_OTLP_GRPC_ADDR` once did.
fn env_problems(compose: &Compose, image: &Dockerfile, reads: &dyn Fn(&str) -> BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut programs = BTreeSet::new();
    for s in compose.image_services() {
        let Some(program) = s.command.first() else {
            problems.push(format!("{}: no command", s.name));
            continue;
        };
        for name in s.environment.keys() {
            if !is_selfheal_bin(program) {
                problems.push(format!(
                    "{}: sets {name} for `{program}`, whose variables this test cannot check",
                    s.name
                ));
            } else if !reads(program).contains(name) {
                problems.push(format!("{}: sets {name}, which {program} does not read", s.name));
            }
        }
        if is_selfheal_bin(program) {
            programs.insert(program.clone());
        }
    }
    for (name, _) in &image.env {
        if !IMAGE_ONLY_ENV.contains(&name.as_str()) && !programs.iter().any(|p| reads(p).contains(name)) {
            problems.push(format!("Dockerfile: ENV {name}, which no binary compose runs reads"));
        }
    }
    problems
}

/// Is `path` (absolute, in the container of `service`) there: in a volume of the service, in
/// a file the Dockerfile copies from the build context (which must exist), among the binaries
/// it builds, or in a directory its RUN lines make?
fn path_problem(service: &Service, image: &Dockerfile, path: &str) -> Option<String> {
    if service.volumes.iter().any(|(_, target)| under(path, target)) {
        return None;
    }
    let mut copies: Vec<&(String, String)> = image.copies.iter().filter(|(_, dest)| under(path, dest)).collect();
    copies.sort_by_key(|(_, dest)| std::cmp::Reverse(dest.len()));
    if let Some((src, dest)) = copies.first() {
        let local = repo_root().join(src).join(path[dest.len()..].trim_start_matches('/'));
        return (!local.exists()).then(|| {
            format!(
                "{}: names {path}, copied by `COPY {src} {dest}` from {}, which does not exist",
                service.name,
                local.display()
            )
        });
    }
    if image.staged.iter().any(|dest| under(path, dest)) {
        let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("");
        return (!image.bins.iter().any(|b| b == name)).then(|| {
            format!(
                "{}: names {path}, but the image builds only {:?}",
                service.name, image.bins
            )
        });
    }
    if image.made.iter().any(|(dir, _)| under(path, dir)) {
        return None;
    }
    Some(format!(
        "{}: names {path}, which is neither in a volume of the service nor in the image the Dockerfile builds",
        service.name
    ))
}

/// The repositories a catalog names (absolute; relative ones resolved against its directory).
fn catalog_repositories(catalog_text: &str, catalog_path: &str) -> Vec<String> {
    static REPO: OnceLock<Regex> = OnceLock::new();
    let re = REPO.get_or_init(|| Regex::new(r#"(?m)^\s*repository\s*=\s*"([^"]+)""#).unwrap());
    let dir = Path::new(catalog_path).parent().unwrap_or(Path::new("/"));
    re.captures_iter(catalog_text)
        .map(|c| {
            let repo = &c[1];
            if repo.starts_with('/') {
                repo.to_string()
            } else {
                dir.join(repo).display().to_string()
            }
        })
        .collect()
}

/// The local copy of an image file, through the Dockerfile's COPY lines.
fn image_file(image: &Dockerfile, path: &str) -> Option<PathBuf> {
    image
        .copies
        .iter()
        .filter(|(_, dest)| under(path, dest))
        .max_by_key(|(_, dest)| dest.len())
        .map(|(src, dest)| repo_root().join(src).join(path[dest.len()..].trim_start_matches('/')))
}

/// Paths compose names that the image and the volumes do not have; programs the image lacks;
/// volumes and dependencies that do not exist; repositories of the catalog that no volume holds.
fn path_problems(compose: &Compose, image: &Dockerfile) -> Vec<String> {
    let mut problems = Vec::new();
    let image_services = compose.image_services();
    for s in &compose.services {
        let runs = image_services.iter().any(|i| i.name == s.name);
        if !runs && !TESTBED_SERVICES.contains(&s.name.as_str()) && s.profiles.is_empty() {
            problems.push(format!(
                "{}: neither built from the Dockerfile nor part of the test bed",
                s.name
            ));
        }
        for (dep, condition) in &s.depends_on {
            match compose.service(dep) {
                None => problems.push(format!("{}: depends on {dep}, which compose does not define", s.name)),
                Some(d) if condition == "service_healthy" && d.healthcheck.is_none() => problems.push(format!(
                    "{}: waits for {dep} to be healthy, which has no healthcheck",
                    s.name
                )),
                Some(_) => {}
            }
        }
        for (source, target) in &s.volumes {
            if !target.starts_with('/') {
                problems.push(format!("{}: volume target {target} is not absolute", s.name));
            }
            let bind = source.starts_with('.') || source.starts_with('/');
            if !bind && !compose.volumes.contains(source) {
                problems.push(format!("{}: volume {source} is not declared under `volumes:`", s.name));
            }
            if bind && !repo_root().join(source).exists() {
                problems.push(format!("{}: bind mount {source} does not exist", s.name));
            }
        }
    }
    for s in &image_services {
        let Some(program) = s.command.first() else { continue };
        let installed = image.bins.contains(program)
            || BASE_PROGRAMS.contains(&program.as_str())
            || image.packages.contains(program)
            || (program.starts_with("python") && image.venv().is_some());
        if program.starts_with('/') {
            problems.extend(path_problem(s, image, program));
        } else if !installed {
            problems.push(format!("{}: runs `{program}`, which the image does not have", s.name));
        }
        let image_env = image.env.iter().filter(|(k, _)| !IMAGE_ONLY_ENV.contains(&k.as_str()));
        let values = s
            .command
            .iter()
            .skip(1)
            .chain(s.environment.values())
            .chain(image_env.map(|(_, v)| v));
        for value in values {
            if value.starts_with('/') {
                problems.extend(path_problem(s, image, value));
            }
        }
        // The catalog's repositories must be in a volume of the service, filled by a one-shot
        // service that runs before it.
        let catalog = s.environment.get("SELFHEAL_CATALOG").or_else(|| {
            s.command
                .iter()
                .position(|a| a == "--catalog")
                .and_then(|i| s.command.get(i + 1))
        });
        let Some(catalog) = catalog else { continue };
        let Some(text) = image_file(image, catalog).and_then(|p| std::fs::read_to_string(p).ok()) else {
            continue; // reported above as a missing path
        };
        for repo in catalog_repositories(&text, catalog) {
            let Some((volume, _)) = s.volumes.iter().find(|(_, target)| under(&repo, target)) else {
                problems.push(format!(
                    "{}: the catalog's repository {repo} is in no volume of the service",
                    s.name
                ));
                continue;
            };
            let seeded = s.depends_on.iter().any(|(dep, condition)| {
                condition == "service_completed_successfully"
                    && compose.service(dep).is_some_and(|d| {
                        d.volumes.iter().any(|(v, _)| v == volume) && d.command.iter().any(|a| a == &repo)
                    })
            });
            if !seeded {
                problems.push(format!(
                    "{}: nothing puts the catalog's repository {repo} into volume {volume} before it starts",
                    s.name
                ));
            }
        }
    }
    problems
}

/// `--help` of every binary, once per test process.
fn reads(program: &str) -> BTreeSet<String> {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<String, BTreeSet<String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(program) {
        return hit.clone();
    }
    let vars = env_of_help(&help_of(program));
    cache.lock().unwrap().insert(program.to_string(), vars.clone());
    vars
}

#[test]
fn every_variable_compose_sets_is_read_by_its_binary_and_every_binary_answers_version() {
    let compose = parse_compose(&read("docker-compose.yml")).unwrap();
    let image = parse_dockerfile(&read("Dockerfile"));
    let problems = env_problems(&compose, &image, &reads);
    assert!(problems.is_empty(), "{problems:#?}");
    let mut checked = 0;
    for s in compose.image_services() {
        let program = &s.command[0];
        if !is_selfheal_bin(program) {
            continue;
        }
        checked += s.environment.len();
        let out = Command::new(bin(program)).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with(&format!("{program} ")),
            "{program} --version: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        checked >= 20,
        "only {checked} variables checked: is compose read at all?"
    );
}

#[test]
fn every_path_compose_names_is_in_the_image_or_a_volume() {
    let compose = parse_compose(&read("docker-compose.yml")).unwrap();
    let image = parse_dockerfile(&read("Dockerfile"));
    let problems = path_problems(&compose, &image);
    assert!(problems.is_empty(), "{problems:#?}");
    // The parse found what the checks rely on.
    assert!(image.bins.len() >= 7 && image.copies.len() >= 4, "{image:#?}");
    assert_eq!(
        compose.image_services().len(),
        9,
        "seven stages, the repos seeder and traffic"
    );
}

/// A copy of `text` with `from` replaced by `to`; the test fails when `from` is missing, so a
/// mutation that no longer applies is noticed.
fn mutate(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "`{from}` is not in the file any more: update this test"
    );
    text.replacen(from, to, 1)
}

#[test]
fn the_checks_catch_compose_and_dockerfile_broken_as_they_used_to_be() {
    let compose_text = read("docker-compose.yml");
    let dockerfile_text = read("Dockerfile");
    let image = parse_dockerfile(&dockerfile_text);
    let env_check = |text: &str| env_problems(&parse_compose(text).unwrap(), &image, &reads);
    let path_check = |text: &str, image: &Dockerfile| path_problems(&parse_compose(text).unwrap(), image);

    // A variable nothing reads (the OTLP/gRPC address of a receiver that does not exist).
    let grpc = mutate(
        &compose_text,
        "      SELFHEAL_OTLP_HTTP_ADDR: 0.0.0.0:4318\n",
        "      SELFHEAL_OTLP_HTTP_ADDR: 0.0.0.0:4318\n      SELFHEAL_OTLP_GRPC_ADDR: 0.0.0.0:4317\n",
    );
    let problems = env_check(&grpc);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("SELFHEAL_OTLP_GRPC_ADDR") && p.starts_with("collector")),
        "{problems:#?}"
    );
    // A variable read by another binary than the one it is set for.
    let misplaced = mutate(
        &compose_text,
        "      SELFHEAL_GROUP_ID: selfheal-verifier\n",
        "      SELFHEAL_GROUP_ID: selfheal-verifier\n      SELFHEAL_CATALOG: /usr/share/selfheal/compose/catalog.toml\n",
    );
    assert!(
        env_check(&misplaced)
            .iter()
            .any(|p| p.starts_with("verifier: sets SELFHEAL_CATALOG"))
    );
    // An image ENV that no binary reads.
    let mut stray = image.clone();
    stray.env.push(("SELFHEAL_NOTHING".into(), "1".into()));
    let problems = env_problems(&parse_compose(&compose_text).unwrap(), &stray, &reads);
    assert!(problems.iter().any(|p| p.contains("SELFHEAL_NOTHING")), "{problems:#?}");

    // The catalog where the image does not have it (as `--catalog` once pointed nowhere).
    let catalog = mutate(
        &compose_text,
        "      SELFHEAL_CATALOG: /usr/share/selfheal/compose/catalog.toml\n      SELFHEAL_LEARNER_URL",
        "      SELFHEAL_CATALOG: /usr/share/selfheal/catalog.toml\n      SELFHEAL_LEARNER_URL",
    );
    let problems = path_check(&catalog, &image);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("diagnoser: names /usr/share/selfheal/catalog.toml")),
        "{problems:#?}"
    );
    // The Dockerfile without the COPY that brings the catalog and the seeding script.
    let uncopied = parse_dockerfile(&mutate(
        &dockerfile_text,
        "COPY deploy/compose /usr/share/selfheal/compose\n",
        "",
    ));
    let problems = path_check(&compose_text, &uncopied);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/usr/share/selfheal/compose/catalog.toml")),
        "{problems:#?}"
    );
    // A COPY whose source is not in the repository.
    let wrong_source = parse_dockerfile(&mutate(
        &dockerfile_text,
        "COPY deploy/compose /usr/share/selfheal/compose",
        "COPY deploy/kompose /usr/share/selfheal/compose",
    ));
    assert!(
        path_check(&compose_text, &wrong_source)
            .iter()
            .any(|p| p.contains("does not exist"))
    );
    // A service without the repositories it must read (as every service once was).
    let no_repos = mutate(
        &compose_text,
        "      SELFHEAL_LEARNER_URL: http://learner:8090\n    volumes:\n      - repos:/srv/selfheal/repos\n",
        "      SELFHEAL_LEARNER_URL: http://learner:8090\n",
    );
    let problems = path_check(&no_repos, &image);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("diagnoser: the catalog's repository")),
        "{problems:#?}"
    );
    // Repositories in a volume that nothing fills first.
    let unseeded = compose_text.replace(
        "condition: service_completed_successfully",
        "condition: service_started",
    );
    assert!(path_check(&unseeded, &image).iter().any(|p| p.contains("nothing puts")));
    // A binary the image does not build.
    let unbuilt = mutate(
        &compose_text,
        "command: [\"selfheal-verifier\"]",
        "command: [\"selfheal-verify\"]",
    );
    assert!(
        path_check(&unbuilt, &image)
            .iter()
            .any(|p| p.contains("`selfheal-verify`"))
    );
    // A named volume that is not declared.
    let undeclared = mutate(&compose_text, "  learner-db:\n", "");
    assert!(path_check(&undeclared, &image).iter().any(|p| p.contains("learner-db")));
}

// ---- running compose on the test bed -----------------------------------------------------

/// The container world of the compose file, mapped onto this machine.
struct Bed {
    dir: PathBuf,
    compose: Compose,
    image: Dockerfile,
    prefix: String,
    venv: PathBuf,
    bin_dir: PathBuf,
    registry_authority: String,
    /// (network owner, container port) → local port
    ports: RefCell<HashMap<(String, u16), u16>>,
}

impl Bed {
    fn new(compose: Compose, image: Dockerfile) -> Bed {
        let dir = tempdir();
        let python = PathBuf::from(python());
        // <venv>/bin/python → <venv>
        let venv = python.parent().and_then(Path::parent).unwrap().to_path_buf();
        let registry = registry_url();
        let registry_authority = registry
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_string();
        Bed {
            dir,
            compose,
            image,
            prefix: format!("{}.", unique("compose")),
            venv,
            bin_dir: bin("selfheal-collector").parent().unwrap().to_path_buf(),
            registry_authority,
            ports: RefCell::new(HashMap::new()),
        }
    }

    fn service(&self, name: &str) -> &Service {
        self.compose.service(name).unwrap()
    }

    /// The local port of `port` in the network of `service`.
    fn port(&self, service: &str, port: u16) -> u16 {
        let owner = self.compose.netns(service).to_string();
        *self.ports.borrow_mut().entry((owner, port)).or_insert_with(free_port)
    }

    /// Host names and ports: compose's names of other services, this container's own
    /// addresses, and bash's `/dev/tcp/host/port`.
    fn addresses(&self, service: &str, value: &str) -> String {
        static DEV_TCP: OnceLock<Regex> = OnceLock::new();
        static ADDR: OnceLock<Regex> = OnceLock::new();
        let dev_tcp = DEV_TCP.get_or_init(|| Regex::new(r"/dev/tcp/(?P<host>[^/\s]+)/(?P<port>\d+)").unwrap());
        let addr = ADDR.get_or_init(|| {
            Regex::new(r"(?P<lead>^|[/@,=\s])(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<port>\d{2,5})\b").unwrap()
        });
        // (host, port) → local host:port, or None when the host is not one compose knows.
        let local = |host: &str, port: &str| -> Option<(String, String)> {
            let port: u16 = port.parse().ok()?;
            match host {
                "kafka" => brokers().split_once(':').map(|(h, p)| (h.to_string(), p.to_string())),
                "registry" => self
                    .registry_authority
                    .split_once(':')
                    .map(|(h, p)| (h.to_string(), p.to_string())),
                "0.0.0.0" | "127.0.0.1" | "localhost" => {
                    Some(("127.0.0.1".into(), self.port(service, port).to_string()))
                }
                other if self.compose.service(other).is_some() => {
                    Some(("127.0.0.1".into(), self.port(other, port).to_string()))
                }
                _ => None,
            }
        };
        let value = dev_tcp.replace_all(value, |c: &regex::Captures| match local(&c["host"], &c["port"]) {
            Some((h, p)) => format!("/dev/tcp/{h}/{p}"),
            None => c[0].to_string(),
        });
        addr.replace_all(&value, |c: &regex::Captures| {
            match (&c["host"], local(&c["host"], &c["port"])) {
                // The broker list may name several brokers: it replaces the whole address.
                ("kafka", Some(_)) => format!("{}{}", &c["lead"], brokers()),
                (_, Some((h, p))) => format!("{}{h}:{p}", &c["lead"]),
                (_, None) => c[0].to_string(),
            }
        })
        .into_owned()
    }

    /// The local place of an absolute path of `service`'s container.
    fn path(&self, service: &Service, path: &str) -> PathBuf {
        let rest = |prefix: &str| {
            path[prefix.trim_end_matches('/').len()..]
                .trim_start_matches('/')
                .to_string()
        };
        if let Some((volume, target)) = service
            .volumes
            .iter()
            .filter(|(_, t)| under(path, t))
            .max_by_key(|(_, t)| t.len())
        {
            let dir = self.dir.join("volumes").join(volume.trim_start_matches(['.', '/']));
            std::fs::create_dir_all(&dir).unwrap();
            return dir.join(rest(target));
        }
        if let Some(local) = image_file(&self.image, path) {
            return local;
        }
        if let Some(dest) = self.image.staged.iter().find(|d| under(path, d)) {
            return self.bin_dir.join(rest(dest));
        }
        if let Some(venv) = self.image.venv().filter(|v| under(path, v)) {
            return self.venv.join(rest(venv));
        }
        if SYSTEM_DIRS.iter().any(|d| under(path, d)) {
            return PathBuf::from(path);
        }
        // The container's own file system.
        let layer = self.dir.join("layers").join(&service.name);
        let local = layer.join(path.trim_start_matches('/'));
        if self
            .image
            .homes
            .iter()
            .chain(self.image.made.iter().map(|(d, _)| d))
            .any(|d| d == path)
        {
            std::fs::create_dir_all(&local).unwrap();
        }
        local
    }

    fn translate(&self, service: &Service, value: &str) -> String {
        let value = self.addresses(&service.name, value);
        if value.starts_with('/') {
            self.path(service, &value).display().to_string()
        } else {
            value
        }
    }

    /// A catalog of the image as the service would read it: repositories in the local
    /// volumes, deploy ports in the network of the service that deploys (the rollout).
    fn catalog(&self, service: &Service, image_path: &str) -> PathBuf {
        let text = std::fs::read_to_string(image_file(&self.image, image_path).unwrap()).unwrap();
        let deployer = self
            .compose
            .image_services()
            .into_iter()
            .find(|s| s.command.first().is_some_and(|c| c == "selfheal-rollout"))
            .map(|s| s.name.clone())
            .unwrap();
        let repo = Regex::new(r#"(?m)^(\s*repository\s*=\s*)"([^"]+)""#).unwrap();
        let port = Regex::new(r"(?m)^(\s*(?:canary_)?port\s*=\s*)(\d+)").unwrap();
        let repos = catalog_repositories(&text, image_path);
        let mut i = 0;
        let text = repo.replace_all(&text, |c: &regex::Captures| {
            let local = self.path(service, &repos[i]);
            i += 1;
            format!("{}\"{}\"", &c[1], local.display())
        });
        let text = port.replace_all(&text, |c: &regex::Captures| {
            format!("{}{}", &c[1], self.port(&deployer, c[2].parse().unwrap()))
        });
        let path = self.dir.join("catalogs").join(format!("{}.toml", service.name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text.as_bytes()).unwrap();
        path
    }

    /// The service's environment: the image's ENV, then compose's, translated, plus the
    /// shared test bed's topic prefix and group ids.
    fn env(&self, service: &Service) -> Vec<(String, String)> {
        let home = self.image.homes.first().cloned().unwrap_or_else(|| "/root".into());
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), BASE_PATH.into());
        env.insert("HOME".into(), home);
        for (k, v) in self.image.env.iter().map(|(k, v)| (k, v)).chain(&service.environment) {
            env.insert(k.clone(), v.replace("$PATH", BASE_PATH));
        }
        let mut out = Vec::new();
        for (k, v) in env {
            let local = match k.as_str() {
                "PATH" => v
                    .split(':')
                    .map(|p| self.path(service, p).display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                "SELFHEAL_CATALOG" => self.catalog(service, &v).display().to_string(),
                "SELFHEAL_GROUP_ID" => format!("{}{v}", self.prefix),
                _ => self.translate(service, &v),
            };
            out.push((k, local));
        }
        out.push(("SELFHEAL_TOPIC_PREFIX".into(), self.prefix.clone()));
        out
    }

    fn workdir(&self, service: &Service) -> PathBuf {
        let dir = self.path(service, self.image.workdir.as_deref().unwrap_or("/"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A program of the container, found on the container's (translated) PATH.
    fn program(&self, env: &[(String, String)], program: &str) -> PathBuf {
        let path = &env.iter().find(|(k, _)| k == "PATH").unwrap().1;
        path.split(':')
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{program}` is not on the container's PATH ({path})"))
    }

    fn command(&self, service: &Service, words: &[String]) -> Command {
        let env = self.env(service);
        let mut cmd = Command::new(self.program(&env, &words[0]));
        cmd.args(words[1..].iter().map(|a| self.translate(service, a)))
            .env_clear()
            .envs(env)
            .current_dir(self.workdir(service))
            .stdin(Stdio::null());
        cmd
    }

    fn spawn(&self, service: &Service) -> Proc {
        let log = self.dir.join(format!("{}.log", service.name));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = self.command(service, &service.command);
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        eprintln!("compose: starting {}: {cmd:?}", service.name);
        Proc {
            name: service.name.clone(),
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    /// Runs the service's healthcheck until it passes.
    async fn wait_healthy(&self, service: &Service, timeout: Duration) {
        let check = service.healthcheck.clone().unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self
                .command(service, &check)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} is not healthy after {timeout:?}",
                service.name
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Waits for a one-shot service to exit successfully.
async fn wait_completed(proc: &mut Proc, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
            assert!(status.success(), "{} failed ({status}):\n{log}", proc.name);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not finish within {timeout:?}",
            proc.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The compose services in an order that respects `depends_on`, file order otherwise.
fn start_order(compose: &Compose) -> Vec<String> {
    let services: Vec<&Service> = compose.image_services();
    let mut order: Vec<String> = Vec::new();
    while order.len() < services.len() {
        let next = services
            .iter()
            .find(|s| {
                !order.contains(&s.name)
                    && s.depends_on.keys().all(|d| {
                        order.contains(d)
                            || TESTBED_SERVICES.contains(&d.as_str())
                            || !services.iter().any(|x| &x.name == d)
                    })
            })
            .unwrap_or_else(|| {
                panic!(
                    "depends_on has a cycle among {:?}",
                    services.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            });
        order.push(next.name.clone());
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_services_heal_the_demo_incident() {
    require_broker().await;
    let compose = parse_compose(&read("docker-compose.yml")).unwrap();
    let image = parse_dockerfile(&read("Dockerfile"));
    let bed = Bed::new(compose.clone(), image);
    eprintln!("compose: test bed in {}", bed.dir.display());

    let mut procs: HashMap<String, Proc> = HashMap::new();
    let mut healthy: BTreeSet<String> = BTreeSet::new();
    for name in start_order(&compose) {
        let service = bed.service(&name).clone();
        for (dep, condition) in &service.depends_on {
            if TESTBED_SERVICES.contains(&dep.as_str()) {
                continue; // require_broker() saw the broker; the registry answers the services' retries
            }
            match condition.as_str() {
                "service_completed_successfully" => {
                    wait_completed(procs.get_mut(dep).unwrap(), Duration::from_secs(60)).await
                }
                "service_healthy" if !healthy.contains(dep) => {
                    bed.wait_healthy(bed.service(dep), Duration::from_secs(180)).await;
                    healthy.insert(dep.clone());
                }
                _ => {}
            }
        }
        procs.insert(name.clone(), bed.spawn(&service));
    }

    let codec = Codec::new(&registry_url()).unwrap();
    let outcome = next_outcome(
        &codec,
        &format!("{}outcomes", bed.prefix),
        &[],
        Duration::from_secs(300),
    )
    .await;
    // Every long-running service is still up (one-shot services are those others wait to complete).
    let one_shots: BTreeSet<&String> = compose
        .services
        .iter()
        .flat_map(|s| s.depends_on.iter())
        .filter(|(_, condition)| condition.as_str() == "service_completed_successfully")
        .map(|(dep, _)| dep)
        .collect();
    for (name, proc) in procs.iter_mut() {
        if !one_shots.contains(name) {
            assert!(proc.child.try_wait().unwrap().is_none(), "{name} exited before the end");
        }
    }
    assert_eq!(outcome.status, OutcomeStatus::Healed, "{}", outcome.summary);
    assert_eq!(outcome.service, "pricing-api");
    let root = outcome.root_cause.clone().expect("root cause");
    assert_eq!(
        (root.file.as_str(), root.line, root.function.as_str()),
        ("pricing_logic.py", 14, "calc")
    );
    let validation = outcome.validation.clone().expect("validation");
    assert!(
        validation.failed_before && validation.passed_after && validation.suite_passed,
        "{validation:?}"
    );
    assert_eq!(
        outcome.rollout.clone().expect("rollout").final_step,
        RolloutStep::Promoted
    );

    // The fix is in the repository of the `repos` volume: on its branch, and main after promotion.
    let repo = bed.path(bed.service("repairer"), "/srv/selfheal/repos/pricing-api");
    let fix = outcome.fix.clone().expect("fix");
    let branch = fix.branch.clone().expect("branch");
    assert_eq!(branch, format!("selfheal/{}", outcome.incident_id));
    assert!(git(&repo, &["show", &format!("{branch}:pricing_logic.py")]).contains("if d != 0"));
    assert_eq!(git(&repo, &["rev-parse", "main"]), fix.commit.clone().unwrap());

    // The learner's API, at the address compose gives it, remembers the fix.
    let learner = format!("http://127.0.0.1:{}", bed.port("learner", 8090));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let knowledge: serde_json::Value = reqwest::get(format!("{learner}/v1/fixes/{}", outcome.fingerprint))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if knowledge["fixes"][0]["healed"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the learner did not record the fix: {knowledge}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Stop the traffic first so the rollout stops a quiet service.
    if let Some(mut traffic) = procs.remove("traffic") {
        traffic.stop();
    }
}
