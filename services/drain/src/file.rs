//! Offline mining of a log file: the engine behind `selfheal logs templates`.
//!
//! Lines are read as bytes, capped at the miner's `max_line_len` while
//! reading (a multi-gigabyte line never sits in memory), decoded as lossy
//! UTF-8, optionally cut down to their `<Content>` field, and mined. The
//! report keeps one template id per line and every template seen, evicted
//! ones included, so each line can be printed with its final template.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::format::LogFormat;
use crate::miner::{MinerConfig, Template, TemplateMiner};

/// The result of mining one file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// Template id of each line; index 0 is line 1.
    pub line_templates: Vec<u64>,
    /// Every template a line was assigned to, by ascending id.
    pub templates: Vec<Template>,
    /// Lines that did not fit the `--format` header (mined whole).
    pub format_mismatches: u64,
    /// Evicted templates whose text was not kept (more than `max_clusters` of
    /// them, as in a storm of unique lines); their lines print `<evicted>`.
    pub evicted_dropped: u64,
}

impl FileReport {
    /// Number of lines mined.
    pub fn lines(&self) -> usize {
        self.line_templates.len()
    }
}

/// Mines the file at `path`; `format` is a logparser-style header such as
/// `<Date> <Time> <Level> <Component>: <Content>`.
pub fn mine_file(path: impl AsRef<Path>, format: Option<&str>, config: MinerConfig) -> io::Result<FileReport> {
    let format = format
        .map(LogFormat::new)
        .transpose()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad --format: {e}")))?;
    let file = File::open(path)?;
    mine_reader(BufReader::with_capacity(1 << 16, file), format.as_ref(), config)
}

/// Mines every line of `reader`.
pub fn mine_reader(
    mut reader: impl BufRead,
    format: Option<&LogFormat>,
    config: MinerConfig,
) -> io::Result<FileReport> {
    let cap = config.max_line_len;
    // Evicted templates are kept for the per-line listing, but no more of them
    // than live ones, so that a storm of unique lines stays bounded in memory.
    let keep_evicted = config.max_clusters;
    let mut miner = TemplateMiner::new(config);
    miner.set_record_evictions(true);
    let mut report = FileReport::default();
    let mut evicted: HashMap<u64, Template> = HashMap::new();
    let mut buf = Vec::with_capacity(256);
    while read_capped_line(&mut reader, &mut buf, cap)? {
        let line = match std::str::from_utf8(&buf) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&buf),
        };
        let content = match format {
            Some(f) => f.content(&line).unwrap_or_else(|| {
                report.format_mismatches += 1;
                &line
            }),
            None => &line,
        };
        let m = miner.add_line_id(content);
        report.line_templates.push(m.template_id);
        if m.is_new {
            keep(
                &mut evicted,
                miner.take_evicted(),
                keep_evicted,
                &mut report.evicted_dropped,
            );
        }
    }
    keep(
        &mut evicted,
        miner.take_evicted(),
        keep_evicted,
        &mut report.evicted_dropped,
    );
    report.templates = miner.templates().cloned().chain(evicted.into_values()).collect();
    report.templates.sort_by_key(|t| t.id);
    Ok(report)
}

fn keep(evicted: &mut HashMap<u64, Template>, new: Vec<Template>, cap: usize, dropped: &mut u64) {
    for t in new {
        if evicted.len() < cap {
            evicted.insert(t.id, t);
        } else {
            *dropped += 1;
        }
    }
}

/// Reads one line into `buf` without its `\n`/`\r\n`, keeping at most `cap`
/// bytes and discarding the rest of the line. Returns false at end of input.
fn read_capped_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<bool> {
    buf.clear();
    let n = reader.by_ref().take(cap as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > cap {
        // Over the cap: skip to the end of the line without storing it.
        buf.truncate(cap);
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    reader.consume(p + 1);
                    break;
                }
                None => {
                    let len = chunk.len();
                    reader.consume(len);
                }
            }
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(true)
}

/// Writes `line_no<TAB>template_id<TAB>template` for every line.
pub fn write_lines(report: &FileReport, mut out: impl Write) -> io::Result<()> {
    let text: HashMap<u64, &str> = report.templates.iter().map(|t| (t.id, t.text.as_str())).collect();
    for (i, id) in report.line_templates.iter().enumerate() {
        writeln!(
            out,
            "{}\t{}\t{}",
            i + 1,
            id,
            text.get(id).copied().unwrap_or("<evicted>")
        )?;
    }
    Ok(())
}

/// Writes `template_id<TAB>count<TAB>template` for every template, most frequent first.
pub fn write_templates(report: &FileReport, mut out: impl Write) -> io::Result<()> {
    let mut ts: Vec<&Template> = report.templates.iter().collect();
    ts.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    for t in ts {
        writeln!(out, "{}\t{}\t{}", t.id, t.count, t.text)?;
    }
    Ok(())
}

/// Writes the whole report: a `# lines` section (see [`write_lines`]) and a
/// `# templates` section (see [`write_templates`]).
pub fn write_report(report: &FileReport, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    writeln!(out, "# lines: line_no\ttemplate_id\ttemplate")?;
    write_lines(report, &mut out)?;
    writeln!(
        out,
        "# templates: template_id\tcount\ttemplate ({} templates)",
        report.templates.len()
    )?;
    write_templates(report, &mut out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_skips_long_tails_and_strips_crlf() {
        let mut data = b"short\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.extend(b"\nlast");
        let mut r = BufReader::with_capacity(64, &data[..]);
        let mut buf = Vec::new();
        assert!(read_capped_line(&mut r, &mut buf, 16).unwrap());
        assert_eq!(buf, b"short");
        assert!(read_capped_line(&mut r, &mut buf, 16).unwrap());
        assert_eq!(buf.len(), 16);
        assert!(read_capped_line(&mut r, &mut buf, 16).unwrap());
        assert_eq!(buf, b"last");
        assert!(!read_capped_line(&mut r, &mut buf, 16).unwrap());
    }

    #[test]
    fn report_lists_lines_and_templates() {
        let log = "2024-05-01 10:00:00 WARN db: Connection to db1 timed out after 30 ms\n\
                   2024-05-01 10:00:01 WARN db: Connection to db2 timed out after 45 ms\n\
                   2024-05-01 10:00:02 INFO http: served request\n\
                   not in the format\n";
        let f = LogFormat::new("<Date> <Time> <Level> <Component>: <Content>").unwrap();
        let r = mine_reader(log.as_bytes(), Some(&f), MinerConfig::default()).unwrap();
        assert_eq!(r.lines(), 4);
        assert_eq!(r.format_mismatches, 1);
        assert_eq!(r.line_templates[0], r.line_templates[1]);
        assert_ne!(r.line_templates[0], r.line_templates[2]);
        let mut out = Vec::new();
        write_report(&r, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("1\t1\tConnection to <*> timed out after <NUM> ms\n"),
            "{out}"
        );
        assert!(out.contains("3\t2\tserved request\n"), "{out}");
        assert!(
            out.contains("1\t2\tConnection to <*> timed out after <NUM> ms\n"),
            "{out}"
        );
    }

    #[test]
    fn storm_of_unique_lines_keeps_report_bounded() {
        let mut log = String::new();
        for i in 0..5000 {
            log.push_str(&format!("event{i} happened somewhere{i}\n"));
        }
        let cfg = MinerConfig {
            max_clusters: 100,
            ..MinerConfig::default()
        };
        let r = mine_reader(log.as_bytes(), None, cfg).unwrap();
        assert_eq!(r.lines(), 5000);
        assert!(r.templates.len() <= 200);
        assert_eq!(r.evicted_dropped, 5000 - 200);
        let mut out = Vec::new();
        write_lines(&r, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("1\t1\tevent0 happened somewhere0\n"), "{}", &out[..100]);
        assert!(out.contains("\t<evicted>\n"));
        assert!(out.ends_with("5000\t5000\tevent4999 happened somewhere4999\n"));
    }

    #[test]
    fn non_utf8_bytes_are_mined_lossily() {
        let data: Vec<u8> = vec![0xff, 0xfe, b' ', b'o', b'k', b'\n', 0x00, 0x80, b'\n'];
        let r = mine_reader(&data[..], None, MinerConfig::default()).unwrap();
        assert_eq!(r.lines(), 2);
        assert!(r.templates.iter().any(|t| t.text.contains('\u{fffd}')));
    }
}
