//! hnsw_rs 0.3 dump files: AkiDB's graph written in that format, and a strict reader.
//!
//! Index generations are hnsw_rs dumps (`DumpMode::Full`), so hnsw_rs's own loader reads them
//! (`HnswIo::load_hnsw_with_dist` with [`crate::GraphDistance`]; tested), and generations that
//! hnsw_rs wrote for earlier AkiDB versions load here. The reader trusts nothing: every
//! length, count, magic number, name and cross reference is checked against what the
//! manifest and the collection say, before anything is allocated from it (hnsw_rs's own
//! loader panics, aborts or exits the process on malformed files; fuzzing found all three).
//!
//! Format (little-endian, explicitly: hnsw_rs writes native endianness, which is little-endian
//! on every platform AkiDB runs on, x86-64 and aarch64, so the files stay hnsw_rs's):
//! graph: description (magic 4, mode 1, max_nb_connection 1, level_scale 8, nb_layer 1, ef 8,
//! nb_point 8, dimension 8, distance name (len 8 + bytes), type name (len 8 + bytes)), then the
//! number of layers (1) and per layer: magic 4, count 8, points (magic 4, origin id 8, layer 1,
//! rank 4, then for each of `nb_layer` levels: neighbour count 8 and per neighbour id 8, layer 1,
//! rank 4, distance 4), then the entry point (origin id 8, layer 1, rank 4).
//! data: magic 4, dimension 8, then per point in graph order: magic 4, origin id 8, length 8,
//! `length` bytes of f32.
//!
//! A graph node with several ids (identical vectors) is written as one point per id, all with
//! the node's links; links point at the node's first id. Reading merges them back.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::graph::{Graph, MAX_LEVEL};
use crate::{GraphDistance, Metric};

/// The distance type name recorded in a dump and checked by hnsw_rs's loader against
/// `std::any::type_name` of the distance it is given. A literal, so that the format does not
/// depend on where the type lives (`type_name` is not stable across moves or compilers); the test
/// `distance_name_is_the_type_name_hnsw_rs_checks` says when a move would break hnsw_rs's load.
pub(crate) const GRAPH_DISTANCE_NAME: &str = "akidb_index::hnsw::GraphDistance";
/// The element type name recorded in a dump (`type_name::<f32>()`).
const ELEMENT_NAME: &str = "f32";
const MAGICDESCR_4: u32 = 0x002a_6779;
const MAGICLAYER: u32 = 0x000a_676f;
const MAGICPOINT: u32 = 0x000a_678f;
const MAGICDATAP: u32 = 0xa67f_0000;
/// hnsw_rs's `NB_LAYER_MAX`: lists per point and layers per dump.
const NB_LAYER_MAX: u8 = 16;
/// Far above any neighbour list hnsw_rs keeps (2 x m at layer 0, m at most 255).
const MAX_NEIGHBOURS: usize = 1024;

/// Bytes of one data record of dimension `dim`: magic, id, length, values.
fn record_len(dim: usize) -> usize {
    4 + 8 + 8 + 4 * dim
}

/// Writes `graph` as an hnsw_rs dump. `exact(id)` gives an id's exact vector where storage
/// still holds it (the data file then holds it bit for bit); tombstones are written from the
/// graph's half floats.
pub(crate) fn write(
    graph: &Graph,
    graph_out: &mut impl Write,
    data_out: &mut impl Write,
    exact: &dyn Fn(u64) -> Option<Vec<f32>>,
) -> io::Result<()> {
    let dim = graph.dimension();
    let nodes = graph.nodes() as u32;
    // Rank of each node's first point within its layer; a node's further ids follow it.
    let mut counts = [0usize; MAX_LEVEL + 1];
    let mut rank = Vec::with_capacity(nodes as usize);
    for node in 0..nodes {
        let l = graph.level(node);
        rank.push(counts[l] as i32);
        counts[l] += graph.node_ids(node).count();
    }
    let distance = GraphDistance::new(graph.metric());
    let w = graph_out;
    w.write_all(&MAGICDESCR_4.to_le_bytes())?;
    w.write_all(&[1u8, graph.m() as u8])?;
    w.write_all(&(1.0 / (graph.m() as f64).ln()).to_le_bytes())?;
    w.write_all(&[NB_LAYER_MAX])?;
    for v in [graph.ef_construction(), graph.id_count(), dim] {
        w.write_all(&(v as u64).to_le_bytes())?;
    }
    for name in [GRAPH_DISTANCE_NAME, ELEMENT_NAME] {
        w.write_all(&(name.len() as u64).to_le_bytes())?;
        w.write_all(name.as_bytes())?;
    }
    data_out.write_all(&MAGICDATAP.to_le_bytes())?;
    data_out.write_all(&(dim as u64).to_le_bytes())?;
    w.write_all(&[NB_LAYER_MAX])?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for layer in 0..usize::from(NB_LAYER_MAX) {
        w.write_all(&MAGICLAYER.to_le_bytes())?;
        w.write_all(&(counts.get(layer).copied().unwrap_or(0) as u64).to_le_bytes())?;
        for node in (0..nodes).filter(|n| graph.level(*n) == layer) {
            graph.decode(node, &mut a);
            // The node's lists, each as (id, layer, rank, distance).
            let mut lists = Vec::with_capacity(layer + 1);
            for l in 0..=layer {
                let mut list = Vec::new();
                for nb in graph.links(node, l) {
                    graph.decode(nb, &mut b);
                    let first = graph.node_ids(nb).next().unwrap_or_default();
                    list.push((
                        first,
                        graph.level(nb) as u8,
                        rank[nb as usize],
                        distance.eval(&a, &b),
                    ));
                }
                lists.push(list);
            }
            for (k, id) in graph.node_ids(node).enumerate() {
                w.write_all(&MAGICPOINT.to_le_bytes())?;
                w.write_all(&id.to_le_bytes())?;
                w.write_all(&[layer as u8])?;
                w.write_all(&(rank[node as usize] + k as i32).to_le_bytes())?;
                for l in 0..usize::from(NB_LAYER_MAX) {
                    let list = lists.get(l).map(Vec::as_slice).unwrap_or_default();
                    w.write_all(&(list.len() as u64).to_le_bytes())?;
                    for (nid, nl, nr, nd) in list {
                        w.write_all(&nid.to_le_bytes())?;
                        w.write_all(&[*nl])?;
                        w.write_all(&nr.to_le_bytes())?;
                        w.write_all(&nd.to_le_bytes())?;
                    }
                }
                let v = exact(id).unwrap_or_else(|| a.clone());
                data_out.write_all(&MAGICDATAP.to_le_bytes())?;
                data_out.write_all(&id.to_le_bytes())?;
                data_out.write_all(&((4 * dim) as u64).to_le_bytes())?;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                data_out.write_all(&bytes)?;
            }
        }
    }
    let (entry, top) = graph.entry().unwrap_or((0, 0));
    let entry_id = graph.node_ids(entry).next().unwrap_or_default();
    w.write_all(&entry_id.to_le_bytes())?;
    w.write_all(&[top as u8])?;
    w.write_all(&rank[entry as usize].to_le_bytes())?;
    Ok(())
}

/// Fills `buf` from the data file, or says why not.
fn fill(data: &mut dyn Read, buf: &mut [u8]) -> Result<(), String> {
    data.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "unexpected end of the data file".to_string(),
        _ => format!("data file: {e}"),
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or("unexpected end of file")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|_| "length out of range".to_string())
    }
    fn magic(&mut self, want: u32, what: &str) -> Result<(), String> {
        if self.u32()? != want {
            return Err(format!("bad magic number for {what}"));
        }
        Ok(())
    }
    fn name(&mut self, want: &str) -> Result<(), String> {
        let len = self.usize()?;
        if len != want.len() || self.take(len)? != want.as_bytes() {
            return Err(format!("written for another type than {want}"));
        }
        Ok(())
    }
    fn done(&self, what: &str) -> Result<(), String> {
        if self.at != self.bytes.len() {
            return Err(format!(
                "{} trailing bytes in the {what} file",
                self.bytes.len() - self.at
            ));
        }
        Ok(())
    }
}

/// One neighbour reference of a point: the point it names (index in file order) and the
/// distance recorded with it.
struct Link {
    layer: u8,
    to: u32,
    dist: f32,
}

/// Reads a dump of `points` points of `dimension` f32 with origin ids at most `max_id` into a
/// graph of `metric` with parameters `m`, `ef_construction` (those of the collection: the
/// dump's own are only checked for sanity). Any deviation from the format is an error, and so
/// is a vector that differs from `expected(id)` where that gives one (storage's vector of the
/// id, prepared for the metric: the writer wrote it bit for bit). The graph file comes whole;
/// the data file (the vectors: most of a generation's bytes) is read as a stream, one record
/// at a time, so that loading never holds a second copy of the vectors.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read<'v>(
    graph: &[u8],
    data: &mut dyn Read,
    dimension: usize,
    metric: Metric,
    (m, ef_construction): (usize, usize),
    points: usize,
    max_id: u64,
    fitted: crate::codes::Fitted,
    expected: &dyn Fn(u64) -> Result<Option<std::borrow::Cow<'v, [f32]>>, String>,
) -> Result<Graph, String> {
    let mut g = Cursor { bytes: graph, at: 0 };
    g.magic(MAGICDESCR_4, "the description")?;
    if g.u8()? != 1 {
        return Err("not a full dump".into());
    }
    let max_nb_connection = g.u8()?;
    let level_scale = f64::from_le_bytes(g.array()?);
    if max_nb_connection == 0 || !level_scale.is_finite() {
        return Err("bad graph parameters".into());
    }
    let levels = g.u8()?;
    if levels != NB_LAYER_MAX {
        return Err("bad number of levels".into());
    }
    let _ef = g.usize()?;
    if g.usize()? != points {
        return Err("point count differs from the manifest".into());
    }
    if g.usize()? != dimension {
        return Err("dimension differs from the collection's".into());
    }
    // The names hnsw_rs records and checks on load.
    g.name(GRAPH_DISTANCE_NAME)?;
    g.name(ELEMENT_NAME)?;
    let layers = g.u8()?;
    if layers == 0 || layers > NB_LAYER_MAX {
        return Err("bad number of layers".into());
    }
    // Points in file order: id, layer, their links as (layer, rank) until resolved.
    let mut ids = Vec::with_capacity(points.min(1 << 24));
    let mut layer_of = Vec::with_capacity(points.min(1 << 24));
    let mut starts = vec![0usize];
    let mut raw: Vec<(u8, u8, i32, f32)> = Vec::new();
    let mut seen = HashSet::with_capacity(points.min(1 << 24));
    let mut first_of_layer = Vec::with_capacity(usize::from(layers));
    for layer in 0..layers {
        g.magic(MAGICLAYER, "a layer")?;
        let count = g.usize()?;
        if count > points - ids.len() {
            return Err("more points than the description says".into());
        }
        first_of_layer.push((ids.len(), count));
        for rank in 0..count {
            g.magic(MAGICPOINT, "a point")?;
            let origin = g.u64()?;
            if origin > max_id || !seen.insert(origin) {
                return Err("point id out of range or repeated".into());
            }
            if g.u8()? != layer || usize::try_from(g.i32()?).ok() != Some(rank) {
                return Err("point stored out of place".into());
            }
            for list_layer in 0..levels {
                let n = g.usize()?;
                if n > MAX_NEIGHBOURS {
                    return Err("neighbour list too long".into());
                }
                for _ in 0..n {
                    let _id = g.u64()?;
                    let (l, r) = (g.u8()?, g.i32()?);
                    raw.push((list_layer, l, r, g.f32()?));
                }
            }
            ids.push(origin);
            layer_of.push(layer);
            starts.push(raw.len());
        }
    }
    if ids.len() != points {
        return Err("fewer points than the description says".into());
    }
    let resolve = |(layer, rank): (u8, i32)| -> Option<u32> {
        let (first, count) = *first_of_layer.get(usize::from(layer))?;
        let r = usize::try_from(rank).ok().filter(|r| *r < count)?;
        Some((first + r) as u32)
    };
    let mut links = Vec::with_capacity(raw.len());
    for (list_layer, l, r, dist) in raw {
        let to = resolve((l, r)).ok_or("a neighbour refers to no point")?;
        links.push(Link { layer: list_layer, to, dist });
    }
    let entry_id = g.u64()?;
    let entry_at = (g.u8()?, g.i32()?);
    let entry =
        resolve(entry_at).filter(|p| ids[*p as usize] == entry_id).ok_or("bad entry point")?;
    g.done("graph")?;

    let mut head = [0u8; 12];
    fill(data, &mut head)?;
    let mut d = Cursor { bytes: &head, at: 0 };
    d.magic(MAGICDATAP, "the data header")?;
    if d.usize()? != dimension {
        return Err("data dimension differs".into());
    }
    let len = dimension.checked_mul(4).ok_or("dimension out of range")?;

    // The graph file is well formed: build the graph while the data file streams in, record
    // by record in the graph's point order. Points become nodes (identical vectors merge),
    // links are resolved to nodes, nearest first, at most the list's size, none to itself.
    let mut out = Graph::new(dimension, metric, m, ef_construction, fitted);
    let mut node_of_point = Vec::with_capacity(ids.len());
    let mut v = vec![0f32; dimension];
    let mut record = vec![0u8; record_len(dimension)];
    for (p, &id) in ids.iter().enumerate() {
        fill(data, &mut record)?;
        let mut d = Cursor { bytes: &record, at: 0 };
        d.magic(MAGICDATAP, "a data record")?;
        if d.u64()? != id || d.usize()? != len {
            return Err("data record does not match the graph".into());
        }
        for (x, b) in v.iter_mut().zip(d.take(len)?.chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err("a vector holds a non-finite value".into());
        }
        if let Some(want) = expected(id)? {
            // Branch-free over the whole vector (it vectorises; an early exit would not).
            let differs =
                want.iter().zip(&v).fold(0u32, |acc, (a, b)| acc | (a.to_bits() ^ b.to_bits()));
            if differs != 0 || want.len() != v.len() {
                return Err(format!("the vector of id {id} differs from storage's"));
            }
        }
        let node = match out.add_node(id, &v, Some(usize::from(layer_of[p]))) {
            Some(n) => n,
            None => out.node_of(id).ok_or("merged point without a node")?,
        };
        node_of_point.push(node);
    }
    match data.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Ok(_) => return Err("trailing bytes in the data file".into()),
        Err(e) => return Err(format!("data file: {e}")),
    }
    let mut per_node: Vec<Vec<Vec<(f32, u32)>>> = vec![Vec::new(); out.nodes()];
    for (p, &node) in node_of_point.iter().enumerate() {
        let lists = &mut per_node[node as usize];
        for link in &links[starts[p]..starts[p + 1]] {
            let layer = usize::from(link.layer);
            let to = node_of_point[link.to as usize];
            if layer > out.level(node) || layer > out.level(to) || to == node {
                continue;
            }
            if lists.len() <= layer {
                lists.resize(layer + 1, Vec::new());
            }
            if !lists[layer].iter().any(|(_, n)| *n == to) {
                lists[layer].push((link.dist, to));
            }
        }
    }
    for (node, lists) in per_node.into_iter().enumerate() {
        for (layer, mut list) in lists.into_iter().enumerate() {
            list.sort_by(|x, y| x.0.total_cmp(&y.0));
            let nodes: Vec<u32> = list.into_iter().map(|(_, n)| n).collect();
            out.set_loaded_links(node as u32, layer, &nodes);
        }
    }
    // The entry point is the highest node (hnsw_rs's is; a file claiming otherwise is
    // repaired rather than trusted).
    let mut entry = node_of_point[entry as usize];
    if let Some(top) = (0..out.nodes() as u32).max_by_key(|n| (out.level(*n), Reverse(*n))) {
        if out.level(top) > out.level(entry) {
            entry = top;
        }
    }
    out.finish_load(entry);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hnsw_rs's loader compares the recorded names with `type_name` of the types it is given:
    /// if `GraphDistance` moves, this fails, and the move must keep the literal (and hnsw_rs's
    /// load of AkiDB's generations, tested in `persist.rs`) in step.
    #[test]
    fn distance_name_is_the_type_name_hnsw_rs_checks() {
        assert_eq!(GRAPH_DISTANCE_NAME, std::any::type_name::<GraphDistance>());
        assert_eq!(ELEMENT_NAME, std::any::type_name::<f32>());
    }
}
