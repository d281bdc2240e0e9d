//! A fleet on loopback: `robots` simulated robots (threads, each with its own AkiDB database and
//! syncer) write log lines at `rate` lines per second each and sync every `interval_ms`, while
//! one client runs fleet queries against the central table; bounded by `seconds`. Prints rows
//! synced per second, sync lag (from a line's commit on the robot to the commit of the page
//! that carried it) and fleet query latency. `scripts/bench_sync.sh` starts a server; run this
//! with `--example fleet_sim` and the same `--conninfo` (see docs/sync.md).
//!
//! ```text
//! fleet_sim --conninfo "host=127.0.0.1 port=5432 user=postgres" [--robots 50] [--rate 2]
//!           [--interval-ms 1000] [--seconds 30] [--dim 384]
//! ```
#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akidb::{CollectionConfig, Database, Document, Filter, Metric};
use akidb_sync::{FleetSearch, SyncConfig, Syncer};
use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    conninfo: String,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    robots: u32,
    /// Lines per second per robot.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    #[arg(long, default_value_t = 384)]
    dim: usize,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    {
        let mut pg = postgres::Client::connect(&a.conninfo, postgres::NoTls)?;
        let _ = pg.batch_execute("DROP TABLE IF EXISTS akidb_fleet");
        let _ = pg.batch_execute("DELETE FROM akidb_sync_checkpoints WHERE collection = 'fleet'");
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let lags = Arc::new(Mutex::new(Vec::<f64>::new()));
    let synced = Arc::new(Mutex::new(0u64));
    let errors = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for r in 0..a.robots {
        let (path, conninfo) = (dir.path().join(format!("amr-{r:03}")), a.conninfo.clone());
        let (lags, synced, errors) = (lags.clone(), synced.clone(), errors.clone());
        let (rate, interval, dim) = (a.rate, Duration::from_millis(a.interval_ms), a.dim);
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let db = Database::open(&path).map_err(|e| e.to_string())?;
            let c = db
                .create_collection("fleet", CollectionConfig::new(dim))
                .map_err(|e| e.to_string())?;
            let mut s = Syncer::connect(SyncConfig::new(conninfo, format!("amr-{r:03}")))
                .map_err(|e| e.to_string())?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(r));
            let (mut n, mut pending): (u64, Vec<Instant>) = (0, Vec::new());
            let mut next_sync = Instant::now() + interval;
            while Instant::now() < deadline {
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                if due > n {
                    let docs: Vec<Document> = (n..due)
                        .map(|i| {
                            let v: Vec<f32> =
                                (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                            Document::new(format!("l{i}"), v)
                                .with_text(format!("amr-{r:03} line {i}"))
                                .with_metadata(json!({"robot": r, "zone": i % 4}))
                        })
                        .collect();
                    c.upsert(&docs).map_err(|e| e.to_string())?;
                    pending.extend(std::iter::repeat_n(Instant::now(), docs.len()));
                    n = due;
                }
                if Instant::now() >= next_sync {
                    next_sync += interval;
                    match s.sync(&c) {
                        Ok(rep) => {
                            let now = Instant::now();
                            let mut l = lags.lock().expect("lags");
                            l.extend(pending.drain(..).map(|t| (now - t).as_secs_f64() * 1e3));
                            *synced.lock().expect("synced") += rep.upserts;
                        }
                        Err(e) => {
                            eprintln!(
                                "amr-{r:03}: sync failed (retried at the next interval): {e}"
                            );
                            *errors.lock().expect("errors") += 1;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }));
    }
    // Fleet queries meanwhile, bounded by the same deadline.
    let mut fleet = FleetSearch::connect(&a.conninfo)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut qlat = Vec::new();
    std::thread::sleep(Duration::from_millis(a.interval_ms * 2));
    while Instant::now() < deadline {
        let q: Vec<f32> = (0..a.dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let f = Filter::eq("zone", rng.gen_range(0..4));
        let t = Instant::now();
        match fleet.search("fleet", Metric::Cosine, &q, 10, Some(&f), None) {
            Ok(_) => qlat.push(t.elapsed().as_secs_f64() * 1e3),
            Err(e) => eprintln!("query: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().map_err(|_| "robot thread panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut l = lags.lock().expect("lags").clone();
    let rows = *synced.lock().expect("synced");
    println!(
        "{}",
        json!({"robots": a.robots, "rate_per_robot": a.rate, "interval_ms": a.interval_ms,
               "seconds": secs, "rows_synced": rows, "rows_per_s": rows as f64 / secs,
               "lag_p50_ms": pct(&mut l, 0.5), "lag_p95_ms": pct(&mut l, 0.95),
               "queries": qlat.len(), "query_p50_ms": pct(&mut qlat, 0.5),
               "query_p95_ms": pct(&mut qlat, 0.95), "sync_errors": *errors.lock().expect("e")})
    );
    Ok(())
}
