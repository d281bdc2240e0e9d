//! The HNSW graph: built, walked and written to disk by AkiDB.
//!
//! One structure serves inserts and searches. Nodes are numbered `0..n` in insertion order;
//! their vectors sit contiguously as IEEE half floats (see [`Graph::vectors`]); layer-0 links
//! sit in a fixed stride of `1 + 2m` slots per node (the first holds the count), links of the
//! upper layers (`1 + m` slots per layer) in a second array, for the few nodes that have them.
//!
//! # Building
//!
//! The usual HNSW insert (Malkov and Yashunin; hnswlib's choices): a node's top layer is drawn
//! from a geometric distribution (`floor(-ln(u) / ln(m))`, `u` a hash of the id and the seed,
//! so levels repeat for the same ids), a greedy descent through the layers above it, then on
//! each of its layers a beam search of width `ef_construction` whose results are pruned by the
//! neighbour-selection heuristic to `m` links; every chosen neighbour links back, and a full
//! list is pruned again by the heuristic (`m` slots above layer 0, `2m` on it).
//!
//! Batches of more than [`PARALLEL_MIN`] vectors are linked in parallel, as hnswlib does it:
//! nodes are allocated first (one thread), then linked by many, on a rayon pool of the graph's
//! own (one thread per core, made on first use) and not rayon's global pool: searches that fan
//! out on the global pool (exact scans) would otherwise queue behind a batch being linked. Link
//! lists are arrays of atomics: a writer holds the node's lock (one `Mutex` per node, never two
//! at a time) and publishes the count after the slots, a reader copies the slots without a lock
//! and may see a list mid-update (every slot always holds a valid node). Like every parallel
//! HNSW build the result depends on thread timing; searches are deterministic for a given graph.
//!
//! # Searching
//!
//! Greedy descent through the upper layers, then a best-first beam of width `ef` on layer 0,
//! with a generation-stamped visited array and the filter and tombstones applied inside the
//! walk: every node is traversed, but only live nodes that pass the filter enter the result
//! beam, and the walk stops when the nearest unexplored candidate is farther than the `ef`-th
//! accepted result. Walk distances are those of the half floats; the index re-scores the best
//! hits against the exact vectors.
//!
//! # Identical vectors
//!
//! Repeated log lines embed to identical vectors, and a graph of many identical vectors links
//! them to each other (distance 0) until a new vector near them finds no way in (measured with
//! hnsw_rs's graph: a new vector among 100 x 110 duplicates was not its own nearest
//! neighbour). So vectors identical in half precision are one node carrying all their ids
//! (`extra`); a walk that accepts the node accepts each of its live ids (the index re-scores
//! each against its exact vector).
//!
//! # Reachability
//!
//! The heuristic drops a neighbour that a nearer kept link covers; in dense or
//! high-dimensional data every list near a node can drop it, and no walk reaches it again. On
//! layer 0 each node's in-degree is kept, and a pruned list keeps a node that would otherwise
//! lose its last in-link, in one of `SPARE_LINKS` slots beyond the `2m`.
//!
//! # Why not hnsw_rs's insert
//!
//! Earlier versions let hnsw_rs build the graph and walked a read-optimised copy of it. Its
//! insert took 2.6x to 2.8x hnswlib's build time on the same data (a `HashMap` visited set, an
//! `Arc` allocation per candidate and a lock per expansion in its search; perf: 56% of build
//! time), its graph held a second f32 copy of every vector, and the copy had to be retaken as
//! vectors arrived (those inserted after it were scanned exactly meanwhile). This graph builds
//! in 0.66x to 0.84x hnswlib's time on the same data (docs/benchmarks.md). The files stay
//! hnsw_rs dumps (`dump.rs`): hnsw_rs loads what AkiDB writes, and AkiDB what hnsw_rs wrote.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use crate::codes::{Codes, Fitted, Prepared};
use crate::flat::Candidate;
use crate::metric::prefetch;
use crate::{IdFilter, Metric};

/// Batches larger than this are linked in parallel.
pub(crate) const PARALLEL_MIN: usize = 64;

/// Highest layer (hnsw_rs keeps 16 layers, 0 to 15, in its dumps).
pub(crate) const MAX_LEVEL: usize = 15;

/// Seed of the level draw (levels are a hash of the id and this).
const LEVEL_SEED: u64 = 0x5EED_A41D_B000_0001;

/// Layer-0 slots per node beyond the heuristic's `2m`: where a node that would lose its last
/// in-link stays (see [`Graph::prune_into`]).
const SPARE_LINKS: usize = 4;

/// How many neighbours ahead of the one being scored a walk prefetches codes.
const PREFETCH_AHEAD: usize = 2;

/// No entry point yet.
const NO_ENTRY: u64 = u64::MAX;

/// A node at a distance, ordered by (distance, node): heap entries of walks (8 bytes).
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Near {
    pub(crate) dist: f32,
    pub(crate) node: u32,
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

/// Outcome of a search walk.
pub(crate) enum Walk {
    /// The live, matching ids of the accepted nodes (at most `ef` nodes), nearest first.
    Found(Vec<Candidate>),
    /// The walk visited more than its budget of nodes without filling its beam (a filter that
    /// keeps far fewer nodes than estimated): the caller scans exactly instead.
    OverBudget,
}

/// Working memory of walks and inserts, reused across calls (from a bounded pool).
#[derive(Default)]
struct Scratch {
    /// Visited marks: `marks[node] == generation` means visited in the current walk.
    marks: Vec<u32>,
    generation: u32,
    /// Unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
    candidates: BinaryHeap<Reverse<Near>>,
    results: BinaryHeap<Near>,
    /// A stored vector decoded to f32 (the neighbour heuristic compares stored vectors).
    decoded: Vec<f32>,
    /// The vector being inserted or searched for, prepared for the codes.
    query: Prepared,
    /// A stored node prepared as a query (the neighbour heuristic).
    node_query: Prepared,
    /// Links of the node being expanded.
    links: Vec<u32>,
}

impl Scratch {
    /// Starts a walk over `n` nodes: a fresh generation of visited marks.
    fn begin(&mut self, n: usize) -> u32 {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
        self.generation
    }
}

/// Scratches not in use. A walk or link takes one and gives it back; at most
/// [`scratches_kept`] are kept, so the memory they hold (visited marks: 4 bytes per node of the
/// largest graph each walked) is bounded by the cores, not by the threads that ever searched
/// (tokio's blocking pool alone may run 512).
static SCRATCHES: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

/// Twice the cores (enough that walks on every core and links beside them never allocate).
fn scratches_kept() -> usize {
    static KEPT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *KEPT.get_or_init(|| 2 * std::thread::available_parallelism().map_or(4, usize::from))
}

/// The pool graph links run on (see the module docs); `None` if it could not be made (then
/// batches link on the calling thread).
fn link_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("akidb-link-{i}"))
            .build()
            .map_err(|e| log::warn!("no thread pool for graph links ({e}): linking on one thread"))
            .ok()
    })
    .as_ref()
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCHES.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
    let out = f(&mut s);
    let mut kept = SCRATCHES.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < scratches_kept() {
        kept.push(s);
    }
    out
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SplitMix64: a well-mixed 64-bit hash of a 64-bit value.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Source of [`Graph::serial`].
static SERIALS: AtomicU64 = AtomicU64::new(1);

/// The graph; see the module docs.
pub(crate) struct Graph {
    /// Distinct for every graph made in this process (staged inserts check they link into
    /// the graph they were added to).
    serial: u64,
    dim: usize,
    metric: Metric,
    /// Links per node on layers above 0 (layer 0 keeps `2m`).
    m: usize,
    ef_construction: usize,
    /// `1 / ln(m)`: scale of the level distribution.
    level_mult: f64,
    /// Node -> its first id.
    ids: Vec<u64>,
    /// Further ids of nodes whose vector several ids share.
    extra: HashMap<u32, Vec<u64>>,
    /// Whether a node has `extra` ids (saves the map lookup on the walk's hot path).
    shared: Vec<bool>,
    /// Id -> node, for every id in the graph (live or tombstone).
    node_of: HashMap<u64, u32>,
    /// Vector hash -> the first node with it (finds identical vectors).
    by_hash: HashMap<u64, u32>,
    /// Node-major codes of the vectors (half floats by default; see `codes.rs`): what walks
    /// read. The index re-scores the best hits against the exact vectors.
    codes: Codes,
    /// Per node its top layer.
    levels: Vec<u8>,
    /// Layer-0 links: `1 + 2m + SPARE_LINKS` slots per node, the first holding the count.
    links0: Vec<AtomicU32>,
    /// Per node the number of layer-0 lists holding it (kept by the writers of lists).
    indegree: Vec<AtomicU32>,
    /// Per node the offset of its layer-1 list in `upper` (`u32::MAX`: layer 0 only).
    upper_at: Vec<u32>,
    /// Links of layers 1..: `1 + m` slots per layer, layers of a node one after the other.
    upper: Vec<AtomicU32>,
    /// Per node: held while its link lists change.
    locks: Vec<Mutex<()>>,
    /// Entry point: `top layer << 32 | node`, or `NO_ENTRY`.
    entry: AtomicU64,
    /// Held for the whole insert of a node that raises the top layer (hnswlib does the same).
    top_lock: Mutex<()>,
    /// Node's first id removed.
    removed: Vec<bool>,
    /// Further ids (`extra`) removed.
    removed_extra: HashSet<u64>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.ids.len())
            .field("ids", &self.node_of.len())
            .finish()
    }
}

impl Graph {
    /// An empty graph whose codes use `fitted`'s parameters. `m` is clamped to
    /// [`crate::hnsw::M_RANGE`] (see `clamp_m`).
    pub(crate) fn new(
        dim: usize,
        metric: Metric,
        m: usize,
        ef_construction: usize,
        fitted: Fitted,
    ) -> Self {
        let m = crate::hnsw::clamp_m(m);
        Self {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            dim,
            metric,
            m,
            ef_construction: ef_construction.max(m),
            level_mult: 1.0 / (m as f64).ln(),
            ids: Vec::new(),
            extra: HashMap::new(),
            shared: Vec::new(),
            node_of: HashMap::new(),
            by_hash: HashMap::new(),
            codes: Codes::new(dim, metric, fitted),
            levels: Vec::new(),
            links0: Vec::new(),
            indegree: Vec::new(),
            upper_at: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: AtomicU64::new(NO_ENTRY),
            top_lock: Mutex::new(()),
            removed: Vec::new(),
            removed_extra: HashSet::new(),
        }
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    pub(crate) fn dimension(&self) -> usize {
        self.dim
    }
    pub(crate) fn metric(&self) -> Metric {
        self.metric
    }
    pub(crate) fn m(&self) -> usize {
        self.m
    }
    pub(crate) fn ef_construction(&self) -> usize {
        self.ef_construction
    }
    /// Nodes (distinct vectors).
    pub(crate) fn nodes(&self) -> usize {
        self.ids.len()
    }
    /// Ids in the graph, live or tombstone.
    pub(crate) fn id_count(&self) -> usize {
        self.node_of.len()
    }
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.node_of.contains_key(&id)
    }
    pub(crate) fn node_of(&self, id: u64) -> Option<u32> {
        self.node_of.get(&id).copied()
    }
    /// Node -> first id, then its further ids.
    pub(crate) fn node_ids(&self, node: u32) -> impl Iterator<Item = u64> + '_ {
        let more = if self.shared[node as usize] {
            self.extra.get(&node).map(Vec::as_slice)
        } else {
            None
        };
        std::iter::once(self.ids[node as usize]).chain(more.unwrap_or_default().iter().copied())
    }
    pub(crate) fn level(&self, node: u32) -> usize {
        usize::from(self.levels[node as usize])
    }
    /// The entry point and the top layer.
    pub(crate) fn entry(&self) -> Option<(u32, usize)> {
        unpack(self.entry.load(Ordering::Acquire))
    }

    /// The parameters of the graph's codes (saved with generations).
    pub(crate) fn fitted(&self) -> &Fitted {
        self.codes.fitted()
    }

    /// Walk distance of a prepared query to a node.
    #[inline]
    fn dist(&self, q: &Prepared, node: u32) -> f32 {
        self.codes.dist(q, node)
    }

    /// A node's vector as f32, into `out` (as its code holds it).
    pub(crate) fn decode(&self, node: u32, out: &mut Vec<f32>) {
        self.codes.decode(node, out);
    }

    /// The slots of a node's list at `layer` (count first).
    #[inline]
    fn list(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let stride = self.stride0();
            let at = node as usize * stride;
            &self.links0[at..at + stride]
        } else {
            let stride = 1 + self.m;
            let at = self.upper_at[node as usize] as usize + (layer - 1) * stride;
            &self.upper[at..at + stride]
        }
    }

    /// Before scoring `fresh[i]`: at the first, the first lines of every neighbour's code and
    /// the whole codes (up to 1 KiB) of the next `PREFETCH_AHEAD`; then the whole code
    /// `PREFETCH_AHEAD` places on. Only the first lines of all neighbours (as before
    /// 2026-12-03) left 384-d walks waiting on memory (10-25% fewer queries per second);
    /// only the rolling window slowed 2,560-d half-float walks by 5% (docs/benchmarks.md).
    #[inline]
    fn prefetch_ahead(&self, fresh: &[u32], i: usize) {
        if i == 0 {
            fresh.iter().for_each(|nb| self.codes.prefetch_start(*nb));
            fresh.iter().take(PREFETCH_AHEAD).for_each(|nb| self.codes.prefetch(*nb));
        }
        if let Some(&next) = fresh.get(i + PREFETCH_AHEAD) {
            self.codes.prefetch(next);
        }
    }

    /// Slots per node on layer 0.
    #[inline]
    fn stride0(&self) -> usize {
        1 + 2 * self.m + SPARE_LINKS
    }

    /// How many links the heuristic keeps at `layer`.
    fn cap(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Copies a node's links at `layer` into `out` (no lock: see the module docs).
    #[inline]
    fn read_links(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        let slots = self.list(node, layer);
        let n = (slots[0].load(Ordering::Acquire) as usize).min(slots.len() - 1);
        out.clear();
        out.extend(slots[1..1 + n].iter().map(|s| s.load(Ordering::Relaxed)));
    }

    /// A node's links at `layer` (a copy; for persistence and tests).
    pub(crate) fn links(&self, node: u32, layer: usize) -> Vec<u32> {
        let mut out = Vec::new();
        if layer <= self.level(node) {
            self.read_links(node, layer, &mut out);
        }
        out
    }

    /// Replaces a node's list at `layer` (caller holds the node's lock, or `&mut self`).
    fn write_links(&self, node: u32, layer: usize, links: impl ExactSizeIterator<Item = u32>) {
        let slots = self.list(node, layer);
        let n = links.len().min(slots.len() - 1);
        for (slot, v) in slots[1..].iter().zip(links) {
            slot.store(v, Ordering::Relaxed);
        }
        slots[0].store(n as u32, Ordering::Release);
    }

    /// The top layer of a new node of id `id` (repeatable: a hash of id and seed).
    fn draw_level(&self, id: u64) -> usize {
        let u = ((mix(id ^ LEVEL_SEED) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    /// Adds `id` with vector `v` (prepared for the metric): to the node of an identical vector
    /// if there is one (returns `None`), else as a new, unlinked node of layer `level` (or a
    /// drawn one).
    pub(crate) fn add_node(&mut self, id: u64, v: &[f32], level: Option<usize>) -> Option<u32> {
        let code = self.codes.encode(v);
        let hash = code.hash();
        if let Some(&n) = self.by_hash.get(&hash) {
            if self.codes.equals(n, &code) {
                self.extra.entry(n).or_default().push(id);
                self.shared[n as usize] = true;
                self.node_of.insert(id, n);
                return None;
            }
        }
        let node = self.ids.len() as u32;
        let level = level.unwrap_or_else(|| self.draw_level(id)).min(MAX_LEVEL);
        self.by_hash.entry(hash).or_insert(node);
        self.node_of.insert(id, node);
        self.ids.push(id);
        self.shared.push(false);
        self.removed.push(false);
        self.codes.push(code);
        self.levels.push(level as u8);
        self.links0.extend((0..self.stride0()).map(|_| AtomicU32::new(0)));
        self.indegree.push(AtomicU32::new(0));
        if level > 0 {
            self.upper_at.push(self.upper.len() as u32);
            self.upper.extend((0..level * (1 + self.m)).map(|_| AtomicU32::new(0)));
        } else {
            self.upper_at.push(u32::MAX);
        }
        self.locks.push(Mutex::new(()));
        Some(node)
    }

    /// Sets the links of a node loaded from a dump (nearest first; cut to the list's size).
    pub(crate) fn set_loaded_links(&mut self, node: u32, layer: usize, links: &[u32]) {
        if layer <= self.level(node) {
            let cap = self.list(node, layer).len() - 1;
            self.write_links(node, layer, links.iter().copied().take(cap));
        }
    }

    /// Sets the entry point of a graph loaded from a dump, and counts in-links.
    pub(crate) fn finish_load(&mut self, entry: u32) {
        self.entry.store(pack(entry, self.level(entry)), Ordering::Release);
        let mut counts = vec![0u32; self.ids.len()];
        for node in 0..self.ids.len() as u32 {
            for nb in self.links(node, 0) {
                counts[nb as usize] += 1;
            }
        }
        for (d, c) in self.indegree.iter().zip(counts) {
            d.store(c, Ordering::Relaxed);
        }
    }

    /// Inserts vectors (prepared for the metric) under new ids; see the module docs. Ids
    /// must not be in the graph yet (the index checks).
    pub(crate) fn insert(&mut self, items: &[(u64, &[f32])]) {
        let fresh = self.add(items);
        self.link_new(&fresh, items);
    }

    /// First half of [`Graph::insert`]: adds the ids as nodes (or to the nodes of identical
    /// vectors), unlinked. Returns the new nodes with the positions of their items.
    pub(crate) fn add(&mut self, items: &[(u64, &[f32])]) -> Vec<(u32, usize)> {
        let mut fresh = Vec::with_capacity(items.len());
        for (i, &(id, v)) in items.iter().enumerate() {
            if let Some(node) = self.add_node(id, v, None) {
                fresh.push((node, i));
            }
        }
        fresh
    }

    /// Second half of [`Graph::insert`]: links the new nodes that [`Graph::add`] returned for
    /// `items`. Takes `&self`: walks may run meanwhile (links are atomic slots, each list
    /// written under its node's lock).
    pub(crate) fn link_new(&self, fresh: &[(u32, usize)], items: &[(u64, &[f32])]) {
        match link_pool().filter(|p| fresh.len() > PARALLEL_MIN && p.current_num_threads() > 1) {
            Some(pool) => pool.install(|| {
                fresh
                    .par_iter()
                    .for_each(|&(node, i)| with_scratch(|s| self.link(s, node, items[i].1)));
            }),
            None => {
                with_scratch(|s| {
                    fresh.iter().for_each(|&(node, i)| self.link(s, node, items[i].1))
                });
            }
        }
    }

    /// Links a new node (vector `v`, exact) into the graph.
    fn link(&self, s: &mut Scratch, node: u32, v: &[f32]) {
        let mut q = std::mem::take(&mut s.query);
        self.codes.prepare(v, &mut q);
        self.link_prepared(s, node, &q);
        s.query = q;
    }

    fn link_prepared(&self, s: &mut Scratch, node: u32, q: &Prepared) {
        let level = self.level(node);
        let top_guard = lock(&self.top_lock);
        let Some((ep, top)) = self.entry() else {
            self.entry.store(pack(node, level), Ordering::Release);
            return;
        };
        let _raising = if level > top {
            Some(top_guard)
        } else {
            drop(top_guard);
            None
        };
        let mut cur = Near { dist: self.dist(q, ep), node: ep };
        for layer in (level + 1..=top).rev() {
            cur = self.greedy(s, q, cur, layer);
        }
        for layer in (0..=level.min(top)).rev() {
            let found = self.search_layer(s, q, cur, node, layer);
            if let Some(nearest) = found.first() {
                cur = *nearest;
            }
            let chosen = self.select(s, &found, self.m);
            self.set_links(s, node, layer, &chosen);
            for c in &chosen {
                self.connect(s, c.node, node, layer, c.dist);
            }
        }
        if level > top {
            self.entry.store(pack(node, level), Ordering::Release);
        }
    }

    /// Greedy descent on one upper layer: the nearest node reachable by always improving.
    fn greedy(&self, s: &mut Scratch, q: &Prepared, mut cur: Near, layer: usize) -> Near {
        loop {
            let mut moved = false;
            self.read_links(cur.node, layer, &mut s.fresh);
            for &nb in &s.fresh {
                let d = self.dist(q, nb);
                if d < cur.dist {
                    cur = Near { dist: d, node: nb };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search of width `ef_construction` on `layer` from `ep`, never visiting `skip` (the
    /// node being inserted): the nearest nodes found, nearest first.
    fn search_layer(
        &self,
        s: &mut Scratch,
        q: &Prepared,
        ep: Near,
        skip: u32,
        layer: usize,
    ) -> Vec<Near> {
        let ef = self.ef_construction;
        let g = s.begin(self.ids.len());
        let Scratch { marks, fresh, candidates, results, links, .. } = s;
        candidates.clear();
        results.clear();
        marks[skip as usize] = g;
        marks[ep.node as usize] = g;
        candidates.push(Reverse(ep));
        results.push(ep);
        while let Some(Reverse(c)) = candidates.pop() {
            let worst = results.peek().map_or(f32::INFINITY, |w| w.dist);
            if c.dist > worst && results.len() >= ef {
                break;
            }
            self.read_links(c.node, layer, links);
            fresh.clear();
            for &nb in links.iter() {
                let slot = &mut marks[nb as usize];
                if *slot != g {
                    *slot = g;
                    fresh.push(nb);
                }
            }
            for (i, &nb) in fresh.iter().enumerate() {
                self.prefetch_ahead(fresh, i);
                let d = self.dist(q, nb);
                if results.len() < ef || d < results.peek().map_or(f32::INFINITY, |w| w.dist) {
                    candidates.push(Reverse(Near { dist: d, node: nb }));
                    results.push(Near { dist: d, node: nb });
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.drain().collect();
        out.sort_unstable();
        out
    }

    /// hnswlib's neighbour heuristic: from `cands` (nearest first, distances to the node being
    /// linked) keep a candidate only if it is nearer to that node than to every one kept so
    /// far, up to `m`. Spreads links over directions instead of one dense cluster.
    fn select(&self, s: &mut Scratch, cands: &[Near], m: usize) -> Vec<Near> {
        if cands.len() <= m {
            return cands.to_vec();
        }
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for &c in cands {
            if kept.len() >= m {
                break;
            }
            self.codes.prepare_node(c.node, &mut s.decoded, &mut s.node_query);
            if kept.iter().all(|k| self.dist(&s.node_query, k.node) >= c.dist) {
                kept.push(c);
            }
        }
        kept
    }

    /// Sets a new node's links at `layer`, keeping links other inserts added meanwhile.
    fn set_links(&self, s: &mut Scratch, node: u32, layer: usize, chosen: &[Near]) {
        let _guard = lock(&self.locks[node as usize]);
        self.read_links(node, layer, &mut s.links);
        let old = std::mem::take(&mut s.links);
        let mut pool: Vec<Near> = chosen.to_vec();
        if !old.is_empty() {
            self.codes.prepare_node(node, &mut s.decoded, &mut s.node_query);
            for &other in &old {
                if !pool.iter().any(|c| c.node == other) {
                    pool.push(Near { dist: self.dist(&s.node_query, other), node: other });
                }
            }
            pool.sort_unstable();
        }
        self.prune_into(s, node, layer, &pool, &old);
        s.links = old;
    }

    /// Links `from` to `to` at `layer` (`dist` between them); a full list is pruned again by
    /// the heuristic.
    fn connect(&self, s: &mut Scratch, from: u32, to: u32, layer: usize, dist: f32) {
        let _guard = lock(&self.locks[from as usize]);
        self.read_links(from, layer, &mut s.links);
        let old = std::mem::take(&mut s.links);
        if !old.contains(&to) {
            if old.len() < self.cap(layer) {
                let slots = self.list(from, layer);
                slots[1 + old.len()].store(to, Ordering::Relaxed);
                slots[0].store(old.len() as u32 + 1, Ordering::Release);
                if layer == 0 {
                    self.indegree[to as usize].fetch_add(1, Ordering::Relaxed);
                }
            } else {
                self.codes.prepare_node(from, &mut s.decoded, &mut s.node_query);
                let mut pool = Vec::with_capacity(old.len() + 1);
                pool.push(Near { dist, node: to });
                for &other in &old {
                    pool.push(Near { dist: self.dist(&s.node_query, other), node: other });
                }
                pool.sort_unstable();
                self.prune_into(s, from, layer, &pool, &old);
            }
        }
        s.links = old;
    }

    /// Writes `node`'s list at `layer` (replacing `old`; caller holds the node's lock) as the
    /// heuristic's pick from `pool` (nearest first, distances from `node`). On layer 0 a
    /// candidate left out that would then have no in-link at all (the heuristic drops a node
    /// covered by a nearer link, and in dense or high-dimensional data every list near a node
    /// can drop it: measured, one node in 12,500 random 384-d vectors, unreachable by any
    /// walk) stays, in one of the spare slots.
    fn prune_into(&self, s: &mut Scratch, node: u32, layer: usize, pool: &[Near], old: &[u32]) {
        let mut kept: Vec<u32> =
            self.select(s, pool, self.cap(layer)).iter().map(|c| c.node).collect();
        if layer == 0 {
            let room = self.stride0() - 1;
            for c in pool {
                if kept.len() >= room {
                    break;
                }
                if !kept.contains(&c.node) {
                    let others = self.indegree[c.node as usize]
                        .load(Ordering::Relaxed)
                        .saturating_sub(u32::from(old.contains(&c.node)));
                    if others == 0 {
                        kept.push(c.node);
                    }
                }
            }
            for &k in &kept {
                if !old.contains(&k) {
                    self.indegree[k as usize].fetch_add(1, Ordering::Relaxed);
                }
            }
            for &o in old {
                if !kept.contains(&o) {
                    self.indegree[o as usize].fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.write_links(node, layer, kept.into_iter());
    }

    /// Marks ids removed (ids not in the graph are ignored).
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

    /// Whether `node` has a live id passing `filter` (what a walk may return).
    #[inline]
    fn accepts(&self, node: u32, filter: Option<IdFilter<'_>>) -> bool {
        let i = node as usize;
        if self.shared[i] {
            self.accepted(node, filter).next().is_some()
        } else {
            !self.removed[i] && filter.is_none_or(|f| f(self.ids[i]))
        }
    }

    /// The code distance to `query` of every node with a live id passing `filter`, in no
    /// order: the first pass of an exact scan through the codes (`HnswIndex::scan_codes`), read in
    /// parallel.
    pub(crate) fn code_distances(&self, query: &[f32], filter: Option<IdFilter<'_>>) -> Vec<Near> {
        let mut q = Prepared::default();
        self.codes.prepare(query, &mut q);
        let nodes = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        (0..nodes)
            .into_par_iter()
            .with_min_len(4096)
            .filter(|&node| self.accepts(node, filter))
            .map(|node| Near { dist: self.dist(&q, node), node })
            .collect()
    }

    /// The live ids of `node` that pass `filter`, first the node's own.
    pub(crate) fn accepted<'a>(
        &'a self,
        node: u32,
        filter: Option<IdFilter<'a>>,
    ) -> impl Iterator<Item = u64> + 'a {
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
        let n = self.ids.len();
        self.codes.heap_bytes()
            + (self.links0.len() + self.upper.len()) * 4
            + n * (8 + 1 + 1 + 1 + 4 + 4 + std::mem::size_of::<Mutex<()>>())
            + (self.node_of.len() + self.by_hash.len()) * 16
            + self.extra.values().map(|e| 48 + e.len() * 8).sum::<usize>()
    }

    /// The ids of the `ef` nearest nodes with a live id passing `filter` (every such id of
    /// them), or [`Walk::OverBudget`] after visiting `budget` nodes without `ef` accepted.
    pub(crate) fn search(
        &self,
        query: &[f32],
        ef: usize,
        filter: Option<IdFilter<'_>>,
        budget: usize,
    ) -> Walk {
        let Some((entry, top)) = self.entry() else {
            return Walk::Found(Vec::new());
        };
        if ef == 0 {
            return Walk::Found(Vec::new());
        }
        with_scratch(|s| {
            let mut q = std::mem::take(&mut s.query);
            self.codes.prepare(query, &mut q);
            let walk = self.walk(s, &q, entry, top, ef, filter, budget);
            s.query = q;
            walk
        })
    }

    /// [`Graph::search`]'s walk from the entry point, for a prepared query.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        s: &mut Scratch,
        query: &Prepared,
        entry: u32,
        top: usize,
        ef: usize,
        filter: Option<IdFilter<'_>>,
        budget: usize,
    ) -> Walk {
        {
            let mut ep = Near { dist: self.dist(query, entry), node: entry };
            for layer in (1..=top).rev() {
                ep = self.greedy(s, query, ep, layer);
            }
            let accept = |node: u32| self.accepts(node, filter);
            let g = s.begin(self.ids.len());
            let Scratch { marks, fresh, candidates, results, .. } = s;
            candidates.clear();
            results.clear();
            marks[ep.node as usize] = g;
            candidates.push(Reverse(ep));
            if accept(ep.node) {
                results.push(ep);
            }
            // Distance of the ef-th accepted node (infinite until there are ef).
            let mut worst = if results.len() >= ef { ep.dist } else { f32::INFINITY };
            let mut visited = 1usize;
            let stride = self.stride0();
            while let Some(Reverse(c)) = candidates.pop() {
                if c.dist > worst {
                    break;
                }
                // The likely next candidate's links load while this one's neighbours are scored.
                if let Some(Reverse(next)) = candidates.peek() {
                    let at = next.node as usize * stride;
                    prefetch(&self.links0[at..at + stride], 4);
                }
                // Mark the unvisited neighbours, then score them, each code prefetched ahead.
                let at = c.node as usize * stride;
                let slots = &self.links0[at..at + stride];
                let n = (slots[0].load(Ordering::Acquire) as usize).min(stride - 1);
                fresh.clear();
                for slot in &slots[1..1 + n] {
                    let nb = slot.load(Ordering::Relaxed);
                    let mark = &mut marks[nb as usize];
                    if *mark != g {
                        *mark = g;
                        fresh.push(nb);
                    }
                }
                visited += fresh.len();
                for (i, &nb) in fresh.iter().enumerate() {
                    self.prefetch_ahead(fresh, i);
                    let d = self.dist(query, nb);
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
            let mut sorted: Vec<Near> = results.drain().collect();
            sorted.sort_unstable();
            let mut out = Vec::with_capacity(sorted.len());
            for c in sorted {
                out.extend(self.accepted(c.node, filter).map(|id| Candidate { dist: c.dist, id }));
            }
            Walk::Found(out)
        }
    }
}

fn pack(node: u32, level: usize) -> u64 {
    (level as u64) << 32 | u64::from(node)
}

fn unpack(e: u64) -> Option<(u32, usize)> {
    (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim)
            .map(|i| ((mix(seed * 1000 + i as u64) >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
            .collect();
        crate::normalize(&mut v);
        v
    }

    #[test]
    fn levels_follow_the_geometric_distribution_and_repeat() {
        let g = Graph::new(4, Metric::Cosine, 16, 100, Fitted::F16);
        let levels: Vec<usize> = (0..100_000u64).map(|id| g.draw_level(id)).collect();
        let above0 = levels.iter().filter(|l| **l > 0).count() as f64 / levels.len() as f64;
        // P(level >= 1) = 1/m.
        assert!((above0 - 1.0 / 16.0).abs() < 0.005, "{above0}");
        assert_eq!(levels, (0..100_000u64).map(|id| g.draw_level(id)).collect::<Vec<_>>());
    }

    #[test]
    fn every_node_finds_itself_and_lists_stay_within_capacity() {
        let dim = 24;
        let vs: Vec<Vec<f32>> = (0..3000).map(|i| unit(i, dim)).collect();
        let mut g = Graph::new(dim, Metric::Cosine, 8, 64, Fitted::F16);
        let items: Vec<(u64, &[f32])> =
            vs.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
        g.insert(&items[..1000]);
        for chunk in items[1000..].chunks(10) {
            g.insert(chunk);
        }
        assert_eq!(g.nodes(), 3000);
        for node in 0..3000u32 {
            for layer in 0..=g.level(node) {
                let links = g.links(node, layer);
                assert!(links.len() <= if layer == 0 { 16 + SPARE_LINKS } else { 8 });
                assert!(!links.contains(&node), "no self links");
            }
        }
        let mut found = 0;
        for (i, v) in vs.iter().enumerate() {
            if let Walk::Found(hits) = g.search(v, 32, None, usize::MAX) {
                found += usize::from(hits.first().map(|c| c.id) == Some(i as u64));
            }
        }
        assert!(found >= 2990, "{found} of 3000 found themselves");
    }

    #[test]
    fn identical_vectors_share_a_node() {
        let mut g = Graph::new(8, Metric::L2, 4, 16, Fitted::F16);
        let a = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let b = vec![1.0f32; 8];
        g.insert(&[(1, &a), (2, &b), (3, &a)]);
        assert_eq!((g.nodes(), g.id_count()), (2, 3));
        assert_eq!(g.node_ids(0).collect::<Vec<_>>(), vec![1, 3]);
        g.mark_removed(&[1]);
        let Walk::Found(hits) = g.search(&a, 2, None, usize::MAX) else { panic!("walk") };
        assert_eq!(hits.iter().map(|c| c.id).collect::<Vec<_>>(), vec![3, 2]);
    }
}
