//! AkiDB's full-text index: BM25 over tantivy, for the keyword side of hybrid search.
//!
//! One index per collection, in a folder its owner gives. Like the vector index it is a cache
//! of storage: each document is indexed under its storage sequence number (documents are
//! immutable per sequence number) with a digest of its text, and every commit records, in
//! tantivy's commit payload, the database and collection it belongs to, the tokenizer version
//! and the last sequence number it covers (the watermark). [`FullTextIndex::open`] takes an
//! index only if all of these match and every file passes tantivy's checksum; anything else
//! (a damaged, foreign, or older-format index, a symbolic link in place of the folder) is
//! removed and started afresh: never a failed open. The owner then checks the digests against
//! the stored texts ([`FullTextIndex::indexed`]), replays the newer documents and deletes the
//! retired ones; a digest that differs (an older copy of the database file) means a rebuild.
//!
//! Writes are made durable by tantivy's own commit (files written, synced, then the meta file
//! replaced atomically), so a crash leaves the last commit, which the watermark describes.
//!
//! Queries are never parsed: the user's text goes through the same tokenizer as documents
//! ([`tokenize`]) and the terms are OR-ed ([`KeywordQuery`]), scored by BM25. There is no
//! query syntax to inject.

pub mod tokenize;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Term};

/// Format of the index and its commit payload; another format is rebuilt on open.
pub const FORMAT_VERSION: u32 = 1;
/// Most distinct terms in one query (a longer query is refused, not cut).
pub const MAX_QUERY_TERMS: usize = 1_024;
/// Memory the index writer may buffer before it writes a segment (tantivy's minimum is 15 MB).
pub const WRITER_MEMORY_BYTES: usize = 32 << 20;

const TOKENIZER: &str = "akidb";
const SEQ: &str = "seq";
const DIGEST: &str = "digest";
const BODY: &str = "body";

/// Errors of the full-text index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FullTextError {
    /// A query with more distinct terms than [`MAX_QUERY_TERMS`].
    #[error("query has {terms} distinct terms; at most {max}")]
    TooManyTerms {
        /// Distinct terms found.
        terms: usize,
        /// The limit.
        max: usize,
    },
    /// The file system failed (disk full, permissions, ...).
    #[error("full-text index in {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// tantivy failed.
    #[error("full-text index in {path}: {reason}")]
    Index {
        /// The folder.
        path: PathBuf,
        /// tantivy's message.
        reason: String,
    },
}

/// Who an index belongs to: a database (its random identity) and a collection in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The database's identity (new for every database file).
    pub database_id: [u8; 16],
    /// The collection's internal id (never reused within a database).
    pub collection_id: u64,
}

/// What tantivy's commit payload holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Payload {
    format: u32,
    tokenizer: u32,
    database: String,
    collection: u64,
    covered_seq: u64,
}

/// How [`FullTextIndex::open`] found the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A valid index covering storage up to `covered_seq`.
    Loaded {
        /// The watermark.
        covered_seq: u64,
    },
    /// A new, empty index; `reason` says why the folder's content was not used.
    Fresh {
        /// Why.
        reason: String,
    },
}

/// The digest of a document's text as the index records it (FNV-1a, 64 bits: stable across
/// platforms and versions).
pub fn digest(text: &str) -> u64 {
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A full-text index of one collection (see the crate docs).
pub struct FullTextIndex {
    dir: PathBuf,
    identity: Identity,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

#[derive(Clone, Copy)]
struct Fields {
    seq: Field,
    digest: Field,
    body: Field,
}

impl std::fmt::Debug for FullTextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullTextIndex").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let seq = b.add_u64_field(SEQ, NumericOptions::default().set_indexed().set_fast());
    let digest = b.add_u64_field(DIGEST, NumericOptions::default().set_fast());
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    let body = b.add_text_field(BODY, TextOptions::default().set_indexing_options(indexing));
    (b.build(), Fields { seq, digest, body })
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl FullTextIndex {
    /// Opens the index in `dir`, or starts a fresh one there (see the crate docs for what is
    /// checked). `last_seq` is storage's last sequence number: an index covering more than
    /// storage holds (storage restored from an older copy) is started afresh. Fails only when
    /// a fresh index cannot be written either (the file system refuses).
    pub fn open(
        dir: &Path,
        identity: Identity,
        last_seq: u64,
    ) -> Result<(Self, Opened), FullTextError> {
        let io = |source| FullTextError::Io { path: dir.to_path_buf(), source };
        // A symbolic link in place of the folder (or its parent) would send the files
        // elsewhere: remove the link, never what it points to.
        for d in [dir.parent(), Some(dir)].into_iter().flatten() {
            if is_symlink(d) {
                std::fs::remove_file(d).map_err(io)?;
            }
        }
        match Self::open_existing(dir, identity, last_seq) {
            Ok((me, covered_seq)) => Ok((me, Opened::Loaded { covered_seq })),
            Err(reason) => Ok((Self::create(dir, identity)?, Opened::Fresh { reason })),
        }
    }

    /// A new, empty index in `dir`, replacing whatever is there (a symbolic link is removed,
    /// never followed).
    pub fn create(dir: &Path, identity: Identity) -> Result<Self, FullTextError> {
        let io = |source| FullTextError::Io { path: dir.to_path_buf(), source };
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir).map_err(io)?,
            Ok(_) => std::fs::remove_file(dir).map_err(io)?,
            Err(_) => {}
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir, schema).map_err(|e| Self::err(dir, e))?;
        let me = Self::with_index(dir, identity, index, fields)?;
        // The first commit writes the payload: an empty index is a valid one.
        me.commit(0)?;
        Ok(me)
    }

    fn err(dir: &Path, e: impl std::fmt::Display) -> FullTextError {
        FullTextError::Index { path: dir.to_path_buf(), reason: e.to_string() }
    }

    /// The index in `dir` and its watermark, or why it cannot be used.
    fn open_existing(dir: &Path, identity: Identity, last_seq: u64) -> Result<(Self, u64), String> {
        let meta = std::fs::symlink_metadata(dir).map_err(|_| "no full-text index".to_string())?;
        if !meta.is_dir() {
            return Err("not a plain folder".into());
        }
        let index = Index::open_in_dir(dir).map_err(|e| format!("unreadable: {e}"))?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err("another schema".into());
        }
        let metas = index.load_metas().map_err(|e| format!("unreadable: {e}"))?;
        let payload: Payload = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or("no AkiDB commit payload")?;
        let expected = Payload {
            format: FORMAT_VERSION,
            tokenizer: tokenize::TOKENIZER_VERSION,
            database: hex(&identity.database_id),
            collection: identity.collection_id,
            covered_seq: payload.covered_seq,
        };
        if payload != expected {
            return Err(format!("written for another database, collection or format: {payload:?}"));
        }
        if payload.covered_seq > last_seq {
            return Err(format!(
                "covers sequence {} but storage ends at {last_seq}",
                payload.covered_seq
            ));
        }
        let damaged = index.validate_checksum().map_err(|e| format!("checksums: {e}"))?;
        if !damaged.is_empty() {
            return Err(format!("damaged files: {damaged:?}"));
        }
        let me = Self::with_index(dir, identity, index, fields).map_err(|e| e.to_string())?;
        Ok((me, payload.covered_seq))
    }

    fn with_index(
        dir: &Path,
        identity: Identity,
        index: Index,
        fields: Fields,
    ) -> Result<Self, FullTextError> {
        index.tokenizers().register(TOKENIZER, AkiTokenizer::default());
        let writer =
            index.writer_with_num_threads(1, WRITER_MEMORY_BYTES).map_err(|e| Self::err(dir, e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| Self::err(dir, e))?;
        Ok(Self { dir: dir.to_path_buf(), identity, reader, writer: Mutex::new(writer), fields })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every document of the last commit as `(sequence number, digest)`, sorted.
    pub fn indexed(&self) -> Result<Vec<(u64, u64)>, FullTextError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(usize::try_from(searcher.num_docs()).unwrap_or(0));
        for segment in searcher.segment_readers() {
            let col = |name: &str| -> Result<Column<u64>, FullTextError> {
                segment.fast_fields().u64(name).map_err(|e| Self::err(&self.dir, e))
            };
            let (seqs, digests) = (col(SEQ)?, col(DIGEST)?);
            for doc in segment.doc_ids_alive() {
                if let (Some(s), Some(d)) = (seqs.first(doc), digests.first(doc)) {
                    out.push((s, d));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Adds a document (made visible by the next [`FullTextIndex::commit`]).
    pub fn add(&self, seq: u64, text: &str) -> Result<(), FullTextError> {
        let f = self.fields;
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer
            .add_document(doc!(f.seq => seq, f.digest => digest(text), f.body => text))
            .map(drop)
            .map_err(|e| Self::err(&self.dir, e))
    }

    /// Deletes the document with sequence number `seq`, if any (at the next commit).
    pub fn delete(&self, seq: u64) {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.delete_term(Term::from_field_u64(self.fields.seq, seq));
    }

    /// Commits what was added and deleted, recording that the index now covers storage up to
    /// `covered_seq`, and returns the snapshot searches should read from now on.
    pub fn commit(&self, covered_seq: u64) -> Result<Snapshot, FullTextError> {
        let payload = Payload {
            format: FORMAT_VERSION,
            tokenizer: tokenize::TOKENIZER_VERSION,
            database: hex(&self.identity.database_id),
            collection: self.identity.collection_id,
            covered_seq,
        };
        let payload = serde_json::to_string(&payload).map_err(|e| Self::err(&self.dir, e))?;
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut prepared = writer.prepare_commit().map_err(|e| Self::err(&self.dir, e))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(|e| Self::err(&self.dir, e))?;
        drop(writer);
        self.reader.reload().map_err(|e| Self::err(&self.dir, e))?;
        Ok(self.snapshot())
    }

    /// The last committed state, for searches.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { searcher: self.reader.searcher(), fields: self.fields }
    }

    /// Bytes the index folder takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
            })
            .unwrap_or(0)
    }
}

/// A query: the distinct terms of the user's text, in order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordQuery {
    terms: Vec<String>,
}

impl KeywordQuery {
    /// The terms of `text` ([`tokenize`]); more than [`MAX_QUERY_TERMS`] distinct ones is
    /// [`FullTextError::TooManyTerms`]. Punctuation and stop words alone make an empty query,
    /// which matches nothing.
    pub fn new(text: &str) -> Result<Self, FullTextError> {
        let mut seen = std::collections::HashSet::new();
        let mut terms = Vec::new();
        let mut total = 0usize;
        tokenize::for_each_term(text, |t, _| {
            if seen.insert(t.to_string()) {
                total += 1;
                if terms.len() < MAX_QUERY_TERMS {
                    terms.push(t.to_string());
                }
            }
        });
        if total > MAX_QUERY_TERMS {
            return Err(FullTextError::TooManyTerms { terms: total, max: MAX_QUERY_TERMS });
        }
        Ok(Self { terms })
    }

    /// The terms.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether the query has no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// A committed state of the index: what one search reads (cheap to clone).
#[derive(Clone)]
pub struct Snapshot {
    searcher: Searcher,
    fields: Fields,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("docs", &self.searcher.num_docs()).finish()
    }
}

/// A predicate on sequence numbers; `true` keeps the document.
pub type SeqFilter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

impl Snapshot {
    /// Documents in this state.
    pub fn len(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// Whether this state holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How much of `query` a document scoring `score` matches, 0 to 1: the score over the sum
    /// of the query terms' IDFs, which is the BM25 score of a document of average length
    /// holding each term once. A document holding every term (a code and its parts, all the
    /// words of a question) is near 1; one that shares only a common word is near 0.
    pub fn match_strength(&self, query: &KeywordQuery, score: f32) -> f32 {
        let n = self.searcher.num_docs();
        let idf_sum: f64 = query
            .terms
            .iter()
            .map(|t| {
                let df = self
                    .searcher
                    .doc_freq(&Term::from_field_text(self.fields.body, t))
                    .unwrap_or(0)
                    .min(n);
                let x = ((n - df) as f64 + 0.5) / (df as f64 + 0.5);
                (1.0 + x).ln()
            })
            .sum();
        if idf_sum <= 0.0 {
            return 0.0;
        }
        (f64::from(score) / idf_sum).clamp(0.0, 1.0) as f32
    }

    /// The `k` documents with the highest BM25 score for `query` among those `filter` keeps,
    /// as `(sequence number, score)`, best first (ties by sequence number). The filter is
    /// applied to each matching document during the search, not to a cut list afterwards.
    pub fn search(
        &self,
        query: &KeywordQuery,
        k: usize,
        filter: Option<SeqFilter<'_>>,
    ) -> Result<Vec<(u64, f32)>, FullTextError> {
        if query.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let err = |e: tantivy::TantivyError| FullTextError::Index {
            path: PathBuf::new(),
            reason: e.to_string(),
        };
        let clauses: Vec<(Occur, Box<dyn Query>)> = query
            .terms
            .iter()
            .map(|t| {
                let term = Term::from_field_text(self.fields.body, t);
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        let boolean = BooleanQuery::new(clauses);
        let weight =
            boolean.weight(EnableScoring::enabled_from_searcher(&self.searcher)).map_err(err)?;
        let mut top = TopK::new(k);
        for segment in self.searcher.segment_readers() {
            let seqs = segment.fast_fields().u64(SEQ).map_err(err)?;
            let alive = segment.alive_bitset();
            let seq_of =
                |doc| alive.is_none_or(|a| a.is_alive(doc)).then(|| seqs.first(doc)).flatten();
            match filter {
                None => weight
                    .for_each_pruning(top.threshold(), segment, &mut |doc, score| {
                        if let Some(seq) = seq_of(doc) {
                            top.push(seq, score);
                        }
                        top.threshold()
                    })
                    .map_err(err)?,
                Some(keep) => weight
                    .for_each(segment, &mut |doc, score| {
                        if let Some(seq) = seq_of(doc).filter(|s| keep(*s)) {
                            top.push(seq, score);
                        }
                    })
                    .map_err(err)?,
            }
        }
        Ok(top.into_sorted())
    }
}

/// The best `k` `(seq, score)` pairs seen (a min-heap on score, then on reversed seq).
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Scored>>,
}

#[derive(PartialEq)]
struct Scored(f32, std::cmp::Reverse<u64>);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, heap: std::collections::BinaryHeap::with_capacity(k + 1) }
    }

    /// The score a document must beat to enter (tantivy's pruning skips blocks below it).
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::MIN
        } else {
            self.heap.peek().map_or(f32::MIN, |w| w.0 .0)
        }
    }

    fn push(&mut self, seq: u64, score: f32) {
        self.heap.push(std::cmp::Reverse(Scored(score, std::cmp::Reverse(seq))));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    fn into_sorted(self) -> Vec<(u64, f32)> {
        let mut v: Vec<(u64, f32)> = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse(Scored(s, std::cmp::Reverse(q)))| (q, s))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// [`tokenize`] as a tantivy tokenizer.
#[derive(Clone, Default)]
struct AkiTokenizer {
    tokens: Vec<Token>,
}

struct AkiStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl Tokenizer for AkiTokenizer {
    type TokenStream<'a> = AkiStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> AkiStream<'a> {
        self.tokens.clear();
        tokenize::for_each_term(text, |t, position| {
            self.tokens.push(Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text: t.to_string(),
                position_length: 1,
            });
        });
        AkiStream { tokens: &mut self.tokens, next: 0 }
    }
}

impl TokenStream for AkiStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}
