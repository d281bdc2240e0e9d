//! Every check of what callers hand in, in one place: collection names and configurations,
//! documents (ids, vectors, text, metadata) and search requests. The limits themselves are the
//! constants of [`crate::limits`]; the HNSW parameter ranges are `akidb_index`'s
//! ([`HnswParams::validate`]). Each public entry point runs these before it touches storage, so
//! bad input is a typed error and writes nothing.

use serde_json::{Map, Value};

use akidb_index::{HnswParams, SearchParams};

use crate::error::{IdProblem, LimitExceeded};
use crate::filter::{json_type_name, Filter};
use crate::limits::{
    MAX_COLLECTION_NAME, MAX_DIMENSION, MAX_EF, MAX_ID_BYTES, MAX_INDEXES, MAX_K,
    MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TEXT_BYTES, MAX_VECTOR_COMPONENT, MIN_VECTOR_SCALE,
};
use crate::schema::{CollectionConfig, FieldIndex, Retention};
use crate::{Error, Metric, Result};

/// Checks a collection name: `[A-Za-z0-9_-]{1,64}`.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COLLECTION_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidCollectionName { name: name.chars().take(100).collect() })
    }
}

/// Checks a new collection's configuration: its dimension, HNSW parameters and retention.
pub(crate) fn check_config(config: &CollectionConfig) -> Result<()> {
    if config.dimension == 0 || config.dimension > MAX_DIMENSION {
        return Err(Error::InvalidDimension { dimension: config.dimension, max: MAX_DIMENSION });
    }
    check_hnsw(&config.hnsw)?;
    config.hnsw.quantization.validate(config.dimension, config.metric)?;
    check_indexes(&config.indexes)?;
    config.retention.as_ref().map_or(Ok(()), check_retention)
}

/// Checks payload index declarations: at most [`MAX_INDEXES`], each field a filter could name
/// (1 to 512 bytes, no empty part between dots), none twice.
pub(crate) fn check_indexes(indexes: &[FieldIndex]) -> Result<()> {
    let bad = |field: &str, reason| Err(Error::InvalidIndex { field: field.into(), reason });
    if indexes.len() > MAX_INDEXES {
        return bad(&indexes[MAX_INDEXES].field, "more than 64 payload indexes");
    }
    let mut seen = std::collections::HashSet::new();
    for i in indexes {
        if i.field.is_empty() || i.field.len() > MAX_ID_BYTES {
            return bad(&i.field, "a field is 1 to 512 bytes");
        }
        if i.field.split('.').any(str::is_empty) {
            return bad(&i.field, "a field path has no empty part between dots");
        }
        if !seen.insert(i.field.as_str()) {
            return bad(&i.field, "declared twice");
        }
    }
    Ok(())
}

/// Checks a retention policy: at least one rule; a time field only with an age.
pub(crate) fn check_retention(r: &Retention) -> Result<()> {
    let bad = |reason| Err(Error::InvalidRetention { reason });
    if r.max_age_secs.is_none() && r.max_documents.is_none() && r.max_bytes.is_none() {
        return bad("no rule: set max_age_secs, max_documents or max_bytes");
    }
    match &r.time_field {
        Some(_) if r.max_age_secs.is_none() => bad("time_field needs max_age_secs"),
        Some(f) if f.is_empty() || f.len() > MAX_ID_BYTES => {
            bad("time_field must be 1 to 512 bytes")
        }
        _ => Ok(()),
    }
}

fn check_hnsw(h: &HnswParams) -> Result<()> {
    h.validate().map_err(|_| Error::InvalidIndexParams {
        m: h.m,
        ef_construction: h.ef_construction,
        ef_search: h.ef_search,
    })
}

/// Checks what every search takes: `k` in range, a valid filter and a per-query `ef` in range.
pub(crate) fn check_search(k: usize, filter: Option<&Filter>, params: &SearchParams) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::InvalidK { k, max: MAX_K });
    }
    if let Some(ef) = params.ef.filter(|ef| *ef == 0 || *ef > MAX_EF) {
        return Err(Error::InvalidEf { ef, max: MAX_EF });
    }
    if let Some(f) = filter {
        f.validate()?;
    }
    Ok(())
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
