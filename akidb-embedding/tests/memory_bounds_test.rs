//! Size limits bound memory and time, measured: each case runs in a child process that loads
//! the default model, resets its peak RSS (`/proc/self/clear_refs`), embeds, and reports the
//! growth of its peak resident set (VmHWM) and the time taken. The parent checks the growth
//! against the bound the README states.

mod common;

use akidb_embedding::{Embedder, InputKind, OnnxEmbeddingProvider};
use common::*;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|r| r.trim().trim_end_matches("kB").trim().parse().expect("kB"))
        })
        .expect("field")
}

/// One 4 MiB text whose first 20 KB are one word, then short words (the prefix shortcut's
/// worst case).
fn giant_first_word() -> String {
    let mut t = "x".repeat(20_000);
    let mut i = 0u64;
    while t.len() < 4 << 20 {
        t.push_str(&format!(" w{}", i % 997));
        i += 1;
    }
    t.truncate(4 << 20);
    t
}

/// Distinct texts of 16 KB of short words: 400 in the suite, `AKIDB_MEM_TEXTS` to change (the
/// figures in the README are for 1,200).
fn many_16k() -> Vec<String> {
    let n: u64 = std::env::var("AKIDB_MEM_TEXTS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    (0..n)
        .map(|d| {
            let mut t = String::with_capacity(16 << 10);
            let mut i = 0u64;
            while t.len() < (16 << 10) - 16 {
                t.push_str(&format!("d{d}w{} ", i % 311));
                i += 1;
            }
            t
        })
        .collect()
}

#[test]
#[ignore = "run as a child process by embedding_memory_is_bounded_by_the_input"]
fn child_embed_and_report() {
    let Ok(case) = std::env::var("AKIDB_MEM_CASE") else { return };
    let p = OnnxEmbeddingProvider::from_dir(minilm_dir()).expect("load");
    p.embed(&["warm up the session and its arenas", "a second text"], InputKind::Document)
        .expect("warm up");
    let (texts, input): (Vec<String>, usize) = match case.as_str() {
        "giant-word" => {
            let t = giant_first_word();
            let n = t.len();
            (vec![t], n)
        }
        "one-word" => (vec!["x".repeat(4 << 20)], 4 << 20),
        _ => {
            let v = many_16k();
            let n = v.iter().map(String::len).sum();
            (v, n)
        }
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    std::fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
    let base = status_kb("VmHWM:");
    let t = std::time::Instant::now();
    let out = p.embed(&refs, InputKind::Document).expect("embed");
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:");
    assert_eq!(out.vectors.len(), texts.len());
    assert!(case == "one-word" || out.truncated.iter().all(|t| *t));
    if case == "giant-word" {
        // The same tokens as tokenizing the whole text: those of a prefix long enough to hold
        // 256 of them, tokenized whole.
        let head = &texts[0][..60_000];
        let want = p.embed(&[head], InputKind::Document).expect("embed").vectors.remove(0);
        let cos = cosine(&out.vectors[0], &want);
        assert!(cos > 0.99999, "cosine {cos} to the whole-text tokens");
    }
    println!(
        "RESULT input_bytes={input} peak_growth_kb={} secs={secs:.3}",
        peak.saturating_sub(base)
    );
}

fn run(case: &str) -> (f64, f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_embed_and_report", "--ignored", "--nocapture", "--test-threads=1"])
        .env("AKIDB_MEM_CASE", case)
        .output()
        .expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().find_map(|l| l.find("RESULT").map(|i| &l[i..])).unwrap_or_else(|| {
            panic!("{case}: child said {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });
    let field = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .expect("field")
    };
    let (input, growth, secs) =
        (field("input_bytes="), field("peak_growth_kb=") * 1024.0, field("secs="));
    eprintln!(
        "{case}: input {:.1} MB, peak RSS growth {:.1} MB ({:.1}x input), {secs:.2} s",
        input / 1e6,
        growth / 1e6,
        growth / input
    );
    (input, growth, secs)
}

/// The README's bound: an embedding call's peak memory grows by at most 2x its input plus
/// 160 MB, whatever the texts (long ones are tokenized from a bounded prefix; the rest in
/// chunks whose tokenizer state is dropped before the next).
#[test]
fn embedding_memory_is_bounded_by_the_input() {
    let results: Vec<_> =
        ["giant-word", "one-word", "many-16k"].iter().map(|case| (case, run(case))).collect();
    for (case, (input, growth, _secs)) in results {
        let bound = 2.0 * input + 160e6;
        assert!(
            growth <= bound,
            "{case}: peak RSS grew {:.0} MB, bound {:.0} MB",
            growth / 1e6,
            bound / 1e6
        );
    }
}
