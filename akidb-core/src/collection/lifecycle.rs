//! Reading and deleting by filter: `count_where`, `scroll` (paging over one snapshot), and
//! `delete_where` / retention (deletes in bounded, durable chunks).
//!
//! These read storage, not the in-memory index: a filter is evaluated on each document's stored
//! metadata, in sequence-number (insertion) order, from one redb snapshot. Memory stays bounded
//! by one page or one chunk whatever the number of matches.

use akidb_storage::{Snapshot, Storage, StoredDocument};

use super::payload::Plan;
use super::{map_storage_error, metadata, Collection, CollectionState};
use crate::document::Record;
use crate::filter::Filter;
use crate::limits::MAX_BATCH;
use crate::{Error, Result};

/// Documents deleted per durable transaction by `delete_where` and retention: a crash leaves
/// whole chunks done and the rest untouched.
pub const DELETE_CHUNK: usize = 1_000;

/// What a selection does with one document.
pub(crate) enum Pick {
    Delete,
    Keep,
    /// No later document can be selected: end the pass.
    Stop,
}

/// Deletes what `select` picks among the documents live when the pass began (sequence numbers
/// up to the collection's last one then: documents written later, replacements included, are
/// never touched), in sequence order, [`DELETE_CHUNK`] per durable transaction. A document
/// replaced since it was read stays (its new version was not judged). Each chunk is read from
/// its own snapshot, released before the chunk is deleted: a snapshot held across the whole
/// pass would keep redb from reusing any page the pass frees, and the file would grow by
/// every page the deletes rewrite (measured: 2.3 -> 4.3 GB for 10% of 1M documents). Stops
/// between chunks once `stop` says so. Returns how many went and whether the graph asks for
/// an optimize.
pub(crate) fn delete_selected(
    state: &CollectionState,
    store: &Storage,
    now_ms: u64,
    stop: &dyn Fn() -> bool,
    mut select: impl FnMut(u64, &StoredDocument) -> Result<Pick>,
) -> Result<(u64, bool)> {
    let bound = store.snapshot()?.last_seq(&state.entry).map_err(map_storage_error)?;
    let (mut after, mut deleted, mut optimize) = (0u64, 0u64, false);
    loop {
        let mut chunk: Vec<(String, u64)> = Vec::new();
        let mut full = false;
        let mut ended = true;
        let mut failure = None;
        let snap = store.snapshot()?;
        snap.scan_documents(&state.entry, after, |seq, doc| {
            if seq > bound {
                return Ok(false);
            }
            after = seq;
            match select(seq, &doc) {
                Ok(Pick::Delete) => chunk.push((doc.id, seq)),
                Ok(Pick::Keep) => {}
                Ok(Pick::Stop) => return Ok(false),
                Err(e) => {
                    failure = Some(e);
                    return Ok(false);
                }
            }
            full = chunk.len() >= DELETE_CHUNK;
            ended = !full;
            Ok(!full)
        })
        .map_err(map_storage_error)?;
        drop(snap);
        if let Some(e) = failure {
            return Err(e);
        }
        if !chunk.is_empty() {
            let versions: Vec<(&str, u64)> =
                chunk.iter().map(|(id, s)| (id.as_str(), *s)).collect();
            let (n, o) = state.delete_versions(store, &versions, now_ms)?;
            deleted += n as u64;
            optimize |= o;
        }
        if ended || stop() {
            return Ok((deleted, optimize));
        }
    }
}

/// Options of [`Collection::scroll`].
///
/// Defaults: pages of 100 documents, without vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrollOptions {
    /// Documents per page: 1 to [`MAX_BATCH`].
    pub page_size: usize,
    /// Whether records carry their vectors (otherwise `Record::vector` is empty).
    pub with_vectors: bool,
}

impl Default for ScrollOptions {
    fn default() -> Self {
        Self { page_size: 100, with_vectors: false }
    }
}

impl ScrollOptions {
    /// Sets the page size.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }
    /// Records carry their vectors.
    pub fn with_vectors(mut self, with_vectors: bool) -> Self {
        self.with_vectors = with_vectors;
        self
    }
}

/// Where a scroll stands, to resume it later (another process, after a restart) with
/// [`Collection::scroll_from`]. Its text form (`Display` / `FromStr`) is opaque and safe to hand
/// to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrollCursor {
    database_id: [u8; 16],
    collection_id: u64,
    /// Documents with greater sequence numbers were written after the scroll began.
    bound: u64,
    /// The last sequence number returned.
    after: u64,
}

impl std::fmt::Display for ScrollCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s1.{}", Token(&self.database_id))?;
        write!(f, ".{}.{}.{}", self.collection_id, self.bound, self.after)
    }
}

/// A database identity as it appears in cursor and position tokens: 32 hex digits.
pub(crate) struct Token<'a>(pub(crate) &'a [u8; 16]);

impl std::fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Parses a token of the form `version.hex-database-id.n1.n2...` with `numbers` numbers.
pub(crate) fn parse_token(s: &str, version: &str, numbers: usize) -> Option<([u8; 16], Vec<u64>)> {
    let parts: Vec<&str> = s.split('.').collect();
    let [v, id, rest @ ..] = parts.as_slice() else { return None };
    if *v != version
        || rest.len() != numbers
        || id.len() != 32
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let mut database_id = [0u8; 16];
    for (i, byte) in database_id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok()?;
    }
    let nums = rest.iter().map(|t| t.parse::<u64>().ok()).collect::<Option<Vec<u64>>>()?;
    Some((database_id, nums))
}

impl std::str::FromStr for ScrollCursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidCursor { reason: "not a scroll cursor" };
        let (database_id, n) = parse_token(s, "s1", 3).ok_or_else(bad)?;
        let c = Self { database_id, collection_id: n[0], bound: n[1], after: n[2] };
        if c.after > c.bound {
            return Err(bad());
        }
        Ok(c)
    }
}

/// Pages through a collection's documents matching a filter, in insertion order, over one
/// redb snapshot taken when it was made: writes made meanwhile are not seen, and no document is
/// returned twice or skipped. It holds that snapshot until dropped (a long-lived scroll keeps
/// the file from reusing the pages it reads, and makes `Database::compact` wait).
///
/// An `Iterator` of pages; each item is one page (never empty) or an error.
pub struct Scroll {
    collection: Collection,
    snapshot: Snapshot,
    filter: Option<Filter>,
    options: ScrollOptions,
    cursor: ScrollCursor,
    done: bool,
}

impl std::fmt::Debug for Scroll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scroll")
            .field("collection", &self.collection.name())
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl Scroll {
    /// The position after the last page returned.
    pub fn cursor(&self) -> ScrollCursor {
        self.cursor
    }

    /// The next page, or `None` at the end.
    pub fn next_page(&mut self) -> Result<Option<Vec<Record>>> {
        if self.done {
            return Ok(None);
        }
        self.collection.check_live()?;
        let state = &self.collection.state;
        let (bound, size) = (self.cursor.bound, self.options.page_size);
        let mut found: Vec<(u64, StoredDocument)> = Vec::new();
        let mut failure = None;
        let mut after = self.cursor.after;
        let mut reached_end = true;
        self.snapshot
            .scan_documents(&state.entry, after, |seq, doc| {
                if seq > bound {
                    return Ok(false);
                }
                after = seq;
                let keep = match &self.filter {
                    None => true,
                    Some(f) => match metadata::doc_matches(f, seq, &doc, &state.entry) {
                        Ok(m) => m,
                        Err(e) => {
                            failure = Some(e);
                            return Ok(false);
                        }
                    },
                };
                if keep {
                    found.push((seq, doc));
                }
                reached_end = found.len() < size;
                Ok(found.len() < size)
            })
            .map_err(map_storage_error)?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.cursor.after = after;
        // A full page may have been the last: the next call finds out.
        self.done = reached_end;
        if found.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let vectors = if self.options.with_vectors {
            let seqs: Vec<u64> = found.iter().map(|(s, _)| *s).collect();
            self.snapshot.vectors_by_seq(&state.entry, &seqs).map_err(map_storage_error)?
        } else {
            vec![None; found.len()]
        };
        found
            .into_iter()
            .zip(vectors)
            .map(|((_, doc), vector)| {
                Ok(Record {
                    id: doc.id,
                    vector: vector.unwrap_or_default(),
                    text: doc.text,
                    metadata: metadata::parse(&doc.metadata, &state.entry)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

impl Iterator for Scroll {
    type Item = Result<Vec<Record>>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_page() {
            Ok(Some(page)) => Some(Ok(page)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Collection {
    /// Number of live documents matching `filter` (all of them for `None`) in one committed
    /// state. Without a filter this is [`Collection::count`]; a filter on declared fields only
    /// (payload indexes) is counted from the columns in memory (milliseconds per million
    /// documents); any other reads every document's metadata from one snapshot (time grows
    /// with the collection, memory does not).
    pub fn count_where(&self, filter: Option<&Filter>) -> Result<u64> {
        let Some(filter) = filter else { return self.count() };
        self.check_live()?;
        filter.validate()?;
        // A poisoned index state leaves the storage path, as for `count`.
        if let Ok(applied) = self.state.engine.read() {
            let p = applied.payload();
            let plan = Plan::new(filter, p);
            if plan.covered(p) {
                return Ok(plan.matching(p).count() as u64);
            }
        }
        let snap = self.db.store.snapshot()?;
        let mut n = 0u64;
        let mut failure = None;
        snap.scan_documents(&self.state.entry, 0, |seq, doc| {
            match metadata::doc_matches(filter, seq, &doc, &self.state.entry) {
                Ok(m) => n += u64::from(m),
                Err(e) => {
                    failure = Some(e);
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .map_err(map_storage_error)?;
        failure.map_or(Ok(n), Err)
    }

    /// Pages through the documents matching `filter` (all for `None`) over one snapshot; see
    /// [`Scroll`]. `page_size` must be 1 to [`MAX_BATCH`].
    pub fn scroll(&self, filter: Option<&Filter>, options: ScrollOptions) -> Result<Scroll> {
        self.start_scroll(filter, options, None)
    }

    /// Resumes a scroll from a cursor ([`Scroll::cursor`]) over a new snapshot: documents after
    /// the cursor and written before the original scroll began, still live now. Errors:
    /// [`Error::InvalidCursor`] for a cursor of another collection or database (a collection
    /// dropped and created again is another collection).
    pub fn scroll_from(
        &self,
        cursor: &ScrollCursor,
        filter: Option<&Filter>,
        options: ScrollOptions,
    ) -> Result<Scroll> {
        if cursor.database_id != self.db.store.database_id() {
            return Err(Error::InvalidCursor { reason: "it belongs to another database" });
        }
        if cursor.collection_id != self.state.entry.id {
            return Err(Error::InvalidCursor { reason: "it belongs to another collection" });
        }
        self.start_scroll(filter, options, Some(*cursor))
    }

    fn start_scroll(
        &self,
        filter: Option<&Filter>,
        options: ScrollOptions,
        from: Option<ScrollCursor>,
    ) -> Result<Scroll> {
        self.check_live()?;
        if options.page_size == 0 || options.page_size > MAX_BATCH {
            return Err(Error::InvalidPageSize { size: options.page_size, max: MAX_BATCH });
        }
        if let Some(f) = filter {
            f.validate()?;
        }
        let snapshot = self.db.store.snapshot()?;
        let last = snapshot.last_seq(&self.state.entry).map_err(map_storage_error)?;
        let cursor = from.unwrap_or(ScrollCursor {
            database_id: self.db.store.database_id(),
            collection_id: self.state.entry.id,
            bound: last,
            after: 0,
        });
        Ok(Scroll {
            collection: self.clone(),
            snapshot,
            filter: filter.cloned(),
            options,
            cursor,
            done: false,
        })
    }

    /// Deletes every document matching `filter` as of the call's start (documents written
    /// meanwhile are not touched; one replaced meanwhile stays), [`DELETE_CHUNK`] documents per
    /// durable transaction, so memory stays bounded however many match and a crash leaves whole
    /// chunks deleted and the rest untouched. Returns how many went. An empty filter object
    /// matches every document.
    pub fn delete_where(&self, filter: &Filter) -> Result<u64> {
        self.check_live()?;
        filter.validate()?;
        let state = &self.state;
        let store = &self.db.store;
        let now = self.db.clock.now_ms();
        let (deleted, optimize) = delete_selected(state, store, now, &|| false, |seq, doc| {
            let m = metadata::doc_matches(filter, seq, doc, &state.entry)?;
            Ok(if m { Pick::Delete } else { Pick::Keep })
        })?;
        if optimize {
            self.db.maintenance.request_optimize(state);
        }
        Ok(deleted)
    }
}
