//! The operations both APIs call: each checks its input, calls the public library API on
//! tokio's blocking pool and answers with the types of [`crate::api`]. REST ([`crate::rest`])
//! and gRPC ([`crate::grpc`]) only translate to and from these; each rule lives here once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use akidb::{
    BatchOptions, BatchingEmbedder, Collection, CollectionConfig, Database, Document, Embedder,
    Filter, Fusion, ModelIdentity, ModelRegistry, OnnxEmbeddingProvider, QueryMode, QueryOptions,
    ScrollCursor, ScrollOptions, SearchParams, TextDocument,
};
use axum::http::StatusCode;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::*;
use crate::config::{Config, Scope};
use crate::metrics::Metrics;

/// Result of an operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// A configured model's queue (the model itself is in the registry, loaded on first use).
pub(crate) struct Model {
    pub(crate) queue: Arc<Semaphore>,
    pub(crate) capacity: usize,
}

/// What every request shares: the database, the models, the keys, the metrics.
pub struct AppState {
    pub(crate) db: Database,
    /// The models by name, each a micro-batching embedder once loaded (see
    /// `akidb::embedding::registry`: loaded on first use, idle ones unloaded under
    /// `model_memory_mb`).
    pub(crate) registry: Arc<ModelRegistry<BatchingEmbedder>>,
    pub(crate) models: BTreeMap<String, Model>,
    keys: Vec<(Vec<u8>, Scope)>,
    pub(crate) auth_disabled: bool,
    pub(crate) timeout: Duration,
    backup_dir: Option<PathBuf>,
    pub(crate) metrics: Metrics,
    pub(crate) ready: AtomicBool,
    pub(crate) requests: AtomicU64,
    backups: AtomicU64,
}

impl AppState {
    /// Opens the database and registers every model of `config` (each folder's settings are
    /// read and checked now; the weights load on first use).
    pub fn open(config: &Config) -> Result<Arc<Self>, String> {
        let db = Database::open(&config.data_dir)
            .map_err(|e| format!("opening {}: {e}", config.data_dir.display()))?;
        let all = config.all_models()?;
        let batching: BTreeMap<String, BatchOptions> = all
            .iter()
            .map(|(name, m)| {
                let options = BatchOptions::default()
                    .with_workers(m.runs())
                    .with_max_batch_texts(m.batch_texts)
                    .with_max_wait(Duration::from_millis(m.batch_wait_ms));
                (name.clone(), options)
            })
            .collect();
        let budget = config.model_memory_mb.map(|mb| mb << 20);
        let registry = ModelRegistry::with_loader(budget, move |name, onnx| {
            let provider = OnnxEmbeddingProvider::new(onnx.clone())?;
            let info = provider.info();
            log::info!(
                "model {name}: {} ({}-d) on {}",
                info.name,
                info.dimension,
                info.execution_provider
            );
            let options = batching.get(name).cloned().unwrap_or_default();
            Ok(BatchingEmbedder::new(Arc::new(provider), options))
        });
        let mut models = BTreeMap::new();
        for (name, m) in &all {
            let fail = |e: akidb::EmbedError| format!("model {name} ({}): {e}", m.dir.display());
            registry.register(name, m.onnx().map_err(fail)?).map_err(fail)?;
            let model = Model { queue: Arc::new(Semaphore::new(m.queue)), capacity: m.queue };
            models.insert(name.clone(), model);
        }
        // Each model's content digest now (hashing a new model's files takes seconds), so
        // requests that look a collection's model up never do.
        for name in registry.names() {
            if registry.digest(&name).is_none() {
                log::warn!("model {name}: its files cannot be read; collections will not find it");
            }
        }
        let registry = Arc::new(registry);
        let keys = config
            .auth
            .keys
            .iter()
            .filter_map(|k| Some((k.key.clone()?.into_bytes(), k.scope)))
            .collect();
        Ok(Arc::new(Self {
            db,
            registry,
            models,
            keys,
            auth_disabled: config.auth.disabled,
            timeout: Duration::from_millis(config.request_timeout_ms),
            backup_dir: config.backup_dir.clone(),
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            backups: AtomicU64::new(0),
        }))
    }

    /// Whether a request with this `authorization` header value may act with scope `needs`:
    /// `Err` with 401 (no or unknown key) or 403 (a read key asking to write).
    pub(crate) fn check_key(&self, header: Option<&[u8]>, needs: Scope) -> ApiResult<()> {
        if self.auth_disabled {
            return Ok(());
        }
        let token = header.and_then(|h| h.strip_prefix(b"Bearer ".as_slice()));
        // Every key is compared (constant time each), so timing tells nothing of which matched.
        let mut found = None;
        if let Some(token) = token {
            for (key, scope) in &self.keys {
                if bool::from(key.as_slice().ct_eq(token)) {
                    found = Some(*scope);
                }
            }
        }
        match found {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an API key: Authorization: Bearer KEY",
            )),
            Some(have) if have < needs => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key may only read"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The configured name and queue of the model a collection is bound to: the model whose
    /// files have the digest the collection recorded. A collection recorded before digests is
    /// matched by name, dimension, pooling and prompt, which loads the models in turn (once: it
    /// records the digest when bound).
    fn model_of(&self, config: &CollectionConfig) -> Option<(&str, &Model)> {
        let bound = config.model.as_ref()?;
        let name = match &bound.digest {
            Some(d) => self.registry.find_by_digest(d, bound.dimension)?,
            None => self.registry.names().into_iter().find(|n| {
                let loaded = self.registry.get(n).and_then(Result::ok);
                loaded.is_some_and(|m| ModelIdentity::of(m.info()).same_model(bound))
            })?,
        };
        self.models.get_key_value(&name).map(|(n, m)| (n.as_str(), m))
    }

    /// Model `name` from the registry, loaded if it is not (on the blocking pool).
    fn load(
        registry: &ModelRegistry<BatchingEmbedder>,
        name: &str,
    ) -> akidb::Result<Arc<dyn Embedder>> {
        match registry.get(name) {
            Some(r) => Ok(r? as Arc<dyn Embedder>),
            None => Err(akidb::Error::NoEmbedder { collection: name.to_string() }),
        }
    }

    /// Model queue depths, for metrics.
    pub(crate) fn queue_depths(&self) -> Vec<(String, usize)> {
        self.models
            .iter()
            .map(|(n, m)| (n.clone(), m.capacity - m.queue.available_permits()))
            .collect()
    }

    fn summary(&self, name: String, c: &CollectionConfig) -> CollectionSummary {
        CollectionSummary {
            name,
            dimension: c.dimension,
            metric: c.metric,
            model: self.model_of(c).map(|(n, _)| n.to_string()),
            full_text: c.full_text_enabled(),
        }
    }

    async fn open_collection(&self, name: String) -> ApiResult<Collection> {
        let db = self.db.clone();
        blocking(move || db.collection(&name)).await
    }

    /// The collection bound to its model, and a place in the model's queue: taken at once or
    /// refused with 429 (`wait` false), or awaited up to the request time limit (`wait` true,
    /// for streams that would rather slow down than fail).
    async fn text_collection(
        &self,
        name: String,
        wait: bool,
    ) -> ApiResult<(Collection, OwnedSemaphorePermit)> {
        let c = self.open_collection(name.clone()).await?;
        let Some((model_name, model)) = self.model_of(c.config()) else {
            let bound = c.config().model.as_ref().map_or("none".into(), |m| m.to_string());
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_model",
                format!(
                    "collection {name:?} is bound to model {bound}, which this server has not \
                     loaded"
                ),
            ));
        };
        let overloaded = || {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                "the model's queue is full: retry after a second",
            )
        };
        let queue = model.queue.clone();
        let permit = if wait {
            tokio::time::timeout(self.timeout, queue.acquire_owned())
                .await
                .map_err(|_| overloaded())?
                .map_err(|_| overloaded())?
        } else {
            queue.try_acquire_owned().map_err(|_| overloaded())?
        };
        let (db, registry, model_name) =
            (self.db.clone(), self.registry.clone(), model_name.to_string());
        let c = blocking(move || db.text_collection(&name, Self::load(&registry, &model_name)?))
            .await?;
        Ok((c, permit))
    }

    /// Lists the collections.
    pub async fn list(&self) -> ApiResult<CollectionList> {
        let db = self.db.clone();
        let list = blocking(move || db.list_collections()).await?;
        let collections = list.into_iter().map(|(n, c)| self.summary(n, &c)).collect();
        Ok(CollectionList { collections })
    }

    /// Creates a collection.
    pub async fn create(&self, r: CreateRequest) -> ApiResult<CollectionSummary> {
        let mut model = None;
        let mut config = match (&r.model, r.dimension) {
            (Some(name), _) => {
                if !self.models.contains_key(name) {
                    return Err(unknown_model(name));
                }
                let (registry, n) = (self.registry.clone(), name.clone());
                let m = blocking(move || Self::load(&registry, &n)).await?;
                let identity = ModelIdentity::of(m.info());
                if r.dimension.is_some_and(|d| d != identity.dimension) {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "wrong_dimension",
                        format!("model {name} gives {}-d vectors", identity.dimension),
                    ));
                }
                model = Some(m);
                CollectionConfig::new(identity.dimension).with_model(identity)
            }
            (None, Some(d)) => CollectionConfig::new(d),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "give a dimension (vector collection) or a model (text collection)",
                ))
            }
        };
        if let Some(m) = r.metric {
            config = config.with_metric(m);
        }
        if let Some(f) = r.full_text {
            config = config.with_full_text(f);
        }
        for i in r.indexes {
            config = config.with_index(i.field, i.kind);
        }
        if let Some(q) = r.quantization.as_deref().filter(|q| !q.is_empty()) {
            let q = q
                .parse::<akidb::Quantization>()
                .map_err(|e| ApiError::bad_request("invalid_quantization", e))?;
            config = config.with_quantization(q);
        }
        config = config.with_vectors_on_disk(r.vectors_on_disk.unwrap_or(false));
        let (db, name, c) = (self.db.clone(), r.name.clone(), config.clone());
        blocking(move || {
            db.create_collection(&name, c)?;
            if let Some(m) = model {
                db.text_collection(&name, m)?; // records the model's digest
            }
            Ok(())
        })
        .await?;
        Ok(self.summary(r.name, &config))
    }

    /// A collection's details.
    pub async fn info(&self, name: String) -> ApiResult<CollectionInfo> {
        let c = self.open_collection(name.clone()).await?;
        let summary = self.summary(name, c.config());
        let config = serde_json::to_value(c.config()).unwrap_or(Value::Null);
        let (count, stats) = blocking(move || Ok((c.count()?, c.index_stats()?))).await?;
        Ok(CollectionInfo {
            summary,
            count,
            config,
            index: IndexState {
                live: stats.live as u64,
                tombstones: stats.tombstones as u64,
                unsaved_changes: stats.unsaved_changes,
            },
        })
    }

    /// Drops a collection.
    pub async fn drop_collection(&self, name: String) -> ApiResult<()> {
        let db = self.db.clone();
        blocking(move || db.drop_collection(&name)).await
    }

    /// Inserts or replaces documents with vectors: one durable batch.
    pub async fn upsert(&self, name: String, docs: Vec<DocumentIn>) -> ApiResult<WriteResult> {
        let c = self.open_collection(name).await?;
        let docs: Vec<Document> = docs
            .into_iter()
            .map(|d| Document { id: d.id, vector: d.vector, text: d.text, metadata: d.metadata })
            .collect();
        let n = docs.len() as u64;
        blocking(move || c.upsert(&docs)).await?;
        Ok(WriteResult { count: n, truncated: None })
    }

    /// Embeds and writes texts: one durable batch. `wait`: see `text_collection`.
    pub async fn add_texts(
        &self,
        name: String,
        texts: Vec<TextIn>,
        wait: bool,
    ) -> ApiResult<WriteResult> {
        let (c, permit) = self.text_collection(name, wait).await?;
        let docs: Vec<TextDocument> = texts
            .into_iter()
            .map(|t| TextDocument::new(t.id, t.text).with_metadata(t.metadata))
            .collect();
        let n = docs.len() as u64;
        let truncated = blocking(move || {
            let _permit = permit;
            c.add_texts(&docs)
        })
        .await?;
        Ok(WriteResult { count: n, truncated: Some(truncated as u64) })
    }

    /// Documents by id.
    pub async fn get(&self, name: String, ids: Vec<String>) -> ApiResult<GetResult> {
        let c = self.open_collection(name).await?;
        let records = blocking(move || c.get(&ids)).await?;
        Ok(GetResult { documents: records.into_iter().map(|r| r.map(Into::into)).collect() })
    }

    /// Deletes by id.
    pub async fn delete(&self, name: String, ids: Vec<String>) -> ApiResult<WriteResult> {
        let c = self.open_collection(name).await?;
        let n = blocking(move || c.delete(&ids)).await?;
        Ok(WriteResult { count: n as u64, truncated: None })
    }

    /// Counts the documents matching a filter.
    pub async fn count(&self, name: String, filter: Option<Value>) -> ApiResult<CountResult> {
        let f = parse_filter(filter)?;
        let c = self.open_collection(name).await?;
        let count = blocking(move || c.count_where(f.as_ref())).await?;
        Ok(CountResult { count })
    }

    /// Deletes every document matching a filter (required: `{}` for all).
    pub async fn delete_where(
        &self,
        name: String,
        filter: Option<Value>,
    ) -> ApiResult<WriteResult> {
        let f = parse_filter(filter)?.ok_or_else(|| {
            ApiError::bad_request("bad_request", "delete_where needs a filter ({} for all)")
        })?;
        let c = self.open_collection(name).await?;
        let n = blocking(move || c.delete_where(&f)).await?;
        Ok(WriteResult { count: n, truncated: None })
    }

    /// One page of a scroll: the first with no cursor, the next with the last page's.
    pub async fn scroll(&self, name: String, r: ScrollRequest) -> ApiResult<ScrollPage> {
        let f = parse_filter(r.filter)?;
        let cursor: Option<ScrollCursor> = match r.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(c.parse().map_err(ApiError::from)?),
            None => None,
        };
        let options = ScrollOptions::default()
            .with_page_size(r.page_size.unwrap_or(100))
            .with_vectors(r.with_vectors);
        let c = self.open_collection(name).await?;
        blocking(move || {
            let mut scroll = match cursor {
                Some(cur) => c.scroll_from(&cur, f.as_ref(), options)?,
                None => c.scroll(f.as_ref(), options)?,
            };
            let page = scroll.next_page()?.unwrap_or_default();
            let next_cursor =
                (page.len() == options.page_size).then(|| scroll.cursor().to_string());
            Ok(ScrollPage { documents: page.into_iter().map(Into::into).collect(), next_cursor })
        })
        .await
    }

    /// Vector search.
    pub async fn search(&self, name: String, r: SearchRequest) -> ApiResult<SearchResult> {
        let f = parse_filter(r.filter)?;
        let p = params(r.ef, r.exact);
        let c = self.open_collection(name).await?;
        let (hits, path) = blocking(move || c.search_with(&r.vector, r.k, f.as_ref(), p)).await?;
        Ok(SearchResult {
            hits: hits.into_iter().map(Into::into).collect(),
            path: Some(format!("{path:?}")),
        })
    }

    /// Text query: vector, keyword or hybrid.
    pub async fn query(&self, name: String, r: QueryRequest) -> ApiResult<SearchResult> {
        let options = query_options(&r)?;
        let f = parse_filter(r.filter)?;
        let (c, permit) = self.text_collection(name, false).await?;
        let (hits, path) = blocking(move || {
            let _permit = permit;
            c.query_text_with(&r.text, r.k, f.as_ref(), options)
        })
        .await?;
        Ok(SearchResult {
            hits: hits.into_iter().map(Into::into).collect(),
            path: path.map(|p| format!("{p:?}")),
        })
    }

    /// Streams the documents matching a filter as JSON Lines into `out`, in chunks, from a
    /// blocking task; it stops at the first chunk the receiver no longer takes.
    pub async fn export(
        &self,
        name: String,
        filter: Option<Value>,
        out: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    ) -> ApiResult<()> {
        let f = parse_filter(filter)?;
        let c = self.open_collection(name).await?;
        tokio::task::spawn_blocking(move || {
            let mut w = std::io::BufWriter::with_capacity(64 << 10, ChannelWriter(out.clone()));
            let r = c.export_jsonl_to(&mut w, f.as_ref()).and_then(|_| {
                std::io::Write::flush(&mut w)
                    .map_err(|e| akidb::Error::Io { path: "export stream".into(), source: e })
            });
            if let Err(e) = r {
                // Tell the client the body is incomplete by failing the stream.
                let _ = out.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        });
        Ok(())
    }

    /// A consistent copy of the whole database under the backup directory, named by the server.
    pub async fn backup(&self) -> ApiResult<BackupResult> {
        let Some(dir) = self.backup_dir.clone() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backups_disabled",
                "set backup_dir in the server's configuration to allow backups",
            ));
        };
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let n = self.backups.fetch_add(1, Ordering::Relaxed);
        let name = format!("akidb-backup-{millis}-{n}");
        let (db, target) = (self.db.clone(), dir.join(&name));
        let report = blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| akidb::Error::Io { path: dir.clone(), source: e })?;
            db.backup(&target)
        })
        .await?;
        Ok(BackupResult { name, rows: report.rows, seconds: report.seconds })
    }

    /// Gives deleted documents' space back to the file system.
    pub async fn compact(&self) -> ApiResult<CompactResult> {
        let db = self.db.clone();
        let r = blocking(move || db.compact()).await?;
        Ok(CompactResult {
            bytes_before: r.bytes_before,
            bytes_after: r.bytes_after,
            seconds: r.seconds,
        })
    }

    /// Documents per collection, for metrics.
    pub(crate) async fn sizes(&self) -> Vec<(String, u64)> {
        let db = self.db.clone();
        blocking(move || {
            let mut out = Vec::new();
            for (name, _) in db.list_collections()? {
                if let Ok(c) = db.collection(&name) {
                    out.push((name, c.count()?));
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
    }
}

/// Bytes written to it go to an async receiver, 64 KiB at a time (the `BufWriter` in front
/// decides); a receiver that is gone is a broken pipe.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn unknown_model(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_model", format!("no model named {name:?}"))
}

/// Runs a library call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> akidb::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "task_failed", e.to_string()))
        }
    }
}

/// A filter from JSON; absent or null is none.
fn parse_filter(v: Option<Value>) -> ApiResult<Option<Filter>> {
    v.filter(|v| !v.is_null())
        .map(|v| Filter::from_json(&v).map_err(|e| akidb::Error::from(e).into()))
        .transpose()
}

fn params(ef: Option<usize>, exact: bool) -> SearchParams {
    match (exact, ef) {
        (true, _) => SearchParams::exact(),
        (false, Some(ef)) => SearchParams::with_ef(ef),
        (false, None) => SearchParams::default(),
    }
}

fn query_options(r: &QueryRequest) -> ApiResult<QueryOptions> {
    let bad = |m: String| ApiError::bad_request("bad_query_options", m);
    let mode = match r.mode.as_deref().unwrap_or("auto") {
        "auto" | "" => QueryMode::Auto,
        "vector" => QueryMode::Vector,
        "keyword" => QueryMode::Keyword,
        "hybrid" => QueryMode::Hybrid,
        m => return Err(bad(format!("mode {m:?}: use auto, vector, keyword or hybrid"))),
    };
    let fusion = match (r.fusion.as_deref().unwrap_or("rrf"), r.vector_weight) {
        ("rrf" | "", None) => match r.rrf_k {
            Some(k) => Fusion::Rrf { k },
            None => Fusion::default(),
        },
        ("weighted", Some(w)) if (0.0..=1.0).contains(&w) => Fusion::Weighted { vector: w },
        ("weighted", _) => {
            return Err(bad("weighted fusion needs vector_weight from 0 to 1".into()))
        }
        (f, _) => {
            return Err(bad(format!("fusion {f:?}: use rrf, or weighted with vector_weight")))
        }
    };
    let mut o = QueryOptions::mode(mode)
        .with_fusion(fusion)
        .with_params(params(r.ef, r.exact))
        .with_candidates(r.candidates.unwrap_or(0));
    if r.explain {
        o = o.with_explain();
    }
    Ok(o)
}
