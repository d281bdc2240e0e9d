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
//! (module `fixed`; 4B Qwen3 batch-1 p95 22 -> 6.4 ms on an H200). Both sessions read one copy
//! of the weights (module `weights`: shared initializers on the device they run on).
//!
//! The precision is in the model's graph, not in the configuration: a folder whose graph was
//! quantized (`scripts/gpu/quantize_nbits.py`: weight-only int8/int4 `MatMulNBits`;
//! `scripts/gpu/quantize_fp8.py`: FP8 E4M3 `GemmFloat8`) loads like any other, and
//! [`ModelInfo::precision`] says what it is (read from the graph by module `onnx_graph`). An
//! operator the loaded ONNX Runtime cannot run on the provider in use (`GemmFloat8` on the CPU,
//! or on a GPU without FP8 tensor cores) is [`EmbedError::UnsupportedOperator`] at load.
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
mod onnx_graph;
mod provider;
pub mod registry;
pub mod runtime;
mod weights;

pub use akidb_embed_api::{
    check_output, BoxError, EmbedError, Embedder, Embeddings, InputKind, ModelInfo, Pooling,
};
pub use config::{ExecutionProviderConfig, OnnxConfig, PaddingSide, SPINNING_DEFAULT};
pub use provider::{OnnxEmbeddingProvider, MAX_PARALLEL_RUNS, MAX_SEQUENCE};
pub use registry::{ModelRegistry, ModelStatus};
