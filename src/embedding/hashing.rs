//! A deterministic bag-of-words embedder: each lower-cased word is hashed to a
//! dimension. Texts that share words are close; no meaning is involved.

use sha2::{Digest, Sha256};

use super::{Embedder, EmbeddingError};

pub struct HashingEmbedder {
    dimension: usize,
}

impl HashingEmbedder {
    pub fn new(dimension: usize) -> Self {
        Self { dimension }
    }

    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dimension];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = Sha256::digest(word.to_lowercase().as_bytes());
            let i = usize::from(u16::from_le_bytes([h[0], h[1]])) % self.dimension;
            v[i] += if h[2] & 1 == 0 { 1.0 } else { -1.0 };
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        } else {
            v[0] = 1.0;
        }
        v
    }
}

#[async_trait::async_trait]
impl Embedder for HashingEmbedder {
    fn model_name(&self) -> &str {
        "lethe-hashing-v1"
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_embeddings_are_unit_deterministic_and_word_based() {
        let e = HashingEmbedder::new(64);
        let a = e.embed_one("The quick brown fox");
        assert_eq!(a, e.embed_one("the QUICK brown fox"));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(e.embed_one("").len(), 64);
    }
}
