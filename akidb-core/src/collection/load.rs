//! Loading a collection on its first open in a process: one scan of its documents from a redb
//! snapshot (vectors checked; metadata parsed when fields are declared for the payload index),
//! then the newest valid index generation brought
//! up to date with that scan, or a graph rebuild when there is none (see `akidb_index::persist`
//! for what makes a generation valid). Storage is the source of truth; a missing, stale or
//! foreign generation costs time, never a failed open or a wrong answer.

use akidb_index::persist::{self, LoadOutcome};
use akidb_index::{FlatIndex, HnswIndex, VectorSearch};
use akidb_storage::{CollectionEntry, Storage};

use super::engine::{Applied, Engine};
use super::fulltext;
use super::metadata;
use super::payload::Payload;
use super::CollectionState;
use crate::schema::CollectionConfig;
use crate::validate::check_stored_vector;
use crate::{Error, Result};

/// Builds the state of collection `entry` from storage (see the module docs).
pub(crate) fn load(
    store: &Storage,
    entry: CollectionEntry,
    config: CollectionConfig,
    db_path: &std::path::Path,
) -> Result<CollectionState> {
    let (dim, metric) = (config.dimension, config.metric);
    let snap = store.snapshot()?;
    let last_seq = snap.last_seq(&entry)?;
    // Sized once from the live count (a hint, capped: the scan decides what is live).
    let live = usize::try_from(snap.count(&entry)?).unwrap_or(0).min(1 << 24);
    let dir = super::index_dir(db_path, &entry);
    // In memory: the scanned vectors become the exact store as they are (no second copy). On
    // disk: written to the store's file in batches as they are scanned.
    let mut on_disk = if config.vectors_on_disk {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        Some(FlatIndex::on_disk(dim, metric, &dir)?)
    } else {
        None
    };
    let batch = if on_disk.is_some() { 1024 } else { live };
    let mut ids = Vec::with_capacity(batch);
    let mut vectors: Vec<f32> = Vec::with_capacity(batch.saturating_mul(dim));
    let mut payload = Payload::new(&config.indexes);
    let text_identity = super::text_identity(store.database_id(), &entry);
    let mut text = config
        .full_text_enabled()
        .then(|| fulltext::Loader::open(&entry.name, &dir, text_identity, last_seq));
    let mut failure = None;
    snap.scan(&entry, 0, |seq, doc, v| {
        if let Some(t) = text.as_mut() {
            t.visit(seq, doc.text.as_deref());
        }
        let read = check_stored_vector(v, dim, metric, || format!("stored under sequence {seq}"))
            .and_then(|p| {
                if !payload.keeps_nothing() {
                    payload.insert(seq, &metadata::parse_object(&doc.metadata, seq, &entry)?);
                }
                Ok(p)
            });
        match read {
            Ok(prepared) => {
                ids.push(seq);
                vectors.extend_from_slice(&prepared);
                match on_disk.as_mut().filter(|_| ids.len() >= batch) {
                    Some(flat) => match flush(flat, &mut ids, &mut vectors) {
                        Ok(()) => true,
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    },
                    None => true,
                }
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let text = text.map(|t| t.finish(&snap, &entry, &dir, text_identity, last_seq));
    drop(snap);
    let flat = match on_disk {
        Some(mut flat) => {
            flush(&mut flat, &mut ids, &mut vectors)?;
            flat
        }
        None => {
            vectors.shrink_to_fit();
            FlatIndex::from_parts(dim, metric, ids, vectors)?
        }
    };

    let name = entry.name.clone();
    let identity = super::index_identity(store.database_id(), &entry, &config);
    let (index, unsaved) = match persist::load(&dir, &identity, flat, last_seq) {
        LoadOutcome::Loaded { index, covered_seq, replayed, tombstoned } => {
            log::info!(
                "collection {name}: index generation covering sequence {covered_seq} loaded; \
                 {replayed} newer vectors replayed, {tombstoned} removed ones tombstoned"
            );
            (*index, (replayed + tombstoned) as u64)
        }
        LoadOutcome::Rebuild { reason, flat } => {
            let n = flat.len();
            if n > 0 {
                log::info!("collection {name}: rebuilding the index over {n} vectors ({reason})");
            }
            let mut last_log = std::time::Instant::now();
            let mut progress = |done: usize, total: usize| {
                if last_log.elapsed().as_secs() >= 5 {
                    log::info!("collection {name}: index rebuild {done}/{total}");
                    last_log = std::time::Instant::now();
                }
            };
            let hnsw = config.hnsw;
            let index = HnswIndex::rebuild_from(flat, hnsw, &|| false, &mut progress)?
                .unwrap_or_else(|| HnswIndex::new(dim, metric, hnsw));
            (index, n as u64)
        }
    };
    let engine = Engine::new(&name, Applied::new(index, payload, text, last_seq), unsaved);
    let state = CollectionState::new(entry, config, store, db_path, engine);
    crate::memory::release_free_heap();
    Ok(state)
}

/// Moves a batch of scanned vectors into the store on disk.
fn flush(flat: &mut FlatIndex, ids: &mut Vec<u64>, vectors: &mut Vec<f32>) -> Result<()> {
    use akidb_index::VectorInsert;
    let dim = flat.dimension();
    let items: Vec<(u64, &[f32])> = ids.iter().copied().zip(vectors.chunks_exact(dim)).collect();
    flat.insert(&items)?;
    ids.clear();
    vectors.clear();
    Ok(())
}

/// The payload of `indexes` over the live documents of `entry` in a fresh snapshot.
pub(crate) fn payload_from_storage(
    store: &Storage,
    entry: &CollectionEntry,
    indexes: &[crate::FieldIndex],
) -> Result<Payload> {
    let mut payload = Payload::new(indexes);
    if payload.keeps_nothing() {
        return Ok(payload);
    }
    let mut failure = None;
    store.snapshot()?.scan_documents(entry, 0, |seq, doc| {
        match metadata::parse_object(&doc.metadata, seq, entry) {
            Ok(m) => payload.insert(seq, &m),
            Err(e) => failure = Some(e),
        }
        Ok(failure.is_none())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(payload),
    }
}

/// Errors of a load are those of an open: a collection dropped meanwhile is not found.
pub(crate) fn map_error(e: Error) -> Error {
    match e {
        Error::Storage(akidb_storage::StorageError::CollectionNotFound { name }) => {
            Error::CollectionNotFound { name }
        }
        e => e,
    }
}
