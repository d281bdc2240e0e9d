//! A strict reader of hnsw_rs 0.3 dump files, run before hnsw_rs's own loader sees them.
//!
//! hnsw_rs's loader trusts its input: on foreign bytes it panics (contained by `catch_unwind`),
//! allocates whatever a length field says (an abort), calls `std::process::exit(1)` (on a short
//! data file), or reads past a buffer (a data record shorter than the dimension). Checksums in
//! the manifest catch accidental damage; this check makes even deliberately crafted files with
//! matching checksums safe: every length, count, magic number and cross reference is verified
//! against what AkiDB wrote, so the loader only ever sees well-formed dumps.
//!
//! Format (native endian, as hnsw_rs writes it with `DumpMode::Full`):
//! graph: description (magic 4, mode 1, max_nb_connection 1, level_scale 8, nb_layer 1, ef 8,
//! nb_point 8, dimension 8, distance name (len 8 + bytes), type name (len 8 + bytes)), then the
//! number of layers (1) and per layer: magic 4, count 8, points (magic 4, origin id 8, layer 1,
//! rank 4, then for each of `nb_layer` levels: neighbour count 8 and per neighbour id 8, layer 1,
//! rank 4, distance 4), then the entry point (origin id 8, layer 1, rank 4).
//! data: magic 4, dimension 8, then per point in graph order: magic 4, origin id 8, length 8,
//! `length` bytes of f32.

use std::collections::HashSet;

const MAGICDESCR_4: u32 = 0x002a_6779;
const MAGICLAYER: u32 = 0x000a_676f;
const MAGICPOINT: u32 = 0x000a_678f;
const MAGICDATAP: u32 = 0xa67f_0000;
/// hnsw_rs's `NB_LAYER_MAX`.
const NB_LAYER_MAX: u8 = 16;
/// Far above any neighbour list hnsw_rs keeps (2 x m at layer 0, m at most 255).
const MAX_NEIGHBOURS: usize = 1024;

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("unexpected end of file")?;
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
        Ok(u32::from_ne_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_ne_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_ne_bytes(self.array()?))
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
            return Err(format!("{} trailing bytes in the {what} file", self.bytes.len() - self.at));
        }
        Ok(())
    }
}

/// Checks a graph and a data file written by hnsw_rs for `nodes` points of `dimension` f32
/// with origin ids at most `max_id`.
pub(crate) fn check(graph: &[u8], data: &[u8], dimension: usize, nodes: usize, max_id: u64) -> Result<(), String> {
    let mut g = Cursor { bytes: graph, at: 0 };
    g.magic(MAGICDESCR_4, "the description")?;
    if g.u8()? != 1 {
        return Err("not a full dump".into());
    }
    let max_nb_connection = g.u8()?;
    let level_scale = f64::from_ne_bytes(g.array()?);
    if max_nb_connection == 0 || !level_scale.is_finite() {
        return Err("bad graph parameters".into());
    }
    let levels = g.u8()?;
    if levels != NB_LAYER_MAX {
        return Err("bad number of levels".into());
    }
    let _ef = g.usize()?;
    if g.usize()? != nodes {
        return Err("point count differs from the manifest".into());
    }
    if g.usize()? != dimension {
        return Err("dimension differs from the collection's".into());
    }
    // The names hnsw_rs records and checks (with a panic) on load.
    g.name(std::any::type_name::<crate::hnsw::GraphDistance>())?;
    g.name(std::any::type_name::<f32>())?;
    let layers = g.u8()?;
    if layers == 0 || layers > NB_LAYER_MAX {
        return Err("bad number of layers".into());
    }
    let mut counts = Vec::with_capacity(usize::from(layers));
    let mut order = Vec::with_capacity(nodes.min(1 << 24));
    let mut seen = HashSet::with_capacity(nodes.min(1 << 24));
    let mut links: Vec<(u8, i32)> = Vec::new();
    for layer in 0..layers {
        g.magic(MAGICLAYER, "a layer")?;
        let count = g.usize()?;
        if count > nodes - order.len() {
            return Err("more points than the description says".into());
        }
        for rank in 0..count {
            g.magic(MAGICPOINT, "a point")?;
            let origin = g.u64()?;
            if origin > max_id || !seen.insert(origin) {
                return Err("point id out of range or repeated".into());
            }
            if g.u8()? != layer || usize::try_from(g.i32()?).ok() != Some(rank) {
                return Err("point stored out of place".into());
            }
            for _ in 0..levels {
                let n = g.usize()?;
                if n > MAX_NEIGHBOURS {
                    return Err("neighbour list too long".into());
                }
                for _ in 0..n {
                    let _id = g.u64()?;
                    links.push((g.u8()?, g.i32()?));
                    let _distance = g.take(4)?;
                }
            }
            order.push(origin);
        }
        counts.push(count);
    }
    if order.len() != nodes {
        return Err("fewer points than the description says".into());
    }
    let valid = |(layer, rank): (u8, i32)| {
        counts.get(usize::from(layer)).is_some_and(|c| usize::try_from(rank).is_ok_and(|r| r < *c))
    };
    if !links.into_iter().all(valid) {
        return Err("a neighbour refers to no point".into());
    }
    let entry = g.u64()?;
    let entry_at = (g.u8()?, g.i32()?);
    if !seen.contains(&entry) || !valid(entry_at) {
        return Err("bad entry point".into());
    }
    g.done("graph")?;

    let mut d = Cursor { bytes: data, at: 0 };
    d.magic(MAGICDATAP, "the data header")?;
    if d.usize()? != dimension {
        return Err("data dimension differs".into());
    }
    let len = dimension.checked_mul(4).ok_or("dimension out of range")?;
    for origin in order {
        d.magic(MAGICDATAP, "a data record")?;
        if d.u64()? != origin || d.usize()? != len {
            return Err("data record does not match the graph".into());
        }
        d.take(len)?;
    }
    d.done("data")
}
