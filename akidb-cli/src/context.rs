//! The configuration file, the database it names and its models, opened as a command needs
//! them. Models are found by content: a text collection records its model's digest, and the
//! configured model whose files give that digest is the one loaded (only it, on first use).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use akidb::embedding::identity::model_digest;
use akidb::{Collection, CollectionConfig, Database, Embedder, OnnxEmbeddingProvider};
use akidb_server::config::ModelConfig;
use akidb_server::Config;

use crate::error::{CliError, CliResult};

/// What a command works on.
pub struct Ctx {
    /// The configuration file's path.
    pub path: PathBuf,
    /// Its contents (relative paths resolved).
    pub config: Config,
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
        Ok(Self { path, config, db: None })
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
        self.config.models.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.config.models.keys().map(String::as_str).collect();
            CliError::not_found(format!(
                "no model {name:?} in {} (configured: {})",
                self.path.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        })
    }

    /// Loads the configured model `name`.
    pub fn load_model(&self, name: &str) -> CliResult<Arc<OnnxEmbeddingProvider>> {
        let m = self.model_config(name)?;
        let fail = |e: akidb::EmbedError| {
            CliError::failed(format!("model {name} ({}): {e}", m.dir.display()))
        };
        let provider = OnnxEmbeddingProvider::new(m.onnx().map_err(fail)?).map_err(fail)?;
        Ok(Arc::new(provider))
    }

    /// The name of the configured model whose content is the collection's, if any (no model
    /// is loaded: digests are cached beside each model's files).
    pub fn model_of(&self, config: &CollectionConfig) -> Option<String> {
        let bound = config.model.as_ref()?;
        let digest = bound.digest.as_ref()?;
        self.config.models.iter().find_map(|(name, m)| {
            let onnx = m.onnx().ok()?;
            (model_digest(&onnx).ok()? == *digest && onnx.dimension == bound.dimension)
                .then(|| name.clone())
        })
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
