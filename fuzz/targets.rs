//! The bodies of the fuzz targets, shared by `fuzz_targets/*.rs` (run under cargo-fuzz) and by
//! `tests/fuzz_corpus.rs` (replays the committed corpus and every past crash in the normal test
//! suite, on stable Rust). Each function must return normally for every input: a panic is a bug.

#![allow(dead_code)]

use std::path::Path;

use akidb::embedding::InputKind;
use akidb::index::persist::{self, IndexIdentity, LoadOutcome};
use akidb::index::{FlatIndex, HnswParams, Metric, SearchParams, VectorInsert, VectorSearch};
use akidb::{Embedder, Filter, OnnxEmbeddingProvider};
use serde_json::{json, Map, Value};

/// Filter JSON as a user (or a network peer of the application) would send it.
pub fn filter_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = Filter::from_json_str(text) else { return };
    if filter.validate().is_err() {
        return;
    }
    let docs = [
        json!({}),
        json!({"robot": "robot_3", "level": "ERROR", "t": 1_700_000_000, "tags": ["dock", "lid"]}),
        json!({"a": {"b": [1, 2.5, null, true]}, "n": -0.0, "s": "ロボット"}),
    ];
    for d in &docs {
        if let Value::Object(m) = d {
            let _ = filter.matches(m);
        }
    }
}

/// Stored record bytes: the first byte picks the table, the rest is the record.
pub fn record_decode(data: &[u8]) {
    use akidb_storage::fuzzing;
    let Some((&kind, bytes)) = data.split_first() else { return };
    match kind % 3 {
        0 => {
            let Ok(doc) = fuzzing::decode_document(bytes) else { return };
            // What the layer above does next with a record: parse its metadata.
            let _ = serde_json::from_str::<Map<String, Value>>(&doc.metadata);
            // A record that decodes re-encodes to something that decodes to the same record.
            if let Ok(again) = fuzzing::encode_document(&doc) {
                let back = fuzzing::decode_document(&again).expect("re-encoded record decodes");
                assert_eq!(back, doc);
            }
        }
        1 => {
            if let Ok((_, schema)) = fuzzing::decode_collection(bytes) {
                let _ = serde_json::from_slice::<Value>(&schema);
            }
        }
        _ => {
            if let Ok(v) = fuzzing::decode_vector(bytes) {
                assert_eq!(v.len() * 4, bytes.len());
            }
        }
    }
}

pub const INDEX_DIM: usize = 4;

pub fn index_identity() -> IndexIdentity {
    IndexIdentity {
        database_id: [0xA5; 16],
        collection_id: 1,
        dimension: INDEX_DIM,
        metric: Metric::Cosine,
        params: HnswParams::new(8, 32),
    }
}

/// Live vectors for [`index_load`]: ids 1..=40.
pub fn index_flat() -> FlatIndex {
    let mut flat = FlatIndex::new(INDEX_DIM, Metric::Cosine);
    let vs: Vec<(u64, Vec<f32>)> = (1..=40u64)
        .map(|i| (i, (0..INDEX_DIM).map(|d| ((i * 7 + d as u64 * 3) % 11) as f32 + 1.0).collect()))
        .collect();
    let refs: Vec<(u64, &[f32])> = vs.iter().map(|(i, v)| (*i, v.as_slice())).collect();
    flat.insert(&refs).expect("flat");
    flat
}

/// Index files as they would be found on disk: `[u32 LE graph length][graph][data]`. The target
/// writes a manifest whose sizes and checksums match, so the bytes reach the dump reader
/// (`akidb-index/src/dump.rs`): what a damaged file with a recomputed checksum, or a hostile
/// one, would do.
pub fn index_load(data: &[u8]) {
    index_load_outcome(data);
}

/// [`index_load`], saying whether the generation loaded (`false`: rebuilt).
pub fn index_load_outcome(data: &[u8]) -> bool {
    if data.len() < 4 {
        return false;
    }
    let glen =
        (u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize).min(data.len() - 4);
    let (graph, file_data) = data[4..].split_at(glen);
    let dir = tempfile::tempdir().expect("tempdir");
    let generation = dir.path().join("gen-00000000000000000040");
    std::fs::create_dir(&generation).expect("mkdir");
    let mut files = Vec::new();
    for (name, bytes) in [("akidb.hnsw.graph", graph), ("akidb.hnsw.data", file_data)] {
        std::fs::write(generation.join(name), bytes).expect("write");
        files.push(json!({"name": name, "len": bytes.len(), "crc32": crc32fast::hash(bytes)}));
    }
    let manifest = json!({
        "format_version": persist::INDEX_FORMAT_VERSION,
        "identity": index_identity(),
        "covered_seq": 40,
        "nodes": 40,
        "files": files,
    });
    std::fs::write(generation.join("MANIFEST.json"), manifest.to_string()).expect("manifest");
    // Whatever the files hold, a generation is never used by another database or by another
    // incarnation of the collection (its manifest names this one).
    let mut foreign_db = index_identity();
    foreign_db.database_id[0] ^= 1;
    let mut other_collection = index_identity();
    other_collection.collection_id += 1;
    for other in [foreign_db, other_collection] {
        let outcome = persist::load(dir.path(), &other, index_flat(), 40);
        assert!(
            matches!(outcome, LoadOutcome::Rebuild { .. }),
            "a generation was used by another database or collection"
        );
    }
    match persist::load(dir.path(), &index_identity(), index_flat(), 40) {
        LoadOutcome::Loaded { index, .. } => {
            // A graph that loaded must answer searches over the live vectors, and it loaded only
            // because its vectors are storage's (tampered vectors lead to a rebuild).
            let hits = index.search(&[1.0, 2.0, 3.0, 4.0], 5, None).expect("search");
            assert!(hits.len() <= 5);
            let exact = index
                .search_with(&[1.0, 2.0, 3.0, 4.0], 5, None, SearchParams::exact())
                .expect("exact");
            assert_eq!(hits, exact.0);
            true
        }
        LoadOutcome::Rebuild { flat, .. } => {
            assert_eq!(flat.len(), 40);
            false
        }
    }
}

/// [`index_identity`] with int8 codes (what [`index_quantizer`] loads).
pub fn quantized_identity() -> IndexIdentity {
    let mut identity = index_identity();
    identity.params = identity.params.with_quantization(akidb::Quantization::Int8);
    identity
}

/// A sound int8 generation over [`index_flat`] whose manifest's quantizer block (the fitted
/// parameters of the codes, `akidb-index/src/codes.rs`) is replaced by `data`, read as JSON (a
/// string of its bytes when it is not JSON): whatever it holds, the load must rebuild or load
/// a graph that answers exactly, never panic or walk with parameters that do not fit.
pub fn index_quantizer(data: &[u8]) {
    index_quantizer_outcome(data);
}

/// [`index_quantizer`], saying whether the generation loaded (`false`: rebuilt).
pub fn index_quantizer_outcome(data: &[u8]) -> bool {
    let identity = quantized_identity();
    let dir = tempfile::tempdir().expect("tempdir");
    let index = akidb::index::HnswIndex::with_graph(index_flat(), identity.params).expect("graph");
    let generation = persist::save(&index, dir.path(), &identity, 40).expect("save");
    let path = generation.join("MANIFEST.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    manifest["quantizer"] = serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    std::fs::write(&path, manifest.to_string()).expect("write manifest");
    match persist::load(dir.path(), &identity, index_flat(), 40) {
        LoadOutcome::Loaded { index, .. } => {
            for q in [[1.0, 2.0, 3.0, 4.0], [4.0, -1.0, 0.5, 2.0]] {
                let hits = index.search(&q, 5, None).expect("search");
                let exact = index.search_with(&q, 5, None, SearchParams::exact()).expect("exact");
                assert_eq!(hits, exact.0, "a loaded graph answers exactly at this size");
            }
            true
        }
        LoadOutcome::Rebuild { flat, .. } => {
            assert_eq!(flat.len(), 40);
            false
        }
    }
}

/// The tiny Qwen3 fixture model (real tokenizer, real ONNX Runtime); `root` is the repository.
pub fn tiny_qwen3(root: &Path) -> OnnxEmbeddingProvider {
    OnnxEmbeddingProvider::from_dir(root.join("tests/fixtures/qwen3-tiny"))
        .expect("load tests/fixtures/qwen3-tiny")
}

/// Any text a user might send, valid UTF-8 or not (lossily converted, as an application reading
/// bytes would), as a document and as a query.
pub fn tokenizer_input(model: &OnnxEmbeddingProvider, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for kind in [InputKind::Document, InputKind::Query] {
        let out = model.embed(&[&text, "short"], kind).expect("every text embeds");
        assert_eq!(out.vectors.len(), 2);
        for v in &out.vectors {
            assert_eq!(v.len(), model.info().dimension);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(v.iter().all(|x| x.is_finite()) && (norm - 1.0).abs() < 1e-3, "norm {norm}");
        }
        assert!(out.token_counts[0] <= model.info().max_length);
    }
}
