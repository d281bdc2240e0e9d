//! akidb-sync against a real PostgreSQL with pgvector (the `pgserver` wheel's binaries, installed
//! by scripts/setup.sh), started here on a loopback port in a temporary directory and stopped
//! after: the central table equals the robot's collection row by row after every round, after
//! the syncer is SIGKILLed mid-sync while the robot writes, after the server is stopped mid-sync,
//! and after a resync forced by a pruned change feed.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb::{Clock, Collection, CollectionConfig, Database, Document, Filter, ScrollOptions};
use akidb_sync::{SyncConfig, Syncer};
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 8;

mod common;
use common::pg::{Bouncer, Pg};

#[derive(Debug)]
struct TestClock(AtomicU64);
impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

type Row = (Option<String>, serde_json::Value, Vec<f32>);

fn collection_rows(c: &Collection) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    let options = ScrollOptions::default().with_page_size(1000).with_vectors(true);
    for page in c.scroll(None, options).expect("scroll") {
        for r in page.expect("page") {
            let meta = if r.metadata.is_null() { json!({}) } else { r.metadata };
            out.insert(r.id, (r.text, meta, r.vector));
        }
    }
    out
}

fn table_rows(conninfo: &str, table: &str, source: &str) -> BTreeMap<String, Row> {
    let mut client = postgres::Client::connect(conninfo, postgres::NoTls).expect("connect");
    let sql = format!("SELECT id, text, metadata, embedding FROM \"{table}\" WHERE source = $1");
    client
        .query(&sql, &[&source])
        .expect("select")
        .into_iter()
        .map(|r| {
            let v: pgvector::Vector = r.get(3);
            (r.get::<_, String>(0), (r.get(1), r.get(2), v.to_vec()))
        })
        .collect()
}

fn doc(rng: &mut rand::rngs::StdRng, id: u64, version: u64) -> Document {
    let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    Document::new(format!("log-{id}"), v)
        .with_text(format!("robot line {id} v{version} 'quoted' \"and\" ünïcode"))
        .with_metadata(json!({"robot": id % 3, "v": version, "nested": {"a": [1, 2]}}))
}

fn write_round(c: &Collection, rng: &mut rand::rngs::StdRng, round: u64, ids: u64) {
    let docs: Vec<Document> = (0..200)
        .map(|_| {
            let id = rng.gen_range(0..ids);
            doc(rng, id, round)
        })
        .collect();
    c.upsert(&docs).expect("upsert");
    let gone: Vec<String> = (0..30).map(|_| format!("log-{}", rng.gen_range(0..ids))).collect();
    c.delete(&gone.iter().map(String::as_str).collect::<Vec<_>>()).expect("delete");
    if round % 3 == 2 {
        c.delete_where(&Filter::eq("robot", round % 3)).expect("delete_where");
    }
}

#[test]
fn the_table_equals_the_collection_row_by_row_for_two_robots() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let robots: Vec<(Database, Collection)> = (0..2)
        .map(|i| {
            let db = Database::open(dir.path().join(format!("robot{i}"))).expect("open");
            let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
            (db, c)
        })
        .collect();
    let mut syncers: Vec<Syncer> = (0..2)
        .map(|i| {
            let mut cfg = SyncConfig::new(pg.conninfo(), format!("amr-{i:02}"));
            cfg.page = 97;
            Syncer::connect(cfg).expect("connect")
        })
        .collect();
    for round in 0..6 {
        for (i, (_, c)) in robots.iter().enumerate() {
            write_round(c, &mut rng, round, 400);
            let r = syncers[i].sync(c).expect("sync");
            assert!(!r.resynced);
            let source = format!("amr-{i:02}");
            assert_eq!(
                table_rows(&pg.conninfo(), "akidb_logs", &source),
                collection_rows(c),
                "robot {i} after round {round}"
            );
        }
    }
    // The first sync built the table's HNSW index once it had caught up.
    let mut client = postgres::Client::connect(&pg.conninfo(), postgres::NoTls).expect("connect");
    let defs: Vec<String> = client
        .query("SELECT indexdef FROM pg_indexes WHERE tablename = 'akidb_logs'", &[])
        .expect("indexes")
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(defs.iter().any(|d| d.contains("hnsw") && d.contains("vector_cosine_ops")), "{defs:?}");
    // The robot keeps the checkpoint too (when given a directory): after each committed page.
    let state = dir.path().join("state");
    let mut cfg = SyncConfig::new(pg.conninfo(), "amr-00");
    cfg.local_state = Some(state.clone());
    let mut local = Syncer::connect(cfg).expect("connect");
    local.sync(&robots[0].1).expect("sync");
    let central = local.checkpoint("logs").expect("checkpoint");
    assert!(central.is_some());
    assert_eq!(local.local_checkpoint("logs").expect("local"), central);
    // The server loses its checkpoints (a reset): the next sync sends everything again, and
    // the table still equals the collection.
    client
        .execute("DELETE FROM akidb_sync_checkpoints WHERE source = 'amr-00'", &[])
        .expect("reset");
    let r = local.sync(&robots[0].1).expect("sync after the reset");
    assert_eq!(r.upserts as usize, collection_rows(&robots[0].1).len());
    assert_eq!(table_rows(&pg.conninfo(), "akidb_logs", "amr-00"), collection_rows(&robots[0].1));
    assert_eq!(
        local.local_checkpoint("logs").expect("local"),
        local.checkpoint("logs").expect("c")
    );
    // Nothing to do once caught up: one empty page, the same checkpoint.
    let before = syncers[0].checkpoint("logs").expect("checkpoint");
    let r = syncers[0].sync(&robots[0].1).expect("sync");
    assert_eq!((r.upserts, r.deletes), (0, 0));
    assert_eq!(Some(r.position), before);
}

#[test]
fn a_pruned_checkpoint_forces_a_full_resync_that_ends_equal() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(TestClock(AtomicU64::new(1_000_000)));
    let db = Database::builder().with_clock(clock.clone()).open(dir.path()).expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    write_round(&c, &mut rng, 0, 300);
    let mut s = Syncer::connect(SyncConfig::new(pg.conninfo(), "amr-07")).expect("connect");
    s.sync(&c).expect("sync");
    write_round(&c, &mut rng, 1, 300);
    clock.0.fetch_add(8 * 24 * 3600 * 1000, Ordering::SeqCst);
    c.delete(&["log-1", "log-2", "log-3"]).expect("delete");
    c.optimize().expect("optimize prunes the week-old delete records");
    let r = s.sync(&c).expect("sync");
    assert!(r.resynced, "{r:?}");
    assert_eq!(table_rows(&pg.conninfo(), "akidb_logs", "amr-07"), collection_rows(&c));
}

#[test]
fn a_server_stopped_mid_sync_loses_and_duplicates_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for round in 0..10 {
        write_round(&c, &mut rng, round, 5_000);
    }
    let mut cfg = SyncConfig::new(pg.conninfo(), "amr-03");
    cfg.page = 20;
    let mut s = Syncer::connect(cfg.clone()).expect("connect");
    let c2 = c.clone();
    let t = std::thread::spawn(move || s.sync(&c2));
    std::thread::sleep(Duration::from_millis(150));
    pg.crash();
    let r = t.join().expect("sync thread");
    assert!(r.is_err(), "the sync saw the server go: {r:?}");
    pg.up();
    let mut s = Syncer::connect(cfg).expect("reconnect");
    s.sync(&c).expect("sync after the restart");
    assert_eq!(table_rows(&pg.conninfo(), "akidb_logs", "amr-03"), collection_rows(&c));
}

#[test]
fn fleet_search_ranks_and_filters_as_akidb_does() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut robots = Vec::new();
    for i in 0..2 {
        let db = Database::open(dir.path().join(format!("r{i}"))).expect("open");
        let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
        let docs: Vec<Document> = (0..300u64)
            .map(|j| {
                let level = ["INFO", "WARN", "ERROR"][(j % 3) as usize];
                let mut d = doc(&mut rng, j, j % 7);
                d.metadata["level"] = json!(level);
                if j % 5 == 0 {
                    d.metadata["zone"] = json!({"dock": j % 4});
                }
                d
            })
            .collect();
        c.upsert(&docs).expect("upsert");
        let source = format!("amr-{i}");
        Syncer::connect(SyncConfig::new(pg.conninfo(), &source))
            .expect("connect")
            .sync(&c)
            .expect("sync");
        robots.push((source, db, c));
    }
    let mut fleet = akidb_sync::FleetSearch::connect(&pg.conninfo()).expect("connect");
    fleet.set_ef_search(1000).expect("ef_search");
    let filters = [
        None,
        Some(Filter::eq("robot", 1)),
        Some(Filter::gte("v", 3).and(Filter::lt("v", 5))),
        Some(Filter::Or(vec![
            Filter::eq("level", "WARN"),
            Filter::Exists { field: "zone.dock".into() },
        ])),
        Some(Filter::Not(Box::new(Filter::eq("level", "INFO")))),
        Some(Filter::gt("level", "F")),
        Some(Filter::In { field: "zone.dock".into(), values: vec![json!(1), json!(3)] }),
    ];
    for (n, filter) in filters.iter().enumerate() {
        let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let got = fleet
            .search("logs", akidb::Metric::Cosine, &q, 15, filter.as_ref(), None)
            .expect("fleet search");
        let mut want: Vec<(f32, String, String)> = Vec::new();
        for (source, _, c) in &robots {
            let (hits, _) = c
                .search_with(&q, 15, filter.as_ref(), akidb::SearchParams::exact())
                .expect("search");
            want.extend(hits.into_iter().map(|h| (h.score, source.clone(), h.id)));
        }
        want.sort_by(|a, b| b.0.total_cmp(&a.0));
        want.truncate(15);
        assert_eq!(got.len(), want.len(), "filter {n}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.source, &g.hit.id), (&w.1, &w.2), "filter {n}");
            assert!((g.hit.score - w.0).abs() < 1e-4, "filter {n}: {} vs {}", g.hit.score, w.0);
        }
        // The same restricted to one robot.
        let one = fleet
            .search("logs", akidb::Metric::Cosine, &q, 15, filter.as_ref(), Some(&["amr-1"]))
            .expect("one robot");
        assert!(one.iter().all(|h| h.source == "amr-1"));
    }
}

/// A self-signed certificate for `names`: (certificate PEM, key PEM).
fn certificate(names: &[&str]) -> (String, String) {
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let ck = rcgen::generate_simple_self_signed(names).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

#[test]
fn sync_over_tls_verifies_the_server_and_takes_credentials() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(&["db.fleet.test"]);
    let bouncer = Bouncer::start(&pg, &cert, &key, "fleet", "s3cret pass");
    let ca = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca, &cert).expect("ca");
    let (other, _) = certificate(&["db.fleet.test"]);
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other).expect("other ca");
    // The server's name is `host` (verified against the certificate); `hostaddr` is where it is.
    let conninfo = |host: &str, extra: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user=fleet dbname=postgres \
             connect_timeout=10 {extra}",
            bouncer.port()
        )
    };
    let good = conninfo("db.fleet.test", "password='s3cret pass' sslmode=require");
    let db = Database::open(dir.path().join("robot")).expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    write_round(&c, &mut rng, 0, 300);
    let mut cfg = SyncConfig::new(&good, "amr-tls");
    cfg.tls_ca_file = Some(ca.clone());
    let mut syncer = Syncer::connect(cfg.clone()).expect("sync over TLS");
    write_round(&c, &mut rng, 1, 300);
    syncer.sync(&c).expect("sync");
    assert_eq!(table_rows(&pg.conninfo(), "akidb_logs", "amr-tls"), collection_rows(&c));
    // PgBouncer saw a TLS client (its log names the connection's TLS version).
    assert!(bouncer.log().contains("TLSv1.3"), "{}", bouncer.log());
    // A fleet query over the same kind of connection.
    let mut fleet = akidb_sync::FleetSearch::connect_with_ca(&good, Some(&ca)).expect("fleet");
    let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let hits = fleet.search("logs", akidb::Metric::Cosine, &q, 5, None, None).expect("search");
    assert_eq!(hits.len(), 5);
    // What must fail, each with the server's or the TLS stack's reason.
    let refused = |conninfo: String, ca: Option<&std::path::Path>, why: &str| {
        let mut cfg = SyncConfig::new(conninfo, "amr-tls");
        cfg.tls_ca_file = ca.map(|p| p.to_path_buf());
        let err = Syncer::connect(cfg).expect_err(why);
        assert!(matches!(err, akidb_sync::SyncError::Postgres(_)), "{why}: {err}");
        err.to_string()
    };
    let e = refused(good.clone(), Some(&other_ca), "a certificate from another CA");
    assert!(e.contains("certificate"), "{e}");
    let e = refused(good.clone(), None, "a private CA not among the system's roots");
    assert!(e.contains("certificate"), "{e}");
    let e = refused(
        conninfo("127.0.0.1", "password='s3cret pass' sslmode=require"),
        Some(&ca),
        "a certificate for another name",
    );
    assert!(e.contains("certificate"), "{e}");
    let e = refused(
        conninfo("db.fleet.test", "password=wrong sslmode=require"),
        Some(&ca),
        "a wrong password",
    );
    assert!(e.contains("authentication"), "{e}");
    refused(
        conninfo("db.fleet.test", "password='s3cret pass' sslmode=disable"),
        Some(&ca),
        "no TLS where the server requires it",
    );
    let plain = format!("{} sslmode=require", pg.conninfo());
    refused(plain, Some(&ca), "TLS required of a server without it");
    // A CA file that holds no certificate is refused before connecting.
    let mut cfg = SyncConfig::new(&good, "amr-tls");
    cfg.tls_ca_file = Some(dir.path().join("missing.pem"));
    assert!(matches!(Syncer::connect(cfg), Err(akidb_sync::SyncError::Tls { .. })));
}

#[test]
fn syncers_starting_at_once_on_a_fresh_server_all_succeed() {
    // CREATE ... IF NOT EXISTS races with itself across sessions (the extension, the tables,
    // the index); sixteen robots starting together found that in the fleet simulation.
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let (path, conninfo, barrier) =
                (dir.path().join(format!("r{i}")), pg.conninfo(), barrier.clone());
            std::thread::spawn(move || {
                let db = Database::open(&path).expect("open");
                let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
                let mut rng = rand::rngs::StdRng::seed_from_u64(i);
                write_round(&c, &mut rng, 0, 50);
                barrier.wait();
                let mut s = Syncer::connect(SyncConfig::new(conninfo, format!("amr-{i}")))
                    .expect("connect");
                s.sync(&c).expect("sync");
                (format!("amr-{i}"), collection_rows(&c))
            })
        })
        .collect();
    for t in threads {
        let (source, rows) = t.join().expect("robot");
        assert_eq!(table_rows(&pg.conninfo(), "akidb_logs", &source), rows, "{source}");
    }
}

#[test]
fn a_fleet_query_on_a_streaming_replica_sees_the_synced_rows() {
    let primary = Pg::start();
    let replica = primary.replica();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("open");
    let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    write_round(&c, &mut rng, 0, 300);
    Syncer::connect(SyncConfig::new(primary.conninfo(), "amr-11"))
        .expect("connect")
        .sync(&c)
        .expect("sync");
    let want = collection_rows(&c);
    // Replication is asynchronous: wait (bounded) until the replica holds what was committed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = postgres::Client::connect(&replica.conninfo(), postgres::NoTls)
            .ok()
            .and_then(|mut cl| {
                cl.query_opt("SELECT 1 FROM pg_class WHERE relname = 'akidb_logs_hnsw'", &[]).ok()
            })
            .flatten()
            .is_some();
        if ready && table_rows(&replica.conninfo(), "akidb_logs", "amr-11") == want {
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not catch up in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let mut on_primary = akidb_sync::FleetSearch::connect(&primary.conninfo()).expect("primary");
    let mut on_replica = akidb_sync::FleetSearch::connect(&replica.conninfo()).expect("replica");
    let f = Filter::eq("robot", 2);
    let a = on_primary.search("logs", akidb::Metric::Cosine, &q, 10, Some(&f), None).expect("p");
    let b = on_replica.search("logs", akidb::Metric::Cosine, &q, 10, Some(&f), None).expect("r");
    assert_eq!(a, b);
    assert!(!b.is_empty());
    // The replica is read-only: a syncer pointed at it fails with PostgreSQL's reason.
    let e = Syncer::connect(SyncConfig::new(replica.conninfo(), "amr-11"))
        .and_then(|mut s| s.sync(&c))
        .expect_err("a replica takes no writes");
    assert!(e.to_string().contains("read-only"), "{e}");
}

/// The child of the SIGKILL test: opens the robot's database, writes and syncs until killed.
#[test]
fn child_process_entry() {
    let (Ok(db), Ok(conninfo)) = (std::env::var("AKIDB_SYNC_DB"), std::env::var("AKIDB_SYNC_PG"))
    else {
        return;
    };
    let db = Database::open(&db).expect("open");
    let c = db.collection("logs").expect("collection");
    let mut rng = rand::rngs::StdRng::seed_from_u64(std::process::id() as u64);
    let mut cfg = SyncConfig::new(conninfo, "amr-09");
    cfg.page = 13;
    let mut s = Syncer::connect(cfg).expect("connect");
    println!("READY");
    for round in 0.. {
        write_round(&c, &mut rng, round, 2_000);
        s.sync(&c).expect("sync");
    }
}

#[test]
fn a_syncer_killed_mid_sync_while_the_robot_writes_loses_and_duplicates_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("robot");
    {
        let db = Database::open(&path).expect("open");
        let c = db.create_collection("logs", CollectionConfig::new(DIM)).expect("create");
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        write_round(&c, &mut rng, 0, 2_000);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let deadline = Instant::now() + Duration::from_secs(60);
    for kill in 0..6 {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
            .env("AKIDB_SYNC_DB", &path)
            .env("AKIDB_SYNC_PG", pg.conninfo())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        while !line.contains("READY") {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).expect("read");
            assert!(n > 0, "child {kill} exited before it was ready");
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        assert!(child.try_wait().expect("status").is_none(), "child {kill} ended on its own");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        assert!(Instant::now() < deadline, "bounded in time");
    }
    let db = Database::open(&path).expect("open");
    let c = db.collection("logs").expect("collection");
    let mut s = Syncer::connect(SyncConfig::new(pg.conninfo(), "amr-09")).expect("connect");
    let r = s.sync(&c).expect("final sync");
    assert!(!r.resynced);
    let rows = table_rows(&pg.conninfo(), "akidb_logs", "amr-09");
    assert_eq!(rows, collection_rows(&c));
    assert!(rows.len() > 100, "{} rows", rows.len());
}
