//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and every input that once crashed
//! a target (`fuzz/regressions/<target>/`) through the same target bodies the fuzzer runs
//! (`fuzz/targets.rs`), so the suite keeps every finding fixed on stable Rust. See fuzz/README.md.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root().join("fuzz").join(kind).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            out.push((e.path(), std::fs::read(e.path()).expect("read input")));
        }
    }
    assert!(!out.is_empty(), "no committed inputs for {target}");
    out
}

fn replay(target: &str, f: impl Fn(&[u8])) {
    let all = inputs(target);
    for (path, data) in &all {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(data)));
        assert!(r.is_ok(), "{target} fails on {}", path.display());
    }
    eprintln!("{target}: {} inputs replayed", all.len());
}

#[test]
fn filter_json_corpus() {
    replay("filter_json", targets::filter_json);
}

#[test]
fn record_decode_corpus() {
    replay("record_decode", targets::record_decode);
}

#[test]
fn a_generation_akidb_wrote_passes_the_checks_and_loads() {
    let seed = std::fs::read(root().join("fuzz/corpus/index_load/seed-generation")).expect("seed");
    let r = std::panic::catch_unwind(|| targets::index_load_outcome(&seed));
    assert_eq!(r.ok(), Some(true), "the seed generation must load, not be rebuilt");
}

#[test]
fn a_saved_quantizer_loads_and_the_corpus_of_damaged_ones_never_panics() {
    let seed = std::fs::read(root().join("fuzz/corpus/index_quantizer/seed-saved")).expect("seed");
    let r = std::panic::catch_unwind(|| targets::index_quantizer_outcome(&seed));
    assert_eq!(r.ok(), Some(true), "the saved quantizer must load, not be rebuilt");
    replay("index_quantizer", targets::index_quantizer);
}

#[test]
fn index_load_corpus() {
    replay("index_load", targets::index_load);
}

#[test]
fn tokenizer_input_corpus() {
    let model = targets::tiny_qwen3(&root());
    replay("tokenizer_input", |d| targets::tokenizer_input(&model, d));
}

/// Writes the seed inputs of the corpus (run once when a format changes):
/// `cargo test --test fuzz_corpus -- --ignored write_seeds`.
#[test]
#[ignore = "writes seed files into fuzz/corpus"]
fn write_seeds() {
    use akidb::index::persist;
    use akidb::index::HnswIndex;
    let corpus = root().join("fuzz/corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = corpus.join(target);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(name), bytes).expect("write seed");
    };
    // index_load: a real generation over the live vectors the target uses.
    let dir = tempfile::tempdir().expect("tempdir");
    let index = HnswIndex::with_graph(targets::index_flat(), targets::index_identity().params)
        .expect("graph");
    let generation =
        persist::save(&index, dir.path(), &targets::index_identity(), 40).expect("save");
    let graph = std::fs::read(generation.join("akidb.hnsw.graph")).expect("graph");
    let data = std::fs::read(generation.join("akidb.hnsw.data")).expect("data");
    let mut seed = (graph.len() as u32).to_le_bytes().to_vec();
    seed.extend_from_slice(&graph);
    seed.extend_from_slice(&data);
    put("index_load", "seed-generation", &seed);
    put("index_load", "seed-truncated", &seed[..seed.len() / 2]);
    // index_quantizer: the block a saved int8 generation holds, and damaged ones.
    let identity = targets::quantized_identity();
    let index = HnswIndex::with_graph(targets::index_flat(), identity.params).expect("graph");
    let generation = persist::save(&index, dir.path(), &identity, 40).expect("save");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(generation.join("MANIFEST.json")).expect("manifest"))
            .expect("json");
    let saved = manifest["quantizer"].to_string();
    put("index_quantizer", "seed-saved", saved.as_bytes());
    put("index_quantizer", "seed-nan", saved.replacen("0.", "NaN", 1).as_bytes());
    put("index_quantizer", "seed-binary", br#"{"kind":"binary","mean":[0,0,0,0]}"#);
    put("index_quantizer", "seed-not-json", b"\xff{kind");
    // record_decode: real records of each table.
    let doc = akidb_storage::StoredDocument {
        id: "robot_3/nav-17".into(),
        text: Some("lidar timeout near the loading dock, ロボット停止".into()),
        metadata: r#"{"robot":"robot_3","level":"ERROR","t":1700000000}"#.into(),
    };
    let mut rec = vec![0u8];
    rec.extend(akidb_storage::fuzzing::encode_document(&doc).expect("encode"));
    put("record_decode", "seed-document", &rec);
    let mut v = vec![2u8];
    v.extend([0.5f32, -1.0, 3.25].iter().flat_map(|x| x.to_le_bytes()));
    put("record_decode", "seed-vector", &v);
    // filter_json and tokenizer_input: what users send.
    for (i, f) in [
        r#"{"robot":"robot_3"}"#,
        concat!(
            r#"{"$and":[{"level":{"$in":["ERROR","FATAL"]}},"#,
            r#"{"t":{"$gte":1700000000,"$lt":1800000000}}]}"#
        ),
        concat!(
            r#"{"$or":[{"robot":{"$ne":"robot_1"}},{"tags":{"$exists":true}}],"#,
            r#""$not":{"level":"DEBUG"}}"#
        ),
        r#"{"$nin":[1]}"#,
    ]
    .iter()
    .enumerate()
    {
        put("filter_json", &format!("seed-{i}"), f.as_bytes());
    }
    for (i, t) in [
        "",
        "why did robot 3 stop near the loading dock?",
        "ロボット3号機が停止 😀 Ladestation erreicht",
        "\u{0}\u{ffff}",
    ]
    .iter()
    .enumerate()
    {
        put("tokenizer_input", &format!("seed-{i}"), t.as_bytes());
    }
}
