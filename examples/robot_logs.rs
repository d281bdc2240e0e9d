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
//! `--logs` takes plain ROS 2 console lines (`[LEVEL] [secs.nanos] [robot.node]: message`) or
//! JSONL (`{"ts":..,"level":..,"robot":..,"node":..,"msg":..}`), one event per line.
//! TIME is RFC 3339 / ISO 8601 (`2026-11-20T08:00:00Z`, `2026-11-20T10:00:00+02:00`), a UTC
//! date and time (`2026-11-20T08:00`) or date, or unix seconds. Every argument is checked
//! before any work (`--help` lists them); a bad one exits with status 2 and says why.

#[path = "common/fleet.rs"]
mod fleet;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use akidb::{
    Database, FieldIndex, Filter, Hit, IndexKind, IngestOptions, OnnxEmbeddingProvider,
    TextDocument,
};
use fleet::{LogEvent, Question};

/// Semantic search over robot fleet logs with AkiDB: ingest (generated or your own), then ask.
#[derive(clap::Parser)]
#[command(name = "robot_logs", version)]
struct Args {
    /// Log file: ROS 2 console lines or JSON Lines (default: a generated fleet day).
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
    // "3" and "robot3" mean robot_3.
    let digits: String = r.chars().filter(char::is_ascii_digit).collect();
    match r.trim() {
        "" => Err("a robot name cannot be empty".into()),
        _ if !digits.is_empty() && r.len() <= 8 => Ok(format!("robot_{digits}")),
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

fn read_logs(path: &PathBuf) -> Result<Vec<LogEvent>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let id = format!("line-{:07}", n + 1);
        let ev = if line.trim_start().starts_with('{') {
            serde_json::from_str(&line).ok().and_then(|v| LogEvent::parse_json(id, &v))
        } else {
            LogEvent::parse_line(id, &line)
        };
        match ev {
            Some(e) => out.push(e),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        eprintln!(
            "note: skipped {skipped} lines that are neither ROS 2 console lines nor JSON events"
        );
    }
    Ok(out)
}

fn progress_bar(written: usize, total: usize, secs: f64) {
    use std::io::IsTerminal;
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
            m["time"].as_str().unwrap_or("?").replace('T', " ").trim_end_matches('Z').to_string();
        let text = h.text.as_deref().unwrap_or("");
        let message = text.split_once(": ").map_or(text, |(_, msg)| msg);
        println!(
            "  {:>2}. {:.3}  {}  {:<8} {:<5} {:<19} {}",
            i + 1,
            h.score,
            time,
            m["robot"].as_str().unwrap_or("?"),
            m["level"].as_str().unwrap_or("?"),
            m["node"].as_str().unwrap_or("?"),
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
        Some(p) => (read_logs(p)?, Vec::new()),
        None => fleet::generate(args.lines as usize, 42),
    };
    let stored = logs.count()?;
    if stored == 0 || args.logs.is_some() {
        eprintln!(
            "ingesting {} log lines from {} into {}",
            events.len(),
            args.logs.as_ref().map_or("a generated fleet day".into(), |p| p.display().to_string()),
            args.db.display()
        );
        let total = events.len();
        let progress =
            move |p: akidb::IngestProgress| progress_bar(p.written, total, p.elapsed.as_secs_f64());
        let docs = events
            .iter()
            .map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()));
        let report = logs.ingest(docs, &IngestOptions::default().with_progress(&progress))?;
        eprintln!(
            "{}  {} lines in {:.1} s ({:.0} lines/s, {} truncated), durable on disk",
            if std::io::stderr().is_terminal() { "\n" } else { "" },
            report.written,
            report.elapsed.as_secs_f64(),
            report.written as f64 / report.elapsed.as_secs_f64(),
            report.truncated
        );
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
