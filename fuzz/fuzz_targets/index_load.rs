#![no_main]
#[path = "../targets.rs"]
mod targets;

// Any panic is a crash here: the dump reader (akidb-index/src/dump.rs) must turn every
// malformed file into a rebuild, never a panic, an abort or an out-of-bounds read.
libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::index_load(data));
