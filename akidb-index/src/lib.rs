//! AkiDB vector indexes.
//!
//! An index maps internal ids (the storage layer's sequence numbers) to vectors and answers
//! k-nearest-neighbour queries, optionally restricted by a predicate on ids (the metadata filter,
//! evaluated by the caller). Indexes are derived data: the storage layer can always rebuild them.
//!
//! - [`FlatIndex`]: exact search, a parallel scan (rayon) over contiguous vectors. Ground truth and
//!   the fallback for small collections and very selective filters.
//! - [`HnswIndex`]: an HNSW graph beside the flat store (`graph.rs`: built in parallel,
//!   half-float vectors, the walk's best hits re-scored exactly, the filter applied in the
//!   walk, identical vectors merged), with tombstones and rebuilds; see its module docs for
//!   the search rule. Generations on disk (`persist`) are hnsw_rs dumps.
//!
//! Scores: cosine and dot return the similarity (higher is better); L2 returns the Euclidean
//! distance (lower is better). Results are always ordered best first, ties broken by id.

mod codes;
mod dump;
mod flat;
mod graph;
mod hnsw;
mod metric;
pub mod persist;

pub use codes::{InvalidQuantization, Quantization, BINARY_MIN_DIMENSION, MAX_OVERSAMPLE};
pub use flat::{FlatIndex, Visit, DISK_CHUNK_BYTES};
pub use hnsw::{
    GraphDistance, HnswIndex, HnswParams, InvalidParams, SearchParams, SearchPath, Staged,
    EXACT_BELOW, EXACT_SELECTIVITY, MAX_EF, M_RANGE, SCAN_CHECK_COST, SCAN_MATCH_COST,
    SELECTIVITY_SAMPLE, WALK_FILTER_EXPONENT, WALK_VISITS_PER_EF,
};
pub use metric::{normalize, Metric};

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Internal id.
    pub id: u64,
    /// Score under the index metric (see the crate docs for its direction).
    pub score: f32,
}

/// A predicate on internal ids; `true` keeps the id.
pub type IdFilter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// A filter as [`HnswIndex::search_planned`] takes it: the predicate, plus what its owner may
/// know better than a sample of the predicate can tell (from a payload index, say).
#[derive(Clone, Copy)]
pub struct FilterPlan<'a> {
    /// The predicate; `true` keeps the id.
    pub accepts: IdFilter<'a>,
    /// The fraction of live ids it keeps, if known; otherwise estimated on a sample.
    pub selectivity: Option<f64>,
    /// Lists the live ids it keeps (duplicates and unknown ids are ignored), when that is
    /// cheaper than testing every live id: an exact scan then scores only those.
    pub matching: Option<&'a (dyn Fn() -> Vec<u64> + Sync)>,
}

impl<'a> FilterPlan<'a> {
    /// A plan of the predicate alone.
    pub fn new(accepts: IdFilter<'a>) -> Self {
        Self { accepts, selectivity: None, matching: None }
    }
}

impl std::fmt::Debug for FilterPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterPlan")
            .field("selectivity", &self.selectivity)
            .field("matching", &self.matching.is_some())
            .finish_non_exhaustive()
    }
}

/// Errors of the index layer.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum IndexError {
    /// A vector of the wrong length.
    #[error("vector has dimension {got}, index expects {expected}")]
    WrongDimension {
        /// Index dimension.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The exact store's file on disk could not be read or written (the index is unchanged
    /// by a failed insert; reopening the collection refills the store from storage).
    #[error("exact store on disk: {reason}")]
    Io {
        /// The system's error.
        reason: String,
    },
    /// The same id inserted twice without removal.
    #[error("id {id} is already in the index")]
    DuplicateId {
        /// The id.
        id: u64,
    },
}

/// Read side of an index: safe to call from many threads at once.
pub trait VectorSearch: Send + Sync {
    /// The `k` best live vectors for `query` that pass `filter`, best first.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<IdFilter<'_>>,
    ) -> Result<Vec<Neighbor>, IndexError>;
    /// Number of live vectors.
    fn len(&self) -> usize;
    /// Whether the index holds no live vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Vector dimension.
    fn dimension(&self) -> usize;
    /// Metric.
    fn metric(&self) -> Metric;
}

/// Write side of an index.
pub trait VectorInsert {
    /// Inserts vectors under new ids. Vectors must already be prepared for the metric
    /// (normalised for cosine, see [`normalize`]).
    fn insert(&mut self, items: &[(u64, &[f32])]) -> Result<(), IndexError>;
    /// Removes ids; unknown ids are ignored. Returns how many were removed.
    fn remove(&mut self, ids: &[u64]) -> usize;
}
