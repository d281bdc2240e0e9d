#![doc = include_str!("../README.md")]

pub use akidb_core::*;
/// Log files in, records out: format detection, multi-line records (the `akidb-logs` crate).
pub use akidb_logs as logs;
