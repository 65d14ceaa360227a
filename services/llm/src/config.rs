//! Per-deployment LLM configuration from flags and environment, as a clap `Args` group
//! that services flatten into their own arguments. Nothing configured means no LLM.

use std::sync::Arc;
use std::time::Duration;

use crate::budget::BudgetLimits;
use crate::client::LlmClient;
use crate::error::LlmError;
use crate::provider::{ChatProvider, HttpSettings, Pricing, RetryPolicy};
use crate::redact::Redactor;
use crate::{anthropic::AnthropicProvider, openai::OpenAiProvider};

/// A secret (API key) whose `Debug` and `Display` print `***`, so it cannot leak through
/// logs, error messages or records by accident. Only [`SecretString::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wrap a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }
    /// The value, for the one place that must send it (an HTTP header marked sensitive).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Which wire protocol the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio).
    #[value(
        alias = "openai-compatible",
        alias = "vllm",
        alias = "ollama",
        alias = "llamacpp",
        alias = "lmstudio"
    )]
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

impl ProviderKind {
    /// Endpoint used when none is configured.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }
    /// Environment variable read for the key when none is named.
    pub fn default_key_env(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        }
    }
    /// Lower-case name, for logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

/// LLM flags shared by the stages that may ask a model (flatten with `#[command(flatten)]`).
///
/// Every argument has an explicit `llm_*` id: clap identifies arguments by id (the field name
/// unless given), and a command that flattens this group beside its own `timeout_secs` or
/// `max_tokens` would otherwise hold two arguments with one id, and fail at parse time
/// (`selfheal demo` did: "required argument was not provided: timeout_secs").
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct LlmConfig {
    /// LLM provider protocol (openai = any OpenAI-compatible server; anthropic). Unset: no LLM is used.
    #[arg(
        id = "llm_provider",
        long = "llm-provider",
        env = "SELFHEAL_LLM_PROVIDER",
        value_enum
    )]
    pub provider: Option<ProviderKind>,
    /// Base URL, e.g. http://127.0.0.1:8080/v1 (OpenAI-compatible) or https://api.anthropic.com.
    #[arg(id = "llm_endpoint", long = "llm-endpoint", env = "SELFHEAL_LLM_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Model name as the provider knows it (required when a provider is set).
    #[arg(id = "llm_model", long = "llm-model", env = "SELFHEAL_LLM_MODEL")]
    pub model: Option<String>,
    /// NAME of the environment variable holding the API key (default OPENAI_API_KEY / ANTHROPIC_API_KEY).
    #[arg(id = "llm_api_key_env", long = "llm-api-key-env", env = "SELFHEAL_LLM_API_KEY_ENV")]
    pub api_key_env: Option<String>,
    /// Limit on one HTTP attempt, in seconds.
    #[arg(
        id = "llm_timeout_secs",
        long = "llm-timeout-secs",
        env = "SELFHEAL_LLM_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub timeout_secs: u64,
    /// Limit on one call including retries and backoff, in seconds.
    #[arg(
        id = "llm_call_timeout_secs",
        long = "llm-call-timeout-secs",
        env = "SELFHEAL_LLM_CALL_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub call_timeout_secs: u64,
    /// Retries on 429, 5xx and connection errors.
    #[arg(
        id = "llm_max_retries",
        long = "llm-max-retries",
        env = "SELFHEAL_LLM_MAX_RETRIES",
        default_value_t = 3
    )]
    pub max_retries: u32,
    /// Per-incident budget: model calls (0 = unlimited).
    #[arg(
        id = "llm_max_calls",
        long = "llm-max-calls",
        env = "SELFHEAL_LLM_MAX_CALLS",
        default_value_t = 6
    )]
    pub max_calls: u32,
    /// Per-incident budget: input + output tokens (0 = unlimited).
    #[arg(
        id = "llm_max_tokens",
        long = "llm-max-tokens",
        env = "SELFHEAL_LLM_MAX_TOKENS",
        default_value_t = 60_000
    )]
    pub max_tokens: u64,
    /// Per-incident budget: US dollars, where the provider reports cost or prices are set.
    #[arg(
        id = "llm_max_cost_usd",
        long = "llm-max-cost-usd",
        env = "SELFHEAL_LLM_MAX_COST_USD"
    )]
    pub max_cost_usd: Option<f64>,
    /// Upper bound on tokens generated by one call.
    #[arg(
        id = "llm_max_output_tokens",
        long = "llm-max-output-tokens",
        env = "SELFHEAL_LLM_MAX_OUTPUT_TOKENS",
        default_value_t = 2048
    )]
    pub max_output_tokens: u32,
    /// Price in USD per million input tokens, to count cost when the provider does not report it.
    #[arg(
        id = "llm_price_input_per_mtok",
        long = "llm-price-input-per-mtok",
        env = "SELFHEAL_LLM_PRICE_INPUT_PER_MTOK"
    )]
    pub price_input_per_mtok: Option<f64>,
    /// Price in USD per million output tokens.
    #[arg(
        id = "llm_price_output_per_mtok",
        long = "llm-price-output-per-mtok",
        env = "SELFHEAL_LLM_PRICE_OUTPUT_PER_MTOK"
    )]
    pub price_output_per_mtok: Option<f64>,
    /// Extra redaction regexes (`kind=REGEX` or `REGEX`); repeat the flag, or separate with newlines in the env var.
    #[arg(
        id = "llm_redact_pattern",
        long = "llm-redact-pattern",
        env = "SELFHEAL_LLM_REDACT_PATTERNS",
        value_delimiter = '\n'
    )]
    pub redact_patterns: Vec<String>,
    /// Also redact IPv4 addresses from prompts.
    #[arg(id = "llm_redact_ipv4", long = "llm-redact-ipv4", env = "SELFHEAL_LLM_REDACT_IPV4")]
    pub redact_ipv4: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: None,
            endpoint: None,
            model: None,
            api_key_env: None,
            timeout_secs: 120,
            call_timeout_secs: 300,
            max_retries: 3,
            max_calls: 6,
            max_tokens: 60_000,
            max_cost_usd: None,
            max_output_tokens: 2048,
            price_input_per_mtok: None,
            price_output_per_mtok: None,
            redact_patterns: Vec::new(),
            redact_ipv4: false,
        }
    }
}

impl LlmConfig {
    /// The client this configuration describes, reading the key from the process environment;
    /// `Ok(None)` when no provider is configured (the deterministic path only).
    pub fn client(&self) -> Result<Option<LlmClient>, LlmError> {
        self.client_with_env(|name| std::env::var(name).ok())
    }

    /// [`LlmConfig::client`] with the environment given as a lookup (tests; embedding processes).
    pub fn client_with_env(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<LlmClient>, LlmError> {
        let Some(kind) = self.provider else {
            if self.endpoint.is_some() || self.model.is_some() {
                tracing::warn!("--llm-endpoint/--llm-model given without --llm-provider: no LLM is used");
            }
            return Ok(None);
        };
        let model = self.model.clone().filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            LlmError::Config("--llm-model (SELFHEAL_LLM_MODEL) is required with --llm-provider".into())
        })?;
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| kind.default_endpoint().to_string());
        reqwest::Url::parse(&endpoint).map_err(|e| LlmError::Config(format!("--llm-endpoint {endpoint:?}: {e}")))?;
        let key_env = self
            .api_key_env
            .clone()
            .unwrap_or_else(|| kind.default_key_env().to_string());
        let key = env(&key_env)
            .filter(|k| !k.trim().is_empty())
            .map(|k| SecretString::new(k.trim().to_string()));
        let settings = self.http_settings();
        let pricing = self.pricing();
        let provider: Arc<dyn ChatProvider> = match kind {
            ProviderKind::Openai => {
                // Local servers (vLLM, Ollama, llama.cpp, LM Studio) need no key, unless one was named explicitly
                // or the endpoint is OpenAI's own.
                if key.is_none() && (self.api_key_env.is_some() || endpoint.contains("api.openai.com")) {
                    return Err(LlmError::MissingKey { env: key_env });
                }
                Arc::new(OpenAiProvider::new(&endpoint, model.clone(), key, settings, pricing)?)
            }
            ProviderKind::Anthropic => {
                let key = key.ok_or(LlmError::MissingKey { env: key_env })?;
                Arc::new(AnthropicProvider::new(
                    &endpoint,
                    model.clone(),
                    key,
                    settings,
                    pricing,
                )?)
            }
        };
        let redactor = Redactor::new(&self.redact_patterns, self.redact_ipv4)?;
        tracing::info!(provider = kind.as_str(), %endpoint, %model, "LLM configured");
        Ok(Some(
            LlmClient::new(provider, redactor, self.budget_limits())
                .with_description(format!("{} {model} at {endpoint}", kind.as_str()))
                .with_max_output_tokens(self.max_output_tokens),
        ))
    }

    /// Per-incident limits from the flags (0 = unlimited).
    pub fn budget_limits(&self) -> BudgetLimits {
        BudgetLimits {
            max_calls: (self.max_calls > 0).then_some(self.max_calls),
            max_tokens: (self.max_tokens > 0).then_some(self.max_tokens),
            max_cost_usd: self.max_cost_usd,
        }
    }

    /// HTTP timeouts and retries from the flags.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            request_timeout: Duration::from_secs(self.timeout_secs.max(1)),
            connect_timeout: Duration::from_secs(self.timeout_secs.clamp(1, 10)),
            call_timeout: Duration::from_secs(self.call_timeout_secs.max(1)),
            retry: RetryPolicy {
                max_retries: self.max_retries,
                ..RetryPolicy::default()
            },
        }
    }

    fn pricing(&self) -> Option<Pricing> {
        match (self.price_input_per_mtok, self.price_output_per_mtok) {
            (None, None) => None,
            (i, o) => Some(Pricing {
                input_per_mtok: i.unwrap_or(0.0),
                output_per_mtok: o.unwrap_or(0.0),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        llm: LlmConfig,
    }

    /// A command with its own fields named like this group's (as `selfheal demo` has).
    #[derive(Parser)]
    struct Beside {
        #[arg(long, default_value_t = 150)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 1)]
        max_tokens: u64,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        llm: LlmConfig,
    }

    #[test]
    fn flattening_beside_fields_of_the_same_name_keeps_both() {
        use clap::CommandFactory;
        Beside::command().debug_assert();
        let b =
            Beside::try_parse_from(["x", "--timeout-secs", "7", "--llm-timeout-secs", "9", "--model", "m"]).unwrap();
        assert_eq!((b.timeout_secs, b.llm.timeout_secs), (7, 9));
        assert_eq!(b.max_tokens, 1);
        assert_eq!(b.model.as_deref(), Some("m"));
        if std::env::var_os("SELFHEAL_LLM_MODEL").is_none() {
            assert_eq!(b.llm.model, None);
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn nothing_configured_means_no_llm() {
        let cfg = LlmConfig::default();
        assert!(cfg.client_with_env(no_env).unwrap().is_none());
        // Endpoint and model alone do not switch it on either.
        let cfg = LlmConfig {
            endpoint: Some("http://127.0.0.1:8080/v1".into()),
            model: Some("m".into()),
            ..cfg
        };
        assert!(cfg.client_with_env(no_env).unwrap().is_none());
    }

    #[test]
    fn flags_parse_and_defaults_match() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        if std::env::var_os("SELFHEAL_LLM_PROVIDER").is_none() {
            assert_eq!(cli.llm.provider, None);
        }
        let cli = Cli::try_parse_from([
            "x",
            "--llm-provider",
            "ollama",
            "--llm-endpoint",
            "http://127.0.0.1:11434/v1",
            "--llm-model",
            "qwen2.5-coder",
            "--llm-max-calls",
            "0",
            "--llm-redact-pattern",
            "a=b+",
            "--llm-redact-pattern",
            "c",
        ])
        .unwrap();
        assert_eq!(cli.llm.provider, Some(ProviderKind::Openai));
        assert_eq!(cli.llm.redact_patterns, vec!["a=b+".to_string(), "c".to_string()]);
        assert_eq!(cli.llm.budget_limits().max_calls, None);
        assert_eq!(cli.llm.timeout_secs, LlmConfig::default().timeout_secs);
        // A local OpenAI-compatible server needs no key.
        let client = cli.llm.client_with_env(no_env).unwrap().unwrap();
        assert!(client.description().contains("qwen2.5-coder"));
    }

    #[test]
    fn anthropic_needs_a_key_and_hides_it() {
        let cfg = LlmConfig {
            provider: Some(ProviderKind::Anthropic),
            model: Some("claude-sonnet".into()),
            api_key_env: Some("MY_KEY".into()),
            ..LlmConfig::default()
        };
        match cfg.client_with_env(no_env) {
            Err(LlmError::MissingKey { env }) => assert_eq!(env, "MY_KEY"),
            other => panic!("{other:?}"),
        }
        let secret = "sk-ant-api03-SECRETSECRETSECRET";
        let client = cfg
            .client_with_env(|n| (n == "MY_KEY").then(|| secret.to_string()))
            .unwrap()
            .unwrap();
        assert!(!format!("{client:?}").contains("SECRETSECRET"));
        assert_eq!(
            format!(
                "{:?} {}",
                SecretString::new(secret.into()),
                SecretString::new(secret.into())
            ),
            "*** ***"
        );
    }

    #[test]
    fn openai_cloud_needs_a_key_and_model_is_required() {
        let cfg = LlmConfig {
            provider: Some(ProviderKind::Openai),
            model: Some("gpt".into()),
            ..LlmConfig::default()
        };
        assert!(matches!(cfg.client_with_env(no_env), Err(LlmError::MissingKey { env }) if env == "OPENAI_API_KEY"));
        let cfg = LlmConfig { model: None, ..cfg };
        assert!(matches!(cfg.client_with_env(no_env), Err(LlmError::Config(_))));
        let cfg = LlmConfig {
            provider: Some(ProviderKind::Openai),
            model: Some("m".into()),
            endpoint: Some("not a url".into()),
            ..LlmConfig::default()
        };
        assert!(matches!(cfg.client_with_env(no_env), Err(LlmError::Config(_))));
    }
}
