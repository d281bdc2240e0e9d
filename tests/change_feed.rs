//! The change feed (`Collection::changes_since`) on real redb files: a consumer that applies
//! every page holds exactly the collection, across restarts, deletes by filter and retention;
//! pruned positions and positions of another collection or history are typed errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use akidb::{
    Change, ChangePosition, Clock, Collection, CollectionConfig, Database, Document, Error, Filter,
    ScrollOptions, MAX_CHANGES_PER_PAGE,
};
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 4;

#[derive(Debug)]
struct TestClock(AtomicU64);
impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

type Row = (Option<String>, serde_json::Value, Vec<f32>);

/// What a consumer of the feed holds: id -> (text, metadata, vector).
#[derive(Default)]
struct Replica {
    rows: BTreeMap<String, Row>,
    pages: usize,
}

impl Replica {
    /// Reads the feed from `from` to its end in pages of `limit`; returns where it stopped.
    fn follow(&mut self, c: &Collection, from: ChangePosition, limit: usize) -> ChangePosition {
        let mut pos = from;
        loop {
            let page = c.changes_since(&pos, limit).expect("changes");
            assert!(page.changes.len() <= limit);
            let mut last = pos.seq();
            for ch in page.changes {
                assert!(ch.seq() > last, "commit order");
                last = ch.seq();
                match ch {
                    Change::Upsert { document: d, .. } => {
                        self.rows.insert(d.id, (d.text, d.metadata, d.vector));
                    }
                    Change::Delete { id, .. } => {
                        self.rows.remove(&id);
                    }
                    other => panic!("unknown change {other:?}"),
                }
            }
            self.pages += 1;
            pos = page.position;
            if page.caught_up {
                return pos;
            }
        }
    }
}

fn contents(c: &Collection) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    let options = ScrollOptions::default().with_page_size(500).with_vectors(true);
    for page in c.scroll(None, options).expect("scroll") {
        for r in page.expect("page") {
            out.insert(r.id, (r.text, r.metadata, r.vector));
        }
    }
    out
}

fn doc(rng: &mut rand::rngs::StdRng, id: u64, version: u64) -> Document {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(0.1f32..1.0)).collect();
    Document::new(format!("d{id}"), v)
        .with_text(format!("line {id} version {version}"))
        .with_metadata(json!({"robot": id % 4, "version": version}))
}

fn open(path: &std::path::Path, clock: &Arc<TestClock>) -> (Database, Collection) {
    let db = Database::builder().with_clock(clock.clone()).open(path).expect("open");
    let c = match db.collection("logs") {
        Ok(c) => c,
        Err(_) => db.create_collection("logs", CollectionConfig::new(DIM)).expect("create"),
    };
    (db, c)
}

#[test]
fn a_consumer_of_every_page_holds_exactly_the_collection_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut replica = Replica::default();
    let mut saved = None::<String>;
    for round in 0..6u64 {
        let (db, c) = open(&path, &clock);
        let mut pos = match &saved {
            Some(s) => s.parse::<ChangePosition>().expect("stored position"),
            None => c.change_start(),
        };
        for step in 0..8u64 {
            // Inserts, replacements, deletes by id and by filter, interleaved with reading.
            let docs: Vec<Document> = (0..40)
                .map(|_| {
                    let id = rng.gen_range(0..150);
                    doc(&mut rng, id, round * 100 + step)
                })
                .collect();
            c.upsert(&docs).expect("upsert");
            let gone: Vec<String> =
                (0..10).map(|_| format!("d{}", rng.gen_range(0..150))).collect();
            c.delete(&gone.iter().map(String::as_str).collect::<Vec<_>>()).expect("delete");
            if step == 5 {
                c.delete_where(&Filter::eq("robot", round % 4)).expect("delete_where");
            }
            clock.0.fetch_add(1_000, Ordering::SeqCst);
            pos = replica.follow(&c, pos, [1, 7, 64, MAX_CHANGES_PER_PAGE][step as usize % 4]);
            assert_eq!(replica.rows, contents(&c), "round {round} step {step}");
        }
        saved = Some(pos.to_string());
        drop(c);
        drop(db);
    }
    assert!(replica.pages > 50, "{} pages", replica.pages);
    // A second consumer from the start agrees with the first.
    let (_db, c) = open(&path, &clock);
    let mut fresh = Replica::default();
    fresh.follow(&c, c.change_start(), 1000);
    assert_eq!(fresh.rows, replica.rows);
}

#[test]
fn pruned_positions_and_foreign_positions_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000)));
    let (db, c) = open(&dir.path().join("db"), &clock);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    c.upsert(&(0..20).map(|i| doc(&mut rng, i, 0)).collect::<Vec<_>>()).expect("upsert");
    let mut early = Replica::default();
    let early_pos = early.follow(&c, c.change_start(), 100);
    c.delete(&["d1", "d2"]).expect("delete");
    // Eight days later, more deletes; optimize prunes the records older than the feed keeps.
    clock.0.fetch_add(8 * 24 * 3600 * 1000, Ordering::SeqCst);
    c.delete(&["d3"]).expect("delete");
    let recent = c.changes_since(&early_pos, 100).expect("not pruned yet");
    assert_eq!(recent.changes.len(), 3);
    c.optimize().expect("optimize");
    match c.changes_since(&early_pos, 100) {
        Err(e @ Error::ChangesPruned { .. }) => assert_eq!(e.code(), "changes_pruned"),
        other => panic!("expected ChangesPruned, got {other:?}"),
    }
    // Starting again from the start gives the whole collection (d1 and d2 are simply absent).
    let mut again = Replica::default();
    again.follow(&c, c.change_start(), 100);
    assert_eq!(again.rows, contents(&c));
    assert_eq!(again.rows.len(), 17);
    // Explicit pruning by age.
    clock.0.fetch_add(60_000, Ordering::SeqCst);
    assert_eq!(c.prune_changes(Duration::from_secs(30)).expect("prune"), 1, "d3's record");

    // Another collection's position, garbage, a bad page size.
    let other = db.create_collection("other", CollectionConfig::new(DIM)).expect("create");
    for bad in [
        other.changes_since(&c.change_start(), 10),
        c.changes_since(&"f1.zz".parse().unwrap_or(c.change_start()), 0),
    ] {
        match bad {
            Err(Error::InvalidPosition { .. } | Error::InvalidPageSize { .. }) => {}
            other => panic!("expected a typed error, got {other:?}"),
        }
    }
    assert!(matches!("f1.zz".parse::<ChangePosition>(), Err(Error::InvalidPosition { .. })));
    assert!(matches!(
        c.changes_since(&c.change_start(), MAX_CHANGES_PER_PAGE + 1),
        Err(Error::InvalidPageSize { .. })
    ));
}

#[test]
fn a_position_from_a_later_history_is_refused_after_an_older_copy_is_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000)));
    let path = dir.path().join("db");
    let copy = dir.path().join("copy.redb");
    let file = path.join("akidb.redb");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    {
        let (_db, c) = open(&path, &clock);
        c.upsert(&(0..10).map(|i| doc(&mut rng, i, 0)).collect::<Vec<_>>()).expect("upsert");
    }
    // A copy of the closed file: the same database (same identity), an older history.
    std::fs::copy(&file, &copy).expect("copy");
    let later = {
        let (_db, c) = open(&path, &clock);
        c.upsert(&(10..20).map(|i| doc(&mut rng, i, 0)).collect::<Vec<_>>()).expect("upsert");
        let mut r = Replica::default();
        r.follow(&c, c.change_start(), 100)
    };
    std::fs::copy(&copy, &file).expect("restore the older copy");
    let (_db, c) = open(&path, &clock);
    match c.changes_since(&later, 10) {
        Err(Error::InvalidPosition { reason }) => assert!(reason.contains("history"), "{reason}"),
        other => panic!("expected InvalidPosition, got {other:?}"),
    }
}
