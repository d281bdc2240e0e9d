//! [`Database`] and [`Collection`]: the synchronous core API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use akidb_index::persist::{self, IndexIdentity, LoadOutcome};
use akidb_index::{FlatIndex, HnswIndex, SearchParams, SearchPath, VectorInsert, VectorSearch};
use akidb_storage::{CollectionEntry, DocumentWrite, Storage, StorageError, StorageOptions};
use serde_json::{Map, Value};

use crate::document::{
    check_id, check_metadata, check_stored_vector, check_text, check_vector, Document, Hit, Record,
};
use crate::filter::Filter;
use crate::limits::{MAX_BATCH, MAX_COLLECTION_NAME, MAX_DIMENSION, MAX_EF, MAX_K};
use crate::schema::{CollectionConfig, StoredSchema};
use crate::{Error, Result};

const SCHEMA_VERSION: u32 = 1;
/// Automatic optimize: tombstones must exceed this fraction of graph nodes...
pub const OPTIMIZE_TOMBSTONE_RATIO: f64 = 0.25;
/// ...and this count.
pub const OPTIMIZE_MIN_TOMBSTONES: usize = 1_000;

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

/// Options for opening a database; see [`Database::builder`].
///
/// Defaults: create the directory if missing; 64 MiB redb page cache.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DatabaseBuilder {
    storage: StorageOptions,
}

impl DatabaseBuilder {
    /// Whether to create a missing database directory (default `true`).
    pub fn with_create_if_missing(mut self, create: bool) -> Self {
        self.storage.create_if_missing = create;
        self
    }
    /// redb page cache in bytes (default 64 MiB).
    pub fn with_cache_size(mut self, bytes: usize) -> Self {
        self.storage.cache_size = bytes;
        self
    }
    /// Opens the database directory at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        let store = Storage::open(path, &self.storage)?;
        Ok(Database {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                store,
                collections: RwLock::new(HashMap::new()),
                loading: std::sync::Mutex::new(HashMap::new()),
                maintenance: crate::maintenance::Maintenance::new(),
                batchers: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }
}

/// An open database: a directory holding one redb file (and, later, index files).
///
/// `Database` is `Send + Sync` and cheap to clone (an `Arc`); every clone is the same database.
/// Reads run during writes: a search waits only while a committed write is applied to the
/// in-memory index (not during its fsync); `get` and `count` read a redb snapshot and never wait.
///
/// Only one process may open a database at a time; a second gets an error for which
/// [`Error::is_locked`] is true.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

/// A model handed to [`Database::text_collection`] and its micro-batching worker.
pub(crate) type Batcher = (Arc<dyn akidb_embed_api::Embedder>, Arc<crate::BatchingEmbedder>);

pub(crate) struct DbInner {
    path: PathBuf,
    pub(crate) store: Storage,
    collections: RwLock<HashMap<String, Arc<CollectionState>>>,
    /// The background worker of automatic optimizes (see `maintenance.rs`).
    pub(crate) maintenance: crate::maintenance::Maintenance,
    /// One lock per collection being loaded (see [`Database::collection`]).
    loading: std::sync::Mutex<HashMap<String, Arc<std::sync::Mutex<()>>>>,
    /// One micro-batching worker per embedding model handed in (keyed by the `Arc`'s address).
    pub(crate) batchers: std::sync::Mutex<Vec<Batcher>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.inner.path).finish()
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a collection name: `[A-Za-z0-9_-]{1,64}`.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COLLECTION_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidCollectionName { name: name.chars().take(100).collect() })
    }
}

impl Database {
    /// Opens (creating if missing) the database directory at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().open(path)
    }

    /// A builder with documented defaults.
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Creates a collection.
    pub fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Collection> {
        validate_collection_name(name)?;
        if config.dimension == 0 || config.dimension > MAX_DIMENSION {
            return Err(Error::InvalidDimension {
                dimension: config.dimension,
                max: MAX_DIMENSION,
            });
        }
        let h = config.hnsw;
        if h.validate().is_err() {
            return Err(Error::InvalidIndexParams {
                m: h.m,
                ef_construction: h.ef_construction,
                ef_search: h.ef_search,
            });
        }
        let schema = serde_json::to_vec(&StoredSchema {
            schema_version: SCHEMA_VERSION,
            config: config.clone(),
        })
        .map_err(|source| Error::CorruptSchema { name: name.into(), source })?;
        let mut map = write(&self.inner.collections);
        let entry = self.inner.store.create_collection(name, &schema).map_err(|e| match e {
            StorageError::CollectionExists { name } => Error::CollectionExists { name },
            e => e.into(),
        })?;
        let state =
            Arc::new(CollectionState::empty(entry, config, &self.inner.store, &self.inner.path));
        map.insert(name.to_string(), state.clone());
        Ok(Collection { db: self.inner.clone(), state, embedder: None })
    }

    /// Opens an existing collection. The first open in a process loads its vectors into memory.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        validate_collection_name(name)?;
        let open = |state: &Arc<CollectionState>| Collection {
            db: self.inner.clone(),
            state: state.clone(),
            embedder: None,
        };
        if let Some(state) = read(&self.inner.collections).get(name) {
            return Ok(open(state));
        }
        // The load (a scan of the collection, maybe a graph rebuild) runs outside the registry
        // lock, so other collections open meanwhile; one load per name at a time.
        let loading = {
            let mut l = self.inner.loading.lock().unwrap_or_else(PoisonError::into_inner);
            l.entry(name.to_string()).or_default().clone()
        };
        let one_loader = loading.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.load_collection(name);
        drop(one_loader);
        self.inner.loading.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
        result.map(|state| open(&state))
    }

    /// [`Database::collection`]'s load, under the collection's loading lock.
    fn load_collection(&self, name: &str) -> Result<Arc<CollectionState>> {
        if let Some(state) = read(&self.inner.collections).get(name) {
            return Ok(state.clone());
        }
        let not_found = || Error::CollectionNotFound { name: name.into() };
        let entry = self.inner.store.collection(name)?.ok_or_else(not_found)?;
        let id = entry.id;
        let config = decode_schema(&entry)?;
        let state = CollectionState::load(&self.inner.store, entry, config, &self.inner.path)
            .map_err(|e| match e {
                // Dropped by another handle while it loaded.
                Error::Storage(StorageError::CollectionNotFound { name }) => {
                    Error::CollectionNotFound { name }
                }
                e => e,
            })?;
        // A drop holds the registry lock, so under it the same incarnation still being in
        // storage means no drop has happened since the load began (a later drop finds this
        // state in the registry and marks it dropped).
        let mut map = write(&self.inner.collections);
        if self.inner.store.collection(name)?.is_none_or(|e| e.id != id) {
            return Err(not_found());
        }
        Ok(map.entry(name.to_string()).or_insert_with(|| Arc::new(state)).clone())
    }

    /// Names and configurations of all collections, ordered by name.
    pub fn list_collections(&self) -> Result<Vec<(String, CollectionConfig)>> {
        self.inner
            .store
            .list_collections()?
            .into_iter()
            .map(|e| Ok((e.name.clone(), decode_schema(&e)?)))
            .collect()
    }

    /// Drops a collection and all its data. Handles still held return
    /// [`Error::CollectionNotFound`] afterwards.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        validate_collection_name(name)?;
        let mut map = write(&self.inner.collections);
        let state = map.remove(name);
        // Writers of this collection hold its commit lock: taking it orders the drop after them.
        let commit =
            state.as_ref().map(|s| s.commit.lock().unwrap_or_else(PoisonError::into_inner));
        let entry = self.inner.store.collection(name)?;
        if !self.inner.store.drop_collection(name)? {
            return Err(Error::CollectionNotFound { name: name.into() });
        }
        if let Some(s) = &state {
            s.dropped.store(true, Ordering::Release);
        }
        drop(commit);
        if let Some(e) = entry {
            // The data is gone (committed above); the derived index files go best-effort.
            let _ =
                std::fs::remove_dir_all(self.inner.path.join("index").join(format!("c{}", e.id)));
        }
        Ok(())
    }
}

impl Drop for DbInner {
    /// Saves the index of every loaded collection with unsaved changes, so the next open loads
    /// the graph instead of rebuilding it. Failures are logged: the index is derived data.
    fn drop(&mut self) {
        // No optimize may run on (or keep open) a database being closed.
        self.maintenance.shutdown();
        let map = self.collections.get_mut().unwrap_or_else(PoisonError::into_inner);
        for state in map.values() {
            if state.dropped.load(Ordering::Relaxed) || state.unsaved.load(Ordering::Relaxed) == 0 {
                continue;
            }
            if state.is_poisoned() {
                log::warn!(
                    "not saving the index of {}: a panic interrupted an update of it",
                    state.entry.name
                );
                continue;
            }
            if let Err(e) = state.save() {
                log::warn!(
                    "saving the index of {} failed (it will be rebuilt on open): {e}",
                    state.entry.name
                );
            }
        }
    }
}

fn decode_schema(entry: &CollectionEntry) -> Result<CollectionConfig> {
    let s: StoredSchema = serde_json::from_slice(&entry.schema)
        .map_err(|source| Error::CorruptSchema { name: entry.name.clone(), source })?;
    Ok(s.config)
}

/// In-memory state of an open collection.
pub(crate) struct CollectionState {
    entry: CollectionEntry,
    pub(crate) config: CollectionConfig,
    live: RwLock<Live>,
    /// Held by a writer from staging its transaction until the index reflects it, so that writes
    /// of this collection reach the index in commit order. Readers never take it: the fsync of a
    /// commit does not block searches (see [`Collection::search_with`]).
    commit: std::sync::Mutex<()>,
    dropped: AtomicBool,
    /// Where this collection's index generations live.
    index_dir: PathBuf,
    /// The database's identity, recorded in index generations (see `akidb_index::persist`).
    database_id: [u8; 16],
    /// The model digest recorded in this process for a collection whose schema had none.
    adopted_digest: std::sync::OnceLock<String>,
    /// Writes since the index was last saved.
    unsaved: std::sync::atomic::AtomicU64,
    /// An optimize (graph rebuild) is running.
    optimizing: AtomicBool,
    /// An automatic optimize is queued for the maintenance worker.
    pub(crate) optimize_queued: AtomicBool,
    /// Fail point for the lock-poisoning test: the next write panics while publishing.
    fail_next_publish: AtomicBool,
}

/// What searches read: the index and the metadata of every live document, keyed by sequence
/// number. It always reflects exactly the last committed write.
struct Live {
    index: HnswIndex,
    metadata: HashMap<u64, Map<String, Value>>,
    /// The sequence number of the last write the index reflects.
    applied_seq: u64,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Live {
    fn metadata(&self, seq: u64) -> &Map<String, Value> {
        self.metadata.get(&seq).unwrap_or(&EMPTY)
    }
}

impl CollectionState {
    fn empty(
        entry: CollectionEntry,
        config: CollectionConfig,
        store: &Storage,
        db_path: &Path,
    ) -> Self {
        let index = HnswIndex::new(config.dimension, config.metric, config.hnsw);
        let index_dir = db_path.join("index").join(format!("c{}", entry.id));
        Self {
            entry,
            config,
            live: RwLock::new(Live { index, metadata: HashMap::new(), applied_seq: 0 }),
            commit: std::sync::Mutex::new(()),
            dropped: AtomicBool::new(false),
            index_dir,
            database_id: store.database_id(),
            adopted_digest: std::sync::OnceLock::new(),
            unsaved: std::sync::atomic::AtomicU64::new(0),
            optimizing: AtomicBool::new(false),
            optimize_queued: AtomicBool::new(false),
            fail_next_publish: AtomicBool::new(false),
        }
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

    pub(crate) fn name(&self) -> &str {
        &self.entry.name
    }

    /// Whether a panic interrupted an update of the index state (the lock policy in
    /// ARCHITECTURE.md: the collection then refuses index work until the database is reopened).
    fn is_poisoned(&self) -> bool {
        self.live.is_poisoned() || self.commit.is_poisoned()
    }

    fn poisoned(&self) -> Error {
        Error::Poisoned { collection: self.name().into() }
    }

    /// The index state for reading, unless poisoned.
    fn live(&self) -> Result<RwLockReadGuard<'_, Live>> {
        if self.commit.is_poisoned() {
            return Err(self.poisoned());
        }
        self.live.read().map_err(|_| self.poisoned())
    }

    /// The index state for updating, unless poisoned.
    fn live_mut(&self) -> Result<RwLockWriteGuard<'_, Live>> {
        if self.commit.is_poisoned() {
            return Err(self.poisoned());
        }
        self.live.write().map_err(|_| self.poisoned())
    }

    /// The commit lock (see [`CollectionState::commit`]), unless poisoned.
    fn commit_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        if self.live.is_poisoned() {
            return Err(self.poisoned());
        }
        self.commit.lock().map_err(|_| self.poisoned())
    }

    fn not_found(&self) -> Error {
        Error::CollectionNotFound { name: self.name().into() }
    }

    /// See [`Collection::optimize`]; stops early (an error) once `cancel` is set or the
    /// collection is dropped.
    pub(crate) fn optimize(&self, cancel: &AtomicBool) -> Result<usize> {
        if self.optimizing.swap(true, Ordering::AcqRel) {
            return Ok(0); // one at a time; the running one does the work
        }
        struct Reset<'a>(&'a AtomicBool);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _reset = Reset(&self.optimizing);
        let (snapshot, before) = {
            let live = self.live()?;
            (live.index.flat().clone(), live.index.tombstones())
        };
        let snapshot_ids: std::collections::HashSet<u64> = snapshot.ids().iter().copied().collect();
        let stop = || self.dropped.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed);
        let Some(mut fresh) =
            HnswIndex::rebuild_from(snapshot, self.config.hnsw, &stop, &mut |_, _| {})
        else {
            // Stopped: the collection was dropped, or the database is closing (nothing to do).
            return if self.dropped.load(Ordering::Acquire) {
                Err(self.not_found())
            } else {
                Ok(0)
            };
        };
        {
            let mut live = self.live_mut()?;
            if self.dropped.load(Ordering::Acquire) {
                return Err(self.not_found());
            }
            // Catch up with writes made while building.
            let current = live.index.flat();
            let removed: Vec<u64> =
                snapshot_ids.iter().copied().filter(|id| !current.contains(*id)).collect();
            let added: Vec<(u64, Vec<f32>)> = current
                .items()
                .filter(|(id, _)| !snapshot_ids.contains(id))
                .map(|(id, v)| (id, v.to_vec()))
                .collect();
            fresh.remove(&removed);
            let refs: Vec<(u64, &[f32])> =
                added.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            fresh.insert(&refs)?;
            live.index = fresh;
        }
        if self.dropped.load(Ordering::Acquire) {
            return Err(self.not_found());
        }
        self.save()?;
        Ok(before)
    }

    /// Writes the index as a new generation covering the last committed write.
    fn save(&self) -> Result<()> {
        // The commit lock keeps out writes, whose batches sit in the graph unlinked or half
        // linked while they are being linked; the read lock pins the index at the write it
        // last applied.
        let _commit = self.commit_lock()?;
        let live = self.live()?;
        let covered = live.applied_seq;
        let unsaved = self.unsaved.swap(0, Ordering::AcqRel);
        if let Err(e) = persist::save(&live.index, &self.index_dir, &self.identity(), covered) {
            self.unsaved.fetch_add(unsaved, Ordering::AcqRel);
            return Err(Error::IndexPersist(e));
        }
        Ok(())
    }

    fn identity(&self) -> IndexIdentity {
        IndexIdentity {
            database_id: self.database_id,
            collection_id: self.entry.id,
            dimension: self.config.dimension,
            metric: self.config.metric,
            params: self.config.hnsw,
        }
    }

    /// Loads vectors and metadata from storage, then the newest valid index generation (brought
    /// up to date), or rebuilds the graph when there is none.
    fn load(
        store: &Storage,
        entry: CollectionEntry,
        config: CollectionConfig,
        db_path: &Path,
    ) -> Result<Self> {
        let state = Self::empty(entry, config, store, db_path);
        {
            let mut live = write(&state.live);
            let snap = store.snapshot()?;
            let last_seq = snap.last_seq(&state.entry)?;
            live.applied_seq = last_seq;
            let (dim, metric) = (state.config.dimension, state.config.metric);
            let mut ids = Vec::new();
            let mut vectors: Vec<f32> = Vec::new();
            let mut failure = None;
            snap.scan(&state.entry, 0, |seq, doc, v| {
                let prepared =
                    check_stored_vector(v, dim, metric, || format!("stored under sequence {seq}"));
                let meta = serde_json::from_str::<Map<String, Value>>(&doc.metadata);
                match (prepared, meta) {
                    (Ok(p), Ok(m)) => {
                        ids.push(seq);
                        vectors.extend_from_slice(&p);
                        if !m.is_empty() {
                            live.metadata.insert(seq, m);
                        }
                        true
                    }
                    (Err(e), _) => {
                        failure = Some(e);
                        false
                    }
                    (_, Err(e)) => {
                        failure = Some(Error::Storage(StorageError::Corrupt {
                            table: docs_table(&state.entry),
                            reason: format!("metadata of sequence {seq}: {e}"),
                        }));
                        false
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            let items: Vec<(u64, &[f32])> =
                ids.iter().copied().zip(vectors.chunks_exact(dim)).collect();
            let mut flat = FlatIndex::new(dim, metric);
            flat.insert(&items)?;
            drop(items);
            drop(vectors);
            let name = &state.entry.name;
            live.index = match persist::load(&state.index_dir, &state.identity(), flat, last_seq) {
                LoadOutcome::Loaded { index, covered_seq, replayed, tombstoned } => {
                    log::info!(
                        "collection {name}: index generation covering sequence {covered_seq} loaded; \
                         {replayed} newer vectors replayed, {tombstoned} removed ones tombstoned"
                    );
                    if replayed + tombstoned > 0 {
                        state.unsaved.store((replayed + tombstoned) as u64, Ordering::Relaxed);
                    }
                    *index
                }
                LoadOutcome::Rebuild { reason, flat } => {
                    let n = flat.len();
                    if n > 0 {
                        log::info!(
                            "collection {name}: rebuilding the index over {n} vectors ({reason})"
                        );
                        state.unsaved.store(n as u64, Ordering::Relaxed);
                    }
                    let mut last_log = std::time::Instant::now();
                    let mut progress = |done: usize, total: usize| {
                        if last_log.elapsed().as_secs() >= 5 {
                            log::info!("collection {name}: index rebuild {done}/{total}");
                            last_log = std::time::Instant::now();
                        }
                    };
                    HnswIndex::rebuild_from(flat, state.config.hnsw, &|| false, &mut progress)
                        .unwrap_or_else(|| HnswIndex::new(dim, metric, state.config.hnsw))
                }
            };
        }
        Ok(state)
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
    /// The collection name.
    pub fn name(&self) -> &str {
        &self.state.entry.name
    }

    /// The configuration fixed at creation.
    pub fn config(&self) -> &CollectionConfig {
        &self.state.config
    }

    /// Records `model`'s digest in a collection whose schema predates digests (its model was
    /// matched by name and settings), so that from now on only that content matches.
    pub(crate) fn adopt_model_digest(&self, model: &crate::ModelIdentity) -> Result<()> {
        let Some(digest) = model.digest.clone() else { return Ok(()) };
        let mut config = self.state.config.clone();
        let _commit = self.state.commit_lock()?;
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
        let schema = serde_json::to_vec(&StoredSchema { schema_version: SCHEMA_VERSION, config })
            .map_err(|source| Error::CorruptSchema { name: self.name().into(), source })?;
        self.db.store.update_schema(self.name(), &schema).map_err(|e| self.storage_error(e))?;
        let _ = self.state.adopted_digest.set(digest);
        log::info!("collection {}: recorded the digest of its model {}", self.name(), model.name);
        Ok(())
    }

    /// Checks what every search takes: a live collection, `k` in range, a valid filter and `ef`.
    pub(crate) fn check_request(
        &self,
        k: usize,
        filter: Option<&Filter>,
        params: &SearchParams,
    ) -> Result<()> {
        self.check_live()?;
        if k == 0 || k > MAX_K {
            return Err(Error::InvalidK { k, max: MAX_K });
        }
        if let Some(ef) = params.ef.filter(|ef| *ef == 0 || *ef > MAX_EF) {
            return Err(Error::InvalidEf { ef, max: MAX_EF });
        }
        if let Some(f) = filter {
            f.validate()?;
        }
        Ok(())
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.state.dropped.load(Ordering::Acquire) {
            return Err(Error::CollectionNotFound { name: self.name().into() });
        }
        Ok(())
    }

    fn storage_error(&self, e: StorageError) -> Error {
        match e {
            StorageError::CollectionNotFound { name } => Error::CollectionNotFound { name },
            e => e.into(),
        }
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
        struct Checked {
            prepared: Vec<f32>,
            meta_text: String,
            meta: Map<String, Value>,
        }
        let mut checked = Vec::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            check_id(i, &d.id)?;
            check_text(&d.id, d.text.as_deref())?;
            let prepared = check_vector(&d.vector, cfg.dimension, cfg.metric, || {
                format!("of document {:?}", d.id)
            })?;
            let (meta_text, meta) = check_metadata(&d.id, &d.metadata)?;
            checked.push(Checked { prepared, meta_text, meta });
        }
        let delete_ids: Vec<&str> = deletes.iter().map(AsRef::as_ref).collect();
        for (i, id) in delete_ids.iter().enumerate() {
            check_id(i, id)?;
        }
        let writes: Vec<DocumentWrite<'_>> = docs
            .iter()
            .zip(&checked)
            .map(|(d, c)| DocumentWrite {
                id: &d.id,
                text: d.text.as_deref(),
                metadata: &c.meta_text,
                vector: &d.vector,
            })
            .collect();
        let commit = self.state.commit_lock()?;
        self.check_live()?;
        let receipt = self
            .db
            .store
            .prepare_write(&self.state.entry, &writes, &delete_ids)
            .and_then(|pending| pending.commit())
            .map_err(|e| self.storage_error(e))?;
        // Durable now; searches go on against the previous state until the index takes it.
        let retired: std::collections::HashSet<u64> = receipt.removed.iter().copied().collect();
        let mut items = Vec::with_capacity(checked.len());
        let mut metadata = Vec::new();
        for (seq, c) in receipt.inserted.iter().copied().zip(checked) {
            if retired.contains(&seq) {
                continue; // superseded within this batch
            }
            if !c.meta.is_empty() {
                metadata.push((seq, c.meta));
            }
            items.push((seq, c.prepared));
        }
        let added = items.len();
        // The batch enters the graph in three steps so that searches are not held up while it
        // is linked (the longest part): added unlinked (write lock, brief), linked (read lock:
        // searches run, never returning the new ids), published together with the removals
        // (write lock, brief). Readers see the state before the write or after it, never
        // between. The commit lock, held throughout, keeps out other writes and index saves.
        let staged = self.state.live_mut()?.index.stage(items)?;
        self.state.live()?.index.link(&staged);
        let mut live = self.state.live_mut()?;
        if self.state.fail_next_publish.swap(false, Ordering::AcqRel) {
            panic!("fail point: a panic while publishing a batch");
        }
        live.applied_seq = live.applied_seq.max(receipt.last_seq);
        live.index.remove(&receipt.removed);
        for seq in &receipt.removed {
            live.metadata.remove(seq);
        }
        live.metadata.extend(metadata);
        live.index.publish(staged)?;
        self.state.unsaved.fetch_add((added + receipt.removed.len()) as u64, Ordering::Relaxed);
        let needs_optimize = live.index.tombstones() >= OPTIMIZE_MIN_TOMBSTONES
            && live.index.tombstone_ratio() > OPTIMIZE_TOMBSTONE_RATIO;
        drop(live);
        drop(commit);
        if needs_optimize && !self.state.optimizing.load(Ordering::Relaxed) {
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
        self.state.fail_next_publish.store(true, Ordering::Release);
    }

    /// Index statistics: live vectors, graph tombstones.
    pub fn index_stats(&self) -> Result<IndexStats> {
        self.check_live()?;
        let live = self.state.live()?;
        Ok(IndexStats {
            live: live.index.len(),
            tombstones: live.index.tombstones(),
            unsaved_changes: self.state.unsaved.load(Ordering::Relaxed),
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
                        metadata: parse_meta(&doc.metadata, &self.state.entry)?,
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
    /// 1 to [`MAX_K`]. Uses the HNSW index with the collection's `ef_search`, the filter applied
    /// during the graph walk; small collections and very selective filters are answered by an
    /// exact scan (see `akidb_index::HnswIndex`). Returns `min(k, matching documents)` hits.
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
        // The index answers from the last write it applied; a commit may have landed in redb
        // since (its fsync does not block searches). Documents are immutable per sequence number,
        // so the answer is exactly the applied state's unless a hit was retired by such a commit:
        // then wait for that write to reach the index and ask again.
        let mut attempts = 0;
        loop {
            let (neighbors, snap) = {
                let live = self.state.live()?;
                let pred = |seq: u64| filter.is_none_or(|f| f.matches(live.metadata(seq)));
                let n = match filter {
                    Some(_) => live.index.search_with(&query, k, Some(&pred), params)?,
                    None => live.index.search_with(&query, k, None, params)?,
                };
                (n, self.db.store.snapshot()?)
            };
            let (neighbors, path) = neighbors;
            let seqs: Vec<u64> = neighbors.iter().map(|n| n.id).collect();
            let docs = snap
                .documents_by_seq(&self.state.entry, &seqs)
                .map_err(|e| self.storage_error(e))?;
            drop(snap);
            if let Some(missing) = docs.iter().position(Option::is_none) {
                attempts += 1;
                if attempts < 8 {
                    // The write that retired it holds the commit lock until the index has it.
                    drop(self.state.commit_lock()?);
                    continue;
                }
                return Err(Error::Storage(StorageError::Corrupt {
                    table: docs_table(&self.state.entry),
                    reason: format!("indexed sequence {} has no document", neighbors[missing].id),
                }));
            }
            let mut hits = Vec::with_capacity(docs.len());
            for (n, doc) in neighbors.into_iter().zip(docs.into_iter().flatten()) {
                hits.push(Hit {
                    id: doc.id,
                    score: n.score,
                    text: doc.text,
                    metadata: parse_meta(&doc.metadata, &self.state.entry)?,
                });
            }
            return Ok((hits, path));
        }
    }
}

/// The table a collection's documents live in (as `akidb_storage` names it), for errors.
fn docs_table(entry: &CollectionEntry) -> String {
    format!("c{}_docs", entry.id)
}

fn parse_meta(text: &str, entry: &CollectionEntry) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        Error::Storage(StorageError::Corrupt {
            table: docs_table(entry),
            reason: format!("metadata: {e}"),
        })
    })
}
