#![no_main]
#[path = "../targets.rs"]
mod targets;

static MODEL: std::sync::LazyLock<akidb::OnnxEmbeddingProvider> = std::sync::LazyLock::new(|| {
    targets::tiny_qwen3(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::tokenizer_input(&MODEL, data));
