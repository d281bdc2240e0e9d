//! One copy of a model's weights for its two sessions.
//!
//! With [`crate::OnnxConfig::with_fixed_single`] the provider runs one model through two ONNX
//! Runtime sessions (dynamic shapes, and `[1, n]` for single texts; see `fixed.rs`). Left alone,
//! each session loads every initializer: two copies of the weights, 16 GB of device memory for
//! Qwen3-4B in fp16. Instead the provider reads each initializer of at least [`SHARE_MIN_BYTES`]
//! once, from the model file or its external data file, into a tensor on the device the sessions
//! run on, and hands that same tensor to both sessions as a shared initializer (ONNX Runtime's
//! `AddInitializer`). ONNX Runtime uses a supplied initializer in place when it sits on the device
//! it planned for it, so both sessions read one copy.
//!
//! On CUDA the tensors come from the allocator of a small bootstrap session (an Identity graph)
//! whose memory arena grows by exactly what is asked (`kSameAsRequested`), so the weights take
//! their size and no power-of-two slack. On the CPU they come from ONNX Runtime's default CPU
//! allocator: the same code path, which is how the CPU tests exercise it.
//!
//! Weights that a kernel repacks at load (`MatMulNBits`' quantized blocks, see
//! `Graph::repacked`) are not shared: each session keeps its own packed copy whatever it is
//! given, so a shared original would only be one copy more.
//!
//! The bytes are checked against each initializer's shape and element type; an initializer whose
//! element type is not one of the plain numeric ones (packed 4-bit, strings) stays with ONNX
//! Runtime (loaded per session; none of the exporters here writes such a large one).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use ort::memory::Allocator;
use ort::session::builder::SessionBuilder;
use ort::session::Session;
use ort::value::{DynTensor, DynValue, TensorElementType};

use crate::error::{ort_err, EmbedError};
use crate::onnx_graph::{Data, Graph};

/// Initializers smaller than this are left to each session (norm weights, small constants).
pub(crate) const SHARE_MIN_BYTES: u64 = 4096;

/// Initializers held once for several sessions.
///
/// ONNX Runtime takes a shared initializer only over memory the caller owns, so each weight is
/// a block from an ONNX Runtime allocator (CPU, or the bootstrap session's CUDA arena) that this
/// struct frees when dropped, with a tensor value viewing it. The provider drops its sessions
/// (which hold the views) before this.
pub(crate) struct SharedWeights {
    values: Vec<(String, Arc<DynValue>)>,
    /// Addresses of the blocks behind `values`, from `allocator`.
    blocks: Vec<usize>,
    /// (A mutex only because ort's allocator is `Send` but not `Sync`; used at load and drop.)
    allocator: std::sync::Mutex<Allocator>,
    /// Bytes held.
    pub(crate) bytes: u64,
    /// CUDA device of the tensors; `None`: CPU memory.
    pub(crate) device: Option<i32>,
    /// Owner of the CUDA allocator; dropped last.
    _bootstrap: Option<Session>,
}

impl std::fmt::Debug for SharedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWeights")
            .field("tensors", &self.values.len())
            .field("bytes", &self.bytes)
            .field("device", &self.device)
            .finish()
    }
}

impl Drop for SharedWeights {
    fn drop(&mut self) {
        self.values.clear();
        let allocator = self.allocator.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for &block in &self.blocks {
            free(&allocator, block);
        }
    }
}

impl SharedWeights {
    /// Loads the large initializers of `graph` (the model at `model`) onto `device` (a CUDA
    /// device id, or `None` for the CPU).
    pub(crate) fn load(
        env: &ort::environment::Environment,
        model: &Path,
        graph: &Graph,
        device: Option<i32>,
    ) -> Result<Self, EmbedError> {
        let bootstrap = match device {
            Some(id) => Some(bootstrap_session(env, id)?),
            None => None,
        };
        let allocator = match &bootstrap {
            Some(session) => crate::fixed::allocator_for(session, device)?,
            None => Allocator::default(),
        };
        let mut w = Self {
            values: Vec::new(),
            blocks: Vec::new(),
            allocator: std::sync::Mutex::new(allocator),
            bytes: 0,
            device,
            _bootstrap: bootstrap,
        };
        let bad =
            |reason: String| EmbedError::InvalidModelFile { path: model.to_path_buf(), reason };
        let mut open: Option<(std::path::PathBuf, File)> = None;
        let mut staging: Vec<u8> = Vec::new();
        for init in &graph.initializers {
            let Some(ty) = element_type(init.data_type) else { continue };
            let (file, offset, len) = match &init.data {
                Data::Inline { offset, len } => (model.to_path_buf(), *offset, *len),
                Data::External { file, offset, len } => (file.clone(), *offset, *len),
                Data::Other => continue,
            };
            if len < SHARE_MIN_BYTES || graph.repacked.contains(&init.name) {
                continue;
            }
            let count = init
                .dims
                .iter()
                .try_fold(1usize, |a, &d| usize::try_from(d).ok().and_then(|d| a.checked_mul(d)));
            if count.and_then(|n| ty.byte_size(n)) != Some(len as usize) {
                return Err(bad(format!(
                    "initializer {:?}: {len} bytes of data for shape {:?} ({ty:?})",
                    init.name, init.dims
                )));
            }
            let len = len as usize;
            if open.as_ref().map(|(p, _)| p != &file).unwrap_or(true) {
                let f = File::open(&file)
                    .map_err(|source| EmbedError::Io { path: file.clone(), source })?;
                open = Some((file.clone(), f));
            }
            let (_, f) = open.as_mut().expect("opened above");
            let io = |source| EmbedError::Io { path: file.clone(), source };
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            let allocator =
                w.allocator.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            let block = allocator
                .alloc::<u8>(len)
                .map_err(ort_err("memory for a shared weight"))?
                .into_raw() as usize;
            w.blocks.push(block);
            let mut view = tensor_over(allocator, block, len, &init.dims, ty)?;
            if device.is_none() {
                f.read_exact(host_bytes(block, len)).map_err(io)?;
            } else {
                staging.resize(len, 0);
                f.read_exact(&mut staging).map_err(io)?;
                let host = tensor_over(
                    &Allocator::default(),
                    staging.as_mut_ptr() as usize,
                    len,
                    &init.dims,
                    ty,
                )?;
                host.copy_into(&mut view).map_err(ort_err("copying a weight to the device"))?;
            }
            w.bytes += len as u64;
            w.values.push((init.name.clone(), Arc::new(view.into_dyn())));
        }
        Ok(w)
    }

    /// Hands every held initializer to a session being built.
    pub(crate) fn apply(&self, mut builder: SessionBuilder) -> Result<SessionBuilder, EmbedError> {
        for (name, value) in &self.values {
            builder = builder
                .with_initializer(name, Arc::clone(value))
                .map_err(ort_err("sharing an initializer"))?;
        }
        Ok(builder)
    }
}

/// A tensor value of type `ty` and shape `dims` viewing `len` bytes at `address` in the memory
/// of `allocator` (it does not own them).
#[allow(unsafe_code)]
fn tensor_over(
    allocator: &Allocator,
    address: usize,
    len: usize,
    dims: &[i64],
    ty: TensorElementType,
) -> Result<DynTensor, EmbedError> {
    use ort::AsPointer;
    let failed = |message: String| EmbedError::Ort {
        context: "a shared weight's tensor",
        source: Box::new(ort::Error::new(message)),
    };
    let api = ort::api();
    let mut out: *mut ort::sys::OrtValue = std::ptr::null_mut();
    // SAFETY: `address` points to `len` bytes in `info`'s memory that outlive the value (the
    // caller keeps the block until the value and every session holding it are dropped); the
    // byte count matches `dims` and `ty` (checked by the caller).
    let status = unsafe {
        (api.CreateTensorWithDataAsOrtValue)(
            allocator.memory_info().ptr(),
            address as *mut std::ffi::c_void,
            len,
            dims.as_ptr(),
            dims.len(),
            ty.into(),
            &mut out,
        )
    };
    if !status.0.is_null() {
        // SAFETY: a non-null status from the call above, read, then released once.
        let message = unsafe {
            let m = std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (api.ReleaseStatus)(status.0);
            m
        };
        return Err(failed(message));
    }
    let ptr = std::ptr::NonNull::new(out).ok_or_else(|| failed("no value returned".into()))?;
    // SAFETY: a tensor value just created; the returned value owns (and releases) it.
    let value: DynValue = unsafe { DynValue::from_ptr(ptr, Some(allocator)) };
    value.downcast().map_err(ort_err("a shared weight's tensor"))
}

/// The `len` bytes of host memory at `address` (a block of ONNX Runtime's CPU allocator).
#[allow(unsafe_code)]
fn host_bytes<'a>(address: usize, len: usize) -> &'a mut [u8] {
    // SAFETY: `address` is a live block of `len` bytes of CPU memory allocated for this weight,
    // written only through this slice while it lives.
    unsafe { std::slice::from_raw_parts_mut(address as *mut u8, len) }
}

/// Frees a block allocated by `allocator`.
#[allow(unsafe_code)]
fn free(allocator: &Allocator, address: usize) {
    // SAFETY: `address` came from `allocator.alloc` and is freed once, after its views.
    unsafe { allocator.free(address as *mut u8) }
}

/// ONNX `TensorProto.DataType` codes of the plain numeric types.
fn element_type(code: i32) -> Option<TensorElementType> {
    Some(match code {
        1 => TensorElementType::Float32,
        2 => TensorElementType::Uint8,
        3 => TensorElementType::Int8,
        4 => TensorElementType::Uint16,
        5 => TensorElementType::Int16,
        6 => TensorElementType::Int32,
        7 => TensorElementType::Int64,
        10 => TensorElementType::Float16,
        11 => TensorElementType::Float64,
        12 => TensorElementType::Uint32,
        13 => TensorElementType::Uint64,
        16 => TensorElementType::Bfloat16,
        17 => TensorElementType::Float8E4M3FN,
        _ => return None,
    })
}

/// A session of a one-node Identity graph on CUDA device `id` whose arena grows by what is asked.
fn bootstrap_session(env: &ort::environment::Environment, id: i32) -> Result<Session, EmbedError> {
    let ep = ort::ep::CUDA::default()
        .with_device_id(id)
        .with_arena_extend_strategy(ort::ep::ArenaExtendStrategy::SameAsRequested)
        .build()
        .error_on_failure();
    Session::builder(env)
        .map_err(ort_err("session builder"))?
        .with_execution_providers([ep])
        .map_err(ort_err("CUDA provider (shared weights)"))?
        .commit_from_memory(&identity_model())
        .map_err(ort_err("the shared weights' bootstrap session"))
}

/// The bytes of an ONNX model `y = Identity(x)`, `x` a float tensor of shape `[1]`.
fn identity_model() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
        varint(out, number << 3 | 2);
        varint(out, payload.len() as u64);
        out.extend_from_slice(payload);
    }
    fn int(out: &mut Vec<u8>, number: u64, v: u64) {
        varint(out, number << 3);
        varint(out, v);
    }
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let value_info = |name: &str| {
        let mut dim = Vec::new();
        int(&mut dim, 1, 1); // dim_value 1
        let mut shape = Vec::new();
        field(&mut shape, 1, &dim);
        let mut tensor = Vec::new();
        int(&mut tensor, 1, 1); // elem_type FLOAT
        field(&mut tensor, 2, &shape);
        let mut ty = Vec::new();
        field(&mut ty, 1, &tensor);
        let mut vi = Vec::new();
        field(&mut vi, 1, name.as_bytes());
        field(&mut vi, 2, &ty);
        vi
    };
    let mut node = Vec::new();
    field(&mut node, 1, b"x");
    field(&mut node, 2, b"y");
    field(&mut node, 4, b"Identity");
    let mut graph = Vec::new();
    field(&mut graph, 1, &node);
    field(&mut graph, 2, b"akidb_bootstrap");
    field(&mut graph, 11, &value_info("x"));
    field(&mut graph, 12, &value_info("y"));
    let mut opset = Vec::new();
    int(&mut opset, 2, 17);
    let mut model = Vec::new();
    int(&mut model, 1, 8); // ir_version
    field(&mut model, 7, &graph);
    field(&mut model, 8, &opset);
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_model_runs_and_reads_back_as_one_identity_node() {
        let env = crate::runtime::environment(None).expect("ONNX Runtime");
        let mut session = Session::builder(env)
            .expect("builder")
            .commit_from_memory(&identity_model())
            .expect("the bootstrap model loads");
        let x = ort::value::Tensor::from_array(([1usize], vec![2.5f32])).expect("x");
        let out = session.run(ort::inputs!["x" => x]).expect("run");
        let (_, y) = out["y"].try_extract_tensor::<f32>().expect("y");
        assert_eq!(y, &[2.5]);
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, identity_model()).expect("write");
        let g = Graph::read(&path).expect("graph");
        assert_eq!(g.count("Identity"), 1);
        assert!(g.initializers.is_empty());
    }
}
