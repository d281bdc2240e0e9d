//! The examples as a newcomer runs them: bad arguments are refused before any work, with exit
//! status 2, a message naming the argument, and nothing created.

use std::path::PathBuf;
use std::process::Command;

/// A built example (`cargo test` builds the examples beside the test binaries).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let p = profile_dir.join("examples").join(name);
    assert!(p.is_file(), "{} is not built: run `cargo test` (it builds the examples)", p.display());
    p
}

#[test]
fn robot_logs_checks_every_argument_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("never-created.akidb");
    let cases: &[(&[&str], &str)] = &[
        (&["--k", "0"], "--k"),
        (&["--k", "10001"], "--k"),
        (&["--k", "many"], "--k"),
        (&["--since", "NaN"], "--since"),
        (&["--since", "2026-02-31"], "--since"),
        (&["--until", "10000-01-01"], "--until"),
        (&["--since", "99999999999999"], "--since"),
        (&["--since", "2026-11-21", "--until", "2026-11-20"], "--since"),
        (&["--level", "LOUD"], "--level"),
        (&["--query", " "], "--query"),
        (&["--lines", "0"], "--lines"),
        (&["--logs", "/nonexistent/robot.log", "--query", "x"], "--logs"),
        (&["--logs", "/nonexistent/robot.log"], "--query"),
        (&["--bogus"], "--bogus"),
    ];
    for (args, names) in cases {
        let t = std::time::Instant::now();
        let out = Command::new(example("robot_logs"))
            .args(*args)
            .arg("--db")
            .arg(&db)
            .arg("--model-dir")
            .arg(dir.path().join("no-model"))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: the message names {names}: {stderr}");
        assert!(!db.exists(), "{args:?}: nothing is created");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{args:?}: refused before any work"
        );
    }
    let help = Command::new(example("robot_logs")).arg("--help").output().expect("run");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--logs", "--db", "--query", "--robot", "--level", "--since", "--until", "--k", "--json",
        "--eval",
    ] {
        assert!(text.contains(flag), "--help lists {flag}: {text}");
    }
}

/// A fleet log in a format the example was not written for (ISO 8601 time, host, level,
/// component, as many fleet managers write), with a stack trace: every line is taken, the
/// trace joins its line, and a question with a robot filter finds the incident. A binary file
/// is refused with one line naming it, nothing stored.
#[test]
fn robot_logs_reads_a_log_format_it_was_not_written_for() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("fleet.log");
    let mut text = String::new();
    for i in 0..40 {
        let robot = format!("amr-{:02}", i % 6);
        text.push_str(&format!(
            "2026-03-01T21:{:02}:{:02}Z {robot} INFO /wms_bridge: Task {} accepted\n",
            20 + i / 60,
            i % 60,
            100 + i
        ));
    }
    text.push_str(
        "2026-03-01T21:21:00.250+01:00 amr-02 ERROR /lidar_driver: Scan timeout, no \
                   data from the front lidar for 2 s (SAF_E101)\n",
    );
    text.push_str("Traceback (most recent call last):\n  File \"driver.py\", line 88, in poll\n");
    text.push_str("2026-03-01T21:21:05Z amr-04 WARN /battery_monitor: Pack temperature 58 C\n");
    std::fs::write(&log, text).expect("write");
    let db = dir.path().join("fleet.akidb");
    let out = Command::new(example("robot_logs"))
        .args(["--logs"])
        .arg(&log)
        .arg("--db")
        .arg(&db)
        .arg("--model-dir")
        .arg(root.join("models/all-MiniLM-L6-v2"))
        .args(["--query", "lidar stopped sending scans", "--robot", "amr-02", "--json"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("format: iso8601"), "{stderr}");
    assert!(
        stderr.contains("44 lines (0 blank) -> 42 records (42 iso8601); 2 lines joined"),
        "{stderr}"
    );
    let answer: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    let top = &answer["hits"][0];
    assert!(
        top["text"].as_str().is_some_and(|t| t.contains("SAF_E101") && t.contains("driver.py")),
        "{answer}"
    );
    assert_eq!(top["metadata"]["robot"], "amr-02");
    assert_eq!(top["metadata"]["time"], "2026-03-01T20:21:00.25Z");
    assert_eq!(top["metadata"]["line"], 41);

    let bin = dir.path().join("core.bin");
    std::fs::write(&bin, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".repeat(64)).expect("write");
    let out = Command::new(example("robot_logs"))
        .args(["--logs"])
        .arg(&bin)
        .arg("--db")
        .arg(dir.path().join("bin.akidb"))
        .arg("--model-dir")
        .arg(root.join("models/all-MiniLM-L6-v2"))
        .args(["--query", "x"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("core.bin: not a text log"), "{stderr}");
}
