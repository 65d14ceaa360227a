//! Reading unified diffs into per-file counts.

use super::engine::TEMPLATE_DIFF;
use crate::{GovernanceError, PatchFile, parse_unified_diff};

fn file(path: &str, added: u32, removed: u32) -> PatchFile {
    PatchFile {
        path: path.to_string(),
        added,
        removed,
        ..PatchFile::default()
    }
}

#[test]
fn git_diff_files_and_counts() {
    let files = parse_unified_diff(TEMPLATE_DIFF).unwrap();
    assert_eq!(
        files,
        [
            file("pricing_logic.py", 2, 1),
            PatchFile {
                new_file: true,
                ..file("tests/test_regression_x.py", 5, 0)
            },
        ]
    );
}

#[test]
fn plain_diff_u_with_timestamps_and_crlf() {
    let diff = "--- app.py\t2024-01-01 00:00:00\r\n+++ app.py\t2024-01-02 00:00:00\r\n@@ -1,2 +1,2 @@\r\n a = 1\r\n-b = 2\r\n+b = 3\r\n--- b.py\n+++ b.py\n@@ -3 +3 @@\n-x\n+y\n";
    assert_eq!(
        parse_unified_diff(diff).unwrap(),
        [file("app.py", 1, 1), file("b.py", 1, 1)]
    );
}

#[test]
fn hunk_counts_decide_what_is_content() {
    // An added line reading "++ x" looks like a file header; the hunk says it is content.
    let diff = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n--- removed\n+++ added\n context\n";
    assert_eq!(parse_unified_diff(diff).unwrap(), [file("m.py", 1, 1)]);
}

#[test]
fn deletions_renames_and_binaries() {
    let diff = "\
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1,2 +0,0 @@
-a
-b
diff --git a/.github/ci.yml b/ci.yml
similarity index 100%
rename from .github/ci.yml
rename to ci.yml
diff --git a/logo.png b/logo.png
Binary files a/logo.png and b/logo.png differ
";
    let files = parse_unified_diff(diff).unwrap();
    assert_eq!(
        files,
        [
            PatchFile {
                deleted: true,
                ..file("old.py", 0, 2)
            },
            PatchFile {
                old_path: Some(".github/ci.yml".to_string()),
                ..file("ci.yml", 0, 0)
            },
            PatchFile {
                binary: true,
                ..file("logo.png", 0, 0)
            },
        ]
    );
}

#[test]
fn paths_with_spaces_and_no_newline_markers() {
    let diff = "diff --git a/my file.py b/my file.py\n--- a/my file.py\n+++ b/my file.py\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n";
    assert_eq!(parse_unified_diff(diff).unwrap(), [file("my file.py", 1, 1)]);
}

#[test]
fn broken_diffs_are_errors() {
    for (diff, needle) in [
        ("just some text\n", "no file header"),
        ("", "no file header"),
        ("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n", "ends inside a hunk"),
        ("--- a/x\n+++ b/x\n@@ nonsense @@\n", "malformed hunk header"),
        ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n", "outside any hunk"),
        ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\nstray\n", "ends early"),
        ("+++ b/x\n", "without a `---` header"),
    ] {
        match parse_unified_diff(diff) {
            Err(GovernanceError::Diff { message, .. }) => {
                assert!(message.contains(needle), "{diff:?}: {message}");
            }
            other => panic!("{diff:?}: expected a diff error, got {other:?}"),
        }
    }
}
