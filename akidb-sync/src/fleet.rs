//! Fleet search: a query against the central tables the syncers fill, with AkiDB's result type.
//!
//! The query text is embedded locally (the same model the robots use, so the vectors compare),
//! then one SQL statement ranks the rows with pgvector's distance operator for the collection's
//! metric (`<=>` cosine, `<#>` inner product, `<->` L2; the HNSW index serves the ORDER BY), with
//! AkiDB's metadata [`Filter`] translated into SQL over the `jsonb` column and an optional list
//! of robots. Every value goes in as a bind parameter: no text of a query or filter becomes SQL.
//!
//! Filter semantics follow AkiDB's where SQL can: dotted field paths, `eq`/`ne`/`in`/`exists`,
//! number ranges compared as numbers and string ranges in byte order (`COLLATE "C"`), and/or/not.
//! Numbers compare as PostgreSQL `numeric` (exact for integers and decimals).

use akidb::{Embedder, Filter, Hit, InputKind, Metric};
use postgres::types::ToSql;
use postgres::Client;

use crate::{quote, Result, SyncError};

/// A hit of a fleet query: AkiDB's [`Hit`] and the robot it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetHit {
    /// The robot (`source`).
    pub source: String,
    /// The document, scored as AkiDB scores it (cosine and dot: similarity; L2: distance).
    pub hit: Hit,
}

/// Queries over the central tables.
pub struct FleetSearch {
    client: Client,
    table_prefix: String,
}

impl std::fmt::Debug for FleetSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSearch").field("table_prefix", &self.table_prefix).finish()
    }
}

type Params = Vec<Box<dyn ToSql + Sync>>;

impl FleetSearch {
    /// Connects (tables named `akidb_<collection>`, as [`crate::SyncConfig`]'s default),
    /// verifying a TLS server against the system's roots.
    pub fn connect(conninfo: &str) -> Result<Self> {
        Self::connect_with_ca(conninfo, None)
    }

    /// Connects, verifying a TLS server against the CA certificates of `ca_file` (PEM) when
    /// given: TLS and credentials as [`crate::SyncConfig`]'s (`connect.rs`).
    pub fn connect_with_ca(conninfo: &str, ca_file: Option<&std::path::Path>) -> Result<Self> {
        let client = crate::connect::connect(conninfo, ca_file)?;
        Ok(Self { client, table_prefix: "akidb_".into() })
    }

    /// Sets pgvector's `hnsw.ef_search` for this connection's queries (1 to 1,000; pgvector's
    /// default is 40): the index returns at most this many rows before the filter is applied,
    /// so a selective filter needs a larger value to fill `k`.
    pub fn set_ef_search(&mut self, ef: u32) -> Result<()> {
        if !(1..=1000).contains(&ef) {
            return Err(SyncError::Config { field: "ef_search", reason: "1 to 1000" });
        }
        self.client.batch_execute(&format!("SET hnsw.ef_search = {ef}"))?;
        Ok(())
    }

    /// Embeds `text` as a query with `model` and searches collection `collection` of every robot
    /// (or of `sources`, when given) for the `k` best rows that match `filter`.
    #[allow(clippy::too_many_arguments)]
    pub fn query_text(
        &mut self,
        model: &dyn Embedder,
        collection: &str,
        metric: Metric,
        text: &str,
        k: usize,
        filter: Option<&Filter>,
        sources: Option<&[&str]>,
    ) -> Result<Vec<FleetHit>> {
        let e = model.embed(&[text], InputKind::Query).map_err(akidb::Error::Embedding)?;
        let v = e.vectors.into_iter().next().unwrap_or_default();
        self.search(collection, metric, &v, k, filter, sources)
    }

    /// The `k` rows of collection `collection` nearest to `vector` under `metric`.
    pub fn search(
        &mut self,
        collection: &str,
        metric: Metric,
        vector: &[f32],
        k: usize,
        filter: Option<&Filter>,
        sources: Option<&[&str]>,
    ) -> Result<Vec<FleetHit>> {
        if k == 0 || k > akidb::limits::MAX_K {
            return Err(SyncError::Config { field: "k", reason: "1 to akidb::limits::MAX_K" });
        }
        let table = quote(&format!("{}{}", self.table_prefix, collection));
        let mut params: Params = vec![Box::new(pgvector::Vector::from(vector.to_vec()))];
        let mut conds = Vec::new();
        if let Some(s) = sources {
            params.push(Box::new(s.iter().map(|x| x.to_string()).collect::<Vec<String>>()));
            conds.push(format!("source = ANY(${})", params.len()));
        }
        if let Some(f) = filter {
            conds.push(sql_of(f, &mut params, 0)?);
        }
        let (op, score) = match metric {
            Metric::Cosine => ("<=>", "1 - (embedding <=> $1)"),
            Metric::Dot => ("<#>", "-(embedding <#> $1)"),
            Metric::L2 => ("<->", "embedding <-> $1"),
        };
        let where_ =
            if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql = format!(
            "SELECT source, id, ({score})::real, text, metadata FROM {table} {where_} \
             ORDER BY embedding {op} $1, source, id LIMIT {k}"
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let rows = self.client.query(&sql, &refs)?;
        Ok(rows
            .into_iter()
            .map(|r| FleetHit {
                source: r.get(0),
                hit: Hit {
                    id: r.get(1),
                    score: r.get(2),
                    text: r.get(3),
                    metadata: r.get(4),
                    explain: None,
                },
            })
            .collect())
    }
}

/// The SQL of `f` over `metadata`, its values appended to `params`.
fn sql_of(f: &Filter, params: &mut Params, depth: usize) -> Result<String> {
    if depth > 32 {
        return Err(SyncError::Config { field: "filter", reason: "nested over 32 levels" });
    }
    let path = |field: &str, params: &mut Params| -> String {
        params.push(Box::new(field.split('.').map(str::to_string).collect::<Vec<String>>()));
        format!("(metadata #> ${}::text[])", params.len())
    };
    let value = |v: &serde_json::Value, params: &mut Params| -> String {
        params.push(Box::new(v.clone()));
        format!("${}::jsonb", params.len())
    };
    Ok(match f {
        Filter::Eq { field, value: v } => {
            let p = path(field, params);
            format!("({p} = {})", value(v, params))
        }
        Filter::Ne { field, value: v } => {
            let p = path(field, params);
            format!("({p} IS DISTINCT FROM {})", value(v, params))
        }
        Filter::In { field, values } => {
            let p = path(field, params);
            params.push(Box::new(values.clone()));
            format!("({p} = ANY(${}::jsonb[]))", params.len())
        }
        Filter::Exists { field } => format!("({} IS NOT NULL)", path(field, params)),
        Filter::Range { field, lower, upper } => {
            let p = path(field, params);
            let mut parts = Vec::new();
            for (b, op_in, op_ex) in [(lower, ">=", ">"), (upper, "<=", "<")] {
                let Some(b) = b else { continue };
                let op = if b.inclusive { op_in } else { op_ex };
                let (kind, rhs) = match &b.value {
                    akidb::RangeValue::Integer(i) => {
                        params.push(Box::new(i.to_string()));
                        ("number", format!("${}::text::numeric", params.len()))
                    }
                    akidb::RangeValue::Float(x) => {
                        params.push(Box::new(*x));
                        ("number", format!("${}::float8::numeric", params.len()))
                    }
                    akidb::RangeValue::String(s) => {
                        params.push(Box::new(s.clone()));
                        ("string", format!("${} COLLATE \"C\"", params.len()))
                    }
                };
                let lhs = match kind {
                    "number" => format!("({p})::numeric"),
                    _ => format!("({p} #>> '{{}}') COLLATE \"C\""),
                };
                parts.push(format!("(jsonb_typeof({p}) = '{kind}' AND {lhs} {op} {rhs})"));
            }
            join(&parts, " AND ", "TRUE")
        }
        Filter::And(fs) => join(&all(fs, params, depth)?, " AND ", "TRUE"),
        Filter::Or(fs) => join(&all(fs, params, depth)?, " OR ", "FALSE"),
        Filter::Not(f) => format!("(NOT COALESCE({}, FALSE))", sql_of(f, params, depth + 1)?),
        _ => {
            return Err(SyncError::Config {
                field: "filter",
                reason: "a filter kind SQL lacks here",
            })
        }
    })
}

/// The SQL of each filter of `fs`.
fn all(fs: &[Filter], params: &mut Params, depth: usize) -> Result<Vec<String>> {
    fs.iter().map(|f| sql_of(f, params, depth + 1)).collect()
}

/// `parts` joined by `sep` in parentheses; `empty` (the connective's identity) when none.
fn join(parts: &[String], sep: &str, empty: &str) -> String {
    if parts.is_empty() {
        empty.into()
    } else {
        format!("({})", parts.join(sep))
    }
}
