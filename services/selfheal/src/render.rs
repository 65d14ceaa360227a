//! One-line, human renderings of pipeline records, shared by `selfheal tail` and the demo.

use selfheal_events::{Outcome, OutcomeStatus, RolloutStep, Timeline};

/// The status as a person reads it: `HEALED`, `ROLLED BACK`, …
pub fn status_word(s: OutcomeStatus) -> &'static str {
    match s {
        OutcomeStatus::Healed => "HEALED",
        OutcomeStatus::Recurred => "RECURRED",
        OutcomeStatus::RolledBack => "ROLLED BACK",
        OutcomeStatus::RejectedByPolicy => "REJECTED BY POLICY",
        OutcomeStatus::RejectedByHuman => "REJECTED",
        OutcomeStatus::NoFixFound => "NO FIX FOUND",
        OutcomeStatus::ValidationFailed => "VALIDATION FAILED",
        OutcomeStatus::NotLocalized => "NOT LOCALIZED",
        OutcomeStatus::DeployFailed => "DEPLOY FAILED",
        OutcomeStatus::Error => "ERROR",
        OutcomeStatus::Unverified => "UNVERIFIED",
    }
}

/// A rollout step as a word.
pub fn step_word(s: RolloutStep) -> &'static str {
    match s {
        RolloutStep::AwaitingApproval => "awaiting approval",
        RolloutStep::Approved => "approved",
        RolloutStep::Rejected => "rejected",
        RolloutStep::PolicyDenied => "denied by policy",
        RolloutStep::CanaryStarted => "canary started",
        RolloutStep::CanaryAnalyzed => "canary analysed",
        RolloutStep::Promoted => "promoted",
        RolloutStep::RolledBack => "rolled back",
        RolloutStep::Failed => "failed",
        RolloutStep::Skipped => "skipped",
        RolloutStep::CanaryHeld => "canary held for a person",
    }
}

/// The first characters of an id, enough to tell incidents apart on a terminal.
pub fn short(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// Seconds from the first error to `ms`, when both are known.
pub fn since_first_error(t: &Timeline, ms: Option<i64>) -> Option<f64> {
    Some((ms? - t.first_error_ms?) as f64 / 1000.0)
}

/// `12.3s`, or `?` when unknown.
pub fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "?".into())
}

/// One line per outcome: status, service, incident, fix strategy, seconds from first error.
pub fn outcome_line(o: &Outcome) -> String {
    let strategy = o.fix.as_ref().map(|f| {
        if f.learned {
            format!("{} (learned)", f.strategy)
        } else {
            f.strategy.clone()
        }
    });
    format!(
        "{:<18} {:<16} incident {}  fix {}  {} after first error  {}",
        status_word(o.status),
        o.service,
        short(&o.incident_id),
        strategy.as_deref().unwrap_or("-"),
        secs(since_first_error(&o.timeline, o.timeline.outcome_ms)),
        o.summary
    )
}

/// Bounds untrusted text for one terminal line: first line only, at most `max` characters.
pub fn clip(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut s: String = line.chars().filter(|c| !c.is_control()).take(max).collect();
    if line.chars().count() > max {
        s.push('…');
    }
    s
}

/// Makes untrusted text (from telemetry or a model) safe for a terminal, keeping its lines:
/// ANSI/VT escape sequences (CSI, OSC, DCS, …, also their 8-bit C1 forms) are removed whole,
/// other control characters and bidirectional overrides are dropped, tabs become spaces.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // ESC, intermediates (0x20–0x2F), one final byte: charset selection, reset, ….
                Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
                    while chars.next_if(|c| ('\u{20}'..='\u{2f}').contains(c)).is_some() {}
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            // Bidirectional embeddings, overrides and isolates can make text read differently
            // from what it is ("Trojan Source").
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips a control sequence after its introducer: parameters and intermediates up to the final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) || !('\u{20}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Skips a control string (OSC, DCS, SOS, PM, APC) up to its terminator (BEL, ESC \ or ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                break;
            }
            _ => {}
        }
    }
}

/// Untrusted text as one bounded terminal line: [`sanitize`]d, line breaks as ` ⏎ `, at most
/// `max` characters (`None`: unbounded) with `…` when cut.
pub fn one_line(text: &str, max: Option<usize>) -> String {
    let clean = sanitize(text);
    let joined = clean.trim().replace('\n', " ⏎ ");
    match max {
        Some(max) if joined.chars().count() > max => {
            let mut s: String = joined.chars().take(max).collect();
            s.push('…');
            s
        }
        _ => joined,
    }
}

/// An epoch-millisecond timestamp as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn clock(ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) else {
        return ms.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn outcome_line_names_status_service_fix_and_time() {
        let o = selfheal_events::examples::outcome();
        let line = outcome_line(&o);
        assert!(line.starts_with(status_word(o.status)), "{line}");
        assert!(line.contains(&o.service), "{line}");
        assert!(line.contains(short(&o.incident_id)), "{line}");
        if let Some(f) = &o.fix {
            assert!(line.contains(&f.strategy), "{line}");
        }
        let expected = secs(since_first_error(&o.timeline, o.timeline.outcome_ms));
        assert!(line.contains(&expected), "{line}");
    }

    #[test]
    fn clip_keeps_one_bounded_line_without_control_characters() {
        assert_eq!(clip("abc\ndef", 10), "abc");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("a\x1b[31mb", 10), "a[31mb");
    }

    #[test]
    fn sanitize_removes_escape_sequences_whole_and_keeps_lines() {
        assert_eq!(sanitize("a\x1b[2Jb\x1b[1;31mc"), "abc");
        assert_eq!(sanitize("x\x1b]0;pwned title\x07y"), "xy");
        assert_eq!(sanitize("x\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\y"), "xlinky");
        assert_eq!(sanitize("p\u{9b}2Jq"), "pq");
        assert_eq!(sanitize("one\r\ntwo\tthree\x07\x00"), "one\ntwo    three");
        assert_eq!(sanitize("is\u{202e}txt.exe"), "istxt.exe");
        assert_eq!(sanitize("\x1b(Bok\x1bc"), "ok");
        assert_eq!(sanitize("naïve — ünïcode"), "naïve — ünïcode");
    }

    #[test]
    fn one_line_joins_lines_and_bounds_length() {
        assert_eq!(one_line("a\nb", None), "a ⏎ b");
        assert_eq!(one_line("abcdef", Some(3)), "abc…");
        assert_eq!(one_line("abc", Some(3)), "abc");
        assert_eq!(one_line("\x1b[2Jok", Some(10)), "ok");
    }
}
