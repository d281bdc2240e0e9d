//! Micro-batching of embedding requests.
//!
//! Many threads (or tokio tasks, through the blocking pool) asking for embeddings at once share
//! model runs: a dedicated worker thread takes the first waiting request, then everything else
//! already queued (up to `max_batch_texts`, optionally waiting `max_wait` for more), runs the
//! model once per input kind, and hands each caller its rows. A lone caller waits for nothing
//! (with the default `max_wait` of zero); under concurrency, throughput grows with the queue,
//! as in text-embeddings-inference.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akidb_embed_api::{EmbedError, Embedder, Embeddings, InputKind, ModelInfo};

/// Options of a [`BatchingEmbedder`].
///
/// Defaults: at most 256 texts per merged run; no waiting for more requests.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Most texts merged into one call of the inner embedder.
    pub max_batch_texts: usize,
    /// How long the worker waits for more requests after the first one.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { max_batch_texts: 256, max_wait: Duration::ZERO }
    }
}

impl BatchOptions {
    /// Sets `max_wait`.
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }
    /// Sets `max_batch_texts` (at least 1).
    pub fn with_max_batch_texts(mut self, n: usize) -> Self {
        self.max_batch_texts = n.max(1);
        self
    }
}

struct Request {
    texts: Vec<String>,
    kind: InputKind,
    reply: SyncSender<Result<Embeddings, EmbedError>>,
}

/// An [`Embedder`] that merges concurrent requests into shared runs of an inner embedder.
///
/// The inner embedder's output is checked ([`akidb_embed_api::check_output`]) before it is
/// split among callers, so a wrong count or dimension is [`EmbedError::BadOutput`] for the
/// callers of that run, never a panic of the worker. A panic of the inner embedder is caught and
/// answered as [`EmbedError::Panicked`]; the worker keeps serving. A worker that is gone anyway
/// (it could not be started) is started again by the next call.
pub struct BatchingEmbedder {
    info: ModelInfo,
    inner: Arc<dyn Embedder>,
    options: BatchOptions,
    worker: Mutex<Option<Worker>>,
}

struct Worker {
    tx: Sender<Request>,
    thread: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for BatchingEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingEmbedder").field("model", &self.info.name).finish()
    }
}

impl BatchingEmbedder {
    /// Starts the worker thread for `inner` (or, if the system refuses a thread now, at the
    /// first call).
    pub fn new(inner: Arc<dyn Embedder>, options: BatchOptions) -> Self {
        let info = inner.info().clone();
        let b = Self { info, inner, options, worker: Mutex::new(None) };
        if let Err(e) = b.sender() {
            log::warn!("{e}; retrying at the first call");
        }
        b
    }

    /// The running worker's queue, starting a worker first if there is none or it is gone.
    fn sender(&self) -> Result<Sender<Request>, EmbedError> {
        let mut slot = self.worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = slot.as_ref().filter(|w| !w.thread.is_finished()) {
            return Ok(w.tx.clone());
        }
        let (tx, rx) = mpsc::channel::<Request>();
        let (inner, options) = (self.inner.clone(), self.options);
        let thread = std::thread::Builder::new()
            .name("akidb-embed".into())
            .spawn(move || worker(inner, rx, options))
            .map_err(|source| EmbedError::Worker { model: self.info.name.clone(), source })?;
        if slot.is_some() {
            log::warn!("the embedding worker of {} was gone; started a new one", self.info.name);
        }
        *slot = Some(Worker { tx: tx.clone(), thread });
        Ok(tx)
    }
}

impl Drop for BatchingEmbedder {
    fn drop(&mut self) {
        if let Some(w) =
            self.worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            drop(w.tx);
            let _ = w.thread.join();
        }
    }
}

impl Embedder for BatchingEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn merges_calls(&self) -> bool {
        true
    }

    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        // Two tries: a worker found gone (its queue closed) is replaced once.
        let mut last = None;
        for _ in 0..2 {
            let (reply, rx) = mpsc::sync_channel(1);
            let req = Request { texts: texts.iter().map(|t| t.to_string()).collect(), kind, reply };
            if self.sender()?.send(req).is_err() {
                last = Some("its queue closed");
                continue;
            }
            match rx.recv() {
                Ok(answer) => return answer,
                Err(_) => last = Some("it stopped without answering"),
            }
        }
        Err(EmbedError::Panicked {
            model: self.info.name.clone(),
            message: format!("the embedding worker is gone ({})", last.unwrap_or("unknown")),
        })
    }
}

fn worker(inner: Arc<dyn Embedder>, rx: Receiver<Request>, options: BatchOptions) {
    while let Ok(first) = rx.recv() {
        let mut queue = vec![first];
        let mut texts = queue[0].texts.len();
        let deadline = Instant::now() + options.max_wait;
        while texts < options.max_batch_texts {
            let next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(_) if options.max_wait.is_zero() => None,
                Err(_) => rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
            };
            let Some(r) = next else { break };
            texts += r.texts.len();
            queue.push(r);
        }
        for kind in [InputKind::Document, InputKind::Query] {
            let group: Vec<Request> = {
                let (g, rest): (Vec<Request>, Vec<Request>) =
                    queue.into_iter().partition(|r| r.kind == kind);
                queue = rest;
                g
            };
            if !group.is_empty() {
                run_group(inner.as_ref(), kind, group);
            }
        }
    }
}

/// Runs the inner embedder, turning a panic into [`EmbedError::Panicked`] and checking the
/// output's shape.
fn embed_checked(
    inner: &dyn Embedder,
    texts: &[&str],
    kind: InputKind,
) -> Result<Embeddings, EmbedError> {
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.embed(texts, kind)))
        .map_err(|p| {
            let message = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            EmbedError::Panicked { model: inner.info().name.clone(), message }
        })??;
    akidb_embed_api::check_output(inner.info(), texts.len(), &out)?;
    Ok(out)
}

fn run_group(inner: &dyn Embedder, kind: InputKind, group: Vec<Request>) {
    let all: Vec<&str> = group.iter().flat_map(|r| r.texts.iter().map(String::as_str)).collect();
    match embed_checked(inner, &all, kind) {
        Ok(mut out) => {
            // Checked: one row per text, so each caller's rows are at the end in turn.
            for r in group.iter().rev() {
                let at = out.vectors.len() - r.texts.len();
                let part = Embeddings {
                    vectors: out.vectors.split_off(at),
                    token_counts: out.token_counts.split_off(at),
                    truncated: out.truncated.split_off(at),
                };
                let _ = r.reply.send(Ok(part));
            }
        }
        // A merged run failed: give every caller its own answer.
        Err(_) if group.len() > 1 => {
            for r in group {
                let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
                let _ = r.reply.send(embed_checked(inner, &texts, kind));
            }
        }
        Err(e) => {
            if let Some(r) = group.into_iter().next() {
                let _ = r.reply.send(Err(e));
            }
        }
    }
}
