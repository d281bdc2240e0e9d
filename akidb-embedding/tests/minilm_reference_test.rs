//! all-MiniLM-L6-v2 (the default model, converted by scripts/setup.sh) against
//! sentence-transformers references (tests/fixtures/minilm/reference.json).

mod common;

use akidb_embedding::{Embedder, InputKind, OnnxConfig, OnnxEmbeddingProvider};
use common::*;

#[test]
fn minilm_matches_sentence_transformers_at_every_batch_size() {
    let r = json(root().join("tests/fixtures/minilm/reference.json"));
    let texts = strings(&r["texts"]);
    let want = vectors(&r["embeddings"]);
    let p = OnnxEmbeddingProvider::from_dir(minilm_dir()).expect("load");
    assert_eq!(p.info().dimension, 384);
    let order: Vec<usize> = (0..32).map(|i| (i * 5) % texts.len()).collect();
    let mut worst = 1.0f32;
    for bs in [1usize, 2, 4, 7, 8, 16, 32] {
        for chunk in order.chunks(bs) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            let got = p.embed(&batch, InputKind::Document).expect("embed");
            for (&i, v) in chunk.iter().zip(&got.vectors) {
                worst = worst.min(cosine(v, &want[i]));
            }
        }
    }
    assert!(worst >= 0.999, "worst cosine {worst}");
    // The long text (over 256 word pieces) is truncated and says so.
    let long = texts.iter().position(|t| t.len() > 1000).expect("long text");
    let got = p.embed(&[texts[long].as_str()], InputKind::Document).expect("embed");
    assert_eq!((got.truncated[0], got.token_counts[0]), (true, 256));
}

#[test]
fn minilm_without_spinning_threads_matches_sentence_transformers() {
    let r = json(root().join("tests/fixtures/minilm/reference.json"));
    let texts = strings(&r["texts"]);
    let want = vectors(&r["embeddings"]);
    let config = OnnxConfig::from_dir(minilm_dir()).expect("config").with_intra_spinning(false);
    assert!(!config.intra_spinning);
    let p = OnnxEmbeddingProvider::new(config).expect("load");
    assert!(!p.config().intra_spinning);
    let batch: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = p.embed(&batch, InputKind::Document).expect("embed");
    let worst = got.vectors.iter().zip(&want).map(|(v, w)| cosine(v, w)).fold(1.0f32, f32::min);
    assert!(worst >= 0.999, "worst cosine {worst}");
}

#[test]
fn minilm_fixed_shape_single_texts_match_sentence_transformers() {
    // Right padding and mean pooling through the [1, 32] fixed-shape session.
    let r = json(root().join("tests/fixtures/minilm/reference.json"));
    let texts = strings(&r["texts"]);
    let want = vectors(&r["embeddings"]);
    let config =
        akidb_embedding::OnnxConfig::from_dir(minilm_dir()).expect("config").with_fixed_single(32);
    let p = OnnxEmbeddingProvider::new(config).expect("load");
    let at_load = p.fixed_runs();
    let mut fixed = 0;
    for (t, w) in texts.iter().zip(&want) {
        let got = p.embed(&[t.as_str()], InputKind::Document).expect("embed");
        fixed += usize::from(got.token_counts[0] <= 32);
        let c = cosine(&got.vectors[0], w);
        assert!(c >= 0.999, "{t:?}: cosine {c}");
    }
    assert!(fixed >= 3 && fixed < texts.len(), "both paths exercised: {fixed}");
    assert_eq!(p.fixed_runs() - at_load, fixed as u64);
}

#[test]
fn repeated_texts_in_a_batch_each_get_their_reference_vector() {
    // Identical texts are embedded once and the vector handed to every copy: each position
    // must still get its own text's vector, token count and truncation flag.
    let r = json(root().join("tests/fixtures/minilm/reference.json"));
    let texts = strings(&r["texts"]);
    let want = vectors(&r["embeddings"]);
    let long = texts.iter().position(|t| t.len() > 1000).expect("long text");
    let p = OnnxEmbeddingProvider::from_dir(minilm_dir()).expect("load");
    let order = [0usize, 1, 0, long, 2, 1, long, 0, 3, 2];
    let batch: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
    let got = p.embed(&batch, InputKind::Document).expect("embed");
    assert_eq!(got.vectors.len(), order.len());
    for (pos, &i) in order.iter().enumerate() {
        let c = cosine(&got.vectors[pos], &want[i]);
        assert!(c >= 0.999, "position {pos} (text {i}): cosine {c}");
        let alone = p.embed(&[texts[i].as_str()], InputKind::Document).expect("embed");
        assert_eq!(
            (got.token_counts[pos], got.truncated[pos]),
            (alone.token_counts[0], alone.truncated[0]),
            "position {pos}"
        );
    }
    assert!(got.truncated[3] && got.truncated[6] && !got.truncated[0]);
}
