//! AkiDB core: [`Database`], [`Collection`], documents, filters and the async facade.
//!
//! This crate composes the storage engine (`akidb-storage`, redb), the vector index
//! (`akidb-index`) and the embedding runtime (`akidb-embedding`). Applications depend on the
//! `akidb` facade crate, which re-exports this API.
//!
//! Text collections ([`Database::text_collection`]) embed in process with an [`Embedder`]
//! (normally `OnnxEmbeddingProvider`, with the default feature `onnx`; the contract itself is
//! the small `akidb-embed-api` crate, so a vector-only build compiles no ONNX Runtime).
//!
//! Data flow of a write: validate -> one redb write transaction -> commit (fsync) -> index update
//! -> return. Of a search: validate -> index search with the filter applied per candidate ->
//! fetch documents from one redb snapshot -> hits.

mod asynch;
mod batcher;
mod clock;
mod collection;
mod database;
mod document;
mod error;
pub mod filter;
pub mod limits;
mod maintenance;
mod memory;
pub use memory::release_free_heap;
mod schema;
mod text;
mod validate;

pub use akidb_index::{HnswParams, Quantization, SearchParams, SearchPath};
pub use asynch::{AsyncCollection, AsyncDatabase};
pub use batcher::{BatchOptions, BatchingEmbedder};
pub use clock::{Clock, SystemClock};
pub use collection::{
    ChangePage, ChangePosition, Collection, FeedChange as Change, Fusion, HitExplain, ImportReport,
    IndexStats, QueryMode, QueryOptions, RetentionReport, Scroll, ScrollCursor, ScrollOptions,
    SideRank, CHANGE_FEED_KEEP, CHANGE_PAGE_BYTES, DELETE_CHUNK, KEYWORD_MIN_STRENGTH,
    MAX_CHANGES_PER_PAGE, MAX_IMPORT_LINE, OPTIMIZE_MIN_TOMBSTONES, OPTIMIZE_TOMBSTONE_RATIO,
    TEXT_EXACT_BYTES, TEXT_MIN_EF,
};
pub use database::{BackupReport, CompactReport, Database, DatabaseBuilder, COMPACT_WAIT};
pub use document::{Document, Hit, Record, TextDocument};
pub use error::{Error, IdProblem, LimitExceeded, Result};
pub use filter::{Bound, Filter, FilterError, RangeValue};
pub use schema::{CollectionConfig, FieldIndex, IndexKind, Metric, ModelIdentity, Retention};
pub use text::{IngestOptions, IngestProgress, IngestReport};
pub use validate::validate_collection_name;

/// The embedding contract (`Embedder` and its types): without the `onnx` feature, bring your
/// own embedder or your own vectors.
#[cfg(not(feature = "onnx"))]
pub use akidb_embed_api as embedding;
pub use akidb_embed_api::{EmbedError, Embedder, InputKind, ModelInfo};
/// The embedding layer: the ONNX Runtime provider (models, execution providers,
/// configuration) and the contract it implements (feature `onnx`, on by default).
#[cfg(feature = "onnx")]
pub use akidb_embedding as embedding;
#[cfg(feature = "onnx")]
pub use akidb_embedding::{
    ExecutionProviderConfig, ModelRegistry, ModelStatus, OnnxConfig, OnnxEmbeddingProvider,
    MAX_PARALLEL_RUNS,
};
/// The full-text layer: the tokenizer (what a term is) and the BM25 index.
pub use akidb_fulltext as fulltext;
/// The index layer: HNSW and exact indexes (usable on their own, as `examples/ann_bench.rs` does).
pub use akidb_index as index;

/// The index error type, reachable through [`Error::Index`].
pub use akidb_index::IndexError;
/// The storage error type, reachable through [`Error::Storage`].
pub use akidb_storage::StorageError;

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    #[test]
    fn handles_are_send_sync_clone() {
        assert_send_sync::<crate::Database>();
        assert_send_sync::<crate::Collection>();
        assert_send_sync::<crate::AsyncCollection>();
    }
}
