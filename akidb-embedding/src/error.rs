//! The error type of the embedding layer.

use std::path::PathBuf;

/// Any failure of the embedding layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// No ONNX Runtime shared library was found.
    #[error(
        "ONNX Runtime shared library not found (looked at: {searched:?}). AkiDB loads it only from \
         a path you name: set ORT_DYLIB_PATH to the library (in a checkout: `bash scripts/setup.sh`, \
         then `source scripts/env.sh`), or AKIDB_ORT_VENV to a Python environment that has the \
         `onnxruntime` wheel, or pass OnnxConfig::with_ort_library"
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
        source: ort::LoadDynamicError,
    },
    /// A different ONNX Runtime library is already loaded in this process.
    #[error("ONNX Runtime is already loaded from another library in this process; {requested} was not loaded")]
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
    #[error("model {path} has inputs {inputs:?} and outputs {outputs:?}; expected input_ids (+ attention_mask) and one float output")]
    ModelSignature {
        /// The model.
        path: PathBuf,
        /// Its input names.
        inputs: Vec<String>,
        /// Its output names.
        outputs: Vec<String>,
    },
    /// The configured output dimension does not fit the model.
    #[error("configured dimension {configured} does not fit the model's output dimension {model} (Matryoshka truncation allows 1..={model})")]
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
    #[error("execution provider {provider} is unavailable: {reason} (set allow_fallback to run on CPU instead)")]
    ProviderUnavailable {
        /// The provider.
        provider: &'static str,
        /// Why.
        reason: String,
    },
    /// FP8 needs a model with FP8 Q/DQ nodes.
    #[error("fp8_enable needs a Q/DQ-quantised model (QuantizeLinear/DequantizeLinear nodes); {path} has none. See akidb-embedding's docs on producing one")]
    Fp8NeedsQdqModel {
        /// The model.
        path: PathBuf,
    },
    /// The fixed-shape single-text session gave other vectors than the dynamic one.
    #[error("the fixed-shape session of {tokens} tokens disagrees with the dynamic one (cosine {cosine}); leave fixed_single off for this model")]
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
        source: ort::Error,
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
        #[from]
        source: tokio::task::JoinError,
    },
}

pub(crate) fn ort_err<E: Into<ort::Error>>(context: &'static str) -> impl FnOnce(E) -> EmbedError {
    move |e| EmbedError::Ort { context, source: e.into() }
}
