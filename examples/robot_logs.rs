//! Semantic search over robot fleet logs: the main job of AkiDB.
//!
//! ```text
//! cargo run --release --example robot_logs -- [--logs PATH] [--db PATH] [--model-dir DIR]
//!     [--query TEXT]... [--robot NAME] [--level LEVEL] [--since TIME] [--until TIME] [--k N]
//!     [--json] [--lines N] [--eval]
//! ```
//!
//! Without `--logs`, it generates a day of logs of an 8-robot warehouse fleet (ROS 2 console
//! format, some lines in German and Japanese; see examples/common/fleet.rs). The logs are
//! embedded on the CPU with the default model (all-MiniLM-L6-v2) and stored in a persistent
//! database (`--db`, default target/robot_logs.akidb); a second run reuses it. Then it answers
//! the questions (`--query`, repeatable; a showcase set by default) with the metadata filters
//! given, and with `--eval` scores the labelled question set (recall@10, MRR@10).
//!
//! `--logs` takes a log file in any format `akidb::logs` reads, detected per file: ROS 2 console
//! lines, JSON Lines, `journalctl -o json`, syslog (RFC 3164 / 5424), ISO 8601 lines with host,
//! level and component, and plain text (a line no format understands is still taken as text).
//! Queries are hybrid where the collection keeps a full-text index (the default): the score
//! shown is the fused one (reciprocal rank fusion of the vector and BM25 ranks).
//! TIME is RFC 3339 / ISO 8601 (`2026-11-20T08:00:00Z`, `2026-11-20T10:00:00+02:00`), a UTC
//! date and time (`2026-11-20T08:00`) or date, or unix seconds. Every argument is checked
//! before any work (`--help` lists them); a bad one exits with status 2 and says why.

#[path = "common/fleet.rs"]
mod fleet;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use akidb::logs::{LogReader, ReadOptions};
use akidb::{
    Database, FieldIndex, Filter, Hit, IndexKind, IngestOptions, OnnxEmbeddingProvider,
    TextDocument,
};
use fleet::{LogEvent, Question};

/// Semantic search over robot fleet logs with AkiDB: ingest (generated or your own), then ask.
#[derive(clap::Parser)]
#[command(name = "robot_logs", version)]
struct Args {
    /// Log file in any format `akidb::logs` reads (ROS 2 console, JSON Lines, journalctl -o
    /// json, syslog, ISO 8601 lines, plain text; detected per file). Default: a generated day.
    #[arg(long, value_name = "PATH")]
    logs: Option<PathBuf>,
    /// Database directory (created if missing; reused by later runs).
    #[arg(long, value_name = "PATH", default_value = "target/robot_logs.akidb")]
    db: PathBuf,
    /// Sentence-transformers model folder (converted to ONNX by scripts/setup.sh).
    #[arg(long, value_name = "DIR", default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// A question to ask (repeatable; default: a showcase set over the generated logs).
    #[arg(long = "query", value_name = "TEXT", value_parser = non_empty)]
    queries: Vec<String>,
    /// Only this robot (`3`, `robot3` and `robot_3` are the same).
    #[arg(long, value_name = "NAME", value_parser = robot_name)]
    robot: Option<String>,
    /// Only this level (DEBUG, INFO, WARN, ERROR, FATAL).
    #[arg(long, value_name = "LEVEL", value_parser = level)]
    level: Option<String>,
    /// Only lines at or after TIME (2026-11-20T08:00:00Z, 2026-11-20T08:00 UTC, 2026-11-20,
    /// unix seconds).
    #[arg(long, value_name = "TIME", value_parser = fleet::parse_time, allow_hyphen_values = true)]
    since: Option<i64>,
    /// Only lines before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = fleet::parse_time, allow_hyphen_values = true)]
    until: Option<i64>,
    /// Hits per question.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=akidb::limits::MAX_K as i64))]
    k: u32,
    /// One JSON object per question on stdout.
    #[arg(long)]
    json: bool,
    /// Lines of the generated fleet day.
    #[arg(long, value_name = "N", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    lines: u32,
    /// Score the labelled question set (recall@10, MRR@10; generated logs only).
    #[arg(long)]
    eval: bool,
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("a question cannot be empty".into())
    } else {
        Ok(s.to_string())
    }
}

fn robot_name(r: &str) -> Result<String, String> {
    // "3", "robot3" and "robot_3" mean robot_3 (the generated fleet's names); any other name
    // (amr-05, a host name) is taken as it is.
    let t = r.trim();
    let number = t.strip_prefix("robot").map_or(t, |n| n.strip_prefix('_').unwrap_or(n));
    match t {
        "" => Err("a robot name cannot be empty".into()),
        _ if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(format!("robot_{number}"))
        }
        t => Ok(t.to_string()),
    }
}

fn level(l: &str) -> Result<String, String> {
    let up = l.trim().to_uppercase();
    match up.as_str() {
        "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL" => Ok(up),
        "WARNING" => Ok("WARN".into()),
        _ => Err(format!("{l:?} is not a level: DEBUG, INFO, WARN, ERROR or FATAL")),
    }
}

/// Parses and checks every argument before any work.
fn parse_args() -> Args {
    use clap::{CommandFactory, Parser};
    let a = Args::parse();
    let fail = |msg: String| -> ! {
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, msg).exit()
    };
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if s >= u {
            fail(format!(
                "--since ({}) must be before --until ({})",
                fleet::iso8601(s),
                fleet::iso8601(u)
            ));
        }
    }
    if a.eval && a.logs.is_some() {
        fail("--eval scores the generated logs: leave out --logs".into());
    }
    if a.logs.is_some() && a.queries.is_empty() {
        fail("with --logs, ask at least one --query".into());
    }
    if let Some(p) = &a.logs {
        if !p.is_file() {
            fail(format!("--logs {}: no such file", p.display()));
        }
    }
    a
}

/// Streams a log file of any format `akidb::logs` reads into the collection (ids `file:line`,
/// so a second run upserts the same records), then says what the file held.
fn ingest_file(logs: &akidb::Collection, path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let mut reader = LogReader::open(path, ReadOptions::default())?;
    eprintln!("ingesting {} (format: {}) into the collection", path.display(), reader.format());
    let failed = std::sync::Mutex::new(None);
    let docs = reader.by_ref().map_while(|r| match r {
        Ok(r) => Some(TextDocument::new(r.id(), r.text()).with_metadata(r.metadata())),
        Err(e) => {
            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            None
        }
    });
    let progress = |p: akidb::IngestProgress| progress_bar(p.written, 0, p.elapsed.as_secs_f64());
    let report = logs.ingest(docs, &IngestOptions::default().with_progress(&progress))?;
    if let Some(e) = failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(format!("{e} (the {} records before it are stored)", report.written).into());
    }
    print_ingested(&report, "records");
    eprintln!("  {}: {}", path.display(), reader.summary());
    Ok(())
}

/// The line after an ingest: what was written, how fast, how much the model's input length cut.
fn print_ingested(report: &akidb::IngestReport, what: &str) {
    eprintln!(
        "{}  {} {what} in {:.1} s ({:.0} {what}/s, {} truncated), durable on disk",
        if std::io::stderr().is_terminal() { "\n" } else { "" },
        report.written,
        report.elapsed.as_secs_f64(),
        report.written as f64 / report.elapsed.as_secs_f64(),
        report.truncated
    );
}

/// Progress on stderr; `total` 0 when unknown (a streamed file).
fn progress_bar(written: usize, total: usize, secs: f64) {
    use std::io::IsTerminal;
    let rate = written as f64 / secs.max(1e-9);
    if total == 0 {
        if std::io::stderr().is_terminal() {
            eprint!("\r  {written:>8} records, {rate:>5.0}/s");
            let _ = std::io::stderr().flush();
        } else if written % 4096 < 256 {
            eprintln!("  {written} records, {rate:.0}/s");
        }
        return;
    }
    if !std::io::stderr().is_terminal() {
        // Logs and CI: a line per quarter, not a redrawn bar.
        let quarter = total.div_ceil(4).max(1);
        if written == total || written / quarter != written.saturating_sub(256) / quarter {
            eprintln!("  {written}/{total} lines, {:.0} lines/s", written as f64 / secs.max(1e-9));
        }
        return;
    }
    let width = 30;
    let filled = (written * width).checked_div(total).unwrap_or(width).min(width);
    eprint!(
        "\r  [{}{}] {:>6}/{} lines, {:>5.0} lines/s",
        "#".repeat(filled),
        " ".repeat(width - filled),
        written,
        total,
        written as f64 / secs.max(1e-9)
    );
    let _ = std::io::stderr().flush();
}

fn build_filter(a: &Args) -> Option<Filter> {
    let mut parts = Vec::new();
    if let Some(r) = &a.robot {
        parts.push(Filter::eq("robot", r.as_str()));
    }
    if let Some(l) = &a.level {
        parts.push(Filter::eq("level", l.as_str()));
    }
    if let Some(s) = a.since {
        parts.push(Filter::gte("ts", s));
    }
    if let Some(u) = a.until {
        parts.push(Filter::lt("ts", u));
    }
    parts.into_iter().reduce(Filter::and)
}

fn print_hits(query: &str, filter_desc: &str, hits: &[Hit]) {
    println!("\n? {query}{filter_desc}");
    if hits.is_empty() {
        println!("  (no matching lines)");
    }
    for (i, h) in hits.iter().enumerate() {
        let m = &h.metadata;
        let time =
            m["time"].as_str().unwrap_or("-").replace('T', " ").trim_end_matches('Z').to_string();
        let text = h.text.as_deref().unwrap_or("");
        // The embedded text is `node: message` when the line names a node.
        let message = match m["node"].is_string() {
            true => text.split_once(": ").map_or(text, |(_, msg)| msg),
            false => text,
        };
        println!(
            "  {:>2}. {:.3}  {}  {:<8} {:<5} {:<19} {}",
            i + 1,
            h.score,
            time,
            m["robot"].as_str().unwrap_or("-"),
            m["level"].as_str().unwrap_or("-"),
            m["node"].as_str().unwrap_or("-"),
            message
        );
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    if !args.model_dir.join("model.onnx").is_file() {
        return Err(format!(
            "model not found in {}: run `bash scripts/setup.sh` (converts all-MiniLM-L6-v2 to \
             ONNX), or pass --model-dir",
            args.model_dir.display()
        )
        .into());
    }
    let t = Instant::now();
    let model = Arc::new(OnnxEmbeddingProvider::from_dir(&args.model_dir)?);
    let info = akidb::Embedder::info(model.as_ref());
    eprintln!(
        "model {} ({}-d, {} pooling) on {} loaded in {:.2} s",
        info.name,
        info.dimension,
        info.pooling.as_str(),
        info.execution_provider,
        t.elapsed().as_secs_f64()
    );
    let db = Database::open(&args.db)?;
    let logs = db.text_collection("logs", model.clone())?;
    // The fields the questions filter on, kept in memory (declaring them again is free).
    db.set_indexes(
        "logs",
        vec![
            FieldIndex::new("robot", IndexKind::Keyword),
            FieldIndex::new("level", IndexKind::Keyword),
            FieldIndex::new("ts", IndexKind::Timestamp),
        ],
    )?;
    let generated = args.logs.is_none();
    let (events, questions): (Vec<LogEvent>, Vec<Question>) = match &args.logs {
        Some(p) => {
            ingest_file(&logs, p)?;
            (Vec::new(), Vec::new())
        }
        None => fleet::generate(args.lines as usize, 42),
    };
    let stored = logs.count()?;
    if args.logs.is_some() {
        eprintln!("{} records stored in {}", stored, args.db.display());
    } else if stored == 0 {
        eprintln!(
            "ingesting {} log lines from a generated fleet day into {}",
            events.len(),
            args.db.display()
        );
        let total = events.len();
        let progress =
            move |p: akidb::IngestProgress| progress_bar(p.written, total, p.elapsed.as_secs_f64());
        let docs = events
            .iter()
            .map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()));
        let report = logs.ingest(docs, &IngestOptions::default().with_progress(&progress))?;
        print_ingested(&report, "lines");
    } else {
        eprintln!(
            "reusing {} stored lines in {} (delete it to re-ingest)",
            stored,
            args.db.display()
        );
    }

    let filter = build_filter(&args);
    let mut desc = Vec::new();
    if let Some(r) = &args.robot {
        desc.push(format!("robot={r}"));
    }
    if let Some(l) = &args.level {
        desc.push(format!("level={l}"));
    }
    if let Some(s) = args.since {
        desc.push(format!("since {}", fleet::iso8601(s)));
    }
    if let Some(u) = args.until {
        desc.push(format!("until {}", fleet::iso8601(u)));
    }
    let filter_desc =
        if desc.is_empty() { String::new() } else { format!("   [{}]", desc.join(", ")) };

    let showcase: Vec<(String, Option<Filter>, String)> = if !args.queries.is_empty() {
        args.queries.iter().map(|q| (q.clone(), filter.clone(), filter_desc.clone())).collect()
    } else if generated {
        vec![
            (
                "why did robot 3 stop near the loading dock?".into(),
                Some(Filter::eq("robot", "robot_3")),
                "   [robot=robot_3]".into(),
            ),
            ("battery overheating".into(), None, String::new()),
            (
                "gripper could not pick up the tote".into(),
                Some(Filter::is_in("level", ["WARN", "ERROR"])),
                "   [level in WARN, ERROR]".into(),
            ),
            (
                "someone hit the emergency stop".into(),
                Some(Filter::gte("ts", fleet::T0 + 6 * 3600)),
                format!("   [since {}]", fleet::iso8601(fleet::T0 + 6 * 3600)),
            ),
        ]
    } else {
        unreachable!("parse_args requires --query with --logs")
    };
    for (q, f, d) in &showcase {
        let t = Instant::now();
        let hits = logs.query_text(q, args.k as usize, f.as_ref())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if args.json {
            println!(
                "{}",
                serde_json::json!({"query": q, "filter": d.trim(), "ms": ms, "hits": hits})
            );
        } else {
            print_hits(q, d, &hits);
            println!("     ({ms:.1} ms)");
        }
    }

    if args.eval {
        let (mut recall, mut mrr) = (0.0, 0.0);
        for q in &questions {
            let f = q.robot.map(|r| Filter::eq("robot", r));
            let hits = logs.query_text(q.text, 10, f.as_ref())?;
            let ranked: Vec<String> = hits.into_iter().map(|h| h.id).collect();
            let (r, m) = fleet::score(&ranked, &q.relevant, 10);
            recall += r;
            mrr += m;
        }
        let n = questions.len() as f64;
        println!(
            "\nlabelled questions: {}  recall@10 {:.3}  MRR@10 {:.3}",
            questions.len(),
            recall / n,
            mrr / n
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
