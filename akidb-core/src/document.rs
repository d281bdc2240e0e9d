//! Documents going in, records and hits coming out (their checks are in `validate.rs`).

use serde::Serialize;
use serde_json::Value;

#[allow(unused_imports)] // named in the docs
use crate::limits::{MAX_ID_BYTES, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TEXT_BYTES};

/// A document to upsert: an id, a vector, optional text and a metadata object.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// User id: 1 to [`MAX_ID_BYTES`] bytes. Upserting an existing id replaces it.
    pub id: String,
    /// The vector; its length must equal the collection dimension.
    pub vector: Vec<f32>,
    /// Optional text, at most [`MAX_TEXT_BYTES`] bytes.
    pub text: Option<String>,
    /// Metadata: a JSON object (`Value::Null` is taken as `{}`), at most [`MAX_METADATA_BYTES`]
    /// serialised and [`MAX_METADATA_DEPTH`] levels deep.
    pub metadata: Value,
}

impl Document {
    /// A document with empty metadata and no text.
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        Self { id: id.into(), vector, text: None, metadata: Value::Null }
    }
    /// Sets the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
    /// Sets the metadata (a JSON object).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A text to embed and store (see [`crate::Collection::add_texts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TextDocument {
    /// User id (as for [`Document::id`]).
    pub id: String,
    /// The text, embedded as a document (no query instruction), at most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// Metadata object (as for [`Document::metadata`]).
    pub metadata: Value,
}

impl TextDocument {
    /// A text document with empty metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self { id: id.into(), text: text.into(), metadata: Value::Null }
    }
    /// Sets the metadata (a JSON object).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A stored document, as returned by [`crate::Collection::get`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// User id.
    pub id: String,
    /// The stored vector (as given, not normalised).
    pub vector: Vec<f32>,
    /// Text, if any.
    pub text: Option<String>,
    /// Metadata object.
    pub metadata: Value,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// User id.
    pub id: String,
    /// Similarity for cosine and dot (higher is better), distance for L2 (lower is better).
    pub score: f32,
    /// Text, if any.
    pub text: Option<String>,
    /// Metadata object.
    pub metadata: Value,
    /// How the hit was ranked on each side of a keyword or hybrid query, when asked for
    /// ([`crate::QueryOptions::explain`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<crate::HitExplain>,
}
