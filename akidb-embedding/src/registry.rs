//! Models by name, loaded on first use and unloaded under a memory budget.
//!
//! A [`ModelRegistry`] holds the configuration of every model an application may use (from a
//! configuration file, or every model folder under a directory: [`ModelRegistry::scan_dir`]) and
//! loads a model only when [`ModelRegistry::get`] first asks for it. What it keeps per loaded
//! model is whatever its loader builds from the [`OnnxConfig`] (an [`OnnxEmbeddingProvider`],
//! or one wrapped for micro-batching), shared by every caller through an `Arc`.
//!
//! The budget counts the bytes of each loaded model's weights (its ONNX graph and external data
//! files), what dominates a model's memory on any provider. After a load takes the loaded total
//! over the budget, the least recently used models that nobody holds (no `Arc` outside the
//! registry) are unloaded until it fits again; a model a caller holds is never unloaded under
//! it, so the total may stay over the budget (logged) until callers let go. An unloaded model is
//! loaded again by the next `get`. Loads run outside the registry's lock, one at a time per
//! model; the process keeps one ONNX Runtime environment whatever is loaded (`runtime.rs`).
//!
//! A model is also found by content: [`ModelRegistry::find_by_digest`] names the model whose
//! files give a digest (as a text collection records it), without loading anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::identity::{external_data, model_digest};
use crate::{EmbedError, OnnxConfig, OnnxEmbeddingProvider};

/// Builds what the registry keeps for a model from its configuration.
pub type Loader<T> = dyn Fn(&str, &OnnxConfig) -> Result<T, EmbedError> + Send + Sync;

struct Slot<T> {
    config: OnnxConfig,
    /// Bytes of the weights on disk.
    bytes: u64,
    /// The loaded model; its lock is also the per-model load lock.
    loaded: Mutex<Option<Arc<T>>>,
    /// When `get` last returned it (the registry's counter).
    used: AtomicU64,
    /// Its content digest, worked out on first need (`None`: its files could not be read).
    digest: OnceLock<Option<String>>,
}

/// Named models, loaded on first use, unloaded under a budget (see the module docs).
pub struct ModelRegistry<T = OnnxEmbeddingProvider> {
    slots: Mutex<BTreeMap<String, Arc<Slot<T>>>>,
    budget: Option<u64>,
    loader: Box<Loader<T>>,
    tick: AtomicU64,
    /// The last fit left more loaded than the budget (held models): fit again at each `get`.
    over: AtomicBool,
}

/// One model's state, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatus {
    /// Its name.
    pub name: String,
    /// Bytes of its weights.
    pub bytes: u64,
    /// Whether it is loaded.
    pub loaded: bool,
    /// Callers holding it now (0 when not loaded or idle).
    pub holders: usize,
}

impl ModelRegistry<OnnxEmbeddingProvider> {
    /// A registry that loads [`OnnxEmbeddingProvider`]s; `budget`: bytes of weights kept loaded
    /// at most (`None`: no limit).
    pub fn new(budget: Option<u64>) -> Self {
        Self::with_loader(budget, |_, c| OnnxEmbeddingProvider::new(c.clone()))
    }
}

impl<T> ModelRegistry<T> {
    /// A registry whose loader builds `T` from a model's configuration.
    pub fn with_loader(
        budget: Option<u64>,
        loader: impl Fn(&str, &OnnxConfig) -> Result<T, EmbedError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
            budget,
            loader: Box::new(loader),
            tick: AtomicU64::new(0),
            over: AtomicBool::new(false),
        }
    }

    /// Adds model `name` (not loaded). `InvalidConfig` when the name is taken or empty, or the
    /// model's files cannot be read.
    pub fn register(&self, name: &str, config: OnnxConfig) -> Result<(), EmbedError> {
        if name.is_empty() {
            return Err(EmbedError::InvalidConfig {
                field: "model name",
                value: String::new(),
                expected: "a non-empty name",
            });
        }
        let mut bytes = file_len(&config.model_path)?;
        for p in external_data(&config.model_path) {
            bytes += file_len(&p)?;
        }
        // Each parallel run's session holds its own copy of the weights.
        bytes = bytes.saturating_mul(config.parallel_runs.max(1) as u64);
        let slot = Slot {
            config,
            bytes,
            loaded: Mutex::new(None),
            used: AtomicU64::new(0),
            digest: OnceLock::new(),
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.contains_key(name) {
            return Err(EmbedError::InvalidConfig {
                field: "model name",
                value: name.to_string(),
                expected: "a name not registered before",
            });
        }
        slots.insert(name.to_string(), Arc::new(slot));
        Ok(())
    }

    /// Registers every model folder directly under `dir` (a folder with `model.onnx`), named by
    /// the folder; other entries are ignored. Returns the names added.
    pub fn scan_dir(&self, dir: &Path) -> Result<Vec<String>, EmbedError> {
        let entries = std::fs::read_dir(dir).map_err(|_| EmbedError::MissingFile {
            what: "models directory",
            path: dir.to_path_buf(),
        })?;
        let mut found: Vec<_> = entries
            .flatten()
            .filter(|e| e.path().join("model.onnx").is_file())
            .filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), e.path())))
            .collect();
        found.sort();
        let mut names = Vec::new();
        for (name, path) in found {
            self.register(&name, OnnxConfig::from_dir(&path)?)?;
            names.push(name);
        }
        Ok(names)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Model `name`'s configuration.
    pub fn config(&self, name: &str) -> Option<OnnxConfig> {
        self.slot(name).map(|s| s.config.clone())
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot<T>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Every slot, taken out of the map so that no slot's lock (held for seconds by a load) is
    /// waited for under the map's lock, which every `get` takes.
    fn all_slots(&self) -> Vec<(String, Arc<Slot<T>>)> {
        let map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(n, s)| (n.clone(), s.clone())).collect()
    }

    /// Model `name`, loaded now if it is not; `None` when no model has that name.
    pub fn get(&self, name: &str) -> Option<Result<Arc<T>, EmbedError>> {
        let slot = self.slot(name)?;
        slot.used.store(self.tick.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        let mut loaded = slot.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = loaded.as_ref() {
            let m = m.clone();
            drop(loaded);
            if self.over.load(Ordering::Relaxed) {
                self.fit_budget(name);
            }
            return Some(Ok(m));
        }
        let model = match (self.loader)(name, &slot.config) {
            Ok(m) => Arc::new(m),
            Err(e) => return Some(Err(e)),
        };
        *loaded = Some(model.clone());
        drop(loaded);
        log::info!("model {name} loaded ({} MB of weights)", slot.bytes >> 20);
        self.fit_budget(name);
        Some(Ok(model))
    }

    /// Unloads the least recently used idle models other than `keep` until the loaded weights
    /// fit the budget.
    fn fit_budget(&self, keep: &str) {
        let Some(budget) = self.budget else { return };
        let slots = self.all_slots();
        let loaded =
            |s: &Slot<T>| s.loaded.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        let mut total: u64 = slots.iter().filter(|(_, s)| loaded(s)).map(|(_, s)| s.bytes).sum();
        let mut order: Vec<&(String, Arc<Slot<T>>)> =
            slots.iter().filter(|(n, s)| n != keep && loaded(s)).collect();
        order.sort_by_key(|(_, s)| s.used.load(Ordering::Relaxed));
        for (name, slot) in order {
            if total <= budget {
                break;
            }
            let mut guard = slot.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            // Only a model nobody holds: the registry's Arc is the only one.
            if guard.as_ref().is_some_and(|m| Arc::strong_count(m) == 1) {
                *guard = None;
                total -= slot.bytes;
                log::info!("model {name} unloaded (memory budget {} MB)", budget >> 20);
            }
        }
        self.over.store(total > budget, Ordering::Relaxed);
        if total > budget {
            log::warn!(
                "models loaded: {} MB of weights, over the budget of {} MB (the others are in use)",
                total >> 20,
                budget >> 20
            );
        }
    }

    /// Every model: weights, loaded, held.
    pub fn status(&self) -> Vec<ModelStatus> {
        self.all_slots()
            .into_iter()
            .map(|(name, s)| {
                let loaded = s.loaded.lock().unwrap_or_else(PoisonError::into_inner);
                ModelStatus {
                    name,
                    bytes: s.bytes,
                    loaded: loaded.is_some(),
                    holders: loaded.as_ref().map_or(0, |m| Arc::strong_count(m) - 1),
                }
            })
            .collect()
    }

    /// Model `name`'s content digest (worked out once; `None` for an unknown name or files
    /// that cannot be read).
    pub fn digest(&self, name: &str) -> Option<String> {
        let s = self.slot(name)?;
        s.digest.get_or_init(|| model_digest(&s.config).ok()).clone()
    }

    /// The name of the model whose content has `digest` and whose output has `dimension`
    /// (see [`crate::identity`]), without loading any; models whose files cannot be read are
    /// passed over. Each model's digest is worked out once per registry (files replaced while
    /// it runs are not seen: register them in a new one).
    pub fn find_by_digest(&self, digest: &str, dimension: usize) -> Option<String> {
        let slots = self.all_slots();
        slots.into_iter().find_map(|(name, s)| {
            let own = s.digest.get_or_init(|| model_digest(&s.config).ok());
            (s.config.dimension == dimension && own.as_deref() == Some(digest)).then_some(name)
        })
    }
}

fn file_len(path: &Path) -> Result<u64, EmbedError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|_| EmbedError::MissingFile { what: "model file", path: path.to_path_buf() })
}
