//! Test support.
pub mod pg;
