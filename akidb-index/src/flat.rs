//! Exact search: a parallel scan over contiguous vectors, held in memory or in a file.
//!
//! The exact store keeps every live vector in f32: ground truth for scans and for re-scoring
//! the graph's hits. In memory ([`FlatIndex::new`]) it takes `4 * dim` bytes per vector, the
//! largest part of a collection's memory at Qwen3 widths (10 KB per 2,560-d vector). On disk
//! ([`FlatIndex::on_disk`]) the vectors sit in a scratch file of the index's own (created
//! unlinked in the given directory, so it vanishes with the process; redb stays the source
//! of truth and the file is refilled from it on every open) and are read with positioned reads:
//! the process keeps only ids (about 40 bytes per vector), the kernel's page cache keeps what
//! is read often, and nothing of the file counts towards the process's resident memory.
//! Re-scoring reads the few candidates it needs; scans read the file in chunks of
//! [`DISK_CHUNK_BYTES`].

use std::borrow::Cow;
use std::collections::{BinaryHeap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use crate::{IdFilter, IndexError, Metric, Neighbor, VectorInsert, VectorSearch};

/// Vectors per parallel work item of a scan in memory.
const CHUNK: usize = 4096;
/// Bytes read per parallel work item of a scan on disk (and per batch of [`FlatIndex::batches`]).
pub const DISK_CHUNK_BYTES: usize = 4 << 20;

/// What [`FlatIndex::batches`] calls with each batch of (id, vector); `false` stops.
pub type Visit<'a> = dyn FnMut(&[(u64, &[f32])]) -> bool + 'a;

/// Exact k-NN over all live vectors. Removal is O(dimension) (swap with the last vector).
#[derive(Debug)]
pub struct FlatIndex {
    dim: usize,
    metric: Metric,
    data: Data,
    ids: Vec<u64>,
    slot_of: HashMap<u64, usize>,
}

/// Where the vectors are: slot `i` holds the vector of `ids[i]`.
#[derive(Debug)]
enum Data {
    Memory(Vec<f32>),
    /// An unlinked file of `ids.len()` vectors, little-endian f32, slot after slot.
    Disk(Spill),
}

/// The file of a store on disk.
#[derive(Debug)]
struct Spill {
    file: std::fs::File,
    /// Where the file was made (copies go there too).
    dir: std::path::PathBuf,
    /// Set when a removal could not move a vector: the file may then pair an id with another
    /// id's vector, so every later read is an error rather than a wrong score (reopening the
    /// collection refills the store from redb).
    broken: bool,
}

impl Spill {
    fn create(dir: &Path) -> Result<Self, IndexError> {
        let file = tempfile::tempfile_in(dir).map_err(io_error)?;
        Ok(Self { file, dir: dir.to_path_buf(), broken: false })
    }

    /// Reads `n` vectors of `dim` from slot `first` on into `out`.
    fn read(
        &self,
        dim: usize,
        first: usize,
        n: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), IndexError> {
        if self.broken {
            return Err(IndexError::Io {
                reason: "an earlier write to the exact store's file failed".into(),
            });
        }
        // Read straight into the floats (`out` keeps its allocation between calls); the file
        // holds them little-endian.
        out.resize(n * dim, 0.0);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out.as_mut_slice());
        self.file.read_exact_at(bytes, (first * dim * 4) as u64).map_err(io_error)?;
        if cfg!(target_endian = "big") {
            out.iter_mut().for_each(|x| *x = f32::from_bits(u32::from_le(x.to_bits())));
        }
        Ok(())
    }

    /// Writes `vectors` (each of `dim`) into the slots from `first` on, in one write.
    fn write<'v>(
        &self,
        dim: usize,
        first: usize,
        vectors: impl Iterator<Item = &'v [f32]>,
    ) -> Result<(), IndexError> {
        let bytes: Vec<u8> = vectors.flatten().flat_map(|x| x.to_le_bytes()).collect();
        self.file.write_all_at(&bytes, (first * dim * 4) as u64).map_err(io_error)
    }
}

/// An I/O failure of the store on disk as an index error.
fn io_error(e: std::io::Error) -> IndexError {
    IndexError::Io { reason: e.to_string() }
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
    /// An empty index in memory.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self {
            dim,
            metric,
            data: Data::Memory(Vec::new()),
            ids: Vec::new(),
            slot_of: HashMap::new(),
        }
    }

    /// An empty index whose vectors live in a scratch file created (unlinked) in `dir`; see
    /// the module docs. `Io` if the file cannot be made.
    pub fn on_disk(dim: usize, metric: Metric, dir: &Path) -> Result<Self, IndexError> {
        let data = Data::Disk(Spill::create(dir)?);
        Ok(Self { dim, metric, data, ids: Vec::new(), slot_of: HashMap::new() })
    }

    /// Whether the vectors are on disk.
    pub fn is_on_disk(&self) -> bool {
        matches!(self.data, Data::Disk(_))
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
        Ok(Self { dim, metric, data: Data::Memory(data), ids, slot_of })
    }

    /// A copy (for a store on disk, a new scratch file in the same directory). `Io` if the
    /// copy cannot be written.
    pub fn try_clone(&self) -> Result<Self, IndexError> {
        let data = match &self.data {
            Data::Memory(v) => Data::Memory(v.clone()),
            Data::Disk(spill) => {
                // A broken store's copy is as broken (its reads fail the same way).
                if spill.broken {
                    return Err(IndexError::Io {
                        reason: "the exact store's file is broken".into(),
                    });
                }
                let copy = Spill::create(&spill.dir)?;
                let bytes = (self.ids.len() * self.dim * 4) as u64;
                let mut from =
                    std::io::Read::take(spill.file.try_clone().map_err(io_error)?, bytes);
                std::io::Seek::rewind(&mut from.get_mut()).map_err(io_error)?;
                let mut to = &copy.file;
                std::io::copy(&mut from, &mut to).map_err(io_error)?;
                Data::Disk(copy)
            }
        };
        Ok(Self {
            dim: self.dim,
            metric: self.metric,
            data,
            ids: self.ids.clone(),
            slot_of: self.slot_of.clone(),
        })
    }

    /// Live ids, in storage order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Live ids with their stored vectors, in storage order, `f` called on batches of at
    /// most `batch` (at least 1; on disk also at most [`DISK_CHUNK_BYTES`] of vectors).
    /// `f` returning `false` stops early.
    pub fn batches(&self, batch: usize, f: &mut Visit<'_>) -> Result<(), IndexError> {
        let batch = batch.max(1);
        match &self.data {
            Data::Memory(data) => {
                for (ids, vs) in self.ids.chunks(batch).zip(data.chunks(batch * self.dim.max(1))) {
                    let items: Vec<(u64, &[f32])> =
                        ids.iter().copied().zip(vs.chunks_exact(self.dim)).collect();
                    if !f(&items) {
                        break;
                    }
                }
            }
            Data::Disk(spill) => {
                let batch = batch.min(self.disk_chunk());
                let mut buf = Vec::new();
                for (n, ids) in self.ids.chunks(batch).enumerate() {
                    spill.read(self.dim, n * batch, ids.len(), &mut buf)?;
                    let items: Vec<(u64, &[f32])> =
                        ids.iter().copied().zip(buf.chunks_exact(self.dim)).collect();
                    if !f(&items) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The vectors of `ids` (ids not live are skipped), `f` called on batches of at most
    /// `batch`: what the callers that need a few ids' vectors use instead of [`batches`], which
    /// would read every vector of a store on disk. `f` returning `false` stops early.
    ///
    /// [`batches`]: FlatIndex::batches
    pub fn batches_of(
        &self,
        ids: &[u64],
        batch: usize,
        f: &mut Visit<'_>,
    ) -> Result<(), IndexError> {
        let (mut found, mut vectors) = (Vec::new(), Vec::new());
        for chunk in ids.chunks(batch.max(1)) {
            found.clear();
            vectors.clear();
            self.with_vectors(chunk.iter().copied(), |id, v| {
                found.push(id);
                vectors.extend_from_slice(v);
            })?;
            let items: Vec<(u64, &[f32])> =
                found.iter().copied().zip(vectors.chunks_exact(self.dim.max(1))).collect();
            if !f(&items) {
                break;
            }
        }
        Ok(())
    }

    /// Vectors per read of a scan on disk.
    fn disk_chunk(&self) -> usize {
        (DISK_CHUNK_BYTES / (4 * self.dim.max(1))).max(1)
    }

    /// Whether `id` is live in the index.
    pub fn contains(&self, id: u64) -> bool {
        self.slot_of.contains_key(&id)
    }

    /// Calls `f(id, vector)` for each live id of `ids`, in order (unknown ids are skipped); on
    /// disk one read per vector into one buffer, so re-scoring a walk's hits allocates nothing
    /// per hit.
    pub fn with_vectors(
        &self,
        ids: impl IntoIterator<Item = u64>,
        mut f: impl FnMut(u64, &[f32]),
    ) -> Result<(), IndexError> {
        let mut buf = Vec::new();
        for id in ids {
            let Some(&s) = self.slot_of.get(&id) else { continue };
            match &self.data {
                Data::Memory(data) => f(id, &data[s * self.dim..(s + 1) * self.dim]),
                Data::Disk(spill) => {
                    spill.read(self.dim, s, 1, &mut buf)?;
                    f(id, &buf);
                }
            }
        }
        Ok(())
    }

    /// The stored vector of `id` (`Ok(None)`: not live; `Io`: the file on disk failed).
    pub fn vector(&self, id: u64) -> Result<Option<Cow<'_, [f32]>>, IndexError> {
        let Some(&s) = self.slot_of.get(&id) else { return Ok(None) };
        Ok(Some(match &self.data {
            Data::Memory(data) => Cow::Borrowed(&data[s * self.dim..(s + 1) * self.dim]),
            Data::Disk(spill) => {
                let mut v = Vec::with_capacity(self.dim);
                spill.read(self.dim, s, 1, &mut v)?;
                Cow::Owned(v)
            }
        }))
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
            if let Some(v) = self.vector(*id)? {
                push_bounded(
                    &mut heap,
                    k,
                    Candidate { dist: self.metric.distance(query, &v), id: *id },
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

    /// The `k` best of `vectors` (row-major, one per id of `ids`) that pass `filter`.
    fn scan_block(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<IdFilter<'_>>,
        ids: &[u64],
        vectors: &[f32],
    ) -> BinaryHeap<Candidate> {
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for (v, &id) in vectors.chunks_exact(self.dim).zip(ids) {
            if filter.is_some_and(|f| !f(id)) {
                continue;
            }
            push_bounded(&mut heap, k, Candidate { dist: self.metric.distance(query, v), id });
        }
        heap
    }
}

/// The `k` best of two heaps.
fn merge(
    k: usize,
    mut a: BinaryHeap<Candidate>,
    b: BinaryHeap<Candidate>,
) -> BinaryHeap<Candidate> {
    for c in b {
        push_bounded(&mut a, k, c);
    }
    a
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
        let heap = match &self.data {
            Data::Memory(data) => data
                .par_chunks(CHUNK * self.dim)
                .zip(self.ids.par_chunks(CHUNK))
                .map(|(vectors, ids)| self.scan_block(query, k, filter, ids, vectors))
                .reduce(BinaryHeap::new, |a, b| merge(k, a, b)),
            Data::Disk(spill) => {
                let chunk = self.disk_chunk();
                self.ids
                    .par_chunks(chunk)
                    .enumerate()
                    .map(|(n, ids)| {
                        let mut buf = Vec::new();
                        spill.read(self.dim, n * chunk, ids.len(), &mut buf)?;
                        Ok(self.scan_block(query, k, filter, ids, &buf))
                    })
                    .try_reduce(BinaryHeap::new, |a, b| Ok(merge(k, a, b)))?
            }
        };
        Ok(into_neighbors(heap, self.metric))
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
        match &mut self.data {
            Data::Memory(data) => {
                data.reserve(items.len() * self.dim);
                for (_, v) in items {
                    data.extend_from_slice(v);
                }
            }
            // Written before any id is added: a failed write leaves the index as it was.
            Data::Disk(spill) => {
                spill.write(self.dim, self.ids.len(), items.iter().map(|i| i.1))?
            }
        }
        for (id, _) in items {
            self.slot_of.insert(*id, self.ids.len());
            self.ids.push(*id);
        }
        Ok(())
    }

    fn remove(&mut self, ids: &[u64]) -> usize {
        let dim = self.dim;
        let mut removed = 0;
        let mut moved_vector = Vec::new();
        for id in ids {
            let Some(&slot) = self.slot_of.get(id) else { continue };
            let last = self.ids.len() - 1;
            if slot != last {
                match &mut self.data {
                    Data::Memory(data) => {
                        data.copy_within(last * dim..(last + 1) * dim, slot * dim)
                    }
                    Data::Disk(spill) => {
                        let moved = spill
                            .read(dim, last, 1, &mut moved_vector)
                            .and_then(|()| spill.write(dim, slot, [&moved_vector[..]].into_iter()));
                        if let Err(e) = moved {
                            log::error!("exact store on disk: moving a vector failed: {e}");
                            spill.broken = true;
                        }
                    }
                }
                let moved = self.ids[last];
                self.ids[slot] = moved;
                self.slot_of.insert(moved, slot);
            }
            self.slot_of.remove(id);
            self.ids.pop();
            if let Data::Memory(data) = &mut self.data {
                data.truncate(last * dim);
            }
            removed += 1;
        }
        if let Data::Disk(spill) = &self.data {
            // Give back the space of the removed tail (best effort: it is overwritten anyway).
            let _ = spill.file.set_len((self.ids.len() * dim * 4) as u64);
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
        assert_eq!(idx.vector(4).expect("read").as_deref(), Some(&[6.0, 7.0, 8.0][..]));
        assert_eq!(idx.search(&[6.0, 7.0, 8.0], 1, None).expect("search")[0].id, 4);
        let bad = FlatIndex::from_parts(3, Metric::L2, vec![1, 2], vec![0.0; 5]);
        assert!(matches!(bad, Err(IndexError::WrongDimension { .. })));
        let dup = FlatIndex::from_parts(1, Metric::L2, vec![1, 1], vec![0.0; 2]);
        assert_eq!(dup.err(), Some(IndexError::DuplicateId { id: 1 }));
    }

    /// Every (id, vector) of the index, through `batches` of 7.
    fn all(idx: &FlatIndex) -> Vec<(u64, Vec<f32>)> {
        let mut out = Vec::new();
        idx.batches(7, &mut |b| {
            out.extend(b.iter().map(|(id, v)| (*id, v.to_vec())));
            true
        })
        .expect("read");
        out
    }

    #[test]
    fn matches_brute_force_after_removals_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for (metric, disk) in [Metric::Cosine, Metric::Dot, Metric::L2]
            .into_iter()
            .flat_map(|m| [(m, false), (m, true)])
        {
            let mut idx = if disk {
                FlatIndex::on_disk(16, metric, dir.path()).expect("on disk")
            } else {
                FlatIndex::new(16, metric)
            };
            assert_eq!(idx.is_on_disk(), disk);
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
            // `batches` pairs each live id with its own vector after the removals' moves.
            let items = all(&idx);
            assert_eq!(items.len(), data.len());
            assert!(items
                .iter()
                .all(|(id, v)| data[(id - id / 3 - 1) as usize] == (*id, v.clone())));
            for (id, v) in data.iter().step_by(97) {
                assert_eq!(idx.vector(*id).expect("read").as_deref(), Some(v.as_slice()));
            }
            // A copy is independent of its original (a removal in one leaves the other).
            let copy = idx.try_clone().expect("copy");
            assert_eq!(copy.is_on_disk(), disk);
            assert_eq!(all(&copy), items);
            let q: Vec<f32> = (0..16).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let got: Vec<u64> =
                idx.search(&q, 10, None).expect("search").iter().map(|n| n.id).collect();
            assert_eq!(got, brute(&data, &q, 10, metric), "{metric:?}");
            let even = |id: u64| id.is_multiple_of(2);
            let got: Vec<u64> =
                idx.search(&q, 10, Some(&even)).expect("search").iter().map(|n| n.id).collect();
            let evens: Vec<_> = data.iter().filter(|(i, _)| i % 2 == 0).cloned().collect();
            assert_eq!(got, brute(&evens, &q, 10, metric));
            // `batches_of` gives the live ones of the ids asked for, in that order.
            let mut asked: Vec<u64> = data.iter().rev().step_by(13).map(|(id, _)| *id).collect();
            asked.push(3); // removed above
            let mut got = Vec::new();
            idx.batches_of(&asked, 4, &mut |b| {
                got.extend(b.iter().map(|(id, v)| (*id, v.to_vec())));
                true
            })
            .expect("read");
            let want: Vec<(u64, Vec<f32>)> = data.iter().rev().step_by(13).cloned().collect();
            assert_eq!(got, want);
            let some: Vec<u64> = data.iter().step_by(5).map(|(id, _)| *id).collect();
            let got: Vec<u64> =
                idx.search_ids(&q, 10, &some).expect("ids").iter().map(|n| n.id).collect();
            let picked: Vec<_> = data.iter().step_by(5).cloned().collect();
            assert_eq!(got, brute(&picked, &q, 10, metric));
            let mut copy = copy;
            copy.remove(&[data[0].0]);
            assert_eq!((copy.len(), idx.len()), (data.len() - 1, data.len()));
            assert_eq!(all(&idx), items);
        }
        // Nothing of the stores' files is left behind: they were never linked into `dir`.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
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
