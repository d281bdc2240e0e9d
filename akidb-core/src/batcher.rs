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

use akidb_embedding::{EmbedError, Embedder, Embeddings, InputKind, ModelInfo};

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
pub struct BatchingEmbedder {
    info: ModelInfo,
    tx: Mutex<Option<Sender<Request>>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for BatchingEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchingEmbedder").field("model", &self.info.name).finish()
    }
}

impl BatchingEmbedder {
    /// Starts the worker thread for `inner`.
    pub fn new(inner: Arc<dyn Embedder>, options: BatchOptions) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let info = inner.info().clone();
        let worker = std::thread::Builder::new()
            .name("akidb-embed".into())
            .spawn(move || worker(inner, rx, options))
            .ok();
        Self { info, tx: Mutex::new(Some(tx)), worker: Mutex::new(worker) }
    }
}

impl Drop for BatchingEmbedder {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(w) = self.worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = w.join();
        }
    }
}

impl Embedder for BatchingEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn embed(&self, texts: &[&str], kind: InputKind) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let req = Request { texts: texts.iter().map(|t| t.to_string()).collect(), kind, reply };
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|tx| tx.send(req).is_ok());
        if !sent {
            return Err(EmbedError::InvalidConfig {
                field: "batcher",
                value: "stopped".into(),
                expected: "a running embedding worker",
            });
        }
        rx.recv().unwrap_or_else(|_| {
            Err(EmbedError::InvalidConfig { field: "batcher", value: "worker exited".into(), expected: "a reply" })
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
                let (g, rest): (Vec<Request>, Vec<Request>) = queue.into_iter().partition(|r| r.kind == kind);
                queue = rest;
                g
            };
            if !group.is_empty() {
                run_group(inner.as_ref(), kind, group);
            }
        }
    }
}

fn run_group(inner: &dyn Embedder, kind: InputKind, group: Vec<Request>) {
    let all: Vec<&str> = group.iter().flat_map(|r| r.texts.iter().map(String::as_str)).collect();
    match inner.embed(&all, kind) {
        Ok(mut out) => {
            for r in group.iter().rev() {
                let n = r.texts.len();
                let at = out.vectors.len() - n;
                let part = Embeddings {
                    vectors: out.vectors.split_off(at),
                    token_counts: out.token_counts.split_off(at),
                    truncated: out.truncated.split_off(at),
                };
                let _ = r.reply.send(Ok(part));
            }
        }
        // A merged run failed: give every caller its own answer.
        Err(_) => {
            for r in group {
                let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
                let _ = r.reply.send(inner.embed(&texts, kind));
            }
        }
    }
}
