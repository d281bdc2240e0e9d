//! AkiDB storage: the redb file that is the single source of truth.
//!
//! A database is a directory; this crate owns the file `akidb.redb` inside it. Everything that
//! matters lives there: the format version, the collections and their (opaque) schemas, every
//! document (user id, text, metadata JSON) and every vector, keyed by a per-collection sequence
//! number. Indexes built from it elsewhere are caches.
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `akidb_meta` | `&str` | `magic`, `format_version`, `next_collection_id`, `database_id` |
//! | `akidb_collections` | name | bincode [`CollectionEntry`] (id + schema bytes) |
//! | `akidb_sequences` | collection id | last sequence number assigned |
//! | `c{id}_keys` | user id | sequence number of the live version |
//! | `c{id}_docs` | sequence number | bincode record: user id, text, metadata JSON |
//! | `c{id}_vecs` | sequence number | vector as raw little-endian f32 |
//! | `c{id}_deletes` | sequence number of the delete | bincode: user id, retired number, unix ms |
//! | `akidb_commit_times` | (collection id, last sequence number of a write) | unix ms |
//! | `akidb_feed_horizons` | collection id | the change feed's horizon (see below) |
//!
//! `akidb_meta` holds `magic` = `akidb`, `format_version` = u32 LE, `next_collection_id` = u64
//! LE and `database_id` = 16 random bytes.
//!
//! Every write of a document gets a fresh sequence number, so sequence numbers double as the
//! internal ids of the vector index: an upsert retires the old number and the index tombstones it.
//! An index that covers sequence numbers up to `S` is brought up to date by replaying
//! `c{id}_vecs` after `S` and dropping every number it holds that is no longer in `c{id}_vecs`.
//!
//! # The change feed
//!
//! Every committed change of a collection has a sequence number, in commit order: an upsert the
//! number of its new version (`c{id}_docs`), a delete a number of its own, recorded in
//! `c{id}_deletes` in the same transaction (the id and the number it retired). So
//! [`Snapshot::changes`] reads every change after a position by merging the two tables: the live
//! version of every document upserted since, and every delete since (a version replaced by a
//! later upsert needs no record: the later one is in the feed). Delete records are pruned
//! ([`Storage::prune_changes`]); the horizon is the highest number pruned. A position below it
//! is [`StorageError::ChangesPruned`] unless it is 0 (the start: a consumer that never read a
//! document needs none of its deletes) or was handed out while the horizon was where it is now
//! (the pages of a pass from the start: the records pruned before it retired documents the pass
//! never saw, and none was pruned since).
//! Files written before the feed existed get the collection's last sequence number as horizon
//! on their first open by this version: their deletes left no records.
//!
//! # Opening
//!
//! An existing file is checked before anything writes to it: its redb header, then (read-only)
//! the AkiDB magic and format version. A file that was not shut down cleanly cannot be opened
//! read-only (redb must repair it first), so it is checked through a copy-on-write view whose
//! writes stay in memory. Only a file that passes is opened for writing. A foreign file, a newer
//! format, an empty file, or a symbolic link is refused and left byte for byte as it was. A new
//! database file is initialised under a temporary name and linked into place complete, so a crash
//! during creation never leaves a half-made `akidb.redb`.
//!
//! Each database has a random 128-bit identity ([`Storage::database_id`]), written at creation
//! (and on the first open of files made before it existed). Caches derived from the database
//! (index generations) record it and are used only by the database they were built from.
//!
//! # Durability
//!
//! Each [`Storage::prepare_write`] is one redb write transaction; [`PendingWrite::commit`] returns
//! only after redb's commit with `Durability::Immediate` (fsync), so an acknowledged write
//! survives a crash or power loss, and a write that was not committed leaves no trace.
//!
//! # Errors
//!
//! Every failure is a [`StorageError`] variant; redb's own errors are kept as sources.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the redb file inside a database directory.
pub const DB_FILE_NAME: &str = "akidb.redb";
/// Largest encoded document record (id + text + metadata) accepted by the decoder.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

const MAGIC: &[u8] = b"akidb";
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("akidb_meta");
const COLLECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("akidb_collections");
const SEQUENCES: TableDefinition<u64, u64> = TableDefinition::new("akidb_sequences");
/// When each write that inserted documents committed: (collection id, the write's last sequence
/// number) -> unix milliseconds. A document's insertion time is that of the first entry at or
/// after its sequence number. Added after format 1 was first written: a file without it (or a
/// write before it) has no insertion times for those documents.
const COMMIT_TIMES: TableDefinition<(u64, u64), u64> = TableDefinition::new("akidb_commit_times");
/// The change feed's horizon per collection (see the module docs).
const FEED_HORIZONS: TableDefinition<u64, u64> = TableDefinition::new("akidb_feed_horizons");

type BincodeConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
>;
const BINCODE: BincodeConfig = bincode::config::standard().with_limit::<MAX_RECORD_BYTES>();

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database path exists and is not a directory.
    #[error("database path {path} exists but is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The database directory does not exist and creation was not requested.
    #[error("database directory {path} does not exist")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Another process (or another open handle in this process) holds the database.
    #[error("database {path} is locked: another process or handle has it open")]
    Locked {
        /// The redb file.
        path: PathBuf,
    },
    /// The file is not a redb database at all (foreign or truncated header).
    #[error("{path} is not an AkiDB database file: {reason}")]
    NotADatabase {
        /// The redb file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A record could not be encoded (nothing was written).
    #[error("cannot encode a record: {reason}")]
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// The database file exists but is empty. AkiDB creates its file atomically (it never leaves
    /// an empty one), so an empty file is someone else's: it is refused, not initialised.
    #[error(
        "{path} is an empty file: not an AkiDB database (remove it to create a new database there)"
    )]
    EmptyFile {
        /// The redb file.
        path: PathBuf,
    },
    /// The file is a redb database written by something else than AkiDB.
    #[error("{path} is a redb database but not an AkiDB one (no AkiDB metadata table)")]
    ForeignDatabase {
        /// The redb file.
        path: PathBuf,
    },
    /// The file was written by a newer (or unknown) AkiDB format.
    #[error("{path} has format version {found}; this build supports up to {supported}")]
    UnsupportedFormatVersion {
        /// The redb file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The database file is a symbolic link: AkiDB reads and writes only inside the directory.
    #[error("{path} is a symbolic link; a database's file must be inside its directory")]
    Symlink {
        /// The redb file.
        path: PathBuf,
    },
    /// A collection of that name already exists.
    #[error("collection {name:?} already exists")]
    CollectionExists {
        /// The collection name.
        name: String,
    },
    /// No collection of that name (or it was dropped while a handle was held).
    #[error("collection {name:?} does not exist")]
    CollectionNotFound {
        /// The collection name.
        name: String,
    },
    /// Changes after the position were pruned (delete records older than the horizon are gone):
    /// the consumer must start again from the beginning.
    #[error(
        "changes of collection {name:?} after position {position} were pruned (horizon \
         {horizon}); read the feed again from the start"
    )]
    ChangesPruned {
        /// The collection name.
        name: String,
        /// The position asked for.
        position: u64,
        /// The feed's horizon.
        horizon: u64,
    },
    /// A position beyond the collection's last sequence number: it belongs to another history
    /// (an older copy of the database file was restored, say).
    #[error(
        "position {position} is beyond collection {name:?}'s last sequence number {last_seq}: it \
         belongs to another history of the database"
    )]
    PositionAhead {
        /// The collection name.
        name: String,
        /// The position asked for.
        position: u64,
        /// The collection's last sequence number.
        last_seq: u64,
    },
    /// Stored bytes did not decode: the file was damaged or written by incompatible code.
    #[error("corrupt record in table {table}: {reason}")]
    Corrupt {
        /// Table where the bad record was found.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// A record is larger than [`MAX_RECORD_BYTES`].
    #[error("record of {bytes} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// An I/O error outside redb (creating the directory, for example).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Transactions kept running past the wait of an operation that needs the file alone
    /// (compaction): typically a reader holding a snapshot (a scroll, an export, a backup).
    #[error(
        "{operation} needs the database alone, but transactions still ran after {waited_ms} ms"
    )]
    Busy {
        /// What could not run.
        operation: &'static str,
        /// How long it waited.
        waited_ms: u64,
    },
    /// A backup target that cannot be used: it exists, or lies inside the database directory.
    #[error("backup target {path}: {reason}")]
    BackupTarget {
        /// The target given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// An error reported by redb (I/O failure, disk full, corruption detected by redb).
    #[error("redb error during {context}: {source}")]
    Redb {
        /// What the storage layer was doing.
        context: &'static str,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

fn redb_err<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> StorageError {
    move |e| StorageError::Redb { context, source: e.into() }
}

/// Options for [`Storage::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StorageOptions {
    /// Create the directory and the file when missing. Default: `true`.
    pub create_if_missing: bool,
    /// redb page cache size in bytes. Default: 64 MiB (the in-memory index holds the hot data).
    pub cache_size: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self { create_if_missing: true, cache_size: 64 << 20 }
    }
}

/// A collection as stored: its name, its internal id (which names its tables) and the schema
/// bytes owned by the layer above.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionEntry {
    /// Collection name.
    pub name: String,
    /// Internal id, unique for the life of the database file (never reused).
    pub id: u64,
    /// Opaque schema bytes written by the caller at creation.
    pub schema: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredCollection {
    id: u64,
    schema: Vec<u8>,
}

/// One document to write.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    /// User id (validated by the caller).
    pub id: &'a str,
    /// Optional text.
    pub text: Option<&'a str>,
    /// Metadata as JSON object text (validated by the caller).
    pub metadata: &'a str,
    /// The vector.
    pub vector: &'a [f32],
}

/// A stored document (without its vector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// User id.
    pub id: String,
    /// Text, if any.
    pub text: Option<String>,
    /// Metadata as JSON object text.
    pub metadata: String,
}

/// A document found by id: its sequence number, the document and its vector.
pub type FoundDocument = (u64, StoredDocument, Vec<f32>);

/// What a committed write did, for the index layer to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Sequence number given to each upserted document, in input order (one per upsert, also
    /// for upserts retired later in the same write: those are in `removed` too).
    pub inserted: Vec<u64>,
    /// Sequence numbers retired (replaced by an upsert or deleted).
    pub removed: Vec<u64>,
    /// Number of delete ids that existed.
    pub deleted: usize,
    /// Highest sequence number of the collection after this write.
    pub last_seq: u64,
}

struct CollectionTables {
    keys: String,
    docs: String,
    vecs: String,
    deletes: String,
}

impl CollectionTables {
    fn new(id: u64) -> Self {
        Self {
            keys: format!("c{id}_keys"),
            docs: format!("c{id}_docs"),
            vecs: format!("c{id}_vecs"),
            deletes: format!("c{id}_deletes"),
        }
    }
    fn keys(&self) -> TableDefinition<'_, &'static str, u64> {
        TableDefinition::new(&self.keys)
    }
    fn docs(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.docs)
    }
    fn vecs(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.vecs)
    }
    fn deletes(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.deletes)
    }
}

/// The storage engine of one database directory.
///
/// # After an I/O error
///
/// redb latches the first failed write (disk full, EIO) and refuses every later operation on that
/// handle, because its in-memory state may no longer match the file. `Storage` heals itself: the
/// next transaction that meets the latched error drops the handle and opens the file again, which
/// makes redb recover from the last durable commit. The failed call returned a typed error and
/// wrote nothing; everything committed before it is read back; writes work again once the cause
/// (space, for example) is gone.
pub struct Storage {
    /// `None` only between dropping a failed handle and reopening the file.
    db: RwLock<Option<Arc<redb::Database>>>,
    file: PathBuf,
    cache_size: usize,
    database_id: [u8; 16],
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("file", &self.file).finish()
    }
}

impl Storage {
    /// Opens (or creates) the database in directory `dir`.
    ///
    /// Errors: [`StorageError::NotADirectory`], [`StorageError::NotFound`],
    /// [`StorageError::Locked`] when another process has it open,
    /// [`StorageError::NotADatabase`] / [`StorageError::ForeignDatabase`] for files that are not
    /// AkiDB's, [`StorageError::UnsupportedFormatVersion`] for newer formats.
    pub fn open(dir: &Path, options: &StorageOptions) -> Result<Self> {
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(StorageError::NotADirectory { path: dir.to_path_buf() })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !options.create_if_missing {
                    return Err(StorageError::NotFound { path: dir.to_path_buf() });
                }
                std::fs::create_dir_all(dir)
                    .map_err(|source| StorageError::Io { path: dir.to_path_buf(), source })?;
            }
            Err(source) => return Err(StorageError::Io { path: dir.to_path_buf(), source }),
        }
        let file = dir.join(DB_FILE_NAME);
        match std::fs::symlink_metadata(&file) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StorageError::Symlink { path: file })
            }
            Ok(m) if m.len() == 0 => return Err(StorageError::EmptyFile { path: file }),
            Ok(_) => verify_existing(&file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !options.create_if_missing {
                    return Err(StorageError::NotFound { path: file });
                }
                create_new(&file)?;
            }
            Err(source) => return Err(StorageError::Io { path: file, source }),
        }
        let db = open_redb(&file, options.cache_size)?;
        let mut storage = Self {
            db: RwLock::new(Some(Arc::new(db))),
            file,
            cache_size: options.cache_size,
            database_id: [0; 16],
        };
        storage.database_id = storage.check_meta_and_identity()?;
        storage.ensure_feed_horizons()?;
        Ok(storage)
    }

    /// The database's random identity: fixed at creation, different for every database file ever
    /// created (a file deleted and created again gets a new one), the same in every copy of it.
    pub fn database_id(&self) -> [u8; 16] {
        self.database_id
    }

    /// The current redb handle, reopening the file first if a failed handle was dropped.
    fn handle(&self) -> Result<Arc<redb::Database>> {
        if let Some(db) = self.db.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
            return Ok(db.clone());
        }
        self.reopen(None)
    }

    /// Replaces the handle `failed` (or a missing one) by a freshly opened one. Transactions of
    /// the old handle still alive in other threads keep its file lock for a moment: wait for them
    /// (up to [`REOPEN_WAIT`]).
    fn reopen(&self, failed: Option<*const redb::Database>) -> Result<Arc<redb::Database>> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        match (slot.as_ref(), failed) {
            (Some(current), Some(failed)) if !std::ptr::eq(Arc::as_ptr(current), failed) => {
                return Ok(current.clone())
            }
            (Some(current), None) => return Ok(current.clone()),
            _ => {}
        }
        *slot = None;
        let deadline = std::time::Instant::now() + REOPEN_WAIT;
        loop {
            match open_redb(&self.file, self.cache_size) {
                Ok(db) => {
                    let db = Arc::new(db);
                    *slot = Some(db.clone());
                    log::warn!("reopened {} after an I/O error", self.file.display());
                    return Ok(db);
                }
                Err(StorageError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `begin` on the current handle; if the handle latched an earlier I/O error, reopens
    /// the file and runs it once more.
    fn begin<T>(
        &self,
        context: &'static str,
        begin: impl Fn(&redb::Database) -> std::result::Result<T, redb::TransactionError>,
    ) -> Result<T> {
        let db = self.handle()?;
        match begin(&db) {
            Err(e) if latched(&e) => {
                // Our own reference would keep the failed file open (and locked).
                let failed = Arc::as_ptr(&db);
                drop(db);
                let db = self.reopen(Some(failed))?;
                begin(&db).map_err(redb_err(context))
            }
            r => r.map_err(redb_err(context)),
        }
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        self.begin("begin read", |db| db.begin_read())
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        self.begin("begin write", |db| db.begin_write())
    }

    /// Path of the redb file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Checks the metadata of the (already verified) file once more through the read-write
    /// handle, and returns the database identity, adding one to files made before it existed.
    fn check_meta_and_identity(&self) -> Result<[u8; 16]> {
        let txn = self.begin_read()?;
        if let Some(id) = check_meta(&txn, &self.file)? {
            return Ok(id);
        }
        drop(txn);
        let id = random_id()?;
        let w = self.begin_write()?;
        {
            let mut meta = w.open_table(META).map_err(redb_err("open meta"))?;
            meta.insert("database_id", id.as_slice()).map_err(redb_err("write meta"))?;
        }
        w.commit().map_err(redb_err("commit database id"))?;
        Ok(id)
    }

    /// Gives every collection without a change-feed horizon (made before the feed existed, whose
    /// deletes left no records) its last sequence number as horizon.
    fn ensure_feed_horizons(&self) -> Result<()> {
        let missing: Vec<u64> = {
            let txn = self.begin_read()?;
            let colls = txn.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
            let horizons = match txn.open_table(FEED_HORIZONS) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(redb_err("open horizons")(e)),
            };
            let mut missing = Vec::new();
            for item in colls.iter().map_err(redb_err("list collections"))? {
                let (_, v) = item.map_err(redb_err("list collections"))?;
                let id = decode::<StoredCollection>("akidb_collections", v.value())?.id;
                let known = match &horizons {
                    Some(h) => h.get(id).map_err(redb_err("read horizon"))?.is_some(),
                    None => false,
                };
                if !known {
                    missing.push(id);
                }
            }
            missing
        };
        let w = self.begin_write()?;
        {
            let seqs = w.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
            let mut horizons = w.open_table(FEED_HORIZONS).map_err(redb_err("open horizons"))?;
            for id in missing {
                let last =
                    seqs.get(id).map_err(redb_err("read sequence"))?.map_or(0, |v| v.value());
                horizons.insert(id, last).map_err(redb_err("write horizon"))?;
            }
        }
        w.commit().map_err(redb_err("commit horizons"))
    }

    /// Prunes the change feed of `coll`: removes the records of deletes committed before
    /// `before_ms` (unix milliseconds) and raises the horizon to the last one removed. Returns
    /// how many records went. Positions below the new horizon (except the start) can no longer
    /// be read ([`StorageError::ChangesPruned`]).
    pub fn prune_changes(&self, coll: &CollectionEntry, before_ms: u64) -> Result<usize> {
        let w = self.begin_write()?;
        let removed;
        {
            let t = CollectionTables::new(coll.id);
            let mut feed = w.open_table(t.deletes()).map_err(redb_err("open deletes"))?;
            let mut last = None;
            let mut count = 0;
            for item in feed.iter().map_err(redb_err("scan deletes"))? {
                let (seq, bytes) = item.map_err(redb_err("scan deletes"))?;
                let r: DeleteRecord = decode(&t.deletes, bytes.value())?;
                if r.time_ms >= before_ms {
                    break;
                }
                last = Some(seq.value());
                count += 1;
            }
            removed = count;
            if let Some(upto) = last {
                feed.retain_in(..=upto, |_, _| false).map_err(redb_err("prune deletes"))?;
                let mut horizons =
                    w.open_table(FEED_HORIZONS).map_err(redb_err("open horizons"))?;
                let old = horizons
                    .get(coll.id)
                    .map_err(redb_err("read horizon"))?
                    .map_or(0, |v| v.value());
                horizons.insert(coll.id, old.max(upto)).map_err(redb_err("write horizon"))?;
            }
        }
        if removed > 0 {
            w.commit().map_err(redb_err("commit pruned changes"))?;
        }
        Ok(removed)
    }

    /// Test and upgrade hook: overwrites the stored format version.
    #[doc(hidden)]
    pub fn set_format_version_for_tests(&self, version: u32) -> Result<()> {
        let w = self.begin_write()?;
        {
            let mut meta = w.open_table(META).map_err(redb_err("open meta"))?;
            meta.insert("format_version", version.to_le_bytes().as_slice())
                .map_err(redb_err("write meta"))?;
        }
        w.commit().map_err(redb_err("commit"))
    }

    /// Creates a collection with the given schema bytes.
    pub fn create_collection(&self, name: &str, schema: &[u8]) -> Result<CollectionEntry> {
        let w = self.begin_write()?;
        let id;
        {
            let mut colls = w.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
            if colls.get(name).map_err(redb_err("read collections"))?.is_some() {
                return Err(StorageError::CollectionExists { name: name.into() });
            }
            let mut meta = w.open_table(META).map_err(redb_err("open meta"))?;
            id = meta
                .get("next_collection_id")
                .map_err(redb_err("read meta"))?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| StorageError::Corrupt {
                    table: "akidb_meta".into(),
                    reason: "missing next_collection_id".into(),
                })?;
            meta.insert("next_collection_id", (id + 1).to_le_bytes().as_slice())
                .map_err(redb_err("write meta"))?;
            let stored = encode(&StoredCollection { id, schema: schema.to_vec() })?;
            colls.insert(name, stored.as_slice()).map_err(redb_err("write collections"))?;
            let mut seqs = w.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
            seqs.insert(id, 0).map_err(redb_err("write sequences"))?;
            let t = CollectionTables::new(id);
            w.open_table(t.keys()).map_err(redb_err("create keys table"))?;
            w.open_table(t.docs()).map_err(redb_err("create docs table"))?;
            w.open_table(t.vecs()).map_err(redb_err("create vecs table"))?;
            w.open_table(t.deletes()).map_err(redb_err("create deletes table"))?;
            let mut horizons = w.open_table(FEED_HORIZONS).map_err(redb_err("open horizons"))?;
            horizons.insert(id, 0).map_err(redb_err("write horizon"))?;
        }
        w.commit().map_err(redb_err("commit create collection"))?;
        Ok(CollectionEntry { name: name.into(), id, schema: schema.to_vec() })
    }

    /// Replaces the schema bytes of an existing collection (same id, same data).
    pub fn update_schema(&self, name: &str, schema: &[u8]) -> Result<()> {
        let w = self.begin_write()?;
        {
            let mut colls = w.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
            let id = match colls.get(name).map_err(redb_err("read collections"))? {
                Some(v) => decode::<StoredCollection>("akidb_collections", v.value())?.id,
                None => return Err(StorageError::CollectionNotFound { name: name.into() }),
            };
            let stored = encode(&StoredCollection { id, schema: schema.to_vec() })?;
            colls.insert(name, stored.as_slice()).map_err(redb_err("write collections"))?;
        }
        w.commit().map_err(redb_err("commit schema"))
    }

    /// Looks a collection up by name.
    pub fn collection(&self, name: &str) -> Result<Option<CollectionEntry>> {
        let r = self.begin_read()?;
        let colls = r.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
        let v = colls.get(name).map_err(redb_err("read collections"))?;
        v.map(|v| {
            let s: StoredCollection = decode("akidb_collections", v.value())?;
            Ok(CollectionEntry { name: name.into(), id: s.id, schema: s.schema })
        })
        .transpose()
    }

    /// All collections, ordered by name.
    pub fn list_collections(&self) -> Result<Vec<CollectionEntry>> {
        let r = self.begin_read()?;
        let colls = r.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
        let mut out = Vec::new();
        for item in colls.iter().map_err(redb_err("iterate collections"))? {
            let (k, v) = item.map_err(redb_err("iterate collections"))?;
            let s: StoredCollection = decode("akidb_collections", v.value())?;
            out.push(CollectionEntry { name: k.value().to_string(), id: s.id, schema: s.schema });
        }
        Ok(out)
    }

    /// Drops a collection and all its data in one transaction. Returns whether it existed.
    pub fn drop_collection(&self, name: &str) -> Result<bool> {
        let w = self.begin_write()?;
        {
            let mut colls = w.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
            let id = match colls.remove(name).map_err(redb_err("remove collection"))? {
                Some(v) => decode::<StoredCollection>("akidb_collections", v.value())?.id,
                None => return Ok(false),
            };
            let mut seqs = w.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
            seqs.remove(id).map_err(redb_err("remove sequence"))?;
            let t = CollectionTables::new(id);
            w.delete_table(t.keys()).map_err(redb_err("delete keys table"))?;
            w.delete_table(t.docs()).map_err(redb_err("delete docs table"))?;
            w.delete_table(t.vecs()).map_err(redb_err("delete vecs table"))?;
            w.delete_table(t.deletes()).map_err(redb_err("delete deletes table"))?;
            let mut horizons = w.open_table(FEED_HORIZONS).map_err(redb_err("open horizons"))?;
            horizons.remove(id).map_err(redb_err("remove horizon"))?;
            let mut times = w.open_table(COMMIT_TIMES).map_err(redb_err("open times"))?;
            times
                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                .map_err(redb_err("drop times"))?;
        }
        w.commit().map_err(redb_err("commit drop collection"))?;
        Ok(true)
    }

    /// Stages upserts and deletes of one collection in one write transaction. Nothing is visible
    /// or durable until [`PendingWrite::commit`]; dropping the pending write aborts it.
    ///
    /// Upserts are applied in order (a later one of the same id wins), then deletes. `time_ms`
    /// (unix milliseconds) is recorded as the insertion time of the upserted documents and the
    /// time of the deletes (their feed records).
    pub fn prepare_write(
        &self,
        coll: &CollectionEntry,
        upserts: &[DocumentWrite<'_>],
        deletes: &[&str],
        time_ms: u64,
    ) -> Result<PendingWrite> {
        let deletes: Vec<(&str, Option<u64>)> = deletes.iter().map(|id| (*id, None)).collect();
        self.write_txn(coll, upserts, &deletes, time_ms)
    }

    /// Stages deletes of exact versions: each `(id, seq)` is deleted only if `seq` is still the
    /// sequence number of the id's live version (a document replaced since it was read stays).
    /// As [`Storage::prepare_write`] otherwise.
    pub fn prepare_delete_versions(
        &self,
        coll: &CollectionEntry,
        versions: &[(&str, u64)],
        time_ms: u64,
    ) -> Result<PendingWrite> {
        let deletes: Vec<(&str, Option<u64>)> =
            versions.iter().map(|(id, seq)| (*id, Some(*seq))).collect();
        self.write_txn(coll, &[], &deletes, time_ms)
    }

    fn write_txn(
        &self,
        coll: &CollectionEntry,
        upserts: &[DocumentWrite<'_>],
        deletes: &[(&str, Option<u64>)],
        time_ms: u64,
    ) -> Result<PendingWrite> {
        let w = self.begin_write()?;
        let mut receipt = WriteReceipt::default();
        {
            let colls = w.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
            match colls.get(coll.name.as_str()).map_err(redb_err("read collections"))? {
                Some(v)
                    if decode::<StoredCollection>("akidb_collections", v.value())?.id
                        == coll.id => {}
                _ => return Err(StorageError::CollectionNotFound { name: coll.name.clone() }),
            }
            let t = CollectionTables::new(coll.id);
            let mut seqs = w.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
            let mut seq = seqs
                .get(coll.id)
                .map_err(redb_err("read sequence"))?
                .map(|v| v.value())
                .ok_or_else(|| StorageError::Corrupt {
                    table: "akidb_sequences".into(),
                    reason: format!("no sequence for collection {}", coll.id),
                })?;
            let mut keys = w.open_table(t.keys()).map_err(redb_err("open keys"))?;
            let mut docs = w.open_table(t.docs()).map_err(redb_err("open docs"))?;
            let mut vecs = w.open_table(t.vecs()).map_err(redb_err("open vecs"))?;
            let mut feed = w.open_table(t.deletes()).map_err(redb_err("open deletes"))?;
            let mut vec_bytes = Vec::new();
            for doc in upserts {
                seq += 1;
                let record = encode(&StoredDocumentRef {
                    id: doc.id,
                    text: doc.text,
                    metadata: doc.metadata,
                })?;
                vec_bytes.clear();
                vec_bytes.extend(doc.vector.iter().flat_map(|x| x.to_le_bytes()));
                if let Some(old) = keys.insert(doc.id, seq).map_err(redb_err("write keys"))? {
                    let old = old.value();
                    docs.remove(old).map_err(redb_err("remove old doc"))?;
                    vecs.remove(old).map_err(redb_err("remove old vec"))?;
                    receipt.removed.push(old);
                }
                docs.insert(seq, record.as_slice()).map_err(redb_err("write doc"))?;
                vecs.insert(seq, vec_bytes.as_slice()).map_err(redb_err("write vec"))?;
                receipt.inserted.push(seq);
            }
            for &(id, only_seq) in deletes {
                let live = keys.get(id).map_err(redb_err("read key"))?.map(|v| v.value());
                let Some(old) = live.filter(|s| only_seq.is_none_or(|only| only == *s)) else {
                    continue;
                };
                keys.remove(id).map_err(redb_err("remove key"))?;
                docs.remove(old).map_err(redb_err("remove doc"))?;
                vecs.remove(old).map_err(redb_err("remove vec"))?;
                seq += 1;
                let record = encode(&DeleteRecord { id: id.to_string(), retired: old, time_ms })?;
                feed.insert(seq, record.as_slice()).map_err(redb_err("write delete record"))?;
                receipt.removed.push(old);
                receipt.deleted += 1;
                // An upsert of the same id earlier in this batch is retired by this: its
                // number stays in `inserted` (input order) and appears in `removed`.
            }
            seqs.insert(coll.id, seq).map_err(redb_err("write sequence"))?;
            if !upserts.is_empty() {
                let mut times = w.open_table(COMMIT_TIMES).map_err(redb_err("open times"))?;
                times.insert((coll.id, seq), time_ms).map_err(redb_err("write time"))?;
            }
            receipt.last_seq = seq;
        }
        Ok(PendingWrite { txn: w, receipt })
    }

    /// Forgets the insertion times of writes whose documents are all gone: every entry of
    /// `coll` for a write that ended before sequence number `first_live` (the oldest live
    /// document's). Keeps the table from growing with the number of writes ever made.
    pub fn prune_commit_times(&self, coll: &CollectionEntry, first_live: u64) -> Result<()> {
        if first_live <= 1 {
            return Ok(());
        }
        let w = self.begin_write()?;
        {
            let mut times = w.open_table(COMMIT_TIMES).map_err(redb_err("open times"))?;
            times
                .retain_in((coll.id, 0)..(coll.id, first_live), |_, _| false)
                .map_err(redb_err("prune times"))?;
        }
        w.commit().map_err(redb_err("commit pruned times"))
    }

    /// Gives the file's free space back to the file system (redb's compaction). It needs the
    /// file alone: it waits up to `wait` for the transactions in progress (a committing write,
    /// readers holding snapshots) to end, and meanwhile and while it runs no transaction starts,
    /// so every read and write of the database waits for it. Returns the file size before and
    /// after. [`StorageError::Busy`] if transactions still ran after `wait` (nothing changed).
    pub fn compact(&self, wait: std::time::Duration) -> Result<(u64, u64)> {
        let size = || {
            std::fs::metadata(&self.file)
                .map(|m| m.len())
                .map_err(|source| StorageError::Io { path: self.file.clone(), source })
        };
        let before = size()?;
        let started = std::time::Instant::now();
        loop {
            let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
            let busy = match slot.as_mut().map(Arc::get_mut) {
                None => {
                    drop(slot);
                    self.reopen(None)?;
                    continue;
                }
                // A transaction is being begun on another thread (it holds the handle briefly).
                Some(None) => true,
                Some(Some(db)) => match db.compact() {
                    Ok(_) => {
                        // One pass can leave pages that a second pass frees; stop when none.
                        while db.compact().map_err(redb_err("compact"))? {}
                        break;
                    }
                    Err(redb::CompactionError::TransactionInProgress) => true,
                    Err(e) => return Err(redb_err("compact")(e)),
                },
            };
            drop(slot);
            if busy && started.elapsed() >= wait {
                return Err(StorageError::Busy {
                    operation: "compaction",
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok((before, size()?))
    }

    /// Writes a consistent copy of the whole database (every collection, as of one read
    /// snapshot) into the new directory `target`, while writers go on. The copy is built in a
    /// hidden sibling directory (`.NAME.akidb-partial-PID`), made durable, then renamed to
    /// `target`: a crash or an error leaves no directory at `target` (a leftover partial one is
    /// removed by the next backup to the same target). The copy gets a database identity of
    /// its own, so index generations of one never pass for the other's. Returns the rows
    /// copied.
    ///
    /// `before_publish(partial_dir, new_id, collections)` runs once the copy is durable and
    /// before it is renamed, with each copied collection's id and last sequence number: the
    /// layer above adds its derived files there (index generations).
    pub fn backup(
        &self,
        target: &Path,
        before_publish: impl FnOnce(&Path, [u8; 16], &[(u64, u64)]),
    ) -> Result<u64> {
        let new_id = random_id()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, source }
        };
        let bad = |reason| StorageError::BackupTarget { path: target.to_path_buf(), reason };
        let name =
            target.file_name().and_then(|n| n.to_str()).ok_or_else(|| bad("no file name"))?;
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(bad("it exists"));
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent = std::fs::canonicalize(&parent).map_err(io(&parent))?;
        let own =
            self.file.parent().map(std::fs::canonicalize).transpose().map_err(io(&self.file))?;
        if own.is_some_and(|own| parent.starts_with(own)) {
            return Err(bad("it is inside the database directory"));
        }
        let prefix = format!(".{name}.akidb-partial-");
        for entry in std::fs::read_dir(&parent).map_err(io(&parent))?.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let partial = parent.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir(&partial).map_err(io(&partial))?;
        let copied =
            self.copy_into(&partial.join(DB_FILE_NAME), new_id).and_then(|(rows, seqs)| {
                before_publish(&partial, new_id, &seqs);
                sync_dir(&partial)?;
                std::fs::rename(&partial, parent.join(name)).map_err(io(target))?;
                sync_dir(&parent)?;
                Ok(rows)
            });
        if copied.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        copied
    }

    /// [`Storage::backup`]'s copy: every table of one read snapshot into a new redb file, in
    /// transactions of bounded size (non-durable, made durable by the last one, which also
    /// gives the copy its identity).
    fn copy_into(&self, file: &Path, new_id: [u8; 16]) -> Result<(u64, Vec<(u64, u64)>)> {
        let src = self.begin_read()?;
        let dst = redb::Database::builder().create(file).map_err(|e| map_open_error(file, e))?;
        let mut rows = copy_table(&src, &dst, META)?;
        rows += copy_table(&src, &dst, COLLECTIONS)?;
        rows += copy_table(&src, &dst, SEQUENCES)?;
        rows += copy_table(&src, &dst, COMMIT_TIMES)?;
        let colls = src.open_table(COLLECTIONS).map_err(redb_err("open collections"))?;
        let sequences = src.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
        let mut seqs = Vec::new();
        for item in colls.iter().map_err(redb_err("read collections"))? {
            let (_, v) = item.map_err(redb_err("read collections"))?;
            let id = decode::<StoredCollection>("akidb_collections", v.value())?.id;
            let last = sequences.get(id).map_err(redb_err("read sequence"))?.map(|s| s.value());
            seqs.push((id, last.unwrap_or(0)));
            let t = CollectionTables::new(id);
            rows += copy_table(&src, &dst, t.keys())?;
            rows += copy_table(&src, &dst, t.docs())?;
            rows += copy_table(&src, &dst, t.vecs())?;
        }
        let w = dst.begin_write().map_err(redb_err("begin backup write"))?;
        {
            let mut meta = w.open_table(META).map_err(redb_err("open meta"))?;
            meta.insert("database_id", new_id.as_slice()).map_err(redb_err("write meta"))?;
        }
        w.commit().map_err(redb_err("commit backup"))?;
        dst.close().map_err(|e| map_open_error(file, e))?;
        std::fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(|source| StorageError::Io { path: file.to_path_buf(), source })?;
        Ok((rows, seqs))
    }

    /// Opens a consistent read snapshot (redb MVCC: writers do not block it).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let txn = self.begin_read()?;
        Ok(Snapshot { txn })
    }
}

/// How long [`Storage`] waits for transactions of a failed handle to end before reopening.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_redb(file: &Path, cache_size: usize) -> Result<redb::Database> {
    let mut builder = redb::Database::builder();
    builder.set_cache_size(cache_size);
    builder.open(file).map_err(|e| map_open_error(file, e))
}

/// redb's file header magic (the first bytes of every redb file).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Checks an existing file without writing to it: redb header, then AkiDB's magic and format
/// version read through a read-only handle, or, for a file redb must repair first, through a
/// copy-on-write view whose writes stay in memory.
fn verify_existing(file: &Path) -> Result<()> {
    let io = |source| StorageError::Io { path: file.to_path_buf(), source };
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut f = std::fs::File::open(file).map_err(io)?;
    if let Err(e) = std::io::Read::read_exact(&mut f, &mut head) {
        return Err(StorageError::NotADatabase { path: file.to_path_buf(), reason: e.to_string() });
    }
    if head != REDB_MAGIC {
        return Err(StorageError::NotADatabase {
            path: file.to_path_buf(),
            reason: "no redb file header".into(),
        });
    }
    match redb::Builder::new().open_read_only(file) {
        Ok(ro) => {
            let txn = ro.begin_read().map_err(redb_err("begin read"))?;
            check_meta(&txn, file).map(drop)
        }
        Err(redb::DatabaseError::RepairAborted) => {
            let db = redb::Builder::new()
                .create_with_backend(CopyOnWrite::new(f))
                .map_err(|e| map_open_error(file, e))?;
            let txn = db.begin_read().map_err(redb_err("begin read"))?;
            check_meta(&txn, file).map(drop)
        }
        Err(e) => Err(map_open_error(file, e)),
    }
}

/// Checks AkiDB's metadata table; returns the database identity if the file has one yet.
fn check_meta(txn: &redb::ReadTransaction, file: &Path) -> Result<Option<[u8; 16]>> {
    let foreign = || StorageError::ForeignDatabase { path: file.to_path_buf() };
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(foreign()),
        Err(e) => return Err(redb_err("open meta table")(e)),
    };
    let magic = meta.get("magic").map_err(redb_err("read meta"))?;
    if magic.as_ref().map(|m| m.value()) != Some(MAGIC) {
        return Err(foreign());
    }
    let version = meta
        .get("format_version")
        .map_err(redb_err("read meta"))?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| StorageError::Corrupt {
            table: "akidb_meta".into(),
            reason: "missing or malformed format_version".into(),
        })?;
    if version > FORMAT_VERSION || version == 0 {
        return Err(StorageError::UnsupportedFormatVersion {
            path: file.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    match meta.get("database_id").map_err(redb_err("read meta"))? {
        None => Ok(None),
        Some(v) => <[u8; 16]>::try_from(v.value()).map(Some).map_err(|_| StorageError::Corrupt {
            table: "akidb_meta".into(),
            reason: "malformed database_id".into(),
        }),
    }
}

fn random_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| StorageError::Io {
        path: PathBuf::from("(system random source)"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(id)
}

/// Rows per transaction when a backup copies a table: bounds the copy's memory.
const BACKUP_CHUNK: u64 = 20_000;

/// Copies table `def` (if it exists) of `src` into `dst`, in non-durable transactions of
/// [`BACKUP_CHUNK`] rows. Returns the rows copied.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &redb::ReadTransaction,
    dst: &redb::Database,
    def: TableDefinition<'_, K, V>,
) -> Result<u64> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(redb_err("open table for backup")(e)),
    };
    let mut items = from.iter().map_err(redb_err("read for backup"))?;
    let mut rows = 0;
    loop {
        let mut w = dst.begin_write().map_err(redb_err("begin backup write"))?;
        w.set_durability(redb::Durability::None).map_err(redb_err("backup durability"))?;
        let mut n = 0;
        {
            let mut to = w.open_table(def).map_err(redb_err("open backup table"))?;
            for item in items.by_ref().take(BACKUP_CHUNK as usize) {
                let (k, v) = item.map_err(redb_err("read for backup"))?;
                to.insert(k.value(), v.value()).map_err(redb_err("write backup"))?;
                n += 1;
            }
        }
        w.commit().map_err(redb_err("commit backup chunk"))?;
        rows += n;
        if n < BACKUP_CHUNK {
            return Ok(rows);
        }
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Io { path: dir.to_path_buf(), source })
}

/// Creates a new database file: initialised under a temporary name, synced, then linked into
/// place (never replacing a file another process created meanwhile), so `file` either does not
/// exist or is a complete AkiDB database.
fn create_new(file: &Path) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StorageError::Io { path, source }
    };
    let tmp = dir.join(format!(".{DB_FILE_NAME}.creating-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        {
            let db = redb::Database::create(&tmp).map_err(|e| map_open_error(&tmp, e))?;
            let w = db.begin_write().map_err(redb_err("begin write"))?;
            {
                let mut meta = w.open_table(META).map_err(redb_err("create meta"))?;
                meta.insert("magic", MAGIC).map_err(redb_err("write meta"))?;
                meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(redb_err("write meta"))?;
                meta.insert("next_collection_id", 1u64.to_le_bytes().as_slice())
                    .map_err(redb_err("write meta"))?;
                meta.insert("database_id", random_id()?.as_slice())
                    .map_err(redb_err("write meta"))?;
                w.open_table(COLLECTIONS).map_err(redb_err("create collections"))?;
                w.open_table(SEQUENCES).map_err(redb_err("create sequences"))?;
            }
            w.commit().map_err(redb_err("commit init"))?;
            db.close().map_err(|e| map_open_error(&tmp, e))?;
        }
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
        match std::fs::hard_link(&tmp, file) {
            Ok(()) => Ok(()),
            // Another process created it first: open theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            // A file system without hard links (vfat, some FUSE mounts): rename, which is
            // atomic too but would replace a file created meanwhile by another process.
            Err(_) => std::fs::rename(&tmp, file).map_err(io(file)),
        }?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// A view of a file for redb in which reads see the file and redb's own writes (a repair's),
/// and writes never reach the file: they stay in memory and are dropped with the view.
#[derive(Debug)]
struct CopyOnWrite {
    file: std::fs::File,
    state: std::sync::Mutex<Overlay>,
}

#[derive(Debug, Default)]
struct Overlay {
    /// Written ranges by start offset (non-overlapping, merged on write).
    writes: std::collections::BTreeMap<u64, Vec<u8>>,
    len: Option<u64>,
}

impl CopyOnWrite {
    fn new(file: std::fs::File) -> Self {
        Self { file, state: std::sync::Mutex::new(Overlay::default()) }
    }
}

impl redb::StorageBackend for CopyOnWrite {
    fn len(&self) -> std::result::Result<u64, std::io::Error> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.len {
            Some(len) => Ok(len),
            None => Ok(self.file.metadata()?.len()),
        }
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::result::Result<(), std::io::Error> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let file_len = self.file.metadata()?.len();
        let end = offset + out.len() as u64;
        // The file's bytes (zeros past its end, as after a set_len that grew it) ...
        if offset < file_len {
            let n = (file_len.min(end) - offset) as usize;
            std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut out[..n], offset)?;
            out[n..].fill(0);
        } else {
            out.fill(0);
        }
        // ... then every written range that overlaps, in offset order.
        let first = state.writes.range(..offset).next_back().map_or(offset, |(k, _)| *k);
        for (&start, data) in state.writes.range(first..end) {
            let w_end = start + data.len() as u64;
            if w_end <= offset {
                continue;
            }
            let (from, to) = (start.max(offset), w_end.min(end));
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::result::Result<(), std::io::Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.len = Some(len);
        // Writes past the new end are cut off.
        let cut: Vec<u64> = state
            .writes
            .range(..)
            .filter(|(k, d)| **k + d.len() as u64 > len)
            .map(|(k, _)| *k)
            .collect();
        for k in cut {
            if let Some(mut d) = state.writes.remove(&k) {
                if k < len {
                    d.truncate((len - k) as usize);
                    state.writes.insert(k, d);
                }
            }
        }
        Ok(())
    }

    fn sync_data(&self) -> std::result::Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), std::io::Error> {
        // Merge with every range it touches, so ranges never overlap.
        let mut buf = Vec::new();
        let mut start = offset;
        let end = offset + data.len() as u64;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let first = state.writes.range(..offset).next_back().map_or(offset, |(k, _)| *k);
        let touching: Vec<u64> = state
            .writes
            .range(first..=end)
            .filter(|(k, d)| **k + d.len() as u64 >= offset)
            .map(|(k, _)| *k)
            .collect();
        if let Some(&lo) = touching.first() {
            start = start.min(lo);
        }
        let mut stop = end;
        for k in &touching {
            stop = stop.max(k + state.writes[k].len() as u64);
        }
        buf.resize((stop - start) as usize, 0);
        for k in touching {
            if let Some(d) = state.writes.remove(&k) {
                buf[(k - start) as usize..(k - start) as usize + d.len()].copy_from_slice(&d);
            }
        }
        // Every touching range meets [offset, end), so their union is one interval: no gaps.
        buf[(offset - start) as usize..(end - start) as usize].copy_from_slice(data);
        state.writes.insert(start, buf);
        Ok(())
    }
}

/// Whether redb refuses a transaction because the handle met an I/O error before.
fn latched(e: &redb::TransactionError) -> bool {
    matches!(
        e,
        redb::TransactionError::Storage(redb::StorageError::PreviousIo | redb::StorageError::Io(_))
    )
}

/// Maps redb's open errors to typed storage errors.
fn map_open_error(file: &Path, e: redb::DatabaseError) -> StorageError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StorageError::Locked { path: file.to_path_buf() }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            StorageError::NotADatabase { path: file.to_path_buf(), reason: io.to_string() }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
            StorageError::NotADatabase { path: file.to_path_buf(), reason }
        }
        other => StorageError::Redb { context: "open database", source: other.into() },
    }
}

/// A delete's feed record (`c{id}_deletes`).
#[derive(Serialize, Deserialize)]
struct DeleteRecord {
    id: String,
    retired: u64,
    time_ms: u64,
}

/// One change of a collection, read from the feed ([`Snapshot::changes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredChange {
    /// A document as upserted (its live version).
    Upsert {
        /// The version's sequence number.
        seq: u64,
        /// The document.
        doc: StoredDocument,
        /// Its vector.
        vector: Vec<f32>,
    },
    /// A delete.
    Delete {
        /// The delete's sequence number.
        seq: u64,
        /// The user id deleted.
        id: String,
        /// The sequence number of the version it retired.
        retired: u64,
        /// When it committed (unix milliseconds; 0 where unknown).
        time_ms: u64,
    },
}

impl StoredChange {
    /// The change's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            StoredChange::Upsert { seq, .. } | StoredChange::Delete { seq, .. } => *seq,
        }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// Changes after the position asked for, in sequence (commit) order.
    pub changes: Vec<StoredChange>,
    /// The position to ask for next: the last change's number, or the collection's last
    /// sequence number when the page holds every change there was.
    pub next: u64,
    /// Whether the page reaches the collection's last sequence number of this snapshot.
    pub complete: bool,
    /// The feed's horizon when the page was read (hand it back with `next`).
    pub horizon: u64,
}

#[derive(Serialize)]
struct StoredDocumentRef<'a> {
    id: &'a str,
    text: Option<&'a str>,
    metadata: &'a str,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let bytes = bincode::serde::encode_to_vec(value, BINCODE)
        .map_err(|e| StorageError::Encode { reason: e.to_string() })?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(StorageError::RecordTooLarge { bytes: bytes.len(), limit: MAX_RECORD_BYTES });
    }
    Ok(bytes)
}

/// The record decoders, for the fuzz targets (`fuzz/`) and their regression tests. Every stored
/// byte string goes through one of these before AkiDB uses it.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Decodes a `c{id}_docs` record.
    pub fn decode_document(bytes: &[u8]) -> Result<StoredDocument> {
        decode("docs", bytes)
    }
    /// Encodes a document record as [`Storage::prepare_write`] does.
    pub fn encode_document(doc: &StoredDocument) -> Result<Vec<u8>> {
        encode(&StoredDocumentRef {
            id: &doc.id,
            text: doc.text.as_deref(),
            metadata: &doc.metadata,
        })
    }
    /// Decodes an `akidb_collections` record into (collection id, schema bytes).
    pub fn decode_collection(bytes: &[u8]) -> Result<(u64, Vec<u8>)> {
        decode::<StoredCollection>("akidb_collections", bytes).map(|c| (c.id, c.schema))
    }
    /// Decodes a `c{id}_vecs` record.
    pub fn decode_vector(bytes: &[u8]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        super::decode_vector("vecs", bytes, &mut out)?;
        Ok(out)
    }
}

fn decode<T: serde::de::DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, BINCODE)
        .map_err(|e| StorageError::Corrupt { table: table.into(), reason: e.to_string() })?;
    if used != bytes.len() {
        return Err(StorageError::Corrupt {
            table: table.into(),
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

/// Decodes a vector stored as raw little-endian f32 bytes.
fn decode_vector(table: &str, bytes: &[u8], out: &mut Vec<f32>) -> Result<()> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StorageError::Corrupt {
            table: table.into(),
            reason: format!("vector of {} bytes is not a whole number of f32", bytes.len()),
        });
    }
    out.clear();
    out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    Ok(())
}

/// A staged write transaction; see [`Storage::prepare_write`].
pub struct PendingWrite {
    txn: redb::WriteTransaction,
    receipt: WriteReceipt,
}

impl PendingWrite {
    /// What the write will do once committed.
    pub fn receipt(&self) -> &WriteReceipt {
        &self.receipt
    }

    /// Commits durably (fsync). On error nothing of the write is visible.
    pub fn commit(self) -> Result<WriteReceipt> {
        self.txn.commit().map_err(redb_err("commit write"))?;
        Ok(self.receipt)
    }
}

/// A read snapshot of the whole database.
pub struct Snapshot {
    txn: redb::ReadTransaction,
}

impl Snapshot {
    fn tables(coll: &CollectionEntry) -> CollectionTables {
        CollectionTables::new(coll.id)
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        coll: &CollectionEntry,
        def: TableDefinition<'_, K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>> {
        self.txn.open_table(def).map_err(|e| match e {
            redb::TableError::TableDoesNotExist(_) => {
                StorageError::CollectionNotFound { name: coll.name.clone() }
            }
            other => redb_err("open table")(other),
        })
    }

    /// Number of live documents.
    pub fn count(&self, coll: &CollectionEntry) -> Result<u64> {
        let t = Self::tables(coll);
        self.open(coll, t.keys())?.len().map_err(redb_err("count"))
    }

    /// The change feed's horizon: positions below it (except 0) were pruned.
    pub fn feed_horizon(&self, coll: &CollectionEntry) -> Result<u64> {
        match self.txn.open_table(FEED_HORIZONS) {
            Ok(t) => Ok(t.get(coll.id).map_err(redb_err("read horizon"))?.map_or(0, |v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(redb_err("open horizons")(e)),
        }
    }

    /// The changes of `coll` after position `after` (a sequence number; 0 is the start), in
    /// commit order: at most `max_changes` of them, and no more once `max_bytes` of documents
    /// and vectors were read (at least one change is returned when there is one). `seen_horizon`
    /// is the horizon of the page that handed out `after` (0 for the start). Errors:
    /// [`StorageError::ChangesPruned`] (see the module docs), [`StorageError::PositionAhead`]
    /// past the last sequence number.
    pub fn changes(
        &self,
        coll: &CollectionEntry,
        after: u64,
        seen_horizon: u64,
        max_changes: usize,
        max_bytes: usize,
    ) -> Result<ChangePage> {
        let last_seq = self.last_seq(coll)?;
        if after > last_seq {
            return Err(StorageError::PositionAhead {
                name: coll.name.clone(),
                position: after,
                last_seq,
            });
        }
        let horizon = self.feed_horizon(coll)?;
        if after != 0 && after < horizon && seen_horizon < horizon {
            return Err(StorageError::ChangesPruned {
                name: coll.name.clone(),
                position: after,
                horizon,
            });
        }
        let t = Self::tables(coll);
        let docs = self.open(coll, t.docs())?;
        let vecs = self.open(coll, t.vecs())?;
        // A collection made before the feed existed has no deletes table until its first delete.
        let feed = match self.txn.open_table(t.deletes()) {
            Ok(f) => Some(f),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(redb_err("open deletes")(e)),
        };
        let start = after.saturating_add(1);
        let mut di = docs.range(start..).map_err(redb_err("changes docs"))?.peekable();
        let mut fi = match &feed {
            Some(f) => Some(f.range(start..).map_err(redb_err("changes deletes"))?.peekable()),
            None => None,
        };
        let mut changes = Vec::new();
        let mut bytes = 0usize;
        loop {
            if changes.len() >= max_changes.max(1) || (bytes >= max_bytes && !changes.is_empty()) {
                break;
            }
            let next_doc = match di.peek() {
                Some(Ok((s, _))) => Some(s.value()),
                Some(Err(_)) => {
                    let e = di.next().and_then(|r| r.err()).expect("peeked an error");
                    return Err(redb_err("changes docs")(e));
                }
                None => None,
            };
            let next_del = match fi.as_mut().and_then(|f| f.peek()) {
                Some(Ok((s, _))) => Some(s.value()),
                Some(Err(_)) => {
                    let e = fi.as_mut().and_then(|f| f.next()).and_then(|r| r.err());
                    return Err(redb_err("changes deletes")(e.expect("peeked an error")));
                }
                None => None,
            };
            let change = match (next_doc, next_del) {
                (None, None) => break,
                (Some(d), del) if del.is_none_or(|x| d < x) => {
                    let (_, doc) = di.next().expect("peeked").map_err(redb_err("changes docs"))?;
                    let v = vecs.get(d).map_err(redb_err("read vec"))?.ok_or_else(|| {
                        StorageError::Corrupt {
                            table: t.vecs.clone(),
                            reason: format!("document {d} has no vector"),
                        }
                    })?;
                    let mut vector = Vec::new();
                    decode_vector(&t.vecs, v.value(), &mut vector)?;
                    bytes += doc.value().len() + v.value().len();
                    StoredChange::Upsert { seq: d, doc: decode(&t.docs, doc.value())?, vector }
                }
                (_, Some(x)) => {
                    let f = fi.as_mut().expect("a delete was peeked");
                    let (_, rec) =
                        f.next().expect("peeked").map_err(redb_err("changes deletes"))?;
                    bytes += rec.value().len();
                    let r: DeleteRecord = decode(&t.deletes, rec.value())?;
                    StoredChange::Delete {
                        seq: x,
                        id: r.id,
                        retired: r.retired,
                        time_ms: r.time_ms,
                    }
                }
                (Some(_), None) => unreachable!("handled by the first arm"),
            };
            changes.push(change);
        }
        let more = di.peek().is_some() || fi.as_mut().is_some_and(|f| f.peek().is_some());
        let next = if more { changes.last().map_or(after, StoredChange::seq) } else { last_seq };
        Ok(ChangePage { changes, next, complete: !more, horizon })
    }

    /// Highest sequence number assigned in the collection.
    pub fn last_seq(&self, coll: &CollectionEntry) -> Result<u64> {
        let seqs = self.txn.open_table(SEQUENCES).map_err(redb_err("open sequences"))?;
        seqs.get(coll.id)
            .map_err(redb_err("read sequence"))?
            .map(|v| v.value())
            .ok_or_else(|| StorageError::CollectionNotFound { name: coll.name.clone() })
    }

    /// Documents and vectors by user id (`None` where absent).
    pub fn get(&self, coll: &CollectionEntry, ids: &[&str]) -> Result<Vec<Option<FoundDocument>>> {
        let t = Self::tables(coll);
        let keys = self.open(coll, t.keys())?;
        let docs = self.open(coll, t.docs())?;
        let vecs = self.open(coll, t.vecs())?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(seq) = keys.get(*id).map_err(redb_err("read key"))?.map(|v| v.value()) else {
                out.push(None);
                continue;
            };
            let doc = docs.get(seq).map_err(redb_err("read doc"))?.ok_or_else(|| {
                StorageError::Corrupt {
                    table: t.docs.clone(),
                    reason: format!("key {id:?} points at missing sequence {seq}"),
                }
            })?;
            let doc: StoredDocument = decode(&t.docs, doc.value())?;
            let mut v = Vec::new();
            if let Some(bytes) = vecs.get(seq).map_err(redb_err("read vec"))? {
                decode_vector(&t.vecs, bytes.value(), &mut v)?;
            }
            out.push(Some((seq, doc, v)));
        }
        Ok(out)
    }

    /// Documents by sequence number (`None` where the number is retired).
    pub fn documents_by_seq(
        &self,
        coll: &CollectionEntry,
        seqs: &[u64],
    ) -> Result<Vec<Option<StoredDocument>>> {
        let t = Self::tables(coll);
        let docs = self.open(coll, t.docs())?;
        seqs.iter()
            .map(|s| {
                docs.get(*s)
                    .map_err(redb_err("read doc"))?
                    .map(|v| decode(&t.docs, v.value()))
                    .transpose()
            })
            .collect()
    }

    /// Whether a sequence number is live.
    pub fn contains_seq(&self, coll: &CollectionEntry, seq: u64) -> Result<bool> {
        let t = Self::tables(coll);
        let vecs = self.open(coll, t.vecs())?;
        Ok(vecs.get(seq).map_err(redb_err("read vec"))?.is_some())
    }

    /// Calls `f(seq, document)` for every live document with a sequence number greater than
    /// `after`, in sequence order, without reading vectors. `f` returning `false` stops the scan.
    pub fn scan_documents(
        &self,
        coll: &CollectionEntry,
        after: u64,
        mut f: impl FnMut(u64, StoredDocument) -> Result<bool>,
    ) -> Result<()> {
        let t = Self::tables(coll);
        let docs = self.open(coll, t.docs())?;
        for item in docs.range(after.saturating_add(1)..).map_err(redb_err("scan docs"))? {
            let (seq, doc) = item.map_err(redb_err("scan docs"))?;
            if !f(seq.value(), decode(&t.docs, doc.value())?)? {
                break;
            }
        }
        Ok(())
    }

    /// Vectors by sequence number (`None` where the number is retired).
    pub fn vectors_by_seq(
        &self,
        coll: &CollectionEntry,
        seqs: &[u64],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let t = Self::tables(coll);
        let vecs = self.open(coll, t.vecs())?;
        seqs.iter()
            .map(|s| {
                let Some(bytes) = vecs.get(*s).map_err(redb_err("read vec"))? else {
                    return Ok(None);
                };
                let mut v = Vec::new();
                decode_vector(&t.vecs, bytes.value(), &mut v)?;
                Ok(Some(v))
            })
            .collect()
    }

    /// The recorded insertion times of a collection's writes, in sequence order: calls
    /// `f(last_seq, unix_ms)` per write that inserted documents (those with sequence numbers
    /// after the previous entry's, up to `last_seq`). `f` returning `false` stops.
    pub fn commit_times(
        &self,
        coll: &CollectionEntry,
        mut f: impl FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        let times = match self.txn.open_table(COMMIT_TIMES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(redb_err("open times")(e)),
        };
        for item in times.range((coll.id, 0)..=(coll.id, u64::MAX)).map_err(redb_err("times"))? {
            let (k, v) = item.map_err(redb_err("read times"))?;
            if !f(k.value().1, v.value()) {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f(seq, document, vector)` for every live document with a sequence number greater
    /// than `after`, in sequence order. `f` returning `false` stops the scan.
    pub fn scan(
        &self,
        coll: &CollectionEntry,
        after: u64,
        mut f: impl FnMut(u64, StoredDocument, &[f32]) -> bool,
    ) -> Result<()> {
        let t = Self::tables(coll);
        let docs = self.open(coll, t.docs())?;
        let vecs = self.open(coll, t.vecs())?;
        let start = after.saturating_add(1);
        let mut di = docs.range(start..).map_err(redb_err("scan docs"))?;
        let vi = vecs.range(start..).map_err(redb_err("scan vecs"))?;
        let mut v = Vec::new();
        for item in vi {
            let (seq, bytes) = item.map_err(redb_err("scan vecs"))?;
            let seq = seq.value();
            let (dseq, doc) = di
                .next()
                .ok_or_else(|| StorageError::Corrupt {
                    table: t.docs.clone(),
                    reason: format!("vector {seq} has no document"),
                })?
                .map_err(redb_err("scan docs"))?;
            if dseq.value() != seq {
                return Err(StorageError::Corrupt {
                    table: t.docs.clone(),
                    reason: format!("vector {seq} paired with document {}", dseq.value()),
                });
            }
            decode_vector(&t.vecs, bytes.value(), &mut v)?;
            let doc: StoredDocument = decode(&t.docs, doc.value())?;
            if !f(seq, doc, &v) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Storage {
        Storage::open(dir, &StorageOptions::default()).expect("open")
    }

    fn write(s: &Storage, c: &CollectionEntry, up: &[(&str, f32)], del: &[&str], t: u64) {
        let vs: Vec<[f32; 2]> = up.iter().map(|(_, x)| [*x, 1.0]).collect();
        let docs: Vec<DocumentWrite<'_>> = up
            .iter()
            .zip(&vs)
            .map(|((id, _), v)| DocumentWrite { id, text: Some(id), metadata: "{}", vector: v })
            .collect();
        s.prepare_write(c, &docs, del, t).and_then(PendingWrite::commit).expect("write");
    }

    /// The feed as (seq, "+id" or "-id") from `after`, read in pages of `page` changes.
    fn feed(
        s: &Storage,
        c: &CollectionEntry,
        after: u64,
        page: usize,
    ) -> (Vec<(u64, String)>, u64) {
        let (mut out, mut pos, mut seen) = (Vec::new(), after, 0);
        loop {
            let snap = s.snapshot().expect("snap");
            let p = snap.changes(c, pos, seen, page, usize::MAX).expect("changes");
            seen = p.horizon;
            assert!(p.changes.len() <= page);
            for ch in &p.changes {
                out.push(match ch {
                    StoredChange::Upsert { seq, doc, vector } => {
                        assert_eq!(vector.len(), 2);
                        (*seq, format!("+{}", doc.id))
                    }
                    StoredChange::Delete { seq, id, .. } => (*seq, format!("-{id}")),
                });
            }
            assert!(p.next >= pos, "positions only move forward");
            pos = p.next;
            if p.complete {
                return (out, pos);
            }
        }
    }

    #[test]
    fn the_feed_holds_every_change_in_commit_order_and_deletes_have_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        write(&s, &c, &[("a", 1.0), ("b", 2.0), ("c", 3.0)], &[], 10); // 1 2 3
        write(&s, &c, &[("a", 4.0)], &["b"], 20); // a@4, delete b @5
        write(&s, &c, &[("d", 5.0)], &["d", "zz"], 30); // d@6, delete d @7 (zz: nothing)
        let want: Vec<(u64, String)> =
            [(3, "+c"), (4, "+a"), (5, "-b"), (7, "-d")].map(|(s, x)| (s, x.to_string())).into();
        for page in [1, 2, 3, 100] {
            let (got, end) = feed(&s, &c, 0, page);
            assert_eq!(got, want, "page {page}");
            assert_eq!(end, 7);
        }
        // From a position: only what came after; at the end: nothing, the same position.
        assert_eq!(feed(&s, &c, 4, 10).0, want[2..].to_vec());
        assert_eq!(feed(&s, &c, 7, 10), (Vec::new(), 7));
        // The delete record says what it retired and when.
        let p = s.snapshot().expect("snap").changes(&c, 4, 0, 1, usize::MAX).expect("changes");
        assert_eq!(
            p.changes[0],
            StoredChange::Delete { seq: 5, id: "b".into(), retired: 2, time_ms: 20 }
        );
        assert_eq!((p.next, p.complete), (5, false));
        // A byte budget ends a page early, after at least one change.
        let p = s.snapshot().expect("snap").changes(&c, 0, 0, 100, 1).expect("changes");
        assert_eq!(p.changes.len(), 1);
        // Positions survive a restart.
        drop(s);
        let s = open(dir.path());
        assert_eq!(feed(&s, &c, 4, 10).0, want[2..].to_vec());
        // A position from another history is refused.
        assert!(matches!(
            s.snapshot().expect("snap").changes(&c, 8, 0, 10, usize::MAX),
            Err(StorageError::PositionAhead { position: 8, last_seq: 7, .. })
        ));
    }

    #[test]
    fn pruning_raises_the_horizon_and_old_positions_need_a_new_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        write(&s, &c, &[("a", 1.0), ("b", 2.0), ("c", 3.0)], &[], 10); // 1 2 3
        write(&s, &c, &[], &["a"], 100); // 4
        write(&s, &c, &[], &["b"], 200); // 5
        assert_eq!(s.prune_changes(&c, 150).expect("prune"), 1, "the delete at 100 ms");
        assert_eq!(s.prune_changes(&c, 150).expect("prune"), 0, "nothing older left");
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.feed_horizon(&c).expect("horizon"), 4);
        for pos in [1, 3] {
            assert!(matches!(
                snap.changes(&c, pos, 0, 10, usize::MAX),
                Err(StorageError::ChangesPruned { horizon: 4, .. })
            ));
        }
        drop(snap);
        assert_eq!(feed(&s, &c, 4, 10).0, vec![(5, "-b".to_string())]);
        // The start is always readable: the live documents, and the deletes still recorded;
        // paged one change at a time, its positions (below the horizon) stay readable...
        let want = vec![(3, "+c".to_string()), (5, "-b".to_string())];
        assert_eq!(feed(&s, &c, 0, 10).0, want);
        assert_eq!(feed(&s, &c, 0, 1).0, want);
        // ...until the horizon moves past them.
        let p = s.snapshot().expect("snap").changes(&c, 0, 0, 1, usize::MAX).expect("start");
        assert_eq!((p.next, p.horizon), (3, 4));
        write(&s, &c, &[("d", 4.0)], &["c"], 300); // d@6, delete c @7
        assert_eq!(s.prune_changes(&c, 250).expect("prune"), 1, "b's record");
        let again = s.snapshot().expect("snap").changes(&c, p.next, p.horizon, 1, usize::MAX);
        assert!(matches!(again, Err(StorageError::ChangesPruned { horizon: 5, .. })));
    }

    #[test]
    fn a_file_from_before_the_feed_gets_its_last_sequence_as_horizon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        write(&s, &c, &[("a", 1.0), ("b", 2.0)], &[], 10);
        // What an older version left: no horizon entry (its deletes had no records).
        let w = s.begin_write().expect("write");
        w.open_table(FEED_HORIZONS).expect("table").remove(c.id).expect("remove");
        w.commit().expect("commit");
        drop(s);
        let s = open(dir.path());
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.feed_horizon(&c).expect("horizon"), 2);
        assert!(matches!(
            snap.changes(&c, 1, 0, 10, usize::MAX),
            Err(StorageError::ChangesPruned { .. })
        ));
        assert_eq!(snap.changes(&c, 0, 0, 10, usize::MAX).expect("start").changes.len(), 2);
    }

    #[test]
    fn roundtrip_upsert_replace_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        let v = [1.0f32, 2.0];
        let w = s
            .prepare_write(
                &c,
                &[
                    DocumentWrite { id: "a", text: Some("x"), metadata: "{}", vector: &v },
                    DocumentWrite { id: "b", text: None, metadata: "{}", vector: &v },
                ],
                &[],
                0,
            )
            .expect("prepare");
        let r = w.commit().expect("commit");
        assert_eq!(r.inserted, vec![1, 2]);
        let w = s
            .prepare_write(
                &c,
                &[DocumentWrite { id: "a", text: Some("y"), metadata: "{}", vector: &v }],
                &["b", "zz"],
                0,
            )
            .expect("prepare");
        let r = w.commit().expect("commit");
        assert_eq!(r.inserted, vec![3]);
        assert_eq!(r.removed, vec![1, 2]);
        assert_eq!(r.deleted, 1);
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.count(&c).expect("count"), 1);
        let got = snap.get(&c, &["a", "b"]).expect("get");
        let (seq, doc, vec) = got[0].clone().expect("a present");
        assert_eq!((seq, doc.text.as_deref(), vec.as_slice()), (3, Some("y"), &v[..]));
        assert!(got[1].is_none());
        let mut seen = vec![];
        snap.scan(&c, 0, |s, d, _| {
            seen.push((s, d.id));
            true
        })
        .expect("scan");
        assert_eq!(seen, vec![(3, "a".to_string())]);
    }

    #[test]
    fn inserted_stays_in_input_order_when_the_batch_retires_an_upsert() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        let v = [1.0f32];
        let r = s
            .prepare_write(
                &c,
                &[
                    DocumentWrite { id: "a", text: None, metadata: "{}", vector: &v },
                    DocumentWrite { id: "b", text: None, metadata: "{}", vector: &v },
                ],
                &["a"],
                0,
            )
            .expect("prepare")
            .commit()
            .expect("commit");
        assert_eq!((r.inserted, r.removed, r.deleted), (vec![1, 2], vec![1], 1));
        let snap = s.snapshot().expect("snap");
        assert_eq!(snap.count(&c).expect("count"), 1);
        assert!(snap.get(&c, &["a"]).expect("get")[0].is_none());
    }

    #[test]
    fn dropped_pending_write_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        let v = [1.0f32];
        let w = s
            .prepare_write(
                &c,
                &[DocumentWrite { id: "a", text: None, metadata: "{}", vector: &v }],
                &[],
                0,
            )
            .expect("prepare");
        drop(w);
        assert_eq!(s.snapshot().expect("snap").count(&c).expect("count"), 0);
        assert_eq!(s.snapshot().expect("snap").last_seq(&c).expect("seq"), 0);
    }

    #[test]
    fn decode_rejects_garbage_and_trailing_bytes() {
        let ok = encode(&StoredDocumentRef { id: "a", text: None, metadata: "{}" }).expect("enc");
        let mut long = ok.clone();
        long.push(0);
        assert!(matches!(decode::<StoredDocument>("t", &long), Err(StorageError::Corrupt { .. })));
        assert!(matches!(
            decode::<StoredDocument>("t", &[0xff; 3]),
            Err(StorageError::Corrupt { .. })
        ));
        let mut v = vec![];
        assert!(decode_vector("t", &[0u8; 5], &mut v).is_err());
    }

    #[test]
    fn version_guarded_deletes_and_commit_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        let v = [1.0f32, 2.0];
        let put = |id, t| {
            let w = [DocumentWrite { id, text: None, metadata: "{}", vector: &v }];
            s.prepare_write(&c, &w, &[], t).and_then(PendingWrite::commit).expect("write")
        };
        put("a", 10);
        put("b", 20);
        put("a", 30); // a is now sequence 3
        let r = s
            .prepare_delete_versions(&c, &[("a", 1), ("b", 2), ("zz", 9)], 0)
            .and_then(PendingWrite::commit)
            .expect("delete");
        assert_eq!((r.deleted, r.removed.clone()), (1, vec![2]), "a's old version is not live");
        let snap = s.snapshot().expect("snapshot");
        assert_eq!(snap.count(&c).expect("count"), 1);
        let mut times = Vec::new();
        snap.commit_times(&c, |seq, t| {
            times.push((seq, t));
            true
        })
        .expect("times");
        assert_eq!(times, vec![(1, 10), (2, 20), (3, 30)]);
        drop(snap);
        assert!(s.drop_collection("c").expect("drop"));
        let c2 = s.create_collection("c", b"{}").expect("create");
        let mut n = 0;
        s.snapshot()
            .expect("snapshot")
            .commit_times(&c2, |_, _| {
                n += 1;
                true
            })
            .expect("times");
        assert_eq!(n, 0, "a dropped collection's times go with it");
    }

    #[test]
    fn compaction_waits_for_readers_then_gives_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path());
        let c = s.create_collection("c", b"{}").expect("create");
        let v = vec![0.5f32; 256];
        for batch in 0..20 {
            let ids: Vec<String> = (0..100).map(|i| format!("{batch}-{i}")).collect();
            let w: Vec<DocumentWrite<'_>> = ids
                .iter()
                .map(|id| DocumentWrite { id, text: Some("t"), metadata: "{}", vector: &v })
                .collect();
            s.prepare_write(&c, &w, &[], 0).and_then(PendingWrite::commit).expect("write");
        }
        let snap = s.snapshot().expect("snapshot");
        let wait = std::time::Duration::from_millis(100);
        assert!(matches!(s.compact(wait), Err(StorageError::Busy { .. })));
        drop(snap);
        let (before, after) = s.compact(wait).expect("compact");
        assert!(after <= before);
        assert_eq!(s.snapshot().expect("snapshot").count(&c).expect("count"), 2_000);
    }
}
