//! HNSW graph (hnsw_rs underneath) plus the exact store beside it.
//!
//! [`HnswIndex`] keeps every live vector in a [`FlatIndex`] (exact scans, rebuilds) and an
//! hnsw_rs graph over the same ids. hnsw_rs builds the graph and persists it; searches walk a
//! [`GraphView`], a read-optimised copy of it (see `view.rs`: hnsw_rs's own search is 2.4x slower). Removing
//! an id drops it from the flat store at once and marks it in the view; the graph keeps the node
//! as a tombstone (hnsw_rs cannot delete) that walks traverse but never return, and
//! [`HnswIndex::rebuild_from`] (optimize) clears.
//!
//! The view is a snapshot. Vectors inserted after it (the delta) are in hnsw_rs's graph at once
//! but not in the view: searches scan them exactly and merge. When the delta outgrows
//! [`delta_limit`] the view is taken again (O(n): a copy of the vectors and links).
//!
//! # Search rule
//!
//! - Fewer than [`EXACT_BELOW`] live vectors: exact scan (cheaper than the graph, and exact).
//! - With a filter, the fraction of live ids it keeps is estimated on a sample of up to
//!   [`SELECTIVITY_SAMPLE`] ids. Below [`EXACT_SELECTIVITY`] (2%), or with fewer than
//!   [`EXACT_MATCHES`] expected matches, the matching ids are scanned exactly: a graph walk would
//!   visit ~1/selectivity nodes per useful one.
//! - Otherwise the graph is walked with the filter applied inside the walk: every node is
//!   traversed, only matching live nodes enter the beam of width `ef`, and the walk stops when
//!   the nearest unexplored node is farther than the beam's worst. A walk that visits a tenth of
//!   the collection without filling its beam (the estimate was wrong) is abandoned for the
//!   exact scan.
//! - If the answer holds fewer than `k` hits while `k` live matches exist, the search falls back
//!   to the exact scan. So a search returns `min(k, live matches)` hits, always.
//!
//! # hnsw_rs pitfalls handled here
//!
//! - hnsw_rs asserts that distances are non-negative; `DistDot` trips on rounding for unit
//!   vectors. [`GraphDistance`] clamps cosine at 0 and maps inner product through a strictly
//!   increasing map onto (0, inf); HNSW only compares distances, so the graph is unchanged.
//! - Parallel insertion is not deterministic (thread timing decides neighbours); results are
//!   deterministic for a given graph, and recall is what the tests pin, not exact graphs.
//! - There is no delete: tombstones plus rebuild.
//! - Its file loader panics on foreign input; persistence (`persist.rs`) verifies checksums and
//!   structure before handing a file to it.

use std::collections::{BinaryHeap, HashSet};

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;

use crate::flat::{into_neighbors, push_bounded, Candidate};
use crate::metric::{dot, l2_squared};
use crate::view::{GraphView, Walk};
use crate::{FlatIndex, IdFilter, IndexError, Metric, Neighbor, VectorInsert, VectorSearch};


/// Below this many live vectors searches are exact: a parallel scan of 10k x 384-d takes about
/// 0.5 ms, and it is exact. (On robot-log embeddings of 3,000 lines the graph at ef 64 found
/// 94% of the exact top 10: tight clusters of lines in another language were poorly linked.)
pub const EXACT_BELOW: usize = 10_000;
/// Filters keeping less than this fraction of live ids are answered by an exact scan.
pub const EXACT_SELECTIVITY: f64 = 0.02;
/// Filters expected to keep fewer ids than this are answered by an exact scan.
pub const EXACT_MATCHES: usize = 1_000;
/// Ids sampled to estimate a filter's selectivity.
pub const SELECTIVITY_SAMPLE: usize = 1_024;

/// Vectors inserted after the view's snapshot that make the index take a new one: 1% of the
/// live vectors, at least 256 (scanning 1% exactly costs about what the walk does). Measured:
/// 2% gave the same ingest rate at 100k (610 vs 616 docs/s), so snapshots are not what limits it.
pub fn delta_limit(live: usize) -> usize {
    (live / 100).max(256)
}

/// HNSW parameters.
///
/// Defaults: `m` 16, `ef_construction` 200, `ef_search` 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct HnswParams {
    /// Links per node and layer (hnsw_rs: `max_nb_connection`; layer 0 keeps 2m).
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Default beam width while searching (per-query override in [`SearchParams`]).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self { m: 16, ef_construction: 200, ef_search: 64 }
    }
}

impl HnswParams {
    /// Parameters with the given `m` and `ef_construction` (default `ef_search`).
    pub fn new(m: usize, ef_construction: usize) -> Self {
        Self { m, ef_construction, ..Self::default() }
    }
    /// Sets `ef_search`.
    pub fn with_ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }
}

/// Per-query search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SearchParams {
    /// Beam width; `None`: the index's `ef_search`.
    pub ef: Option<usize>,
    /// Force an exact scan (ground truth, tests).
    pub exact: bool,
}

impl SearchParams {
    /// Exact search.
    pub fn exact() -> Self {
        Self { ef: None, exact: true }
    }
    /// Approximate search with beam width `ef`.
    pub fn with_ef(ef: usize) -> Self {
        Self { ef: Some(ef), exact: false }
    }
}

/// How a search was answered (for benches and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPath {
    /// Exact scan over all live vectors.
    Exact,
    /// Exact scan over the ids matching the filter.
    ExactFiltered,
    /// HNSW graph walk.
    Graph,
    /// Graph walk that came back short and was redone exactly.
    GraphThenExact,
}

/// The distance hnsw_rs sees: non-negative, order-preserving.
#[derive(Debug, Clone, Copy, Default)]
pub struct GraphDistance {
    metric: u8,
}

impl GraphDistance {
    /// The graph distance of a metric.
    pub fn new(metric: Metric) -> Self {
        Self {
            metric: match metric {
                Metric::Cosine => 0,
                Metric::Dot => 1,
                Metric::L2 => 2,
            },
        }
    }
}

impl Distance<f32> for GraphDistance {
    #[inline]
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.metric {
            0 => (1.0 - dot(a, b)).max(0.0),
            1 => order_preserving_nonnegative(-dot(a, b)),
            _ => l2_squared(a, b),
        }
    }
}

/// Maps any f32 to a non-negative f32 of the same order, keeping its relative precision (22 of
/// 24 significant bits) at every magnitude: the IEEE bit pattern as an order-preserving u32,
/// shifted into the finite non-negative floats (below 2.0). An additive mapping such as `1 + s`
/// would make every inner product smaller than ~1e-7 the same distance to hnsw_rs (measured:
/// recall@10 0.007 for vectors of magnitude 1e-6).
fn order_preserving_nonnegative(s: f32) -> f32 {
    let bits = s.to_bits();
    let key = if bits & 0x8000_0000 != 0 { !bits } else { bits | 0x8000_0000 };
    f32::from_bits(key >> 2)
}

/// The graph type.
pub(crate) type Graph = Hnsw<'static, f32, GraphDistance>;

/// Builds an empty graph sized for `capacity` points.
pub(crate) fn new_graph(params: &HnswParams, capacity: usize, metric: Metric) -> Graph {
    let mut g = Hnsw::new(params.m.clamp(2, 255), capacity.max(1024), 16, params.ef_construction.max(params.m), GraphDistance::new(metric));
    g.set_searching_mode(true);
    g
}

/// An HNSW index with exact fallbacks; see the module docs.
pub struct HnswIndex {
    params: HnswParams,
    flat: FlatIndex,
    graph: Graph,
    /// Ids in the graph (live or tombstoned).
    in_graph: HashSet<u64>,
    /// Whether the graph exists. It is built lazily, in one parallel pass, when the index first
    /// reaches [`EXACT_BELOW`] live vectors: below that searches are exact anyway, so small
    /// collections (and the first part of a bulk load) do not pay for graph inserts.
    built: bool,
    /// What searches walk (a snapshot of `graph`; `None` until built).
    view: Option<GraphView>,
    /// Ids inserted into `graph` after `view` was taken.
    delta: Vec<u64>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("live", &self.flat.len())
            .field("graph_nodes", &self.in_graph.len())
            .field("params", &self.params)
            .finish()
    }
}

impl HnswIndex {
    /// An empty index.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Self {
        Self::unbuilt(FlatIndex::new(dim, metric), params)
    }

    /// `flat` with no graph yet.
    fn unbuilt(flat: FlatIndex, params: HnswParams) -> Self {
        let graph = new_graph(&params, 1024, flat.metric());
        Self { params, flat, graph, in_graph: HashSet::new(), built: false, view: None, delta: Vec::new() }
    }

    /// Takes a new snapshot of the graph for searches; nodes no longer live are marked removed.
    fn refresh_view(&mut self) {
        let mut view = GraphView::snapshot(&self.graph, self.flat.dimension(), self.flat.metric());
        let gone: Vec<u64> = self.in_graph.iter().copied().filter(|id| self.flat.vector(*id).is_none()).collect();
        view.mark_removed(&gone);
        self.view = Some(view);
        self.delta.clear();
    }

    /// Approximate heap bytes of the search view (reports).
    pub fn view_bytes(&self) -> usize {
        self.view.as_ref().map_or(0, GraphView::heap_bytes)
    }

    /// Builds a fresh graph over every live vector, in parallel chunks; `false` if cancelled.
    fn build_graph(&mut self, cancel: &dyn Fn() -> bool, progress: &mut dyn FnMut(usize, usize)) -> bool {
        let ids = self.flat.ids().to_vec();
        self.graph = new_graph(&self.params, ids.len(), self.flat.metric());
        self.in_graph = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(8192) {
            if cancel() {
                return false;
            }
            self.insert_graph(chunk);
            progress(self.in_graph.len(), ids.len());
        }
        self.built = true;
        self.refresh_view();
        true
    }

    /// Parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The exact store of live vectors.
    pub fn flat(&self) -> &FlatIndex {
        &self.flat
    }

    /// Graph nodes that are tombstones (removed ids still linked in the graph).
    pub fn tombstones(&self) -> usize {
        if self.built {
            self.in_graph.len().saturating_sub(self.flat.len())
        } else {
            0
        }
    }

    /// Whether the graph has been built (see the field docs).
    pub fn graph_built(&self) -> bool {
        self.built
    }

    /// Tombstones as a fraction of graph nodes.
    pub fn tombstone_ratio(&self) -> f64 {
        if self.in_graph.is_empty() {
            0.0
        } else {
            self.tombstones() as f64 / self.in_graph.len() as f64
        }
    }

    /// Builds a fresh graph over the live vectors of `flat` (parallel insert on all cores).
    /// `cancel` is checked between chunks; `progress(done, total)` is called after each.
    pub fn rebuild_from(
        flat: FlatIndex,
        params: HnswParams,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Option<Self> {
        let mut idx = Self::unbuilt(flat, params);
        if idx.flat.len() >= EXACT_BELOW && !idx.build_graph(cancel, progress) {
            return None;
        }
        Some(idx)
    }

    /// `flat` with its graph built whatever its size (tests and fuzz seeds use small graphs).
    #[doc(hidden)]
    pub fn with_graph(flat: FlatIndex, params: HnswParams) -> Self {
        let mut idx = Self::unbuilt(flat, params);
        idx.build_graph(&|| false, &mut |_, _| {});
        idx
    }

    /// Wraps a graph loaded from disk: `flat` holds the live vectors (from storage); graph ids
    /// not in `flat` become tombstones, and live ids missing from the graph are inserted.
    pub(crate) fn from_parts(params: HnswParams, flat: FlatIndex, graph: Graph, graph_ids: HashSet<u64>) -> Self {
        let mut idx = Self { params, flat, graph, in_graph: graph_ids, built: true, view: None, delta: Vec::new() };
        let missing: Vec<u64> = idx.flat.ids().iter().copied().filter(|id| !idx.in_graph.contains(id)).collect();
        idx.insert_graph(&missing);
        idx.refresh_view();
        idx
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    fn insert_graph(&mut self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let items: Vec<(&[f32], usize)> =
            ids.iter().filter_map(|id| self.flat.vector(*id).map(|v| (v, *id as usize))).collect();
        if items.len() > 64 {
            self.graph.parallel_insert_slice(&items);
        } else {
            for it in &items {
                self.graph.insert_slice(*it);
            }
        }
        self.in_graph.extend(ids.iter().copied());
    }

    /// Estimated fraction of live ids that pass `filter`.
    fn selectivity(&self, filter: IdFilter<'_>) -> f64 {
        let ids = self.flat.ids();
        let step = (ids.len() / SELECTIVITY_SAMPLE).max(1);
        let sample: Vec<u64> = ids.iter().step_by(step).copied().collect();
        let hits = sample.iter().filter(|id| filter(**id)).count();
        // One pseudo-hit keeps a zero estimate from hiding a rare match.
        (hits as f64 + 0.5) / (sample.len() as f64 + 1.0)
    }

    /// Search with explicit parameters; also says which path answered.
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<IdFilter<'_>>,
        params: SearchParams,
    ) -> Result<(Vec<Neighbor>, SearchPath), IndexError> {
        let live = self.flat.len();
        if query.len() != self.flat.dimension() {
            return Err(IndexError::WrongDimension { expected: self.flat.dimension(), got: query.len() });
        }
        if k == 0 || live == 0 {
            return Ok((Vec::new(), SearchPath::Exact));
        }
        if params.exact || live < EXACT_BELOW || !self.built {
            return Ok((self.flat.search(query, k, filter)?, SearchPath::Exact));
        }
        let ef = params.ef.unwrap_or(self.params.ef_search).max(k);
        if let Some(f) = filter {
            let s = self.selectivity(f);
            if s < EXACT_SELECTIVITY || (s * live as f64) < EXACT_MATCHES as f64 {
                return Ok((self.flat.search(query, k, Some(f))?, SearchPath::ExactFiltered));
            }
        }
        let Some(view) = self.view.as_ref() else {
            return Ok((self.flat.search(query, k, filter)?, SearchPath::Exact));
        };
        let found = match view.search(query, ef, filter, (live / 10).max(1_000)) {
            Walk::Found(found) => found,
            Walk::OverBudget => return Ok((self.flat.search(query, k, filter)?, SearchPath::ExactFiltered)),
        };
        // The walk's nearest 2k hits re-scored against the exact vectors (the walk's distances
        // are those of half floats, off by ~1e-4: farther hits cannot reach the top k), plus
        // the delta (inserted since the snapshot) scanned exactly.
        let metric = self.flat.metric();
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for c in found.into_iter().take(2 * k) {
            if let Some(v) = self.flat.vector(c.id) {
                push_bounded(&mut heap, k, Candidate { dist: metric.distance(query, v), id: c.id });
            }
        }
        for &id in &self.delta {
            if let Some(v) = self.flat.vector(id) {
                if filter.is_none_or(|f| f(id)) {
                    push_bounded(&mut heap, k, Candidate { dist: metric.distance(query, v), id });
                }
            }
        }
        let out = into_neighbors(heap, metric);
        if out.len() < k && out.len() < live {
            let exact = self.flat.search(query, k, filter)?;
            if exact.len() > out.len() {
                return Ok((exact, SearchPath::GraphThenExact));
            }
        }
        Ok((out, SearchPath::Graph))
    }
}

impl VectorSearch for HnswIndex {
    fn search(&self, query: &[f32], k: usize, filter: Option<IdFilter<'_>>) -> Result<Vec<Neighbor>, IndexError> {
        self.search_with(query, k, filter, SearchParams::default()).map(|r| r.0)
    }
    fn len(&self) -> usize {
        self.flat.len()
    }
    fn dimension(&self) -> usize {
        self.flat.dimension()
    }
    fn metric(&self) -> Metric {
        self.flat.metric()
    }
}

impl VectorInsert for HnswIndex {
    fn insert(&mut self, items: &[(u64, &[f32])]) -> Result<(), IndexError> {
        for (id, _) in items {
            if self.in_graph.contains(id) {
                return Err(IndexError::DuplicateId { id: *id });
            }
        }
        self.flat.insert(items)?;
        if self.built {
            let ids: Vec<u64> = items.iter().map(|(id, _)| *id).collect();
            self.insert_graph(&ids);
            self.delta.extend_from_slice(&ids);
            if self.delta.len() > delta_limit(self.flat.len()) {
                self.refresh_view();
            }
        } else if self.flat.len() >= EXACT_BELOW {
            self.build_graph(&|| false, &mut |_, _| {});
        }
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> usize {
        if let Some(view) = self.view.as_mut() {
            view.mark_removed(ids);
        }
        self.flat.remove(ids)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_graph_distance_keeps_order_at_every_magnitude() {
        let values = [-1e30f32, -3.0, -1e-3, -1e-12, -1e-38, 0.0, 1e-38, 1e-12, 1.001e-12, 1e-3, 1.0, 1e30];
        let mapped: Vec<f32> = values.iter().map(|s| super::order_preserving_nonnegative(*s)).collect();
        assert!(mapped.iter().all(|m| m.is_finite() && *m >= 0.0));
        assert!(mapped.windows(2).all(|w| w[0] < w[1]), "{mapped:?}");
    }
}
