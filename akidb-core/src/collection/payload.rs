//! Declared payload indexes in memory ([`Payload`]) and filters planned against them
//! ([`Plan`]).
//!
//! A document's metadata lives in storage (as JSON text). In memory a collection keeps only
//! the fields its configuration declares (`CollectionConfig::indexes`): a row per live
//! document (`row_of`, `seqs`) and per declared field one compact column of that row's value —
//! a dictionary id for a keyword (4 bytes; the dictionary counts documents per value), an
//! `i64` for an integer or timestamp, an `f64` for a float (8 bytes). A value of another type
//! than declared is kept whole beside the column (`other`), so a column reads back exactly the
//! JSON the document holds, and a filter leaf means the same on a column as on the parsed
//! object (`Filter::leaf_matches` is the one rule). Nothing is kept when nothing is declared.
//!
//! A [`Plan`] binds a filter's leaves to columns. A filter all of whose fields are declared is
//! evaluated per document from the columns alone (during graph walks, per visited node); one
//! naming an undeclared field is decided per document in three-valued logic where the columns
//! can, and the rest read from storage by the caller (see `Collection::search_with`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::filter::{lookup, Field, Filter};
use crate::schema::{FieldIndex, IndexKind};

/// A free row's sequence number.
const FREE: u64 = u64::MAX;

/// Keyword cells: no such field, a value that is not a string; term `t` is `t + 2`.
const K_MISSING: u32 = 0;
const K_OTHER: u32 = 1;
/// Integer cells: no such field, another value (an `i64` equal to a marker is one too).
const I_MISSING: i64 = i64::MIN;
const I_OTHER: i64 = i64::MIN + 1;
/// Float cells (NaN payloads: JSON numbers are never NaN).
const F_MISSING: u64 = 0x7ff8_0000_0000_0001;
const F_OTHER: u64 = 0x7ff8_0000_0000_0002;
/// Integers a float column holds exactly.
const F_EXACT: i128 = 1 << 53;

/// The declared fields of a collection's live documents (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Payload {
    columns: Vec<Column>,
    row_of: HashMap<u64, u32>,
    /// Sequence number of each row ([`FREE`] for a free one).
    seqs: Vec<u64>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Column {
    field: String,
    cells: Cells,
    /// Values of another type than the column's, by row.
    other: HashMap<u32, Value>,
}

#[derive(Debug)]
enum Cells {
    Keyword { ids: Vec<u32>, dict: Dict },
    Integer(Vec<i64>),
    Float(Vec<u64>),
}

/// Distinct strings of a keyword column, with the number of live documents holding each.
#[derive(Debug, Default)]
struct Dict {
    id_of: HashMap<Box<str>, u32>,
    terms: Vec<Box<str>>,
    counts: Vec<u32>,
    free: Vec<u32>,
}

impl Dict {
    fn add(&mut self, s: &str) -> u32 {
        if let Some(&t) = self.id_of.get(s) {
            self.counts[t as usize] += 1;
            return t;
        }
        let t = match self.free.pop() {
            Some(t) => {
                self.terms[t as usize] = s.into();
                self.counts[t as usize] = 1;
                t
            }
            None => {
                self.terms.push(s.into());
                self.counts.push(1);
                (self.terms.len() - 1) as u32
            }
        };
        self.id_of.insert(s.into(), t);
        t
    }

    fn release(&mut self, t: u32) {
        let c = &mut self.counts[t as usize];
        *c -= 1;
        if *c == 0 {
            let term = std::mem::take(&mut self.terms[t as usize]);
            self.id_of.remove(&term);
            self.free.push(t);
        }
    }

    fn count(&self, s: &str) -> u64 {
        self.id_of.get(s).map_or(0, |&t| self.counts[t as usize].into())
    }
}

impl Column {
    fn new(index: &FieldIndex) -> Self {
        let cells = match index.kind {
            IndexKind::Keyword => Cells::Keyword { ids: Vec::new(), dict: Dict::default() },
            IndexKind::Integer | IndexKind::Timestamp => Cells::Integer(Vec::new()),
            IndexKind::Float => Cells::Float(Vec::new()),
        };
        Self { field: index.field.clone(), cells, other: HashMap::new() }
    }

    /// Appends an empty cell (a new row).
    fn push_missing(&mut self) {
        match &mut self.cells {
            Cells::Keyword { ids, .. } => ids.push(K_MISSING),
            Cells::Integer(v) => v.push(I_MISSING),
            Cells::Float(v) => v.push(F_MISSING),
        }
    }

    /// Stores `value` in row `row` (whose cell is empty).
    fn set(&mut self, row: u32, value: Option<&Value>) {
        let Some(value) = value else { return };
        let r = row as usize;
        let plain = match (&mut self.cells, value) {
            (Cells::Keyword { ids, dict }, Value::String(s)) => {
                ids[r] = dict.add(s) + 2;
                true
            }
            (Cells::Keyword { ids, .. }, _) => {
                ids[r] = K_OTHER;
                false
            }
            (Cells::Integer(v), Value::Number(n)) => match n.as_i64() {
                Some(i) if i != I_MISSING && i != I_OTHER => {
                    v[r] = i;
                    true
                }
                _ => {
                    v[r] = I_OTHER;
                    false
                }
            },
            (Cells::Float(v), Value::Number(_)) => match Field::of(Some(value)) {
                Field::Float(f) => {
                    v[r] = f.to_bits();
                    true
                }
                Field::Int(i) if i.abs() <= F_EXACT => {
                    v[r] = (i as f64).to_bits();
                    true
                }
                _ => {
                    v[r] = F_OTHER;
                    false
                }
            },
            (Cells::Integer(v), _) => {
                v[r] = I_OTHER;
                false
            }
            (Cells::Float(v), _) => {
                v[r] = F_OTHER;
                false
            }
        };
        if !plain {
            self.other.insert(row, value.clone());
        }
    }

    /// Empties row `row`'s cell.
    fn clear(&mut self, row: u32) {
        let r = row as usize;
        match &mut self.cells {
            Cells::Keyword { ids, dict } => {
                if ids[r] >= 2 {
                    dict.release(ids[r] - 2);
                }
                ids[r] = K_MISSING;
            }
            Cells::Integer(v) => v[r] = I_MISSING,
            Cells::Float(v) => v[r] = F_MISSING,
        }
        self.other.remove(&row);
    }

    /// The value of row `row`, as filters see it.
    fn get(&self, row: u32) -> Field<'_> {
        let r = row as usize;
        let other = || Field::of(self.other.get(&row));
        match &self.cells {
            Cells::Keyword { ids, dict } => match ids[r] {
                K_MISSING => Field::Missing,
                K_OTHER => other(),
                t => Field::Str(&dict.terms[(t - 2) as usize]),
            },
            Cells::Integer(v) => match v[r] {
                I_MISSING => Field::Missing,
                I_OTHER => other(),
                i => Field::Int(i.into()),
            },
            Cells::Float(v) => match v[r] {
                F_MISSING => Field::Missing,
                F_OTHER => other(),
                bits => Field::Float(f64::from_bits(bits)),
            },
        }
    }
}

impl Payload {
    /// Columns for the declared fields (none: the payload keeps nothing).
    pub(crate) fn new(indexes: &[FieldIndex]) -> Self {
        Self { columns: indexes.iter().map(Column::new).collect(), ..Self::default() }
    }

    /// Whether no field is declared (nothing is kept).
    pub(crate) fn keeps_nothing(&self) -> bool {
        self.columns.is_empty()
    }

    /// Records the declared fields of a new live document.
    pub(crate) fn insert(&mut self, seq: u64, metadata: &Map<String, Value>) {
        if self.columns.is_empty() {
            return;
        }
        let row = match self.free.pop() {
            Some(row) => {
                self.seqs[row as usize] = seq;
                row
            }
            None => {
                self.seqs.push(seq);
                self.columns.iter_mut().for_each(Column::push_missing);
                (self.seqs.len() - 1) as u32
            }
        };
        for c in &mut self.columns {
            let value = lookup(metadata, &c.field);
            c.set(row, value);
        }
        if let Some(old) = self.row_of.insert(seq, row) {
            // A sequence number is never reused; should it be, the old row goes.
            self.release(old);
        }
    }

    /// Forgets retired documents.
    pub(crate) fn remove(&mut self, seqs: &[u64]) {
        for seq in seqs {
            if let Some(row) = self.row_of.remove(seq) {
                self.release(row);
            }
        }
    }

    fn release(&mut self, row: u32) {
        self.columns.iter_mut().for_each(|c| c.clear(row));
        self.seqs[row as usize] = FREE;
        self.free.push(row);
    }

    /// The row of live sequence `seq`.
    pub(crate) fn row(&self, seq: u64) -> Option<u32> {
        self.row_of.get(&seq).copied()
    }

    /// Live rows with their sequence numbers.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.seqs.iter().enumerate().filter(|(_, s)| **s != FREE).map(|(r, s)| (r as u32, *s))
    }

    /// Live documents.
    pub(crate) fn len(&self) -> usize {
        self.row_of.len()
    }

    fn column_of(&self, field: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.field == field)
    }

    /// Documents whose keyword column `col` holds the string `value` (`None` for another
    /// column kind or value type: not counted).
    fn keyword_count(&self, col: usize, value: &Value) -> Option<u64> {
        match (&self.columns[col].cells, value) {
            (Cells::Keyword { dict, .. }, Value::String(s)) => Some(dict.count(s)),
            _ => None,
        }
    }

    /// The cells of the strings an `Eq` or `In` leaf names on keyword column `col` (strings no
    /// document holds have none); `None` for another leaf, column kind, or a value that is not
    /// a string.
    fn keyword_cells(&self, col: usize, leaf: &Filter) -> Option<Vec<u32>> {
        let Cells::Keyword { dict, .. } = &self.columns[col].cells else { return None };
        let values = match leaf {
            Filter::Eq { value, .. } => std::slice::from_ref(value),
            Filter::In { values, .. } => values.as_slice(),
            _ => return None,
        };
        let mut cells = Vec::with_capacity(values.len());
        for v in values {
            if let Some(&t) = dict.id_of.get(v.as_str()?) {
                cells.push(t + 2);
            }
        }
        Some(cells)
    }

    /// Distinct strings of keyword column `col`.
    #[cfg(test)]
    fn distinct_terms(&self, col: usize) -> usize {
        match &self.columns[col].cells {
            Cells::Keyword { dict, .. } => dict.id_of.len(),
            _ => 0,
        }
    }
}

/// A filter with its leaves bound to the payload's columns (see the module docs).
#[derive(Debug)]
pub(crate) enum Plan<'f> {
    Leaf {
        filter: &'f Filter,
        column: Option<usize>,
        /// For `Eq`/`In` of strings on a keyword column: the cells of those strings, so that a
        /// row is tested by comparing integers.
        cells: Option<Vec<u32>>,
    },
    And(Vec<Plan<'f>>),
    Or(Vec<Plan<'f>>),
    Not(Box<Plan<'f>>),
}

impl<'f> Plan<'f> {
    /// Binds `filter` to `payload`'s columns.
    pub(crate) fn new(filter: &'f Filter, payload: &Payload) -> Self {
        match filter {
            Filter::And(v) => Plan::And(v.iter().map(|f| Plan::new(f, payload)).collect()),
            Filter::Or(v) => Plan::Or(v.iter().map(|f| Plan::new(f, payload)).collect()),
            Filter::Not(f) => Plan::Not(Box::new(Plan::new(f, payload))),
            leaf => {
                let column = payload.column_of(leaf.field());
                let cells = column.and_then(|c| payload.keyword_cells(c, leaf));
                Plan::Leaf { filter: leaf, column, cells }
            }
        }
    }

    /// Whether the columns decide every live document: the payload keeps rows (some field is
    /// declared) and every leaf names a declared field. (A filter without leaves, `{}`, is
    /// decided by no column, but needs the rows to enumerate the documents.)
    pub(crate) fn covered(&self, payload: &Payload) -> bool {
        !payload.keeps_nothing() && self.leaves_bound()
    }

    fn leaves_bound(&self) -> bool {
        match self {
            Plan::Leaf { column, .. } => column.is_some(),
            Plan::And(v) | Plan::Or(v) => v.iter().all(Plan::leaves_bound),
            Plan::Not(p) => p.leaves_bound(),
        }
    }

    /// Whether live document `seq` matches, for a plan the payload [covers](Plan::covered).
    pub(crate) fn accepts(&self, payload: &Payload, seq: u64) -> bool {
        payload.row(seq).is_some_and(|row| self.eval(payload, row) == Some(true))
    }

    /// The live documents that match, for a plan the payload [covers](Plan::covered): one pass
    /// over the columns.
    pub(crate) fn matching<'p>(&'p self, payload: &'p Payload) -> impl Iterator<Item = u64> + 'p {
        payload.rows().filter(|(row, _)| self.eval(payload, *row) == Some(true)).map(|(_, s)| s)
    }

    /// Whether row `row` matches: `None` when that depends on an undeclared field.
    pub(crate) fn eval(&self, payload: &Payload, row: u32) -> Option<bool> {
        match self {
            Plan::Leaf { filter, column, cells } => {
                let c = &payload.columns[(*column)?];
                match (cells, &c.cells) {
                    // A string equals a string only: a missing field or another value never
                    // matches these leaves.
                    (Some(want), Cells::Keyword { ids, .. }) => {
                        Some(want.contains(&ids[row as usize]))
                    }
                    _ => Some(filter.leaf_matches(c.get(row))),
                }
            }
            // Kleene logic: one `false` decides an `And`, one `true` an `Or`; otherwise an
            // undecided part leaves the whole undecided.
            Plan::And(v) => Self::combine(v, payload, row, false),
            Plan::Or(v) => Self::combine(v, payload, row, true),
            Plan::Not(p) => p.eval(payload, row).map(|b| !b),
        }
    }

    /// The value of an `And` (`decisive` false) or an `Or` (`decisive` true) of `parts`.
    fn combine(parts: &[Plan<'_>], payload: &Payload, row: u32, decisive: bool) -> Option<bool> {
        let mut unknown = false;
        for p in parts {
            match p.eval(payload, row) {
                Some(b) if b == decisive => return Some(decisive),
                None => unknown = true,
                Some(_) => {}
            }
        }
        (!unknown).then_some(!decisive)
    }

    /// The share of the live documents the filter keeps, from the keyword counts, when every
    /// leaf is an equality or list on a keyword column (combined as independent); otherwise
    /// `None` (the search rule then samples).
    pub(crate) fn estimate(&self, payload: &Payload) -> Option<f64> {
        let live = payload.len().max(1) as f64;
        match self {
            Plan::Leaf { filter: Filter::Eq { value, .. }, column: Some(c), .. } => {
                Some(payload.keyword_count(*c, value)? as f64 / live)
            }
            Plan::Leaf { filter: Filter::In { values, .. }, column: Some(c), .. } => {
                let mut n = 0;
                let mut seen = std::collections::HashSet::new();
                for v in values.iter().filter(|v| seen.insert(v.as_str())) {
                    n += payload.keyword_count(*c, v)?;
                }
                Some((n as f64 / live).min(1.0))
            }
            Plan::Leaf { .. } => None,
            Plan::And(v) => v.iter().try_fold(1.0, |s, p| Some(s * p.estimate(payload)?)),
            Plan::Or(v) => {
                v.iter().try_fold(0.0, |s, p| Some(1.0 - (1.0 - s) * (1.0 - p.estimate(payload)?)))
            }
            Plan::Not(p) => Some(1.0 - p.estimate(payload)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn payload() -> Payload {
        Payload::new(&[
            FieldIndex::new("robot", IndexKind::Keyword),
            FieldIndex::new("ts", IndexKind::Timestamp),
            FieldIndex::new("temp", IndexKind::Float),
            FieldIndex::new("pose.zone", IndexKind::Integer),
        ])
    }

    /// Documents of every shape a column must hold exactly: plain values, values of another
    /// type (numbers in a keyword field, strings, floats and huge integers in integer fields,
    /// integers beyond 2^53 in a float field), markers' own values, missing fields, nesting.
    fn documents() -> Vec<Map<String, Value>> {
        [
            json!({"robot": "r1", "ts": 100, "temp": 20.5, "pose": {"zone": 3}}),
            json!({"robot": "r2", "ts": 200, "temp": 21, "pose": {"zone": -1}}),
            json!({"robot": 7, "ts": "200", "temp": "hot", "pose": {"zone": 2.5}}),
            json!({"robot": null, "ts": 1.5, "temp": 9_007_199_254_740_993_u64}),
            json!({"robot": ["r1"], "ts": i64::MIN, "temp": -0.0, "pose": 4}),
            json!({"ts": i64::MIN + 1, "temp": 1e300, "pose": {"zone": u64::MAX}}),
            json!({"robot": "r1", "ts": 18_446_744_073_709_551_615_u64, "temp": true}),
            json!({"robot": "", "other": 1}),
            json!({}),
        ]
        .into_iter()
        .map(obj)
        .collect()
    }

    fn filters() -> Vec<Filter> {
        let mut v = vec![
            Filter::eq("robot", "r1"),
            Filter::eq("robot", 7),
            Filter::eq("robot", Value::Null),
            Filter::eq("robot", json!(["r1"])),
            Filter::ne("robot", "r1"),
            Filter::is_in("robot", ["r1", "r2", ""]),
            Filter::gte("robot", "r2"),
            Filter::exists("robot"),
            Filter::eq("ts", 200),
            Filter::eq("ts", 200.0),
            Filter::gt("ts", 1),
            Filter::lt("ts", 150.5),
            Filter::eq("ts", i64::MIN),
            Filter::gte("ts", "1"),
            Filter::eq("temp", 21),
            Filter::gt("temp", 20.5),
            Filter::gt("temp", 9_007_199_254_740_992_u64),
            Filter::eq("temp", -0.0),
            Filter::lte("temp", 0),
            Filter::eq("pose.zone", 3),
            Filter::lt("pose.zone", 3),
            Filter::exists("pose.zone"),
            Filter::eq("other", 1),
        ];
        v.push(Filter::eq("robot", "r1").and(Filter::gt("ts", 50)).or(Filter::eq("other", 1)));
        v.push(!Filter::eq("robot", "r1").or(Filter::exists("temp")));
        v
    }

    #[test]
    fn columns_answer_every_filter_as_the_parsed_metadata_does() {
        let mut p = payload();
        let docs = documents();
        for (i, d) in docs.iter().enumerate() {
            p.insert(i as u64 + 1, d);
        }
        for f in filters() {
            let plan = Plan::new(&f, &p);
            for (i, d) in docs.iter().enumerate() {
                let row = p.row(i as u64 + 1).expect("row");
                let want = f.matches(d);
                match plan.eval(&p, row) {
                    Some(got) => assert_eq!(got, want, "{f:?} on {d:?}"),
                    // Undecided only when an undeclared field could decide it.
                    None => assert!(!plan.covered(&p), "{f:?} on {d:?}"),
                }
            }
        }
    }

    #[test]
    fn rows_and_terms_are_reused_after_removal() {
        let mut p = payload();
        for s in 1..=100u64 {
            p.insert(s, &obj(json!({"robot": format!("r{s}"), "ts": s})));
        }
        assert_eq!(p.distinct_terms(0), 100);
        p.remove(&(1..=90).collect::<Vec<_>>());
        assert_eq!((p.len(), p.distinct_terms(0)), (10, 10));
        for s in 101..=190u64 {
            p.insert(s, &obj(json!({"robot": "same", "ts": s})));
        }
        // The rows and dictionary slots of the removed documents were reused.
        assert_eq!(p.seqs.len(), 100);
        assert_eq!((p.len(), p.distinct_terms(0)), (100, 11));
        let f = Filter::eq("robot", "same");
        assert_eq!(Plan::new(&f, &p).estimate(&p), Some(0.9));
        let f = Filter::eq("robot", "r95");
        let plan = Plan::new(&f, &p);
        let hits: Vec<u64> = plan.matching(&p).collect();
        assert_eq!(hits, vec![95]);
        assert!(plan.accepts(&p, 95) && !plan.accepts(&p, 94) && !plan.accepts(&p, 5));
        assert_eq!(plan.estimate(&p), Some(0.01));
        // A removed document's value is gone from the filters and the counts.
        let f = Filter::eq("robot", "r5");
        assert_eq!(Plan::new(&f, &p).estimate(&p), Some(0.0));
    }

    #[test]
    fn estimates_combine_keyword_counts_and_give_up_elsewhere() {
        let mut p = payload();
        for s in 0..1000u64 {
            let robot = if s % 10 == 0 { "r0" } else { "rx" };
            p.insert(s, &obj(json!({"robot": robot, "ts": s})));
        }
        let est = |f: Filter| Plan::new(&f, &p).estimate(&p);
        assert_eq!(est(Filter::eq("robot", "r0")), Some(0.1));
        assert_eq!(est(Filter::is_in("robot", ["r0", "r0", "nope"])), Some(0.1));
        let both = est(Filter::eq("robot", "r0").or(Filter::eq("robot", "rx"))).expect("est");
        assert!((both - 0.91).abs() < 1e-9, "{both}");
        assert_eq!(est(!Filter::eq("robot", "rx")), Some(0.09999999999999998));
        assert_eq!(est(Filter::eq("robot", "r0").and(Filter::gt("ts", 5))), None);
        assert_eq!(est(Filter::eq("other", "x")), None);
    }

    #[test]
    fn an_empty_payload_keeps_nothing() {
        let mut p = Payload::new(&[]);
        p.insert(1, &obj(json!({"robot": "r1"})));
        assert!(p.keeps_nothing() && p.row(1).is_none() && p.rows().next().is_none());
        let f = Filter::eq("robot", "r1");
        let plan = Plan::new(&f, &p);
        assert!(!plan.covered(&p));
        // A filter without leaves is decided by no column, but an empty payload has no rows.
        let all = Filter::And(Vec::new());
        assert!(!Plan::new(&all, &p).covered(&p));
    }
}
