//! The real server binary on a loopback port, driven by a real HTTP client (reqwest): every
//! route, the error body and status of each kind of bad request, API key scopes, the model
//! queue's 429, request ids, metrics, and a SIGTERM under a write load after which every
//! acknowledged write is in the database. Every loop is bounded in count and time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WRITE_KEY: &str = "write-key-0123456789";
const READ_KEY: &str = "read-key-0123456789ab";

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.onnx").is_file(), "run `bash scripts/setup.sh` first");
    dir
}

struct Server {
    child: Child,
    base: String,
    client: Client,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on 127.0.0.1 (any free port) over `dir/db`, with the MiniLM model (queue
/// `queue`) and a read and a write key.
fn start(dir: &Path, queue: usize) -> Server {
    let data = dir.join("db");
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nmax_body_bytes = 1048576\n\
         shutdown_deadline_ms = 5000\n\
         [models.minilm]\ndir = {:?}\nqueue = {queue}\n\
         [[auth.keys]]\nkey_env = \"TEST_WRITE_KEY\"\nscope = \"write\"\n\
         [[auth.keys]]\nkey = \"{READ_KEY}\"\nscope = \"read\"\n",
        model_dir()
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_akidb-server"))
        .arg("--config")
        .arg(&path)
        .env("TEST_WRITE_KEY", WRITE_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let client = Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    Server { child, base: format!("http://{addr}"), client, data }
}

impl Server {
    fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().expect("request")
    }

    /// A call with the write key that must succeed; its JSON body.
    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let r = self.call(method, path, Some(WRITE_KEY), Some(body));
        let status = r.status();
        let text = r.text().expect("body");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The status and error code of a failed call.
fn error_of(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().expect("JSON error body");
    (status, v["error"]["code"].as_str().expect("code").to_string())
}

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
    assert_eq!(s.ok("POST", "/v1/collections/logs/add_texts", texts)["added"], 3);
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
    assert_eq!(
        s.ok("POST", "/v1/collections/vec/upsert", json!({"documents": docs}))["upserted"],
        20
    );
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
        s.ok("POST", "/v1/collections/vec/delete", json!({"ids": ["d0", "zz"]}))["deleted"],
        1
    );
    assert_eq!(
        s.ok("POST", "/v1/collections/vec/delete_where", json!({"filter": {"n": {"$gte": 15}}}))
            ["deleted"],
        5
    );
    let info = s.ok("GET", "/v1/collections/vec", json!(null));
    assert_eq!((info["count"].clone(), info["config"]["metric"].clone()), (json!(14), json!("l2")));
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
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = start(tmp.path(), 64);
    s.ok("POST", "/v1/collections", json!({"name": "vec", "dimension": 4}));
    let acked = std::sync::Mutex::new(Vec::<String>::new());
    let pid = s.child.id() as i32;
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
                    let docs: Vec<Value> = ids.iter().enumerate()
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
        assert_eq!(sigterm(pid), 0);
    });
    let status = wait_timeout(&mut s.child, Duration::from_secs(30)).expect("exited in time");
    assert!(status.success(), "exit status {status:?}");
    let acked = acked.into_inner().expect("lock");
    assert!(acked.len() >= 20, "some writes were acknowledged: {}", acked.len());
    // Every acknowledged document is in the database, read by the library itself.
    let db = akidb::Database::open(&s.data).expect("open after shutdown");
    let c = db.collection("vec").expect("collection");
    let found = c.get(&acked).expect("get");
    let missing = found.iter().filter(|r| r.is_none()).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged writes missing", acked.len());
    let stats = c.index_stats().expect("stats");
    assert_eq!(stats.live as u64, c.count().expect("count"));
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SIGTERM to `pid` by the kill(1) command (the workspace denies unsafe code).
fn sigterm(pid: i32) -> i32 {
    let status = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill");
    status.code().unwrap_or(-1)
}
