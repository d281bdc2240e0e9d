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
//! TIME is ISO 8601 (`2026-11-20T08:00:00Z`, `2026-11-20`) or unix seconds.

#[path = "common/fleet.rs"]
mod fleet;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use akidb::{Database, Filter, Hit, IngestOptions, OnnxEmbeddingProvider, TextDocument};
use fleet::{LogEvent, Question};

struct Args {
    logs: Option<PathBuf>,
    db: PathBuf,
    model_dir: PathBuf,
    queries: Vec<String>,
    robot: Option<String>,
    level: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    k: usize,
    json: bool,
    lines: usize,
    eval: bool,
}

const USAGE: &str = "usage: robot_logs [--logs PATH] [--db PATH] [--model-dir DIR] [--query TEXT]... \
[--robot NAME] [--level LEVEL] [--since TIME] [--until TIME] [--k N] [--json] [--lines N] [--eval]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        logs: None,
        db: PathBuf::from("target/robot_logs.akidb"),
        model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
        queries: Vec::new(),
        robot: None,
        level: None,
        since: None,
        until: None,
        k: 5,
        json: false,
        lines: 5000,
        eval: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--logs" => a.logs = Some(val()?.into()),
            "--db" => a.db = val()?.into(),
            "--model-dir" => a.model_dir = val()?.into(),
            "--query" => a.queries.push(val()?),
            "--robot" => {
                let r = val()?;
                // "3" and "robot3" mean robot_3.
                let digits: String = r.chars().filter(char::is_ascii_digit).collect();
                a.robot = Some(if !digits.is_empty() && r.len() <= 8 { format!("robot_{digits}") } else { r });
            }
            "--level" => a.level = Some(val()?.to_uppercase()),
            "--since" => a.since = Some(fleet::parse_time(&val()?).ok_or("--since: not a time")?),
            "--until" => a.until = Some(fleet::parse_time(&val()?).ok_or("--until: not a time")?),
            "--k" => a.k = val()?.parse().map_err(|_| "--k: not a number")?,
            "--lines" => a.lines = val()?.parse().map_err(|_| "--lines: not a number")?,
            "--json" => a.json = true,
            "--eval" => a.eval = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn read_logs(path: &PathBuf) -> Result<Vec<LogEvent>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
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
        eprintln!("note: skipped {skipped} lines that are neither ROS 2 console lines nor JSON events");
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
        let time = m["time"].as_str().unwrap_or("?").replace('T', " ").trim_end_matches('Z').to_string();
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
    let args = parse_args()?;
    if !args.model_dir.join("model.onnx").is_file() {
        return Err(format!(
            "model not found in {}: run `bash scripts/setup.sh` (converts all-MiniLM-L6-v2 to ONNX), or pass --model-dir",
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
    let generated = args.logs.is_none();
    let (events, questions): (Vec<LogEvent>, Vec<Question>) = match &args.logs {
        Some(p) => (read_logs(p)?, Vec::new()),
        None => fleet::generate(args.lines, 42),
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
        let progress = move |p: akidb::IngestProgress| progress_bar(p.written, total, p.elapsed.as_secs_f64());
        let docs = events.iter().map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()));
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
        eprintln!("reusing {} stored lines in {} (delete it to re-ingest)", stored, args.db.display());
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
    let filter_desc = if desc.is_empty() { String::new() } else { format!("   [{}]", desc.join(", ")) };

    let showcase: Vec<(String, Option<Filter>, String)> = if !args.queries.is_empty() {
        args.queries.iter().map(|q| (q.clone(), filter.clone(), filter_desc.clone())).collect()
    } else if generated {
        vec![
            ("why did robot 3 stop near the loading dock?".into(), Some(Filter::eq("robot", "robot_3")), "   [robot=robot_3]".into()),
            ("battery overheating".into(), None, String::new()),
            ("gripper could not pick up the tote".into(), Some(Filter::is_in("level", ["WARN", "ERROR"])), "   [level in WARN, ERROR]".into()),
            ("someone hit the emergency stop".into(), Some(Filter::gte("ts", fleet::T0 + 6 * 3600)), format!("   [since {}]", fleet::iso8601(fleet::T0 + 6 * 3600))),
        ]
    } else {
        return Err("give at least one --query".into());
    };
    for (q, f, d) in &showcase {
        let t = Instant::now();
        let hits = logs.query_text(q, args.k, f.as_ref())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if args.json {
            println!("{}", serde_json::json!({"query": q, "filter": d.trim(), "ms": ms, "hits": hits}));
        } else {
            print_hits(q, d, &hits);
            println!("     ({ms:.1} ms)");
        }
    }

    if args.eval {
        if !generated {
            return Err("--eval needs the generated corpus (no --logs)".into());
        }
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
