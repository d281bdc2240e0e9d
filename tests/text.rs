//! Text collections end to end with the real default model (all-MiniLM-L6-v2 on ONNX Runtime):
//! model identity, add/query, ingest progress and cancellation, micro-batching, and the
//! relevance floor of the robot-log question set.

#[path = "../examples/common/fleet.rs"]
mod fleet;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use akidb::embedding::{EmbedError, Embeddings, InputKind, ModelInfo};
use akidb::{
    BatchOptions, BatchingEmbedder, CollectionConfig, Database, Document, Embedder, Error, Filter,
    IngestOptions, OnnxConfig, OnnxEmbeddingProvider, TextDocument,
};
use serde_json::json;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn minilm() -> Arc<OnnxEmbeddingProvider> {
    let dir = root().join("models/all-MiniLM-L6-v2");
    assert!(dir.join("model.onnx").is_file(), "run `bash scripts/setup.sh` first");
    Arc::new(OnnxEmbeddingProvider::from_dir(dir).expect("load MiniLM"))
}

fn qwen() -> Arc<OnnxEmbeddingProvider> {
    Arc::new(
        OnnxEmbeddingProvider::from_dir(root().join("tests/fixtures/qwen3-tiny"))
            .expect("load qwen"),
    )
}

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    (dir, db)
}

#[test]
fn add_and_query_text_with_filters_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let model = minilm();
    {
        let db = Database::open(&path).expect("open");
        let c = db.text_collection("logs", model.clone()).expect("text collection");
        let truncated = c
            .add_texts(&[
                TextDocument::new("a", "lidar timeout, robot stopped at the loading dock")
                    .with_metadata(json!({"robot": "robot_3"})),
                TextDocument::new("b", "battery temperature too high")
                    .with_metadata(json!({"robot": "robot_5"})),
                TextDocument::new("c", "goal reached at aisle 4")
                    .with_metadata(json!({"robot": "robot_3"})),
                TextDocument::new("long", "word ".repeat(2000)),
            ])
            .expect("add");
        assert_eq!(truncated, 1);
        let hits = c.query_text("why did the robot stop?", 2, None).expect("query");
        assert_eq!(hits[0].id, "a");
        assert_eq!(
            hits[0].text.as_deref(),
            Some("lidar timeout, robot stopped at the loading dock")
        );
        let hot =
            c.query_text("overheating", 1, Some(&Filter::eq("robot", "robot_3"))).expect("query");
        assert_ne!(hot[0].id, "b", "the filter must exclude robot_5");
    }
    let db = Database::open(&path).expect("reopen");
    let c = db.text_collection("logs", model).expect("reopen text collection");
    assert_eq!(c.count().expect("count"), 4);
    assert_eq!(c.query_text("battery heat", 1, None).expect("query")[0].id, "b");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        let name = e.file_name();
        if name == akidb::embedding::identity::DIGEST_CACHE {
            continue;
        }
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).expect("copy");
        }
    }
}

fn load(dir: &std::path::Path) -> Arc<OnnxEmbeddingProvider> {
    Arc::new(OnnxEmbeddingProvider::from_dir(dir).expect("load"))
}

/// Flips the lowest bit of the byte in the middle of `model.onnx` (inside the weights of the
/// tiny fixture) and sets the file's modification time back, as a careless copy would.
fn nudge_weights(dir: &std::path::Path) {
    let f = dir.join("model.onnx");
    let mtime = std::fs::metadata(&f).expect("meta").modified().expect("mtime");
    let mut b = std::fs::read(&f).expect("read");
    let i = b.len() / 2;
    b[i] ^= 1;
    std::fs::write(&f, b).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&f)
        .expect("open")
        .set_modified(mtime)
        .expect("set mtime");
}

/// A model's identity is its content: the same folder name with other weights, another document
/// prompt or another `max_seq_length` is another model; the same model reached through a
/// symbolic link or a `..` path is the same. Collections made before digests adopt one once.
#[test]
fn model_identity_is_content_not_folder_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let original = tmp.path().join("a/qwen3-tiny");
    copy_dir(&root().join("tests/fixtures/qwen3-tiny"), &original);
    let (_d, db) = db();
    let model = load(&original);
    let c = db.text_collection("logs", model.clone()).expect("create");
    c.add_texts(&[TextDocument::new("x", "lidar timeout at the loading dock")]).expect("add");
    let probe = "lidar timeout at the loading dock";
    let reference = model.embed(&[probe], InputKind::Document).expect("embed").vectors.remove(0);
    // The same content elsewhere, by a symbolic link of another name, and through `..`.
    let copy = tmp.path().join("b/qwen3-tiny");
    copy_dir(&original, &copy);
    let link = tmp.path().join("renamed");
    std::os::unix::fs::symlink(&original, &link).expect("symlink");
    for same in [copy.clone(), link, original.join("1_Pooling/..")] {
        let m = load(&same);
        assert_eq!(m.info().digest, model.info().digest, "{}", same.display());
        db.text_collection("logs", m).unwrap_or_else(|e| panic!("{}: {e}", same.display()));
    }
    // Same folder name, other content: refused, each naming both models.
    type Change<'a> = &'a dyn Fn(&std::path::Path);
    let variants: [(&str, Change<'_>); 3] = [
        ("other weights", &nudge_weights),
        ("another document prompt", &|d| {
            let p = d.join("config_sentence_transformers.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            v["prompts"]["document"] = json!("passage: ");
            std::fs::write(&p, v.to_string()).expect("write");
        }),
        ("another max_seq_length", &|d| {
            std::fs::write(d.join("sentence_bert_config.json"), r#"{"max_seq_length": 64}"#)
                .expect("write");
        }),
    ];
    for (i, (what, change)) in variants.iter().enumerate() {
        let dir = tmp.path().join(format!("v{i}/qwen3-tiny"));
        copy_dir(&original, &dir);
        change(&dir);
        let m = load(&dir);
        assert_eq!(m.info().name, model.info().name, "{what}: same name");
        assert_ne!(m.info().digest, model.info().digest, "{what}");
        let err = db.text_collection("logs", m.clone()).expect_err(what);
        assert!(matches!(err, Error::ModelMismatch { .. }), "{what}: {err:?}");
        if *what == "other weights" {
            let v = m.embed(&[probe], InputKind::Document).expect("embed").vectors.remove(0);
            assert_ne!(v, reference, "the nudged weights change the vectors");
        }
    }
    // The digest cache notices content changed under an unchanged modification time.
    let cached = tmp.path().join("c/qwen3-tiny");
    copy_dir(&original, &cached);
    let before = load(&cached).info().digest.clone();
    assert!(
        cached.join(akidb::embedding::identity::DIGEST_CACHE).is_file(),
        "digests are cached beside the model"
    );
    assert_eq!(load(&cached).info().digest, before, "from the cache");
    nudge_weights(&cached);
    assert_ne!(load(&cached).info().digest, before, "a rewritten file is hashed again");
}

/// A collection whose schema predates digests matches by name and settings once, records the
/// digest, and from then on refuses other content under the same name.
#[test]
fn collections_without_a_model_digest_adopt_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let original = tmp.path().join("a/qwen3-tiny");
    copy_dir(&root().join("tests/fixtures/qwen3-tiny"), &original);
    let nudged = tmp.path().join("b/qwen3-tiny");
    copy_dir(&original, &nudged);
    nudge_weights(&nudged);
    let path = tmp.path().join("db");
    drop(
        Database::open(&path)
            .expect("open")
            .text_collection("logs", load(&original))
            .expect("create"),
    );
    // Strip the digest, as a database written before digests has it.
    {
        let store = akidb_storage::Storage::open(&path, &Default::default()).expect("open");
        let entry = store.collection("logs").expect("read").expect("exists");
        let mut schema: serde_json::Value = serde_json::from_slice(&entry.schema).expect("json");
        assert!(schema["config"]["model"]["digest"].is_string());
        schema["config"]["model"].as_object_mut().expect("model").remove("digest");
        store.update_schema("logs", schema.to_string().as_bytes()).expect("update");
    }
    for reopen in [false, true] {
        let db = Database::open(&path).expect("open");
        db.text_collection("logs", load(&original)).expect("the same model");
        let err = db.text_collection("logs", load(&nudged)).expect_err("other weights");
        assert!(matches!(err, Error::ModelMismatch { .. }), "reopened {reopen}: {err:?}");
    }
    let store = akidb_storage::Storage::open(&path, &Default::default()).expect("open");
    let schema: serde_json::Value =
        serde_json::from_slice(&store.collection("logs").expect("read").expect("exists").schema)
            .expect("json");
    assert_eq!(
        schema["config"]["model"]["digest"].as_str(),
        Some(load(&original).info().digest.as_str())
    );
}

#[test]
fn the_database_does_not_keep_a_model_alive() {
    let (_dir, db) = db();
    let model = minilm();
    let a = db.text_collection("a", model.clone()).expect("bind");
    let b = db.text_collection("b", model.clone()).expect("bind");
    a.add_texts(&[TextDocument::new("1", "battery overheating")]).expect("add");
    // Both bindings share one micro-batching worker, which holds the model.
    assert!(Arc::strong_count(&model) > 1);
    drop((a, b));
    // No handle left: worker and model are released (a registry may unload the model).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Arc::strong_count(&model) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(Arc::strong_count(&model), 1, "only the caller holds the model");
    // Bound again: a new worker, the same answers.
    let a = db.text_collection("a", model.clone()).expect("rebind");
    assert_eq!(a.query_text("battery", 1, None).expect("query")[0].id, "1");
    drop(a);
    // A model that merges calls itself is bound as it is: no second worker in front of it.
    let batching: Arc<dyn Embedder> =
        Arc::new(BatchingEmbedder::new(model.clone(), BatchOptions::default()));
    let a = db.text_collection("a", batching.clone()).expect("bind");
    assert_eq!(Arc::strong_count(&batching), 2, "held by the collection alone");
    assert_eq!(a.query_text("battery", 1, None).expect("query")[0].id, "1");
}

#[test]
fn another_model_is_refused_naming_both() {
    let (_d, db) = db();
    db.text_collection("logs", minilm()).expect("create");
    let err = db.text_collection("logs", qwen()).expect_err("mismatch");
    let msg = err.to_string();
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err:?}");
    assert!(msg.contains("all-MiniLM-L6-v2") && msg.contains("qwen3-tiny"), "{msg}");
    db.create_collection("vectors", CollectionConfig::new(384)).expect("create");
    assert!(matches!(db.text_collection("vectors", minilm()), Err(Error::ModelMismatch { .. })));
    // Bring-your-own vectors keeps working, and text calls need a model.
    let v = db.collection("vectors").expect("open");
    v.upsert(&[Document::new("x", vec![1.0; 384])]).expect("upsert");
    assert!(matches!(v.query_text("hi", 1, None), Err(Error::NoEmbedder { .. })));
    assert!(matches!(v.add_texts(&[TextDocument::new("y", "hi")]), Err(Error::NoEmbedder { .. })));
}

#[test]
fn bad_text_input_is_typed_and_writes_nothing() {
    let (_d, db) = db();
    let c = db.text_collection("t", qwen()).expect("create");
    let cases = [
        TextDocument::new("", "x"),
        TextDocument::new("ok", "x").with_metadata(json!(3)),
        TextDocument::new("ok", "y".repeat((4 << 20) + 1)),
    ];
    for bad in cases {
        assert!(c.add_texts(&[TextDocument::new("good", "fine"), bad]).is_err());
    }
    assert_eq!(c.count().expect("count"), 0);
    assert!(matches!(c.query_text("x", 0, None), Err(Error::InvalidK { .. })));
    assert!(matches!(
        c.query_text(&"q".repeat((4 << 20) + 1), 1, None),
        Err(Error::TextTooLong { .. })
    ));
    // Empty and exotic texts are fine.
    c.add_texts(&[TextDocument::new("e", ""), TextDocument::new("j", "ロボット🤖 Greifer")])
        .expect("add");
    assert_eq!(c.count().expect("count"), 2);
}

#[test]
fn ingest_reports_progress_and_cancels_without_losing_batches() {
    let (_d, db) = db();
    let c = db.text_collection("t", qwen()).expect("create");
    let docs: Vec<TextDocument> = (0..500)
        .map(|i| TextDocument::new(format!("d{i}"), format!("log line number {i}")))
        .collect();
    let seen = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let progress = |p: akidb::IngestProgress| {
        seen.store(p.written, Ordering::SeqCst);
        assert_eq!(p.total, Some(500));
        if p.written >= 200 {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let opts =
        IngestOptions::default().with_batch_size(100).with_progress(&progress).with_cancel(&cancel);
    let report = c.ingest(docs.clone(), &opts).expect("ingest");
    assert!(report.cancelled);
    assert_eq!(report.written, 200);
    assert_eq!(report.batches, 2);
    assert_eq!(seen.load(Ordering::SeqCst), 200);
    assert_eq!(c.count().expect("count"), 200, "acknowledged batches are kept, nothing more");
    // A bad document mid-stream: earlier batches stay.
    let mut bad = docs.clone();
    bad[350].metadata = json!([1]);
    let err = c.ingest(bad, &IngestOptions::default().with_batch_size(100)).expect_err("bad doc");
    assert!(matches!(err, Error::MetadataNotObject { .. }));
    assert_eq!(c.count().expect("count"), 300);
    let full = c.ingest(docs, &IngestOptions::default().with_batch_size(64)).expect("ingest");
    assert_eq!((full.written, full.cancelled), (500, false));
    assert_eq!(c.count().expect("count"), 500);
}

/// Counts inner model calls (to show concurrent requests share runs), the texts they carried,
/// and the most calls in flight at once.
struct Counting {
    inner: Arc<OnnxEmbeddingProvider>,
    calls: AtomicUsize,
    texts: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<OnnxEmbeddingProvider>) -> Self {
        let zero = || AtomicUsize::new(0);
        Self { inner, calls: zero(), texts: zero(), now: zero(), most: zero() }
    }
}

impl Embedder for Counting {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let out = self.inner.embed(texts, kind);
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

#[test]
fn batching_workers_run_the_model_side_by_side_and_answer_each_caller() {
    let dir = root().join("models/all-MiniLM-L6-v2");
    let config = OnnxConfig::from_dir(&dir).expect("config").with_intra_threads(1);
    let two = Arc::new(
        OnnxEmbeddingProvider::new(config.clone().with_parallel_runs(2)).expect("two sessions"),
    );
    let single = OnnxEmbeddingProvider::new(config).expect("one session");
    for workers in [1, 2] {
        let counted = Arc::new(Counting::new(two.clone()));
        let batching = Arc::new(BatchingEmbedder::new(
            counted.clone(),
            BatchOptions::default().with_workers(workers),
        ));
        let callers: Vec<_> = (0..16)
            .map(|t| {
                let b = batching.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|i| {
                            let text =
                                format!("robot {t} stopped at dock {i}: lidar timeout {t}{i}");
                            let v = b.embed(&[&text], InputKind::Query).expect("embed");
                            (text, v.vectors[0].clone())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for c in callers {
            for (text, got) in c.join().expect("caller") {
                let want = single.embed(&[&text], InputKind::Query).expect("direct");
                let cos: f32 = got.iter().zip(&want.vectors[0]).map(|(a, b)| a * b).sum();
                assert!(cos > 0.9999, "{workers} workers: {text} got another text's vector");
            }
        }
        let most = counted.most.load(Ordering::SeqCst);
        assert_eq!(most, workers, "{workers} workers: {most} runs at once");
    }
}

/// An embedder that misbehaves as told: one vector short, one value short, or a panic.
struct Faulty {
    inner: Arc<OnnxEmbeddingProvider>,
    fault: std::sync::Mutex<&'static str>,
}

impl Embedder for Faulty {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError> {
        let mut out = self.inner.embed(texts, kind)?;
        let fault = *self.fault.lock().expect("lock");
        match fault {
            "short" => {
                out.vectors.pop();
            }
            "dimension" => {
                if let Some(v) = out.vectors.last_mut() {
                    v.pop();
                }
            }
            "panic" => panic!("deliberate failure in the test embedder"),
            _ => {}
        }
        Ok(out)
    }
}

/// What an embedder returns is checked: a wrong number of vectors or a wrong dimension is a
/// typed error naming the model (nothing is written, no document silently dropped), a panic is
/// a typed error with its message, and the shared worker keeps serving afterwards.
#[test]
fn a_wrong_embedder_is_a_typed_error_and_the_worker_survives() {
    let (_d, db) = db();
    let faulty = Arc::new(Faulty { inner: minilm(), fault: std::sync::Mutex::new("") });
    let c = db.text_collection("logs", faulty.clone()).expect("create");
    let docs = [
        TextDocument::new("a", "lidar timeout at the dock"),
        TextDocument::new("b", "battery hot"),
    ];
    c.add_texts(&docs).expect("a correct run");
    for fault in ["short", "dimension", "panic"] {
        *faulty.fault.lock().expect("lock") = fault;
        let more =
            [TextDocument::new("c", "gripper failed"), TextDocument::new("d", "e-stop pressed")];
        let err = c.add_texts(&more).expect_err(fault);
        let expected = match fault {
            "short" => matches!(
                err,
                Error::Embedding(EmbedError::BadOutput {
                    what: "vectors",
                    expected: 2,
                    got: 1,
                    ..
                })
            ),
            "dimension" => {
                matches!(
                    err,
                    Error::Embedding(EmbedError::BadOutput {
                        what: "values in a vector",
                        expected: 384,
                        got: 383,
                        ..
                    })
                )
            }
            _ => {
                matches!(&err, Error::Embedding(EmbedError::Panicked { message, .. })
                    if message.contains("deliberate"))
            }
        };
        assert!(expected, "{fault}: {err:?}");
        assert!(
            err.to_string().contains("all-MiniLM-L6-v2"),
            "{fault}: the error names the model: {err}"
        );
        let q = c
            .query_text("why did it stop?", 1, None)
            .expect_err("queries go through the same check");
        assert!(matches!(q, Error::Embedding(_)), "{fault}: {q:?}");
        assert_eq!(c.count().expect("count"), 2, "{fault}: nothing written");
        // The same worker serves correct calls again.
        *faulty.fault.lock().expect("lock") = "";
        assert_eq!(
            c.query_text("battery temperature", 1, None).expect("query")[0].id,
            "b",
            "{fault}"
        );
    }
    c.add_texts(&[TextDocument::new("c", "gripper failed")]).expect("and writes");
    assert_eq!(c.count().expect("count"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_queries_share_model_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counting = Arc::new(Counting::new(minilm()));
    let db = akidb::AsyncDatabase::open(dir.path().join("db")).await.expect("open");
    let c = db.text_collection("t", counting.clone()).await.expect("create");
    c.add_texts(
        (0..50)
            .map(|i| TextDocument::new(format!("d{i}"), format!("event {i} on robot {}", i % 8)))
            .collect(),
    )
    .await
    .expect("add");
    let before = counting.calls.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.query_text(format!("what happened to robot {}", i % 8), 3, None).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("query").len(), 3);
    }
    let runs = counting.calls.load(Ordering::SeqCst) - before;
    assert!(runs < 64, "64 concurrent queries took {runs} model runs: no micro-batching");
    // Results are the same as unbatched ones.
    let direct = c.blocking().query_text("what happened to robot 3", 3, None).expect("query");
    let via = c.query_text("what happened to robot 3".into(), 3, None).await.expect("query");
    assert_eq!(
        direct.iter().map(|h| &h.id).collect::<Vec<_>>(),
        via.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
}

#[test]
fn robot_log_questions_meet_the_relevance_floor() {
    let (_d, db) = db();
    let c = db.text_collection("logs", minilm()).expect("create");
    let (events, questions) = fleet::generate(3000, 42);
    let docs = events
        .iter()
        .map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()));
    c.ingest(docs, &IngestOptions::default()).expect("ingest");
    assert!(questions.len() >= 20);
    let (mut recall, mut mrr) = (0.0, 0.0);
    for q in &questions {
        let f = q.robot.map(|r| Filter::eq("robot", r));
        let ids: Vec<String> = c
            .query_text(q.text, 10, f.as_ref())
            .expect("query")
            .into_iter()
            .map(|h| h.id)
            .collect();
        let (r, m) = fleet::score(&ids, &q.relevant, 10);
        recall += r;
        mrr += m;
    }
    let n = questions.len() as f64;
    let (recall, mrr) = (recall / n, mrr / n);
    eprintln!(
        "robot-log relevance over {} questions: recall@10 {recall:.3}, MRR@10 {mrr:.3}",
        questions.len()
    );
    assert!(recall >= 0.55, "recall@10 {recall:.3} below floor 0.55");
    assert!(mrr >= 0.80, "MRR@10 {mrr:.3} below floor 0.80");
}

#[test]
fn fleet_time_helpers_round_trip() {
    assert_eq!(fleet::iso8601(fleet::T0), "2026-11-20T06:00:00Z");
    assert_eq!(fleet::parse_time("2026-11-20T06:00:00Z"), Ok(fleet::T0));
    assert_eq!(fleet::parse_time("2026-11-20T08:00:00+02:00"), Ok(fleet::T0));
    assert_eq!(fleet::parse_time("2026-11-20T06:00"), Ok(fleet::T0));
    assert_eq!(fleet::parse_time("2026-11-20"), Ok(fleet::T0 - 6 * 3600));
    assert_eq!(fleet::parse_time(&fleet::T0.to_string()), Ok(fleet::T0));
    for bad in [
        "not a time",
        "NaN",
        "2026-02-31",
        "2026-11-20T25:00",
        "10000-01-01",
        "99999999999999",
        "",
        "1e9",
        "0000-01-01",
        "0000-06-01T12:00",
    ] {
        assert!(fleet::parse_time(bad).is_err(), "{bad:?}");
    }
    let (events, _) = fleet::generate(50, 1);
    let e = &events[0];
    let parsed = fleet::LogEvent::parse_line(e.id.clone(), &e.line()).expect("parse");
    assert_eq!(
        (parsed.robot.as_str(), parsed.node.as_str(), parsed.message.as_str()),
        (e.robot.as_str(), e.node.as_str(), e.message.as_str())
    );
    let _ = OnnxConfig::from_dir(root().join("tests/fixtures/qwen3-tiny")).expect("config");
}
