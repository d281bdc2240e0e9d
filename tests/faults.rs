//! I/O faults: a write that cannot reach the disk fails with a typed error, loses nothing that was
//! acknowledged, and writes succeed again once space returns.
//!
//! "Disk full" without privileges: the child process caps its own file size (RLIMIT_FSIZE) and
//! ignores SIGXFSZ, so redb's writes past the cap fail with EFBIG, as they would on a full disk.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use akidb::{CollectionConfig, Database, Document, Error};
use serde_json::json;

const DIM: usize = 64;

fn batch(round: usize) -> Vec<Document> {
    (0..200)
        .map(|i| {
            Document::new(format!("r{round}-{i}"), (0..DIM).map(|d| 1.0 + ((round * 200 + i + d) % 97) as f32).collect())
                .with_text("x".repeat(1024))
                .with_metadata(json!({"round": round}))
        })
        .collect()
}

/// Child half: caps its file size, then writes until a write fails.
#[test]
#[ignore = "run as a child process by full_disk_fails_typed_and_loses_nothing"]
#[allow(unsafe_code)]
fn child_write_until_full() {
    let (Ok(path), Ok(cap)) = (std::env::var("AKIDB_FAULT_DB"), std::env::var("AKIDB_FAULT_CAP")) else { return };
    let cap: u64 = cap.parse().expect("cap");
    // SAFETY: plain libc calls with valid arguments, before any other thread touches the files.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit { rlim_cur: cap, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let db = Database::open(&path).expect("open");
    let c = db.collection("c").expect("collection");
    for round in 0.. {
        match c.upsert(&batch(round)) {
            Ok(()) => println!("ACK {round}"),
            Err(e) => {
                println!("ERR {}", matches!(e, Error::Storage(_)));
                println!("MSG {e}");
                match c.count() {
                    Ok(n) => println!("READ ok {n}"),
                    Err(e) => println!("READ err {e}"),
                }
                // Space returns: lift the cap and retry the same batch in the same process.
                // SAFETY: as above.
                unsafe {
                    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
                    assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
                }
                match c.upsert(&batch(round)) {
                    Ok(()) => println!("RETRY ok {round}"),
                    Err(e) => println!("RETRY err {e}"),
                }
                break;
            }
        }
    }
    std::mem::forget(db); // exit without the index save (the cap would fail it too)
}

#[test]
fn full_disk_fails_typed_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let db = Database::open(&path).expect("open");
        db.create_collection("c", CollectionConfig::new(DIM)).expect("create");
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
    let acked: Vec<usize> = out.iter().filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse().ok())).collect();
    assert!(!acked.is_empty(), "some writes fit before the cap: {out:?}");
    assert!(out.iter().any(|l| l == "ERR true"), "the failing write is a typed storage error: {out:?}");
    let read = out.iter().find(|l| l.starts_with("READ")).cloned().unwrap_or_default();
    let retry = out.iter().find(|l| l.starts_with("RETRY")).cloned().unwrap_or_default();
    eprintln!("after the failed write, in the same process: {read}; {retry}");
    assert!(read.starts_with("READ ok"), "the database stays readable: {read}");

    // Space returns (no cap): everything acknowledged is there, nothing of the failed batch is.
    let db = Database::open(&path).expect("reopen after the fault");
    let c = db.collection("c").expect("collection");
    let last = *acked.last().expect("acked");
    assert_eq!(c.count().expect("count"), ((last + 1) * 200) as u64);
    for round in [0, last] {
        let ids: Vec<String> = (0..200).map(|i| format!("r{round}-{i}")).collect();
        assert!(c.get(&ids).expect("get").iter().all(Option::is_some), "round {round} lost");
    }
    let failed: Vec<String> = (0..200).map(|i| format!("r{}-{i}", last + 1)).collect();
    assert!(c.get(&failed).expect("get").iter().all(Option::is_none), "no part of the failed batch");
    c.upsert(&batch(last + 1)).expect("writes succeed once space returns");
    assert_eq!(c.count().expect("count"), ((last + 2) * 200) as u64);
    assert_eq!(c.search(&batch(0)[0].vector, 1, None).expect("search")[0].id, "r0-0");
}
