//! The collection engine: the state searches read ([`Applied`]) and the only code that changes
//! it. It knows nothing of storage: the caller commits a write in redb while it holds the
//! engine's [`Writer`], then hands the committed change to [`Writer::apply`].
//!
//! Invariants, each owned here:
//! - **A search sees exactly the state after [`Applied::seq`].** Sequence numbers are given by
//!   storage in commit order; every write is applied under the commit lock, in that order, and
//!   becomes visible all at once (see [`Writer::apply`]); `seq` never decreases.
//! - **Commits reach the index in commit order.** The commit lock ([`Engine::writer`]) is held
//!   from before a write's transaction is staged until the index reflects it. Readers never take
//!   it, so a commit's fsync does not block searches.
//! - **Lock policy.** A panic while the state or the commit lock is held (a bug, or the fail
//!   point of the tests) may leave the graph and the exact store out of step, so from then on
//!   every call that reads or changes the state is [`Error::Poisoned`] until the database is
//!   reopened (which rebuilds the state from storage, where every committed write is).
//! - **One optimize at a time**, built beside the live graph and swapped in after catching up
//!   with the writes made meanwhile ([`Engine::optimize`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use akidb_index::{HnswIndex, VectorInsert};
use serde_json::{Map, Value};

use super::fulltext::{self, TextSide};
use super::payload::Payload;
use crate::{Error, Result};

/// Automatic optimize: tombstones must exceed this fraction of graph nodes...
pub const OPTIMIZE_TOMBSTONE_RATIO: f64 = 0.25;
/// ...and this count.
pub const OPTIMIZE_MIN_TOMBSTONES: usize = 1_000;

/// What a search reads: the state after exactly the writes up to [`Applied::seq`].
///
/// The index holds the vector of every live document with a sequence number up to `seq` and of
/// no other (retired ones may stay linked in the graph as tombstones, never returned); the
/// payload holds those documents' declared metadata fields. A reader holding `&Applied` sees one
/// committed state, never part of a write.
#[derive(Debug)]
pub(crate) struct Applied {
    index: HnswIndex,
    payload: Payload,
    /// The full-text index's state at the same `seq` (`None`: the collection keeps none).
    text: Option<TextSide>,
    seq: u64,
}

impl Applied {
    /// The state after the writes up to `seq`, as loaded.
    pub(crate) fn new(
        index: HnswIndex,
        payload: Payload,
        text: Option<TextSide>,
        seq: u64,
    ) -> Self {
        Self { index, payload, text, seq }
    }

    /// The keyword side, if the collection keeps a full-text index.
    pub(crate) fn text(&self) -> Option<&TextSide> {
        self.text.as_ref()
    }

    pub(crate) fn index(&self) -> &HnswIndex {
        &self.index
    }

    /// The declared metadata fields of the live documents.
    pub(crate) fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The sequence number of the last write applied.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

/// One committed write, as the engine applies it.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// The highest sequence number the write used (storage's receipt).
    pub(crate) last_seq: u64,
    /// New documents: sequence number, vector as the index takes it, metadata.
    pub(crate) inserted: Vec<(u64, Vec<f32>, Map<String, Value>)>,
    /// Sequence numbers the write retired (deleted or replaced documents; an inserted one
    /// replaced later in the same batch is listed here too and never enters the index).
    pub(crate) removed: Vec<u64>,
    /// The texts of new documents, for the full-text index (empty when it is off).
    pub(crate) texts: Vec<(u64, String)>,
}

/// The in-memory state of one collection and its locks.
pub(crate) struct Engine {
    /// For errors.
    name: String,
    applied: RwLock<Applied>,
    /// Held by a writer from staging its transaction until the index reflects it.
    commit: Mutex<()>,
    /// Index changes since the last saved generation.
    unsaved: AtomicU64,
    /// An optimize is running.
    optimizing: AtomicBool,
    /// Fail point for the lock-policy test: the next apply panics while publishing.
    fail_next_publish: AtomicBool,
}

/// The right to commit one write and apply it: holds the commit lock. Dropped without
/// [`Writer::apply`] (the storage transaction failed), it changes nothing.
pub(crate) struct Writer<'a> {
    engine: &'a Engine,
    _commit: MutexGuard<'a, ()>,
}

impl Engine {
    /// An engine over `applied`, with `unsaved` changes not in a saved index generation.
    pub(crate) fn new(name: &str, applied: Applied, unsaved: u64) -> Self {
        Self {
            name: name.into(),
            applied: RwLock::new(applied),
            commit: Mutex::new(()),
            unsaved: AtomicU64::new(unsaved),
            optimizing: AtomicBool::new(false),
            fail_next_publish: AtomicBool::new(false),
        }
    }

    /// Whether a panic interrupted an update (see the lock policy above).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.applied.is_poisoned() || self.commit.is_poisoned()
    }

    fn poisoned(&self) -> Error {
        Error::Poisoned { collection: self.name.clone() }
    }

    /// The state for a search, unless poisoned. Never waits for a commit, only for the brief
    /// moments a write stages or publishes.
    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, Applied>> {
        if self.commit.is_poisoned() {
            return Err(self.poisoned());
        }
        self.applied.read().map_err(|_| self.poisoned())
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Applied>> {
        if self.commit.is_poisoned() {
            return Err(self.poisoned());
        }
        self.applied.write().map_err(|_| self.poisoned())
    }

    /// Takes the commit lock for one write (waiting for the write before it), unless poisoned.
    pub(crate) fn writer(&self) -> Result<Writer<'_>> {
        if self.applied.is_poisoned() {
            return Err(self.poisoned());
        }
        let commit = self.commit.lock().map_err(|_| self.poisoned())?;
        Ok(Writer { engine: self, _commit: commit })
    }

    /// Waits until the write in progress (if any) has been applied.
    pub(crate) fn wait_for_writer(&self) -> Result<()> {
        self.writer().map(drop)
    }

    /// The commit lock whatever a panic left behind: dropping a collection orders itself after
    /// its writers this way, and must work on a poisoned collection too.
    pub(crate) fn lock_for_drop(&self) -> MutexGuard<'_, ()> {
        self.commit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Index changes not yet in a saved generation.
    pub(crate) fn unsaved(&self) -> u64 {
        self.unsaved.load(Ordering::Relaxed)
    }

    /// Whether an optimize is running.
    pub(crate) fn optimizing(&self) -> bool {
        self.optimizing.load(Ordering::Relaxed)
    }

    /// Arms the fail point: the next [`Writer::apply`] panics while publishing.
    pub(crate) fn fail_next_publish(&self) {
        self.fail_next_publish.store(true, Ordering::Release);
    }

    /// Hands the index and the write it covers to `persist` (which writes a generation) with no
    /// write in progress: under the commit lock, since a write's batch sits in the graph
    /// unlinked while it is linked. The unsaved count restarts from zero if `persist` succeeds.
    pub(crate) fn save(&self, persist: impl FnOnce(&HnswIndex, u64) -> Result<()>) -> Result<()> {
        let _writer = self.writer()?;
        let applied = self.read()?;
        let unsaved = self.unsaved.swap(0, Ordering::AcqRel);
        persist(&applied.index, applied.seq).inspect_err(|_| {
            self.unsaved.fetch_add(unsaved, Ordering::AcqRel);
        })
    }

    /// Rebuilds the graph from the live vectors, dropping tombstones, while readers and writers
    /// go on; writes made meanwhile are applied to the new graph before it takes over. Returns
    /// the tombstones cleared: `Some(0)` when another optimize is running (it does the work),
    /// `None` when `stop` asked it to stop (nothing changed).
    pub(crate) fn optimize(&self, stop: &dyn Fn() -> bool) -> Result<Option<usize>> {
        if self.optimizing.swap(true, Ordering::AcqRel) {
            return Ok(Some(0));
        }
        struct Reset<'a>(&'a AtomicBool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _reset = Reset(&self.optimizing);
        let (snapshot, before, params) = {
            let a = self.read()?;
            (a.index.flat().try_clone()?, a.index.tombstones(), a.index.params())
        };
        let snapshot_ids: HashSet<u64> = snapshot.ids().iter().copied().collect();
        let Some(mut fresh) = HnswIndex::rebuild_from(snapshot, params, stop, &mut |_, _| {})?
        else {
            return Ok(None);
        };
        let mut a = self.write()?;
        if stop() {
            return Ok(None);
        }
        // Catch up with the writes published while building. A write staged but not yet
        // published keeps its batch: publishing into a replaced graph is a plain insert.
        let current = a.index.flat();
        let removed: Vec<u64> =
            snapshot_ids.iter().copied().filter(|id| !current.contains(*id)).collect();
        fresh.remove(&removed);
        // Only the added ids' vectors are read (a store on disk is not read whole while the
        // write lock is held).
        let added: Vec<u64> =
            current.ids().iter().copied().filter(|id| !snapshot_ids.contains(id)).collect();
        let mut inserted = Ok(());
        current.batches_of(&added, 8192, &mut |batch| {
            inserted = fresh.insert(batch);
            inserted.is_ok()
        })?;
        inserted?;
        a.index = fresh;
        Ok(Some(before))
    }
}

impl Writer<'_> {
    /// Replaces the payload (declared metadata fields) searches read; it must describe the
    /// live documents as of the last applied write (the commit lock held by this writer keeps
    /// any write from landing meanwhile).
    pub(crate) fn replace_payload(&self, payload: Payload) -> Result<()> {
        self.engine.write()?.payload = payload;
        Ok(())
    }

    /// Applies a write committed in storage since this writer was taken. The batch enters the
    /// graph in three steps so that searches are not held up while it is linked (the longest
    /// part): added unlinked (write lock, brief), linked (read lock: searches run and never
    /// return the new ids), then published together with the removals (write lock, brief).
    /// Readers see the state before the write or after it, never between. Returns whether the
    /// graph now holds enough tombstones to ask for an optimize.
    pub(crate) fn apply(self, change: Change) -> Result<bool> {
        let engine = self.engine;
        let retired: HashSet<u64> = change.removed.iter().copied().collect();
        let mut items = Vec::with_capacity(change.inserted.len());
        let mut metadata = Vec::new();
        for (seq, vector, meta) in change.inserted {
            if !retired.contains(&seq) {
                items.push((seq, vector));
                metadata.push((seq, meta));
            }
        }
        let changed = (items.len() + change.removed.len()) as u64;
        // The keyword side first, outside the state's lock (tantivy's commit syncs files):
        // searches go on meanwhile, and see its new snapshot only when the batch is published.
        let text_index = engine.read()?.text.as_ref().and_then(TextSide::index);
        let text = text_index.map(|index| {
            let texts: Vec<(u64, String)> =
                change.texts.into_iter().filter(|(seq, _)| !retired.contains(seq)).collect();
            let update = fulltext::update(&index, &change.removed, &texts, change.last_seq);
            TextSide::after(&engine.name, update, index)
        });
        let staged = engine.write()?.index.stage(items)?;
        engine.read()?.index.link(&staged);
        let mut a = engine.write()?;
        if engine.fail_next_publish.swap(false, Ordering::AcqRel) {
            panic!("fail point: a panic while publishing a batch");
        }
        a.index.remove(&change.removed);
        a.payload.remove(&change.removed);
        for (seq, meta) in metadata {
            a.payload.insert(seq, &meta);
        }
        a.index.publish(staged)?;
        if text.is_some() {
            a.text = text;
        }
        a.seq = a.seq.max(change.last_seq);
        engine.unsaved.fetch_add(changed, Ordering::Relaxed);
        Ok(a.index.tombstones() >= OPTIMIZE_MIN_TOMBSTONES
            && a.index.tombstone_ratio() > OPTIMIZE_TOMBSTONE_RATIO)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use akidb_index::{HnswParams, Metric, SearchParams, VectorSearch};
    use serde_json::json;

    use super::super::payload::Plan;
    use super::*;
    use crate::schema::{FieldIndex, IndexKind};
    use crate::Filter;

    const DIM: usize = 8;

    fn vector(seq: u64) -> Vec<f32> {
        let mut v: Vec<f32> =
            (0..DIM).map(|i| ((seq * 31 + i as u64 * 7) % 17) as f32 + 1.0).collect();
        akidb_index::normalize(&mut v);
        v
    }

    fn engine() -> Engine {
        let index = HnswIndex::new(DIM, Metric::Cosine, HnswParams::new(8, 40));
        let payload = Payload::new(&[FieldIndex::new("seq", IndexKind::Integer)]);
        Engine::new("t", Applied::new(index, payload, None, 0), 0)
    }

    /// Inserts `seqs` (metadata `{"seq": n}`) and retires `removed`, as one write.
    fn write(e: &Engine, seqs: std::ops::Range<u64>, removed: Vec<u64>) -> bool {
        let last_seq = seqs.end.saturating_sub(1);
        let inserted = seqs.map(|s| (s, vector(s), meta(s))).collect();
        let change = Change { last_seq, inserted, removed, texts: Vec::new() };
        e.writer().expect("writer").apply(change).expect("apply")
    }

    fn meta(seq: u64) -> Map<String, Value> {
        json!({ "seq": seq }).as_object().cloned().unwrap_or_default()
    }

    /// The `seq` metadata field of live document `seq`, as filters see it.
    fn seq_field(a: &Applied, seq: u64) -> Option<u64> {
        let row = a.payload().row(seq)?;
        (0..=20).find(|n| {
            let f = Filter::eq("seq", *n);
            Plan::new(&f, a.payload()).eval(a.payload(), row) == Some(true)
        })
    }

    /// Every live id, by an exact search for all of them.
    fn live_ids(a: &Applied) -> Vec<u64> {
        let n = a.index().len();
        if n == 0 {
            return Vec::new();
        }
        let (hits, _) =
            a.index().search_with(&vector(1), n, None, SearchParams::exact()).expect("search");
        let mut ids: Vec<u64> = hits.into_iter().map(|h| h.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn applied_state_is_exactly_the_writes_up_to_seq() {
        let e = engine();
        write(&e, 1..11, vec![]);
        {
            let a = e.read().expect("read");
            assert_eq!(a.seq(), 10);
            assert_eq!(live_ids(&a), (1..11).collect::<Vec<_>>());
            assert_eq!(seq_field(&a, 4), Some(4));
        }
        // Replace 3 and 4 (new sequence numbers), delete 7; 12 is superseded within the batch.
        write(&e, 11..14, vec![3, 4, 7, 12]);
        let a = e.read().expect("read");
        assert_eq!(a.seq(), 13);
        assert_eq!(live_ids(&a), vec![1, 2, 5, 6, 8, 9, 10, 11, 13]);
        assert_eq!((seq_field(&a, 3), seq_field(&a, 12)), (None, None));
        assert_eq!(seq_field(&a, 13), Some(13));
        assert_eq!(e.unsaved(), 10 + 2 + 4);
    }

    #[test]
    fn a_delete_only_write_never_moves_seq_back() {
        let e = engine();
        write(&e, 1..6, vec![]);
        e.writer()
            .expect("writer")
            .apply(Change { last_seq: 0, removed: vec![2], ..Default::default() })
            .expect("apply");
        let a = e.read().expect("read");
        assert_eq!((a.seq(), live_ids(&a)), (5, vec![1, 3, 4, 5]));
    }

    /// Readers running beside a writer see, at every moment, the ids 1..=seq and nothing else:
    /// never a batch half applied, never a vector ahead of `seq`. Crosses the graph's first
    /// build (at `EXACT_BELOW` vectors), so staging, linking and publishing all take part.
    #[test]
    fn readers_never_see_a_write_in_part() {
        let e = Arc::new(engine());
        let batches = 220u64; // 11,000 vectors: across the first graph build at 10,000
        let per = 50u64;
        let checks = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (e, checks) = (e.clone(), checks.clone());
                std::thread::spawn(move || {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                    loop {
                        let a = e.read().expect("read");
                        let ids = live_ids(&a);
                        assert_eq!(ids, (1..=a.seq()).collect::<Vec<_>>(), "seq {}", a.seq());
                        let done = a.seq() == batches * per;
                        drop(a);
                        checks.fetch_add(1, Ordering::Relaxed);
                        if done || std::time::Instant::now() > deadline {
                            return;
                        }
                    }
                })
            })
            .collect();
        for b in 0..batches {
            write(&e, b * per + 1..(b + 1) * per + 1, vec![]);
        }
        for r in readers {
            r.join().expect("reader");
        }
        assert!(checks.load(Ordering::Relaxed) > 2);
        assert_eq!(e.read().expect("read").seq(), batches * per);
    }

    #[test]
    fn a_panic_while_publishing_poisons_the_engine() {
        let e = engine();
        write(&e, 1..4, vec![]);
        e.fail_next_publish();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write(&e, 4..6, vec![1]);
        }));
        assert!(panicked.is_err());
        assert!(e.is_poisoned());
        assert!(matches!(e.read(), Err(Error::Poisoned { .. })));
        assert!(matches!(e.writer().map(drop), Err(Error::Poisoned { .. })));
        assert!(matches!(e.optimize(&|| false), Err(Error::Poisoned { .. })));
        assert!(matches!(e.save(|_, _| Ok(())), Err(Error::Poisoned { .. })));
        drop(e.lock_for_drop()); // a drop still gets through
    }

    #[test]
    fn save_sees_the_applied_seq_and_keeps_the_count_on_failure() {
        let e = engine();
        write(&e, 1..5, vec![]);
        let err = e.save(|_, _| Err(Error::InvalidK { k: 0, max: 1 }));
        assert!(err.is_err());
        assert_eq!(e.unsaved(), 4);
        let mut seen = None;
        e.save(|index, seq| {
            seen = Some((index.len(), seq));
            Ok(())
        })
        .expect("save");
        assert_eq!((seen, e.unsaved()), (Some((4, 4)), 0));
    }

    #[test]
    fn optimize_clears_tombstones_and_keeps_every_live_vector() {
        let e = engine();
        let n = akidb_index::EXACT_BELOW as u64 + 500;
        write(&e, 1..n + 1, vec![]);
        let removed: Vec<u64> = (1..=n).filter(|s| s % 3 == 0).collect();
        write(&e, n + 1..n + 1, removed.clone());
        let before = e.read().expect("read").index().tombstones();
        assert_eq!(before, removed.len());
        assert_eq!(e.optimize(&|| false).expect("optimize"), Some(before));
        let a = e.read().expect("read");
        assert_eq!(a.index().tombstones(), 0);
        assert_eq!(live_ids(&a), (1..=n).filter(|s| s % 3 != 0).collect::<Vec<_>>());
        drop(a);
        assert_eq!(e.optimize(&|| true).expect("optimize"), None, "a stop changes nothing");
    }
}
