//! Search latency while another thread writes: do readers wait for writes?
//!
//! ```sh
//! cargo run --release --example search_under_writes -- \
//!     [--n 20000] [--batch 1000] [--seconds 20] [--filter PCT]
//! ```
//!
//! Loads `n` clustered 384-d vectors into a fresh collection (HNSW built), then searches
//! (k = 10, default parameters, one thread) for `seconds` with no writer and for `seconds`
//! while a second thread upserts batches of `batch` new vectors (each one durable transaction
//! plus its graph inserts). Prints one JSON line per phase: search latency p50 / p99 / max and
//! searches per second, and the writer's vectors per second. `--filter PCT`: every document
//! carries `bucket` = its number mod 100 and the searches keep `bucket < PCT` (a few percent:
//! answered by exact scans of the matches, see akidb-index's filter rule).
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use akidb::{CollectionConfig, Database, Document, Filter};
use rand::{Rng, SeedableRng};
use serde_json::json;
use stats::percentile;

const DIM: usize = 384;

/// Vectors around 50 random centres (unit-normalised by the collection): realistic for a graph.
struct Clusters {
    centres: Vec<Vec<f32>>,
    rng: rand::rngs::StdRng,
}

impl Clusters {
    fn new(seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let centres =
            (0..50).map(|_| (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect()).collect();
        Self { centres, rng }
    }
    fn next(&mut self) -> Vec<f32> {
        let c = &self.centres[self.rng.gen_range(0..self.centres.len())];
        c.iter().map(|x| x + self.rng.gen_range(-0.4f32..0.4)).collect()
    }
    fn docs(&mut self, start: usize, n: usize, buckets: bool) -> Vec<Document> {
        (start..start + n)
            .map(|i| {
                let d = Document::new(format!("doc-{i}"), self.next());
                if buckets {
                    d.with_metadata(json!({"bucket": i % 100}))
                } else {
                    d
                }
            })
            .collect()
    }
}

/// Searches while a writer upserts batches: latency and throughput, without and with writes.
#[derive(clap::Parser)]
#[command(name = "search_under_writes")]
struct Args {
    /// Vectors loaded before the phases.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    n: u64,
    /// Vectors per write batch.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    batch: u64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Filter keeping this percentage of the vectors (0: none).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100))]
    filter: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = <Args as clap::Parser>::parse();
    let (n, batch, seconds, pct) =
        (a.n as usize, a.batch as usize, a.seconds as usize, a.filter as usize);
    let filter = (pct > 0).then(|| Filter::lt("bucket", pct as f64));
    let buckets = filter.is_some();
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().join("db"))?;
    let col = db.create_collection(
        "s",
        CollectionConfig::new(DIM).with_index("bucket", akidb::IndexKind::Integer),
    )?;
    let mut data = Clusters::new(7);
    for start in (0..n).step_by(10_000) {
        col.upsert(&data.docs(start, 10_000.min(n - start), buckets))?;
    }
    let queries: Vec<Vec<f32>> = (0..256).map(|_| data.next()).collect();
    let phase = Duration::from_secs(seconds as u64);
    for writing in [false, true] {
        let stop = AtomicBool::new(false);
        let (mut lat, written, elapsed) = std::thread::scope(|s| -> Result<_, akidb::Error> {
            let writer = writing.then(|| {
                let (col, stop) = (&col, &stop);
                let mut data = Clusters::new(11);
                s.spawn(move || -> Result<f64, akidb::Error> {
                    let (t, mut written) = (Instant::now(), 0);
                    while !stop.load(Ordering::Relaxed) {
                        col.upsert(&data.docs(10_000_000 + written, batch, buckets))?;
                        written += batch;
                    }
                    Ok(written as f64 / t.elapsed().as_secs_f64())
                })
            });
            let t = Instant::now();
            let mut lat = Vec::new();
            while t.elapsed() < phase {
                let q = &queries[lat.len() % queries.len()];
                let t = Instant::now();
                col.search(q, 10, filter.as_ref())?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let elapsed = t.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let written = match writer {
                Some(w) => w.join().expect("writer thread")?,
                None => 0.0,
            };
            Ok((lat, written, elapsed))
        })?;
        let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
        println!(
            "{}",
            json!({"phase": if writing { "writing" } else { "idle" }, "n": n, "batch": batch,
                   "filter_pct": pct,
                   "searches_per_s": (lat.len() as f64 / elapsed).round(),
                   "p50_ms": p50, "p99_ms": p99, "max_ms": lat[lat.len() - 1],
                   "written_per_s": written.round()})
        );
    }
    Ok(())
}
