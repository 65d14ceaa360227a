//! Redaction of secrets and personal data before any prompt leaves the process.
//!
//! Telemetry is written by whoever can make a service log something, and services log
//! credentials by accident. Every text that goes into a prompt passes a [`Redactor`]:
//! built-in patterns (bearer tokens, `Authorization` headers, AWS/OpenAI/Anthropic/GitHub/
//! Slack keys, JWTs, `password=`/`secret=`/`token=`/`api_key=` values, credentials in URLs,
//! private key blocks, e-mail addresses, optionally IPv4 addresses) plus configured ones.
//! Matches become `[REDACTED:<kind>]`; the counts per kind go to the audit log (never the values).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::LlmError;

/// How many matches of each kind were redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedactionCounts(pub BTreeMap<String, usize>);

impl RedactionCounts {
    /// Matches of one kind.
    pub fn get(&self, kind: &str) -> usize {
        self.0.get(kind).copied().unwrap_or(0)
    }
    /// Matches of all kinds.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
    /// Add another set of counts.
    pub fn merge(&mut self, other: &RedactionCounts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }
    fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_string()).or_default() += 1;
    }
}

/// One pattern. When the regex has a group named `v`, only that group is replaced
/// (so `password=` stays readable and only the value goes).
#[derive(Debug, Clone)]
struct Rule {
    kind: String,
    re: Regex,
}

/// Value part of `key=value`, `key: value`, `"key": "value"`.
const VALUE: &str = r#"(?P<v>"[^"\r\n]*"|'[^'\r\n]*'|[^\s,;&"'\[\]{}()<>]+)"#;

/// Built-in rules, in the order they are applied (more specific first).
fn builtin_rules(ipv4: bool) -> Vec<(&'static str, String)> {
    let kv = |keys: &str| format!(r#"(?i)[A-Za-z0-9_.-]*(?:{keys})"?\s*[:=]\s*{VALUE}"#);
    let mut rules = vec![
        (
            "private_key",
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)".to_string(),
        ),
        (
            "authorization",
            r#"(?i)\b(?:proxy-)?authorization"?\s*[:=]\s*"?(?P<v>[^\r\n",}]+)"#.to_string(),
        ),
        (
            "url_credentials",
            r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<v>[^@\s/]+)@".to_string(),
        ),
        ("password", kv("password|passwd")),
        (
            "api_key",
            kv("api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key"),
        ),
        ("secret", kv("secret")),
        ("token", kv("token")),
        ("bearer", r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)".to_string()),
        (
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}".to_string(),
        ),
        ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{16,}".to_string()),
        ("openai_key", r"\bsk-[A-Za-z0-9_-]{16,}".to_string()),
        ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b".to_string()),
        (
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})".to_string(),
        ),
        ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}".to_string()),
        (
            "email",
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b".to_string(),
        ),
    ];
    if ipv4 {
        rules.push((
            "ipv4",
            r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b".to_string(),
        ));
    }
    rules
}

/// Replaces secrets and personal data in text with `[REDACTED:<kind>]`.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<Rule>,
}

static BUILTIN: LazyLock<Redactor> = LazyLock::new(|| Redactor {
    rules: builtin_rules(false)
        .into_iter()
        // The built-in patterns are constants covered by tests; a failure here cannot depend on input.
        .filter_map(|(kind, re)| {
            Regex::new(&re).ok().map(|re| Rule {
                kind: kind.to_string(),
                re,
            })
        })
        .collect(),
});

impl Redactor {
    /// The built-in patterns without IPv4 and without extras.
    pub fn builtin() -> &'static Redactor {
        &BUILTIN
    }

    /// Built-in patterns plus `extra` regexes, each `kind=REGEX` or a bare `REGEX` (kind `custom`).
    /// `ipv4` also redacts IPv4 addresses (off by default: they help diagnosis and are rarely personal).
    pub fn new(extra: &[String], ipv4: bool) -> Result<Redactor, LlmError> {
        let named = Regex::new(r"^([a-z][a-z0-9_]{0,31})=(.+)$").map_err(|e| LlmError::Config(e.to_string()))?;
        let mut rules = Vec::new();
        for (kind, re) in builtin_rules(ipv4) {
            let re = Regex::new(&re).map_err(|e| LlmError::Config(format!("built-in pattern {kind}: {e}")))?;
            rules.push(Rule {
                kind: kind.to_string(),
                re,
            });
        }
        for pattern in extra.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let (kind, re) = match named.captures(pattern) {
                Some(c) => (c[1].to_string(), c[2].to_string()),
                None => ("custom".to_string(), pattern.to_string()),
            };
            let re = Regex::new(&re).map_err(|e| LlmError::Config(format!("redaction pattern {pattern:?}: {e}")))?;
            rules.push(Rule { kind, re });
        }
        Ok(Redactor { rules })
    }

    /// The text with every match replaced, and the counts per kind.
    pub fn redact(&self, text: &str) -> (String, RedactionCounts) {
        let mut counts = RedactionCounts::default();
        let out = self.redact_counting(text, &mut counts);
        (out, counts)
    }

    /// Like [`Redactor::redact`], adding to existing counts.
    pub fn redact_counting(&self, text: &str, counts: &mut RedactionCounts) -> String {
        let mut current = text.to_string();
        for rule in &self.rules {
            if !rule.re.is_match(&current) {
                continue;
            }
            let marker = format!("[REDACTED:{}]", rule.kind);
            let mut out = String::with_capacity(current.len());
            let mut last = 0;
            for caps in rule.re.captures_iter(&current) {
                let Some(whole) = caps.get(0) else { continue };
                let target = caps.name("v").unwrap_or(whole);
                // A value that is already a redaction marker is not counted twice.
                if target
                    .as_str()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .starts_with("[REDACTED:")
                {
                    continue;
                }
                out.push_str(&current[last..target.start()]);
                out.push_str(&marker);
                last = target.end();
                counts.add(&rule.kind);
            }
            out.push_str(&current[last..]);
            current = out;
        }
        current
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(text: &str, kind: &str, secret: &str) {
        let (out, counts) = Redactor::builtin().redact(text);
        assert!(!out.contains(secret), "{kind}: {secret:?} survived in {out:?}");
        assert!(
            out.contains(&format!("[REDACTED:{kind}]")),
            "{kind}: no marker in {out:?}"
        );
        assert!(counts.get(kind) >= 1, "{kind}: {counts:?}");
    }

    #[test]
    fn every_builtin_pattern_compiles() {
        assert_eq!(Redactor::builtin().rules.len(), builtin_rules(false).len());
        assert_eq!(Redactor::new(&[], true).unwrap().rules.len(), builtin_rules(true).len());
    }

    #[test]
    fn each_secret_kind_is_redacted() {
        one(
            "GET /x Authorization: Basic dXNlcjpwYXNz\n",
            "authorization",
            "dXNlcjpwYXNz",
        );
        one(
            "calling upstream with bearer abcdef0123456789xyz",
            "bearer",
            "abcdef0123456789xyz",
        );
        one(
            "aws key AKIAIOSFODNN7EXAMPLE in env",
            "aws_access_key",
            "AKIAIOSFODNN7EXAMPLE",
        );
        one(
            "key sk-proj-ABCDEFGHIJKLMNOPQRSTUV used",
            "openai_key",
            "ABCDEFGHIJKLMNOPQRSTUV",
        );
        one(
            "key sk-ant-api03-ABCDEFGHIJKLMNOPQRST used",
            "anthropic_key",
            "ABCDEFGHIJKLMNOPQRST",
        );
        one(
            "push with ghp_0123456789abcdefghijABCDEFGHIJ0123",
            "github_token",
            "ghp_0123456789abcdefghij",
        );
        one(
            "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        );
        one("db connect password=hunter2 failed", "password", "hunter2");
        one(r#"{"db_password": "two words"}"#, "password", "two words");
        one("passwd: s3cr3t", "password", "s3cr3t");
        one("client_secret=abc123def", "secret", "abc123def");
        one("url ?token=tok_9f8e7d6c&x=1", "token", "tok_9f8e7d6c");
        one("API_KEY=zzz-123-yyy", "api_key", "zzz-123-yyy");
        one("api-key: qwerty987", "api_key", "qwerty987");
        one(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----",
            "private_key",
            "MIIEpAIBAAKCAQEA7",
        );
        one(
            "user alice.smith@example.com not found",
            "email",
            "alice.smith@example.com",
        );
        one("postgres://app:pa55word@db:5432/x", "url_credentials", "pa55word");
        one(
            "slack xoxb-123456789012-abcdefABCDEF",
            "slack_token",
            "xoxb-123456789012",
        );
    }

    #[test]
    fn keeps_what_is_not_secret() {
        let text = "ZeroDivisionError: float division by zero at pricing_logic.py:14 max_tokens=100 tokens: 5";
        let (out, counts) = Redactor::builtin().redact(text);
        assert_eq!(out, text);
        assert_eq!(counts.total(), 0);
        // IPv4 only on request.
        let (out, _) = Redactor::builtin().redact("peer 10.1.2.3");
        assert!(out.contains("10.1.2.3"));
        let (out, counts) = Redactor::new(&[], true).unwrap().redact("peer 10.1.2.3");
        assert_eq!(out, "peer [REDACTED:ipv4]");
        assert_eq!(counts.get("ipv4"), 1);
    }

    #[test]
    fn counts_per_kind_and_idempotent() {
        let text = "a@b.io and c@d.org, password=x1 token=y2";
        let (out, counts) = Redactor::builtin().redact(text);
        assert_eq!(counts.get("email"), 2);
        assert_eq!(counts.get("password"), 1);
        assert_eq!(counts.get("token"), 1);
        assert_eq!(counts.total(), 4);
        let (again, counts2) = Redactor::builtin().redact(&out);
        assert_eq!(again, out);
        assert_eq!(counts2.total(), 0);
    }

    #[test]
    fn configured_patterns() {
        let r = Redactor::new(&["customer_id=CUST-\\d{6}".into(), "ACME[0-9]{4}".into()], false).unwrap();
        let (out, counts) = r.redact("order for CUST-123456 with ACME2024");
        assert_eq!(out, "order for [REDACTED:customer_id] with [REDACTED:custom]");
        assert_eq!(counts.get("customer_id"), 1);
        assert_eq!(counts.get("custom"), 1);
        assert!(matches!(Redactor::new(&["(".into()], false), Err(LlmError::Config(_))));
    }
}
