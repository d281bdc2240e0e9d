//! Small statistics helpers shared by the bench examples.
#![allow(dead_code)]

/// The `p` quantile (0..=1) of `v` by nearest rank; sorts `v`.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
