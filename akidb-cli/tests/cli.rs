//! The `akidb` binary run as a user runs it: real databases in temporary directories, the
//! real MiniLM model (converted by scripts/setup.sh), output and exit codes checked, bad input
//! included. Every child is waited for with a time limit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2")
}

/// `akidb ARGS` in `dir` (its `akidb.toml`), standard input closed.
fn akidb(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akidb"))
        .args(args)
        .current_dir(dir)
        .env_remove("AKIDB_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run akidb")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = akidb(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "akidb {args:?}: {:?}\n{stderr}", out.status);
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(dir, &all)).expect("one JSON document")
}

/// Fails with `code`, and says so in one line on standard error that contains `what`.
fn fails(dir: &Path, args: &[&str], code: i32, what: &str) {
    let out = akidb(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "akidb {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "akidb {args:?}: one line, got {stderr:?}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(what), "{args:?}: {stderr}");
}

/// A fleet log in a format the old example skipped (`TIME HOST LEVEL /node: message`).
fn fleet_log(dir: &Path) -> PathBuf {
    let mut text = String::new();
    let routine = [
        ("INFO", "/wms_bridge", "Task {n} accepted for tote {t}"),
        ("INFO", "/nav2", "Goal reached at aisle {n}"),
        ("INFO", "/battery_monitor", "Battery at {n} percent, temperature nominal"),
    ];
    for i in 0..36u32 {
        let (level, node, msg) = routine[i as usize % 3];
        let msg =
            msg.replace("{n}", &(100 + i).to_string()).replace("{t}", &(4400 + i).to_string());
        text += &format!("2026-03-01T21:{:02}:00Z amr-0{} {level} {node}: {msg}\n", i, 1 + i % 5);
    }
    text +=
        "2026-03-01T21:40:00Z amr-05 ERROR /nav2: NAV_E042 path blocked by a pallet, replanning\n";
    text += "2026-03-01T21:41:00Z amr-03 ERROR /battery_monitor: Battery pack overheating \
             at 71 C, charging stopped\n";
    text += "2026-03-01T21:42:00Z amr-02 WARN /safety: Emergency stop pressed by an operator\n";
    text += "2026-03-01T21:43:00Z amr-02 INFO /safety: Emergency stop released\n";
    let path = dir.join("fleet.log");
    std::fs::write(&path, text).expect("write log");
    path
}

fn init(dir: &Path) {
    let m = format!("minilm={}", model_dir().display());
    let out = ok(dir, &["init", "--model", &m]);
    assert!(out.contains("wrote") && out.contains("minilm (384-d)"), "{out}");
}

#[test]
fn a_session_from_init_to_backup() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir);
    ok(dir, &["collections", "create", "fleet", "--model", "minilm", "--index", "level:keyword"]);
    let log = fleet_log(dir);
    let out = ok(dir, &["ingest", "-c", "fleet", log.to_str().expect("path")]);
    assert!(out.contains("40 records into \"fleet\""), "{out}");
    // Again: the same ids are replaced, not added.
    let report = json(dir, &["ingest", "-c", "fleet", "fleet.log"]);
    assert_eq!(report["written"], 40);
    assert_eq!(report["files"][0]["format"], "iso8601");
    // An exact token, a paraphrase, a filter.
    let hits = json(dir, &["query", "NAV_E042", "-c", "fleet", "-k", "3"]);
    assert!(hits["hits"][0]["text"].as_str().expect("text").contains("NAV_E042"), "{hits}");
    let hits =
        json(dir, &["query", "the pack is too hot", "-c", "fleet", "-k", "1", "--mode", "vector"]);
    assert!(hits["hits"][0]["text"].as_str().expect("text").contains("overheating"), "{hits}");
    let hits = json(dir, &["query", "stop", "-c", "fleet", "--filter", r#"{"level":"ERROR"}"#]);
    let hits = hits["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h["metadata"]["level"] == "ERROR"));
    let human = ok(dir, &["query", "emergency stop", "-c", "fleet", "-k", "2"]);
    assert!(
        human.contains("  1  ") && human.contains("Emergency stop") && human.contains("hits in")
    );
    assert!(human.contains("robot=amr-02") && human.contains("level="), "{human}");
    assert_eq!(human.matches("fleet.log:").count(), 2, "each hit's position once: {human}");
    // What the database holds.
    let stats = json(dir, &["stats"]);
    assert_eq!(stats["documents"], 40);
    assert_eq!(stats["collections"][0]["model"], "minilm");
    let list = ok(dir, &["collections", "list"]);
    assert!(list.starts_with("NAME") && list.contains("fleet") && list.contains("40"), "{list}");
    let models = json(dir, &["models", "list"]);
    assert_eq!(models["models"][0]["collections"][0], "fleet");
    let check = ok(dir, &["models", "check"]);
    assert!(check.starts_with("ok minilm") && check.contains("384-d"), "{check}");
    let info = json(dir, &["collections", "info", "fleet"]);
    assert_eq!(info["documents"], 40);
    // Export, import into another collection of the same model, backup, compact.
    ok(dir, &["export", "-c", "fleet", "fleet.jsonl", "--filter", r#"{"level":"INFO"}"#]);
    ok(dir, &["collections", "create", "copy", "--model", "minilm"]);
    let imported = json(dir, &["import", "-c", "copy", "fleet.jsonl"]);
    assert_eq!(imported["imported"], 37);
    ok(dir, &["export", "-c", "fleet", "fleet.parquet"]);
    fails(dir, &["export", "-c", "fleet", "fleet.parquet"], 1, "fleet.parquet");
    ok(dir, &["backup", "snapshot"]);
    let copy = dir.join("copy.toml");
    std::fs::write(
        &copy,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"snapshot\"\n\
        [models.minilm]\ndir = {:?}\n",
            model_dir()
        ),
    )
    .expect("config");
    let stats = json(dir, &["--config", "copy.toml", "stats"]);
    assert_eq!(stats["documents"], 77);
    let hits = json(dir, &["--config", "copy.toml", "query", "NAV_E042", "-c", "fleet"]);
    assert!(hits["hits"][0]["text"].as_str().expect("text").contains("NAV_E042"));
    ok(dir, &["compact"]);
    // Retention: applied before the command returns.
    let r = json(dir, &["retention", "set", "fleet", "--max-documents", "10"]);
    assert_eq!((r["deleted"].as_u64(), r["documents"].as_u64()), (Some(30), Some(10)));
    let shown = ok(dir, &["retention", "show", "fleet"]);
    assert!(shown.contains("at most 10 documents"), "{shown}");
    ok(dir, &["retention", "clear", "fleet"]);
    // Dropping asks for --yes.
    fails(dir, &["collections", "drop", "copy"], 2, "--yes");
    ok(dir, &["collections", "drop", "copy", "--yes"]);
    assert_eq!(
        json(dir, &["collections", "list"])["collections"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn bad_input_is_one_line_and_an_exit_code() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    fails(dir, &["stats"], 3, "akidb init");
    fails(dir, &["init", "--model", "minilm=/no/such/model"], 3, "/no/such/model");
    assert!(!dir.join("akidb.toml").exists(), "a failed init writes nothing");
    init(dir);
    fails(dir, &["init"], 2, "exists");
    fails(dir, &["query", "x", "-c", "nope"], 3, "nope");
    fails(dir, &["collections", "create", "v"], 2, "--model");
    fails(dir, &["collections", "create", "v", "--model", "e5"], 3, "no model \"e5\"");
    fails(dir, &["collections", "create", "bad name!", "--dimension", "4"], 2, "bad name!");
    fails(
        dir,
        &["collections", "create", "v", "--index", "robot:text", "--dimension", "4"],
        2,
        "kind",
    );
    // Binary codes need 1,024 dimensions or more: refused for MiniLM's 384, by the library.
    let binary = ["collections", "create", "q", "--model", "minilm", "--quantization", "binary:8"];
    fails(dir, &binary, 2, "1,024 dimensions");
    fails(
        dir,
        &["collections", "create", "q", "--dimension", "4", "--quantization", "int2"],
        2,
        "int2",
    );
    ok(
        dir,
        &[
            "collections",
            "create",
            "q",
            "--model",
            "minilm",
            "--quantization",
            "int4",
            "--vectors-on-disk",
        ],
    );
    let info = ok(dir, &["collections", "info", "q"]);
    assert!(info.contains("graph walks int4 codes; exact vectors on disk"), "{info}");
    ok(dir, &["collections", "create", "logs", "--model", "minilm"]);
    ok(dir, &["collections", "create", "vec", "--dimension", "4"]);
    fails(dir, &["collections", "create", "logs", "--dimension", "4"], 2, "logs");
    fails(dir, &["query", "x", "-c", "vec"], 2, "holds vectors");
    fails(dir, &["query", "x", "-c", "logs", "--filter", "{level"], 2, "--filter");
    fails(dir, &["query", "x", "-c", "logs", "-k", "0"], 2, "k");
    fails(dir, &["query", "x", "-c", "logs", "--mode", "fuzzy"], 2, "fuzzy");
    fails(dir, &["ingest", "-c", "logs", "missing.log"], 3, "missing.log");
    std::fs::write(dir.join("blob.bin"), [0u8, 159, 146, 150, 0, 0, 1, 2, 3].repeat(200))
        .expect("write");
    fails(dir, &["ingest", "-c", "logs", "blob.bin"], 2, "not a text log");
    // In a directory, a binary file (a compressed rotated log) is skipped with a note.
    let rotated = dir.join("rotated");
    std::fs::create_dir(&rotated).expect("mkdir");
    std::fs::rename(dir.join("blob.bin"), rotated.join("syslog.2.gz")).expect("move");
    std::fs::write(rotated.join("syslog.1"), "Mar  1 21:20:00 amr-05 nav2[42]: goal reached\n")
        .expect("write");
    let out = akidb(dir, &["ingest", "-c", "logs", "rotated"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped") && stderr.contains("syslog.2.gz"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("1 record into"), "{stderr}");
    fails(dir, &["retention", "set", "logs"], 2, "--max-age");
    fails(dir, &["retention", "set", "logs", "--max-age", "7y"], 2, "unit");
    fails(dir, &["import", "-c", "logs", "nothing.jsonl"], 3, "nothing.jsonl");
    std::fs::write(dir.join("cut.jsonl"), "{\"akidb_export\": 1, \"dim").expect("write");
    let out = akidb(dir, &["import", "-c", "logs", "cut.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    fails(dir, &["backup", "akidb-data/inside"], 2, "inside");
    fails(dir, &["--frobnicate"], 2, "--frobnicate");
    // Nothing acknowledged was lost on the way.
    assert_eq!(json(dir, &["stats"])["collections"].as_array().map(Vec::len), Some(3));
}

#[test]
fn ctrl_c_keeps_every_committed_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir);
    ok(dir, &["collections", "create", "s", "--model", "minilm"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_akidb"))
        .args(["ingest", "-c", "s", "--batch", "16", "-"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines: String =
        (0..20_000).map(|i| format!("sensor {i} reported value {}\n", i * 7)).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(lines.as_bytes()); // the child may stop reading first
    });
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(status.expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "ingest did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = writer.join();
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let n = json(dir, &["stats"])["documents"].as_u64().expect("count");
    assert!(n > 0 && n < 20_000 && n.is_multiple_of(16), "{n} documents: whole batches of 16");
}

#[test]
fn serve_answers_and_holds_the_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir);
    let config = std::fs::read_to_string(dir.join("akidb.toml")).expect("read");
    std::fs::write(dir.join("akidb.toml"), config.replace("127.0.0.1:8080", "127.0.0.1:0"))
        .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_akidb"))
        .arg("serve")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains('\n') && Instant::now() < deadline {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    let addr = seen.trim().strip_prefix("listening on ").map(str::to_string);
    let result = std::panic::catch_unwind(|| {
        let addr = addr.expect("listening line");
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        // The server holds the database: a second process is told so, in one line.
        fails(dir, &["stats"], 1, "another program");
    });
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(status.is_some_and(|s| s.success()), "serve exits 0 after SIGTERM: {status:?}");
    // Closed: the database opens again.
    assert_eq!(json(dir, &["stats"])["documents"], 0);
}

#[test]
fn completions_name_the_commands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bash = ok(tmp.path(), &["completions", "bash"]);
    assert!(bash.contains("akidb") && bash.contains("collections") && bash.contains("ingest"));
    let help = ok(tmp.path(), &["--help"]);
    assert!(help.contains("Exit codes:") && help.contains("130"), "{help}");
}

#[path = "../../akidb-sync/tests/common/pg.rs"]
mod pg;

#[test]
fn sync_pushes_a_collection_into_postgres_once_and_then_nothing() {
    let server = pg::Pg::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir);
    ok(dir, &["collections", "create", "fleet", "--model", "minilm"]);
    let log = fleet_log(dir);
    ok(dir, &["ingest", "-c", "fleet", log.to_str().expect("path")]);
    let conninfo = server.conninfo();
    let args = ["sync", "--postgres", &conninfo, "--source", "amr-05", "-c", "fleet"];
    let first = json(dir, &args);
    assert_eq!((first["upserts"].as_u64(), first["resynced"].as_bool()), (Some(40), Some(false)));
    let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).expect("connect");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM akidb_fleet WHERE source = 'amr-05'", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 40);
    let again = json(dir, &args);
    assert_eq!((again["upserts"].as_u64(), again["deletes"].as_u64()), (Some(0), Some(0)));
    // The connection string may come from the environment (it can hold a password).
    let out = Command::new(env!("CARGO_BIN_EXE_akidb"))
        .current_dir(dir)
        .args(["sync", "--source", "amr-05"])
        .env("AKIDB_SYNC_POSTGRES", &conninfo)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Over TLS (PgBouncer in front of the server), the CA from --ca-file, the password from
    // PGPASSWORD; a CA that did not sign the server's certificate is refused.
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let bouncer =
        pg::Bouncer::start(&server, &ck.cert.pem(), &ck.signing_key.serialize_pem(), "amr", "pw");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).expect("ca");
    let tls =
        format!("host=127.0.0.1 port={} user=amr dbname=postgres sslmode=require", bouncer.port());
    let sync_tls = |ca: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_akidb"))
            .current_dir(dir)
            .args(["sync", "--source", "amr-06", "-c", "fleet", "--ca-file"])
            .arg(ca)
            .env("AKIDB_SYNC_POSTGRES", &tls)
            .env("PGPASSWORD", "pw")
            .output()
            .expect("run")
    };
    let out = sync_tls(&ca);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: i64 = client
        .query_one("SELECT count(*) FROM akidb_fleet WHERE source = 'amr-06'", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 40);
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, other.cert.pem()).expect("ca");
    let out = sync_tls(&other_ca);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    // A server that is not there: one line and exit code 1, not a panic.
    let gone = "host=127.0.0.1 port=1 user=postgres connect_timeout=2";
    fails(dir, &["sync", "--postgres", gone, "--source", "amr-05"], 1, "PostgreSQL");
}
