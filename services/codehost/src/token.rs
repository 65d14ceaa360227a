//! The code host's token: read from the environment or a file, shown to nobody.

use selfheal_catalog::TokenSource;

use crate::CodeHostError;

/// A secret token. `Debug` prints `Token(<redacted>)`; there is no `Display`, so it cannot end up
/// in a formatted message by accident; [`Token::expose`] is the one way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from its value (surrounding whitespace removed); `None` when empty.
    pub fn new(value: impl Into<String>) -> Option<Token> {
        let value = value.into();
        let value = value.trim();
        (!value.is_empty()).then(|| Token(value.to_string()))
    }

    /// Reads the token from where the catalog says; the error names the source, not a value.
    pub fn load(source: &TokenSource) -> Result<Token, CodeHostError> {
        match source {
            TokenSource::Env(var) => match std::env::var(var) {
                Ok(value) => Token::new(value)
                    .ok_or_else(|| CodeHostError::Token(format!("environment variable {var} is empty"))),
                Err(_) => Err(CodeHostError::Token(format!("environment variable {var} is not set"))),
            },
            TokenSource::File(path) => match std::fs::read_to_string(path) {
                Ok(value) => Token::new(value)
                    .ok_or_else(|| CodeHostError::Token(format!("token file {} is empty", path.display()))),
                Err(e) => Err(CodeHostError::Token(format!(
                    "cannot read token file {}: {}",
                    path.display(),
                    e.kind()
                ))),
            },
        }
    }

    /// The value, for an `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the token (and of its Basic-auth encodings) replaced by
    /// `<redacted>`: the last line of defence for text that came back from a server or git.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "<redacted>");
        for encoded in crate::push::basic_auth_values(self) {
            out = out.replace(&encoded, "<redacted>");
        }
        out
    }
}
