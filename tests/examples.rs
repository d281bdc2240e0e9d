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
