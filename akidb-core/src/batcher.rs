//! Micro-batching of embedding requests.
//!
//! Many threads (or tokio tasks, through the blocking pool) asking for embeddings at once share
//! model runs: a dedicated worker thread takes the first waiting request, then everything else
//! already queued (up to `max_batch_texts`, optionally waiting `max_wait` for more), runs the
//! model once per input kind, and hands each caller its rows. A lone caller waits for nothing
//! (with the default `max_wait` of zero); under concurrency, throughput grows with the queue,
//! as in text-embeddings-inference. With `workers` above 1, that many worker threads take
//! turns at the one queue and run the model side by side (for a model that runs several at
//! once, e.g. an ONNX model with `parallel_runs`).

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
    /// Worker threads taking turns at the queue (default 1).
    pub workers: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { max_batch_texts: 256, max_wait: Duration::ZERO, workers: 1 }
    }
}

impl BatchOptions {
    /// Sets `max_wait`.
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }
    /// Sets `workers` (at least 1).
    pub fn with_workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
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
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BatchingEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingEmbedder").field("model", &self.info.name).finish()
    }
}

impl BatchingEmbedder {
    /// Starts the worker threads for `inner` (or, if the system refuses a thread now, at the
    /// first call).
    pub fn new(inner: Arc<dyn Embedder>, options: BatchOptions) -> Self {
        let info = inner.info().clone();
        let b = Self { info, inner, options, worker: Mutex::new(None) };
        if let Err(e) = b.sender() {
            log::warn!("{e}; retrying at the first call");
        }
        b
    }

    /// The running workers' queue, starting workers first if there are none or all are gone.
    fn sender(&self) -> Result<Sender<Request>, EmbedError> {
        let mut slot = self.worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = slot.as_ref().filter(|w| w.threads.iter().any(|t| !t.is_finished())) {
            return Ok(w.tx.clone());
        }
        let (tx, rx) = mpsc::channel::<Request>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = self.options.workers.max(1);
        let mut threads = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (inner, rx, options) = (self.inner.clone(), rx.clone(), self.options);
            let spawned = std::thread::Builder::new()
                .name("akidb-embed".into())
                .spawn(move || worker(inner, &rx, options));
            match spawned {
                Ok(t) => threads.push(t),
                // Fewer workers than asked still serve; none is an error.
                Err(source) if threads.is_empty() => {
                    return Err(EmbedError::Worker { model: self.info.name.clone(), source });
                }
                Err(e) => log::warn!("embedding worker of {} not started: {e}", self.info.name),
            }
        }
        if slot.is_some() {
            log::warn!("the embedding workers of {} were gone; started new ones", self.info.name);
        }
        *slot = Some(Worker { tx: tx.clone(), threads });
        Ok(tx)
    }
}

impl Drop for BatchingEmbedder {
    fn drop(&mut self) {
        if let Some(w) =
            self.worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            drop(w.tx);
            for t in w.threads {
                let _ = t.join();
            }
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

fn worker(inner: Arc<dyn Embedder>, rx: &Mutex<Receiver<Request>>, options: BatchOptions) {
    loop {
        // The queue is this worker's while it gathers a run; the model runs after letting go.
        let mut queue = {
            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Ok(first) = rx.recv() else { return };
            let mut queue = vec![first];
            let mut texts = queue[0].texts.len();
            let deadline = Instant::now() + options.max_wait;
            while texts < options.max_batch_texts {
                let next = match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(_) if options.max_wait.is_zero() => None,
                    Err(_) => {
                        rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()
                    }
                };
                let Some(r) = next else { break };
                texts += r.texts.len();
                queue.push(r);
            }
            queue
        };
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
