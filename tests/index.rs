//! The HNSW index behind collections: recall, visibility of deletes and upserts, filtered search
//! against exact filtered search, persistence (reload, replay, corrupt and hostile files) and
//! crash safety of index saves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[path = "common/generations.rs"]
mod generations;
use generations::{copy_dir, fix_manifest, generation, generation_vectors, rewrite_data};

use akidb::{
    Collection, CollectionConfig, Database, Document, FieldIndex, Filter, IndexKind, SearchParams,
    SearchPath,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 24;
const N: usize = 12_000; // above the exact-scan threshold, so searches walk the graph

fn gauss(rng: &mut impl Rng) -> f32 {
    // Box-Muller.
    let (u, v): (f32, f32) = (rng.gen_range(1e-7..1.0), rng.gen_range(0.0..1.0));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

/// Anisotropic Gaussian clusters (as ../shared/bench/make_dataset.py makes them), with a
/// `label` (0..100) and a `group` (0..10) in metadata. The clusters are fixed; `seed` draws
/// the points.
fn dataset(n: usize, seed: u64) -> Vec<Document> {
    let mut crng = rand::rngs::StdRng::seed_from_u64(424242);
    let centers: Vec<Vec<f32>> =
        (0..40).map(|_| (0..DIM).map(|_| gauss(&mut crng)).collect()).collect();
    let scales: Vec<Vec<f32>> =
        (0..40).map(|_| (0..DIM).map(|_| crng.gen_range(0.2..1.0)).collect()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let k = rng.gen_range(0..centers.len());
            let v: Vec<f32> = centers[k]
                .iter()
                .zip(&scales[k])
                .map(|(c, s)| c + gauss(&mut rng) * s * 0.6)
                .collect();
            Document::new(format!("d{i}"), v)
                .with_metadata(json!({"label": i % 100, "group": i % 10}))
        })
        .collect()
}

fn queries(n: usize, seed: u64) -> Vec<Vec<f32>> {
    dataset(n, seed).into_iter().map(|d| d.vector).collect()
}

fn ids(hits: &[akidb::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

fn overlap(a: &[String], b: &[String]) -> usize {
    let b: HashSet<&String> = b.iter().collect();
    a.iter().filter(|x| b.contains(x)).count()
}

/// Mean recall@10 of the default search against the exact one.
fn recall(c: &Collection, filter: Option<&Filter>, qs: &[Vec<f32>]) -> f64 {
    let mut found = 0;
    let mut want = 0;
    for q in qs {
        let exact = ids(&c.search_with(q, 10, filter, SearchParams::exact()).expect("exact").0);
        let approx = ids(&c.search(q, 10, filter).expect("search"));
        assert_eq!(approx.len(), exact.len(), "search returns min(k, matches) hits");
        found += overlap(&approx, &exact);
        want += exact.len();
    }
    found as f64 / want.max(1) as f64
}

fn open_loaded(path: &Path) -> (Database, Collection) {
    let db = Database::open(path).expect("open");
    let c = match db.collection("v") {
        Ok(c) => c,
        Err(_) => {
            // The filtered tests read `label` and `group` from payload indexes (filters on
            // undeclared fields: `payload_indexes_answer_every_filter_as_storage_does`).
            let config = CollectionConfig::new(DIM)
                .with_index("label", IndexKind::Integer)
                .with_index("group", IndexKind::Integer);
            let c = db.create_collection("v", config).expect("create");
            c.upsert(&dataset(N, 1)).expect("load");
            c
        }
    };
    (db, c)
}

fn index_dir(db_path: &Path) -> PathBuf {
    db_path.join("index").join("c1")
}

#[test]
fn graph_recall_floor_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open_loaded(&dir.path().join("db"));
    let qs = queries(100, 99);
    let (_, path) = c.search_with(&qs[0], 10, None, SearchParams::default()).expect("search");
    assert_eq!(path, SearchPath::Graph);
    let r = recall(&c, None, &qs);
    assert!(r >= 0.95, "recall@10 {r}");
    // A wider beam is at least as good.
    let mut wide = 0;
    for q in &qs {
        let exact = ids(&c.search_with(q, 10, None, SearchParams::exact()).expect("e").0);
        wide += overlap(
            &ids(&c.search_with(q, 10, None, SearchParams::with_ef(400)).expect("s").0),
            &exact,
        );
    }
    assert!(wide as f64 / 1000.0 >= r - 0.01);
}

#[test]
fn deletes_and_upserts_are_visible_at_once_and_k_hits_remain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open_loaded(&dir.path().join("db"));
    let q = queries(1, 7).remove(0);
    let before = ids(&c.search(&q, 10, None).expect("s"));
    // Delete the five best: they vanish, and the answer still has 10 hits.
    c.delete(&before[..5]).expect("delete");
    let after = ids(&c.search(&q, 10, None).expect("s"));
    assert_eq!(after.len(), 10);
    assert!(after.iter().all(|id| !before[..5].contains(id)));
    // Move a far document onto the query: it becomes the best hit.
    let far =
        ids(&c.search(&q.iter().map(|x| -x).collect::<Vec<_>>(), 1, None).expect("s"))[0].clone();
    c.upsert(&[Document::new(far.clone(), q.clone())]).expect("upsert");
    let top = c.search(&q, 1, None).expect("s");
    assert_eq!(top[0].id, far);
    assert!((top[0].score - 1.0).abs() < 1e-5);
    let stats = c.index_stats().expect("stats");
    assert_eq!(stats.live, N - 5);
    assert_eq!(stats.tombstones, 6);
}

#[test]
fn filtered_search_rules_and_recall_by_selectivity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open_loaded(&dir.path().join("db"));
    let qs = queries(60, 5);
    // At 12k vectors and ef 64, 50% and 30%: graph walk with the filter (cheaper than checking
    // 12k ids); 10%: the exact scan of 1,200 matches is cheaper than a walk visiting ~6 times
    // the unfiltered nodes; 1%: exact scan, under the 2% floor.
    for (filter, want_path) in [
        (Filter::lt("label", 50), SearchPath::Graph),
        (Filter::lt("label", 30), SearchPath::Graph),
        (Filter::eq("group", 3), SearchPath::ExactFiltered),
        (Filter::eq("label", 42), SearchPath::ExactFiltered),
    ] {
        let (hits, path) =
            c.search_with(&qs[0], 10, Some(&filter), SearchParams::default()).expect("s");
        assert_eq!(path, want_path, "{filter:?}");
        assert!(hits.iter().all(|h| filter.matches(h.metadata.as_object().expect("object"))));
        let r = recall(&c, Some(&filter), &qs);
        assert!(r >= 0.95, "{filter:?}: recall {r}");
    }
    // Fewer matches than k: all of them come back (label 42 has 120 documents).
    let rare = Filter::eq("label", 42);
    assert_eq!(c.search(&qs[0], 500, Some(&rare)).expect("s").len(), N / 100);
    let none = Filter::eq("label", 42).and(Filter::eq("group", 5));
    assert!(c.search(&qs[0], 10, Some(&none)).expect("s").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]
    #[test]
    fn filtered_search_matches_exact_filtered(
        lo in 0i64..100,
        width in 1i64..100,
        group in 0i64..10,
        q_seed in 0u64..1000,
        use_group: bool,
    ) {
        type Loaded = (tempfile::TempDir, Database, Collection);
        static DB: std::sync::OnceLock<Loaded> = std::sync::OnceLock::new();
        let (_, _, c) = DB.get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (db, c) = open_loaded(&dir.path().join("db"));
            (dir, db, c)
        });
        let mut f = Filter::gte("label", lo).and(Filter::lt("label", lo + width));
        if use_group {
            f = f.or(Filter::eq("group", group));
        }
        let q = queries(1, q_seed).remove(0);
        let (exact, _) = c.search_with(&q, 10, Some(&f), SearchParams::exact()).expect("exact");
        let (approx, path) =
            c.search_with(&q, 10, Some(&f), SearchParams::default()).expect("search");
        prop_assert_eq!(approx.len(), exact.len());
        prop_assert!(approx.iter().all(|h| f.matches(h.metadata.as_object().expect("object"))));
        let o = overlap(&ids(&approx), &ids(&exact));
        match path {
            SearchPath::Exact | SearchPath::ExactFiltered => {
                prop_assert_eq!(ids(&approx), ids(&exact))
            }
            _ => prop_assert!(o + 1 >= exact.len() * 8 / 10, "overlap {} of {}", o, exact.len()),
        }
    }
}

#[test]
fn reload_uses_the_saved_generation_and_replays_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let qs = queries(20, 11);
    let before: Vec<Vec<String>> = {
        let (db, c) = open_loaded(&path);
        let r = qs.iter().map(|q| ids(&c.search(q, 10, None).expect("s"))).collect();
        drop(c);
        drop(db); // saves a generation
        r
    };
    assert!(std::fs::read_dir(index_dir(&path)).expect("index dir").count() == 1);
    {
        let (_db, c) = open_loaded(&path);
        assert_eq!(c.index_stats().expect("stats").unsaved_changes, 0, "loaded, not rebuilt");
        let after: Vec<Vec<String>> =
            qs.iter().map(|q| ids(&c.search(q, 10, None).expect("s"))).collect();
        assert_eq!(before, after, "same graph, same answers");
    }
    // Changes after the generation, then a crash (no clean close): replayed on open.
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_change_then_abort", "--ignored", "--nocapture"])
        .env("AKIDB_INDEX_DB", &path)
        .status()
        .expect("child");
    assert!(!status.success(), "child aborts on purpose");
    let (_db, c) = open_loaded(&path);
    let stats = c.index_stats().expect("stats");
    assert_eq!(stats.live, N + 300 - 200);
    assert!(stats.unsaved_changes > 0, "replayed changes are pending a save");
    assert!(c.get(&["d5"]).expect("get")[0].is_none());
    let new = c.get(&["new-7"]).expect("get")[0].clone().expect("replayed insert");
    assert_eq!(c.search(&new.vector, 1, None).expect("s")[0].id, "new-7");
    for q in &qs {
        let hits = ids(&c.search(q, 10, None).expect("s"));
        assert!(hits.iter().all(|id| id != "d5" && id != "d150"));
    }
    assert!(recall(&c, None, &qs) >= 0.95);
}

/// Child half of `reload_uses_the_saved_generation_and_replays_changes`.
#[test]
#[ignore = "run as a child process"]
fn child_change_then_abort() {
    let Ok(path) = std::env::var("AKIDB_INDEX_DB") else { return };
    let (_db, c) = open_loaded(Path::new(&path));
    let new: Vec<Document> = dataset(300, 77)
        .into_iter()
        .enumerate()
        .map(|(i, d)| Document::new(format!("new-{i}"), d.vector))
        .collect();
    c.upsert(&new).expect("upsert");
    let gone: Vec<String> = (0..200).map(|i| format!("d{}", i * 5 % N)).collect();
    c.delete(&gone).expect("delete");
    std::process::abort(); // no clean close: the index generation on disk is stale
}

fn corrupt(path: &Path, how: &str) {
    let gen = std::fs::read_dir(index_dir(path))
        .expect("index dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gen-")))
        .expect("a generation");
    match how {
        "truncate-data" => {
            let f = gen.join("akidb.hnsw.data");
            let len = std::fs::metadata(&f).expect("meta").len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .expect("open")
                .set_len(len / 2)
                .expect("truncate");
        }
        "flip-graph" => {
            let f = gen.join("akidb.hnsw.graph");
            let mut b = std::fs::read(&f).expect("read");
            let i = b.len() / 2;
            b[i] ^= 0x40;
            std::fs::write(&f, b).expect("write");
        }
        "garbage-manifest" => {
            std::fs::write(gen.join("MANIFEST.json"), b"{\"format_version\": 99").expect("write")
        }
        "foreign-files" => {
            std::fs::write(gen.join("akidb.hnsw.graph"), vec![7u8; 4096]).expect("write");
            std::fs::write(gen.join("akidb.hnsw.data"), vec![9u8; 4096]).expect("write");
        }
        "symlink-outside" => {
            let outside = path.parent().expect("parent").join("elsewhere");
            std::fs::rename(&gen, &outside).expect("move out");
            std::os::unix::fs::symlink(&outside, &gen).expect("symlink");
        }
        "manifest-outside" => {
            // A manifest naming files outside the generation (with matching sizes and checksums).
            let outside = path.parent().expect("parent").join("elsewhere");
            std::fs::create_dir_all(&outside).expect("mkdir");
            let mut m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(gen.join("MANIFEST.json")).expect("read"))
                    .expect("json");
            for f in m["files"].as_array_mut().expect("files") {
                let name = f["name"].as_str().expect("name").to_string();
                std::fs::copy(gen.join(&name), outside.join(&name)).expect("copy");
                f["name"] = serde_json::Value::String(format!("../../../../elsewhere/{name}"));
            }
            std::fs::write(gen.join("MANIFEST.json"), m.to_string()).expect("write");
        }
        "file-symlink-outside" => {
            let outside = path.parent().expect("parent").join("elsewhere");
            std::fs::create_dir_all(&outside).expect("mkdir");
            std::fs::rename(gen.join("akidb.hnsw.data"), outside.join("akidb.hnsw.data"))
                .expect("move out");
            std::os::unix::fs::symlink(
                outside.join("akidb.hnsw.data"),
                gen.join("akidb.hnsw.data"),
            )
            .expect("symlink");
        }
        "index-dir-symlink" => {
            let outside = path.parent().expect("parent").join("elsewhere");
            std::fs::rename(path.join("index"), &outside).expect("move out");
            std::os::unix::fs::symlink(&outside, path.join("index")).expect("symlink");
        }
        _ => unreachable!(),
    }
}

/// A database at `path` whose collection has the name and settings of `open_loaded`'s over
/// other vectors (closed again, its index saved).
fn other_database(path: &Path) -> PathBuf {
    let db = Database::open(path).expect("open");
    db.create_collection("v", CollectionConfig::new(DIM))
        .expect("create")
        .upsert(&dataset(N, 8))
        .expect("other vectors");
    path.to_path_buf()
}

/// Replaces the index folder of the database at `db_path` by a copy of `from`.
fn replace_index(db_path: &Path, from: &Path) {
    std::fs::remove_dir_all(db_path.join("index")).expect("rm");
    copy_dir(from, &db_path.join("index"));
}

/// `docs` under the ids `{prefix}0`, `{prefix}1`, ... (vectors only).
fn renamed(docs: Vec<Document>, prefix: &str) -> Vec<Document> {
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| Document::new(format!("{prefix}{i}"), d.vector))
        .collect()
}

/// Index files that do not belong to the database they sit in, or whose content was altered
/// with checksums recomputed, are never used: each case below returned recall@10 0.000 (or
/// worse answers) before generations were bound to their database and checked against
/// storage. Each must lead to a rebuild, exact answers, and a fresh generation that loads.
#[test]
fn stale_foreign_and_tampered_generations_are_never_trusted() {
    let qs = queries(40, 31);
    let near_new: Vec<Vec<f32>> = dataset(40, 8).into_iter().map(|d| d.vector).collect();
    for how in [
        "deleted-redb",
        "other-database",
        "restored-older-redb",
        "negated-vectors",
        "crafted-links",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        drop(open_loaded(&path)); // N vectors, generation saved on drop
        let aside = dir.path().join("aside");
        match how {
            "deleted-redb" => {
                // The database file is deleted (or lost) but index/ stays; a new database of
                // other vectors is written at the same path; power is lost before its index is
                // saved (the old generation is still there).
                copy_dir(&path.join("index"), &aside);
                std::fs::remove_file(path.join("akidb.redb")).expect("rm");
                other_database(&path);
                replace_index(&path, &aside);
            }
            "other-database" => {
                // An index folder copied from another database whose collection has the same
                // name and settings.
                let other = other_database(&dir.path().join("other"));
                replace_index(&path, &other.join("index"));
            }
            "restored-older-redb" => {
                // The database file is restored from an older copy; the index on disk is from the
                // lost later history, whose sequence numbers the restored file gives to other
                // vectors (same database identity: a copy of the same database).
                std::fs::copy(path.join("akidb.redb"), &aside).expect("backup");
                let (db, c) = open_loaded(&path);
                c.upsert(&renamed(dataset(2_000, 9), "x")).expect("later history");
                drop(c);
                drop(db);
                let later_index = dir.path().join("later-index");
                copy_dir(&path.join("index"), &later_index);
                std::fs::copy(&aside, path.join("akidb.redb")).expect("restore");
                let (db, c) = open_loaded(&path);
                c.upsert(&renamed(dataset(2_000, 8), "y")).expect("new history");
                drop(c);
                drop(db);
                replace_index(&path, &later_index);
            }
            "negated-vectors" => {
                rewrite_data(&generation(&path), &|_, v| v.iter_mut().for_each(|x| *x = -*x))
            }
            "crafted-links" => {
                // The graph of other vectors under the same ids, with this database's identity and
                // its true vectors: every check of ids, sizes, checksums and vectors passes.
                let other = other_database(&dir.path().join("other"));
                let ours = generation(&path);
                let truth = generation_vectors(&ours);
                let manifest: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(ours.join("MANIFEST.json")).expect("read"),
                )
                .expect("json");
                let theirs = generation(&other);
                rewrite_data(&theirs, &|id, v| v.copy_from_slice(&truth[&id]));
                fix_manifest(&theirs, |m| m["identity"] = manifest["identity"].clone());
                std::fs::remove_dir_all(&ours).expect("rm");
                copy_dir(&theirs, &ours);
            }
            _ => unreachable!(),
        }
        let (db, c) = open_loaded(&path);
        let live = c.count().expect("count");
        let stats = c.index_stats().expect("stats");
        assert_eq!(stats.live as u64, live, "{how}");
        assert_eq!(stats.unsaved_changes, live, "{how}: rebuilt from redb, not loaded ({stats:?})");
        for q in [&qs, &near_new] {
            let r = recall(&c, None, q);
            assert!(r >= 0.95, "{how}: recall@10 {r}");
        }
        drop(c);
        drop(db);
        let (_db, c) = open_loaded(&path);
        assert_eq!(
            c.index_stats().expect("stats").unsaved_changes,
            0,
            "{how}: the fresh generation loads"
        );
        assert!(recall(&c, None, &qs) >= 0.95, "{how}");
    }
}

/// A manifest that claims more than the live vectors justify is refused before its files are
/// read: neither their time nor their memory is spent.
#[test]
fn oversized_generations_are_refused_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    drop(open_loaded(&path));
    let gen = generation(&path);
    // A sparse 6 GiB data file with a manifest that matches its size (but not its checksum:
    // reading it to find out would take the 6 GiB).
    let f = gen.join("akidb.hnsw.data");
    std::fs::OpenOptions::new().write(true).open(&f).expect("open").set_len(6 << 30).expect("grow");
    let mpath = gen.join("MANIFEST.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mpath).expect("read")).expect("json");
    m["files"][1]["len"] = json!(6u64 << 30);
    m["nodes"] = json!((6u64 << 30) / (20 + 4 * DIM as u64));
    std::fs::write(&mpath, m.to_string()).expect("write");
    let t = std::time::Instant::now();
    let (_db, c) = open_loaded(&path);
    let took = t.elapsed();
    eprintln!(
        "open with a manifest claiming a 6 GiB data file: {took:?} (a rebuild of {N} vectors)"
    );
    assert_eq!(c.index_stats().expect("stats").unsaved_changes, N as u64, "rebuilt");
    // The rebuild itself takes a few seconds here; reading 6 GiB took 40 s before the bound.
    assert!(took < std::time::Duration::from_secs(30), "open took {took:?}");
}

/// Every file under `dir`, with its bytes' checksum.
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push((
                    p,
                    bytes.iter().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b))),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn damaged_or_hostile_index_files_lead_to_a_rebuild_never_a_failed_open() {
    let qs = queries(30, 21);
    for how in [
        "truncate-data",
        "flip-graph",
        "garbage-manifest",
        "foreign-files",
        "symlink-outside",
        "manifest-outside",
        "file-symlink-outside",
        "index-dir-symlink",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        drop(open_loaded(&path)); // build and save
        corrupt(&path, how);
        let elsewhere = dir.path().join("elsewhere");
        let outside_before = if elsewhere.exists() { tree(&elsewhere) } else { Vec::new() };
        let (db, c) = open_loaded(&path);
        let stats = c.index_stats().expect("stats");
        assert_eq!(stats.unsaved_changes, N as u64, "{how}: rebuilt from redb ({stats:?})");
        assert_eq!(c.count().expect("count"), N as u64);
        assert!(recall(&c, None, &qs) >= 0.95, "{how}");
        drop(c);
        drop(db);
        // The rebuilt generation replaces the damaged one and loads next time.
        let (_db, c) = open_loaded(&path);
        assert_eq!(
            c.index_stats().expect("stats").unsaved_changes,
            0,
            "{how}: fresh generation loads"
        );
        if how.ends_with("outside") || how.ends_with("symlink") {
            assert!(elsewhere.exists(), "{how}: files outside the database are never removed");
            assert_eq!(
                tree(&elsewhere),
                outside_before,
                "{how}: files outside the database are never changed"
            );
            assert!(!std::fs::symlink_metadata(path.join("index"))
                .expect("index")
                .file_type()
                .is_symlink());
        }
    }
}

#[test]
fn optimize_clears_tombstones_while_readers_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open_loaded(&dir.path().join("db"));
    let gone: Vec<String> = (0..N).filter(|i| i % 5 == 0).map(|i| format!("d{i}")).collect();
    c.delete(&gone).expect("delete");
    let qs = queries(30, 3);
    let reader = {
        let c = c.clone();
        let qs = qs.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for _ in 0..5 {
                for q in &qs {
                    assert_eq!(c.search(q, 10, None).expect("search during optimize").len(), 10);
                    n += 1;
                }
            }
            n
        })
    };
    let cleared = c.optimize().expect("optimize");
    assert!(reader.join().expect("reader") > 0);
    assert_eq!(cleared, gone.len());
    let stats = c.index_stats().expect("stats");
    assert_eq!((stats.live, stats.tombstones), (N - gone.len(), 0));
    assert!(recall(&c, None, &qs) >= 0.95);
}

/// Child half of `sigkill_during_index_saves_and_inserts`.
#[test]
#[ignore = "run as a child process"]
fn child_insert_and_save_forever() {
    let Ok(path) = std::env::var("AKIDB_INDEX_DB") else { return };
    let (_db, c) = open_loaded(Path::new(&path));
    for round in 0.. {
        let batch: Vec<Document> = dataset(200, 1000 + round)
            .into_iter()
            .enumerate()
            .map(|(i, d)| Document::new(format!("r{round}-{i}"), d.vector))
            .collect();
        c.upsert(&batch).expect("upsert");
        c.save_index().expect("save");
    }
}

#[test]
fn sigkill_during_index_saves_and_inserts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    drop(open_loaded(&path));
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let qs = queries(20, 31);
    for _ in 0..5 {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "child_insert_and_save_forever", "--ignored"])
            .env("AKIDB_INDEX_DB", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(300..1500)));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let (_db, c) = open_loaded(&path);
        let count = c.count().expect("count") as usize;
        assert_eq!(c.index_stats().expect("stats").live, count, "index agrees with storage");
        // Every stored document is findable, and answers match an exact search.
        assert!(recall(&c, None, &qs) >= 0.95);
        let leftovers = std::fs::read_dir(index_dir(&path))
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
            .count();
        assert!(leftovers >= 1);
    }
}

/// Random unit vectors of dimension `dim`.
fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| gauss(&mut rng)).collect();
            akidb::index::normalize(&mut v);
            v
        })
        .collect()
}

#[test]
fn vectors_inserted_into_a_built_graph_are_found_at_once() {
    use akidb::index::{
        HnswIndex, HnswParams, Metric, SearchParams as P, SearchPath as Path_, VectorInsert,
    };
    let base = unit_vectors(12_000, DIM, 1);
    let mut index = HnswIndex::new(DIM, Metric::Cosine, HnswParams::default());
    let items: Vec<(u64, &[f32])> =
        base.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
    index.insert(&items).expect("insert");
    assert!(index.graph_built());
    let bytes_before = index.graph_bytes();
    // Batches of 10 (inserted in order) and one of 200 (linked in parallel), searched through
    // the graph walk as soon as insert returns. Uniform random 384-d vectors are the hardest
    // case for any graph (a walk at the default ef misses about 1 self-query in 50,000 here),
    // so one miss in 500 is allowed.
    let extra = unit_vectors(500, DIM, 2);
    let ids = |from: usize, n: usize| (from..from + n).map(|i| (100_000 + i) as u64);
    let mut batches: Vec<(usize, usize)> = (0..30).map(|b| (b * 10, 10)).collect();
    batches.push((300, 200));
    let mut found_at_once = 0;
    for (from, n) in batches {
        let items: Vec<(u64, &[f32])> =
            ids(from, n).zip(&extra[from..from + n]).map(|(id, v)| (id, v.as_slice())).collect();
        index.insert(&items).expect("insert");
        for (id, v) in &items {
            let (hits, path) = index.search_with(v, 1, None, P::default()).expect("search");
            assert_eq!(path, Path_::Graph);
            found_at_once += usize::from(hits[0].id == *id);
        }
    }
    assert!(
        found_at_once >= 499,
        "{found_at_once} of 500 new vectors were their own nearest neighbour at once"
    );
    assert!(index.graph_bytes() > bytes_before, "the graph grew");
    let found = extra.iter().enumerate().filter(|(i, v)| {
        index.search_with(v, 1, None, P::default()).expect("search").0[0].id == (100_000 + i) as u64
    });
    assert!(found.count() >= 499, "after all inserts");
    // Removed vectors (of the first build and inserted later) are never returned.
    let gone: Vec<u64> = (0..20).map(|i| (100_000 + i * 13) as u64).chain(0..20).collect();
    index.remove(&gone);
    for &id in &gone {
        let v = if id >= 100_000 { &extra[(id - 100_000) as usize] } else { &base[id as usize] };
        let hits = index.search_with(v, 10, None, P::default()).expect("search").0;
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| !gone.contains(&h.id)), "removed id {id} returned");
    }
}

#[test]
fn a_collection_of_exact_duplicates_still_finds_a_new_distinct_vector() {
    // Robot logs repeat lines, and repeated lines embed to identical vectors: 100 vectors with
    // 110 copies each. New, unrelated vectors must be found by the graph walk, whether they
    // arrive before or after more copies.
    use akidb::index::{
        HnswIndex, HnswParams, Metric, SearchParams as P, SearchPath as Path_, VectorInsert,
    };
    let distinct = unit_vectors(100, DIM, 3);
    let mut index = HnswIndex::new(DIM, Metric::Cosine, HnswParams::default());
    let items: Vec<(u64, &[f32])> =
        (0..11_000).map(|i| (i as u64, distinct[i % 100].as_slice())).collect();
    index.insert(&items).expect("insert");
    let probes = unit_vectors(20, DIM, 4);
    for (p, v) in probes.iter().enumerate() {
        index.insert(&[(50_000 + p as u64, v.as_slice())]).expect("insert");
    }
    let check = |index: &HnswIndex, when: &str| {
        for (p, v) in probes.iter().enumerate() {
            let (hits, path) = index.search_with(v, 3, None, P::default()).expect("search");
            assert_eq!(path, Path_::Graph);
            assert_eq!(hits[0].id, 50_000 + p as u64, "{when}: probe {p}");
        }
    };
    check(&index, "after the probes");
    let more: Vec<(u64, &[f32])> =
        (0..500).map(|i| (20_000 + i as u64, distinct[i % 100].as_slice())).collect();
    index.insert(&more).expect("insert");
    check(&index, "after more copies");
    // The copies of one vector all come back (one graph node stands for them), removed ones not.
    let copies = |index: &HnswIndex| -> Vec<u64> {
        let hits = index.search_with(&distinct[7], 200, None, P::default()).expect("search").0;
        hits.iter().filter(|h| h.score > 0.9999).map(|h| h.id).collect()
    };
    let all: Vec<u64> = (0..11_000u64)
        .filter(|i| i % 100 == 7)
        .chain((0..more.len() as u64).filter(|i| i % 100 == 7).map(|i| 20_000 + i))
        .collect();
    let mut got = copies(&index);
    got.sort_unstable();
    assert_eq!(got, all);
    index.remove(&all[..50]);
    let mut got = copies(&index);
    got.sort_unstable();
    assert_eq!(got, all[50..].to_vec());
}

#[test]
fn dot_and_l2_vectors_far_outside_half_float_range_search_like_exact() {
    // The search view holds its vectors as half floats scaled per vector. L2 vectors of
    // magnitude ~1e6 (half floats end at 65,504) lying far from the origin, and dot-product
    // vectors of magnitude ~1e-6 (below half-float precision), must still walk to the exact
    // neighbours, with exact scores.
    use akidb::index::{
        HnswIndex, HnswParams, Metric, SearchParams as P, SearchPath as Path_, VectorInsert,
    };
    for (metric, mag, offset) in [(Metric::L2, 1e6f32, 3.0f32), (Metric::Dot, 1e-6, 0.0)] {
        let scale = |v: Vec<f32>| -> Vec<f32> { v.iter().map(|x| (x + offset) * mag).collect() };
        let base: Vec<Vec<f32>> = unit_vectors(12_000, DIM, 9).into_iter().map(scale).collect();
        let mut index = HnswIndex::new(DIM, metric, HnswParams::default());
        let items: Vec<(u64, &[f32])> =
            base.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
        index.insert(&items).expect("insert");
        let (mut found, mut total) = (0usize, 0usize);
        for q in unit_vectors(100, DIM, 10).into_iter().map(scale) {
            let (ann, path) = index.search_with(&q, 10, None, P::default()).expect("ann");
            assert_eq!(path, Path_::Graph);
            let exact = index.search_with(&q, 10, None, P::exact()).expect("exact").0;
            for hit in &ann {
                if let Some(e) = exact.iter().find(|e| e.id == hit.id) {
                    found += 1;
                    assert!(
                        (e.score - hit.score).abs() <= 1e-6 * e.score.abs().max(1e-30),
                        "{metric:?}: score re-scored exactly"
                    );
                }
            }
            total += exact.len();
        }
        let recall = found as f64 / total as f64;
        assert!(recall >= 0.9, "{metric:?} at magnitude {mag}: recall@10 {recall}");
    }
}

/// A collection that loads slowly (its graph is rebuilt) does not hold up opening another one,
/// and a drop during the load leaves the collection gone.
#[test]
fn opening_a_collection_does_not_wait_for_another_ones_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let (db, _) = open_loaded(&path);
        let small = db.create_collection("small", CollectionConfig::new(DIM)).expect("create");
        small.upsert(&dataset(10, 5)).expect("upsert");
    }
    for drop_during_load in [false, true] {
        std::fs::remove_dir_all(path.join("index")).ok(); // the next open of "v" rebuilds its graph
        let db = Database::open(&path).expect("open");
        let started = std::sync::Barrier::new(2);
        let (big_done, small_done) = std::thread::scope(|s| {
            let big = s.spawn(|| {
                started.wait();
                let r = db.collection("v");
                (std::time::Instant::now(), r.map(|c| c.count().expect("count")))
            });
            started.wait();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let small = db.collection("small").expect("small opens");
            assert_eq!(small.count().expect("count"), 10);
            let small_done = std::time::Instant::now();
            if drop_during_load {
                db.drop_collection("v").expect("drop");
            }
            (big.join().expect("join"), small_done)
        });
        assert!(small_done < big_done.0, "opening \"small\" waited for the load of \"v\"");
        if drop_during_load {
            assert!(
                matches!(big_done.1, Ok(_) | Err(akidb::Error::CollectionNotFound { .. })),
                "{:?}",
                big_done.1
            );
            assert!(
                matches!(db.collection("v"), Err(akidb::Error::CollectionNotFound { .. })),
                "dropped stays dropped"
            );
        } else {
            assert_eq!(big_done.1.expect("v opens"), N as u64);
        }
    }
}

/// Automatic optimizes run on a worker the database owns: dropping the database cancels and
/// joins it, so the database can be reopened at once (a detached optimize thread used to keep
/// it open, and locked, until its rebuild finished).
#[test]
fn dropping_the_database_stops_its_background_optimize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    drop(open_loaded(&path));
    for round in 0..3 {
        let (db, c) = open_loaded(&path);
        let live = c.count().expect("count") as usize;
        // Over a quarter of the graph tombstoned (and over 1,000): an automatic optimize starts.
        let gone: Vec<String> =
            (0..N).filter(|i| i % 3 == round).map(|i| format!("d{i}")).collect();
        c.delete(&gone).expect("delete");
        let kept = c.count().expect("count") as usize;
        assert!(kept < live);
        drop(c);
        drop(db);
        let reopened = Database::open(&path).expect("reopens at once: no thread keeps it open");
        let c = reopened.collection("v").expect("v");
        assert_eq!(c.count().expect("count") as usize, kept);
        // Put the deleted ones back for the next round.
        let back: Vec<Document> =
            dataset(N, 1).into_iter().filter(|d| gone.contains(&d.id)).collect();
        c.upsert(&back).expect("upsert");
    }
}

/// The fleet-log shape of metadata on the index dataset: `robot` (a string, with a number in
/// every 97th document), `label` and `group` (integers), `note` (never declared).
fn fleet_docs(n: usize, seed: u64) -> Vec<Document> {
    dataset(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let robot = if i % 97 == 0 { json!(i % 5) } else { json!(format!("r{}", i % 13)) };
            let meta = json!({"label": i % 100, "group": i % 10, "robot": robot,
                              "note": format!("x{}", i % 3)});
            Document::new(d.id, d.vector).with_metadata(meta)
        })
        .collect()
}

/// Filters over declared fields only, over declared and undeclared ones, and undeclared only.
fn payload_filters() -> Vec<Filter> {
    vec![
        Filter::eq("robot", "r3"),
        Filter::is_in("robot", ["r1", "r2", "r12"]),
        Filter::eq("robot", 2),
        Filter::lt("label", 30).and(Filter::ne("robot", "r4")),
        !Filter::eq("robot", "r0"),
        Filter::eq("label", 42),
        Filter::eq("robot", "r3").and(Filter::eq("note", "x1")),
        Filter::eq("robot", "r3").or(Filter::eq("note", "x2")),
        !Filter::lt("label", 80).or(Filter::eq("note", "x0")),
        Filter::eq("note", "x1"),
        Filter::eq("group", 3).and(Filter::exists("note")),
        // No leaves: every document, with or without declared fields.
        Filter::And(Vec::new()),
    ]
}

#[test]
fn payload_indexes_answer_every_filter_as_storage_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let docs = fleet_docs(N, 3);
    let qs = queries(4, 77);
    let declared = CollectionConfig::new(DIM)
        .with_index("robot", IndexKind::Keyword)
        .with_index("label", IndexKind::Integer);
    {
        let db = Database::open(&path).expect("open");
        let plain = db.create_collection("plain", CollectionConfig::new(DIM)).expect("create");
        let idx = db.create_collection("declared", declared.clone()).expect("create");
        plain.upsert(&docs).expect("load");
        idx.upsert(&docs).expect("load");
        // Changes after the load reach the payload: a replaced document and deleted ones.
        let moved = Document::new("d5", docs[5].vector.clone())
            .with_metadata(json!({"robot": "r3", "label": 42, "note": "x1"}));
        for c in [&plain, &idx] {
            c.upsert(std::slice::from_ref(&moved)).expect("upsert");
            c.delete(&["d3", "d16", "d42"]).expect("delete");
        }
    }
    let same_answers = |db: &Database, name: &str| {
        let plain = db.collection("plain").expect("plain");
        let other = db.collection(name).expect("collection");
        for f in payload_filters() {
            for q in &qs {
                let want = plain.search_with(q, 10, Some(&f), SearchParams::exact()).expect("s").0;
                let got = other.search_with(q, 10, Some(&f), SearchParams::exact()).expect("s").0;
                assert_eq!(ids(&got), ids(&want), "{f:?}");
                assert!(got.iter().all(|h| f.matches(h.metadata.as_object().expect("object"))));
            }
            // Counted from the columns when declared, from storage otherwise: the same.
            let want = plain.count_where(Some(&f)).expect("count");
            assert_eq!(other.count_where(Some(&f)).expect("count"), want, "{f:?}");
            let r = recall(&other, Some(&f), &qs);
            assert!(r >= 0.9, "{name}: {f:?}: recall {r}");
        }
    };
    let db = Database::open(&path).expect("reopen");
    same_answers(&db, "declared");

    // Declared on a collection that has documents: built from storage, stored in the schema.
    let bad = [
        vec![FieldIndex::new("", IndexKind::Keyword)],
        vec![FieldIndex::new("pose..x", IndexKind::Float)],
        vec![FieldIndex::new("a", IndexKind::Keyword), FieldIndex::new("a", IndexKind::Integer)],
        (0..65).map(|i| FieldIndex::new(format!("f{i}"), IndexKind::Keyword)).collect(),
    ];
    for indexes in bad {
        let e = db.set_indexes("plain", indexes).expect_err("refused");
        assert!(matches!(e, akidb::Error::InvalidIndex { .. }), "{e}");
    }
    let e = db.set_indexes("nope", vec![]).expect_err("no such collection");
    assert!(matches!(e, akidb::Error::CollectionNotFound { .. }), "{e}");
    db.create_collection("later", CollectionConfig::new(DIM)).expect("create");
    db.collection("later").expect("later").upsert(&docs).expect("load");
    let later = db.collection("later").expect("later");
    later
        .upsert(&[Document::new("d5", docs[5].vector.clone())
            .with_metadata(json!({"robot": "r3", "label": 42, "note": "x1"}))])
        .expect("upsert");
    later.delete(&["d3", "d16", "d42"]).expect("delete");
    db.set_indexes("later", declared.indexes.clone()).expect("declare");
    same_answers(&db, "later");
    drop((later, db));
    let db = Database::open(&path).expect("reopen");
    let stored: Vec<_> = db.list_collections().expect("list");
    let later = stored.iter().find(|(n, _)| n == "later").expect("listed");
    assert_eq!(later.1.indexes, declared.indexes);
    same_answers(&db, "later");
    // Dropping every declaration: filters read storage again, same answers.
    db.set_indexes("declared", vec![]).expect("undeclare");
    same_answers(&db, "declared");
}

#[test]
fn vectors_on_disk_answer_as_vectors_in_memory_through_writes_reopen_and_optimize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dataset(N, 7);
    let open = |name: &str, on_disk: bool| {
        let db = Database::open(dir.path().join(name)).expect("open");
        let c = match db.collection("v") {
            Ok(c) => c,
            Err(_) => {
                let config = CollectionConfig::new(DIM).with_vectors_on_disk(on_disk);
                db.create_collection("v", config).expect("create")
            }
        };
        (db, c)
    };
    let (mem_db, mem) = open("mem", false);
    let (disk_db, disk) = open("disk", true);
    assert!(disk.config().vectors_on_disk && !mem.config().vectors_on_disk);
    for c in [&mem, &disk] {
        c.upsert(&docs).expect("load");
        let gone: Vec<String> = (0..N).step_by(7).map(|i| docs[i].id.clone()).collect();
        c.delete(&gone).expect("delete");
        c.upsert(&renamed(dataset(300, 8), "new")).expect("more");
    }
    let qs = queries(60, 99);
    let same_exact = |mem: &Collection, disk: &Collection, when: &str| {
        for q in &qs {
            for filter in [None, Some(Filter::eq("group", 3))] {
                let a = mem.search_with(q, 10, filter.as_ref(), SearchParams::exact()).expect("m");
                let b = disk.search_with(q, 10, filter.as_ref(), SearchParams::exact()).expect("d");
                assert_eq!(ids(&a.0), ids(&b.0), "{when}");
                for (x, y) in a.0.iter().zip(&b.0) {
                    assert_eq!(x.score.to_bits(), y.score.to_bits(), "{when}: exact scores");
                }
            }
        }
        // The graph's answers: re-scored from the file, so their scores are the exact ones.
        for q in &qs {
            let hits = disk.search(q, 10, None).expect("search");
            let exact = disk.search_with(q, 50, None, SearchParams::exact()).expect("exact").0;
            for h in &hits {
                let e = exact.iter().find(|e| e.id == h.id);
                assert!(e.is_none_or(|e| e.score.to_bits() == h.score.to_bits()), "{when}");
            }
        }
        let r = recall(disk, None, &qs);
        assert!(r >= 0.95, "{when}: recall@10 {r} with vectors on disk");
    };
    same_exact(&mem, &disk, "after writes");
    drop((mem, disk));
    drop((mem_db, disk_db));
    let (_mem_db, mem) = open("mem", false);
    let (_disk_db, disk) = open("disk", true);
    same_exact(&mem, &disk, "after reopening");
    for c in [&mem, &disk] {
        c.delete(&(0..N).step_by(5).map(|i| docs[i].id.clone()).collect::<Vec<_>>())
            .expect("delete");
        c.optimize().expect("optimize");
    }
    same_exact(&mem, &disk, "after optimize");
    // The store's scratch files are never visible in the collection's directory.
    let names: Vec<String> = std::fs::read_dir(index_dir(&dir.path().join("disk")))
        .expect("index dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
}

/// Clustered unit-length vectors of `dim` (Qwen3-0.6B's width for 1,024): 40 anisotropic
/// Gaussian clusters, as `dataset` makes them at 24 dimensions.
fn wide_dataset(n: usize, dim: usize, seed: u64) -> Vec<Document> {
    let mut crng = rand::rngs::StdRng::seed_from_u64(77);
    let centers: Vec<Vec<f32>> =
        (0..40).map(|_| (0..dim).map(|_| gauss(&mut crng)).collect()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let c = &centers[rng.gen_range(0..40)];
            let v: Vec<f32> = c.iter().map(|x| x + 0.6 * gauss(&mut rng)).collect();
            Document::new(format!("w{seed}-{i}"), v).with_metadata(json!({"group": i % 10}))
        })
        .collect()
}

#[test]
fn quantized_codes_find_the_neighbours_and_scores_stay_exact_across_reopen_and_optimize() {
    use akidb::Quantization;
    const WIDE: usize = 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = wide_dataset(N, WIDE, 1);
    let qs: Vec<Vec<f32>> = wide_dataset(40, WIDE, 2).into_iter().map(|d| d.vector).collect();
    let kinds = [
        ("int8", Quantization::Int8, false),
        ("int4-disk", Quantization::Int4, true),
        ("binary-disk", Quantization::Binary { oversample: 32 }, true),
    ];
    for (name, q, on_disk) in kinds {
        let path = dir.path().join(name);
        let config = CollectionConfig::new(WIDE).with_quantization(q).with_vectors_on_disk(on_disk);
        let check = |c: &Collection, when: &str| {
            let r = recall(c, None, &qs);
            assert!(r >= 0.95, "{name} {when}: recall@10 {r}");
            let rf = recall(c, Some(&Filter::eq("group", 3)), &qs);
            assert!(rf >= 0.9, "{name} {when}: filtered recall@10 {rf}");
            for q in &qs[..10] {
                let hits = c.search(q, 10, None).expect("search");
                let exact = c.search_with(q, 100, None, SearchParams::exact()).expect("exact").0;
                for h in &hits {
                    if let Some(e) = exact.iter().find(|e| e.id == h.id) {
                        assert_eq!(e.score.to_bits(), h.score.to_bits(), "{name} {when}");
                    }
                }
            }
        };
        {
            let db = Database::open(&path).expect("open");
            let c = db.create_collection("v", config.clone()).expect("create");
            c.upsert(&docs).expect("load");
            c.delete(&docs.iter().step_by(9).map(|d| d.id.clone()).collect::<Vec<_>>())
                .expect("delete");
            check(&c, "after writes");
        } // saves a generation with the fitted quantizer
        let db = Database::open(&path).expect("reopen");
        let c = db.collection("v").expect("collection");
        assert_eq!(c.config().hnsw.quantization, q);
        // Loaded, not rebuilt: only the deleted ids (tombstones in the saved graph) count as
        // changes since the generation (a rebuild would count every live vector).
        let deleted = docs.len().div_ceil(9) as u64;
        let unsaved = c.index_stats().expect("stats").unsaved_changes;
        assert_eq!(unsaved, deleted, "{name}: loaded, not rebuilt");
        check(&c, "after reopening");
        c.optimize().expect("optimize (refits the quantizer)");
        check(&c, "after optimize");
    }
    // What cannot work is refused at creation, with a typed error.
    let db = Database::open(dir.path().join("bad")).expect("open");
    for (dim, metric) in [(384, akidb::Metric::Cosine), (2048, akidb::Metric::L2)] {
        let cfg = CollectionConfig::new(dim)
            .with_metric(metric)
            .with_quantization(Quantization::Binary { oversample: 4 });
        let err = db.create_collection("b", cfg).expect_err("refused");
        assert!(matches!(err, akidb::Error::InvalidQuantization(_)), "{err}");
    }
    let cfg = CollectionConfig::new(2048).with_quantization(Quantization::Binary { oversample: 0 });
    assert!(matches!(db.create_collection("b", cfg), Err(akidb::Error::InvalidQuantization(_))));
}
