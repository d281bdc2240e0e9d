//! How stored metadata (JSON text in storage) is read back. What searches filter on in memory
//! is the payload index (`payload.rs`).

use akidb_storage::{CollectionEntry, StorageError, StoredDocument};
use serde_json::{Map, Value};

use crate::filter::Filter;
use crate::{Error, Result};

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

/// Whether stored document `doc` (sequence `seq`) matches `filter`, judged on its parsed
/// metadata: what every path that filters stored documents asks (count, scroll, deletes, the
/// matches of a filter on undeclared fields). Metadata that does not parse is `Corrupt`.
pub(crate) fn doc_matches(
    filter: &Filter,
    seq: u64,
    doc: &StoredDocument,
    entry: &CollectionEntry,
) -> Result<bool> {
    Ok(filter.matches(&parse_object(&doc.metadata, seq, entry)?))
}

/// Parses stored metadata of sequence `seq` as an object (the payload's fields, retention's
/// time field, filters).
pub(crate) fn parse_object(
    text: &str,
    seq: u64,
    entry: &CollectionEntry,
) -> Result<Map<String, Value>> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(entry, format!("metadata of sequence {seq}: {e}")))
}
