//! Public API behaviour and bad input: every mistake is a typed error and writes nothing.

use akidb::{CollectionConfig, Database, Document, Error, Filter, IdProblem, Metric, StorageError};
use serde_json::json;

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    (dir, db)
}

fn doc(id: &str, v: Vec<f32>) -> Document {
    Document::new(id, v)
}

#[test]
fn upsert_get_delete_search_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("logs", CollectionConfig::new(2)).expect("create");
        c.upsert(&[
            doc("a", vec![1.0, 0.0])
                .with_text("alpha")
                .with_metadata(json!({"robot": "r1", "ts": 5})),
            doc("b", vec![0.0, 1.0]).with_metadata(json!({"robot": "r2", "ts": 7})),
            doc("c", vec![0.7, 0.7]).with_metadata(json!({"robot": "r1", "ts": 9})),
        ])
        .expect("upsert");
        // Replace "a", delete "b".
        c.upsert(&[doc("a", vec![-1.0, 0.0]).with_text("alpha2")]).expect("replace");
        assert_eq!(c.delete(&["b", "nope"]).expect("delete"), 1);
        assert_eq!(c.count().expect("count"), 2);
        let hits = c.search(&[1.0, 0.0], 10, None).expect("search");
        assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert!((hits[0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
        assert_eq!(hits[1].text.as_deref(), Some("alpha2"));
        let f = Filter::eq("robot", "r1");
        assert_eq!(c.search(&[1.0, 0.0], 10, Some(&f)).expect("search").len(), 1);
    }
    let db = Database::open(&path).expect("reopen");
    assert_eq!(db.list_collections().expect("list").len(), 1);
    let c = db.collection("logs").expect("collection");
    assert_eq!(c.count().expect("count"), 2);
    let got = c.get(&["a", "b", "c"]).expect("get");
    assert_eq!(got[0].as_ref().map(|r| r.vector.clone()), Some(vec![-1.0, 0.0]));
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().map(|r| r.metadata["ts"].clone()), Some(json!(9)));
    let hits = c.search(&[1.0, 0.0], 1, None).expect("search");
    assert_eq!(hits[0].id, "c");
}

#[test]
fn metrics_order_and_scores() {
    let (_d, db) = db();
    let dot =
        db.create_collection("dot", CollectionConfig::new(2).with_metric(Metric::Dot)).expect("c");
    let l2 =
        db.create_collection("l2", CollectionConfig::new(2).with_metric(Metric::L2)).expect("c");
    let docs = [doc("near", vec![1.0, 1.0]), doc("far", vec![10.0, 10.0])];
    dot.upsert(&docs).expect("u");
    l2.upsert(&docs).expect("u");
    let h = dot.search(&[1.0, 1.0], 2, None).expect("s");
    assert_eq!((h[0].id.as_str(), h[0].score), ("far", 20.0));
    let h = l2.search(&[1.0, 1.0], 2, None).expect("s");
    assert_eq!((h[0].id.as_str(), h[0].score), ("near", 0.0));
    // Zero vectors are fine outside cosine.
    l2.upsert(&[doc("zero", vec![0.0, 0.0])]).expect("zero under l2");
}

#[test]
fn bad_vectors_are_typed_errors_and_write_nothing() {
    let (_d, db) = db();
    let c = db.create_collection("c", CollectionConfig::new(3)).expect("create");
    c.upsert(&[doc("keep", vec![1.0, 2.0, 3.0])]).expect("seed");
    let good = doc("new", vec![1.0, 1.0, 1.0]);
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Document, Check)> = vec![
        (doc("x", vec![1.0, 2.0]), |e| {
            matches!(e, Error::WrongDimension { expected: 3, got: 2, .. })
        }),
        (doc("x", vec![1.0, f32::NAN, 0.0]), |e| {
            matches!(e, Error::NonFiniteVector { position: 1, .. })
        }),
        (doc("x", vec![f32::INFINITY, 0.0, 0.0]), |e| {
            matches!(e, Error::NonFiniteVector { position: 0, .. })
        }),
        (doc("x", vec![0.0; 3]), |e| matches!(e, Error::ZeroVector { .. })),
        (doc("", vec![1.0; 3]), |e| {
            matches!(e, Error::InvalidId { position: 1, reason: IdProblem::Empty })
        }),
        (doc(&"x".repeat(513), vec![1.0; 3]), |e| {
            matches!(
                e,
                Error::InvalidId { reason: IdProblem::TooLong { bytes: 513, max: 512 }, .. }
            )
        }),
        (doc("x", vec![1.0; 3]).with_metadata(json!([1, 2])), |e| {
            matches!(e, Error::MetadataNotObject { found: "an array", .. })
        }),
        (doc("x", vec![1.0; 3]).with_metadata(json!("str")), |e| {
            matches!(e, Error::MetadataNotObject { .. })
        }),
        (doc("x", vec![1.0; 3]).with_metadata(json!({"big": "y".repeat(70_000)})), |e| {
            matches!(e, Error::MetadataTooLarge { .. })
        }),
        (doc("x", vec![1.0; 3]).with_text("t".repeat((4 << 20) + 1)), |e| {
            matches!(e, Error::TextTooLong { .. })
        }),
    ];
    for (bad, is_expected) in cases {
        // The bad document comes second: the good first one must not be written either.
        let err = c.upsert(&[good.clone(), bad.clone()]).expect_err("must fail");
        assert!(is_expected(&err), "{:?} gave {err:?}", bad.id);
        assert!(!err.to_string().is_empty());
    }
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!({ "d": deep });
    }
    assert!(matches!(
        c.upsert(&[doc("x", vec![1.0; 3]).with_metadata(deep)]),
        Err(Error::MetadataTooLarge { .. })
    ));
    assert_eq!(c.count().expect("count"), 1);
    assert!(c.get(&["new"]).expect("get")[0].is_none());
    // Queries too.
    assert!(matches!(c.search(&[1.0], 1, None), Err(Error::WrongDimension { .. })));
    assert!(matches!(c.search(&[f32::NAN, 0.0, 0.0], 1, None), Err(Error::NonFiniteVector { .. })));
    assert!(matches!(c.search(&[0.0; 3], 1, None), Err(Error::ZeroVector { .. })));
    assert!(matches!(c.search(&[1.0; 3], 0, None), Err(Error::InvalidK { k: 0, .. })));
    assert!(matches!(c.search(&[1.0; 3], 10_001, None), Err(Error::InvalidK { .. })));
    for ef in [0, 10_001] {
        let p = akidb::SearchParams::with_ef(ef);
        let err = c.search_with(&[1.0; 3], 1, None, p).expect_err("ef out of range");
        assert!(
            matches!(err, Error::InvalidEf { ef: e, max: 10_000 } if e == ef),
            "ef {ef}: {err:?}"
        );
    }
    assert!(matches!(c.get(&[""]), Err(Error::InvalidId { .. })));
    let huge: Vec<Document> = (0..65_537).map(|i| doc(&i.to_string(), vec![1.0; 3])).collect();
    assert!(matches!(c.upsert(&huge), Err(Error::BatchTooLarge { len: 65_537, .. })));
    assert_eq!(c.search(&[1.0, 2.0, 3.0], 5, None).expect("search").len(), 1);
}

/// Every finite vector either scores finite and in the right order, or is refused with a typed
/// error at insert and at query alike (cosine: any finite non-zero vector; Dot and L2: components
/// within `MAX_VECTOR_COMPONENT`, a non-zero vector's largest at least `MIN_VECTOR_SCALE`).
#[test]
fn finite_vectors_score_finite_and_ordered_or_are_refused() {
    use akidb::limits::{MAX_VECTOR_COMPONENT, MIN_VECTOR_SCALE};
    let (_d, db) = db();
    // Cosine: huge and tiny magnitudes normalise; the scores are the exact cosines.
    let cos = db.create_collection("cos", CollectionConfig::new(4)).expect("create");
    let tiny = f32::from_bits(1);
    cos.upsert(&[
        doc("huge", vec![1e20; 4]),
        doc("tiny", vec![1e-23, 1e-23, 0.0, 0.0]),
        doc("max", vec![f32::MAX, -f32::MAX, 0.0, 0.0]),
        doc("sub", vec![0.0, 0.0, tiny, 0.0]),
    ])
    .expect("cosine takes every finite non-zero vector");
    for (q, best, score) in [
        (vec![1.0f32, 1.0, 1.0, 1.0], "huge", 1.0f32),
        (vec![1e-30, 1e-30, 0.0, 0.0], "tiny", 1.0),
        (vec![1e30, -1e30, 0.0, 0.0], "max", 1.0),
        (vec![0.0, 0.0, 3e-45, 0.0], "sub", 1.0),
    ] {
        let hits = cos.search(&q, 4, None).expect("search");
        assert_eq!(hits.len(), 4);
        assert_eq!(hits[0].id, best, "{q:?}");
        assert!((hits[0].score - score).abs() < 1e-5, "{q:?}: {}", hits[0].score);
        assert!(hits.iter().all(|h| h.score.is_finite()), "{hits:?}");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // Dot and L2 at the edges of the range: finite, correctly ordered scores.
    for metric in [Metric::Dot, Metric::L2] {
        let name = format!("{metric:?}").to_lowercase();
        let c = db
            .create_collection(&name, CollectionConfig::new(3).with_metric(metric))
            .expect("create");
        let m = MAX_VECTOR_COMPONENT;
        let s = MIN_VECTOR_SCALE;
        c.upsert(&[
            doc("big", vec![m, m, m]),
            doc("negbig", vec![-m, -m, -m]),
            doc("half", vec![m / 2.0, m / 2.0, m / 2.0]),
            doc("small", vec![s, 0.0, 0.0]),
            doc("small2", vec![2.0 * s, 0.0, 0.0]),
            doc("zero", vec![0.0; 3]),
        ])
        .expect("in range");
        for q in [vec![m, m, m], vec![-m, -m, -m], vec![s, 0.0, 0.0], vec![m, -m, 0.0]] {
            let hits = c.search(&q, 6, None).expect("search");
            assert_eq!(hits.len(), 6);
            assert!(hits.iter().all(|h| h.score.is_finite()), "{metric:?} {q:?}: {hits:?}");
            let better = |a: f32, b: f32| if metric.higher_is_better() { a >= b } else { a <= b };
            assert!(
                hits.windows(2).all(|w| better(w[0].score, w[1].score)),
                "{metric:?} {q:?}: {hits:?}"
            );
        }
        // The two tiny vectors score apart (no underflow to a tie) against a tiny query.
        let hits = c.search(&[s, 0.0, 0.0], 6, None).expect("search");
        let score = |id: &str| hits.iter().find(|h| h.id == id).map(|h| h.score).expect("hit");
        assert_ne!(score("small"), score("small2"), "{metric:?}: {hits:?}");
        // Out of range: refused at insert (writing nothing) and at query, with the same error.
        let before = c.count().expect("count");
        for bad in [
            vec![f32::MAX, 0.0, 0.0],
            vec![1e30, 1.0, 1.0],
            vec![-1e16, 0.0, 0.0],
            vec![1e-20, 0.0, 0.0],
        ] {
            let err =
                c.upsert(&[doc("ok", vec![1.0; 3]), doc("bad", bad.clone())]).expect_err("refused");
            assert!(matches!(err, Error::VectorOutOfRange { .. }), "{metric:?} {bad:?}: {err:?}");
            assert!(err.to_string().contains("range"), "{err}");
            let err = c.search(&bad, 1, None).expect_err("refused");
            assert!(
                matches!(err, Error::VectorOutOfRange { .. }),
                "{metric:?} query {bad:?}: {err:?}"
            );
        }
        assert_eq!(c.count().expect("count"), before);
    }
}

#[test]
fn collection_names_and_lifecycle() {
    let (_d, db) = db();
    for bad in ["", "a/b", "..", "a b", "ü", &"x".repeat(65), "a.b"] {
        assert!(
            matches!(
                db.create_collection(bad, CollectionConfig::new(2)),
                Err(Error::InvalidCollectionName { .. })
            ),
            "{bad:?}"
        );
        assert!(matches!(db.collection(bad), Err(Error::InvalidCollectionName { .. })));
    }
    assert!(matches!(
        db.create_collection("z", CollectionConfig::new(0)),
        Err(Error::InvalidDimension { .. })
    ));
    for (m, efc, ef) in [(1, 200, 64), (256, 200, 64), (16, 0, 64), (16, 200, 0), (16, 10_001, 64)]
    {
        let mut params = akidb::HnswParams::new(m, efc);
        params.ef_search = ef;
        let cfg = CollectionConfig::new(2).with_hnsw(params);
        assert!(
            matches!(db.create_collection("z", cfg), Err(Error::InvalidIndexParams { .. })),
            "m {m} efc {efc} ef {ef}"
        );
    }
    assert!(
        matches!(db.collection("z"), Err(Error::CollectionNotFound { .. })),
        "nothing was created"
    );
    let c = db.create_collection("ok_Name-1", CollectionConfig::new(2)).expect("create");
    assert!(matches!(
        db.create_collection("ok_Name-1", CollectionConfig::new(2)),
        Err(Error::CollectionExists { .. })
    ));
    assert!(matches!(db.collection("missing"), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(db.drop_collection("missing"), Err(Error::CollectionNotFound { .. })));
    c.upsert(&[doc("a", vec![1.0, 0.0])]).expect("upsert");
    db.drop_collection("ok_Name-1").expect("drop");
    // The stale handle fails cleanly, also after a new collection takes the name.
    assert!(matches!(c.upsert(&[doc("b", vec![1.0, 0.0])]), Err(Error::CollectionNotFound { .. })));
    let c2 = db.create_collection("ok_Name-1", CollectionConfig::new(2)).expect("recreate");
    assert_eq!(c2.count().expect("count"), 0);
    assert!(matches!(c.count(), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.search(&[1.0, 0.0], 1, None), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.optimize(), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.save_index(), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.index_stats(), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.get(&["a"]), Err(Error::CollectionNotFound { .. })));
    assert!(matches!(c.delete(&["a"]), Err(Error::CollectionNotFound { .. })));
}

#[test]
fn bad_filters_are_typed_errors() {
    let (_d, db) = db();
    let c = db.create_collection("c", CollectionConfig::new(2)).expect("create");
    c.upsert(&[doc("a", vec![1.0, 0.0]).with_metadata(json!({"n": 1}))]).expect("u");
    assert!(matches!(
        "{\"n\": {\"$bad\": 1}}".parse::<Filter>(),
        Err(akidb::FilterError::UnknownOperator { .. })
    ));
    let mut deep = Filter::eq("n", 1);
    for _ in 0..40 {
        deep = !deep;
    }
    assert!(matches!(c.search(&[1.0, 0.0], 1, Some(&deep)), Err(Error::Filter(_))));
    let f: Filter = r#"{"n": {"$gte": 1}}"#.parse().expect("parse");
    assert_eq!(c.search(&[1.0, 0.0], 1, Some(&f)).expect("search").len(), 1);
}

#[test]
fn path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    std::fs::write(&file, b"hello").expect("write");
    assert!(matches!(
        Database::open(&file),
        Err(Error::Storage(StorageError::NotADirectory { .. }))
    ));
    let missing = dir.path().join("nope");
    assert!(matches!(
        Database::builder().with_create_if_missing(false).open(&missing),
        Err(Error::Storage(StorageError::NotFound { .. }))
    ));
}

#[test]
fn foreign_truncated_and_newer_files_are_refused_without_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a database at all.
    let p = dir.path().join("foreign");
    std::fs::create_dir(&p).expect("mkdir");
    let junk: Vec<u8> =
        (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761u32) >> 24) as u8).collect();
    std::fs::write(p.join("akidb.redb"), &junk).expect("write");
    let err = Database::open(&p).expect_err("foreign");
    assert!(matches!(err, Error::Storage(StorageError::NotADatabase { .. })), "{err:?}");
    assert_eq!(
        std::fs::read(p.join("akidb.redb")).expect("read"),
        junk,
        "foreign file must be left alone"
    );

    // A real database, truncated.
    let t = dir.path().join("trunc");
    {
        let db = Database::open(&t).expect("open");
        let c = db.create_collection("c", CollectionConfig::new(4)).expect("c");
        let docs: Vec<Document> =
            (0..2000).map(|i| doc(&format!("d{i}"), vec![1.0, i as f32, 0.0, 1.0])).collect();
        c.upsert(&docs).expect("u");
    }
    let f = t.join("akidb.redb");
    let len = std::fs::metadata(&f).expect("meta").len();
    let file = std::fs::OpenOptions::new().write(true).open(&f).expect("open");
    file.set_len(len / 3).expect("truncate");
    drop(file);
    match Database::open(&t) {
        Err(Error::Storage(_)) => {}
        Ok(db) => {
            // redb may repair what it can; whatever opens must answer with typed results.
            if let Ok(c) = db.collection("c") {
                let _ = c.count();
            }
        }
        Err(e) => panic!("unexpected error kind {e:?}"),
    }

    // A redb file of someone else.
    let r = dir.path().join("redb-other");
    std::fs::create_dir(&r).expect("mkdir");
    {
        let other = redb::Database::create(r.join("akidb.redb")).expect("create");
        let w = other.begin_write().expect("w");
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("users");
            let mut t = w.open_table(def).expect("t");
            t.insert("x", 1).expect("i");
        }
        w.commit().expect("commit");
    }
    assert!(matches!(
        Database::open(&r),
        Err(Error::Storage(StorageError::ForeignDatabase { .. }))
    ));

    // A newer format version.
    let n = dir.path().join("newer");
    {
        let s = akidb_storage::Storage::open(&n, &Default::default()).expect("open");
        s.set_format_version_for_tests(akidb_storage::FORMAT_VERSION + 1).expect("set");
    }
    let err = Database::open(&n).expect_err("newer");
    assert!(
        matches!(
            err,
            Error::Storage(StorageError::UnsupportedFormatVersion { found: 2, supported: 1, .. })
        ),
        "{err:?}"
    );
}

/// Child of `refused_files_are_left_byte_for_byte`: writes a file and dies with its redb handle
/// open, so that redb must repair the file before it can be opened read-only.
#[test]
#[ignore = "child process of refused_files_are_left_byte_for_byte"]
fn child_write_and_die() {
    let Ok(path) = std::env::var("AKIDB_CHILD_UNCLEAN") else { return };
    let path = std::path::Path::new(&path);
    match std::env::var("AKIDB_CHILD_KIND").as_deref() {
        Ok("foreign") => {
            let other = redb::Database::create(path.join("akidb.redb")).expect("create");
            let w = other.begin_write().expect("w");
            {
                let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("users");
                w.open_table(def).expect("t").insert("x", 1).expect("i");
            }
            w.commit().expect("commit");
            std::process::abort();
        }
        _ => {
            let s = akidb_storage::Storage::open(path, &Default::default()).expect("open");
            s.set_format_version_for_tests(akidb_storage::FORMAT_VERSION + 1).expect("set");
            std::process::abort();
        }
    }
}

/// A file AkiDB refuses is never written: not a foreign redb file, not a newer AkiDB format,
/// also when redb would have to repair them first (left unclean by a crash), not an empty file.
#[test]
fn refused_files_are_left_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unclean = |name: &str, kind: &str| {
        let p = dir.path().join(name);
        std::fs::create_dir(&p).expect("mkdir");
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "child_write_and_die",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AKIDB_CHILD_UNCLEAN", &p)
            .env("AKIDB_CHILD_KIND", kind)
            .output()
            .expect("spawn child");
        assert!(!out.status.success(), "the child must die with the file open");
        // The case under test: redb cannot open it read-only without repairing it.
        assert!(
            matches!(
                redb::ReadOnlyDatabase::open(p.join("akidb.redb")),
                Err(redb::DatabaseError::RepairAborted)
            ),
            "{kind}: the file must need a repair"
        );
        p
    };
    let clean_foreign = dir.path().join("foreign-clean");
    std::fs::create_dir(&clean_foreign).expect("mkdir");
    {
        let other = redb::Database::create(clean_foreign.join("akidb.redb")).expect("create");
        let w = other.begin_write().expect("w");
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("users");
            w.open_table(def).expect("t").insert("x", 1).expect("i");
        }
        w.commit().expect("commit");
    }
    let clean_newer = dir.path().join("newer-clean");
    {
        let s = akidb_storage::Storage::open(&clean_newer, &Default::default()).expect("open");
        s.set_format_version_for_tests(akidb_storage::FORMAT_VERSION + 1).expect("set");
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("akidb.redb"), b"").expect("empty file");
    let cases = [
        (clean_foreign, "foreign"),
        (unclean("foreign-unclean", "foreign"), "foreign"),
        (clean_newer, "newer"),
        (unclean("newer-unclean", "newer"), "newer"),
        (empty, "empty"),
    ];
    for (path, kind) in cases {
        let file = path.join("akidb.redb");
        let before = std::fs::read(&file).expect("read");
        for _ in 0..2 {
            let err = Database::open(&path).expect_err("refused");
            let expected = match kind {
                "foreign" => matches!(err, Error::Storage(StorageError::ForeignDatabase { .. })),
                "newer" => matches!(
                    err,
                    Error::Storage(StorageError::UnsupportedFormatVersion { found: 2, .. })
                ),
                _ => matches!(err, Error::Storage(StorageError::EmptyFile { .. })),
            };
            assert!(expected, "{}: {err:?}", path.display());
            assert_eq!(
                std::fs::read(&file).expect("read"),
                before,
                "{} was modified",
                path.display()
            );
        }
        // Nothing else was left in the directory either.
        let names: Vec<_> =
            std::fs::read_dir(&path).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["akidb.redb"], "{}", path.display());
    }
}

/// Each database has its own identity: kept across reopening and in copies, new when the file is
/// created again. (Crashed databases reopening: `tests/crash.rs`, `tests/crash_loop.rs`.)
#[test]
fn database_identities_are_stable_and_distinct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let id_a = akidb_storage::Storage::open(&a, &Default::default()).expect("open").database_id();
    let id_a2 =
        akidb_storage::Storage::open(&a, &Default::default()).expect("reopen").database_id();
    assert_eq!(id_a, id_a2);
    // Same path, file deleted and created again: a new database, a new identity.
    std::fs::remove_file(a.join("akidb.redb")).expect("rm");
    let id_a3 =
        akidb_storage::Storage::open(&a, &Default::default()).expect("recreate").database_id();
    assert_ne!(id_a, id_a3);
    // A copy keeps it (it is the same database).
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).expect("mkdir");
    std::fs::copy(a.join("akidb.redb"), copy.join("akidb.redb")).expect("cp");
    assert_eq!(
        akidb_storage::Storage::open(&copy, &Default::default()).expect("open").database_id(),
        id_a3
    );
    assert_ne!(id_a3, [0; 16]);
}

#[test]
fn a_symlinked_database_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    drop(Database::open(&real).expect("create"));
    let target = real.join("akidb.redb");
    let before = std::fs::read(&target).expect("read");
    let p = dir.path().join("linked");
    std::fs::create_dir(&p).expect("mkdir");
    std::os::unix::fs::symlink(&target, p.join("akidb.redb")).expect("symlink");
    let err = Database::open(&p).expect_err("a symlinked file is refused");
    assert!(matches!(err, Error::Storage(akidb::StorageError::Symlink { .. })), "{err}");
    assert_eq!(std::fs::read(&target).expect("read"), before, "the link's target is untouched");
}

#[test]
fn same_process_second_open_is_locked() {
    let (dir, _db) = db();
    let err = Database::open(dir.path().join("db")).expect_err("locked");
    assert!(err.is_locked(), "{err:?}");
    assert!(err.to_string().contains("locked"));
}

/// Child half of `second_process_gets_locked_error`.
#[test]
#[ignore = "run as a child process by second_process_gets_locked_error"]
fn child_open_and_report() {
    let Ok(path) = std::env::var("AKIDB_CHILD_DB") else { return };
    match Database::open(&path) {
        Ok(_) => println!("RESULT opened"),
        Err(e) if e.is_locked() => println!("RESULT locked: {e}"),
        Err(e) => println!("RESULT other: {e:?}"),
    }
}

#[test]
fn second_process_gets_locked_error() {
    let (dir, db) = db();
    let path = dir.path().join("db");
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_open_and_report", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AKIDB_CHILD_DB", &path)
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RESULT locked"), "child said: {stdout}");
    drop(db);
    // Once the holder is gone, the same child opens it.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_open_and_report", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AKIDB_CHILD_DB", &path)
        .output()
        .expect("spawn child");
    assert!(String::from_utf8_lossy(&out.stdout).contains("RESULT opened"));
}

#[test]
fn concurrent_readers_and_writers_see_whole_batches() {
    let (_d, db) = db();
    let c = db.create_collection("c", CollectionConfig::new(4)).expect("create");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (c, stop) = (c.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Every batch writes 10 documents with the same "batch" value: a search that
                    // sees any of a batch sees all of it.
                    let hits = c.search(&[1.0, 0.0, 0.0, 0.0], 10_000, None).expect("search");
                    let mut per: std::collections::HashMap<i64, usize> = Default::default();
                    for h in &hits {
                        *per.entry(h.metadata["batch"].as_i64().expect("batch")).or_default() += 1;
                    }
                    assert!(per.values().all(|n| *n == 10), "partial batch visible: {per:?}");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for b in 0..60i64 {
        let docs: Vec<Document> = (0..10)
            .map(|j| {
                doc(&format!("b{b}-{j}"), vec![1.0, b as f32, j as f32, 1.0])
                    .with_metadata(json!({"batch": b}))
            })
            .collect();
        c.upsert(&docs).expect("upsert");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
    assert_eq!(c.count().expect("count"), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_facade_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = akidb::AsyncDatabase::open(dir.path().join("db")).await.expect("open");
    let c = db.create_collection("c", CollectionConfig::new(2)).await.expect("create");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(
                async move { c.upsert(vec![doc(&format!("d{i}"), vec![1.0, i as f32])]).await },
            )
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("upsert");
    }
    assert_eq!(c.count().await.expect("count"), 8);
    let hits = c.search(vec![0.0, 1.0], 3, Some(Filter::gt("missing", 1))).await.expect("search");
    assert!(hits.is_empty());
    assert!(matches!(c.search(vec![1.0], 3, None).await, Err(Error::WrongDimension { .. })));
    assert_eq!(db.list_collections().await.expect("list")[0].0, "c");
    db.drop_collection("c").await.expect("drop");
    assert!(matches!(db.collection("c").await, Err(Error::CollectionNotFound { .. })));
}

/// The lock policy: a panic while a write publishes its batch (a bug; here a fail point) leaves
/// that collection refusing index work with `Error::Poisoned` until the database is reopened,
/// never searching an index out of step with storage. Storage reads go on, other collections are
/// unaffected, and reopening finds every committed write, the interrupted one included.
#[test]
fn a_panic_while_publishing_stops_the_collection_until_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("c", CollectionConfig::new(3)).expect("create");
        let other = db.create_collection("other", CollectionConfig::new(3)).expect("create");
        c.upsert(&[doc("a", vec![1.0, 0.0, 0.0]), doc("b", vec![0.0, 1.0, 0.0])]).expect("upsert");
        c.fail_next_publish_for_tests();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.upsert(&[doc("x", vec![0.0, 0.0, 1.0])])
        }));
        assert!(panicked.is_err(), "the fail point panics");
        let poisoned = |r: Result<(), Error>, what: &str| {
            assert!(
                matches!(r, Err(Error::Poisoned { ref collection }) if collection == "c"),
                "{what}: {r:?}"
            );
        };
        poisoned(c.search(&[1.0, 0.0, 0.0], 2, None).map(drop), "search");
        poisoned(c.upsert(&[doc("d", vec![1.0, 1.0, 0.0])]), "upsert");
        poisoned(c.delete(&["a"]).map(drop), "delete");
        poisoned(c.index_stats().map(drop), "index_stats");
        poisoned(c.optimize().map(drop), "optimize");
        poisoned(c.save_index(), "save_index");
        let err = c.search(&[1.0, 0.0, 0.0], 2, None).expect_err("poisoned");
        assert!(err.to_string().contains("reopen"), "{err}");
        // Storage reads go on and see the committed write; other collections are unaffected.
        assert_eq!(c.count().expect("count"), 3);
        assert!(c.get(&["x"]).expect("get")[0].is_some());
        other.upsert(&[doc("o", vec![1.0, 0.0, 0.0])]).expect("other collection writes");
        assert_eq!(other.search(&[1.0, 0.0, 0.0], 1, None).expect("other searches")[0].id, "o");
    }
    let db = Database::open(&path).expect("reopen");
    let c = db.collection("c").expect("c");
    let hits = c.search(&[0.0, 0.0, 1.0], 3, None).expect("search after reopen");
    assert_eq!(hits[0].id, "x", "the interrupted write was committed and is found");
    c.upsert(&[doc("d", vec![1.0, 1.0, 0.0])]).expect("writes again");
    assert_eq!(c.count().expect("count"), 4);
}
