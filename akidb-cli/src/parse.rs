//! Values of the command line that clap does not parse itself: durations, byte sizes,
//! `NAME=DIR` model entries and `FIELD:KIND` payload indexes.

use std::path::PathBuf;

use akidb::{FieldIndex, IndexKind};

/// `90s`, `15m`, `12h`, `7d`, `2w` (or plain seconds) as seconds; at least one second.
pub fn duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: a number and a unit, e.g. 7d or 12h"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        u => return Err(format!("{s:?}: unit {u:?} is not one of s, m, h, d, w")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err(format!("{s:?}: must be at least one second")),
        Some(v) => Ok(v),
        None => Err(format!("{s:?}: too long")),
    }
}

/// Seconds in the largest whole unit: `7d`, `36h`, `90s`.
pub fn duration_text(secs: u64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// `500MB`, `2GiB`, `1.5G`, `1024` as bytes (decimal units for KB/MB/GB/TB and K/M/G/T,
/// binary for KiB/MiB/GiB/TiB); at least one byte.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?}: a size, e.g. 500MB or 2GiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        u => return Err(format!("{s:?}: unit {u:?} is not one of B, KB, MB, GB, TB, KiB ... TiB")),
    };
    let v = (n * mult).round();
    if !(1.0..=u64::MAX as f64).contains(&v) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(v as u64)
}

/// `NAME=DIR`.
pub fn model(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("{s:?}: NAME=DIR, e.g. minilm=models/all-MiniLM-L6-v2")),
    }
}

/// `FIELD:KIND`, KIND one of keyword, integer, float, timestamp.
pub fn index(s: &str) -> Result<FieldIndex, String> {
    let (field, kind) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: FIELD:KIND, e.g. robot:keyword or ts:timestamp"))?;
    let kind: IndexKind = serde_json::from_value(serde_json::Value::String(kind.into()))
        .map_err(|_| format!("{s:?}: kind {kind:?} is not keyword, integer, float or timestamp"))?;
    Ok(FieldIndex::new(field, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_specs() {
        assert_eq!(duration("7d"), Ok(604_800));
        assert_eq!(duration("90"), Ok(90));
        assert_eq!(duration("15m"), Ok(900));
        for bad in ["", "d", "7y", "0s", "-1h", "99999999999999999999w", "1.5h"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration_text(604_800), "1w");
        assert_eq!(duration_text(90), "90s");
        assert_eq!(duration_text(129_600), "36h");
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("2GiB"), Ok(2 << 30));
        assert_eq!(size("1.5k"), Ok(1_500));
        for bad in ["", "MB", "0", "5 parsecs", "1e400", "-3"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(model("m=a=b"), Ok(("m".into(), PathBuf::from("a=b"))));
        assert!(model("=dir").is_err() && model("name").is_err());
        let i = index("meta.ts:timestamp").expect("index");
        assert_eq!((i.field.as_str(), i.kind), ("meta.ts", IndexKind::Timestamp));
        assert!(index("robot").is_err() && index("robot:text").is_err());
    }
}
