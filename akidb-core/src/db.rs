//! [`Database`] and [`Collection`]: the synchronous core API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use akidb_index::{FlatIndex, VectorInsert, VectorSearch};
use akidb_storage::{CollectionEntry, DocumentWrite, Storage, StorageError, StorageOptions};
use serde_json::{Map, Value};

use crate::document::{check_id, check_metadata, check_text, check_vector, Document, Hit, Record};
use crate::filter::Filter;
use crate::limits::{MAX_BATCH, MAX_COLLECTION_NAME, MAX_DIMENSION, MAX_K};
use crate::schema::{CollectionConfig, StoredSchema};
use crate::{Error, Result};

const SCHEMA_VERSION: u32 = 1;

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
                batchers: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }
}

/// An open database: a directory holding one redb file (and, later, index files).
///
/// `Database` is `Send + Sync` and cheap to clone (an `Arc`); every clone is the same database.
/// Reads never wait for writes except during the few milliseconds of a commit.
///
/// Only one process may open a database at a time; a second gets an error for which
/// [`Error::is_locked`] is true.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

/// A model handed to [`Database::text_collection`] and its micro-batching worker.
pub(crate) type Batcher = (Arc<dyn akidb_embedding::Embedder>, Arc<crate::BatchingEmbedder>);

pub(crate) struct DbInner {
    path: PathBuf,
    pub(crate) store: Storage,
    collections: RwLock<HashMap<String, Arc<CollectionState>>>,
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
            return Err(Error::InvalidDimension { dimension: config.dimension, max: MAX_DIMENSION });
        }
        let schema = serde_json::to_vec(&StoredSchema { schema_version: SCHEMA_VERSION, config: config.clone() })
            .map_err(|source| Error::CorruptSchema { name: name.into(), source })?;
        let mut map = write(&self.inner.collections);
        let entry = self.inner.store.create_collection(name, &schema).map_err(|e| match e {
            StorageError::CollectionExists { name } => Error::CollectionExists { name },
            e => e.into(),
        })?;
        let state = Arc::new(CollectionState::empty(entry, config));
        map.insert(name.to_string(), state.clone());
        Ok(Collection { db: self.inner.clone(), state, embedder: None })
    }

    /// Opens an existing collection. The first open in a process loads its vectors into memory.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        validate_collection_name(name)?;
        if let Some(state) = read(&self.inner.collections).get(name) {
            return Ok(Collection { db: self.inner.clone(), state: state.clone(), embedder: None });
        }
        let mut map = write(&self.inner.collections);
        if let Some(state) = map.get(name) {
            return Ok(Collection { db: self.inner.clone(), state: state.clone(), embedder: None });
        }
        let entry = self
            .inner
            .store
            .collection(name)?
            .ok_or_else(|| Error::CollectionNotFound { name: name.into() })?;
        let config = decode_schema(&entry)?;
        let state = Arc::new(CollectionState::load(&self.inner.store, entry, config)?);
        map.insert(name.to_string(), state.clone());
        Ok(Collection { db: self.inner.clone(), state, embedder: None })
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
        // Writers of this collection commit under its live lock: taking it orders the drop after them.
        let live = state.as_ref().map(|s| write(&s.live));
        if !self.inner.store.drop_collection(name)? {
            return Err(Error::CollectionNotFound { name: name.into() });
        }
        if let Some(s) = &state {
            s.dropped.store(true, Ordering::Release);
        }
        drop(live);
        Ok(())
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
    dropped: AtomicBool,
}

/// What searches read: the index and the metadata of every live document, keyed by sequence
/// number. It always reflects exactly the last committed write.
struct Live {
    index: FlatIndex,
    metadata: HashMap<u64, Map<String, Value>>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Live {
    fn metadata(&self, seq: u64) -> &Map<String, Value> {
        self.metadata.get(&seq).unwrap_or(&EMPTY)
    }
}

impl CollectionState {
    fn empty(entry: CollectionEntry, config: CollectionConfig) -> Self {
        let index = FlatIndex::new(config.dimension, config.metric);
        Self {
            entry,
            config,
            live: RwLock::new(Live { index, metadata: HashMap::new() }),
            dropped: AtomicBool::new(false),
        }
    }

    fn load(store: &Storage, entry: CollectionEntry, config: CollectionConfig) -> Result<Self> {
        let state = Self::empty(entry, config);
        {
            let mut live = write(&state.live);
            let snap = store.snapshot()?;
            let (dim, metric) = (state.config.dimension, state.config.metric);
            let mut ids = Vec::new();
            let mut vectors: Vec<f32> = Vec::new();
            let mut failure = None;
            snap.scan(&state.entry, 0, |seq, doc, v| {
                let prepared = check_vector(v, dim, metric, || format!("stored under sequence {seq}"));
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
                            table: format!("c{}_docs", state.entry.id),
                            reason: format!("metadata of sequence {seq}: {e}"),
                        }));
                        false
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            let items: Vec<(u64, &[f32])> = ids.iter().copied().zip(vectors.chunks_exact(dim)).collect();
            live.index.insert(&items)?;
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
    pub(crate) embedder: Option<Arc<dyn akidb_embedding::Embedder>>,
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
            let prepared = check_vector(&d.vector, cfg.dimension, cfg.metric, || format!("of document {:?}", d.id))?;
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
        let pending = self
            .db
            .store
            .prepare_write(&self.state.entry, &writes, &delete_ids)
            .map_err(|e| self.storage_error(e))?;
        // Commit under the live lock, so a reader always sees the index and redb at the same write.
        let mut live = write(&self.state.live);
        self.check_live()?;
        let receipt = pending.commit().map_err(|e| self.storage_error(e))?;
        let retired: std::collections::HashSet<u64> = receipt.removed.iter().copied().collect();
        live.index.remove(&receipt.removed);
        for seq in &receipt.removed {
            live.metadata.remove(seq);
        }
        let mut items = Vec::with_capacity(checked.len());
        for (seq, mut c) in receipt.inserted.iter().copied().zip(checked) {
            if retired.contains(&seq) {
                continue; // superseded within this batch
            }
            if !c.meta.is_empty() {
                live.metadata.insert(seq, std::mem::take(&mut c.meta));
            }
            items.push((seq, c.prepared));
        }
        let refs: Vec<(u64, &[f32])> = items.iter().map(|(s, v)| (*s, v.as_slice())).collect();
        live.index.insert(&refs)?;
        Ok(receipt.deleted)
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
                    Ok(Record { id: doc.id, vector, text: doc.text, metadata: parse_meta(&doc.metadata)? })
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

    /// The `k` documents nearest to `vector` among those matching `filter`, best first.
    ///
    /// Exact search (a parallel scan); `k` is 1 to [`MAX_K`].
    pub fn search(&self, vector: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.check_live()?;
        if k == 0 || k > MAX_K {
            return Err(Error::InvalidK { k, max: MAX_K });
        }
        if let Some(f) = filter {
            f.validate()?;
        }
        let cfg = &self.state.config;
        let query = check_vector(vector, cfg.dimension, cfg.metric, || "query".into())?;
        let (neighbors, snap) = {
            let live = read(&self.state.live);
            let snap = self.db.store.snapshot()?;
            let pred = |seq: u64| filter.is_none_or(|f| f.matches(live.metadata(seq)));
            let n = match filter {
                Some(_) => live.index.search(&query, k, Some(&pred))?,
                None => live.index.search(&query, k, None)?,
            };
            (n, snap)
        };
        let seqs: Vec<u64> = neighbors.iter().map(|n| n.id).collect();
        let docs = snap.documents_by_seq(&self.state.entry, &seqs).map_err(|e| self.storage_error(e))?;
        let mut hits = Vec::with_capacity(docs.len());
        for (n, doc) in neighbors.into_iter().zip(docs) {
            let doc = doc.ok_or_else(|| {
                Error::Storage(StorageError::Corrupt {
                    table: format!("c{}_docs", self.state.entry.id),
                    reason: format!("indexed sequence {} has no document", n.id),
                })
            })?;
            hits.push(Hit { id: doc.id, score: n.score, text: doc.text, metadata: parse_meta(&doc.metadata)? });
        }
        Ok(hits)
    }
}

fn parse_meta(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        Error::Storage(StorageError::Corrupt { table: "docs".into(), reason: format!("metadata: {e}") })
    })
}
