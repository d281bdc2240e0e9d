//! Shared helpers: fixture paths, references, cosine.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn qwen_dir() -> PathBuf {
    root().join("tests/fixtures/qwen3-tiny")
}

/// The converted default model; `scripts/setup.sh` makes it.
pub fn minilm_dir() -> PathBuf {
    let d = root().join("models/all-MiniLM-L6-v2");
    assert!(
        d.join("model.onnx").is_file(),
        "{} is missing: run `bash scripts/setup.sh` first",
        d.display()
    );
    d
}

pub fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("reference json")
}

pub fn vectors(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| e.as_array().expect("row").iter().map(|x| x.as_f64().expect("f") as f32).collect())
        .collect()
}

pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|s| s.as_str().expect("str").to_string()).collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

pub fn norm(a: &[f32]) -> f32 {
    a.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The tiny Qwen3 fixture's weights exported as the fused graph (`scripts/qwen3_onnx.py`).
pub fn qwen_fused_dir() -> PathBuf {
    root().join("tests/fixtures/qwen3-tiny-fused")
}
