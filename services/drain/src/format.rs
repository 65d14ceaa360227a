//! Log format headers in the syntax of the logparser/loghub benchmarks, e.g.
//! `<Date> <Time> <Level> <Component>: <Content>`, used to cut the message
//! (the `<Content>` field) out of each line before mining, so that results
//! can be compared with other parsers on the same files.
//!
//! As in logparser, each `<Field>` becomes a lazy capture group, runs of
//! spaces match any whitespace, and the text between fields is taken as a
//! regex fragment (which is why benchmark formats escape brackets:
//! `sshd\[<Pid>\]: <Content>`).

use regex::Regex;

/// A compiled log format.
#[derive(Debug, Clone)]
pub struct LogFormat {
    regex: Regex,
    headers: Vec<String>,
    content: Option<usize>,
    /// A regex-free matcher with the same result for formats whose literal
    /// parts are plain text (all benchmark formats): the regex engine's lazy
    /// captures cost several microseconds a line, this costs a few dozen ns.
    fast: Option<Vec<Piece>>,
}

/// One part of a format for the fast matcher.
#[derive(Debug, Clone)]
enum Piece {
    /// A field (lazy `.*?`).
    Field,
    /// Literal text; each `Lit::Ws` matches one or more whitespace characters.
    Lit(Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Ws,
    Char(char),
}

/// Parses a literal fragment when it is plain text (escaped punctuation allowed).
fn plain_literal(lit: &str) -> Option<Vec<Lit>> {
    let mut out = Vec::new();
    let mut chars = lit.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if out.last() != Some(&Lit::Ws) {
                    out.push(Lit::Ws);
                }
            }
            '\\' => {
                let e = chars.next()?;
                if e.is_ascii_alphanumeric() || e.is_whitespace() {
                    return None;
                }
                out.push(Lit::Char(e));
            }
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => return None,
            c => out.push(Lit::Char(c)),
        }
    }
    Some(out)
}

/// Matches `lit` at byte `pos` of `s`; returns its greedy end and its
/// shortest end. Only a trailing whitespace run can make them differ (a run
/// followed by a literal character cannot stop early).
fn match_lit(lit: &[Lit], s: &str, mut pos: usize) -> Option<(usize, usize)> {
    let mut min_end = pos;
    for l in lit {
        match l {
            Lit::Char(c) => {
                if !s[pos..].starts_with(*c) {
                    return None;
                }
                pos += c.len_utf8();
                min_end = pos;
            }
            Lit::Ws => {
                let rest = &s[pos..];
                let first = rest.chars().next().filter(|c| c.is_whitespace())?;
                let trimmed = rest.trim_start();
                min_end = pos + first.len_utf8();
                pos += rest.len() - trimmed.len();
            }
        }
    }
    Some((pos, min_end))
}

/// Tries every end of `lit` at `pos`, greedy first, continuing with `rest`.
fn try_lit(
    lit: &[Lit],
    s: &str,
    pos: usize,
    rest: &[Piece],
    spans: &mut Vec<(usize, usize)>,
    budget: &mut u32,
) -> Option<bool> {
    let Some((mut p, min)) = match_lit(lit, s, pos) else {
        return Some(false);
    };
    loop {
        if match_pieces(rest, s, p, spans, budget)? {
            return Some(true);
        }
        if p <= min {
            return Some(false);
        }
        p -= s[..p].chars().next_back().map_or(1, char::len_utf8);
    }
}

/// The first byte offset at or after `from` where `lit` might match.
fn next_candidate(lit: &[Lit], s: &str, from: usize) -> Option<usize> {
    if from > s.len() {
        return None;
    }
    match lit.first()? {
        Lit::Char(c) => s[from..].find(*c).map(|i| from + i),
        Lit::Ws => {
            let b = s.as_bytes();
            let mut i = from;
            while i < b.len() {
                let c = b[i];
                if c < 0x80 {
                    if c.is_ascii_whitespace() || c == 0x0b {
                        return Some(i);
                    }
                    i += 1;
                } else {
                    let ch = s[i..].chars().next()?;
                    if ch.is_whitespace() {
                        return Some(i);
                    }
                    i += ch.len_utf8();
                }
            }
            None
        }
    }
}

/// Lazy-first backtracking match of `pieces` against `s` from `pos`, with a
/// step budget so that a pathological line falls back to the regex engine.
fn match_pieces(
    pieces: &[Piece],
    s: &str,
    pos: usize,
    spans: &mut Vec<(usize, usize)>,
    budget: &mut u32,
) -> Option<bool> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    match pieces.first() {
        None => Some(pos == s.len()),
        Some(Piece::Field) if pieces.len() == 1 => {
            spans.push((pos, s.len()));
            Some(true)
        }
        Some(Piece::Lit(lit)) => try_lit(lit, s, pos, &pieces[1..], spans, budget),
        Some(Piece::Field) => match pieces.get(1) {
            None => Some(false),
            Some(Piece::Lit(lit)) => {
                // Lazy: try the earliest places where the literal can start.
                let mut from = pos;
                while let Some(end) = next_candidate(lit, s, from) {
                    let mark = spans.len();
                    spans.push((pos, end));
                    if try_lit(lit, s, end, &pieces[2..], spans, budget)? {
                        return Some(true);
                    }
                    spans.truncate(mark);
                    *budget = budget.checked_sub(1)?;
                    from = end + s[end..].chars().next().map_or(1, char::len_utf8);
                }
                Some(false)
            }
            // Adjacent fields are not built by `new` for the fast path.
            Some(Piece::Field) => None,
        },
    }
}

impl LogFormat {
    /// Compiles a format header; fails on a malformed regex fragment.
    pub fn new(format: &str) -> Result<Self, regex::Error> {
        let mut pattern = String::from("^");
        let mut headers = Vec::new();
        let mut fast = Some(Vec::new());
        let mut rest = format;
        loop {
            let field = rest.find('<').and_then(|s| {
                let close = rest[s + 1..].find(['<', '>'])? + s + 1;
                (rest.as_bytes()[close] == b'>' && close > s + 1).then_some((s, close))
            });
            let (lit, next) = match field {
                Some((s, e)) => {
                    let name = &rest[s + 1..e];
                    (&rest[..s], Some((name, &rest[e + 1..])))
                }
                None => (rest, None),
            };
            push_literal(&mut pattern, lit);
            if let Some(pieces) = &mut fast {
                match plain_literal(lit) {
                    Some(l) if !l.is_empty() => pieces.push(Piece::Lit(l)),
                    Some(_) if next.is_some() && matches!(pieces.last(), Some(Piece::Field)) => fast = None,
                    Some(_) => {}
                    None => fast = None,
                }
            }
            match next {
                Some((name, after)) => {
                    if let Some(pieces) = &mut fast {
                        pieces.push(Piece::Field);
                    }
                    headers.push(name.to_owned());
                    pattern.push_str("(.*?)");
                    rest = after;
                }
                None => break,
            }
        }
        pattern.push('$');
        let content = headers.iter().position(|h| h == "Content");
        Ok(Self {
            regex: Regex::new(&pattern)?,
            headers,
            content,
            fast,
        })
    }

    /// Byte spans of the fields, from the fast matcher when it applies.
    fn spans(&self, line: &str) -> Option<Vec<(usize, usize)>> {
        if let Some(pieces) = self.fast.as_ref().filter(|_| !line.contains('\n')) {
            let mut spans = Vec::with_capacity(self.headers.len());
            let mut budget = 10_000;
            match match_pieces(pieces, line, 0, &mut spans, &mut budget) {
                Some(true) => return Some(spans),
                Some(false) => return None,
                None => {}
            }
        }
        let caps = self.regex.captures(line)?;
        Some(
            (1..=self.headers.len())
                .map(|i| caps.get(i).map_or((0, 0), |m| (m.start(), m.end())))
                .collect(),
        )
    }

    /// Field names in order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The `<Content>` part of a line (the whole line when the format has no
    /// `<Content>` field), or `None` when the line does not fit the format.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        let spans = self.spans(line)?;
        match self.content {
            Some(i) => spans.get(i).map(|&(s, e)| &line[s..e]),
            None => Some(line),
        }
    }

    /// All fields of a line by name, or `None` when it does not fit.
    pub fn fields<'a>(&self, line: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let spans = self.spans(line)?;
        Some(
            self.headers
                .iter()
                .zip(spans)
                .map(|(h, (s, e))| (h.as_str(), &line[s..e]))
                .collect(),
        )
    }
}

fn push_literal(pattern: &mut String, lit: &str) {
    let mut in_spaces = false;
    for ch in lit.chars() {
        if ch == ' ' {
            if !in_spaces {
                pattern.push_str(r"\s+");
            }
            in_spaces = true;
        } else {
            in_spaces = false;
            pattern.push(ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_content() {
        let f = LogFormat::new("<Date> <Time> <Level> <Component>: <Content>").unwrap();
        assert_eq!(f.headers(), ["Date", "Time", "Level", "Component", "Content"]);
        assert_eq!(
            f.content("2024-05-01 10:00:00 WARN db.pool: Connection to db1 timed out after 30 ms"),
            Some("Connection to db1 timed out after 30 ms")
        );
        assert_eq!(f.content("garbage"), None);
    }

    #[test]
    fn fast_matcher_agrees_with_regex() {
        let formats = [
            "<Date> <Time> <Level> <Component>: <Content>",
            r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
            r"\[<Time>\] \[<Level>\] <Content>",
            "<Level> <Content>",
            "<Content>",
        ];
        let lines = [
            "2024-05-01 10:00:00 WARN db.pool: Connection to db1: timed out",
            "2024-05-01   10:00:00\tWARN  db:x: y",
            "Dec 10 06:55:46 host sshd[24200]: Invalid user x from [1.2.3.4]",
            "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
            "[a] [b]",
            "",
            " leading",
            "no-spaces-at-all",
            "é ü: ö",
        ];
        for f in formats {
            let lf = LogFormat::new(f).unwrap();
            assert!(lf.fast.is_some(), "{f}");
            for l in lines {
                let fast = lf.spans(l);
                let slow = lf.regex.captures(l).map(|c| {
                    (1..=lf.headers.len())
                        .map(|i| c.get(i).map_or((0, 0), |m| (m.start(), m.end())))
                        .collect::<Vec<_>>()
                });
                assert_eq!(fast, slow, "format {f:?} line {l:?}");
            }
        }
        assert!(LogFormat::new("<A> (x|y) <Content>").unwrap().fast.is_none());
    }

    #[test]
    fn fast_matcher_agrees_with_regex_on_random_lines() {
        let formats = [
            "<Date> <Time> <Level> <Component>: <Content>",
            r"<A> \[<B>\]: <Content>",
            r"\[<Time>\] \[<Level>\] <Content>",
            "<A>:<B> <C>",
        ];
        let alphabet = [" ", "  ", "\t", "a", "b", ":", "[", "]", "é", "x:", "] ["];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for f in formats {
            let lf = LogFormat::new(f).unwrap();
            for _ in 0..3000 {
                let mut line = String::new();
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let len = rng % 16;
                let mut r = rng;
                for _ in 0..len {
                    line.push_str(alphabet[(r % alphabet.len() as u64) as usize]);
                    r /= alphabet.len() as u64;
                    if r == 0 {
                        r = rng.rotate_left(17) | 1;
                    }
                }
                let fast = lf.spans(&line);
                let slow = lf.regex.captures(&line).map(|c| {
                    (1..=lf.headers.len())
                        .map(|i| c.get(i).map_or((0, 0), |m| (m.start(), m.end())))
                        .collect::<Vec<_>>()
                });
                assert_eq!(fast, slow, "format {f:?} line {line:?}");
            }
        }
    }

    #[test]
    fn literal_parts_are_regex_fragments() {
        let f = LogFormat::new(r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>").unwrap();
        let fields = f
            .fields("Dec 10 06:55:46 host sshd[24200]: Invalid user x from 1.2.3.4")
            .unwrap();
        assert_eq!(fields[4], ("Pid", "24200"));
        assert_eq!(fields[5], ("Content", "Invalid user x from 1.2.3.4"));
    }
}
