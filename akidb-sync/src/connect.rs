//! Connections to PostgreSQL: TLS with rustls, credentials from the connection string or the
//! environment.
//!
//! Whether TLS is used is the connection string's `sslmode`: `disable` (never), `prefer` (the
//! default: when the server offers it), `require` (always; a server without TLS is refused).
//! Whenever TLS is used the server's certificate is verified, chain and name (libpq's
//! `verify-full`): against the CA certificates of [`SyncConfig::tls_ca_file`] when given,
//! otherwise against the system's roots. There is no mode that accepts any certificate.
//!
//! The password is the connection string's `password`, or else the `PGPASSWORD` environment
//! variable (as libpq reads it), so that it need not appear on a command line.
//!
//! [`SyncConfig::tls_ca_file`]: crate::SyncConfig::tls_ca_file

use std::path::Path;
use std::sync::Arc;

use postgres::config::SslMode;
use postgres::{Client, Config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::{Result, SyncError};

/// The largest CA file read (a bundle of every public root is about 250 KiB).
const MAX_CA_FILE: u64 = 4 << 20;

/// Connects as the module docs say.
pub(crate) fn connect(conninfo: &str, ca_file: Option<&Path>) -> Result<Client> {
    let config = parse(conninfo, std::env::var("PGPASSWORD").ok())?;
    if config.get_ssl_mode() == SslMode::Disable {
        return Ok(config.connect(postgres::NoTls)?);
    }
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Tls { path: None, reason: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))?)
}

/// The connection string with `env_password` as the password when it names none.
fn parse(conninfo: &str, env_password: Option<String>) -> Result<Config> {
    let mut config: Config = conninfo.parse()?;
    if config.get_password().is_none() {
        if let Some(password) = env_password {
            config.password(password);
        }
    }
    Ok(config)
}

/// The CA certificates of a PEM file (at least one).
fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let fail = |reason: String| SyncError::Tls { path: Some(path.to_path_buf()), reason };
    let len = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?.len();
    if len > MAX_CA_FILE {
        return Err(fail(format!("{len} bytes, over the {MAX_CA_FILE}-byte limit")));
    }
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(roots)
}

/// The system's trusted roots (those it cannot parse are left out, with a warning).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::warn!("system CA certificates: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (_, bad) = roots.add_parsable_certificates(found.certs);
    if bad > 0 {
        log::warn!("system CA certificates: {bad} could not be parsed");
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_password_fills_in_only_a_missing_one() {
        let c = parse("host=h user=u", Some("env".into())).expect("ok");
        assert_eq!(c.get_password(), Some(&b"env"[..]));
        let c = parse("host=h user=u password=own", Some("env".into())).expect("ok");
        assert_eq!(c.get_password(), Some(&b"own"[..]));
        let c = parse("host=h user=u", None).expect("ok");
        assert_eq!(c.get_password(), None);
        assert!(matches!(parse("host=h bogus_key=1", None), Err(SyncError::Postgres(_))));
    }

    #[test]
    fn a_ca_file_without_certificates_or_too_large_is_a_typed_error() {
        let dir = tempfile::tempdir().expect("ok");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("ok");
        let err = roots_from_file(&empty).expect_err("must fail");
        assert!(matches!(&err, SyncError::Tls { path: Some(p), .. } if p == &empty), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(roots_from_file(&missing), Err(SyncError::Tls { .. })));
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big).expect("ok").set_len(MAX_CA_FILE + 1).expect("ok");
        let err = roots_from_file(&big).expect_err("must fail");
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
