//! Export and import in JSON Lines: one header line, then one document per line.
//!
//! ```text
//! {"akidb_export":1,"collection":"logs","dimension":384,"metric":"cosine","model":{...}|null}
//! {"id":"d1","text":"...","metadata":{...},"vector":[0.1,...]}
//! ```
//!
//! Vectors are written as JSON numbers with the shortest digits that read back as the same
//! `f32`, so a round trip is exact. Both directions stream: memory is bounded by one page (export)
//! or one batch (import), whatever the collection's size.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lifecycle::ScrollOptions;
use super::Collection;
use crate::document::Document;
use crate::filter::Filter;
use crate::schema::{Metric, ModelIdentity};
use crate::{Error, Result};

/// The export format version in the header line.
const EXPORT_VERSION: u32 = 1;
/// Longest line an import reads (a document at every limit fits).
pub const MAX_IMPORT_LINE: usize = 32 << 20;
/// Documents per import transaction...
const IMPORT_BATCH: usize = 500;
/// ...or fewer once their lines reach this many bytes.
const IMPORT_BATCH_BYTES: usize = 16 << 20;

#[derive(Serialize, Deserialize)]
struct Header {
    akidb_export: u32,
    collection: String,
    dimension: usize,
    metric: Metric,
    model: Option<ModelIdentity>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    id: &'a str,
    text: Option<&'a str>,
    metadata: &'a Value,
    vector: &'a [f32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    metadata: Value,
    vector: Vec<f32>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Documents upserted.
    pub documents: u64,
    /// Durable transactions they took.
    pub batches: u64,
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Writes the new file `path` through `write`: under a hidden name beside it, synced, then
/// linked into place (never replacing a file, even one that appeared meanwhile), so a crash or
/// an error leaves no file at `path`. `path` existing is [`Error::Io`] before anything is done.
pub(super) fn write_new_file(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<u64>,
) -> Result<u64> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
    })?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(io_error(path)(std::io::ErrorKind::AlreadyExists.into()));
    }
    let tmp = path.with_file_name(format!(".{name}.akidb-partial-{}", std::process::id()));
    let mut file = std::fs::File::create_new(&tmp).map_err(io_error(&tmp))?;
    let written = write(&mut file).and_then(|n| {
        file.sync_all().map_err(io_error(&tmp))?;
        std::fs::hard_link(&tmp, path).map_err(io_error(path))?;
        Ok(n)
    });
    let _ = std::fs::remove_file(&tmp);
    written
}

impl Collection {
    /// Writes the documents matching `filter` (all for `None`) as JSON Lines to the new file
    /// `path`, from one snapshot, streaming. The file is written beside `path` under a hidden
    /// name and renamed into place once durable: a crash or an error (disk full) leaves no
    /// file at `path`. Errors: `path` exists ([`Error::Io`], nothing written). Returns the
    /// documents written.
    pub fn export_jsonl(&self, path: impl AsRef<Path>, filter: Option<&Filter>) -> Result<u64> {
        write_new_file(path.as_ref(), |file| {
            // `export_jsonl_to` flushes the buffer; `write_new_file` syncs the file.
            self.export_jsonl_to(&mut BufWriter::with_capacity(1 << 20, file), filter)
        })
    }

    /// The header of an export of this collection.
    pub(super) fn export_header(&self) -> String {
        let header = Header {
            akidb_export: EXPORT_VERSION,
            collection: self.name().to_string(),
            dimension: self.config().dimension,
            metric: self.config().metric,
            model: self.state.model_identity(),
        };
        serde_json::to_string(&header).unwrap_or_default()
    }

    /// Checks an export header (its JSON text) against this collection; returns its dimension.
    pub(super) fn check_header_text(&self, text: &[u8], line: u64) -> Result<usize> {
        let header: Header = serde_json::from_slice(text).map_err(|e| Error::Import {
            line,
            reason: format!("not an AkiDB export header: {e}"),
        })?;
        if header.akidb_export != EXPORT_VERSION {
            return Err(Error::Import {
                line,
                reason: format!("export format {} (this build reads 1)", header.akidb_export),
            });
        }
        if header.dimension != self.config().dimension {
            return Err(Error::Import {
                line,
                reason: format!(
                    "vectors of dimension {}, the collection's is {}",
                    header.dimension,
                    self.config().dimension
                ),
            });
        }
        if let (Some(ours), Some(theirs)) = (self.state.model_identity(), &header.model) {
            if !ours.same_model(theirs) {
                return Err(Error::ModelMismatch {
                    collection: self.name().into(),
                    stored: ours.to_string(),
                    given: theirs.to_string(),
                });
            }
        }
        Ok(header.dimension)
    }

    /// [`Collection::export_jsonl`] into any writer (not synced). Returns the documents written.
    pub fn export_jsonl_to(&self, w: &mut dyn Write, filter: Option<&Filter>) -> Result<u64> {
        let io = |e: std::io::Error| Error::Io { path: "(export)".into(), source: e };
        let json = |e: serde_json::Error| Error::Io { path: "(export)".into(), source: e.into() };
        w.write_all(self.export_header().as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
        let mut n = 0u64;
        let options = ScrollOptions::default().with_page_size(1_000).with_vectors(true);
        for page in self.scroll(filter, options)? {
            for r in page? {
                let line = LineOut {
                    id: &r.id,
                    text: r.text.as_deref(),
                    metadata: &r.metadata,
                    vector: &r.vector,
                };
                serde_json::to_writer(&mut *w, &line).map_err(json)?;
                w.write_all(b"\n").map_err(io)?;
                n += 1;
            }
        }
        w.flush().map_err(io)?;
        Ok(n)
    }

    /// Upserts the documents of a JSON Lines export from `path` (see
    /// [`Collection::import_jsonl_from`]).
    pub fn import_jsonl(&self, path: impl AsRef<Path>) -> Result<ImportReport> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        self.import_jsonl_from(&mut std::io::BufReader::with_capacity(1 << 20, file))
    }

    /// Upserts the documents of a JSON Lines export, in durable batches (500 documents or
    /// 16 MiB). Idempotent: importing the same file again changes nothing. The header must match
    /// this collection: same dimension, and the same model where both name one
    /// ([`Error::ModelMismatch`]). A line that is not a document (truncated, another schema,
    /// over [`MAX_IMPORT_LINE`] bytes) is [`Error::Import`] with its number; the batches
    /// before it are imported, nothing after it.
    pub fn import_jsonl_from(&self, r: &mut dyn BufRead) -> Result<ImportReport> {
        self.check_live()?;
        let mut report = ImportReport::default();
        let mut line = Vec::new();
        let mut number = 0u64;
        let mut read_line = |line: &mut Vec<u8>, number: &mut u64| -> Result<bool> {
            line.clear();
            *number += 1;
            let mut limited = std::io::Read::take(&mut *r, MAX_IMPORT_LINE as u64 + 1);
            let n = limited
                .read_until(b'\n', line)
                .map_err(|e| Error::Io { path: "(import)".into(), source: e })?;
            if n > MAX_IMPORT_LINE {
                return Err(Error::Import {
                    line: *number,
                    reason: format!("longer than {MAX_IMPORT_LINE} bytes"),
                });
            }
            Ok(n > 0)
        };
        if !read_line(&mut line, &mut number)? {
            return Err(Error::Import { line: 1, reason: "empty input: no header line".into() });
        }
        let dimension = self.check_header_text(&line, 1)?;
        let mut batch: Vec<Document> = Vec::new();
        let mut bytes = 0usize;
        loop {
            let more = read_line(&mut line, &mut number)?;
            if more && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if more {
                let doc: LineIn = serde_json::from_slice(&line).map_err(|e| Error::Import {
                    line: number,
                    reason: format!("not a document: {e}"),
                })?;
                if doc.vector.len() != dimension {
                    return Err(Error::Import {
                        line: number,
                        reason: format!(
                            "a vector of dimension {}, expected {dimension}",
                            doc.vector.len()
                        ),
                    });
                }
                bytes += line.len();
                batch.push(Document {
                    id: doc.id,
                    vector: doc.vector,
                    text: doc.text,
                    metadata: doc.metadata,
                });
            }
            if !batch.is_empty()
                && (!more || batch.len() >= IMPORT_BATCH || bytes >= IMPORT_BATCH_BYTES)
            {
                self.upsert(&batch)?;
                report.documents += batch.len() as u64;
                report.batches += 1;
                batch.clear();
                bytes = 0;
            }
            if !more {
                return Ok(report);
            }
        }
    }
}
