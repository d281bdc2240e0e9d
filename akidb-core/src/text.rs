//! Text in, results out: collections bound to an embedding model.
//!
//! [`Database::text_collection`] opens (or creates) a collection whose schema records the model
//! identity (name, output dimension, pooling, query instruction); a different model is refused
//! with [`Error::ModelMismatch`]. [`Collection::add_texts`] embeds documents and stores text,
//! metadata and vector in one transaction; [`Collection::query_text`] embeds the query with the
//! model's query instruction and searches; [`Collection::ingest`] streams a large corpus through
//! a pipeline (embedding batch *n + 1* while batch *n* commits) with progress and cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb_embed_api::{Embedder, InputKind};

use crate::limits::MAX_BATCH;
use crate::validate::{check_id, check_metadata, check_text};
use crate::{
    BatchOptions, BatchingEmbedder, Collection, CollectionConfig, Database, Document, Error,
    Filter, Hit, ModelIdentity, Result, TextDocument,
};

impl Database {
    /// Opens the text collection `name` bound to `model`, creating it (cosine metric, the
    /// model's dimension) if it does not exist.
    ///
    /// Errors with [`Error::ModelMismatch`] when the collection was built with another model
    /// (or holds bare vectors). Concurrent text calls through the same `model` `Arc` share model
    /// runs (see [`BatchingEmbedder`]); a model that merges calls itself
    /// ([`Embedder::merges_calls`], a `BatchingEmbedder`) is bound as it is. The database keeps
    /// no reference to `model`: once no collection handle bound to it is left, it is the
    /// caller's again alone (a model registry can unload it).
    pub fn text_collection(&self, name: &str, model: Arc<dyn Embedder>) -> Result<Collection> {
        let given = ModelIdentity::of(model.info());
        let collection = match self.collection(name) {
            Ok(c) => c,
            Err(Error::CollectionNotFound { .. }) => {
                let config = CollectionConfig::new(given.dimension).with_model(given.clone());
                match self.create_collection(name, config) {
                    Err(Error::CollectionExists { .. }) => self.collection(name)?,
                    other => other?,
                }
            }
            Err(e) => return Err(e),
        };
        let stored = collection.state.model_identity();
        if !stored.as_ref().is_some_and(|s| s.same_model(&given)) {
            return Err(Error::ModelMismatch {
                collection: name.into(),
                stored: stored
                    .map_or_else(|| "none (a vector-only collection)".into(), |m| m.to_string()),
                given: given.to_string(),
            });
        }
        if stored.is_some_and(|s| s.digest.is_none()) {
            collection.adopt_model_digest(&given)?;
        }
        let embedder = if model.merges_calls() { model } else { self.batcher(model) };
        Ok(Collection { embedder: Some(embedder), ..collection })
    }

    /// The micro-batching worker of `model`: the one its bound collections share while any is
    /// held, else a new one.
    fn batcher(&self, model: Arc<dyn Embedder>) -> Arc<dyn Embedder> {
        let mut list =
            self.inner.batchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|(m, b)| m.strong_count() > 0 && b.strong_count() > 0);
        let found = list.iter().find_map(|(m, b)| {
            let same = m.upgrade().is_some_and(|m| Arc::ptr_eq(&m, &model));
            same.then(|| b.upgrade()).flatten()
        });
        if let Some(b) = found {
            return b;
        }
        let b = Arc::new(BatchingEmbedder::new(model.clone(), BatchOptions::default()));
        list.push((Arc::downgrade(&model), Arc::downgrade(&b)));
        b
    }
}

/// Options of [`Collection::ingest`].
///
/// Defaults: batches of 256 documents, no progress callback, no cancel flag.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct IngestOptions<'a> {
    /// Documents per transaction (0 means the default 256).
    pub batch_size: usize,
    /// Called after each committed batch.
    pub progress: Option<&'a (dyn Fn(IngestProgress) + Sync)>,
    /// Set to stop after the batch being committed; committed batches stay.
    pub cancel: Option<&'a AtomicBool>,
}

impl<'a> IngestOptions<'a> {
    /// Sets the batch size.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the progress callback.
    pub fn with_progress(mut self, f: &'a (dyn Fn(IngestProgress) + Sync)) -> Self {
        self.progress = Some(f);
        self
    }
    /// Sets the cancel flag.
    pub fn with_cancel(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }
}

/// Progress of an ingest, reported after each committed batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestProgress {
    /// Documents committed so far (durable).
    pub written: usize,
    /// Documents expected, when the input knew its length.
    pub total: Option<usize>,
    /// Time since the ingest started.
    pub elapsed: Duration,
}

/// Outcome of an ingest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestReport {
    /// Documents committed.
    pub written: usize,
    /// Transactions committed.
    pub batches: usize,
    /// Texts truncated to the model's `max_length`.
    pub truncated: usize,
    /// Whether the cancel flag stopped it.
    pub cancelled: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl Collection {
    pub(crate) fn embedder(&self) -> Result<&Arc<dyn Embedder>> {
        self.embedder.as_ref().ok_or_else(|| Error::NoEmbedder { collection: self.name().into() })
    }

    fn check_text_docs(docs: &[TextDocument]) -> Result<()> {
        if docs.len() > MAX_BATCH {
            return Err(Error::BatchTooLarge { len: docs.len(), max: MAX_BATCH });
        }
        for (i, d) in docs.iter().enumerate() {
            check_id(i, &d.id)?;
            check_text(&d.id, Some(&d.text))?;
            check_metadata(&d.id, &d.metadata)?;
        }
        Ok(())
    }

    /// Embeds and validates one batch; returns the documents to upsert and how many texts
    /// were truncated.
    fn embed_batch(&self, docs: Vec<TextDocument>) -> Result<(Vec<Document>, usize)> {
        Self::check_text_docs(&docs)?;
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let embedder = self.embedder()?;
        let out = embedder.embed(&texts, InputKind::Document)?;
        akidb_embed_api::check_output(embedder.info(), texts.len(), &out)?;
        let truncated = out.truncated.iter().filter(|t| **t).count();
        let docs = docs
            .into_iter()
            .zip(out.vectors)
            .map(|(d, v)| Document {
                id: d.id,
                vector: v,
                text: Some(d.text),
                metadata: d.metadata,
            })
            .collect();
        Ok((docs, truncated))
    }

    /// Embeds the texts as documents and upserts them (text, metadata, vector) in one durable
    /// transaction: all or nothing. Returns how many texts were truncated to the model's
    /// `max_length`.
    pub fn add_texts(&self, docs: &[TextDocument]) -> Result<usize> {
        self.check_live()?;
        let (docs, truncated) = self.embed_batch(docs.to_vec())?;
        self.upsert(&docs)?;
        Ok(truncated)
    }

    /// The `k` best matches for `query` among documents passing `filter`: hybrid (the query
    /// embedded with the model's query instruction against the vectors, and BM25 against the
    /// full-text index, fused by reciprocal rank) where the collection keeps a full-text index,
    /// vector otherwise. See [`Collection::query_text_with`] for the modes.
    pub fn query_text(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.query_text_with(query, k, filter, crate::QueryOptions::default()).map(|(h, _)| h)
    }

    /// Streams documents in: embedding of the next batch overlaps the commit of the current
    /// one; each batch is one durable transaction. Reports progress after each commit and stops
    /// early when `options.cancel` is set. On an error, batches committed before it stay (and
    /// were reported through `progress`).
    pub fn ingest<I>(&self, docs: I, options: &IngestOptions<'_>) -> Result<IngestReport>
    where
        I: IntoIterator<Item = TextDocument>,
        I::IntoIter: Send,
    {
        self.check_live()?;
        self.embedder()?;
        let batch_size =
            if options.batch_size == 0 { 256 } else { options.batch_size.min(MAX_BATCH) };
        let docs = docs.into_iter();
        let total = match docs.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let start = Instant::now();
        let cancelled = |o: &IngestOptions<'_>| o.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
        let mut report = IngestReport {
            written: 0,
            batches: 0,
            truncated: 0,
            cancelled: false,
            elapsed: Duration::ZERO,
        };
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<Document>, usize)>>(1);
            scope.spawn(move || {
                let mut docs = docs;
                loop {
                    if cancelled(options) {
                        return;
                    }
                    let batch: Vec<TextDocument> = docs.by_ref().take(batch_size).collect();
                    if batch.is_empty() {
                        return;
                    }
                    let done = self.embed_batch(batch);
                    let failed = done.is_err();
                    if tx.send(done).is_err() || failed {
                        return;
                    }
                }
            });
            for item in rx {
                let (batch, truncated) = item?;
                self.upsert(&batch)?;
                report.written += batch.len();
                report.batches += 1;
                report.truncated += truncated;
                if let Some(p) = options.progress {
                    p(IngestProgress { written: report.written, total, elapsed: start.elapsed() });
                }
                if cancelled(options) {
                    report.cancelled = true;
                    break;
                }
            }
            Ok(())
        })?;
        report.cancelled |= cancelled(options);
        report.elapsed = start.elapsed();
        Ok(report)
    }
}
