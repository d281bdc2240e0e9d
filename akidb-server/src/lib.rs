//! AkiDB as a service: REST and gRPC over the embedded engine (`akidb`), for the several
//! processes of a robot that need the one database only one process may open.
//!
//! Nothing here re-implements the library: both APIs translate to the operations of [`ops`],
//! which call the public API on tokio's blocking pool. One port serves both (HTTP/1.1 and
//! HTTP/2; gRPC is HTTP/2), in plain TCP or TLS ([`tls`]). What the service adds:
//!
//! - **Errors** as one JSON body, `{"error": {"code", "message"}}` (gRPC: a status with the
//!   code in the `akidb-error-code` metadata): `code` is [`akidb::Error::code`] (stable,
//!   machine-readable) or the service's own (`unauthorized`, `forbidden`, `bad_json`,
//!   `unsupported_media_type`, `body_too_large`, `overloaded`, `timeout`, `unknown_model`,
//!   `no_model`, `backups_disabled`, `not_found`), with the HTTP status of [`api::status_of`].
//! - **API keys** as bearer tokens (`Authorization: Bearer KEY`; gRPC metadata
//!   `authorization`), compared in constant time; a `read` key may list, get, count, scroll,
//!   export, search and query, a `write` key everything.
//! - **Backpressure**: each model has a queue of `queue` places in front of its micro-batching
//!   embedder (whose `parallel_runs` workers run the model side by side); a text request that
//!   finds it full is refused at once with 429 and `Retry-After: 1` (gRPC `RESOURCE_EXHAUSTED`),
//!   so memory stays bounded; a gRPC ingest stream waits for a place instead, up to the time
//!   limit. Requests have a time limit (503 `timeout` beyond it; the library call it started
//!   still completes or fails whole). A request body is read whole before any lock is taken, so
//!   a slow client holds none.
//! - **Metrics** at `/metrics` (Prometheus text, a key of any scope): requests by route and
//!   status, a latency histogram by route, model queue depth, documents per collection. Every
//!   response carries an `x-request-id` (the caller's, if it sent a short printable one).
//! - **Shutdown** ([`serve`]): on the signal, stop accepting, let in-flight requests finish
//!   within the deadline, then drop the database (which saves index generations).
//! - **CORS** only for the origins the configuration lists; none by default.
//!
//! REST routes (JSON bodies; `{name}` is a collection; the OpenAPI document at
//! `/openapi.json` has the schemas):
//!
//! ```text
//! GET    /healthz  /readyz  /openapi.json      (no key)
//! GET    /metrics
//! GET    /v1/collections                      list
//! POST   /v1/collections                      create {name, dimension | model, metric,
//!                                                     full_text, indexes}
//! GET    /v1/collections/{name}               info
//! DELETE /v1/collections/{name}               drop
//! POST   /v1/collections/{name}/upsert        {documents: [{id, vector, text, metadata}]}
//! POST   /v1/collections/{name}/add_texts     {texts: [{id, text, metadata}]}
//! POST   /v1/collections/{name}/get           {ids}
//! POST   /v1/collections/{name}/delete        {ids}
//! POST   /v1/collections/{name}/count         {filter}
//! POST   /v1/collections/{name}/delete_where  {filter}
//! POST   /v1/collections/{name}/scroll        {filter, page_size, cursor, with_vectors}
//! POST   /v1/collections/{name}/export        {filter} -> JSON Lines, streamed
//! POST   /v1/collections/{name}/search        {vector, k, filter, ef, exact}
//! POST   /v1/collections/{name}/query         {text, k, filter, mode, fusion, rrf_k,
//!                                              vector_weight, candidates, explain, ef}
//! POST   /v1/backup                           a copy of the database under backup_dir
//! POST   /v1/compact                          give deleted space back
//! ```
//!
//! gRPC: `akidb.v1.AkiDb` (proto/akidb/v1/akidb.proto), the same operations plus streaming
//! `Ingest`, with server reflection.

pub mod api;
pub mod config;
pub mod grpc;
mod metrics;
pub mod ops;
pub mod rest;
pub mod tls;

use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use api::{status_of, ApiError};
pub use config::{Config, Scope};
pub use ops::AppState;

/// The whole service over `state`, with the limits of `config`.
pub fn router(state: Arc<AppState>, config: &Config) -> Result<Router, String> {
    let (v1, api) = rest::routes();
    let spec = api.to_json().map_err(|e| e.to_string())?;
    let authorized = Router::new()
        .route("/metrics", get(metrics_text))
        .merge(v1)
        .with_state(state.clone())
        .merge(grpc::routes(state.clone()))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize));
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }),
        )
        .with_state(state.clone())
        .merge(authorized)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    if let Some(cors) = &config.cors {
        app = app.layer(cors_layer(cors)?);
    }
    Ok(app)
}

fn cors_layer(c: &config::CorsConfig) -> Result<tower_http::cors::CorsLayer, String> {
    use axum::http::Method;
    let origins = c
        .allow_origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|e| format!("cors origin {o:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([axum::http::HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600)))
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// An error in the caller's protocol: a JSON body, or a gRPC status.
fn reject(grpc: bool, e: ApiError) -> Response {
    if grpc {
        e.into_status().into_http()
    } else {
        e.into_response()
    }
}

/// The method of a path `/akidb.v1.AkiDb/METHOD`.
fn grpc_method(path: &str) -> Option<&str> {
    path.strip_prefix('/')?.strip_prefix(grpc::SERVICE)?.strip_prefix('/')
}

/// The metrics label of a request: its route, or the gRPC method.
fn route_label(req: &Request) -> String {
    let path = req.uri().path();
    if let Some(method) = grpc_method(path) {
        if grpc::METHODS.contains(&method) {
            return path.to_string();
        }
    }
    if path.starts_with("/grpc.reflection.") {
        return "grpc_reflection".to_string();
    }
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// What a request is, decided once on its full path and headers before routing (nested
/// services see only the rest of the path): its protocol and the scope it needs.
#[derive(Clone, Copy)]
struct Kind {
    grpc: bool,
    needs: Scope,
}

/// Request id, time limit and metrics around every request.
async fn observe(State(s): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = route_label(&req);
    let grpc = is_grpc(&req);
    let needs = if is_read(&req) { Scope::Read } else { Scope::Write };
    req.extensions_mut().insert(Kind { grpc, needs });
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
        Err(_) => reject(
            grpc,
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request ran longer than {} ms", s.timeout.as_millis()),
            ),
        ),
    };
    let status = match (grpc, response.headers().get("grpc-status")) {
        // A gRPC error answered at once carries its status in the headers.
        (true, Some(v)) => v.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0u16),
        _ => response.status().as_u16(),
    };
    s.metrics.observe(&route, status, start.elapsed());
    log::debug!("{id} {route} {status} {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Reads need a key of any scope, everything else a `write` key.
async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // `observe` always runs first; without it, the strictest reading.
    let kind = req.extensions().get::<Kind>().copied();
    let kind = kind.unwrap_or(Kind { grpc: is_grpc(&req), needs: Scope::Write });
    let header = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    match s.check_key(header, kind.needs) {
        Ok(()) => next.run(req).await,
        Err(e) => reject(kind.grpc, e),
    }
}

/// GETs, the read-only POSTs, the read-only gRPC methods and reflection.
fn is_read(req: &Request) -> bool {
    let path = req.uri().path();
    if let Some(method) = grpc_method(path) {
        return grpc::READ_METHODS.contains(&method);
    }
    req.method() == axum::http::Method::GET
        || path.starts_with("/grpc.reflection.")
        || (req.method() == axum::http::Method::POST && rest::is_read_post(path))
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        let models: Vec<_> = s
            .registry
            .status()
            .into_iter()
            .map(|m| json!({"name": m.name, "loaded": m.loaded, "weights_bytes": m.bytes}))
            .collect();
        Json(json!({"ready": true, "models": models})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false}))).into_response()
    }
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    let queues = s.queue_depths();
    let sizes = s.sizes().await;
    let text = s.metrics.render(&queues, &sizes);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// What a server process does (`akidb-server` and `akidb serve`): raises its open-file limit
/// to the hard limit (each connection is a descriptor), serves `config` on a multi-threaded
/// runtime until SIGTERM or SIGINT, printing `listening on ADDR` on standard output once it
/// accepts connections, and returns after the shutdown (see [`serve`]).
pub fn run_until_signal(config: Config) -> Result<(), String> {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        log::warn!("could not raise the open-file limit: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(config, shutdown_signal(), |addr| {
        use std::io::Write;
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
    }))
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // No signal handlers: never shut down on a signal (the default action applies).
            std::future::pending::<()>().await;
        }
    }
}

/// Serves `config` until `shutdown` completes, then lets in-flight requests finish within the
/// configured deadline and closes the database (saving index generations). Calls `bound` with
/// the address actually bound (port 0 picks one) once it accepts connections.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let state = AppState::open(&config)?;
    let app = router(state.clone(), &config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(());
    };
    let server = match tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls).map_err(|e| e.to_string())?;
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(signal).into_future())
        }
        None => {
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(signal).into_future())
        }
    };
    bound(addr);
    // After the signal, in-flight requests get `deadline`; then the server is dropped.
    let deadline = Duration::from_millis(config.shutdown_deadline_ms);
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
