//! Documents going in, records and hits coming out, and the validation of each.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{IdProblem, LimitExceeded};
use crate::filter::json_type_name;
use crate::limits::{
    MAX_ID_BYTES, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TEXT_BYTES, MAX_VECTOR_COMPONENT,
    MIN_VECTOR_SCALE,
};
use crate::{Error, Metric, Result};

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
}

/// Checks an id and returns it.
pub(crate) fn check_id(position: usize, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidId { position, reason: IdProblem::Empty });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidId {
            position,
            reason: IdProblem::TooLong { bytes: id.len(), max: MAX_ID_BYTES },
        });
    }
    Ok(())
}

/// Checks a vector; for cosine returns the normalised copy used by the index.
pub(crate) fn check_vector(
    v: &[f32],
    dimension: usize,
    metric: Metric,
    context: impl Fn() -> String,
) -> Result<Vec<f32>> {
    let prepared = check_stored_vector(v, dimension, metric, &context)?;
    if metric != Metric::Cosine {
        let magnitude = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if magnitude > MAX_VECTOR_COMPONENT || (magnitude > 0.0 && magnitude < MIN_VECTOR_SCALE) {
            return Err(Error::VectorOutOfRange {
                context: context(),
                magnitude,
                metric: if metric == Metric::Dot { "dot" } else { "l2" },
                min: MIN_VECTOR_SCALE,
                max: MAX_VECTOR_COMPONENT,
            });
        }
    }
    Ok(prepared)
}

/// [`check_vector`] without the Dot/L2 range, for vectors already in storage: those written
/// before the range was enforced stay readable.
pub(crate) fn check_stored_vector(
    v: &[f32],
    dimension: usize,
    metric: Metric,
    context: impl Fn() -> String,
) -> Result<Vec<f32>> {
    if v.len() != dimension {
        return Err(Error::WrongDimension {
            context: context(),
            expected: dimension,
            got: v.len(),
        });
    }
    if let Some(position) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteVector { context: context(), position });
    }
    let mut prepared = v.to_vec();
    if metric == Metric::Cosine && !akidb_index::normalize(&mut prepared) {
        return Err(Error::ZeroVector { context: context() });
    }
    Ok(prepared)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks metadata and returns its JSON text and the object.
pub(crate) fn check_metadata(id: &str, metadata: &Value) -> Result<(String, Map<String, Value>)> {
    let obj = match metadata {
        Value::Null => return Ok(("{}".into(), Map::new())),
        Value::Object(o) => o,
        other => {
            return Err(Error::MetadataNotObject { id: id.into(), found: json_type_name(other) })
        }
    };
    // Depth first: serde_json's own recursion limit must never be what stops us.
    if depth(metadata) > MAX_METADATA_DEPTH {
        return Err(Error::MetadataTooLarge {
            id: id.into(),
            what: LimitExceeded::Depth { max: MAX_METADATA_DEPTH },
        });
    }
    let text = metadata.to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(Error::MetadataTooLarge {
            id: id.into(),
            what: LimitExceeded::Bytes { bytes: text.len(), max: MAX_METADATA_BYTES },
        });
    }
    Ok((text, obj.clone()))
}

pub(crate) fn check_text(id: &str, text: Option<&str>) -> Result<()> {
    match text {
        Some(t) if t.len() > MAX_TEXT_BYTES => {
            Err(Error::TextTooLong { id: id.into(), bytes: t.len(), max: MAX_TEXT_BYTES })
        }
        _ => Ok(()),
    }
}
