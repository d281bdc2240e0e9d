//! AkiDB as a service: the REST API over the embedded engine (`akidb`), for the several
//! processes of a robot that need the one database only one process may open.
//!
//! Nothing here re-implements the library: every route checks the caller's key, then calls the
//! public API on tokio's blocking pool. What the service adds:
//!
//! - **Errors** as one JSON body, `{"error": {"code", "message"}}`: `code` is
//!   [`akidb::Error::code`] (stable, machine-readable) or the service's own (`unauthorized`,
//!   `forbidden`, `bad_json`, `unsupported_media_type`, `body_too_large`, `overloaded`,
//!   `timeout`, `unknown_model`, `not_found`), with the HTTP status of [`status_of`].
//! - **API keys** as bearer tokens (`Authorization: Bearer KEY`), compared in constant time;
//!   a `read` key may list, get, count, search and query, a `write` key everything.
//! - **Backpressure**: each model has a queue of `queue` places; a text request that finds it
//!   full is refused at once with 429 and `Retry-After: 1`, so memory stays bounded. Requests
//!   have a time limit (503 `timeout` beyond it; the library call it started still completes
//!   or fails whole, as every library call does).
//! - **Metrics** at `/metrics` (Prometheus text, a key of any scope): requests by route and
//!   status, a latency histogram by route, model queue depth, documents per collection. Every
//!   response carries an `x-request-id` (the caller's, if it sent a short printable one).
//! - **Shutdown** ([`serve`]): on the signal, stop accepting, let in-flight requests finish
//!   within the deadline, then drop the database (which saves index generations).
//!
//! Routes (JSON bodies; `{name}` is a collection):
//!
//! ```text
//! GET    /healthz  /readyz  /metrics
//! GET    /v1/collections                      list
//! POST   /v1/collections                      create {name, dimension | model, metric,
//!                                                     full_text, indexes}
//! GET    /v1/collections/{name}               info
//! DELETE /v1/collections/{name}               drop
//! POST   /v1/collections/{name}/upsert        {documents: [{id, vector, text, metadata}]}
//! POST   /v1/collections/{name}/get           {ids}
//! POST   /v1/collections/{name}/delete        {ids}
//! POST   /v1/collections/{name}/count         {filter}
//! POST   /v1/collections/{name}/delete_where  {filter}
//! POST   /v1/collections/{name}/search        {vector, k, filter, ef, exact}
//! POST   /v1/collections/{name}/add_texts     {texts: [{id, text, metadata}]}
//! POST   /v1/collections/{name}/query         {text, k, filter, mode, fusion, rrf_k,
//!                                              vector_weight, candidates, explain, ef}
//! ```

pub mod config;
mod metrics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akidb::{
    Collection, CollectionConfig, Database, Document, Embedder, FieldIndex, Filter, Fusion, Metric,
    ModelIdentity, OnnxEmbeddingProvider, QueryMode, QueryOptions, SearchParams, TextDocument,
};
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

pub use config::{Config, Scope};
use metrics::Metrics;

/// An error as the service answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: false }
    }
}

/// The HTTP status of a library error: 400 for a request that can never succeed as sent, 404
/// for what does not exist, 409 for a conflict with what does, 413 for sizes over a limit, 422
/// for a well-formed request the data refuses, 503 for a server-side state that may pass.
pub fn status_of(e: &akidb::Error) -> StatusCode {
    use akidb::Error as E;
    match e {
        E::CollectionNotFound { .. } => StatusCode::NOT_FOUND,
        E::CollectionExists { .. } => StatusCode::CONFLICT,
        E::ModelMismatch { .. } => StatusCode::CONFLICT,
        E::BatchTooLarge { .. } | E::TextTooLong { .. } | E::MetadataTooLarge { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        E::TooManyQueryTerms { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        E::WrongDimension { .. }
        | E::NonFiniteVector { .. }
        | E::VectorOutOfRange { .. }
        | E::ZeroVector { .. }
        | E::NoEmbedder { .. }
        | E::NoFullText { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::Poisoned { .. } | E::FullText { .. } | E::Storage(_) | E::Embedding(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        E::IndexPersist(_) | E::Io { .. } | E::Task { .. } | E::CorruptSchema { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<akidb::Error> for ApiError {
    fn from(e: akidb::Error) -> Self {
        ApiError::new(status_of(&e), e.code(), e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", b.body_text())
            }
            r => ApiError::new(StatusCode::BAD_REQUEST, "bad_json", r.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A loaded model: the provider, its identity, its queue.
struct Model {
    embedder: Arc<dyn Embedder>,
    identity: ModelIdentity,
    queue: Arc<Semaphore>,
    capacity: usize,
}

/// What every handler shares.
pub struct AppState {
    db: Database,
    models: BTreeMap<String, Model>,
    keys: Vec<(Vec<u8>, Scope)>,
    auth_disabled: bool,
    timeout: Duration,
    metrics: Metrics,
    ready: AtomicBool,
    requests: AtomicU64,
}

impl AppState {
    /// Opens the database and loads every model of `config`.
    pub fn open(config: &Config) -> Result<Arc<Self>, String> {
        let db = Database::open(&config.data_dir)
            .map_err(|e| format!("opening {}: {e}", config.data_dir.display()))?;
        let mut models = BTreeMap::new();
        for (name, m) in &config.models {
            let provider = OnnxEmbeddingProvider::from_dir(&m.dir)
                .map_err(|e| format!("model {name} ({}): {e}", m.dir.display()))?;
            let identity = ModelIdentity::of(provider.info());
            let model = Model {
                embedder: Arc::new(provider),
                identity,
                queue: Arc::new(Semaphore::new(m.queue)),
                capacity: m.queue,
            };
            models.insert(name.clone(), model);
        }
        let keys = config
            .auth
            .keys
            .iter()
            .filter_map(|k| Some((k.key.clone()?.into_bytes(), k.scope)))
            .collect();
        Ok(Arc::new(Self {
            db,
            models,
            keys,
            auth_disabled: config.auth.disabled,
            timeout: Duration::from_millis(config.request_timeout_ms),
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
            requests: AtomicU64::new(0),
        }))
    }

    /// The scope of the bearer token in `header`, if it is one of the keys.
    fn scope_of(&self, header: Option<&HeaderValue>) -> Option<Scope> {
        let token = header?.to_str().ok()?.strip_prefix("Bearer ")?.as_bytes();
        // Every key is compared (constant time each), so timing tells nothing of which matched.
        let mut found = None;
        for (key, scope) in &self.keys {
            if bool::from(key.as_slice().ct_eq(token)) {
                found = Some(*scope);
            }
        }
        found
    }

    /// The model name of a collection's bound model, among the configured ones.
    fn model_of(&self, config: &CollectionConfig) -> Option<(&str, &Model)> {
        let bound = config.model.as_ref()?;
        self.models.iter().find(|(_, m)| m.identity.same_model(bound)).map(|(n, m)| (n.as_str(), m))
    }
}

/// The router over `state`, with the limits of `config`.
pub fn router(state: Arc<AppState>, config: &Config) -> Router {
    let v1 = Router::new()
        .route("/collections", get(list_collections).post(create_collection))
        .route("/collections/{name}", get(collection_info).delete(drop_collection))
        .route("/collections/{name}/upsert", post(upsert))
        .route("/collections/{name}/get", post(get_documents))
        .route("/collections/{name}/delete", post(delete_documents))
        .route("/collections/{name}/count", post(count))
        .route("/collections/{name}/delete_where", post(delete_where))
        .route("/collections/{name}/search", post(search))
        .route("/collections/{name}/add_texts", post(add_texts))
        .route("/collections/{name}/query", post(query));
    let authorized = Router::new()
        .route("/metrics", get(metrics_text))
        .nest("/v1", v1)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(authorized)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// Request id, time limit and metrics around every request.
async fn observe(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || format!("akidb-{:x}", s.requests.fetch_add(1, Ordering::Relaxed)),
            str::to_string,
        );
    let start = Instant::now();
    let mut response = match tokio::time::timeout(s.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request ran longer than {} ms", s.timeout.as_millis()),
        )
        .into_response(),
    };
    s.metrics.observe(&route, response.status().as_u16(), start.elapsed());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Reads need a key of any scope, everything else a `write` key.
async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if s.auth_disabled {
        return next.run(req).await;
    }
    let needs = if is_read(&req) { Scope::Read } else { Scope::Write };
    match s.scope_of(req.headers().get(header::AUTHORIZATION)) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API key: Authorization: Bearer KEY",
        )
        .into_response(),
        Some(have) if have < needs => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key may only read")
                .into_response()
        }
        Some(_) => next.run(req).await,
    }
}

/// GETs and the read-only POSTs.
fn is_read(req: &Request<Body>) -> bool {
    if req.method() == axum::http::Method::GET {
        return true;
    }
    let path = req.uri().path();
    req.method() == axum::http::Method::POST
        && ["/get", "/count", "/search", "/query"].iter().any(|s| path.ends_with(s))
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        Json(json!({"ready": true, "models": s.models.keys().collect::<Vec<_>>()})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false}))).into_response()
    }
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    let queues: Vec<(String, usize)> = s
        .models
        .iter()
        .map(|(n, m)| (n.clone(), m.capacity - m.queue.available_permits()))
        .collect();
    let db = s.db.clone();
    let sizes = blocking(move || {
        let mut out = Vec::new();
        for (name, _) in db.list_collections()? {
            if let Ok(c) = db.collection(&name) {
                out.push((name, c.count()?));
            }
        }
        Ok(out)
    })
    .await
    .unwrap_or_default();
    let text = s.metrics.render(&queues, &sizes);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Runs a library call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> akidb::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "task_failed", e.to_string()))
        }
    }
}

/// The body as `T`, or the service's JSON error.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(t)| t).map_err(ApiError::from)
}

fn filter(v: Option<Value>) -> ApiResult<Option<Filter>> {
    v.filter(|v| !v.is_null())
        .map(|v| Filter::from_json(&v).map_err(|e| akidb::Error::from(e).into()))
        .transpose()
}

async fn list_collections(State(s): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    let db = s.db.clone();
    let list = blocking(move || db.list_collections()).await?;
    let out: Vec<Value> = list
        .into_iter()
        .map(|(name, c)| {
            let model = s.model_of(&c).map(|(n, _)| n.to_string());
            json!({"name": name, "dimension": c.dimension, "metric": c.metric, "model": model,
                   "full_text": c.full_text_enabled()})
        })
        .collect();
    Ok(Json(json!({ "collections": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    #[serde(default)]
    dimension: Option<usize>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    metric: Option<Metric>,
    #[serde(default)]
    full_text: Option<bool>,
    #[serde(default)]
    indexes: Vec<FieldIndex>,
}

async fn create_collection(
    State(s): State<Arc<AppState>>,
    b: Result<Json<CreateRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let r = body(b)?;
    let mut config = match (&r.model, r.dimension) {
        (Some(name), _) => {
            let m = s.models.get(name).ok_or_else(|| unknown_model(name))?;
            if r.dimension.is_some_and(|d| d != m.identity.dimension) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "wrong_dimension",
                    format!("model {name} gives {}-d vectors", m.identity.dimension),
                ));
            }
            CollectionConfig::new(m.identity.dimension).with_model(m.identity.clone())
        }
        (None, Some(d)) => CollectionConfig::new(d),
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
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
    let model = r.model.as_ref().and_then(|n| s.models.get(n)).map(|m| m.embedder.clone());
    let (db, name) = (s.db.clone(), r.name.clone());
    blocking(move || {
        db.create_collection(&name, config)?;
        if let Some(m) = model {
            db.text_collection(&name, m)?; // records the model's digest
        }
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"name": r.name}))).into_response())
}

fn unknown_model(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_model", format!("no model named {name:?}"))
}

async fn open(s: &AppState, name: String) -> ApiResult<Collection> {
    let db = s.db.clone();
    blocking(move || db.collection(&name)).await
}

async fn collection_info(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = open(&s, name.clone()).await?;
    let model = s.model_of(c.config()).map(|(n, _)| n.to_string());
    let config = serde_json::to_value(c.config()).unwrap_or(Value::Null);
    let (count, stats) = blocking(move || Ok((c.count()?, c.index_stats()?))).await?;
    Ok(Json(json!({
        "name": name, "model": model, "count": count, "config": config,
        "index": {"live": stats.live, "tombstones": stats.tombstones,
                  "unsaved_changes": stats.unsaved_changes},
    })))
}

async fn drop_collection(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let db = s.db.clone();
    blocking(move || db.drop_collection(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentIn {
    id: String,
    vector: Vec<f32>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertRequest {
    documents: Vec<DocumentIn>,
}

async fn upsert(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<UpsertRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let c = open(&s, name).await?;
    let docs: Vec<Document> = r
        .documents
        .into_iter()
        .map(|d| Document { id: d.id, vector: d.vector, text: d.text, metadata: d.metadata })
        .collect();
    let n = docs.len();
    blocking(move || c.upsert(&docs)).await?;
    Ok(Json(json!({ "upserted": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsRequest {
    ids: Vec<String>,
}

async fn get_documents(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<IdsRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let c = open(&s, name).await?;
    let records = blocking(move || c.get(&r.ids)).await?;
    Ok(Json(json!({ "documents": records })))
}

async fn delete_documents(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<IdsRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let c = open(&s, name).await?;
    let n = blocking(move || c.delete(&r.ids)).await?;
    Ok(Json(json!({ "deleted": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterRequest {
    #[serde(default)]
    filter: Option<Value>,
}

async fn count(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<FilterRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let f = filter(body(b)?.filter)?;
    let c = open(&s, name).await?;
    let n = blocking(move || c.count_where(f.as_ref())).await?;
    Ok(Json(json!({ "count": n })))
}

async fn delete_where(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<FilterRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let f = filter(body(b)?.filter)?.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "delete_where needs a filter")
    })?;
    let c = open(&s, name).await?;
    let n = blocking(move || c.delete_where(&f)).await?;
    Ok(Json(json!({ "deleted": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    vector: Vec<f32>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    ef: Option<usize>,
    #[serde(default)]
    exact: bool,
}

fn default_k() -> usize {
    10
}

fn params(ef: Option<usize>, exact: bool) -> SearchParams {
    match (exact, ef) {
        (true, _) => SearchParams::exact(),
        (false, Some(ef)) => SearchParams::with_ef(ef),
        (false, None) => SearchParams::default(),
    }
}

async fn search(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<SearchRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let f = filter(r.filter)?;
    let c = open(&s, name).await?;
    let p = params(r.ef, r.exact);
    let (hits, path) = blocking(move || c.search_with(&r.vector, r.k, f.as_ref(), p)).await?;
    Ok(Json(json!({ "hits": hits, "path": format!("{path:?}") })))
}

/// The collection bound to its model, and a place in the model's queue (429 when full).
async fn text_handle(
    s: &AppState,
    name: String,
) -> ApiResult<(Collection, tokio::sync::OwnedSemaphorePermit)> {
    let c = open(s, name.clone()).await?;
    let Some((_, model)) = s.model_of(c.config()) else {
        let bound = c.config().model.as_ref().map_or("none".into(), |m| m.to_string());
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_model",
            format!(
                "collection {name:?} is bound to model {bound}, which this server has not loaded"
            ),
        ));
    };
    let permit = model.queue.clone().try_acquire_owned().map_err(|_| ApiError {
        retry_after: true,
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            "the model's queue is full: retry after a second",
        )
    })?;
    let (db, m) = (s.db.clone(), model.embedder.clone());
    let c = blocking(move || db.text_collection(&name, m)).await?;
    Ok((c, permit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextIn {
    id: String,
    text: String,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTextsRequest {
    texts: Vec<TextIn>,
}

async fn add_texts(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<AddTextsRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let (c, permit) = text_handle(&s, name).await?;
    let docs: Vec<TextDocument> = r
        .texts
        .into_iter()
        .map(|t| TextDocument::new(t.id, t.text).with_metadata(t.metadata))
        .collect();
    let n = docs.len();
    let truncated = blocking(move || {
        let _permit = permit;
        c.add_texts(&docs)
    })
    .await?;
    Ok(Json(json!({ "added": n, "truncated": truncated })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    text: String,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    filter: Option<Value>,
    /// `auto` (default), `vector`, `keyword`, `hybrid`.
    #[serde(default)]
    mode: Option<String>,
    /// `rrf` (default) or `weighted`.
    #[serde(default)]
    fusion: Option<String>,
    #[serde(default)]
    rrf_k: Option<u32>,
    #[serde(default)]
    vector_weight: Option<f32>,
    #[serde(default)]
    candidates: Option<usize>,
    #[serde(default)]
    explain: bool,
    #[serde(default)]
    ef: Option<usize>,
    #[serde(default)]
    exact: bool,
}

fn query_options(r: &QueryRequest) -> ApiResult<QueryOptions> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_query_options", m);
    let mode = match r.mode.as_deref().unwrap_or("auto") {
        "auto" => QueryMode::Auto,
        "vector" => QueryMode::Vector,
        "keyword" => QueryMode::Keyword,
        "hybrid" => QueryMode::Hybrid,
        m => return Err(bad(format!("mode {m:?}: use auto, vector, keyword or hybrid"))),
    };
    let fusion = match (r.fusion.as_deref().unwrap_or("rrf"), r.vector_weight) {
        ("rrf", None) => match r.rrf_k {
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

async fn query(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<QueryRequest>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let r = body(b)?;
    let options = query_options(&r)?;
    let f = filter(r.filter.clone())?;
    let (c, permit) = text_handle(&s, name).await?;
    let (hits, path) = blocking(move || {
        let _permit = permit;
        c.query_text_with(&r.text, r.k, f.as_ref(), options)
    })
    .await?;
    Ok(Json(json!({ "hits": hits, "path": path.map(|p| format!("{p:?}")) })))
}

/// Serves `config` until `shutdown` completes, then lets in-flight requests finish within the
/// configured deadline and closes the database (saving index generations). Calls `bound` with
/// the address actually bound (port 0 picks one) once it accepts connections.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let state = AppState::open(&config)?;
    let app = router(state.clone(), &config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    bound(addr);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let deadline = Duration::from_millis(config.shutdown_deadline_ms);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // After the signal, in-flight requests get `deadline`; then the server is dropped.
    let mut server = server;
    tokio::select! {
        r = &mut server => r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
        _ = async {
            let _ = stop_rx.await;
            tokio::time::sleep(deadline).await;
        } => {
            log::warn!("requests still running after the shutdown deadline: closing anyway");
            server.abort();
        }
    }
    state.ready.store(false, Ordering::Relaxed);
    // The last handle closes the database: index generations are saved there.
    let state = Arc::try_unwrap(state).ok();
    tokio::task::spawn_blocking(move || drop(state)).await.map_err(|e| e.to_string())?;
    Ok(())
}
