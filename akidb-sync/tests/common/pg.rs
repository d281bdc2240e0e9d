//! A PostgreSQL server with pgvector for tests: the `pgserver` wheel's binaries (installed by
//! scripts/setup.sh, or named by AKIDB_PG_BIN), a fresh cluster in a temporary directory, on a
//! free loopback port, as `nobody` when the tests run as root (PostgreSQL refuses root); stopped
//! (immediately) when dropped. Shared by akidb-sync's and akidb-cli's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PostgreSQL server of this test run.
pub struct Pg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server as `nobody` (PostgreSQL refuses to run as root).
    demote: bool,
}

fn pg_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Ok(dir) = std::env::var("AKIDB_PG_BIN") {
        return PathBuf::from(dir);
    }
    let lib = root.join(".venv/lib");
    for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let bin = entry.path().join("site-packages/pgserver/pginstall/bin");
        if bin.join("postgres").exists() {
            return bin;
        }
    }
    panic!("PostgreSQL binaries not found under {}: run scripts/setup.sh", lib.display());
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

impl Pg {
    /// An empty temporary directory on a free port, owned by the server's user.
    fn fresh(bin: PathBuf, demote: bool) -> Pg {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Pg { data: dir.path().join("data"), _dir: dir, bin, port, demote };
        if demote {
            let st = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(pg._dir.path())
                .status()
                .expect("chown");
            assert!(st.success());
        }
        pg
    }

    pub fn start() -> Pg {
        let pg = Pg::fresh(pg_bin(), is_root());
        let out = pg
            .cmd("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&pg.data)
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg.up();
        pg
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = if self.demote {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    pub fn up(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=on",
            self.port,
            self._dir.path().display()
        );
        let out = self
            .cmd("pg_ctl")
            .args(["-w", "-t", "60", "-o", &opts, "-l"])
            .arg(self._dir.path().join("log"))
            .arg("-D")
            .arg(&self.data)
            .arg("start")
            .output()
            .expect("pg_ctl start");
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server without a clean shutdown (crash recovery on the next start).
    pub fn crash(&self) {
        let out = self
            .cmd("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output()
            .expect("pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A streaming replica of this server (`pg_basebackup -R`), started on its own port.
    pub fn replica(&self) -> Pg {
        let r = Pg::fresh(self.bin.clone(), self.demote);
        let out = r
            .cmd("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-D",
            ])
            .arg(&r.data)
            .output()
            .expect("pg_basebackup");
        assert!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
        r.up();
        r
    }

    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=10",
            self.port
        )
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ =
            self.cmd("pg_ctl").args(["-m", "immediate", "-D"]).arg(&self.data).arg("stop").output();
    }
}
