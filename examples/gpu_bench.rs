//! GPU (or CPU) embedding benchmark and reference check through AkiDB's own provider.
//!
//! ```text
//! gpu_bench --model-dir DIR [--provider cuda|tensorrt|cpu] [--device 0] [--runs 100]
//!           [--reference REF.json] [--max-length N] [--fixed-single N] [--bench]
//! ```
//!
//! - `--reference`: embeds the texts of a reference file (tests/fixtures/*/reference.json) and
//!   prints the worst cosine against it (batch 1 and batch 32, documents and, for Qwen3, queries).
//! - `--bench`: batch 1 x 32 tokens latency p50/p95 over `--runs` runs; throughput (texts/s,
//!   tokens/s) at batch 32 x 128 and 64 x 256 tokens. Inputs are distinct texts (identical texts
//!   in a call are embedded once, so copies would measure one text), each calibrated to the
//!   exact token count. Output: one JSON line.
//!
//! - `--profile PREFIX`: ONNX Runtime profiling on; runs only 3 batches of 64 x 256 tokens (after
//!   one warm-up) and leaves the trace in `PREFIX_*.json` (summarise it with
//!   `scripts/gpu/profile_summary.py`).
//! - `--fixed-single N`: single texts of up to N tokens run through the fixed-shape session
//!   (CUDA graphs on CUDA; `OnnxConfig::with_fixed_single`). The output's `fixed_runs` counts
//!   the runs it answered.
//!
//! Output also carries the model's `precision` (read from its graph), `shared_weight_bytes` (one
//! copy of the weights for both sessions with `--fixed-single`) and `gpu_mib_after_load`: this
//! process's device memory as nvidia-smi reports it right after the model loaded (absent where
//! nvidia-smi is not installed), the CUDA context included. With `--baseline-model DIR` (a small
//! model, e.g. tests/fixtures/qwen3-tiny) that model is loaded first on the same provider:
//! `gpu_mib_before_load` is the process's device memory then (the CUDA context and ONNX
//! Runtime's set-up) and `gpu_mib_model` what loading the model under test added to it.
//!
//! Same shapes as `../shared/bench/torch_qwen3_bench.py`, the HF transformers peer.
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;
use stats::percentile;

use std::time::Instant;

use akidb::embedding::{
    Embedder, ExecutionProviderConfig, InputKind, OnnxConfig, OnnxEmbeddingProvider,
};
use serde_json::{json, Value};

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn texts_and_vectors(v: &Value) -> (Vec<String>, Vec<Vec<f64>>) {
    let t = v["texts"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let e = v["embeddings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    r.as_array()
                        .map(|r| r.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    (t, e)
}

/// Worst cosine of `kind` embeddings against the reference, at batch 1 and at batch 32.
fn check(
    model: &OnnxEmbeddingProvider,
    texts: &[String],
    want: &[Vec<f64>],
    kind: InputKind,
) -> Result<(f64, f64), String> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut worst1 = 1.0f64;
    for (t, w) in refs.iter().zip(want) {
        let v = model.embed(&[t], kind).map_err(|e| e.to_string())?;
        worst1 = worst1.min(cosine(&v.vectors[0], w));
    }
    let mut cycled: Vec<&str> = Vec::new();
    let mut wants: Vec<&Vec<f64>> = Vec::new();
    while cycled.len() < 32 {
        for (t, w) in refs.iter().zip(want) {
            cycled.push(t);
            wants.push(w);
        }
    }
    let out = model.embed(&cycled[..32], kind).map_err(|e| e.to_string())?;
    let worst32 = out.vectors.iter().zip(&wants).map(|(v, w)| cosine(v, w)).fold(1.0, f64::min);
    Ok((worst1, worst32))
}

/// Token counts of `texts` (special tokens included), from one model call.
fn counts(model: &OnnxEmbeddingProvider, texts: &[String]) -> Result<Vec<usize>, String> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(model.embed(&refs, InputKind::Document).map_err(|e| e.to_string())?.token_counts)
}

/// `count` distinct texts that each tokenize to exactly `tokens` tokens (special tokens
/// included). Distinct, because identical texts in one call are embedded once: a batch of copies
/// would measure one text. One word list is calibrated (whole words while they fit, then a
/// filler that is one token in this tokenizer), and each text is a seeded shuffle of it (the first
/// word kept in place): the tokenizers split on whitespace first, so the order of the words does
/// not change the count. Every text's count is checked.
fn texts_of(
    model: &OnnxEmbeddingProvider,
    count: usize,
    tokens: usize,
) -> Result<Vec<String>, String> {
    const WORDS: [&str; 8] =
        ["robot", "dock", "lidar", "battery", "aisle", "tote", "gripper", "sensor"];
    let join = |w: &[&str]| w.join(" ");
    let prefixes: Vec<Vec<&str>> =
        (0..=tokens).map(|n| (0..n).map(|k| WORDS[k % WORDS.len()]).collect()).collect();
    let lens = counts(model, &prefixes.iter().map(|p| join(p)).collect::<Vec<_>>())?;
    let n = lens.iter().rposition(|&l| l <= tokens).ok_or("even an empty text is too long")?;
    let mut words = prefixes[n].clone();
    let base = lens[n];
    if base < tokens {
        let fillers = ["a", "the", "robot", "x", "."];
        let with: Vec<String> =
            fillers.iter().map(|f| join(&[words.as_slice(), &[f]].concat())).collect();
        let f = counts(model, &with)?
            .iter()
            .position(|&l| l == base + 1)
            .map(|j| fillers[j])
            .ok_or("no one-token filler word in this tokenizer")?;
        words.extend(std::iter::repeat_n(f, tokens - base));
    }
    let mut out = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while out.len() < count {
        // A seeded Fisher-Yates shuffle (xorshift) of all words but the first (byte-level BPE
        // tokenizes a word at the start of a text, without a space before it, differently).
        let mut w = words.clone();
        for k in (2..w.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            w.swap(k, 1 + (seed % k as u64) as usize);
        }
        let t = join(&w);
        if seen.insert(t.clone()) {
            out.push(t);
        } else if seen.len() > 1_000 * count.max(1) {
            return Err(format!("cannot make {count} distinct texts of {tokens} tokens"));
        }
    }
    if let Some(bad) = counts(model, &out)?.iter().find(|&&l| l != tokens) {
        return Err(format!("a shuffled text has {bad} tokens, not {tokens}"));
    }
    Ok(out)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// GPU (or CPU) embedding bench and reference check through AkiDB's provider (one JSON line).
#[derive(clap::Parser)]
#[command(name = "gpu_bench")]
struct Args {
    /// Sentence-transformers model folder (ONNX).
    #[arg(long)]
    model_dir: String,
    /// cuda, tensorrt or cpu.
    #[arg(long, default_value = "cuda", value_parser = ["cuda", "tensorrt", "cpu"])]
    provider: String,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// Batch-1 runs for the latency figures.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Reference embeddings to check against (tests/fixtures/*/reference.json).
    #[arg(long, value_name = "REF.json")]
    reference: Option<String>,
    /// Longest input in tokens.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=32_768))]
    max_length: Option<u32>,
    /// Single texts of up to N tokens through the fixed-shape session.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32_768))]
    fixed_single: Option<u32>,
    /// Latency and throughput figures.
    #[arg(long)]
    bench: bool,
    /// ONNX Runtime profiling, trace written to PREFIX_*.json.
    #[arg(long, value_name = "PREFIX")]
    profile: Option<String>,
    /// A small model loaded first, so that `gpu_mib_model` excludes the CUDA context.
    #[arg(long, value_name = "DIR")]
    baseline_model: Option<String>,
}

/// This process's device memory in MiB, as `nvidia-smi --query-compute-apps` reports it.
fn gpu_mib() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let me = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (pid, mib) = l.split_once(',')?;
        (pid.trim() == me).then(|| mib.trim().parse().ok()).flatten()
    })
}

fn run() -> Result<(), String> {
    let a = <Args as clap::Parser>::parse();
    let (dir, provider, device, runs) = (a.model_dir, a.provider, a.device, a.runs as usize);
    let (reference, bench, max_length, fixed, profile) = (
        a.reference,
        a.bench,
        a.max_length.map(|v| v as usize),
        a.fixed_single.map(|v| v as usize),
        a.profile,
    );
    let mut config = OnnxConfig::from_dir(&dir).map_err(|e| e.to_string())?.with_max_batch(64);
    if let Some(m) = max_length {
        config = config.with_max_length(m);
    }
    if let Some(n) = fixed {
        config = config.with_fixed_single(n);
    }
    if let Some(p) = &profile {
        config = config.with_ort_profiling(p);
    }
    config = config.with_execution_provider(match provider.as_str() {
        "cuda" => ExecutionProviderConfig::Cuda { device_id: device },
        "tensorrt" => {
            ExecutionProviderConfig::tensorrt(device, std::env::temp_dir().join("akidb-trt"))
        }
        "cpu" => ExecutionProviderConfig::Cpu,
        p => return Err(format!("unknown provider {p}")),
    });
    let (_baseline, before) = match &a.baseline_model {
        Some(b) => {
            let c = OnnxConfig::from_dir(b)
                .map_err(|e| format!("{b}: {e}"))?
                .with_execution_provider(config.execution_provider.clone());
            let m = OnnxEmbeddingProvider::new(c).map_err(|e| format!("{b}: {e}"))?;
            m.embed(&["baseline"], InputKind::Document).map_err(|e| e.to_string())?;
            (Some(m), gpu_mib())
        }
        None => (None, None),
    };
    let t = Instant::now();
    let model = OnnxEmbeddingProvider::new(config).map_err(|e| e.to_string())?;
    let load_s = t.elapsed().as_secs_f64();
    let info = model.info().clone();
    let after = gpu_mib();
    let mut out = json!({"model_dir": dir, "provider": info.execution_provider,
                         "precision": info.precision,
                         "shared_weight_bytes": model.shared_weight_bytes(),
                         "gpu_mib_after_load": after, "gpu_mib_before_load": before,
                         "gpu_mib_model": before.zip(after).map(|(b, a)| a.saturating_sub(b)),
                         "dimension": info.dimension, "hidden_size": info.hidden_size,
                         "load_s": load_s});
    if let Some(r) = reference {
        let r: Value = serde_json::from_slice(&std::fs::read(&r).map_err(|e| format!("{r}: {e}"))?)
            .map_err(|e| e.to_string())?;
        if r.get("documents").is_some() {
            let (t, e) = texts_and_vectors(&r["documents"]);
            let (d1, d32) = check(&model, &t, &e, InputKind::Document)?;
            let (t, e) = texts_and_vectors(&r["queries"]);
            let (q1, q32) = check(&model, &t, &e, InputKind::Query)?;
            out["reference_min_cosine"] = json!({"documents_b1": d1, "documents_b32": d32,
                                                 "queries_b1": q1, "queries_b32": q32});
        } else {
            let (t, e) = texts_and_vectors(&r);
            let (d1, d32) = check(&model, &t, &e, InputKind::Document)?;
            out["reference_min_cosine"] = json!({"documents_b1": d1, "documents_b32": d32});
        }
    }
    if profile.is_some() {
        let texts = texts_of(&model, 64, 256)?;
        let batch: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&batch, InputKind::Document).map_err(|e| e.to_string())?;
        let s = Instant::now();
        for _ in 0..3 {
            model.embed(&batch, InputKind::Document).map_err(|e| e.to_string())?;
        }
        out["profiled_b64_l256_tokens_per_s"] =
            json!((3 * 64 * 256) as f64 / s.elapsed().as_secs_f64());
    }
    if bench {
        let t32 = texts_of(&model, 1, 32)?.remove(0);
        for _ in 0..10 {
            model.embed(&[&t32], InputKind::Document).map_err(|e| e.to_string())?;
        }
        let mut lat = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            model.embed(&[&t32], InputKind::Document).map_err(|e| e.to_string())?;
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
        out["b1_l32_p50_ms"] = json!(percentile(&mut lat, 0.5));
        out["b1_l32_p95_ms"] = json!(percentile(&mut lat, 0.95));
        for (b, l) in [(32usize, 128usize), (64, 256)] {
            let texts = texts_of(&model, b, l)?;
            let batch: Vec<&str> = texts.iter().map(String::as_str).collect();
            for _ in 0..3 {
                model.embed(&batch, InputKind::Document).map_err(|e| e.to_string())?;
            }
            let reps = 10;
            let s = Instant::now();
            for _ in 0..reps {
                model.embed(&batch, InputKind::Document).map_err(|e| e.to_string())?;
            }
            let secs = s.elapsed().as_secs_f64();
            out[format!("b{b}_l{l}_texts_per_s")] = json!((b * reps) as f64 / secs);
            out[format!("b{b}_l{l}_tokens_per_s")] = json!((b * l * reps) as f64 / secs);
        }
    }
    out["fixed_single"] = json!(fixed);
    out["fixed_runs"] = json!(model.fixed_runs());
    println!("{out}");
    Ok(())
}
