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
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;
use stats::percentile;

#[path = "common/fleet.rs"]
mod fleet;

use std::sync::Arc;
use std::time::Instant;

use akidb::{Database, IngestOptions, OnnxEmbeddingProvider, TextDocument};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut dir, mut corpus, mut n, mut write) = (None, None, 10_000usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model-dir" => dir = args.next(),
            "--corpus" => corpus = args.next(),
            "--n" => n = args.next().ok_or("--n")?.parse()?,
            "--write-corpus" => write = true,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let corpus = corpus.ok_or("--corpus is required")?;
    if write {
        let (events, _) = fleet::generate(100_000, 11);
        let lines: Vec<String> = events.iter().map(|e| e.text()).collect();
        std::fs::write(&corpus, lines.join("\n"))?;
    }
    let docs: Vec<String> = std::fs::read_to_string(&corpus)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(str::to_string)
        .collect();
    let model = Arc::new(OnnxEmbeddingProvider::from_dir(dir.ok_or("--model-dir is required")?)?);
    let tmp = tempfile::tempdir()?;
    let db = Database::open(tmp.path().join("bench.akidb"))?;
    let c = db.text_collection("texts", model)?;
    let t = Instant::now();
    let report = c.ingest(
        docs.iter().enumerate().map(|(i, d)| TextDocument::new(i.to_string(), d.clone())),
        &IngestOptions::default().with_batch_size(256),
    )?;
    let ingest_s = t.elapsed().as_secs_f64();
    let mut lat = Vec::with_capacity(100);
    let mut paths = std::collections::BTreeMap::<String, usize>::new();
    for q in docs.iter().take(100) {
        let q: String = q.chars().take(80).collect();
        let t = Instant::now();
        let (_, path) = c.query_text_with(&q, 10, None, akidb::SearchParams::default())?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        *paths.entry(format!("{path:?}")).or_default() += 1;
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "akidb", "n": report.written, "ingest_docs_per_s": report.written as f64 / ingest_s,
            "query_text_p50_ms": percentile(&mut lat, 0.5), "query_text_p95_ms": percentile(&mut lat, 0.95),
            "search_paths": paths,
        })
    );
    Ok(())
}
