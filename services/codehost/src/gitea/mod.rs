//! Gitea (and Forgejo, which keeps Gitea's API): REST API v1 under `{base}/api/v1`, token in an
//! `Authorization: token …` header.
//!
//! Plain `reqwest` rather than a Gitea SDK crate: there is no maintained Rust client for Gitea's
//! API, and the dozen calls used here are small JSON requests. (For GitHub, `octocrab` would be
//! the candidate; it brings its own HTTP stack and models, which is why the GitHub folder will
//! also be plain `reqwest`: one HTTP client, one error type, one redaction rule for all hosts.)
//!
//! Pagination: lists are read with `page`/`limit` until a short page (Gitea caps `limit` at the
//! server's `MAX_RESPONSE_ITEMS`, 50 by default).

pub mod testbed;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    CodeHost, CodeHostError, Comment, CommitStatus, NewPullRequest, PullRequest, PullRequestState, Review, ReviewState,
    Token, rfc3339_ms,
};

/// Items per page asked for; Gitea's default `MAX_RESPONSE_ITEMS`.
const PAGE: usize = 50;
/// Pages read at most from one list (25,000 items): a bound, not an expected size.
const MAX_PAGES: usize = 500;
/// Colour of labels selfheal creates.
const LABEL_COLOR: &str = "#0e8a16";

/// A Gitea repository, through its API.
#[derive(Clone)]
pub struct Gitea {
    http: reqwest::Client,
    base_url: String,
    repo: String,
    token: Token,
}

impl std::fmt::Debug for Gitea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gitea")
            .field("base_url", &self.base_url)
            .field("repo", &self.repo)
            .field("token", &self.token)
            .finish()
    }
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    sha: String,
}

#[derive(Deserialize)]
struct RawPull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    head: Branch,
    base: Branch,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
}

impl From<RawPull> for PullRequest {
    fn from(raw: RawPull) -> Self {
        let state = if raw.merged {
            PullRequestState::Merged
        } else if raw.state == "open" {
            PullRequestState::Open
        } else {
            PullRequestState::Closed
        };
        PullRequest {
            number: raw.number,
            url: raw.html_url,
            state,
            head_branch: raw.head.name,
            head_sha: raw.head.sha,
            base_branch: raw.base.name,
            title: raw.title,
            body: raw.body.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct RawReview {
    id: u64,
    user: Option<User>,
    state: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    commit_id: Option<String>,
    #[serde(default)]
    submitted_at: Option<String>,
    #[serde(default)]
    dismissed: bool,
    #[serde(default)]
    stale: bool,
}

#[derive(Deserialize)]
struct RawComment {
    id: u64,
    user: Option<User>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    created_at: String,
}

#[derive(Deserialize)]
struct Label {
    id: u64,
    name: String,
}

impl Gitea {
    /// A client for `repo` (`owner/name`) on the Gitea at `base_url`.
    pub fn new(base_url: &str, repo: &str, token: Token) -> Result<Self, CodeHostError> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(CodeHostError::Settings(format!("`{base_url}` is not an http(s) URL")));
        }
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(CodeHostError::Settings(format!("`{repo}` is not owner/name")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            // A redirect to another host must not receive the token.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CodeHostError::Settings(format!("HTTP client: {e}")))?;
        Ok(Gitea {
            http,
            base_url,
            repo: repo.to_string(),
            token,
        })
    }

    /// The repository's clone URL over HTTP(S).
    pub fn clone_url(&self) -> String {
        format!("{}/{}.git", self.base_url, self.repo)
    }

    /// One API call; `path` is under `/api/v1`. `Ok(None)` for an empty body.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Option<Value>, CodeHostError> {
        let url = format!("{}/api/v1{path}", self.base_url);
        let shown_path = path.split('?').next().unwrap_or(path).to_string();
        let transport = |message: String| CodeHostError::Transport {
            method: method.to_string(),
            path: shown_path.clone(),
            message: self.token.redact(&message),
        };
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", format!("token {}", self.token.expose()))
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transport(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(CodeHostError::Status {
                method: method.to_string(),
                path: shown_path,
                status: status.as_u16(),
                message: self.token.redact(message.trim()),
            });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| transport(format!("unreadable answer: {e}")))
    }

    async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, CodeHostError> {
        let value = self.call(method.clone(), path, body).await?.unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| CodeHostError::Transport {
            method: method.to_string(),
            path: path.split('?').next().unwrap_or(path).to_string(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Every item of a paginated list; `path` has no query or ends in one (`?state=all`).
    async fn list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, CodeHostError> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let items: Vec<T> = self
                .call_as(Method::GET, &format!("{path}{join}page={page}&limit={PAGE}"), None)
                .await?;
            let short = items.len() < PAGE;
            all.extend(items);
            if short {
                break;
            }
        }
        Ok(all)
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}{rest}", self.repo)
    }

    /// The id of label `name`, created when missing.
    async fn label_id(&self, name: &str) -> Result<u64, CodeHostError> {
        let labels: Vec<Label> = self.list(&self.repo_path("/labels")).await?;
        if let Some(label) = labels.iter().find(|l| l.name == name) {
            return Ok(label.id);
        }
        let created: Result<Label, _> = self
            .call_as(
                Method::POST,
                &self.repo_path("/labels"),
                Some(&json!({"name": name, "color": LABEL_COLOR})),
            )
            .await;
        match created {
            Ok(label) => Ok(label.id),
            // Created meanwhile by a concurrent call: read it.
            Err(CodeHostError::Status { status: 409 | 422, .. }) => {
                let labels: Vec<Label> = self.list(&self.repo_path("/labels")).await?;
                labels
                    .into_iter()
                    .find(|l| l.name == name)
                    .map(|l| l.id)
                    .ok_or_else(|| CodeHostError::Settings(format!("label {name} can be neither created nor found")))
            }
            Err(e) => Err(e),
        }
    }
}

/// A branch name as one path segment of a URL (Gitea routes `branches/*` take the rest).
fn branch_path(branch: &str) -> String {
    branch
        .split('/')
        .map(|part| {
            part.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[async_trait]
impl CodeHost for Gitea {
    fn provider(&self) -> &'static str {
        "gitea"
    }

    fn repo(&self) -> &str {
        &self.repo
    }

    async fn push_branch(&self, local_repo: &Path, branch: &str) -> Result<(), CodeHostError> {
        crate::push_branch(local_repo, &self.clone_url(), &self.token, branch).await
    }

    async fn find_pull_request(&self, head_branch: &str) -> Result<Option<PullRequest>, CodeHostError> {
        // Newest first, so the first closed one met is the newest closed one.
        let pulls: Vec<RawPull> = self.list(&self.repo_path("/pulls?state=all&sort=newest")).await?;
        let mut matching: Vec<PullRequest> = pulls
            .into_iter()
            .filter(|p| p.head.name == head_branch)
            .map(PullRequest::from)
            .collect();
        matching.sort_by_key(|p| std::cmp::Reverse(p.number));
        Ok(matching
            .iter()
            .find(|p| p.state == PullRequestState::Open)
            .or_else(|| matching.first())
            .cloned())
    }

    async fn pull_request(&self, number: u64) -> Result<PullRequest, CodeHostError> {
        let raw: RawPull = self
            .call_as(Method::GET, &self.repo_path(&format!("/pulls/{number}")), None)
            .await?;
        Ok(raw.into())
    }

    async fn open_pull_request(&self, new: &NewPullRequest) -> Result<PullRequest, CodeHostError> {
        let body = json!({"head": new.head, "base": new.base, "title": new.title, "body": new.body});
        match self
            .call_as::<RawPull>(Method::POST, &self.repo_path("/pulls"), Some(&body))
            .await
        {
            Ok(raw) => Ok(raw.into()),
            // Gitea answers 409 ("pull request already exists for these targets"); 422 elsewhere.
            Err(CodeHostError::Status { status: 409 | 422, .. }) => Err(CodeHostError::Conflict(new.head.clone())),
            Err(e) => Err(e),
        }
    }

    async fn update_pull_request(&self, number: u64, title: &str, body: &str) -> Result<PullRequest, CodeHostError> {
        let raw: RawPull = self
            .call_as(
                Method::PATCH,
                &self.repo_path(&format!("/pulls/{number}")),
                Some(&json!({"title": title, "body": body})),
            )
            .await?;
        Ok(raw.into())
    }

    async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), CodeHostError> {
        let mut ids = Vec::new();
        for name in labels {
            ids.push(self.label_id(name).await?);
        }
        self.call(
            Method::POST,
            &self.repo_path(&format!("/issues/{number}/labels")),
            Some(&json!({"labels": ids})),
        )
        .await?;
        Ok(())
    }

    async fn request_reviewers(&self, number: u64, reviewers: &[String]) -> Result<(), CodeHostError> {
        if reviewers.is_empty() {
            return Ok(());
        }
        self.call(
            Method::POST,
            &self.repo_path(&format!("/pulls/{number}/requested_reviewers")),
            Some(&json!({"reviewers": reviewers})),
        )
        .await?;
        Ok(())
    }

    async fn reviews(&self, number: u64) -> Result<Vec<Review>, CodeHostError> {
        let raw: Vec<RawReview> = self.list(&self.repo_path(&format!("/pulls/{number}/reviews"))).await?;
        let mut reviews: Vec<Review> = raw
            .into_iter()
            .map(|r| Review {
                id: r.id,
                user: r.user.map(|u| u.login).unwrap_or_default(),
                state: match r.state.as_str() {
                    "APPROVED" => ReviewState::Approved,
                    "REQUEST_CHANGES" => ReviewState::ChangesRequested,
                    other => ReviewState::Other(other.to_string()),
                },
                body: r.body,
                commit: r.commit_id.filter(|c| !c.is_empty()),
                at_ms: r.submitted_at.as_deref().map(rfc3339_ms).unwrap_or(0),
                dismissed: r.dismissed || r.stale,
            })
            .collect();
        reviews.sort_by_key(|r| (r.at_ms, r.id));
        Ok(reviews)
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, CodeHostError> {
        let raw: Vec<RawComment> = self
            .list(&self.repo_path(&format!("/issues/{number}/comments")))
            .await?;
        let mut comments: Vec<Comment> = raw
            .into_iter()
            .map(|c| Comment {
                id: c.id,
                user: c.user.map(|u| u.login).unwrap_or_default(),
                body: c.body,
                at_ms: rfc3339_ms(&c.created_at),
            })
            .collect();
        comments.sort_by_key(|c| (c.at_ms, c.id));
        Ok(comments)
    }

    async fn comment(&self, number: u64, body: &str) -> Result<(), CodeHostError> {
        self.call(
            Method::POST,
            &self.repo_path(&format!("/issues/{number}/comments")),
            Some(&json!({"body": body})),
        )
        .await?;
        Ok(())
    }

    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), CodeHostError> {
        if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(CodeHostError::Settings(format!("`{sha}` is not a commit id")));
        }
        self.call(
            Method::POST,
            &self.repo_path(&format!("/statuses/{sha}")),
            Some(&json!({
                "state": status.state.as_str(),
                "context": status.context,
                "description": status.description,
            })),
        )
        .await?;
        Ok(())
    }

    async fn merge(&self, number: u64) -> Result<(), CodeHostError> {
        if self.pull_request(number).await?.state == PullRequestState::Merged {
            return Ok(());
        }
        self.call(
            Method::POST,
            &self.repo_path(&format!("/pulls/{number}/merge")),
            Some(&json!({"Do": "merge"})),
        )
        .await?;
        Ok(())
    }

    async fn delete_branch(&self, branch: &str) -> Result<(), CodeHostError> {
        match self
            .call(
                Method::DELETE,
                &self.repo_path(&format!("/branches/{}", branch_path(branch))),
                None,
            )
            .await
        {
            Ok(_) | Err(CodeHostError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn branch_names_are_escaped_per_segment() {
        assert_eq!(branch_path("selfheal/inc-1"), "selfheal/inc-1");
        assert_eq!(branch_path("a b/c?d"), "a%20b/c%3Fd");
    }

    #[test]
    fn bad_settings_are_refused() {
        let token = Token::new("t").unwrap();
        assert!(Gitea::new("ftp://x", "o/r", token.clone()).is_err());
        assert!(Gitea::new("http://x", "o", token.clone()).is_err());
        assert!(Gitea::new("http://x", "o/", token.clone()).is_err());
        assert_eq!(
            Gitea::new("http://x/", "o/r", token).unwrap().clone_url(),
            "http://x/o/r.git"
        );
    }
}
