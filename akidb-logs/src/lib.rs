//! Log files in, records out: the log ingestion AkiDB's tools and examples share.
//!
//! [`LogReader`] reads one file (or any `Read`) as a stream of [`LogRecord`]s, in bounded
//! memory whatever the file holds:
//!
//! - **Formats, detected per file** ([`Format`]): ROS 2 console lines, JSON Lines (field names
//!   configurable, [`JsonFields`]), `journalctl -o json` exports, syslog (RFC 3164 as daemons
//!   write files, with or without `<PRI>`; RFC 5424 with structured data), lines that start with
//!   an ISO 8601 time (with host, level and component when present), and plain text. The first
//!   [`SAMPLE_LINES`] non-empty lines choose the file's format (the one that reads most of
//!   them); every line is read in that format first, then in the others.
//! - **Nothing is skipped**: a line no format reads becomes a plain-text record (its file and
//!   line number are in every record); an indented line, or a stack-trace line (`Traceback`,
//!   `Caused by:`, `... 3 more`), that no format reads joins the record before it as a further
//!   line of its text (multi-line records: stack traces, wrapped messages). [`FileSummary`]
//!   counts records per format, joined lines and repairs.
//! - **Times** are parsed with `jiff`: offsets and fractions kept, impossible dates refused
//!   (the line is then not in that format). RFC 3164 times carry no year or zone: the year is
//!   [`ReadOptions::year`] (default: the current one), the zone UTC.
//! - **Hostile files**: a line longer than [`MAX_LINE`] bytes is cut there (the rest of it is
//!   read past, never held; the record says `truncated`); a record's joined text stops growing
//!   at [`MAX_RECORD`] bytes; invalid UTF-8 is replaced (U+FFFD) and NUL bytes dropped, both
//!   counted; a file whose first 8 KiB hold NUL bytes or are mostly not text is refused as
//!   [`LogError::NotText`] before any record is made.
//!
//! [`LogRecord::metadata`] is what AkiDB stores beside the text: `ts` (unix seconds), `time`
//! (RFC 3339), `level`, `robot` (the host or ROS namespace), `node` (the component), `file`,
//! `line`, `format`, and the format's other fields.

mod parse;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use parse::{parse, Context, Parsed};

/// Longest line kept, in bytes; the rest of a longer line is read past and dropped.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest text of one record (its first line and the lines joined to it), in bytes.
pub const MAX_RECORD: usize = 256 * 1024;
/// Non-empty lines read to choose a file's format.
pub const SAMPLE_LINES: usize = 64;
/// Bytes at the start of a file checked for being text.
const SNIFF_BYTES: usize = 8 * 1024;

/// A line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `[LEVEL] [secs.nanos] [namespace.node]: message` (ROS 2's console output).
    Ros2,
    /// One `journalctl -o json` entry per line.
    Journald,
    /// One JSON object per line (see [`JsonFields`]).
    JsonLines,
    /// `<PRI>1 TIME HOST APP PROCID MSGID [SD] message` (RFC 5424).
    Syslog5424,
    /// `Mmm dd hh:mm:ss HOST TAG[PID]: message` (RFC 3164, `<PRI>` optional).
    Syslog3164,
    /// `TIME [HOST] [LEVEL] [COMPONENT:] message`, TIME in ISO 8601.
    Iso8601,
    /// Any other line: all of it is the message.
    Plain,
}

/// The formats tried, most specific first (`Plain` takes every line, so it is last).
const FORMATS: [Format; 7] = [
    Format::Ros2,
    Format::Journald,
    Format::JsonLines,
    Format::Syslog5424,
    Format::Syslog3164,
    Format::Iso8601,
    Format::Plain,
];

impl Format {
    /// The name stored in metadata (`ros2`, `journald`, `jsonl`, `syslog5424`, `syslog3164`,
    /// `iso8601`, `plain`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ros2 => "ros2",
            Format::Journald => "journald",
            Format::JsonLines => "jsonl",
            Format::Syslog5424 => "syslog5424",
            Format::Syslog3164 => "syslog3164",
            Format::Iso8601 => "iso8601",
            Format::Plain => "plain",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The field names JSON Lines records are read by: the first name present wins.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonFields {
    /// The message (required: an object without one is not a JSON log record).
    pub message: Vec<String>,
    /// The time: unix seconds, milliseconds, microseconds or nanoseconds (told apart by
    /// magnitude), or an ISO 8601 string.
    pub time: Vec<String>,
    /// The level: a word, or a syslog severity number.
    pub level: Vec<String>,
    /// The robot or host.
    pub source: Vec<String>,
    /// The node, logger or service.
    pub component: Vec<String>,
}

impl Default for JsonFields {
    fn default() -> Self {
        let v = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        Self {
            message: v(&["message", "msg", "MESSAGE", "log", "text"]),
            time: v(&["ts", "time", "timestamp", "@timestamp", "t"]),
            level: v(&["level", "severity", "lvl", "loglevel"]),
            source: v(&["robot", "host", "hostname"]),
            component: v(&["node", "logger", "component", "service", "app"]),
        }
    }
}

/// How a [`LogReader`] reads.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The file's format; `None` (the default) detects it.
    pub format: Option<Format>,
    /// Field names of JSON Lines records.
    pub json: JsonFields,
    /// The year of RFC 3164 times (default: the current year, UTC).
    pub year: Option<i16>,
}

impl ReadOptions {
    /// Reads every line as `format` first (no detection).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }
    /// The field names of JSON Lines records.
    pub fn with_json_fields(mut self, json: JsonFields) -> Self {
        self.json = json;
        self
    }
    /// The year of RFC 3164 times.
    pub fn with_year(mut self, year: i16) -> Self {
        self.year = Some(year);
        self
    }
}

/// One log record: a line, or a line and the lines joined to it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogRecord {
    /// The message; joined lines follow it, one per line.
    pub message: String,
    /// When, if the line says.
    pub time: Option<Timestamp>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`, if the line says.
    pub level: Option<&'static str>,
    /// The robot or host.
    pub source: Option<String>,
    /// The node, program or logger.
    pub component: Option<String>,
    /// The format's other fields (a PID, RFC 5424 structured data, JSON fields).
    pub fields: Map<String, Value>,
    /// The file (as given to [`LogReader::open`], or the name given to [`LogReader::new`]).
    pub file: String,
    /// The line number of the record's first line (from 1).
    pub line: u64,
    /// Lines joined to the first.
    pub joined: u32,
    /// The format its first line was read in.
    pub format: Format,
    /// Whether a line of it was longer than [`MAX_LINE`] or the record than [`MAX_RECORD`].
    pub truncated: bool,
}

impl LogRecord {
    /// A stable document id: `file:line`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// What is worth embedding: the component and the message (times and levels carry no
    /// meaning to a model; they are metadata).
    pub fn text(&self) -> String {
        match &self.component {
            Some(c) => format!("{}: {}", c.trim_start_matches('/').replace('_', " "), self.message),
            None => self.message.clone(),
        }
    }

    /// The metadata AkiDB stores beside the text (see the crate docs).
    pub fn metadata(&self) -> Value {
        let mut m = self.fields.clone();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(t) = self.time {
            put("ts", json!(t.as_millisecond() as f64 / 1000.0));
            put("time", json!(t.to_string()));
        }
        if let Some(l) = self.level {
            put("level", json!(l));
        }
        if let Some(s) = &self.source {
            put("robot", json!(s));
        }
        if let Some(c) = &self.component {
            put("node", json!(c));
        }
        put("file", json!(self.file));
        put("line", json!(self.line));
        put("format", json!(self.format.as_str()));
        if self.truncated {
            put("truncated", json!(true));
        }
        Value::Object(m)
    }
}

/// What reading one file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSummary {
    /// The format detection chose (or the one given).
    pub detected: Option<Format>,
    /// Records made, by the format of their first line.
    pub records: std::collections::BTreeMap<Format, u64>,
    /// Lines read (empty ones included).
    pub lines: u64,
    /// Empty lines (only whitespace): no record.
    pub blank: u64,
    /// Lines joined to the record before them.
    pub joined: u64,
    /// Lines cut at [`MAX_LINE`] (and records cut at [`MAX_RECORD`]).
    pub truncated: u64,
    /// Lines with invalid UTF-8 (replaced) or NUL bytes (dropped).
    pub repaired: u64,
}

impl FileSummary {
    /// Records made.
    pub fn total(&self) -> u64 {
        self.records.values().sum()
    }
}

impl std::fmt::Display for FileSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} lines ({} blank) -> {} records (", self.lines, self.blank, self.total())?;
        let mut first = true;
        for (format, n) in &self.records {
            write!(f, "{}{n} {format}", if first { "" } else { ", " })?;
            first = false;
        }
        write!(f, "); {} lines joined to the record before", self.joined)?;
        if self.truncated > 0 {
            write!(f, ", {} cut at {} KiB", self.truncated, MAX_LINE / 1024)?;
        }
        if self.repaired > 0 {
            write!(f, ", {} with invalid UTF-8 or NUL bytes repaired", self.repaired)?;
        }
        Ok(())
    }
}

/// Errors of reading a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not text (NUL bytes or mostly non-text bytes at its start).
    #[error("{file}: not a text log ({reason})")]
    NotText {
        /// The file.
        file: String,
        /// What gave it away.
        reason: &'static str,
    },
}

/// Reads one log as records (see the crate docs). An iterator of `Result<LogRecord,
/// LogError>`; [`LogReader::summary`] says what it found so far.
pub struct LogReader<R> {
    input: R,
    file: String,
    options: ReadOptions,
    year: i16,
    detected: Format,
    /// Lines read ahead (detection), with their numbers and whether they were cut.
    ahead: std::collections::VecDeque<(u64, String, bool)>,
    line_no: u64,
    pending: Option<LogRecord>,
    summary: FileSummary,
    done: bool,
    buf: Vec<u8>,
}

impl LogReader<BufReader<std::fs::File>> {
    /// Opens `path` and detects its format (unless the options give one).
    pub fn open(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self, LogError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let f = std::fs::File::open(path)
            .map_err(|source| LogError::Io { file: file.clone(), source })?;
        Self::new(BufReader::with_capacity(64 * 1024, f), file, options)
    }
}

impl<R: BufRead> LogReader<R> {
    /// Reads `input`, named `file` in records and errors, and detects its format (unless the
    /// options give one).
    pub fn new(
        mut input: R,
        file: impl Into<String>,
        options: ReadOptions,
    ) -> Result<Self, LogError> {
        let file = file.into();
        sniff(&mut input, &file)?;
        let year = options
            .year
            .unwrap_or_else(|| Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).year());
        let mut reader = Self {
            input,
            file,
            options,
            year,
            detected: Format::Plain,
            ahead: Default::default(),
            line_no: 0,
            pending: None,
            summary: FileSummary::default(),
            done: false,
            buf: Vec::new(),
        };
        reader.detected = match reader.options.format {
            Some(f) => f,
            None => reader.detect()?,
        };
        reader.summary.detected = Some(reader.detected);
        Ok(reader)
    }

    /// What was found so far (all of the file once the iterator has ended).
    pub fn summary(&self) -> &FileSummary {
        &self.summary
    }

    /// The format the file's lines are read in first.
    pub fn format(&self) -> Format {
        self.detected
    }

    /// Reads up to [`SAMPLE_LINES`] non-empty lines ahead and picks the format that reads the
    /// most of them (the more specific one on a tie); `Plain` when none reads any.
    fn detect(&mut self) -> Result<Format, LogError> {
        let mut sample = 0;
        while sample < SAMPLE_LINES {
            let Some((n, line, cut)) = self.read_line()? else { break };
            if !line.trim().is_empty() {
                sample += 1;
            }
            self.ahead.push_back((n, line, cut));
        }
        let ctx = Context { json: &self.options.json, year: self.year };
        let mut best = (0usize, Format::Plain);
        for format in FORMATS.iter().copied().filter(|f| *f != Format::Plain) {
            let n = self
                .ahead
                .iter()
                .filter(|(_, l, _)| !l.trim().is_empty() && parse(format, l, &ctx).is_some())
                .count();
            if n > best.0 {
                best = (n, format);
            }
        }
        Ok(best.1)
    }

    /// The next line (number, text, whether cut), from the lines read ahead first.
    fn next_line(&mut self) -> Result<Option<(u64, String, bool)>, LogError> {
        if let Some(l) = self.ahead.pop_front() {
            return Ok(Some(l));
        }
        self.read_line()
    }

    /// Reads one line, keeping at most [`MAX_LINE`] bytes of it, repaired to valid UTF-8.
    fn read_line(&mut self) -> Result<Option<(u64, String, bool)>, LogError> {
        self.buf.clear();
        let mut cut = false;
        let mut any = false;
        loop {
            let chunk = self
                .input
                .fill_buf()
                .map_err(|source| LogError::Io { file: self.file.clone(), source })?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, found) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            let keep = take.min(room);
            self.buf.extend_from_slice(&chunk[..keep]);
            cut |= keep < take && !(found && keep + 1 == take);
            self.input.consume(take);
            if found {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line_no += 1;
        self.summary.lines += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        if cut {
            self.summary.truncated += 1;
        }
        let mut repaired = self.buf.contains(&0);
        if repaired {
            self.buf.retain(|b| *b != 0);
        }
        let text = match std::str::from_utf8(&self.buf) {
            Ok(s) => s.to_string(),
            // A cut can split a character: only what is wrong before the cut counts.
            Err(e) if cut && e.error_len().is_none() => {
                String::from_utf8_lossy(&self.buf[..e.valid_up_to()]).into_owned()
            }
            Err(_) => {
                repaired = true;
                String::from_utf8_lossy(&self.buf).into_owned()
            }
        };
        if repaired {
            self.summary.repaired += 1;
        }
        Ok(Some((self.line_no, text, cut)))
    }

    /// Reads `line` as the file's format, then as the others.
    fn parse_line(&self, line: &str) -> (Format, Parsed) {
        let ctx = Context { json: &self.options.json, year: self.year };
        if let Some(p) = parse(self.detected, line, &ctx) {
            return (self.detected, p);
        }
        for format in FORMATS.into_iter().filter(|f| *f != self.detected) {
            if let Some(p) = parse(format, line, &ctx) {
                return (format, p);
            }
        }
        unreachable!("plain text reads every line")
    }

    /// The next record, or `None` at the end.
    fn step(&mut self) -> Result<Option<LogRecord>, LogError> {
        loop {
            let Some((n, line, cut)) = self.next_line()? else {
                return Ok(self.pending.take().inspect(|r| self.tally(r)));
            };
            if line.trim().is_empty() {
                self.summary.blank += 1;
                continue;
            }
            let (format, parsed) = self.parse_line(&line);
            if format == Format::Plain && continues(&line) {
                if let Some(r) = self.pending.as_mut() {
                    if r.message.len() + line.len() < MAX_RECORD {
                        r.message.push('\n');
                        r.message.push_str(line.trim_end());
                    } else if !r.truncated {
                        r.truncated = true;
                        self.summary.truncated += 1;
                    }
                    r.joined += 1;
                    r.truncated |= cut;
                    self.summary.joined += 1;
                    continue;
                }
            }
            let record = LogRecord {
                message: parsed.message,
                time: parsed.time,
                level: parsed.level,
                source: parsed.source,
                component: parsed.component,
                fields: parsed.fields,
                file: self.file.clone(),
                line: n,
                joined: 0,
                format,
                truncated: cut,
            };
            if let Some(done) = self.pending.replace(record) {
                self.tally(&done);
                return Ok(Some(done));
            }
        }
    }

    fn tally(&mut self, r: &LogRecord) {
        *self.summary.records.entry(r.format).or_default() += 1;
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<LogRecord, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Whether a line no format reads continues the record before it: indented, or a stack trace's
/// own line.
fn continues(line: &str) -> bool {
    let t = line.trim_start();
    line.starts_with([' ', '\t'])
        || t.starts_with("Traceback (most recent call last)")
        || t.starts_with("Caused by:")
        || (t.starts_with("...") && t.ends_with("more"))
}

/// Refuses input whose first bytes are not text: NUL bytes, or mostly control or invalid bytes.
fn sniff(input: &mut impl BufRead, file: &str) -> Result<(), LogError> {
    let head = input.fill_buf().map_err(|source| LogError::Io { file: file.into(), source })?;
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let not_text = |reason| Err(LogError::NotText { file: file.into(), reason });
    if head.contains(&0) {
        return not_text("NUL bytes in its first 8 KiB");
    }
    let invalid = String::from_utf8_lossy(head).matches('\u{fffd}').count();
    let control =
        head.iter().filter(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t')).count();
    if head.len() >= 64 && (invalid + control) * 10 > head.len() {
        return not_text("mostly bytes that are not text in its first 8 KiB");
    }
    Ok(())
}

/// Reads all of `input`; for tests and small inputs (a [`LogReader`] streams).
pub fn read_all(
    input: impl Read,
    file: &str,
    options: ReadOptions,
) -> Result<(Vec<LogRecord>, FileSummary), LogError> {
    let mut r = LogReader::new(BufReader::new(input), file, options)?;
    let records = r.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((records, r.summary.clone()))
}

#[cfg(test)]
mod tests;
