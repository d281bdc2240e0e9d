//! ANN benchmark of AkiDB's index on texmex `.fvecs`/`.ivecs` data.
//!
//! ```text
//! cargo run --release --example ann_bench -- \
//!     --base B.fvecs --query Q.fvecs --groundtruth G.ivecs --metric cosine --m 16 \
//!     --ef-construction 200 --ef 10,20,40,80,160 --k 10 --threads 1 \
//!     [--filter 0.5,0.1,0.01] [--reps 5]
//! ```
//!
//! Prints one JSON line for the build
//! (`{"build_s","n","dim","rss_bytes","index_bytes_per_vector"}`; the build uses all cores)
//! and one per ef (`{"ef","recall","qps"}`; searches on `--threads` threads, one query at a
//! time). `--filter` adds, per selectivity `s`, a filtered run: every
//! base vector gets a label `i % 1000`, the filter keeps labels below `s * 1000`, and recall is
//! measured against the exact filtered top-k (`{"selectivity","ef","recall","qps","path"}`).
//! Each query set runs `--reps` times (default 5): `qps` is the median pass, `qps_best` the
//! fastest (a pass of 1,000 queries lasts ~0.1 s, so single passes are at the mercy of a noisy
//! machine).
//! Data: `python3 ../shared/bench/make_dataset.py 100000 1000 384 200 7 DIR`.
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use akidb::index::{HnswIndex, HnswParams, Metric, SearchParams, VectorInsert};
use serde_json::json;
use stats::rss_bytes;

fn read_vecs(path: &PathBuf, what: &str) -> Result<(usize, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if bytes.len() < 4 {
        return Err(format!("{what} {} is empty", path.display()));
    }
    let d = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if d == 0 || bytes.len() % (4 * (d + 1)) != 0 {
        return Err(format!("{what} {} is not a texmex vecs file (dimension {d})", path.display()));
    }
    Ok((d, bytes))
}

fn fvecs(path: &PathBuf) -> Result<(usize, Vec<Vec<f32>>), String> {
    let (d, b) = read_vecs(path, "fvecs")?;
    let rows = b
        .chunks_exact(4 * (d + 1))
        .map(|r| {
            r[4..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        })
        .collect();
    Ok((d, rows))
}

fn ivecs(path: &PathBuf) -> Result<Vec<Vec<u64>>, String> {
    let (d, b) = read_vecs(path, "ivecs")?;
    Ok(b.chunks_exact(4 * (d + 1))
        .map(|r| {
            r[4..]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64)
                .collect()
        })
        .collect())
}

/// ANN benchmark of AkiDB's index on texmex .fvecs/.ivecs data (one JSON line per result).
#[derive(clap::Parser)]
#[command(name = "ann_bench")]
struct Args {
    /// Base vectors (.fvecs).
    #[arg(long)]
    base: PathBuf,
    /// Query vectors (.fvecs).
    #[arg(long)]
    query: PathBuf,
    /// Exact neighbours of each query (.ivecs).
    #[arg(long = "groundtruth")]
    gt: PathBuf,
    /// cosine, dot (or ip), l2.
    #[arg(long, default_value = "cosine", value_parser = metric)]
    metric: Metric,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW build beam.
    #[arg(long = "ef-construction", default_value_t = 200)]
    efc: usize,
    /// Search beams to measure, comma-separated.
    #[arg(long = "ef", value_delimiter = ',', default_value = "10,20,40,80,160")]
    efs: Vec<usize>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(usize))]
    k: usize,
    /// Search threads (one query at a time each).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Filter selectivities to measure, comma-separated (e.g. 0.5,0.1,0.01).
    #[arg(long = "filter", value_delimiter = ',')]
    filters: Vec<f64>,
    /// Passes over the query set per measurement (median and best reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Keep the exact f32 vectors in a scratch file in this directory instead of in memory
    /// (what `CollectionConfig::vectors_on_disk` does).
    #[arg(long = "vectors-on-disk")]
    vectors_on_disk: Option<PathBuf>,
    /// The graph's codes: f16 (default), int8, int4, or binary:OVERSAMPLE (e.g. binary:8).
    #[arg(long, default_value = "f16")]
    quantization: akidb::Quantization,
}

fn metric(s: &str) -> Result<Metric, String> {
    match s {
        "cosine" => Ok(Metric::Cosine),
        "dot" | "ip" => Ok(Metric::Dot),
        "l2" => Ok(Metric::L2),
        m => Err(format!("unknown metric {m}: cosine, dot or l2")),
    }
}

/// Runs `pass` `reps` times; returns its last result and the median and best passes per second.
fn timed<T>(
    reps: usize,
    mut pass: impl FnMut() -> Result<T, String>,
) -> Result<(T, f64, f64), String> {
    let mut rates = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(pass()?);
        rates.push(1.0 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok((last.ok_or("no pass")?, rates[rates.len() / 2], rates[rates.len() - 1]))
}

fn main() -> Result<(), String> {
    let a = <Args as clap::Parser>::parse();
    let (dim, base) = fvecs(&a.base)?;
    let (qdim, queries) = fvecs(&a.query)?;
    let gt = ivecs(&a.gt)?;
    if qdim != dim || gt.len() != queries.len() {
        return Err("query/groundtruth do not match the base".into());
    }
    let prep = |v: &[f32]| {
        let mut v = v.to_vec();
        if a.metric == Metric::Cosine {
            akidb::index::normalize(&mut v);
        }
        v
    };
    let base: Vec<Vec<f32>> = base.iter().map(|v| prep(v)).collect();
    let queries: Vec<Vec<f32>> = queries.iter().map(|v| prep(v)).collect();
    // Resident sizes after handing freed heap back, as collections do after a load.
    akidb::release_free_heap();
    let rss0 = rss_bytes();
    let t = Instant::now();
    a.quantization.validate(dim, a.metric).map_err(|e| e.to_string())?;
    let params = HnswParams::new(a.m, a.efc).with_quantization(a.quantization);
    let items: Vec<(u64, &[f32])> =
        base.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
    let index = match &a.vectors_on_disk {
        None => {
            let mut index = HnswIndex::new(dim, a.metric, params);
            index.insert(&items).map_err(|e| e.to_string())?;
            index
        }
        Some(dir) => {
            let mut flat =
                akidb::index::FlatIndex::on_disk(dim, a.metric, dir).map_err(|e| e.to_string())?;
            flat.insert(&items).map_err(|e| e.to_string())?;
            HnswIndex::rebuild_from(flat, params, &|| false, &mut |_, _| {})
                .map_err(|e| e.to_string())?
                .ok_or("cancelled")?
        }
    };
    drop(items);
    akidb::release_free_heap();
    let build_s = t.elapsed().as_secs_f64();
    let rss = rss_bytes();
    println!(
        "{}",
        json!({"build_s": build_s, "n": base.len(), "dim": dim, "m": a.m, "ef_construction": a.efc,
               "rss_bytes": rss, "vectors_on_disk": a.vectors_on_disk.is_some(),
               "quantization": format!("{:?}", a.quantization),
               "index_bytes_per_vector": (rss.saturating_sub(rss0)) as f64 / base.len() as f64,
               "graph_bytes_per_vector": index.graph_bytes() as f64 / base.len() as f64})
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .map_err(|e| e.to_string())?;
    let k = a.k;
    pool.install(|| -> Result<(), String> {
        for &ef in &a.efs {
            let (hits, rate, best) = timed(a.reps as usize, || {
                let mut hits = 0usize;
                for (q, truth) in queries.iter().zip(&gt) {
                    let (res, _) = index
                        .search_with(q, k, None, SearchParams::with_ef(ef))
                        .map_err(|e| e.to_string())?;
                    let truth = &truth[..k.min(truth.len())];
                    hits += res.iter().filter(|n| truth.contains(&n.id)).count();
                }
                Ok(hits)
            })?;
            let n = queries.len() as f64;
            let recall = hits as f64 / (k * queries.len()) as f64;
            println!(
                "{}",
                json!({"ef": ef, "recall": recall, "qps": n * rate, "qps_best": n * best})
            );
        }
        for &s in &a.filters {
            let cut = (s * 1000.0).round() as u64;
            let keep = move |id: u64| id % 1000 < cut;
            let truth: Vec<Vec<u64>> = queries
                .iter()
                .map(|q| {
                    index
                        .search_with(q, k, Some(&keep), SearchParams::exact())
                        .map(|r| r.0.iter().map(|n| n.id).collect())
                })
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            for &ef in &a.efs {
                let ((hits, want, path), rate, best) = timed(a.reps as usize, || {
                    let (mut hits, mut want) = (0usize, 0usize);
                    let mut path = None;
                    for (q, truth) in queries.iter().zip(&truth) {
                        let (res, p) = index
                            .search_with(q, k, Some(&keep), SearchParams::with_ef(ef))
                            .map_err(|e| e.to_string())?;
                        path = Some(p);
                        hits += res.iter().filter(|n| truth.contains(&n.id)).count();
                        want += truth.len();
                    }
                    Ok((hits, want, path))
                })?;
                let n = queries.len() as f64;
                println!(
                    "{}",
                    json!({"selectivity": s, "ef": ef, "recall": hits as f64 / want.max(1) as f64,
                           "qps": n * rate, "qps_best": n * best, "path": format!("{path:?}")})
                );
            }
        }
        Ok(())
    })
}
