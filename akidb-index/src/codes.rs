//! What the graph walks: each node's vector as a compact code, chosen per collection by
//! [`Quantization`].
//!
//! - [`Quantization::F16`] (the default): IEEE half floats of `v / scale` (`2 * dim` bytes).
//! - [`Quantization::Int8`] and [`Quantization::Int4`]: per-dimension scalar codes,
//!   `x_i = lo_i + step_i * c_i` with `c_i` in 0..=255 (`dim` bytes) or 0..=15 (`dim / 2`
//!   bytes; in blocks of 16 dimensions, byte `k` of a block holds dimension `k` in its low
//!   nibble and `k + 8` in its high one). `lo` and `step` are fitted from the data (each
//!   dimension's minimum and range over a sample) when the graph is built, so `optimize()`
//!   refits them; values outside the fitted range are clamped. A walk scores a node as
//!   `q . lo + (q * step) . c`; L2 adds the node's stored `|x|^2`. For int8 `(q * step) . c`
//!   is an f32 x byte kernel; for int4 `q * step` is rounded once per query to 8-bit integers
//!   (1/127 of its largest term each) and the product is exact integer arithmetic over 64
//!   dimensions per AVX2 step, with the rounding's mean error folded into `q . lo`: the walk's
//!   distances move by less than 2e-3 (tested), the returned scores not at all (re-scored).
//! - [`Quantization::Binary`]: one sign bit per dimension, `v_i > mean_i` (`dim / 8` bytes), the
//!   means fitted like the scalar ranges; a walk's distance is the Hamming distance (a popcount
//!   kernel). For cosine and dot at 1,024 dimensions or more.
//!
//! Whatever the codes, the index re-scores the walk's best hits against the exact vectors
//! ([`Quantization::rescored`] of them), so returned scores are exact; the codes only decide
//! which hits are found. How many must be re-scored depends on how much the codes keep: on
//! 50,000 clustered 2,560-d vectors (`make_dataset.py`), ranking every vector by its code and
//! re-scoring the best 80 found 99% of the true top 10 with int4 codes, 62% with sign bits
//! (89% with 160, 100% with 320): see docs/benchmarks.md. The fitted parameters ([`Fitted`])
//! are saved with every index generation and checked when it is loaded (`persist.rs`).

use serde::{Deserialize, Serialize};

use crate::metric::{decode_f16, dot_u4, dot_u8, hamming, prefetch, to_f16};
use crate::Metric;

/// How the graph stores vectors for its walks; see the module docs of `codes.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Quantization {
    /// Half floats (`2 * dim` bytes per vector); the walk's best `2k` are re-scored.
    /// (See [`Quantization::rescored`] for every kind.)
    #[default]
    F16,
    /// Per-dimension 8-bit codes (`dim` bytes); the best `4k` (or `ef / 4`) are re-scored.
    Int8,
    /// Per-dimension 4-bit codes (`dim / 2` bytes); the best `6k` (or `ef / 2`) are re-scored.
    Int4,
    /// Sign bits (`dim / 8` bytes; cosine and dot, 1,024 dimensions or more); the best
    /// `oversample * k` (or `ef / 2`) are re-scored, and the walk's beam is at least
    /// `oversample * k` wide.
    Binary {
        /// Hits re-scored per hit returned: 1 to [`MAX_OVERSAMPLE`].
        oversample: u16,
    },
}

/// The names users write (`f16`, `int8`, `int4`, `binary:OVERSAMPLE`), as the command line and
/// the bench take them.
impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "f16" => Ok(Quantization::F16),
            None if s == "int8" => Ok(Quantization::Int8),
            None if s == "int4" => Ok(Quantization::Int4),
            Some(("binary", n)) => n
                .parse()
                .map(|oversample| Quantization::Binary { oversample })
                .map_err(|e| format!("binary:{n}: {e}")),
            _ => Err(format!("{s}: expected f16, int8, int4 or binary:OVERSAMPLE")),
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantization::F16 => f.write_str("f16"),
            Quantization::Int8 => f.write_str("int8"),
            Quantization::Int4 => f.write_str("int4"),
            Quantization::Binary { oversample } => write!(f, "binary:{oversample}"),
        }
    }
}

/// The largest [`Quantization::Binary`] oversampling.
pub const MAX_OVERSAMPLE: u16 = 100;
/// The smallest dimension [`Quantization::Binary`] accepts.
pub const BINARY_MIN_DIMENSION: usize = 1024;
/// Vectors a quantizer is fitted on (spread over the collection).
pub(crate) const FIT_SAMPLE: usize = 20_000;

/// A quantization that does not fit the collection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantization {quantization:?} is not available {reason}")]
pub struct InvalidQuantization {
    /// What was asked for.
    pub quantization: Quantization,
    /// Why not.
    pub reason: &'static str,
}

impl Quantization {
    /// Checks that the quantization suits vectors of `dimension` under `metric`.
    pub fn validate(self, dimension: usize, metric: Metric) -> Result<(), InvalidQuantization> {
        let fail = |reason| Err(InvalidQuantization { quantization: self, reason });
        match self {
            Quantization::F16 | Quantization::Int8 | Quantization::Int4 => Ok(()),
            Quantization::Binary { oversample } => {
                if !(1..=MAX_OVERSAMPLE).contains(&oversample) {
                    fail("with an oversampling outside 1 to 100")
                } else if metric == Metric::L2 {
                    fail("for the L2 metric (sign bits keep angles, not lengths)")
                } else if dimension < BINARY_MIN_DIMENSION {
                    fail("below 1,024 dimensions (too few bits to find neighbours)")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// How many of a walk's best hits are re-scored exactly for a query of `k` walked with a
    /// beam of `ef`: a multiple of `k` (2 for half floats, 4 for int8, 6 for int4, the
    /// oversampling for sign bits), and for the coarser codes at least a share of the beam
    /// (a quarter for int8, half for int4 and sign bits), so that a wider beam, the knob users
    /// turn for recall, also re-scores more.
    pub fn rescored(self, k: usize, ef: usize) -> usize {
        match self {
            Quantization::F16 => 2 * k,
            Quantization::Int8 => (4 * k).max(ef / 4),
            Quantization::Int4 => (6 * k).max(ef / 2),
            Quantization::Binary { oversample } => (usize::from(oversample.max(1)) * k).max(ef / 2),
        }
    }

    /// Bits per dimension of the scalar codes (`None` for the others).
    fn scalar_bits(self) -> Option<u8> {
        match self {
            Quantization::Int8 => Some(8),
            Quantization::Int4 => Some(4),
            _ => None,
        }
    }
}

/// A quantizer's parameters fitted from data (saved with index generations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum Fitted {
    /// Half floats need no parameters.
    F16,
    /// Scalar codes of `bits` (8 or 4) per dimension: the smallest value and the step.
    Scalar { bits: u8, lo: Vec<f32>, step: Vec<f32> },
    /// Per dimension: the mean (the sign threshold).
    Binary { mean: Vec<f32> },
}

/// Fits a quantizer one vector at a time (no copy of the sample is kept).
pub(crate) struct Fitter {
    q: Quantization,
    lo: Vec<f32>,
    hi: Vec<f32>,
    sum: Vec<f64>,
    /// Sums of squares (4-bit codes clip their range at [`INT4_CLIP_SIGMAS`]).
    squares: Vec<f64>,
    n: usize,
}

/// 4-bit codes cover each dimension's mean +- this many standard deviations (within its
/// minimum and maximum): 15 steps over the full range waste resolution on a few outliers. On
/// 50,000 clustered 2,560-d vectors, ranking by the codes and re-scoring the best 80 found
/// 96.9% of the true top 10 with the full range, 98.7% clipped at 2.5 sigmas (97.7% at 3;
/// 8-bit codes do best with the full range).
const INT4_CLIP_SIGMAS: f64 = 2.5;

impl Fitter {
    pub(crate) fn new(q: Quantization, dim: usize) -> Self {
        let (lo, hi, sum, squares) = match q {
            Quantization::F16 => Default::default(),
            Quantization::Binary { .. } => (Vec::new(), Vec::new(), vec![0.0; dim], Vec::new()),
            Quantization::Int8 => {
                (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim], Vec::new(), Vec::new())
            }
            Quantization::Int4 => (
                vec![f32::INFINITY; dim],
                vec![f32::NEG_INFINITY; dim],
                vec![0.0; dim],
                vec![0.0; dim],
            ),
        };
        Self { q, lo, hi, sum, squares, n: 0 }
    }

    /// Takes a vector of the sample into account.
    pub(crate) fn add(&mut self, v: &[f32]) {
        for ((l, h), x) in self.lo.iter_mut().zip(self.hi.iter_mut()).zip(v) {
            *l = l.min(*x);
            *h = h.max(*x);
        }
        for (s, x) in self.sum.iter_mut().zip(v) {
            *s += f64::from(*x);
        }
        for (s, x) in self.squares.iter_mut().zip(v) {
            *s += f64::from(*x) * f64::from(*x);
        }
        self.n += 1;
    }

    /// The parameters (an empty sample gives neutral ones).
    pub(crate) fn finish(mut self) -> Fitted {
        match self.q.scalar_bits() {
            Some(bits) => {
                let levels = top_code(bits);
                if bits == 4 && self.n > 1 {
                    let n = self.n as f64;
                    for (i, (l, h)) in self.lo.iter_mut().zip(self.hi.iter_mut()).enumerate() {
                        let mean = self.sum[i] / n;
                        let sd = (self.squares[i] / n - mean * mean).max(0.0).sqrt();
                        *l = l.max((mean - INT4_CLIP_SIGMAS * sd) as f32);
                        *h = h.min((mean + INT4_CLIP_SIGMAS * sd) as f32);
                    }
                }
                let step = self
                    .lo
                    .iter()
                    .zip(&self.hi)
                    .map(|(l, h)| {
                        let s = (h - l) / levels;
                        if s.is_finite() && s > 0.0 {
                            s
                        } else {
                            1.0
                        }
                    })
                    .collect();
                let lo = self.lo.into_iter().map(|l| if l.is_finite() { l } else { 0.0 }).collect();
                Fitted::Scalar { bits, lo, step }
            }
            None if matches!(self.q, Quantization::Binary { .. }) => {
                let n = self.n.max(1) as f64;
                Fitted::Binary { mean: self.sum.into_iter().map(|s| (s / n) as f32).collect() }
            }
            None => Fitted::F16,
        }
    }
}

impl Fitted {
    /// Fits `q` on `sample` (vectors of `dim`).
    #[cfg(test)]
    pub(crate) fn fit<'a>(
        q: Quantization,
        dim: usize,
        sample: impl Iterator<Item = &'a [f32]>,
    ) -> Fitted {
        let mut f = Fitter::new(q, dim);
        sample.for_each(|v| f.add(v));
        f.finish()
    }

    /// Whether these parameters are those of quantization `q` over `dim` dimensions, every
    /// value finite and every step positive (a loaded generation must pass this).
    pub(crate) fn check(&self, q: Quantization, dim: usize) -> Result<(), String> {
        let finite = |v: &[f32]| v.len() == dim && v.iter().all(|x| x.is_finite());
        match (self, q) {
            (Fitted::F16, Quantization::F16) => Ok(()),
            (Fitted::Scalar { bits, lo, step }, q)
                if q.scalar_bits() == Some(*bits)
                    && finite(lo)
                    && finite(step)
                    && step.iter().all(|s| *s > 0.0) =>
            {
                Ok(())
            }
            (Fitted::Binary { mean }, Quantization::Binary { .. }) if finite(mean) => Ok(()),
            _ => Err(format!("its quantizer does not fit {q:?} over {dim} dimensions")),
        }
    }
}

/// The largest code of `bits` (255 or 15), as a float.
fn top_code(bits: u8) -> f32 {
    ((1u32 << bits) - 1) as f32
}

/// Where dimension `i`'s nibble sits in 4-bit codes: (byte, shift).
#[inline]
fn nibble(i: usize) -> (usize, u32) {
    let r = i % 16;
    (i / 16 * 8 + r % 8, if r < 8 { 0 } else { 4 })
}

/// One node's code, made by [`Codes::encode`] before it is stored.
#[derive(Debug, PartialEq)]
pub(crate) enum Code {
    F16 { bits: Vec<u16>, scale: f32 },
    Scalar { bytes: Vec<u8>, norm: f32 },
    Binary { words: Vec<u64> },
}

impl Code {
    /// A hash of the code: identical codes hash alike (finds nodes to share).
    pub(crate) fn hash(&self) -> u64 {
        let mut h = 0x5EED_C0DE_u64;
        let mut eat = |w: u64| h = crate::graph::mix(h ^ w);
        match self {
            Code::F16 { bits, scale } => {
                eat(u64::from(scale.to_bits()));
                bits.chunks(4).for_each(|c| eat(pack(c.iter().map(|b| u64::from(*b)), 16)));
            }
            Code::Scalar { bytes, .. } => {
                bytes.chunks(8).for_each(|c| eat(pack(c.iter().map(|b| u64::from(*b)), 8)));
            }
            Code::Binary { words } => words.iter().for_each(|w| eat(*w)),
        }
        h
    }
}

/// `parts` of `width` bits each, packed low first.
fn pack(parts: impl Iterator<Item = u64>, width: u32) -> u64 {
    parts.enumerate().fold(0, |w, (i, p)| w | p << (width * i as u32))
}

/// A query prepared for walks over the codes (reused across walks: see `Scratch`).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// F16: the query; 8-bit codes: the query times each dimension's step.
    v: Vec<f32>,
    /// 4-bit codes: the query times each dimension's step, in 8-bit integers of `unit` each,
    /// laid out as the codes' nibbles are (`lo[k]` weighs byte `k`'s low nibble, `hi[k]` its
    /// high one; zeros past the last dimension).
    lo: Vec<i8>,
    hi: Vec<i8>,
    unit: f32,
    /// Scalar codes: the query's product with the codes' origin `lo`.
    bias: f32,
    /// Scalar codes under L2: the query's squared norm.
    norm: f32,
    /// Binary: the query's sign bits.
    words: Vec<u64>,
}

/// The codes of every node, node-major.
pub(crate) struct Codes {
    dim: usize,
    metric: Metric,
    fitted: Fitted,
    /// F16: the half floats; per node its scale (empty for cosine: unit vectors need none).
    f16: Vec<u16>,
    scales: Vec<f32>,
    /// Scalar codes: the bytes; per node `|x|^2` of the decoded vector (L2 only).
    bytes: Vec<u8>,
    norms: Vec<f32>,
    /// Binary: the words.
    words: Vec<u64>,
    /// Elements (of `f16`, `bytes` or `words`) per node.
    per_node: usize,
}

impl Codes {
    /// No codes yet, with `fitted`'s parameters.
    pub(crate) fn new(dim: usize, metric: Metric, fitted: Fitted) -> Self {
        let per_node = match fitted {
            Fitted::Binary { .. } => dim.div_ceil(64),
            Fitted::Scalar { bits: 4, .. } => dim.div_ceil(16) * 8,
            _ => dim,
        };
        Self {
            dim,
            metric,
            fitted,
            f16: Vec::new(),
            scales: Vec::new(),
            bytes: Vec::new(),
            norms: Vec::new(),
            words: Vec::new(),
            per_node,
        }
    }

    pub(crate) fn fitted(&self) -> &Fitted {
        &self.fitted
    }

    /// The code of `v` (a vector prepared for the metric).
    pub(crate) fn encode(&self, v: &[f32]) -> Code {
        match &self.fitted {
            Fitted::F16 => {
                let (bits, scale) = to_f16(v, self.metric == Metric::Cosine);
                Code::F16 { bits: bits.collect(), scale }
            }
            Fitted::Scalar { bits, lo, step } => {
                let top = top_code(*bits);
                let mut bytes = vec![0u8; self.per_node];
                let mut norm = 0.0f32;
                for (i, (x, (l, s))) in v.iter().zip(lo.iter().zip(step)).enumerate() {
                    let c = ((x - l) / s).round().clamp(0.0, top) as u8;
                    if *bits == 8 {
                        bytes[i] = c;
                    } else {
                        let (at, shift) = nibble(i);
                        bytes[at] |= c << shift;
                    }
                    norm += (l + s * f32::from(c)).powi(2);
                }
                let norm = if self.metric == Metric::L2 { norm } else { 0.0 };
                Code::Scalar { bytes, norm }
            }
            Fitted::Binary { mean } => {
                let mut words = vec![0u64; self.per_node];
                for (i, (x, m)) in v.iter().zip(mean).enumerate() {
                    if x > m {
                        words[i / 64] |= 1 << (i % 64);
                    }
                }
                Code::Binary { words }
            }
        }
    }

    /// Whether node `node` holds exactly `code`.
    pub(crate) fn equals(&self, node: u32, code: &Code) -> bool {
        let at = node as usize * self.per_node;
        let range = at..at + self.per_node;
        match code {
            Code::F16 { bits, scale } => self.f16[range] == bits[..] && self.scale(node) == *scale,
            Code::Scalar { bytes, .. } => self.bytes[range] == bytes[..],
            Code::Binary { words } => self.words[range] == words[..],
        }
    }

    /// Appends a node's code.
    pub(crate) fn push(&mut self, code: Code) {
        match code {
            Code::F16 { bits, scale } => {
                self.f16.extend_from_slice(&bits);
                if self.metric != Metric::Cosine {
                    self.scales.push(scale);
                }
            }
            Code::Scalar { bytes, norm } => {
                self.bytes.extend_from_slice(&bytes);
                if self.metric == Metric::L2 {
                    self.norms.push(norm);
                }
            }
            Code::Binary { words } => self.words.extend_from_slice(&words),
        }
    }

    #[inline]
    fn scale(&self, node: u32) -> f32 {
        self.scales.get(node as usize).copied().unwrap_or(1.0)
    }

    /// Asks the CPU to start loading a node's code (up to 1 KiB of it).
    #[inline]
    pub(crate) fn prefetch(&self, node: u32) {
        self.prefetch_lines(node, 16);
    }

    /// Asks the CPU to start loading the first four cache lines of a node's code.
    #[inline]
    pub(crate) fn prefetch_start(&self, node: u32) {
        self.prefetch_lines(node, 4);
    }

    #[inline]
    fn prefetch_lines(&self, node: u32, lines: usize) {
        let at = node as usize * self.per_node;
        match self.fitted {
            Fitted::F16 => prefetch(&self.f16[at..at + self.per_node], lines),
            Fitted::Scalar { .. } => prefetch(&self.bytes[at..at + self.per_node], lines),
            Fitted::Binary { .. } => prefetch(&self.words[at..at + self.per_node], lines),
        }
    }

    /// Prepares `q` (an exact vector prepared for the metric) for walks, into `out`.
    pub(crate) fn prepare(&self, q: &[f32], out: &mut Prepared) {
        out.v.clear();
        out.words.clear();
        out.bias = 0.0;
        match &self.fitted {
            Fitted::F16 => out.v.extend_from_slice(q),
            Fitted::Scalar { bits, lo, step } => {
                if *bits == 8 {
                    out.v.extend(q.iter().zip(step).map(|(x, s)| x * s));
                } else {
                    // The query's terms rounded to integers of 1/127 of the largest term: each
                    // errs by at most half a unit, times its code; the errors' sum times the
                    // middle code (7.5) goes into the bias, so what remains scales with each
                    // code's distance from the middle.
                    out.v.extend(q.iter().zip(step).map(|(x, s)| x * s));
                    out.v.resize(self.per_node * 2, 0.0);
                    // Eight lanes each (the loops vectorise; the neighbour heuristic prepares
                    // every candidate while building).
                    let (mut top, mut sum) = ([0.0f32; 8], [0.0f32; 8]);
                    for w in out.v.chunks_exact(8) {
                        for k in 0..8 {
                            let a = w[k].abs();
                            top[k] = if a > top[k] { a } else { top[k] };
                            sum[k] += w[k];
                        }
                    }
                    let top = top.iter().fold(0.0f32, |m, a| m.max(*a));
                    out.unit = if top > 0.0 && top.is_finite() { top / 127.0 } else { 1.0 };
                    let inv = 1.0 / out.unit;
                    // |w * inv| <= 127, rounded to nearest by the 1.5 x 2^23 trick (`round`
                    // is a call without SSE4.1); NaN, which a query never holds, gives junk.
                    let int = |w: f32| {
                        let r = w * inv + 12_582_912.0;
                        (r.to_bits() as i32 - 0x4B40_0000) as i8
                    };
                    out.lo.resize(self.per_node, 0);
                    out.hi.resize(self.per_node, 0);
                    let blocks = out.v.chunks_exact(16).zip(out.lo.chunks_exact_mut(8));
                    for ((w, lo), hi) in blocks.zip(out.hi.chunks_exact_mut(8)) {
                        for k in 0..8 {
                            lo[k] = int(w[k]);
                            hi[k] = int(w[k + 8]);
                        }
                    }
                    let ints: i32 = out.lo.iter().chain(&out.hi).map(|w| i32::from(*w)).sum();
                    let error = sum.iter().sum::<f32>() - out.unit * ints as f32;
                    out.bias = 7.5 * error;
                    out.v.clear();
                }
                out.bias += crate::metric::dot(q, lo);
                out.norm = crate::metric::dot(q, q);
            }
            Fitted::Binary { .. } => {
                if let Code::Binary { words } = self.encode(q) {
                    out.words = words;
                }
            }
        }
    }

    /// Prepares node `node`'s stored vector as a query (the neighbour heuristic compares
    /// stored vectors), into `out`; `buf` is working memory.
    pub(crate) fn prepare_node(&self, node: u32, buf: &mut Vec<f32>, out: &mut Prepared) {
        if let Fitted::Binary { .. } = self.fitted {
            let at = node as usize * self.per_node;
            out.v.clear();
            out.words.clear();
            out.words.extend_from_slice(&self.words[at..at + self.per_node]);
            return;
        }
        self.decode(node, buf);
        self.prepare(buf, out);
    }

    /// The walk's distance of a prepared query to a node (lower is nearer).
    #[inline]
    pub(crate) fn dist(&self, q: &Prepared, node: u32) -> f32 {
        let at = node as usize * self.per_node;
        match self.fitted {
            Fitted::F16 => {
                let code = &self.f16[at..at + self.per_node];
                self.metric.distance_f16(&q.v, code, self.scale(node))
            }
            Fitted::Scalar { bits, .. } => {
                let code = &self.bytes[at..at + self.per_node];
                let dot = if bits == 8 {
                    dot_u8(&q.v, code)
                } else {
                    q.unit * dot_u4(&q.lo, &q.hi, code) as f32
                };
                let s = q.bias + dot;
                match self.metric {
                    Metric::Cosine => 1.0 - s,
                    Metric::Dot => -s,
                    Metric::L2 => (q.norm - 2.0 * s + self.norms[node as usize]).max(0.0),
                }
            }
            Fitted::Binary { .. } => hamming(&q.words, &self.words[at..at + self.per_node]) as f32,
        }
    }

    /// A node's vector as f32, into `out`: the half floats or scalar codes decoded; for sign
    /// bits, a vector just off the means on each bit's side (it encodes back to the same bits).
    pub(crate) fn decode(&self, node: u32, out: &mut Vec<f32>) {
        out.resize(self.dim, 0.0);
        let at = node as usize * self.per_node;
        match &self.fitted {
            Fitted::F16 => decode_f16(&self.f16[at..at + self.dim], self.scale(node), out),
            Fitted::Scalar { bits, lo, step } => {
                let codes = &self.bytes[at..at + self.per_node];
                if *bits == 8 {
                    for (o, (c, (l, s))) in
                        out.iter_mut().zip(codes.iter().zip(lo.iter().zip(step)))
                    {
                        *o = l + s * f32::from(*c);
                    }
                } else {
                    // Whole blocks of 16 dimensions, then the last, partial one.
                    let whole = self.dim / 16;
                    let parts = out.chunks_exact_mut(16).zip(codes.chunks_exact(8));
                    for (b, (o, c)) in parts.enumerate().take(whole) {
                        let (l, s) = (&lo[16 * b..16 * b + 16], &step[16 * b..16 * b + 16]);
                        for k in 0..8 {
                            o[k] = l[k] + s[k] * f32::from(c[k] & 15);
                            o[k + 8] = l[k + 8] + s[k + 8] * f32::from(c[k] >> 4);
                        }
                    }
                    for i in whole * 16..self.dim {
                        let (b, shift) = nibble(i);
                        out[i] = lo[i] + step[i] * f32::from(codes[b] >> shift & 15);
                    }
                }
            }
            Fitted::Binary { mean } => {
                let words = &self.words[at..at + self.per_node];
                for (i, (o, m)) in out.iter_mut().zip(mean).enumerate() {
                    let up = words[i / 64] >> (i % 64) & 1 == 1;
                    let off = m.abs().max(1.0) * 1e-3;
                    *o = if up { m + off } else { m - off };
                }
            }
        }
    }

    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.f16.len() * 2
            + (self.scales.len() + self.norms.len()) * 4
            + self.bytes.len()
            + self.words.len() * 8
            + match &self.fitted {
                Fitted::F16 => 0,
                Fitted::Scalar { .. } => self.dim * 8,
                Fitted::Binary { .. } => self.dim * 4,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        (0..n as u64)
            .map(|i| {
                let mut v: Vec<f32> = (0..dim as u64)
                    .map(|d| {
                        let h = crate::graph::mix(seed ^ (i * 7919 + d));
                        (h >> 40) as f32 / (1u64 << 24) as f32 - 0.3
                    })
                    .collect();
                crate::normalize(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn validation_refuses_what_cannot_work() {
        let b = Quantization::Binary { oversample: 8 };
        assert!(b.validate(1024, Metric::Cosine).is_ok());
        assert!(b.validate(1024, Metric::Dot).is_ok());
        assert!(b.validate(384, Metric::Cosine).is_err());
        assert!(b.validate(2560, Metric::L2).is_err());
        assert!(Quantization::Binary { oversample: 0 }.validate(2560, Metric::Cosine).is_err());
        assert!(Quantization::Binary { oversample: 101 }.validate(2560, Metric::Cosine).is_err());
        assert!(Quantization::Int8.validate(3, Metric::L2).is_ok());
        assert_eq!(b.rescored(10, 64), 80);
        assert_eq!(b.rescored(10, 400), 200);
        assert_eq!(Quantization::F16.rescored(10, 400), 20);
        for q in [Quantization::F16, Quantization::Int8, Quantization::Int4, b] {
            assert_eq!(q.to_string().parse::<Quantization>(), Ok(q));
        }
        assert!("binary".parse::<Quantization>().is_err());
        assert!("binary:x".parse::<Quantization>().is_err());
        assert!("int2".parse::<Quantization>().is_err());
    }

    /// Each kind's walk distance against the exact distance to the decoded (or original)
    /// vector: int8 within its rounding, binary exactly the bits that differ, and a node's
    /// own decoded vector encodes back to the node's code.
    #[test]
    fn codes_score_as_their_decoded_vectors_and_decode_stably() {
        // 1,000: 4-bit codes end in a partial block of 16 dimensions.
        for (dim, metric) in [1000, 1024].into_iter().flat_map(|d| {
            [Metric::Cosine, Metric::Dot, Metric::L2].into_iter().map(move |m| (d, m))
        }) {
            let vs = vectors(300, dim, 1);
            for q in [
                Quantization::F16,
                Quantization::Int8,
                Quantization::Int4,
                Quantization::Binary { oversample: 4 },
            ] {
                if q.validate(dim, metric).is_err() {
                    continue;
                }
                let fitted = Fitted::fit(q, dim, vs.iter().map(Vec::as_slice));
                fitted.check(q, dim).expect("fitted parameters pass the load check");
                let mut codes = Codes::new(dim, metric, fitted);
                for v in &vs {
                    let code = codes.encode(v);
                    codes.push(code);
                }
                let (mut p, mut buf) = (Prepared::default(), Vec::new());
                codes.prepare(&vs[0], &mut p);
                for node in 0..vs.len() as u32 {
                    codes.decode(node, &mut buf);
                    assert_eq!(
                        codes.encode(&buf),
                        codes.encode(&vs[node as usize]),
                        "{q:?} {node}"
                    );
                    assert!(codes.equals(node, &codes.encode(&vs[node as usize])));
                    let walk = codes.dist(&p, node);
                    match q {
                        Quantization::Binary { .. } => {
                            let (Code::Binary { words: a }, Code::Binary { words: b }) =
                                (codes.encode(&vs[0]), codes.encode(&vs[node as usize]))
                            else {
                                unreachable!()
                            };
                            assert_eq!(walk, hamming(&a, &b) as f32);
                        }
                        _ => {
                            let exact = metric.distance(&vs[0], &buf);
                            assert!(
                                (walk - exact).abs() < 2e-3,
                                "{q:?} {metric:?}: {walk} vs {exact}"
                            );
                        }
                    }
                }
                // The nearest by walk distance is the query itself.
                let best = (0..vs.len() as u32)
                    .min_by(|a, b| codes.dist(&p, *a).total_cmp(&codes.dist(&p, *b)))
                    .expect("nodes");
                assert_eq!(best, 0, "{q:?} {metric:?}");
            }
        }
    }

    #[test]
    fn foreign_or_broken_parameters_fail_the_check() {
        let f = Fitted::Scalar { bits: 8, lo: vec![0.0; 4], step: vec![0.1; 4] };
        assert!(f.check(Quantization::Int8, 4).is_ok());
        assert!(f.check(Quantization::Int4, 4).is_err());
        assert!(f.check(Quantization::Int8, 5).is_err());
        assert!(f.check(Quantization::F16, 4).is_err());
        assert!(Fitted::Scalar { bits: 8, lo: vec![0.0; 4], step: vec![0.0; 4] }
            .check(Quantization::Int8, 4)
            .is_err());
        assert!(Fitted::Binary { mean: vec![f32::NAN; 4] }
            .check(Quantization::Binary { oversample: 2 }, 4)
            .is_err());
    }
}
