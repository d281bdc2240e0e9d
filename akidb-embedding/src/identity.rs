//! A model's identity is its content: a SHA-256 digest of the files that determine its vectors
//! and of the settings that shape its input and output.
//!
//! What goes in ([`model_digest`]), in a fixed text form, each file by its role rather than its
//! path (so a copy of the folder anywhere, or the same folder through a symbolic link or
//! `dir/1_Pooling/..`, is the same model, and a folder of the same name with other weights is not):
//!
//! - the SHA-256 of the ONNX graph and of its external weight files (files beside it whose name
//!   starts with the graph's file name, such as `model.onnx_data`);
//! - the SHA-256 of `tokenizer.json`;
//! - the settings in force, whichever file they came from: output dimension, `max_length`,
//!   pooling, normalisation, query and document prompts, end-of-sequence token, padding side.
//!
//! Not in it: the name (kept for messages), the execution provider, batching and threads.
//!
//! Hashing a multi-gigabyte model takes seconds, so each file's SHA-256 is cached in
//! `.akidb-digests.json` beside the graph, keyed by the file's size, modification and change
//! times, inode and device: a file replaced or rewritten in any way (its change time moves, and
//! no user can set it back) is hashed again. A folder that cannot be written is hashed on every
//! load (logged), never refused.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{OnnxConfig, PaddingSide};
use crate::error::EmbedError;

/// Name of the per-folder cache of file digests.
pub const DIGEST_CACHE: &str = ".akidb-digests.json";

#[derive(Serialize, Deserialize, Default)]
struct Cache {
    version: u32,
    files: BTreeMap<String, CachedFile>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct CachedFile {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
    sha256: String,
}

fn stamp(meta: &std::fs::Metadata, sha256: String) -> CachedFile {
    CachedFile {
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        ino: meta.ino(),
        dev: meta.dev(),
        sha256,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String, EmbedError> {
    let io = |source| EmbedError::Io { path: path.to_path_buf(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// The ONNX graph's external weight files: beside it, named after it (`model.onnx_data`,
/// `model.onnx.data`, ...), in name order.
pub(crate) fn external_data(model: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (model.parent(), model.file_name().and_then(|n| n.to_str()))
    else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| n.len() > name.len() && n.starts_with(name))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// SHA-256 of each file, from the cache beside the model where the file is unchanged.
fn file_digests(model: &Path, files: &[(String, PathBuf)]) -> Result<Vec<String>, EmbedError> {
    let cache_path = model.parent().unwrap_or(Path::new(".")).join(DIGEST_CACHE);
    let mut cache: Cache = std::fs::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|c: &Cache| c.version == 1)
        .unwrap_or_default();
    let mut changed = false;
    let mut out = Vec::with_capacity(files.len());
    for (_, path) in files {
        let meta = std::fs::metadata(path)
            .map_err(|source| EmbedError::Io { path: path.clone(), source })?;
        let key =
            path.canonicalize().unwrap_or_else(|_| path.clone()).to_string_lossy().into_owned();
        let cached = cache.files.get(&key).filter(|c| **c == stamp(&meta, c.sha256.clone()));
        let sha = match cached {
            Some(c) => c.sha256.clone(),
            None => {
                let t = std::time::Instant::now();
                let sha = sha256_file(path)?;
                log::info!(
                    "hashed {} ({} bytes) in {:?} for the model's identity",
                    path.display(),
                    meta.len(),
                    t.elapsed()
                );
                // Stamp with the metadata from before hashing: a change during hashing moves
                // the times, and the entry will not match next time.
                cache.files.insert(key, stamp(&meta, sha.clone()));
                changed = true;
                sha
            }
        };
        out.push(sha);
    }
    if changed {
        cache.version = 1;
        if let Err(e) = write_cache(&cache_path, &cache) {
            log::info!(
                "cannot cache model digests in {} (hashing again next load): {e}",
                cache_path.display()
            );
        }
    }
    Ok(out)
}

fn write_cache(path: &Path, cache: &Cache) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(cache).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The content digest of the model `config` describes (hex SHA-256; see the module docs).
pub fn model_digest(config: &OnnxConfig) -> Result<String, EmbedError> {
    let mut files = vec![("graph".to_string(), config.model_path.clone())];
    for (i, p) in external_data(&config.model_path).into_iter().enumerate() {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        files.push((format!("graph data {i} {name}"), p));
    }
    files.push(("tokenizer".to_string(), config.tokenizer_path.clone()));
    let digests = file_digests(&config.model_path, &files)?;
    let mut text = String::from("akidb-model-identity v1\n");
    for ((role, _), sha) in files.iter().zip(&digests) {
        text.push_str(&format!("file {role} {sha}\n"));
    }
    let json = |v: &Option<String>| serde_json::to_string(v).unwrap_or_default();
    text.push_str(&format!(
        "dimension {}\nmax_length {}\npooling {}\nnormalize {}\nquery_prompt {}\n\
         document_prompt {}\neos_token {}\npadding {}\n",
        config.dimension,
        config.max_length,
        config.pooling.as_str(),
        config.normalize,
        json(&config.query_prompt),
        json(&config.document_prompt),
        json(&config.eos_token),
        match config.padding {
            PaddingSide::Left => "left",
            PaddingSide::Right => "right",
        },
    ));
    Ok(hex(&Sha256::digest(text.as_bytes())))
}
