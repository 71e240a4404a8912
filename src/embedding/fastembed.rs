//! The real embedder: fastembed with a local ONNX model (all-MiniLM-L6-v2,
//! int8 weights) and ONNX Runtime loaded dynamically from a file. Nothing is
//! downloaded at run time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use super::{Embedder, EmbeddingError};

pub struct FastEmbedder {
    // `TextEmbedding::embed` takes `&mut self`: one model, used from blocking tasks.
    model: Arc<Mutex<TextEmbedding>>,
    name: String,
    dimension: usize,
    batch_size: usize,
}

/// ONNX Runtime allows one environment per process; every model shares it.
static ORT_ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> = std::sync::OnceLock::new();

fn environment(dylib: &Path) -> Result<ort::environment::Environment, EmbeddingError> {
    ORT_ENV
        .get_or_init(|| {
            ort::init_from(dylib)
                .map_err(|e| format!("onnxruntime at {}: {e}", dylib.display()))?
                .with_name("lethe")
                .build()
                .map_err(|e| format!("onnxruntime environment: {e}"))
        })
        .clone()
        .map_err(EmbeddingError::Load)
}

impl FastEmbedder {
    /// Loads the model from `model_dir` (model.onnx and the tokenizer files).
    ///
    /// # Errors
    /// `Load` naming the missing file or the runtime's complaint.
    pub fn load(
        name: &str,
        model_dir: &Path,
        ort_dylib: &Path,
        max_length: usize,
        threads: usize,
        batch_size: usize,
    ) -> Result<Self, EmbeddingError> {
        let read = |f: &str| {
            std::fs::read(model_dir.join(f))
                .map_err(|e| EmbeddingError::Load(format!("{}: {e}", model_dir.join(f).display())))
        };
        let model = UserDefinedEmbeddingModel::new(
            read("model.onnx")?,
            TokenizerFiles {
                tokenizer_file: read("tokenizer.json")?,
                config_file: read("config.json")?,
                special_tokens_map_file: read("special_tokens_map.json")?,
                tokenizer_config_file: read("tokenizer_config.json")?,
            },
        )
        // MiniLM is trained with mean pooling; fastembed would default to CLS.
        .with_pooling(Pooling::Mean)
        // Weight-only int8: batch-independent, so no dynamic quantisation mode.
        .with_quantization(QuantizationMode::None);
        let options = InitOptionsUserDefined::new()
            .with_environment(environment(ort_dylib)?)
            .with_max_length(max_length)
            .with_intra_threads(threads);
        let mut embedding = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| EmbeddingError::Load(e.to_string()))?;
        let probe = embedding.embed(["dimension probe"], None).map_err(|e| EmbeddingError::Load(e.to_string()))?;
        let dimension = probe.first().map_or(0, Vec::len);
        Ok(Self { model: Arc::new(Mutex::new(embedding)), name: name.to_owned(), dimension, batch_size })
    }
}

#[async_trait::async_trait]
impl Embedder for FastEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = Arc::clone(&self.model);
        let batch = self.batch_size;
        tokio::task::spawn_blocking(move || {
            let mut model = model.lock().map_err(|_| EmbeddingError::Inference("model lock poisoned".into()))?;
            model.embed(texts, Some(batch)).map_err(|e| EmbeddingError::Inference(e.to_string()))
        })
        .await
        .map_err(|e| EmbeddingError::Inference(e.to_string()))?
    }
}
