//! Load generator for `akidb-server`, over HTTP on loopback.
//!
//! ```text
//! cargo run --release -p akidb-server --example load -- --url http://127.0.0.1:PORT \
//!     --key KEY [--model minilm] [--docs 10000] [--levels 1,8,32,64] [--seconds 10]
//!     [--rate 50] [--max-requests 200000] [--mode vector|hybrid|keyword|auto]
//! cargo run --release -p akidb-server --example load -- --write-corpus PATH [--docs N]
//! ```
//!
//! `--write-corpus` writes the lines it would load, one per line, for a peer to load the same.
//!
//! Fills a text collection `load` with `--docs` fleet-log lines (distinct, as `add_texts`
//! batches of 256) unless it holds them, then runs, each for `--seconds` (and at most
//! `--max-requests` requests):
//! - closed loop at each concurrency of `--levels`: that many clients, each sending its next
//!   `query` (k 10, distinct texts, mode `--mode`: `vector` by default, the operation the
//!   peer's clients run; `auto` is hybrid on this collection) as soon as the last one answered;
//! - open loop: queries arriving at `--rate` per second on a schedule, latency counted from the
//!   scheduled time (a slow answer delays no later arrival: no coordinated omission);
//! - mixed: 8 clients, 90% queries and 10% `add_texts` of one new line.
//!
//! Prints one JSON line per run: requests, errors (any status but 200), QPS, p50/p95/p99 ms.

#[path = "../../examples/common/fleet.rs"]
#[allow(missing_docs)]
mod fleet;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

struct Args {
    url: String,
    key: String,
    model: String,
    docs: usize,
    levels: Vec<usize>,
    seconds: u64,
    rate: f64,
    max_requests: u64,
    write_corpus: Option<String>,
    mode: String,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        key: String::new(),
        model: "minilm".into(),
        docs: 10_000,
        levels: vec![1, 8, 32, 64],
        seconds: 10,
        rate: 50.0,
        max_requests: 200_000,
        write_corpus: None,
        mode: "vector".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--url" => a.url = v,
            "--key" => a.key = v,
            "--model" => a.model = v,
            "--docs" => a.docs = num(&v)? as usize,
            "--seconds" => a.seconds = num(&v)?.clamp(1, 600),
            "--rate" => a.rate = v.parse().map_err(|_| format!("--rate: {v}"))?,
            "--max-requests" => a.max_requests = num(&v)?,
            "--write-corpus" => a.write_corpus = Some(v),
            "--mode" => a.mode = v,
            "--levels" => {
                a.levels = v
                    .split(',')
                    .map(|x| x.parse::<usize>().map_err(|_| format!("--levels: {x}")))
                    .collect::<Result<_, _>>()?;
                if a.levels.iter().any(|&c| c == 0 || c > 1024) {
                    return Err("--levels: each from 1 to 1024".into());
                }
            }
            f => return Err(format!("unknown flag {f}")),
        }
    }
    if a.write_corpus.is_none() && (a.url.is_empty() || a.key.is_empty()) {
        return Err("--url and --key are required".into());
    }
    if !(a.rate > 0.0 && a.rate <= 10_000.0) {
        return Err("--rate: from above 0 to 10,000".into());
    }
    Ok(a)
}

/// Distinct query texts, one per call of `next`.
struct Queries(AtomicU64);

const TOPICS: [&str; 8] = [
    "why did the robot stop near the loading dock",
    "battery overheating while charging",
    "gripper failed to pick the tote",
    "lidar timeout and protective stop",
    "lost network connection to the fleet manager",
    "path blocked by a pallet in the aisle",
    "emergency stop pressed",
    "localization lost on the map",
];

impl Queries {
    fn next(&self) -> String {
        let i = self.0.fetch_add(1, Ordering::Relaxed);
        let topic = TOPICS[(i % 8) as usize];
        format!("{topic} robot {} task {}", 1 + (i / 8) % 8, 10_000 + i)
    }
}

struct Run {
    latencies_ms: Vec<f64>,
    errors: u64,
    elapsed: Duration,
}

fn report(name: &str, level: Value, mut r: Run) -> Value {
    r.latencies_ms.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        let v = &r.latencies_ms;
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    let n = r.latencies_ms.len() as u64 + r.errors;
    json!({
        "run": name, "level": level, "requests": n, "errors": r.errors,
        "qps": (r.latencies_ms.len() as f64 / r.elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "p50_ms": (pick(0.5) * 100.0).round() / 100.0,
        "p95_ms": (pick(0.95) * 100.0).round() / 100.0,
        "p99_ms": (pick(0.99) * 100.0).round() / 100.0,
    })
}

fn post(client: &Client, a: &Args, path: &str, body: &Value) -> Result<Value, String> {
    let r = client
        .post(format!("{}{path}", a.url))
        .bearer_auth(&a.key)
        .json(body)
        .send()
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: Value = r.json().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err(format!("{status}: {v}"))
    }
}

fn query(client: &Client, a: &Args, q: &Queries) -> bool {
    let body = json!({"text": q.next(), "k": 10, "mode": a.mode});
    post(client, a, "/v1/collections/load/query", &body).is_ok()
}

/// `clients` threads each sending `op` back to back until the deadline or the request cap.
fn closed(a: &Args, clients: usize, op: &(dyn Fn(&Client) -> bool + Sync)) -> Run {
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let sent = AtomicU64::new(0);
    let start = Instant::now();
    let parts: Vec<(Vec<f64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let sent = &sent;
                s.spawn(move || {
                    let client = Client::builder().timeout(Duration::from_secs(60)).build();
                    let Ok(client) = client else { return (Vec::new(), 1) };
                    let (mut lat, mut errors) = (Vec::new(), 0);
                    while Instant::now() < deadline
                        && sent.fetch_add(1, Ordering::Relaxed) < a.max_requests
                    {
                        let t = Instant::now();
                        if op(&client) {
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                        } else {
                            errors += 1;
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let elapsed = start.elapsed();
    let mut run = Run { latencies_ms: Vec::new(), errors: 0, elapsed };
    for (l, e) in parts {
        run.latencies_ms.extend(l);
        run.errors += e;
    }
    run
}

/// Queries arriving at `rate` per second; latency from each one's scheduled time.
fn open(a: &Args, q: &Queries) -> Run {
    let workers = 64;
    let total = ((a.rate * a.seconds as f64) as u64).min(a.max_requests);
    let (tx, rx) = mpsc::channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now();
    let parts: Vec<(Vec<f64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = rx.clone();
                s.spawn(move || {
                    let client = Client::builder().timeout(Duration::from_secs(60)).build();
                    let Ok(client) = client else { return (Vec::new(), 0) };
                    let (mut lat, mut errors) = (Vec::new(), 0);
                    loop {
                        let due = match rx.lock().map(|r| r.recv()) {
                            Ok(Ok(due)) => due,
                            _ => return (lat, errors),
                        };
                        if query(&client, a, q) {
                            lat.push(due.elapsed().as_secs_f64() * 1e3);
                        } else {
                            errors += 1;
                        }
                    }
                })
            })
            .collect();
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / a.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.send(due).is_err() {
                break;
            }
        }
        drop(tx);
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut run = Run { latencies_ms: Vec::new(), errors: 0, elapsed: start.elapsed() };
    for (l, e) in parts {
        run.latencies_ms.extend(l);
        run.errors += e;
    }
    run
}

fn fill(a: &Args) -> Result<(), String> {
    let client =
        Client::builder().timeout(Duration::from_secs(600)).build().map_err(|e| e.to_string())?;
    let create = json!({"name": "load", "model": a.model});
    if let Err(e) = post(&client, a, "/v1/collections", &create) {
        if !e.starts_with("409") {
            return Err(format!("creating the collection: {e}"));
        }
    }
    let count = post(&client, a, "/v1/collections/load/count", &json!({}))?;
    if count["count"].as_u64().is_some_and(|n| n >= a.docs as u64) {
        return Ok(());
    }
    let (events, _) = fleet::generate(a.docs, 7);
    let start = Instant::now();
    for chunk in events.chunks(256) {
        let texts: Vec<Value> = chunk
            .iter()
            .map(|e| json!({"id": e.id, "text": e.text(), "metadata": e.metadata()}))
            .collect();
        post(&client, a, "/v1/collections/load/add_texts", &json!({ "texts": texts }))?;
    }
    eprintln!("filled {} lines in {:.1} s", events.len(), start.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    // reqwest is built without a default crypto provider (the server uses rustls with ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Some(path) = &a.write_corpus {
        let (events, _) = fleet::generate(a.docs, 7);
        let text: String = events.iter().map(|e| e.text() + "\n").collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = fill(&a) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let q = Queries(AtomicU64::new(0));
    for &c in &a.levels {
        let run = closed(&a, c, &|client| query(client, &a, &q));
        println!("{}", report("closed", json!(c), run));
    }
    println!("{}", report("open", json!(a.rate), open(&a, &q)));
    let added = AtomicU64::new(0);
    let mixed = closed(&a, 8, &|client| {
        let i = added.fetch_add(1, Ordering::Relaxed);
        if i % 10 == 9 {
            let text =
                format!("mixed load line {i}: lidar restarted after timeout on robot {}", i % 8);
            let body = json!({"texts": [{"id": format!("mixed-{i}"), "text": text}]});
            post(client, &a, "/v1/collections/load/add_texts", &body).is_ok()
        } else {
            query(client, &a, &q)
        }
    });
    println!("{}", report("mixed 90/10", json!(8), mixed));
}
