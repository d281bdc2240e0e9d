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
//! are marked in the view ([`GraphView::mark_removed`]). Identical vectors (repeated log lines)
//! are one node of the view, and nodes without incoming links get one (see
//! [`GraphView::snapshot`]).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::flat::Candidate;
use crate::hnsw::Graph;
use crate::metric::{prefetch, to_f16};
use crate::{IdFilter, Metric};

/// The copy of one hnsw_rs graph; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct GraphView {
    dim: usize,
    metric: Metric,
    /// Node -> its first id.
    ids: Vec<u64>,
    /// Further ids of nodes whose vector several ids share (exact duplicates).
    extra: HashMap<u32, Vec<u64>>,
    /// Whether a node has `extra` ids (saves the map lookup on the walk's hot path).
    shared: Vec<bool>,
    /// Id -> node.
    node_of: HashMap<u64, u32>,
    /// Node-major vectors as IEEE half floats (bit patterns) of `v / scale`: the walk reads
    /// half the bytes per distance. Walk distances are approximate (each term off by at most
    /// ~2^-11 relative); the index re-scores the walk's best results against the exact vectors.
    vectors: Vec<u16>,
    /// Per node: the scale of its half-float vector (`max |v_i|`, see `metric::to_f16`);
    /// empty for cosine (unit vectors need none, and the walk saves a memory read per node).
    scales: Vec<f32>,
    /// Layer-0 links: `stride` slots per node, the first holding the count.
    links0: Vec<u32>,
    stride: usize,
    /// Links of layers 1.. per node (empty for nodes on layer 0 only).
    upper: Vec<Box<[Box<[u32]>]>>,
    entry: u32,
    top: usize,
    /// Node's first id removed since the snapshot.
    removed: Vec<bool>,
    /// Further ids (`extra`) removed since the snapshot.
    removed_extra: HashSet<u64>,
}

/// Outcome of a walk.
pub(crate) enum Walk {
    /// The live, matching ids of the accepted nodes (at most `ef` nodes), nearest first.
    Found(Vec<Candidate>),
    /// The walk visited more than its budget of nodes without filling its beam (a filter that
    /// keeps far fewer nodes than estimated): the caller scans exactly instead.
    OverBudget,
}

/// Link slots per node beyond hnsw_rs's widest list, for the reachability repair.
const SPARE_LINKS: usize = 4;

/// The repair links each node from this many of its nearest out-neighbours.
const REPAIR_NEAREST: usize = 2;

/// Hash of a vector's bit pattern: identical vectors, bit for bit, hash alike; vectors with
/// equal hashes are then compared in full. A multiply-rotate fold, cheaper than SipHash; it
/// needs no resistance to crafted collisions (those only cost a comparison).
fn bits_hash(v: &[f32]) -> u64 {
    v.iter().fold(0x9E37_79B9_7F4A_7C15u64, |h, x| (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01B3).rotate_left(29))
}

/// A node at a distance, ordered by (distance, node): the walk's heap entry (8 bytes).
#[derive(Clone, Copy, PartialEq)]
struct Near {
    dist: f32,
    node: u32,
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.dist.total_cmp(&other.dist).then(self.node.cmp(&other.node))
    }
}

/// Per-thread walk state, reused across walks.
struct Scratch {
    /// Visited marks: `marks[node] == generation` means visited in the current walk.
    marks: Vec<u32>,
    generation: u32,
    /// Unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

thread_local! {
    static VISITED: RefCell<Scratch> =
        const { RefCell::new(Scratch { marks: Vec::new(), generation: 0, fresh: Vec::new() }) };
}

impl GraphView {
    /// Copies `graph` (dimension `dim`, vectors prepared for `metric`).
    ///
    /// Two repairs on the way, both for what a log corpus does to a graph: repeated lines embed
    /// to identical vectors, and hnsw_rs links identical vectors to each other (distance 0) until
    /// their link lists hold nothing else, so a new vector near them gets no incoming links and
    /// no walk reaches it (measured: a new vector among 100 x 110 duplicates was not its own
    /// nearest neighbour). So (1) identical vectors become one view node carrying all their ids,
    /// with the union of their links; (2) each node's two nearest out-neighbours on layer 0 link
    /// back to it (spare slots in each list are reserved for this): a walk towards a node
    /// expands its nearest neighbours, not whichever far node happens to link to it.
    pub(crate) fn snapshot(graph: &Graph, dim: usize, metric: Metric) -> Self {
        let points: Vec<_> = graph.get_point_indexation().into_iter().collect();
        // View nodes: one per distinct vector.
        let mut ids = Vec::new();
        let mut node_of: HashMap<u64, u32> = HashMap::with_capacity(points.len());
        let mut vectors = Vec::with_capacity(points.len() * dim);
        let mut scales = Vec::with_capacity(points.len());
        let mut by_hash: HashMap<u64, Vec<u32>> = HashMap::with_capacity(points.len());
        let mut node_of_point = Vec::with_capacity(points.len());
        // Node -> the point whose (exact) vector it holds.
        let mut first_point: Vec<usize> = Vec::with_capacity(points.len());
        let mut extra: HashMap<u32, Vec<u64>> = HashMap::new();
        for (pi, p) in points.iter().enumerate() {
            let id = p.get_origin_id() as u64;
            let v = p.get_v();
            let same = by_hash.entry(bits_hash(v)).or_default();
            let found = same.iter().copied().find(|&n| points[first_point[n as usize]].get_v() == v);
            let node = match found {
                Some(n) => {
                    extra.entry(n).or_default().push(id);
                    n
                }
                None => {
                    let n = ids.len() as u32;
                    same.push(n);
                    ids.push(id);
                    first_point.push(pi);
                    let (bits, scale) = to_f16(v, metric == Metric::Cosine);
                    vectors.extend(bits);
                    if metric != Metric::Cosine {
                        scales.push(scale);
                    }
                    n
                }
            };
            node_of.insert(id, node);
            node_of_point.push(node);
        }
        let n = ids.len();
        // Links per view node and layer: the union over its points, without itself, nearest
        // first (hnsw_rs hands each link's distance along).
        let mut hoods: Vec<Vec<Vec<(u32, f32)>>> = vec![Vec::new(); n];
        let mut level = vec![0usize; n];
        let mut widest = 0usize;
        for (p, &node) in points.iter().zip(&node_of_point) {
            let node_level = p.get_point_id().0 as usize;
            level[node as usize] = level[node as usize].max(node_level);
            for (layer, list) in p.get_neighborhood_id().iter().enumerate() {
                if layer == 0 {
                    widest = widest.max(list.len());
                }
                let hood = &mut hoods[node as usize];
                if hood.len() <= layer {
                    hood.resize(layer + 1, Vec::new());
                }
                for nb in list {
                    if let Some(&m) = node_of.get(&(nb.d_id as u64)) {
                        if m != node && !hood[layer].iter().any(|(x, _)| *x == m) {
                            hood[layer].push((m, nb.distance));
                        }
                    }
                }
            }
        }
        // Nearest first; a merged node keeps its `widest` nearest links per layer.
        for list in hoods.iter_mut().flatten() {
            list.sort_by(|x, y| x.1.total_cmp(&y.1));
            list.truncate(widest);
        }
        let stride = 1 + widest + SPARE_LINKS;
        let mut links0 = vec![0u32; n * stride];
        for (node, hood) in hoods.iter().enumerate() {
            if let Some(l0) = hood.first() {
                links0[node * stride] = l0.len() as u32;
                for (slot, (m, _)) in l0.iter().enumerate() {
                    links0[node * stride + 1 + slot] = *m;
                }
            }
        }
        // Every node must be linked from its nearest out-neighbours: a walk towards a node
        // expands its nearest neighbours, not whichever far node happens to link to it.
        for (node, hood) in hoods.iter().enumerate() {
            let outs = hood.first().map(Vec::as_slice).unwrap_or_default();
            for (m, _) in outs.iter().take(REPAIR_NEAREST) {
                let at = *m as usize * stride;
                let count = links0[at] as usize;
                if !links0[at + 1..at + 1 + count].contains(&(node as u32)) && count < stride - 1 {
                    links0[at + 1 + count] = node as u32;
                    links0[at] += 1;
                }
            }
        }
        let (mut entry, mut top) = (0u32, 0usize);
        let mut upper = Vec::with_capacity(n);
        for (node, hood) in hoods.into_iter().enumerate() {
            if level[node] > top || node == 0 {
                (entry, top) = (node as u32, level[node]);
            }
            upper.push(hood.into_iter().skip(1).map(|l| l.into_iter().map(|(m, _)| m).collect()).collect());
        }
        Self {
            dim,
            metric,
            ids,
            node_of,
            vectors,
            scales,
            links0,
            stride,
            upper,
            entry,
            top,
            removed: vec![false; n],
            removed_extra: HashSet::new(),
            shared: (0..n as u32).map(|node| extra.contains_key(&node)).collect(),
            extra,
        }
    }

    /// Marks ids removed (ids not in the snapshot are ignored).
    pub(crate) fn mark_removed(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(&n) = self.node_of.get(id) {
                if self.ids[n as usize] == *id {
                    self.removed[n as usize] = true;
                } else {
                    self.removed_extra.insert(*id);
                }
            }
        }
    }

    /// The live ids of `node` that pass `filter`, first the node's own.
    fn accepted<'a>(&'a self, node: u32, filter: Option<IdFilter<'a>>) -> impl Iterator<Item = u64> + 'a {
        let own = (!self.removed[node as usize]).then_some(self.ids[node as usize]);
        let more = (self.shared[node as usize])
            .then(|| self.extra.get(&node))
            .flatten()
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| !self.removed_extra.contains(id));
        own.into_iter().chain(more).filter(move |id| filter.is_none_or(|f| f(*id)))
    }

    /// Bytes held, roughly (for reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.vectors.len() * 2
            + self.scales.len() * 4
            + self.links0.len() * 4
            + self.ids.len() * (8 + 1 + 16 + 16)
            + self.extra.values().map(|e| 48 + e.len() * 8).sum::<usize>()
            + self.upper.iter().map(|u| u.iter().map(|l| 16 + l.len() * 4).sum::<usize>()).sum::<usize>()
    }

    #[inline]
    fn vector(&self, node: u32) -> &[u16] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    #[inline]
    fn links(&self, node: u32) -> &[u32] {
        let at = node as usize * self.stride;
        let count = self.links0[at] as usize;
        &self.links0[at + 1..at + 1 + count]
    }

    /// The ids of the `ef` nearest nodes with a live id passing `filter` (every such id of
    /// them), or [`Walk::OverBudget`] after visiting `budget` nodes without `ef` accepted.
    /// Distances are those of the half-float vectors (see [`GraphView::vectors`]).
    pub(crate) fn search(&self, query: &[f32], ef: usize, filter: Option<IdFilter<'_>>, budget: usize) -> Walk {
        if self.ids.is_empty() || ef == 0 {
            return Walk::Found(Vec::new());
        }
        let dist = |node: u32| {
            let scale = self.scales.get(node as usize).copied().unwrap_or(1.0);
            self.metric.distance_f16(query, self.vector(node), scale)
        };
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
        let accept = |node: u32| {
            let i = node as usize;
            if self.shared[i] {
                self.accepted(node, filter).next().is_some()
            } else {
                !self.removed[i] && filter.is_none_or(|f| f(self.ids[i]))
            }
        };
        VISITED.with(|cell| {
            let mut guard = cell.borrow_mut();
            let Scratch { marks, generation, fresh } = &mut *guard;
            if marks.len() < self.ids.len() {
                marks.resize(self.ids.len(), 0);
            }
            *generation = generation.wrapping_add(1);
            if *generation == 0 {
                marks.fill(0);
                *generation = 1;
            }
            let g = *generation;
            let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(ef * 4);
            let mut results: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
            marks[ep as usize] = g;
            candidates.push(Reverse(Near { dist: ep_dist, node: ep }));
            if accept(ep) {
                results.push(Near { dist: ep_dist, node: ep });
            }
            // Distance of the ef-th accepted node (infinite until there are ef).
            let mut worst = if results.len() >= ef { ep_dist } else { f32::INFINITY };
            let mut visited = 1usize;
            while let Some(Reverse(c)) = candidates.pop() {
                if c.dist > worst {
                    break;
                }
                // Mark the unvisited neighbours and prefetch their vectors, then score them.
                fresh.clear();
                for &nb in self.links(c.node) {
                    let slot = &mut marks[nb as usize];
                    if *slot != g {
                        *slot = g;
                        fresh.push(nb);
                        prefetch(self.vector(nb));
                    }
                }
                visited += fresh.len();
                for &nb in fresh.iter() {
                    let d = dist(nb);
                    if d < worst {
                        candidates.push(Reverse(Near { dist: d, node: nb }));
                        if accept(nb) {
                            results.push(Near { dist: d, node: nb });
                            if results.len() > ef {
                                results.pop();
                            }
                            if results.len() >= ef {
                                worst = results.peek().map_or(f32::INFINITY, |w| w.dist);
                            }
                        }
                    }
                }
                if visited > budget && results.len() < ef {
                    return Walk::OverBudget;
                }
            }
            // Each accepted node stands for its live, matching ids (several for duplicates).
            let mut out = Vec::with_capacity(results.len());
            for c in results.into_sorted_vec() {
                out.extend(self.accepted(c.node, filter).map(|id| Candidate { dist: c.dist, id }));
            }
            Walk::Found(out)
        })
    }
}
