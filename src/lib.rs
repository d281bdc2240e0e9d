#![doc = include_str!("../README.md")]

pub use akidb_core::*;
