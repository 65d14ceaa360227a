//! `git push` of a fix branch over HTTP(S) with the host's token.
//!
//! The token travels only as an `Authorization: Basic` header given to git through
//! `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n` environment variables, scoped to the host's URL
//! (`http.<url>.extraHeader`): never in the remote URL (git prints URLs in messages and may
//! store them), never on the command line (visible to every user in `/proc`), never in the
//! repository's config. Tracing variables that would print headers are removed.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{CodeHostError, Token};

/// The user name in the Basic credentials: hosts that take a token as the password (Gitea,
/// Forgejo, GitHub's `x-access-token`, GitLab's `oauth2`) ignore or accept any name with it.
pub(crate) const BASIC_USER: &str = "x-access-token";

/// Environment variables that make git print request headers; never passed to the push.
const TRACE_VARS: &[&str] = &[
    "GIT_TRACE",
    "GIT_TRACE_CURL",
    "GIT_TRACE_CURL_NO_DATA",
    "GIT_CURL_VERBOSE",
    "GIT_TRACE_PACKET",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE2_PERF",
];

/// The Basic credential values a token can appear as (for redaction).
pub(crate) fn basic_auth_values(token: &Token) -> Vec<String> {
    vec![STANDARD.encode(format!("{BASIC_USER}:{}", token.expose()))]
}

/// Pushes `refs/heads/<branch>` of the repository at `local_repo` to `remote_url` (an
/// `http(s)://host/owner/name.git` URL without credentials), replacing that branch on the
/// remote: selfheal owns its `selfheal/…` branches, and a replay pushes the same commit.
pub async fn push_branch(
    local_repo: &Path,
    remote_url: &str,
    token: &Token,
    branch: &str,
) -> Result<(), CodeHostError> {
    let fail = |message: String| CodeHostError::Push {
        branch: branch.to_string(),
        message: token.redact(&message),
    };
    if branch.starts_with('-') || branch.contains("..") || branch.chars().any(|c| c.is_whitespace() || c == ':') {
        return Err(fail(format!("`{branch}` is not a branch name")));
    }
    let scope = url_scope(remote_url);
    let header = format!("Authorization: Basic {}", basic_auth_values(token).remove(0));
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(local_repo)
        .args(["-c", "core.hooksPath=/dev/null", "-c", "credential.helper="])
        .args(["push", "--porcelain", "--no-verify", remote_url])
        .arg(format!("+refs/heads/{branch}:refs/heads/{branch}"))
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", format!("http.{scope}.extraHeader"))
        .env("GIT_CONFIG_VALUE_0", header)
        // No prompt: a refused token is an error, not a hang waiting for a terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for var in TRACE_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().await.map_err(|e| fail(format!("cannot run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if message.is_empty() {
        message = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    if message.len() > 2000 {
        message = format!("{}…", message.chars().take(2000).collect::<String>());
    }
    Err(fail(message))
}

/// The URL prefix the header is scoped to: scheme, host and port, so that a redirect to another
/// host never receives it.
fn url_scope(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}/")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_header_is_scoped_to_the_host() {
        assert_eq!(url_scope("http://127.0.0.1:3300/o/r.git"), "http://127.0.0.1:3300/");
        assert_eq!(url_scope("https://git.example.com/o/r.git"), "https://git.example.com/");
    }

    #[tokio::test]
    async fn a_failed_push_never_shows_the_token() {
        let repo = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .arg("-C")
                .arg(repo.path())
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q", "-b", "main"]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ]);
        let token = Token::new("s3cr3t-token-value-0123456789").unwrap();
        // A port nothing listens on: git fails after building its request.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = push_branch(repo.path(), &format!("http://127.0.0.1:{port}/o/r.git"), &token, "main")
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, CodeHostError::Push { .. }), "{shown}");
        assert!(!shown.contains(token.expose()), "{shown}");
        assert!(!shown.contains(&basic_auth_values(&token)[0]), "{shown}");
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }
}
