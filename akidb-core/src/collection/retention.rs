//! One retention pass over a collection (see [`crate::Retention`]): each rule of the policy in
//! turn, deleting through [`delete_selected`] (durable chunks of exact versions, among the
//! documents live when the rule began). The maintenance worker runs passes;
//! [`Collection::enforce_retention`] runs one now.

use akidb_storage::{Storage, StoredDocument};
use serde_json::Value;

use super::lifecycle::{delete_selected, Pick};
use super::{map_storage_error, metadata, Collection, CollectionState};
use crate::clock::Clock;
use crate::schema::Retention;
use crate::Result;

/// What one retention pass deleted, by rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Older than `max_age_secs`.
    pub expired: u64,
    /// Beyond `max_documents`.
    pub over_count: u64,
    /// Beyond `max_bytes`.
    pub over_bytes: u64,
    /// Whether the graph asks for an optimize after the deletes.
    pub(crate) needs_optimize: bool,
}

impl RetentionReport {
    /// Documents deleted by the pass.
    pub fn total(&self) -> u64 {
        self.expired + self.over_count + self.over_bytes
    }
}

/// Stored bytes of a document as `max_bytes` counts them.
fn stored_bytes(doc: &StoredDocument, dimension: usize) -> u64 {
    (doc.id.len() + doc.text.as_ref().map_or(0, String::len) + doc.metadata.len() + 4 * dimension)
        as u64
}

/// Runs `policy` over `state` once. `stop` is checked between chunks.
pub(crate) fn retention_pass(
    state: &CollectionState,
    store: &Storage,
    clock: &dyn Clock,
    stop: &dyn Fn() -> bool,
) -> Result<RetentionReport> {
    let Some(policy) = state.retention() else { return Ok(RetentionReport::default()) };
    let mut report = RetentionReport::default();
    let mut run = |select: &mut dyn FnMut(u64, &StoredDocument) -> Result<Pick>| -> Result<u64> {
        let (n, optimize) = delete_selected(state, store, clock.now_ms(), stop, select)?;
        report.needs_optimize |= optimize;
        Ok(n)
    };
    if let Some(age) = policy.max_age_secs {
        let cutoff_ms = clock.now_ms().saturating_sub(age.saturating_mul(1000));
        report.expired = match &policy.time_field {
            Some(field) => {
                let cutoff = cutoff_ms as f64 / 1000.0;
                run(&mut |seq, doc| {
                    let meta = metadata::parse_object(&doc.metadata, seq, &state.entry)?;
                    Ok(match meta.get(field).and_then(Value::as_f64) {
                        Some(t) if t < cutoff => Pick::Delete,
                        _ => Pick::Keep,
                    })
                })?
            }
            None => {
                let ranges = expired_ranges(state, store, cutoff_ms)?;
                let mut at = 0;
                run(&mut |seq, _| {
                    while at < ranges.len() && ranges[at].1 < seq {
                        at += 1;
                    }
                    Ok(match ranges.get(at) {
                        None => Pick::Stop,
                        Some(&(lo, _)) if seq >= lo => Pick::Delete,
                        Some(_) => Pick::Keep,
                    })
                })?
            }
        };
    }
    // The size rules delete up to the newest document that must go by one snapshot, chosen
    // before deleting: a delete running meanwhile (another pass, `delete_where`) can only make
    // them delete less, never anything newer.
    if let Some(max) = policy.max_documents {
        let live = store.snapshot()?.count(&state.entry).map_err(map_storage_error)?;
        let mut excess = live.saturating_sub(max);
        let last = last_of_oldest(state, store, |_| {
            let take = excess > 0;
            excess = excess.saturating_sub(1);
            take
        })?;
        if let Some(last) = last {
            report.over_count =
                run(&mut |seq, _| Ok(if seq <= last { Pick::Delete } else { Pick::Stop }))?;
        }
    }
    if let Some(max) = policy.max_bytes {
        let dim = state.config.dimension;
        let mut total = 0u64;
        store
            .snapshot()?
            .scan_documents(&state.entry, 0, |_, doc| {
                total += stored_bytes(&doc, dim);
                Ok(true)
            })
            .map_err(map_storage_error)?;
        let mut excess = total.saturating_sub(max);
        let last = last_of_oldest(state, store, |doc| {
            let take = excess > 0;
            excess = excess.saturating_sub(stored_bytes(doc, dim));
            take
        })?;
        if let Some(last) = last {
            report.over_bytes =
                run(&mut |seq, _| Ok(if seq <= last { Pick::Delete } else { Pick::Stop }))?;
        }
    }
    if report.expired > 0 {
        // The insertion times of writes with no document left are no longer needed.
        let snap = store.snapshot()?;
        let mut first_live = None;
        snap.scan_documents(&state.entry, 0, |seq, _| {
            first_live = Some(seq);
            Ok(false)
        })
        .map_err(map_storage_error)?;
        let last = snap.last_seq(&state.entry).map_err(map_storage_error)?;
        drop(snap);
        let first_live = first_live.unwrap_or(last.saturating_add(1));
        store.prune_commit_times(&state.entry, first_live).map_err(map_storage_error)?;
    }
    if report.total() > 0 {
        log::info!(
            "collection {}: retention deleted {} documents ({} expired, {} over the count, {} \
             over the size)",
            state.name(),
            report.total(),
            report.expired,
            report.over_count,
            report.over_bytes
        );
    }
    Ok(report)
}

/// The sequence number of the newest document of the oldest ones that must go: `take` is shown
/// the live documents oldest first, in one snapshot, until it answers `false`.
fn last_of_oldest(
    state: &CollectionState,
    store: &Storage,
    mut take: impl FnMut(&StoredDocument) -> bool,
) -> Result<Option<u64>> {
    let mut last = None;
    store
        .snapshot()?
        .scan_documents(&state.entry, 0, |seq, doc| {
            let go = take(&doc);
            if go {
                last = Some(seq);
            }
            Ok(go)
        })
        .map_err(map_storage_error)?;
    Ok(last)
}

/// The sequence-number ranges (inclusive, ascending, merged) of the writes recorded before
/// `cutoff_ms`. Documents written before insertion times were recorded count as written at the
/// first recorded write after them (so they are kept at least as long as the policy says).
fn expired_ranges(
    state: &CollectionState,
    store: &Storage,
    cutoff_ms: u64,
) -> Result<Vec<(u64, u64)>> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut prev = 0u64;
    store
        .snapshot()?
        .commit_times(&state.entry, |last_seq, t| {
            if t < cutoff_ms {
                match ranges.last_mut() {
                    Some(r) if r.1 == prev => r.1 = last_seq,
                    _ => ranges.push((prev + 1, last_seq)),
                }
            }
            prev = last_seq;
            true
        })
        .map_err(map_storage_error)?;
    Ok(ranges)
}

impl Collection {
    /// Runs one retention pass now (see [`crate::Retention`]); returns what it deleted. A
    /// collection without a policy deletes nothing.
    pub fn enforce_retention(&self) -> Result<RetentionReport> {
        self.check_live()?;
        let report =
            retention_pass(&self.state, &self.db.store, self.db.clock.as_ref(), &|| false)?;
        if report.needs_optimize {
            self.db.maintenance.request_optimize(&self.state);
        }
        Ok(report)
    }

    /// The collection's retention policy, if any.
    pub fn retention(&self) -> Option<Retention> {
        self.state.retention()
    }
}
