//! The fused Qwen3 export (`scripts/qwen3_onnx.py`: GroupQueryAttention, skip RMSNorm, pooling
//! inside the graph) against transformers. tests/fixtures/qwen3-tiny-fused holds the weights of
//! tests/fixtures/qwen3-tiny, so that fixture's reference.json (transformers) is its reference
//! and its torch.onnx export is a second, independent implementation to agree with.

mod common;

use akidb_embedding::{
    EmbedError, Embedder, InputKind, OnnxConfig, OnnxEmbeddingProvider, PaddingSide,
};
use common::*;

const MIN_COSINE: f32 = 0.999;

fn fused() -> OnnxConfig {
    OnnxConfig::from_dir(qwen_fused_dir()).expect("from_dir")
}

fn provider(c: OnnxConfig) -> OnnxEmbeddingProvider {
    OnnxEmbeddingProvider::new(c).expect("provider")
}

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
    queries: Vec<String>,
    query_vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let r = json(qwen_dir().join("reference.json"));
    Reference {
        texts: strings(&r["documents"]["texts"]),
        vectors: vectors(&r["documents"]["embeddings"]),
        queries: strings(&r["queries"]["texts"]),
        query_vectors: vectors(&r["queries"]["embeddings"]),
    }
}

#[test]
fn fused_export_matches_transformers_at_every_batch_size_and_padding_side() {
    let r = reference();
    for side in [PaddingSide::Left, PaddingSide::Right] {
        let p = provider(fused().with_padding(side));
        assert_eq!(p.info().hidden_size, 64, "pooled output [batch, hidden]");
        let pool: Vec<usize> = (0..32).map(|i| (i * 5) % r.texts.len()).collect();
        for bs in [1usize, 2, 3, 7, 16, 32] {
            for chunk in pool.chunks(bs) {
                let texts: Vec<&str> = chunk.iter().map(|&i| r.texts[i].as_str()).collect();
                let got = p.embed(&texts, InputKind::Document).expect("embed");
                for (&i, v) in chunk.iter().zip(&got.vectors) {
                    let c = cosine(v, &r.vectors[i]);
                    assert!(c >= MIN_COSINE, "{side:?} padding, batch {bs}, text {i}: cosine {c}");
                }
            }
        }
        let q: Vec<&str> = r.queries.iter().map(String::as_str).collect();
        let got = p.embed(&q, InputKind::Query).expect("queries");
        for (v, want) in got.vectors.iter().zip(&r.query_vectors) {
            assert!(cosine(v, want) >= MIN_COSINE, "{side:?} padding, query");
        }
    }
}

#[test]
fn fused_export_agrees_with_the_traced_export_on_hard_inputs() {
    // Empty text, CJK, emoji, mixed scripts, and a 100k-character text truncated at max_length
    // (4,096 tokens here: positions near the end of the RoPE cache).
    let long = "Roboter 3 hielt an der Laderampe an; 安全停止 🤖 ".repeat(2_500);
    let texts =
        ["", "ロボット3が停止しました", "🤖🔋⚠️", "lidar 雷达 Lidar-Sensor", long.as_str(), "a"];
    let traced = provider(OnnxConfig::from_dir(qwen_dir()).expect("from_dir"));
    let p = provider(fused());
    let a = traced.embed(&texts, InputKind::Document).expect("traced");
    let b = p.embed(&texts, InputKind::Document).expect("fused");
    assert_eq!(a.truncated, b.truncated);
    assert!(b.truncated[4], "the long text is reported truncated");
    for (i, (x, y)) in a.vectors.iter().zip(&b.vectors).enumerate() {
        let c = cosine(x, y);
        assert!(c > 0.9999, "text {i}: cosine {c}");
        assert!((norm(y) - 1.0).abs() < 1e-4);
    }
}

#[test]
fn fused_export_runs_in_the_fixed_shape_session() {
    let r = reference();
    let p = provider(fused().with_fixed_single(32));
    let before = p.fixed_runs();
    for (text, want) in r.texts.iter().zip(&r.vectors) {
        let got = p.embed(&[text], InputKind::Document).expect("embed");
        assert!(cosine(&got.vectors[0], want) >= MIN_COSINE, "{text:?}");
    }
    assert!(p.fixed_runs() > before, "short single texts ran in the fixed session");
}

#[test]
fn max_length_past_the_models_positions_is_rejected() {
    // The export declares its RoPE cache length (4,096 for this fixture) in its metadata.
    match OnnxEmbeddingProvider::new(fused().with_max_length(5_000)) {
        Err(EmbedError::InvalidConfig { field: "max_length", .. }) => {}
        other => panic!("expected InvalidConfig for max_length, got {other:?}"),
    }
    provider(fused().with_max_length(4_096));
}
