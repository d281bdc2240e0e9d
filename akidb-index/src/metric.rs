//! Distance metrics and the kernels behind them.

use serde::{Deserialize, Serialize};

/// Similarity metric of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity. Vectors are L2-normalised on the way in; score in [-1, 1].
    Cosine,
    /// Inner product; score unbounded, higher is better.
    Dot,
    /// Euclidean distance; score >= 0, lower is better.
    L2,
}

impl Metric {
    /// Internal distance, lower is better, for vectors prepared for this metric.
    #[inline]
    pub(crate) fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => 1.0 - dot(a, b),
            Metric::Dot => -dot(a, b),
            Metric::L2 => l2_squared(a, b),
        }
    }

    /// [`Metric::distance`] against `scale * b`, `b` stored as IEEE half floats (bit patterns):
    /// what the search view's walk computes (half the bytes to read per vector; see `view.rs`).
    /// The scale keeps any f32 vector in half-float range (the view stores `v / max|v_i|`).
    #[inline]
    pub(crate) fn distance_f16(self, a: &[f32], b: &[u16], scale: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - scale * dot_f16(a, b),
            Metric::Dot => -scale * dot_f16(a, b),
            Metric::L2 => l2_f16(a, b, scale),
        }
    }

    /// Turns an internal distance into the user-facing score.
    #[inline]
    pub(crate) fn score(self, distance: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
            Metric::L2 => distance.max(0.0).sqrt(),
        }
    }

    /// Whether a higher score is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

/// Inner product. On x86-64 with AVX2 and FMA (checked once at run time) a kernel compiled for
/// them runs; elsewhere the portable one, written with independent accumulators to vectorise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        return simd::dot_avx2(a, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::dot(a, b);
    #[allow(unreachable_code)]
    dot_portable(a, b)
}

/// Squared Euclidean distance (dispatched like [`dot`]).
#[inline]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        return simd::l2_avx2(a, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::l2(a, b);
    #[allow(unreachable_code)]
    l2_portable(a, b)
}

/// `v` as IEEE half floats (bit patterns) of `v / scale`, rounded to nearest, and the scale
/// (`max |v_i|`, 1 for a zero vector): every component of `v / scale` lies in [-1, 1], so no
/// vector overflows the half-float range and each keeps half-float relative precision.
/// `unit`: `v` is L2-normalised (cosine), its components already lie in [-1, 1]: scale 1.
pub(crate) fn to_f16(v: &[f32], unit: bool) -> (impl Iterator<Item = u16> + '_, f32) {
    let max = if unit { 1.0 } else { v.iter().fold(0.0f32, |m, x| m.max(x.abs())) };
    let scale = if max > 0.0 && max.is_finite() { max } else { 1.0 };
    (v.iter().map(move |x| half::f16::from_f32(x / scale).to_bits()), scale)
}

/// Inner product of an f32 vector and a half-float one (dispatched like [`dot`]; the x86-64
/// kernel also needs F16C, which every AVX2 CPU has).
#[inline]
pub(crate) fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_f16c() {
        return simd::dot_f16_avx2(a, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::dot_f16(a, b);
    #[allow(unreachable_code)]
    a.iter().zip(b).map(|(x, y)| x * half::f16::from_bits(*y).to_f32()).sum()
}

/// Writes `scale * b` (`b` in half floats) into `out` (same length): a stored vector back as f32.
#[inline]
pub(crate) fn decode_f16(b: &[u16], scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_f16c() {
        return simd::decode_f16_avx2(b, scale, out);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::decode_f16(b, scale, out);
    #[allow(unreachable_code)]
    for (o, y) in out.iter_mut().zip(b) {
        *o = scale * half::f16::from_bits(*y).to_f32();
    }
}

/// Squared Euclidean distance of an f32 vector `a` and `scale * b`, `b` in half floats.
#[inline]
pub(crate) fn l2_f16(a: &[f32], b: &[u16], scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_f16c() {
        return simd::l2_f16_avx2(a, b, scale);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::l2_f16(a, b, scale);
    #[allow(unreachable_code)]
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x - scale * half::f16::from_bits(*y).to_f32();
            d * d
        })
        .sum()
}

/// Inner product of an f32 vector and byte codes read as unsigned integers (0 to 255): the
/// int8 walk's kernel (the caller folds the codes' offsets and steps into `a`). AVX2+FMA on
/// x86-64 (checked at run time), NEON on aarch64, else the portable loop.
#[inline]
pub(crate) fn dot_u8(a: &[f32], b: &[u8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        return simd::dot_u8_avx2(a, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::dot_u8(a, b);
    #[allow(unreachable_code)]
    dot_u8_portable(a, b)
}

#[inline(always)]
fn dot_u8_portable(a: &[f32], b: &[u8]) -> f32 {
    let mut acc = [0.0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] = x[i].mul_add(f32::from(y[i]), acc[i]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * f32::from(*y);
    }
    s
}

/// Inner product, in exact integer arithmetic, of an 8-bit query and 4-bit codes: byte `k` of
/// `b` holds two codes (0 to 15), its low nibble weighted by `lo[k]` and its high nibble by
/// `hi[k]` (the caller lays the query's dimensions out as the codes' nibbles are). The int4
/// walk's kernel: 64 dimensions per AVX2 step (`vpmaddubsw`: no product or pair sum can
/// saturate, 2 x 15 x 128 < 2^15), NEON's widening multiplies on aarch64, else the portable
/// loop; all three give the same integer.
#[inline]
pub(crate) fn dot_u4(lo: &[i8], hi: &[i8], b: &[u8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        return simd::dot_u4_avx2(lo, hi, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::dot_u4(lo, hi, b);
    #[allow(unreachable_code)]
    dot_u4_portable(lo, hi, b)
}

#[inline(always)]
fn dot_u4_portable(lo: &[i8], hi: &[i8], b: &[u8]) -> i32 {
    lo.iter()
        .zip(hi)
        .zip(b)
        .map(|((l, h), c)| i32::from(*l) * i32::from(c & 15) + i32::from(*h) * i32::from(c >> 4))
        .sum()
}

/// Bits that differ between two sign codes: the binary walk's distance. POPCNT on x86-64
/// (checked at run time), NEON's per-byte count on aarch64, else the portable loop.
#[inline]
pub(crate) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_popcnt() {
        return simd::hamming_popcnt(a, b);
    }
    #[cfg(target_arch = "aarch64")]
    return neon::hamming(a, b);
    #[allow(unreachable_code)]
    hamming_portable(a, b)
}

#[inline(always)]
fn hamming_portable(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[inline(always)]
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            let d = x[i] - y[i];
            acc[i] = d.mul_add(d, acc[i]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Asks the CPU to start loading the first `lines` cache lines of `v` (a hint; no effect
/// elsewhere than x86-64).
#[inline]
pub(crate) fn prefetch<T>(v: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    simd::prefetch(v, lines);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, lines);
}

/// NEON kernels (aarch64, e.g. Jetson Thor). NEON is part of every aarch64 CPU, so nothing is
/// detected at run time. Half floats are widened with integer shifts and one multiplication
/// (exact for every finite half, normal or subnormal; AkiDB never stores infinities or NaNs),
/// so no FP16 extension is needed. Four independent accumulators of four lanes, as the x86-64
/// kernels have. With the x86-64 module, the only `unsafe` in the crate.
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon {
    use std::arch::aarch64::*;

    /// Four half floats (bit patterns) as f32.
    #[inline(always)]
    fn widen(bits: uint16x4_t) -> float32x4_t {
        // SAFETY (all intrinsics below): NEON is a baseline feature of aarch64; no memory access.
        unsafe {
            let w = vmovl_u16(bits);
            let sign = vshlq_n_u32::<16>(vandq_u32(w, vdupq_n_u32(0x8000)));
            let magnitude = vshlq_n_u32::<13>(vandq_u32(w, vdupq_n_u32(0x7fff)));
            // 2^112 rebiases the exponent from 15 to 127; subnormal halves become normal f32.
            let f = vmulq_f32(
                vreinterpretq_f32_u32(magnitude),
                vdupq_n_f32(f32::from_bits(0x7780_0000)),
            );
            vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(f), sign))
        }
    }

    /// Sums `term(x, y)` over 16-lane blocks with four accumulators; the tail goes to `tail`.
    #[inline(always)]
    fn fold(
        n: usize,
        mut block: impl FnMut(usize, float32x4_t) -> float32x4_t,
        tail: impl Fn(usize) -> f32,
    ) -> f32 {
        // SAFETY: register-only intrinsics (NEON is baseline on aarch64).
        unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            let mut i = 0;
            while i + 16 <= n {
                for (k, a) in acc.iter_mut().enumerate() {
                    *a = block(i + 4 * k, *a);
                }
                i += 16;
            }
            let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
            while i < n {
                s += tail(i);
                i += 1;
            }
            s
        }
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        fold(
            n,
            // SAFETY: `j + 4 <= n` for every block `fold` asks for.
            |j, acc| unsafe {
                vfmaq_f32(acc, vld1q_f32(a.as_ptr().add(j)), vld1q_f32(b.as_ptr().add(j)))
            },
            |j| a[j] * b[j],
        )
    }

    pub(super) fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        fold(
            n,
            // SAFETY: as in `dot`.
            |j, acc| unsafe {
                let d = vsubq_f32(vld1q_f32(a.as_ptr().add(j)), vld1q_f32(b.as_ptr().add(j)));
                vfmaq_f32(acc, d, d)
            },
            |j| (a[j] - b[j]) * (a[j] - b[j]),
        )
    }

    pub(super) fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        fold(
            n,
            // SAFETY: as in `dot`.
            |j, acc| unsafe {
                vfmaq_f32(acc, vld1q_f32(a.as_ptr().add(j)), widen(vld1_u16(b.as_ptr().add(j))))
            },
            |j| a[j] * half::f16::from_bits(b[j]).to_f32(),
        )
    }

    pub(super) fn l2_f16(a: &[f32], b: &[u16], scale: f32) -> f32 {
        let n = a.len().min(b.len());
        fold(
            n,
            // SAFETY: as in `dot`.
            |j, acc| unsafe {
                let y = vmulq_n_f32(widen(vld1_u16(b.as_ptr().add(j))), scale);
                let d = vsubq_f32(vld1q_f32(a.as_ptr().add(j)), y);
                vfmaq_f32(acc, d, d)
            },
            |j| {
                let d = a[j] - scale * half::f16::from_bits(b[j]).to_f32();
                d * d
            },
        )
    }

    pub(super) fn dot_u8(a: &[f32], b: &[u8]) -> f32 {
        let n = a.len().min(b.len());
        let mut i = 0;
        // SAFETY: every load reads 16 bytes / 4 x 4 floats at i <= n - 16 of slices of
        // length >= n; the rest are register-only intrinsics.
        let mut s = unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            while i + 16 <= n {
                let bytes = vld1q_u8(b.as_ptr().add(i));
                let lo = vmovl_u8(vget_low_u8(bytes));
                let hi = vmovl_u8(vget_high_u8(bytes));
                let parts = [
                    vmovl_u16(vget_low_u16(lo)),
                    vmovl_u16(vget_high_u16(lo)),
                    vmovl_u16(vget_low_u16(hi)),
                    vmovl_u16(vget_high_u16(hi)),
                ];
                for (k, (acc, part)) in acc.iter_mut().zip(parts).enumerate() {
                    let x = vld1q_f32(a.as_ptr().add(i + 4 * k));
                    *acc = vfmaq_f32(*acc, x, vcvtq_f32_u32(part));
                }
                i += 16;
            }
            vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])))
        };
        for j in i..n {
            s += a[j] * f32::from(b[j]);
        }
        s
    }

    pub(super) fn dot_u4(lo: &[i8], hi: &[i8], b: &[u8]) -> i32 {
        let n = b.len().min(lo.len()).min(hi.len());
        let mut i = 0;
        // SAFETY: every load reads 16 bytes at i <= n - 16 of slices of length >= n; the rest
        // are register-only intrinsics. Codes are 0..=15, so each i16 sum of two products is
        // at most 2 x 15 x 128.
        let mut s = unsafe {
            let mask = vdupq_n_u8(15);
            let mut acc = [vdupq_n_s32(0); 2];
            while i + 16 <= n {
                let c = vld1q_u8(b.as_ptr().add(i));
                let cl = vreinterpretq_s8_u8(vandq_u8(c, mask));
                let ch = vreinterpretq_s8_u8(vshrq_n_u8::<4>(c));
                let ql = vld1q_s8(lo.as_ptr().add(i));
                let qh = vld1q_s8(hi.as_ptr().add(i));
                let pl = vmlal_high_s8(vmull_s8(vget_low_s8(cl), vget_low_s8(ql)), cl, ql);
                let ph = vmlal_high_s8(vmull_s8(vget_low_s8(ch), vget_low_s8(qh)), ch, qh);
                acc[0] = vpadalq_s16(acc[0], pl);
                acc[1] = vpadalq_s16(acc[1], ph);
                i += 16;
            }
            vaddvq_s32(vaddq_s32(acc[0], acc[1]))
        };
        s += super::dot_u4_portable(&lo[i..n], &hi[i..n], &b[i..n]);
        s
    }

    pub(super) fn hamming(a: &[u64], b: &[u64]) -> u32 {
        let n = a.len().min(b.len());
        let mut i = 0;
        let mut total = 0u32;
        // SAFETY: every load reads two words at i <= n - 2 of slices of length >= n.
        unsafe {
            while i + 2 <= n {
                let x = veorq_u64(vld1q_u64(a.as_ptr().add(i)), vld1q_u64(b.as_ptr().add(i)));
                total += u32::from(vaddlvq_u8(vcntq_u8(vreinterpretq_u8_u64(x))));
                i += 2;
            }
        }
        for j in i..n {
            total += (a[j] ^ b[j]).count_ones();
        }
        total
    }

    pub(super) fn decode_f16(b: &[u16], scale: f32, out: &mut [f32]) {
        let n = b.len().min(out.len());
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: `i + 4 <= n` bounds both the load and the store.
            unsafe {
                let y = vmulq_n_f32(widen(vld1_u16(b.as_ptr().add(i))), scale);
                vst1q_f32(out.as_mut_ptr().add(i), y);
            }
            i += 4;
        }
        for j in i..n {
            out[j] = scale * half::f16::from_bits(b[j]).to_f32();
        }
    }
}

/// AVX2+FMA builds of the portable kernels. The only `unsafe` in the crate: calling a
/// `#[target_feature]` function, done only after the CPU was checked to have the features.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use std::arch::x86_64::{
        __m128i, __m256, __m256i, _mm256_add_epi16, _mm256_add_epi32, _mm256_add_ps,
        _mm256_and_si256, _mm256_cvtepi32_ps, _mm256_cvtepu8_epi32, _mm256_cvtph_ps,
        _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_maddubs_epi16, _mm256_mul_ps, _mm256_set1_epi16, _mm256_set1_epi8, _mm256_set1_ps,
        _mm256_setzero_ps, _mm256_setzero_si256, _mm256_srli_epi16, _mm256_storeu_ps,
        _mm256_storeu_si256, _mm_loadl_epi64, _mm_loadu_si128,
    };
    use std::sync::OnceLock;

    pub(super) fn has_avx2_fma() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }

    pub(super) fn has_popcnt() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("popcnt"))
    }

    #[target_feature(enable = "popcnt")]
    fn hamming_impl(a: &[u64], b: &[u64]) -> u32 {
        super::hamming_portable(a, b)
    }

    #[inline]
    pub(super) fn hamming_popcnt(a: &[u64], b: &[u64]) -> u32 {
        // SAFETY: callers check has_popcnt() first.
        unsafe { hamming_impl(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_u8_impl(a: &[f32], b: &[u8]) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 floats / 8 bytes at i <= n - 8 of slices of length >= n.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let at = i + 8 * j;
                    let x = _mm256_loadu_ps(a.as_ptr().add(at));
                    let bytes = _mm_loadl_epi64(b.as_ptr().add(at).cast::<__m128i>());
                    let y = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                    *acc = _mm256_fmadd_ps(x, y, *acc);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(a.as_ptr().add(i));
                let bytes = _mm_loadl_epi64(b.as_ptr().add(i).cast::<__m128i>());
                acc[0] =
                    _mm256_fmadd_ps(x, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), acc[0]);
                i += 8;
            }
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        let mut s: f32 = lanes.iter().sum();
        for k in i..n {
            s += a[k] * f32::from(b[k]);
        }
        s
    }

    #[target_feature(enable = "avx2")]
    fn dot_u4_impl(lo: &[i8], hi: &[i8], b: &[u8]) -> i32 {
        let n = b.len().min(lo.len()).min(hi.len());
        let mask = _mm256_set1_epi8(15);
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY: every load reads 32 bytes at i <= n - 32 of slices of length >= n.
        unsafe {
            while i + 32 <= n {
                let c = _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>());
                let cl = _mm256_and_si256(c, mask);
                let ch = _mm256_and_si256(_mm256_srli_epi16::<4>(c), mask);
                let ql = _mm256_loadu_si256(lo.as_ptr().add(i).cast::<__m256i>());
                let qh = _mm256_loadu_si256(hi.as_ptr().add(i).cast::<__m256i>());
                let pairs =
                    _mm256_add_epi16(_mm256_maddubs_epi16(cl, ql), _mm256_maddubs_epi16(ch, qh));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
                i += 32;
            }
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` holds 8 i32s.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), acc) };
        lanes.iter().sum::<i32>() + super::dot_u4_portable(&lo[i..n], &hi[i..n], &b[i..n])
    }

    #[inline]
    pub(super) fn dot_u4_avx2(lo: &[i8], hi: &[i8], b: &[u8]) -> i32 {
        // SAFETY: callers check has_avx2_fma() (which includes AVX2) first.
        unsafe { dot_u4_impl(lo, hi, b) }
    }

    #[inline]
    pub(super) fn dot_u8_avx2(a: &[f32], b: &[u8]) -> f32 {
        // SAFETY: callers check has_avx2_fma() first.
        unsafe { dot_u8_impl(a, b) }
    }

    pub(super) fn has_f16c() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| has_avx2_fma() && is_x86_feature_detected!("f16c"))
    }

    /// `f(acc, a[i..i+8], b[i..i+8] as f32)` over 8-lane blocks with four accumulators, then
    /// the tail in scalar code; the lanes summed at the end.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn fold_f16(
        a: &[f32],
        b: &[u16],
        f: impl Fn(__m256, __m256, __m256) -> __m256,
        tail: impl Fn(f32, f32) -> f32,
    ) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 lanes at i < n - 7 of slices of length >= n.
        unsafe {
            while i + 32 <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let at = i + 8 * j;
                    let x = _mm256_loadu_ps(a.as_ptr().add(at));
                    let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(at).cast::<__m128i>()));
                    *acc = f(*acc, x, y);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(a.as_ptr().add(i));
                let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()));
                acc[0] = f(acc[0], x, y);
                i += 8;
            }
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        let mut s: f32 = lanes.iter().sum();
        for k in i..n {
            s += tail(a[k], half::f16::from_bits(b[k]).to_f32());
        }
        s
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_f16_impl(a: &[f32], b: &[u16]) -> f32 {
        fold_f16(a, b, |acc, x, y| _mm256_fmadd_ps(x, y, acc), |x, y| x * y)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn l2_f16_impl(a: &[f32], b: &[u16], scale: f32) -> f32 {
        let s = _mm256_set1_ps(scale);
        fold_f16(
            a,
            b,
            |acc, x, y| {
                let d = _mm256_fnmadd_ps(s, y, x);
                _mm256_fmadd_ps(d, d, acc)
            },
            |x, y| (x - scale * y) * (x - scale * y),
        )
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn decode_f16_impl(b: &[u16], scale: f32, out: &mut [f32]) {
        let n = b.len().min(out.len());
        let s = _mm256_set1_ps(scale);
        let mut i = 0;
        // SAFETY: every load and store touches 8 lanes at i < n - 7 of slices of length >= n.
        unsafe {
            while i + 8 <= n {
                let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(s, y));
                i += 8;
            }
        }
        for k in i..n {
            out[k] = scale * half::f16::from_bits(b[k]).to_f32();
        }
    }

    #[inline]
    pub(super) fn decode_f16_avx2(b: &[u16], scale: f32, out: &mut [f32]) {
        // SAFETY: callers check has_f16c() first.
        unsafe { decode_f16_impl(b, scale, out) }
    }

    #[inline]
    pub(super) fn dot_f16_avx2(a: &[f32], b: &[u16]) -> f32 {
        // SAFETY: callers check has_f16c() (which includes AVX2 and FMA) first.
        unsafe { dot_f16_impl(a, b) }
    }

    #[inline]
    pub(super) fn l2_f16_avx2(a: &[f32], b: &[u16], scale: f32) -> f32 {
        // SAFETY: callers check has_f16c() first.
        unsafe { l2_f16_impl(a, b, scale) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
        super::dot_portable(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    fn l2_impl(a: &[f32], b: &[f32]) -> f32 {
        super::l2_portable(a, b)
    }

    /// Prefetches the first `most` cache lines of `v` (the CPU's own prefetcher streams the
    /// rest of a longer one once the walk reads it in order).
    #[inline]
    pub(super) fn prefetch<T>(v: &[T], most: usize) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr().cast::<i8>();
        let lines = std::mem::size_of_val(v).div_ceil(64).min(most);
        for i in 0..lines {
            // SAFETY: prefetch is a hint that never faults; the address lies inside `v`.
            unsafe { _mm_prefetch(p.add(i * 64), _MM_HINT_T0) };
        }
    }

    #[inline]
    pub(super) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: callers check has_avx2_fma() first.
        unsafe { dot_impl(a, b) }
    }

    #[inline]
    pub(super) fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: callers check has_avx2_fma() first.
        unsafe { l2_impl(a, b) }
    }
}

/// L2-normalises in place. Returns `false` (and leaves `v` as is) for a zero or non-finite norm.
///
/// The norm is computed in f64, where the square of every finite f32 (from the smallest
/// subnormal to `f32::MAX`) and their sum over any dimension are finite and non-zero: every
/// finite, non-zero f32 vector normalises (in f32, `[1e20; 4]` overflows and `[1e-23, ...]`
/// underflows to a zero norm).
pub fn normalize(v: &mut [f32]) -> bool {
    // Eight independent sums, so that the loop vectorises (one f64 sum is a serial chain).
    let mut acc = [0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f64::from(x) * f64::from(x);
        }
    }
    let sum: f64 =
        acc.iter().sum::<f64>() + rest.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
    let n = sum.sqrt();
    if !(n.is_finite() && n > 0.0) {
        return false;
    }
    // 1/n stays finite: n is at least the smallest f32 subnormal (1.4e-45).
    let inv = 1.0 / n;
    v.iter_mut().for_each(|x| *x = (f64::from(*x) * inv) as f32);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive() {
        for n in [1usize, 5, 37, 384, 1000] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 1.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
            let d: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let l: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * (1.0 + y.abs());
            assert!(close(dot(&a, &b), d) && close(l2_squared(&a, &b), l), "dispatched, n={n}");
            assert!(
                close(dot_portable(&a, &b), d) && close(l2_portable(&a, &b), l),
                "portable, n={n}"
            );
        }
    }

    #[test]
    fn half_float_kernels_match_naive() {
        // Magnitudes far outside half-float range (65,504) and far below it: the scale keeps
        // every vector representable.
        for mag in [1.0f32, 1e-6, 1e6] {
            for n in [1usize, 7, 8, 33, 384, 1000] {
                let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01 - 1.0) * mag).collect();
                let b: Vec<f32> = (0..n).map(|i| (i as f32).sin() * mag).collect();
                let (bits, scale) = to_f16(&b, false);
                let b16: Vec<u16> = bits.collect();
                let bh: Vec<f32> =
                    b16.iter().map(|x| scale * half::f16::from_bits(*x).to_f32()).collect();
                let d: f32 = a.iter().zip(&bh).map(|(x, y)| x * y).sum();
                let l: f32 = a.iter().zip(&bh).map(|(x, y)| (x - y) * (x - y)).sum();
                let close = |x: f32, y: f32, tol: f32| (x - y).abs() <= tol;
                let tol = 1e-4 * mag * mag * (1.0 + n as f32);
                assert!(close(scale * dot_f16(&a, &b16), d, tol), "dot, n={n}, mag={mag}");
                assert!(close(l2_f16(&a, &b16, scale), l, tol), "l2, n={n}, mag={mag}");
                // Against the f32 vector: within half-float rounding (relative 2^-11 per term).
                let exact = dot(&a, &b);
                let bound: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum::<f32>() * 1e-3;
                assert!(close(scale * dot_f16(&a, &b16), exact, bound + tol), "n={n}, mag={mag}");
                assert!(
                    Metric::L2.distance_f16(&b, &b16, scale) <= 1e-5 * mag * mag * n as f32,
                    "self distance"
                );
            }
        }
    }

    /// Every finite half float decodes exactly as the `half` crate does it (the x86-64 kernel
    /// uses F16C, the aarch64 one integer widening), at several vector lengths and offsets.
    #[test]
    fn half_float_decoding_is_exact_for_every_finite_half() {
        let finite: Vec<u16> =
            (0..=u16::MAX).filter(|b| half::f16::from_bits(*b).is_finite()).collect();
        for scale in [1.0f32, 0.5, 3.0] {
            let mut out = vec![0.0f32; finite.len()];
            decode_f16(&finite, scale, &mut out);
            for (b, o) in finite.iter().zip(&out) {
                let want = scale * half::f16::from_bits(*b).to_f32();
                assert_eq!(o.to_bits(), want.to_bits(), "half {b:#06x} x {scale}");
            }
        }
        // Odd lengths: the tails.
        for n in [1usize, 3, 5, 17] {
            let mut out = vec![0.0f32; n];
            decode_f16(&finite[1000..1000 + n], 1.0, &mut out);
            for (b, o) in finite[1000..1000 + n].iter().zip(&out) {
                assert_eq!(*o, half::f16::from_bits(*b).to_f32());
            }
        }
    }

    /// The int8 and binary kernels (dispatched: AVX2 / POPCNT, NEON under qemu, or portable)
    /// against the scalar reference, at lengths that exercise every block size and tail.
    #[test]
    fn byte_and_bit_kernels_match_the_scalar_reference() {
        for n in [1usize, 7, 8, 15, 16, 31, 33, 100, 384, 1000, 2560] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
            let b: Vec<u8> = (0..n).map(|i| (i * 151 % 256) as u8).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            for (got, what) in
                [(dot_u8(&a, &b), "dispatched"), (dot_u8_portable(&a, &b), "portable")]
            {
                assert!((f64::from(got) - want).abs() <= 1e-3 * (1.0 + want.abs()), "{what} n={n}");
            }
            // 4-bit codes against an 8-bit query, at the extremes (-128, 127, code 15) too.
            let bytes = n.div_ceil(2);
            let q8 = |i: usize, salt: usize| match (i + salt) % 11 {
                0 => -128i8,
                1 => 127,
                _ => ((i * 53 + salt) % 256) as u8 as i8,
            };
            let lo: Vec<i8> = (0..bytes).map(|i| q8(i, 0)).collect();
            let hi: Vec<i8> = (0..bytes).map(|i| q8(i, 5)).collect();
            let b4: Vec<u8> =
                (0..bytes).map(|i| if i % 7 == 0 { 0xFF } else { (i * 151 % 256) as u8 }).collect();
            let want: i64 = (0..bytes)
                .map(|i| {
                    i64::from(lo[i]) * i64::from(b4[i] & 15)
                        + i64::from(hi[i]) * i64::from(b4[i] >> 4)
                })
                .sum();
            assert_eq!(i64::from(dot_u4(&lo, &hi, &b4)), want, "u4 dispatched n={n}");
            assert_eq!(i64::from(dot_u4_portable(&lo, &hi, &b4)), want, "u4 portable n={n}");
            let words = n.div_ceil(64).max(1);
            let x: Vec<u64> =
                (0..words as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
            let y: Vec<u64> =
                (0..words as u64).map(|i| (i + 3).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)).collect();
            let want: u32 = x.iter().zip(&y).map(|(p, q)| (p ^ q).count_ones()).sum();
            assert_eq!(hamming(&x, &y), want, "n={n}");
            assert_eq!(hamming(&x, &x), 0);
            assert_eq!(hamming(&x, &x.iter().map(|w| !w).collect::<Vec<_>>()), 64 * words as u32);
        }
    }

    #[test]
    fn normalize_rejects_zero() {
        let mut z = vec![0.0f32; 4];
        assert!(!normalize(&mut z));
        let mut v = vec![3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6);
    }

    #[test]
    fn normalize_takes_every_finite_nonzero_vector() {
        let smallest = f32::from_bits(1); // the smallest subnormal
        let cases: [Vec<f32>; 6] = [
            vec![1e20; 4],
            vec![1e-23, 1e-23, 0.0, 0.0],
            vec![f32::MAX, -f32::MAX, f32::MAX, 0.0],
            vec![smallest, 0.0, 0.0],
            vec![f32::MAX, smallest],
            vec![1e-38; 65_536],
        ];
        for mut v in cases {
            let before = v.clone();
            assert!(normalize(&mut v), "{:?}", &before[..before.len().min(4)]);
            let norm: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-5,
                "norm {norm} for {:?}",
                &before[..before.len().min(4)]
            );
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }
}
