//! Time to open a database and its collection: clean (saved index generation: load + checks)
//! and after a crash (redb repairs the file), plus the time to load the embedding model.
//!
//! ```text
//! source scripts/env.sh
//! cargo run --release --example open_bench -- --n 100000 --dim 384 --rounds 3 [--model-dir DIR]
//! ```
//!
//! Builds a collection of `n` random clustered vectors once (distinct vectors), saves its index,
//! then alternates: open + `collection()` (clean), and open after a child process that wrote a
//! batch was SIGKILLed (redb must repair the file). Prints one JSON line per measurement.

use std::path::{Path, PathBuf};
use std::time::Instant;

use akidb::{CollectionConfig, Database, Document};
use clap::Parser;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// Vectors in the collection.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Rounds of each measurement.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Database directory (default: under target/).
    #[arg(long, default_value = "target/open_bench.akidb")]
    db: PathBuf,
    /// Also time loading this embedding model folder (first load and a second one).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Internal: the child that writes a batch and waits to be killed.
    #[arg(long, hide = true)]
    child: bool,
}

fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Document> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> =
        (0..64).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    (0..n)
        .map(|i| {
            let c = &centers[rng.gen_range(0..centers.len())];
            let v = c.iter().map(|x| x + rng.gen_range(-0.3f32..0.3)).collect();
            Document::new(format!("d{seed}-{i}"), v)
        })
        .collect()
}

fn open_timed(path: &Path) -> (f64, f64, usize) {
    let t = Instant::now();
    let db = Database::open(path).expect("open");
    let open = t.elapsed().as_secs_f64();
    let c = db.collection("v").expect("collection");
    let load = t.elapsed().as_secs_f64() - open;
    let rebuilt = c.index_stats().expect("stats").unsaved_changes as usize;
    (open, load, rebuilt)
}

fn main() {
    let a = Args::parse();
    if a.child {
        let db = Database::open(&a.db).expect("open");
        let c = db.collection("v").expect("collection");
        c.upsert(&vectors(100, a.dim, 999)).expect("upsert");
        println!("READY");
        std::thread::sleep(std::time::Duration::from_secs(600));
        return;
    }
    if !a.db.join("akidb.redb").exists() {
        let t = Instant::now();
        let db = Database::open(&a.db).expect("open");
        let c = db.create_collection("v", CollectionConfig::new(a.dim)).expect("create");
        for (i, chunk) in vectors(a.n, a.dim, 1).chunks(10_000).enumerate() {
            c.upsert(chunk).expect("upsert");
            eprintln!("built {} vectors", (i + 1) * chunk.len());
        }
        c.save_index().expect("save");
        eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(a.db.join("akidb.redb")).map(|m| m.len()).unwrap_or(0);
    for round in 0..a.rounds {
        // Clean: a saved generation that covers everything.
        {
            let db = Database::open(&a.db).expect("open");
            db.collection("v").expect("collection").save_index().expect("save");
        }
        let (open, load, rebuilt) = open_timed(&a.db);
        println!(
            "{}",
            serde_json::json!({"case": "clean", "round": round, "n": a.n, "dim": a.dim,
                "file_mb": size as f64 / 1e6, "open_s": open, "collection_s": load,
                "rebuilt": rebuilt})
        );
        // Unclean: a writer killed with the file open.
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--child", "--dim", &a.dim.to_string(), "--db"])
            .arg(&a.db)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read");
        child.kill().expect("kill");
        child.wait().expect("wait");
        let (open, load, rebuilt) = open_timed(&a.db);
        println!(
            "{}",
            serde_json::json!({"case": "after-kill", "round": round, "n": a.n, "dim": a.dim,
                "open_s": open, "collection_s": load, "replayed_or_rebuilt": rebuilt})
        );
    }
    if let Some(dir) = &a.model_dir {
        for which in ["first", "second"] {
            let t = Instant::now();
            let m = akidb::OnnxEmbeddingProvider::from_dir(dir).expect("model");
            println!(
                "{}",
                serde_json::json!({"case": "model-load", "which": which,
                                   "s": t.elapsed().as_secs_f64()})
            );
            drop(m);
        }
    }
}
