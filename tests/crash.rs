//! Crash consistency: a child process upserting and deleting in batches is killed with SIGKILL at
//! random moments; after each kill the database must open, hold every acknowledged batch in full,
//! and show no trace of a partial batch.
//!
//! Short form in the suite (`CRASH_KILLS`, default 24 kills); run longer with
//! `AKIDB_CRASH_KILLS=500 cargo test --release --test crash`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use akidb::{CollectionConfig, Database, Document};
use rand::{Rng, SeedableRng};
use serde_json::json;

const DOCS_PER_BATCH: usize = 20;
const DIM: usize = 8;

fn vector(run: u64, batch: u64, j: usize) -> Vec<f32> {
    (0..DIM).map(|d| 1.0 + (run * 1000 + batch * 10 + j as u64 + d as u64) as f32 * 0.001).collect()
}

fn id(run: u64, batch: u64, j: usize) -> String {
    format!("r{run}-b{batch}-{j}")
}

/// The writer, run as a child process. Batch `b` of run `r` upserts `DOCS_PER_BATCH` documents and
/// the shared `head` document, and deletes document 0 of batch `b - 1`: one transaction.
#[test]
#[ignore = "run as a child process by sigkill_during_writes_loses_nothing_acknowledged"]
fn crash_child_writer() {
    let (Ok(path), Ok(run)) = (std::env::var("AKIDB_CRASH_DB"), std::env::var("AKIDB_CRASH_RUN"))
    else {
        return;
    };
    let run: u64 = run.parse().expect("run");
    let db = Database::open(&path).expect("child open");
    let c = match db.collection("c") {
        Ok(c) => c,
        Err(_) => db.create_collection("c", CollectionConfig::new(DIM)).expect("create"),
    };
    for batch in 0u64.. {
        let mut docs: Vec<Document> = (0..DOCS_PER_BATCH)
            .map(|j| {
                Document::new(id(run, batch, j), vector(run, batch, j))
                    .with_text(format!("run {run} batch {batch} doc {j}"))
                    .with_metadata(json!({"run": run, "batch": batch, "j": j}))
            })
            .collect();
        docs.push(
            Document::new("head", vec![1.0; DIM])
                .with_metadata(json!({"run": run, "batch": batch})),
        );
        c.upsert(&docs).expect("upsert");
        if batch > 0 {
            c.delete(&[id(run, batch - 1, 0)]).expect("delete");
        }
        println!("ACK {run} {batch}");
    }
}

#[test]
fn sigkill_during_writes_loses_nothing_acknowledged() {
    let kills: u64 =
        std::env::var("AKIDB_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xA11D);
    let mut verified_batches = 0u64;
    let mut mid_write_kills = 0u64;
    for run in 0..kills {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "crash_child_writer", "--ignored", "--nocapture", "--test-threads=1"])
            .env("AKIDB_CRASH_DB", &path)
            .env("AKIDB_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut acked: Option<u64> = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let b: u64 = rest.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("ack");
                    acked = Some(b);
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        child.kill().expect("SIGKILL"); // SIGKILL on Unix
        let status = child.wait().expect("wait");
        let acked = reader.join().expect("reader");
        if status.code().is_none() {
            mid_write_kills += 1;
        }

        let db = Database::open(&path).expect("open after kill");
        let Ok(c) = db.collection("c") else {
            assert!(acked.is_none(), "acknowledged writes but no collection");
            continue;
        };
        // The last committed batch of this run: the head document names it.
        let head = c.get(&["head"]).expect("get head")[0].clone();
        let committed = head
            .as_ref()
            .filter(|h| h.metadata["run"] == json!(run))
            .map(|h| h.metadata["batch"].as_u64().expect("batch"));
        if let Some(a) = acked {
            let cm = committed.expect("acknowledged batch missing");
            // Everything acknowledged is there; at most the one batch in flight (and its delete)
            // went further than the acknowledgement.
            assert!(cm >= a && cm <= a + 1, "run {run}: acked {a}, committed {cm}");
        }
        let last = committed.map_or(0, |c| c + 1);
        // Every committed batch is whole; nothing beyond the last committed batch exists.
        for b in 0..last + 1 {
            let ids: Vec<String> = (0..DOCS_PER_BATCH).map(|j| id(run, b, j)).collect();
            let got = c.get(&ids).expect("get");
            if b >= last {
                assert!(
                    got.iter().all(Option::is_none),
                    "run {run}: uncommitted batch {b} visible"
                );
                continue;
            }
            for (j, g) in got.iter().enumerate() {
                if j == 0 && b + 1 < last {
                    continue; // deleted by batch b+1, or not yet if b+1's delete was in flight
                }
                let r =
                    g.as_ref().unwrap_or_else(|| panic!("run {run}: batch {b} doc {j} missing"));
                assert_eq!(r.vector, vector(run, b, j));
                assert_eq!(r.metadata["batch"], json!(b));
            }
            if b + 2 < last {
                assert!(got[0].is_none(), "run {run}: delete of batch {b} doc 0 lost");
            }
            verified_batches += 1;
        }
        // The in-memory index rebuilt from redb agrees with storage.
        let hits = c.search(&[1.0; DIM], 10, None).expect("search");
        assert!(!hits.is_empty());
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert!(c.get(&ids).expect("get hits").iter().all(Option::is_some));
    }
    eprintln!(
        "crash test: {kills} kills ({mid_write_kills} while running), {verified_batches} batches \
         verified"
    );
    assert!(kills < 20 || mid_write_kills >= 20, "too few kills landed mid-run: {mid_write_kills}");
}
