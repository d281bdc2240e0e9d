//! `akidb-server --config PATH`: serves the database the configuration names until SIGTERM or
//! SIGINT (see the crate docs of `akidb_server` and `config.rs` for the file; `akidb serve`
//! does the same). Prints `listening on ADDR` on standard output once it accepts connections;
//! exits 0 after a clean shutdown, 1 on an error (one line on standard error), 2 on bad
//! arguments. Logs go to standard error, `info` and above unless `RUST_LOG` says otherwise
//! (`RUST_LOG=debug`: one line per request with its id, route, status and time).

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
    let result = akidb_server::Config::load(&path, &|v| std::env::var(v).ok())
        .and_then(akidb_server::run_until_signal);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
