//! Every command but `ingest` (see `ingest.rs`): each reads its arguments, calls the public
//! library API and prints through [`Out`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use akidb::{CollectionConfig, Embedder, FieldIndex, Filter, InputKind, QueryOptions, Retention};
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::out::{bytes, line, one_line, Out};

/// `akidb init`: writes the configuration (never over an existing one) and creates the
/// database. Model folders are checked now (their files are read and their dimension known)
/// and written as absolute paths; `data_dir` relative to the file.
pub fn init(path: &Path, out: Out, data_dir: &Path, models: &[(String, PathBuf)]) -> CliResult {
    if path.exists() {
        return Err(CliError::bad(format!(
            "{} exists: edit it, or give another path with --config",
            path.display()
        )));
    }
    let mut text = String::from(
        "# AkiDB configuration, written by `akidb init`. Relative paths are taken from this\n\
         # file's directory. `akidb serve` listens on `listen`; keys are off, which is allowed\n\
         # on a loopback address only: add [[auth.keys]] (and remove [auth]) to listen\n\
         # elsewhere.\n",
    );
    text.push_str("listen = \"127.0.0.1:8080\"\n");
    text.push_str(&format!("data_dir = {}\n", toml_str(&data_dir.to_string_lossy())));
    let mut loaded = Vec::new();
    for (name, dir) in models {
        if !is_key(name) {
            return Err(CliError::bad(format!(
                "--model {name}=...: a model name is letters, digits, '-' and '_'"
            )));
        }
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| CliError::not_found(format!("--model {name}={}: {e}", dir.display())))?;
        let onnx = akidb::OnnxConfig::from_dir(&dir)
            .map_err(|e| CliError::bad(format!("--model {name}={}: {e}", dir.display())))?;
        text.push_str(&format!(
            "\n[models.{name}]\ndir = {}\nprovider = \"cpu\"  # or \"cuda\", \"tensorrt\"\n",
            toml_str(&dir.to_string_lossy())
        ));
        loaded.push((name, dir, onnx.dimension));
    }
    text.push_str("\n[auth]\ndisabled = true\n");
    // Check what was written parses as every other command will read it.
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(base)
        .map_err(|e| CliError::failed(format!("creating {}: {e}", base.display())))?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text)
        .map_err(|e| CliError::failed(format!("writing {}: {e}", tmp.display())))?;
    let config = match akidb_server::Config::load_local(&tmp) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(CliError::bad(e));
        }
    };
    akidb::Database::open(&config.data_dir).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::from(e)
    })?;
    std::fs::rename(&tmp, path)
        .map_err(|e| CliError::failed(format!("writing {}: {e}", path.display())))?;
    if out.json {
        let models: Vec<Value> = loaded
            .iter()
            .map(|(name, dir, dim)| json!({"name": name, "dir": dir, "dimension": dim}))
            .collect();
        out.json(&json!({"config": path, "data_dir": config.data_dir, "models": models}));
    } else {
        line(&format!("wrote {}", path.display()));
        line(&format!("database at {}", config.data_dir.display()));
        for (name, dir, dim) in &loaded {
            line(&format!("model {name} ({dim}-d) from {}", dir.display()));
        }
    }
    Ok(())
}

fn is_key(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `akidb collections list`.
pub fn list(ctx: &mut Ctx, out: Out) -> CliResult {
    let collections = ctx.db()?.list_collections()?;
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for (name, config) in &collections {
        let count = ctx.db()?.collection(name)?.count()?;
        let model = model_label(ctx, config);
        docs.push(json!({
            "name": name, "dimension": config.dimension, "metric": config.metric,
            "model": model, "full_text": config.full_text_enabled(), "documents": count,
        }));
        rows.push(vec![
            name.clone(),
            count.to_string(),
            config.dimension.to_string(),
            format!("{:?}", config.metric).to_lowercase(),
            model.unwrap_or_else(|| "-".into()),
            yes_no(config.full_text_enabled()),
        ]);
    }
    if out.json {
        out.json(&json!({ "collections": docs }));
    } else if rows.is_empty() {
        line("no collections: make one with `akidb collections create NAME --model MODEL`");
    } else {
        out.table(&["NAME", "DOCUMENTS", "DIM", "METRIC", "MODEL", "FULL-TEXT"], &rows);
    }
    Ok(())
}

fn yes_no(b: bool) -> String {
    (if b { "yes" } else { "no" }).to_string()
}

/// The configured name of a collection's model, or its recorded name when no configured model
/// has its files, or `None` for a vector collection.
fn model_label(ctx: &Ctx, config: &CollectionConfig) -> Option<String> {
    let bound = config.model.as_ref()?;
    Some(ctx.model_of(config).unwrap_or_else(|| format!("{} (not configured)", bound.name)))
}

/// What `akidb collections create` was asked.
pub struct CreateArgs {
    /// Name.
    pub name: String,
    /// Configured model (text collection).
    pub model: Option<String>,
    /// Dimension (vector collection).
    pub dimension: Option<usize>,
    /// Metric.
    pub metric: Option<akidb::Metric>,
    /// Full-text index on or off (default: on for text collections).
    pub full_text: Option<bool>,
    /// Payload indexes.
    pub indexes: Vec<FieldIndex>,
    /// The graph's codes (default f16).
    pub quantization: Option<akidb::Quantization>,
    /// Exact vectors on disk.
    pub vectors_on_disk: bool,
}

/// `akidb collections create`.
pub fn create(ctx: &mut Ctx, out: Out, a: CreateArgs) -> CliResult {
    let (mut config, model) = match (&a.model, a.dimension) {
        (Some(name), dim) => {
            let provider = ctx.load_model(name)?;
            let identity = akidb::ModelIdentity::of(provider.info());
            if dim.is_some_and(|d| d != identity.dimension) {
                return Err(CliError::bad(format!(
                    "--dimension {}: model {name} gives {}-d vectors",
                    dim.unwrap_or_default(),
                    identity.dimension
                )));
            }
            (CollectionConfig::new(identity.dimension).with_model(identity), Some(provider))
        }
        (None, Some(d)) => (CollectionConfig::new(d), None),
        (None, None) => {
            return Err(CliError::bad(
                "give --model NAME (a text collection) or --dimension N (vectors only)",
            ))
        }
    };
    if let Some(m) = a.metric {
        config = config.with_metric(m);
    }
    if let Some(f) = a.full_text {
        config = config.with_full_text(f);
    }
    for i in a.indexes {
        config = config.with_index(i.field, i.kind);
    }
    if let Some(q) = a.quantization {
        config = config.with_quantization(q);
    }
    config = config.with_vectors_on_disk(a.vectors_on_disk);
    let db = ctx.db()?;
    db.create_collection(&a.name, config.clone())?;
    if let Some(p) = model {
        let embedder: std::sync::Arc<dyn Embedder> = p;
        db.text_collection(&a.name, embedder)?; // records the model's digest
    }
    if out.json {
        out.json(&json!({"created": a.name, "dimension": config.dimension, "model": a.model}));
    } else {
        let what = match &a.model {
            Some(m) => format!("text, model {m}, {}-d", config.dimension),
            None => format!("vectors, {}-d", config.dimension),
        };
        line(&format!("created {:?} ({what})", a.name));
    }
    Ok(())
}

/// `akidb collections info`.
pub fn info(ctx: &mut Ctx, out: Out, name: &str) -> CliResult {
    let c = ctx.db()?.collection(name)?;
    let (count, stats) = (c.count()?, c.index_stats()?);
    let config = c.config().clone();
    let model = model_label(ctx, &config);
    let retention = c.retention();
    if out.json {
        out.json(&json!({
            "name": name, "documents": count, "model": model, "config": config,
            "index": {"live": stats.live, "tombstones": stats.tombstones,
                      "unsaved_changes": stats.unsaved_changes},
            "retention": retention,
        }));
        return Ok(());
    }
    let indexes: Vec<String> = config
        .indexes
        .iter()
        .map(|i| format!("{} ({})", i.field, serde_json::to_value(i.kind).unwrap_or_default()))
        .collect();
    let rows = vec![
        vec!["documents".into(), count.to_string()],
        vec!["dimension".into(), config.dimension.to_string()],
        vec!["metric".into(), format!("{:?}", config.metric).to_lowercase()],
        vec!["model".into(), model.unwrap_or_else(|| "- (vectors only)".into())],
        vec!["full-text index".into(), yes_no(config.full_text_enabled())],
        vec![
            "vectors".into(),
            format!(
                "graph walks {} codes; exact vectors {}",
                config.hnsw.quantization,
                if config.vectors_on_disk { "on disk" } else { "in memory" }
            ),
        ],
        vec![
            "payload indexes".into(),
            if indexes.is_empty() { "-".into() } else { indexes.join(", ") },
        ],
        vec![
            "graph".into(),
            format!(
                "{} live, {} deleted awaiting optimize, {} changes since the last save",
                stats.live, stats.tombstones, stats.unsaved_changes
            ),
        ],
        vec!["retention".into(), retention.as_ref().map_or("-".into(), describe_retention)],
    ];
    out.table(&["COLLECTION", name], &rows);
    Ok(())
}

/// `akidb collections drop` (only with `--yes`).
pub fn drop(ctx: &mut Ctx, out: Out, name: &str, yes: bool) -> CliResult {
    let count = ctx.db()?.collection(name)?.count()?;
    if !yes {
        return Err(CliError::bad(format!(
            "dropping {name:?} deletes its {count} documents for good: add --yes"
        )));
    }
    ctx.db()?.drop_collection(name)?;
    if out.json {
        out.json(&json!({"dropped": name, "documents": count}));
    } else {
        line(&format!("dropped {name:?} ({count} documents)"));
    }
    Ok(())
}

/// What `akidb query` was asked.
pub struct QueryArgs {
    /// The question.
    pub text: String,
    /// Collection.
    pub collection: String,
    /// Hits.
    pub k: usize,
    /// Filter (JSON).
    pub filter: Option<String>,
    /// Mode.
    pub mode: akidb::QueryMode,
    /// Explain each hit's ranks.
    pub explain: bool,
}

/// `akidb query`.
pub fn query(ctx: &mut Ctx, out: Out, a: QueryArgs) -> CliResult {
    let filter = a.filter.as_deref().map(Filter::from_json_str).transpose()?;
    // A keyword query runs no model: the collection is opened without one.
    let c = if a.mode == akidb::QueryMode::Keyword {
        ctx.db()?.collection(&a.collection)?
    } else {
        ctx.text_collection(&a.collection)?.0
    };
    let mut options = QueryOptions::mode(a.mode);
    options.explain = a.explain;
    let start = Instant::now();
    let (hits, path) = c.query_text_with(&a.text, a.k, filter.as_ref(), options)?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if out.json {
        out.json(&json!({"hits": hits, "path": path.map(|p| format!("{p:?}")), "ms": ms}));
        return Ok(());
    }
    if hits.is_empty() {
        line("no hits");
        return Ok(());
    }
    for (i, h) in hits.iter().enumerate() {
        line(&format!(
            "{:>3}  {}  {}",
            i + 1,
            out.bold(&format!("{:.4}", h.score)),
            out.dim(&h.id)
        ));
        line(&format!("     {}", one_line(h.text.as_deref().unwrap_or(""), 160)));
        let meta = brief_metadata(&h.metadata, &h.id);
        if !meta.is_empty() {
            line(&format!("     {}", out.dim(&meta)));
        }
        if let Some(e) = &h.explain {
            line(&format!("     {}", out.dim(&serde_json::to_string(e).unwrap_or_default())));
        }
    }
    line(&out.dim(&format!("{} hits in {ms:.1} ms", hits.len())));
    Ok(())
}

/// A hit's metadata on one line: `key=value` pairs, then the log position (`file:line`) unless
/// it is the hit's id already (records ingested by `akidb ingest`).
fn brief_metadata(m: &Value, id: &str) -> String {
    let Some(obj) = m.as_object() else { return String::new() };
    let skip = ["ts", "file", "line", "format"];
    let mut parts: Vec<String> = obj
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={}", one_line(s, 40)),
            v => format!("{k}={}", one_line(&v.to_string(), 40)),
        })
        .collect();
    if let (Some(f), Some(l)) = (obj.get("file").and_then(Value::as_str), obj.get("line")) {
        let position = format!("{f}:{l}");
        if position != id {
            parts.push(position);
        }
    }
    parts.join("  ")
}

/// `akidb stats`.
pub fn stats(ctx: &mut Ctx, out: Out) -> CliResult {
    let dir = ctx.config.data_dir.clone();
    let size = dir_size(&dir);
    let collections = ctx.db()?.list_collections()?;
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    let mut total = 0u64;
    for (name, config) in &collections {
        let c = ctx.db()?.collection(name)?;
        let (count, s) = (c.count()?, c.index_stats()?);
        total += count;
        let model = model_label(ctx, config);
        docs.push(json!({"name": name, "documents": count, "model": model,
            "index": {"live": s.live, "tombstones": s.tombstones,
                      "unsaved_changes": s.unsaved_changes}}));
        rows.push(vec![
            name.clone(),
            count.to_string(),
            s.tombstones.to_string(),
            s.unsaved_changes.to_string(),
            model.unwrap_or_else(|| "-".into()),
        ]);
    }
    if out.json {
        out.json(&json!({"data_dir": dir, "bytes_on_disk": size, "documents": total,
            "collections": docs}));
        return Ok(());
    }
    line(&format!("database   {}", dir.display()));
    line(&format!("on disk    {}", bytes(size)));
    let plural = if collections.len() == 1 { "" } else { "s" };
    line(&format!("documents  {total} in {} collection{plural}", collections.len()));
    if !rows.is_empty() {
        line("");
        out.table(&["COLLECTION", "DOCUMENTS", "DELETED", "UNSAVED", "MODEL"], &rows);
    }
    Ok(())
}

/// Bytes of the regular files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `akidb models list`: the configured models, their dimension and which collections use them.
pub fn models_list(ctx: &mut Ctx, out: Out) -> CliResult {
    let collections = ctx.db()?.list_collections()?;
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for (name, m) in &ctx.models {
        let onnx = m.onnx();
        let digest = ctx.registry.digest(name);
        let users: Vec<&str> = collections
            .iter()
            .filter(|(_, c)| {
                c.model
                    .as_ref()
                    .and_then(|b| b.digest.as_ref())
                    .is_some_and(|d| digest.as_ref() == Some(d))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        let dim = onnx.as_ref().map_or("?".to_string(), |o| o.dimension.to_string());
        let provider = format!("{:?}", m.provider).to_lowercase();
        docs.push(json!({"name": name, "dir": m.dir, "provider": provider,
            "dimension": onnx.as_ref().ok().map(|o| o.dimension),
            "error": onnx.as_ref().err().map(|e| e.to_string()), "collections": users}));
        rows.push(vec![
            name.clone(),
            dim,
            provider,
            if users.is_empty() { "-".into() } else { users.join(", ") },
            m.dir.display().to_string(),
        ]);
    }
    if out.json {
        out.json(&json!({ "models": docs }));
    } else if rows.is_empty() {
        line(&format!("no models in {}: add a [models.NAME] section", ctx.path.display()));
    } else {
        out.table(&["NAME", "DIM", "PROVIDER", "COLLECTIONS", "DIR"], &rows);
    }
    Ok(())
}

/// `akidb models check [NAME]`: loads each model (or the one named) with its provider and
/// embeds a probe; fails when any does.
pub fn models_check(ctx: &mut Ctx, out: Out, only: Option<&str>) -> CliResult {
    let names: Vec<String> = match only {
        Some(n) => vec![ctx.model_config(n).map(|_| n.to_string())?],
        None => ctx.models.keys().cloned().collect(),
    };
    if names.is_empty() {
        return Err(CliError::not_found(format!(
            "no models in {}: add a [models.NAME] section",
            ctx.path.display()
        )));
    }
    let mut failed = Vec::new();
    let mut docs = Vec::new();
    for name in names {
        let start = Instant::now();
        let result = ctx.load_model(&name).and_then(|p| {
            let loaded = start.elapsed().as_secs_f64();
            let t = Instant::now();
            p.embed(&["robot 3 stopped at the loading dock"], InputKind::Query)?;
            Ok((p, loaded, t.elapsed().as_secs_f64() * 1000.0))
        });
        match result {
            Ok((p, loaded, ms)) => {
                let info = p.info();
                docs.push(json!({"name": name, "ok": true, "model": info.name,
                    "dimension": info.dimension, "provider": info.execution_provider.to_string(),
                    "load_seconds": loaded, "probe_ms": ms}));
                if !out.json {
                    line(&format!(
                        "{} {name}: {} ({}-d) on {}, loaded in {loaded:.1} s, a query in \
                         {ms:.1} ms",
                        out.bold("ok"),
                        info.name,
                        info.dimension,
                        info.execution_provider
                    ));
                }
            }
            Err(e) => {
                docs.push(json!({"name": name, "ok": false, "error": e.message}));
                if !out.json {
                    line(&format!("{} {name}: {}", out.bold("FAILED"), e.message));
                }
                failed.push(name);
            }
        }
    }
    if out.json {
        out.json(&json!({ "models": docs }));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!("models that did not load: {}", failed.join(", "))))
    }
}

/// `akidb export`: JSON Lines, or Parquet for a `.parquet` path.
pub fn export(
    ctx: &mut Ctx,
    out: Out,
    collection: &str,
    path: &Path,
    filter: Option<&str>,
) -> CliResult {
    let filter = filter.map(Filter::from_json_str).transpose()?;
    let c = ctx.db()?.collection(collection)?;
    let start = Instant::now();
    let n = if is_parquet(path) {
        c.export_parquet(path, filter.as_ref())?
    } else {
        c.export_jsonl(path, filter.as_ref())?
    };
    let secs = start.elapsed().as_secs_f64();
    if out.json {
        out.json(&json!({"exported": n, "path": path, "seconds": secs}));
    } else {
        line(&format!(
            "exported {n} documents of {collection:?} to {} in {secs:.1} s",
            path.display()
        ));
    }
    Ok(())
}

/// `akidb import` into an existing collection (same ids are replaced).
pub fn import(ctx: &mut Ctx, out: Out, collection: &str, path: &Path) -> CliResult {
    if !path.is_file() {
        return Err(CliError::not_found(format!("no file {}", path.display())));
    }
    let c = ctx.db()?.collection(collection)?;
    let start = Instant::now();
    let r = if is_parquet(path) { c.import_parquet(path)? } else { c.import_jsonl(path)? };
    let secs = start.elapsed().as_secs_f64();
    if out.json {
        out.json(&json!({"imported": r.documents, "batches": r.batches, "seconds": secs}));
    } else {
        line(&format!(
            "imported {} documents into {collection:?} ({} transactions) in {secs:.1} s",
            r.documents, r.batches
        ));
    }
    Ok(())
}

fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// `akidb backup TARGET`.
pub fn backup(ctx: &mut Ctx, out: Out, target: &Path) -> CliResult {
    let r = ctx.db()?.backup(target)?;
    if out.json {
        out.json(&json!({"backup": target, "rows": r.rows, "seconds": r.seconds}));
    } else {
        line(&format!(
            "backed up to {} ({} rows in {:.1} s); open it as a database to restore",
            target.display(),
            r.rows,
            r.seconds
        ));
    }
    Ok(())
}

/// What `akidb sync` was given.
pub struct SyncArgs {
    pub postgres: String,
    pub ca_file: Option<std::path::PathBuf>,
    pub source: String,
    pub collections: Vec<String>,
    pub every: Option<u64>,
}

/// `akidb sync`: one pass over the collections, or a pass every `every` seconds until Ctrl-C; a
/// failed pass is retried after 1, 2, 4 ... 60 s (a page is one PostgreSQL transaction, so a
/// pass cut anywhere leaves nothing half-applied).
pub fn sync(ctx: &mut Ctx, out: Out, a: SyncArgs) -> CliResult {
    let db = ctx.db()?.clone();
    let names: Vec<String> = if a.collections.is_empty() {
        db.list_collections()?.into_iter().map(|(n, _)| n).collect()
    } else {
        a.collections.clone()
    };
    let collections =
        names.iter().map(|n| db.collection(n)).collect::<Result<Vec<_>, akidb::Error>>()?;
    let mut config = akidb_sync::SyncConfig::new(a.postgres.clone(), a.source.clone());
    config.local_state = Some(db.path().join("sync"));
    config.tls_ca_file = a.ca_file.clone();
    let mut syncer: Option<akidb_sync::Syncer> = None;
    let pass = |syncer: &mut Option<akidb_sync::Syncer>| -> Result<(), akidb_sync::SyncError> {
        let s = match syncer {
            Some(s) => s,
            None => syncer.insert(akidb_sync::Syncer::connect(config.clone())?),
        };
        for c in &collections {
            let r = s.sync(c)?;
            if out.json {
                out.json(&json!({"collection": c.name(), "upserts": r.upserts,
                    "deletes": r.deletes, "pages": r.pages, "resynced": r.resynced,
                    "position": r.position, "index_build_seconds": r.index_build_seconds}));
            } else {
                line(&format!(
                    "{}: {} upserts, {} deletes in {} transactions{}",
                    c.name(),
                    r.upserts,
                    r.deletes,
                    r.pages,
                    if r.resynced { " (full resync: the checkpoint had been pruned)" } else { "" }
                ));
            }
        }
        Ok(())
    };
    let Some(every) = a.every else {
        return pass(&mut syncer).map_err(|e| CliError::failed(e.to_string()));
    };
    let mut backoff = 1u64;
    loop {
        match pass(&mut syncer) {
            Ok(()) => {
                backoff = 1;
                std::thread::sleep(std::time::Duration::from_secs(every));
            }
            Err(e) => {
                // A new connection next time (the server may have restarted).
                syncer = None;
                log::warn!("sync pass failed, retrying in {backoff} s: {e}");
                eprintln!("sync pass failed, retrying in {backoff} s: {e}");
                std::thread::sleep(std::time::Duration::from_secs(backoff));
                backoff = (backoff * 2).min(60);
            }
        }
    }
}

/// `akidb compact`.
pub fn compact(ctx: &mut Ctx, out: Out) -> CliResult {
    let r = ctx.db()?.compact()?;
    if out.json {
        out.json(&json!({"bytes_before": r.bytes_before, "bytes_after": r.bytes_after,
            "seconds": r.seconds}));
    } else {
        line(&format!(
            "compacted: {} -> {} in {:.1} s",
            bytes(r.bytes_before),
            bytes(r.bytes_after),
            r.seconds
        ));
    }
    Ok(())
}

/// `akidb retention show|set|clear`. A policy set is also enforced before the command returns
/// (the background worker keeps enforcing it wherever the database is open).
pub fn retention(ctx: &mut Ctx, out: Out, name: &str, set: Option<Option<Retention>>) -> CliResult {
    let db = ctx.db()?;
    let mut deleted = None;
    if let Some(policy) = set {
        let enforce = policy.is_some();
        let before = db.collection(name)?.count()?;
        db.set_retention(name, policy)?;
        if enforce {
            // Setting a policy also queues a pass on the database's maintenance worker, which
            // may run before this one: what applying the policy deleted is the difference (no
            // other writer runs in this process).
            let c = db.collection(name)?;
            c.enforce_retention()?;
            deleted = Some(before.saturating_sub(c.count()?));
        }
    }
    let c = db.collection(name)?;
    let policy = c.retention();
    let count = c.count()?;
    if out.json {
        out.json(&json!({"collection": name, "retention": policy, "documents": count,
            "deleted": deleted}));
    } else {
        let text = policy.as_ref().map_or("none: documents are kept".into(), describe_retention);
        line(&format!("{name}: {text}"));
        if let Some(n) = deleted {
            line(&format!("{n} documents deleted now, {count} kept"));
        }
    }
    Ok(())
}

fn describe_retention(r: &Retention) -> String {
    let mut parts = Vec::new();
    if let Some(s) = r.max_age_secs {
        let by = r.time_field.as_ref().map_or("insertion time".to_string(), |f| format!("{f:?}"));
        parts.push(format!("newer than {} by {by}", crate::parse::duration_text(s)));
    }
    if let Some(n) = r.max_documents {
        parts.push(format!("at most {n} documents"));
    }
    if let Some(b) = r.max_bytes {
        parts.push(format!("at most {}", bytes(b)));
    }
    format!("keep {}", parts.join(", "))
}
