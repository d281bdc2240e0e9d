//! Fleet sync: a robot's AkiDB collections into PostgreSQL + pgvector, through the change feed.
//!
//! Each robot keeps AkiDB embedded; a [`Syncer`] pushes its collections into one central
//! PostgreSQL (with pgvector; Citus can distribute the same tables by `source`), where fleet-wide
//! queries run. One table per collection, shared by every robot:
//!
//! ```sql
//! CREATE TABLE "akidb_<collection>" (
//!     source    text   NOT NULL,   -- the robot (SyncConfig::source)
//!     id        text   NOT NULL,   -- the document's id in the robot's collection
//!     seq       bigint NOT NULL,   -- its sequence number there (the sequence guard)
//!     text      text,
//!     metadata  jsonb  NOT NULL,
//!     embedding vector(<dimension>) NOT NULL,
//!     PRIMARY KEY (source, id));
//! CREATE INDEX ... USING hnsw (embedding vector_cosine_ops);   -- ip / l2 ops for those metrics;
//!                                      -- built once the first sync into the table caught up
//! CREATE TABLE akidb_sync_checkpoints (source, collection, position, updated_at);
//! ```
//!
//! # Exactly-once effect over at-least-once delivery
//!
//! Every page of the change feed is applied in one PostgreSQL transaction that first locks the
//! robot's checkpoint row (`SELECT ... FOR UPDATE`), reads the feed from that position, loads the
//! upserts with binary `COPY` into a temporary table, merges them (`INSERT ... ON CONFLICT
//! (source, id) DO UPDATE ... WHERE stored.seq < new.seq`: an older change never overwrites a
//! newer one), deletes (`... WHERE stored.seq < delete.seq`), and writes the new position into
//! the checkpoint row, then commits. A syncer killed at any point leaves either the whole page
//! with its checkpoint or neither; the next run starts from the checkpoint, so nothing is lost
//! or applied twice, and two syncers of the same robot serialize on the checkpoint row.
//!
//! A checkpoint the feed can no longer serve (delete records pruned: the robot was away longer
//! than `akidb::CHANGE_FEED_KEEP`; or the robot's database was replaced or restored from an
//! older copy) starts a full resync: the robot's rows of that table are deleted in the same
//! transaction as the first page from the start is applied, and the feed is read again.
//!
//! Tests (against a real PostgreSQL started by the test set-up, `tests/sync_pg.rs`): the table
//! equals the collection row by row after rounds of upserts, replacements, deletes and deletes by
//! filter; after the syncer is SIGKILLed mid-sync at random points; after the server is stopped
//! (immediate shutdown) mid-sync and started again; after a resync forced by pruning.

use std::fmt::Write as _;

mod connect;
mod fleet;
pub use fleet::{FleetHit, FleetSearch};

use akidb::{Change, ChangePosition, Collection, Metric};
use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Transaction};

/// Changes per page (one PostgreSQL transaction), unless configured.
pub const DEFAULT_PAGE: usize = 5_000;
/// PostgreSQL's longest identifier.
const MAX_IDENTIFIER: usize = 63;

/// Errors of the syncer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// PostgreSQL refused or the connection failed (retry later: nothing half-applied stays).
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// AkiDB failed (reading the feed).
    #[error("AkiDB: {0}")]
    Akidb(#[from] akidb::Error),
    /// The collection's table name would not be a PostgreSQL identifier.
    #[error("table name {name:?} for collection {collection:?} is over 63 bytes")]
    TableName {
        /// The collection.
        collection: String,
        /// The table name it would get.
        name: String,
    },
    /// The central table exists with another vector dimension.
    #[error("table {table} holds vectors of dimension {found}; collection has {expected}")]
    Dimension {
        /// The table.
        table: String,
        /// The collection's dimension.
        expected: usize,
        /// The table's.
        found: i32,
    },
    /// The robot-side checkpoint file could not be read or written (the page was committed).
    #[error("local checkpoint {path}: {source}")]
    Local {
        /// The file.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The TLS set-up failed before connecting: the CA file (`path`) unreadable, too large or
    /// without a certificate. (A server whose certificate fails verification is a
    /// [`SyncError::Postgres`] connection error.)
    #[error("TLS{}: {reason}", tls_path(.path))]
    Tls {
        /// The CA file, when it is the cause.
        path: Option<std::path::PathBuf>,
        /// What failed.
        reason: String,
    },
    /// A configuration value out of range.
    #[error("invalid sync setting {field}: {reason}")]
    Config {
        /// Which.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// ` CA file <path>` when there is one.
fn tls_path(path: &Option<std::path::PathBuf>) -> String {
    path.as_ref().map(|p| format!(" CA file {}", p.display())).unwrap_or_default()
}

/// A PostgreSQL error with the server's own message and code when there is one, else with its
/// causes (a failed TLS handshake says why: an unknown issuer, another name).
fn pg_message(e: &postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} ({}: {})", e, d.code().code(), d.message());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = write!(out, ": {c}");
        cause = c.source();
    }
    out
}

/// Runs `ddl` in a transaction holding advisory lock `key`: `CREATE ... IF NOT EXISTS` is not
/// safe against itself in concurrent sessions (two syncers starting at once), this is.
fn locked_ddl(client: &mut Client, key: &str, ddl: &str) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7346))", &[&key])?;
    tx.batch_execute(ddl)?;
    tx.commit()?;
    Ok(())
}

/// Result of sync calls.
pub type Result<T> = std::result::Result<T, SyncError>;

/// Where and as whom to sync.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// libpq-style connection string (`host=127.0.0.1 port=5432 user=akidb dbname=fleet
    /// sslmode=require`); the password may instead come from `PGPASSWORD`. See `connect.rs`
    /// for TLS: whenever it is used, the server's certificate is verified.
    pub conninfo: String,
    /// PEM file of the CA certificates that the server's certificate must chain to (default:
    /// the system's roots).
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// This robot's name in the `source` column (1 to 200 bytes).
    pub source: String,
    /// Prefix of the tables' names (default `akidb_`).
    pub table_prefix: String,
    /// Changes per transaction (1 to `akidb::MAX_CHANGES_PER_PAGE`; default [`DEFAULT_PAGE`]).
    pub page: usize,
    /// Give the tables an HNSW index, built once a sync has caught up with a table that has
    /// none (default on).
    pub hnsw_index: bool,
    /// A directory on the robot where the syncer also keeps each checkpoint (a file per
    /// collection, written temp + fsync + rename after the page's transaction committed), so the
    /// robot knows how far the central copy got while the server is away. PostgreSQL's copy, in
    /// the rows' transaction, stays the one syncing resumes from. Default: none.
    pub local_state: Option<std::path::PathBuf>,
    /// `maintenance_work_mem` for building that index, in MiB (default 1,024): pgvector builds
    /// far faster while the graph fits in it (100,000 x 384-d: 262-275 s at PostgreSQL's
    /// default 64 MiB, docs/sync.md).
    pub index_build_memory_mb: u32,
}

impl SyncConfig {
    /// A configuration with the defaults.
    pub fn new(conninfo: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            conninfo: conninfo.into(),
            tls_ca_file: None,
            source: source.into(),
            table_prefix: "akidb_".into(),
            page: DEFAULT_PAGE,
            hnsw_index: true,
            local_state: None,
            index_build_memory_mb: 1024,
        }
    }
}

/// What one [`Syncer::sync`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// Upserts applied (including those the sequence guard found already applied).
    pub upserts: u64,
    /// Deletes applied.
    pub deletes: u64,
    /// Transactions committed.
    pub pages: u64,
    /// Whether the checkpoint could not be served and the robot's rows were sent again.
    pub resynced: bool,
    /// The checkpoint after the call.
    pub position: String,
    /// Seconds spent building the table's HNSW index, when this call built it (the first sync
    /// into a new table, once caught up).
    pub index_build_seconds: Option<f64>,
}

/// Pushes collections of one robot into PostgreSQL (see the crate docs).
pub struct Syncer {
    client: Client,
    config: SyncConfig,
    /// Tables this connection created or checked (dimension), and those known to have their
    /// index: checked once per connection, not on every sync (the schema lock is global).
    tables_checked: std::collections::HashSet<String>,
    tables_indexed: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer").field("source", &self.config.source).finish()
    }
}

/// `name` quoted as a PostgreSQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Syncer {
    /// Connects and creates the checkpoint table if missing.
    pub fn connect(config: SyncConfig) -> Result<Self> {
        if config.source.is_empty() || config.source.len() > 200 {
            return Err(SyncError::Config { field: "source", reason: "1 to 200 bytes" });
        }
        if config.page == 0 || config.page > akidb::MAX_CHANGES_PER_PAGE {
            return Err(SyncError::Config { field: "page", reason: "1 to MAX_CHANGES_PER_PAGE" });
        }
        let mut client = connect::connect(&config.conninfo, config.tls_ca_file.as_deref())?;
        locked_ddl(
            &mut client,
            "akidb schema",
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE IF NOT EXISTS akidb_sync_checkpoints (
                 source text NOT NULL, collection text NOT NULL, position text NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (source, collection));",
        )?;
        Ok(Self {
            client,
            config,
            tables_checked: Default::default(),
            tables_indexed: Default::default(),
        })
    }

    /// The central table of collection `name`.
    pub fn table_name(&self, name: &str) -> Result<String> {
        let table = format!("{}{}", self.config.table_prefix, name);
        if table.len() > MAX_IDENTIFIER {
            return Err(SyncError::TableName { collection: name.into(), name: table });
        }
        Ok(table)
    }

    /// Creates the collection's table if missing and checks its dimension (once per connection).
    fn ensure_table(&mut self, c: &Collection) -> Result<String> {
        let table = self.table_name(c.name())?;
        if self.tables_checked.contains(&table) {
            return Ok(table);
        }
        let dim = c.config().dimension;
        let q = quote(&table);
        locked_ddl(
            &mut self.client,
            "akidb schema",
            &format!(
                "CREATE TABLE IF NOT EXISTS {q} (
                     source text NOT NULL, id text NOT NULL, seq bigint NOT NULL, text text,
                     metadata jsonb NOT NULL, embedding vector({dim}) NOT NULL,
                     PRIMARY KEY (source, id))"
            ),
        )?;
        let found: i32 = self
            .client
            .query_one(
                "SELECT atttypmod FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attname = 'embedding'",
                &[&q],
            )?
            .get(0);
        if usize::try_from(found).ok() != Some(dim) {
            return Err(SyncError::Dimension { table, expected: dim, found });
        }
        self.tables_checked.insert(table.clone());
        Ok(table)
    }

    /// Builds the table's HNSW index if it has none. Called when a sync has caught up, so a
    /// table's first load goes in without the index and the index is built over it in one pass
    /// (pgvector maintains an HNSW index at about 360 rows/s per insert stream here, against
    /// tens of thousands for the load alone: docs/sync.md). Returns the seconds it took, if built.
    fn ensure_index(&mut self, c: &Collection, table: &str) -> Result<Option<f64>> {
        if self.tables_indexed.contains(table) {
            return Ok(None);
        }
        let index = format!("{}_hnsw", &table[..table.len().min(MAX_IDENTIFIER - 5)]);
        let exists = self
            .client
            .query_opt("SELECT 1 FROM pg_class WHERE relname = $1 AND relkind = 'i'", &[&index])?
            .is_some();
        if exists {
            self.tables_indexed.insert(table.to_string());
            return Ok(None);
        }
        let ops = match c.config().metric {
            Metric::Cosine => "vector_cosine_ops",
            Metric::Dot => "vector_ip_ops",
            Metric::L2 => "vector_l2_ops",
        };
        let t = std::time::Instant::now();
        let mem = self.config.index_build_memory_mb.clamp(64, 1 << 20);
        // One syncer builds it; the others wait on the lock, then find it there (and skip).
        locked_ddl(
            &mut self.client,
            &index,
            &format!(
                "SET LOCAL maintenance_work_mem = '{mem}MB';
                 CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {ops})",
                quote(&index),
                quote(table)
            ),
        )?;
        self.tables_indexed.insert(table.to_string());
        Ok(Some(t.elapsed().as_secs_f64()))
    }

    /// The checkpoint of collection `name` in PostgreSQL, if any.
    pub fn checkpoint(&mut self, name: &str) -> Result<Option<String>> {
        let row = self.client.query_opt(
            "SELECT position FROM akidb_sync_checkpoints WHERE source = $1 AND collection = $2",
            &[&self.config.source, &name],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The robot-side copy of collection `name`'s checkpoint (see [`SyncConfig::local_state`]).
    pub fn local_checkpoint(&self, name: &str) -> Result<Option<String>> {
        let Some(path) = self.local_path(name) else { return Ok(None) };
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SyncError::Local { path, source }),
        }
    }

    fn local_path(&self, name: &str) -> Option<std::path::PathBuf> {
        let dir = self.config.local_state.as_ref()?;
        let mut source = String::new();
        for b in self.config.source.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                source.push(char::from(b));
            } else {
                let _ = write!(source, "%{b:02X}");
            }
        }
        Some(dir.join(format!("{source}.{name}.position")))
    }

    /// Writes the robot-side checkpoint: temp file, fsync, rename, fsync of the directory.
    fn save_local(&self, name: &str, position: &str) -> Result<()> {
        let Some(path) = self.local_path(name) else { return Ok(()) };
        let err = |source| SyncError::Local { path: path.clone(), source };
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = path.with_extension("position.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(position.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }

    /// Pushes every change of `c` since its checkpoint, a page per transaction, until caught up
    /// with the feed as it was when each page was read.
    pub fn sync(&mut self, c: &Collection) -> Result<SyncReport> {
        let table = self.ensure_table(c)?;
        if let (Some(local), central) =
            (self.local_checkpoint(c.name())?, self.checkpoint(c.name())?)
        {
            let seq = |s: &str| s.parse::<ChangePosition>().map(|p| p.seq()).unwrap_or(0);
            match central.filter(|s| !s.is_empty()) {
                None => log::warn!(
                    "{}: the server has no checkpoint for this robot but the robot synced up to \
                     {local}: the central copy was reset; sending everything again",
                    c.name()
                ),
                Some(central) if seq(&central) < seq(&local) => log::warn!(
                    "{}: the server's checkpoint {central} is behind the robot's {local} (a \
                     restored server?); resuming from the server's",
                    c.name()
                ),
                Some(_) => {}
            }
        }
        let mut report = SyncReport::default();
        loop {
            let (caught_up, position) = self.sync_page(c, &table, &mut report)?;
            report.pages += 1;
            report.position = position;
            if caught_up {
                if self.config.hnsw_index {
                    report.index_build_seconds = self.ensure_index(c, &table)?;
                }
                return Ok(report);
            }
        }
    }

    /// One page in one transaction; returns whether the feed was caught up, and the position.
    fn sync_page(
        &mut self,
        c: &Collection,
        table: &str,
        report: &mut SyncReport,
    ) -> Result<(bool, String)> {
        let source = self.config.source.clone();
        let page_size = self.config.page;
        let name = c.name().to_string();
        let mut tx = self.client.transaction()?;
        tx.execute(
            "INSERT INTO akidb_sync_checkpoints (source, collection, position) \
             VALUES ($1, $2, '') ON CONFLICT DO NOTHING",
            &[&source, &name],
        )?;
        let stored: String = tx
            .query_one(
                "SELECT position FROM akidb_sync_checkpoints \
                 WHERE source = $1 AND collection = $2 FOR UPDATE",
                &[&source, &name],
            )?
            .get(0);
        let from = if stored.is_empty() { None } else { stored.parse::<ChangePosition>().ok() };
        let q = quote(table);
        let page = match from.map(|p| c.changes_since(&p, page_size)) {
            Some(Ok(page)) => page,
            None
            | Some(Err(
                akidb::Error::ChangesPruned { .. } | akidb::Error::InvalidPosition { .. },
            )) => {
                // No usable checkpoint: this robot's rows are sent again from the start.
                if from.is_some() || !stored.is_empty() {
                    report.resynced = true;
                    log::warn!("{name}: checkpoint {stored:?} cannot be served; full resync");
                }
                tx.execute(&format!("DELETE FROM {q} WHERE source = $1"), &[&source])?;
                c.changes_since(&c.change_start(), page_size)?
            }
            Some(Err(e)) => return Err(e.into()),
        };
        let mut ups = Vec::new();
        let mut dels: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for ch in page.changes {
            match ch {
                Change::Upsert { seq, document } => ups.push((seq, document)),
                Change::Delete { seq, id } => {
                    let s = i64::try_from(seq).unwrap_or(i64::MAX);
                    let e = dels.entry(id).or_insert(s);
                    *e = (*e).max(s);
                }
                _ => {}
            }
        }
        if !ups.is_empty() {
            copy_upserts(&mut tx, &q, &source, &ups)?;
            report.upserts += ups.len() as u64;
        }
        if !dels.is_empty() {
            let (ids, seqs): (Vec<String>, Vec<i64>) = dels.into_iter().unzip();
            let n = tx.execute(
                &format!(
                    "DELETE FROM {q} t USING unnest($2::text[], $3::bigint[]) AS d(id, seq) \
                     WHERE t.source = $1 AND t.id = d.id AND t.seq < d.seq"
                ),
                &[&source, &ids, &seqs],
            )?;
            report.deletes += n;
        }
        let position = page.position.to_string();
        tx.execute(
            "UPDATE akidb_sync_checkpoints SET position = $3, updated_at = now() \
             WHERE source = $1 AND collection = $2",
            &[&source, &name, &position],
        )?;
        tx.commit()?;
        self.save_local(&name, &position)?;
        Ok((page.caught_up, position))
    }
}

/// Loads `ups` with binary COPY into a temporary table and merges them under the sequence guard.
fn copy_upserts(
    tx: &mut Transaction<'_>,
    table: &str,
    source: &str,
    ups: &[(u64, akidb::Document)],
) -> Result<()> {
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS akidb_sync_in (LIKE {table}) ON COMMIT DROP"
    ))?;
    let vector_type =
        tx.prepare(&format!("SELECT embedding FROM {table} LIMIT 0"))?.columns()[0].type_().clone();
    let sink = tx.copy_in(
        "COPY akidb_sync_in (source, id, seq, text, metadata, embedding) \
         FROM STDIN (FORMAT binary)",
    )?;
    let types = [Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT, Type::JSONB, vector_type];
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for (seq, d) in ups {
        let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
        let metadata = match &d.metadata {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            m => m.clone(),
        };
        let v = Vector::from(d.vector.clone());
        w.write(&[&source, &d.id, &seq, &d.text, &metadata, &v])?;
    }
    w.finish()?;
    tx.batch_execute(&format!(
        "INSERT INTO {table} AS t SELECT * FROM akidb_sync_in \
         ON CONFLICT (source, id) DO UPDATE SET seq = EXCLUDED.seq, text = EXCLUDED.text, \
         metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding WHERE t.seq < EXCLUDED.seq; \
         TRUNCATE akidb_sync_in"
    ))?;
    Ok(())
}
