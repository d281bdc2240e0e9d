//! The async facade for tokio users: every call runs the sync core on tokio's blocking pool
//! (`spawn_blocking`), so CPU work and fsyncs never occupy a runtime worker thread.

use std::path::PathBuf;

use std::sync::Arc;

use crate::{
    Collection, CollectionConfig, Database, Document, Embedder, Filter, Hit, Record, Result,
    TextDocument,
};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Async handle on a [`Database`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncDatabase {
    db: Database,
}

impl From<Database> for AsyncDatabase {
    fn from(db: Database) -> Self {
        Self { db }
    }
}

impl AsyncDatabase {
    /// Opens (creating if missing) the database directory at `path`.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        blocking(move || Database::open(path)).await.map(Self::from)
    }
    /// The synchronous handle.
    pub fn blocking(&self) -> &Database {
        &self.db
    }
    /// See [`Database::create_collection`].
    pub async fn create_collection(
        &self,
        name: impl Into<String>,
        config: CollectionConfig,
    ) -> Result<AsyncCollection> {
        let (db, name) = (self.db.clone(), name.into());
        blocking(move || db.create_collection(&name, config)).await.map(AsyncCollection::from)
    }
    /// See [`Database::text_collection`]. Concurrent `query_text`/`add_texts` calls share model
    /// runs; the model never runs on a runtime worker thread.
    pub async fn text_collection(
        &self,
        name: impl Into<String>,
        model: Arc<dyn Embedder>,
    ) -> Result<AsyncCollection> {
        let (db, name) = (self.db.clone(), name.into());
        blocking(move || db.text_collection(&name, model)).await.map(AsyncCollection::from)
    }
    /// See [`Database::collection`].
    pub async fn collection(&self, name: impl Into<String>) -> Result<AsyncCollection> {
        let (db, name) = (self.db.clone(), name.into());
        blocking(move || db.collection(&name)).await.map(AsyncCollection::from)
    }
    /// See [`Database::list_collections`].
    pub async fn list_collections(&self) -> Result<Vec<(String, CollectionConfig)>> {
        let db = self.db.clone();
        blocking(move || db.list_collections()).await
    }
    /// See [`Database::drop_collection`].
    pub async fn drop_collection(&self, name: impl Into<String>) -> Result<()> {
        let (db, name) = (self.db.clone(), name.into());
        blocking(move || db.drop_collection(&name)).await
    }
}

/// Async handle on a [`Collection`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncCollection {
    c: Collection,
}

impl From<Collection> for AsyncCollection {
    fn from(c: Collection) -> Self {
        Self { c }
    }
}

impl AsyncCollection {
    /// The synchronous handle.
    pub fn blocking(&self) -> &Collection {
        &self.c
    }
    /// See [`Collection::upsert`].
    pub async fn upsert(&self, docs: Vec<Document>) -> Result<()> {
        let c = self.c.clone();
        blocking(move || c.upsert(&docs)).await
    }
    /// See [`Collection::delete`].
    pub async fn delete(&self, ids: Vec<String>) -> Result<usize> {
        let c = self.c.clone();
        blocking(move || c.delete(&ids)).await
    }
    /// See [`Collection::get`].
    pub async fn get(&self, ids: Vec<String>) -> Result<Vec<Option<Record>>> {
        let c = self.c.clone();
        blocking(move || c.get(&ids)).await
    }
    /// See [`Collection::count`].
    pub async fn count(&self) -> Result<u64> {
        let c = self.c.clone();
        blocking(move || c.count()).await
    }
    /// See [`Collection::add_texts`].
    pub async fn add_texts(&self, docs: Vec<TextDocument>) -> Result<usize> {
        let c = self.c.clone();
        blocking(move || c.add_texts(&docs)).await
    }
    /// See [`Collection::query_text`].
    pub async fn query_text(
        &self,
        query: String,
        k: usize,
        filter: Option<Filter>,
    ) -> Result<Vec<Hit>> {
        let c = self.c.clone();
        blocking(move || c.query_text(&query, k, filter.as_ref())).await
    }
    /// See [`Collection::search`].
    pub async fn search(
        &self,
        vector: Vec<f32>,
        k: usize,
        filter: Option<Filter>,
    ) -> Result<Vec<Hit>> {
        let c = self.c.clone();
        blocking(move || c.search(&vector, k, filter.as_ref())).await
    }
    /// See [`Collection::optimize`].
    pub async fn optimize(&self) -> Result<usize> {
        let c = self.c.clone();
        blocking(move || c.optimize()).await
    }
    /// See [`Collection::save_index`].
    pub async fn save_index(&self) -> Result<()> {
        let c = self.c.clone();
        blocking(move || c.save_index()).await
    }
}
