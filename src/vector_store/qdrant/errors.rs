//! Qdrant's errors as `VectorStoreError`: unavailable (retry) or backend.

use super::*;

pub(super) fn backend_error(message: impl Into<String>, source: Option<BoxError>) -> VectorStoreError {
    VectorStoreError::Backend { backend: Backend::Qdrant, message: message.into(), source }
}

/// The one mapping of client errors: unreachable, timed out, cancelled or
/// throttled → `Unavailable` (retry), `NotFound` → `CollectionNotFound(name)`,
/// anything else → `Backend`.
pub(super) fn map_error(err: QdrantError, name: &str) -> VectorStoreError {
    let status = match &err {
        QdrantError::ResponseError { status } | QdrantError::ResourceExhaustedError { status, .. } => Some(status),
        _ => None,
    };
    let Some(status) = status else {
        return backend_error(err.to_string(), Some(Box::new(err)));
    };
    let transient = match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Cancelled
        | tonic::Code::ResourceExhausted => true,
        // The client's channel pool reports a failed connect as Internal.
        tonic::Code::Internal if status.message().starts_with("Failed to connect to") => true,
        _ => has_transport_source(status),
    };
    if transient {
        return VectorStoreError::Unavailable { backend: Backend::Qdrant, source: Box::new(err) };
    }
    if status.code() == tonic::Code::NotFound && !name.is_empty() {
        return VectorStoreError::CollectionNotFound(name.to_owned());
    }
    let message = format!("{:?}: {}", status.code(), status.message());
    backend_error(message, Some(Box::new(err)))
}

pub(super) fn has_transport_source(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}
