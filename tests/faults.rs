//! I/O faults: a write that cannot reach the disk fails with a typed error, loses nothing that was
//! acknowledged, and writes succeed again once space returns.
//!
//! "Disk full" without privileges: the child process caps its own file size (RLIMIT_FSIZE) and
//! ignores SIGXFSZ, so redb's writes past the cap fail with EFBIG, as they would on a full disk.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use akidb::{CollectionConfig, Database, Document, Error};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 64;

fn batch(round: usize) -> Vec<Document> {
    (0..200)
        .map(|i| {
            // Distinct directions (the old `(n + d) % 97` pattern repeated every 97 documents, so
            // the nearest neighbour of r0-0 was a tie the graph could break either way).
            let mut rng = StdRng::seed_from_u64((round * 200 + i) as u64);
            Document::new(
                format!("r{round}-{i}"),
                (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
            )
            .with_text("x".repeat(1024))
            .with_metadata(json!({"round": round}))
        })
        .collect()
}

fn set_file_size_cap(cap: u64) {
    #[allow(unsafe_code)]
    // SAFETY: plain libc calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit { rlim_cur: cap, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Child half: caps its file size, writes until a write fails, then checks in the same process
/// that reads work, that an index save under the cap fails typed, and that both writes and saves
/// work once the cap is lifted.
#[test]
#[ignore = "run as a child process by full_disk_fails_typed_and_loses_nothing"]
fn child_write_until_full() {
    let (Ok(path), Ok(cap)) = (std::env::var("AKIDB_FAULT_DB"), std::env::var("AKIDB_FAULT_CAP"))
    else {
        return;
    };
    set_file_size_cap(cap.parse().expect("cap"));
    let db = Database::open(&path).expect("open");
    let c = db.collection("c").expect("collection");
    for round in 0.. {
        match c.upsert(&batch(round)) {
            Ok(()) => println!("ACK {round}"),
            Err(e) => {
                println!("ERR {}", matches!(e, Error::Storage(_)));
                println!("MSG {e}");
                let first: Vec<String> = (0..200).map(|i| format!("r0-{i}")).collect();
                match (c.count(), c.get(&first)) {
                    (Ok(n), Ok(got)) if got.iter().all(Option::is_some) => println!("READ ok {n}"),
                    (n, got) => println!(
                        "READ err {n:?} {:?}",
                        got.map(|g| g.iter().filter(|r| r.is_some()).count())
                    ),
                }
                // Index files hit the cap too: the save fails typed and the old state stays.
                set_file_size_cap(4096);
                match c.save_index() {
                    Ok(()) => println!("SAVE-CAPPED ok"),
                    Err(e) => {
                        println!("SAVE-CAPPED err {} {e}", matches!(e, Error::IndexPersist(_)))
                    }
                }
                // Space returns: lift the cap and retry the same batch in the same process.
                set_file_size_cap(libc::RLIM_INFINITY);
                match c.upsert(&batch(round)) {
                    Ok(()) => println!("RETRY ok {round}"),
                    Err(e) => println!("RETRY err {e}"),
                }
                match c.save_index() {
                    Ok(()) => println!("SAVE ok"),
                    Err(e) => println!("SAVE err {e}"),
                }
                break;
            }
        }
    }
    std::mem::forget(db); // exit without the save on drop: the parent checks what is on disk
}

#[test]
fn full_disk_fails_typed_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        // Enough vectors for an HNSW graph, so that an index save writes megabytes.
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("c", CollectionConfig::new(DIM)).expect("create");
        let base: Vec<Document> = (0..akidb::index::EXACT_BELOW)
            .map(|i| {
                // Distinct vectors: exact duplicates by the hundred degrade the HNSW graph (see
                // the issue notes); this test is about faults, not about that.
                let mut rng = StdRng::seed_from_u64(1 << 32 | i as u64);
                Document::new(
                    format!("base-{i}"),
                    (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
                )
            })
            .collect();
        c.upsert(&base).expect("base");
        assert!(c.index_stats().expect("stats").live >= akidb::index::EXACT_BELOW);
    }
    let size = std::fs::metadata(path.join("akidb.redb")).expect("file").len();
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_write_until_full", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AKIDB_FAULT_DB", &path)
        .env("AKIDB_FAULT_CAP", (size + (4 << 20)).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let out: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
    child.wait().expect("child exits");
    let acked: Vec<usize> =
        out.iter().filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse().ok())).collect();
    assert!(!acked.is_empty(), "some writes fit before the cap: {out:?}");
    assert!(
        out.iter().any(|l| l == "ERR true"),
        "the failing write is a typed storage error: {out:?}"
    );
    let line = |p: &str| out.iter().find(|l| l.starts_with(p)).cloned().unwrap_or_default();
    eprintln!("after the failed write, in the same process: {:?}", &out[acked.len()..]);
    assert!(line("READ").starts_with("READ ok"), "the database stays readable: {out:?}");
    assert!(
        line("SAVE-CAPPED").starts_with("SAVE-CAPPED err true"),
        "index save under the cap fails typed: {out:?}"
    );
    let last = *acked.last().expect("acked");
    assert_eq!(
        line("RETRY"),
        format!("RETRY ok {}", last + 1),
        "writes succeed once space returns: {out:?}"
    );
    assert_eq!(line("SAVE "), "SAVE ok", "index saves succeed once space returns: {out:?}");

    let leftovers: Vec<String> = std::fs::read_dir(path.join("index/c1"))
        .expect("index dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "a failed save leaves no temporary files: {leftovers:?}");

    // A new process: everything acknowledged is there, including the retried batch, and the
    // index saved after the fault loads.
    let db = Database::open(&path).expect("reopen after the fault");
    let c = db.collection("c").expect("collection");
    assert_eq!(
        c.index_stats().expect("stats").unsaved_changes,
        0,
        "the saved index generation loaded"
    );
    assert_eq!(c.count().expect("count"), ((last + 2) * 200 + akidb::index::EXACT_BELOW) as u64);
    for round in [0, last, last + 1] {
        let ids: Vec<String> = (0..200).map(|i| format!("r{round}-{i}")).collect();
        assert!(c.get(&ids).expect("get").iter().all(Option::is_some), "round {round} lost");
    }
    c.upsert(&batch(last + 2)).expect("writes succeed");
    assert_eq!(c.count().expect("count"), ((last + 3) * 200 + akidb::index::EXACT_BELOW) as u64);
    assert_eq!(c.search(&batch(0)[0].vector, 1, None).expect("search")[0].id, "r0-0");
}

/// Child half of `full_disk_during_export_and_backup`: with its file size capped below what an
/// export or a backup needs, both fail typed and leave nothing at their targets; with the cap
/// lifted, both succeed.
#[test]
#[ignore = "run as a child process by full_disk_during_export_and_backup"]
fn child_export_and_backup_when_full() {
    let (Ok(path), Ok(dir)) = (std::env::var("AKIDB_FAULT_DB"), std::env::var("AKIDB_FAULT_OUT"))
    else {
        return;
    };
    let db = Database::open(&path).expect("open");
    let c = db.collection("c").expect("collection");
    let out = std::path::Path::new(&dir);
    set_file_size_cap(256 << 10);
    for (what, r) in [
        ("export", c.export_jsonl(out.join("c.jsonl"), None).map(drop)),
        ("backup", db.backup(out.join("backup")).map(drop)),
    ] {
        match r {
            Ok(()) => println!("{what} ok-under-cap"),
            Err(e) => println!("{what} err {}", matches!(e, Error::Io { .. } | Error::Storage(_))),
        }
    }
    let left: Vec<String> = std::fs::read_dir(out)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    println!("left {left:?}");
    set_file_size_cap(libc::RLIM_INFINITY);
    let n = c.export_jsonl(out.join("c.jsonl"), None).expect("export after");
    db.backup(out.join("backup")).expect("backup after");
    println!("after {n} {}", c.count().expect("count"));
}

#[test]
fn full_disk_during_export_and_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("c", CollectionConfig::new(DIM)).expect("create");
        for round in 0..5 {
            c.upsert(&batch(round)).expect("upsert");
        }
    }
    let output = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_export_and_backup_when_full", "--ignored", "--nocapture"])
        .env("AKIDB_FAULT_DB", &path)
        .env("AKIDB_FAULT_OUT", &out)
        .stderr(Stdio::null())
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("export err true"), "{text}");
    assert!(text.contains("backup err true"), "{text}");
    assert!(text.contains("left []"), "nothing left behind under the cap: {text}");
    assert!(text.contains("after 1000 1000"), "{text}");
    // The database, the export and the backup all open and agree.
    let copy = Database::open(out.join("backup")).expect("backup opens");
    assert_eq!(copy.collection("c").expect("c").count().expect("count"), 1_000);
    let db = Database::open(&path).expect("database opens");
    let fresh = db.create_collection("again", CollectionConfig::new(DIM)).expect("create");
    assert_eq!(fresh.import_jsonl(out.join("c.jsonl")).expect("import").documents, 1_000);
}
