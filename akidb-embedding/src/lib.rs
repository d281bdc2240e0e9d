//! AkiDB embedding: text becomes normalised vectors inside the process.
//!
//! [`OnnxEmbeddingProvider`] runs a Hugging Face tokenizer (`tokenizers`) and an ONNX model on
//! ONNX Runtime (`ort`, loaded at run time: see [`runtime`]) on the CPU, CUDA, TensorRT or CoreML
//! ([`ExecutionProviderConfig`]). Two model families are handled:
//!
//! - **Qwen3-Embedding** (0.6B: 1024-d, 4B: 2560-d, 8B: 4096-d): last-token pooling located through
//!   the attention mask (left or right padding), `<|endoftext|>` appended when the tokenizer does
//!   not, queries as `Instruct: {task}\nQuery:{query}`, documents without instruction, Matryoshka
//!   output dimension (first `d` dimensions, then L2 normalisation).
//! - **BERT family** (all-MiniLM-L6-v2, E5, BGE): mean or CLS pooling and prompts, read from the
//!   model folder's sentence-transformers files ([`OnnxConfig::from_dir`]).
//!
//! Texts are tokenized in parallel, sorted by length and grouped into runs of similar length
//! (dynamic padding), so short texts do not pay for long ones; a text's embedding does not depend
//! on what else is in its batch (up to float rounding, cosine > 0.99999). Texts longer than
//! `max_length` tokens are truncated and reported in [`Embeddings::truncated`].
//!
//! On GPUs, [`OnnxConfig::with_fixed_single`] gives queries a fast lane: single texts of up to
//! `n` tokens run through a second, fixed-shape session that replays a captured CUDA graph
//! (module `fixed`; 4B Qwen3 batch-1 p95 22 -> 6.4 ms on an H200, at the cost of a second copy
//! of the weights).
//!
//! # Example
//!
//! ```no_run
//! use akidb_embedding::{Embedder, InputKind, OnnxEmbeddingProvider};
//! # fn main() -> Result<(), akidb_embedding::EmbedError> {
//! let model = OnnxEmbeddingProvider::from_dir("models/all-MiniLM-L6-v2")?;
//! let out = model.embed(&["lidar timeout on robot 3"], InputKind::Document)?;
//! assert_eq!(out.vectors[0].len(), 384);
//! # Ok(()) }
//! ```
//!
//! # TensorRT on Jetson Thor
//!
//! JetPack ships an ONNX Runtime built with the TensorRT provider. Point `ORT_DYLIB_PATH` at its
//! `libonnxruntime.so`, export the model to ONNX in fp16 (or fp32: TensorRT converts), and use
//! [`ExecutionProviderConfig::tensorrt`]`(0, "/var/cache/akidb/trt")`: fp16 engines, engine and
//! timing caches in that directory (the first start builds engines for minutes; later starts load
//! them), optimisation profiles from 1 x 1 to 64 x 512 tokens tuned for 32 x 128. FP8 needs an
//! FP8 Q/DQ model (NVIDIA ModelOpt: `python -m modelopt.onnx.quantization --onnx_path model.onnx
//! --quantize_mode fp8`), then `fp8_enable: true`.

mod config;
mod error;
mod fixed;
pub mod identity;
mod provider;
pub mod runtime;

pub use config::{ExecutionProviderConfig, OnnxConfig, PaddingSide, Pooling};
pub use error::EmbedError;
pub use provider::{OnnxEmbeddingProvider, MAX_SEQUENCE};

/// Whether a text is a query or a document (models prompt them differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A document to store.
    Document,
    /// A search query.
    Query,
}

/// What a model is, as recorded in collection schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// Model name (for messages; identity is [`ModelInfo::digest`]).
    pub name: String,
    /// The model's identity: a digest of its weights, tokenizer and settings (see
    /// [`identity`]). Two models with the same digest produce the same vectors.
    pub digest: String,
    /// Output dimension (after Matryoshka truncation).
    pub dimension: usize,
    /// The model's hidden size.
    pub hidden_size: usize,
    /// Pooling.
    pub pooling: Pooling,
    /// Prompt prepended to queries.
    pub query_prompt: Option<String>,
    /// Prompt prepended to documents.
    pub document_prompt: Option<String>,
    /// Longest input in tokens.
    pub max_length: usize,
    /// The execution provider actually in use (`CPU (fallback from CUDA: ...)` after a fallback).
    pub execution_provider: String,
}

/// Output of [`Embedder::embed`], in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// One vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens per text after truncation, special tokens included.
    pub token_counts: Vec<usize>,
    /// Whether each text was truncated to `max_length`.
    pub truncated: Vec<bool>,
}

/// Checks what an [`Embedder`] returned for `texts` texts: one vector of `info.dimension` values,
/// one token count and one truncation flag per text, or [`EmbedError::BadOutput`] naming the
/// model. Everything that consumes an embedder's output checks it with this first.
pub fn check_output(info: &ModelInfo, texts: usize, out: &Embeddings) -> Result<(), EmbedError> {
    let bad = |what, expected, got| EmbedError::BadOutput {
        model: info.name.clone(),
        what,
        expected,
        got,
    };
    if out.vectors.len() != texts {
        return Err(bad("vectors", texts, out.vectors.len()));
    }
    if out.token_counts.len() != texts {
        return Err(bad("token counts", texts, out.token_counts.len()));
    }
    if out.truncated.len() != texts {
        return Err(bad("truncation flags", texts, out.truncated.len()));
    }
    if let Some(v) = out.vectors.iter().find(|v| v.len() != info.dimension) {
        return Err(bad("values in a vector", info.dimension, v.len()));
    }
    Ok(())
}

/// A text embedding backend: small, synchronous, shareable.
pub trait Embedder: Send + Sync {
    /// What the model is.
    fn info(&self) -> &ModelInfo;
    /// Embeds texts (any number: they are batched internally).
    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError>;
}
