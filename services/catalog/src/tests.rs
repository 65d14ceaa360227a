//! Unit tests of catalog parsing, defaults and validation.

// Tests fail loudly on purpose; the workspace lint is about production code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const FULL: &str = r#"
[services.pricing-api]
repository = "repos/pricing-api"
language = "Python"
source_root = "./src/"
test_command = ["python", "-m", "pytest", "-q"]
test_timeout_secs = 60
test_memory_mb = 512
protected_globs = [".github/**", "deploy/**", "**/*.lock"]
max_diff_lines = 30
autonomy = "auto"
deployer = "kubernetes"
[services.pricing-api.deploy]
command = ["python", "app.py"]
port = 8081
canary_port = 8082
namespace = "shop"
rollout = true
[services.pricing-api.extra_env]
PYTHONHASHSEED = "0"

[services.minimal]
repository = "/srv/git/minimal"
language = "go"
test_command = ["go", "test", "./..."]
"#;

/// A minimal valid service table with one line replaced or added, for validation tests.
fn one_service(extra: &str) -> String {
    format!("[services.svc]\nrepository = \"r\"\nlanguage = \"python\"\ntest_command = [\"pytest\"]\n{extra}\n")
}

fn invalid_field(text: &str) -> (String, String, String) {
    match Catalog::from_toml_str(text, "/base") {
        Err(CatalogError::Invalid {
            service,
            field,
            problem,
            ..
        }) => (service, field, problem),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn full_entry_is_parsed_with_every_field() {
    let catalog = Catalog::from_toml_str(FULL, "/etc/selfheal").unwrap();
    assert_eq!(catalog.len(), 2);
    assert_eq!(catalog.names().collect::<Vec<_>>(), ["minimal", "pricing-api"]);
    let entry = catalog.service("pricing-api").unwrap();
    assert_eq!(entry.name, "pricing-api");
    assert_eq!(entry.repository, PathBuf::from("/etc/selfheal/repos/pricing-api"));
    assert_eq!(entry.language, "python", "language is lower-cased");
    assert_eq!(entry.source_root, "src", "source root is normalised");
    assert_eq!(entry.source_dir(), PathBuf::from("/etc/selfheal/repos/pricing-api/src"));
    assert_eq!(entry.test_command, ["python", "-m", "pytest", "-q"]);
    assert_eq!(entry.test_timeout, Duration::from_secs(60));
    assert_eq!(entry.test_memory_mb, 512);
    assert_eq!(entry.protected_globs, [".github/**", "deploy/**", "**/*.lock"]);
    assert_eq!(entry.max_diff_lines, 30);
    assert_eq!(entry.autonomy, Autonomy::Auto);
    assert_eq!(entry.deployer, "kubernetes");
    assert_eq!(entry.extra_env.get("PYTHONHASHSEED").map(String::as_str), Some("0"));
    assert_eq!(entry.deploy_int("port").unwrap(), Some(8081));
    assert_eq!(entry.deploy_str("namespace").unwrap(), Some("shop"));
    assert_eq!(entry.deploy_bool("rollout").unwrap(), Some(true));
    assert_eq!(
        entry.deploy_strings("command").unwrap(),
        Some(vec!["python".to_string(), "app.py".to_string()])
    );
    assert_eq!(entry.deploy_int("missing").unwrap(), None);
}

#[test]
fn defaults_fill_optional_fields() {
    let catalog = Catalog::from_toml_str(FULL, "/etc/selfheal").unwrap();
    let entry = catalog.service("minimal").unwrap();
    assert_eq!(
        entry.repository,
        PathBuf::from("/srv/git/minimal"),
        "absolute paths stay"
    );
    assert_eq!(entry.source_root, ".");
    assert_eq!(entry.source_dir(), PathBuf::from("/srv/git/minimal"));
    assert_eq!(entry.test_timeout, Duration::from_secs(DEFAULT_TEST_TIMEOUT_SECS));
    assert_eq!(entry.test_memory_mb, DEFAULT_TEST_MEMORY_MB);
    assert!(entry.protected_globs.is_empty());
    assert_eq!(entry.max_diff_lines, DEFAULT_MAX_DIFF_LINES);
    assert_eq!(entry.autonomy, Autonomy::Manual);
    assert_eq!(entry.deployer, DEFAULT_DEPLOYER);
    assert!(entry.deploy.is_empty());
    assert!(entry.extra_env.is_empty());
    assert_eq!(
        entry,
        &ServiceEntry::new(
            "minimal",
            "/srv/git/minimal",
            "go",
            vec!["go".into(), "test".into(), "./...".into()]
        )
    );
}

#[test]
fn unknown_service_is_none_and_empty_catalog_is_valid() {
    let catalog = Catalog::from_toml_str(FULL, "/").unwrap();
    assert!(catalog.service("checkout").is_none());
    let empty = Catalog::from_toml_str("", "/").unwrap();
    assert!(empty.is_empty());
    assert!(empty.path().is_none());
}

#[test]
fn empty_test_command_names_service_and_field() {
    let text = "[services.pricing-api]\nrepository = \"r\"\nlanguage = \"python\"\ntest_command = []\n";
    let (service, field, problem) = invalid_field(text);
    assert_eq!((service.as_str(), field.as_str()), ("pricing-api", "test_command"));
    assert!(problem.contains("empty"), "{problem}");
    let message = Catalog::from_toml_str(text, "/").unwrap_err().to_string();
    assert!(
        message.contains("pricing-api") && message.contains("test_command"),
        "{message}"
    );
}

#[test]
fn blank_program_is_rejected() {
    let (_, field, _) =
        invalid_field("[services.svc]\nrepository = \"r\"\nlanguage = \"python\"\ntest_command = [\" \", \"x\"]\n");
    assert_eq!(field, "test_command");
}

#[test]
fn unknown_autonomy_names_service_and_field() {
    let (service, field, problem) = invalid_field(&one_service("autonomy = \"yolo\""));
    assert_eq!((service.as_str(), field.as_str()), ("svc", "autonomy"));
    assert!(problem.contains("yolo"), "{problem}");
}

#[test]
fn fix_sources_default_to_all_and_parse_as_written() {
    let catalog = Catalog::from_toml_str(&one_service(""), "/base").unwrap();
    let entry = catalog.service("svc").unwrap();
    assert_eq!(entry.fix_sources, ALL_FIX_SOURCES.to_vec());
    assert!(entry.allows(FixSource::Model));

    let catalog = Catalog::from_toml_str(
        &one_service("fix_sources = [\"Template\", \"learned\", \"template\"]"),
        "/base",
    )
    .unwrap();
    let entry = catalog.service("svc").unwrap();
    assert_eq!(entry.fix_sources, vec![FixSource::Template, FixSource::Learned]);
    assert!(
        !entry.allows(FixSource::Model),
        "a service that lists no model never gets one"
    );
    assert_eq!("llm".parse::<FixSource>(), Ok(FixSource::Model));
}

#[test]
fn unknown_or_empty_fix_sources_name_service_and_field() {
    let (service, field, problem) = invalid_field(&one_service("fix_sources = [\"gpt\"]"));
    assert_eq!((service.as_str(), field.as_str()), ("svc", "fix_sources"));
    assert!(problem.contains("gpt"), "{problem}");
    let (_, field, problem) = invalid_field(&one_service("fix_sources = []"));
    assert_eq!(field, "fix_sources");
    assert!(problem.contains("at least one"), "{problem}");
}

#[test]
fn autonomy_parses_case_insensitively_and_round_trips() {
    assert_eq!("AUTO".parse::<Autonomy>(), Ok(Autonomy::Auto));
    assert_eq!("manual".parse::<Autonomy>(), Ok(Autonomy::Manual));
    assert_eq!(Autonomy::Auto.to_string(), "auto");
    assert_eq!(Autonomy::default(), Autonomy::Manual);
}

#[test]
fn missing_required_fields_are_named() {
    let (_, field, _) = invalid_field("[services.svc]\nlanguage = \"python\"\ntest_command = [\"t\"]\n");
    assert_eq!(field, "repository");
    let (_, field, _) = invalid_field("[services.svc]\nrepository = \"r\"\ntest_command = [\"t\"]\n");
    assert_eq!(field, "language");
    let (_, field, _) = invalid_field("[services.svc]\nrepository = \"r\"\nlanguage = \"go\"\n");
    assert_eq!(field, "test_command");
}

#[test]
fn unknown_language_and_deployer_are_rejected() {
    let (_, field, problem) =
        invalid_field("[services.svc]\nrepository = \"r\"\nlanguage = \"cobol\"\ntest_command = [\"t\"]\n");
    assert_eq!(field, "language");
    assert!(problem.contains("cobol") && problem.contains("python"), "{problem}");
    let (_, field, problem) = invalid_field(&one_service("deployer = \"ftp\""));
    assert_eq!(field, "deployer");
    assert!(problem.contains("local-process"), "{problem}");
}

#[test]
fn source_root_must_stay_inside_the_repository() {
    for root in ["../elsewhere", "/abs", "src/../../x", "C:/code"] {
        let (_, field, _) = invalid_field(&one_service(&format!("source_root = \"{root}\"")));
        assert_eq!(field, "source_root", "{root}");
    }
    for (root, normalised) in [("", "."), ("./", "."), ("src//app/", "src/app"), ("./lib", "lib")] {
        let catalog = Catalog::from_toml_str(&one_service(&format!("source_root = \"{root}\"")), "/").unwrap();
        assert_eq!(catalog.service("svc").unwrap().source_root, normalised, "{root}");
    }
}

#[test]
fn limits_must_be_positive() {
    for (line, expected) in [
        ("test_timeout_secs = 0", "test_timeout_secs"),
        ("test_timeout_secs = 100000", "test_timeout_secs"),
        ("test_memory_mb = 0", "test_memory_mb"),
        ("max_diff_lines = 0", "max_diff_lines"),
        ("protected_globs = [\"\"]", "protected_globs"),
        ("protected_globs = [\"/etc/**\"]", "protected_globs"),
        ("extra_env = { \"A=B\" = \"1\" }", "extra_env"),
    ] {
        let (_, field, _) = invalid_field(&one_service(line));
        assert_eq!(field, expected, "{line}");
    }
}

#[test]
fn wrong_types_and_unknown_keys_are_parse_errors_with_a_line() {
    for (line, needle) in [
        ("test_timeout_secs = \"60\"", "test_timeout_secs"),
        ("max_difflines = 3", "max_difflines"),
        ("test_command = \"pytest -q\"", "test_command"),
    ] {
        let text = format!("[services.svc]\nrepository = \"r\"\nlanguage = \"python\"\n{line}\n");
        match Catalog::from_toml_str(&text, "/") {
            Err(CatalogError::Parse { message, .. }) => {
                assert!(message.contains("line 4"), "{line}: {message}");
                assert!(message.contains(needle), "{line}: {message}");
            }
            other => panic!("{line}: expected a parse error, got {other:?}"),
        }
    }
    assert!(matches!(
        Catalog::from_toml_str("[service.x]\n", "/"),
        Err(CatalogError::Parse { .. })
    ));
}

#[test]
fn deploy_accessors_report_wrong_types() {
    let catalog = Catalog::from_toml_str(FULL, "/").unwrap();
    let entry = catalog.service("pricing-api").unwrap();
    let err = entry.deploy_int("namespace").unwrap_err();
    assert_eq!(
        err.to_string(),
        "service `pricing-api`, field `deploy.namespace`: expected an integer"
    );
    assert!(entry.deploy_str("port").is_err());
    assert!(entry.deploy_strings("port").is_err());
    assert!(entry.deploy_bool("port").is_err());
}

#[test]
fn load_resolves_repositories_against_the_file_directory() {
    let dir = std::env::temp_dir().join(format!("selfheal-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("catalog.toml");
    std::fs::write(&file, FULL).unwrap();
    let catalog = Catalog::load(&file).unwrap();
    assert_eq!(catalog.path(), Some(file.as_path()));
    assert_eq!(
        catalog.service("pricing-api").unwrap().repository,
        dir.join("repos/pricing-api")
    );
    std::fs::write(
        &file,
        "[services.svc]\nrepository = \"r\"\nlanguage = \"python\"\ntest_command = []\n",
    )
    .unwrap();
    let message = Catalog::load(&file).unwrap_err().to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();

    match Catalog::load(dir.join("absent.toml")) {
        Err(CatalogError::Read { path, .. }) => assert!(path.ends_with("absent.toml")),
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn from_services_validates_and_rejects_duplicates() {
    let entry = ServiceEntry::new("svc", "/r", "python", vec!["pytest".into()]);
    let catalog = Catalog::from_services([entry.clone()]).unwrap();
    assert_eq!(catalog.service("svc"), Some(&entry));
    assert!(Catalog::from_services([entry.clone(), entry.clone()]).is_err());
    let broken = ServiceEntry {
        test_command: Vec::new(),
        ..entry
    };
    assert!(matches!(
        Catalog::from_services([broken]),
        Err(CatalogError::Invalid { field, .. }) if field == "test_command"
    ));
}

#[test]
fn the_example_catalog_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog.toml");
    let catalog = Catalog::load(&path).unwrap();
    let entry = catalog.service("pricing-api").unwrap();
    assert!(entry.repository.ends_with("examples/pricing-api"));
    assert_eq!(entry.language, "python");
    assert_eq!(entry.deployer, "local-process");
    assert!(entry.deploy_strings("command").unwrap().is_some());
    assert!(entry.deploy_int("port").unwrap().is_some());
}

#[test]
fn code_host_table_is_parsed_with_defaults() {
    let text = one_service(
        "[services.svc.code_host]\nprovider = \"Gitea\"\nbase_url = \"http://127.0.0.1:3300/\"\nrepo = \"team/svc\"\ntoken_file = \"secrets/token\"\nreviewers = [\"alice\", \"bob\"]\n",
    );
    let catalog = Catalog::from_toml_str(&text, "/base").unwrap();
    let host = catalog.service("svc").unwrap().code_host.clone().unwrap();
    assert_eq!(host.provider, "gitea");
    assert_eq!(host.base_url, "http://127.0.0.1:3300");
    assert_eq!(host.repo, "team/svc");
    assert_eq!(
        host.token,
        TokenSource::File(Path::new("/base/secrets/token").to_path_buf())
    );
    assert_eq!(host.base_branch, DEFAULT_BASE_BRANCH);
    assert_eq!(
        host.approvers,
        vec!["alice".to_string(), "bob".to_string()],
        "approvers default to the reviewers"
    );
    assert!(host.is_approver("ALICE") && !host.is_approver("mallory"));
    assert!(!host.merge);
    assert!(
        Catalog::from_toml_str(&one_service(""), "/base")
            .unwrap()
            .service("svc")
            .unwrap()
            .code_host
            .is_none()
    );
}

#[test]
fn code_host_mistakes_name_the_field() {
    let table = |body: &str| one_service(&format!("[services.svc.code_host]\n{body}"));
    let ok = "provider = \"gitea\"\nbase_url = \"https://git.example.com\"\nrepo = \"o/r\"\n";
    for (body, field) in [
        (ok.to_string(), "code_host.token_env"),
        (format!("{ok}token_env = \"T\"\ntoken_file = \"f\"\n"), "code_host.token_env"),
        (
            "provider = \"sourcehut\"\nbase_url = \"https://x\"\nrepo = \"o/r\"\ntoken_env = \"T\"\n".to_string(),
            "code_host.provider",
        ),
        (
            "provider = \"gitea\"\nbase_url = \"https://bot:secret@git.example.com\"\nrepo = \"o/r\"\ntoken_env = \"T\"\n"
                .to_string(),
            "code_host.base_url",
        ),
        (
            "provider = \"gitea\"\nbase_url = \"ftp://x\"\nrepo = \"o/r\"\ntoken_env = \"T\"\n".to_string(),
            "code_host.base_url",
        ),
        (
            "provider = \"gitea\"\nbase_url = \"https://x\"\nrepo = \"just-a-name\"\ntoken_env = \"T\"\n".to_string(),
            "code_host.repo",
        ),
        (format!("{ok}token_env = \"T\"\nreviewers = [\"a b\"]\n"), "code_host.reviewers"),
    ] {
        let (service, got, problem) = invalid_field(&table(&body));
        assert_eq!((service.as_str(), got.as_str()), ("svc", field), "{body}: {problem}");
        assert!(!problem.contains("secret"), "a credential in the URL is not repeated: {problem}");
    }
    // A typo in the table is not silently ignored.
    assert!(Catalog::from_toml_str(&table(&format!("{ok}token_env = \"T\"\nreviewer = [\"a\"]\n")), "/b").is_err());
}
