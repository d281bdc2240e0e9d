//! Finding and loading the ONNX Runtime shared library (`ort` with `load-dynamic`).
//!
//! A shared library runs code the moment it is loaded, so AkiDB loads one only from a path the
//! application or its environment names, never from a place it guesses (such as the working
//! directory or its parents, where anyone who can write a folder could plant one). In order:
//!
//! 1. the path in the configuration ([`crate::OnnxConfig::with_ort_library`]);
//! 2. `ORT_DYLIB_PATH`, the library itself (`scripts/env.sh` sets it to the checkout's);
//! 3. `AKIDB_ORT_VENV`, a Python environment named explicitly, where the `onnxruntime` wheel
//!    put its library (`lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*`);
//!    also [`library_in_venv`] for applications that want to name one in code.
//!
//! Nothing else is searched: with none of these set, [`crate::EmbedError::RuntimeNotFound`]
//! says what to set. A process loads one library; the first successful load wins.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{ort_err, EmbedError};

static LOADED: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// The library to load, in order (see the module docs): only paths the configuration or the
/// environment names.
pub fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    if let Some(venv) = std::env::var_os("AKIDB_ORT_VENV").filter(|p| !p.is_empty()) {
        return venv_libraries(Path::new(&venv));
    }
    Vec::new()
}

/// The ONNX Runtime library inside the Python environment `venv` (where the `onnxruntime` or
/// `onnxruntime-gpu` wheel installs it), if there is one; for
/// [`crate::OnnxConfig::with_ort_library`].
pub fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    venv_libraries(venv).into_iter().next()
}

fn venv_libraries(venv: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(libs) = std::fs::read_dir(venv.join("lib")) else { return found };
    for py in libs.flatten() {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        let Ok(files) = std::fs::read_dir(&capi) else { continue };
        let mut libs: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("libonnxruntime.so.") || n == "libonnxruntime.dylib"
                })
            })
            .collect();
        libs.sort();
        found.extend(libs);
    }
    found
}

/// Loads the runtime once per process and returns its environment.
pub(crate) fn environment(
    explicit: Option<&Path>,
) -> Result<&'static ort::environment::Environment, EmbedError> {
    if let Some((path, env)) = LOADED.get() {
        if let Some(req) = explicit {
            if req != path {
                return Err(EmbedError::RuntimeAlreadyLoaded { requested: req.to_path_buf() });
            }
        }
        return Ok(env);
    }
    let _guard = LOADING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, env)) = LOADED.get() {
        return Ok(env);
    }
    let searched = candidates(explicit);
    let Some(path) = searched.iter().find(|p| p.is_file()).cloned() else {
        return Err(EmbedError::RuntimeNotFound { searched });
    };
    let builder = ort::init_from(&path)
        .map_err(|e| EmbedError::RuntimeLoad { path: path.clone(), source: Box::new(e) })?;
    let env = builder
        .with_name("akidb")
        .build()
        .map_err(ort_err("creating the ONNX Runtime environment"))?;
    log::info!("loaded ONNX Runtime from {}", path.display());
    Ok(&LOADED.get_or_init(|| (path, env)).1)
}

/// The library this process loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    LOADED.get().map(|(p, _)| p.as_path())
}

/// Which of AkiDB's execution providers the loaded library has compiled in
/// (CPU, CUDA, TensorRT, CoreML), loading the runtime first if needed.
pub fn available_providers() -> Result<Vec<&'static str>, EmbedError> {
    use ort::ep::ExecutionProvider;
    environment(None)?;
    let mut out = vec!["CPU"];
    type Check = fn() -> ort::Result<bool>;
    let checks: [(&'static str, Check); 3] = [
        ("CUDA", ort::ep::CUDA::is_available),
        ("TensorRT", ort::ep::TensorRT::is_available),
        ("CoreML", ort::ep::CoreML::is_available),
    ];
    for (name, check) in checks {
        if check().map_err(ort_err("listing execution providers"))? {
            out.push(name);
        }
    }
    Ok(out)
}
