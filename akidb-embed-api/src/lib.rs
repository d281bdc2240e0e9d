//! AkiDB's embedding contract: what an embedding backend is ([`Embedder`]), what goes in
//! ([`InputKind`]) and comes out ([`Embeddings`], [`ModelInfo`]), how it fails ([`EmbedError`]),
//! and the check every consumer applies to its output ([`check_output`]).
//!
//! No ONNX here: `akidb-core` builds on this crate alone, and the ONNX Runtime provider
//! (`akidb-embedding`) implements it, so a vector-only application compiles neither ONNX Runtime
//! nor tokenizers. Errors of the libraries behind a backend are kept as boxed sources.

use std::path::PathBuf;

/// The error of another library (ONNX Runtime, tokenizers, tokio), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any failure of the embedding layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// No ONNX Runtime shared library was found.
    #[error(
        "ONNX Runtime shared library not found (looked at: {searched:?}). AkiDB loads it only from \
         a path you name: set ORT_DYLIB_PATH to the library (in a checkout: \
         `bash scripts/setup.sh`, then `source scripts/env.sh`), or AKIDB_ORT_VENV to a Python \
         environment that has the `onnxruntime` wheel, or pass OnnxConfig::with_ort_library"
    )]
    RuntimeNotFound {
        /// Places looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// The library exists but could not be loaded (wrong file, version older than 1.30, ...).
    #[error("cannot load ONNX Runtime from {path}: {source}")]
    RuntimeLoad {
        /// The library.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: BoxError,
    },
    /// A different ONNX Runtime library is already loaded in this process.
    #[error(
        "ONNX Runtime is already loaded from another library in this process; {requested} was \
         not loaded"
    )]
    RuntimeAlreadyLoaded {
        /// The library that was asked for.
        requested: PathBuf,
    },
    /// A file the model needs is missing.
    #[error("{what} not found at {path}")]
    MissingFile {
        /// What it is (`model`, `tokenizer`, ...).
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A JSON configuration file of a model folder does not parse.
    #[error("cannot parse {path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// An unreadable file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer file is invalid.
    #[error("cannot load tokenizer {path}: {source}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// The tokenizers error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Tokenizing a text failed.
    #[error("tokenization failed: {source}")]
    Tokenize {
        /// The tokenizers error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The tokenizer produces ids the model does not have.
    #[error(
        "tokenizer does not fit the model: tokenizer has {tokenizer_vocab} tokens, model {model}"
    )]
    TokenizerModelMismatch {
        /// Tokenizer vocabulary size.
        tokenizer_vocab: usize,
        /// What the model said (its vocabulary size or its error on the largest id).
        model: String,
    },
    /// The ONNX model does not have the inputs or outputs an embedding model needs.
    #[error(
        "model {path} has inputs {inputs:?} and outputs {outputs:?}; expected input_ids (+ \
         attention_mask) and one float output"
    )]
    ModelSignature {
        /// The model.
        path: PathBuf,
        /// Its input names.
        inputs: Vec<String>,
        /// Its output names.
        outputs: Vec<String>,
    },
    /// The configured output dimension does not fit the model.
    #[error(
        "configured dimension {configured} does not fit the model's output dimension {model} \
         (Matryoshka truncation allows 1..={model})"
    )]
    DimensionMismatch {
        /// Configured.
        configured: usize,
        /// The model's hidden size.
        model: usize,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {field} = {value} ({expected})")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// The requested execution provider cannot be used and fallback was not allowed.
    #[error(
        "execution provider {provider} is unavailable: {reason} (set allow_fallback to run on \
         CPU instead)"
    )]
    ProviderUnavailable {
        /// The provider.
        provider: &'static str,
        /// Why.
        reason: String,
    },
    /// FP8 needs a model with FP8 Q/DQ nodes.
    #[error(
        "fp8_enable needs a Q/DQ-quantised model (QuantizeLinear/DequantizeLinear nodes); \
         {path} has none. See akidb-embedding's docs on producing one"
    )]
    Fp8NeedsQdqModel {
        /// The model.
        path: PathBuf,
    },
    /// A model file that is not a readable ONNX model.
    #[error("{path} is not a readable ONNX model: {reason}")]
    InvalidModelFile {
        /// The model.
        path: PathBuf,
        /// What is wrong, with the byte offset.
        reason: String,
    },
    /// The model's graph uses an operator that the loaded ONNX Runtime cannot run on the
    /// execution provider in use (e.g. `GemmFloat8` on the CPU, or on a GPU without FP8 tensor
    /// cores). Raised at load, never a silent run elsewhere.
    #[error(
        "the model uses operator {operator}, which ONNX Runtime cannot run on {provider}: {reason}"
    )]
    UnsupportedOperator {
        /// The operator (`GemmFloat8`, `MatMulNBits`, ...).
        operator: String,
        /// The execution provider in use.
        provider: String,
        /// ONNX Runtime's words.
        reason: String,
    },
    /// The fixed-shape single-text session gave other vectors than the dynamic one.
    #[error(
        "the fixed-shape session of {tokens} tokens disagrees with the dynamic one (cosine \
         {cosine}); leave fixed_single off for this model"
    )]
    FixedShapeMismatch {
        /// The configured token count.
        tokens: usize,
        /// Worst cosine between the two on the probe texts.
        cosine: f32,
    },
    /// ONNX Runtime failed.
    #[error("ONNX Runtime error during {context}: {source}")]
    Ort {
        /// What was being done.
        context: &'static str,
        /// ort's error.
        #[source]
        source: BoxError,
    },
    /// An embedder returned something other than one vector of its dimension per text.
    #[error("model {model} returned {got} {what} for {expected} texts")]
    BadOutput {
        /// The model's name.
        model: String,
        /// What was wrong: `vectors`, `token counts`, `truncation flags`, or `values in a vector`
        /// (then `expected` is the model's dimension and `got` the vector's length).
        what: &'static str,
        /// What was due.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// An embedder panicked; the embedding worker caught it and keeps serving.
    #[error("model {model} panicked while embedding: {message}")]
    Panicked {
        /// The model's name.
        model: String,
        /// The panic's message.
        message: String,
    },
    /// The embedding worker thread could not be started.
    #[error("cannot start the embedding worker of model {model}: {source}")]
    Worker {
        /// The model's name.
        model: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The async constructor's background task failed.
    #[error("background task failed: {source}")]
    Task {
        /// tokio's error.
        #[source]
        source: BoxError,
    },
}

/// How token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over attended tokens (all-MiniLM, E5).
    Mean,
    /// The first token (`[CLS]`; BGE).
    Cls,
    /// The last attended token, found through the attention mask (Qwen3-Embedding).
    LastToken,
}

impl Pooling {
    /// Name used in model identities.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::LastToken => "last_token",
        }
    }
}

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
    /// What the weights are, read from the model's graph: `fp32`, `fp16`, `bf16`,
    /// `int8 weights (MatMulNBits, block 128)`, `fp8-e4m3 (GemmFloat8)`, ...; `unknown` for an
    /// embedder that does not say.
    pub precision: String,
}

impl ModelInfo {
    /// A model's description: its name (for messages), its content digest (its identity: two
    /// models with the same digest produce the same vectors), its output dimension and pooling.
    /// Defaults: hidden size = `dimension`, no prompts, `max_length` 512, execution provider
    /// `"CPU"`; the `with_*` setters change them.
    pub fn new(
        name: impl Into<String>,
        digest: impl Into<String>,
        dimension: usize,
        pooling: Pooling,
    ) -> Self {
        Self {
            name: name.into(),
            digest: digest.into(),
            dimension,
            hidden_size: dimension,
            pooling,
            query_prompt: None,
            document_prompt: None,
            max_length: 512,
            execution_provider: "CPU".into(),
            precision: "unknown".into(),
        }
    }
    /// Sets the prompts prepended to queries and documents.
    pub fn with_prompts(mut self, query: Option<String>, document: Option<String>) -> Self {
        self.query_prompt = query;
        self.document_prompt = document;
        self
    }
    /// Sets the longest input in tokens.
    pub fn with_max_length(mut self, tokens: usize) -> Self {
        self.max_length = tokens;
        self
    }
    /// Sets the model's hidden size (when the output is truncated, Matryoshka style).
    pub fn with_hidden_size(mut self, hidden: usize) -> Self {
        self.hidden_size = hidden;
        self
    }
    /// Sets what the weights are (see [`ModelInfo::precision`]).
    pub fn with_precision(mut self, precision: impl Into<String>) -> Self {
        self.precision = precision.into();
        self
    }
    /// Sets the execution provider in use.
    pub fn with_execution_provider(mut self, provider: impl Into<String>) -> Self {
        self.execution_provider = provider.into();
        self
    }
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
    /// Whether it already merges concurrent calls into shared model runs (AkiDB's
    /// `BatchingEmbedder`): a database binds such a model as it is, instead of putting another
    /// merging layer in front of it.
    fn merges_calls(&self) -> bool {
        false
    }
}
