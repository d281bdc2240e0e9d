//! [`Collection`]: the handle on one collection, and the paths of its calls.
//!
//! - `mod.rs` (here): the public calls. A write is checked (`validate.rs`), committed in redb
//!   under the engine's commit lock, then applied to the engine; a search reads the engine's
//!   applied state and fetches its hits' documents from one redb snapshot.
//! - `engine.rs`: the in-memory state searches read and every invariant about it (commit order,
//!   "a search sees exactly the state after `applied_seq`", the lock policy, optimize).
//! - `load.rs`: building that state from storage on first open.
//! - `payload.rs`: the declared metadata fields filters read in memory (payload indexes).
//! - `filtered.rs`: the matches of a filter naming an undeclared field, from storage.
//! - `metadata.rs`: stored metadata read back.

mod engine;
mod export;
mod feed;
mod filtered;
mod fulltext;
mod hybrid;
mod lifecycle;
mod load;
mod metadata;
#[cfg(feature = "parquet")]
mod parquet;
mod payload;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use akidb_index::persist::{self, IndexIdentity};
use akidb_index::{FilterPlan, HnswIndex, SearchParams, SearchPath, VectorSearch};
use akidb_storage::{CollectionEntry, DocumentWrite, Storage, StorageError};

pub use engine::{OPTIMIZE_MIN_TOMBSTONES, OPTIMIZE_TOMBSTONE_RATIO};
pub use export::{ImportReport, MAX_IMPORT_LINE};
pub(crate) use feed::prune as prune_changes;
pub use feed::{
    Change as FeedChange, ChangePage, ChangePosition, CHANGE_FEED_KEEP, CHANGE_PAGE_BYTES,
    MAX_CHANGES_PER_PAGE,
};
use hybrid::Ranked;
pub use hybrid::{
    Fusion, HitExplain, QueryMode, QueryOptions, SideRank, KEYWORD_MIN_STRENGTH, TEXT_EXACT_BYTES,
    TEXT_MIN_EF,
};
pub use lifecycle::{Scroll, ScrollCursor, ScrollOptions, DELETE_CHUNK};
pub(crate) use load::{load, map_error as map_load_error, payload_from_storage};
pub(crate) use retention::retention_pass;
pub use retention::RetentionReport;

use self::engine::{Applied, Change, Engine};
use self::filtered::StoredMatches;
use self::metadata::docs_table;
use self::payload::{Payload, Plan};
use crate::database::DbInner;
use crate::document::{Document, Hit, Record};
use crate::filter::Filter;
use crate::limits::MAX_BATCH;
use crate::schema::{self, CollectionConfig, FieldIndex, Retention};
use crate::validate::{check_id, check_metadata, check_search, check_text, check_vector};
use crate::{Error, Result};

/// Index statistics of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexStats {
    /// Live vectors.
    pub live: usize,
    /// Removed or replaced vectors still linked in the graph (cleared by `optimize`).
    pub tombstones: usize,
    /// Index changes not yet in a saved generation.
    pub unsaved_changes: u64,
}

/// An open collection, shared by every handle on it in the process.
pub(crate) struct CollectionState {
    pub(crate) entry: CollectionEntry,
    pub(crate) config: CollectionConfig,
    engine: Engine,
    /// Set (under the commit lock) once the collection is dropped: handles answer
    /// `CollectionNotFound`, optimizes stop.
    dropped: AtomicBool,
    /// Where this collection's index generations live.
    index_dir: PathBuf,
    /// What index generations of this collection must match (see `akidb_index::persist`).
    identity: IndexIdentity,
    /// The model digest recorded in this process for a collection whose schema had none.
    adopted_digest: std::sync::OnceLock<String>,
    /// An automatic optimize is queued for the maintenance worker.
    pub(crate) optimize_queued: AtomicBool,
    /// The retention policy in force (the schema's, or one set since).
    retention: std::sync::RwLock<Option<Retention>>,
    /// The payload indexes in force (the schema's, or declared since).
    indexes: std::sync::RwLock<Vec<FieldIndex>>,
}

/// The folder of collection `entry`'s index generations.
pub(crate) fn index_dir(db_path: &Path, entry: &CollectionEntry) -> PathBuf {
    index_dir_of(db_path, entry.id)
}

/// The folder of the index generations of the collection with internal id `id`.
pub(crate) fn index_dir_of(db_path: &Path, id: u64) -> PathBuf {
    db_path.join("index").join(format!("c{id}"))
}

/// Who a collection's full-text index belongs to.
pub(crate) fn text_identity(
    database_id: [u8; 16],
    entry: &CollectionEntry,
) -> akidb_fulltext::Identity {
    akidb_fulltext::Identity { database_id, collection_id: entry.id }
}

fn index_identity(
    database_id: [u8; 16],
    entry: &CollectionEntry,
    config: &CollectionConfig,
) -> IndexIdentity {
    IndexIdentity {
        database_id,
        collection_id: entry.id,
        dimension: config.dimension,
        metric: config.metric,
        params: config.hnsw,
    }
}

impl CollectionState {
    fn new(
        entry: CollectionEntry,
        config: CollectionConfig,
        store: &Storage,
        db_path: &Path,
        engine: Engine,
    ) -> Self {
        Self {
            index_dir: index_dir(db_path, &entry),
            identity: index_identity(store.database_id(), &entry, &config),
            retention: std::sync::RwLock::new(config.retention.clone()),
            indexes: std::sync::RwLock::new(config.indexes.clone()),
            entry,
            config,
            engine,
            dropped: AtomicBool::new(false),
            adopted_digest: std::sync::OnceLock::new(),
            optimize_queued: AtomicBool::new(false),
        }
    }

    /// A collection just created: empty.
    pub(crate) fn empty(
        entry: CollectionEntry,
        config: CollectionConfig,
        store: &Storage,
        db_path: &Path,
    ) -> Self {
        let index = HnswIndex::new(config.dimension, config.metric, config.hnsw);
        let text = config.full_text_enabled().then(|| {
            let identity = text_identity(store.database_id(), &entry);
            fulltext::empty(&entry.name, &index_dir(db_path, &entry), identity)
        });
        let payload = Payload::new(&config.indexes);
        let engine = Engine::new(&entry.name, Applied::new(index, payload, text, 0), 0);
        Self::new(entry, config, store, db_path, engine)
    }

    pub(crate) fn name(&self) -> &str {
        &self.entry.name
    }

    /// The configuration as it is stored now: the creation's, with the model digest recorded
    /// since and the retention policy in force.
    pub(crate) fn stored_config(&self) -> CollectionConfig {
        let mut config = self.config.clone();
        config.model = self.model_identity();
        config.retention = self.retention();
        config.indexes = self.indexes();
        config
    }

    /// The payload indexes in force.
    pub(crate) fn indexes(&self) -> Vec<FieldIndex> {
        self.indexes.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the payload indexes under the commit lock (no write runs meanwhile; searches
    /// go on with the old ones): `build` makes the new payload from storage, `persist` records
    /// the declaration, then the new payload takes over.
    pub(crate) fn replace_indexes(
        &self,
        indexes: Vec<FieldIndex>,
        build: impl FnOnce() -> Result<Payload>,
        persist: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let writer = self.engine.writer()?;
        let payload = build()?;
        persist()?;
        writer.replace_payload(payload)?;
        *self.indexes.write().unwrap_or_else(PoisonError::into_inner) = indexes;
        Ok(())
    }

    /// Runs `f` under the commit lock (ordered with the collection's writes).
    pub(crate) fn under_commit_lock<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _writer = self.engine.writer()?;
        f()
    }

    /// The retention policy in force.
    pub(crate) fn retention(&self) -> Option<Retention> {
        self.retention.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the retention policy in force (its schema is updated by the caller).
    pub(crate) fn set_retention(&self, retention: Option<Retention>) {
        *self.retention.write().unwrap_or_else(PoisonError::into_inner) = retention;
    }

    /// The bound model's identity, with a digest recorded in this process (see
    /// [`Collection::adopt_model_digest`]).
    pub(crate) fn model_identity(&self) -> Option<crate::ModelIdentity> {
        let mut m = self.config.model.clone()?;
        if m.digest.is_none() {
            m.digest = self.adopted_digest.get().cloned();
        }
        Some(m)
    }

    fn not_found(&self) -> Error {
        Error::CollectionNotFound { name: self.name().into() }
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Marks the collection dropped, after its data is gone from storage. Takes the commit lock
    /// (a poisoned one too) around `drop_data`, so the drop is ordered after every writer.
    pub(crate) fn drop_with(&self, drop_data: impl FnOnce() -> Result<()>) -> Result<()> {
        let _commit = self.engine.lock_for_drop();
        drop_data()?;
        self.dropped.store(true, Ordering::Release);
        Ok(())
    }

    /// Saves the index at close, if it has unsaved changes and is in a state worth saving.
    pub(crate) fn save_at_close(&self) {
        if self.is_dropped() || self.engine.unsaved() == 0 {
            return;
        }
        if self.engine.is_poisoned() {
            log::warn!("not saving the index of {}: a panic interrupted an update", self.name());
            return;
        }
        if let Err(e) = self.save() {
            log::warn!(
                "saving the index of {} failed (it will be rebuilt on open): {e}",
                self.name()
            );
        }
    }

    /// See [`Collection::optimize`]; stops early once `cancel` is set or the collection is
    /// dropped (an error then).
    pub(crate) fn optimize(&self, cancel: &AtomicBool) -> Result<usize> {
        let stop = || self.dropped.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed);
        let cleared = self.engine.optimize(&stop)?;
        if self.is_dropped() {
            return Err(self.not_found());
        }
        let Some(cleared) = cleared else { return Ok(0) }; // the database is closing
        self.save()?;
        Ok(cleared)
    }

    /// Writes the index as a new generation covering the last applied write.
    /// Deletes exact versions (`(id, seq)`: only if `seq` is still the id's live version) in
    /// one durable transaction, then applies it. Returns how many went and whether the graph
    /// now asks for an optimize.
    pub(crate) fn delete_versions(
        &self,
        store: &Storage,
        versions: &[(&str, u64)],
        now_ms: u64,
    ) -> Result<(usize, bool)> {
        let writer = self.engine.writer()?;
        if self.is_dropped() {
            return Err(self.not_found());
        }
        let receipt = store
            .prepare_delete_versions(&self.entry, versions, now_ms)
            .and_then(|pending| pending.commit())
            .map_err(map_storage_error)?;
        let deleted = receipt.deleted;
        let change = Change {
            last_seq: receipt.last_seq,
            inserted: Vec::new(),
            removed: receipt.removed,
            texts: Vec::new(),
        };
        Ok((deleted, writer.apply(change)?))
    }

    fn save(&self) -> Result<()> {
        self.engine.save(|index, covered| {
            persist::save(index, &self.index_dir, &self.identity, covered)
                .map(drop)
                .map_err(Error::IndexPersist)
        })
    }
}

/// A storage error as a collection call reports it: a collection dropped meanwhile is not found.
pub(crate) fn map_storage_error(e: StorageError) -> Error {
    match e {
        StorageError::CollectionNotFound { name } => Error::CollectionNotFound { name },
        e => e.into(),
    }
}

/// A handle on one collection. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Collection {
    pub(crate) db: Arc<DbInner>,
    pub(crate) state: Arc<CollectionState>,
    /// The embedding model of text calls, if attached.
    pub(crate) embedder: Option<Arc<dyn akidb_embed_api::Embedder>>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection").field("name", &self.state.entry.name).finish()
    }
}

impl Collection {
    pub(crate) fn new(db: Arc<DbInner>, state: Arc<CollectionState>) -> Self {
        Self { db, state, embedder: None }
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.state.entry.name
    }

    /// The configuration fixed at creation (the retention policy and payload indexes in force
    /// now, which [`Database::set_retention`](crate::Database::set_retention) and
    /// [`Database::set_indexes`](crate::Database::set_indexes) change, are in
    /// [`Database::list_collections`](crate::Database::list_collections)).
    pub fn config(&self) -> &CollectionConfig {
        &self.state.config
    }

    /// Records `model`'s digest in a collection whose schema predates digests (its model was
    /// matched by name and settings), so that from now on only that content matches.
    pub(crate) fn adopt_model_digest(&self, model: &crate::ModelIdentity) -> Result<()> {
        let Some(digest) = model.digest.clone() else { return Ok(()) };
        let _writer = self.state.engine.writer()?;
        let mut config = self.state.stored_config();
        if let Some(adopted) = self.state.adopted_digest.get() {
            // Another caller recorded a digest since this one was matched by name.
            if *adopted == digest {
                return Ok(());
            }
            let mut recorded = model.clone();
            recorded.digest = Some(adopted.clone());
            return Err(Error::ModelMismatch {
                collection: self.name().into(),
                stored: recorded.to_string(),
                given: model.to_string(),
            });
        }
        if let Some(m) = config.model.as_mut() {
            m.digest = Some(digest.clone());
        }
        let stored = schema::encode(self.name(), &config)?;
        self.db.store.update_schema(self.name(), &stored).map_err(|e| self.storage_error(e))?;
        let _ = self.state.adopted_digest.set(digest);
        log::info!("collection {}: recorded the digest of its model {}", self.name(), model.name);
        Ok(())
    }

    /// Checks what every search takes: a live collection and a valid request.
    pub(crate) fn check_request(
        &self,
        k: usize,
        filter: Option<&Filter>,
        params: &SearchParams,
    ) -> Result<()> {
        self.check_live()?;
        check_search(k, filter, params)
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.state.is_dropped() {
            return Err(self.state.not_found());
        }
        Ok(())
    }

    fn storage_error(&self, e: StorageError) -> Error {
        map_storage_error(e)
    }

    /// Inserts or replaces documents, all or none: one durable transaction. Returns once the
    /// batch is committed (fsync) and searchable.
    ///
    /// Every document is validated first (dimension, finite values, non-zero under cosine, id,
    /// text and metadata limits); an invalid one fails the whole batch and writes nothing.
    /// Within a batch, a later document with the same id wins.
    pub fn upsert(&self, docs: &[Document]) -> Result<()> {
        self.write::<&str>(docs, &[]).map(|_| ())
    }

    /// Deletes documents by id in one durable transaction. Returns how many existed.
    pub fn delete<S: AsRef<str>>(&self, ids: &[S]) -> Result<usize> {
        self.write(&[], ids)
    }

    /// The write path: check everything, commit in redb under the engine's writer, apply.
    fn write<S: AsRef<str>>(&self, docs: &[Document], deletes: &[S]) -> Result<usize> {
        self.check_live()?;
        let total = docs.len() + deletes.len();
        if total > MAX_BATCH {
            return Err(Error::BatchTooLarge { len: total, max: MAX_BATCH });
        }
        if total == 0 {
            return Ok(0);
        }
        let cfg = &self.state.config;
        let mut prepared = Vec::with_capacity(docs.len());
        let mut meta_texts = Vec::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            check_id(i, &d.id)?;
            check_text(&d.id, d.text.as_deref())?;
            let vector = check_vector(&d.vector, cfg.dimension, cfg.metric, || {
                format!("of document {:?}", d.id)
            })?;
            let (meta_text, meta) = check_metadata(&d.id, &d.metadata)?;
            prepared.push((vector, meta));
            meta_texts.push(meta_text);
        }
        let delete_ids: Vec<&str> = deletes.iter().map(AsRef::as_ref).collect();
        for (i, id) in delete_ids.iter().enumerate() {
            check_id(i, id)?;
        }
        let writes: Vec<DocumentWrite<'_>> = docs
            .iter()
            .zip(&meta_texts)
            .map(|(d, meta)| DocumentWrite {
                id: &d.id,
                text: d.text.as_deref(),
                metadata: meta,
                vector: &d.vector,
            })
            .collect();
        let writer = self.state.engine.writer()?;
        self.check_live()?;
        let now = self.db.clock.now_ms();
        let receipt = self
            .db
            .store
            .prepare_write(&self.state.entry, &writes, &delete_ids, now)
            .and_then(|pending| pending.commit())
            .map_err(|e| self.storage_error(e))?;
        // Durable now; searches go on against the previous state until the engine applies it.
        let inserted = receipt
            .inserted
            .iter()
            .copied()
            .zip(prepared)
            .map(|(seq, (vector, meta))| (seq, vector, meta))
            .collect();
        let texts = if cfg.full_text_enabled() {
            let texts = receipt.inserted.iter().zip(docs);
            texts.filter_map(|(seq, d)| Some((*seq, d.text.clone()?))).collect()
        } else {
            Vec::new()
        };
        let change =
            Change { last_seq: receipt.last_seq, inserted, removed: receipt.removed, texts };
        let needs_optimize = writer.apply(change)?;
        if needs_optimize && !self.state.engine.optimizing() {
            self.db.maintenance.request_optimize(&self.state);
        }
        Ok(receipt.deleted)
    }

    /// Rebuilds the HNSW graph from the live vectors, dropping tombstones (removed or replaced
    /// documents still linked in the graph). Readers and writers keep going while the new graph
    /// is built; writes made meanwhile are applied to it before it takes over. Runs
    /// automatically in the background once tombstones exceed 25% of the graph (and 1,000).
    /// Saves the new index generation afterwards. Returns the number of tombstones cleared.
    pub fn optimize(&self) -> Result<usize> {
        self.check_live()?;
        prune_changes(&self.state, &self.db.store, self.db.clock.now_ms(), CHANGE_FEED_KEEP)?;
        self.state.optimize(self.db.maintenance.stopping())
    }

    /// Writes the index as a new generation beside the database (temp + fsync + rename), so the
    /// next open loads it instead of rebuilding the graph. Happens on its own after `optimize`
    /// and when the last `Database` handle is dropped with unsaved index changes.
    pub fn save_index(&self) -> Result<()> {
        self.check_live()?;
        self.state.save()
    }

    /// Fail point for tests of the lock policy: the next write of this collection panics while
    /// publishing its batch to the index (after its commit).
    #[doc(hidden)]
    pub fn fail_next_publish_for_tests(&self) {
        self.state.engine.fail_next_publish();
    }

    /// Index statistics: live vectors, graph tombstones.
    pub fn index_stats(&self) -> Result<IndexStats> {
        self.check_live()?;
        let applied = self.state.engine.read()?;
        Ok(IndexStats {
            live: applied.index().len(),
            tombstones: applied.index().tombstones(),
            unsaved_changes: self.state.engine.unsaved(),
        })
    }

    /// Fetches documents by id; `None` where absent. At most [`MAX_BATCH`] ids.
    pub fn get<S: AsRef<str>>(&self, ids: &[S]) -> Result<Vec<Option<Record>>> {
        self.check_live()?;
        if ids.len() > MAX_BATCH {
            return Err(Error::BatchTooLarge { len: ids.len(), max: MAX_BATCH });
        }
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        for (i, id) in ids.iter().enumerate() {
            check_id(i, id)?;
        }
        let snap = self.db.store.snapshot()?;
        let got = snap.get(&self.state.entry, &ids).map_err(|e| self.storage_error(e))?;
        got.into_iter()
            .map(|o| {
                o.map(|(_, doc, vector)| {
                    Ok(Record {
                        id: doc.id,
                        vector,
                        text: doc.text,
                        metadata: metadata::parse(&doc.metadata, &self.state.entry)?,
                    })
                })
                .transpose()
            })
            .collect()
    }

    /// Number of live documents.
    pub fn count(&self) -> Result<u64> {
        self.check_live()?;
        let snap = self.db.store.snapshot()?;
        snap.count(&self.state.entry).map_err(|e| self.storage_error(e))
    }

    /// The `k` documents nearest to `vector` among those matching `filter`, best first; `k` is
    /// 1 to [`crate::limits::MAX_K`]. Uses the HNSW index with the collection's `ef_search`,
    /// the filter applied during the graph walk; small collections and very selective filters
    /// are answered by an exact scan (see `akidb_index::HnswIndex`). Returns
    /// `min(k, matching documents)` hits.
    pub fn search(&self, vector: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.search_with(vector, k, filter, SearchParams::default()).map(|(h, _)| h)
    }

    /// [`Collection::search`] with per-query parameters (`ef`, or an exact scan); also reports
    /// which path answered.
    pub fn search_with(
        &self,
        vector: &[f32],
        k: usize,
        filter: Option<&Filter>,
        params: SearchParams,
    ) -> Result<(Vec<Hit>, SearchPath)> {
        self.check_request(k, filter, &params)?;
        let cfg = &self.state.config;
        let query = check_vector(vector, cfg.dimension, cfg.metric, || "query".into())?;
        self.answer(filter, |applied, plan| {
            let (neighbors, path) = applied.index().search_planned(&query, k, plan, params)?;
            let ranked = neighbors.into_iter().map(|n| Ranked::new(n.id, n.score)).collect();
            Ok((ranked, path))
        })
    }

    /// Runs `search` on the applied state with `filter` bound to it as a `FilterPlan` (the same
    /// plan for every side of a query), then reads the documents of its answer from one redb
    /// snapshot.
    pub(crate) fn answer<R>(
        &self,
        filter: Option<&Filter>,
        search: impl Fn(&Applied, Option<&FilterPlan<'_>>) -> Result<(Vec<Ranked>, R)>,
    ) -> Result<(Vec<Hit>, R)> {
        // The engine answers from the last write it applied; a commit may have landed in redb
        // since (its fsync does not block searches). Documents are immutable per sequence number,
        // so the answer is exactly the applied state's unless a hit was retired by such a commit:
        // then wait for that write to be applied and ask again.
        let mut attempts = 0;
        // A filter naming an undeclared field: its matches are found in storage first.
        let mut stored: Option<StoredMatches> = None;
        loop {
            let (found, snap) = {
                let applied = self.state.engine.read()?;
                let index = applied.index();
                let payload = applied.payload();
                let snap = self.db.store.snapshot()?;
                let found = match (filter, &stored) {
                    (None, _) => search(&applied, None)?,
                    (Some(f), Some(stored)) => {
                        let newer = self.newer_matches(stored, index, f, &snap)?;
                        let accepts = |seq: u64| stored.contains(seq, &newer);
                        let list = || stored.list(&newer);
                        let plan = FilterPlan {
                            accepts: &accepts,
                            selectivity: Some(stored.share(&newer, index.len())),
                            matching: Some(&list),
                        };
                        search(&applied, Some(&plan))?
                    }
                    (Some(f), None) => {
                        let plan = Plan::new(f, payload);
                        if !plan.covered(payload) {
                            drop((snap, applied));
                            stored = Some(self.stored_matches(f)?);
                            continue;
                        }
                        let accepts = |seq: u64| plan.accepts(payload, seq);
                        let list = || plan.matching(payload).collect();
                        let plan = FilterPlan {
                            accepts: &accepts,
                            selectivity: plan.estimate(payload),
                            matching: Some(&list),
                        };
                        search(&applied, Some(&plan))?
                    }
                };
                (found, snap)
            };
            let (ranked, extra) = found;
            let seqs: Vec<u64> = ranked.iter().map(|r| r.seq).collect();
            let docs = snap
                .documents_by_seq(&self.state.entry, &seqs)
                .map_err(|e| self.storage_error(e))?;
            drop(snap);
            if let Some(missing) = docs.iter().position(Option::is_none) {
                attempts += 1;
                if attempts < 8 {
                    self.state.engine.wait_for_writer()?;
                    continue;
                }
                return Err(Error::Storage(StorageError::Corrupt {
                    table: docs_table(&self.state.entry),
                    reason: format!("indexed sequence {} has no document", ranked[missing].seq),
                }));
            }
            let mut hits = Vec::with_capacity(docs.len());
            for (r, doc) in ranked.into_iter().zip(docs.into_iter().flatten()) {
                hits.push(Hit {
                    id: doc.id,
                    score: r.score,
                    text: doc.text,
                    metadata: metadata::parse(&doc.metadata, &self.state.entry)?,
                    explain: r.explain,
                });
            }
            return Ok((hits, extra));
        }
    }
}
