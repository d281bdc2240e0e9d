//! Errors of the command and the exit codes they end it with (one rule, here).

use std::fmt;

/// Exit status of a command that ran to the end.
pub const OK: i32 = 0;
/// The operation failed: storage, model, I/O, a full disk.
pub const FAILED: i32 = 1;
/// The command line or its input is wrong: a flag, a value, a filter, a name, the
/// configuration file's contents.
pub const BAD_INPUT: i32 = 2;
/// Something named is not there: the configuration file, the database, a collection, a model.
pub const NOT_FOUND: i32 = 3;
/// Interrupted (Ctrl-C); what was committed before it stays.
pub const INTERRUPTED: i32 = 130;

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    done
  1    the operation failed (storage, model, I/O, disk full)
  2    bad usage or input (a flag, a value, a filter, a name, the configuration)
  3    not found (the configuration file, the database, a collection, a model)
  130  interrupted by Ctrl-C (batches committed before it are kept)";

/// An error: its message (one line, naming what to fix) and exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: i32,
    /// The line printed after `error: `.
    pub message: String,
}

impl CliError {
    /// Bad usage or input.
    pub fn bad(message: impl Into<String>) -> Self {
        Self { code: BAD_INPUT, message: message.into() }
    }
    /// Something named is missing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { code: NOT_FOUND, message: message.into() }
    }
    /// The operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self { code: FAILED, message: message.into() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The library's errors by the class the server gives them (`akidb_server::status_of`): not
/// found is 3, the caller's mistakes (4xx) are 2, the rest 1.
impl From<akidb::Error> for CliError {
    fn from(e: akidb::Error) -> Self {
        let status = akidb_server::status_of(&e).as_u16();
        let code = match status {
            404 => NOT_FOUND,
            400..=499 => BAD_INPUT,
            _ => FAILED,
        };
        let mut message = e.to_string();
        if matches!(&e, akidb::Error::Storage(akidb::StorageError::Locked { .. })) {
            message.push_str(" (is `akidb serve` or another program using it?)");
        }
        Self { code, message }
    }
}

impl From<akidb::EmbedError> for CliError {
    fn from(e: akidb::EmbedError) -> Self {
        Self::failed(e.to_string())
    }
}

impl From<akidb::FilterError> for CliError {
    fn from(e: akidb::FilterError) -> Self {
        Self::bad(format!("--filter: {e}"))
    }
}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
