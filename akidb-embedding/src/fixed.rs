//! Single-text runs through a fixed-shape session: the batch-1 latency path.
//!
//! A query embeds one short text; on a GPU that run is bound by launching thousands of small
//! kernels (one per ONNX node), not by arithmetic: the 4B Qwen3 model needs ~1.6 ms of memory
//! traffic at batch 1 but took 14 ms through the dynamic-shape session. With
//! [`crate::OnnxConfig::with_fixed_single`]`(n)` the provider opens a second session of the same
//! model whose input shape is fixed at `[1, n]` (ONNX Runtime free-dimension overrides, so every
//! shape computation folds into constants at load). A single text of at most `n` tokens is padded
//! to `n` (attention mask zero on the padding, padding on the configured side) and runs there.
//!
//! On CUDA that session captures its run as a CUDA graph (`enable_cuda_graph`) and later runs
//! replay it: one launch. CUDA graphs read and write fixed device addresses, so inputs and output
//! live in device tensors allocated once and bound once (IO binding); each run copies the new
//! token ids into them and the output back. On other providers the same session runs without a
//! graph (correct, and tested here, but padding costs compute, so it is not worth it on a CPU).
//!
//! Costs: a second copy of the weights (device memory), one capture at load. The run is checked
//! at load against the dynamic session on a probe text (cosine >= 0.999), so a model whose graph
//! cannot be captured faithfully is an error at load, never a wrong vector later.

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{DynTensor, Tensor, TensorElementType, ValueType};

use crate::error::{ort_err, EmbedError};

/// The fixed-shape session and its bound device tensors.
pub(crate) struct FixedRun {
    /// Tokens every run is padded to.
    pub(crate) tokens: usize,
    session: Session,
    binding: IoBinding,
    /// Bound inputs, in the order of [`FixedRun::new`]'s `inputs`.
    inputs: Vec<Tensor<i64>>,
    output: DynTensor,
    /// CUDA device of the tensors; `None`: CPU memory.
    device: Option<i32>,
}

impl std::fmt::Debug for FixedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedRun")
            .field("tokens", &self.tokens)
            .field("device", &self.device)
            .finish()
    }
}

/// The symbolic names of an input's dimensions (`["batch", "sequence"]`), empty strings where
/// a dimension has none.
pub(crate) fn dimension_names(session: &Session, input: &str) -> Vec<String> {
    session
        .inputs()
        .iter()
        .find(|i| i.name() == input)
        .and_then(|i| match i.dtype() {
            ValueType::Tensor { dimension_symbols, .. } => Some(dimension_symbols.to_vec()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The allocator of `session` for CUDA device `cuda_device`, or the default CPU allocator.
pub(crate) fn allocator_for(
    session: &Session,
    cuda_device: Option<i32>,
) -> Result<Allocator, EmbedError> {
    let Some(id) = cuda_device else { return Ok(Allocator::default()) };
    let info =
        MemoryInfo::new(AllocationDevice::CUDA, id, AllocatorType::Device, MemoryType::Default)
            .map_err(ort_err("CUDA memory info"))?;
    Allocator::new(session, info).map_err(ort_err("CUDA allocator"))
}

impl FixedRun {
    /// Wraps `session` (built with the `[1, tokens]` overrides) with its bound tensors.
    /// `inputs`: the input names the model takes; `output`: the output's name, element type
    /// and shape (`[1, tokens, hidden]` or `[1, hidden]`).
    pub(crate) fn new(
        session: Session,
        tokens: usize,
        inputs: &[&str],
        output: (&str, TensorElementType, Vec<i64>),
        cuda_device: Option<i32>,
    ) -> Result<Self, EmbedError> {
        let allocator = allocator_for(&session, cuda_device)?;
        let mut binding = session.create_binding().map_err(ort_err("IO binding"))?;
        let mut tensors = Vec::with_capacity(inputs.len());
        for name in inputs {
            let t = Tensor::<i64>::new(&allocator, [1usize, tokens])
                .map_err(ort_err("input tensor"))?;
            binding.bind_input(*name, &t).map_err(ort_err("binding an input"))?;
            tensors.push(t);
        }
        let (out_name, ty, shape) = output;
        let mut out = DynTensor::new(&allocator, ty, shape).map_err(ort_err("output tensor"))?;
        binding.bind_output(out_name, &mut out).map_err(ort_err("binding the output"))?;
        Ok(Self { tokens, session, binding, inputs: tensors, output: out, device: cuda_device })
    }

    /// Runs the model on `values` (one `[1, tokens]` array per input, in `inputs` order) and
    /// returns the output in host memory.
    pub(crate) fn run(&mut self, values: &[&[i64]]) -> Result<DynTensor, EmbedError> {
        // One mechanism on every device (so the CPU tests exercise the CUDA code path): copy
        // each host array into its bound tensor, run, copy the bound output back.
        for (t, v) in self.inputs.iter_mut().zip(values) {
            let host = Tensor::from_array(([1usize, v.len()], v.to_vec()))
                .map_err(ort_err("input tensor"))?;
            host.copy_into(&mut *t).map_err(ort_err("copying inputs to the device"))?;
        }
        self.session.run_binding(&self.binding).map_err(ort_err("model run (fixed shape)"))?;
        self.output.to(AllocationDevice::CPU, 0).map_err(ort_err("copying the output to the host"))
    }
}
