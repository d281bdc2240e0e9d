//! What AkiDB reads from an ONNX model file itself, before ONNX Runtime sees it: the operators of
//! its graph (so [`ModelInfo::precision`](akidb_embed_api::ModelInfo) says what the weights are,
//! and a TensorRT FP8 configuration can check for Q/DQ nodes) and where each initializer's bytes
//! are (so the fixed-shape session can share the dynamic session's weights, see `weights.rs`).
//!
//! A small protobuf reader over the file, not a full ONNX parser: it walks `ModelProto.graph`'s
//! nodes and initializers and skips everything else, seeking over tensor data instead of reading
//! it, so a 2 GB single-file model is scanned in the time of its node list. Every length is checked
//! against its enclosing message and the file, names are bounded, and anything malformed is
//! [`EmbedError::InvalidModelFile`], never a panic or an unbounded allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::EmbedError;

/// Longest string field read (names, operator types, external-data keys).
const MAX_STRING: u64 = 64 * 1024;
/// Most dimensions of one initializer.
const MAX_DIMS: usize = 16;

/// Where an initializer's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// `raw_data` inside the model file, at this offset.
    Inline { offset: u64, len: u64 },
    /// In an external data file (relative to the model's folder).
    External { file: PathBuf, offset: u64, len: u64 },
    /// Typed fields (`float_data` ...) or nothing: small constants, left to ONNX Runtime.
    Other,
}

/// One initializer of the graph.
#[derive(Debug, Clone)]
pub(crate) struct Initializer {
    pub(crate) name: String,
    pub(crate) dims: Vec<i64>,
    /// ONNX `TensorProto.DataType`.
    pub(crate) data_type: i32,
    pub(crate) data: Data,
}

impl Initializer {
    /// Bytes of its data, if held as raw bytes.
    pub(crate) fn byte_len(&self) -> u64 {
        match self.data {
            Data::Inline { len, .. } | Data::External { len, .. } => len,
            Data::Other => 0,
        }
    }
}

/// The top-level graph of a model: operator counts and initializers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// `(domain, op_type)` -> nodes (domain `""` for the default ONNX domain).
    pub(crate) ops: BTreeMap<(String, String), usize>,
    /// Attributes `bits` and `block_size` of the first `MatMulNBits` node.
    pub(crate) nbits: Option<(i64, i64)>,
    /// Initializers whose consumer repacks them at load (the quantized weights, scales and zero
    /// points of `MatMulNBits`): each session keeps its own packed copy, so sharing the
    /// original would only add one (measured on the H200, docs/gpu.md).
    pub(crate) repacked: std::collections::BTreeSet<String>,
    pub(crate) initializers: Vec<Initializer>,
}

impl Graph {
    /// Reads the graph of the model at `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, EmbedError> {
        let io = |source| EmbedError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut r = Reader { inner: BufReader::with_capacity(1 << 16, file), pos: 0, size };
        let dir = path.parent().unwrap_or(Path::new("."));
        let bad =
            |reason: String| EmbedError::InvalidModelFile { path: path.to_path_buf(), reason };
        let mut graph = Graph::default();
        let mut found = false;
        while r.pos < size {
            let (field, wire) = r.key().map_err(bad)?;
            if field == 7 && wire == 2 {
                let end = r.len_end(size).map_err(bad)?;
                read_graph(&mut r, end, dir, &mut graph).map_err(bad)?;
                found = true;
            } else {
                r.skip(wire, size).map_err(bad)?;
            }
        }
        if !found {
            return Err(bad("no graph in the model".into()));
        }
        Ok(graph)
    }

    /// Nodes of `op_type` in any domain.
    pub(crate) fn count(&self, op_type: &str) -> usize {
        self.ops.iter().filter(|((_, op), _)| op == op_type).map(|(_, n)| n).sum()
    }

    /// What the weights are, for [`akidb_embed_api::ModelInfo::precision`]: the quantized
    /// operator in the graph if any, else the element type holding most initializer bytes.
    pub(crate) fn precision(&self) -> String {
        if self.count("GemmFloat8") > 0 {
            return "fp8-e4m3 (GemmFloat8)".into();
        }
        if let Some((bits, block)) = self.nbits {
            return format!("int{bits} weights (MatMulNBits, block {block})");
        }
        if self.count("DequantizeLinear") > 0 {
            return "quantized (QuantizeLinear/DequantizeLinear)".into();
        }
        let mut bytes: BTreeMap<i32, u64> = BTreeMap::new();
        for i in &self.initializers {
            *bytes.entry(i.data_type).or_default() += i.byte_len();
        }
        let main = bytes.iter().max_by_key(|(_, b)| **b).map(|(t, _)| *t);
        match main {
            Some(1) => "fp32".into(),
            Some(10) => "fp16".into(),
            Some(16) => "bf16".into(),
            Some(t) => format!("ONNX data type {t}"),
            None => "unknown".into(),
        }
    }
}

fn read_graph(r: &mut Reader, end: u64, dir: &Path, g: &mut Graph) -> Result<(), String> {
    while r.pos < end {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => {
                let e = r.len_end(end)?;
                read_node(r, e, g)?;
            }
            (5, 2) => {
                let e = r.len_end(end)?;
                let init = read_tensor(r, e, dir)?;
                g.initializers.push(init);
            }
            _ => r.skip(wire, end)?,
        }
    }
    r.at(end)
}

fn read_node(r: &mut Reader, end: u64, g: &mut Graph) -> Result<(), String> {
    let (mut op, mut domain) = (String::new(), String::new());
    let (mut bits, mut block) = (None, None);
    let mut inputs = Vec::new();
    while r.pos < end {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => inputs.push(r.string(end)?),
            (4, 2) => op = r.string(end)?,
            (7, 2) => domain = r.string(end)?,
            (5, 2) => {
                let e = r.len_end(end)?;
                if let Some((name, value)) = read_int_attribute(r, e)? {
                    match name.as_str() {
                        "bits" => bits = Some(value),
                        "block_size" => block = Some(value),
                        _ => {}
                    }
                }
            }
            _ => r.skip(wire, end)?,
        }
    }
    r.at(end)?;
    if domain == "ai.onnx" {
        domain.clear();
    }
    if op == "MatMulNBits" {
        if g.nbits.is_none() {
            g.nbits = Some((bits.unwrap_or(4), block.unwrap_or(0)));
        }
        g.repacked.extend(inputs.into_iter().skip(1));
    }
    *g.ops.entry((domain, op)).or_default() += 1;
    Ok(())
}

/// An attribute's name and integer value (`AttributeProto.i`), if it has one.
fn read_int_attribute(r: &mut Reader, end: u64) -> Result<Option<(String, i64)>, String> {
    let (mut name, mut value) = (String::new(), None);
    while r.pos < end {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => name = r.string(end)?,
            (3, 0) => value = Some(r.varint()? as i64),
            _ => r.skip(wire, end)?,
        }
    }
    r.at(end)?;
    Ok(value.map(|v| (name, v)))
}

fn read_tensor(r: &mut Reader, end: u64, dir: &Path) -> Result<Initializer, String> {
    let mut t =
        Initializer { name: String::new(), dims: Vec::new(), data_type: 0, data: Data::Other };
    let mut external: BTreeMap<String, String> = BTreeMap::new();
    let mut location_external = false;
    while r.pos < end {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 0) => t.dims.push(r.varint()? as i64),
            (1, 2) => {
                let e = r.len_end(end)?;
                while r.pos < e {
                    t.dims.push(r.varint()? as i64);
                }
                r.at(e)?;
            }
            (2, 0) => t.data_type = r.varint()? as i32,
            (8, 2) => t.name = r.string(end)?,
            (9, 2) => {
                let e = r.len_end(end)?;
                t.data = Data::Inline { offset: r.pos, len: e - r.pos };
                r.seek(e)?;
            }
            (13, 2) => {
                let e = r.len_end(end)?;
                let (mut k, mut v) = (String::new(), String::new());
                while r.pos < e {
                    let (f, w) = r.key()?;
                    match (f, w) {
                        (1, 2) => k = r.string(e)?,
                        (2, 2) => v = r.string(e)?,
                        _ => r.skip(w, e)?,
                    }
                }
                r.at(e)?;
                external.insert(k, v);
            }
            (14, 0) => location_external = r.varint()? == 1,
            _ => r.skip(wire, end)?,
        }
        if t.dims.len() > MAX_DIMS {
            return Err(format!("an initializer with over {MAX_DIMS} dimensions"));
        }
    }
    r.at(end)?;
    if location_external {
        let file = external
            .get("location")
            .ok_or_else(|| format!("initializer {:?}: external data without a location", t.name))?;
        let rel = Path::new(file);
        if rel.is_absolute() || rel.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(format!("initializer {:?}: external data outside the folder", t.name));
        }
        let num = |key: &str| -> Result<Option<u64>, String> {
            external
                .get(key)
                .map(|s| s.parse::<u64>().map_err(|_| format!("external data {key} {s:?}")))
                .transpose()
        };
        let offset = num("offset")?.unwrap_or(0);
        let len = num("length")?
            .ok_or_else(|| format!("initializer {:?}: external data without a length", t.name))?;
        t.data = Data::External { file: dir.join(rel), offset, len };
    }
    Ok(t)
}

/// Position-tracking protobuf reader.
struct Reader {
    inner: BufReader<File>,
    pos: u64,
    size: u64,
}

impl Reader {
    fn byte(&mut self) -> Result<u8, String> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b).map_err(|e| format!("at byte {}: {e}", self.pos))?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint over 10 bytes at byte {}", self.pos))
    }

    fn key(&mut self) -> Result<(u64, u8), String> {
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        if !matches!(wire, 0 | 1 | 2 | 5) {
            return Err(format!("wire type {wire} at byte {}", self.pos));
        }
        Ok((k >> 3, wire))
    }

    /// Reads a length and returns where the field ends, which must be within `limit`.
    fn len_end(&mut self, limit: u64) -> Result<u64, String> {
        let len = self.varint()?;
        let end = self.pos.checked_add(len).filter(|e| *e <= limit.min(self.size));
        end.ok_or_else(|| {
            format!("a field of {len} bytes at byte {} overruns its message", self.pos)
        })
    }

    fn string(&mut self, limit: u64) -> Result<String, String> {
        let end = self.len_end(limit)?;
        let len = end - self.pos;
        if len > MAX_STRING {
            return Err(format!("a string of {len} bytes at byte {}", self.pos));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf).map_err(|e| e.to_string())?;
        self.pos = end;
        String::from_utf8(buf).map_err(|_| format!("a string that is not UTF-8 before byte {end}"))
    }

    fn seek(&mut self, to: u64) -> Result<(), String> {
        let delta = i64::try_from(to - self.pos).map_err(|_| "seek too far".to_string())?;
        self.inner.seek_relative(delta).map_err(|e| e.to_string())?;
        self.pos = to;
        Ok(())
    }

    fn skip(&mut self, wire: u8, limit: u64) -> Result<(), String> {
        let to = match wire {
            0 => return self.varint().map(drop),
            1 => self.pos + 8,
            5 => self.pos + 4,
            _ => self.len_end(limit)?,
        };
        if to > limit.min(self.size) {
            return Err(format!("a field at byte {} overruns its message", self.pos));
        }
        self.seek(to)
    }

    fn at(&self, end: u64) -> Result<(), String> {
        if self.pos == end {
            Ok(())
        } else {
            Err(format!("a message ends at byte {} instead of {end}", self.pos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
            .join("model.onnx")
    }

    #[test]
    fn reads_the_fixtures_graphs() {
        let g = Graph::read(&fixture("qwen3-tiny-fused")).expect("fused");
        assert_eq!(g.count("GroupQueryAttention"), 2, "{:?}", g.ops);
        // Per layer: q/k/v as one MatMul (then a Split), o, gate, up, down.
        assert_eq!(g.count("MatMul"), 10);
        assert_eq!(g.count("Split"), 2);
        assert_eq!(g.precision(), "fp32");
        let embed = g.initializers.iter().find(|i| i.dims == [600, 64]).expect("embedding");
        assert_eq!(embed.data_type, 1);
        assert_eq!(embed.byte_len(), 600 * 64 * 4);
        let g = Graph::read(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2/model.onnx"),
        )
        .expect("minilm (scripts/setup.sh)");
        assert!(g.count("MatMul") > 0);
        assert_eq!(g.precision(), "fp32");
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error_or_a_graph_never_a_panic() {
        let bytes = std::fs::read(fixture("qwen3-tiny-fused")).expect("read");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("model.onnx");
        let full = Graph::read(&fixture("qwen3-tiny-fused")).expect("fused");
        let step = (bytes.len() / 300).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            if let Ok(g) = Graph::read(&path) {
                // Only a cut after the whole graph field (before the opset list) reads.
                assert_eq!(g.ops, full.ops, "cut at byte {cut}");
                assert_eq!(g.initializers.len(), full.initializers.len(), "cut at byte {cut}");
            }
        }
        for at in (0..bytes.len()).step_by(step) {
            let mut b = bytes.clone();
            b[at] ^= 0xff;
            std::fs::write(&path, &b).expect("write");
            if let Err(e) = Graph::read(&path) {
                assert!(matches!(e, EmbedError::InvalidModelFile { .. }), "{e}");
            }
        }
    }
}
