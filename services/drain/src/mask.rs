//! Variable masking: turns the parts of a log line that change from one
//! occurrence to the next (numbers, ids, hex, IPs, paths, UUIDs, timestamps)
//! into fixed tokens before the line reaches the prefix tree.
//!
//! Two kinds of mask exist. Regex masks are applied first, in order, to the
//! whole line, exactly like the per-dataset preprocessing of the logparser
//! benchmark and drain3's masking instructions. Built-in masks are then
//! applied per token by a single hand-written byte scanner: it does the work
//! of half a dozen regexes in one pass, which is what keeps the miner at
//! millions of lines per second.

use std::borrow::Cow;

use regex::Regex;

use crate::miner::TRUNCATED as TRUNC;

/// Which variable a mask recognises.
#[derive(Debug, Clone)]
pub enum MaskKind {
    /// Any regex, replaced over the whole line before tokenising.
    Regex(Regex),
    /// Integers and decimals (`42`, `-7`, `3.14`, `1e-3`), also with a short
    /// unit suffix (`250ms` becomes `<NUM>ms`), when not glued to letters in front.
    Number,
    /// `0x1f`-style literals and runs of at least 8 hex digits mixing digits and letters.
    Hex,
    /// IPv4 addresses with an optional `:port`.
    Ip,
    /// RFC 4122 textual UUIDs.
    Uuid,
    /// ISO dates (`2024-05-01`, `2024-05-01T10:00:00.123Z`) and clock times (`10:00:00,123`).
    Timestamp,
    /// Absolute or relative file paths with at least two segments (`/var/log/x`, `./a/b`).
    Path,
}

/// One masking rule: what to recognise and the token that replaces it.
#[derive(Debug, Clone)]
pub struct Mask {
    /// What the mask recognises.
    pub kind: MaskKind,
    /// The replacement token, e.g. `<NUM>`; `<*>` makes the position a wildcard.
    pub token: String,
}

impl Mask {
    /// A regex mask; fails when the pattern does not compile.
    pub fn regex(pattern: &str, token: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            kind: MaskKind::Regex(Regex::new(pattern)?),
            token: token.to_owned(),
        })
    }

    /// A built-in mask with its replacement token.
    pub fn builtin(kind: MaskKind, token: &str) -> Self {
        Self {
            kind,
            token: token.to_owned(),
        }
    }

    /// The built-in masks every miner uses unless told otherwise.
    pub fn defaults() -> Vec<Mask> {
        vec![
            Mask::builtin(MaskKind::Uuid, "<UUID>"),
            Mask::builtin(MaskKind::Timestamp, "<TS>"),
            Mask::builtin(MaskKind::Ip, "<IP>"),
            Mask::builtin(MaskKind::Path, "<PATH>"),
            Mask::builtin(MaskKind::Hex, "<HEX>"),
            Mask::builtin(MaskKind::Number, "<NUM>"),
        ]
    }
}

/// The compiled masking pipeline of one miner.
#[derive(Debug, Clone, Default)]
pub(crate) struct Masker {
    regexes: Vec<(Regex, String)>,
    /// Every replacement token, plus the wildcard.
    tokens: Vec<String>,
    uuid: Option<String>,
    ts: Option<String>,
    ip: Option<String>,
    path: Option<String>,
    hex: Option<String>,
    num: Option<String>,
}

impl Masker {
    /// Sorts the configured masks into the regex pass and the token scanner.
    pub(crate) fn new(masks: &[Mask]) -> Self {
        let mut m = Masker::default();
        m.tokens.push(crate::miner::WILDCARD.to_owned());
        for mask in masks {
            if !mask.token.is_empty() && !m.tokens.contains(&mask.token) {
                m.tokens.push(mask.token.clone());
            }
            let t = Some(mask.token.clone());
            match &mask.kind {
                MaskKind::Regex(r) => m.regexes.push((r.clone(), mask.token.clone())),
                MaskKind::Uuid => m.uuid = t,
                MaskKind::Timestamp => m.ts = t,
                MaskKind::Ip => m.ip = t,
                MaskKind::Path => m.path = t,
                MaskKind::Hex => m.hex = t,
                MaskKind::Number => m.num = t,
            }
        }
        m
    }

    fn any_builtin(&self) -> bool {
        self.uuid.is_some()
            || self.ts.is_some()
            || self.ip.is_some()
            || self.path.is_some()
            || self.hex.is_some()
            || self.num.is_some()
    }

    /// Applies the regex masks to the whole line.
    pub(crate) fn apply_regexes<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut cur: Cow<'a, str> = Cow::Borrowed(line);
        for (re, token) in &self.regexes {
            if let Cow::Owned(s) = re.replace_all(&cur, regex::NoExpand(token)) {
                cur = Cow::Owned(s);
            }
        }
        cur
    }

    /// Whether a token is nothing but masked variables and punctuation
    /// (`<IP>:`, `[<*>]`, `/<NUM>`), as opposed to one with constant text
    /// around a variable (`uid=<NUM>`).
    pub(crate) fn is_variable(&self, tok: &str) -> bool {
        let b = tok.as_bytes();
        let mut found = false;
        let mut i = 0;
        'outer: while i < b.len() {
            for t in &self.tokens {
                if t.as_bytes().first() == Some(&b[i]) && b[i..].starts_with(t.as_bytes()) {
                    i += t.len();
                    found = true;
                    continue 'outer;
                }
            }
            if b[i].is_ascii_alphanumeric() || b[i] >= 0x80 {
                return false;
            }
            i += 1;
        }
        found
    }

    /// Splits `line` on whitespace, masks each token and appends the tokens
    /// to `buf`, recording each token's end offset in `ends`. At most
    /// `max_tokens` tokens are kept; when more exist the last kept token is
    /// the literal `<TRUNC>`.
    pub(crate) fn tokenize(&self, line: &str, max_tokens: usize, buf: &mut String, ends: &mut Vec<u32>) {
        buf.clear();
        ends.clear();
        let builtin = self.any_builtin();
        let max_tokens = max_tokens.max(1);
        let b = line.as_bytes();
        let n = b.len();
        let mut i = 0;
        loop {
            // Skip whitespace (ASCII by table, Unicode White_Space like str::split_whitespace).
            while i < n {
                let k = CLASS[b[i] as usize];
                if k & WS != 0 {
                    i += 1;
                } else if k & NON_ASCII != 0 {
                    let ch = line[i..].chars().next().unwrap_or('x');
                    if !ch.is_whitespace() {
                        break;
                    }
                    i += ch.len_utf8();
                } else {
                    break;
                }
            }
            if i >= n {
                break;
            }
            let start = i;
            let mut has_digit = false;
            while i < n {
                let k = CLASS[b[i] as usize];
                if k & (WS | NON_ASCII) == 0 {
                    has_digit |= k & DIGIT != 0;
                    i += 1;
                } else if k & WS != 0 {
                    break;
                } else {
                    let ch = line[i..].chars().next().unwrap_or('x');
                    if ch.is_whitespace() {
                        break;
                    }
                    i += ch.len_utf8();
                }
            }
            let tok = &line[start..i];
            if ends.len() == max_tokens {
                // Replace the last kept token by the truncation marker.
                ends.pop();
                let start = ends.last().map_or(0, |&e| e as usize);
                buf.truncate(start);
                buf.push_str(TRUNC);
                ends.push(buf.len() as u32);
                break;
            }
            if builtin {
                self.mask_token(tok, has_digit, buf);
            } else {
                buf.push_str(tok);
            }
            ends.push(buf.len() as u32);
        }
    }

    /// Appends `tok` to `out` with built-in masks applied.
    fn mask_token(&self, tok: &str, has_digit: bool, out: &mut String) {
        let b = tok.as_bytes();
        // Fast path: nothing to mask in a token without digits that cannot be a path.
        let path_like = self.path.is_some() && {
            let first_sig = b
                .iter()
                .position(|c| !matches!(c, b'(' | b'[' | b'{' | b'<' | b'"' | b'\''));
            first_sig.is_some_and(|i| matches!(b[i], b'/' | b'~' | b'.'))
        };
        if !path_like && !has_digit {
            out.push_str(tok);
            return;
        }
        if path_like
            && let Some(token) = &self.path
            && let Some((s, e)) = path_span(b)
        {
            out.push_str(&tok[..s]);
            out.push_str(token);
            out.push_str(&tok[e..]);
            return;
        }
        let n = b.len();
        let mut i = 0;
        let mut copied = 0; // bytes of tok already written to out
        while i < n {
            let c = b[i];
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if boundary
                && (c.is_ascii_alphanumeric() || c == b'-' || c == b'+')
                && let Some((end, token, suffix_from)) = self.match_at(b, i)
            {
                out.push_str(&tok[copied..i]);
                out.push_str(token);
                if let Some(sf) = suffix_from {
                    out.push_str(&tok[sf..end]);
                }
                i = end;
                copied = end;
                continue;
            }
            if c.is_ascii_alphanumeric() {
                // Skip the rest of this alphanumeric run: masks start at boundaries only.
                while i < n && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        out.push_str(&tok[copied..]);
    }

    /// Tries the built-in matchers at `i` (a word boundary). Returns the end of
    /// the match, the replacement token and, for numbers with a unit, where the
    /// unit suffix to keep starts.
    fn match_at(&self, b: &[u8], i: usize) -> Option<(usize, &str, Option<usize>)> {
        let c = b[i];
        if c == b'-' || c == b'+' {
            let t = self.num.as_ref()?;
            return match_number(b, i).map(|(e, suffix)| (e, t.as_str(), suffix));
        }
        // One look at the digit and hex runs here rules out most matchers.
        let (d_end, nd) = digits(b, i, usize::MAX);
        let h_end = hex_run(b, i);
        let next = b.get(d_end).copied();
        if h_end - i == 8
            && b.get(h_end) == Some(&b'-')
            && let Some(t) = &self.uuid
            && let Some(e) = match_uuid(b, i)
        {
            return Some((e, t, None));
        }
        if nd > 0 {
            if ((nd == 4 && matches!(next, Some(b'-' | b'/'))) || (nd <= 2 && next == Some(b':')))
                && let Some(t) = &self.ts
                && let Some(e) = match_timestamp(b, i)
            {
                return Some((e, t, None));
            }
            if nd <= 3
                && next == Some(b'.')
                && let Some(t) = &self.ip
                && let Some(e) = match_ip(b, i)
            {
                return Some((e, t, None));
            }
        }
        if let Some(t) = &self.hex {
            if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
                if let Some(e) = match_hex(b, i) {
                    return Some((e, t, None));
                }
            } else if h_end - i >= 8 && h_end > d_end && at_end(b, h_end) && b[i..h_end].iter().any(u8::is_ascii_digit)
            {
                return Some((h_end, t, None));
            }
        }
        if nd > 0
            && let Some(t) = &self.num
            && let Some((e, suffix)) = match_number(b, i)
        {
            return Some((e, t, suffix));
        }
        None
    }
}

const WS: u8 = 1;
const DIGIT: u8 = 2;
const NON_ASCII: u8 = 4;

/// Byte classes for the tokenizer: one table load per byte instead of a chain of comparisons.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c >= 0x80 {
            NON_ASCII
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            WS
        } else if c.is_ascii_digit() {
            DIGIT
        } else {
            0
        };
        i += 1;
    }
    t
};

#[inline]
fn at_end(b: &[u8], j: usize) -> bool {
    j >= b.len() || !b[j].is_ascii_alphanumeric()
}

fn digits(b: &[u8], mut j: usize, max: usize) -> (usize, usize) {
    let start = j;
    while j < b.len() && j - start < max && b[j].is_ascii_digit() {
        j += 1;
    }
    (j, j - start)
}

fn hex_run(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && b[j].is_ascii_hexdigit() {
        j += 1;
    }
    j
}

fn match_uuid(b: &[u8], i: usize) -> Option<usize> {
    let groups = [8usize, 4, 4, 4, 12];
    let mut j = i;
    for (k, g) in groups.iter().enumerate() {
        let e = hex_run(b, j);
        if e - j != *g {
            return None;
        }
        j = e;
        if k < 4 {
            if b.get(j) != Some(&b'-') {
                return None;
            }
            j += 1;
        }
    }
    at_end(b, j).then_some(j)
}

fn match_ip(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for k in 0..4 {
        let (e, n) = digits(b, j, 3);
        if n == 0 {
            return None;
        }
        j = e;
        if k < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    if !at_end(b, j) {
        return None;
    }
    if b.get(j) == Some(&b':') {
        let (e, n) = digits(b, j + 1, 5);
        if n > 0 && at_end(b, e) {
            j = e;
        }
    }
    Some(j)
}

/// `HH:MM:SS[.,frac]` starting at `j`; returns its end.
fn clock(b: &[u8], j: usize) -> Option<usize> {
    let (e, n) = digits(b, j, 2);
    if n == 0 || b.get(e) != Some(&b':') {
        return None;
    }
    let (e, n) = digits(b, e + 1, 2);
    if n != 2 || b.get(e) != Some(&b':') {
        return None;
    }
    let (mut e, n) = digits(b, e + 1, 2);
    if n != 2 {
        return None;
    }
    if matches!(b.get(e), Some(b'.' | b',')) {
        let (f, n) = digits(b, e + 1, 9);
        if n > 0 {
            e = f;
        }
    }
    Some(e)
}

fn match_timestamp(b: &[u8], i: usize) -> Option<usize> {
    // ISO date, optionally followed by T and a clock time and a zone.
    let (e, n) = digits(b, i, 4);
    if n == 4 && matches!(b.get(e), Some(b'-' | b'/')) {
        let sep = b[e];
        let (e2, n2) = digits(b, e + 1, 2);
        if n2 == 2 && b.get(e2) == Some(&sep) {
            let (e3, n3) = digits(b, e2 + 1, 2);
            if n3 == 2 {
                let mut end = e3;
                if matches!(b.get(end), Some(b'T' | b'_'))
                    && let Some(ce) = clock(b, end + 1)
                {
                    end = ce;
                    match b.get(end) {
                        Some(b'Z') => end += 1,
                        Some(b'+' | b'-') => {
                            let (z, nz) = digits(b, end + 1, 2);
                            if nz == 2 {
                                end = z;
                                if b.get(end) == Some(&b':') {
                                    let (z2, nz2) = digits(b, end + 1, 2);
                                    if nz2 == 2 {
                                        end = z2;
                                    }
                                } else {
                                    let (z2, nz2) = digits(b, end, 2);
                                    if nz2 == 2 {
                                        end = z2;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if at_end(b, end) {
                    return Some(end);
                }
            }
        }
        return None;
    }
    let e = clock(b, i)?;
    at_end(b, e).then_some(e)
}

fn match_hex(b: &[u8], i: usize) -> Option<usize> {
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let e = hex_run(b, i + 2);
        if e > i + 2 && at_end(b, e) {
            return Some(e);
        }
        return None;
    }
    let e = hex_run(b, i);
    if e - i < 8 || !at_end(b, e) {
        return None;
    }
    let run = &b[i..e];
    let has_digit = run.iter().any(u8::is_ascii_digit);
    let has_alpha = run.iter().any(u8::is_ascii_alphabetic);
    (has_digit && has_alpha).then_some(e)
}

/// A number at `i`; returns its end and, when a short unit follows, where the unit starts.
fn match_number(b: &[u8], i: usize) -> Option<(usize, Option<usize>)> {
    let mut j = i;
    if matches!(b[j], b'-' | b'+') {
        j += 1;
    }
    let (mut e, n) = digits(b, j, usize::MAX);
    if n == 0 {
        return None;
    }
    if b.get(e) == Some(&b'.') {
        let (f, nf) = digits(b, e + 1, usize::MAX);
        if nf > 0 {
            e = f;
        }
    }
    if matches!(b.get(e), Some(b'e' | b'E')) {
        let mut k = e + 1;
        if matches!(b.get(k), Some(b'-' | b'+')) {
            k += 1;
        }
        let (f, nf) = digits(b, k, 4);
        if nf > 0 && at_end(b, f) {
            return Some((f, None));
        }
    }
    if at_end(b, e) {
        return Some((e, None));
    }
    // A unit such as `ms`, `KB`, `s`, `th`: letters up to the end of the run.
    let mut k = e;
    while k < b.len() && b[k].is_ascii_alphabetic() {
        k += 1;
    }
    if k - e <= 5 && at_end(b, k) {
        return Some((k, Some(e)));
    }
    None
}

/// Where a path starts and ends inside a token (after leading brackets and
/// quotes, before trailing punctuation).
fn path_span(b: &[u8]) -> Option<(usize, usize)> {
    let s = b
        .iter()
        .position(|c| !matches!(c, b'(' | b'[' | b'{' | b'<' | b'"' | b'\''))?;
    let mut e = b.len();
    while e > s
        && matches!(
            b[e - 1],
            b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b',' | b';' | b':' | b'.'
        )
    {
        e -= 1;
    }
    let core = &b[s..e];
    let rest = if core.starts_with(b"/") {
        &core[1..]
    } else if core.starts_with(b"~/") || core.starts_with(b"./") {
        &core[2..]
    } else if core.starts_with(b"../") {
        &core[3..]
    } else {
        return None;
    };
    // At least two non-empty segments, and no `//` (URLs, comments) or `<` (already masked).
    let mut segs = 0;
    for seg in rest.split(|&c| c == b'/') {
        if seg.is_empty() || seg.contains(&b'<') {
            return None;
        }
        segs += 1;
    }
    (segs >= 2).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(line: &str) -> String {
        let m = Masker::new(&Mask::defaults());
        let mut buf = String::new();
        let mut ends = Vec::new();
        m.tokenize(line, 1000, &mut buf, &mut ends);
        let mut out = Vec::new();
        let mut start = 0;
        for &e in &ends {
            out.push(&buf[start..e as usize]);
            start = e as usize;
        }
        out.join(" ")
    }

    #[test]
    fn masks_numbers_and_units() {
        assert_eq!(mask("took 250ms for 3 items"), "took <NUM>ms for <NUM> items");
        assert_eq!(mask("ratio -0.75 and +3 and 1e-9"), "ratio <NUM> and <NUM> and <NUM>");
        assert_eq!(
            mask("worker-12 blk_-1608999687919862906 ok"),
            "worker-<NUM> blk_<NUM> ok"
        );
        assert_eq!(mask("sha256 utf8 log4j v2"), "sha256 utf8 log4j v2");
        assert_eq!(mask("uid=0 (uid=1000)"), "uid=<NUM> (uid=<NUM>)");
    }

    #[test]
    fn masks_ids_hex_uuid() {
        assert_eq!(mask("req 550e8400-e29b-41d4-a716-446655440000 done"), "req <UUID> done");
        assert_eq!(
            mask("addr 0x7ffd5a3c and deadbeef1234 and cafe"),
            "addr <HEX> and <HEX> and cafe"
        );
        assert_eq!(mask("commit 9fceb02d0ae598e95dc970b74767f19372d61af8"), "commit <HEX>");
    }

    #[test]
    fn masks_ips_paths_timestamps() {
        assert_eq!(mask("from 10.0.0.1 port 22"), "from <IP> port <NUM>");
        assert_eq!(mask("to /10.251.73.220:50010 [173.234.31.186]"), "to /<IP> [<IP>]");
        assert_eq!(mask("open /var/log/app.log: denied"), "open <PATH>: denied");
        assert_eq!(mask("at ./src/main.rs, ../x/y"), "at <PATH>, <PATH>");
        assert_eq!(mask("root / and /tmp stay"), "root / and /tmp stay");
        assert_eq!(
            mask("2024-05-01T10:00:00.123Z started 10:00:01,456"),
            "<TS> started <TS>"
        );
        assert_eq!(mask("2024-05-01 10:00:00+02:00 x"), "<TS> <TS>+<NUM>:<NUM> x");
        assert_eq!(mask("on 2024/05/01"), "on <TS>");
    }

    #[test]
    fn regex_masks_run_first() {
        let masks = vec![
            Mask::regex(r"blk_-?\d+", "<*>").unwrap(),
            Mask::builtin(MaskKind::Number, "<NUM>"),
        ];
        let m = Masker::new(&masks);
        let line = m.apply_regexes("block blk_-42 size 7");
        let mut buf = String::new();
        let mut ends = Vec::new();
        m.tokenize(&line, 100, &mut buf, &mut ends);
        assert_eq!(buf, "block<*>size<NUM>");
        assert_eq!(ends, vec![5, 8, 12, 17]);
    }

    #[test]
    fn variable_tokens_are_recognised() {
        let m = Masker::new(&Mask::defaults());
        for t in ["<IP>:", "[<*>]", "/<NUM>", "<NUM>:<NUM>", "<*>", "(<UUID>),"] {
            assert!(m.is_variable(t), "{t}");
        }
        for t in ["uid=<NUM>", "blk_<NUM>", "<NUM>ms", "user", ":", "<b>", "é<NUM>"] {
            assert!(!m.is_variable(t), "{t}");
        }
    }

    #[test]
    fn truncates_token_count() {
        let m = Masker::new(&[]);
        let line = "a ".repeat(5000);
        let mut buf = String::new();
        let mut ends = Vec::new();
        m.tokenize(&line, 10, &mut buf, &mut ends);
        assert_eq!(ends.len(), 10);
        assert!(buf.ends_with("<TRUNC>"));
    }

    #[test]
    fn non_ascii_is_copied_intact() {
        assert_eq!(mask("héllo 12€ ünïcode·42"), "héllo <NUM>€ ünïcode·<NUM>");
    }
}
