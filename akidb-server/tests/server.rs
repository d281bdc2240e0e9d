//! The real server binary on a loopback port, driven by a real HTTP client (reqwest): every
//! route, the error body and status of each kind of bad request, API key scopes, the model
//! queue's 429, request ids, metrics, the OpenAPI document against the routes, CORS, TLS, a
//! client that disconnects mid-body, 1,000 concurrent connections, and SIGTERM and SIGKILL
//! under a write load after which every acknowledged write is in the database. Every loop is
//! bounded in count and time; everything listens on 127.0.0.1.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[test]
fn every_route_with_real_clients() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 64);
    assert_eq!(s.call("GET", "/healthz", None, None).text().expect("text"), "ok");
    assert_eq!(s.call("GET", "/readyz", None, None).status(), StatusCode::OK);

    // A text collection on the configured model: add, then query in every mode.
    s.ok(
        "POST",
        "/v1/collections",
        json!({"name": "logs", "model": "minilm",
        "indexes": [{"field": "robot", "kind": "keyword"}]}),
    );
    let texts = json!({"texts": [
        {"id": "a", "text": "Robot halted at the loading dock (NAV_E042)",
         "metadata": {"robot": "r3"}},
        {"id": "b", "text": "Battery temperature critical, charging stopped",
         "metadata": {"robot": "r5"}},
        {"id": "c", "text": "Goal reached at aisle 4", "metadata": {"robot": "r3"}}]});
    assert_eq!(s.ok("POST", "/v1/collections/logs/add_texts", texts)["count"], 3);
    let q = |body: Value| s.ok("POST", "/v1/collections/logs/query", body);
    let hits = q(json!({"text": "NAV_E042", "k": 1, "mode": "keyword"}));
    assert_eq!(hits["hits"][0]["id"], "a");
    assert_eq!(hits["path"], Value::Null, "no vector side");
    let hits = q(json!({"text": "battery overheating", "k": 1, "mode": "vector"}));
    assert_eq!(hits["hits"][0]["id"], "b");
    let hits = q(json!({"text": "dock NAV_E042", "k": 2, "explain": true}));
    assert_eq!(hits["hits"][0]["id"], "a");
    assert!(hits["hits"][0]["explain"]["keyword"]["rank"].is_number());
    let hits = q(json!({"text": "robot", "k": 3, "filter": {"robot": "r5"}}));
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(1));
    let hits = q(json!({"text": "aisle", "k": 3, "mode": "hybrid", "fusion": "weighted",
                       "vector_weight": 0.2}));
    assert_eq!(hits["hits"][0]["id"], "c");

    // A vector collection: upsert, search, get, count, delete, delete_where, info, list, drop.
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 3, "metric": "l2"}));
    let docs: Vec<Value> = (0..20)
        .map(|i| {
            json!({"id": format!("d{i}"), "vector": [i as f32, 0.0, 1.0],
                        "metadata": {"n": i}})
        })
        .collect();
    assert_eq!(s.ok("POST", "/v1/collections/vec/upsert", json!({"documents": docs}))["count"], 20);
    let hits = s.ok(
        "POST",
        "/v1/collections/vec/search",
        json!({"vector": [4.2, 0.0, 1.0], "k": 2, "filter": {"n": {"$gte": 5}}}),
    );
    assert_eq!(hits["hits"][0]["id"], "d5");
    let got = s.ok("POST", "/v1/collections/vec/get", json!({"ids": ["d3", "nope"]}));
    assert_eq!(got["documents"][0]["vector"], json!([3.0, 0.0, 1.0]));
    assert_eq!(got["documents"][1], Value::Null);
    assert_eq!(
        s.ok("POST", "/v1/collections/vec/count", json!({"filter": {"n": {"$lt": 10}}}))["count"],
        10
    );
    assert_eq!(
        s.ok("POST", "/v1/collections/vec/delete", json!({"ids": ["d0", "zz"]}))["count"],
        1
    );
    assert_eq!(
        s.ok("POST", "/v1/collections/vec/delete_where", json!({"filter": {"n": {"$gte": 15}}}))
            ["count"],
        5
    );
    // Scroll pages through a snapshot; export streams JSON Lines; both honour the filter.
    let mut ids = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..10 {
        let page = s.ok(
            "POST",
            "/v1/collections/vec/scroll",
            json!({"page_size": 4, "cursor": cursor, "filter": {"n": {"$lt": 12}}}),
        );
        for d in page["documents"].as_array().expect("page") {
            ids.push(d["id"].as_str().expect("id").to_string());
            assert!(d.get("vector").is_none(), "no vectors unless asked");
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let want: Vec<String> = (1..12).map(|i| format!("d{i}")).collect();
    assert_eq!(ids, want, "insertion order, each once");
    let r = s.call(
        "POST",
        "/v1/collections/vec/scroll",
        Some(READ_KEY),
        Some(json!({"cursor": "s1.zz"})),
    );
    assert_eq!(error_of(r), (StatusCode::BAD_REQUEST, "invalid_cursor".into()));
    let r = s.call(
        "POST",
        "/v1/collections/vec/export",
        Some(READ_KEY),
        Some(json!({"filter": {"n": {"$gte": 10}}})),
    );
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .expect("export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        (lines[0]["akidb_export"].clone(), lines[0]["dimension"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(lines.len(), 6, "a header, then d10..d14");
    assert_eq!(lines[1]["vector"], json!([10.0, 0.0, 1.0]));
    // Backup under the configured directory, named by the server; it opens as a database.
    let b = s.ok("POST", "/v1/backup", json!(null));
    let name = b["name"].as_str().expect("name");
    assert!(name.starts_with("akidb-backup-") && !name.contains('/'), "{name}");
    let copy = akidb::Database::open(s.data.parent().expect("dir").join("backups").join(name))
        .expect("backup opens");
    assert_eq!(copy.collection("vec").expect("vec").count().expect("count"), 14);
    drop(copy);
    let c = s.ok("POST", "/v1/compact", json!(null));
    assert!(c["bytes_after"].as_u64().expect("after") <= c["bytes_before"].as_u64().expect("b"));
    let info = s.ok("GET", "/v1/collections/vec", json!(null));
    assert_eq!((info["count"].clone(), info["metric"].clone()), (json!(14), json!("l2")));
    assert_eq!(info["dimension"], 3);
    let list = s.ok("GET", "/v1/collections", json!(null));
    let names: Vec<&str> = list["collections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["logs", "vec"]);
    assert_eq!(list["collections"][0]["model"], "minilm");
    let r = s.call("DELETE", "/v1/collections/vec", Some(WRITE_KEY), None);
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Metrics count what happened; request ids are echoed or made.
    let r = s.call("GET", "/metrics", Some(READ_KEY), None);
    assert!(r.headers()["x-request-id"].to_str().expect("id").starts_with("akidb-"));
    let text = r.text().expect("metrics");
    assert!(
        text.contains(
            "akidb_requests_total{route=\"/v1/collections/{name}/query\",status=\"200\"} 5"
        ),
        "{text}"
    );
    assert!(text.contains("akidb_collection_documents{collection=\"logs\"} 3"));
    let r = s.client.get(format!("{}/healthz", s.base)).header("x-request-id", "trace-42").send();
    assert_eq!(r.expect("req").headers()["x-request-id"], "trace-42");
}

#[test]
fn bad_requests_get_typed_json_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 64);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 3}));
    let post =
        |path: &str, body: Value| error_of(s.call("POST", path, Some(WRITE_KEY), Some(body)));
    // Quantization: a name that is none, or codes the collection cannot have (binary below
    // 1,024 dimensions): typed errors; a good one makes the collection.
    let bad_q = StatusCode::BAD_REQUEST;
    for q in ["int2", "binary:8", "binary:0"] {
        let body = json!({"name": "q", "dimension": 3, "quantization": q});
        assert_eq!(post("/v1/collections", body), (bad_q, "invalid_quantization".into()), "{q}");
    }
    let body =
        json!({"name": "q", "dimension": 3, "quantization": "int4", "vectors_on_disk": true});
    s.ok("POST", "/v1/collections", body);
    // Keys: none, wrong, read-only on a write.
    let r = s.call("POST", "/v1/collections/vec/count", None, Some(json!({})));
    assert_eq!(error_of(r), (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let r =
        s.call("POST", "/v1/collections/vec/count", Some("write-key-0123456788"), Some(json!({})));
    assert_eq!(error_of(r), (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let r = s.call(
        "POST",
        "/v1/collections/vec/upsert",
        Some(READ_KEY),
        Some(json!({"documents": []})),
    );
    assert_eq!(error_of(r), (StatusCode::FORBIDDEN, "forbidden".into()));
    let r = s.call("GET", "/metrics", None, None);
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s.call("POST", "/v1/collections/vec/count", Some(READ_KEY), Some(json!({})));
    assert_eq!(r.status(), StatusCode::OK, "a read key reads");
    // Bodies: malformed, wrong content type, too large, unknown fields.
    let r = s
        .client
        .post(format!("{}/v1/collections/vec/count", s.base))
        .bearer_auth(WRITE_KEY)
        .header("content-type", "application/json")
        .body("{\"filter\": ")
        .send()
        .expect("req");
    assert_eq!(error_of(r), (StatusCode::BAD_REQUEST, "bad_json".into()));
    let r = s
        .client
        .post(format!("{}/v1/collections/vec/count", s.base))
        .bearer_auth(WRITE_KEY)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .expect("req");
    assert_eq!(error_of(r), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into()));
    let big = json!({"documents": [{"id": "x", "vector": vec![0.5f32; 400_000]}]});
    assert_eq!(
        post("/v1/collections/vec/upsert", big),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );
    assert_eq!(post("/v1/collections/vec/count", json!({"filtr": {}})).1, "bad_json");
    // The library's errors, by code.
    let doc = |v: Value| json!({"documents": [{"id": "x", "vector": v}]});
    assert_eq!(
        post("/v1/collections/nope/count", json!({})),
        (StatusCode::NOT_FOUND, "collection_not_found".into())
    );
    assert_eq!(
        post("/v1/collections/vec/upsert", doc(json!([1.0, 2.0]))),
        (StatusCode::UNPROCESSABLE_ENTITY, "wrong_dimension".into())
    );
    assert_eq!(post("/v1/collections/vec/upsert", doc(json!([0.0, 0.0, 0.0]))).1, "zero_vector");
    assert_eq!(
        post("/v1/collections/vec/search", json!({"vector": [1.0, 0.0, 0.0], "k": 0})),
        (StatusCode::BAD_REQUEST, "invalid_k".into())
    );
    assert_eq!(
        post("/v1/collections/vec/count", json!({"filter": {"$nope": 1}})).1,
        "invalid_filter"
    );
    assert_eq!(
        post("/v1/collections", json!({"name": "vec", "dimension": 3})),
        (StatusCode::CONFLICT, "collection_exists".into())
    );
    assert_eq!(
        post("/v1/collections", json!({"name": "../etc", "dimension": 3})).1,
        "invalid_collection_name"
    );
    assert_eq!(
        post("/v1/collections", json!({"name": "t", "model": "gpt"})),
        (StatusCode::NOT_FOUND, "unknown_model".into())
    );
    assert_eq!(
        post("/v1/collections/vec/query", json!({"text": "x"})),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_model".into())
    );
    s.ok("POST", "/v1/collections", json!({"name": "logs", "model": "minilm"}));
    assert_eq!(
        post("/v1/collections/logs/query", json!({"text": "x", "mode": "fuzzy"})).1,
        "bad_query_options"
    );
    let many: String = (0..2000).map(|i| format!("w{i} ")).collect();
    assert_eq!(
        post("/v1/collections/logs/query", json!({"text": many, "mode": "keyword"})),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_many_query_terms".into())
    );
    let r = s.call("GET", "/v2/nothing", Some(WRITE_KEY), None);
    assert_eq!(error_of(r), (StatusCode::NOT_FOUND, "not_found".into()));
}

#[test]
fn a_full_model_queue_answers_429_with_retry_after() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 1);
    s.ok("POST", "/v1/collections", json!({"name": "logs", "model": "minilm"}));
    // Eight clients at once, each adding 64 distinct texts (seconds of model time): with one
    // place in the queue, some must be turned away at once.
    let statuses: Vec<(StatusCode, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|c| {
                let s = &s;
                scope.spawn(move || {
                    let texts: Vec<Value> = (0..64)
                        .map(|i| {
                            let text = format!("client {c} line {i} lidar dock {}", i * 7 + c);
                            json!({"id": format!("{c}-{i}"), "text": text})
                        })
                        .collect();
                    let r = s.call(
                        "POST",
                        "/v1/collections/logs/add_texts",
                        Some(WRITE_KEY),
                        Some(json!({"texts": texts})),
                    );
                    let retry = r.headers().get("retry-after");
                    let retry = retry.map(|v| v.to_str().unwrap_or("").to_string());
                    (r.status(), retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let refused = statuses.iter().filter(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS).count();
    let ok = statuses.iter().filter(|(st, _)| *st == StatusCode::OK).count();
    assert_eq!(refused + ok, 8, "{statuses:?}");
    assert!(refused >= 1 && ok >= 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .filter(|(st, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .all(|(_, r)| r.as_deref() == Some("1")));
    let count = s.ok("POST", "/v1/collections/logs/count", json!({}));
    assert_eq!(count["count"], json!(ok * 64), "refused requests wrote nothing");
}

#[test]
fn sigterm_under_writes_keeps_every_acknowledged_write_and_exits_0() {
    killed_under_writes("TERM");
}

#[test]
fn sigkill_under_writes_keeps_every_acknowledged_write() {
    killed_under_writes("KILL");
}

/// Four writers upsert batches until the server goes; `sig` 1.5 s in. Then every acknowledged
/// document is in the database, read by the library itself, and the index agrees with storage.
fn killed_under_writes(sig: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = start(tmp.path(), 64);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 4}));
    let acked = std::sync::Mutex::new(Vec::<String>::new());
    let pid = s.child.id();
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (s, acked) = (&s, &acked);
            scope.spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                for b in 0..10_000 {
                    if Instant::now() > deadline {
                        return;
                    }
                    let ids: Vec<String> = (0..20).map(|i| format!("w{w}-b{b}-{i}")).collect();
                    let docs: Vec<Value> = ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| {
                            json!({"id": id, "vector": [1.0, w as f32, b as f32, i as f32]})
                        })
                        .collect();
                    let r = s
                        .client
                        .post(format!("{}/v1/collections/vec/upsert", s.base))
                        .bearer_auth(WRITE_KEY)
                        .json(&json!({"documents": docs}))
                        .send();
                    match r {
                        Ok(r) if r.status() == StatusCode::OK => {
                            acked.lock().expect("lock").extend(ids)
                        }
                        _ => return, // refused or cut off by the shutdown
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(signal(pid, sig), 0);
    });
    let status = wait_timeout(&mut s.child, Duration::from_secs(30)).expect("exited in time");
    if sig == "TERM" {
        assert!(status.success(), "exit status {status:?}");
    }
    let acked = acked.into_inner().expect("lock");
    assert!(acked.len() >= 20, "some writes were acknowledged: {}", acked.len());
    let db = akidb::Database::open(&s.data).expect("open after the server went");
    let c = db.collection("vec").expect("collection");
    let found = c.get(&acked).expect("get");
    let missing = found.iter().filter(|r| r.is_none()).count();
    assert_eq!(missing, 0, "{sig}: {missing} of {} acknowledged writes missing", acked.len());
    let stats = c.index_stats().expect("stats");
    assert_eq!(stats.live as u64, c.count().expect("count"));
}

#[test]
fn the_openapi_document_lists_exactly_the_served_routes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 4);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 3}));
    let doc: Value = s.call("GET", "/openapi.json", None, None).json().expect("openapi");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("item").keys() {
            let method = method.to_uppercase();
            if !["GET", "POST", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            if method == "DELETE" {
                continue; // served (checked in every_route_with_real_clients), not run here
            }
            // Every documented operation is routed: its answer is never the fallback's.
            let url = path.replace("{name}", "vec");
            let r = s.call(&method, &url, Some(WRITE_KEY), Some(json!({})));
            let status = r.status();
            let text = r.text().expect("body");
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(!text.contains("\"not_found\""), "{method} {path}: {status} {text}");
        }
    }
    // The routes that exist; the document is built from the same declarations as the router,
    // and this count catches a route added beside them.
    assert_eq!(operations, 16, "{paths:?}");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn a_client_that_disconnects_mid_body_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 4);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 2}));
    let docs: Vec<Value> =
        (0..50).map(|i| json!({"id": format!("x{i}"), "vector": [1.0, i as f32]})).collect();
    let body = json!({"documents": docs}).to_string();
    let mut tcp = TcpStream::connect(&s.addr).expect("connect");
    let head = format!(
        "POST /v1/collections/vec/upsert HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer \
         {WRITE_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    tcp.write_all(head.as_bytes()).expect("head");
    tcp.write_all(&body.as_bytes()[..body.len() / 2]).expect("half a body");
    drop(tcp);
    // The server is still serving, and nothing of the half-sent batch was written.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.ok("POST", "/v1/collections/vec/count", json!({}))["count"], 0);
    assert_eq!(s.ok("POST", "/v1/collections/vec/upsert", json!({"documents": docs}))["count"], 50);
}

#[test]
fn a_thousand_concurrent_connections_are_all_answered() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 4);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 2}));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = s.addr.clone();
    let statuses: Vec<String> = rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // All 1,000 connections are open before any sends its request.
        let mut conns = Vec::with_capacity(1000);
        for _ in 0..1000 {
            conns.push(tokio::net::TcpStream::connect(&addr).await.expect("connect"));
        }
        let gate = Arc::new(tokio::sync::Barrier::new(1000));
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut tcp| {
                let (gate, addr) = (gate.clone(), addr.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    let req = format!(
                        "POST /v1/collections/vec/count HTTP/1.1\r\nHost: {addr}\r\n\
                         Authorization: Bearer {READ_KEY}\r\nContent-Type: application/json\r\n\
                         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                    );
                    tcp.write_all(req.as_bytes()).await.expect("send");
                    let mut out = Vec::new();
                    let read = tcp.read_to_end(&mut out);
                    tokio::time::timeout(Duration::from_secs(60), read)
                        .await
                        .expect("answered within a minute")
                        .expect("read");
                    String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_string()
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    let ok = statuses.iter().filter(|l| l.starts_with("HTTP/1.1 200")).count();
    assert_eq!(ok, 1000, "{:?}", statuses.iter().find(|l| !l.starts_with("HTTP/1.1 200")));
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert path, key path, DER).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (cert, key, ck.cert.der().to_vec())
}

#[test]
fn tls_serves_https_and_cors_answers_only_listed_origins() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert, key, der) = certificate(tmp.path());
    let extra = format!(
        "[tls]\ncert = {cert:?}\nkey = {key:?}\n\
         [cors]\nallow_origins = [\"https://ui.robot.local\"]\n"
    );
    let s = start_with(tmp.path(), 4, &extra);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(der)).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("https://{}", s.addr);
    let r = https.get(format!("{url}/healthz")).send().expect("https");
    assert_eq!(r.text().expect("body"), "ok");
    let r = https
        .post(format!("{url}/v1/collections"))
        .bearer_auth(WRITE_KEY)
        .json(&json!({"name": "vec", "dimension": 2}))
        .send()
        .expect("https create");
    assert_eq!(r.status(), StatusCode::CREATED);
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(s.client.get(format!("http://{}/healthz", s.addr)).send().is_err());
    // CORS: the listed origin's preflight is allowed, another origin's is not.
    let preflight = |origin: &str| {
        https
            .request(reqwest::Method::OPTIONS, format!("{url}/v1/collections/vec/count"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .expect("preflight")
    };
    let r = preflight("https://ui.robot.local");
    assert_eq!(r.headers()["access-control-allow-origin"], "https://ui.robot.local");
    let r = preflight("https://evil.example");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn without_cors_configured_no_origin_is_allowed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = start(tmp.path(), 4);
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/collections", s.base))
        .header("origin", "https://ui.robot.local")
        .header("access-control-request-method", "GET")
        .send()
        .expect("preflight");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = s
        .client
        .get(format!("{}/v1/collections", s.base))
        .header("origin", "https://ui.robot.local")
        .bearer_auth(READ_KEY)
        .send()
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Two models side by side under a memory budget that holds one: each loads when a request
/// first needs it, the idle one is unloaded, and both keep answering (loaded again on demand).
#[test]
fn models_load_on_first_use_under_a_memory_budget() {
    let tmp = tempfile::tempdir().expect("tmp");
    // MiniLM from [models.minilm]; qwen3-tiny and the other fixtures from the fixtures folder.
    let fixtures = model_dir().join("../../tests/fixtures");
    let extra = format!("models_dir = {fixtures:?}\nmodel_memory_mb = 1\n");
    let s = start_with(tmp.path(), 64, &extra);
    let loaded = || -> Vec<String> {
        let r = s.call("GET", "/readyz", None, None).json::<Value>().expect("json");
        let models = r["models"].as_array().expect("models").clone();
        assert_eq!(models.len(), 5, "{r}");
        models.iter().filter(|m| m["loaded"] == true).map(|m| m["name"].to_string()).collect()
    };
    assert!(loaded().is_empty(), "nothing loads at start");
    s.ok("POST", "/v1/collections", json!({"name": "en", "model": "minilm"}));
    s.ok("POST", "/v1/collections", json!({"name": "tiny", "model": "qwen3-tiny"}));
    assert_eq!(loaded(), ["\"qwen3-tiny\""], "MiniLM, idle, unloaded for qwen3-tiny");
    let texts = json!({"texts": [{"id": "a", "text": "Robot halted at the loading dock"},
                                 {"id": "b", "text": "Battery temperature critical"}]});
    for round in 0..3 {
        for c in ["en", "tiny"] {
            s.ok("POST", &format!("/v1/collections/{c}/add_texts"), texts.clone());
            let hits = s.ok(
                "POST",
                &format!("/v1/collections/{c}/query"),
                json!({"text": "battery too hot", "k": 2, "mode": "vector"}),
            );
            assert_eq!(hits["hits"].as_array().map(Vec::len), Some(2), "{c} round {round}");
            if c == "en" {
                assert_eq!(hits["hits"][0]["id"], "b", "MiniLM's answer after a reload");
            }
            let want = if c == "en" { "\"minilm\"" } else { "\"qwen3-tiny\"" };
            assert_eq!(loaded(), [want], "only the model used last stays loaded");
        }
    }
    let list = s.ok("GET", "/v1/collections", Value::Null);
    let models: Vec<&str> = list["collections"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["model"].as_str().expect("model"))
        .collect();
    assert_eq!(models, ["minilm", "qwen3-tiny"], "each collection names its model");
}
