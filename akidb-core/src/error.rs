//! The error type of AkiDB: one enum, structured variants, component errors kept as sources.

use akidb_index::IndexError;
use akidb_storage::StorageError;

use crate::filter::FilterError;

/// Any failure of an AkiDB call. Validation errors are returned before anything is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Collection names become file names: `[A-Za-z0-9_-]{1,64}`.
    #[error(
        "invalid collection name {name:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"
    )]
    InvalidCollectionName {
        /// The rejected name.
        name: String,
    },
    /// A collection of that name already exists.
    #[error("collection {name:?} already exists")]
    CollectionExists {
        /// The name.
        name: String,
    },
    /// No such collection (or it was dropped while this handle was held).
    #[error("collection {name:?} does not exist")]
    CollectionNotFound {
        /// The name.
        name: String,
    },
    /// A collection configuration that cannot work.
    #[error("invalid dimension {dimension}: must be between 1 and {max}")]
    InvalidDimension {
        /// The dimension asked for.
        dimension: usize,
        /// The maximum.
        max: usize,
    },
    /// HNSW parameters out of range: `m` 2 to 255, `ef_*` 1 to [`crate::limits::MAX_EF`].
    #[error(
        "invalid HNSW parameters m = {m}, ef_construction = {ef_construction}, \
         ef_search = {ef_search}: m must be 2 to 255, ef values 1 to 10000"
    )]
    InvalidIndexParams {
        /// m.
        m: usize,
        /// ef_construction.
        ef_construction: usize,
        /// ef_search.
        ef_search: usize,
    },
    /// A quantization that does not suit the collection (binary codes below 1,024 dimensions
    /// or under L2, an oversampling out of range).
    #[error(transparent)]
    InvalidQuantization(#[from] akidb_index::InvalidQuantization),
    /// Saving an index generation failed (disk full, permissions); the data is safe in redb.
    #[error("saving the index failed (data is unaffected): {0}")]
    IndexPersist(#[source] akidb_index::persist::PersistError),
    /// A vector of the wrong length.
    #[error("vector {context} has dimension {got}, the collection expects {expected}")]
    WrongDimension {
        /// Which vector: `query` or `of document "id"`.
        context: String,
        /// The collection dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A NaN or infinite component.
    #[error("vector {context} has a non-finite value at position {position}")]
    NonFiniteVector {
        /// Which vector.
        context: String,
        /// First bad position.
        position: usize,
    },
    /// A Dot or L2 vector outside the range whose scores f32 arithmetic keeps finite and ordered
    /// ([`crate::limits::MAX_VECTOR_COMPONENT`], [`crate::limits::MIN_VECTOR_SCALE`]).
    #[error(
        "vector {context} has largest component magnitude {magnitude:e}, outside the {metric} \
         range [{min:e}, {max:e}] (or all zeros) in which scores stay finite; scale it, or use \
         cosine"
    )]
    VectorOutOfRange {
        /// Which vector.
        context: String,
        /// Its largest component magnitude.
        magnitude: f32,
        /// The collection's metric.
        metric: &'static str,
        /// Smallest largest-component magnitude of a non-zero vector.
        min: f32,
        /// Largest component magnitude.
        max: f32,
    },
    /// The zero vector has no direction, so it has no cosine similarity.
    #[error("vector {context} is all zeros, which has no cosine similarity")]
    ZeroVector {
        /// Which vector.
        context: String,
    },
    /// Document ids are 1 to [`crate::limits::MAX_ID_BYTES`] bytes of UTF-8.
    #[error("invalid document id at batch position {position}: {reason}")]
    InvalidId {
        /// Position in the batch.
        position: usize,
        /// What is wrong.
        reason: IdProblem,
    },
    /// Metadata must be a JSON object.
    #[error("metadata of document {id:?} must be a JSON object, got {found}")]
    MetadataNotObject {
        /// Document id.
        id: String,
        /// JSON type found.
        found: &'static str,
    },
    /// Metadata larger than [`crate::limits::MAX_METADATA_BYTES`] or nested deeper than
    /// [`crate::limits::MAX_METADATA_DEPTH`].
    #[error("metadata of document {id:?} is too large: {what}")]
    MetadataTooLarge {
        /// Document id.
        id: String,
        /// Which limit.
        what: LimitExceeded,
    },
    /// Text longer than [`crate::limits::MAX_TEXT_BYTES`].
    #[error("text of document {id:?} has {bytes} bytes, the limit is {max}")]
    TextTooLong {
        /// Document id.
        id: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More items in one call than [`crate::limits::MAX_BATCH`].
    #[error("batch of {len} items exceeds the limit of {max}")]
    BatchTooLarge {
        /// Items given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A panic interrupted an update of this collection's index in this process (a bug): its
    /// index may be out of step with storage, so it refuses index work (searches, writes,
    /// optimize, saves) until the database is reopened. Storage is intact: every acknowledged
    /// write is there, and reopening rebuilds or replays the index from it.
    #[error(
        "collection {collection:?} stopped after a panic in an earlier call; its data is safe: \
         reopen the database"
    )]
    Poisoned {
        /// The collection.
        collection: String,
    },
    /// A per-query `ef` must be between 1 and [`crate::limits::MAX_EF`].
    #[error("ef = {ef} is out of range 1..={max} (a per-query search beam)")]
    InvalidEf {
        /// The `ef` given.
        ef: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `k` must be between 1 and [`crate::limits::MAX_K`].
    #[error("k = {k} is out of range 1..={max}")]
    InvalidK {
        /// The k given.
        k: usize,
        /// The maximum.
        max: usize,
    },
    /// A malformed metadata filter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The storage layer failed (I/O, locked database, foreign or newer file, ...).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The index layer failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The stored schema of a collection could not be read.
    #[error("schema of collection {name:?} is unreadable: {source}")]
    CorruptSchema {
        /// Collection.
        name: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// Text calls on a collection opened without an embedding model.
    #[error(
        "collection {collection:?} has no embedding model attached: open it with \
         Database::text_collection"
    )]
    NoEmbedder {
        /// The collection.
        collection: String,
    },
    /// The collection was built with another embedding model than the one given.
    #[error(
        "collection {collection:?} was built with model {stored}, not with {given}: vectors of \
         different models do not mix"
    )]
    ModelMismatch {
        /// The collection.
        collection: String,
        /// The model recorded in the collection's schema (`none` for a vector-only collection).
        stored: String,
        /// The model given now.
        given: String,
    },
    /// The embedding model failed.
    #[error(transparent)]
    Embedding(#[from] akidb_embed_api::EmbedError),
    /// A keyword or hybrid query on a collection that keeps no full-text index.
    #[error(
        "collection {collection:?} keeps no full-text index (CollectionConfig::with_full_text): \
         only vector queries"
    )]
    NoFullText {
        /// The collection.
        collection: String,
    },
    /// The collection's full-text index stopped following writes (its storage is intact);
    /// reopening the database rebuilds it. Vector queries still work.
    #[error(
        "full-text index of collection {collection:?} is unavailable: {reason}; reopen the \
         database to rebuild it"
    )]
    FullText {
        /// The collection.
        collection: String,
        /// What failed.
        reason: String,
    },
    /// A keyword query with more distinct terms than
    /// [`akidb_fulltext::MAX_QUERY_TERMS`].
    #[error("query has {terms} distinct terms; keyword search takes at most {max}")]
    TooManyQueryTerms {
        /// Distinct terms in the query.
        terms: usize,
        /// The limit.
        max: usize,
    },
    /// A scroll cursor that cannot be resumed here.
    #[error("invalid scroll cursor: {reason}")]
    InvalidCursor {
        /// Why.
        reason: &'static str,
    },
    /// A change feed position that cannot be read here (another database or collection, another
    /// history of the database, or not a position at all).
    #[error("invalid change feed position: {reason}")]
    InvalidPosition {
        /// Why.
        reason: &'static str,
    },
    /// Delete records after the position were pruned: read the feed again from
    /// `Collection::change_start`.
    #[error(
        "the change feed of {collection:?} was pruned past position {position} (horizon \
         {horizon}); start again from the beginning"
    )]
    ChangesPruned {
        /// The collection.
        collection: String,
        /// The position asked for.
        position: u64,
        /// The first position still readable (besides the start).
        horizon: u64,
    },
    /// A scroll page size out of range.
    #[error("page size {size} is out of range 1..={max}")]
    InvalidPageSize {
        /// The size given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A payload index declaration that cannot be kept as given.
    #[error("invalid payload index on {field:?}: {reason}")]
    InvalidIndex {
        /// The field as declared.
        field: String,
        /// Why.
        reason: &'static str,
    },
    /// A retention policy that cannot be enforced as given.
    #[error("invalid retention policy: {reason}")]
    InvalidRetention {
        /// Why.
        reason: &'static str,
    },
    /// A file of an export or import could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An import input that is not what an export writes (the lines before it are imported).
    #[error("import line {line}: {reason}")]
    Import {
        /// 1-based line (JSON Lines) or row (Parquet) number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A background task of the async facade was cancelled or panicked.
    #[error("background task failed: {source}")]
    Task {
        /// tokio's error.
        #[from]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// Whether the database is held by another process or handle.
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Storage(StorageError::Locked { .. }))
    }

    /// A stable, machine-readable name of the error's kind (`snake_case`), for services and
    /// scripts: it does not change when the message's wording does.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidCollectionName { .. } => "invalid_collection_name",
            Error::CollectionExists { .. } => "collection_exists",
            Error::CollectionNotFound { .. } => "collection_not_found",
            Error::InvalidDimension { .. } => "invalid_dimension",
            Error::InvalidIndexParams { .. } => "invalid_index_params",
            Error::InvalidQuantization(_) => "invalid_quantization",
            Error::IndexPersist(_) => "index_persist_failed",
            Error::WrongDimension { .. } => "wrong_dimension",
            Error::NonFiniteVector { .. } => "non_finite_vector",
            Error::VectorOutOfRange { .. } => "vector_out_of_range",
            Error::ZeroVector { .. } => "zero_vector",
            Error::InvalidId { .. } => "invalid_id",
            Error::MetadataNotObject { .. } => "metadata_not_object",
            Error::MetadataTooLarge { .. } => "metadata_too_large",
            Error::TextTooLong { .. } => "text_too_long",
            Error::BatchTooLarge { .. } => "batch_too_large",
            Error::Poisoned { .. } => "collection_poisoned",
            Error::InvalidEf { .. } => "invalid_ef",
            Error::InvalidK { .. } => "invalid_k",
            Error::Filter(_) => "invalid_filter",
            Error::Storage(StorageError::Locked { .. }) => "database_locked",
            Error::Storage(_) => "storage_error",
            Error::Index(_) => "index_error",
            Error::CorruptSchema { .. } => "corrupt_schema",
            Error::NoEmbedder { .. } => "no_model",
            Error::ModelMismatch { .. } => "model_mismatch",
            Error::Embedding(_) => "embedding_failed",
            Error::NoFullText { .. } => "no_full_text_index",
            Error::FullText { .. } => "full_text_unavailable",
            Error::TooManyQueryTerms { .. } => "too_many_query_terms",
            Error::InvalidCursor { .. } => "invalid_cursor",
            Error::InvalidPosition { .. } => "invalid_position",
            Error::ChangesPruned { .. } => "changes_pruned",
            Error::InvalidPageSize { .. } => "invalid_page_size",
            Error::InvalidIndex { .. } => "invalid_payload_index",
            Error::InvalidRetention { .. } => "invalid_retention",
            Error::Io { .. } => "io_error",
            Error::Import { .. } => "invalid_import",
            Error::Task { .. } => "task_failed",
        }
    }
}

/// Why an id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdProblem {
    /// The empty string.
    #[error("id is empty")]
    Empty,
    /// Longer than the limit.
    #[error("id has {bytes} bytes, the limit is {max}")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// A size limit that was exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// Serialised size.
    #[error("{bytes} bytes, the limit is {max}")]
    Bytes {
        /// Size.
        bytes: usize,
        /// Limit.
        max: usize,
    },
    /// Nesting depth.
    #[error("nested deeper than {max} levels")]
    Depth {
        /// Limit.
        max: usize,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
