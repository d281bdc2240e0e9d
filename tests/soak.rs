//! Concurrency soak: OS threads and tokio tasks mix upserts, deletes, vector and text searches,
//! text inserts, index saves and `optimize()` on the same collections for a bounded time.
//! Checked: no deadlock (a watchdog), no panic, every read sees one committed state (a group of
//! documents written in one transaction is never seen half old, half new, through `get` or
//! through a filtered search), and the final counts equal what the writers acknowledged.
//!
//! Short form in the suite (8 s); run long with
//! `AKIDB_SOAK_SECS=300 cargo test --release --test soak -- --nocapture`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akidb::{
    AsyncCollection, Collection, CollectionConfig, Database, Document, Filter,
    OnnxEmbeddingProvider, TextDocument,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 24;
/// Documents per group: one group is always written or deleted in one transaction.
const GROUP: usize = 6;
/// Groups per writer.
const GROUPS: u64 = 150;
const WRITERS: u64 = 2;
/// Base documents, enough for an HNSW graph.
const BASE: usize = akidb::index::EXACT_BELOW + 200;

fn group_ids(writer: u64, g: u64) -> Vec<String> {
    (0..GROUP).map(|j| format!("w{writer}-g{g}-{j}")).collect()
}

fn group_docs(writer: u64, g: u64, version: u64) -> Vec<Document> {
    let mut rng = StdRng::seed_from_u64(writer << 48 ^ g << 24 ^ version);
    group_ids(writer, g)
        .into_iter()
        .map(|id| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            Document::new(id, v)
                .with_metadata(json!({"group": format!("w{writer}-g{g}"), "version": version}))
        })
        .collect()
}

/// One committed state of a group as seen by a read: `None` (absent) or one version for all.
fn one_state(versions: &[Option<u64>]) -> Result<Option<u64>, String> {
    let first = versions[0];
    if versions.iter().all(|v| *v == first) {
        Ok(first)
    } else {
        Err(format!("a group seen half written: {versions:?}"))
    }
}

#[test]
fn soak_mixed_operations_stay_consistent() {
    let secs: u64 = std::env::var("AKIDB_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    let c = db.create_collection("s", CollectionConfig::new(DIM)).expect("create");
    let mut rng = StdRng::seed_from_u64(7);
    let base: Vec<Document> = (0..BASE)
        .map(|i| {
            Document::new(format!("b{i}"), (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
        })
        .collect();
    c.upsert(&base).expect("base");
    let model = Arc::new(
        OnnxEmbeddingProvider::from_dir(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen3-tiny"),
        )
        .expect("tiny Qwen3"),
    );
    let t = db.text_collection("t", model).expect("text collection");

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let optimizes = Arc::new(AtomicU64::new(0));
    let text_ops = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);

    // Writers: each owns its groups; the final state they acknowledged is what counts must show.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (c, stop, writes) = (c.clone(), stop.clone(), writes.clone());
        writers.push(std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(100 + w);
            let mut state: HashMap<u64, u64> = HashMap::new();
            let mut version = 0;
            while !stop.load(Ordering::Relaxed) {
                let g = rng.gen_range(0..GROUPS);
                if rng.gen_bool(0.25) {
                    c.delete(&group_ids(w, g)).expect("delete group");
                    state.remove(&g);
                } else {
                    version += 1;
                    c.upsert(&group_docs(w, g, version)).expect("upsert group");
                    state.insert(g, version);
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
            state
        }));
    }

    // Readers: `get` and filtered searches of whole groups must see one committed state.
    let check_group = |c: &Collection, w: u64, g: u64| -> Result<(), String> {
        let got = c.get(&group_ids(w, g)).map_err(|e| e.to_string())?;
        let versions: Vec<Option<u64>> = got
            .iter()
            .map(|r| r.as_ref().map(|r| r.metadata["version"].as_u64().expect("version")))
            .collect();
        one_state(&versions)?;
        let q: Vec<f32> = vec![0.5; DIM];
        let hits = c
            .search(&q, GROUP * 2, Some(&Filter::eq("group", format!("w{w}-g{g}"))))
            .map_err(|e| e.to_string())?;
        if !hits.is_empty() && hits.len() != GROUP {
            return Err(format!("filtered search saw {} of a group of {GROUP}", hits.len()));
        }
        let versions: Vec<Option<u64>> =
            hits.iter().map(|h| h.metadata["version"].as_u64()).collect();
        if !versions.is_empty() {
            one_state(&versions)?;
        }
        Ok(())
    };
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (c, stop, reads) = (c.clone(), stop.clone(), reads.clone());
        readers.push(std::thread::spawn(move || -> Result<(), String> {
            let mut rng = StdRng::seed_from_u64(200 + r);
            while !stop.load(Ordering::Relaxed) {
                check_group(&c, rng.gen_range(0..WRITERS), rng.gen_range(0..GROUPS))?;
                let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                let hits = c.search(&q, 10, None).map_err(|e| e.to_string())?;
                if hits.len() != 10 {
                    return Err(format!("an unfiltered search returned {} hits", hits.len()));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }

    // Optimize and save in a loop, as a maintenance thread would.
    let maintenance = {
        let (c, stop, optimizes) = (c.clone(), stop.clone(), optimizes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                c.optimize().expect("optimize");
                c.save_index().expect("save");
                optimizes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Tokio tasks: text inserts and text queries (micro-batched), vector reads through the async
    // API.
    let added: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let tasks = {
        let (stop, text_ops, added) = (stop.clone(), text_ops.clone(), added.clone());
        let (at, ac) = (AsyncCollection::from(t.clone()), AsyncCollection::from(c.clone()));
        runtime.spawn(async move {
            let mut handles = Vec::new();
            for task in 0..8u64 {
                let (at, ac, stop, text_ops, added) =
                    (at.clone(), ac.clone(), stop.clone(), text_ops.clone(), added.clone());
                handles.push(tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        match task % 4 {
                            0 => {
                                let id = format!("task{task}-{i}");
                                let text = format!(
                                    "robot {task} log line {i}: lidar timeout near dock {}",
                                    i % 7
                                );
                                at.add_texts(vec![TextDocument::new(id.clone(), text)
                                    .with_metadata(json!({"task": task}))])
                                    .await
                                    .expect("add_texts");
                                added.lock().expect("lock").insert(id);
                            }
                            1 | 2 => {
                                let hits = at
                                    .query_text(format!("why did robot {task} stop?"), 5, None)
                                    .await
                                    .expect("query_text");
                                assert!(hits.len() <= 5);
                            }
                            _ => {
                                let hits = ac
                                    .search(vec![0.25; DIM], 5, None)
                                    .await
                                    .expect("async search");
                                assert_eq!(hits.len(), 5);
                            }
                        }
                        text_ops.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for h in handles {
                h.await.expect("task panicked");
            }
        })
    };

    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);

    // Watchdog: everything must wind down promptly once asked; a deadlock shows up here.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let joiner = std::thread::spawn(move || {
        let states: Vec<HashMap<u64, u64>> =
            writers.into_iter().map(|h| h.join().expect("writer panicked")).collect();
        let read_results: Vec<Result<(), String>> =
            readers.into_iter().map(|h| h.join().expect("reader panicked")).collect();
        maintenance.join().expect("maintenance panicked");
        runtime.block_on(tasks).expect("tokio tasks panicked");
        let _ = done_tx.send((states, read_results));
    });
    let (states, read_results) =
        done_rx.recv_timeout(Duration::from_secs(120)).expect("deadlock: workers did not stop");
    joiner.join().expect("joiner");
    for r in read_results {
        r.expect("inconsistent read");
    }

    // Final counts equal what the writers acknowledged; the index agrees with storage.
    let live_groups: usize = states.iter().map(HashMap::len).sum();
    assert_eq!(c.count().expect("count") as usize, BASE + live_groups * GROUP);
    assert_eq!(c.index_stats().expect("stats").live as u64, c.count().expect("count"));
    for (w, state) in states.iter().enumerate() {
        for g in 0..GROUPS {
            let got = c.get(&group_ids(w as u64, g)).expect("get");
            let want = state.get(&g).copied();
            let seen: Vec<Option<u64>> = got
                .iter()
                .map(|r| r.as_ref().and_then(|r| r.metadata["version"].as_u64()))
                .collect();
            assert_eq!(one_state(&seen), Ok(want), "writer {w} group {g}");
        }
    }
    let added = added.lock().expect("lock").len();
    assert_eq!(t.count().expect("text count") as usize, added);
    eprintln!(
        "soak {secs} s: {} group writes, {} consistent reads, {} optimize+save rounds, {} async \
         text/search ops; final {} documents, {added} texts",
        writes.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
        optimizes.load(Ordering::Relaxed),
        text_ops.load(Ordering::Relaxed),
        c.count().expect("count"),
    );
    assert!(optimizes.load(Ordering::Relaxed) >= 1 && reads.load(Ordering::Relaxed) >= 10);
}
