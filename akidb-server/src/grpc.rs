//! The gRPC API (`akidb.v1.AkiDb`, proto/akidb/v1/akidb.proto), served on the REST port over
//! HTTP/2, with server reflection. Each method converts its message to the types of
//! [`crate::api`] and calls the same operation of [`crate::ops`] as the REST route; errors are
//! statuses whose code follows the REST status and whose `akidb-error-code` metadata is the REST
//! body's code.

use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::api::{self, ApiError};
use crate::ops::AppState;

/// The generated messages, server and client of `akidb.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("akidb.v1");
}

/// The encoded descriptor set of the proto, for reflection.
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/akidb_v1_descriptor.bin"));

/// The full name of the service.
pub const SERVICE: &str = "akidb.v1.AkiDb";

/// Methods that only read (a `read` key may call them).
pub const READ_METHODS: &[&str] =
    &["ListCollections", "GetCollection", "Get", "Count", "Scroll", "Search", "Query"];

/// Every method of the service, for metrics labels and the scope check.
pub const METHODS: &[&str] = &[
    "ListCollections",
    "CreateCollection",
    "GetCollection",
    "DropCollection",
    "Upsert",
    "Get",
    "Delete",
    "Count",
    "DeleteWhere",
    "Scroll",
    "Search",
    "AddTexts",
    "Query",
    "Ingest",
    "Backup",
    "Compact",
];

/// The gRPC routes (the service, and reflection in its v1 and v1alpha versions, which older
/// clients such as grpcio's ask for), ready to merge into the REST router.
pub fn routes(state: Arc<AppState>) -> axum::Router {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
    };
    let mut routes =
        tonic::service::Routes::new(proto::aki_db_server::AkiDbServer::new(Service { state }));
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => routes = routes.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => log::error!("gRPC reflection not served: {e}"),
    }
    routes.prepare().into_axum_router()
}

struct Service {
    state: Arc<AppState>,
}

type R<T> = Result<Response<T>, Status>;

fn st(e: ApiError) -> Status {
    e.into_status()
}

/// Metadata JSON text: empty is none (`null`); anything else must parse.
fn json_in(text: &str, what: &str) -> Result<Value, Status> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|e| st(ApiError::bad_request("bad_json", format!("{what} is not JSON: {e}"))))
}

fn filter_in(text: &str) -> Result<Option<Value>, Status> {
    Ok(Some(json_in(text, "filter_json")?).filter(|v| !v.is_null()))
}

fn json_out(v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        v.to_string()
    }
}

fn doc_in(d: proto::Document) -> Result<api::DocumentIn, Status> {
    Ok(api::DocumentIn {
        id: d.id,
        vector: d.vector,
        text: d.text,
        metadata: json_in(&d.metadata_json, "metadata_json")?,
    })
}

fn text_in(t: proto::TextRecord) -> Result<api::TextIn, Status> {
    Ok(api::TextIn {
        id: t.id,
        text: t.text,
        metadata: json_in(&t.metadata_json, "metadata_json")?,
    })
}

fn doc_out(d: api::DocumentOut) -> proto::Document {
    proto::Document {
        id: d.id,
        vector: d.vector,
        text: d.text,
        metadata_json: json_out(&d.metadata),
    }
}

fn summary_out(s: api::CollectionSummary) -> proto::CollectionSummary {
    proto::CollectionSummary {
        name: s.name,
        dimension: u32::try_from(s.dimension).unwrap_or(u32::MAX),
        metric: serde_json::to_value(s.metric)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        model: s.model,
        full_text: s.full_text,
    }
}

fn search_out(r: api::SearchResult) -> proto::SearchResponse {
    let side =
        |s: Option<api::SideRankOut>| s.map(|s| proto::SideRank { rank: s.rank, score: s.score });
    proto::SearchResponse {
        hits: r
            .hits
            .into_iter()
            .map(|h| proto::Hit {
                metadata_json: json_out(&h.metadata),
                vector_side: side(h.explain.and_then(|e| e.vector)),
                keyword_side: side(h.explain.and_then(|e| e.keyword)),
                id: h.id,
                score: h.score,
                text: h.text,
            })
            .collect(),
        path: r.path.unwrap_or_default(),
    }
}

fn write_out(w: api::WriteResult) -> proto::WriteResponse {
    proto::WriteResponse { count: w.count, truncated: w.truncated.unwrap_or(0) }
}

/// `k` of 0 (unset in proto3) means the REST default.
fn k_in(k: u32) -> usize {
    if k == 0 {
        api::default_k()
    } else {
        k as usize
    }
}

/// A value of a library enum from its serde name (`cosine`, `keyword`, ...), or a 400 that
/// lists the names.
fn by_name<T: serde::de::DeserializeOwned>(
    name: &str,
    what: &str,
    names: &str,
) -> Result<T, Status> {
    serde_json::from_value(Value::String(name.into()))
        .map_err(|_| st(ApiError::bad_request("bad_request", format!("{what} {name:?}: {names}"))))
}

fn opt_str(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

type AckStream = Pin<Box<dyn Stream<Item = Result<proto::IngestAck, Status>> + Send>>;

#[tonic::async_trait]
impl proto::aki_db_server::AkiDb for Service {
    async fn list_collections(
        &self,
        _: Request<proto::ListCollectionsRequest>,
    ) -> R<proto::ListCollectionsResponse> {
        let list = self.state.list().await.map_err(st)?;
        Ok(Response::new(proto::ListCollectionsResponse {
            collections: list.collections.into_iter().map(summary_out).collect(),
        }))
    }

    async fn create_collection(
        &self,
        r: Request<proto::CreateCollectionRequest>,
    ) -> R<proto::CollectionSummary> {
        let r = r.into_inner();
        let metric = match r.metric.as_deref() {
            None | Some("") => None,
            Some(m) => Some(by_name(m, "metric", "cosine, dot or l2")?),
        };
        let mut indexes = Vec::with_capacity(r.indexes.len());
        for i in r.indexes {
            let kind = by_name(&i.kind, "index kind", "keyword, integer, float or timestamp")?;
            indexes.push(api::IndexSpec { field: i.field, kind });
        }
        let req = api::CreateRequest {
            name: r.name,
            dimension: r.dimension.map(|d| d as usize),
            model: r.model.filter(|m| !m.is_empty()),
            metric,
            full_text: r.full_text,
            indexes,
            quantization: r.quantization,
            vectors_on_disk: r.vectors_on_disk,
        };
        let s = self.state.create(req).await.map_err(st)?;
        Ok(Response::new(summary_out(s)))
    }

    async fn get_collection(&self, r: Request<proto::CollectionRef>) -> R<proto::CollectionInfo> {
        let i = self.state.info(r.into_inner().name).await.map_err(st)?;
        Ok(Response::new(proto::CollectionInfo {
            summary: Some(summary_out(i.summary)),
            count: i.count,
            index_live: i.index.live,
            index_tombstones: i.index.tombstones,
            index_unsaved_changes: i.index.unsaved_changes,
            config_json: i.config.to_string(),
        }))
    }

    async fn drop_collection(
        &self,
        r: Request<proto::CollectionRef>,
    ) -> R<proto::DropCollectionResponse> {
        self.state.drop_collection(r.into_inner().name).await.map_err(st)?;
        Ok(Response::new(proto::DropCollectionResponse {}))
    }

    async fn upsert(&self, r: Request<proto::UpsertRequest>) -> R<proto::WriteResponse> {
        let r = r.into_inner();
        let docs = r.documents.into_iter().map(doc_in).collect::<Result<_, _>>()?;
        let w = self.state.upsert(r.collection, docs).await.map_err(st)?;
        Ok(Response::new(write_out(w)))
    }

    async fn get(&self, r: Request<proto::GetRequest>) -> R<proto::GetResponse> {
        let r = r.into_inner();
        let g = self.state.get(r.collection, r.ids).await.map_err(st)?;
        Ok(Response::new(proto::GetResponse {
            documents: g
                .documents
                .into_iter()
                .map(|d| proto::MaybeDocument { document: d.map(doc_out) })
                .collect(),
        }))
    }

    async fn delete(&self, r: Request<proto::DeleteRequest>) -> R<proto::WriteResponse> {
        let r = r.into_inner();
        let w = self.state.delete(r.collection, r.ids).await.map_err(st)?;
        Ok(Response::new(write_out(w)))
    }

    async fn count(&self, r: Request<proto::CountRequest>) -> R<proto::CountResponse> {
        let r = r.into_inner();
        let c = self.state.count(r.collection, filter_in(&r.filter_json)?).await.map_err(st)?;
        Ok(Response::new(proto::CountResponse { count: c.count }))
    }

    async fn delete_where(&self, r: Request<proto::DeleteWhereRequest>) -> R<proto::WriteResponse> {
        let r = r.into_inner();
        let f = filter_in(&r.filter_json)?;
        let w = self.state.delete_where(r.collection, f).await.map_err(st)?;
        Ok(Response::new(write_out(w)))
    }

    async fn scroll(&self, r: Request<proto::ScrollRequest>) -> R<proto::ScrollResponse> {
        let r = r.into_inner();
        let req = api::ScrollRequest {
            filter: filter_in(&r.filter_json)?,
            page_size: (r.page_size != 0).then_some(r.page_size as usize),
            cursor: opt_str(r.cursor),
            with_vectors: r.with_vectors,
        };
        let p = self.state.scroll(r.collection, req).await.map_err(st)?;
        Ok(Response::new(proto::ScrollResponse {
            documents: p.documents.into_iter().map(doc_out).collect(),
            next_cursor: p.next_cursor.unwrap_or_default(),
        }))
    }

    async fn search(&self, r: Request<proto::SearchRequest>) -> R<proto::SearchResponse> {
        let r = r.into_inner();
        let req = api::SearchRequest {
            vector: r.vector,
            k: k_in(r.k),
            filter: filter_in(&r.filter_json)?,
            ef: r.ef.map(|e| e as usize),
            exact: r.exact,
        };
        let out = self.state.search(r.collection, req).await.map_err(st)?;
        Ok(Response::new(search_out(out)))
    }

    async fn add_texts(&self, r: Request<proto::AddTextsRequest>) -> R<proto::WriteResponse> {
        let r = r.into_inner();
        let texts = r.texts.into_iter().map(text_in).collect::<Result<_, _>>()?;
        let w = self.state.add_texts(r.collection, texts, false).await.map_err(st)?;
        Ok(Response::new(write_out(w)))
    }

    async fn query(&self, r: Request<proto::QueryRequest>) -> R<proto::SearchResponse> {
        let r = r.into_inner();
        let req = api::QueryRequest {
            text: r.text,
            k: k_in(r.k),
            filter: filter_in(&r.filter_json)?,
            mode: opt_str(r.mode),
            fusion: opt_str(r.fusion),
            rrf_k: r.rrf_k,
            vector_weight: r.vector_weight,
            candidates: (r.candidates != 0).then_some(r.candidates as usize),
            explain: r.explain,
            ef: r.ef.map(|e| e as usize),
            exact: r.exact,
        };
        let out = self.state.query(r.collection, req).await.map_err(st)?;
        Ok(Response::new(search_out(out)))
    }

    type IngestStream = AckStream;

    async fn ingest(&self, r: Request<Streaming<proto::IngestRequest>>) -> R<Self::IngestStream> {
        let mut inbound = r.into_inner();
        let state = self.state.clone();
        // One acknowledgement in flight: a client that stops reading them stops the ingest.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let result = ingest(&state, &mut inbound, &tx).await;
            if let Err(status) = result {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn backup(&self, _: Request<proto::BackupRequest>) -> R<proto::BackupResponse> {
        let b = self.state.backup().await.map_err(st)?;
        Ok(Response::new(proto::BackupResponse { name: b.name, rows: b.rows, seconds: b.seconds }))
    }

    async fn compact(&self, _: Request<proto::CompactRequest>) -> R<proto::CompactResponse> {
        let c = self.state.compact().await.map_err(st)?;
        Ok(Response::new(proto::CompactResponse {
            bytes_before: c.bytes_before,
            bytes_after: c.bytes_after,
            seconds: c.seconds,
        }))
    }
}

/// Reads batches until the stream ends, writing each as one durable batch before reading the
/// next and acknowledging it once written. A message that does not arrive within the request
/// time limit ends the stream (`DEADLINE_EXCEEDED`); the batches before it stay written.
async fn ingest(
    state: &AppState,
    inbound: &mut Streaming<proto::IngestRequest>,
    tx: &tokio::sync::mpsc::Sender<Result<proto::IngestAck, Status>>,
) -> Result<(), Status> {
    let mut collection = String::new();
    let (mut batch, mut total) = (0u64, 0u64);
    loop {
        let next = tokio::time::timeout(state.timeout, inbound.next()).await.map_err(|_| {
            Status::deadline_exceeded("no ingest message within the request time limit")
        })?;
        let Some(msg) = next else { return Ok(()) };
        let msg = msg?;
        match (collection.is_empty(), msg.collection.is_empty()) {
            (true, true) => {
                return Err(Status::invalid_argument("the first message must name the collection"))
            }
            (true, false) => collection = msg.collection,
            (false, false) if msg.collection != collection => {
                return Err(Status::invalid_argument("one stream ingests into one collection"))
            }
            _ => {}
        }
        let written = match (msg.texts.is_empty(), msg.documents.is_empty()) {
            (false, true) => {
                let texts = msg.texts.into_iter().map(text_in).collect::<Result<_, _>>()?;
                state.add_texts(collection.clone(), texts, true).await.map_err(st)?
            }
            (true, false) => {
                let docs = msg.documents.into_iter().map(doc_in).collect::<Result<_, _>>()?;
                state.upsert(collection.clone(), docs).await.map_err(st)?
            }
            (true, true) => continue,
            (false, false) => {
                return Err(Status::invalid_argument(
                    "a message carries texts or documents, not both",
                ))
            }
        };
        total += written.count;
        let ack = proto::IngestAck {
            batch,
            accepted: written.count,
            truncated: written.truncated.unwrap_or(0),
            total_accepted: total,
        };
        batch += 1;
        if tx.send(Ok(ack)).await.is_err() {
            return Ok(()); // the client went away; what was acknowledged is written
        }
    }
}
