//! Text queries in three modes: vector (the embedded query against the graph), keyword (BM25
//! over the full-text index) and hybrid (both, fused).
//!
//! Both sides of a hybrid query run side by side (the query waits for the slower), read the
//! same applied state and take the same filter plan: the filter is applied inside each search
//! (the graph walk, the BM25 scan), never to cut lists afterwards, so each side returns its
//! best `candidates` matching documents. The lists are then fused:
//!
//! - [`Fusion::Rrf`] (default): reciprocal rank fusion, `score = sum of w / (k + rank)` over the
//!   sides that found the document (rank from 1, `k` 10). The vector side weighs 1; the keyword
//!   side weighs twice how much of the query its best hit matches (`match_strength`: its BM25
//!   score over the sum of the query terms' IDFs, 0 to 1), and nothing when that is under
//!   [`KEYWORD_MIN_STRENGTH`] (0.4). A query whose terms the log holds exactly (a code, an id,
//!   the words of a line) leans on the keyword ranks; one that matches less than that share
//!   of itself (a common word of a paraphrase) is the vector answer unchanged. Ranks, not
//!   scores, are fused: no score scales to align. `k` 10 and the weight were chosen on the
//!   labelled fleet-log set of `examples/hybrid_eval.rs` (k 5 to 60 compared in
//!   docs/benchmarks.md), the threshold on its separate tuning set.
//! - [`Fusion::Weighted`]: each side's scores scaled to 0..1 over its candidates (best 1, worst
//!   0), then `w * vector + (1 - w) * keyword`; a side that did not find the document adds 0.
//!
//! Ties are broken by sequence number (older first). With [`QueryOptions::explain`] every hit
//! says on which side it was found, at which rank and with which score.

use akidb_embed_api::InputKind;
use akidb_fulltext::KeywordQuery;
use akidb_index::{FilterPlan, SearchParams, SearchPath};
use serde::Serialize;

use super::engine::Applied;
use crate::limits::{MAX_K, MAX_TEXT_BYTES};
use crate::{Collection, Error, Filter, Hit, Result};

/// Which sides answer a text query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryMode {
    /// Hybrid where the collection keeps a full-text index (and it is working), else vector.
    #[default]
    Auto,
    /// The embedded query against the vector index only.
    Vector,
    /// BM25 over the full-text index only (no model run: works without an embedder).
    Keyword,
    /// Both, fused ([`QueryOptions::fusion`]).
    Hybrid,
}

/// How a hybrid query merges its two ranked lists (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Fusion {
    /// Reciprocal rank fusion with constant `k` (10 by default), the keyword side weighted by
    /// its best hit's match strength, not counted below [`KEYWORD_MIN_STRENGTH`] (see the
    /// module docs).
    Rrf {
        /// The rank constant: larger flattens the difference between top ranks.
        k: u32,
    },
    /// Scores scaled to 0..1 per side, then `vector * v + (1 - vector) * keyword`.
    Weighted {
        /// The vector side's weight, 0 to 1.
        vector: f32,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: 10 }
    }
}

/// Per-query options of [`Collection::query_text_with`]. `SearchParams` converts into the
/// default options with those graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Which sides answer.
    pub mode: QueryMode,
    /// How hybrid lists merge.
    pub fusion: Fusion,
    /// The vector side's graph parameters (`ef`, exact).
    pub params: SearchParams,
    /// Documents each side of a hybrid query contributes (0: `max(2k, 50)`, at most
    /// [`MAX_K`]).
    pub candidates: usize,
    /// Fill [`Hit::explain`].
    pub explain: bool,
}

impl From<SearchParams> for QueryOptions {
    fn from(params: SearchParams) -> Self {
        Self { params, ..Self::default() }
    }
}

impl QueryOptions {
    /// Options with this mode.
    pub fn mode(mode: QueryMode) -> Self {
        Self { mode, ..Self::default() }
    }
    /// Sets the fusion.
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }
    /// Sets the vector side's graph parameters.
    pub fn with_params(mut self, params: SearchParams) -> Self {
        self.params = params;
        self
    }
    /// Sets the candidates per side.
    pub fn with_candidates(mut self, n: usize) -> Self {
        self.candidates = n;
        self
    }
    /// Asks for [`Hit::explain`].
    pub fn with_explain(mut self) -> Self {
        self.explain = true;
        self
    }
}

/// Where one side ranked a hit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideRank {
    /// Rank on that side, from 1.
    pub rank: u32,
    /// That side's score: the vector metric's, or BM25.
    pub score: f32,
}

/// How a hit of a keyword or hybrid query was found.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct HitExplain {
    /// Its place in the vector side's list, if there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<SideRank>,
    /// Its place in the keyword side's list, if there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<SideRank>,
}

/// One answer of a search before its document is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ranked {
    pub(crate) seq: u64,
    pub(crate) score: f32,
    pub(crate) explain: Option<HitExplain>,
}

impl Ranked {
    pub(crate) fn new(seq: u64, score: f32) -> Self {
        Self { seq, score, explain: None }
    }
}

/// The side a list came from.
#[derive(Clone, Copy)]
enum Side {
    Vector,
    Keyword,
}

/// Bytes an exact scan may read (`HnswIndex::exact_scan_bytes`) for a text query's vector
/// side to scan instead of walking the graph: 64 MiB. The default collection (cosine, half-float
/// codes) scans its codes, 2 bytes a dimension for each distinct vector (a log's repeated
/// lines share one): 87,381 of 384-d, 32,768 of 1,024-d, 13,107 of 2,560-d; others read the f32
/// vectors of every live id, 4 bytes a dimension. Questions are far from every
/// stored line, where graph walks are weakest: the lines that answer them are rare, isolated
/// points (an incident among templated routine traffic) that a walk reaches last. On a
/// 30,000-line fleet log the graph at the default `ef` (64) found vector recall@10 0.30-0.35
/// where the scan finds 0.75-0.86, and even at `ef` 2,048 (0.94-0.97 of the exact top 10 by
/// distance) 0.70-0.72. Through the codes a scan of 60,000 x 384 cost as much as one of the
/// f32 vectors of 30,000 did (vector p50 5.2-6.5 ms against 5.1-6.4, the model run included,
/// 2-core development machine; docs/benchmarks.md, "Hybrid search"): a text query has already
/// paid for a model run. An explicit `ef` (or `exact`) in the query's parameters is kept.
pub const TEXT_EXACT_BYTES: usize = 64 << 20;

/// The least beam width of a text query's graph walk, where a scan would read more than
/// [`TEXT_EXACT_BYTES`] (the collection's `ef_search` where larger; an explicit `ef` is
/// kept). Chosen on the tuning question set at 30,000 lines: hybrid recall@10 0.707 at `ef`
/// 64, 0.809 at 256, 0.827 at 512, 0.892 at 1,024, 0.910 at 2,048 (the exact scan's); the
/// walk at 1,024 cost 0.9-1.0 ms more (vector p50) than at 64, at 2,048 2.0-2.4 ms (about
/// the f32 scan's cost at that size).
pub const TEXT_MIN_EF: usize = 1024;

/// The vector side's parameters for a text query whose exact scan would read `scan_bytes`, the
/// collection's `ef_search` given (see [`TEXT_EXACT_BYTES`] and [`TEXT_MIN_EF`]).
fn text_vector_params(asked: SearchParams, scan_bytes: usize, ef_search: usize) -> SearchParams {
    if asked.ef.is_some() || asked.exact {
        asked
    } else if scan_bytes <= TEXT_EXACT_BYTES {
        SearchParams::exact()
    } else {
        SearchParams::with_ef(TEXT_MIN_EF.max(ef_search))
    }
}

impl Collection {
    /// [`Collection::query_text`] with per-query options: the mode (vector, keyword, hybrid;
    /// by default hybrid where the collection keeps a full-text index), the fusion, the vector
    /// side's graph parameters and explanations. Also reports the vector side's search path
    /// (`None` when it did not run). The vector side scans exactly while that reads at most
    /// [`TEXT_EXACT_BYTES`], above that walks the graph at least [`TEXT_MIN_EF`] wide, unless
    /// the options name an `ef`.
    ///
    /// Keyword and hybrid queries need the full-text index ([`Error::NoFullText`] without one,
    /// [`Error::FullText`] when it failed); a query of more than
    /// [`akidb_fulltext::MAX_QUERY_TERMS`] distinct terms is [`Error::TooManyQueryTerms`]; one
    /// of only punctuation or stop words finds nothing on the keyword side.
    pub fn query_text_with(
        &self,
        query: &str,
        k: usize,
        filter: Option<&Filter>,
        options: impl Into<QueryOptions>,
    ) -> Result<(Vec<Hit>, Option<SearchPath>)> {
        let o: QueryOptions = options.into();
        self.check_request(k, filter, &o.params)?;
        if query.len() > MAX_TEXT_BYTES {
            return Err(Error::TextTooLong {
                id: "(query)".into(),
                bytes: query.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let mode = self.resolve(o.mode)?;
        let keywords = match mode {
            QueryMode::Vector => None,
            _ => Some(KeywordQuery::new(query).map_err(|e| match e {
                akidb_fulltext::FullTextError::TooManyTerms { terms, max } => {
                    Error::TooManyQueryTerms { terms, max }
                }
                e => Error::FullText { collection: self.name().into(), reason: e.to_string() },
            })?),
        };
        let vector = match mode {
            QueryMode::Keyword => None,
            _ => {
                let embedder = self.embedder()?;
                let out = embedder.embed(&[query], InputKind::Query)?;
                akidb_embed_api::check_output(embedder.info(), 1, &out)?;
                let v = out.vectors.into_iter().next().unwrap_or_default();
                let cfg = &self.state.config;
                Some(crate::validate::check_vector(&v, cfg.dimension, cfg.metric, || {
                    "query".into()
                })?)
            }
        };
        let per_side = match (mode, o.candidates) {
            (QueryMode::Hybrid, 0) => (2 * k).clamp(50, MAX_K),
            (QueryMode::Hybrid, n) => n.clamp(k, MAX_K),
            _ => k,
        };
        let name = self.name().to_string();
        let explain = o.explain;
        self.answer(filter, |applied, plan| {
            // The two sides run side by side: a hybrid query waits for the slower, not both.
            let (vec_side, kw_side) = rayon::join(
                || -> Result<_> {
                    let Some(v) = &vector else { return Ok(None) };
                    let index = applied.index();
                    let (bytes, ef_search) = (index.exact_scan_bytes(), index.params().ef_search);
                    let params = text_vector_params(o.params, bytes, ef_search);
                    let (n, path) = index.search_planned(v, per_side, plan, params)?;
                    Ok(Some((n.into_iter().map(|n| (n.id, n.score)).collect::<Vec<_>>(), path)))
                },
                || -> Result<_> {
                    let Some(q) = &keywords else { return Ok(None) };
                    Ok(Some(keyword_search(applied, &name, q, per_side, plan)?))
                },
            );
            let (vec_side, kw_side) = (vec_side?, kw_side?);
            let path = vec_side.as_ref().map(|(_, p)| *p);
            let lower_is_better = self.state.config.metric == akidb_index::Metric::L2;
            let ranked = match (vec_side, kw_side) {
                (Some((v, _)), None) => single(v, Side::Vector, explain),
                (None, Some((kw, _))) => single(kw, Side::Keyword, explain),
                (Some((v, _)), Some((kw, strength))) => {
                    let sides = Sides { vector: &v, keyword: &kw, strength, lower_is_better };
                    fuse(&sides, k, o.fusion, explain)
                }
                (None, None) => Vec::new(),
            };
            Ok((ranked, path))
        })
    }

    /// The mode a query runs in: `Auto` decided, and the full-text index required where used.
    fn resolve(&self, mode: QueryMode) -> Result<QueryMode> {
        let keeps = self.state.config.full_text_enabled();
        match mode {
            QueryMode::Auto => {
                let ready = keeps
                    && self
                        .state
                        .engine
                        .read()?
                        .text()
                        .is_some_and(|t| t.snapshot(self.name()).is_ok());
                Ok(if ready { QueryMode::Hybrid } else { QueryMode::Vector })
            }
            QueryMode::Keyword | QueryMode::Hybrid if !keeps => {
                Err(Error::NoFullText { collection: self.name().into() })
            }
            m => Ok(m),
        }
    }
}

/// The keyword side: BM25 over the applied state's full-text snapshot, the filter inside.
fn keyword_search(
    applied: &Applied,
    collection: &str,
    query: &KeywordQuery,
    n: usize,
    plan: Option<&FilterPlan<'_>>,
) -> Result<(Vec<(u64, f32)>, f32)> {
    let side = applied.text().ok_or_else(|| Error::NoFullText { collection: collection.into() })?;
    let snapshot = side.snapshot(collection)?;
    let list = snapshot
        .search(query, n, plan.map(|p| p.accepts))
        .map_err(|e| Error::FullText { collection: collection.into(), reason: e.to_string() })?;
    let strength = list.first().map_or(0.0, |(_, s)| snapshot.match_strength(query, *s));
    Ok((list, strength))
}

fn side_rank(rank: usize, score: f32) -> SideRank {
    SideRank { rank: u32::try_from(rank + 1).unwrap_or(u32::MAX), score }
}

/// One side's list as the answer (its own scores).
fn single(list: Vec<(u64, f32)>, side: Side, explain: bool) -> Vec<Ranked> {
    list.into_iter()
        .enumerate()
        .map(|(i, (seq, score))| {
            let e = explain.then(|| {
                let r = Some(side_rank(i, score));
                match side {
                    Side::Vector => HitExplain { vector: r, keyword: None },
                    Side::Keyword => HitExplain { vector: None, keyword: r },
                }
            });
            Ranked { seq, score, explain: e }
        })
        .collect()
}

/// The two lists of a hybrid query.
struct Sides<'a> {
    /// Best first, the metric's scores.
    vector: &'a [(u64, f32)],
    /// Best first, BM25 scores.
    keyword: &'a [(u64, f32)],
    /// How much of the query the best keyword hit matches, 0 to 1.
    strength: f32,
    /// The metric is a distance.
    lower_is_better: bool,
}

/// Fuses the two lists (each best first) into the best `k` (see the module docs).
fn fuse(sides: &Sides<'_>, k: usize, fusion: Fusion, explain: bool) -> Vec<Ranked> {
    let (vector, keyword) = (sides.vector, sides.keyword);
    let mut merged: std::collections::HashMap<u64, (f64, HitExplain)> =
        std::collections::HashMap::with_capacity(vector.len() + keyword.len());
    for (side, list) in [(Side::Vector, vector), (Side::Keyword, keyword)] {
        let contribution = contributions(list, fusion, side, sides);
        for (i, ((seq, score), c)) in list.iter().zip(contribution).enumerate() {
            let entry = merged.entry(*seq).or_default();
            entry.0 += c;
            let r = Some(side_rank(i, *score));
            match side {
                Side::Vector => entry.1.vector = r,
                Side::Keyword => entry.1.keyword = r,
            }
        }
    }
    let mut out: Vec<(u64, f64, HitExplain)> =
        merged.into_iter().map(|(seq, (score, e))| (seq, score, e)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out.into_iter()
        .map(|(seq, score, e)| Ranked { seq, score: score as f32, explain: explain.then_some(e) })
        .collect()
}

/// The least match strength at which a hybrid query's keyword list counts in reciprocal rank
/// fusion: its best hit must hold at least this share of the query's terms (by IDF). Below it
/// the list is incidental matches on common words (`"power connector rusty"` finding lines
/// about the power stage), and the vector answer stands alone.
///
/// Chosen on the tuning question set (`examples/common/tuning_set.rs`), not the reported one:
/// there any value from 0 to 0.45 leaves every slice's recall@10 and MRR@10 as it is, 0.5 costs
/// general recall (a question matched at 0.48 needs its keyword hits). 0.4 keeps a margin
/// below that. On the reported set it lifts the paraphrase MRR@10 from 0.419 to the vector
/// side's 0.487 and general from 0.795 to 0.803 (docs/benchmarks.md, "Hybrid search").
pub const KEYWORD_MIN_STRENGTH: f32 = 0.4;

/// The keyword side's weight in reciprocal rank fusion (the vector side's is 1): none below
/// [`KEYWORD_MIN_STRENGTH`], else twice the match strength (a full match weighs 2).
fn keyword_weight(strength: f32) -> f64 {
    if strength < KEYWORD_MIN_STRENGTH {
        0.0
    } else {
        2.0 * f64::from(strength)
    }
}

/// What each entry of one side's list adds to its document's fused score.
fn contributions(list: &[(u64, f32)], fusion: Fusion, side: Side, sides: &Sides<'_>) -> Vec<f64> {
    let lower_is_better = sides.lower_is_better;
    match fusion {
        Fusion::Rrf { k } => {
            let w = match side {
                Side::Vector => 1.0,
                Side::Keyword => keyword_weight(sides.strength),
            };
            (0..list.len()).map(|i| w / (f64::from(k) + (i + 1) as f64)).collect()
        }
        Fusion::Weighted { vector } => {
            let w = f64::from(vector.clamp(0.0, 1.0));
            let w = match side {
                Side::Vector => w,
                Side::Keyword => 1.0 - w,
            };
            let flip = matches!(side, Side::Vector) && lower_is_better;
            let scores: Vec<f64> = list
                .iter()
                .map(|(_, s)| if flip { -f64::from(*s) } else { f64::from(*s) })
                .collect();
            let (lo, hi) = scores
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
            scores.iter().map(|s| w * if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(r: &[Ranked]) -> Vec<u64> {
        r.iter().map(|r| r.seq).collect()
    }

    fn sides<'a>(v: &'a [(u64, f32)], kw: &'a [(u64, f32)], strength: f32) -> Sides<'a> {
        Sides { vector: v, keyword: kw, strength, lower_is_better: false }
    }

    const RRF: Fusion = Fusion::Rrf { k: 60 };

    #[test]
    fn rrf_puts_agreement_first_then_alternates() {
        let v = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let kw = [(3, 12.0), (4, 11.0), (5, 10.0)];
        // At strength 0.5 both sides weigh 1: 3 is on both; then by rank, a tie (2 and 4,
        // both second) by sequence number.
        let out = fuse(&sides(&v, &kw, 0.5), 5, RRF, true);
        assert_eq!(seqs(&out), [3, 1, 2, 4, 5]);
        let three = out[0].explain.expect("explain");
        assert_eq!(three.vector.map(|r| r.rank), Some(3));
        assert_eq!(three.keyword.map(|r| r.rank), Some(1));
        assert!((out[0].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert!(fuse(&sides(&v, &kw, 0.5), 5, RRF, false)[0].explain.is_none());
    }

    #[test]
    fn the_keyword_side_weighs_by_its_match_strength() {
        let v = [(1, 0.9), (2, 0.8)];
        let kw = [(3, 12.0), (4, 11.0)];
        // A full match: the keyword ranks lead.
        assert_eq!(seqs(&fuse(&sides(&v, &kw, 1.0), 4, RRF, false)), [3, 4, 1, 2]);
        // A middling one: the vector ranks lead, the keyword hits follow.
        assert_eq!(seqs(&fuse(&sides(&v, &kw, 0.45), 4, RRF, false)), [1, 2, 3, 4]);
        // No match at all: exactly the vector answer.
        assert_eq!(seqs(&fuse(&sides(&v, &kw, 0.0), 2, RRF, false)), [1, 2]);
    }

    #[test]
    fn a_keyword_list_below_the_least_strength_does_not_count() {
        // The keyword side's first hit is the vector side's third: at the threshold it moves
        // up (agreement), just under it the vector order stands and keyword-only hits add 0.
        let v = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let kw = [(3, 12.0), (4, 11.0)];
        let at = fuse(&sides(&v, &kw, KEYWORD_MIN_STRENGTH), 4, RRF, true);
        assert_eq!(seqs(&at)[0], 3);
        let under = fuse(&sides(&v, &kw, KEYWORD_MIN_STRENGTH - 0.01), 4, RRF, true);
        assert_eq!(seqs(&under), [1, 2, 3, 4]);
        assert_eq!(under[3].score, 0.0, "a keyword-only hit adds nothing");
        // Explanations still say where the keyword side ranked each hit.
        assert_eq!(under[2].explain.and_then(|e| e.keyword).map(|r| r.rank), Some(1));
        assert_eq!(keyword_weight(1.0), 2.0);
        assert_eq!(keyword_weight(0.39), 0.0);
    }

    #[test]
    fn an_empty_side_leaves_the_other_in_its_order() {
        let v = [(7, 0.9), (2, 0.8), (9, 0.1)];
        assert_eq!(seqs(&fuse(&sides(&v, &[], 0.0), 10, RRF, false)), [7, 2, 9]);
        assert_eq!(seqs(&fuse(&sides(&[], &v, 1.0), 2, RRF, false)), [7, 2]);
    }

    #[test]
    fn weighted_fusion_scales_each_side_and_honours_the_weight() {
        let v = [(1, 0.9), (2, 0.5)];
        let kw = [(2, 30.0), (3, 3.0)];
        let w = |vector: f32| Fusion::Weighted { vector };
        assert_eq!(seqs(&fuse(&sides(&v, &kw, 1.0), 3, w(1.0), false))[0], 1);
        assert_eq!(seqs(&fuse(&sides(&v, &kw, 1.0), 3, w(0.0), false))[0], 2);
        // L2: the smaller distance is the better one.
        let l2 = [(1, 0.1), (2, 5.0)];
        let s = Sides { vector: &l2, keyword: &[], strength: 0.0, lower_is_better: true };
        assert_eq!(seqs(&fuse(&s, 2, w(1.0), false)), [1, 2]);
    }

    #[test]
    fn text_queries_scan_small_collections_exactly_and_walk_wide_unless_told() {
        let default = SearchParams::default();
        let wide = SearchParams::with_ef(TEXT_MIN_EF);
        // 87,381 x 384 half floats fit; one more vector does not.
        assert!(text_vector_params(default, 87_381 * 384 * 2, 64).exact);
        assert_eq!(text_vector_params(default, 87_382 * 384 * 2, 64), wide);
        // A collection's wider ef_search is kept.
        let wider = text_vector_params(default, usize::MAX, 4_000);
        assert_eq!(wider, SearchParams::with_ef(4_000));
        // An explicit ef keeps the graph at that width; an explicit exact stays exact.
        let ef = SearchParams::with_ef(200);
        assert_eq!(text_vector_params(ef, 100, 64), ef);
        assert_eq!(text_vector_params(ef, usize::MAX, 64), ef);
        assert!(text_vector_params(SearchParams::exact(), usize::MAX, 64).exact);
    }
}
