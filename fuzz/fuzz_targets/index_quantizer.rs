#![no_main]
#[path = "../targets.rs"]
mod targets;

// Any panic is a crash here: a damaged, foreign or hostile quantizer block in a generation's
// manifest must lead to a rebuild (or load parameters that fit), never a panic or a wrong score.
libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::index_quantizer(data));
