//! The only place where errors become gRPC statuses. Reasons travel as
//! `google.rpc.ErrorInfo` (domain `lethe.dev`) and at the start of the
//! message; internal causes are logged here, once, and never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::InvalidInput;
use crate::error::LetheError;

const DOMAIN: &str = "lethe.dev";

fn status(code: Code, reason: &str, message: &str, details: ErrorDetails) -> Status {
    status_with(code, reason, message, details, HashMap::new())
}

/// `status` with ErrorInfo metadata (e.g. the id of the job a caller should look at).
fn status_with(code: Code, reason: &str, message: &str, mut details: ErrorDetails, metadata: HashMap<String, String>) -> Status {
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, format!("{reason}: {message}"), details)
}

impl From<LetheError> for Status {
    fn from(err: LetheError) -> Self {
        let none = ErrorDetails::new;
        match err {
            LetheError::InvalidArgument(bad) => status(
                Code::InvalidArgument,
                "invalid_argument",
                &bad.to_string(),
                ErrorDetails::with_bad_request_violation(bad.field.clone(), bad.message.clone()),
            ),
            LetheError::NotFound(what) => status(Code::NotFound, "not_found", &format!("{what} not found"), none()),
            LetheError::FailedPrecondition { reason, message } => status(Code::FailedPrecondition, reason, &message, none()),
            LetheError::AlreadyExists { message } => status(Code::AlreadyExists, "already_exists", &message, none()),
            e @ LetheError::ErasureInProgress { job_id } => status_with(
                Code::AlreadyExists,
                "erasure_in_progress",
                &e.to_string(),
                none(),
                HashMap::from([("job_id".to_owned(), job_id.to_string())]),
            ),
            e @ LetheError::LegalHold { .. } => {
                let message = e.to_string();
                let LetheError::LegalHold { job_id, head } = e else { unreachable!() };
                let mut metadata = HashMap::from([("job_id".to_owned(), job_id.to_string())]);
                if let Some(h) = head {
                    // The signed head that covers the refusal: keep it, and
                    // pin it in VerifyDeletionLog to show the refusal was not removed.
                    metadata.insert("log_size".into(), h.size.to_string());
                    metadata.insert("log_head_hash".into(), hex::encode(&h.head_hash));
                    metadata.insert("log_head_statement".into(), h.statement());
                    metadata.insert("log_head_signature".into(), crate::erasure::b64(&h.signature));
                }
                status_with(Code::FailedPrecondition, "legal_hold", &message, none(), metadata)
            }
            LetheError::Unauthenticated => status(Code::Unauthenticated, "invalid_api_key", "missing, unknown or revoked API key", none()),
            LetheError::PermissionDenied { reason } => {
                status(Code::PermissionDenied, reason, "this key may not call this rpc", none())
            }
            LetheError::DeadlineExceeded { message } => {
                status(Code::DeadlineExceeded, "deadline_exceeded", &message, none())
            }
            LetheError::Unavailable(cause) => {
                tracing::warn!(error.cause_chain = ?cause, "backend unavailable");
                status(Code::Unavailable, "unavailable", "a backend is unavailable; retry later", none())
            }
            LetheError::Unexpected(cause) => {
                tracing::error!(error.cause_chain = ?cause, error.message = %cause, "internal error");
                Status::new(Code::Internal, "internal error")
            }
        }
    }
}

/// A request that does not decode as its message (a string that is not
/// UTF-8, a malformed field): INVALID_ARGUMENT naming the field as prost
/// does, e.g. `chunks.source_uri` (without the index).
pub(super) fn undecodable(err: &prost::DecodeError) -> Status {
    let message = err.to_string();
    let (field, description) = decode_error_field(&message);
    Status::from(LetheError::from(InvalidInput::new(field, format!("does not decode: {description}"))))
}

/// prost writes `failed to decode Protobuf message: Inner.field: Outer.field:
/// description`, innermost first: the field path outermost first, and the
/// description. Its error type exposes nothing else.
fn decode_error_field(message: &str) -> (String, &str) {
    let mut rest = message.strip_prefix("failed to decode Protobuf message: ").unwrap_or(message);
    let mut path = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let Some((msg, field)) = head.split_once('.') else { break };
        let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !(ident(msg) && ident(field)) {
            break;
        }
        path.push(field);
        rest = tail;
    }
    path.reverse();
    let field = if path.is_empty() { "request".to_owned() } else { path.join(".") };
    (field, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_field_outermost_first() {
        let m = "failed to decode Protobuf message: IngestChunk.source_uri: IngestRequest.chunks: invalid string \
                 value: data is not UTF-8 encoded";
        assert_eq!(
            decode_error_field(m),
            ("chunks.source_uri".to_owned(), "invalid string value: data is not UTF-8 encoded")
        );
        let top = "failed to decode Protobuf message: invalid varint";
        assert_eq!(decode_error_field(top), ("request".into(), "invalid varint"));
        let err = <crate::grpc::pb::GetErasureRequest as prost::Message>::decode(&[0x0a, 0x01, 0xff][..]).unwrap_err();
        let s = undecodable(&err);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.get_error_details().bad_request().map(|b| b.field_violations[0].field.as_str()), Some("job_id"));
    }

    #[test]
    fn every_error_kind_maps_to_its_code_and_reason() {
        let cases: Vec<(LetheError, Code, &str)> = vec![
            (InvalidInput::new("chunks[0].text", "must not be empty").into(), Code::InvalidArgument, "invalid_argument"),
            (LetheError::NotFound("job x".into()), Code::NotFound, "not_found"),
            (LetheError::precondition("legal_hold", "held"), Code::FailedPrecondition, "legal_hold"),
            (LetheError::LegalHold { job_id: uuid::Uuid::nil(), head: None }, Code::FailedPrecondition, "legal_hold"),
            (LetheError::AlreadyExists { message: "x".into() }, Code::AlreadyExists, "already_exists"),
            (LetheError::ErasureInProgress { job_id: uuid::Uuid::nil() }, Code::AlreadyExists, "erasure_in_progress"),
            (LetheError::Unauthenticated, Code::Unauthenticated, "invalid_api_key"),
            (LetheError::PermissionDenied { reason: "requires_secret_key" }, Code::PermissionDenied, "requires_secret_key"),
            (LetheError::Unavailable(anyhow::anyhow!("db down")), Code::Unavailable, "unavailable"),
            (LetheError::DeadlineExceeded { message: "slow".into() }, Code::DeadlineExceeded, "deadline_exceeded"),
        ];
        for (err, code, reason) in cases {
            let s = Status::from(err);
            assert_eq!(s.code(), code);
            assert!(s.message().starts_with(reason), "{}", s.message());
            assert_eq!(s.get_error_details().error_info().map(|i| i.reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let s = Status::from(LetheError::Unexpected(anyhow::anyhow!("password=hunter2 at db:5432")));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
    }
}
