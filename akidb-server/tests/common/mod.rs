//! Starting the real server binary on 127.0.0.1 (any free port) for the integration tests.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::Value;

pub const WRITE_KEY: &str = "write-key-0123456789";
pub const READ_KEY: &str = "read-key-0123456789ab";

pub fn model_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.onnx").is_file(), "run `bash scripts/setup.sh` first");
    dir
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub base: String,
    pub client: Client,
    pub data: PathBuf,
    pub config: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server over `dir/db`, with the MiniLM model (queue `queue`; idle ONNX Runtime
/// threads do not spin: tests share the cores), a read and a write key, and the lines of
/// `extra` appended to the configuration.
pub fn start_with(dir: &Path, queue: usize, extra: &str) -> Server {
    let data = dir.join("db");
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nmax_body_bytes = 1048576\n\
         shutdown_deadline_ms = 5000\nbackup_dir = {:?}\n{extra}\n\
         [models.minilm]\ndir = {:?}\nqueue = {queue}\nspinning = false\n\
         [[auth.keys]]\nkey_env = \"TEST_WRITE_KEY\"\nscope = \"write\"\n\
         [[auth.keys]]\nkey = \"{READ_KEY}\"\nscope = \"read\"\n",
        dir.join("backups"),
        model_dir()
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, config).expect("config");
    // reqwest is built without a default crypto provider: rustls's ring, as the server uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Built before the child starts, so no failure here leaves a server running.
    let client = Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
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
    let addr = line.trim().strip_prefix("listening on ").unwrap_or("").to_string();
    let server = Server { child, base: format!("http://{addr}"), addr, client, data, config: path };
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    server
}

/// [`start_with`] without extra configuration.
pub fn start(dir: &Path, queue: usize) -> Server {
    start_with(dir, queue, "")
}

impl Server {
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
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
    pub fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let r = self.call(method, path, Some(WRITE_KEY), Some(body));
        let status = r.status();
        let text = r.text().expect("body");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The status and error code of a failed call.
pub fn error_of(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().expect("JSON error body");
    (status, v["error"]["code"].as_str().expect("code").to_string())
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Sends `signal` (`TERM`, `KILL`) to `pid` by the kill(1) command (the workspace denies
/// unsafe code).
pub fn signal(pid: u32, signal: &str) -> i32 {
    let status =
        Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("kill");
    status.code().unwrap_or(-1)
}
