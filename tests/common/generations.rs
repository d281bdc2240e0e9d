//! Index generations on disk as an attacker or an accident would change them (shared by
//! `tests/index.rs` and `tests/crash_loop.rs`): the files keep passing every size and checksum
//! check, so only AkiDB's identity and content checks stand between them and a wrong answer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::json;

/// The one generation folder of a database's first collection (`index/c1`).
pub fn generation(db_path: &Path) -> PathBuf {
    find_generation(db_path).expect("a generation")
}

/// [`generation`], if there is one.
pub fn find_generation(db_path: &Path) -> Option<PathBuf> {
    std::fs::read_dir(db_path.join("index").join("c1"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gen-")))
}

/// Rewrites a generation's data file (`edit(id, vector)` for each record) and its manifest's
/// size and checksum, as someone who knows the format would: the files still pass every
/// integrity check.
pub fn rewrite_data(gen: &Path, edit: &dyn Fn(u64, &mut [f32])) {
    let f = gen.join("akidb.hnsw.data");
    let mut b = std::fs::read(&f).expect("read");
    let dim = u64::from_le_bytes(b[4..12].try_into().expect("8")) as usize;
    let mut at = 12;
    while at < b.len() {
        let id = u64::from_le_bytes(b[at + 4..at + 12].try_into().expect("8"));
        let body = &mut b[at + 20..at + 20 + 4 * dim];
        let mut v: Vec<f32> =
            body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect();
        edit(id, &mut v);
        for (c, x) in body.chunks_exact_mut(4).zip(&v) {
            c.copy_from_slice(&x.to_le_bytes());
        }
        at += 20 + 4 * dim;
    }
    std::fs::write(&f, &b).expect("write");
    fix_manifest(gen, |_| {});
}

/// Recomputes the manifest's sizes and checksums after `edit` changed it.
pub fn fix_manifest(gen: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mpath = gen.join("MANIFEST.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mpath).expect("read")).expect("json");
    edit(&mut m);
    for f in m["files"].as_array_mut().expect("files") {
        let bytes = std::fs::read(gen.join(f["name"].as_str().expect("name"))).expect("read");
        f["len"] = json!(bytes.len());
        f["crc32"] = json!(crc32fast::hash(&bytes));
    }
    std::fs::write(&mpath, m.to_string()).expect("write");
}

/// The vectors of a generation's data file, by id.
pub fn generation_vectors(gen: &Path) -> std::collections::HashMap<u64, Vec<f32>> {
    let out = std::cell::RefCell::new(std::collections::HashMap::new());
    let copy = tempfile::tempdir().expect("tempdir");
    for name in ["akidb.hnsw.graph", "akidb.hnsw.data", "MANIFEST.json"] {
        std::fs::copy(gen.join(name), copy.path().join(name)).expect("copy");
    }
    rewrite_data(copy.path(), &|id, v| {
        out.borrow_mut().insert(id, v.to_vec());
    });
    out.into_inner()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls").flatten() {
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}
