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

/// PgBouncer (Debian's, built with OpenSSL; installed by scripts/setup.sh) in front of a test
/// server: TLS required from clients with the given certificate, password authentication
/// (SCRAM) of one user, session pooling, on its own loopback port. The `pgserver` wheel's
/// PostgreSQL has no TLS, so this is how the tests reach it over TLS, as a fleet's clients reach
/// a server behind a pooler. Stopped when dropped.
pub struct Bouncer {
    dir: tempfile::TempDir,
    child: std::process::Child,
    port: u16,
}

impl Bouncer {
    /// Starts PgBouncer for `pg` with a server certificate and key (PEM) and user `user` with
    /// `password`; waits until it accepts connections.
    pub fn start(pg: &Pg, cert_pem: &str, key_pem: &str, user: &str, password: &str) -> Bouncer {
        let bin = std::env::var("AKIDB_PGBOUNCER").unwrap_or_else(|_| "/usr/sbin/pgbouncer".into());
        assert!(Path::new(&bin).exists(), "{bin} not found: run scripts/setup.sh");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let p = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(p("server.crt"), cert_pem).expect("cert");
        std::fs::write(p("server.key"), key_pem).expect("key");
        std::fs::write(p("users.txt"), format!("\"{user}\" \"{password}\"\n")).expect("users");
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={pg_port} user=postgres\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = scram-sha-256\nauth_file = {users}\npool_mode = session\n\
             client_tls_sslmode = require\nclient_tls_cert_file = {cert}\n\
             client_tls_key_file = {key}\nlogfile = {log}\nmax_client_conn = 200\n\
             default_pool_size = 50\n",
            pg_port = pg.port,
            users = p("users.txt"),
            cert = p("server.crt"),
            key = p("server.key"),
            log = p("bouncer.log"),
        );
        std::fs::write(p("bouncer.ini"), ini).expect("ini");
        if pg.demote {
            let st = Command::new("chown").args(["-R", "65534:65534"]).arg(dir.path()).status();
            assert!(st.expect("chown").success());
        }
        let mut cmd = if pg.demote {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", &bin]);
            c
        } else {
            Command::new(&bin)
        };
        let child = cmd
            .arg(p("bouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let mut b = Bouncer { dir, child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("pgbouncer exited ({status}): {}", b.log());
            }
            assert!(std::time::Instant::now() < deadline, "pgbouncer not up: {}", b.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        b
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
