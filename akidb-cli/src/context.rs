//! The configuration file, the database it names and its models, opened as a command needs
//! them. The models (`[models.NAME]` sections and the folders of `models_dir`) sit in a
//! [`ModelRegistry`]: found by content (a text collection records its model's digest, and the
//! model whose files give that digest is the one), loaded only when a command embeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use akidb::{
    Collection, CollectionConfig, Database, Embedder, ModelRegistry, OnnxEmbeddingProvider,
};
use akidb_server::config::ModelConfig;
use akidb_server::Config;

use crate::error::{CliError, CliResult};

/// What a command works on.
pub struct Ctx {
    /// The configuration file's path.
    pub path: PathBuf,
    /// Its contents (relative paths resolved).
    pub config: Config,
    /// Every model, by name.
    pub models: BTreeMap<String, ModelConfig>,
    /// The models whose folders read (the others are in `broken`).
    pub registry: ModelRegistry,
    /// Models whose folders do not read, with why.
    pub broken: BTreeMap<String, String>,
    db: Option<Database>,
}

impl Ctx {
    /// Reads the configuration at `path` for local use (no API keys needed).
    pub fn load(path: &Path) -> CliResult<Self> {
        if !path.exists() {
            return Err(CliError::not_found(format!(
                "no configuration at {}: run `akidb init` here, or name one with --config or \
                 AKIDB_CONFIG",
                path.display()
            )));
        }
        let path = std::path::absolute(path)
            .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
        let config = Config::load_local(&path).map_err(CliError::bad)?;
        let models = config.all_models().map_err(CliError::failed)?;
        let registry = ModelRegistry::new(config.model_memory_mb.map(|mb| mb << 20));
        let mut broken = BTreeMap::new();
        for (name, m) in &models {
            if let Err(e) = m.onnx().and_then(|onnx| registry.register(name, onnx)) {
                broken.insert(name.clone(), format!("model {name} ({}): {e}", m.dir.display()));
            }
        }
        Ok(Self { path, config, models, registry, broken, db: None })
    }

    /// The database (opened once; it must exist: `akidb init` makes it).
    pub fn db(&mut self) -> CliResult<&Database> {
        if self.db.is_none() {
            let dir = &self.config.data_dir;
            if !dir.is_dir() {
                return Err(CliError::not_found(format!(
                    "no database at {} (data_dir in {}): run `akidb init` or fix data_dir",
                    dir.display(),
                    self.path.display()
                )));
            }
            let db = Database::builder().with_create_if_missing(false).open(dir)?;
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    /// The configured model `name`.
    pub fn model_config(&self, name: &str) -> CliResult<&ModelConfig> {
        self.models.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            CliError::not_found(format!(
                "no model {name:?} in {} (configured: {})",
                self.path.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        })
    }

    /// Model `name`, loaded.
    pub fn load_model(&self, name: &str) -> CliResult<Arc<OnnxEmbeddingProvider>> {
        let m = self.model_config(name)?;
        if let Some(why) = self.broken.get(name) {
            return Err(CliError::bad(why.clone()));
        }
        match self.registry.get(name) {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => {
                Err(CliError::failed(format!("model {name} ({}): {e}", m.dir.display())))
            }
            None => Err(CliError::not_found(format!("no model {name:?}"))),
        }
    }

    /// The name of the model whose content is the collection's, if any (no model is loaded:
    /// digests are cached beside each model's files).
    pub fn model_of(&self, config: &CollectionConfig) -> Option<String> {
        let bound = config.model.as_ref()?;
        self.registry.find_by_digest(bound.digest.as_ref()?, bound.dimension)
    }

    /// The collection `name`, bound to its model when it has one (loaded now).
    pub fn text_collection(&mut self, name: &str) -> CliResult<(Collection, String)> {
        let c = self.db()?.collection(name)?;
        let Some(bound) = c.config().model.clone() else {
            return Err(CliError::bad(format!(
                "collection {name:?} holds vectors, not text: it has no model to embed with"
            )));
        };
        let Some(model) = self.model_of(c.config()) else {
            return Err(CliError::not_found(format!(
                "collection {name:?} was made with model {} ({}-d), and no model in {} has \
                 those files: add its folder under [models]",
                bound.name,
                bound.dimension,
                self.path.display()
            )));
        };
        let embedder: Arc<dyn Embedder> = self.load_model(&model)?;
        let c = self.db()?.text_collection(name, embedder)?;
        Ok((c, model))
    }
}
