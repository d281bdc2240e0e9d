//! E5 and BGE conventions read from their sentence-transformers folders (E5's `query: ` /
//! `passage: ` prompts and mean pooling; BGE's query instruction and CLS pooling), checked
//! against sentence-transformers itself on tiny random-weight models in those shapes
//! (tests/fixtures/{e5,bge}-tiny, made by tests/fixtures/conventions/make_fixtures.py).

mod common;

use akidb_embedding::{Embedder, InputKind, OnnxEmbeddingProvider, Pooling};
use common::*;

fn check(name: &str, pooling: Pooling, query_prompt: &str, document_prompt: Option<&str>) {
    let dir = root().join("tests/fixtures").join(name);
    let r = json(dir.join("reference.json"));
    let texts = strings(&r["texts"]);
    let p = OnnxEmbeddingProvider::from_dir(&dir).expect("load");
    let c = p.config();
    assert_eq!(c.pooling, pooling, "{name}");
    assert_eq!(c.query_prompt.as_deref(), Some(query_prompt), "{name}");
    assert_eq!(c.document_prompt.as_deref(), document_prompt, "{name}");
    let mut worst = 1.0f32;
    for (kind, key) in [(InputKind::Query, "queries"), (InputKind::Document, "documents")] {
        let want = vectors(&r[key]);
        // One at a time and all together (padding must not change a text's vector).
        let batch: Vec<&str> = texts.iter().map(String::as_str).collect();
        let together = p.embed(&batch, kind).expect("embed");
        for (i, t) in texts.iter().enumerate() {
            let alone = p.embed(&[t.as_str()], kind).expect("embed");
            worst = worst.min(cosine(&alone.vectors[0], &want[i]));
            worst = worst.min(cosine(&together.vectors[i], &want[i]));
        }
    }
    assert!(worst >= 0.999, "{name}: worst cosine {worst} against sentence-transformers");
    // The check can fail: sentence-transformers' query and document vectors of a text differ
    // (the prompts), so output that ignored a prompt would miss one of them.
    let (q, d) = (vectors(&r["queries"]), vectors(&r["documents"]));
    let closest = q.iter().zip(&d).map(|(a, b)| cosine(a, b)).fold(1.0f32, f32::min);
    assert!(closest < 0.99, "{name}: query and document references differ ({closest})");
}

#[test]
fn e5_prompts_and_mean_pooling_match_sentence_transformers() {
    check("e5-tiny", Pooling::Mean, "query: ", Some("passage: "));
}

#[test]
fn bge_instruction_and_cls_pooling_match_sentence_transformers() {
    check(
        "bge-tiny",
        Pooling::Cls,
        "Represent this sentence for searching relevant passages: ",
        None,
    );
}
