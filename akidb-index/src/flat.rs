//! Exact search: a parallel scan over contiguous vectors.

use std::collections::{BinaryHeap, HashMap};

use rayon::prelude::*;

use crate::{IdFilter, IndexError, Metric, Neighbor, VectorInsert, VectorSearch};

/// Vectors per parallel work item of a scan.
const CHUNK: usize = 4096;

/// Exact k-NN over all live vectors. Removal is O(dimension) (swap with the last vector).
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dim: usize,
    metric: Metric,
    data: Vec<f32>,
    ids: Vec<u64>,
    slot_of: HashMap<u64, usize>,
}

/// Heap entry ordered by (distance, id) so the worst candidate is on top of a max-heap.
#[derive(Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) dist: f32,
    pub(crate) id: u64,
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.dist.total_cmp(&other.dist).then(self.id.cmp(&other.id))
    }
}

/// Keeps the `k` smallest candidates.
pub(crate) fn push_bounded(heap: &mut BinaryHeap<Candidate>, k: usize, c: Candidate) {
    if heap.len() < k {
        heap.push(c);
    } else if let Some(top) = heap.peek() {
        if c < *top {
            heap.pop();
            heap.push(c);
        }
    }
}

/// Turns a heap of candidates into neighbours, best first.
pub(crate) fn into_neighbors(heap: BinaryHeap<Candidate>, metric: Metric) -> Vec<Neighbor> {
    heap.into_sorted_vec()
        .into_iter()
        .map(|c| Neighbor { id: c.id, score: metric.score(c.dist) })
        .collect()
}

impl FlatIndex {
    /// An empty index.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self { dim, metric, data: Vec::new(), ids: Vec::new(), slot_of: HashMap::new() }
    }

    /// An index over `ids` and their vectors `data` (row-major, `ids.len() * dim` values),
    /// taking both without a copy: how a collection load hands over what it read.
    /// `WrongDimension` if `data` does not hold one vector per id, `DuplicateId` for an id
    /// given twice.
    pub fn from_parts(
        dim: usize,
        metric: Metric,
        ids: Vec<u64>,
        data: Vec<f32>,
    ) -> Result<Self, IndexError> {
        if dim == 0 || data.len() != ids.len() * dim {
            let got = if ids.is_empty() { data.len() } else { data.len() / ids.len() };
            return Err(IndexError::WrongDimension { expected: dim, got });
        }
        let mut slot_of = HashMap::with_capacity(ids.len());
        for (slot, id) in ids.iter().enumerate() {
            if slot_of.insert(*id, slot).is_some() {
                return Err(IndexError::DuplicateId { id: *id });
            }
        }
        Ok(Self { dim, metric, data, ids, slot_of })
    }

    /// Live ids, in storage order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Live ids with their stored vectors, in storage order.
    pub fn items(&self) -> impl Iterator<Item = (u64, &[f32])> + '_ {
        self.ids.iter().copied().zip(self.data.chunks_exact(self.dim))
    }

    /// Whether `id` is live in the index.
    pub fn contains(&self, id: u64) -> bool {
        self.slot_of.contains_key(&id)
    }

    /// The stored vector of `id`.
    pub fn vector(&self, id: u64) -> Option<&[f32]> {
        self.slot_of.get(&id).map(|&s| &self.data[s * self.dim..(s + 1) * self.dim])
    }

    /// Exact search restricted to the given candidate ids (unknown ids are skipped).
    pub fn search_ids(
        &self,
        query: &[f32],
        k: usize,
        ids: &[u64],
    ) -> Result<Vec<Neighbor>, IndexError> {
        self.check_dim(query.len())?;
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for id in ids {
            if let Some(v) = self.vector(*id) {
                push_bounded(
                    &mut heap,
                    k,
                    Candidate { dist: self.metric.distance(query, v), id: *id },
                );
            }
        }
        Ok(into_neighbors(heap, self.metric))
    }

    /// The error [`VectorInsert::insert`] would return for `items`, if any: a wrong dimension,
    /// an id already live, or an id twice in the batch.
    pub fn check_insert(&self, items: &[(u64, &[f32])]) -> Result<(), IndexError> {
        let mut batch = std::collections::HashSet::with_capacity(items.len());
        for (id, v) in items {
            self.check_dim(v.len())?;
            if self.slot_of.contains_key(id) || !batch.insert(*id) {
                return Err(IndexError::DuplicateId { id: *id });
            }
        }
        Ok(())
    }

    fn check_dim(&self, got: usize) -> Result<(), IndexError> {
        if got != self.dim {
            return Err(IndexError::WrongDimension { expected: self.dim, got });
        }
        Ok(())
    }
}

impl VectorSearch for FlatIndex {
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<IdFilter<'_>>,
    ) -> Result<Vec<Neighbor>, IndexError> {
        self.check_dim(query.len())?;
        if k == 0 || self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let metric = self.metric;
        let dim = self.dim;
        let heap = self
            .data
            .par_chunks(CHUNK * dim)
            .zip(self.ids.par_chunks(CHUNK))
            .map(|(vectors, ids)| {
                let mut heap = BinaryHeap::with_capacity(k + 1);
                for (v, &id) in vectors.chunks_exact(dim).zip(ids) {
                    if filter.is_some_and(|f| !f(id)) {
                        continue;
                    }
                    push_bounded(&mut heap, k, Candidate { dist: metric.distance(query, v), id });
                }
                heap
            })
            .reduce(BinaryHeap::new, |mut a, b| {
                for c in b {
                    push_bounded(&mut a, k, c);
                }
                a
            });
        Ok(into_neighbors(heap, metric))
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }
}

impl VectorInsert for FlatIndex {
    fn insert(&mut self, items: &[(u64, &[f32])]) -> Result<(), IndexError> {
        self.check_insert(items)?;
        self.data.reserve(items.len() * self.dim);
        for (id, v) in items {
            self.slot_of.insert(*id, self.ids.len());
            self.ids.push(*id);
            self.data.extend_from_slice(v);
        }
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> usize {
        let mut removed = 0;
        for id in ids {
            let Some(slot) = self.slot_of.remove(id) else { continue };
            let last = self.ids.len() - 1;
            if slot != last {
                let moved = self.ids[last];
                self.ids[slot] = moved;
                self.data.copy_within(last * self.dim..(last + 1) * self.dim, slot * self.dim);
                self.slot_of.insert(moved, slot);
            }
            self.ids.pop();
            self.data.truncate(last * self.dim);
            removed += 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn brute(data: &[(u64, Vec<f32>)], q: &[f32], k: usize, m: Metric) -> Vec<u64> {
        let mut v: Vec<(f32, u64)> = data.iter().map(|(id, x)| (m.distance(q, x), *id)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn from_parts_takes_the_vectors_and_checks_them() {
        let data: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let idx = FlatIndex::from_parts(3, Metric::L2, vec![7, 9, 4, 2], data).expect("parts");
        assert_eq!(idx.vector(4), Some(&[6.0, 7.0, 8.0][..]));
        assert_eq!(idx.search(&[6.0, 7.0, 8.0], 1, None).expect("search")[0].id, 4);
        let bad = FlatIndex::from_parts(3, Metric::L2, vec![1, 2], vec![0.0; 5]);
        assert!(matches!(bad, Err(IndexError::WrongDimension { .. })));
        let dup = FlatIndex::from_parts(1, Metric::L2, vec![1, 1], vec![0.0; 2]);
        assert_eq!(dup.err(), Some(IndexError::DuplicateId { id: 1 }));
    }

    #[test]
    fn matches_brute_force_after_removals() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let mut idx = FlatIndex::new(16, metric);
            let mut data: Vec<(u64, Vec<f32>)> = (0..10_000u64)
                .map(|i| {
                    let mut v: Vec<f32> = (0..16).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    if metric == Metric::Cosine {
                        crate::normalize(&mut v);
                    }
                    (i, v)
                })
                .collect();
            let items: Vec<(u64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            idx.insert(&items).expect("insert");
            let gone: Vec<u64> = (0..10_000u64).step_by(3).collect();
            assert_eq!(idx.remove(&gone), gone.len());
            data.retain(|(i, _)| !i.is_multiple_of(3));
            // `items` pairs each live id with its own vector after the removals' moves.
            assert_eq!(idx.items().count(), data.len());
            assert!(idx
                .items()
                .all(|(id, v)| data[(id - id / 3 - 1) as usize] == (id, v.to_vec())));
            let q: Vec<f32> = (0..16).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let got: Vec<u64> =
                idx.search(&q, 10, None).expect("search").iter().map(|n| n.id).collect();
            assert_eq!(got, brute(&data, &q, 10, metric), "{metric:?}");
            let even = |id: u64| id.is_multiple_of(2);
            let got: Vec<u64> =
                idx.search(&q, 10, Some(&even)).expect("search").iter().map(|n| n.id).collect();
            let evens: Vec<_> = data.iter().filter(|(i, _)| i % 2 == 0).cloned().collect();
            assert_eq!(got, brute(&evens, &q, 10, metric));
        }
    }

    #[test]
    fn rejects_wrong_dimension_and_duplicates() {
        let mut idx = FlatIndex::new(3, Metric::L2);
        assert_eq!(
            idx.insert(&[(1, &[1.0, 2.0][..])]),
            Err(IndexError::WrongDimension { expected: 3, got: 2 })
        );
        idx.insert(&[(1, &[1.0, 2.0, 3.0][..])]).expect("insert");
        assert_eq!(
            idx.insert(&[(1, &[1.0, 2.0, 3.0][..])]),
            Err(IndexError::DuplicateId { id: 1 })
        );
        let twice = [(2, &[1.0, 2.0, 3.0][..]), (2, &[3.0, 2.0, 1.0][..])];
        assert_eq!(
            idx.insert(&twice),
            Err(IndexError::DuplicateId { id: 2 }),
            "the same id twice in one call"
        );
        assert_eq!(idx.len(), 1, "nothing of a refused call is inserted");
        assert!(idx.search(&[1.0], 1, None).is_err());
        let hits = idx.search(&[1.0, 2.0, 4.0], 5, None).expect("search");
        assert_eq!(hits.len(), 1);
        assert!((hits[0].score - 1.0).abs() < 1e-6);
    }
}
