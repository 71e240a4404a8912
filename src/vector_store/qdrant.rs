//! Placeholder until the Qdrant backend lands.
use std::time::Duration;

use super::{Result, VectorStoreError};
use crate::domain::Backend;

pub struct QdrantStore;

impl QdrantStore {
    pub async fn connect(_url: &str, _api_key: Option<String>, _timeout: Duration) -> Result<Self> {
        Err(VectorStoreError::NotConfigured { backend: Backend::Qdrant })
    }
}

#[async_trait::async_trait]
impl super::VectorStore for QdrantStore {
    fn backend(&self) -> Backend { Backend::Qdrant }
    async fn create_collection(&self, _: &crate::domain::CollectionSpec) -> Result<()> { unimplemented!() }
    async fn drop_collection(&self, _: &crate::domain::CollectionSpec) -> Result<()> { unimplemented!() }
    async fn upsert(&self, _: &crate::domain::CollectionSpec, _: &[super::VectorPoint]) -> Result<()> { unimplemented!() }
    async fn count(&self, _: &crate::domain::CollectionSpec, _: &super::Selector) -> Result<u64> { unimplemented!() }
    async fn delete(&self, _: &crate::domain::CollectionSpec, _: &super::Selector) -> Result<()> { unimplemented!() }
    async fn retrieve(&self, _: &crate::domain::CollectionSpec, _: &[uuid::Uuid], _: bool) -> Result<Vec<super::StoredPoint>> { unimplemented!() }
    async fn scroll(&self, _: &crate::domain::CollectionSpec, _: uuid::Uuid, _: Option<uuid::Uuid>, _: usize, _: bool) -> Result<(Vec<super::StoredPoint>, Option<uuid::Uuid>)> { unimplemented!() }
    async fn search_exact(&self, _: &crate::domain::CollectionSpec, _: uuid::Uuid, _: &[Vec<f32>], _: f32, _: usize) -> Result<Vec<super::ScoredPoint>> { unimplemented!() }
    async fn reclaim(&self, _: &crate::domain::CollectionSpec, _: bool) -> Result<super::PhysicalOutcome> { unimplemented!() }
}
