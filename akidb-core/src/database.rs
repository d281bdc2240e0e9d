//! [`Database`]: the registry of a process's open collections over one storage file.
//!
//! Opening a collection the first time loads it (`collection/load.rs`) outside the registry
//! lock, one loader per name, so opening one collection never waits for another's load. A drop
//! removes the collection from the registry and storage under the registry lock and after its
//! writers (`CollectionState::drop_with`). Dropping the last `Database` handle stops the
//! maintenance worker, then saves every loaded index with unsaved changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use std::time::{Duration, Instant};

use akidb_storage::{Storage, StorageError, StorageOptions};

use crate::clock::{Clock, SystemClock};
use crate::collection::{self, Collection, CollectionState};
use crate::maintenance::Maintenance;
use crate::schema::{self, CollectionConfig, Retention};
use crate::validate::{check_config, check_retention, validate_collection_name};
use crate::{Error, Result};

/// Options for opening a database; see [`Database::builder`].
///
/// Defaults: create the directory if missing; 64 MiB redb page cache; the system clock;
/// retention passes every 60 s.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseBuilder {
    storage: StorageOptions,
    clock: Arc<dyn Clock>,
    retention_interval: Duration,
}

impl Default for DatabaseBuilder {
    fn default() -> Self {
        Self {
            storage: StorageOptions::default(),
            clock: Arc::new(SystemClock),
            retention_interval: Duration::from_secs(60),
        }
    }
}

/// How long [`Database::compact`] waits for transactions in progress before giving up.
pub const COMPACT_WAIT: Duration = Duration::from_secs(30);

/// What [`Database::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CompactReport {
    /// File size before, in bytes.
    pub bytes_before: u64,
    /// File size after, in bytes.
    pub bytes_after: u64,
    /// How long the database was held (every read and write waited meanwhile).
    pub seconds: f64,
}

/// What [`Database::backup`] wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BackupReport {
    /// Rows copied (documents, vectors, keys and bookkeeping).
    pub rows: u64,
    /// How long the copy took (writers went on meanwhile).
    pub seconds: f64,
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
    /// The clock of insertion times and retention (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// How often retention passes run for open collections with a policy (default 60 s).
    pub fn with_retention_interval(mut self, interval: Duration) -> Self {
        self.retention_interval = interval;
        self
    }
    /// Opens the database directory at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        let store = Arc::new(Storage::open(path, &self.storage)?);
        let maintenance =
            Maintenance::new(store.clone(), self.clock.clone(), self.retention_interval);
        Ok(Database {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                store,
                clock: self.clock,
                collections: RwLock::new(HashMap::new()),
                loading: std::sync::Mutex::new(HashMap::new()),
                maintenance,
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

/// A model handed to [`Database::text_collection`] and its micro-batching worker, both weak:
/// the collections bound to the model keep the worker (and it the model) alive, the database
/// does not (a model registry can unload a model no collection handle uses).
pub(crate) type Batcher =
    (std::sync::Weak<dyn akidb_embed_api::Embedder>, std::sync::Weak<crate::BatchingEmbedder>);

pub(crate) struct DbInner {
    path: PathBuf,
    pub(crate) store: Arc<Storage>,
    /// The clock of insertion times and retention.
    pub(crate) clock: Arc<dyn Clock>,
    collections: RwLock<HashMap<String, Arc<CollectionState>>>,
    /// The background worker of automatic optimizes (see `maintenance.rs`).
    pub(crate) maintenance: Maintenance,
    /// One lock per collection being loaded (see [`Database::collection`]).
    loading: std::sync::Mutex<HashMap<String, Arc<std::sync::Mutex<()>>>>,
    /// One micro-batching worker per embedding model handed in and still in use (keyed by the
    /// `Arc`'s address).
    pub(crate) batchers: std::sync::Mutex<Vec<Batcher>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.inner.path).finish()
    }
}

/// The registry's own locks ignore poisoning: a panic under them cannot leave the map half
/// changed (each change is one insert or remove), unlike the collection state (see
/// `collection/engine.rs`).
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
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
        check_config(&config)?;
        let schema = schema::encode(name, &config)?;
        let mut map = write(&self.inner.collections);
        let entry = self.inner.store.create_collection(name, &schema).map_err(|e| match e {
            StorageError::CollectionExists { name } => Error::CollectionExists { name },
            e => e.into(),
        })?;
        let state =
            Arc::new(CollectionState::empty(entry, config, &self.inner.store, &self.inner.path));
        map.insert(name.to_string(), state.clone());
        drop(map);
        if state.retention().is_some() {
            self.inner.maintenance.watch_retention(&state);
        }
        Ok(Collection::new(self.inner.clone(), state))
    }

    /// Opens an existing collection. The first open in a process loads its vectors into memory.
    pub fn collection(&self, name: &str) -> Result<Collection> {
        validate_collection_name(name)?;
        let open =
            |state: &Arc<CollectionState>| Collection::new(self.inner.clone(), state.clone());
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
        let config = schema::decode(&entry)?;
        // A collection dropped by another handle while it loaded is not found.
        let state = collection::load(&self.inner.store, entry, config, &self.inner.path)
            .map_err(collection::map_load_error)?;
        // A drop holds the registry lock, so under it the same incarnation still being in
        // storage means no drop has happened since the load began (a later drop finds this
        // state in the registry and marks it dropped).
        let mut map = write(&self.inner.collections);
        if self.inner.store.collection(name)?.is_none_or(|e| e.id != id) {
            return Err(not_found());
        }
        let state = map.entry(name.to_string()).or_insert_with(|| Arc::new(state)).clone();
        drop(map);
        if state.retention().is_some() {
            self.inner.maintenance.watch_retention(&state);
        }
        Ok(state)
    }

    /// Sets (or, with `None`, removes) a collection's retention policy: stored in its schema,
    /// in force from now on (a pass runs soon after). Errors: [`Error::InvalidRetention`].
    pub fn set_retention(&self, name: &str, retention: Option<Retention>) -> Result<()> {
        if let Some(r) = &retention {
            check_retention(r)?;
        }
        let c = self.collection(name)?;
        let mut config = c.state.stored_config();
        config.retention = retention.clone();
        let stored = schema::encode(name, &config)?;
        // Under the commit lock: the schema is written in order with the collection's writes.
        c.state.under_commit_lock(|| {
            self.inner.store.update_schema(name, &stored).map_err(collection::map_storage_error)
        })?;
        c.state.set_retention(retention.clone());
        if retention.is_some() {
            self.inner.maintenance.watch_retention(&c.state);
        }
        Ok(())
    }

    /// Declares the payload indexes of collection `name` (see [`crate::FieldIndex`]), replacing
    /// those declared before: the fields filters read in memory; every other metadata field
    /// stays in storage only. The new columns are built from storage while writes to the
    /// collection wait (about a second per 100,000 documents; searches go on with the old
    /// ones), and the declaration is stored with the collection's schema. Declaring what is
    /// already in force does nothing, so an application can declare its indexes at every
    /// start. Errors:
    /// `InvalidIndex` (an empty or over-long field, a field twice, more than
    /// [`crate::limits::MAX_INDEXES`]), `CollectionNotFound`.
    pub fn set_indexes(&self, name: &str, indexes: Vec<crate::FieldIndex>) -> Result<()> {
        crate::validate::check_indexes(&indexes)?;
        let c = self.collection(name)?;
        if c.state.indexes() == indexes {
            return Ok(());
        }
        let mut config = c.state.stored_config();
        config.indexes = indexes.clone();
        let stored = schema::encode(name, &config)?;
        let store = &self.inner.store;
        let entry = &c.state.entry;
        c.state.replace_indexes(
            indexes.clone(),
            || collection::payload_from_storage(store, entry, &indexes),
            || store.update_schema(name, &stored).map_err(collection::map_storage_error),
        )
    }

    /// Writes a consistent copy of the whole database (all collections, one point in time) to
    /// the new directory `target`, while readers and writers go on. Open the copy like any
    /// database. Each collection's newest saved index generation that the copied data covers is
    /// copied too, so the copy loads its graphs (replaying what is newer) instead of rebuilding
    /// them; a generation that cannot be copied is logged and skipped (the copy then rebuilds
    /// that graph on first open). The copy is built
    /// beside `target` under a hidden name and renamed into place once durable, so a crash or
    /// an error never leaves a directory at `target` that looks finished. Errors: the target
    /// exists or lies inside this database's directory (`StorageError::BackupTarget`); disk
    /// full or other I/O (nothing left at `target`).
    pub fn backup(&self, target: impl AsRef<Path>) -> Result<BackupReport> {
        let started = Instant::now();
        let db_path = &self.inner.path;
        let rows = self.inner.store.backup(target.as_ref(), |partial, new_id, collections| {
            for &(id, last_seq) in collections {
                let from = collection::index_dir_of(db_path, id);
                let to = collection::index_dir_of(partial, id);
                if let Err(e) = akidb_index::persist::copy_for_backup(&from, &to, new_id, last_seq)
                {
                    log::warn!(
                        "backup: index of collection c{id} not copied (it will be rebuilt): {e}"
                    );
                }
            }
        })?;
        Ok(BackupReport { rows, seconds: started.elapsed().as_secs_f64() })
    }

    /// Gives the free space left by deletes back to the file system (redb compaction). Every
    /// read and write of the database waits while it runs (seconds per GB; see
    /// docs/benchmarks.md); it first waits up to [`COMPACT_WAIT`] for transactions in progress
    /// (a scroll or an export holds one) and fails with `StorageError::Busy` if they remain.
    pub fn compact(&self) -> Result<CompactReport> {
        let started = Instant::now();
        let (bytes_before, bytes_after) = self.inner.store.compact(COMPACT_WAIT)?;
        Ok(CompactReport { bytes_before, bytes_after, seconds: started.elapsed().as_secs_f64() })
    }

    /// Names and configurations of all collections, ordered by name.
    pub fn list_collections(&self) -> Result<Vec<(String, CollectionConfig)>> {
        self.inner
            .store
            .list_collections()?
            .into_iter()
            .map(|e| Ok((e.name.clone(), schema::decode(&e)?)))
            .collect()
    }

    /// Drops a collection and all its data. Handles still held return
    /// [`Error::CollectionNotFound`] afterwards.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        validate_collection_name(name)?;
        let mut map = write(&self.inner.collections);
        let state = map.remove(name);
        let entry = self.inner.store.collection(name)?;
        let drop_data = || match self.inner.store.drop_collection(name)? {
            true => Ok(()),
            false => Err(Error::CollectionNotFound { name: name.into() }),
        };
        match &state {
            Some(s) => s.drop_with(drop_data)?,
            None => drop_data()?,
        }
        if let Some(e) = entry {
            // The data is gone (committed above); the derived index files go best-effort.
            let _ = std::fs::remove_dir_all(collection::index_dir(&self.inner.path, &e));
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
            state.save_at_close();
        }
    }
}
