//! End to end, text in: ingest (embed + store + index) and `query_text` latency, on the workload
//! of `../shared/bench/chroma_peer.py text` (same corpus lines, batches of 256, the first 100
//! documents cut to 80 characters as queries, k = 10).
//!
//! ```text
//! cargo run --release --example e2e_bench -- --model-dir models/all-MiniLM-L6-v2 \
//!     --corpus bench-data/fleet-100k.txt --n 10000 [--write-corpus]
//! python3 ../shared/bench/chroma_peer.py text models/all-MiniLM-L6-v2/model.onnx \
//!     models/all-MiniLM-L6-v2/tokenizer.json bench-data/fleet-100k.txt 10000
//! ```
//!
//! `--write-corpus` first writes 100,000 fleet-log lines (examples/common/fleet.rs) to the corpus.
//! The output states the repeat rate of the documents taken (`distinct_docs`, `repeat_rate`):
//! AkiDB embeds a repeated line once per call, a peer may embed every copy. `--unique` takes
//! distinct lines only, and `--write-taken PATH` writes the documents taken, for the peer to run
//! on the same set (`chroma_peer.py text ... PATH N`).
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;
use stats::percentile;

#[path = "common/fleet.rs"]
mod fleet;

use std::sync::Arc;
use std::time::Instant;

use akidb::{Database, IngestOptions, OnnxEmbeddingProvider, TextDocument};

/// End-to-end text bench: ingest and query_text latency (one JSON line).
#[derive(clap::Parser)]
#[command(name = "e2e_bench")]
struct Args {
    /// Sentence-transformers model folder (ONNX).
    #[arg(long)]
    model_dir: std::path::PathBuf,
    /// Corpus: one document per line.
    #[arg(long)]
    corpus: std::path::PathBuf,
    /// Documents to ingest (the first N non-empty lines).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    n: u64,
    /// First write 100,000 generated fleet-log lines to --corpus.
    #[arg(long)]
    write_corpus: bool,
    /// Take distinct lines only (AkiDB embeds a repeated line once per call; a peer may embed
    /// every copy): the first N distinct lines.
    #[arg(long)]
    unique: bool,
    /// Also write the documents taken to this file, for a peer to run on the same set.
    #[arg(long, value_name = "PATH")]
    write_taken: Option<std::path::PathBuf>,
    /// Queries walk the graph at this beam width (default: the library's rule, an exact scan
    /// while it reads at most `TEXT_EXACT_BYTES`, above that a walk at least `TEXT_MIN_EF`
    /// wide).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    ef: Option<u64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = <Args as clap::Parser>::parse();
    if a.write_corpus {
        let (events, _) = fleet::generate(100_000, 11);
        let lines: Vec<String> = events.iter().map(|e| e.text()).collect();
        std::fs::write(&a.corpus, lines.join("\n"))?;
    }
    let mut seen = std::collections::HashSet::new();
    let docs: Vec<String> = std::fs::read_to_string(&a.corpus)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !a.unique || seen.insert(l.to_string()))
        .take(a.n as usize)
        .map(str::to_string)
        .collect();
    if let Some(p) = &a.write_taken {
        std::fs::write(p, docs.join("\n"))?;
    }
    // The repeat rate of what is ingested, stated beside the figures.
    let distinct = docs.iter().collect::<std::collections::HashSet<_>>().len();
    let model = Arc::new(OnnxEmbeddingProvider::from_dir(&a.model_dir)?);
    let tmp = tempfile::tempdir()?;
    let db = Database::open(tmp.path().join("bench.akidb"))?;
    let c = db.text_collection("texts", model)?;
    let t = Instant::now();
    let report = c.ingest(
        docs.iter().enumerate().map(|(i, d)| TextDocument::new(i.to_string(), d.clone())),
        &IngestOptions::default().with_batch_size(256),
    )?;
    let ingest_s = t.elapsed().as_secs_f64();
    let mut options = akidb::QueryOptions::mode(akidb::QueryMode::Vector);
    if let Some(ef) = a.ef {
        options = options.with_params(akidb::SearchParams::with_ef(ef as usize));
    }
    let mut lat = Vec::with_capacity(100);
    let mut paths = std::collections::BTreeMap::<String, usize>::new();
    for q in docs.iter().take(100) {
        let q: String = q.chars().take(80).collect();
        let t = Instant::now();
        let (_, path) = c.query_text_with(&q, 10, None, options)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        *paths.entry(format!("{path:?}")).or_default() += 1;
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "akidb", "n": report.written,
            "ingest_docs_per_s": report.written as f64 / ingest_s,
            "query_text_p50_ms": percentile(&mut lat, 0.5),
            "query_text_p95_ms": percentile(&mut lat, 0.95),
            "search_paths": paths, "distinct_docs": distinct,
            "repeat_rate": 1.0 - distinct as f64 / docs.len().max(1) as f64,
        })
    );
    Ok(())
}
