//! The REST API: JSON over HTTP, each route a thin translation to [`crate::ops`]. The OpenAPI
//! document ([`openapi`], served at `/openapi.json`) is generated from the same handler
//! declarations the router is built from, so it cannot list a route that is not served or miss
//! one that is.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::*;
use crate::ops::{ApiResult, AppState};

type S = State<Arc<AppState>>;

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
            r => ApiError::bad_request("bad_json", r.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::TOO_MANY_REQUESTS;
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
        let mut r = (self.status, Json(body)).into_response();
        if retry {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// The body as `T`, or the service's JSON error.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(t)| t).map_err(ApiError::from)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AkiDB", description = "AkiDB's REST API. Errors: an ErrorBody with a stable \
        code. Authentication: Authorization: Bearer KEY (read or write scope)."),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The `/v1` routes (without their auth layer) and the OpenAPI document describing them.
pub fn routes() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(collection_info, drop_collection))
        .routes(routes!(upsert))
        .routes(routes!(add_texts))
        .routes(routes!(get_documents))
        .routes(routes!(delete_documents))
        .routes(routes!(count))
        .routes(routes!(delete_where))
        .routes(routes!(scroll))
        .routes(routes!(export))
        .routes(routes!(search))
        .routes(routes!(query))
        .routes(routes!(backup))
        .routes(routes!(compact))
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    (router, api)
}

/// The OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// POST routes that only read (GETs always only read).
pub(crate) fn is_read_post(path: &str) -> bool {
    ["/get", "/count", "/search", "/query", "/scroll", "/export"].iter().any(|s| path.ends_with(s))
}

#[utoipa::path(get, path = "/v1/collections", tag = "collections",
    responses((status = 200, body = CollectionList), (status = 401, body = ErrorBody)))]
async fn list_collections(State(s): S) -> ApiResult<Json<CollectionList>> {
    s.list().await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections", tag = "collections", request_body = CreateRequest,
    responses((status = 201, body = CollectionSummary), (status = 409, body = ErrorBody),
              (status = 404, description = "unknown model", body = ErrorBody)))]
async fn create_collection(
    State(s): S,
    b: Result<Json<CreateRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CollectionSummary>)> {
    Ok((StatusCode::CREATED, Json(s.create(body(b)?).await?)))
}

#[utoipa::path(get, path = "/v1/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "collection")),
    responses((status = 200, body = CollectionInfo), (status = 404, body = ErrorBody)))]
async fn collection_info(State(s): S, Path(name): Path<String>) -> ApiResult<Json<CollectionInfo>> {
    s.info(name).await.map(Json)
}

#[utoipa::path(delete, path = "/v1/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "collection")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn drop_collection(State(s): S, Path(name): Path<String>) -> ApiResult<StatusCode> {
    s.drop_collection(name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/collections/{name}/upsert", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = UpsertRequest,
    responses((status = 200, body = WriteResult), (status = 422, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
async fn upsert(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<UpsertRequest>, JsonRejection>,
) -> ApiResult<Json<WriteResult>> {
    s.upsert(name, body(b)?.documents).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/add_texts", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = AddTextsRequest,
    responses((status = 200, body = WriteResult), (status = 429, body = ErrorBody),
              (status = 413, body = ErrorBody)))]
async fn add_texts(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<AddTextsRequest>, JsonRejection>,
) -> ApiResult<Json<WriteResult>> {
    s.add_texts(name, body(b)?.texts, false).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/get", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = IdsRequest,
    responses((status = 200, body = GetResult)))]
async fn get_documents(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<IdsRequest>, JsonRejection>,
) -> ApiResult<Json<GetResult>> {
    s.get(name, body(b)?.ids).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/delete", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = IdsRequest,
    responses((status = 200, body = WriteResult)))]
async fn delete_documents(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<IdsRequest>, JsonRejection>,
) -> ApiResult<Json<WriteResult>> {
    s.delete(name, body(b)?.ids).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/count", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = FilterRequest,
    responses((status = 200, body = CountResult), (status = 400, body = ErrorBody)))]
async fn count(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<FilterRequest>, JsonRejection>,
) -> ApiResult<Json<CountResult>> {
    s.count(name, body(b)?.filter).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/delete_where", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = FilterRequest,
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody)))]
async fn delete_where(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<FilterRequest>, JsonRejection>,
) -> ApiResult<Json<WriteResult>> {
    s.delete_where(name, body(b)?.filter).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/scroll", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = ScrollRequest,
    responses((status = 200, body = ScrollPage), (status = 400, body = ErrorBody)))]
async fn scroll(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<ScrollRequest>, JsonRejection>,
) -> ApiResult<Json<ScrollPage>> {
    s.scroll(name, body(b)?).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/export", tag = "documents",
    params(("name" = String, Path, description = "collection")), request_body = FilterRequest,
    responses((status = 200, content_type = "application/x-ndjson",
               description = "JSON Lines, streamed: a header line (format, collection, \
               dimension, metric, model), then one document per line (id, text, metadata, \
               vector); the library's import_jsonl reads it")))]
async fn export(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<FilterRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    s.export(name, body(b)?.filter, tx).await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let headers = [(header::CONTENT_TYPE, "application/x-ndjson")];
    Ok((headers, axum::body::Body::from_stream(stream)).into_response())
}

#[utoipa::path(post, path = "/v1/collections/{name}/search", tag = "search",
    params(("name" = String, Path, description = "collection")), request_body = SearchRequest,
    responses((status = 200, body = SearchResult), (status = 422, body = ErrorBody)))]
async fn search(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<SearchRequest>, JsonRejection>,
) -> ApiResult<Json<SearchResult>> {
    s.search(name, body(b)?).await.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/query", tag = "search",
    params(("name" = String, Path, description = "collection")), request_body = QueryRequest,
    responses((status = 200, body = SearchResult), (status = 429, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn query(
    State(s): S,
    Path(name): Path<String>,
    b: Result<Json<QueryRequest>, JsonRejection>,
) -> ApiResult<Json<SearchResult>> {
    s.query(name, body(b)?).await.map(Json)
}

#[utoipa::path(post, path = "/v1/backup", tag = "admin",
    responses((status = 200, body = BackupResult),
              (status = 409, description = "no backup_dir configured", body = ErrorBody)))]
async fn backup(State(s): S) -> ApiResult<Json<BackupResult>> {
    s.backup().await.map(Json)
}

#[utoipa::path(post, path = "/v1/compact", tag = "admin",
    responses((status = 200, body = CompactResult), (status = 503, body = ErrorBody)))]
async fn compact(State(s): S) -> ApiResult<Json<CompactResult>> {
    s.compact().await.map(Json)
}
