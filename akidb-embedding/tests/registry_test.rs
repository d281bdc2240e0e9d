//! The model registry with two real models side by side (MiniLM and the tiny Qwen3 fixture) on
//! ONNX Runtime's CPU provider: loaded on first use, unloaded under the budget (least recently
//! used first, never one a caller holds), loaded again on demand with the same output.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use akidb_embedding::identity::model_digest;
use akidb_embedding::{
    Embedder, InputKind, ModelRegistry, ModelStatus, OnnxConfig, OnnxEmbeddingProvider,
};
use common::*;

fn qwen_dir() -> std::path::PathBuf {
    root().join("tests/fixtures/qwen3-tiny")
}

fn loaded(r: &ModelRegistry<OnnxEmbeddingProvider>) -> Vec<(String, usize)> {
    r.status().into_iter().filter(|s| s.loaded).map(|s| (s.name, s.holders)).collect()
}

#[test]
fn two_models_under_a_budget_that_holds_one() {
    let minilm = OnnxConfig::from_dir(minilm_dir()).expect("minilm");
    let qwen = OnnxConfig::from_dir(qwen_dir()).expect("qwen");
    let probe = ModelRegistry::new(None);
    probe.register("minilm", minilm.clone()).expect("register");
    let minilm_bytes = probe.status()[0].bytes;
    assert!(minilm_bytes > 80 << 20, "MiniLM's weights: {minilm_bytes} bytes");
    // Room for MiniLM, not for both.
    let r = ModelRegistry::new(Some(minilm_bytes));
    r.register("minilm", minilm.clone()).expect("register");
    r.register("qwen", qwen.clone()).expect("register");
    assert!(r.register("qwen", qwen.clone()).is_err(), "a name twice");
    assert!(r.register("", qwen.clone()).is_err(), "an empty name");
    let mut gone = qwen;
    gone.model_path = gone.model_path.with_file_name("no-such-model.onnx");
    let err = r.register("gone", gone).expect_err("a missing graph");
    assert!(matches!(err, akidb_embedding::EmbedError::MissingFile { .. }), "{err}");
    assert_eq!(r.names(), ["minilm", "qwen"]);
    assert!(loaded(&r).is_empty(), "nothing loads before it is asked for");
    assert!(r.get("e5").is_none());

    let text = ["robot 3 stopped at the loading dock"];
    let m = r.get("minilm").expect("known").expect("load");
    let first = m.embed(&text, InputKind::Query).expect("embed").vectors;
    assert_eq!(loaded(&r), [("minilm".to_string(), 1)]);
    drop(m);
    // Loading qwen goes over the budget: idle MiniLM (least recently used) is unloaded.
    let q = r.get("qwen").expect("known").expect("load");
    assert_eq!(loaded(&r), [("qwen".to_string(), 1)]);
    // MiniLM again while qwen is held: qwen stays (in use), over the budget for now.
    let m = r.get("minilm").expect("known").expect("reload");
    assert_eq!(loaded(&r), [("minilm".to_string(), 1), ("qwen".to_string(), 1)]);
    assert_eq!(m.embed(&text, InputKind::Query).expect("embed").vectors, first, "same output");
    q.embed(&text, InputKind::Query).expect("qwen still works");
    // Once qwen is let go, the next get brings the registry back under the budget.
    drop(q);
    let m2 = r.get("minilm").expect("known").expect("loaded");
    assert!(Arc::ptr_eq(&m, &m2), "shared, not loaded twice");
    assert_eq!(loaded(&r), [("minilm".to_string(), 2)]);

    // Found by content, without loading.
    let digest = model_digest(&minilm).expect("digest");
    assert_eq!(r.find_by_digest(&digest, 384).as_deref(), Some("minilm"));
    assert_eq!(r.find_by_digest(&digest, 128), None);
    assert_eq!(r.find_by_digest("0000", 384), None);
}

#[test]
fn one_load_for_concurrent_first_uses_and_folders_found_by_scan() {
    let loads = Arc::new(AtomicUsize::new(0));
    let counted = loads.clone();
    let r = Arc::new(ModelRegistry::with_loader(None, move |_, c: &OnnxConfig| {
        counted.fetch_add(1, Ordering::SeqCst);
        OnnxEmbeddingProvider::new(c.clone())
    }));
    // Every folder with a model.onnx under the fixtures (minilm/ holds only references).
    let names = r.scan_dir(&root().join("tests/fixtures")).expect("scan");
    assert_eq!(names, ["bge-tiny", "e5-tiny", "qwen3-tiny", "qwen3-tiny-fused"]);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.get("qwen3-tiny").expect("known").expect("load"))
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(loads.load(Ordering::SeqCst), 1, "loaded once");
    assert!(got.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    let st: Vec<ModelStatus> = r.status();
    let of = |n: &str| st.iter().find(|s| s.name == n).map(|s| (s.loaded, s.holders));
    assert_eq!(of("qwen3-tiny"), Some((true, 4)));
    assert_eq!(of("qwen3-tiny-fused"), Some((false, 0)));
    assert!(r.scan_dir(&root().join("no-such-dir")).is_err());
}
