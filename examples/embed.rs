//! Embeds lines from stdin, one JSON array per line on stdout.
//!
//! ```text
//! echo "lidar timeout on robot 3" | cargo run --release --example embed -- --model-dir DIR [--query] [--dim D]
//! ```
//!
//! `--query` embeds the lines as queries (with the model's query instruction, e.g. Qwen3's
//! `Instruct: ...\nQuery:`); `--dim` truncates to D dimensions (Matryoshka) and renormalises;
//! `--provider cuda|cpu` picks the execution provider (default cpu).
#![allow(missing_docs)]

use std::io::{BufRead, Write};

use akidb::{Embedder, InputKind, OnnxConfig, OnnxEmbeddingProvider};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (mut dir, mut kind, mut dim, mut cuda) = (None, InputKind::Document, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model-dir" => dir = args.next(),
            "--query" => kind = InputKind::Query,
            "--provider" => cuda = args.next().as_deref() == Some("cuda"),
            "--dim" => dim = Some(args.next().ok_or("--dim needs a value")?.parse::<usize>()?),
            _ => {
                return Err(format!(
                    "unknown argument {a}; usage: embed --model-dir DIR [--query] [--dim D]"
                )
                .into())
            }
        }
    }
    let mut config = OnnxConfig::from_dir(dir.ok_or("--model-dir is required")?)?;
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
            serde_json::to_writer(&mut out, v)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
