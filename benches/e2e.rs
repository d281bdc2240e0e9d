//! End to end with the default model on the CPU: insert of texts (embed + store + index) and
//! `query_text` latency, at `AKIDB_E2E_N` documents (default 10,000; set 100000 for the large run).
//!
//! `bash scripts/setup.sh && source scripts/env.sh && cargo bench --bench e2e`
//! The side-by-side with Chroma (p50/p95, docs/s) is examples/e2e_bench.rs.
#![allow(missing_docs)]

#[path = "../examples/common/fleet.rs"]
mod fleet;

use std::sync::Arc;

use akidb::{Database, IngestOptions, OnnxEmbeddingProvider, TextDocument};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn e2e(c: &mut Criterion) {
    let n: usize = std::env::var("AKIDB_E2E_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let model = Arc::new(
        OnnxEmbeddingProvider::from_dir("models/all-MiniLM-L6-v2")
            .expect("run scripts/setup.sh first"),
    );
    let (events, questions) = fleet::generate(n, 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    let col = db.text_collection("logs", model).expect("collection");
    let docs = events
        .iter()
        .map(|e| TextDocument::new(e.id.clone(), e.text()).with_metadata(e.metadata()));
    col.ingest(docs, &IngestOptions::default()).expect("ingest");

    let mut g = c.benchmark_group(format!("e2e_{n}"));
    g.sample_size(10);
    let mut next = 0usize;
    g.throughput(Throughput::Elements(256));
    g.bench_function("add_texts_256", |b| {
        b.iter_batched(
            || {
                let batch: Vec<TextDocument> = events
                    .iter()
                    .take(256)
                    .map(|e| {
                        TextDocument::new(format!("extra-{next}-{}", e.id), e.text())
                            .with_metadata(e.metadata())
                    })
                    .collect();
                next += 1;
                batch
            },
            |batch| col.add_texts(&batch).expect("add"),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    let mut qi = 0;
    g.bench_function("query_text_k10", |b| {
        b.iter(|| {
            qi = (qi + 1) % questions.len();
            col.query_text(questions[qi].text, 10, None).expect("query")
        })
    });
    g.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default();
    targets = e2e
);
criterion_main!(benches);
