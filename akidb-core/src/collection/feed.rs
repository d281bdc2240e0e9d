//! The change feed: every committed change of a collection, in commit order, from a position.
//!
//! What a syncer (a fleet's central database, a backup elsewhere) reads to follow a collection:
//! [`Collection::changes_since`] returns the upserts (the live version of each document written
//! since, with its text, metadata and vector) and the deletes (the id) after a
//! [`ChangePosition`], in pages bounded in count and bytes, and the position to ask for next.
//! Positions are sequence numbers of the database file, so they survive restarts; their text
//! form names the database and collection, so one cannot be used on another.
//!
//! Guarantees (tests in `tests/change_feed.rs`):
//!
//! - **Complete**: a consumer that applies every page in order, from the start or from a
//!   position it was given, holds exactly the collection's live documents at the position it
//!   reached. A version replaced by a later upsert is not repeated (the later one is in the
//!   feed); every delete has a record, written in the same transaction as the delete.
//! - **Bounded**: a page holds at most `limit` changes (1 to [`MAX_CHANGES_PER_PAGE`]) and stops
//!   once [`CHANGE_PAGE_BYTES`] of documents were read (always at least one change).
//! - **Pruned, never silently**: delete records older than [`CHANGE_FEED_KEEP`] are pruned by
//!   `optimize` and retention passes (or [`Collection::prune_changes`]); a position older than
//!   the pruned records is [`Error::ChangesPruned`] (unless no record was pruned since the
//!   position was handed out: the pages of a pass from the start stay readable below a horizon
//!   set before the pass began): the consumer starts again from
//!   [`Collection::change_start`] (which never needs a pruned record: a document deleted before
//!   it was read need not be deleted again) and drops what the new pass did not send.
//! - **One history**: a position beyond the collection's last sequence number (an older copy of
//!   the database file was restored) is [`Error::InvalidPosition`], never an empty page.

use std::time::Duration;

use akidb_storage::{Storage, StorageError, StoredChange};

use super::lifecycle::{parse_token, Token};
use super::{metadata, CollectionState};
use crate::{Collection, Document, Error, Result};

/// Most changes in one page.
pub const MAX_CHANGES_PER_PAGE: usize = 10_000;
/// A page stops once this many bytes of documents and vectors were read.
pub const CHANGE_PAGE_BYTES: usize = 32 << 20;
/// How long delete records are kept before `optimize` and retention passes prune them: a
/// consumer away longer must start again from the beginning.
pub const CHANGE_FEED_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// A position in a collection's change feed (see the module docs). Its text form (`Display` /
/// `FromStr`) is opaque and safe to store (a syncer keeps it with what it wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangePosition {
    database_id: [u8; 16],
    collection_id: u64,
    seq: u64,
    /// The feed's horizon when the position was handed out (see `akidb_storage`'s feed docs).
    horizon: u64,
}

impl ChangePosition {
    /// The sequence number the position stands after (0: the start).
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl std::fmt::Display for ChangePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = Token(&self.database_id);
        write!(f, "f1.{id}.{}.{}.{}", self.collection_id, self.seq, self.horizon)
    }
}

impl std::str::FromStr for ChangePosition {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (database_id, n) = parse_token(s, "f1", 3)
            .ok_or(Error::InvalidPosition { reason: "not a change feed position" })?;
        Ok(Self { database_id, collection_id: n[0], seq: n[1], horizon: n[2] })
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// A document was written (inserted or replaced); this is its live version.
    Upsert {
        /// The version's sequence number.
        seq: u64,
        /// The document, its vector as it was given.
        document: Document,
    },
    /// A document was deleted.
    Delete {
        /// The delete's sequence number.
        seq: u64,
        /// The user id.
        id: String,
    },
}

impl Change {
    /// The change's sequence number (commit order).
    pub fn seq(&self) -> u64 {
        match self {
            Change::Upsert { seq, .. } | Change::Delete { seq, .. } => *seq,
        }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// The changes, in commit order.
    pub changes: Vec<Change>,
    /// Where to continue: pass it to the next [`Collection::changes_since`].
    pub position: ChangePosition,
    /// Whether the page reached the end of the feed as it was when read (later writes appear in
    /// later pages).
    pub caught_up: bool,
}

impl Collection {
    /// The start of this collection's change feed: the first page from it holds every live
    /// document (and the delete records still kept).
    pub fn change_start(&self) -> ChangePosition {
        self.position(0, 0)
    }

    fn position(&self, seq: u64, horizon: u64) -> ChangePosition {
        ChangePosition {
            database_id: self.db.store.database_id(),
            collection_id: self.state.entry.id,
            seq,
            horizon,
        }
    }

    /// Up to `limit` changes after `position`, in commit order, from one snapshot (see the
    /// module docs). Errors: [`Error::InvalidPageSize`] for `limit` 0 or over
    /// [`MAX_CHANGES_PER_PAGE`]; [`Error::InvalidPosition`] for a position of another database
    /// or collection, or beyond the collection's history; [`Error::ChangesPruned`] when delete
    /// records after the position were pruned.
    pub fn changes_since(&self, position: &ChangePosition, limit: usize) -> Result<ChangePage> {
        self.check_live()?;
        if limit == 0 || limit > MAX_CHANGES_PER_PAGE {
            return Err(Error::InvalidPageSize { size: limit, max: MAX_CHANGES_PER_PAGE });
        }
        if position.database_id != self.db.store.database_id() {
            return Err(Error::InvalidPosition { reason: "it belongs to another database" });
        }
        if position.collection_id != self.state.entry.id {
            return Err(Error::InvalidPosition { reason: "it belongs to another collection" });
        }
        let entry = &self.state.entry;
        let page = self
            .db
            .store
            .snapshot()?
            .changes(entry, position.seq, position.horizon, limit, CHANGE_PAGE_BYTES)
            .map_err(|e| match e {
                StorageError::ChangesPruned { position, horizon, .. } => {
                    Error::ChangesPruned { collection: entry.name.clone(), position, horizon }
                }
                StorageError::PositionAhead { .. } => Error::InvalidPosition {
                    reason: "it is beyond the collection's last change: another history of \
                             the database (an older copy restored?)",
                },
                e => super::map_storage_error(e),
            })?;
        let mut changes = Vec::with_capacity(page.changes.len());
        for c in page.changes {
            changes.push(match c {
                StoredChange::Upsert { seq, doc, vector } => {
                    let metadata = metadata::parse_object(&doc.metadata, seq, entry)?;
                    let document = Document {
                        id: doc.id,
                        vector,
                        text: doc.text,
                        metadata: serde_json::Value::Object(metadata),
                    };
                    Change::Upsert { seq, document }
                }
                StoredChange::Delete { seq, id, .. } => Change::Delete { seq, id },
            });
        }
        let position = self.position(page.next, page.horizon);
        Ok(ChangePage { changes, position, caught_up: page.complete })
    }

    /// Prunes the records of deletes committed more than `older_than` ago (by the database's
    /// clock); returns how many went. Positions before them can no longer be read
    /// ([`Error::ChangesPruned`]). `optimize` and retention passes prune with
    /// [`CHANGE_FEED_KEEP`].
    pub fn prune_changes(&self, older_than: Duration) -> Result<usize> {
        self.check_live()?;
        prune(&self.state, &self.db.store, self.db.clock.now_ms(), older_than)
    }
}

/// Prunes `state`'s delete records older than `keep` at `now_ms`.
pub(crate) fn prune(
    state: &CollectionState,
    store: &Storage,
    now_ms: u64,
    keep: Duration,
) -> Result<usize> {
    let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
    store
        .prune_changes(&state.entry, now_ms.saturating_sub(keep_ms))
        .map_err(super::map_storage_error)
}
