//! Index generations on disk: the graph as an hnsw_rs dump plus a manifest, written temp +
//! fsync + rename.
//!
//! Layout, inside a directory the caller owns (one per collection):
//!
//! ```text
//! gen-00000000000000001234/        covers storage sequence numbers up to 1234
//!     akidb.hnsw.graph             hnsw_rs dump (graph)
//!     akidb.hnsw.data              hnsw_rs dump (vectors)
//!     MANIFEST.json                format version, identity, parameters, sizes, CRC32s
//! ```
//!
//! A generation is written into `tmp-*` and renamed into place only when complete and synced,
//! so a crash leaves either the old generation or the new one.
//!
//! # What a generation must pass to be used
//!
//! Index files are a cache of storage, and any files may be found in their place: left by an
//! accident (a database file deleted or restored from an older copy, an index folder copied
//! from another database) or planted. Loading takes the newest generation that passes, in order:
//!
//! 1. **Identity**: the manifest names the exact database (its random identity, new for every
//!    database file created) and collection (ids are never reused within a database) the
//!    generation was built from, and the same dimension, metric and graph parameters.
//! 2. **Size**: the manifest's node count is at most the sequence number covered and at most
//!    twice the live vectors (plus 1,024; a generation mostly of deleted vectors is cheaper to
//!    rebuild), and each file's size fits that count: the data file exactly, the graph file
//!    under a bound of the links `m` allows. So nothing larger than what the live vectors justify
//!    is read (a manifest claiming 6 GiB is refused before a byte of the files is read).
//! 3. **Integrity**: sizes and CRC32s match; the files (each read once) pass a strict parser
//!    (`dump.rs`: every length, count, name and cross reference checked). The graph file is
//!    read whole and checksummed before it is parsed; the data file (the vectors) streams
//!    through the parser with its checksum computed on the way, so loading never holds a
//!    second copy of the vectors, and a mismatch at its end discards what was built from it.
//! 4. **Content**: every vector of the generation whose id storage holds equals storage's
//!    vector bit for bit (all of them, not a sample: they are in memory already). A generation
//!    of another history (a restored older database file assigns the same ids to other
//!    vectors) or with tampered vectors fails here.
//! 5. **Links**: a sample of up to 64 live vectors is walked to from the entry point; the share
//!    that finds itself (or an equally near vector) must be at least what the same sample found
//!    when the generation was saved (recorded in the manifest; 0.9 where none is) less 0.15. A
//!    graph whose links were damaged or swapped for another graph's (with recomputed checksums)
//!    fails here: measured 4 of 64 for another database's links over this one's vectors, against
//!    64 of 64 for the real graph (m 16) and 57 of 64 for a real graph of m 4 (which an absolute
//!    floor would have rebuilt on every open).
//!
//! Anything else is reported as [`LoadOutcome::Rebuild`] with the reason: the index is rebuilt
//! from storage, never a failed open and never a wrong answer. Nothing outside the directory is
//! read: file names are fixed, and symbolic links are refused.
//!
//! The files are hnsw_rs 0.3 dumps (`DumpMode::Full`): hnsw_rs's `HnswIo` loads a generation
//! with [`crate::GraphDistance`], and generations hnsw_rs wrote for earlier AkiDB versions
//! (the same format version) load here.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{FlatIndex, HnswIndex, HnswParams, Metric, VectorSearch};

/// Format version of index generations (3: the manifest names the database; 2: inner-product
/// graphs store order-preserving distances, see `hnsw.rs`). Older generations are rebuilt from
/// storage on open.
pub const INDEX_FORMAT_VERSION: u32 = 3;
/// Live vectors walked to when checking a loaded graph's links.
const LINK_SAMPLE: usize = 64;
/// Share of the sample assumed found at save where a manifest records none.
const LINK_SAMPLE_ASSUMED: f64 = 0.9;
/// How far below the share found at save the share found at load may fall.
const LINK_SAMPLE_SLACK: f64 = 0.15;
/// Basename of the dump files in a generation (what hnsw_rs's `HnswIo::new` takes).
pub const BASENAME: &str = "akidb";
const FILES: [&str; 2] = ["akidb.hnsw.graph", "akidb.hnsw.data"];

/// Errors while saving a generation (loading never errors: it falls back to a rebuild).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// File system failure (disk full, permissions, ...).
    #[error("writing index generation in {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What an index generation must match to be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexIdentity {
    /// The database's random identity (storage's `database_id`): a generation is used only by
    /// the database it was built from.
    pub database_id: [u8; 16],
    /// The owning collection's internal id (never reused within a database).
    pub collection_id: u64,
    /// Vector dimension.
    pub dimension: usize,
    /// Metric.
    pub metric: Metric,
    /// HNSW parameters.
    pub params: HnswParams,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    identity: IndexIdentity,
    covered_seq: u64,
    nodes: usize,
    files: Vec<FileEntry>,
    /// Share of the link sample (step 5 of the module docs) that found itself when saved.
    #[serde(default)]
    link_sample: Option<f64>,
    /// The parameters the graph's codes were made with (`codes.rs`); absent: half floats
    /// (generations from before quantization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantizer: Option<crate::codes::Fitted>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct FileEntry {
    name: String,
    len: u64,
    crc32: u32,
}

/// Result of [`load`].
pub enum LoadOutcome {
    /// A valid generation, brought up to date with the live vectors.
    Loaded {
        /// The index (boxed: it is large beside the other variant).
        index: Box<HnswIndex>,
        /// Sequence number the generation covered.
        covered_seq: u64,
        /// Live vectors inserted because they were newer than the generation.
        replayed: usize,
        /// Graph nodes tombstoned because storage no longer holds them.
        tombstoned: usize,
    },
    /// No usable generation; the caller rebuilds. The reason is for the log.
    Rebuild {
        /// Why.
        reason: String,
        /// The live vectors, handed back.
        flat: FlatIndex,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io { path: path.to_path_buf(), source }
}

fn crc_of(path: &Path) -> std::io::Result<(u64, u32)> {
    let mut f = fs::File::open(path)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((len, h.finalize()));
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The largest manifest read: 1 MiB, plus room for a quantizer's two floats per dimension as
/// JSON (at most ~30 bytes each) at collections' largest dimension, 65,536.
const MANIFEST_MOST: u64 = (1 << 20) + 64 * 65_536;

fn generation_name(seq: u64) -> String {
    format!("gen-{seq:020}")
}

/// Writes a generation of `index` covering storage sequence numbers up to `covered_seq`, then
/// removes older generations. Crash-safe: see the module docs.
pub fn save(
    index: &HnswIndex,
    dir: &Path,
    identity: &IndexIdentity,
    covered_seq: u64,
) -> Result<PathBuf, PersistError> {
    // A symbolic link planted in place of the index folders would send the files elsewhere:
    // replace the link (never what it points to) by a real folder.
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        if is_symlink(d) {
            fs::remove_file(d).map_err(io(d))?;
        }
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let Some(graph) = index.graph().filter(|g| g.nodes() > 0) else {
        // Nothing to save: drop stale generations so an empty graph is rebuilt (instantly).
        for (_, old) in generations(dir) {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        return Ok(dir.to_path_buf());
    };
    let tmp = dir.join(format!("tmp-{}-{covered_seq}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let paths = FILES.map(|name| tmp.join(name));
        let create = |p: &Path| fs::File::create(p).map(BufWriter::new).map_err(io(p));
        let (mut g, mut d) = (create(&paths[0])?, create(&paths[1])?);
        // A vector the store on disk cannot read is written as the graph holds it; the next
        // load then finds it differing from storage's and rebuilds.
        let exact = |id: u64| index.flat().vector(id).ok().flatten().map(|v| v.into_owned());
        crate::dump::write(graph, &mut g, &mut d, &exact).map_err(io(&tmp))?;
        for (w, p) in [(g, &paths[0]), (d, &paths[1])] {
            w.into_inner().map_err(|e| e.into_error()).map_err(io(p))?;
        }
        let mut files = Vec::new();
        for name in FILES {
            let p = tmp.join(name);
            fs::File::open(&p).and_then(|f| f.sync_all()).map_err(io(&p))?;
            let (len, crc32) = crc_of(&p).map_err(io(&p))?;
            files.push(FileEntry { name: name.into(), len, crc32 });
        }
        let (found, tried) = check_links(graph, index.flat(), link_ef(identity));
        let manifest = Manifest {
            format_version: INDEX_FORMAT_VERSION,
            identity: identity.clone(),
            covered_seq,
            nodes: graph.id_count(),
            files,
            link_sample: (tried > 0).then(|| found as f64 / tried as f64),
            quantizer: match graph.fitted() {
                crate::codes::Fitted::F16 => None,
                fitted => Some(fitted.clone()),
            },
        };
        let mpath = tmp.join("MANIFEST.json");
        let mut f = fs::File::create(&mpath).map_err(io(&mpath))?;
        f.write_all(&serde_json::to_vec_pretty(&manifest).unwrap_or_default())
            .map_err(io(&mpath))?;
        f.sync_all().map_err(io(&mpath))?;
        sync_dir(&tmp).map_err(io(&tmp))?;
        let final_path = dir.join(generation_name(covered_seq));
        if final_path.exists() {
            fs::remove_dir_all(&final_path).map_err(io(&final_path))?;
        }
        fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
        sync_dir(dir).map_err(io(dir))?;
        Ok(final_path)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
        return result;
    }
    // Older generations and leftovers of interrupted saves.
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let keep =
                result.as_ref().is_ok_and(|p| p.file_name() == Some(e.file_name().as_os_str()));
            if !keep && (name.starts_with("gen-") || name.starts_with("tmp-")) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    result
}

/// Copies the newest generation in `from` that covers no more than `max_covered_seq` into `to`
/// (a new folder) for a backup of the database: same files, the manifest's database identity
/// set to `database_id` (the backup's own). The copy is written under a temporary name and
/// renamed when synced. Returns whether a generation was copied. Nothing here is trusted later:
/// the backup's open checks the copy like any generation (sizes, checksums, every vector
/// against storage, links).
pub fn copy_for_backup(
    from: &Path,
    to: &Path,
    database_id: [u8; 16],
    max_covered_seq: u64,
) -> Result<bool, PersistError> {
    let Some((seq, src)) = generations(from).into_iter().find(|(seq, _)| *seq <= max_covered_seq)
    else {
        return Ok(false);
    };
    if is_symlink(&src) {
        return Ok(false);
    }
    let mpath = src.join("MANIFEST.json");
    let bytes = fs::read(&mpath).map_err(io(&mpath))?;
    let bad = |e: serde_json::Error| io(&mpath)(std::io::Error::other(e));
    let mut manifest: Manifest = serde_json::from_slice(&bytes).map_err(bad)?;
    manifest.identity.database_id = database_id;
    fs::create_dir_all(to).map_err(io(to))?;
    let tmp = to.join(format!("tmp-{}-{seq}", std::process::id()));
    fs::create_dir(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        for name in FILES {
            let (s, d) = (src.join(name), tmp.join(name));
            fs::copy(&s, &d).map_err(io(&s))?;
            fs::File::open(&d).and_then(|f| f.sync_all()).map_err(io(&d))?;
        }
        let out = tmp.join("MANIFEST.json");
        let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        fs::write(&out, text).map_err(io(&out))?;
        fs::File::open(&out).and_then(|f| f.sync_all()).map_err(io(&out))?;
        sync_dir(&tmp).map_err(io(&tmp))?;
        let final_path = to.join(generation_name(seq));
        fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
        sync_dir(to).map_err(io(to))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result.map(|()| true)
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Candidate generations, newest first.
fn generations(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name.strip_prefix("gen-").and_then(|s| s.parse::<u64>().ok()) {
            out.push((seq, e.path()));
        }
    }
    out.sort_by_key(|g| std::cmp::Reverse(g.0));
    out
}

/// Largest graph file a generation of `nodes` nodes can need: its header, per point the fixed
/// fields and 16 list lengths, and links far beyond what `m` keeps (2m at layer 0, m above,
/// about 1 in m nodes above layer 0), at 17 bytes each.
fn graph_file_bound(nodes: u64, m: u64, dimension: u64) -> u64 {
    let per_point = 17 + 16 * 8 + 4 * m.max(2) * 17;
    4096 + dimension + nodes.saturating_mul(per_point) + 64 * 1024 * 17
}

/// Checks a generation (steps 1 to 4 of the module docs) and reads its graph.
fn read_generation(
    path: &Path,
    identity: &IndexIdentity,
    live: &FlatIndex,
    last_seq: u64,
) -> Result<(Manifest, crate::graph::Graph), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a plain directory (symlinks are refused)".into());
    }
    let mpath = path.join("MANIFEST.json");
    let mmeta = fs::symlink_metadata(&mpath).map_err(|e| format!("manifest: {e}"))?;
    if !mmeta.is_file() || mmeta.len() > MANIFEST_MOST {
        return Err("manifest is not a small plain file".into());
    }
    let manifest: Manifest = serde_json::from_slice(&fs::read(&mpath).map_err(|e| e.to_string())?)
        .map_err(|e| format!("manifest: {e}"))?;
    if manifest.format_version != INDEX_FORMAT_VERSION {
        return Err(format!("format version {}", manifest.format_version));
    }
    if manifest.identity.database_id != identity.database_id {
        return Err("built from another database (or an earlier file at this path)".into());
    }
    if &manifest.identity != identity {
        return Err(format!("built for {:?}, expected {:?}", manifest.identity, identity));
    }
    if manifest.covered_seq > last_seq {
        return Err(format!(
            "covers sequence {} but storage ends at {last_seq}",
            manifest.covered_seq
        ));
    }
    let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    if names != FILES {
        return Err(format!("unexpected files {names:?}"));
    }
    // Sizes before reading: what the live vectors justify, no more.
    let nodes = manifest.nodes as u64;
    let most_nodes = 2 * live.len() as u64 + 1024;
    if nodes > manifest.covered_seq || nodes > most_nodes {
        return Err(format!(
            "claims {nodes} nodes: more than the {} sequence numbers covered or {most_nodes} \
             (twice the {} live vectors + 1,024)",
            manifest.covered_seq,
            live.len()
        ));
    }
    let dim = identity.dimension as u64;
    let data_len = 12 + nodes * (20 + 4 * dim);
    if manifest.files[1].len != data_len {
        return Err(format!(
            "data file of {} bytes, {data_len} expected for {nodes} nodes",
            manifest.files[1].len
        ));
    }
    let graph_most = graph_file_bound(nodes, identity.params.m as u64, dim);
    if manifest.files[0].len > graph_most {
        return Err(format!(
            "graph file of {} bytes, more than {graph_most} for {nodes} nodes",
            manifest.files[0].len
        ));
    }
    // Each file is read once. The graph file whole: its size and checksum, then its structure,
    // from the same bytes. The data file (the vectors) as a stream that the parser reads
    // record by record while its checksum is computed; a mismatch found at its end discards
    // the graph built from it, as any other failed check does.
    let mismatch = |name: &str| format!("{name}: size or checksum mismatch (truncated or damaged)");
    let open = |f: &FileEntry| -> Result<fs::File, String> {
        let p = path.join(&f.name);
        let m = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", f.name))?;
        if !m.is_file() {
            return Err(format!("{} is not a plain file", f.name));
        }
        if m.len() != f.len {
            return Err(mismatch(&f.name));
        }
        fs::File::open(&p).map_err(|e| format!("{}: {e}", f.name))
    };
    let (gf, df) = (&manifest.files[0], &manifest.files[1]);
    let graph_bytes = read_at_most(open(gf)?, gf.len).map_err(|e| format!("{}: {e}", gf.name))?;
    if graph_bytes.len() as u64 != gf.len || crc32fast::hash(&graph_bytes) != gf.crc32 {
        return Err(mismatch(&gf.name));
    }
    let mut data = Checked {
        inner: io::BufReader::with_capacity(1 << 20, open(df)?.take(df.len + 1)),
        crc: crc32fast::Hasher::new(),
        read: 0,
    };
    let fitted = manifest.quantizer.clone().unwrap_or(crate::codes::Fitted::F16);
    fitted.check(identity.params.quantization, identity.dimension)?;
    let params = (crate::hnsw::clamp_m(identity.params.m), identity.params.ef_construction);
    let graph = crate::dump::read(
        &graph_bytes,
        &mut data,
        identity.dimension,
        identity.metric,
        params,
        manifest.nodes,
        manifest.covered_seq,
        fitted,
        &|id| live.vector(id).map_err(|e| e.to_string()),
    )
    .map_err(|e| format!("{}: {e}", df.name))?;
    if data.read != df.len || data.crc.finalize() != df.crc32 {
        return Err(mismatch(&df.name));
    }
    Ok((manifest, graph))
}

/// A reader that counts and checksums what passes through it.
struct Checked<R> {
    inner: R,
    crc: crc32fast::Hasher,
    read: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads a file, never more than `most` bytes (it may have grown since its size was checked).
fn read_at_most(file: fs::File, most: u64) -> std::io::Result<Vec<u8>> {
    // Room for the one byte past `most` that tells a grown file: without it, `read_to_end`
    // would reallocate (and copy) the whole buffer to look for more.
    let mut bytes = Vec::with_capacity(most as usize + 1);
    file.take(most + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The beam of the link sample's walks.
fn link_ef(identity: &IndexIdentity) -> usize {
    identity.params.ef_search.max(64)
}

/// Step 5 of the module docs: a sample of live vectors must each find itself (or a vector as
/// near) by a walk of the graph. Returns how many of how many did.
fn check_links(graph: &crate::graph::Graph, live: &FlatIndex, ef: usize) -> (usize, usize) {
    let ids: Vec<u64> = live.ids().iter().copied().filter(|id| graph.contains(*id)).collect();
    let step = (ids.len() / LINK_SAMPLE).max(1);
    let higher = live.metric().higher_is_better();
    let (mut found, mut tried) = (0, 0);
    for &id in ids.iter().step_by(step).take(LINK_SAMPLE) {
        let Ok(Some(q)) = live.vector(id) else { continue };
        let q = &*q;
        tried += 1;
        let crate::graph::Walk::Found(hits) = graph.search(q, ef, None, usize::MAX) else {
            continue;
        };
        let hit_ids: Vec<u64> = hits.iter().map(|c| c.id).filter(|h| live.contains(*h)).collect();
        let (Ok(own), Ok(best)) = (live.search_ids(q, 1, &[id]), live.search_ids(q, 1, &hit_ids))
        else {
            continue;
        };
        let (Some(own), Some(best)) = (own.first(), best.first()) else { continue };
        let tolerance = 1e-5 * own.score.abs().max(1.0);
        let as_near = if higher {
            best.score >= own.score - tolerance
        } else {
            best.score <= own.score + tolerance
        };
        found += usize::from(as_near);
    }
    (found, tried)
}

/// Loads the newest valid generation in `dir` and brings it up to date with `flat` (the live
/// vectors from storage, whose highest sequence number is `last_seq`).
pub fn load(dir: &Path, identity: &IndexIdentity, flat: FlatIndex, last_seq: u64) -> LoadOutcome {
    if [dir.parent(), Some(dir)].into_iter().flatten().any(is_symlink) {
        let reason = format!("{} or its parent is a symbolic link (refused)", dir.display());
        return LoadOutcome::Rebuild { reason, flat };
    }
    let mut reasons = Vec::new();
    for (_, path) in generations(dir) {
        let (manifest, graph) = match read_generation(&path, identity, &flat, last_seq) {
            Ok(m) => m,
            Err(r) => {
                reasons.push(format!("{}: {r}", path.display()));
                continue;
            }
        };
        let (found, tried) = check_links(&graph, &flat, link_ef(identity));
        let floor = manifest.link_sample.unwrap_or(LINK_SAMPLE_ASSUMED) - LINK_SAMPLE_SLACK;
        if tried > 0 && (found as f64) < floor * tried as f64 {
            reasons.push(format!(
                "{}: its links are damaged: {found} of {tried} sampled vectors found \
                 themselves, {:.2} when saved",
                path.display(),
                manifest.link_sample.unwrap_or(LINK_SAMPLE_ASSUMED)
            ));
            continue;
        }
        let (index, tombstoned, replayed) =
            match HnswIndex::from_parts(identity.params, flat, graph) {
                Ok(parts) => parts,
                Err((flat, e)) => {
                    let reason = format!("{}: {e}", path.display());
                    return LoadOutcome::Rebuild { reason, flat };
                }
            };
        return LoadOutcome::Loaded {
            replayed,
            tombstoned,
            covered_seq: manifest.covered_seq,
            index: Box::new(index),
        };
    }
    let reason = if reasons.is_empty() {
        "no index generation on disk".to_string()
    } else {
        reasons.join("; ")
    };
    LoadOutcome::Rebuild { reason, flat }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GraphDistance, HnswParams};
    use hnsw_rs::api::AnnT;
    use hnsw_rs::hnsw::Hnsw;
    use hnsw_rs::hnswio::HnswIo;

    const DIM: usize = 16;

    /// Clustered unit vectors (repeatable).
    fn vectors(n: usize) -> Vec<Vec<f32>> {
        let h = |i: u64| {
            ((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        (0..n as u64)
            .map(|i| {
                let c = i % 12;
                let mut v: Vec<f32> =
                    (0..DIM as u64).map(|d| 3.0 * h(c * 131 + d) + h(i * 977 + d)).collect();
                crate::normalize(&mut v);
                v
            })
            .collect()
    }

    fn flat(vs: &[Vec<f32>]) -> FlatIndex {
        let mut f = FlatIndex::new(DIM, Metric::Cosine);
        let items: Vec<(u64, &[f32])> =
            vs.iter().enumerate().map(|(i, v)| (i as u64 + 1, v.as_slice())).collect();
        crate::VectorInsert::insert(&mut f, &items).expect("insert");
        f
    }

    fn identity() -> IndexIdentity {
        IndexIdentity {
            database_id: [7; 16],
            collection_id: 1,
            dimension: DIM,
            metric: Metric::Cosine,
            params: HnswParams::new(8, 64),
        }
    }

    /// The graph walk's ids for `q`, re-scored exactly as the index does (the index itself
    /// answers a collection this small by an exact scan).
    fn walk(index: &HnswIndex, q: &[f32]) -> Vec<u64> {
        let crate::graph::Walk::Found(found) =
            index.graph().expect("graph").search(q, 64, None, usize::MAX)
        else {
            return Vec::new();
        };
        let ids: Vec<u64> = found.iter().map(|c| c.id).collect();
        index.flat().search_ids(q, 10, &ids).expect("re-score").iter().map(|n| n.id).collect()
    }

    /// Mean recall@10 of `ids_of(query)` against the exact top 10.
    fn recall(f: &FlatIndex, vs: &[Vec<f32>], ids_of: impl Fn(&[f32]) -> Vec<u64>) -> f64 {
        let mut found = 0;
        for q in vs.iter().step_by(37) {
            let exact: Vec<u64> =
                f.search(q, 10, None).expect("exact").iter().map(|n| n.id).collect();
            found += ids_of(q).iter().take(10).filter(|id| exact.contains(id)).count();
        }
        found as f64 / (10 * vs.iter().step_by(37).count()) as f64
    }

    #[test]
    fn generations_are_hnsw_rs_dumps_that_hnsw_rs_loads_and_searches() {
        let vs = vectors(3000);
        let index = HnswIndex::with_graph(flat(&vs), identity().params).expect("graph");
        let dir = tempfile::tempdir().expect("tempdir");
        let gen = save(&index, dir.path(), &identity(), 3000).expect("save");
        let io = HnswIo::new(&gen, BASENAME);
        let loaded: Hnsw<f32, GraphDistance> = io
            .load_hnsw_with_dist(GraphDistance::new(Metric::Cosine))
            .expect("hnsw_rs loads an AkiDB generation");
        assert_eq!(loaded.get_nb_point(), 3000);
        let r = recall(index.flat(), &vs, |q| {
            loaded.search(q, 10, 64).iter().map(|n| n.d_id as u64).collect()
        });
        let ours = recall(index.flat(), &vs, |q| walk(&index, q));
        assert!(
            r >= 0.95 && r >= ours - 0.02,
            "hnsw_rs's search over AkiDB's graph: recall@10 {r} (AkiDB's: {ours})"
        );
    }

    #[test]
    fn generations_written_by_hnsw_rs_for_earlier_versions_load() {
        // Until the graph was AkiDB's own, hnsw_rs built it and `file_dump` wrote it; such a
        // generation (same format version) must load, not rebuild.
        let vs = vectors(3000);
        let f = flat(&vs);
        let id = identity();
        let old: Hnsw<f32, GraphDistance> = Hnsw::new(
            id.params.m,
            3000,
            16,
            id.params.ef_construction,
            GraphDistance::new(Metric::Cosine),
        );
        // Inserted one by one: hnsw_rs's parallel insert makes another graph on every run (and,
        // under the thread contention of a full test run, now and then one where the walk
        // below finds ~5% fewer neighbours than hnsw_rs's own search); a serial build keeps
        // this check about loading the same every time.
        for (i, v) in vs.iter().enumerate() {
            old.insert_slice((v.as_slice(), i + 1));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let gen = dir.path().join(generation_name(3000));
        fs::create_dir_all(&gen).expect("mkdir");
        old.file_dump(&gen, BASENAME).expect("hnsw_rs dump");
        let files = FILES
            .iter()
            .map(|name| {
                let (len, crc32) = crc_of(&gen.join(name)).expect("crc");
                FileEntry { name: name.to_string(), len, crc32 }
            })
            .collect();
        let manifest = Manifest {
            format_version: INDEX_FORMAT_VERSION,
            identity: id.clone(),
            covered_seq: 3000,
            nodes: 3000,
            files,
            link_sample: None,
            quantizer: None,
        };
        fs::write(gen.join("MANIFEST.json"), serde_json::to_vec(&manifest).expect("json"))
            .expect("manifest");
        let LoadOutcome::Loaded { index, replayed, tombstoned, .. } =
            load(dir.path(), &id, f, 3000)
        else {
            panic!("an hnsw_rs-written generation must load");
        };
        assert_eq!((replayed, tombstoned), (0, 0));
        // The graph came across: walking it finds what hnsw_rs's own search of it finds.
        let r = recall(index.flat(), &vs, |q| walk(&index, q));
        let theirs = recall(index.flat(), &vs, |q| {
            old.search(q, 10, 64).iter().map(|n| n.d_id as u64).collect()
        });
        assert!(
            r >= 0.9 && r >= theirs - 0.02,
            "recall@10 walking the loaded graph {r}, hnsw_rs's search {theirs}"
        );
        // And what it saves again loads again, with the same answers.
        let again = save(&index, dir.path(), &id, 3000).expect("save");
        assert!(again.exists());
        let LoadOutcome::Loaded { index: second, .. } = load(dir.path(), &id, flat(&vs), 3000)
        else {
            panic!("reload")
        };
        for q in vs.iter().step_by(101) {
            assert_eq!(walk(&index, q), walk(&second, q));
        }
    }

    /// A generation's quantizer is part of what is checked: saved with the codes it made, it
    /// loads (the same walks); damaged, missing, or made for another quantization or
    /// dimension, the generation is rebuilt, never walked with the wrong parameters.
    #[test]
    fn quantizer_blocks_load_when_sound_and_are_refused_otherwise() {
        let vs = vectors(3000);
        let mut id = identity();
        id.params = id.params.with_quantization(crate::Quantization::Int8);
        let index = HnswIndex::with_graph(flat(&vs), id.params).expect("graph");
        let dir = tempfile::tempdir().expect("tempdir");
        let gen = save(&index, dir.path(), &id, 3000).expect("save");
        let LoadOutcome::Loaded { index: loaded, .. } = load(dir.path(), &id, flat(&vs), 3000)
        else {
            panic!("a sound int8 generation loads");
        };
        assert_eq!(loaded.graph().expect("graph").fitted(), index.graph().expect("g").fitted());
        for q in vs.iter().step_by(101) {
            assert_eq!(walk(&loaded, q), walk(&index, q), "the same codes, the same walks");
        }
        // Asked for as another quantization: foreign.
        let mut other = id.clone();
        other.params = other.params.with_quantization(crate::Quantization::Int4);
        assert!(matches!(load(dir.path(), &other, flat(&vs), 3000), LoadOutcome::Rebuild { .. }));
        let manifest_path = gen.join("MANIFEST.json");
        let original = fs::read(&manifest_path).expect("manifest");
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 4] = [
            ("a zero step", |m| m["quantizer"]["step"][3] = serde_json::json!(0.0)),
            ("a short origin", |m| {
                m["quantizer"]["lo"].as_array_mut().expect("lo").pop();
            }),
            ("another kind", |m| m["quantizer"] = serde_json::json!({"kind": "f16"})),
            ("no quantizer", |m| {
                m.as_object_mut().expect("object").remove("quantizer");
            }),
        ];
        for (what, edit) in edits {
            let mut m: serde_json::Value = serde_json::from_slice(&original).expect("json");
            edit(&mut m);
            fs::write(&manifest_path, serde_json::to_vec(&m).expect("json")).expect("write");
            match load(dir.path(), &id, flat(&vs), 3000) {
                LoadOutcome::Rebuild { reason, .. } => {
                    assert!(reason.contains("quantizer"), "{what}: {reason}")
                }
                LoadOutcome::Loaded { .. } => panic!("{what}: loaded"),
            }
        }
    }
}
