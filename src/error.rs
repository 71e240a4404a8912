//! `LetheError`: the error of every operation a client can request. Callers
//! branch on its variants; `grpc::status` turns each into a wire status.

use crate::domain::InvalidInput;
use crate::embedding::EmbeddingError;
use crate::store::StoreError;
use crate::vector_store::VectorStoreError;

#[derive(Debug, thiserror::Error)]
pub enum LetheError {
    #[error("invalid argument: {0}")]
    InvalidArgument(#[from] InvalidInput),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is valid but the system's state forbids it; `reason` is a
    /// stable machine-readable code (`legal_hold`, …).
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: String },
    #[error("{message}")]
    AlreadyExists { message: String },
    /// The subject already has a queued or in-progress erasure: this job.
    #[error("an erasure of this subject is already queued or in progress: job {job_id}")]
    ErasureInProgress { job_id: uuid::Uuid },
    /// The subject is under legal hold: the refusal was recorded as this job
    /// and logged; `head` is the log's signed head covering the refusal.
    #[error("subject is under legal hold; refusal recorded as job {job_id}")]
    LegalHold { job_id: uuid::Uuid, head: Option<Box<crate::audit::SignedHead>> },
    #[error("invalid API key")]
    Unauthenticated,
    /// The key is valid but of the wrong kind; `reason` names what is needed.
    #[error("permission denied: {reason}")]
    PermissionDenied { reason: &'static str },
    #[error("a backend is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The operation ran out of the time it is given (`residual.search_timeout_ms`).
    #[error("{message}")]
    DeadlineExceeded { message: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub type Result<T, E = LetheError> = std::result::Result<T, E>;

impl LetheError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument(InvalidInput::new(field, message))
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason, message: message.into() }
    }

    /// Whether PostgreSQL rolled a transaction of the failed work back for a
    /// conflict with another one (a deadlock's victim 40P01, a serialization
    /// failure 40001): the same work again, at once, is the remedy.
    pub fn is_conflict(&self) -> bool {
        let Self::Unavailable(e) = self else { return false };
        e.chain().any(|c| c.downcast_ref::<sqlx::Error>().is_some_and(crate::store::is_rolled_back_for_conflict))
    }

    /// What a job record (shown to clients, kept after the erasure) may say
    /// of the error: Lethe's own words, never a backend's or the database's
    /// (which can quote a value: "Key (external_id)=(…) already exists").
    /// The cause goes to the service log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "a backend is unavailable".to_owned(),
            Self::Unexpected(_) => "unexpected error (the service log has the cause)".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for LetheError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(source) => Self::Unavailable(anyhow::Error::new(source)),
            StoreError::Unexpected(source) => Self::Unexpected(anyhow::Error::new(source)),
        }
    }
}

impl From<VectorStoreError> for LetheError {
    fn from(e: VectorStoreError) -> Self {
        // Errors of the backend itself, counted for operators (`/metrics`);
        // the rest are the request's.
        match &e {
            VectorStoreError::Unavailable { backend, .. } => crate::metrics::backend_error("unavailable", backend.as_str()),
            VectorStoreError::Backend { backend, .. } => crate::metrics::backend_error("request_failed", backend.as_str()),
            VectorStoreError::CollectionNotFound(_) => crate::metrics::backend_error("collection_not_found", "unknown"),
            VectorStoreError::DimensionMismatch { .. }
            | VectorStoreError::NotConfigured { .. }
            | VectorStoreError::InvalidMapping { .. }
            | VectorStoreError::Unsupported(_) => {}
        }
        match e {
            VectorStoreError::DimensionMismatch { expected, actual } => {
                Self::invalid("vector", format!("has {actual} dimensions, the collection expects {expected}"))
            }
            VectorStoreError::NotConfigured { backend } => {
                Self::precondition("backend_not_configured", format!("{backend} is not configured on this server"))
            }
            VectorStoreError::InvalidMapping { field, message } => {
                // `target` (the table or collection) is the request's own field; the rest are the mapping's.
                let field = if field == "target" { field } else { format!("mapping.{field}") };
                Self::invalid(field, message)
            }
            VectorStoreError::Unsupported(message) => Self::precondition("attached_collection", message),
            VectorStoreError::Unavailable { .. } => Self::Unavailable(anyhow::Error::new(e)),
            VectorStoreError::CollectionNotFound(_) | VectorStoreError::Backend { .. } => {
                Self::Unexpected(anyhow::Error::new(e))
            }
        }
    }
}

impl From<crate::keys::KeyError> for LetheError {
    fn from(e: crate::keys::KeyError) -> Self {
        use crate::keys::KeyError;
        match e {
            KeyError::Store(store) => store.into(),
            KeyError::Unavailable(_) => Self::Unavailable(anyhow::Error::new(e)),
            KeyError::UnknownVersion(_) | KeyError::Corrupt(_) | KeyError::File(_) | KeyError::WrongFile(_) => {
                Self::Unexpected(anyhow::Error::new(e))
            }
        }
    }
}

impl From<EmbeddingError> for LetheError {
    fn from(e: EmbeddingError) -> Self {
        Self::Unexpected(anyhow::Error::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_record_never_quotes_the_database_or_a_backend() {
        let db = LetheError::Unexpected(anyhow::anyhow!("duplicate key: Key (external_id)=(alice@example.com) already exists"));
        let backend = LetheError::Unavailable(anyhow::anyhow!("qdrant said: point alice@example.com"));
        for e in [db, backend] {
            assert!(!e.public_message().contains("alice"), "{}", e.public_message());
        }
        assert_eq!(LetheError::NotFound("collection `mail`".into()).public_message(), "collection `mail` not found");
    }
}
