//! CPU embedding throughput and latency, on the workload of ../shared/bench/ort_python_peer.py.
//!
//! ```text
//! cargo run --release --example embed_bench -- --model-dir models/all-MiniLM-L6-v2 \
//!     --corpus CORPUS.txt [--threads 2] [--write-corpus]
//! python3 ../shared/bench/ort_python_peer.py models/all-MiniLM-L6-v2/model.onnx \
//!     models/all-MiniLM-L6-v2/tokenizer.json CORPUS.txt 2
//! ```
//!
//! Texts: 2,048 spans of 8 to 40 words drawn from the corpus (as the peer draws them). Prints
//! JSON: texts/s at batch 32 (1,024 texts) and at batch 8, and p50/p95 latency of single texts
//! (200 runs). `--write-corpus` first writes a corpus of fleet-log messages to CORPUS.txt.
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;
use stats::percentile;

#[path = "common/fleet.rs"]
mod fleet;

use std::time::Instant;

use akidb::{Embedder, InputKind, OnnxConfig, OnnxEmbeddingProvider};

/// CPU embedding bench: batch-1 latency and batch-32 throughput (one JSON line).
#[derive(clap::Parser)]
#[command(name = "embed_bench")]
struct Args {
    /// Sentence-transformers model folder (ONNX).
    #[arg(long)]
    model_dir: std::path::PathBuf,
    /// Corpus of words the texts are drawn from.
    #[arg(long)]
    corpus: std::path::PathBuf,
    /// ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// First write a corpus of generated fleet-log messages to --corpus.
    #[arg(long)]
    write_corpus: bool,
    /// Most texts per model run.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_batch: Option<u32>,
    /// Most padded tokens per model run.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_batch_tokens: Option<u32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = <Args as clap::Parser>::parse();
    let (dir, corpus, threads, write) = (a.model_dir, a.corpus, a.threads as usize, a.write_corpus);
    let (max_batch, max_tokens) =
        (a.max_batch.map(|v| v as usize), a.max_batch_tokens.map(|v| v as usize));
    if write {
        let (events, _) = fleet::generate(20_000, 7);
        let text: Vec<String> = events.iter().map(|e| e.message.clone()).collect();
        std::fs::write(&corpus, text.join("\n"))?;
    }
    let words: Vec<String> =
        std::fs::read_to_string(&corpus)?.split_whitespace().map(str::to_string).collect();
    let mut rng = fleet::Rng::new(0);
    let texts: Vec<String> = (0..2048)
        .map(|_| {
            let start = rng.below(words.len() - 50);
            let len = 8 + rng.below(32);
            words[start..start + len].join(" ")
        })
        .collect();
    let mut config = OnnxConfig::from_dir(&dir)?.with_intra_threads(threads);
    if let Some(b) = max_batch {
        config = config.with_max_batch(b);
    }
    if let Some(t) = max_tokens {
        config = config.with_max_batch_tokens(t);
    }
    let model = OnnxEmbeddingProvider::new(config)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    model.embed(&refs[..32], InputKind::Document)?; // warm-up
    let tput = |b: usize| -> Result<f64, Box<dyn std::error::Error>> {
        let t = Instant::now();
        for chunk in refs[..1024].chunks(b) {
            model.embed(chunk, InputKind::Document)?;
        }
        Ok(1024.0 / t.elapsed().as_secs_f64())
    };
    let b32 = tput(32)?;
    let b8 = tput(8)?;
    let mut lat = Vec::with_capacity(200);
    for t in &refs[..200] {
        let s = Instant::now();
        model.embed(&[t], InputKind::Document)?;
        lat.push(s.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": "akidb (ort rc.15, ONNX Runtime loaded from ORT_DYLIB_PATH)",
            "threads": threads,
            "b32_texts_per_s": (b32 * 10.0).round() / 10.0,
            "b8_texts_per_s": (b8 * 10.0).round() / 10.0,
            "b1_p50_ms": (percentile(&mut lat, 0.5) * 100.0).round() / 100.0,
            "b1_p95_ms": (percentile(&mut lat, 0.95) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
