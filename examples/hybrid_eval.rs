//! Keyword, vector and hybrid search measured on the labelled multi-day fleet log
//! (`examples/common/relevance.rs`): recall@10 and MRR@10 per mode, overall and per slice;
//! query latency per mode; the ingest cost of the full-text index.
//!
//! ```text
//! cargo run --release --example hybrid_eval -- [--days 3] [--lines-per-day 5000]
//!     [--db PATH] [--model-dir DIR] [--export DIR] [--ingest-rounds N] [--latency-rounds N]
//! ```
//!
//! - Ingest: the corpus goes into two text collections of one database, one with the
//!   full-text index (the default of text collections) and one without, `--ingest-rounds`
//!   times each in alternating order (each round into fresh collections); lines per second of
//!   each, and their ratio. The corpus's repeat rate (AkiDB embeds identical texts of a call
//!   once) is printed beside it.
//! - Relevance: every question in every mode, with the robot filter it names applied inside
//!   each side.
//! - Latency: `--latency-rounds` rounds over all questions, the mode order rotated per round;
//!   per-query wall time including the query's embedding; p50 and p95 per mode and round.
//! - `--export DIR` writes `corpus.jsonl` (id, text, robot, vector as stored) and
//!   `questions.jsonl` for the LanceDB peer (`scripts/peers/lancedb_hybrid.py`).
//!
//! With `--db PATH` an existing database with the corpus is reused (no ingest).

#[path = "common/fleet.rs"]
mod fleet;
#[path = "common/relevance.rs"]
mod relevance;
#[path = "common/stats.rs"]
mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use akidb::{
    CollectionConfig, Database, FieldIndex, Filter, Fusion, IndexKind, IngestOptions,
    ModelIdentity, OnnxEmbeddingProvider, QueryMode, QueryOptions, SearchParams, TextDocument,
};
use relevance::{Labelled, QuestionSet, Slice};
use serde_json::json;

/// Hybrid search on a labelled multi-day fleet log: relevance, latency, ingest cost.
#[derive(clap::Parser)]
#[command(name = "hybrid_eval")]
struct Args {
    /// Days of logs (at least 3: the scripted incidents span three).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=60))]
    days: u32,
    /// Lines per day.
    #[arg(long, default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(100..=200_000))]
    lines_per_day: u32,
    /// The labelled set: `reported` (the one results are reported on) or `tuning` (the one
    /// fusion parameters are chosen on; its own incidents, questions and routine traffic).
    #[arg(long, default_value = "reported", value_parser = parse_set)]
    questions: QuestionSet,
    /// Database directory (reused when it holds the corpus; default: a temporary one).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Sentence-transformers model folder.
    #[arg(long, value_name = "DIR", default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// Write corpus.jsonl and questions.jsonl here for the peer.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Ingest rounds per configuration (with and without the full-text index; 0: none).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=10))]
    ingest_rounds: u32,
    /// Fusion of hybrid queries: `rrf` (default, k 10), `rrf:K`, or `weighted:W` (W the
    /// vector side's weight, 0 to 1).
    #[arg(long, default_value = "rrf", value_parser = parse_fusion)]
    fusion: Fusion,
    /// The vector side scans exactly instead of walking the graph.
    #[arg(long)]
    exact: bool,
    /// The graph walk's beam width (default: the collection's ef_search).
    #[arg(long, value_name = "N")]
    ef: Option<usize>,
    /// Write each question's outcome per mode here (JSON Lines: the question, its slice, and
    /// per mode the rank of its first relevant line (0: not in the top 10), recall@10 and the
    /// ids ranked).
    #[arg(long, value_name = "FILE")]
    per_question: Option<PathBuf>,
    /// Latency rounds over all questions.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    latency_rounds: u32,
}

fn options(args: &Args, mode: QueryMode) -> QueryOptions {
    let params = match (args.exact, args.ef) {
        (true, _) => SearchParams::exact(),
        (false, Some(ef)) => SearchParams::with_ef(ef),
        (false, None) => SearchParams::default(),
    };
    QueryOptions::mode(mode).with_fusion(args.fusion).with_params(params)
}

fn parse_set(s: &str) -> Result<QuestionSet, String> {
    [QuestionSet::Reported, QuestionSet::Tuning]
        .into_iter()
        .find(|q| q.name() == s)
        .ok_or_else(|| format!("{s:?}: use reported or tuning"))
}

fn parse_fusion(s: &str) -> Result<Fusion, String> {
    let bad = || format!("{s:?}: use rrf, rrf:K or weighted:W (W from 0 to 1)");
    match s.split_once(':') {
        None if s == "rrf" => Ok(Fusion::default()),
        Some(("rrf", k)) => k.parse().map(|k| Fusion::Rrf { k }).map_err(|_| bad()),
        Some(("weighted", w)) => match w.parse::<f32>() {
            Ok(w) if (0.0..=1.0).contains(&w) => Ok(Fusion::Weighted { vector: w }),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

const MODES: [QueryMode; 3] = [QueryMode::Vector, QueryMode::Keyword, QueryMode::Hybrid];

fn mode_name(m: QueryMode) -> &'static str {
    match m {
        QueryMode::Vector => "vector",
        QueryMode::Keyword => "keyword",
        _ => "hybrid",
    }
}

fn filter_of(q: &Labelled) -> Option<Filter> {
    q.robot.as_ref().map(|r| Filter::eq("robot", r.as_str()))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = clap::Parser::parse();
    let (events, questions) =
        relevance::generate_set(args.questions, args.days as usize, args.lines_per_day as usize);
    let texts: Vec<String> = events.iter().map(fleet::LogEvent::text).collect();
    let distinct = texts.iter().collect::<std::collections::HashSet<_>>().len();
    let mut per_slice = BTreeMap::<Slice, usize>::new();
    for q in &questions {
        *per_slice.entry(q.slice).or_default() += 1;
    }
    eprintln!(
        "{} set: {} lines over {} days, {} distinct texts (repeat rate {:.1}%); {} questions \
         ({})",
        args.questions.name(),
        events.len(),
        args.days,
        distinct,
        100.0 * (1.0 - distinct as f64 / events.len() as f64),
        questions.len(),
        per_slice.iter().map(|(s, n)| format!("{} {n}", s.name())).collect::<Vec<_>>().join(", ")
    );
    let model = Arc::new(OnnxEmbeddingProvider::from_dir(&args.model_dir)?);
    let tmp = tempfile::tempdir()?;
    let db_path = args.db.clone().unwrap_or_else(|| tmp.path().join("eval.akidb"));
    let db = Database::open(&db_path)?;
    let docs = || {
        events.iter().map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()))
    };
    let mut summary = json!({
        "lines": events.len(), "days": args.days, "distinct_texts": distinct,
        "questions": questions.len(), "set": args.questions.name(),
    });

    // Ingest with and without the full-text index, alternating.
    let mut rates: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..args.ingest_rounds {
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        for with_text in order {
            let name = format!("ingest_{}_{round}", if with_text { "ft" } else { "noft" });
            let info = akidb::Embedder::info(model.as_ref());
            let config = CollectionConfig::new(info.dimension)
                .with_model(ModelIdentity::of(info))
                .with_full_text(with_text);
            db.create_collection(&name, config)?;
            let c = db.text_collection(&name, model.clone())?;
            let t = Instant::now();
            c.ingest(docs(), &IngestOptions::default())?;
            let rate = events.len() as f64 / t.elapsed().as_secs_f64();
            let key = if with_text { "with full-text index" } else { "without" };
            eprintln!("ingest round {}: {key}: {rate:.0} lines/s", round + 1);
            rates.entry(key).or_default().push(rate);
            db.drop_collection(&name)?;
        }
    }
    if let (Some(on), Some(off)) = (rates.get("with full-text index"), rates.get("without")) {
        let ratios: Vec<f64> = on.iter().zip(off).map(|(a, b)| a / b).collect();
        eprintln!("ingest rate with / without the full-text index: {ratios:.3?}");
        summary["ingest_lines_per_s"] = json!({"with": on, "without": off, "ratio": ratios});
    }

    // One collection per set, so that one --db holds both.
    let collection = match args.questions {
        QuestionSet::Reported => "logs",
        QuestionSet::Tuning => "logs_tuning",
    };
    let logs = db.text_collection(collection, model.clone())?;
    // The fields the questions filter on, kept in memory, as `robot_logs` declares them.
    db.set_indexes(
        collection,
        vec![
            FieldIndex::new("robot", IndexKind::Keyword),
            FieldIndex::new("level", IndexKind::Keyword),
            FieldIndex::new("ts", IndexKind::Timestamp),
        ],
    )?;
    let held = logs.count()?;
    if held != 0 && held != events.len() as u64 {
        return Err(format!(
            "{} holds {held} lines in {collection:?}, not this corpus's {}: use another --db",
            db_path.display(),
            events.len()
        )
        .into());
    }
    if held == 0 {
        eprintln!("ingesting {} lines into {}", events.len(), db_path.display());
        logs.ingest(docs(), &IngestOptions::default())?;
    }

    // The vector side as run (the default: an exact scan below TEXT_EXACT_BYTES, else the
    // graph; or as --ef / --exact say) against an exact scan on these queries (questions are
    // far from every log line: a hard case for HNSW): the share of its top 10 at least as near
    // as the exact 10th.
    let mut ann = Vec::new();
    for q in &questions {
        let f = filter_of(q);
        let run = |o: QueryOptions| logs.query_text_with(&q.text, 10, f.as_ref(), o);
        let exact =
            run(QueryOptions::mode(QueryMode::Vector).with_params(SearchParams::exact()))?.0;
        let graph = run(options(&args, QueryMode::Vector))?.0;
        if let Some(tenth) = exact.last().map(|h| h.score - 1e-6) {
            let near = graph.iter().filter(|h| h.score >= tenth).count();
            ann.push(near as f64 / exact.len() as f64);
        }
    }
    let ann_recall = ann.iter().sum::<f64>() / ann.len().max(1) as f64;
    eprintln!("vector side as run, against exact: recall@10 {ann_recall:.3} (by distance)");
    summary["graph_recall_at_10"] = json!(ann_recall);

    // Relevance.
    let mut scores: BTreeMap<(&str, Option<Slice>), (f64, f64, usize)> = BTreeMap::new();
    let mut per_question = Vec::new();
    for q in &questions {
        let mut outcome = serde_json::Map::new();
        for mode in MODES {
            let f = filter_of(q);
            let (hits, _) = logs.query_text_with(&q.text, 10, f.as_ref(), options(&args, mode))?;
            let ranked: Vec<String> = hits.into_iter().map(|h| h.id).collect();
            let (r, m) = fleet::score(&ranked, &q.relevant, 10);
            let first = ranked.iter().position(|id| q.relevant.contains(id)).map_or(0, |p| p + 1);
            outcome.insert(
                mode_name(mode).into(),
                json!({"first_relevant": first, "recall": r, "ranked": ranked}),
            );
            for key in [(mode_name(mode), None), (mode_name(mode), Some(q.slice))] {
                let e = scores.entry(key).or_default();
                e.0 += r;
                e.1 += m;
                e.2 += 1;
            }
        }
        per_question.push(json!({"text": q.text, "slice": q.slice.name(),
                                 "relevant": q.relevant, "modes": outcome}));
    }
    if let Some(path) = &args.per_question {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in &per_question {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    println!("\n{:<12} {:>8} {:>10} {:>10} {:>10}", "slice", "n", "vector", "keyword", "hybrid");
    let mut table = serde_json::Map::new();
    for slice in std::iter::once(None).chain(Slice::ALL.into_iter().map(Some)) {
        let label = slice.map_or("all", Slice::name);
        let n = scores.get(&("vector", slice)).map_or(0, |e| e.2);
        let cell = |mode: &str| {
            let (r, m, n) = scores[&(mode, slice)];
            (r / n as f64, m / n as f64)
        };
        let row: Vec<(f64, f64)> = ["vector", "keyword", "hybrid"].map(cell).to_vec();
        println!(
            "{label:<12} {n:>8} {}",
            row.iter().map(|(r, m)| format!("{r:.3}/{m:.3}")).collect::<Vec<_>>().join(" ")
        );
        table.insert(
            label.into(),
            json!({"n": n, "vector": row[0], "keyword": row[1], "hybrid": row[2]}),
        );
    }
    println!("(cells: recall@10/MRR@10)");
    summary["relevance"] = serde_json::Value::Object(table);

    // Latency, mode order rotated per round.
    let mut lat: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for round in 0..args.latency_rounds as usize {
        for i in 0..MODES.len() {
            let mode = MODES[(i + round) % MODES.len()];
            let mut ms = Vec::with_capacity(questions.len());
            for q in &questions {
                let f = filter_of(q);
                let t = Instant::now();
                logs.query_text_with(&q.text, 10, f.as_ref(), options(&args, mode))?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let p50 = stats::percentile(&mut ms, 0.5);
            let p95 = stats::percentile(&mut ms, 0.95);
            lat.entry(mode_name(mode)).or_default().push((p50, p95));
        }
    }
    if args.latency_rounds > 0 {
        for (mode, v) in &lat {
            eprintln!("latency {mode:<8} p50/p95 ms per round: {v:.2?}");
        }
        let ratio: Vec<f64> =
            lat["hybrid"].iter().zip(&lat["vector"]).map(|(h, v)| h.1 / v.1).collect();
        eprintln!("hybrid / vector p95 per round: {ratio:.3?}");
        summary["latency_ms_p50_p95"] = json!(lat);
        summary["hybrid_over_vector_p95"] = json!(ratio);
    }

    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("corpus.jsonl"))?);
        for chunk in events.chunks(1000) {
            let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
            for (e, rec) in chunk.iter().zip(logs.get(&ids)?) {
                let rec = rec.ok_or("a stored line is missing")?;
                let line = json!({"id": e.id, "text": rec.text, "robot": e.robot,
                                  "vector": rec.vector});
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("questions.jsonl"))?);
        for q in &questions {
            let line = json!({"text": q.text, "slice": q.slice.name(), "robot": q.robot,
                              "relevant": q.relevant});
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        eprintln!("exported the corpus and questions to {}", dir.display());
    }
    println!("{summary}");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
