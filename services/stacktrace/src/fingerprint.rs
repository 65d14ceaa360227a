//! Grouping fingerprints: one failure, one fingerprint, across line shifts and deploys.
//!
//! # The rule (version 1)
//!
//! A fingerprint is the first 16 hex characters of SHA-256 over:
//!
//! 1. `v1`;
//! 2. the exception type of the **root cause**, trimmed, with a leading `builtins.`
//!    removed (Python prints built-in types both ways);
//! 3. up to six **frame keys** from the root cause's frames, innermost first: its
//!    in-app frames, or when it has none, its first frames. A frame key is
//!    `module|function|file name`, where
//!    - line and column numbers are left out (they shift with every edit),
//!    - the file contributes only its base name, so container paths, build directories
//!      and versioned deploy directories do not matter,
//!    - digit runs are removed from all three and long hex runs (addresses, Rust symbol
//!      hashes, bundle hashes) are masked, so `lambda$main$0`, `func1`,
//!      `<Main>b__0_0`, `$$Lambda$14/0x0000…` and `main.3fa2b1c9.js` are stable;
//! 4. only when no chosen frame names a function (a Rust panic location without a
//!    backtrace, a truncated trace): the normalised message (see [`normalize_message`]).
//!
//! The message is otherwise left out, because it carries data (ids, amounts, names).
//! When there is no trace at all, [`fingerprint_fallback`] hashes `fallback`, the type
//! and the normalised message. Different types, or different in-app call paths, give
//! different fingerprints.

use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::Frame;
use crate::text::{compile, truncate_chars};

/// How many frames take part in a fingerprint.
pub const FINGERPRINT_FRAMES: usize = 6;

static UUID: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)(?-u:\b)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?-u:\b)"));
static HEX_PREFIXED: LazyLock<Regex> = LazyLock::new(|| compile(r"(?i)(?-u:\b)0x[0-9a-f]+(?-u:\b)"));
static LONG_HEX: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)(?-u:\b)[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*(?-u:\b)|(?-u:\b)[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*(?-u:\b)",
    )
});
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| compile(r#"'[^'\n]{0,200}'|"[^"\n]{0,200}"|`[^`\n]{0,200}`|«[^»\n]{0,200}»"#));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| compile(r"\d+(?:[.,]\d+)*"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| compile(r"\s+"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| compile(r"\d+"));
static SYMBOL_HASH: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)(?:::h[0-9a-f]{16}$|0x[0-9a-f]+|(?-u:\b)[0-9a-f]{8,}(?-u:\b))"));

/// Masks what varies between occurrences of one failure in a message: UUIDs, hex,
/// quoted values, e-mail addresses and numbers; collapses whitespace; keeps the first
/// 300 characters.
pub fn normalize_message(message: &str) -> String {
    let m = truncate_chars(message, 2000);
    let m = UUID.replace_all(m, "<uuid>");
    let m = QUOTED.replace_all(&m, "<str>");
    let m = EMAIL.replace_all(&m, "<email>");
    let m = HEX_PREFIXED.replace_all(&m, "<hex>");
    let m = mask_long_hex(&m);
    let m = NUMBER.replace_all(&m, "<n>");
    let m = SPACES.replace_all(m.trim(), " ");
    truncate_chars(&m, 300).to_string()
}

/// Masks hex-looking words of eight characters or more that mix digits and letters.
fn mask_long_hex(s: &str) -> String {
    LONG_HEX
        .replace_all(s, |caps: &regex::Captures<'_>| {
            let w = caps.get(0).map(|m| m.as_str()).unwrap_or("");
            if w.len() >= 8 {
                "<hex>".to_string()
            } else {
                w.to_string()
            }
        })
        .into_owned()
}

/// The exception type as it takes part in fingerprints.
fn normalize_type(ty: &str) -> String {
    let t = truncate_chars(ty.trim(), 300);
    t.strip_prefix("builtins.").unwrap_or(t).to_string()
}

/// Removes digits and hashes from a name.
fn normalize_name(s: &str) -> String {
    let s = truncate_chars(s, 500);
    let s = SYMBOL_HASH.replace_all(s, "");
    DIGITS.replace_all(&s, "").into_owned()
}

/// The base name of a path, without digits and hashes.
fn normalize_file(file: &str) -> String {
    let base = file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file)
        .split('?')
        .next()
        .unwrap_or("");
    normalize_name(base)
}

/// The part of one frame that takes part in a fingerprint.
fn frame_key(f: &Frame) -> String {
    format!(
        "{}|{}|{}",
        normalize_name(f.module.as_deref().unwrap_or("")),
        normalize_name(&f.function),
        normalize_file(f.file.as_deref().unwrap_or(""))
    )
}

/// The frames that take part in a fingerprint: in-app ones, else the innermost ones.
fn chosen(frames: &[Frame]) -> Vec<&Frame> {
    let in_app: Vec<&Frame> = frames.iter().filter(|f| f.in_app).take(FINGERPRINT_FRAMES).collect();
    if in_app.is_empty() {
        frames.iter().take(FINGERPRINT_FRAMES).collect()
    } else {
        in_app
    }
}

fn digest(parts: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let out = h.finalize();
    hex::encode(out.get(..8).unwrap_or(&[]))
}

/// Fingerprint of an exception type and its frames (innermost first), see the module docs.
pub fn fingerprint_exception(exception_type: &str, frames: &[Frame]) -> String {
    fingerprint_with_message(exception_type, "", frames)
}

/// Fingerprint of a type, message and frames; the message counts only when no chosen
/// frame names a function.
pub(crate) fn fingerprint_with_message(exception_type: &str, message: &str, frames: &[Frame]) -> String {
    let picked = chosen(frames);
    if picked.is_empty() {
        return fingerprint_fallback(exception_type, message);
    }
    let mut parts = vec!["v1".to_string(), normalize_type(exception_type)];
    parts.extend(picked.iter().map(|f| frame_key(f)));
    if picked.iter().all(|f| f.function.trim().is_empty()) {
        parts.push(format!("msg:{}", normalize_message(message)));
    }
    digest(&parts)
}

/// Fingerprint of an exception without a parsable trace: type and normalised message.
pub fn fingerprint_fallback(exception_type: &str, message: &str) -> String {
    digest(&[
        "fallback".to_string(),
        normalize_type(exception_type),
        normalize_message(message),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            module: None,
            file: Some(file.into()),
            line: Some(line),
            column: None,
            in_app: true,
        }
    }

    #[test]
    fn stable_across_lines_and_paths() {
        let a = fingerprint_exception("ZeroDivisionError", &[frame("calc", "/app/pricing.py", 14)]);
        let b = fingerprint_exception(
            "ZeroDivisionError",
            &[frame("calc", "/srv/release-20240101/pricing.py", 19)],
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let c = fingerprint_exception("ValueError", &[frame("calc", "/app/pricing.py", 14)]);
        assert_ne!(a, c);
        let d = fingerprint_exception("ZeroDivisionError", &[frame("total", "/app/pricing.py", 14)]);
        assert_ne!(a, d);
    }

    #[test]
    fn message_normalisation() {
        assert_eq!(
            normalize_message("user 4711 not found (id=0xdeadbeef, req 3f2a1b9c-1111-2222-3333-444455556666) 'bob'"),
            "user <n> not found (id=<hex>, req <uuid>) <str>"
        );
        assert_eq!(
            fingerprint_fallback("KeyError", "'user_1'"),
            fingerprint_fallback("KeyError", "'user_2'")
        );
        assert_ne!(
            fingerprint_fallback("KeyError", "x"),
            fingerprint_fallback("IndexError", "x")
        );
        assert_eq!(normalize_message("sha 9f86d081884c7d65 ok"), "sha <hex> ok");
    }

    #[test]
    fn names_lose_digits_and_hashes() {
        assert_eq!(normalize_name("lambda$main$0"), "lambda$main$");
        assert_eq!(normalize_name("myapp::calc::h0123456789abcdef"), "myapp::calc");
        assert_eq!(normalize_file("/app/static/main.3fa2b1c9.js"), "main..js");
    }
}
