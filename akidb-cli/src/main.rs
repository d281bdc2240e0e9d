//! `akidb`: an AkiDB database from the command line, for operators and scripts.
//!
//! One configuration file (`akidb.toml`, the server's format: `data_dir`, `[models.NAME]`,
//! keys and TLS for `serve`) names the database and the embedding models; `akidb init` writes
//! one. Every command prints for people by default and one JSON document with `--json`;
//! errors are one line on standard error and an exit code (see [`error::EXIT_CODES`]).
//!
//! Layout: `main.rs` the command line (clap) and dispatch; `context.rs` the configuration,
//! database and model lookup; `commands.rs` the commands; `ingest.rs` log ingestion with
//! progress and Ctrl-C; `parse.rs` durations, sizes and specs; `out.rs` tables and JSON;
//! `error.rs` errors and exit codes.

mod commands;
mod context;
mod error;
mod ingest;
mod out;
mod parse;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::context::Ctx;
use crate::error::{CliError, CliResult, EXIT_CODES};
use crate::out::Out;

/// AkiDB: an embedded vector database with in-process text embedding, from the command line.
#[derive(Parser)]
#[command(name = "akidb", version, after_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "AKIDB_CONFIG", default_value = "akidb.toml")]
    config: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a configuration file and create the database it names.
    Init {
        /// The database directory, relative to the configuration file.
        #[arg(long, default_value = "akidb-data")]
        data_dir: PathBuf,
        /// An embedding model: NAME=DIR, DIR a sentence-transformers folder with model.onnx
        /// (repeatable).
        #[arg(long = "model", value_parser = parse::model)]
        models: Vec<(String, PathBuf)>,
    },
    /// List, create, describe or drop collections.
    #[command(subcommand)]
    Collections(Collections),
    /// Read log files (or `-` for standard input; directories are read whole) into a text
    /// collection: format detected per file, one durable transaction per batch.
    Ingest {
        /// Files, directories, or `-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The collection.
        #[arg(long, short)]
        collection: String,
        /// Read every file in this format instead of detecting it.
        #[arg(long, value_enum)]
        format: Option<LogFormat>,
        /// Records per durable transaction.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
        batch: u16,
    },
    /// Ask a text collection a question: vector, keyword or hybrid search.
    Query {
        /// The question.
        text: String,
        /// The collection.
        #[arg(long, short)]
        collection: String,
        /// Hits to return.
        #[arg(long, short, default_value_t = 10)]
        k: usize,
        /// A metadata filter (JSON), e.g. '{"level": "ERROR"}'.
        #[arg(long)]
        filter: Option<String>,
        /// Which searches answer.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Show each hit's rank on each side of a hybrid query.
        #[arg(long)]
        explain: bool,
    },
    /// The database's size, collections and index state.
    Stats,
    /// The configured embedding models.
    #[command(subcommand)]
    Models(Models),
    /// Write a collection's documents (ids, text, metadata, vectors) to JSON Lines, or Parquet
    /// for a `.parquet` path; the file must not exist.
    Export {
        /// The collection.
        #[arg(long, short)]
        collection: String,
        /// The file to write.
        path: PathBuf,
        /// Only documents matching this metadata filter (JSON).
        #[arg(long)]
        filter: Option<String>,
    },
    /// Read an export (JSON Lines, or Parquet for a `.parquet` path) into an existing
    /// collection; the same ids are replaced, so importing twice changes nothing.
    Import {
        /// The collection.
        #[arg(long, short)]
        collection: String,
        /// The file to read.
        path: PathBuf,
    },
    /// Copy the whole database, consistent at one moment, while it stays in use; the copy
    /// opens as a database.
    Backup {
        /// A directory that does not exist yet, outside the database.
        target: PathBuf,
    },
    /// Give the space of deleted documents back to the file system (every read and write
    /// waits meanwhile).
    Compact,
    /// Show or set what a collection keeps.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Push collections into PostgreSQL + pgvector through their change feeds (docs/sync.md):
    /// once, or every `--every` seconds until Ctrl-C, retrying a failed pass with backoff.
    Sync {
        /// libpq connection string of the central server (better in the environment: it may
        /// hold a password; `PGPASSWORD` is read when it holds none). `sslmode=require` makes
        /// TLS mandatory; a TLS server's certificate is always verified.
        #[arg(long, env = "AKIDB_SYNC_POSTGRES", hide_env_values = true)]
        postgres: String,
        /// PEM file of the CA certificates the server's certificate must chain to (default:
        /// the system's roots).
        #[arg(long, env = "AKIDB_SYNC_CA_FILE")]
        ca_file: Option<std::path::PathBuf>,
        /// This robot's name in the central tables' `source` column.
        #[arg(long)]
        source: String,
        /// Collections to push (repeatable; default: all).
        #[arg(long = "collection", short = 'c')]
        collections: Vec<String>,
        /// Seconds between passes; without it, one pass.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        every: Option<u64>,
    },
    /// Serve the database over REST and gRPC (the configuration's listen, keys, TLS) until
    /// SIGTERM or Ctrl-C.
    Serve,
    /// Print a shell completion script, e.g. `akidb completions bash > ~/.akidb.bash`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum Collections {
    /// Every collection with its size and model.
    List,
    /// Make a collection: a text collection with --model, vectors only with --dimension.
    Create {
        /// Its name.
        name: String,
        /// The configured model that embeds its texts.
        #[arg(long, short)]
        model: Option<String>,
        /// Vector dimension (vectors only, or to check the model's).
        #[arg(long)]
        dimension: Option<usize>,
        /// Similarity metric.
        #[arg(long, value_enum)]
        metric: Option<MetricArg>,
        /// Keep no full-text index (text collections keep one by default: hybrid search).
        #[arg(long)]
        no_full_text: bool,
        /// What the graph walks: f16 (default), int8, int4, or binary:OVERSAMPLE (1,024
        /// dimensions or more); the best hits are re-scored exactly either way.
        #[arg(long)]
        quantization: Option<akidb::Quantization>,
        /// Keep the exact vectors on disk, not in memory (about 4 bytes per dimension saved
        /// per vector; scans read the disk).
        #[arg(long)]
        vectors_on_disk: bool,
        /// A metadata field filters read from memory: FIELD:KIND, KIND one of keyword,
        /// integer, float, timestamp (repeatable).
        #[arg(long = "index", value_parser = parse::index)]
        indexes: Vec<akidb::FieldIndex>,
    },
    /// One collection's settings, size and index state.
    Info {
        /// Its name.
        name: String,
    },
    /// Delete a collection and its documents.
    Drop {
        /// Its name.
        name: String,
        /// Confirm: the documents are gone for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum Models {
    /// The configured models, their dimension and the collections using each.
    List,
    /// Load each model (or one) with its provider and embed a probe text.
    Check {
        /// Only this model.
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum RetentionCmd {
    /// The collection's policy.
    Show {
        /// The collection.
        name: String,
    },
    /// Set the policy (replacing the one before); a background pass enforces it.
    Set {
        /// The collection.
        name: String,
        /// Keep documents younger than this: 90s, 15m, 12h, 7d, 2w.
        #[arg(long, value_parser = parse::duration)]
        max_age: Option<u64>,
        /// Judge age by this metadata field (unix seconds) instead of insertion time.
        #[arg(long, requires = "max_age")]
        time_field: Option<String>,
        /// Keep at most this many documents (the newest).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        max_documents: Option<u64>,
        /// Keep at most this many bytes of documents and vectors: 500MB, 2GiB.
        #[arg(long, value_parser = parse::size)]
        max_bytes: Option<u64>,
    },
    /// Remove the policy: documents are kept.
    Clear {
        /// The collection.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Hybrid where the collection has a full-text index, else vector.
    Auto,
    /// The embedded question against the vectors.
    Vector,
    /// BM25 over the full-text index (no model run).
    Keyword,
    /// Both, fused.
    Hybrid,
}

#[derive(Clone, Copy, ValueEnum)]
enum MetricArg {
    Cosine,
    Dot,
    L2,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Ros2,
    Journald,
    Jsonl,
    Syslog5424,
    Syslog3164,
    Iso8601,
    Plain,
}

impl From<LogFormat> for akidb::logs::Format {
    fn from(f: LogFormat) -> Self {
        use akidb::logs::Format as F;
        match f {
            LogFormat::Ros2 => F::Ros2,
            LogFormat::Journald => F::Journald,
            LogFormat::Jsonl => F::JsonLines,
            LogFormat::Syslog5424 => F::Syslog5424,
            LogFormat::Syslog3164 => F::Syslog3164,
            LogFormat::Iso8601 => F::Iso8601,
            LogFormat::Plain => F::Plain,
        }
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            std::process::exit(error::OK);
        }
        Err(e) => {
            // A usage error, on one line: clap's message without its usage and tip lines.
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .filter(|l| {
                    !["Usage:", "For more information", "tip:"].iter().any(|p| l.starts_with(p))
                })
                .collect();
            eprintln!("{}", parts.join(" "));
            std::process::exit(error::BAD_INPUT);
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    let level = if serving { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let code = match run(cli) {
        Ok(()) => error::OK,
        Err(e) => {
            eprintln!("error: {e}");
            e.code
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> CliResult {
    let out = Out::new(cli.json);
    match cli.command {
        Command::Init { data_dir, models } => commands::init(&cli.config, out, &data_dir, &models),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "akidb", &mut std::io::stdout());
            Ok(())
        }
        Command::Serve => {
            let config = akidb_server::Config::load(&cli.config, &|v| std::env::var(v).ok())
                .map_err(CliError::bad)?;
            akidb_server::run_until_signal(config).map_err(CliError::failed)
        }
        command => {
            let mut ctx = Ctx::load(&cli.config)?;
            dispatch(&mut ctx, out, command)
        }
    }
}

fn dispatch(ctx: &mut Ctx, out: Out, command: Command) -> CliResult {
    match command {
        Command::Collections(Collections::List) => commands::list(ctx, out),
        Command::Collections(Collections::Create {
            name,
            model,
            dimension,
            metric,
            no_full_text,
            quantization,
            vectors_on_disk,
            indexes,
        }) => {
            let metric = metric.map(|m| match m {
                MetricArg::Cosine => akidb::Metric::Cosine,
                MetricArg::Dot => akidb::Metric::Dot,
                MetricArg::L2 => akidb::Metric::L2,
            });
            let full_text = no_full_text.then_some(false);
            let a = commands::CreateArgs {
                name,
                model,
                dimension,
                metric,
                full_text,
                indexes,
                quantization,
                vectors_on_disk,
            };
            commands::create(ctx, out, a)
        }
        Command::Collections(Collections::Info { name }) => commands::info(ctx, out, &name),
        Command::Collections(Collections::Drop { name, yes }) => {
            commands::drop(ctx, out, &name, yes)
        }
        Command::Ingest { paths, collection, format, batch } => {
            let format = format.map(Into::into);
            let a = ingest::IngestArgs { collection, paths, format, batch: batch.into() };
            ingest::run(ctx, out, a)
        }
        Command::Query { text, collection, k, filter, mode, explain } => {
            let mode = match mode {
                Mode::Auto => akidb::QueryMode::Auto,
                Mode::Vector => akidb::QueryMode::Vector,
                Mode::Keyword => akidb::QueryMode::Keyword,
                Mode::Hybrid => akidb::QueryMode::Hybrid,
            };
            let a = commands::QueryArgs { text, collection, k, filter, mode, explain };
            commands::query(ctx, out, a)
        }
        Command::Stats => commands::stats(ctx, out),
        Command::Models(Models::List) => commands::models_list(ctx, out),
        Command::Models(Models::Check { name }) => {
            commands::models_check(ctx, out, name.as_deref())
        }
        Command::Export { collection, path, filter } => {
            commands::export(ctx, out, &collection, &path, filter.as_deref())
        }
        Command::Import { collection, path } => commands::import(ctx, out, &collection, &path),
        Command::Backup { target } => commands::backup(ctx, out, &target),
        Command::Sync { postgres, ca_file, source, collections, every } => {
            let args = commands::SyncArgs { postgres, ca_file, source, collections, every };
            commands::sync(ctx, out, args)
        }
        Command::Compact => commands::compact(ctx, out),
        Command::Retention(RetentionCmd::Show { name }) => {
            commands::retention(ctx, out, &name, None)
        }
        Command::Retention(RetentionCmd::Clear { name }) => {
            commands::retention(ctx, out, &name, Some(None))
        }
        Command::Retention(RetentionCmd::Set {
            name,
            max_age,
            time_field,
            max_documents,
            max_bytes,
        }) => {
            if max_age.is_none() && max_documents.is_none() && max_bytes.is_none() {
                return Err(CliError::bad(
                    "give at least one of --max-age, --max-documents, --max-bytes (or use \
                     `retention clear`)",
                ));
            }
            let mut r = akidb::Retention::default();
            r.max_age_secs = max_age;
            r.time_field = time_field;
            r.max_documents = max_documents;
            r.max_bytes = max_bytes;
            commands::retention(ctx, out, &name, Some(Some(r)))
        }
        Command::Init { .. } | Command::Completions { .. } | Command::Serve => {
            unreachable!("handled before the configuration is read")
        }
    }
}
