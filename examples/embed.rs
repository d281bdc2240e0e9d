//! Embeds lines from stdin, one JSON array per line on stdout.
//!
//! ```text
//! echo "lidar timeout on robot 3" |
//!     cargo run --release --example embed -- --model-dir DIR [--query] [--dim D]
//! ```
//!
//! `--query` embeds the lines as queries (with the model's query instruction, e.g. Qwen3's
//! `Instruct: ...\nQuery:`); `--dim` truncates to D dimensions (Matryoshka) and renormalises;
//! `--provider cuda|cpu` picks the execution provider (default cpu); `--fvecs` writes the
//! vectors in the texmex `.fvecs` format instead of JSON (ANN datasets:
//! `scripts/make_text_dataset.py`).
#![allow(missing_docs)]

use std::io::{BufRead, Write};

use akidb::{Embedder, InputKind, OnnxConfig, OnnxEmbeddingProvider};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Embeds the lines of standard input, one JSON line out per line in.
#[derive(clap::Parser)]
#[command(name = "embed")]
struct Args {
    /// Sentence-transformers model folder (ONNX).
    #[arg(long)]
    model_dir: std::path::PathBuf,
    /// Embed as queries (with the model's query prompt), not documents.
    #[arg(long)]
    query: bool,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    provider: String,
    /// Write binary `.fvecs` records (dimension, then the floats; little-endian), not JSON.
    #[arg(long)]
    fvecs: bool,
    /// Output dimension (Matryoshka truncation).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    dim: Option<u32>,
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = <Args as clap::Parser>::parse();
    let fvecs = a.fvecs;
    let (dir, kind, dim, cuda) = (
        a.model_dir,
        if a.query { InputKind::Query } else { InputKind::Document },
        a.dim.map(|d| d as usize),
        a.provider == "cuda",
    );
    let mut config = OnnxConfig::from_dir(dir)?;
    if let Some(d) = dim {
        config = config.with_dimension(d);
    }
    if cuda {
        config =
            config.with_execution_provider(akidb::ExecutionProviderConfig::Cuda { device_id: 0 });
    }
    let model = OnnxEmbeddingProvider::new(config)?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut lines = stdin.lock().lines();
    loop {
        let batch: Vec<String> = lines.by_ref().take(256).collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let e = model.embed(&refs, kind)?;
        for (v, truncated) in e.vectors.iter().zip(&e.truncated) {
            if *truncated {
                eprintln!("note: a line was truncated to {} tokens", model.info().max_length);
            }
            if fvecs {
                out.write_all(&i32::try_from(v.len())?.to_le_bytes())?;
                v.iter().try_for_each(|x| out.write_all(&x.to_le_bytes()))?;
            } else {
                serde_json::to_writer(&mut out, v)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
