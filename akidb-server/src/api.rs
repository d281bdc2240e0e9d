//! What the service speaks: request and response types (the REST JSON bodies, and what the
//! gRPC messages convert to and from), and errors with their HTTP status and gRPC code.

use akidb::{Hit, IndexKind, Metric, Record};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An error as the service answers it: an HTTP status, a stable machine-readable code
/// ([`akidb::Error::code`] or the service's own) and a message for people.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status (gRPC: see [`ApiError::grpc_code`]).
    pub status: StatusCode,
    /// The machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400 with code `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The gRPC status code for this error's HTTP status.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self.status {
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::CONFLICT if self.code == "collection_exists" => Code::AlreadyExists,
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => Code::FailedPrecondition,
            StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE if self.code == "timeout" => Code::DeadlineExceeded,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            s if s.is_server_error() => Code::Internal,
            _ => Code::InvalidArgument,
        }
    }

    /// The error as a gRPC status, its code in the `akidb-error-code` metadata.
    pub fn into_status(self) -> tonic::Status {
        let mut s = tonic::Status::new(self.grpc_code(), self.message);
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(self.code) {
            s.metadata_mut().insert("akidb-error-code", v);
        }
        s
    }
}

/// The HTTP status of a library error: 400 for a request that can never succeed as sent, 404
/// for what does not exist, 409 for a conflict with what does, 413 for sizes over a limit, 422
/// for a well-formed request the data refuses, 503 for a server-side state that may pass.
pub fn status_of(e: &akidb::Error) -> StatusCode {
    use akidb::Error as E;
    match e {
        E::CollectionNotFound { .. } => StatusCode::NOT_FOUND,
        E::ChangesPruned { .. } => StatusCode::GONE,
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
        E::Storage(akidb::StorageError::BackupTarget { .. }) => StatusCode::BAD_REQUEST,
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

/// The JSON body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`collection_not_found`, `wrong_dimension`, `overloaded`, ...).
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
}

/// `k` when a request gives none.
pub(crate) fn default_k() -> usize {
    10
}

/// A payload index to declare.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// Field path (dots reach into nested objects).
    pub field: String,
    /// `keyword`, `integer`, `float` or `timestamp`.
    #[schema(value_type = String, example = "keyword")]
    pub kind: IndexKind,
}

/// Creates a collection: a vector collection gives `dimension`, a text collection `model` (a
/// model name of the server's configuration).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Collection name: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// Vector dimension (vector collections).
    #[serde(default)]
    pub dimension: Option<usize>,
    /// Model name (text collections).
    #[serde(default)]
    pub model: Option<String>,
    /// `cosine` (default), `dot` or `l2`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "cosine")]
    pub metric: Option<Metric>,
    /// Full-text index for hybrid search (default: on for text collections).
    #[serde(default)]
    pub full_text: Option<bool>,
    /// Payload indexes that filters use.
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
    /// What the graph walks: `f16` (default), `int8`, `int4` or `binary:OVERSAMPLE` (1,024
    /// dimensions or more); the best hits are re-scored exactly either way.
    #[serde(default)]
    #[schema(example = "int8")]
    pub quantization: Option<String>,
    /// Keep the exact vectors on disk instead of in memory (default off).
    #[serde(default)]
    pub vectors_on_disk: Option<bool>,
}

/// A collection in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionSummary {
    /// Name.
    pub name: String,
    /// Vector dimension.
    pub dimension: usize,
    /// `cosine`, `dot` or `l2`.
    #[schema(value_type = String)]
    pub metric: Metric,
    /// The configured model it is bound to, if the server has it.
    pub model: Option<String>,
    /// Whether it keeps a full-text index.
    pub full_text: bool,
}

/// The collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    /// Ordered by name.
    pub collections: Vec<CollectionSummary>,
}

/// The state of a collection's vector index.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexState {
    /// Vectors in the graph.
    pub live: u64,
    /// Deleted vectors still in the graph.
    pub tombstones: u64,
    /// Writes since the last saved index generation.
    pub unsaved_changes: u64,
}

/// A collection's details.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionInfo {
    /// Name, dimension, metric, model, full text.
    #[serde(flatten)]
    pub summary: CollectionSummary,
    /// Documents.
    pub count: u64,
    /// The whole configuration.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Vector index.
    pub index: IndexState,
}

/// A document with its vector.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// User id: 1 to 256 bytes.
    pub id: String,
    /// The vector, of the collection's dimension.
    pub vector: Vec<f32>,
    /// Optional text.
    #[serde(default)]
    pub text: Option<String>,
    /// A JSON object (or null).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// Documents to insert or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRequest {
    /// One durable batch.
    pub documents: Vec<DocumentIn>,
}

/// A text to embed with the collection's model.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextIn {
    /// User id.
    pub id: String,
    /// The text.
    pub text: String,
    /// A JSON object (or null).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// Texts to embed and write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTextsRequest {
    /// One durable batch.
    pub texts: Vec<TextIn>,
}

/// How many documents a write touched.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteResult {
    /// Documents written or deleted.
    pub count: u64,
    /// Texts cut to the model's maximum length (add_texts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
}

/// Ids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsRequest {
    /// User ids.
    pub ids: Vec<String>,
}

/// A stored document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentOut {
    /// User id.
    pub id: String,
    /// The vector (absent unless asked for, in scroll).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vector: Vec<f32>,
    /// Text, if any.
    pub text: Option<String>,
    /// Metadata object.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<Record> for DocumentOut {
    fn from(r: Record) -> Self {
        Self { id: r.id, vector: r.vector, text: r.text, metadata: r.metadata }
    }
}

/// Documents by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct GetResult {
    /// One per requested id, in order; null where there is none.
    pub documents: Vec<Option<DocumentOut>>,
}

/// A filter (the library's JSON filter; absent or null: every document).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// e.g. `{"level": "error", "ts": {"gte": 1700000000}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

/// A count.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountResult {
    /// Documents matching.
    pub count: u64,
}

/// One page of a scroll.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrollRequest {
    /// Filter (absent: every document).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Documents per page (default 100).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// The previous page's `next_cursor`; absent to start.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Return vectors too.
    #[serde(default)]
    pub with_vectors: bool,
}

/// A page of documents in insertion order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScrollPage {
    /// The page.
    pub documents: Vec<DocumentOut>,
    /// Pass it back for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// A vector search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query vector.
    pub vector: Vec<f32>,
    /// Results wanted (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Graph search breadth.
    #[serde(default)]
    pub ef: Option<usize>,
    /// Exact scan instead of the graph.
    #[serde(default)]
    pub exact: bool,
}

/// A text query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The question.
    pub text: String,
    /// Results wanted (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// `auto` (default: hybrid where the collection has a full-text index), `vector`,
    /// `keyword`, `hybrid`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `rrf` (default) or `weighted`.
    #[serde(default)]
    pub fusion: Option<String>,
    /// RRF's k.
    #[serde(default)]
    pub rrf_k: Option<u32>,
    /// Weighted fusion: the vector side's weight, 0 to 1.
    #[serde(default)]
    pub vector_weight: Option<f32>,
    /// Candidates from each side (default max(2k, 50)).
    #[serde(default)]
    pub candidates: Option<usize>,
    /// Each hit says its rank and score on each side.
    #[serde(default)]
    pub explain: bool,
    /// Graph search breadth.
    #[serde(default)]
    pub ef: Option<usize>,
    /// Exact scan on the vector side.
    #[serde(default)]
    pub exact: bool,
}

/// A rank and score on one side of a hybrid query.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct SideRankOut {
    /// From 1.
    pub rank: u32,
    /// The side's own score.
    pub score: f32,
}

/// How a hit was found.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ExplainOut {
    /// Vector side.
    pub vector: Option<SideRankOut>,
    /// Keyword side.
    pub keyword: Option<SideRankOut>,
}

/// One result.
#[derive(Debug, Serialize, ToSchema)]
pub struct HitOut {
    /// User id.
    pub id: String,
    /// Similarity (cosine, dot: higher is better), distance (l2), or the fused score.
    pub score: f32,
    /// Text, if any.
    pub text: Option<String>,
    /// Metadata object.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// With `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<ExplainOut>,
}

impl From<Hit> for HitOut {
    fn from(h: Hit) -> Self {
        let side =
            |s: Option<akidb::SideRank>| s.map(|s| SideRankOut { rank: s.rank, score: s.score });
        Self {
            id: h.id,
            score: h.score,
            text: h.text,
            metadata: h.metadata,
            explain: h
                .explain
                .map(|e| ExplainOut { vector: side(e.vector), keyword: side(e.keyword) }),
        }
    }
}

/// Results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Best first.
    pub hits: Vec<HitOut>,
    /// How the vector side was searched: `Exact`, `ExactFiltered`, `Graph`, `GraphThenExact`;
    /// null for a keyword query.
    pub path: Option<String>,
}

/// A finished backup.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupResult {
    /// Its directory's name under the server's backup directory.
    pub name: String,
    /// Rows copied.
    pub rows: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// A finished compaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompactResult {
    /// File size before.
    pub bytes_before: u64,
    /// File size after.
    pub bytes_after: u64,
    /// Seconds taken (every request waited this long).
    pub seconds: f64,
}
