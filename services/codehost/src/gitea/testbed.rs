//! The Gitea of the test bed (`deploy/gitea.sh`): what tests and demos need besides the
//! [`CodeHost`](crate::CodeHost) calls — a repository, and a second user who reviews.
//!
//! `eval "$(deploy/gitea.sh env)"` sets `SELFHEAL_GITEA_URL`, `SELFHEAL_GITEA_BOT_USER`,
//! `SELFHEAL_GITEA_BOT_TOKEN_FILE`, `SELFHEAL_GITEA_REVIEWER_USER` and
//! `SELFHEAL_GITEA_REVIEWER_TOKEN_FILE` (tokens stay in files).

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::Gitea;
use crate::{CodeHostError, Token};

/// The test bed's Gitea and its two users.
#[derive(Debug, Clone)]
pub struct TestBed {
    /// Root URL, e.g. `http://127.0.0.1:3300`.
    pub url: String,
    /// The bot (an admin): owns the repositories, pushes, opens pull requests.
    pub bot_user: String,
    /// File holding the bot's token (what a catalog's `token_file` names).
    pub bot_token_file: PathBuf,
    /// The reviewer: a collaborator who approves or rejects.
    pub reviewer_user: String,
    bot: Token,
    reviewer: Token,
}

/// A commit status as read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusRead {
    /// `pending`, `success`, `failure`, `error`, `warning`.
    #[serde(alias = "status")]
    pub state: String,
    /// Its context.
    #[serde(default)]
    pub context: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
}

impl TestBed {
    /// The test bed from the environment; `Err` says what is missing (the variables, the token
    /// files, or a server that does not answer).
    pub async fn from_env() -> Result<TestBed, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("{name} is not set (eval \"$(deploy/gitea.sh env)\")"))
        };
        let url = var("SELFHEAL_GITEA_URL")?.trim_end_matches('/').to_string();
        let bot_token_file = PathBuf::from(var("SELFHEAL_GITEA_BOT_TOKEN_FILE")?);
        let reviewer_file = PathBuf::from(var("SELFHEAL_GITEA_REVIEWER_TOKEN_FILE")?);
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(Token::new)
                .ok_or_else(|| format!("no token in {}", path.display()))
        };
        let bed = TestBed {
            bot: read(&bot_token_file)?,
            reviewer: read(&reviewer_file)?,
            bot_user: var("SELFHEAL_GITEA_BOT_USER")?,
            reviewer_user: var("SELFHEAL_GITEA_REVIEWER_USER")?,
            bot_token_file,
            url,
        };
        let version = reqwest::Client::new()
            .get(format!("{}/api/v1/version", bed.url))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("{} does not answer: {e}", bed.url))?;
        if !version.status().is_success() {
            return Err(format!("{}/api/v1/version answered {}", bed.url, version.status()));
        }
        Ok(bed)
    }

    /// The bot's client for `repo` (what selfheal uses).
    pub fn host(&self, repo: &str) -> Result<Gitea, CodeHostError> {
        Gitea::new(&self.url, repo, self.bot.clone())
    }

    /// The reviewer's client for `repo`.
    pub fn reviewer(&self, repo: &str) -> Result<Gitea, CodeHostError> {
        Gitea::new(&self.url, repo, self.reviewer.clone())
    }

    /// The bot's token (to hand to a catalog through an environment variable in tests).
    pub fn bot_token(&self) -> &Token {
        &self.bot
    }

    /// Creates an empty repository `name` owned by the bot, with the reviewer as a writing
    /// collaborator, and pushes `main` of `local_repo` to it. Returns `owner/name`.
    pub async fn create_repo(&self, name: &str, local_repo: &Path) -> Result<String, CodeHostError> {
        let repo = format!("{}/{name}", self.bot_user);
        let host = self.host(&repo)?;
        host.call(
            Method::POST,
            "/user/repos",
            Some(&json!({"name": name, "private": false, "auto_init": false, "default_branch": "main"})),
        )
        .await?;
        host.call(
            Method::PUT,
            &host.repo_path(&format!("/collaborators/{}", self.reviewer_user)),
            Some(&json!({"permission": "write"})),
        )
        .await?;
        crate::push_branch(local_repo, &host.clone_url(), &self.bot, "main").await?;
        // Gitea marks a repository non-empty from a queue after the first push; until then its
        // pull-request API answers 404. Wait for it (seconds on a busy machine).
        let mut last = None;
        for _ in 0..300 {
            match host
                .call(Method::GET, &host.repo_path("/pulls?state=all&limit=1"), None)
                .await
            {
                Ok(_) if self.branch_exists(&repo, "main").await.unwrap_or(false) => return Ok(repo),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| CodeHostError::Settings(format!("{repo}: main never appeared after the push"))))
    }

    /// The reviewer submits a review: `APPROVED`, `REQUEST_CHANGES` or `COMMENT`.
    pub async fn review(&self, repo: &str, number: u64, event: &str, body: &str) -> Result<(), CodeHostError> {
        let host = self.reviewer(repo)?;
        host.call(
            Method::POST,
            &host.repo_path(&format!("/pulls/{number}/reviews")),
            Some(&json!({"event": event, "body": body})),
        )
        .await?;
        Ok(())
    }

    /// Closes a pull request without merging (as the bot, an admin).
    pub async fn close(&self, repo: &str, number: u64) -> Result<(), CodeHostError> {
        let host = self.host(repo)?;
        host.call(
            Method::PATCH,
            &host.repo_path(&format!("/pulls/{number}")),
            Some(&json!({"state": "closed"})),
        )
        .await?;
        Ok(())
    }

    /// Every status of a commit, newest first.
    pub async fn statuses(&self, repo: &str, sha: &str) -> Result<Vec<StatusRead>, CodeHostError> {
        let host = self.host(repo)?;
        host.list(&host.repo_path(&format!("/statuses/{sha}"))).await
    }

    /// Labels of a pull request (an issue, for Gitea).
    pub async fn labels(&self, repo: &str, number: u64) -> Result<Vec<String>, CodeHostError> {
        let host = self.host(repo)?;
        let labels: Vec<super::Label> = host.list(&host.repo_path(&format!("/issues/{number}/labels"))).await?;
        Ok(labels.into_iter().map(|l| l.name).collect())
    }

    /// Users asked to review a pull request.
    pub async fn requested_reviewers(&self, repo: &str, number: u64) -> Result<Vec<String>, CodeHostError> {
        #[derive(Deserialize)]
        struct Pull {
            #[serde(default)]
            requested_reviewers: Option<Vec<super::User>>,
        }
        let host = self.host(repo)?;
        let pull: Pull = host
            .call_as(Method::GET, &host.repo_path(&format!("/pulls/{number}")), None)
            .await?;
        Ok(pull
            .requested_reviewers
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.login)
            .collect())
    }

    /// Whether a branch exists on the host.
    pub async fn branch_exists(&self, repo: &str, branch: &str) -> Result<bool, CodeHostError> {
        let host = self.host(repo)?;
        match host
            .call(
                Method::GET,
                &host.repo_path(&format!("/branches/{}", super::branch_path(branch))),
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(CodeHostError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
