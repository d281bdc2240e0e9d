//! Export and import in Apache Parquet (arrow-rs), feature `parquet` (on by default).
//!
//! One row per document: `id` (utf8), `text` (utf8, nullable), `metadata` (utf8: the JSON
//! object's text), `vector` (fixed-size list of float32, the collection's dimension). The
//! export header of the JSON Lines format is stored in the Arrow schema's metadata under
//! `akidb_export`, and checked on import the same way. Both directions stream in row groups /
//! batches of 1,000 rows; snappy compression.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::export::{io_error, write_new_file, ImportReport};
use super::lifecycle::ScrollOptions;
use super::Collection;
use crate::document::{Document, Record};
use crate::filter::Filter;
use crate::{Error, Result};

/// Rows per record batch, both ways.
const ROWS: usize = 1_000;
/// The schema metadata key holding the export header.
const HEADER_KEY: &str = "akidb_export";

fn parquet_error(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e) }
}

fn schema(dim: usize, header: String) -> Arc<Schema> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, true),
        Field::new("metadata", DataType::Utf8, false),
        Field::new("vector", DataType::FixedSizeList(item, dim as i32), false),
    ];
    let metadata: arrow_schema::Metadata = [(HEADER_KEY.to_string(), header)].into_iter().collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

fn batch(schema: &Arc<Schema>, dim: usize, rows: &[Record]) -> Result<RecordBatch> {
    let ids = StringArray::from_iter_values(rows.iter().map(|r| r.id.as_str()));
    let texts: StringArray = rows.iter().map(|r| r.text.as_deref()).collect();
    let meta = StringArray::from_iter_values(rows.iter().map(|r| r.metadata.to_string()));
    let values = Float32Array::from_iter_values(rows.iter().flat_map(|r| r.vector.iter().copied()));
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let vectors = FixedSizeListArray::try_new(item, dim as i32, Arc::new(values), None)
        .map_err(|e| Error::Io { path: "(export)".into(), source: std::io::Error::other(e) })?;
    let columns: Vec<ArrayRef> =
        vec![Arc::new(ids), Arc::new(texts), Arc::new(meta), Arc::new(vectors)];
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Io { path: "(export)".into(), source: std::io::Error::other(e) })
}

impl Collection {
    /// Writes the documents matching `filter` (all for `None`) as Apache Parquet to the new
    /// file `path`, from one snapshot, streaming; as [`Collection::export_jsonl`] otherwise
    /// (hidden temporary name, durable before it appears, `path` existing is an error).
    pub fn export_parquet(&self, path: impl AsRef<Path>, filter: Option<&Filter>) -> Result<u64> {
        let path = path.as_ref();
        let dim = self.config().dimension;
        let schema = schema(dim, self.export_header());
        write_new_file(path, |file| {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROWS * 64))
                .build();
            let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))
                .map_err(parquet_error(path))?;
            let mut n = 0u64;
            let options = ScrollOptions::default().with_page_size(ROWS).with_vectors(true);
            for page in self.scroll(filter, options)? {
                let page = page?;
                n += page.len() as u64;
                w.write(&batch(&schema, dim, &page)?).map_err(parquet_error(path))?;
            }
            w.close().map_err(parquet_error(path))?;
            Ok(n)
        })
    }

    /// Upserts the documents of a Parquet export from `path`, in durable batches of 1,000;
    /// idempotent; the header in the file's schema must match this collection (as for
    /// [`Collection::import_jsonl_from`]). A file without it, or with other columns or types,
    /// is [`Error::Import`] (line 1); a bad row is [`Error::Import`] with its 1-based number,
    /// the batches before it imported.
    pub fn import_parquet(&self, path: impl AsRef<Path>) -> Result<ImportReport> {
        self.check_live()?;
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        let not_export = |reason: String| Error::Import { line: 1, reason };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| not_export(format!("not a Parquet file: {e}")))?;
        let header = builder.schema().metadata().get(HEADER_KEY).cloned();
        let header = header.ok_or_else(|| not_export("no AkiDB export header".into()))?;
        let dim = self.check_header_text(header.as_bytes(), 1)?;
        let want = schema(dim, header);
        let fields_match = builder.schema().fields().len() == want.fields().len()
            && builder
                .schema()
                .fields()
                .iter()
                .zip(want.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !fields_match {
            return Err(not_export(format!(
                "columns {:?}, expected id, text, metadata, vector ({dim} x float32)",
                builder.schema().fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            )));
        }
        let reader = builder.with_batch_size(ROWS).build().map_err(parquet_error(path))?;
        let mut report = ImportReport::default();
        let mut row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Import {
                line: row + 1,
                reason: format!("unreadable row group: {e}"),
            })?;
            let docs = documents(&batch, dim, row)?;
            row += docs.len() as u64;
            self.upsert(&docs)?;
            report.documents += docs.len() as u64;
            report.batches += 1;
        }
        Ok(report)
    }
}

/// The documents of one record batch (whose schema was checked); `first` is the number of rows
/// before it, for errors.
fn documents(batch: &RecordBatch, dim: usize, first: u64) -> Result<Vec<Document>> {
    let column = |i: usize| batch.column(i).as_any();
    let (Some(ids), Some(texts), Some(meta), Some(vectors)) = (
        column(0).downcast_ref::<StringArray>(),
        column(1).downcast_ref::<StringArray>(),
        column(2).downcast_ref::<StringArray>(),
        column(3).downcast_ref::<FixedSizeListArray>(),
    ) else {
        return Err(Error::Import { line: first + 1, reason: "unexpected column types".into() });
    };
    (0..batch.num_rows())
        .map(|i| {
            let line = first + i as u64 + 1;
            let bad = |reason: &str| Error::Import { line, reason: reason.into() };
            if ids.is_null(i) || meta.is_null(i) || vectors.is_null(i) {
                return Err(bad("a null id, metadata or vector"));
            }
            let metadata: Value = serde_json::from_str(meta.value(i))
                .map_err(|e| bad(&format!("metadata is not JSON: {e}")))?;
            let row = vectors.value(i);
            let Some(v) = row.as_any().downcast_ref::<Float32Array>() else {
                return Err(bad("vectors are not float32"));
            };
            if v.len() != dim || v.null_count() > 0 {
                return Err(bad("a vector of another length, or with a null component"));
            }
            Ok(Document {
                id: ids.value(i).to_string(),
                vector: v.values().to_vec(),
                text: (!texts.is_null(i)).then(|| texts.value(i).to_string()),
                metadata,
            })
        })
        .collect()
}
