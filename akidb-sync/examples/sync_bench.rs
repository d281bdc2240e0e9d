//! Sync throughput into a local PostgreSQL: a collection of `n` distinct random `dim`-d vectors
//! (with text and metadata) synced from scratch, then `n / 10` new and replaced documents synced
//! incrementally; in the same run, the peer: the same rows loaded by plain binary COPY into a
//! table without merge or checkpoint (the ceiling of any loader). `scripts/bench_sync.sh` starts
//! the server and runs this.
//!
//! ```text
//! sync_bench --conninfo "host=127.0.0.1 port=5432 user=postgres" [--n 100000] [--dim 384]
//!            [--page 5000] [--rounds 3]
//! ```
#![allow(missing_docs)]

use std::time::Instant;

use akidb::{CollectionConfig, Database, Document};
use akidb_sync::{SyncConfig, Syncer};
use clap::Parser;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    conninfo: String,
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 384)]
    dim: usize,
    #[arg(long, default_value_t = 5_000)]
    page: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Sync into a table without the HNSW index.
    #[arg(long)]
    no_index: bool,
}

fn docs(rng: &mut rand::rngs::StdRng, ids: std::ops::Range<usize>, dim: usize) -> Vec<Document> {
    ids.map(|i| {
        let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        Document::new(format!("line-{i}"), v)
            .with_text(format!(
                "2026-03-01T21:20:{:02}Z amr-05 INFO /nav: goal {i} reached",
                i % 60
            ))
            .with_metadata(json!({"robot": "amr-05", "level": "INFO", "n": i}))
    })
    .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for round in 0..a.rounds {
        let dir = tempfile::tempdir()?;
        let db = Database::open(dir.path())?;
        let c = db.create_collection("bench", CollectionConfig::new(a.dim))?;
        let all = docs(&mut rng, 0..a.n, a.dim);
        for chunk in all.chunks(10_000) {
            c.upsert(chunk)?;
        }
        let mut pg = postgres::Client::connect(&a.conninfo, postgres::NoTls)?;
        pg.batch_execute(
            "DROP TABLE IF EXISTS akidb_bench; DROP TABLE IF EXISTS peer_bench; \
             DELETE FROM akidb_sync_checkpoints WHERE collection = 'bench';",
        )
        .or_else(|_| {
            pg.batch_execute("DROP TABLE IF EXISTS akidb_bench; DROP TABLE IF EXISTS peer_bench")
        })?;
        // Peer: plain binary COPY of the same rows.
        pg.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE peer_bench (source text, id text, \
             seq bigint, text text, metadata jsonb, embedding vector({}))",
            a.dim
        ))?;
        let vt =
            pg.prepare("SELECT embedding FROM peer_bench LIMIT 0")?.columns()[0].type_().clone();
        let t = Instant::now();
        let mut tx = pg.transaction()?;
        let sink = tx.copy_in("COPY peer_bench FROM STDIN (FORMAT binary)")?;
        let types = [Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT, Type::JSONB, vt];
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for (i, d) in all.iter().enumerate() {
            let v = pgvector::Vector::from(d.vector.clone());
            w.write(&[&"amr-05", &d.id, &(i as i64), &d.text, &d.metadata, &v])?;
        }
        w.finish()?;
        tx.commit()?;
        let peer_s = t.elapsed().as_secs_f64();
        // AkiDB's syncer: the full sync, then an incremental one.
        let mut cfg = SyncConfig::new(a.conninfo.clone(), "amr-05");
        cfg.page = a.page;
        cfg.hnsw_index = !a.no_index;
        let mut s = Syncer::connect(cfg)?;
        let t = Instant::now();
        let r = s.sync(&c)?;
        let full_s = t.elapsed().as_secs_f64();
        let more = docs(&mut rng, a.n - a.n / 20..a.n + a.n / 20, a.dim);
        c.upsert(&more)?;
        let t = Instant::now();
        let r2 = s.sync(&c)?;
        let incr_s = t.elapsed().as_secs_f64();
        let load_s = full_s - r.index_build_seconds.unwrap_or(0.0);
        println!(
            "{}",
            json!({"round": round, "n": a.n, "dim": a.dim, "page": a.page,
                   "peer_copy_rows_per_s": a.n as f64 / peer_s,
                   "sync_full_rows_per_s": r.upserts as f64 / full_s, "sync_full_s": full_s,
                   "sync_vs_copy": (r.upserts as f64 / full_s) / (a.n as f64 / peer_s),
                   "index_build_s": r.index_build_seconds,
                   "load_rows_per_s": r.upserts as f64 / load_s,
                   "sync_incremental_rows_per_s": r2.upserts as f64 / incr_s,
                   "incremental_rows": r2.upserts, "pages": r.pages + r2.pages})
        );
    }
    Ok(())
}
