//! Collection configuration, persisted as the collection's schema.

use serde::{Deserialize, Serialize};

pub use akidb_index::{HnswParams, Metric};

/// Identity of the embedding model bound to a collection. Opening a collection with a model of
/// another identity is an error, so vectors of different models never mix.
///
/// Identity is content: two identities are the same model when their digests (of weights,
/// tokenizer and settings; see `akidb_embedding::identity`) are equal, whatever the name or
/// folder. Collections made before digests were recorded carry none; they are matched by name,
/// dimension, pooling and query prompt once, and record the digest of the model that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelIdentity {
    /// Model name, e.g. `sentence-transformers/all-MiniLM-L6-v2` (for messages).
    pub name: String,
    /// Content digest (hex SHA-256), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Output dimension after any Matryoshka truncation.
    pub dimension: usize,
    /// Pooling, e.g. `mean`, `cls`, `last_token`.
    pub pooling: String,
    /// Instruction or prompt prepended to queries, if any.
    pub query_instruction: Option<String>,
}

impl ModelIdentity {
    /// A model identity.
    pub fn new(name: impl Into<String>, dimension: usize, pooling: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            digest: None,
            dimension,
            pooling: pooling.into(),
            query_instruction: None,
        }
    }
    /// The identity of a loaded model.
    pub fn of(info: &akidb_embed_api::ModelInfo) -> Self {
        Self {
            name: info.name.clone(),
            digest: Some(info.digest.clone()),
            dimension: info.dimension,
            pooling: info.pooling.as_str().to_string(),
            query_instruction: info.query_prompt.clone(),
        }
    }
    /// Whether `other` is the same model: equal digests where both have one; otherwise (an
    /// identity recorded before digests) equal name, dimension, pooling and query prompt.
    pub fn same_model(&self, other: &ModelIdentity) -> bool {
        match (&self.digest, &other.digest) {
            (Some(a), Some(b)) => a == b && self.dimension == other.dimension,
            _ => {
                self.name == other.name
                    && self.dimension == other.dimension
                    && self.pooling == other.pooling
                    && self.query_instruction == other.query_instruction
            }
        }
    }
    /// Sets the query instruction.
    pub fn with_query_instruction(mut self, instruction: impl Into<String>) -> Self {
        self.query_instruction = Some(instruction.into());
        self
    }
}

/// Configuration of a collection, fixed at creation.
///
/// Defaults: metric [`Metric::Cosine`], no bound model, HNSW m 16 / ef_construction 200 /
/// ef_search 64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CollectionConfig {
    /// Vector dimension (1 to [`crate::limits::MAX_DIMENSION`]).
    pub dimension: usize,
    /// Similarity metric.
    pub metric: Metric,
    /// The embedding model that produces this collection's vectors, if bound.
    #[serde(default)]
    pub model: Option<ModelIdentity>,
    /// HNSW parameters (defaults: m 16, ef_construction 200, ef_search 64).
    #[serde(default)]
    pub hnsw: HnswParams,
    /// What the collection keeps (none: everything); see [`Retention`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Declared payload indexes: the metadata fields kept in memory for filters (see
    /// [`FieldIndex`]); every other field is read from storage when a filter names it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<FieldIndex>,
    /// Whether documents' texts are also indexed for keyword (BM25) search, which hybrid
    /// queries fuse with the vector side (`None`: on for collections with a bound model, off
    /// for the others); see [`CollectionConfig::full_text_enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_text: Option<bool>,
    /// Keep the exact f32 vectors on disk instead of in memory (default off): the graph's
    /// half-float copy stays in memory for walks, and the few hits each search re-scores are
    /// read from a scratch file of the index, refilled from storage on every open. Memory per
    /// vector drops from about `6 * dimension` bytes to `2 * dimension`, plus the graph's
    /// links; scans (small collections, selective filters, `SearchParams::exact`) read the
    /// file (the kernel's page cache keeps it when memory allows). See
    /// `akidb_index::FlatIndex::on_disk`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vectors_on_disk: bool,
}

/// A declared payload index: one metadata field that searches filter on, kept in memory in a
/// compact column (the rest of a document's metadata stays in storage).
///
/// A filter whose fields are all declared is evaluated in memory during the graph walk, and the
/// counts a keyword index keeps give the search rule the exact share of the documents a filter
/// on it keeps. A filter naming an undeclared field is still answered exactly: its matches are
/// found first by reading the metadata of the documents the declared fields cannot decide from
/// storage (a scan: slower, seconds per million documents). Values of another type than
/// declared (a number in a keyword field, an array, a float in an integer field) are kept
/// exactly too, beside the column, so every filter means what the [`crate::Filter`] docs say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldIndex {
    /// The field path, as filters name it (dots reach into nested objects).
    pub field: String,
    /// What the field holds.
    pub kind: IndexKind,
}

/// What a declared payload index holds per document (4 or 8 bytes of column per document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IndexKind {
    /// Strings (robot names, levels, codes): a dictionary of the distinct values with a count
    /// of documents per value, 4 bytes per document.
    Keyword,
    /// Integers that fit an `i64`, 8 bytes per document.
    Integer,
    /// Numbers, as `f64` (integers up to 2^53 exactly), 8 bytes per document.
    Float,
    /// Times as integers (unix seconds, milliseconds or nanoseconds; one unit per field): an
    /// integer column, named for what it holds.
    Timestamp,
}

impl FieldIndex {
    /// Index `field` as `kind`.
    pub fn new(field: impl Into<String>, kind: IndexKind) -> Self {
        Self { field: field.into(), kind }
    }
}

/// A collection's retention policy: which documents a background pass deletes. Every rule set
/// applies; documents are judged in insertion order (oldest first) and nothing newer than a
/// rule says is deleted. Enforced when the collection is opened, then every
/// [`crate::DatabaseBuilder::with_retention_interval`] by the database's maintenance worker,
/// and on demand by [`crate::Collection::enforce_retention`]; each pass deletes in durable
/// chunks like [`crate::Collection::delete_where`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Retention {
    /// Keep documents younger than this many seconds: by their insertion time (recorded by
    /// AkiDB with each write, by the database's [`crate::Clock`]), or by `time_field`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
    /// The metadata field holding a document's time for `max_age_secs`, in unix seconds (an
    /// integer or a float). A document without it, or with another type there, is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field: Option<String>,
    /// Keep at most this many documents: the newest by insertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_documents: Option<u64>,
    /// Keep at most this many bytes of stored documents (id, text, metadata) and vectors (4
    /// bytes per component), the newest by insertion; the file's own overhead is not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Keep documents inserted less than `age` ago.
    pub fn max_age(age: std::time::Duration) -> Self {
        Self { max_age_secs: Some(age.as_secs()), ..Self::default() }
    }
    /// Judge age by a metadata field (unix seconds) instead of insertion time.
    pub fn with_time_field(mut self, field: impl Into<String>) -> Self {
        self.time_field = Some(field.into());
        self
    }
    /// Keep at most `n` documents.
    pub fn with_max_documents(mut self, n: u64) -> Self {
        self.max_documents = Some(n);
        self
    }
    /// Keep at most `bytes` of stored documents and vectors.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
    /// No rule: keep everything (for `with_max_documents` / `with_max_bytes` alone).
    pub fn keep_all() -> Self {
        Self::default()
    }
}

impl CollectionConfig {
    /// A configuration with the given dimension, cosine metric and no model.
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            metric: Metric::Cosine,
            model: None,
            hnsw: HnswParams::default(),
            retention: None,
            indexes: Vec::new(),
            full_text: None,
            vectors_on_disk: false,
        }
    }
    /// Turns the full-text index of the documents' texts on or off (default: on with a bound
    /// model). Fixed at creation, like the rest of the configuration.
    pub fn with_full_text(mut self, on: bool) -> Self {
        self.full_text = Some(on);
        self
    }
    /// Whether the collection keeps a full-text index: as set, else whether a model is bound
    /// (so text collections created before the index existed get one on their next open).
    pub fn full_text_enabled(&self) -> bool {
        self.full_text.unwrap_or(self.model.is_some())
    }
    /// Declares a payload index on `field` (see [`FieldIndex`]); declaring a field again
    /// replaces its kind.
    pub fn with_index(mut self, field: impl Into<String>, kind: IndexKind) -> Self {
        let field = field.into();
        self.indexes.retain(|i| i.field != field);
        self.indexes.push(FieldIndex { field, kind });
        self
    }
    /// Sets the metric.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }
    /// Sets the HNSW parameters.
    pub fn with_hnsw(mut self, params: HnswParams) -> Self {
        self.hnsw = params;
        self
    }
    /// Sets how the graph stores vectors for its walks (see [`crate::Quantization`]; checked
    /// against the dimension and metric at creation).
    pub fn with_quantization(mut self, quantization: crate::Quantization) -> Self {
        self.hnsw.quantization = quantization;
        self
    }
    /// Keeps the exact vectors on disk (see [`CollectionConfig::vectors_on_disk`]).
    pub fn with_vectors_on_disk(mut self, on: bool) -> Self {
        self.vectors_on_disk = on;
        self
    }
    /// Sets the retention policy.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }
    /// Binds an embedding model identity.
    pub fn with_model(mut self, model: ModelIdentity) -> Self {
        self.model = Some(model);
        self
    }
}

/// The version written into every stored schema.
const SCHEMA_VERSION: u32 = 1;

/// The schema as stored: versioned so later fields can be added.
#[derive(Serialize, Deserialize)]
struct StoredSchema {
    schema_version: u32,
    config: CollectionConfig,
}

/// The stored form of collection `name`'s configuration.
pub(crate) fn encode(name: &str, config: &CollectionConfig) -> crate::Result<Vec<u8>> {
    serde_json::to_vec(&StoredSchema { schema_version: SCHEMA_VERSION, config: config.clone() })
        .map_err(|source| crate::Error::CorruptSchema { name: name.into(), source })
}

/// The configuration stored for a collection.
pub(crate) fn decode(entry: &akidb_storage::CollectionEntry) -> crate::Result<CollectionConfig> {
    let s: StoredSchema = serde_json::from_slice(&entry.schema)
        .map_err(|source| crate::Error::CorruptSchema { name: entry.name.clone(), source })?;
    Ok(s.config)
}

impl std::fmt::Display for ModelIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}-d, {} pooling", self.name, self.dimension, self.pooling)?;
        if let Some(d) = &self.digest {
            write!(f, ", digest {}", &d[..d.len().min(12)])?;
        }
        match &self.query_instruction {
            Some(q) => write!(f, ", query prompt {q:?})"),
            None => write!(f, ", no query prompt)"),
        }
    }
}
