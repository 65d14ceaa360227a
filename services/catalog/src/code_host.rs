//! Where a service's code is reviewed: the code host a fix is pushed to as a pull request, and
//! who may approve it there. Only settings live here; the clients are in `selfheal-codehost`.
//!
//! ```toml
//! [services.pricing-api.code_host]
//! provider = "gitea"                      # one of CODE_HOST_PROVIDERS
//! base_url = "https://git.example.com"    # the host's web/API root
//! repo = "payments/pricing-api"           # owner/name on the host
//! token_env = "SELFHEAL_PRICING_TOKEN"    # or token_file = "/run/secrets/pricing-token"
//! base_branch = "main"                    # what the pull request merges into
//! reviewers = ["alice", "bob"]            # asked for review; also the approvers by default
//! approvers = ["alice"]                   # whose review or `/selfheal approve` approves
//! merge = true                            # merge after promotion (default false: humans merge)
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// Code hosts selfheal has a client for.
pub const CODE_HOST_PROVIDERS: &[&str] = &["gitea"];
/// The branch a pull request merges into when the entry names none.
pub const DEFAULT_BASE_BRANCH: &str = "main";

/// Where the code host's token comes from; the token itself is never in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable of the selfheal process.
    Env(String),
    /// A file (e.g. a mounted secret); surrounding whitespace is ignored.
    File(PathBuf),
}

/// One service's `[services.<name>.code_host]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHostSettings {
    /// The provider, one of [`CODE_HOST_PROVIDERS`].
    pub provider: String,
    /// The host's root URL (`http://` or `https://`), without a trailing `/`.
    pub base_url: String,
    /// `owner/name` of the repository on the host.
    pub repo: String,
    /// Where the token is read from.
    pub token: TokenSource,
    /// The branch pull requests merge into.
    pub base_branch: String,
    /// Users asked to review each pull request.
    pub reviewers: Vec<String>,
    /// Users whose approving review or `/selfheal approve` comment approves the rollout.
    pub approvers: Vec<String>,
    /// Whether selfheal merges the pull request after promotion.
    pub merge: bool,
}

/// The table exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCodeHost {
    provider: Option<String>,
    base_url: Option<String>,
    repo: Option<String>,
    token_env: Option<String>,
    token_file: Option<String>,
    base_branch: Option<String>,
    #[serde(default)]
    reviewers: Vec<String>,
    approvers: Option<Vec<String>>,
    #[serde(default)]
    merge: bool,
}

impl RawCodeHost {
    /// Checks every field; `Err` is `(field, problem)`. A relative token file resolves against
    /// `base_dir`, like the repository.
    pub(crate) fn into_settings(self, base_dir: &std::path::Path) -> Result<CodeHostSettings, (String, String)> {
        let field = |name: &str, problem: String| (format!("code_host.{name}"), problem);
        let provider = self
            .provider
            .ok_or_else(|| field("provider", "is required".into()))?
            .trim()
            .to_ascii_lowercase();
        if !CODE_HOST_PROVIDERS.contains(&provider.as_str()) {
            return Err(field(
                "provider",
                format!(
                    "unknown provider `{provider}`, expected one of: {}",
                    CODE_HOST_PROVIDERS.join(", ")
                ),
            ));
        }
        let base_url = self.base_url.ok_or_else(|| field("base_url", "is required".into()))?;
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        let host_part = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"))
            .unwrap_or_default();
        // Credentials in the URL would end up in logs and error messages; they belong in the token.
        if host_part.contains('@') {
            // Not repeated in the message: the part before `@` is a credential.
            return Err(field(
                "base_url",
                "must not hold credentials (`user:password@`); name a token_env or token_file".into(),
            ));
        }
        if host_part.is_empty() || base_url.chars().any(char::is_whitespace) {
            return Err(field(
                "base_url",
                format!("`{base_url}` must be an http:// or https:// URL"),
            ));
        }
        let repo = self.repo.ok_or_else(|| field("repo", "is required".into()))?;
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| !plain_name(p)) {
            return Err(field("repo", format!("`{repo}` must be `owner/name`")));
        }
        let token = match (self.token_env, self.token_file) {
            (Some(var), None) if !var.trim().is_empty() && !var.contains('=') => TokenSource::Env(var.trim().into()),
            (None, Some(file)) if !file.trim().is_empty() => {
                let path = PathBuf::from(file.trim());
                TokenSource::File(if path.is_absolute() { path } else { base_dir.join(path) })
            }
            (Some(_), Some(_)) => return Err(field("token_env", "give token_env or token_file, not both".into())),
            (None, None) => return Err(field("token_env", "token_env or token_file is required".into())),
            _ => return Err(field("token_env", "must name a variable or a file".into())),
        };
        let base_branch = self.base_branch.unwrap_or_else(|| DEFAULT_BASE_BRANCH.into());
        if base_branch.trim().is_empty() || base_branch.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(field("base_branch", format!("`{base_branch}` is not a branch name")));
        }
        for user in self.reviewers.iter().chain(self.approvers.iter().flatten()) {
            if !plain_name(user) {
                return Err(field("reviewers", format!("`{user}` is not a user name")));
            }
        }
        let approvers = self.approvers.unwrap_or_else(|| self.reviewers.clone());
        Ok(CodeHostSettings {
            provider,
            base_url,
            repo,
            token,
            base_branch,
            reviewers: self.reviewers,
            approvers,
            merge: self.merge,
        })
    }
}

/// A user, owner or repository name: non-empty, no whitespace, `/`, or control characters.
fn plain_name(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/')
}

impl CodeHostSettings {
    /// Whether `user` may approve or reject on the host (case-insensitive, as hosts compare logins).
    pub fn is_approver(&self, user: &str) -> bool {
        self.approvers.iter().any(|a| a.eq_ignore_ascii_case(user))
    }
}
