//! The keyword side of a collection: its full-text index (`akidb_fulltext`), kept like the
//! vector index, as a cache of storage.
//!
//! - **On load** the index in `index/c<id>/fulltext` is opened (a damaged, foreign or newer one
//!   is started afresh by `FullTextIndex::open`), then checked and brought up to date in the
//!   same storage scan that reads the vectors: every live document with text up to the index's
//!   watermark must be in it with the digest of its stored text (else the index is rebuilt from
//!   the same snapshot: a database file restored from an older copy), the newer ones are added,
//!   the ones retired since are deleted, and the result is committed with storage's last
//!   sequence number as the new watermark.
//! - **On each write** (`engine.rs`, under the commit lock) the retired documents are deleted
//!   and the new texts added, then tantivy commits; the new snapshot is published together with
//!   the write's vectors, so a search sees both sides at the same sequence number.
//! - **Failures** never fail a write or an open: the write is durable in storage already. The
//!   side is marked failed (keyword and hybrid queries then return [`Error::FullText`]) until
//!   the collection is opened again, which rebuilds or catches up from storage.

use std::path::Path;
use std::sync::Arc;

use akidb_fulltext::{digest, FullTextIndex, Identity, Opened, Snapshot};
use akidb_storage::{CollectionEntry, Snapshot as StorageSnapshot};

use crate::{Error, Result};

/// The folder of a collection's full-text index, inside its index folder.
pub(crate) fn dir(index_dir: &Path) -> std::path::PathBuf {
    index_dir.join("fulltext")
}

/// The keyword side as searches read it.
#[derive(Debug)]
pub(crate) enum TextSide {
    /// The index and its last committed state.
    Ready {
        /// The index (written under the commit lock only).
        index: Arc<FullTextIndex>,
        /// What searches read.
        snapshot: Snapshot,
    },
    /// The index stopped following writes; why.
    Failed {
        /// For the error and the log.
        reason: String,
    },
}

impl TextSide {
    fn failed(collection: &str, reason: String) -> Self {
        log::error!(
            "collection {collection}: the full-text index stopped following writes ({reason}); \
             keyword and hybrid queries fail until the collection is opened again"
        );
        TextSide::Failed { reason }
    }

    /// The state a keyword search reads, or why there is none.
    pub(crate) fn snapshot(&self, collection: &str) -> Result<&Snapshot> {
        match self {
            TextSide::Ready { snapshot, .. } => Ok(snapshot),
            TextSide::Failed { reason } => {
                Err(Error::FullText { collection: collection.into(), reason: reason.clone() })
            }
        }
    }

    /// The index, for a write to update (none once failed).
    pub(crate) fn index(&self) -> Option<Arc<FullTextIndex>> {
        match self {
            TextSide::Ready { index, .. } => Some(index.clone()),
            TextSide::Failed { .. } => None,
        }
    }

    /// The side after a write: `update` is what updating `index` gave.
    pub(crate) fn after(
        collection: &str,
        update: std::result::Result<Snapshot, String>,
        index: Arc<FullTextIndex>,
    ) -> Self {
        match update {
            Ok(snapshot) => TextSide::Ready { index, snapshot },
            Err(reason) => Self::failed(collection, reason),
        }
    }
}

/// Deletes `removed`, adds `texts` (sequence number, text) and commits at `last_seq`.
pub(crate) fn update(
    index: &FullTextIndex,
    removed: &[u64],
    texts: &[(u64, String)],
    last_seq: u64,
) -> std::result::Result<Snapshot, String> {
    for seq in removed {
        index.delete(*seq);
    }
    for (seq, text) in texts {
        index.add(*seq, text).map_err(|e| e.to_string())?;
    }
    index.commit(last_seq).map_err(|e| e.to_string())
}

/// The keyword side of a new, empty collection.
pub(crate) fn empty(collection: &str, index_dir: &Path, identity: Identity) -> TextSide {
    match FullTextIndex::open(&dir(index_dir), identity, 0) {
        Ok((index, _)) => {
            let snapshot = index.snapshot();
            TextSide::Ready { index: Arc::new(index), snapshot }
        }
        Err(e) => TextSide::failed(collection, e.to_string()),
    }
}

/// Brings the full-text index in step with one storage scan (see the module docs): fed each
/// live document in sequence order by [`Loader::visit`], then [`Loader::finish`]ed.
pub(crate) struct Loader {
    collection: String,
    state: LoadState,
}

enum LoadState {
    /// Checking the documents up to `covered` against `indexed`, adding the newer ones.
    Checking {
        index: FullTextIndex,
        covered: u64,
        indexed: Vec<(u64, u64)>,
        seen: Vec<bool>,
        added: u64,
        /// The first document that did not match, if any: rebuild.
        mismatch: Option<u64>,
    },
    /// A fresh index: every document is added.
    Filling {
        index: FullTextIndex,
        added: u64,
        reason: String,
    },
    Failed(String),
}

impl Loader {
    /// Opens the index for a scan of storage up to `last_seq`.
    pub(crate) fn open(
        collection: &str,
        index_dir: &Path,
        identity: Identity,
        last_seq: u64,
    ) -> Self {
        let state = match FullTextIndex::open(&dir(index_dir), identity, last_seq) {
            Err(e) => LoadState::Failed(e.to_string()),
            Ok((index, Opened::Fresh { reason })) => LoadState::Filling { index, added: 0, reason },
            Ok((index, Opened::Loaded { covered_seq })) => match index.indexed() {
                Ok(indexed) => LoadState::Checking {
                    index,
                    covered: covered_seq,
                    seen: vec![false; indexed.len()],
                    indexed,
                    added: 0,
                    mismatch: None,
                },
                Err(e) => LoadState::Failed(e.to_string()),
            },
        };
        Self { collection: collection.into(), state }
    }

    /// One live document, in ascending sequence order.
    pub(crate) fn visit(&mut self, seq: u64, text: Option<&str>) {
        let Some(text) = text else { return };
        let failure = match &mut self.state {
            LoadState::Checking { index, covered, indexed, seen, added, mismatch } => {
                if mismatch.is_some() {
                    return;
                }
                if seq <= *covered {
                    match indexed.binary_search_by_key(&seq, |e| e.0) {
                        Ok(i) if indexed[i].1 == digest(text) => seen[i] = true,
                        _ => *mismatch = Some(seq),
                    }
                    return;
                }
                *added += 1;
                index.add(seq, text).err()
            }
            LoadState::Filling { index, added, .. } => {
                *added += 1;
                index.add(seq, text).err()
            }
            LoadState::Failed(_) => return,
        };
        if let Some(e) = failure {
            self.state = LoadState::Failed(e.to_string());
        }
    }

    /// Finishes at `last_seq`: deletes what storage no longer holds and commits; a mismatch
    /// found by the check rebuilds the index from `snap`.
    pub(crate) fn finish(
        self,
        snap: &StorageSnapshot,
        entry: &CollectionEntry,
        index_dir: &Path,
        identity: Identity,
        last_seq: u64,
    ) -> TextSide {
        let name = self.collection;
        let done = match self.state {
            LoadState::Failed(reason) => Err(reason),
            LoadState::Checking { index, indexed, seen, added, mismatch: None, covered } => {
                let mut deleted = 0;
                for ((seq, _), seen) in indexed.iter().zip(&seen) {
                    if !seen {
                        index.delete(*seq);
                        deleted += 1;
                    }
                }
                log::info!(
                    "collection {name}: full-text index covering sequence {covered} loaded; \
                     {added} newer texts added, {deleted} retired ones deleted"
                );
                commit(index, last_seq)
            }
            LoadState::Checking { index, mismatch: Some(seq), .. } => {
                drop(index);
                let reason = format!("document {seq} differs from storage's");
                rebuild(&name, snap, entry, index_dir, identity, last_seq, reason)
            }
            LoadState::Filling { index, added, reason } => {
                if added > 0 {
                    log::info!(
                        "collection {name}: full-text index built over {added} texts \
                                ({reason})"
                    );
                }
                commit(index, last_seq)
            }
        };
        match done {
            Ok((index, snapshot)) => TextSide::Ready { index: Arc::new(index), snapshot },
            Err(reason) => TextSide::failed(&name, reason),
        }
    }
}

fn commit(
    index: FullTextIndex,
    last_seq: u64,
) -> std::result::Result<(FullTextIndex, Snapshot), String> {
    let snapshot = index.commit(last_seq).map_err(|e| e.to_string())?;
    Ok((index, snapshot))
}

/// A new index over every live text of `snap`.
fn rebuild(
    name: &str,
    snap: &StorageSnapshot,
    entry: &CollectionEntry,
    index_dir: &Path,
    identity: Identity,
    last_seq: u64,
    reason: String,
) -> std::result::Result<(FullTextIndex, Snapshot), String> {
    log::info!("collection {name}: rebuilding the full-text index ({reason})");
    let index = FullTextIndex::create(&dir(index_dir), identity).map_err(|e| e.to_string())?;
    let mut failure = None;
    snap.scan_documents(entry, 0, |seq, doc| {
        if let Some(t) = &doc.text {
            failure = index.add(seq, t).err();
        }
        Ok(failure.is_none())
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = failure {
        return Err(e.to_string());
    }
    commit(index, last_seq)
}
