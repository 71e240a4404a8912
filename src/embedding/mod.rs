//! Text embedders: the real model through fastembed, and a deterministic,
//! meaning-free hashing embedder for tests and benchmarks that are not about
//! meaning. Callers batch; embedders keep their model loaded.

mod fastembed;
mod hashing;

pub use self::fastembed::FastEmbedder;
pub use self::hashing::HashingEmbedder;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("cannot load the embedding model: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Inference(String),
}

/// Turns texts into unit vectors of a fixed dimension.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// The model's name, recorded with each collection.
    fn model_name(&self) -> &str;
    fn dimension(&self) -> usize;
    /// One vector per text, in order.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError>;
}
