//! A read-optimised copy of the hnsw_rs graph: what searches walk.
//!
//! hnsw_rs builds and persists the graph, but its search spends about half its time on its own
//! bookkeeping (a `HashMap` visited set, an `Arc` clone and a lock per candidate, vectors behind
//! two pointers). [`GraphView`] copies the graph, once per snapshot, into flat arrays: node
//! numbers `0..n`, vectors contiguous in node order, layer-0 links in a fixed stride, upper-layer
//! links per node. The walk over it is the usual HNSW search (greedy descent through the upper
//! layers, then a best-first beam of width `ef` on layer 0) with a generation-stamped visited
//! array and the filter and tombstones applied inside the walk: every node is traversed, but
//! only live nodes that pass the filter enter the result beam, and the walk stops when the
//! nearest unexplored candidate is farther than the `ef`-th accepted result.
//!
//! A view is a snapshot: vectors inserted into hnsw_rs after it was taken are not in it (the
//! index scans them exactly, see `hnsw.rs`, and takes a new snapshot when they grow). Removals
//! are marked in the view ([`GraphView::mark_removed`]).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::flat::Candidate;
use crate::metric::prefetch;
use crate::hnsw::Graph;
use crate::{IdFilter, Metric};

/// The copy of one hnsw_rs graph; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct GraphView {
    dim: usize,
    metric: Metric,
    /// Node -> id.
    ids: Vec<u64>,
    /// Id -> node.
    node_of: HashMap<u64, u32>,
    /// Node-major vectors.
    vectors: Vec<f32>,
    /// Layer-0 links: `stride` slots per node, the first holding the count.
    links0: Vec<u32>,
    stride: usize,
    /// Links of layers 1.. per node (empty for nodes on layer 0 only).
    upper: Vec<Box<[Box<[u32]>]>>,
    entry: u32,
    top: usize,
    /// Removed since the snapshot.
    removed: Vec<bool>,
}

/// Outcome of a walk.
pub(crate) enum Walk {
    /// The accepted nodes, nearest first (at most `ef`).
    Found(Vec<Candidate>),
    /// The walk visited more than its budget of nodes without filling its beam (a filter that
    /// keeps far fewer nodes than estimated): the caller scans exactly instead.
    OverBudget,
}

/// Most layer-0 links a node can have (hnsw_rs keeps at most 2 x 255).
const MAX_LINKS: usize = 512;

thread_local! {
    /// Visited marks: `marks[node] == generation` means visited in the current walk.
    static VISITED: RefCell<(Vec<u32>, u32)> = const { RefCell::new((Vec::new(), 0)) };
}

impl GraphView {
    /// Copies `graph` (dimension `dim`, vectors prepared for `metric`).
    pub(crate) fn snapshot(graph: &Graph, dim: usize, metric: Metric) -> Self {
        let points: Vec<_> = graph.get_point_indexation().into_iter().collect();
        let n = points.len();
        let mut ids = Vec::with_capacity(n);
        let mut node_of = HashMap::with_capacity(n);
        let mut vectors = Vec::with_capacity(n * dim);
        for p in &points {
            let id = p.get_origin_id() as u64;
            node_of.insert(id, ids.len() as u32);
            ids.push(id);
            vectors.extend_from_slice(p.get_v());
        }
        let hoods: Vec<Vec<Vec<u32>>> = points
            .iter()
            .map(|p| {
                p.get_neighborhood_id()
                    .iter()
                    .map(|layer| layer.iter().filter_map(|nb| node_of.get(&(nb.d_id as u64)).copied()).collect())
                    .collect()
            })
            .collect();
        let stride = 1 + hoods.iter().map(|h| h.first().map_or(0, Vec::len)).max().unwrap_or(0);
        let mut links0 = vec![0u32; n * stride];
        let mut upper = Vec::with_capacity(n);
        let (mut entry, mut top) = (0u32, 0usize);
        for (node, hood) in hoods.into_iter().enumerate() {
            let level = points[node].get_point_id().0 as usize;
            if let Some(l0) = hood.first() {
                links0[node * stride] = l0.len() as u32;
                links0[node * stride + 1..node * stride + 1 + l0.len()].copy_from_slice(l0);
            }
            if level > top || node == 0 {
                (entry, top) = (node as u32, level);
            }
            upper.push(hood.into_iter().skip(1).map(Vec::into_boxed_slice).collect());
        }
        Self { dim, metric, ids, node_of, vectors, links0, stride, upper, entry, top, removed: vec![false; n] }
    }

    /// Marks ids removed (ids not in the snapshot are ignored).
    pub(crate) fn mark_removed(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(&n) = self.node_of.get(id) {
                self.removed[n as usize] = true;
            }
        }
    }

    /// Bytes held, roughly (for reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.links0.len() * 4
            + self.ids.len() * (8 + 1 + 16 + 16)
            + self.upper.iter().map(|u| u.iter().map(|l| 16 + l.len() * 4).sum::<usize>()).sum::<usize>()
    }

    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    #[inline]
    fn links(&self, node: u32) -> &[u32] {
        let at = node as usize * self.stride;
        let count = self.links0[at] as usize;
        &self.links0[at + 1..at + 1 + count]
    }

    /// The `ef` nearest live nodes passing `filter`, or [`Walk::OverBudget`] after visiting
    /// `budget` nodes without `ef` accepted.
    pub(crate) fn search(&self, query: &[f32], ef: usize, filter: Option<IdFilter<'_>>, budget: usize) -> Walk {
        if self.ids.is_empty() || ef == 0 {
            return Walk::Found(Vec::new());
        }
        let dist = |node: u32| self.metric.distance(query, self.vector(node));
        // Greedy descent through the upper layers.
        let mut ep = self.entry;
        let mut ep_dist = dist(ep);
        for layer in (1..=self.top).rev() {
            loop {
                let mut moved = false;
                if let Some(links) = self.upper[ep as usize].get(layer - 1) {
                    for &nb in links.iter() {
                        let d = dist(nb);
                        if d < ep_dist {
                            (ep, ep_dist) = (nb, d);
                            moved = true;
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        let accept = |node: u32| !self.removed[node as usize] && filter.is_none_or(|f| f(self.ids[node as usize]));
        VISITED.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (marks, generation) = &mut *guard;
            if marks.len() < self.ids.len() {
                marks.resize(self.ids.len(), 0);
            }
            *generation = generation.wrapping_add(1);
            if *generation == 0 {
                marks.fill(0);
                *generation = 1;
            }
            let g = *generation;
            let mut candidates: BinaryHeap<Reverse<Candidate>> = BinaryHeap::with_capacity(ef * 4);
            let mut results: BinaryHeap<Candidate> = BinaryHeap::with_capacity(ef + 1);
            marks[ep as usize] = g;
            candidates.push(Reverse(Candidate { dist: ep_dist, id: u64::from(ep) }));
            if accept(ep) {
                results.push(Candidate { dist: ep_dist, id: u64::from(ep) });
            }
            let mut visited = 1usize;
            while let Some(Reverse(c)) = candidates.pop() {
                let bound = if results.len() >= ef { results.peek().map_or(f32::INFINITY, |w| w.dist) } else { f32::INFINITY };
                if c.dist > bound {
                    break;
                }
                // Mark the unvisited neighbours and prefetch their vectors, then score them.
                let mut fresh = [0u32; MAX_LINKS];
                let mut count = 0;
                for &nb in self.links(c.id as u32) {
                    let slot = &mut marks[nb as usize];
                    if *slot != g && count < MAX_LINKS {
                        *slot = g;
                        fresh[count] = nb;
                        count += 1;
                        prefetch(self.vector(nb));
                    }
                }
                visited += count;
                for &nb in &fresh[..count] {
                    let d = dist(nb);
                    let worst = if results.len() >= ef { results.peek().map_or(f32::INFINITY, |w| w.dist) } else { f32::INFINITY };
                    if d < worst {
                        candidates.push(Reverse(Candidate { dist: d, id: u64::from(nb) }));
                        if accept(nb) {
                            results.push(Candidate { dist: d, id: u64::from(nb) });
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
                if visited > budget && results.len() < ef {
                    return Walk::OverBudget;
                }
            }
            Walk::Found(
                results
                    .into_sorted_vec()
                    .into_iter()
                    .map(|c| Candidate { dist: c.dist, id: self.ids[c.id as usize] })
                    .collect(),
            )
        })
    }
}
