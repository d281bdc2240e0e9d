//! Lifecycle figures on a large collection of given vectors with fleet-log metadata: open time
//! and RSS after opening (in a fresh process), `count_where` and a scroll of a 1% filter,
//! `delete_where` of 10%, a retention pass (max documents, another 10%), compaction, and the
//! file size at each step.
//!
//! ```text
//! cargo run --release --example lifecycle_bench -- --n 1000000 [--dim 384] [--db DIR]
//! ```
//!
//! Vectors are random (distinct: no two documents share one). Metadata per document, as the
//! fleet-log example writes it: `robot` (one of 50), `level` (DEBUG 60%, INFO 30%, WARN 8%,
//! ERROR 2%), `node` (one of 20), `ts` (seconds, increasing). The ~1% filter is `one_pct` (its
//! exact share is printed); the 10% delete is `level = INFO and ts` in the first third; the
//! retention pass (by the maintenance worker, timed until done) keeps all but another 10%.
//! Prints one JSON line per measurement.
#![allow(missing_docs)]

#[path = "common/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use akidb::{
    CollectionConfig, Database, Document, FieldIndex, Filter, IndexKind, Retention, ScrollOptions,
    SearchParams,
};
use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::json;
use stats::rss_bytes;

/// Lifecycle bench (one JSON line per measurement).
#[derive(Parser)]
#[command(name = "lifecycle_bench")]
struct Args {
    /// Documents.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Database directory (replaced).
    #[arg(long, default_value = "target/lifecycle_bench.akidb")]
    db: PathBuf,
    /// Internal: open the database, load the collection, report, exit.
    #[arg(long, hide = true)]
    open_only: bool,
    /// Build the collection (ingest, save the index) and stop: for `--query-only` runs.
    #[arg(long)]
    build_only: bool,
    /// Open an existing database (`--build-only`) in this process and report open time, RSS
    /// and filtered-search QPS; nothing is written.
    #[arg(long)]
    query_only: bool,
    /// Declare the payload indexes (robot, level, node: keyword; ts: timestamp) on an existing
    /// database and stop (new databases get them at creation).
    #[arg(long)]
    declare: bool,
    /// Queries per filter for `--query-only`.
    #[arg(long, default_value_t = 200)]
    queries: usize,
}

fn file_mb(db: &Path) -> f64 {
    std::fs::metadata(db.join("akidb.redb")).map_or(0.0, |m| m.len() as f64 / 1e6)
}

fn doc(i: usize, dim: usize, rng: &mut rand::rngs::StdRng) -> Document {
    let level = match rng.gen_range(0..100) {
        0..60 => "DEBUG",
        60..90 => "INFO",
        90..98 => "WARN",
        _ => "ERROR",
    };
    let v: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    Document::new(format!("line-{i}"), v).with_text(format!("log line {i}")).with_metadata(json!({
        "robot": format!("robot_{}", rng.gen_range(0..50)),
        "level": level,
        "node": format!("/node_{}", rng.gen_range(0..20)),
        "ts": 1_790_000_000 + i as u64,
    }))
}

/// About 0.9%: robot_7 (2%) at INFO, WARN or ERROR (40%), or any ERROR (2%) on node 3 (5%).
fn one_pct() -> Filter {
    Filter::eq("robot", "robot_7")
        .and(Filter::is_in("level", ["WARN", "ERROR", "INFO"]))
        .or(Filter::eq("level", "ERROR").and(Filter::eq("node", "/node_3")))
}

/// The filters `--query-only` times, with their share of the documents.
fn query_filters(n: usize) -> Vec<(&'static str, Option<Filter>)> {
    let recent = 1_790_000_000 + (n as u64 * 7) / 10;
    vec![
        ("none", None),
        ("robot_eq_2pct", Some(Filter::eq("robot", "robot_7"))),
        ("level_warn_8pct", Some(Filter::eq("level", "WARN"))),
        ("one_pct", Some(one_pct())),
        (
            "node_in_25pct",
            Some(Filter::is_in("node", ["/node_1", "/node_2", "/node_3", "/node_4", "/node_5"])),
        ),
        ("ts_recent_30pct", Some(Filter::gte("ts", recent))),
    ]
}

/// Open time, RSS and filtered-search QPS (one thread, k 10, random queries) of an existing
/// database, in this process.
fn query_only(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let rss0 = rss_bytes();
    let t = Instant::now();
    let db = Database::open(&a.db)?;
    let c = db.collection("logs")?;
    let open_s = t.elapsed().as_secs_f64();
    let n = c.count()? as usize;
    println!(
        "{}",
        json!({"case": "open", "n": n, "open_s": open_s, "rss_mb": rss_bytes() as f64 / 1e6,
               "rss_before_mb": rss0 as f64 / 1e6})
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for (name, f) in query_filters(n) {
        let queries: Vec<Vec<f32>> = (0..a.queries)
            .map(|_| (0..a.dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
            .collect();
        let t = Instant::now();
        let mut hits = 0;
        let mut paths = std::collections::BTreeMap::<String, usize>::new();
        for q in &queries {
            let (h, path) = c.search_with(q, 10, f.as_ref(), SearchParams::default())?;
            hits += h.len();
            *paths.entry(format!("{path:?}")).or_default() += 1;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"case": "filtered_search", "filter": name, "queries": a.queries,
                   "qps": a.queries as f64 / s, "mean_ms": s * 1e3 / a.queries as f64,
                   "hits": hits, "paths": paths})
        );
    }
    let f = one_pct();
    let t = Instant::now();
    let matches = c.count_where(Some(&f))?;
    println!(
        "{}",
        json!({"case": "count_where", "filter": "one_pct", "matches": matches,
               "s": t.elapsed().as_secs_f64()})
    );
    println!("{}", json!({"case": "rss_after_queries", "rss_mb": rss_bytes() as f64 / 1e6}));
    Ok(())
}

/// The payload indexes the filters here need.
fn indexes() -> Vec<FieldIndex> {
    let kw = |f| FieldIndex::new(f, IndexKind::Keyword);
    vec![kw("robot"), kw("level"), kw("node"), FieldIndex::new("ts", IndexKind::Timestamp)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    if a.query_only {
        return query_only(&a);
    }
    if a.declare {
        let db = Database::open(&a.db)?;
        db.collection("logs")?;
        let t = Instant::now();
        db.set_indexes("logs", indexes())?;
        println!("{}", json!({"case": "declare", "s": t.elapsed().as_secs_f64()}));
        return Ok(());
    }
    if a.open_only {
        let rss0 = rss_bytes();
        let t = Instant::now();
        let db = Database::open(&a.db)?;
        let c = db.collection("logs")?;
        let open_s = t.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"case": "open", "n": c.count()?, "open_s": open_s,
                   "rss_mb": rss_bytes() as f64 / 1e6, "rss_before_mb": rss0 as f64 / 1e6})
        );
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&a.db);
    let t = Instant::now();
    {
        let db = Database::open(&a.db)?;
        let mut config = CollectionConfig::new(a.dim);
        config.indexes = indexes();
        let c = db.create_collection("logs", config)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut i = 0;
        while i < a.n {
            let batch: Vec<Document> =
                (i..(i + 5_000).min(a.n)).map(|j| doc(j, a.dim, &mut rng)).collect();
            i += batch.len();
            c.upsert(&batch)?;
        }
        c.save_index()?;
    }
    println!(
        "{}",
        json!({"case": "ingest", "n": a.n, "dim": a.dim, "s": t.elapsed().as_secs_f64(),
               "file_mb": file_mb(&a.db)})
    );
    if a.build_only {
        return Ok(());
    }
    // Open in a fresh process: RSS of the opened collection alone.
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--open-only", "--db"])
        .arg(&a.db)
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));

    let db = Database::open(&a.db)?;
    let c = db.collection("logs")?;
    let f = one_pct();
    let t = Instant::now();
    let matches = c.count_where(Some(&f))?;
    let count_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut scrolled = 0;
    for page in c.scroll(Some(&f), ScrollOptions::default().with_page_size(1_000))? {
        scrolled += page?.len();
    }
    let scroll_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"case": "count_scroll", "matches": matches, "share": matches as f64 / a.n as f64,
               "count_s": count_s, "scroll_s": scroll_s, "scrolled": scrolled})
    );
    let ten_pct = Filter::eq("level", "INFO").and(Filter::lt("ts", 1_790_000_000 + a.n as u64 / 3));
    let t = Instant::now();
    let deleted = c.delete_where(&ten_pct)?;
    println!(
        "{}",
        json!({"case": "delete_where", "deleted": deleted, "share": deleted as f64 / a.n as f64,
               "s": t.elapsed().as_secs_f64(), "file_mb": file_mb(&a.db)})
    );
    let before = c.count()?;
    let keep = before - a.n as u64 / 10;
    let t = Instant::now();
    // The worker runs a pass as soon as a policy is set: timed until it is done.
    db.set_retention("logs", Some(Retention::keep_all().with_max_documents(keep)))?;
    while c.count()? > keep && t.elapsed().as_secs() < 1_800 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    println!(
        "{}",
        json!({"case": "retention", "deleted": before - c.count()?, "s": t.elapsed().as_secs_f64(),
               "left": c.count()?, "file_mb": file_mb(&a.db)})
    );
    let r = db.compact()?;
    println!(
        "{}",
        json!({"case": "compact", "s": r.seconds, "before_mb": r.bytes_before as f64 / 1e6,
               "after_mb": r.bytes_after as f64 / 1e6})
    );
    Ok(())
}
