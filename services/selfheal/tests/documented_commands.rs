//! Every command a person is told to type works: the `selfheal` command tree passes clap's own
//! consistency checks, and every `selfheal …`, `scripts/demo.sh …` and `selfheal-<service> …`
//! command line written in the repository's Markdown files and in the comments of
//! `scripts/*.sh` is parsed by the real parser (`selfheal`'s [`Cli`]; a service binary's own
//! `--help`). The lines are found in the files, so a new example is checked without editing
//! this test.
//!
//! What counts as a command line: a line of a fenced code block, a `` `code span` ``, or a
//! script comment that starts with the command (`#   scripts/demo.sh --json`), whose first word
//! (after `VAR=value` assignments) is `selfheal`, `selfheal-<binary>` or `…scripts/demo.sh`.
//! Usage notation is read as a person reads it: `[--flag]` is taken, `<incident-id>`,
//! `FILE`, `N` and `$VAR` get a sample value, `…`/`...` is dropped. A code span naming only a
//! command (`` `selfheal pending` ``, `` `selfheal record` ``) must name one that exists.
//!
//! The service binaries are run from the build directory of this test (`cargo build
//! --workspace` first; CI builds everything before testing).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use selfheal::cmd::Cli;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where cargo put this test's binaries (`target/<profile>/`), from the test executable.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// The command tree.

#[test]
fn the_selfheal_command_tree_passes_clap_debug_asserts() {
    // clap checks only when it was compiled with debug assertions (the dev profile, which tests
    // use): prove the check is live here, or this test could not fail.
    let clash = std::panic::catch_unwind(|| {
        clap::Command::new("x")
            .arg(clap::Arg::new("timeout_secs").long("timeout-secs"))
            .arg(clap::Arg::new("timeout_secs").long("llm-timeout-secs"))
            .debug_assert();
    });
    assert!(
        clash.is_err(),
        "clap's debug asserts are compiled out: this test checks nothing"
    );
    // Panics naming the argument when two arguments share an id, a default is not a possible
    // value, a short flag is used twice, … in any subcommand.
    Cli::command().debug_assert();
}

#[test]
fn every_subcommand_parses_with_its_defaults_and_answers_help() {
    // Each leaf subcommand with only its required arguments (sample values): the derive's
    // FromArgMatches runs, which is where a second argument under one id showed ("required
    // argument was not provided: timeout_secs" from `selfheal demo`).
    let root = Cli::command();
    let mut leaves = Vec::new();
    collect_leaves(&root, vec![], &mut leaves);
    assert!(leaves.len() >= 12, "{leaves:?}");
    for (path, cmd) in leaves {
        let mut argv: Vec<String> = std::iter::once("selfheal".to_string())
            .chain(path.iter().cloned())
            .collect();
        for arg in cmd.get_arguments() {
            if arg.is_required_set() && arg.get_env().is_none_or(|e| std::env::var_os(e).is_none()) {
                if let Some(long) = arg.get_long().filter(|_| !arg.is_positional()) {
                    argv.push(format!("--{long}"));
                }
                argv.push("1".into());
            }
        }
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("`{}` does not parse:\n{e}", argv.join(" "));
        }
        let mut help = argv[..=path.len()].to_vec();
        help.push("--help".into());
        let e = Cli::try_parse_from(&help).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp, "`{}`: {e}", help.join(" "));
    }
}

fn collect_leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    let subs: Vec<_> = cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
    if subs.is_empty() {
        out.push((path, cmd.clone()));
        return;
    }
    for s in subs {
        let mut p = path.clone();
        p.push(s.get_name().to_string());
        collect_leaves(s, p, out);
    }
}

#[test]
fn selfheal_answers_version() {
    let e = Cli::try_parse_from(["selfheal", "--version"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DisplayVersion);
    assert_eq!(e.to_string().trim(), format!("selfheal {}", env!("CARGO_PKG_VERSION")));
    // And so does every subcommand (propagate_version).
    let e = Cli::try_parse_from(["selfheal", "demo", "--version"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DisplayVersion);
}

// ---------------------------------------------------------------------------------------------
// Finding the command lines.

/// Where a command line was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A line of a fenced code block, or a script comment that is an example.
    Block,
    /// A `code span` inside prose.
    Inline,
}

/// One command line found in a file.
#[derive(Debug, Clone)]
struct Found {
    file: PathBuf,
    line: usize,
    text: String,
    context: Context,
}

/// A word of a command line, with whether any of it was quoted (quoted text is literal).
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    quoted: bool,
    /// `[` / `]` of usage notation around the word, removed.
    bracketed: bool,
}

/// Splits a shell line into words, honouring '…', "…" and backslashes; usage brackets
/// outside quotes are removed from the ends of words.
fn words(s: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                quoted = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(finish_word(std::mem::take(&mut cur), quoted));
                }
                in_word = false;
                quoted = false;
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(finish_word(cur, quoted));
    }
    out
}

fn finish_word(text: String, quoted: bool) -> Word {
    let mut t = text.as_str();
    let mut bracketed = false;
    while let Some(r) = t.strip_prefix('[') {
        t = r;
        bracketed = true;
    }
    while let Some(r) = t.strip_suffix(']') {
        t = r;
        bracketed = true;
    }
    Word {
        text: t.to_string(),
        quoted,
        bracketed,
    }
}

/// The parts of a line between `&&`, `||`, `|` and `;`, without a trailing ` # comment`
/// (quotes respected).
fn segments(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut single, mut double) = (false, false);
    let mut chars = line.chars().peekable();
    let mut prev_space = true;
    while let Some(c) = chars.next() {
        if !single && !double {
            match c {
                '#' if prev_space => break,
                '|' | '&' | ';' => {
                    if matches!(chars.peek(), Some('|') | Some('&')) {
                        chars.next();
                    } else if c == '&' {
                        cur.push(c); // `2>&1`, a background `&`: keep going
                        continue;
                    }
                    out.push(std::mem::take(&mut cur));
                    prev_space = true;
                    continue;
                }
                _ => {}
            }
        }
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
        prev_space = c.is_whitespace();
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The `code spans` of a line of Markdown.
fn code_spans(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        match after.find(&fence) {
            Some(end) => {
                out.push(after[..end].trim().to_string());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    out
}

/// Candidate command lines of one Markdown file.
fn markdown_candidates(file: &Path, text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    let mut shell = false;
    let mut plain = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str()) {
                fence = None;
            } else if shell && !(plain && is_drawing(trimmed)) {
                let cmd = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
                out.push(Found {
                    file: file.to_path_buf(),
                    line: i + 1,
                    text: cmd.to_string(),
                    context: Context::Block,
                });
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(trimmed[..3].to_string());
            // Shell blocks hold commands; ```text, ```toml, ```python… hold output and files.
            let lang = trimmed[3..].trim().to_ascii_lowercase();
            shell = matches!(lang.as_str(), "" | "sh" | "bash" | "shell" | "console" | "zsh");
            plain = lang.is_empty();
            continue;
        }
        for span in code_spans(line) {
            out.push(Found {
                file: file.to_path_buf(),
                line: i + 1,
                text: span,
                context: Context::Inline,
            });
        }
    }
    out
}

/// A line of a diagram (box drawing, arrows) in a code block without a language.
fn is_drawing(line: &str) -> bool {
    line.chars()
        .any(|c| ('\u{2500}'..='\u{259f}').contains(&c) || matches!(c, '►' | '◄' | '▲' | '▼' | '→' | '←'))
}

/// Candidate command lines of a shell script's comments: an indented example
/// (`#   scripts/demo.sh --json`) or a `code span` in a comment.
fn script_candidates(file: &Path, text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        if comment.starts_with('!') {
            continue;
        }
        // An example is indented (`#   scripts/demo.sh --json`); `# scripts/demo.sh runs…` is prose.
        if comment.starts_with("  ") || comment.starts_with('\t') {
            out.push(Found {
                file: file.to_path_buf(),
                line: i + 1,
                text: comment.trim().to_string(),
                context: Context::Block,
            });
        }
        for span in code_spans(comment) {
            out.push(Found {
                file: file.to_path_buf(),
                line: i + 1,
                text: span,
                context: Context::Inline,
            });
        }
    }
    out
}

/// Every Markdown file of the repository (not build output, not hidden directories) and
/// every `scripts/*.sh`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if !name.starts_with('.')
                    && !matches!(name.as_str(), "target" | "node_modules" | "__pycache__" | "venv")
                {
                    stack.push(path);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    for e in std::fs::read_dir(root.join("scripts")).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".sh") {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Which program a command line runs.
#[derive(Debug, Clone, PartialEq)]
enum Program {
    /// `selfheal` (scripts/demo.sh is `selfheal demo`).
    Selfheal,
    /// A workspace binary other than `selfheal`.
    Service(String),
}

/// A command line to check: the program and its arguments with samples in place.
#[derive(Debug, Clone)]
struct Example {
    found: Found,
    program: Program,
    args: Vec<String>,
    /// Whether the first argument is a placeholder (`selfheal <command> --help`).
    any_subcommand: bool,
    /// Whether the arguments used usage notation only (a code span naming a command).
    words_only: bool,
}

/// A sample value for a placeholder (`<incident-id>`, `FILE`, `N`, `$VAR`, `[FINGERPRINT]`).
fn sample(name: &str) -> String {
    let n = name
        .trim_matches(|c| c == '<' || c == '>' || c == '$' || c == '{' || c == '}' || c == '"')
        .to_ascii_lowercase();
    if n.contains("url") || n.contains("endpoint") {
        "http://127.0.0.1:8090".into()
    } else if n.contains("addr") {
        "127.0.0.1:8090".into()
    } else if n == "n"
        || ["secs", "count", "num", "port", "ms", "rate"]
            .iter()
            .any(|k| n.contains(k))
    {
        "1".into()
    } else {
        format!("sample-{}", n.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))
    }
}

/// Whether an unquoted word is a placeholder of usage notation.
fn is_placeholder(w: &str) -> bool {
    (w.starts_with('<') && w.ends_with('>') && w.len() > 2)
        || w.starts_with('$')
        || (w.len() <= 24
            && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
}

/// Names of the workspace's binaries, from the members' manifests (`services_only`: the
/// binaries a person runs, not the test crate's helpers).
fn workspace_binaries(root: &Path, services_only: bool) -> Vec<String> {
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let mut out = Vec::new();
    for m in manifest["workspace"]["members"].as_array().unwrap() {
        let member = m.as_str().unwrap();
        if services_only && !member.starts_with("services/") {
            continue;
        }
        let dir = root.join(member);
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let pkg: toml::Value = toml::from_str(&text).unwrap();
        if let Some(bins) = pkg.get("bin").and_then(|b| b.as_array()) {
            out.extend(bins.iter().filter_map(|b| b.get("name")?.as_str().map(String::from)));
        } else if dir.join("src/main.rs").exists() {
            out.push(pkg["package"]["name"].as_str().unwrap().to_string());
        }
    }
    out.sort();
    out
}

/// The command lines among the candidates.
fn examples(found: Vec<Found>, binaries: &[String]) -> Vec<Example> {
    let mut out = Vec::new();
    for f in found {
        for seg in segments(&f.text) {
            let mut ws = words(&seg);
            // `VAR=value cmd`, `sudo cmd`, `exec cmd`, `bash script`.
            while let Some(first) = ws.first() {
                let t = &first.text;
                let assignment = t
                    .split_once('=')
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                if assignment || matches!(t.as_str(), "sudo" | "exec" | "bash" | "sh" | "env" | "time") {
                    ws.remove(0);
                } else {
                    break;
                }
            }
            let Some(first) = ws.first() else { continue };
            if first.quoted && !first.text.contains('/') {
                continue;
            }
            let base = first.text.rsplit('/').next().unwrap_or_default();
            let (program, mut args) = if first.text.ends_with("scripts/demo.sh") {
                (Program::Selfheal, vec!["demo".to_string()])
            } else if base == "selfheal" {
                (Program::Selfheal, vec![])
            } else if base.starts_with("selfheal-") && binaries.iter().any(|b| b == base) {
                (Program::Service(base.to_string()), vec![])
            } else {
                continue;
            };
            let mut words_only = true;
            let mut any_subcommand = false;
            for w in &ws[1..] {
                let t = w.text.trim_end_matches("...").trim_end_matches('…');
                if t.is_empty() {
                    // `--repo …` → a sample value; `<topic>...` → `<topic>`; a lone `…` → nothing.
                    if !w.quoted && args.last().is_some_and(|a: &String| a.starts_with('-')) {
                        args.push(sample("value"));
                        words_only = false;
                    }
                    continue;
                }
                if (!w.quoted && is_placeholder(t)) || (w.quoted && t.starts_with('$')) {
                    any_subcommand |= args.is_empty();
                    args.push(sample(t));
                    words_only = false;
                } else {
                    words_only &= !w.quoted
                        && !w.bracketed
                        && t.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                        && !t.starts_with('-');
                    args.push(t.to_string());
                }
            }
            out.push(Example {
                found: f.clone(),
                program,
                args,
                any_subcommand,
                words_only,
            });
        }
    }
    out
}

/// Whether `words` walk down `selfheal`'s subcommands (a code span naming a command).
fn names_a_subcommand(words: &[String]) -> bool {
    let mut cmd = Cli::command();
    for w in words {
        match cmd.find_subcommand(w) {
            Some(s) => cmd = s.clone(),
            None => return false,
        }
    }
    true
}

/// Checks one example; the error says what a reader of the file would hit.
fn check(e: &Example, bins: &Path) -> Result<(), String> {
    match &e.program {
        Program::Selfheal => {
            if e.found.context == Context::Inline && e.words_only && names_a_subcommand(&e.args) {
                return Ok(());
            }
            let parse = |args: &[String]| {
                let argv: Vec<&str> = std::iter::once("selfheal")
                    .chain(args.iter().map(String::as_str))
                    .collect();
                match Cli::try_parse_from(&argv) {
                    Ok(_) => Ok(()),
                    Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
                    Err(err) => Err(format!("`{}` → {}", argv.join(" "), err.render())),
                }
            };
            if e.found.context == Context::Inline && e.args.last().is_some_and(|a| a.starts_with("--")) {
                // `selfheal trace parse --repo` in prose names an option: it must exist, with or
                // without a value.
                let mut with_value = e.args.clone();
                with_value.push(sample("value"));
                if parse(&e.args).is_ok() || parse(&with_value).is_ok() {
                    return Ok(());
                }
            }
            if e.any_subcommand {
                // `selfheal <command> --help`: true of some command (a template, not a command line).
                let mut last = Err(String::new());
                for sub in Cli::command().get_subcommands() {
                    let mut args = e.args.clone();
                    args[0] = sub.get_name().to_string();
                    last = parse(&args);
                    if last.is_ok() {
                        break;
                    }
                }
                return last;
            }
            parse(&e.args)
        }
        Program::Service(name) => {
            let exe = bins.join(name);
            if !exe.exists() {
                return Err(format!(
                    "{} is not built in {} (cargo build --workspace --bins first)",
                    name,
                    bins.display()
                ));
            }
            if e.found.context == Context::Inline && e.words_only {
                return Ok(()); // names the binary (and perhaps its subcommand)
            }
            // The binary's own parser: with `--help` last it stops after parsing what precedes.
            let out = Process::new(&exe)
                .args(&e.args)
                .arg("--help")
                .env_remove("SELFHEAL_LOG")
                .output()
                .map_err(|err| format!("running {name}: {err}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{name} {}` → {}{}",
                    e.args.join(" "),
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                ))
            }
        }
    }
}

fn all_examples(root: &Path) -> Vec<Example> {
    let binaries = workspace_binaries(root, false);
    let mut found = Vec::new();
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc).unwrap();
        let rel = doc.strip_prefix(root).unwrap_or(&doc).to_path_buf();
        if doc.extension().is_some_and(|x| x == "md") {
            found.extend(markdown_candidates(&rel, &text));
        } else {
            found.extend(script_candidates(&rel, &text));
        }
    }
    examples(found, &binaries)
}

#[test]
fn every_documented_command_line_parses() {
    let root = repo_root();
    let examples = all_examples(&root);
    // The test finds what it must: the README's first command, and commands in several files.
    let first = examples
        .iter()
        .find(|e| e.found.file == Path::new("README.md") && e.found.context == Context::Block)
        .expect("the README's first command");
    assert_eq!(first.program, Program::Selfheal);
    assert_eq!(first.args.first().map(String::as_str), Some("demo"), "{first:?}");
    let files: std::collections::BTreeSet<_> = examples.iter().map(|e| e.found.file.clone()).collect();
    assert!(files.len() >= 3, "commands found only in {files:?}");

    let bins = bin_dir();
    let mut failures = Vec::new();
    for e in &examples {
        if let Err(msg) = check(e, &bins) {
            failures.push(format!(
                "{}:{}: {}\n    {msg}",
                e.found.file.display(),
                e.found.line,
                e.found.text
            ));
        }
    }
    eprintln!("{} command lines checked in {} files", examples.len(), files.len());
    assert!(
        failures.is_empty(),
        "{} documented command line(s) do not work:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The extraction itself, on text written here.

#[test]
fn extraction_reads_usage_notation_as_a_person_does() {
    let md = "\
Run:\n\n```sh\nscripts/demo.sh            # add --json for the Outcome\nSELFHEAL_DEMO_DIR=/tmp/d scripts/demo.sh --json | tail -1\n```\n\n\
Then `selfheal approve <incident-id>` (see `selfheal pending`), or `selfheal tail <topic> [--last N] [-f]`;\n\
`selfheal logs templates FILE [--format '<Date> <Content>']`, `selfheal record <topic>... --out FILE`.\n\
Prose: selfheal heals; the branch `selfheal/…`; the crate `selfheal-core`; `selfheal-collector`.\n";
    let found = markdown_candidates(Path::new("x.md"), md);
    let bins = vec!["selfheal".to_string(), "selfheal-collector".to_string()];
    let ex = examples(found, &bins);
    let lines: Vec<(Program, Vec<String>, bool)> = ex
        .iter()
        .map(|e| (e.program.clone(), e.args.clone(), e.words_only))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        lines,
        vec![
            (Program::Selfheal, s(&["demo"]), true),
            (Program::Selfheal, s(&["demo", "--json"]), false),
            (Program::Selfheal, s(&["approve", "sample-incident-id"]), false),
            (Program::Selfheal, s(&["pending"]), true),
            (
                Program::Selfheal,
                s(&["tail", "sample-topic", "--last", "1", "-f"]),
                false
            ),
            (
                Program::Selfheal,
                s(&["logs", "templates", "sample-file", "--format", "<Date> <Content>"]),
                false
            ),
            (
                Program::Selfheal,
                s(&["record", "sample-topic", "--out", "sample-file"]),
                false
            ),
            (Program::Service("selfheal-collector".into()), s(&[]), true),
        ]
    );
    // And each of these parses (the service binary is not needed for a bare mention).
    for e in &ex {
        if e.program == Program::Selfheal {
            check(e, Path::new("/nonexistent")).unwrap();
        }
    }
    // A diagram in a plain block is no command; `--out …` takes a sample; prose may name a flag.
    let more = "```\n selfheal approve ──► approvals\n```\n`selfheal record <topic> --out …`, `selfheal tail --last`\n";
    let ex = examples(markdown_candidates(Path::new("w.md"), more), &bins);
    assert_eq!(ex.len(), 2, "{ex:?}");
    assert_eq!(ex[0].args, ["record", "sample-topic", "--out", "sample-value"]);
    assert!(
        check(&ex[1], Path::new("/nonexistent")).is_err(),
        "tail needs its topic: {ex:?}"
    );
    // A placeholder where the subcommand goes: true of some subcommand, or not at all.
    let any = "`selfheal <command> --help`, `selfheal <command> --no-such-flag`";
    let ex = examples(markdown_candidates(Path::new("z.md"), any), &bins);
    assert!(
        ex[0].any_subcommand && check(&ex[0], Path::new("/nonexistent")).is_ok(),
        "{ex:?}"
    );
    assert!(check(&ex[1], Path::new("/nonexistent")).is_err(), "{ex:?}");
    // A flag that does not exist, a subcommand that does not exist, a missing value: caught.
    let bad = "`selfheal demo --no-such-flag` `selfheal frobnicate <x>` and\n```\nselfheal tail\n```\n";
    let ex = examples(markdown_candidates(Path::new("y.md"), bad), &bins);
    assert_eq!(ex.len(), 3);
    for e in &ex {
        assert!(check(e, Path::new("/nonexistent")).is_err(), "{e:?}");
    }
}

#[test]
fn script_comments_give_examples_not_prose() {
    let sh = "#!/usr/bin/env bash\n# The selfheal demo, from a fresh clone.\n# scripts/demo.sh --json twice in one directory, in prose.\n#\n#   scripts/demo.sh --json   # the Outcome\n#   scripts/demo.sh --help\n# runs `selfheal demo`\nexec \"$bin\" demo \"$@\"\n";
    let ex = examples(script_candidates(Path::new("s.sh"), sh), &["selfheal".to_string()]);
    let args: Vec<Vec<String>> = ex.iter().map(|e| e.args.clone()).collect();
    assert_eq!(
        args,
        vec![
            vec!["demo".to_string(), "--json".to_string()],
            vec!["demo".to_string(), "--help".to_string()],
            vec!["demo".to_string()],
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Every binary a person may run.

#[test]
fn every_workspace_binary_answers_version_and_help() {
    let root = repo_root();
    let bins = bin_dir();
    let names = workspace_binaries(&root, true);
    assert!(names.len() >= 9, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let exe = bins.join(name);
        if !exe.exists() {
            failures.push(format!(
                "{name}: not built in {} (cargo build --workspace --bins first)",
                bins.display()
            ));
            continue;
        }
        for flag in ["--version", "--help"] {
            let out = Process::new(&exe).arg(flag).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let ok = out.status.success()
                && if flag == "--version" {
                    stdout.trim() == format!("{name} {}", env!("CARGO_PKG_VERSION"))
                } else {
                    !stdout.trim().is_empty()
                };
            if !ok {
                failures.push(format!(
                    "`{name} {flag}` → {} stdout {:?} stderr {:?}",
                    out.status,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
