//! Keyword and hybrid queries end to end: the full-text index kept in step with every kind of
//! write (upsert, replace, delete, delete by filter, retention), filters inside both sides,
//! the watermark across reopen, and every way its folder can be found damaged. Hybrid queries
//! run the real default model (all-MiniLM-L6-v2 on ONNX Runtime).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use akidb::{
    CollectionConfig, Database, Document, Error, Filter, Fusion, OnnxEmbeddingProvider, QueryMode,
    QueryOptions, Retention, TextDocument,
};
use serde_json::json;

fn minilm() -> Arc<OnnxEmbeddingProvider> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    assert!(dir.join("model.onnx").is_file(), "run `bash scripts/setup.sh` first");
    Arc::new(OnnxEmbeddingProvider::from_dir(dir).expect("load MiniLM"))
}

const LINES: &[(&str, &str, &str)] = &[
    ("l1", "robot_3", "Robot halted near the loading dock, safety field not clear (NAV_E042)"),
    ("l2", "robot_8", "No valid path to rack row 12: aisle 7 blocked by a pallet (NAV_E044)"),
    ("l3", "robot_8", "Goal to rack row 12 failed, requesting another route (NAV_E044)"),
    ("l4", "robot_5", "Akku-Temperatur kritisch: 61 °C, Ladevorgang abgebrochen (BAT_E210)"),
    ("l5", "robot_2", "グリッパーの把持に失敗しました (ARM_E330)"),
    ("l6", "robot_1", "Pick completed: tote 4411 from aisle 4"),
    ("l7", "robot_1", "Heartbeat sent to fleet manager (latency 12 ms)"),
    ("l8", "robot_4", "Battery temperature rising quickly, charging stopped"),
    ("l9", "robot_6", "Path blocked by a pallet in aisle 7, waiting (NAV_W040)"),
];

fn docs() -> Vec<TextDocument> {
    LINES
        .iter()
        .map(|(id, robot, text)| {
            TextDocument::new(*id, *text).with_metadata(json!({ "robot": robot }))
        })
        .collect()
}

fn ids(hits: &[akidb::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn keyword() -> QueryOptions {
    QueryOptions::mode(QueryMode::Keyword)
}

/// The full-text folder of the only collection of the database at `db`.
fn text_dir(db: &Path) -> PathBuf {
    let index = db.join("index");
    let c = std::fs::read_dir(&index).expect("index dir").flatten().next().expect("collection");
    c.path().join("fulltext")
}

#[test]
fn hybrid_finds_codes_the_vector_side_blurs_and_explains_its_ranks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Database::open(tmp.path().join("db")).expect("open");
    let c = db.text_collection("logs", minilm()).expect("collection");
    c.add_texts(&docs()).expect("add");

    let (kw, path) = c.query_text_with("NAV_E044", 3, None, keyword()).expect("keyword");
    assert_eq!(path, None, "no vector side ran");
    let mut top2 = ids(&kw)[..2].to_vec();
    top2.sort_unstable();
    assert_eq!(top2, ["l2", "l3"]);

    let opts = QueryOptions::mode(QueryMode::Hybrid).with_explain();
    let (hybrid, path) = c.query_text_with("NAV_E044", 9, None, opts).expect("hybrid");
    assert!(path.is_some(), "the vector side ran");
    let mut top2 = ids(&hybrid)[..2].to_vec();
    top2.sort_unstable();
    assert_eq!(top2, ["l2", "l3"], "{:?}", ids(&hybrid));
    let e = hybrid[0].explain.expect("explain asked for");
    assert!(e.keyword.is_some() && e.vector.is_some(), "found on both sides: {e:?}");
    assert!(hybrid.iter().all(|h| h.explain.is_some()));
    // The default mode of a text collection is hybrid; explanations only when asked.
    let plain = c.query_text("NAV_E044", 9, None).expect("query");
    assert_eq!(ids(&plain), ids(&hybrid));
    assert!(plain.iter().all(|h| h.explain.is_none()));

    // Japanese and German by their own words; a part of a code; a number.
    let top = |q: &str| c.query_text_with(q, 1, None, keyword()).expect("q").0[0].id.clone();
    assert_eq!(top("把持に失敗"), "l5");
    assert_eq!(top("Ladevorgang abgebrochen"), "l4");
    assert_eq!(top("E210"), "l4");
    assert_eq!(top("tote 4411"), "l6");

    // A paraphrase sharing no word: keyword finds nothing, hybrid still answers (vector).
    let q = "accumulator overheating";
    assert!(c.query_text_with(q, 5, None, keyword()).expect("kw").0.is_empty());
    let (h, _) = c.query_text_with(q, 2, None, QueryMode::Hybrid.into_options()).expect("h");
    assert_eq!(h.len(), 2);

    // Weighted fusion at the extremes is each side alone.
    let w =
        |v: f32| QueryOptions::mode(QueryMode::Hybrid).with_fusion(Fusion::Weighted { vector: v });
    let all_kw = c.query_text_with("tote 4411", 1, None, w(0.0)).expect("w0").0;
    assert_eq!(ids(&all_kw), ["l6"]);
    let vec_only = c.query_text_with(q, 3, None, QueryMode::Vector.into_options()).expect("v").0;
    let all_vec = c.query_text_with(q, 3, None, w(1.0)).expect("w1").0;
    assert_eq!(ids(&all_vec), ids(&vec_only));
}

trait IntoOptions {
    fn into_options(self) -> QueryOptions;
}
impl IntoOptions for QueryMode {
    fn into_options(self) -> QueryOptions {
        QueryOptions::mode(self)
    }
}

#[test]
fn filters_apply_inside_both_sides() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Database::open(tmp.path().join("db")).expect("open");
    let c = db.text_collection("logs", minilm()).expect("collection");
    c.add_texts(&docs()).expect("add");
    // 300 lines of robot_7 that match the query better than anything of robot_6.
    let noise: Vec<TextDocument> = (0..300)
        .map(|i| {
            TextDocument::new(format!("n{i}"), format!("pallet blocked aisle 7 pallet ({i})"))
                .with_metadata(json!({"robot": "robot_7"}))
        })
        .collect();
    c.add_texts(&noise).expect("add noise");
    let f = Filter::eq("robot", "robot_6");
    for mode in [QueryMode::Keyword, QueryMode::Hybrid, QueryMode::Vector] {
        let (hits, _) = c
            .query_text_with("pallet blocked aisle 7", 5, Some(&f), mode.into_options())
            .expect("q");
        assert_eq!(ids(&hits), ["l9"], "{mode:?}");
    }
    let f = Filter::eq("robot", "robot_7");
    let (hits, _) = c.query_text_with("NAV_E044 pallet", 10, Some(&f), keyword()).expect("q");
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|h| h.metadata["robot"] == "robot_7"));
}

#[test]
fn every_write_keeps_the_keyword_side_in_step_and_reopen_catches_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("db");
    let cfg = CollectionConfig::new(2).with_full_text(true);
    let doc = |id: &str, text: &str, n: u64| {
        Document::new(id, vec![1.0, n as f32]).with_text(text).with_metadata(json!({"n": n}))
    };
    let find = |c: &akidb::Collection, q: &str| -> Vec<String> {
        let (hits, _) = c.query_text_with(q, 10, None, keyword()).expect("q");
        let mut v: Vec<String> = hits.into_iter().map(|h| h.id).collect();
        v.sort();
        v
    };
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("v", cfg.clone()).expect("create");
        // Keyword search works on a collection without a model.
        c.upsert(&[doc("a", "lidar timeout", 1), doc("b", "lidar restarted", 2)]).expect("up");
        c.upsert(&[doc("c", "gripper failed", 3), Document::new("d", vec![1.0, 0.0])]).expect("up");
        assert_eq!(find(&c, "lidar"), ["a", "b"]);
        // Replacing a document replaces its text; deleting removes it.
        c.upsert(&[doc("a", "battery low", 4)]).expect("replace");
        assert_eq!(find(&c, "lidar"), ["b"]);
        assert_eq!(find(&c, "battery"), ["a"]);
        assert_eq!(c.delete(&["b"]).expect("delete"), 1);
        assert!(find(&c, "lidar").is_empty());
        // Delete by filter.
        assert_eq!(c.delete_where(&Filter::eq("n", 3)).expect("delete where"), 1);
        assert!(find(&c, "gripper").is_empty());
        // A vector query on the same collection is unaffected.
        assert_eq!(c.count().expect("count"), 2);
    }
    // Reopen: the index is loaded (its watermark covers everything) and answers alike.
    {
        let db = Database::open(&path).expect("reopen");
        let c = db.collection("v").expect("collection");
        assert_eq!(find(&c, "battery"), ["a"]);
        assert!(find(&c, "lidar").is_empty());
        c.upsert(&[doc("e", "lidar back", 5)]).expect("up");
    }
    // Writes the index did not see (its folder restored from before them): replayed at open.
    let dir = text_dir(&path);
    let saved = tmp.path().join("saved");
    copy_dir(&dir, &saved);
    {
        let db = Database::open(&path).expect("reopen");
        let c = db.collection("v").expect("collection");
        c.upsert(&[doc("f", "lidar dirty window", 6)]).expect("up");
        c.delete(&["e"]).expect("delete");
    }
    std::fs::remove_dir_all(&dir).expect("rm");
    copy_dir(&saved, &dir);
    let db = Database::open(&path).expect("reopen");
    let c = db.collection("v").expect("collection");
    assert_eq!(find(&c, "lidar"), ["f"]);
    assert_eq!(find(&c, "battery"), ["a"]);
}

#[test]
fn retention_removes_texts_from_the_keyword_side() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Database::open(tmp.path().join("db")).expect("open");
    let cfg = CollectionConfig::new(2).with_full_text(true);
    let c = db.create_collection("v", cfg).expect("create");
    let docs: Vec<Document> = (0..50)
        .map(|i| Document::new(format!("d{i}"), vec![1.0, i as f32]).with_text(format!("line {i}")))
        .collect();
    c.upsert(&docs).expect("up");
    db.set_retention("v", Some(Retention::keep_all().with_max_documents(10))).expect("policy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.count().expect("count") > 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(c.count().expect("count"), 10);
    let (hits, _) = c.query_text_with("line", 100, None, keyword()).expect("q");
    let mut got: Vec<String> = hits.into_iter().map(|h| h.id).collect();
    got.sort();
    let mut want: Vec<String> = (40..50).map(|i| format!("d{i}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_damaged_missing_foreign_or_linked_index_folder_is_rebuilt_at_open() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("db");
    let cfg = CollectionConfig::new(2).with_full_text(true);
    let docs: Vec<Document> = (0..200)
        .map(|i| {
            Document::new(format!("d{i}"), vec![1.0, i as f32])
                .with_text(format!("event {i} code E{i:03}"))
        })
        .collect();
    {
        let db = Database::open(&path).expect("open");
        db.create_collection("v", cfg.clone()).expect("create").upsert(&docs).expect("up");
    }
    let dir = text_dir(&path);
    let check = |what: &str| {
        let db = Database::open(&path).expect("open");
        let c = db.collection("v").expect(what);
        let (hits, _) = c.query_text_with("E117", 3, None, keyword()).expect(what);
        assert_eq!(hits.first().map(|h| h.id.as_str()), Some("d117"), "{what}");
        let (all, _) = c.query_text_with("event", 1000, None, keyword()).expect(what);
        assert_eq!(all.len(), 200, "{what}");
    };
    check("intact");
    // Every file damaged.
    for e in std::fs::read_dir(&dir).expect("dir").flatten() {
        let mut b = std::fs::read(e.path()).expect("read");
        if !b.is_empty() {
            let mid = b.len() / 2;
            b[mid] ^= 0x5a;
            std::fs::write(e.path(), b).expect("write");
        }
    }
    check("damaged");
    std::fs::remove_dir_all(&dir).expect("rm");
    check("missing");
    // A symbolic link to another database's index: removed, its target untouched.
    let other = tmp.path().join("other");
    {
        let db = Database::open(&other).expect("open other");
        let c = db.create_collection("v", cfg).expect("create");
        c.upsert(&[Document::new("x", vec![1.0, 0.0]).with_text("E117 elsewhere")]).expect("up");
    }
    let other_dir = text_dir(&other);
    let before = dir_listing(&other_dir);
    std::fs::remove_dir_all(&dir).expect("rm");
    std::os::unix::fs::symlink(&other_dir, &dir).expect("symlink");
    check("symlink");
    assert!(!std::fs::symlink_metadata(&dir).expect("meta").file_type().is_symlink());
    assert_eq!(dir_listing(&other_dir), before);
    // Another database's index copied in.
    std::fs::remove_dir_all(&dir).expect("rm");
    copy_dir(&other_dir, &dir);
    check("foreign");
    // A plain file in its place.
    std::fs::remove_dir_all(&dir).expect("rm");
    std::fs::write(&dir, b"not an index").expect("write");
    check("file");
}

/// Two histories of one database (a copy taken, both written on): the index of one, put beside
/// the other, covers sequence numbers the other used for other texts. The digests tell, and
/// the index is rebuilt rather than answering with the other history's texts.
#[test]
fn an_index_of_another_history_is_caught_by_its_digests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let cfg = CollectionConfig::new(2).with_full_text(true);
    let doc = |id: &str, text: &str| Document::new(id, vec![1.0, 0.5]).with_text(text);
    {
        let db = Database::open(&a).expect("open");
        let c = db.create_collection("v", cfg).expect("create");
        c.upsert(&[doc("base", "common ground")]).expect("up");
    }
    copy_dir(&a, &b);
    for (path, docs) in [(&a, vec![doc("x", "alpha")]), (&b, vec![doc("y", "beta"), doc("z", "c")])]
    {
        let db = Database::open(path).expect("open");
        db.collection("v").expect("collection").upsert(&docs).expect("up");
    }
    std::fs::remove_dir_all(text_dir(&b)).expect("rm");
    copy_dir(&text_dir(&a), &text_dir(&b));
    let db = Database::open(&b).expect("open");
    let c = db.collection("v").expect("collection");
    let find = |q: &str| c.query_text_with(q, 5, None, keyword()).expect("q").0;
    assert!(find("alpha").is_empty(), "the other history's text");
    assert_eq!(ids(&find("beta")), ["y"]);
    assert_eq!(ids(&find("common ground")), ["base"]);
}

#[test]
fn bad_queries_are_typed_errors_or_empty_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Database::open(tmp.path().join("db")).expect("open");
    let c = db.text_collection("logs", minilm()).expect("collection");
    c.add_texts(&docs()).expect("add");
    let many: String = (0..10_000).map(|i| format!("w{i} ")).collect();
    for mode in [QueryMode::Keyword, QueryMode::Hybrid, QueryMode::Auto] {
        let err = c.query_text_with(&many, 5, None, mode.into_options()).expect_err("10k terms");
        assert!(matches!(err, Error::TooManyQueryTerms { terms: 10_000, .. }), "{err}");
    }
    // Only punctuation or stop words: the keyword side finds nothing, hybrid answers by vector.
    for q in ["?!?! ... ---", "the of and to", "***", "\"", "\u{0}"] {
        assert!(c.query_text_with(q, 5, None, keyword()).expect(q).0.is_empty(), "{q:?}");
        let (h, _) = c.query_text_with(q, 5, None, QueryMode::Hybrid.into_options()).expect(q);
        assert_eq!(h.len(), 5, "{q:?}");
    }
    // tantivy's query syntax is text.
    let (h, _) = c.query_text_with("body:tote AND 4411 OR *", 1, None, keyword()).expect("q");
    assert_eq!(ids(&h), ["l6"]);
    // A collection without a full-text index: keyword and hybrid refused, auto is vector.
    let v = db.create_collection("plain", CollectionConfig::new(2)).expect("create");
    v.upsert(&[Document::new("x", vec![1.0, 0.0]).with_text("tote")]).expect("up");
    for mode in [QueryMode::Keyword, QueryMode::Hybrid] {
        let err = v.query_text_with("tote", 1, None, mode.into_options()).expect_err("no index");
        assert!(matches!(err, Error::NoFullText { .. }), "{err}");
    }
    let err = v.query_text_with("tote", 1, None, QueryOptions::default()).expect_err("no model");
    assert!(matches!(err, Error::NoEmbedder { .. }), "{err}");
    // k and the text limit are checked as for every query.
    assert!(matches!(c.query_text_with("tote", 0, None, keyword()), Err(Error::InvalidK { .. })));
    let huge = "x".repeat(akidb::limits::MAX_TEXT_BYTES + 1);
    assert!(matches!(c.query_text_with(&huge, 1, None, keyword()), Err(Error::TextTooLong { .. })));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

fn dir_listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into(), e.metadata().expect("meta").len()))
        .collect();
    v.sort();
    v
}
