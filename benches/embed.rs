//! MiniLM embedding on the CPU at batch 1, 8 and 32 (texts/s), through the real provider.
//!
//! `bash scripts/setup.sh && source scripts/env.sh && cargo bench --bench embed`
//! For the side-by-side with Python onnxruntime (p50/p95 included) see examples/embed_bench.rs.
#![allow(missing_docs)]

#[path = "../examples/common/fleet.rs"]
mod fleet;

use akidb::{Embedder, InputKind, OnnxEmbeddingProvider};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn embed(c: &mut Criterion) {
    let model = OnnxEmbeddingProvider::from_dir("models/all-MiniLM-L6-v2")
        .expect("run scripts/setup.sh first");
    let (events, _) = fleet::generate(2_000, 3);
    let texts: Vec<String> = events.iter().map(|e| e.text()).collect();
    let mut g = c.benchmark_group("minilm_cpu");
    g.sample_size(20);
    for batch in [1usize, 8, 32] {
        let mut at = 0;
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            b.iter(|| {
                let chunk: Vec<&str> =
                    (0..batch).map(|i| texts[(at + i) % texts.len()].as_str()).collect();
                at += batch;
                model.embed(&chunk, InputKind::Document).expect("embed")
            })
        });
    }
    g.finish();
}

criterion_group!(
    name = benches;
    config = Criterion::default();
    targets = embed
);
criterion_main!(benches);
