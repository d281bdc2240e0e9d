//! `akidb-server --config PATH`: serves the database the configuration names until SIGTERM or
//! SIGINT (see the crate docs of `akidb_server` and `config.rs` for the file). Prints
//! `listening on ADDR` on standard output once it accepts connections; exits 0 after a clean
//! shutdown, 1 on an error (one line on standard error), 2 on bad arguments. Logs go to standard
//! error, `info` and above unless `RUST_LOG` says otherwise (`RUST_LOG=debug`: one line per
//! request with its id, route, status and time).

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: akidb-server --config PATH");
    std::process::exit(2)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let path = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--config"), Some(p), None) => PathBuf::from(p),
        (Some("--help" | "-h"), None, None) => {
            println!("usage: akidb-server --config PATH");
            return;
        }
        _ => usage(),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => fail(&format!("reading {}: {e}", path.display())),
    };
    let config = match akidb_server::Config::from_toml(&text, &|v| std::env::var(v).ok()) {
        Ok(c) => c,
        Err(e) => fail(&format!("{}: {e}", path.display())),
    };
    // Each connection is a file descriptor: take the hard limit, as a server should.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("akidb-server: could not raise the open-file limit: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => fail(&e.to_string()),
    };
    let result = runtime.block_on(akidb_server::serve(config, shutdown_signal(), |addr| {
        println!("listening on {addr}");
    }));
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // No signal handlers: never shut down on a signal (the default action applies).
            std::future::pending::<()>().await;
        }
    }
}
