//! The real server binary on a loopback port, driven by the tonic-generated gRPC client: every
//! method, statuses and their `akidb-error-code`, key scopes, reflection, streaming ingest with
//! its acknowledgements, and a client that breaks off an ingest mid-stream (whole batches
//! only). Every loop is bounded in count and time; everything listens on 127.0.0.1.

mod common;

use std::time::Duration;

use akidb_server::grpc::proto::{self, aki_db_client::AkiDbClient};
use common::*;
use serde_json::json;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

type Client = AkiDbClient<InterceptedService<Channel, Auth>>;

#[derive(Clone)]
struct Auth(Option<&'static str>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        if let Some(key) = self.0 {
            let v = format!("Bearer {key}").parse().map_err(|_| Status::internal("key"))?;
            r.metadata_mut().insert("authorization", v);
        }
        Ok(r)
    }
}

async fn channel(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("connect")
}

async fn client(addr: &str, key: Option<&'static str>) -> Client {
    AkiDbClient::with_interceptor(channel(addr).await, Auth(key))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

/// The code and `akidb-error-code` of a failed call.
fn failure<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>) -> (Code, String) {
    let s = r.expect_err("a failure");
    let code = s.metadata().get("akidb-error-code").and_then(|v| v.to_str().ok());
    (s.code(), code.unwrap_or("").to_string())
}

fn text(id: &str, text: &str, robot: &str) -> proto::TextRecord {
    proto::TextRecord {
        id: id.into(),
        text: text.into(),
        metadata_json: json!({ "robot": robot }).to_string(),
    }
}

#[test]
fn every_method_over_grpc() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 16);
    runtime().block_on(async {
        let mut c = client(&s.addr, Some(WRITE_KEY)).await;
        let created = c
            .create_collection(proto::CreateCollectionRequest {
                name: "logs".into(),
                model: Some("minilm".into()),
                indexes: vec![proto::FieldIndex { field: "robot".into(), kind: "keyword".into() }],
                ..Default::default()
            })
            .await
            .expect("create")
            .into_inner();
        assert_eq!((created.dimension, created.model.as_deref()), (384, Some("minilm")));
        assert!(created.full_text);
        let texts = vec![
            text("a", "Robot halted at the loading dock (NAV_E042)", "r3"),
            text("b", "Battery temperature critical, charging stopped", "r5"),
            text("c", "Goal reached at aisle 4", "r3"),
        ];
        let w = c
            .add_texts(proto::AddTextsRequest { collection: "logs".into(), texts })
            .await
            .expect("add_texts")
            .into_inner();
        assert_eq!(w.count, 3);
        let q = |text: &str, mode: &str| proto::QueryRequest {
            collection: "logs".into(),
            text: text.into(),
            k: 2,
            mode: mode.into(),
            explain: true,
            ..Default::default()
        };
        let r = c.query(q("NAV_E042", "keyword")).await.expect("keyword").into_inner();
        assert_eq!(r.hits[0].id, "a");
        assert!(r.hits[0].keyword_side.is_some() && r.path.is_empty());
        let r = c.query(q("battery overheating", "vector")).await.expect("vector").into_inner();
        assert_eq!(r.hits[0].id, "b");
        let r = c.query(q("dock NAV_E042", "")).await.expect("auto").into_inner();
        assert_eq!(r.hits[0].id, "a");
        assert_eq!(r.hits[0].metadata_json, r#"{"robot":"r3"}"#);
        let mut f = q("robot", "");
        f.filter_json = r#"{"robot": "r5"}"#.into();
        assert_eq!(c.query(f).await.expect("filtered").into_inner().hits.len(), 1);

        // Vector collection: upsert, search, get, count, scroll, delete, delete_where, info.
        c.create_collection(proto::CreateCollectionRequest {
            name: "vec".into(),
            dimension: Some(3),
            metric: Some("l2".into()),
            ..Default::default()
        })
        .await
        .expect("create vec");
        let documents: Vec<proto::Document> = (0..20)
            .map(|i| proto::Document {
                id: format!("d{i}"),
                vector: vec![i as f32, 0.0, 1.0],
                text: None,
                metadata_json: json!({ "n": i }).to_string(),
            })
            .collect();
        let w = c
            .upsert(proto::UpsertRequest { collection: "vec".into(), documents })
            .await
            .expect("upsert")
            .into_inner();
        assert_eq!(w.count, 20);
        let r = c
            .search(proto::SearchRequest {
                collection: "vec".into(),
                vector: vec![4.2, 0.0, 1.0],
                k: 2,
                filter_json: r#"{"n": {"$gte": 5}}"#.into(),
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner();
        assert_eq!(r.hits[0].id, "d5");
        assert!(!r.path.is_empty());
        let g = c
            .get(proto::GetRequest { collection: "vec".into(), ids: vec!["d3".into(), "x".into()] })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(
            g.documents[0].document.as_ref().map(|d| d.vector.clone()),
            Some(vec![3.0, 0.0, 1.0])
        );
        assert!(g.documents[1].document.is_none());
        let n = c
            .count(proto::CountRequest {
                collection: "vec".into(),
                filter_json: r#"{"n": {"$lt": 10}}"#.into(),
            })
            .await
            .expect("count")
            .into_inner();
        assert_eq!(n.count, 10);
        let mut seen = Vec::new();
        let mut cursor = String::new();
        for _ in 0..10 {
            let p = c
                .scroll(proto::ScrollRequest {
                    collection: "vec".into(),
                    page_size: 7,
                    cursor: cursor.clone(),
                    with_vectors: true,
                    ..Default::default()
                })
                .await
                .expect("scroll")
                .into_inner();
            assert!(p.documents.iter().all(|d| d.vector.len() == 3));
            seen.extend(p.documents.into_iter().map(|d| d.id));
            cursor = p.next_cursor;
            if cursor.is_empty() {
                break;
            }
        }
        assert_eq!(seen.len(), 20);
        let d = c
            .delete(proto::DeleteRequest { collection: "vec".into(), ids: vec!["d0".into()] })
            .await
            .expect("delete")
            .into_inner();
        assert_eq!(d.count, 1);
        let d = c
            .delete_where(proto::DeleteWhereRequest {
                collection: "vec".into(),
                filter_json: r#"{"n": {"$gte": 15}}"#.into(),
            })
            .await
            .expect("delete_where")
            .into_inner();
        assert_eq!(d.count, 5);
        let info = c
            .get_collection(proto::CollectionRef { name: "vec".into() })
            .await
            .expect("info")
            .into_inner();
        assert_eq!(info.count, 14);
        assert_eq!(info.summary.map(|s| s.metric), Some("l2".to_string()));
        let list = c.list_collections(proto::ListCollectionsRequest {}).await.expect("list");
        let names: Vec<String> =
            list.into_inner().collections.into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["logs", "vec"]);
        let b = c.backup(proto::BackupRequest {}).await.expect("backup").into_inner();
        assert!(b.name.starts_with("akidb-backup-") && b.rows > 0);
        c.compact(proto::CompactRequest {}).await.expect("compact");
        c.drop_collection(proto::CollectionRef { name: "vec".into() }).await.expect("drop");
        let r = c.get_collection(proto::CollectionRef { name: "vec".into() }).await;
        assert_eq!(failure(r), (Code::NotFound, "collection_not_found".into()));
    });
}

#[test]
fn grpc_errors_are_statuses_with_the_rest_code() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 16);
    runtime().block_on(async {
        let mut c = client(&s.addr, Some(WRITE_KEY)).await;
        let create = |name: &str, dimension| proto::CreateCollectionRequest {
            name: name.into(),
            dimension: Some(dimension),
            ..Default::default()
        };
        c.create_collection(create("vec", 3)).await.expect("create");
        assert_eq!(
            failure(c.create_collection(create("vec", 3)).await),
            (Code::AlreadyExists, "collection_exists".into())
        );
        assert_eq!(
            failure(c.create_collection(create("../x", 3)).await),
            (Code::InvalidArgument, "invalid_collection_name".into())
        );
        let bad_metric =
            proto::CreateCollectionRequest { metric: Some("hamming".into()), ..create("m", 3) };
        assert_eq!(
            failure(c.create_collection(bad_metric).await),
            (Code::InvalidArgument, "bad_request".into())
        );
        let bad_kind = proto::CreateCollectionRequest {
            indexes: vec![proto::FieldIndex { field: "robot".into(), kind: "text".into() }],
            ..create("i", 3)
        };
        assert_eq!(
            failure(c.create_collection(bad_kind).await),
            (Code::InvalidArgument, "bad_request".into())
        );
        let doc = |v: Vec<f32>, meta: &str| proto::UpsertRequest {
            collection: "vec".into(),
            documents: vec![proto::Document {
                id: "x".into(),
                vector: v,
                text: None,
                metadata_json: meta.into(),
            }],
        };
        assert_eq!(
            failure(c.upsert(doc(vec![1.0, 2.0], "")).await),
            (Code::FailedPrecondition, "wrong_dimension".into())
        );
        assert_eq!(
            failure(c.upsert(doc(vec![1.0, 2.0, 3.0], "{not json")).await),
            (Code::InvalidArgument, "bad_json".into())
        );
        let count =
            |f: &str| proto::CountRequest { collection: "vec".into(), filter_json: f.into() };
        assert_eq!(
            failure(c.count(count(r#"{"$nope": 1}"#)).await),
            (Code::InvalidArgument, "invalid_filter".into())
        );
        let q = proto::QueryRequest {
            collection: "vec".into(),
            text: "x".into(),
            ..Default::default()
        };
        assert_eq!(failure(c.query(q).await), (Code::FailedPrecondition, "no_model".into()));

        // Keys: none, and a read key asking to write; a read key reads.
        let mut anonymous = client(&s.addr, None).await;
        assert_eq!(
            failure(anonymous.count(count("")).await),
            (Code::Unauthenticated, "unauthorized".into())
        );
        let mut reader = client(&s.addr, Some(READ_KEY)).await;
        assert_eq!(reader.count(count("")).await.expect("read").into_inner().count, 0);
        assert_eq!(
            failure(reader.upsert(doc(vec![1.0, 2.0, 3.0], "")).await),
            (Code::PermissionDenied, "forbidden".into())
        );
    });
}

#[test]
fn reflection_lists_the_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 16);
    runtime().block_on(async {
        let mut r =
            ServerReflectionClient::with_interceptor(channel(&s.addr).await, Auth(Some(READ_KEY)));
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = r
            .server_reflection_info(tokio_stream::iter([ask]))
            .await
            .expect("reflection")
            .into_inner();
        let first = answers.message().await.expect("answer").expect("one answer");
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("not a service list: {first:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"akidb.v1.AkiDb".to_string()), "{names:?}");
        // The method list the server checks scopes by is the proto's.
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("akidb.v1.AkiDb".into())),
        };
        let mut answers =
            r.server_reflection_info(tokio_stream::iter([ask])).await.expect("file").into_inner();
        let file = answers.message().await.expect("answer").expect("one answer");
        let Some(MessageResponse::FileDescriptorResponse(fd)) = file.message_response else {
            panic!("not a file: {file:?}");
        };
        let fd: prost_types::FileDescriptorProto =
            prost::Message::decode(fd.file_descriptor_proto[0].as_slice()).expect("decode");
        let methods: Vec<String> =
            fd.service[0].method.iter().map(|m| m.name().to_string()).collect();
        assert_eq!(methods, akidb_server::grpc::METHODS);
    });
}

#[test]
fn streaming_ingest_acknowledges_whole_batches_and_a_broken_stream_keeps_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 16);
    runtime().block_on(async {
        let mut c = client(&s.addr, Some(WRITE_KEY)).await;
        for name in ["logs", "broken"] {
            let r = proto::CreateCollectionRequest {
                name: name.into(),
                model: Some("minilm".into()),
                ..Default::default()
            };
            c.create_collection(r).await.expect("create");
        }
        let batch = |collection: &str, b: usize| proto::IngestRequest {
            collection: collection.into(),
            texts: (0..25)
                .map(|i| {
                    text(
                        &format!("b{b}-{i}"),
                        &format!("batch {b} line {i}: lidar {}", i * 13 + b),
                        "r1",
                    )
                })
                .collect(),
            documents: vec![],
        };
        // Four batches; an acknowledgement per batch with the running total.
        let batches: Vec<_> = (0..4).map(|b| batch(if b == 0 { "logs" } else { "" }, b)).collect();
        let mut acks = c.ingest(tokio_stream::iter(batches)).await.expect("ingest").into_inner();
        let mut got = Vec::new();
        while let Some(a) = acks.message().await.expect("ack") {
            got.push((a.batch, a.accepted, a.total_accepted));
        }
        assert_eq!(got, [(0, 25, 25), (1, 25, 50), (2, 25, 75), (3, 25, 100)]);

        // A client that sends two batches, waits for their acknowledgements, sends a third and
        // goes away at once: the two stay, the third lands whole or not at all.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut broken = client(&s.addr, Some(WRITE_KEY)).await;
        let call = tokio::spawn(async move {
            broken.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await
        });
        tx.send(batch("broken", 0)).await.expect("send");
        tx.send(batch("", 1)).await.expect("send");
        let mut acks = call.await.expect("task").expect("ingest").into_inner();
        assert_eq!(acks.message().await.expect("ack").map(|a| a.batch), Some(0));
        assert_eq!(acks.message().await.expect("ack").map(|a| a.batch), Some(1));
        tx.send(batch("", 2)).await.expect("send");
        drop(acks); // resets the stream
        drop(tx);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut c2 = client(&s.addr, Some(READ_KEY)).await;
        let n = c2
            .count(proto::CountRequest { collection: "broken".into(), filter_json: String::new() })
            .await
            .expect("count")
            .into_inner()
            .count;
        assert!(n == 50 || n == 75, "whole batches only: {n}");

        // Bad streams end with a status; what came before stays.
        let bad = vec![proto::IngestRequest { collection: String::new(), ..batch("", 9) }];
        let mut acks = c.ingest(tokio_stream::iter(bad)).await.expect("ingest").into_inner();
        let e = acks.message().await.expect_err("no collection named");
        assert_eq!(e.code(), Code::InvalidArgument);
        let mixed = vec![batch("logs", 5), batch("vec", 6)];
        let mut acks = c.ingest(tokio_stream::iter(mixed)).await.expect("ingest").into_inner();
        assert_eq!(acks.message().await.expect("ack").map(|a| a.total_accepted), Some(25));
        assert_eq!(
            acks.message().await.expect_err("second collection").code(),
            Code::InvalidArgument
        );
    });
}
