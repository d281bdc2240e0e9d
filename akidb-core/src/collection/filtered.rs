//! The matches of a filter that names a field no payload index holds ([`StoredMatches`]).
//!
//! Such a filter cannot be evaluated from memory during a graph walk, so its matches are found
//! first: decided from the declared columns where three-valued evaluation can (`payload.rs`),
//! the rest from the metadata in storage — one read by sequence number each when few are left,
//! else one scan of the collection. They are found in a snapshot that holds exactly the
//! applied state after write `upto` (a write committed but not yet applied makes it wait and
//! look again), so they are the matches of one committed state. A search then runs against
//! the state applied by then: a document is immutable under its sequence number, so a match
//! stays a match; documents written since `upto` are read on their own ([`newer_matches`]).
//!
//! [`newer_matches`]: super::Collection::newer_matches

use std::collections::HashSet;

use akidb_index::{HnswIndex, VectorSearch};
use akidb_storage::{Snapshot, StoredDocument};

use super::metadata;
use super::payload::Plan;
use super::Collection;
use crate::filter::Filter;
use crate::Result;

/// Attempts at a snapshot equal to the applied state before going on with a newer one.
const ATTEMPTS: usize = 8;

/// The live documents matching a filter as of applied write `upto` (see the module docs).
#[derive(Debug)]
pub(crate) struct StoredMatches {
    upto: u64,
    set: HashSet<u64>,
}

impl StoredMatches {
    /// Whether live document `seq` matches, `newer` holding the matches written after `upto`.
    pub(crate) fn contains(&self, seq: u64, newer: &[u64]) -> bool {
        if seq <= self.upto {
            self.set.contains(&seq)
        } else {
            newer.binary_search(&seq).is_ok()
        }
    }

    /// Every match.
    pub(crate) fn list(&self, newer: &[u64]) -> Vec<u64> {
        self.set.iter().chain(newer).copied().collect()
    }

    /// The share of `live` documents that match.
    pub(crate) fn share(&self, newer: &[u64], live: usize) -> f64 {
        ((self.set.len() + newer.len()) as f64 / live.max(1) as f64).min(1.0)
    }
}

impl Collection {
    /// Finds the matches of `filter` (see the module docs).
    pub(crate) fn stored_matches(&self, filter: &Filter) -> Result<StoredMatches> {
        let entry = &self.state.entry;
        let mut attempt = 0;
        let (upto, snap, mut set, undecided, live) = loop {
            let applied = self.state.engine.read()?;
            let snap = self.db.store.snapshot()?;
            let upto = applied.seq();
            let last = snap.last_seq(entry).map_err(|e| self.storage_error(e))?;
            attempt += 1;
            if last != upto && attempt < ATTEMPTS {
                drop((snap, applied));
                self.state.engine.wait_for_writer()?;
                continue;
            }
            let p = applied.payload();
            if p.keeps_nothing() {
                break (upto, snap, HashSet::new(), None, applied.index().len());
            }
            let plan = Plan::new(filter, p);
            let (mut set, mut undecided) = (HashSet::new(), Vec::new());
            for (row, seq) in p.rows() {
                match plan.eval(p, row) {
                    Some(true) => drop(set.insert(seq)),
                    None => undecided.push(seq),
                    Some(false) => {}
                }
            }
            break (upto, snap, set, Some(undecided), p.len());
        };
        let mut failure = None;
        let mut test = |seq: u64, doc: &StoredDocument| {
            match metadata::doc_matches(filter, seq, doc, entry) {
                Ok(true) => drop(set.insert(seq)),
                Ok(false) => {}
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        };
        let scanned = match undecided {
            Some(seqs) if seqs.len() < live / 8 => read_each(&snap, self, &seqs, &mut test),
            Some(seqs) => {
                let wanted: HashSet<u64> = seqs.into_iter().collect();
                snap.scan_documents(entry, 0, |seq, doc| {
                    Ok(seq <= upto && (!wanted.contains(&seq) || test(seq, &doc)))
                })
            }
            None => snap.scan_documents(entry, 0, |seq, doc| Ok(seq <= upto && test(seq, &doc))),
        };
        scanned.map_err(|e| self.storage_error(e))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(StoredMatches { upto, set }),
        }
    }

    /// The live documents of `index` written after `stored.upto` that match `filter`, read
    /// from `snap` (taken with the index's state applied), ascending.
    pub(crate) fn newer_matches(
        &self,
        stored: &StoredMatches,
        index: &HnswIndex,
        filter: &Filter,
        snap: &Snapshot,
    ) -> Result<Vec<u64>> {
        let mut newer: Vec<u64> =
            index.flat().ids().iter().copied().filter(|s| *s > stored.upto).collect();
        if newer.is_empty() {
            return Ok(newer);
        }
        newer.sort_unstable();
        let mut matched = Vec::new();
        let mut failure = None;
        read_each(snap, self, &newer, &mut |seq, doc| {
            match metadata::doc_matches(filter, seq, doc, &self.state.entry) {
                Ok(true) => matched.push(seq),
                Ok(false) => {}
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        })
        .map_err(|e| self.storage_error(e))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(matched),
        }
    }
}

/// Shows `test` the stored documents of `seqs` (those still there), until it answers `false`.
fn read_each(
    snap: &Snapshot,
    c: &Collection,
    seqs: &[u64],
    test: &mut dyn FnMut(u64, &StoredDocument) -> bool,
) -> akidb_storage::Result<()> {
    for chunk in seqs.chunks(1_024) {
        let docs = snap.documents_by_seq(&c.state.entry, chunk)?;
        for (seq, doc) in chunk.iter().zip(docs) {
            if doc.is_some_and(|d| !test(*seq, &d)) {
                return Ok(());
            }
        }
    }
    Ok(())
}
