//! The lifecycle of a long-running database, on real redb files: count and scroll by filter,
//! delete by filter, retention (with a controllable clock), online backup (with a writer
//! running, and SIGKILLed mid-way), compaction.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb::{
    Clock, Collection, CollectionConfig, Database, Document, Error, Filter, Retention,
    ScrollCursor, ScrollOptions, StorageError,
};
use serde_json::json;

const DIM: usize = 8;

fn vector(i: u64) -> Vec<f32> {
    (0..DIM as u64).map(|d| ((i * 7 + d * 13) % 29) as f32 + 1.0).collect()
}

/// Document `i`: robot `i % 5`, level DEBUG for 3 of every 5, a time of `1000 + i` seconds.
fn doc(i: u64) -> Document {
    let level = if i % 5 < 3 { "DEBUG" } else { "ERROR" };
    Document::new(format!("d{i}"), vector(i))
        .with_text(format!("line {i}"))
        .with_metadata(json!({"robot": i % 5, "level": level, "ts": 1000 + i}))
}

fn fill(c: &Collection, range: std::ops::Range<u64>) {
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(500) {
        c.upsert(&chunk.iter().map(|i| doc(*i)).collect::<Vec<_>>()).expect("upsert");
    }
}

fn open(path: &std::path::Path) -> (Database, Collection) {
    let db = Database::open(path).expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    (db, c)
}

fn ids_of(c: &Collection, filter: Option<&Filter>) -> Vec<String> {
    let mut out = Vec::new();
    for page in c.scroll(filter, ScrollOptions::default().with_page_size(97)).expect("scroll") {
        out.extend(page.expect("page").into_iter().map(|r| r.id));
    }
    out
}

#[test]
fn count_and_scroll_by_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open(&dir.path().join("db"));
    fill(&c, 0..2_500);
    let robot2 = Filter::eq("robot", 2);
    assert_eq!(c.count_where(Some(&robot2)).expect("count"), 500);
    assert_eq!(c.count_where(None).expect("count"), 2_500);
    let nothing = Filter::eq("robot", 99);
    assert_eq!(c.count_where(Some(&nothing)).expect("count"), 0);
    assert!(ids_of(&c, Some(&nothing)).is_empty());
    let everything = Filter::from_json_str("{}").expect("filter");
    assert_eq!(c.count_where(Some(&everything)).expect("count"), 2_500);

    // Insertion order, every match once.
    let got = ids_of(&c, Some(&robot2));
    let want: Vec<String> = (0..2_500u64).filter(|i| i % 5 == 2).map(|i| format!("d{i}")).collect();
    assert_eq!(got, want);

    // With vectors and metadata.
    let mut s =
        c.scroll(Some(&robot2), ScrollOptions::default().with_page_size(3).with_vectors(true));
    let page = s.as_mut().expect("scroll").next_page().expect("page").expect("a page");
    assert_eq!(page.len(), 3);
    assert_eq!(page[0].vector, vector(2));
    assert_eq!(page[0].metadata, json!({"robot": 2, "level": "DEBUG", "ts": 1002}));
    assert_eq!(page[0].text.as_deref(), Some("line 2"));
}

/// The scroll reads one snapshot: writes made while it runs (new documents, deletes and
/// replacements of documents not read yet) do not change what it returns.
#[test]
fn a_scroll_is_one_snapshot_while_writers_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open(&dir.path().join("db"));
    fill(&c, 0..3_000);
    let want: Vec<String> = (0..3_000u64).map(|i| format!("d{i}")).collect();
    let mut scroll = c.scroll(None, ScrollOptions::default().with_page_size(250)).expect("scroll");
    let mut got = Vec::new();
    let mut round = 0u64;
    while let Some(page) = scroll.next_page().expect("page") {
        got.extend(page.into_iter().map(|r| r.id));
        // Meanwhile: delete a document not read yet, replace another, add new ones.
        round += 1;
        let ahead = 2_999 - round;
        c.delete(&[format!("d{ahead}")]).expect("delete");
        c.upsert(&[doc(ahead - 100).with_text("replaced"), doc(10_000 + round)]).expect("upsert");
    }
    assert_eq!(got, want);
    // A new scroll sees the writes.
    assert_eq!(c.count().expect("count"), 3_000, "as many deleted as added");
}

#[test]
fn scroll_cursors_resume_and_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, c) = open(&dir.path().join("db"));
    fill(&c, 0..1_000);
    let opts = ScrollOptions::default().with_page_size(100);
    let mut s = c.scroll(None, opts).expect("scroll");
    let first = s.next_page().expect("page").expect("page");
    let cursor: ScrollCursor = s.cursor().to_string().parse().expect("cursor round trip");
    drop(s);
    fill(&c, 1_000..1_100); // written after the scroll began: not part of it
    let mut rest = Vec::new();
    for page in c.scroll_from(&cursor, None, opts).expect("resume") {
        rest.extend(page.expect("page").into_iter().map(|r| r.id));
    }
    assert_eq!(first.len() + rest.len(), 1_000);
    assert_eq!(rest.first().map(String::as_str), Some("d100"));
    assert_eq!(rest.last().map(String::as_str), Some("d999"));

    // A cursor of another collection, of a dropped and re-created one, garbage, page sizes.
    let other = db.create_collection("other", CollectionConfig::new(DIM)).expect("create");
    let invalid = |r: Result<akidb::Scroll, Error>| matches!(r, Err(Error::InvalidCursor { .. }));
    assert!(invalid(other.scroll_from(&cursor, None, opts)));
    db.drop_collection("logs").expect("drop");
    let again = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    assert!(invalid(again.scroll_from(&cursor, None, opts)));
    for bad in [
        "",
        "s1",
        "s1.zz.1.2.3",
        &format!("{cursor}x"),
        "s2.00000000000000000000000000000000.1.2.1",
    ] {
        assert!(matches!(bad.parse::<ScrollCursor>(), Err(Error::InvalidCursor { .. })), "{bad:?}");
    }
    for size in [0, akidb::limits::MAX_BATCH + 1] {
        let r = again.scroll(None, ScrollOptions::default().with_page_size(size));
        assert!(matches!(r, Err(Error::InvalidPageSize { .. })), "{size}");
    }
    assert!(matches!(c.count_where(None), Err(Error::CollectionNotFound { .. })));
}

#[test]
fn delete_where_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let (db, c) = open(&path);
    fill(&c, 0..3_500);
    let debug = Filter::eq("level", "DEBUG");
    assert_eq!(c.delete_where(&Filter::eq("robot", 99)).expect("nothing"), 0);
    let n = c.delete_where(&debug).expect("delete_where");
    assert_eq!(n, 2_100, "more than two chunks of {}", akidb::DELETE_CHUNK);
    assert_eq!(c.count().expect("count"), 1_400);
    assert_eq!(c.count_where(Some(&debug)).expect("count"), 0);
    assert_eq!(c.index_stats().expect("stats").live, 1_400);
    // Searches agree: no DEBUG line comes back.
    let hits = c.search(&vector(3), 50, None).expect("search");
    assert_eq!(hits.len(), 50);
    assert!(hits.iter().all(|h| h.metadata["level"] == "ERROR"));
    drop((c, db));
    let db = Database::open(&path).expect("reopen");
    let c = db.collection("logs").expect("collection");
    assert_eq!(c.count().expect("count"), 1_400);
    assert_eq!(c.index_stats().expect("stats").live, 1_400);
    let all = Filter::from_json_str("{}").expect("filter");
    assert_eq!(c.delete_where(&all).expect("all"), 1_400);
    assert_eq!(c.count().expect("count"), 0);
}

/// A clock the test moves.
#[derive(Debug, Default)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn at(clock: &TestClock, secs: u64) {
    clock.0.store(secs * 1000, Ordering::SeqCst);
}

#[test]
fn retention_by_insertion_time_never_deletes_newer_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock::default());
    let db = Database::builder()
        .with_clock(clock.clone())
        .with_retention_interval(Duration::from_secs(3600))
        .open(dir.path().join("db"))
        .expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    // 300 documents inserted at t = 1000 s, 300 at 2000 s, 300 at 3000 s.
    for (k, t) in [1000u64, 2000, 3000].into_iter().enumerate() {
        at(&clock, t);
        fill(&c, k as u64 * 300..(k as u64 + 1) * 300);
    }
    db.set_retention("logs", Some(Retention::max_age(Duration::from_secs(1500)))).expect("set");
    // (Setting a policy also queues a pass on the maintenance worker, which may run beside the
    // passes below: the counts after each call are what the policy asks, whoever deleted.)
    // At 3400 s the cut-off is 1900 s: only the first 300 are older.
    at(&clock, 3400);
    c.enforce_retention().expect("pass");
    assert_eq!(c.count().expect("count"), 600);
    // Exactly at the boundary nothing newer goes: at 3500 s the cut-off is 2000 s, and
    // documents inserted at 2000 s are not older than it.
    at(&clock, 3500);
    assert_eq!(c.enforce_retention().expect("pass").total(), 0);
    assert_eq!(c.count().expect("count"), 600);
    at(&clock, 3501);
    assert_eq!(c.enforce_retention().expect("pass").total(), 300);
    let left = ids_of(&c, None);
    assert_eq!(left, (600..900u64).map(|i| format!("d{i}")).collect::<Vec<_>>());
    // The policy is stored: a reopened database has it.
    drop((c, db));
    let db =
        Database::builder().with_clock(clock.clone()).open(dir.path().join("db")).expect("open");
    let c = db.collection("logs").expect("collection");
    assert_eq!(c.retention(), Some(Retention::max_age(Duration::from_secs(1500))));
}

/// Passes of a size rule racing each other and a `delete_where` of old documents: each pass
/// decides what must go from one snapshot, so together they never delete a document the
/// policy keeps (newer than the newest that had to go).
#[test]
fn concurrent_retention_passes_never_delete_what_the_policy_keeps() {
    for round in 0..3u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, c) = open(&dir.path().join("db"));
        fill(&c, 0..5_000);
        db.set_retention("logs", Some(Retention::keep_all().with_max_documents(2_000)))
            .expect("set");
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| c.enforce_retention().expect("pass"));
            }
            // Older documents deleted meanwhile: the size rule must not make up for them.
            s.spawn(|| c.delete_where(&Filter::lt("ts", 1_000 + 500 * (round + 1))));
        });
        let left = ids_of(&c, None);
        assert_eq!(left.len(), 2_000, "round {round}");
        assert_eq!(left[0], "d3000", "round {round}: the newest 2,000 stay");
    }
}

#[test]
fn retention_by_field_count_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock::default());
    let db = Database::builder()
        .with_clock(clock.clone())
        .with_retention_interval(Duration::from_secs(3600))
        .open(dir.path().join("db"))
        .expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    fill(&c, 0..1_000); // ts = 1000 + i
    c.upsert(&[
        Document::new("no-ts", vector(1)),
        Document::new("str-ts", vector(2)).with_metadata(json!({"ts": "yesterday"})),
    ])
    .expect("upsert");
    // By field: at 1600 s with an age of 100 s, ts < 1500 goes (i < 500).
    at(&clock, 1600);
    let policy = Retention::max_age(Duration::from_secs(100)).with_time_field("ts");
    db.set_retention("logs", Some(policy)).expect("set");
    // (The maintenance worker runs a pass too when a policy is set: counts, not reports.)
    c.enforce_retention().expect("pass");
    assert_eq!(c.count().expect("count"), 502);
    assert_eq!(c.count_where(Some(&Filter::lt("ts", 1500))).expect("count"), 0);
    assert_eq!(c.get(&["no-ts", "str-ts", "d500"]).expect("get").iter().flatten().count(), 3);
    // By count: keep the newest 300 (insertion order: d700..d999, no-ts, str-ts).
    db.set_retention("logs", Some(Retention::keep_all().with_max_documents(300))).expect("set");
    c.enforce_retention().expect("pass");
    let left = ids_of(&c, None);
    assert_eq!(left.len(), 300);
    assert_eq!(left[0], "d702");
    // By size: each document is about 90 bytes here; keep at most 9,000 bytes.
    db.set_retention("logs", Some(Retention::keep_all().with_max_bytes(9_000))).expect("set");
    c.enforce_retention().expect("pass");
    let left = ids_of(&c, None);
    assert!(left.len() > 80 && left.len() < 150, "{}", left.len());
    let bytes: usize = c
        .get(&left)
        .expect("get")
        .into_iter()
        .flatten()
        .map(|r| {
            r.id.len() + r.text.map_or(0, |t| t.len()) + r.metadata.to_string().len() + 4 * DIM
        })
        .sum();
    assert!(bytes <= 9_000 && bytes > 9_000 - 200, "{bytes} bytes kept");
    assert_eq!(left.last().map(String::as_str), Some("str-ts"), "the newest stay");
    // Bad policies.
    for bad in [Retention::keep_all(), Retention::keep_all().with_time_field("ts")] {
        assert!(matches!(db.set_retention("logs", Some(bad)), Err(Error::InvalidRetention { .. })));
    }
}

#[test]
fn the_maintenance_worker_enforces_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock::default());
    at(&clock, 1000);
    let db = Database::builder()
        .with_clock(clock.clone())
        .with_retention_interval(Duration::from_millis(50))
        .open(dir.path().join("db"))
        .expect("open");
    let config =
        CollectionConfig::new(DIM).with_retention(Retention::max_age(Duration::from_secs(60)));
    let c = db.create_collection("logs", config).expect("create");
    fill(&c, 0..1_200);
    at(&clock, 1030);
    fill(&c, 1_200..1_300);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.count().expect("count"), 1_300, "nothing is older than 60 s yet");
    at(&clock, 1061);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.count().expect("count") != 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.count().expect("count"), 100);
    assert_eq!(ids_of(&c, None).first().map(String::as_str), Some("d1200"));
    drop(c);
    drop(db); // joins the worker
}

/// A writer writes batches of 10 documents (one transaction each) while a backup runs: the
/// backup holds a prefix of whole batches, opens as a database, and answers searches.
#[test]
fn backup_of_a_live_database_is_one_point_in_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, c) = open(&dir.path().join("db"));
    fill(&c, 0..20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut batch = 0u64;
            while !stop.load(Ordering::Relaxed) && batch < 100_000 {
                let docs: Vec<Document> = (0..10)
                    .map(|j| {
                        Document::new(format!("b{batch}-{j}"), vector(batch * 10 + j))
                            .with_metadata(json!({"batch": batch}))
                    })
                    .collect();
                c.upsert(&docs).expect("upsert");
                batch += 1;
            }
            batch
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let target = dir.path().join("backup");
    let report = db.backup(&target).expect("backup");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(report.rows > 60_000, "{report:?}");
    let copy = Database::open(&target).expect("open the backup");
    let b = copy.collection("logs").expect("collection");
    let ids: HashSet<String> = ids_of(&b, None).into_iter().collect();
    let batches: BTreeSet<u64> =
        ids.iter().filter_map(|id| id.strip_prefix('b')?.split('-').next()?.parse().ok()).collect();
    let n = batches.len() as u64;
    assert!(n <= written);
    assert_eq!(batches, (0..n).collect(), "a prefix of the batches");
    for k in 0..n {
        assert!((0..10).all(|j| ids.contains(&format!("b{k}-{j}"))), "batch {k} whole");
    }
    assert_eq!(b.count().expect("count"), 20_000 + 10 * n);
    let hit = b.search(&vector(77), 1, None).expect("search");
    assert_eq!(
        b.get(&[hit[0].id.as_str()]).expect("get")[0].as_ref().map(|r| r.vector.clone()),
        c.get(&[hit[0].id.as_str()]).expect("get")[0].as_ref().map(|r| r.vector.clone())
    );

    // Bad targets: existing, inside the database directory.
    let refused = |r: Result<akidb::BackupReport, Error>| {
        matches!(r, Err(Error::Storage(StorageError::BackupTarget { .. })))
    };
    assert!(refused(db.backup(&target)));
    assert!(refused(db.backup(dir.path().join("db").join("inner"))));
}

/// Runs the ignored test `name` of this binary as a child process with `env`, and waits until
/// it prints READY. Returns the child and the rest of its output lines.
fn start_child(
    name: &str,
    env: &[(&str, &std::path::Path)],
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The harness prints the test's name on the same line as its first output.
    let ready = lines.find(|l| l.as_ref().is_ok_and(|l| l.ends_with("READY")));
    assert!(ready.is_some(), "{name} never got ready");
    (child, lines)
}

/// The backup child: opens the database, prints READY, backs it up to the given target, prints
/// DONE.
#[test]
#[ignore = "run as a child process by a_killed_backup_leaves_no_finished_looking_directory"]
fn backup_child() {
    let (Ok(db), Ok(target)) = (std::env::var("AKIDB_BACKUP_DB"), std::env::var("AKIDB_BACKUP_TO"))
    else {
        return;
    };
    let db = Database::open(&db).expect("child open");
    println!("READY");
    db.backup(&target).expect("backup");
    println!("DONE");
}

#[test]
fn a_killed_backup_leaves_no_finished_looking_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let (_db, c) = open(&path);
        fill(&c, 0..60_000);
    }
    let target = dir.path().join("copy");
    let mut killed_mid_way = 0;
    for (round, delay_ms) in [5u64, 20, 60, 150].into_iter().enumerate() {
        let (mut child, mut lines) = start_child(
            "backup_child",
            &[("AKIDB_BACKUP_DB", &path), ("AKIDB_BACKUP_TO", &target)],
        );
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let done = lines.any(|l| l.as_ref().is_ok_and(|l| l.ends_with("DONE")));
        if done {
            // It finished before the kill: a whole backup, which opens.
            Database::open(&target).expect("finished backup opens");
            std::fs::remove_dir_all(&target).expect("remove");
        } else {
            killed_mid_way += 1;
            assert!(!target.exists(), "round {round}: a killed backup left {target:?}");
        }
    }
    assert!(killed_mid_way >= 1, "no kill landed during a backup");
    // The next backup clears the partial leftovers and succeeds.
    let db = Database::open(&path).expect("open");
    db.backup(&target).expect("backup");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("akidb-partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let copy = Database::open(&target).expect("open the backup");
    assert_eq!(copy.collection("logs").expect("collection").count().expect("count"), 60_000);
}

#[test]
fn compaction_gives_space_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, c) = open(&dir.path().join("db"));
    let big = "x".repeat(2_000);
    let ids: Vec<u64> = (0..10_000).collect();
    for chunk in ids.chunks(500) {
        let docs: Vec<Document> = chunk.iter().map(|i| doc(*i).with_text(big.clone())).collect();
        c.upsert(&docs).expect("upsert");
    }
    assert_eq!(c.delete_where(&Filter::lt("ts", 10_000)).expect("delete"), 9_000);
    let report = db.compact().expect("compact");
    assert!(
        report.bytes_after * 3 < report.bytes_before,
        "{} -> {} bytes",
        report.bytes_before,
        report.bytes_after
    );
    assert_eq!(c.count().expect("count"), 1_000);
    c.upsert(&[doc(20_000)]).expect("writes go on");
    assert!(c.get(&["d20000"]).expect("get")[0].is_some());
    let hit = &c.search(&vector(20_000), 1, None).expect("search")[0];
    assert_eq!(hit.score, 1.0, "an identical vector is found"); // d20000 and d9009 are equal
}

/// A document with awkward values: unicode, escapes, tiny and large components, nested
/// metadata, an integer beyond 2^53.
fn odd_document() -> Document {
    Document::new("odd", vec![1e-12, -3.4e12, 0.1, 1.0 / 3.0, 7.0, 8.0, 9.0, 1e-7])
        .with_text("ロボット \"quoted\"\n\ttab \u{1F916}")
        .with_metadata(json!({"a": {"b": [1, 2.5, null, true]}, "big": 9007199254740993u64}))
}

/// `b` holds exactly `a`'s documents (vectors bit for bit) and answers searches, filtered and
/// not, with the same hits and scores.
fn assert_same_contents(a: &Collection, b: &Collection) {
    assert_eq!(a.count().expect("count"), b.count().expect("count"));
    let ids = ids_of(a, None);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for chunk in ids.chunks(500) {
        for (x, y) in a.get(chunk).expect("get").iter().zip(b.get(chunk).expect("get")) {
            let (x, y) = (x.as_ref().expect("a"), y.expect("b"));
            assert_eq!((&x.id, &x.text, &x.metadata), (&y.id, &y.text, &y.metadata));
            assert_eq!(bits(&x.vector), bits(&y.vector), "{}", x.id);
        }
    }
    let key =
        |h: Vec<akidb::Hit>| h.into_iter().map(|h| (h.id, h.score.to_bits())).collect::<Vec<_>>();
    for q in 0..25u64 {
        let f = (q < 20).then(|| Filter::eq("robot", q % 5));
        let search =
            |c: &Collection| key(c.search(&vector(q * 31), 10, f.as_ref()).expect("search"));
        assert_eq!(search(a), search(b));
    }
}

#[test]
fn export_import_round_trip_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open(&dir.path().join("db"));
    fill(&c, 0..2_000);
    c.upsert(&[odd_document()]).expect("upsert");
    let file = dir.path().join("logs.jsonl");
    assert_eq!(c.export_jsonl(&file, None).expect("export"), 2_001);
    assert!(matches!(c.export_jsonl(&file, None), Err(Error::Io { .. })), "exists");

    let (_db2, d) = open(&dir.path().join("db2"));
    let report = d.import_jsonl(&file).expect("import");
    assert_eq!(report.documents, 2_001);
    assert_eq!(d.import_jsonl(&file).expect("again").documents, 2_001, "idempotent");
    assert_eq!(d.count().expect("count"), 2_001);
    assert_same_contents(&c, &d);
}

#[test]
fn bad_imports_are_typed_errors_and_keep_what_came_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open(&dir.path().join("db"));
    fill(&c, 0..1_200);
    let file = dir.path().join("x.jsonl");
    c.export_jsonl(&file, None).expect("export");
    let text = std::fs::read_to_string(&file).expect("read");
    let (_db2, d) = open(&dir.path().join("db2"));
    let import = |s: &str| d.import_jsonl_from(&mut s.as_bytes());
    let line_error = |r: Result<akidb::ImportReport, Error>| match r {
        Err(Error::Import { line, .. }) => line,
        other => panic!("expected an import error, got {other:?}"),
    };
    assert_eq!(line_error(import("")), 1);
    assert_eq!(line_error(import("{\"id\":\"a\"}\n")), 1, "no header");
    // Truncated in the middle of line 1,002 (document 1,001): the first two batches are in.
    let cut = text.lines().take(1_001).map(|l| format!("{l}\n")).collect::<String>()
        + &text.lines().nth(1_001).expect("line")[..20];
    assert_eq!(line_error(import(&cut)), 1_002);
    assert_eq!(d.count().expect("count"), 1_000);
    // Wrong dimension in the header, and in one line.
    let header = text.lines().next().expect("header");
    let wrong = header.replace("\"dimension\":8", "\"dimension\":9");
    assert_eq!(line_error(import(&format!("{wrong}\n"))), 1);
    let short = format!("{header}\n{{\"id\":\"z\",\"vector\":[1.0,2.0]}}\n");
    assert_eq!(line_error(import(&short)), 2);
    // Unknown fields, a non-object metadata.
    let extra = format!("{header}\n{{\"id\":\"z\",\"vector\":[1,1,1,1,1,1,1,1],\"x\":1}}\n");
    assert_eq!(line_error(import(&extra)), 2);
    let meta = format!("{header}\n{{\"id\":\"z\",\"vector\":[1,1,1,1,1,1,1,1],\"metadata\":3}}\n");
    assert!(matches!(import(&meta), Err(Error::MetadataNotObject { .. })));
    assert!(matches!(c.import_jsonl(dir.path().join("missing.jsonl")), Err(Error::Io { .. })));
}

/// The delete-by-filter child: deletes every DEBUG line of the database, printing READY first.
#[test]
#[ignore = "run as a child process by a_killed_delete_where_leaves_whole_chunks"]
fn delete_where_child() {
    let Ok(db) = std::env::var("AKIDB_DELETE_DB") else { return };
    let db = Database::open(&db).expect("child open");
    let c = db.collection("logs").expect("collection");
    println!("READY");
    c.delete_where(&Filter::eq("level", "DEBUG")).expect("delete_where");
    println!("DONE");
}

/// SIGKILL during `delete_where`: the documents deleted are always the first whole chunks of
/// the matches in insertion order, and nothing else.
#[test]
fn a_killed_delete_where_leaves_whole_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let n = 12_000u64; // 7,200 DEBUG lines: 8 chunks
    let mut partial = 0;
    // Round 0 runs to the end and times the delete; the others kill it at fractions of that.
    let mut took = Duration::ZERO;
    for (round, fraction) in
        [None, Some(0.2), Some(0.4), Some(0.6), Some(0.8)].into_iter().enumerate()
    {
        let _ = std::fs::remove_dir_all(&path);
        {
            let (_db, c) = open(&path);
            fill(&c, 0..n);
        }
        let (mut child, mut lines) =
            start_child("delete_where_child", &[("AKIDB_DELETE_DB", &path)]);
        let started = Instant::now();
        match fraction {
            None => {
                assert!(lines.any(|l| l.as_ref().is_ok_and(|l| l.ends_with("DONE"))));
                took = started.elapsed();
            }
            Some(f) => std::thread::sleep(took.mul_f64(f)),
        }
        child.kill().expect("kill");
        child.wait().expect("wait");
        let db = Database::open(&path).expect("reopen");
        let c = db.collection("logs").expect("collection");
        let left: HashSet<String> = ids_of(&c, None).into_iter().collect();
        let debug: Vec<u64> = (0..n).filter(|i| i % 5 < 3).collect();
        let gone: Vec<u64> =
            debug.iter().copied().filter(|i| !left.contains(&format!("d{i}"))).collect();
        assert_eq!(gone, debug[..gone.len()], "round {round}: the first matches, in order");
        assert!(
            gone.len().is_multiple_of(akidb::DELETE_CHUNK) || gone.len() == debug.len(),
            "round {round}: {} deleted is not whole chunks",
            gone.len()
        );
        assert!((0..n).filter(|i| i % 5 >= 3).all(|i| left.contains(&format!("d{i}"))));
        assert_eq!(c.index_stats().expect("stats").live as u64, c.count().expect("count"));
        if !gone.is_empty() && gone.len() < debug.len() {
            partial += 1;
        }
    }
    assert!(partial >= 1, "no kill landed between chunks (a whole delete took {took:?})");
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_round_trip_and_bad_files() {
    use std::sync::Arc as A;

    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, c) = open(&dir.path().join("db"));
    fill(&c, 0..2_500);
    c.upsert(&[odd_document()]).expect("upsert");
    let file = dir.path().join("logs.parquet");
    assert_eq!(c.export_parquet(&file, None).expect("export"), 2_501);
    assert!(matches!(c.export_parquet(&file, None), Err(Error::Io { .. })), "exists");
    let robot3 = dir.path().join("robot3.parquet");
    assert_eq!(c.export_parquet(&robot3, Some(&Filter::eq("robot", 3))).expect("export"), 500);

    let (_db2, d) = open(&dir.path().join("db2"));
    assert_eq!(d.import_parquet(&file).expect("import").documents, 2_501);
    assert_eq!(d.import_parquet(&file).expect("again").documents, 2_501, "idempotent");
    assert_same_contents(&c, &d);

    // Another collection's dimension; a file without the header; other columns; not Parquet.
    let wide = db.create_collection("wide", CollectionConfig::new(DIM + 1)).expect("create");
    assert!(matches!(wide.import_parquet(&file), Err(Error::Import { line: 1, .. })));
    let foreign = dir.path().join("foreign.parquet");
    {
        let schema = A::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("vec", DataType::Float64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            A::new(StringArray::from(vec!["a", "b"])),
            A::new(Float64Array::from(vec![1.0, 2.0])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let f = std::fs::File::create(&foreign).expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(f, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }
    assert!(matches!(d.import_parquet(&foreign), Err(Error::Import { line: 1, .. })));
    let jsonl = dir.path().join("x.jsonl");
    c.export_jsonl(&jsonl, None).expect("export");
    assert!(matches!(d.import_parquet(&jsonl), Err(Error::Import { line: 1, .. })));
    // A truncated Parquet file.
    let bytes = std::fs::read(&robot3).expect("read");
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert!(matches!(d.import_parquet(&cut), Err(Error::Import { .. })));
    assert_eq!(d.count().expect("count"), 2_501, "nothing lost");
}

/// A backup carries each collection's saved index generation (re-identified for the copy):
/// the copy loads its graph, replaying what is newer, instead of rebuilding it.
#[test]
fn a_backup_carries_its_index_generations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, c) = open(&dir.path().join("db"));
    fill(&c, 0..12_000); // above the exact-scan size: a graph
    c.save_index().expect("save");
    fill(&c, 12_000..12_300); // newer than the generation: replayed in the copy
    let target = dir.path().join("backup");
    db.backup(&target).expect("backup");
    assert!(target.join("index").join("c1").read_dir().expect("index copied").count() >= 1);
    let copy = Database::open(&target).expect("open");
    let b = copy.collection("logs").expect("collection");
    let stats = b.index_stats().expect("stats");
    assert_eq!(stats.live, 12_300);
    assert_eq!(stats.unsaved_changes, 300, "loaded and replayed 300, not rebuilt (12,300)");
    let q = vector(12_299);
    assert_eq!(b.search(&q, 1, None).expect("search")[0].score, 1.0);
    // The original's generation is untouched and still its own.
    drop((b, copy));
    drop((c, db));
    let db = Database::open(dir.path().join("db")).expect("reopen");
    let c = db.collection("logs").expect("collection");
    assert_eq!(c.index_stats().expect("stats").unsaved_changes, 0);
}

/// A filter that fails validation (a list over the limit) is a typed error on every call that
/// takes one, and deletes nothing.
#[test]
fn invalid_filters_are_refused_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, c) = open(&dir.path().join("db"));
    fill(&c, 0..100);
    let too_long =
        Filter::is_in("robot", (0..=akidb::limits::MAX_FILTER_VALUES as u64).collect::<Vec<_>>());
    let refused = |r: Result<(), Error>| matches!(r, Err(Error::Filter(_)));
    assert!(refused(c.count_where(Some(&too_long)).map(drop)));
    assert!(refused(c.scroll(Some(&too_long), ScrollOptions::default()).map(drop)));
    assert!(refused(c.delete_where(&too_long).map(drop)));
    let file = dir.path().join("x.jsonl");
    assert!(refused(c.export_jsonl(&file, Some(&too_long)).map(drop)));
    assert!(!file.exists(), "no file for a refused export");
    assert_eq!(c.count().expect("count"), 100);
}
