//! Configuration of the ONNX provider: folder parsing, execution providers, validation, runtime.

mod common;

use akidb_embedding::{
    EmbedError, ExecutionProviderConfig, OnnxConfig, OnnxEmbeddingProvider, PaddingSide, Pooling,
};
use common::*;

#[test]
fn minilm_folder_configures_mean_pooling_without_prompts() {
    let c = OnnxConfig::from_dir(minilm_dir()).expect("from_dir");
    assert_eq!(c.pooling, Pooling::Mean);
    assert_eq!(c.dimension, 384);
    assert_eq!(c.max_length, 256);
    assert_eq!(c.padding, PaddingSide::Right);
    assert_eq!(
        (c.query_prompt.as_deref(), c.document_prompt.as_deref(), c.eos_token.as_deref()),
        (None, None, None)
    );
    assert_eq!(c.model_name, "all-MiniLM-L6-v2");
    assert_eq!(c.model_vocab_size, Some(30522));
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    for e in std::fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

#[test]
fn folder_settings_are_read_and_bad_json_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&qwen_dir(), dir.path());
    // E5/BGE-style folder: CLS pooling, passage prompt, name override.
    std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode_cls_token": true}"#)
        .expect("w");
    std::fs::write(
        dir.path().join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#,
    )
    .expect("w");
    std::fs::write(dir.path().join("akidb.json"), r#"{"name": "my/model"}"#).expect("w");
    std::fs::write(dir.path().join("tokenizer_config.json"), r#"{"padding_side": "right"}"#)
        .expect("w");
    let c = OnnxConfig::from_dir(dir.path()).expect("from_dir");
    assert_eq!(c.pooling, Pooling::Cls);
    assert_eq!(c.query_prompt.as_deref(), Some("query: "));
    assert_eq!(c.document_prompt.as_deref(), Some("passage: "));
    assert_eq!(c.model_name, "my/model");
    assert_eq!(c.padding, PaddingSide::Right);
    // Poolings AkiDB does not compute are refused, never replaced by another.
    for pooling in [
        r#"{"pooling_mode": "max"}"#,
        r#"{"pooling_mode": "weightedmean"}"#,
        r#"{"pooling_mode_max_tokens": true}"#,
        r#"{"pooling_mode_mean_sqrt_len_tokens": true, "pooling_mode_mean_tokens": true}"#,
        r#"{"pooling_mode": "mean", "include_prompt": false}"#,
    ] {
        std::fs::write(dir.path().join("1_Pooling/config.json"), pooling).expect("w");
        let err = OnnxConfig::from_dir(dir.path()).expect_err(pooling);
        assert!(matches!(err, EmbedError::InvalidConfig { .. }), "{pooling}: {err}");
    }
    std::fs::write(dir.path().join("1_Pooling/config.json"), r#"{"pooling_mode": "lasttoken"}"#)
        .expect("w");
    assert_eq!(OnnxConfig::from_dir(dir.path()).expect("lasttoken").pooling, Pooling::LastToken);
    std::fs::write(dir.path().join("1_Pooling/config.json"), "{not json").expect("w");
    assert!(matches!(OnnxConfig::from_dir(dir.path()), Err(EmbedError::ConfigFile { .. })));
}

#[test]
fn invalid_numbers_are_rejected_before_loading() {
    let base = OnnxConfig::from_dir(qwen_dir()).expect("from_dir");
    for (c, field) in [
        (base.clone().with_max_length(1), "max_length"),
        (base.clone().with_max_length(1 << 20), "max_length"),
        (base.clone().with_max_batch(0), "max_batch"),
        (base.clone().with_intra_threads(0), "intra_threads"),
        (base.clone().with_parallel_runs(0), "parallel_runs"),
        (base.clone().with_parallel_runs(65), "parallel_runs"),
    ] {
        match OnnxEmbeddingProvider::new(c) {
            Err(EmbedError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut c = base.clone();
    c.eos_token = Some("<|no_such_token|>".into());
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::InvalidConfig { field: "eos_token", .. })
    ));
}

#[test]
fn tensorrt_defaults_and_unavailability() {
    let ep = ExecutionProviderConfig::tensorrt(0, "/tmp/akidb-trt");
    match &ep {
        ExecutionProviderConfig::TensorRT {
            fp16_enable,
            fp8_enable,
            engine_cache_path,
            max_batch,
            max_sequence,
            ..
        } => {
            assert!(*fp16_enable && !*fp8_enable);
            assert_eq!(engine_cache_path.as_deref(), Some(std::path::Path::new("/tmp/akidb-trt")));
            assert_eq!((*max_batch, *max_sequence), (64, 512));
        }
        _ => unreachable!(),
    }
    assert_eq!(ep.name(), "TensorRT");
    let c = OnnxConfig::from_dir(qwen_dir()).expect("from_dir").with_execution_provider(ep);
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::ProviderUnavailable { provider: "TensorRT", .. })
    ));
    let c = OnnxConfig::from_dir(qwen_dir())
        .expect("from_dir")
        .with_execution_provider(ExecutionProviderConfig::CoreML);
    assert!(matches!(
        OnnxEmbeddingProvider::new(c),
        Err(EmbedError::ProviderUnavailable { provider: "CoreML", .. })
    ));
}

#[test]
fn fp8_needs_a_qdq_model() {
    let mut ep = ExecutionProviderConfig::tensorrt(0, "/tmp/akidb-trt");
    if let ExecutionProviderConfig::TensorRT { fp8_enable, .. } = &mut ep {
        *fp8_enable = true;
    }
    let c = OnnxConfig::from_dir(qwen_dir()).expect("from_dir").with_execution_provider(ep);
    assert!(matches!(OnnxEmbeddingProvider::new(c), Err(EmbedError::Fp8NeedsQdqModel { .. })));
}

/// Child half of the runtime tests: reports what loading gives under the inherited environment.
#[test]
#[ignore = "run as a child process by missing_or_broken_runtime_is_a_typed_error"]
fn child_load_runtime() {
    if std::env::var_os("AKIDB_CHILD").is_none() {
        return;
    }
    match OnnxEmbeddingProvider::from_dir(qwen_dir()) {
        Ok(_) => println!("RESULT loaded"),
        Err(e @ EmbedError::RuntimeNotFound { .. }) => println!("RESULT not-found: {e}"),
        Err(e @ EmbedError::RuntimeLoad { .. }) => println!("RESULT load-error: {e}"),
        Err(e) => println!("RESULT other: {e:?}"),
    }
}

fn child(ort_path: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_load_runtime", "--ignored", "--nocapture"])
        .env("AKIDB_CHILD", "1")
        .env("ORT_DYLIB_PATH", ort_path)
        .output()
        .expect("spawn");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn missing_or_broken_runtime_is_a_typed_error() {
    let out = child("/nonexistent/libonnxruntime.so.1.32.0");
    assert!(out.contains("RESULT not-found"), "{out}");
    assert!(out.contains("scripts/setup.sh"), "the error says how to install: {out}");
    let not_a_lib = qwen_dir().join("tokenizer.json");
    let out = child(not_a_lib.to_str().expect("utf8"));
    assert!(out.contains("RESULT load-error"), "{out}");
}

/// A Python environment at `venv` whose `onnxruntime` wheel holds `library` (a file, or a link
/// to one), laid out as pip lays it out.
fn fake_venv(
    venv: &std::path::Path,
    library: Result<&std::path::Path, &[u8]>,
) -> std::path::PathBuf {
    let capi = venv.join("lib/python3.12/site-packages/onnxruntime/capi");
    std::fs::create_dir_all(&capi).expect("mkdir");
    let lib = capi.join("libonnxruntime.so.1.99.0");
    match library {
        Ok(real) => std::os::unix::fs::symlink(real, &lib).expect("link"),
        Err(bytes) => std::fs::write(&lib, bytes).expect("write"),
    }
    lib
}

/// Runs `child_load_runtime` in `cwd` with `env` (and without the runtime variables otherwise).
fn child_in(cwd: &std::path::Path, env: &[(&str, &std::path::Path)]) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("exe"));
    cmd.args(["--exact", "child_load_runtime", "--ignored", "--nocapture"])
        .env("AKIDB_CHILD", "1")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("AKIDB_ORT_VENV")
        .current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    String::from_utf8_lossy(&cmd.output().expect("spawn").stdout).into_owned()
}

/// A library planted in the working directory or one of its parents is never loaded (a shared
/// library runs code when loaded), not even a working one; a Python environment named
/// explicitly by AKIDB_ORT_VENV is.
#[test]
fn libraries_load_only_from_paths_the_application_names() {
    let real = std::env::var_os("ORT_DYLIB_PATH").map(std::path::PathBuf::from).expect(
        "ORT_DYLIB_PATH must name the ONNX Runtime library for the tests (`source scripts/env.sh`)",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("project/sub/dir");
    std::fs::create_dir_all(&work).expect("mkdir");
    // Junk at the parent's .venv (a real attack would be a library with a constructor), and a
    // working library at the grandparent's: neither is looked at.
    let junk = fake_venv(&tmp.path().join("project/sub/.venv"), Err(b"\x7fELF planted"));
    let working = fake_venv(&tmp.path().join("project/.venv"), Ok(&real));
    let cwd_venv = fake_venv(&work.join(".venv"), Err(b"\x7fELF planted"));
    let out = child_in(&work, &[]);
    assert!(out.contains("RESULT not-found"), "{out}");
    for planted in [&junk, &working, &cwd_venv] {
        assert!(
            !out.contains(planted.to_str().expect("utf8")),
            "looked at {}: {out}",
            planted.display()
        );
    }
    assert!(
        out.contains("ORT_DYLIB_PATH") && out.contains("AKIDB_ORT_VENV"),
        "the error says what to set: {out}"
    );
    // Named explicitly, a Python environment is searched.
    let optin = tmp.path().join("named-venv");
    fake_venv(&optin, Ok(&real));
    let out = child_in(&work, &[("AKIDB_ORT_VENV", &optin)]);
    assert!(out.contains("RESULT loaded"), "{out}");
    assert_eq!(
        akidb_embedding::runtime::library_in_venv(&optin),
        Some(optin.join("lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so.1.99.0"))
    );
    assert_eq!(akidb_embedding::runtime::library_in_venv(&tmp.path().join("nothing")), None);
}
