#![no_main]
#[path = "../targets.rs"]
mod targets;

// Any panic is a crash here, also one that AkiDB's catch_unwind would contain: the structural
// check (akidb-index/src/dumpcheck.rs) must keep every malformed file away from hnsw_rs's loader.
libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::index_load(data));
