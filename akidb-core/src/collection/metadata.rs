//! Document metadata as searches see it, and how stored metadata is read back.
//!
//! Filters are evaluated during the graph walk, once per candidate, so the metadata of every
//! live document is kept in memory, parsed, keyed by sequence number ([`MetadataMap`]); storage
//! keeps its JSON text. Documents without metadata take no entry.

use std::collections::HashMap;

use akidb_storage::{CollectionEntry, StorageError};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The parsed metadata of the live documents, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct MetadataMap {
    by_seq: HashMap<u64, Map<String, Value>>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl MetadataMap {
    /// The metadata of sequence `seq` (empty when it has none or is not live).
    pub(crate) fn get(&self, seq: u64) -> &Map<String, Value> {
        self.by_seq.get(&seq).unwrap_or(&EMPTY)
    }

    /// Records the metadata of a new document (nothing for an empty object).
    pub(crate) fn insert(&mut self, seq: u64, metadata: Map<String, Value>) {
        if !metadata.is_empty() {
            self.by_seq.insert(seq, metadata);
        }
    }

    /// Forgets retired documents.
    pub(crate) fn remove(&mut self, seqs: &[u64]) {
        for seq in seqs {
            self.by_seq.remove(seq);
        }
    }
}

/// The table a collection's documents live in (as `akidb_storage` names it), for errors.
pub(crate) fn docs_table(entry: &CollectionEntry) -> String {
    format!("c{}_docs", entry.id)
}

/// Stored metadata text that does not parse as a JSON object means the table is corrupt.
fn corrupt(entry: &CollectionEntry, reason: String) -> Error {
    Error::Storage(StorageError::Corrupt { table: docs_table(entry), reason })
}

/// Parses stored metadata for a caller (`get`, search hits).
pub(crate) fn parse(text: &str, entry: &CollectionEntry) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| corrupt(entry, format!("metadata: {e}")))
}

/// Parses stored metadata of sequence `seq` for the in-memory map (at load).
pub(crate) fn parse_object(
    text: &str,
    seq: u64,
    entry: &CollectionEntry,
) -> Result<Map<String, Value>> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(entry, format!("metadata of sequence {seq}: {e}")))
}
