//! On-disk formats that cannot drift: a database directory written by AkiDB (storage format 1,
//! index generation format 3, a text collection bound to the tiny Qwen3 fixture by digest) is
//! committed under `tests/fixtures/format-1/`, with every document and the answers to a set of
//! searches recorded beside it. Every later build must open it and give the same answers, and
//! load its index generation rather than rebuild it; a format change must keep this passing
//! (or migrate, and say so here). As redb and tantivy keep such fixtures.
//!
//! Written once by `cargo test --test formats -- --ignored write_format_fixture` (only when a
//! format is deliberately versioned; never to make this test pass).

use std::path::PathBuf;

#[path = "common/generations.rs"]
mod generations;
use generations::copy_dir;
use std::sync::Arc;

use akidb::{
    CollectionConfig, Database, Document, Filter, HnswParams, OnnxEmbeddingProvider, TextDocument,
};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/format-1")
}

fn qwen() -> Arc<OnnxEmbeddingProvider> {
    Arc::new(
        OnnxEmbeddingProvider::from_dir(root().join("tests/fixtures/qwen3-tiny"))
            .expect("qwen3-tiny"),
    )
}

/// 10,200 8-d vectors around 16 centres (over the exact-scan threshold, so a graph generation
/// is saved).
fn vectors() -> Vec<Document> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261202);
    let centres: Vec<Vec<f32>> =
        (0..16).map(|_| (0..8).map(|_| rng.gen_range(-1.0f32..1.0)).collect()).collect();
    (0..10_200u64)
        .map(|i| {
            let c = &centres[(i % 16) as usize];
            let v: Vec<f32> = c.iter().map(|x| x + rng.gen_range(-0.4f32..0.4)).collect();
            let mut d = Document::new(format!("v{i}"), v)
                .with_metadata(json!({"group": i % 10, "ns": 1_795_162_443_000_000_000u64 + i}));
            if i % 100 == 0 {
                d = d.with_text(format!("vector {i}"));
            }
            d
        })
        .collect()
}

const TEXTS: [&str; 6] = [
    "lidar timeout, robot stopped at the loading dock",
    "battery temperature too high on robot 5",
    "Roboter 2 hat die Ladestation erreicht",
    "ロボット3号機が停止しました",
    "gripper failed to pick tote 4411",
    "emergency stop pressed in aisle 7",
];

fn queries() -> Vec<(Vec<f32>, Option<Filter>)> {
    vec![
        (vec![0.3, 0.1, -0.5, 0.2, 0.9, -0.1, 0.0, 0.4], None),
        (vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0], Some(Filter::eq("group", 3))),
        (
            vec![-0.6, -0.2, 0.2, 0.0, 0.3, 0.3, 0.3, -0.3],
            Some(Filter::gte("ns", 1_795_162_443_000_005_000u64)),
        ),
    ]
}

/// Everything the fixture is checked against: every document and the searches' answers.
fn observe(db: &Database) -> Value {
    let v = db.collection("vectors").expect("vectors");
    let ids: Vec<String> = (0..10_200).map(|i| format!("v{i}")).collect();
    let docs: Vec<Value> = v
        .get(&ids)
        .expect("get")
        .into_iter()
        .map(|r| {
            // Vectors and scores as f32 bit patterns: exact, whatever JSON float parsing does.
            r.map_or(Value::Null, |r| {
                let bits: Vec<u32> = r.vector.iter().map(|x| x.to_bits()).collect();
                json!({"id": r.id, "vector_bits": bits, "text": r.text, "metadata": r.metadata})
            })
        })
        .collect();
    let answers = |params: akidb::SearchParams| -> Vec<Value> {
        queries()
            .iter()
            .map(|(q, f)| {
                let (hits, path) = v.search_with(q, 10, f.as_ref(), params).expect("search");
                let hits: Vec<Value> =
                    hits.iter().map(|h| json!([h.id, h.score.to_bits()])).collect();
                json!({"path": format!("{path:?}"), "hits": hits})
            })
            .collect()
    };
    let searches = answers(akidb::SearchParams::exact());
    // The graph walk over the loaded generation: the same files must load into the same graph.
    let walks = answers(akidb::SearchParams::default());
    let t = db.text_collection("texts", qwen()).expect("texts");
    // Vector queries: what `query_text` meant when the fixture was written (it is hybrid now
    // that text collections keep a full-text index).
    let vector = akidb::QueryOptions::mode(akidb::QueryMode::Vector);
    let text_answers: Vec<Value> = ["why did the robot stop?", "Ladestation", "tote"]
        .iter()
        .map(|q| {
            json!(t
                .query_text_with(q, 3, None, vector)
                .expect("query")
                .0
                .iter()
                .map(|h| h.id.clone())
                .collect::<Vec<_>>())
        })
        .collect();
    json!({"count": v.count().expect("count"), "docs": docs, "searches": searches, "walks": walks,
           "text_answers": text_answers})
}

#[test]
#[ignore = "writes tests/fixtures/format-1 (only when a format is versioned deliberately)"]
fn write_format_fixture() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    let db_path = dir.join("db");
    {
        let db = Database::open(&db_path).expect("open");
        let cfg = CollectionConfig::new(8).with_hnsw(HnswParams::new(4, 40));
        let v = db.create_collection("vectors", cfg).expect("create");
        v.upsert(&vectors()).expect("upsert");
        // A replacement and deletes, so tombstones and retired sequence numbers are in the files.
        v.upsert(&[Document::new("v1", vec![0.5; 8]).with_text("replaced")]).expect("replace");
        v.delete(&["v2", "v3", "v4"]).expect("delete");
        let t = db.text_collection("texts", qwen()).expect("texts");
        let docs: Vec<TextDocument> = TEXTS
            .iter()
            .enumerate()
            .map(|(i, s)| TextDocument::new(format!("t{i}"), *s).with_metadata(json!({"n": i})))
            .collect();
        t.add_texts(&docs).expect("add");
        v.save_index().expect("save");
        t.save_index().expect("save");
    }
    // Observed through a copy reopened from the files, as the check will see them (opening the
    // fixture itself would write to it).
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&db_path, &tmp.path().join("db"));
    let expected = observe(&Database::open(tmp.path().join("db")).expect("reopen"));
    std::fs::write(dir.join("expected.json"), serde_json::to_vec(&expected).expect("json"))
        .expect("write");
    // The digest cache is the model folder's, not the database's.
    assert!(!db_path.join(akidb::embedding::identity::DIGEST_CACHE).exists());
}

#[test]
fn databases_written_in_format_1_open_and_answer_as_written() {
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixture().join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    // A copy: opening a database may write to it.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture().join("db"), &tmp.path().join("db"));
    let db = Database::open(tmp.path().join("db")).expect("a format-1 database opens");
    let v = db.collection("vectors").expect("vectors");
    // Its index generation loads (a rebuild would count all 10,197 live vectors as unsaved): the
    // replaced and the three deleted documents are in the graph as tombstones, marked again.
    let stats = v.index_stats().expect("stats");
    assert_eq!(
        (stats.live, stats.tombstones, stats.unsaved_changes),
        (10_197, 4, 4),
        "loaded, not rebuilt"
    );
    let got = observe(&db);
    assert_eq!(got["count"], expected["count"]);
    let (g, e) =
        (got["docs"].as_array().expect("docs"), expected["docs"].as_array().expect("docs"));
    assert_eq!(g.len(), e.len());
    for (i, (a, b)) in g.iter().zip(e).enumerate() {
        assert_eq!(a, b, "document v{i}");
    }
    assert_eq!(got["searches"], expected["searches"], "exact searches");
    assert_eq!(got["walks"], expected["walks"], "graph walks over the loaded generation");
    assert_eq!(got["walks"][0]["path"], "Graph", "the unfiltered query walks the graph");
    assert_eq!(got["text_answers"], expected["text_answers"]);
    // The text collection, written before full-text indexes existed, got one on this open.
    let t = db.text_collection("texts", qwen()).expect("texts");
    let keyword = akidb::QueryOptions::mode(akidb::QueryMode::Keyword);
    let (hits, _) = t.query_text_with("Ladestation", 3, None, keyword).expect("keyword");
    assert!(!hits.is_empty(), "the old texts are in the new full-text index");
    for h in hits {
        let text = h.text.expect("text").to_lowercase();
        assert!(text.contains("ladestation"), "{text}");
    }
    // Written before the change feed: its deletes left no records, so its horizon is the
    // collection's last sequence number; a pass from the start holds every live document.
    let (mut pos, mut docs) = (v.change_start(), 0);
    loop {
        let page = v.changes_since(&pos, 1_000).expect("a pass from the start");
        docs += page.changes.len();
        pos = page.position;
        if page.caught_up {
            break;
        }
    }
    assert_eq!(docs as u64, v.count().expect("count"));
}
