//! Limits every public entry point enforces with a typed error, so that no single request can
//! exhaust memory or write something unreadable.

/// Longest document id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 512;
/// Longest document text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4 << 20;
/// Largest metadata object, serialised as JSON.
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// Deepest nesting of metadata objects and arrays.
pub const MAX_METADATA_DEPTH: usize = 16;
/// Most documents (or ids) in one write or get call.
pub const MAX_BATCH: usize = 65_536;
/// Largest `k` of a search.
pub const MAX_K: usize = 10_000;
/// Largest `ef_construction` / `ef_search` (and per-query `ef`); the index crate's, where
/// `HnswParams::validate` checks it.
pub const MAX_EF: usize = akidb_index::MAX_EF;
/// Largest vector dimension of a collection.
pub const MAX_DIMENSION: usize = 65_536;
/// Deepest nesting of a metadata filter.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most payload indexes (declared metadata fields) per collection.
pub const MAX_INDEXES: usize = 64;
/// Most values in one `$in`/`$nin` list or `$and`/`$or` array.
pub const MAX_FILTER_VALUES: usize = 10_000;
/// Collection names: this many characters at most, of `[A-Za-z0-9_-]`.
pub const MAX_COLLECTION_NAME: usize = 64;
/// Dot and L2 collections: the largest magnitude of a vector component. Scores are computed in
/// f32; within this bound every dot product and squared distance stays finite at every dimension
/// up to [`MAX_DIMENSION`] (65,536 x (2 x 10^15)^2 < f32::MAX), so scores are finite and ranked.
/// Cosine vectors are normalised (in f64) first and take any finite, non-zero vector.
pub const MAX_VECTOR_COMPONENT: f32 = 1e15;
/// Dot and L2 collections: a non-zero vector's largest component must be at least this in
/// magnitude; below it, f32 products of two such vectors underflow to zero and scores tie.
pub const MIN_VECTOR_SCALE: f32 = 1e-15;
