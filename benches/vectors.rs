//! Vector-level benches (no embedding): upsert throughput and search latency.
//!
//! `cargo bench --bench vectors` — upsert of 384-d vectors in batches of 1, 100 and 1000
//! (each batch one durable, fsynced transaction, index update included), and search (k = 10)
//! over 10k and 100k random vectors: exact (forced), default (HNSW at 100k; exact below 10k
//! vectors), and default with a 10% metadata filter.
#![allow(missing_docs)]

use akidb::{CollectionConfig, Database, Document, Filter, SearchParams};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 384;

fn random_docs(rng: &mut impl Rng, start: usize, n: usize) -> Vec<Document> {
    (start..start + n)
        .map(|i| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
            Document::new(format!("doc-{i}"), v).with_metadata(json!({"shard": i % 10, "ts": i}))
        })
        .collect()
}

fn upsert(c: &mut Criterion) {
    let mut g = c.benchmark_group("upsert_384d");
    g.sample_size(10);
    for batch in [1usize, 100, 1000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path().join("db")).expect("open");
        let col = db.create_collection("b", CollectionConfig::new(DIM)).expect("create");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut next = 0usize;
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_batched(
                || {
                    let d = random_docs(&mut rng, next, batch);
                    next += batch;
                    d
                },
                |docs| col.upsert(&docs).expect("upsert"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let mut g = c.benchmark_group("search_384d_k10");
    for n in [10_000usize, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path().join("db")).expect("open");
        let col = db
            .create_collection(
                "s",
                CollectionConfig::new(DIM).with_index("shard", akidb::IndexKind::Integer),
            )
            .expect("create");
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for start in (0..n).step_by(10_000) {
            col.upsert(&random_docs(&mut rng, start, 10_000)).expect("load");
        }
        let queries: Vec<Vec<f32>> =
            (0..64).map(|_| (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        let mut qi = 0;
        g.bench_function(BenchmarkId::new("exact", n), |b| {
            b.iter(|| {
                qi = (qi + 1) % queries.len();
                col.search_with(&queries[qi], 10, None, SearchParams::exact()).expect("search")
            })
        });
        g.bench_function(BenchmarkId::new("default", n), |b| {
            b.iter(|| {
                qi = (qi + 1) % queries.len();
                col.search(&queries[qi], 10, None).expect("search")
            })
        });
        let f = Filter::eq("shard", 3);
        g.bench_function(BenchmarkId::new("filter_10pct", n), |b| {
            b.iter(|| {
                qi = (qi + 1) % queries.len();
                col.search(&queries[qi], 10, Some(&f)).expect("search")
            })
        });
    }
    g.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default();
    targets = upsert, search
);
criterion_main!(benches);
