//! Metadata filters: a typed builder for Rust and a JSON form (MongoDB/Chroma style).
//!
//! # JSON form
//!
//! ```json
//! {"robot": "r3"}                                   // eq shorthand
//! {"level": {"$in": ["ERROR", "WARN"]}}
//! {"ts": {"$gte": 1000, "$lt": 2000}}               // one range with two bounds
//! {"$or": [{"node": "lidar"}, {"code": {"$exists": true}}]}
//! {"$not": {"robot": {"$ne": "r1"}}}
//! ```
//!
//! Several keys in one object are combined with AND; `{}` matches everything. Field names may use
//! dots to reach into nested objects (`"pose.x"`). Operators: `$eq`, `$ne`, `$in`, `$nin`, `$gt`,
//! `$gte`, `$lt`, `$lte`, `$exists`, and at the top of an object `$and`, `$or`, `$not`.
//!
//! # Semantics
//!
//! - `eq`/`in`: JSON equality, numbers compared by exact value (`1` equals `1.0`; integers are
//!   never rounded to floats, so nanosecond timestamps beyond 2^53 compare exactly).
//! - `ne`/`nin`: the negation of `eq`/`in`, so a document without the field matches.
//! - ranges: numbers against numbers (exactly, as for `eq`), strings against strings (byte
//!   order); a field of another type (or missing) does not match.
//! - Limits: nesting depth [`crate::limits::MAX_FILTER_DEPTH`], list length
//!   [`crate::limits::MAX_FILTER_VALUES`].

use serde_json::{Map, Value};

use crate::limits::{MAX_FILTER_DEPTH, MAX_FILTER_VALUES};

/// A metadata filter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Filter {
    /// Field equals value.
    Eq {
        /// Field path.
        field: String,
        /// Value.
        value: Value,
    },
    /// Field missing or not equal to value.
    Ne {
        /// Field path.
        field: String,
        /// Value.
        value: Value,
    },
    /// Field equals one of the values.
    In {
        /// Field path.
        field: String,
        /// Values.
        values: Vec<Value>,
    },
    /// Field within bounds.
    Range {
        /// Field path.
        field: String,
        /// Lower bound.
        lower: Option<Bound>,
        /// Upper bound.
        upper: Option<Bound>,
    },
    /// Field present (any value, `null` included).
    Exists {
        /// Field path.
        field: String,
    },
    /// All must match (empty: matches everything).
    And(Vec<Filter>),
    /// At least one must match (empty: matches nothing).
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The bound.
    pub value: RangeValue,
    /// Whether the bound itself matches.
    pub inclusive: bool,
}

/// Values a range can compare against.
///
/// Numbers compare by exact value across representations: an integer and a float are compared
/// without rounding either (so `1_795_162_443_000_000_001` is greater than the float
/// `1.795162443e18`, and `3` equals `3.0`).
#[derive(Debug, Clone, PartialEq)]
pub enum RangeValue {
    /// An integer (JSON integers, and the Rust integer types).
    Integer(i128),
    /// A float (JSON numbers with a fraction or exponent, and `f64`/`f32`). NaN matches nothing.
    Float(f64),
    /// A string (byte order).
    String(String),
}

impl From<f64> for RangeValue {
    fn from(v: f64) -> Self {
        RangeValue::Float(v)
    }
}
impl From<f32> for RangeValue {
    fn from(v: f32) -> Self {
        RangeValue::Float(v.into())
    }
}
macro_rules! range_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for RangeValue {
            fn from(v: $t) -> Self {
                RangeValue::Integer(v as i128)
            }
        }
    )*};
}
range_from_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
impl From<&str> for RangeValue {
    fn from(v: &str) -> Self {
        RangeValue::String(v.to_string())
    }
}
impl From<String> for RangeValue {
    fn from(v: String) -> Self {
        RangeValue::String(v)
    }
}

/// A malformed filter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The text is not JSON.
    #[error("filter is not valid JSON: {source}")]
    Json {
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A filter must be a JSON object.
    #[error("filter at {path} must be a JSON object, got {found}")]
    ExpectedObject {
        /// Where (JSON pointer).
        path: String,
        /// Type found.
        found: &'static str,
    },
    /// An operator that does not exist.
    #[error("unknown operator {op:?} at {path}")]
    UnknownOperator {
        /// Where.
        path: String,
        /// The operator.
        op: String,
    },
    /// An operator given an argument of the wrong type.
    #[error("operator {op} at {path} expects {expected}, got {found}")]
    BadArgument {
        /// Where.
        path: String,
        /// The operator.
        op: &'static str,
        /// What it takes.
        expected: &'static str,
        /// What it got.
        found: &'static str,
    },
    /// Deeper than [`MAX_FILTER_DEPTH`].
    #[error("filter nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A list longer than [`MAX_FILTER_VALUES`].
    #[error("list at {path} has {len} values, the limit is {max}")]
    TooManyValues {
        /// Where.
        path: String,
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// An empty field name.
    #[error("empty field name at {path}")]
    EmptyField {
        /// Where.
        path: String,
    },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn json_type_name(v: &Value) -> &'static str {
    type_name(v)
}

impl Filter {
    /// `field == value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Eq { field: field.into(), value: value.into() }
    }
    /// `field != value` (missing fields match).
    pub fn ne(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Ne { field: field.into(), value: value.into() }
    }
    /// `field` is one of `values`.
    pub fn is_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Filter::In { field: field.into(), values: values.into_iter().map(Into::into).collect() }
    }
    /// `field > value`.
    pub fn gt(field: impl Into<String>, value: impl Into<RangeValue>) -> Self {
        Self::range(field, Some(Bound { value: value.into(), inclusive: false }), None)
    }
    /// `field >= value`.
    pub fn gte(field: impl Into<String>, value: impl Into<RangeValue>) -> Self {
        Self::range(field, Some(Bound { value: value.into(), inclusive: true }), None)
    }
    /// `field < value`.
    pub fn lt(field: impl Into<String>, value: impl Into<RangeValue>) -> Self {
        Self::range(field, None, Some(Bound { value: value.into(), inclusive: false }))
    }
    /// `field <= value`.
    pub fn lte(field: impl Into<String>, value: impl Into<RangeValue>) -> Self {
        Self::range(field, None, Some(Bound { value: value.into(), inclusive: true }))
    }
    /// `lower <= field < upper`.
    pub fn between(
        field: impl Into<String>,
        lower: impl Into<RangeValue>,
        upper: impl Into<RangeValue>,
    ) -> Self {
        Self::range(
            field,
            Some(Bound { value: lower.into(), inclusive: true }),
            Some(Bound { value: upper.into(), inclusive: false }),
        )
    }
    fn range(field: impl Into<String>, lower: Option<Bound>, upper: Option<Bound>) -> Self {
        Filter::Range { field: field.into(), lower, upper }
    }
    /// `field` is present.
    pub fn exists(field: impl Into<String>) -> Self {
        Filter::Exists { field: field.into() }
    }
    /// `self AND other` (flattens nested ANDs).
    pub fn and(self, other: Filter) -> Self {
        match self {
            Filter::And(mut v) => {
                v.push(other);
                Filter::And(v)
            }
            s => Filter::And(vec![s, other]),
        }
    }
    /// `self OR other` (flattens nested ORs).
    pub fn or(self, other: Filter) -> Self {
        match self {
            Filter::Or(mut v) => {
                v.push(other);
                Filter::Or(v)
            }
            s => Filter::Or(vec![s, other]),
        }
    }
    /// `NOT self`.
    pub fn negate(self) -> Self {
        Filter::Not(Box::new(self))
    }

    /// Parses the JSON form (see the module docs).
    pub fn from_json_str(text: &str) -> Result<Self, FilterError> {
        let v: Value = serde_json::from_str(text).map_err(|source| FilterError::Json { source })?;
        Self::from_json(&v)
    }

    /// Parses an already decoded JSON value.
    pub fn from_json(value: &Value) -> Result<Self, FilterError> {
        parse_object(value, "", 0)
    }

    /// Checks the limits of a filter built in Rust (JSON-parsed filters are checked on parse).
    pub fn validate(&self) -> Result<(), FilterError> {
        fn walk(f: &Filter, depth: usize) -> Result<(), FilterError> {
            if depth > MAX_FILTER_DEPTH {
                return Err(FilterError::TooDeep { max: MAX_FILTER_DEPTH });
            }
            match f {
                Filter::And(v) | Filter::Or(v) => {
                    check_len("", v.len())?;
                    v.iter().try_for_each(|f| walk(f, depth + 1))
                }
                Filter::Not(f) => walk(f, depth + 1),
                Filter::In { field, values } => {
                    check_field(field, "")?;
                    check_len(field, values.len())
                }
                Filter::Eq { field, .. }
                | Filter::Ne { field, .. }
                | Filter::Range { field, .. }
                | Filter::Exists { field } => check_field(field, ""),
            }
        }
        walk(self, 0)
    }

    /// Whether a metadata object matches.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Filter::And(v) => v.iter().all(|f| f.matches(metadata)),
            Filter::Or(v) => v.iter().any(|f| f.matches(metadata)),
            Filter::Not(f) => !f.matches(metadata),
            leaf => leaf.leaf_matches(Field::of(lookup(metadata, leaf.field()))),
        }
    }

    /// The field a leaf (`Eq`, `Ne`, `In`, `Range`, `Exists`) tests; empty for `And`, `Or`
    /// and `Not`.
    pub(crate) fn field(&self) -> &str {
        match self {
            Filter::Eq { field, .. }
            | Filter::Ne { field, .. }
            | Filter::In { field, .. }
            | Filter::Range { field, .. }
            | Filter::Exists { field } => field,
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => "",
        }
    }

    /// Whether a leaf matches a document whose field holds `v`: the one rule of the module
    /// docs' semantics, whatever holds the metadata (a parsed object, a payload index).
    /// `And`, `Or` and `Not` are combined by their callers; here they match nothing.
    pub(crate) fn leaf_matches(&self, v: Field<'_>) -> bool {
        match self {
            Filter::Eq { value, .. } => v.equals(value),
            Filter::Ne { value, .. } => !v.equals(value),
            Filter::In { values, .. } => values.iter().any(|x| v.equals(x)),
            Filter::Range { lower, upper, .. } => {
                !matches!(v, Field::Missing)
                    && lower.as_ref().is_none_or(|b| v.within(b, true))
                    && upper.as_ref().is_none_or(|b| v.within(b, false))
            }
            Filter::Exists { .. } => !matches!(v, Field::Missing),
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => false,
        }
    }
}

/// A document's value of one field, as a filter leaf sees it: strings and numbers apart from
/// other JSON (so that a compact payload index can hand them over without building JSON).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// The document has no such field.
    Missing,
    /// A string.
    Str(&'a str),
    /// An integer (exact).
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// Anything else (`null`, a boolean, an array, an object).
    Json(&'a Value),
}

impl<'a> Field<'a> {
    /// The view of a looked-up JSON value.
    pub(crate) fn of(v: Option<&'a Value>) -> Self {
        match v {
            None => Field::Missing,
            Some(Value::String(s)) => Field::Str(s),
            Some(Value::Number(n)) => match number(n) {
                RangeValue::Integer(i) => Field::Int(i),
                RangeValue::Float(f) => Field::Float(f),
                RangeValue::String(_) => Field::Missing,
            },
            Some(other) => Field::Json(other),
        }
    }

    fn as_number(&self) -> Option<RangeValue> {
        match *self {
            Field::Int(i) => Some(RangeValue::Integer(i)),
            Field::Float(f) => Some(RangeValue::Float(f)),
            _ => None,
        }
    }

    /// JSON equality with `value`, numbers by exact value.
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Field::Missing, _) => false,
            (Field::Str(s), Value::String(t)) => *s == t.as_str(),
            (Field::Int(_) | Field::Float(_), Value::Number(n)) => {
                self.as_number().and_then(|x| num_cmp(&x, &number(n)))
                    == Some(std::cmp::Ordering::Equal)
            }
            (Field::Json(v), value) => *v == value,
            _ => false,
        }
    }

    /// Whether the value lies on the inner side of bound `b` (a lower bound when `lower`).
    fn within(&self, b: &Bound, lower: bool) -> bool {
        let ord = match (self, &b.value) {
            (Field::Str(s), RangeValue::String(x)) => s.cmp(&x.as_str()),
            (
                Field::Int(_) | Field::Float(_),
                x @ (RangeValue::Integer(_) | RangeValue::Float(_)),
            ) => match self.as_number().and_then(|n| num_cmp(&n, x)) {
                Some(o) => o,
                None => return false,
            },
            _ => return false,
        };
        use std::cmp::Ordering::*;
        match (lower, ord, b.inclusive) {
            (_, Equal, inclusive) => inclusive,
            (true, Greater, _) | (false, Less, _) => true,
            _ => false,
        }
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        self.negate()
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::from_json_str(s)
    }
}

fn check_len(path: &str, len: usize) -> Result<(), FilterError> {
    if len > MAX_FILTER_VALUES {
        return Err(FilterError::TooManyValues { path: path.into(), len, max: MAX_FILTER_VALUES });
    }
    Ok(())
}

fn check_field(field: &str, path: &str) -> Result<(), FilterError> {
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return Err(FilterError::EmptyField { path: path.into() });
    }
    Ok(())
}

/// The value at a (dotted) field path of a metadata object.
pub(crate) fn lookup<'a>(metadata: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(v) = metadata.get(field) {
        return Some(v);
    }
    let mut parts = field.split('.');
    let mut cur = metadata.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A JSON number as a [`RangeValue`]: integers exactly, other numbers as floats.
fn number(n: &serde_json::Number) -> RangeValue {
    if let Some(i) = n.as_i64() {
        RangeValue::Integer(i.into())
    } else if let Some(u) = n.as_u64() {
        RangeValue::Integer(u.into())
    } else {
        RangeValue::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Exact order of two numbers (`None` for NaN or a string): integers are never rounded to
/// floats, so integers beyond 2^53 (nanosecond timestamps) compare exactly.
fn num_cmp(a: &RangeValue, b: &RangeValue) -> Option<std::cmp::Ordering> {
    use RangeValue::{Float, Integer};
    match (a, b) {
        (Integer(x), Integer(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Integer(i), Float(f)) => int_float_cmp(*i, *f),
        (Float(f), Integer(i)) => int_float_cmp(*i, *f).map(std::cmp::Ordering::reverse),
        _ => None,
    }
}

/// Exact order of an integer and a float.
fn int_float_cmp(i: i128, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering::{Greater, Less};
    if f.is_nan() {
        return None;
    }
    // 2^127 is exact as f64; every i128 lies in [-2^127, 2^127).
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= LIMIT {
        return Some(Less);
    }
    if f < -LIMIT {
        return Some(Greater);
    }
    // |f| < 2^127: its integer part converts exactly; the fraction decides a tie.
    let whole = f.trunc();
    let ord = i.cmp(&(whole as i128));
    if ord != std::cmp::Ordering::Equal {
        return Some(ord);
    }
    let frac = f - whole;
    Some(if frac > 0.0 {
        Less
    } else if frac < 0.0 {
        Greater
    } else {
        std::cmp::Ordering::Equal
    })
}

fn parse_object(value: &Value, path: &str, depth: usize) -> Result<Filter, FilterError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(FilterError::TooDeep { max: MAX_FILTER_DEPTH });
    }
    let obj = value.as_object().ok_or_else(|| FilterError::ExpectedObject {
        path: display_path(path),
        found: type_name(value),
    })?;
    let mut parts = Vec::with_capacity(obj.len());
    for (key, arg) in obj {
        let here = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
        parts.push(match key.as_str() {
            "$and" | "$or" => {
                let op = if key == "$and" { "$and" } else { "$or" };
                let items = arg.as_array().ok_or_else(|| FilterError::BadArgument {
                    path: here.clone(),
                    op,
                    expected: "an array of filters",
                    found: type_name(arg),
                })?;
                check_len(&here, items.len())?;
                let fs = items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| parse_object(f, &format!("{here}/{i}"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                if op == "$and" {
                    Filter::And(fs)
                } else {
                    Filter::Or(fs)
                }
            }
            "$not" => Filter::Not(Box::new(parse_object(arg, &here, depth + 1)?)),
            k if k.starts_with('$') => {
                return Err(FilterError::UnknownOperator { path: display_path(path), op: k.into() })
            }
            field => {
                check_field(field, &here)?;
                parse_field(field, arg, &here)?
            }
        });
    }
    Ok(if parts.len() == 1 {
        parts.pop().unwrap_or(Filter::And(Vec::new()))
    } else {
        Filter::And(parts)
    })
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        path.into()
    }
}

fn parse_field(field: &str, arg: &Value, path: &str) -> Result<Filter, FilterError> {
    let ops = match arg {
        Value::Object(o) if !o.is_empty() && o.keys().all(|k| k.starts_with('$')) => o,
        Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => {
            return Err(FilterError::UnknownOperator {
                path: path.into(),
                op: "mixing $operators and plain keys".into(),
            })
        }
        literal => return Ok(Filter::eq(field, literal.clone())),
    };
    let mut parts = Vec::new();
    let (mut lower, mut upper) = (None, None);
    for (op, v) in ops {
        let here = format!("{path}/{op}");
        match op.as_str() {
            "$eq" => parts.push(Filter::eq(field, v.clone())),
            "$ne" => parts.push(Filter::ne(field, v.clone())),
            "$in" | "$nin" => {
                let opn = if op == "$in" { "$in" } else { "$nin" };
                let list = v.as_array().ok_or_else(|| FilterError::BadArgument {
                    path: here.clone(),
                    op: opn,
                    expected: "an array",
                    found: type_name(v),
                })?;
                check_len(&here, list.len())?;
                let f = Filter::is_in(field, list.iter().cloned());
                parts.push(if opn == "$in" { f } else { !f });
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let opn: &'static str = match op.as_str() {
                    "$gt" => "$gt",
                    "$gte" => "$gte",
                    "$lt" => "$lt",
                    _ => "$lte",
                };
                let value = match v {
                    Value::Number(n) => number(n),
                    Value::String(s) => RangeValue::String(s.clone()),
                    other => {
                        return Err(FilterError::BadArgument {
                            path: here,
                            op: opn,
                            expected: "a number or a string",
                            found: type_name(other),
                        })
                    }
                };
                let bound = Bound { value, inclusive: opn.ends_with('e') };
                if opn.starts_with("$g") {
                    lower = Some(bound);
                } else {
                    upper = Some(bound);
                }
            }
            "$exists" => {
                let b = v.as_bool().ok_or_else(|| FilterError::BadArgument {
                    path: here.clone(),
                    op: "$exists",
                    expected: "a boolean",
                    found: type_name(v),
                })?;
                let f = Filter::exists(field);
                parts.push(if b { f } else { !f });
            }
            other => {
                return Err(FilterError::UnknownOperator { path: path.into(), op: other.into() })
            }
        }
    }
    if lower.is_some() || upper.is_some() {
        parts.push(Filter::range(field, lower, upper));
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::And(parts) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn json_and_builder_agree() {
        let f = Filter::from_json_str(
            r#"{"robot":"r3","ts":{"$gte":10,"$lt":20},"level":{"$in":["ERROR","WARN"]}}"#,
        )
        .expect("parse");
        let b = Filter::eq("robot", "r3")
            .and(Filter::gte("ts", 10))
            .and(Filter::is_in("level", ["ERROR", "WARN"]));
        let docs = [
            json!({"robot":"r3","ts":10,"level":"ERROR"}),
            json!({"robot":"r3","ts":20,"level":"ERROR"}),
            json!({"robot":"r3","ts":15.5,"level":"INFO"}),
            json!({"robot":"r2","ts":15,"level":"WARN"}),
            json!({"robot":"r3","ts":"15","level":"WARN"}),
        ];
        let expect = [true, false, false, false, false];
        for (d, e) in docs.iter().zip(expect) {
            assert_eq!(f.matches(&meta(d.clone())), e, "{d}");
        }
        // The builder form without the upper bound matches the second document too.
        assert!(b.matches(&meta(docs[1].clone())));
    }

    #[test]
    fn ne_nin_exists_not_or_nested() {
        let d = meta(json!({"a": 1, "pose": {"x": 2.5}, "tag": null}));
        let t = |s: &str| Filter::from_json_str(s).expect(s).matches(&d);
        assert!(t(r#"{"a": 1.0}"#));
        assert!(t(r#"{"b": {"$ne": 1}}"#));
        assert!(!t(r#"{"a": {"$ne": 1}}"#));
        assert!(t(r#"{"a": {"$nin": [2, 3]}}"#));
        assert!(t(r#"{"tag": {"$exists": true}}"#));
        assert!(t(r#"{"zz": {"$exists": false}}"#));
        assert!(t(r#"{"pose.x": {"$gt": 2}}"#));
        assert!(t(r#"{"$or": [{"a": 5}, {"pose.x": 2.5}]}"#));
        assert!(!t(r#"{"$not": {"a": 1}}"#));
        assert!(t(r#"{}"#));
        assert!(!t(r#"{"$or": []}"#));
        assert!(!t(r#"{"s": {"$lt": "b"}, "a": {"$lte": 1}}"#));
    }

    #[test]
    fn string_ranges() {
        let d = meta(json!({"t": "2026-01-02T03:00:00Z"}));
        assert!(Filter::between("t", "2026-01-01", "2026-01-03").matches(&d));
        assert!(!Filter::gt("t", "2026-01-03").matches(&d));
        assert!(!Filter::gt("t", 5).matches(&d));
    }

    #[test]
    fn malformed_filters_are_typed_errors() {
        let bad = [
            (r#"[1]"#, "ExpectedObject"),
            (r#"{"a": {"$regex": "x"}}"#, "UnknownOperator"),
            (r#"{"$xor": []}"#, "UnknownOperator"),
            (r#"{"a": {"$in": 3}}"#, "BadArgument"),
            (r#"{"a": {"$gt": [1]}}"#, "BadArgument"),
            (r#"{"a": {"$exists": 1}}"#, "BadArgument"),
            (r#"{"$and": {}}"#, "BadArgument"),
            (r#"{"": 1}"#, "EmptyField"),
            (r#"{"a..b": 1}"#, "EmptyField"),
            (r#"{"a": {"$gt": 1, "b": 2}}"#, "UnknownOperator"),
            (r#"{"a": "#, "Json"),
        ];
        for (text, kind) in bad {
            let err = Filter::from_json_str(text).expect_err(text);
            assert!(format!("{err:?}").starts_with(kind), "{text}: {err:?}");
        }
        let deep = (0..40).fold(String::from("{}"), |acc, _| format!(r#"{{"$not": {acc}}}"#));
        assert!(matches!(Filter::from_json_str(&deep), Err(FilterError::TooDeep { .. })));
        let mut f = Filter::eq("a", 1);
        for _ in 0..40 {
            f = !f;
        }
        assert!(matches!(f.validate(), Err(FilterError::TooDeep { .. })));
        let many: Vec<i64> = (0..(MAX_FILTER_VALUES as i64 + 1)).collect();
        assert!(matches!(
            Filter::is_in("a", many).validate(),
            Err(FilterError::TooManyValues { .. })
        ));
    }

    #[test]
    fn integers_compare_exactly_in_eq_in_and_ranges() {
        // Nanosecond timestamps: neighbours 1 ns apart are 256 apart as f64 would round them.
        let t: u64 = 1_795_162_443_000_000_000;
        let doc = |v: Value| meta(json!({ "ns": v }));
        let (at, next, prev) = (doc(json!(t)), doc(json!(t + 1)), doc(json!(t - 1)));
        let builders = [
            (Filter::eq("ns", t), [true, false, false]),
            (Filter::ne("ns", t), [false, true, true]),
            (Filter::is_in("ns", [t + 1, t + 63]), [false, true, false]),
            (Filter::gt("ns", t), [false, true, false]),
            (Filter::gte("ns", t), [true, true, false]),
            (Filter::lt("ns", t), [false, false, true]),
            (Filter::lte("ns", t), [true, false, true]),
            (Filter::between("ns", t - 1, t + 1), [true, false, true]), // [lower, upper)
        ];
        for (f, expect) in builders {
            let got = [f.matches(&at), f.matches(&next), f.matches(&prev)];
            assert_eq!(got, expect, "{f:?}");
            // The JSON form of the same filter agrees.
            let json = match &f {
                Filter::Eq { value, .. } => json!({ "ns": value }),
                Filter::Ne { value, .. } => json!({ "ns": { "$ne": value } }),
                Filter::In { values, .. } => json!({ "ns": { "$in": values } }),
                Filter::Range { lower, upper, .. } => {
                    let mut o = Map::new();
                    let num = |b: &Bound| match b.value {
                        RangeValue::Integer(i) => json!(i as u64),
                        _ => unreachable!(),
                    };
                    if let Some(b) = lower {
                        o.insert(if b.inclusive { "$gte" } else { "$gt" }.into(), num(b));
                    }
                    if let Some(b) = upper {
                        o.insert(if b.inclusive { "$lte" } else { "$lt" }.into(), num(b));
                    }
                    json!({ "ns": o })
                }
                _ => unreachable!(),
            };
            let parsed = Filter::from_json(&json).expect("parse");
            assert_eq!(
                [parsed.matches(&at), parsed.matches(&next), parsed.matches(&prev)],
                expect,
                "{json}"
            );
        }
        // i64 extremes and negative numbers.
        assert!(Filter::lt("v", i64::MIN + 1).matches(&meta(json!({"v": i64::MIN}))));
        assert!(!Filter::eq("v", i64::MAX - 1).matches(&meta(json!({"v": i64::MAX}))));
        assert!(Filter::gt("v", u64::MAX - 1).matches(&meta(json!({"v": u64::MAX}))));
    }

    #[test]
    fn integers_and_floats_compare_by_exact_value() {
        let t: u64 = 1_795_162_443_000_000_000; // exactly representable as f64
        let f = t as f64;
        let doc = |v: Value| meta(json!({ "v": v }));
        // Equal values across representations match; a neighbour does not.
        assert!(Filter::eq("v", f).matches(&doc(json!(t))));
        assert!(Filter::eq("v", t).matches(&doc(json!(f))));
        assert!(!Filter::eq("v", f).matches(&doc(json!(t + 1))));
        assert!(Filter::is_in("v", [json!(f)]).matches(&doc(json!(t))));
        assert!(Filter::gt("v", f).matches(&doc(json!(t + 1))));
        assert!(!Filter::gt("v", f).matches(&doc(json!(t))));
        assert!(Filter::lt("v", t + 1).matches(&doc(json!(f))));
        // Fractions decide between an integer and the float next to it, on both signs.
        assert!(Filter::gt("v", 2.5).matches(&doc(json!(3))));
        assert!(!Filter::gt("v", 2.5).matches(&doc(json!(2))));
        assert!(Filter::lt("v", -2.5).matches(&doc(json!(-3))));
        assert!(!Filter::lt("v", -2.5).matches(&doc(json!(-2))));
        assert!(Filter::eq("v", 3).matches(&doc(json!(3.0))));
        assert!(Filter::gte("v", 3.0).matches(&doc(json!(3))));
        // Floats beyond every integer, and NaN, are handled without wrapping.
        assert!(Filter::lt("v", 1e300).matches(&doc(json!(u64::MAX))));
        assert!(Filter::gt("v", -1e300).matches(&doc(json!(i64::MIN))));
        assert!(!Filter::gt("v", f64::NAN).matches(&doc(json!(1))));
        assert!(!Filter::lt("v", f64::NAN).matches(&doc(json!(1))));
        // JSON: a float bound against integer metadata.
        let parsed: Filter = r#"{"v": {"$gte": 1795162443000000000.0, "$lt": 1795162443000000001}}"#
            .parse()
            .expect("parse");
        assert!(parsed.matches(&doc(json!(t))));
        assert!(!parsed.matches(&doc(json!(t + 1))));
    }
}
