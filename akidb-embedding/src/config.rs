//! Configuration: execution providers, model files, pooling and prompts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::EmbedError;
pub use akidb_embed_api::Pooling;

/// Where the model runs.
///
/// A provider that cannot be registered is an error unless [`OnnxConfig::allow_fallback`] is set;
/// then AkiDB logs a warning and runs on CPU. There is never a silent CPU fallback:
/// [`crate::ModelInfo::execution_provider`] always names the provider actually in use.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ExecutionProviderConfig {
    /// NVIDIA TensorRT (Jetson Thor with JetPack's ONNX Runtime, or any ONNX Runtime built with
    /// TensorRT). Nodes TensorRT cannot take run on CUDA, then CPU.
    TensorRT {
        /// CUDA device ordinal.
        device_id: i32,
        /// Build fp16 engines (recommended: the default of [`ExecutionProviderConfig::tensorrt`]).
        fp16_enable: bool,
        /// Declare the model FP8 Q/DQ-quantised. TensorRT has no "make it FP8" switch: it runs in
        /// FP8 exactly the layers that carry FP8 QuantizeLinear/DequantizeLinear pairs. With this
        /// flag AkiDB checks that the model has Q/DQ nodes (else [`EmbedError::Fp8NeedsQdqModel`]),
        /// keeps fp16 on for the other layers, and keys the engine cache apart. Produce such a
        /// model with NVIDIA ModelOpt (`modelopt.onnx.quantization --quantize_mode fp8`) from the
        /// fp16 ONNX export.
        fp8_enable: bool,
        /// Build INT8 engines; like FP8 this needs a Q/DQ (or calibrated) model.
        int8_enable: bool,
        /// Directory for serialized engines (`trt_engine_cache_path`); building an engine takes
        /// minutes on a Jetson, loading a cached one milliseconds. `None`: no engine cache.
        engine_cache_path: Option<PathBuf>,
        /// Directory for the tactic timing cache; `None`: same as the engine cache.
        timing_cache_path: Option<PathBuf>,
        /// Optimisation profile: largest batch and sequence length engines are built for.
        max_batch: usize,
        /// See `max_batch`.
        max_sequence: usize,
        /// Batch x sequence length the engine is tuned for.
        opt_batch: usize,
        /// See `opt_batch`.
        opt_sequence: usize,
    },
    /// NVIDIA CUDA.
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
    /// Apple CoreML (macOS).
    CoreML,
    /// CPU (always available).
    #[default]
    Cpu,
}

impl ExecutionProviderConfig {
    /// TensorRT with fp16, engine and timing cache in `cache_dir`, profiles up to 64 x 512.
    pub fn tensorrt(device_id: i32, cache_dir: impl Into<PathBuf>) -> Self {
        ExecutionProviderConfig::TensorRT {
            device_id,
            fp16_enable: true,
            fp8_enable: false,
            int8_enable: false,
            engine_cache_path: Some(cache_dir.into()),
            timing_cache_path: None,
            max_batch: 64,
            max_sequence: 512,
            opt_batch: 32,
            opt_sequence: 128,
        }
    }

    /// The provider's name as AkiDB reports it.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutionProviderConfig::TensorRT { .. } => "TensorRT",
            ExecutionProviderConfig::Cuda { .. } => "CUDA",
            ExecutionProviderConfig::CoreML => "CoreML",
            ExecutionProviderConfig::Cpu => "CPU",
        }
    }
}

/// Which side padding goes on when texts of a batch differ in length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingSide {
    /// Pad at the end (BERT family).
    Right,
    /// Pad at the start (Qwen3-Embedding's tokenizer default).
    Left,
}

/// Configuration of an [`crate::OnnxEmbeddingProvider`].
///
/// Defaults (from [`OnnxConfig::new`]): CPU, mean pooling, L2-normalised output, no prompts,
/// right padding, `max_length` 512, runs of at most 32 texts and (CPU) 512 padded tokens,
/// ONNX Runtime intra-op threads = available cores, no fallback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OnnxConfig {
    /// The ONNX model (`model.onnx`).
    pub model_path: PathBuf,
    /// The Hugging Face `tokenizer.json`.
    pub tokenizer_path: PathBuf,
    /// Model name recorded in collection schemas.
    pub model_name: String,
    /// Output dimension: the model's hidden size, or fewer for Matryoshka truncation (first `d`
    /// dimensions, then L2 normalisation).
    pub dimension: usize,
    /// Longest input in tokens (special tokens included); longer texts are truncated and reported.
    pub max_length: usize,
    /// Where the model runs.
    pub execution_provider: ExecutionProviderConfig,
    /// Register the CPU provider instead (with a logged warning) when the requested one fails.
    pub allow_fallback: bool,
    /// Pooling.
    pub pooling: Pooling,
    /// L2-normalise outputs (default `true`).
    pub normalize: bool,
    /// Text prepended to queries, e.g. Qwen3's `Instruct: {task}\nQuery:`.
    pub query_prompt: Option<String>,
    /// Text prepended to documents (E5's `passage: `).
    pub document_prompt: Option<String>,
    /// Token appended when the tokenizer did not end the sequence with it (Qwen3:
    /// `<|endoftext|>`), needed by last-token pooling.
    pub eos_token: Option<String>,
    /// Padding side.
    pub padding: PaddingSide,
    /// Most texts per model run.
    pub max_batch: usize,
    /// Most padded tokens (batch x longest) per model run; texts are sorted by length and split
    /// into runs under this budget (a text longer than it runs alone). `None`: 512 on the CPU,
    /// where small length-homogeneous runs are fastest (measured: 1.4x the texts/s of one padded
    /// batch of 32), and 16,384 on GPUs, which want big batches.
    pub max_batch_tokens: Option<usize>,
    /// ONNX Runtime intra-op threads (`None`: available cores).
    pub intra_threads: Option<usize>,
    /// Model runs that may go at once (default 1), each in its own ONNX Runtime session, with
    /// its own copy of the weights. For many concurrent callers on the CPU: single-threaded
    /// runs side by side beat one run spread over all cores at the small batches queries make
    /// (MiniLM on 2 cores, 10-17-token queries: 1 thread takes 4.2-4.5 ms of CPU per text at
    /// batch 4 to 8, 2 threads 4.8-6.6 ms at batch 8, `scripts/model_ceiling.py`; akidb-server
    /// at 8 clients 262-321 queries/s with 2 runs against 206-214 with 1). Pair it with as many
    /// callers, e.g. a `BatchingEmbedder` with as many workers, and `intra_threads` of cores / n.
    pub parallel_runs: usize,
    /// Whether idle intra-op threads spin waiting for the next piece of work (ONNX Runtime's
    /// `session.intra_op.allow_spinning`). Spinning shortens the hand-over between a run's
    /// parallel steps but burns the cores between runs: [`SPINNING_DEFAULT`], see there.
    pub intra_spinning: bool,
    /// The ONNX Runtime library to load (`None`: see [`crate::runtime`]).
    pub ort_library_path: Option<PathBuf>,
    /// Vocabulary size of the model's embedding table, when known (`config.json`), to reject a
    /// tokenizer that does not fit before the first run.
    pub model_vocab_size: Option<usize>,
    /// Single texts of up to this many tokens (special tokens and prompt included) run through
    /// a second session of fixed shape `[1, n]`, padded to `n`; on CUDA that session replays a
    /// captured CUDA graph. The batch-1 (query) latency lever on GPUs; costs a second copy of
    /// the weights. See the `fixed` module docs. `None` (default): off.
    pub fixed_single: Option<usize>,
    /// ONNX Runtime profiling: a JSON trace of every node run, written to
    /// `{prefix}_{timestamp}.json` when the provider is dropped. For diagnosis (it slows runs).
    pub profile_prefix: Option<PathBuf>,
}

/// Default of [`OnnxConfig::intra_spinning`].
pub const SPINNING_DEFAULT: bool = true;

impl OnnxConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        model_path: impl Into<PathBuf>,
        tokenizer_path: impl Into<PathBuf>,
        model_name: impl Into<String>,
        dimension: usize,
    ) -> Self {
        Self {
            model_path: model_path.into(),
            tokenizer_path: tokenizer_path.into(),
            model_name: model_name.into(),
            dimension,
            max_length: 512,
            execution_provider: ExecutionProviderConfig::Cpu,
            allow_fallback: false,
            pooling: Pooling::Mean,
            normalize: true,
            query_prompt: None,
            document_prompt: None,
            eos_token: None,
            padding: PaddingSide::Right,
            max_batch: 32,
            max_batch_tokens: None,
            intra_threads: None,
            parallel_runs: 1,
            intra_spinning: SPINNING_DEFAULT,
            ort_library_path: None,
            model_vocab_size: None,
            fixed_single: None,
            profile_prefix: None,
        }
    }

    /// Runs single texts of up to `tokens` tokens through a fixed-shape session (CUDA graphs
    /// on CUDA); see [`OnnxConfig::fixed_single`].
    pub fn with_fixed_single(mut self, tokens: usize) -> Self {
        self.fixed_single = Some(tokens);
        self
    }

    /// Turns on ONNX Runtime profiling; see [`OnnxConfig::profile_prefix`].
    pub fn with_ort_profiling(mut self, prefix: impl Into<PathBuf>) -> Self {
        self.profile_prefix = Some(prefix.into());
        self
    }

    /// Sets the execution provider.
    pub fn with_execution_provider(mut self, ep: ExecutionProviderConfig) -> Self {
        self.execution_provider = ep;
        self
    }
    /// Allows falling back to CPU (with a warning) when the provider cannot be registered.
    pub fn with_fallback(mut self, allow: bool) -> Self {
        self.allow_fallback = allow;
        self
    }
    /// Sets the output dimension (Matryoshka truncation when below the hidden size).
    pub fn with_dimension(mut self, dimension: usize) -> Self {
        self.dimension = dimension;
        self
    }
    /// Sets `max_length`.
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }
    /// Sets the pooling.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }
    /// Sets the Qwen3-style query instruction: queries become `Instruct: {task}\nQuery:{query}`.
    pub fn with_query_instruction(mut self, task: &str) -> Self {
        self.query_prompt = Some(format!("Instruct: {task}\nQuery:"));
        self
    }
    /// Sets the padding side.
    pub fn with_padding(mut self, side: PaddingSide) -> Self {
        self.padding = side;
        self
    }
    /// Sets ONNX Runtime intra-op threads.
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = Some(threads);
        self
    }
    /// Sets how many model runs may go at once (see [`OnnxConfig::parallel_runs`]).
    pub fn with_parallel_runs(mut self, n: usize) -> Self {
        self.parallel_runs = n;
        self
    }
    /// Sets whether idle intra-op threads spin (see [`OnnxConfig::intra_spinning`]).
    pub fn with_intra_spinning(mut self, spin: bool) -> Self {
        self.intra_spinning = spin;
        self
    }
    /// Sets the most texts per model run.
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }
    /// Sets the padded-token budget of one model run.
    pub fn with_max_batch_tokens(mut self, tokens: usize) -> Self {
        self.max_batch_tokens = Some(tokens);
        self
    }
    /// The padded-token budget in force (see [`OnnxConfig::max_batch_tokens`]).
    pub fn batch_token_budget(&self) -> usize {
        self.max_batch_tokens.unwrap_or(match self.execution_provider {
            ExecutionProviderConfig::Cpu | ExecutionProviderConfig::CoreML => 512,
            _ => 16_384,
        })
    }
    /// Sets the ONNX Runtime library to load.
    pub fn with_ort_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.ort_library_path = Some(path.into());
        self
    }

    /// Reads a sentence-transformers style folder:
    ///
    /// - `model.onnx` (or `onnx/model.onnx`): the model;
    /// - `tokenizer.json`: the tokenizer;
    /// - `config.json`: `model_type` (Qwen family: last-token pooling, `<|endoftext|>`, left
    ///   padding), `hidden_size`, `vocab_size`, `max_position_embeddings`;
    /// - `1_Pooling/config.json`: pooling mode (mean / cls / lasttoken);
    /// - `config_sentence_transformers.json`: `prompts.query`, `prompts.document` (also
    ///   `passage`);
    /// - `sentence_bert_config.json`: `max_seq_length`;
    /// - `tokenizer_config.json`: `padding_side`, `eos_token`.
    ///
    /// The model name is the folder's name unless `akidb.json` says `{"name": ...}`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(EmbedError::MissingFile {
                what: "model directory",
                path: dir.to_path_buf(),
            });
        }
        let model_path = [dir.join("model.onnx"), dir.join("onnx/model.onnx")]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| EmbedError::MissingFile {
                what: "model.onnx",
                path: dir.join("model.onnx"),
            })?;
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(EmbedError::MissingFile { what: "tokenizer.json", path: tokenizer_path });
        }
        let model: ModelJson = read_json(&dir.join("config.json"))?.unwrap_or_default();
        let pooling_cfg: Option<PoolingJson> = read_json(&dir.join("1_Pooling/config.json"))?;
        let st: StConfigJson =
            read_json(&dir.join("config_sentence_transformers.json"))?.unwrap_or_default();
        let sbert: SbertJson =
            read_json(&dir.join("sentence_bert_config.json"))?.unwrap_or_default();
        let tok_cfg: TokConfigJson =
            read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
        let names: AkidbJson = read_json(&dir.join("akidb.json"))?.unwrap_or_default();

        let qwen = model.model_type.as_deref().is_some_and(|t| t.starts_with("qwen"));
        let pooling = match pooling_cfg.as_ref().map(PoolingJson::mode).transpose()?.flatten() {
            Some(p) => p,
            None if qwen => Pooling::LastToken,
            None => Pooling::Mean,
        };
        let dimension = pooling_cfg
            .as_ref()
            .and_then(|p| p.word_embedding_dimension.or(p.embedding_dimension))
            .or(model.hidden_size)
            .unwrap_or(0);
        let positions = model.max_position_embeddings.unwrap_or(512);
        let max_length =
            sbert.max_seq_length.unwrap_or(if qwen { 8192 } else { 512 }).min(positions);
        let name = names.name.unwrap_or_else(|| {
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("model").to_string()
        });
        let mut cfg = OnnxConfig::new(model_path, tokenizer_path, name, dimension);
        cfg.pooling = pooling;
        cfg.max_length = max_length;
        cfg.model_vocab_size = model.vocab_size;
        cfg.query_prompt = st.prompts.get("query").filter(|p| !p.is_empty()).cloned();
        // sentence-transformers' names for the document side; recent versions save an empty
        // `document` beside a model's own `passage` prompt (E5), so the first non-empty wins.
        cfg.document_prompt = ["document", "passage", "corpus"]
            .iter()
            .filter_map(|k| st.prompts.get(*k))
            .find(|p| !p.is_empty())
            .cloned();
        cfg.padding = match tok_cfg.padding_side.as_deref() {
            Some("left") => PaddingSide::Left,
            Some(_) => PaddingSide::Right,
            None if qwen => PaddingSide::Left,
            None => PaddingSide::Right,
        };
        if pooling == Pooling::LastToken {
            cfg.eos_token = tok_cfg
                .eos_token
                .and_then(TokenJson::content)
                .or_else(|| Some("<|endoftext|>".into()));
        }
        Ok(cfg)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, EmbedError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| EmbedError::ConfigFile { path: path.to_path_buf(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmbedError::Io { path: path.to_path_buf(), source }),
    }
}

#[derive(Deserialize, Default)]
struct ModelJson {
    model_type: Option<String>,
    hidden_size: Option<usize>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
}

/// `1_Pooling/config.json`: sentence-transformers writes either one `pooling_mode` name
/// (version 5 and later) or a boolean per mode (before).
#[derive(Deserialize, Default)]
struct PoolingJson {
    word_embedding_dimension: Option<usize>,
    embedding_dimension: Option<usize>,
    pooling_mode: Option<String>,
    include_prompt: Option<bool>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
}

impl PoolingJson {
    /// The pooling it names (`None`: none named); `InvalidConfig` for modes AkiDB does not
    /// compute, rather than another pooling's vectors.
    fn mode(&self) -> Result<Option<Pooling>, EmbedError> {
        let bad = |value: &str| EmbedError::InvalidConfig {
            field: "1_Pooling/config.json",
            value: value.to_string(),
            expected: "cls, mean or lasttoken pooling (with the prompt included)",
        };
        if self.include_prompt == Some(false) {
            return Err(bad("include_prompt: false"));
        }
        if let Some(m) = &self.pooling_mode {
            return match m.as_str() {
                "cls" => Ok(Some(Pooling::Cls)),
                "mean" => Ok(Some(Pooling::Mean)),
                "lasttoken" => Ok(Some(Pooling::LastToken)),
                other => Err(bad(other)),
            };
        }
        if self.pooling_mode_max_tokens
            || self.pooling_mode_mean_sqrt_len_tokens
            || self.pooling_mode_weightedmean_tokens
        {
            return Err(bad("max, mean_sqrt_len or weightedmean tokens"));
        }
        Ok(if self.pooling_mode_lasttoken {
            Some(Pooling::LastToken)
        } else if self.pooling_mode_cls_token {
            Some(Pooling::Cls)
        } else if self.pooling_mode_mean_tokens {
            Some(Pooling::Mean)
        } else {
            None
        })
    }
}

#[derive(Deserialize, Default)]
struct StConfigJson {
    #[serde(default)]
    prompts: std::collections::HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct SbertJson {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize, Default)]
struct TokConfigJson {
    padding_side: Option<String>,
    eos_token: Option<TokenJson>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TokenJson {
    Plain(String),
    Added { content: String },
}

impl TokenJson {
    fn content(self) -> Option<String> {
        match self {
            TokenJson::Plain(s) | TokenJson::Added { content: s } => Some(s),
        }
    }
}

#[derive(Deserialize, Default)]
struct AkidbJson {
    name: Option<String>,
}
