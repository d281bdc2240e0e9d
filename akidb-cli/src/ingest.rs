//! `akidb ingest`: log files (or standard input) into a text collection, through
//! `akidb::logs` (format detected per file, multi-line records joined) and
//! [`akidb::Collection::ingest`] (one durable transaction per batch). Ids are `file:line` with
//! the file's canonical path (standard input is `stdin`), so ingesting a file again, however its
//! path is spelled, replaces its records instead of adding copies.
//!
//! Progress goes to standard error: a line redrawn in place on a terminal (records, rate,
//! share of the file's bytes read, time left), a plain line every five seconds otherwise.
//! Ctrl-C stops after the batch being committed (every committed batch stays; exit 130); a
//! second Ctrl-C ends the process at once, which loses nothing committed either.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akidb::logs::{Format, LogError, LogReader, ReadOptions};
use akidb::{IngestOptions, IngestProgress, TextDocument};
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{CliError, CliResult, INTERRUPTED};
use crate::out::{line, Out};

/// Set by the first Ctrl-C.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One input: a file (`true`: found under a directory) or standard input (`-`).
enum Input {
    File(PathBuf, bool),
    Stdin,
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(p, _) => p.display().to_string(),
            Input::Stdin => "stdin".into(),
        }
    }
}

/// The inputs `paths` name: files, `-`, and the regular files under directories (sorted,
/// hidden ones skipped; binary ones, such as compressed rotated logs, skipped with a note when
/// reading starts, where a binary file named on its own is an error).
fn inputs(paths: &[PathBuf]) -> CliResult<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Input::Stdin);
        } else if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            if files.is_empty() {
                return Err(CliError::bad(format!("{} holds no files", p.display())));
            }
            for f in files {
                out.push(Input::File(canonical(&f)?, true));
            }
        } else if p.is_file() {
            out.push(Input::File(canonical(p)?, false));
        } else {
            return Err(CliError::not_found(format!("no file {}", p.display())));
        }
    }
    if out.iter().filter(|i| matches!(i, Input::Stdin)).count() > 1 {
        return Err(CliError::bad("`-` (standard input) given more than once"));
    }
    Ok(out)
}

/// The file's absolute path without links: record ids are `path:line`, so a file ingested
/// again, however its path is spelled, replaces its records.
fn canonical(p: &Path) -> CliResult<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| CliError::failed(format!("{}: {e}", p.display())))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> CliResult<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::failed(format!("reading {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// What `akidb ingest` was asked.
pub struct IngestArgs {
    /// Collection.
    pub collection: String,
    /// Inputs.
    pub paths: Vec<PathBuf>,
    /// The format, when not detected.
    pub format: Option<Format>,
    /// Records per transaction.
    pub batch: usize,
}

/// Runs `akidb ingest`.
pub fn run(ctx: &mut Ctx, out: Out, a: IngestArgs) -> CliResult {
    let inputs = inputs(&a.paths)?;
    let (c, model) = ctx.text_collection(&a.collection)?;
    let first = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED);
        }
        eprintln!("\nstopping after the batch being committed (Ctrl-C again to quit at once)");
    });
    if let Err(e) = first {
        log::warn!("Ctrl-C will end the ingest at once: {e}");
    }
    let started = Instant::now();
    let mut files = Vec::new();
    let (mut written, mut truncated, mut batches) = (0u64, 0u64, 0u64);
    let mut cancelled = false;
    for input in &inputs {
        let r = match ingest_one(&c, input, &a) {
            Err(Skip::NotText(e)) if matches!(input, Input::File(_, true)) => {
                eprintln!("  skipped {e}");
                files.push(json!({"path": input.name(), "skipped": e.to_string()}));
                continue;
            }
            Err(Skip::NotText(e)) => return Err(log_error(e)),
            Err(Skip::Failed(e)) => return Err(e),
            Ok(r) => r,
        };
        written += r.written;
        truncated += r.truncated;
        batches += r.batches;
        cancelled |= r.cancelled;
        if !out.json {
            eprintln!("  {}: {}", input.name(), r.summary);
        }
        files.push(r.json);
        if let Some(e) = r.error {
            return Err(CliError {
                code: e.code,
                message: format!(
                    "{} (the {written} records before it are stored in {:?})",
                    e.message, a.collection
                ),
            });
        }
        if cancelled {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if out.json {
        out.json(&json!({
            "collection": a.collection, "model": model, "files": files, "written": written,
            "batches": batches, "truncated": truncated, "seconds": secs, "cancelled": cancelled,
        }));
    } else {
        let s = if written == 1 { "" } else { "s" };
        line(&format!(
            "{written} record{s} into {:?} in {secs:.1} s ({:.0}/s, {truncated} cut to the model's \
             input length){}",
            a.collection,
            written as f64 / secs.max(1e-9),
            if cancelled { ", stopped by Ctrl-C" } else { "" }
        ));
    }
    if cancelled {
        return Err(CliError {
            code: INTERRUPTED,
            message: format!("interrupted: the {written} records committed before it are kept"),
        });
    }
    Ok(())
}

/// What one input gave.
struct OneReport {
    written: u64,
    truncated: u64,
    batches: u64,
    cancelled: bool,
    summary: String,
    json: Value,
    error: Option<CliError>,
}

/// Why an input gave nothing.
enum Skip {
    /// It is not a text log (detected before anything was written).
    NotText(LogError),
    /// Anything else.
    Failed(CliError),
}

impl From<CliError> for Skip {
    fn from(e: CliError) -> Self {
        Skip::Failed(e)
    }
}

impl From<akidb::Error> for Skip {
    fn from(e: akidb::Error) -> Self {
        Skip::Failed(e.into())
    }
}

fn ingest_one(c: &akidb::Collection, input: &Input, a: &IngestArgs) -> Result<OneReport, Skip> {
    let read = Arc::new(AtomicU64::new(0));
    let (source, total): (Box<dyn BufRead + Send>, Option<u64>) = match input {
        Input::File(p, _) => {
            let f = File::open(p)
                .map_err(|e| CliError::failed(format!("opening {}: {e}", p.display())))?;
            let len = f.metadata().ok().map(|m| m.len());
            let counting = Counting { inner: f, read: read.clone() };
            (Box::new(BufReader::with_capacity(64 << 10, counting)), len)
        }
        Input::Stdin => {
            let counting = Counting { inner: std::io::stdin(), read: read.clone() };
            (Box::new(BufReader::with_capacity(64 << 10, counting)), None)
        }
    };
    let mut options = ReadOptions::default();
    if let Some(f) = a.format {
        options = options.with_format(f);
    }
    let name = input.name();
    let mut reader = LogReader::new(source, name.clone(), options).map_err(|e| match e {
        e @ LogError::NotText { .. } => Skip::NotText(e),
        e => Skip::Failed(log_error(e)),
    })?;
    let format = reader.format();
    let failed: Mutex<Option<LogError>> = Mutex::new(None);
    let docs = reader.by_ref().map_while(|r| match r {
        Ok(r) => Some(TextDocument::new(r.id(), r.text()).with_metadata(r.metadata())),
        Err(e) => {
            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            None
        }
    });
    let progress = Progress::new(&name, total, read);
    let on_batch = |p: IngestProgress| progress.show(p.written as u64);
    let options = IngestOptions::default()
        .with_batch_size(a.batch)
        .with_progress(&on_batch)
        .with_cancel(&CANCEL);
    let report = c.ingest(docs, &options);
    progress.done();
    let report = report?;
    let error = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let summary = reader.summary().to_string();
    Ok(OneReport {
        written: report.written as u64,
        truncated: report.truncated as u64,
        batches: report.batches as u64,
        cancelled: report.cancelled,
        json: json!({
            "path": name, "format": format.as_str(), "written": report.written,
            "summary": summary, "error": error.as_ref().map(|e| e.to_string()),
        }),
        summary,
        error: error.map(log_error),
    })
}

/// A log reading error: binary input and bad input are the caller's (2), I/O failed (1).
fn log_error(e: LogError) -> CliError {
    match e {
        LogError::Io { .. } => CliError::failed(e.to_string()),
        e => CliError::bad(e.to_string()),
    }
}

/// Progress of one input on standard error.
struct Progress {
    name: String,
    total: Option<u64>,
    read: Arc<AtomicU64>,
    start: Instant,
    last: Mutex<Instant>,
    terminal: bool,
}

impl Progress {
    fn new(name: &str, total: Option<u64>, read: Arc<AtomicU64>) -> Self {
        let start = Instant::now();
        Self {
            name: name.to_string(),
            total: total.filter(|&t| t > 0),
            read,
            start,
            last: Mutex::new(start),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, records: u64) {
        let now = Instant::now();
        let secs = (now - self.start).as_secs_f64().max(1e-9);
        let rate = records as f64 / secs;
        let mut text = format!("  {}: {records} records, {rate:.0}/s", self.name);
        if let Some(total) = self.total {
            let done = (self.read.load(Ordering::Relaxed) as f64 / total as f64).min(1.0);
            text.push_str(&format!(", {:.0}%", done * 100.0));
            if done > 0.0 && done < 1.0 {
                let left = Duration::from_secs_f64(secs * (1.0 - done) / done).as_secs();
                text.push_str(&format!(", {}:{:02} left", left / 60, left % 60));
            }
        }
        if self.terminal {
            eprint!("\r{text}\x1b[K");
            let _ = std::io::stderr().flush();
        } else {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if now - *last >= Duration::from_secs(5) {
                *last = now;
                eprintln!("{text}");
            }
        }
    }

    fn done(&self) {
        if self.terminal {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}
