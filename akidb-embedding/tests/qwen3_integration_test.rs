//! Qwen3-architecture embedding against references computed by Hugging Face transformers
//! (tests/fixtures/qwen3-tiny: random weights, exported by torch.onnx.export).

mod common;

use akidb_embedding::{
    EmbedError, Embedder, ExecutionProviderConfig, InputKind, OnnxConfig, OnnxEmbeddingProvider,
    PaddingSide, Pooling,
};
use common::*;

const MIN_COSINE: f32 = 0.999;

struct Reference {
    docs: Vec<String>,
    doc_vecs: Vec<Vec<f32>>,
    doc_tokens: Vec<usize>,
    queries: Vec<String>,
    query_vecs: Vec<Vec<f32>>,
    task: String,
}

fn reference() -> Reference {
    let r = json(qwen_dir().join("reference.json"));
    Reference {
        docs: strings(&r["documents"]["texts"]),
        doc_vecs: vectors(&r["documents"]["embeddings"]),
        doc_tokens: r["documents"]["token_counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|x| x.as_u64().expect("n") as usize)
            .collect(),
        queries: strings(&r["queries"]["texts"]),
        query_vecs: vectors(&r["queries"]["embeddings"]),
        task: r["task"].as_str().expect("task").to_string(),
    }
}

fn config() -> OnnxConfig {
    OnnxConfig::from_dir(qwen_dir()).expect("from_dir")
}

fn provider(c: OnnxConfig) -> OnnxEmbeddingProvider {
    OnnxEmbeddingProvider::new(c).expect("provider")
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn from_dir_reads_qwen3_conventions() {
    let c = config();
    assert_eq!(c.pooling, Pooling::LastToken);
    assert_eq!(c.padding, PaddingSide::Left);
    assert_eq!(c.eos_token.as_deref(), Some("<|endoftext|>"));
    assert_eq!(c.dimension, 64);
    let r = reference();
    assert_eq!(c.query_prompt, Some(format!("Instruct: {}\nQuery:", r.task)));
    assert_eq!(c.document_prompt, None);
    let p = provider(c);
    assert_eq!(p.info().hidden_size, 64);
    assert_eq!(p.info().execution_provider, "CPU");
}

#[test]
fn documents_match_transformers_one_at_a_time() {
    let r = reference();
    let p = provider(config());
    for (text, want) in r.docs.iter().zip(&r.doc_vecs) {
        let got = p.embed(&[text], InputKind::Document).expect("embed");
        let c = cosine(&got.vectors[0], want);
        assert!(c >= MIN_COSINE, "{text:?}: cosine {c}");
    }
}

#[test]
fn queries_carry_the_instruction_and_match_reference() {
    let r = reference();
    let p = provider(config());
    let got = p.embed(&refs(&r.queries), InputKind::Query).expect("embed");
    for ((q, g), want) in r.queries.iter().zip(&got.vectors).zip(&r.query_vecs) {
        assert!(cosine(g, want) >= MIN_COSINE, "{q:?}");
    }
    // Without the instruction the same text embeds differently.
    let plain = p.embed(&refs(&r.queries), InputKind::Document).expect("embed");
    assert!(plain.vectors.iter().zip(&r.query_vecs).all(|(a, b)| cosine(a, b) < 0.99));
}

#[test]
fn every_batch_size_1_to_32_with_mixed_lengths_matches() {
    let r = reference();
    let p = provider(config());
    let pool: Vec<usize> = (0..32).map(|i| (i * 7) % r.docs.len()).collect();
    for bs in [1usize, 2, 3, 5, 8, 13, 16, 31, 32] {
        for chunk in pool.chunks(bs) {
            let texts: Vec<&str> = chunk.iter().map(|&i| r.docs[i].as_str()).collect();
            let got = p.embed(&texts, InputKind::Document).expect("embed");
            for (&i, v) in chunk.iter().zip(&got.vectors) {
                let c = cosine(v, &r.doc_vecs[i]);
                assert!(c >= MIN_COSINE, "batch {bs}, text {i}: {c}");
            }
        }
    }
}

#[test]
fn embedding_does_not_depend_on_batch_neighbours() {
    let r = reference();
    let p = provider(config());
    let target = r.docs[1].as_str();
    let alone = p.embed(&[target], InputKind::Document).expect("alone").vectors.remove(0);
    let with_long =
        p.embed(&[r.docs[11].as_str(), target, "", "a"], InputKind::Document).expect("batch");
    let with_short = p.embed(&["x", target], InputKind::Document).expect("batch");
    assert!(cosine(&alone, &with_long.vectors[1]) > 0.99999);
    assert!(cosine(&alone, &with_short.vectors[1]) > 0.99999);
}

#[test]
fn left_and_right_padding_agree() {
    let r = reference();
    let left = provider(config().with_padding(PaddingSide::Left));
    let right = provider(config().with_padding(PaddingSide::Right));
    let texts = refs(&r.docs);
    let a = left.embed(&texts, InputKind::Document).expect("left");
    let b = right.embed(&texts, InputKind::Document).expect("right");
    for ((x, y), want) in a.vectors.iter().zip(&b.vectors).zip(&r.doc_vecs) {
        assert!(cosine(x, want) >= MIN_COSINE && cosine(y, want) >= MIN_COSINE);
    }
}

#[test]
fn endoftext_is_appended_when_the_tokenizer_does_not() {
    let r = reference();
    let p = provider(config());
    let got = p.embed(&refs(&r.docs), InputKind::Document).expect("embed");
    // The reference token counts include the appended <|endoftext|>.
    assert_eq!(got.token_counts, r.doc_tokens);
}

#[test]
fn endoftext_is_not_doubled_when_the_tokenizer_appends_it() {
    let r = reference();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tok = json(qwen_dir().join("tokenizer.json"));
    tok["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}
        ],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}],
        "special_tokens": {
            "<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}
        }
    });
    let tok_path = dir.path().join("tokenizer.json");
    std::fs::write(&tok_path, tok.to_string()).expect("write");
    let mut c = config();
    c.tokenizer_path = tok_path;
    let p = provider(c);
    let got = p.embed(&refs(&r.docs), InputKind::Document).expect("embed");
    assert_eq!(got.token_counts, r.doc_tokens);
    for (g, want) in got.vectors.iter().zip(&r.doc_vecs) {
        assert!(cosine(g, want) >= MIN_COSINE);
    }
}

#[test]
fn matryoshka_keeps_the_first_dims_and_renormalises() {
    let r = reference();
    for dim in [8usize, 32, 64] {
        let p = provider(config().with_dimension(dim));
        assert_eq!(p.info().dimension, dim);
        let got = p.embed(&refs(&r.docs), InputKind::Document).expect("embed");
        for (g, want) in got.vectors.iter().zip(&r.doc_vecs) {
            assert_eq!(g.len(), dim);
            assert!((norm(g) - 1.0).abs() < 1e-5);
            assert!(cosine(g, &want[..dim]) >= MIN_COSINE, "dim {dim}");
        }
    }
}

#[test]
fn outputs_are_unit_length_unless_disabled() {
    let r = reference();
    let p = provider(config());
    let got = p.embed(&refs(&r.docs), InputKind::Document).expect("embed");
    assert!(got.vectors.iter().all(|v| (norm(v) - 1.0).abs() < 1e-5));
    let mut c = config();
    c.normalize = false;
    let raw = provider(c).embed(&refs(&r.docs), InputKind::Document).expect("embed");
    assert!(raw.vectors.iter().any(|v| (norm(v) - 1.0).abs() > 1e-2));
}

#[test]
fn wrong_pooling_is_caught_by_the_reference() {
    // Guards the reference test itself: mean pooling must not pass as last-token pooling.
    let r = reference();
    let p = provider(config().with_pooling(Pooling::Mean));
    let got = p.embed(&refs(&r.docs), InputKind::Document).expect("embed");
    let worst =
        got.vectors.iter().zip(&r.doc_vecs).map(|(g, w)| cosine(g, w)).fold(1.0f32, f32::min);
    assert!(worst < 0.99, "mean pooling unexpectedly matches: {worst}");
}

#[test]
fn truncation_is_reported_and_long_inputs_work() {
    let p = provider(config().with_max_length(16));
    let long: String = "robot arm fault ".repeat(10_000); // 160k characters
    let cjk: String = "机器人在装卸区附近停止🤖".repeat(500);
    let got =
        p.embed(&[long.as_str(), "short", cjk.as_str(), ""], InputKind::Document).expect("embed");
    assert_eq!(got.truncated, vec![true, false, true, false]);
    assert_eq!(got.token_counts[0], 16);
    assert_eq!(got.token_counts[2], 16);
    assert_eq!(got.token_counts[3], 1, "empty text is just <|endoftext|>");
    assert!(got.vectors.iter().all(|v| v.len() == 64 && v.iter().all(|x| x.is_finite())));
}

#[test]
fn long_texts_embed_from_a_prefix_exactly_as_in_full() {
    // max_length 16: texts over 16 * 64 bytes are tokenized from a prefix when that provably
    // keeps the same first tokens. The result must equal tokenizing a shorter, uncut prefix that
    // already holds more than 16 tokens (and so truncates to the same ones).
    let p = provider(config().with_max_length(16));
    let words: String = "robot arm fault near the dock, ".repeat(50_000);
    let cjk: String = "机器人在装卸区附近停止🤖 ".repeat(50_000);
    let one_word: String = "a".repeat(200_000); // one pre-token word: the cut could split it
    for text in [&words, &cjk, &one_word] {
        let mut short = 600;
        while !text.is_char_boundary(short) {
            short -= 1;
        }
        let got = p.embed(&[text.as_str(), &text[..short]], InputKind::Document).expect("embed");
        assert_eq!(got.truncated, vec![true, true]);
        assert_eq!(got.token_counts, vec![16, 16]);
        assert_eq!(got.vectors[0], got.vectors[1], "{}", &text[..20]);
    }
}

#[test]
fn empty_batch_is_empty() {
    let p = provider(config());
    assert!(p.embed(&[], InputKind::Query).expect("embed").vectors.is_empty());
}

#[test]
fn missing_model_or_tokenizer_is_a_typed_error() {
    let mut c = config();
    c.model_path = qwen_dir().join("nope.onnx");
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::MissingFile { what: "model", .. })
    ));
    let mut c = config();
    c.tokenizer_path = qwen_dir().join("nope.json");
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::MissingFile { what: "tokenizer", .. })
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        OnnxConfig::from_dir(dir.path()),
        Err(EmbedError::MissingFile { what: "model.onnx", .. })
    ));
    let mut c = config();
    c.tokenizer_path = qwen_dir().join("config.json"); // JSON, but no tokenizer
    assert!(matches!(OnnxEmbeddingProvider::new(c), Err(EmbedError::Tokenizer { .. })));
}

#[test]
fn tokenizer_that_does_not_fit_the_model_is_rejected() {
    // MiniLM's WordPiece tokenizer has 30,522 ids; the tiny Qwen3 model has 600 rows.
    let mut c = config();
    c.tokenizer_path = minilm_dir().join("tokenizer.json");
    c.eos_token = None;
    c.model_vocab_size = None; // force the run-time check
    match OnnxEmbeddingProvider::new(c) {
        Err(EmbedError::TokenizerModelMismatch { tokenizer_vocab: 30522, .. }) => {}
        other => panic!("expected TokenizerModelMismatch, got {other:?}"),
    }
    let mut c = config();
    c.tokenizer_path = minilm_dir().join("tokenizer.json");
    c.eos_token = None;
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::TokenizerModelMismatch { .. })
    ));
}

#[test]
fn configured_dimension_larger_than_the_model_is_rejected() {
    match OnnxEmbeddingProvider::new(config().with_dimension(65)) {
        Err(EmbedError::DimensionMismatch { configured: 65, model: 64 }) => {}
        other => panic!("expected DimensionMismatch, got {other:?}"),
    }
}

#[test]
fn unavailable_provider_is_an_error_unless_fallback_is_allowed() {
    // The CPU wheel of onnxruntime has no CUDA provider.
    let c = config().with_execution_provider(ExecutionProviderConfig::Cuda { device_id: 0 });
    match OnnxEmbeddingProvider::new(c.clone()) {
        Err(EmbedError::ProviderUnavailable { provider: "CUDA", .. }) => {}
        other => panic!("expected ProviderUnavailable, got {other:?}"),
    }
    let p = provider(c.clone().with_fallback(true));
    assert!(
        p.info().execution_provider.starts_with("CPU (fallback from CUDA"),
        "{}",
        p.info().execution_provider
    );
    let r = reference();
    let got = p.embed(&[r.docs[0].as_str()], InputKind::Document).expect("embed");
    assert!(cosine(&got.vectors[0], &r.doc_vecs[0]) >= MIN_COSINE);
    // Several sessions fall back together and answer side by side.
    let p = std::sync::Arc::new(provider(c.with_fallback(true).with_parallel_runs(2)));
    assert!(p.info().execution_provider.starts_with("CPU (fallback from CUDA"));
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let (p, text) = (p.clone(), r.docs[i % r.docs.len()].clone());
            std::thread::spawn(move || p.embed(&[text.as_str()], InputKind::Document))
        })
        .collect();
    for (i, t) in runs.into_iter().enumerate() {
        let got = t.join().expect("thread").expect("embed");
        assert!(cosine(&got.vectors[0], &r.doc_vecs[i % r.docs.len()]) >= MIN_COSINE);
    }
}

#[tokio::test]
async fn async_constructor_works() {
    let p = OnnxEmbeddingProvider::with_config(config()).await.expect("async");
    assert_eq!(p.info().dimension, 64);
}

#[test]
fn fixed_shape_single_texts_match_transformers() {
    // fixed_single(24): single texts of <= 24 tokens are left-padded to 24 and run through the
    // [1, 24] session (on CUDA it replays a CUDA graph; here the same session on the CPU).
    // Longer texts and batches take the dynamic session. Both must match the reference.
    let r = reference();
    let p = provider(config().with_fixed_single(24));
    let at_load = p.fixed_runs();
    let mut fixed_runs = 0;
    for (i, (text, want)) in r.docs.iter().zip(&r.doc_vecs).enumerate() {
        let got = p.embed(&[text], InputKind::Document).expect("embed");
        fixed_runs += usize::from(r.doc_tokens[i] <= 24);
        let c = cosine(&got.vectors[0], want);
        assert!(c >= MIN_COSINE, "{text:?} ({} tokens): cosine {c}", r.doc_tokens[i]);
    }
    assert!(fixed_runs >= 3 && fixed_runs < r.docs.len(), "both paths exercised: {fixed_runs}");
    assert_eq!(
        p.fixed_runs() - at_load,
        fixed_runs as u64,
        "texts of <= 24 tokens, and only they, ran fixed"
    );
    for (q, want) in r.queries.iter().zip(&r.query_vecs) {
        let got = p.embed(&[q], InputKind::Query).expect("embed");
        assert!(cosine(&got.vectors[0], want) >= MIN_COSINE, "{q:?}");
    }
    let before = p.fixed_runs();
    let batch = p.embed(&refs(&r.docs[..4]), InputKind::Document).expect("batch");
    assert_eq!(p.fixed_runs(), before, "batches take the dynamic session");
    for (v, want) in batch.vectors.iter().zip(&r.doc_vecs) {
        assert!(cosine(v, want) >= MIN_COSINE);
    }
}

#[test]
fn fixed_shape_size_is_validated() {
    for bad in [0usize, 65] {
        match OnnxEmbeddingProvider::new(config().with_max_length(64).with_fixed_single(bad)) {
            Err(EmbedError::InvalidConfig { field: "fixed_single", .. }) => {}
            other => panic!("expected InvalidConfig for {bad}, got {other:?}"),
        }
    }
}
