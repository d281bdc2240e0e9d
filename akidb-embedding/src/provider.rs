//! [`OnnxEmbeddingProvider`]: tokenizers + ONNX Runtime.

use std::borrow::Cow;
use std::sync::Mutex;

use ort::ep::ExecutionProvider;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::config::{ExecutionProviderConfig, OnnxConfig, PaddingSide, Pooling};
use crate::error::{ort_err, EmbedError};
use crate::fixed::{dimension_names, FixedRun};
use crate::onnx_graph::Graph;
use crate::weights::SharedWeights;
use crate::{runtime, Embedder, Embeddings, InputKind, ModelInfo};

/// Largest `max_length` accepted (Qwen3-Embedding's context is 32k tokens).
pub const MAX_SEQUENCE: usize = 32_768;

/// Most sessions [`OnnxConfig::parallel_runs`] may ask for (each holds a copy of the weights).
pub const MAX_PARALLEL_RUNS: usize = 64;

/// An embedding model running in process on ONNX Runtime.
///
/// `Send + Sync`: the tokenizer is shared, each session sits behind a mutex (one model run per
/// session at a time, [`OnnxConfig::parallel_runs`] sessions; ONNX Runtime parallelises inside
/// a run with its intra-op threads).
pub struct OnnxEmbeddingProvider {
    config: OnnxConfig,
    info: ModelInfo,
    tokenizer: Tokenizer,
    /// The dynamic-shape sessions, one per parallel run; `next` spreads waiting callers.
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
    /// The fixed-shape single-text session and its token count (see [`crate::fixed`]).
    fixed: Option<(usize, Mutex<FixedRun>)>,
    /// Runs answered by `fixed`.
    fixed_runs: std::sync::atomic::AtomicU64,
    /// The weights both sessions read (with `fixed` only); dropped after the sessions.
    shared: Option<SharedWeights>,
    signature: Signature,
    eos_id: Option<u32>,
    pad_id: u32,
}

impl std::fmt::Debug for OnnxEmbeddingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbeddingProvider").field("info", &self.info).finish()
    }
}

#[derive(Debug, Clone)]
struct Signature {
    attention_mask: bool,
    token_type_ids: bool,
    position_ids: bool,
    output: String,
    /// The output is already pooled (`[batch, hidden]`).
    pooled: bool,
    float16: bool,
}

/// Texts longer than `max_length` times this many bytes are tokenized from a prefix first
/// (see `OnnxEmbeddingProvider::encode_long`).
const BYTES_PER_TOKEN_BOUND: usize = 64;
/// Prefix lengths tried for a long text: `limit`, twice that, ... (4: up to 8 x `limit`).
const LONG_TEXT_PREFIX_STEPS: u32 = 4;
/// Bytes of text tokenized at once (the tokenizer's output is ~100x its input).
const TOKENIZE_CHUNK_BYTES: usize = 256 << 10;

/// One tokenized text.
struct Tokens {
    ids: Vec<i64>,
    truncated: bool,
}

impl OnnxEmbeddingProvider {
    /// Loads the model (async constructor: the work runs on tokio's blocking pool; feature
    /// `tokio`, on by default).
    #[cfg(feature = "tokio")]
    pub async fn with_config(config: OnnxConfig) -> Result<Self, EmbedError> {
        tokio::task::spawn_blocking(move || Self::new(config))
            .await
            .map_err(|e| EmbedError::Task { source: Box::new(e) })?
    }

    /// Loads a sentence-transformers style folder with [`OnnxConfig::from_dir`] defaults (CPU).
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self, EmbedError> {
        Self::new(OnnxConfig::from_dir(dir)?)
    }

    /// Loads the model.
    pub fn new(config: OnnxConfig) -> Result<Self, EmbedError> {
        validate(&config)?;
        let mut tokenizer = Tokenizer::from_file(&config.tokenizer_path).map_err(|source| {
            EmbedError::Tokenizer { path: config.tokenizer_path.clone(), source }
        })?;
        let eos_id = match &config.eos_token {
            Some(t) => Some(tokenizer.token_to_id(t).ok_or_else(|| EmbedError::InvalidConfig {
                field: "eos_token",
                value: t.clone(),
                expected: "a token of the tokenizer's vocabulary",
            })?),
            None => None,
        };
        let reserve = usize::from(eos_id.is_some());
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_length - reserve,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|source| EmbedError::Tokenizer {
                path: config.tokenizer_path.clone(),
                source,
            })?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or(eos_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .unwrap_or(0);
        tokenizer.with_padding(None);
        let vocab = tokenizer.get_vocab_size(true);
        if let Some(model_vocab) = config.model_vocab_size {
            if vocab > model_vocab {
                return Err(EmbedError::TokenizerModelMismatch {
                    tokenizer_vocab: vocab,
                    model: format!("has {model_vocab} (config.json vocab_size)"),
                });
            }
        }
        let graph = Graph::read(&config.model_path)?;
        if let ExecutionProviderConfig::TensorRT { fp8_enable: true, .. } =
            config.execution_provider
        {
            if graph.count("DequantizeLinear") == 0 {
                return Err(EmbedError::Fp8NeedsQdqModel { path: config.model_path.clone() });
            }
        }
        let digest = crate::identity::model_digest(&config)?;
        let env = runtime::environment(config.ort_library_path.as_deref())?;
        if config.fixed_single.is_some() && graph.nbits.is_some() {
            log::warn!(
                "fixed_single with a MatMulNBits (int8/int4) graph: its captured session keeps \
                 each node's dequantization buffers (measured +5 GB of device memory on \
                 Qwen3-4B for about 1 ms at batch 1; docs/gpu.md)"
            );
        }
        let shared = shared_weights(env, &config, &graph)?;
        let (session, active) = create_session(env, &config, shared.as_ref())?;
        let signature = read_signature(&session, &config)?;
        check_positions(&session, &config)?;
        let mut sessions = vec![Mutex::new(session)];
        if config.parallel_runs > 1 {
            // The other sessions run where the first one does: after a fallback, on the CPU,
            // without trying the unavailable provider (and warning) once per session again.
            let mut same = config.clone();
            if active.starts_with("CPU") {
                same.execution_provider = ExecutionProviderConfig::Cpu;
            }
            for _ in 1..config.parallel_runs {
                sessions.push(Mutex::new(create_session(env, &same, shared.as_ref())?.0));
            }
        }
        let mut provider = Self {
            info: ModelInfo::new(
                config.model_name.clone(),
                digest,
                config.dimension,
                config.pooling,
            )
            .with_hidden_size(0)
            .with_prompts(config.query_prompt.clone(), config.document_prompt.clone())
            .with_max_length(config.max_length)
            .with_precision(graph.precision())
            .with_execution_provider(active),
            config,
            tokenizer,
            sessions,
            next: std::sync::atomic::AtomicUsize::new(0),
            fixed: None,
            fixed_runs: std::sync::atomic::AtomicU64::new(0),
            shared,
            signature,
            eos_id,
            pad_id,
        };
        if let Err(e) = provider.probe(vocab) {
            // GemmFloat8's kernel needs FP8 tensor cores; on an older GPU the session loads and
            // the first run fails: that run is this one, at load.
            let on_gpu = !provider.info.execution_provider.starts_with("CPU");
            return Err(match (graph.count("GemmFloat8") > 0, on_gpu) {
                (true, true) => EmbedError::UnsupportedOperator {
                    operator: "GemmFloat8".into(),
                    provider: provider.info.execution_provider.clone(),
                    reason: format!(
                        "the first run failed (FP8 needs tensor cores of compute capability 8.9 \
                         or later): {e}"
                    ),
                },
                _ => e,
            });
        }
        if let Some(n) = provider.config.fixed_single {
            provider.open_fixed(env, n)?;
        }
        Ok(provider)
    }

    /// First runs: learn the hidden size, check the dimension, and check that the tokenizer's
    /// largest id exists in the model.
    fn probe(&mut self, vocab: usize) -> Result<(), EmbedError> {
        let small = Tokens { ids: vec![i64::from(self.pad_id); 2], truncated: false };
        let hidden = self.run(&[&small], &mut |_, v| v.len())?[0];
        if self.config.dimension == 0 {
            self.config.dimension = hidden;
            self.info.dimension = hidden;
        }
        if self.config.dimension > hidden {
            return Err(EmbedError::DimensionMismatch {
                configured: self.config.dimension,
                model: hidden,
            });
        }
        self.info.hidden_size = hidden;
        let largest = Tokens { ids: vec![vocab.saturating_sub(1) as i64; 2], truncated: false };
        if let Err(e) = self.run(&[&largest], &mut |_, v| v.len()) {
            return Err(EmbedError::TokenizerModelMismatch {
                tokenizer_vocab: vocab,
                model: format!("fails on token id {}: {e}", vocab - 1),
            });
        }
        Ok(())
    }

    /// Opens the fixed-shape `[1, n]` session (see [`crate::fixed`]) on the provider in use, and
    /// checks it against the dynamic session: two probe texts of different lengths, the second
    /// after the graph was captured, must give the same vectors (cosine >= 0.999).
    fn open_fixed(
        &mut self,
        env: &ort::environment::Environment,
        n: usize,
    ) -> Result<(), EmbedError> {
        let axes = dimension_names(&self.session(), "input_ids");
        if axes.len() != 2 || axes.iter().any(String::is_empty) {
            return Err(EmbedError::InvalidConfig {
                field: "fixed_single",
                value: n.to_string(),
                expected: "a model whose input_ids axes have names (batch, sequence), as \
                           transformers exports them",
            });
        }
        // The provider in use: a CPU fallback stays on the CPU.
        let ep = if self.info.execution_provider.starts_with("CPU") {
            ExecutionProviderConfig::Cpu
        } else {
            self.config.execution_provider.clone()
        };
        let device = match ep {
            ExecutionProviderConfig::Cuda { device_id }
            | ExecutionProviderConfig::TensorRT { device_id, .. } => Some(device_id),
            ExecutionProviderConfig::CoreML | ExecutionProviderConfig::Cpu => None,
        };
        let requested = ep.name();
        let eps = providers(&ep, true)
            .map_err(|reason| EmbedError::ProviderUnavailable { provider: requested, reason })?;
        let mut builder = session_builder(env, &self.config)?;
        if let Some(w) = &self.shared {
            if w.device == device {
                builder = w.apply(builder)?;
            }
        }
        let mut builder = builder
            .with_dimension_override(&axes[0], 1)
            .map_err(ort_err("dimension override"))?
            .with_dimension_override(&axes[1], n as i64)
            .map_err(ort_err("dimension override"))?;
        if !eps.is_empty() {
            builder = builder
                .with_execution_providers(eps)
                .map_err(ort_err("fixed-shape session providers"))?;
        }
        let session = builder.commit_from_file(&self.config.model_path).map_err(|e| {
            unsupported_operator(&e.to_string(), requested)
                .unwrap_or_else(|| ort_err("loading the fixed-shape session")(e))
        })?;
        let probe = self.tokenize(
            &["AkiDB fixed-shape check: robot 3 stopped near the loading dock at 14:02"],
            InputKind::Document,
        )?;
        let long =
            Tokens { ids: probe[0].ids[..probe[0].ids.len().min(n)].to_vec(), truncated: false };
        let short =
            Tokens { ids: long.ids[..long.ids.len().div_ceil(2)].to_vec(), truncated: false };
        let dynamic = self.run(&[&long], &mut |_, v| v)?.remove(0);
        let dynamic_short = self.run(&[&short], &mut |_, v| v)?.remove(0);
        let (names, _) = self.inputs(&[&long], n);
        let names: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        let hidden = self.info.hidden_size as i64;
        let shape = if self.signature.pooled { vec![1, hidden] } else { vec![1, n as i64, hidden] };
        let ty = if self.signature.float16 {
            TensorElementType::Float16
        } else {
            TensorElementType::Float32
        };
        let run =
            FixedRun::new(session, n, &names, (self.signature.output.as_str(), ty, shape), device)?;
        self.fixed = Some((n, Mutex::new(run)));
        let check = || -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
            let mut fixed = Vec::new();
            for _ in 0..3 {
                fixed = self.run(&[&long], &mut |_, v| v)?.remove(0);
            }
            Ok((fixed, self.run(&[&short], &mut |_, v| v)?.remove(0)))
        };
        let (fixed, fixed_short) = match check() {
            Ok(v) => v,
            Err(e) => {
                // E.g. GemmFloat8, which synchronizes its stream and so cannot be captured.
                self.fixed = None;
                let mut why = e.to_string();
                why.truncate(why.floor_char_boundary(300));
                return Err(EmbedError::InvalidConfig {
                    field: "fixed_single",
                    value: format!("{n} (the fixed-shape run failed: {why})"),
                    expected: "a model ONNX Runtime can run in a fixed-shape session (on CUDA: \
                               capture as a CUDA graph; FP8 GemmFloat8 graphs cannot)",
                });
            }
        };
        let worst = cosine(&dynamic, &fixed).min(cosine(&dynamic_short, &fixed_short));
        if worst < 0.999 {
            self.fixed = None;
            return Err(EmbedError::FixedShapeMismatch { tokens: n, cosine: worst });
        }
        Ok(())
    }

    /// Model runs answered by the fixed-shape session ([`OnnxConfig::fixed_single`]) so far,
    /// the load-time check included.
    pub fn fixed_runs(&self) -> u64 {
        self.fixed_runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of weights the dynamic and fixed-shape sessions read from one copy (0 without
    /// `fixed_single`, or where the provider builds its own copies: TensorRT, CoreML).
    pub fn shared_weight_bytes(&self) -> u64 {
        self.shared.as_ref().map_or(0, |w| w.bytes)
    }

    /// The configuration in force.
    pub fn config(&self) -> &OnnxConfig {
        &self.config
    }

    /// Tokenizes texts into compact token ids, in bounded memory and time: a text longer than
    /// [`BYTES_PER_TOKEN_BOUND`] x `max_length` bytes is tokenized from a prefix (see
    /// [`Self::encode_long`]); the others in chunks of at most [`TOKENIZE_CHUNK_BYTES`], whose
    /// tokenizer output (about 100x the text) is turned into ids and dropped before the next.
    fn tokenize(&self, texts: &[&str], kind: InputKind) -> Result<Vec<Tokens>, EmbedError> {
        let prompt = match kind {
            InputKind::Query => self.config.query_prompt.as_deref(),
            InputKind::Document => self.config.document_prompt.as_deref(),
        };
        let limit = self.config.max_length.saturating_mul(BYTES_PER_TOKEN_BOUND);
        let mut out: Vec<Option<Tokens>> = (0..texts.len()).map(|_| None).collect();
        let mut chunk: Vec<(usize, Cow<'_, str>)> = Vec::new();
        let mut chunk_bytes = 0;
        for (i, &text) in texts.iter().enumerate() {
            let input: Cow<'_, str> = match prompt {
                Some(p) => Cow::Owned(format!("{p}{text}")),
                None => Cow::Borrowed(text),
            };
            if input.len() > limit {
                out[i] = Some(self.tokens(self.encode_long(&input, limit)?));
                continue;
            }
            chunk_bytes += input.len();
            chunk.push((i, input));
            if chunk_bytes >= TOKENIZE_CHUNK_BYTES {
                self.tokenize_chunk(std::mem::take(&mut chunk), &mut out)?;
                chunk_bytes = 0;
            }
        }
        self.tokenize_chunk(chunk, &mut out)?;
        Ok(out.into_iter().flatten().collect())
    }

    /// Tokenizes `chunk` (in parallel when it holds several texts) into `out`.
    fn tokenize_chunk(
        &self,
        chunk: Vec<(usize, Cow<'_, str>)>,
        out: &mut [Option<Tokens>],
    ) -> Result<(), EmbedError> {
        let encode_err = |source| EmbedError::Tokenize { source };
        if let [(i, one)] = chunk.as_slice() {
            // One text: no thread-pool hop.
            out[*i] =
                Some(self.tokens(self.tokenizer.encode(one.as_ref(), true).map_err(encode_err)?));
        } else if !chunk.is_empty() {
            let refs: Vec<&str> = chunk.iter().map(|(_, t)| t.as_ref()).collect();
            let encodings = self.tokenizer.encode_batch(refs, true).map_err(encode_err)?;
            for ((i, _), e) in chunk.iter().zip(encodings) {
                out[*i] = Some(self.tokens(e));
            }
        }
        Ok(())
    }

    /// The ids the model takes (end-of-sequence token added where the model needs it).
    fn tokens(&self, e: Encoding) -> Tokens {
        let truncated = !e.get_overflowing().is_empty();
        let mut ids: Vec<i64> = e.get_ids().iter().map(|&i| i64::from(i)).collect();
        if let Some(eos) = self.eos_id {
            if ids.last() != Some(&i64::from(eos)) {
                ids.push(i64::from(eos));
            }
        }
        Tokens { ids, truncated }
    }

    /// Tokenizes a text longer than `limit` bytes. Tokenizing all of it would build every token
    /// of it (and a copy per `max_length` window: ~170x the text's size for MiniLM, measured),
    /// only to keep the first `max_length`. So it tokenizes a prefix and keeps that when the
    /// kept tokens provably do not depend on the cut: they end in an earlier word (pre-tokenizer
    /// word) than the one the cut may split. A cut inside a word that is still being kept (one
    /// very long word near the start) is retried at twice the length, up to
    /// [`LONG_TEXT_PREFIX_STEPS`] times (`2^(steps-1) x limit` bytes); past that the last prefix
    /// is used, which cuts that one word there. Work and memory stay bounded by the limit,
    /// never by the text's length.
    fn encode_long(&self, text: &str, limit: usize) -> Result<Encoding, EmbedError> {
        let mut size = limit;
        let mut last = None;
        for _ in 0..LONG_TEXT_PREFIX_STEPS {
            if size >= text.len() {
                return self
                    .tokenizer
                    .encode(text, true)
                    .map_err(|source| EmbedError::Tokenize { source });
            }
            let mut cut = size;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let e = self
                .tokenizer
                .encode(&text[..cut], true)
                .map_err(|source| EmbedError::Tokenize { source })?;
            let last_kept = e.get_word_ids().iter().rev().find_map(|w| *w);
            let last_cut = e
                .get_overflowing()
                .last()
                .and_then(|o| o.get_word_ids().iter().rev().find_map(|w| *w));
            if let (Some(kept), Some(cut_word)) = (last_kept, last_cut) {
                if kept < cut_word {
                    return Ok(e);
                }
            }
            last = Some(e);
            size = size.saturating_mul(2);
        }
        log::debug!("a word longer than {} bytes was cut before tokenization", size / 2);
        last.ok_or_else(|| EmbedError::InvalidConfig {
            field: "max_length",
            value: self.config.max_length.to_string(),
            expected: "a positive number of tokens",
        })
    }

    /// The model inputs for `batch` padded to `s` tokens, in the model's input order, and the
    /// attention mask (also needed for pooling when the model does not take it).
    fn inputs(&self, batch: &[&Tokens], s: usize) -> (Vec<(&'static str, Vec<i64>)>, Vec<i64>) {
        let b = batch.len();
        let mut ids = vec![i64::from(self.pad_id); b * s];
        let mut mask = vec![0i64; b * s];
        for (r, t) in batch.iter().enumerate() {
            let off = match self.config.padding {
                PaddingSide::Right => 0,
                PaddingSide::Left => s - t.ids.len(),
            };
            ids[r * s + off..r * s + off + t.ids.len()].copy_from_slice(&t.ids);
            mask[r * s + off..r * s + off + t.ids.len()].fill(1);
        }
        let mut inputs = vec![("input_ids", ids)];
        if self.signature.attention_mask {
            inputs.push(("attention_mask", mask.clone()));
        }
        if self.signature.token_type_ids {
            inputs.push(("token_type_ids", vec![0i64; b * s]));
        }
        if self.signature.position_ids {
            inputs.push(("position_ids", position_ids(&mask, s)));
        }
        (inputs, mask)
    }

    /// Runs one padded batch and hands each row's pooled vector to `sink`. A single text that
    /// fits the fixed-shape session (see [`crate::fixed`]) runs there.
    fn run<T>(
        &self,
        batch: &[&Tokens],
        sink: &mut dyn FnMut(usize, Vec<f32>) -> T,
    ) -> Result<Vec<T>, EmbedError> {
        let b = batch.len();
        let longest = batch.iter().map(|t| t.ids.len()).max().unwrap_or(1).max(1);
        let fixed = self.fixed.as_ref().filter(|(n, _)| b == 1 && longest <= *n);
        let s = fixed.map_or(longest, |(n, _)| *n);
        let (inputs, mask) = self.inputs(batch, s);
        if let Some((_, f)) = fixed {
            let values: Vec<&[i64]> = inputs.iter().map(|(_, v)| v.as_slice()).collect();
            let out = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner).run(&values)?;
            self.fixed_runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return self.pool_output(&out, &mask, b, s, sink);
        }
        let shape = [b as i64, s as i64];
        let mut values: Vec<(&str, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (name, v) in &inputs {
            let t = TensorRef::from_array_view((shape, v.as_slice()))
                .map_err(ort_err("input tensor"))?;
            values.push((name, t.into()));
        }
        let mut session = self.session();
        let outputs = session.run(values).map_err(ort_err("model run"))?;
        self.pool_output(&outputs[self.signature.output.as_str()], &mask, b, s, sink)
    }

    /// A free dynamic-shape session, else (all busy) the next one in turn to wait for.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for s in &self.sessions {
            match s.try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.sessions.len();
        self.sessions[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pools each row of a model output (`[b, s, hidden]`, or `[b, hidden]` when the model
    /// pools itself) under `mask`.
    fn pool_output<V, T>(
        &self,
        value: &ort::value::Value<V>,
        mask: &[i64],
        b: usize,
        s: usize,
        sink: &mut dyn FnMut(usize, Vec<f32>) -> T,
    ) -> Result<Vec<T>, EmbedError>
    where
        V: ort::value::TensorValueTypeMarker + ?Sized,
    {
        // Pool straight from the output's element type: for fp16 models only the pooled rows
        // are converted (one row per text for last-token and CLS pooling), not the whole
        // [batch, sequence, hidden] tensor.
        let mut out = Vec::with_capacity(b);
        let pooled = self.signature.pooled;
        let pooling = self.config.pooling;
        let mut each = |data: &dyn Fn(usize) -> f32, hidden: usize| {
            for r in 0..b {
                let m = &mask[r * s..(r + 1) * s];
                let v = if pooled {
                    (r * hidden..(r + 1) * hidden).map(data).collect()
                } else {
                    pool(&|i, j| data(r * s * hidden + i * hidden + j), m, hidden, pooling)
                };
                out.push(sink(r, v));
            }
        };
        if self.signature.float16 {
            let (sh, d) =
                value.try_extract_tensor::<half::f16>().map_err(ort_err("reading output"))?;
            each(&|i| d[i].to_f32(), *sh.last().unwrap_or(&0) as usize);
        } else {
            let (sh, d) = value.try_extract_tensor::<f32>().map_err(ort_err("reading output"))?;
            each(&|i| d[i], *sh.last().unwrap_or(&0) as usize);
        }
        Ok(out)
    }

    /// Groups texts (sorted by length) into runs of at most `max_batch` texts and
    /// `max_batch_tokens` padded tokens.
    fn plan(&self, tokens: &[Tokens]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].ids.len());
        let budget = self.config.batch_token_budget();
        let mut runs: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        for i in order {
            let len = tokens[i].ids.len().max(1);
            if !cur.is_empty()
                && (cur.len() == self.config.max_batch || (cur.len() + 1) * len > budget)
            {
                runs.push(std::mem::take(&mut cur));
            }
            cur.push(i);
        }
        if !cur.is_empty() {
            runs.push(cur);
        }
        runs
    }
}

impl Embedder for OnnxEmbeddingProvider {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        // Identical texts (repeated log lines) are embedded once: a text's embedding does not
        // depend on its batch, so the copies get the same vector.
        let mut first: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(texts.len());
        let mut unique: Vec<&str> = Vec::with_capacity(texts.len());
        let slot: Vec<usize> = texts
            .iter()
            .map(|t| {
                *first.entry(t).or_insert_with(|| {
                    unique.push(t);
                    unique.len() - 1
                })
            })
            .collect();
        let tokens = self.tokenize(&unique, kind)?;
        let dim = self.config.dimension;
        let normalize = self.config.normalize;
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); unique.len()];
        for run in self.plan(&tokens) {
            let batch: Vec<&Tokens> = run.iter().map(|&i| &tokens[i]).collect();
            self.run(&batch, &mut |r, mut v| {
                v.truncate(dim);
                if normalize {
                    l2_normalize(&mut v);
                }
                vectors[run[r]] = v;
            })?;
        }
        if unique.len() < texts.len() {
            vectors = slot.iter().map(|&u| vectors[u].clone()).collect();
        }
        Ok(Embeddings {
            vectors,
            token_counts: slot.iter().map(|&u| tokens[u].ids.len()).collect(),
            truncated: slot.iter().map(|&u| tokens[u].truncated).collect(),
        })
    }
}

fn validate(c: &OnnxConfig) -> Result<(), EmbedError> {
    let bad = |field, value: usize, expected| {
        Err(EmbedError::InvalidConfig { field, value: value.to_string(), expected })
    };
    if c.max_length < 2 || c.max_length > MAX_SEQUENCE {
        return bad("max_length", c.max_length, "2 to 32768 tokens");
    }
    if c.max_batch == 0 {
        return bad("max_batch", 0, "at least 1");
    }
    if c.max_batch_tokens == Some(0) {
        return bad("max_batch_tokens", 0, "at least 1, or None for the provider's default");
    }
    if let Some(n) = c.fixed_single {
        if n == 0 || n > c.max_length {
            return bad("fixed_single", n, "1 to max_length tokens");
        }
    }
    if c.intra_threads == Some(0) {
        return bad("intra_threads", 0, "at least 1, or None for all cores");
    }
    if c.parallel_runs == 0 || c.parallel_runs > MAX_PARALLEL_RUNS {
        return bad("parallel_runs", c.parallel_runs, "1 to 64 sessions");
    }
    if !c.model_path.is_file() {
        return Err(EmbedError::MissingFile { what: "model", path: c.model_path.clone() });
    }
    if !c.tokenizer_path.is_file() {
        return Err(EmbedError::MissingFile { what: "tokenizer", path: c.tokenizer_path.clone() });
    }
    Ok(())
}

/// FP8/INT8 on TensorRT needs Q/DQ nodes: look for the op type in the model file.
fn session_builder(
    env: &ort::environment::Environment,
    config: &OnnxConfig,
) -> Result<ort::session::builder::SessionBuilder, EmbedError> {
    let threads = config
        .intra_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Session::builder(env)
        .map_err(ort_err("session builder"))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(ort_err("optimization level"))?
        .with_intra_threads(threads)
        .map_err(ort_err("intra-op threads"))?
        .with_intra_op_spinning(config.intra_spinning)
        .map_err(ort_err("intra-op spinning"))?
        .with_inter_threads(1)
        .map_err(ort_err("inter-op threads"))
        .and_then(|b| match &config.profile_prefix {
            Some(prefix) => b.with_profiling(prefix).map_err(ort_err("profiling")),
            None => Ok(b),
        })
}

/// The providers to register for `ep`; `cuda_graph`: capture CUDA graphs (the fixed-shape
/// session on CUDA).
fn providers(
    ep: &ExecutionProviderConfig,
    cuda_graph: bool,
) -> Result<Vec<ort::ep::ExecutionProviderDispatch>, String> {
    let check = |available: ort::Result<bool>, what: &str| match available {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(format!("the loaded ONNX Runtime library has no {what} provider compiled in"))
        }
        Err(e) => Err(e.to_string()),
    };
    Ok(match ep {
        ExecutionProviderConfig::Cpu => Vec::new(),
        ExecutionProviderConfig::Cuda { device_id } => {
            check(ort::ep::CUDA::is_available(), "CUDA")?;
            vec![ort::ep::CUDA::default()
                .with_device_id(*device_id)
                .with_cuda_graph(cuda_graph)
                .build()
                .error_on_failure()]
        }
        ExecutionProviderConfig::CoreML => {
            check(ort::ep::CoreML::is_available(), "CoreML")?;
            vec![ort::ep::CoreML::default().build().error_on_failure()]
        }
        ExecutionProviderConfig::TensorRT {
            device_id,
            fp16_enable,
            fp8_enable,
            int8_enable,
            engine_cache_path,
            timing_cache_path,
            max_batch,
            max_sequence,
            opt_batch,
            opt_sequence,
        } => {
            check(ort::ep::TensorRT::is_available(), "TensorRT")?;
            let shapes = |b: usize, s: usize| format!("input_ids:{b}x{s},attention_mask:{b}x{s}");
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(*device_id)
                .with_fp16(*fp16_enable || *fp8_enable)
                .with_int8(*int8_enable)
                .with_profile_min_shapes(shapes(1, 1))
                .with_profile_opt_shapes(shapes(*opt_batch, *opt_sequence))
                .with_profile_max_shapes(shapes(*max_batch, *max_sequence));
            if let Some(dir) = engine_cache_path {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display())
                    .with_engine_cache_prefix(if *fp8_enable { "akidb_fp8" } else { "akidb" });
            }
            if let Some(dir) = timing_cache_path.as_ref().or(engine_cache_path.as_ref()) {
                trt = trt.with_timing_cache(true).with_timing_cache_path(dir.display());
            }
            vec![
                trt.build().error_on_failure(),
                // Nodes TensorRT does not take run on CUDA.
                ort::ep::CUDA::default().with_device_id(*device_id).build().error_on_failure(),
            ]
        }
    })
}

/// Creates the session on the requested provider, or on CPU with a warning when fallback is
/// allowed. Returns the session and the name of the provider in use.
fn create_session(
    env: &ort::environment::Environment,
    config: &OnnxConfig,
    shared: Option<&SharedWeights>,
) -> Result<(Session, String), EmbedError> {
    let requested = config.execution_provider.name();
    let with_shared = |builder, on: Option<i32>| match shared {
        Some(w) if w.device == on => w.apply(builder),
        _ => Ok(builder),
    };
    let attempt = || -> Result<Session, String> {
        let eps = providers(&config.execution_provider, false)?;
        let device = match config.execution_provider {
            ExecutionProviderConfig::Cuda { device_id } => Some(device_id),
            _ => None,
        };
        let builder = session_builder(env, config).map_err(|e| e.to_string())?;
        let builder = with_shared(builder, device).map_err(|e| e.to_string())?;
        let mut builder = builder.with_execution_providers(eps).map_err(|e| e.to_string())?;
        builder.commit_from_file(&config.model_path).map_err(|e| e.to_string())
    };
    let cpu = || -> Result<Session, EmbedError> {
        with_shared(session_builder(env, config)?, None)?
            .commit_from_file(&config.model_path)
            .map_err(|e| {
                unsupported_operator(&e.to_string(), "CPU")
                    .unwrap_or_else(|| ort_err("loading the model")(e))
            })
    };
    if config.execution_provider == ExecutionProviderConfig::Cpu {
        return Ok((cpu()?, "CPU".into()));
    }
    match attempt() {
        Ok(s) => Ok((s, requested.into())),
        Err(reason) if !config.allow_fallback => Err(unsupported_operator(&reason, requested)
            .unwrap_or(EmbedError::ProviderUnavailable { provider: requested, reason })),
        Err(reason) => {
            log::warn!(
                "execution provider {requested} unavailable ({reason}); falling back to CPU as \
                 configured"
            );
            Ok((cpu()?, format!("CPU (fallback from {requested}: {reason})")))
        }
    }
}

/// ONNX Runtime's words for an operator it has no kernel for on the providers of a session
/// ("Could not find an implementation for GemmFloat8(1) node with name '...'"), as
/// [`EmbedError::UnsupportedOperator`].
fn unsupported_operator(message: &str, provider: &str) -> Option<EmbedError> {
    let rest = message.split("Could not find an implementation for ").nth(1)?;
    let operator: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!operator.is_empty()).then(|| EmbedError::UnsupportedOperator {
        operator,
        provider: provider.to_string(),
        reason: message.to_string(),
    })
}

/// The weights the dynamic and fixed-shape sessions share (see [`crate::weights`]): loaded when
/// `fixed_single` is set and the sessions run on the CPU or CUDA (TensorRT and CoreML build
/// their own copies of the weights). `None` when CUDA cannot be set up: the session's own
/// attempt then reports why (or falls back to the CPU, unshared).
fn shared_weights(
    env: &ort::environment::Environment,
    config: &OnnxConfig,
    graph: &Graph,
) -> Result<Option<SharedWeights>, EmbedError> {
    if config.fixed_single.is_none() {
        return Ok(None);
    }
    match config.execution_provider {
        ExecutionProviderConfig::Cpu => {
            SharedWeights::load(env, &config.model_path, graph, None).map(Some)
        }
        ExecutionProviderConfig::Cuda { device_id } => {
            if !matches!(ort::ep::CUDA::is_available(), Ok(true)) {
                return Ok(None);
            }
            match SharedWeights::load(env, &config.model_path, graph, Some(device_id)) {
                Ok(w) => Ok(Some(w)),
                Err(e @ (EmbedError::InvalidModelFile { .. } | EmbedError::Io { .. })) => Err(e),
                Err(e) => {
                    log::warn!("weights not shared between the model's sessions: {e}");
                    Ok(None)
                }
            }
        }
        _ => Ok(None),
    }
}

fn read_signature(session: &Session, config: &OnnxConfig) -> Result<Signature, EmbedError> {
    let inputs: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
    let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
    let bad = || EmbedError::ModelSignature {
        path: config.model_path.clone(),
        inputs: inputs.clone(),
        outputs: outputs.clone(),
    };
    let known = ["input_ids", "attention_mask", "token_type_ids", "position_ids"];
    if !inputs.iter().any(|i| i == "input_ids")
        || inputs.iter().any(|i| !known.contains(&i.as_str()))
    {
        return Err(bad());
    }
    // Prefer token states; accept an already pooled output.
    let pick = session
        .outputs()
        .iter()
        .find(|o| matches!(o.name(), "last_hidden_state" | "token_embeddings"))
        .or_else(|| session.outputs().first())
        .ok_or_else(bad)?;
    let (float16, rank) = match pick.dtype() {
        ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } => (false, shape.len()),
        ValueType::Tensor { ty: TensorElementType::Float16, shape, .. } => (true, shape.len()),
        _ => return Err(bad()),
    };
    if rank != 2 && rank != 3 {
        return Err(bad());
    }
    Ok(Signature {
        attention_mask: inputs.iter().any(|i| i == "attention_mask"),
        token_type_ids: inputs.iter().any(|i| i == "token_type_ids"),
        position_ids: inputs.iter().any(|i| i == "position_ids"),
        output: pick.name().to_string(),
        pooled: rank == 2,
        float16,
    })
}

/// A model that declares how many positions it has (`akidb.max_positions` in its metadata: the
/// RoPE cache of `scripts/qwen3_onnx.py` exports, which must not be read past) bounds
/// `max_length`.
fn check_positions(session: &Session, config: &OnnxConfig) -> Result<(), EmbedError> {
    let declared = session.metadata().ok().and_then(|m| m.custom("akidb.max_positions"));
    match declared.and_then(|p| p.parse::<usize>().ok()) {
        Some(p) if config.max_length > p => Err(EmbedError::InvalidConfig {
            field: "max_length",
            value: config.max_length.to_string(),
            expected: "at most the model's positions (akidb.max_positions in its metadata)",
        }),
        _ => Ok(()),
    }
}

/// Position ids that count only attended tokens (so left padding does not shift them).
fn position_ids(mask: &[i64], s: usize) -> Vec<i64> {
    let mut out = vec![0i64; mask.len()];
    for (row_m, row_o) in mask.chunks(s).zip(out.chunks_mut(s)) {
        let mut p = 0;
        for (m, o) in row_m.iter().zip(row_o.iter_mut()) {
            *o = p;
            p += *m;
        }
    }
    out
}

/// Pools the token states of one text under its attention mask; `state(token, dim)` reads
/// the output (whatever its element type).
pub(crate) fn pool(
    state: &dyn Fn(usize, usize) -> f32,
    mask: &[i64],
    hidden: usize,
    pooling: Pooling,
) -> Vec<f32> {
    let row = |i: usize| (0..hidden).map(|j| state(i, j)).collect::<Vec<f32>>();
    match pooling {
        Pooling::Mean => {
            let mut acc = vec![0.0f32; hidden];
            let mut n = 0usize;
            for (i, &m) in mask.iter().enumerate() {
                if m != 0 {
                    acc.iter_mut().enumerate().for_each(|(j, a)| *a += state(i, j));
                    n += 1;
                }
            }
            let inv = 1.0 / n.max(1) as f32;
            acc.iter_mut().for_each(|a| *a *= inv);
            acc
        }
        Pooling::Cls => row(mask.iter().position(|&m| m != 0).unwrap_or(0)),
        Pooling::LastToken => row(mask.iter().rposition(|&m| m != 0).unwrap_or(mask.len() - 1)),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b)).max(f32::MIN_POSITIVE)
}

fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_follows_the_mask() {
        // Three tokens of hidden size 2; the middle one padded.
        let states = [1.0f32, 2.0, 10.0, 10.0, 3.0, 4.0];
        let st = |i: usize, j: usize| states[i * 2 + j];
        let mask = [1, 0, 1];
        assert_eq!(pool(&st, &mask, 2, Pooling::Mean), vec![2.0, 3.0]);
        assert_eq!(pool(&st, &mask, 2, Pooling::LastToken), vec![3.0, 4.0]);
        assert_eq!(pool(&st, &[0, 1, 1], 2, Pooling::Cls), vec![10.0, 10.0]);
        assert_eq!(pool(&st, &[1, 1, 0], 2, Pooling::LastToken), vec![10.0, 10.0]);
    }

    #[test]
    fn position_ids_skip_left_padding() {
        assert_eq!(position_ids(&[0, 0, 1, 1, 1, 1, 1, 0], 4), vec![0, 0, 0, 1, 0, 1, 2, 3]);
    }
}
