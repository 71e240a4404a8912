//! Subjects (people) and the ways they are named.

use std::str::FromStr;

use unicode_normalization::UnicodeNormalization;

/// The kind of an identifier; decides how it is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    Email,
    Name,
    Phone,
    Handle,
    AnonymousId,
    Other,
}

impl IdentifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
            Self::Phone => "phone",
            Self::Handle => "handle",
            Self::AnonymousId => "anonymous_id",
            Self::Other => "other",
        }
    }
}

impl FromStr for IdentifierKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "email" => Self::Email,
            "name" => Self::Name,
            "phone" => Self::Phone,
            "handle" => Self::Handle,
            "anonymous_id" => Self::AnonymousId,
            "other" => Self::Other,
            other => return Err(format!("unknown identifier kind `{other}`")),
        })
    }
}

/// One identifier of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

impl Identifier {
    pub const MAX_LEN: usize = 512;

    /// An identifier as a row keeps it, `(kind, value)`; None for a kind
    /// this version does not know.
    pub fn from_row((kind, value): (String, String)) -> Option<Self> {
        kind.parse().ok().map(|kind| Self { kind, value })
    }

    /// The form that is hashed for tombstones: NFKC, trimmed, inner whitespace
    /// collapsed, lower case; phones keep only digits and a leading `+`.
    pub fn normalized(&self) -> String {
        let nfkc: String = self.value.nfkc().collect();
        let collapsed = nfkc.split_whitespace().collect::<Vec<_>>().join(" ");
        match self.kind {
            IdentifierKind::Phone => {
                let plus = collapsed.starts_with('+');
                let digits: String = collapsed.chars().filter(char::is_ascii_digit).collect();
                if plus { format!("+{digits}") } else { digits }
            }
            IdentifierKind::Email
            | IdentifierKind::Name
            | IdentifierKind::Handle
            | IdentifierKind::AnonymousId
            | IdentifierKind::Other => collapsed.to_lowercase(),
        }
    }
}

/// How a chunk concerns a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Author,
    Mentioned,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Author => "author",
            Self::Mentioned => "mentioned",
        }
    }
}

/// Where a subject is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectState {
    Active,
    PendingErasure,
    Erased,
    /// Its identifiers name a person who is being or has been erased: it
    /// was never erased itself, but nothing tagged with it is written.
    Suppressed,
}

impl SubjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::PendingErasure => "pending_erasure",
            Self::Erased => "erased",
            Self::Suppressed => "suppressed",
        }
    }

    /// Ingestion for a subject in this state is suppressed.
    pub fn suppresses_ingest(self) -> bool {
        !matches!(self, Self::Active)
    }
}

impl FromStr for SubjectState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => Self::Active,
            "pending_erasure" => Self::PendingErasure,
            "erased" => Self::Erased,
            "suppressed" => Self::Suppressed,
            other => return Err(format!("unknown subject state `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: IdentifierKind, value: &str) -> Identifier {
        Identifier { kind, value: value.into() }
    }

    #[test]
    fn identifiers_normalise_case_space_and_phone_punctuation() {
        assert_eq!(id(IdentifierKind::Email, " Jeff.Dasovich@Enron.com ").normalized(), "jeff.dasovich@enron.com");
        assert_eq!(id(IdentifierKind::Name, "Jeff   Dasovich").normalized(), "jeff dasovich");
        assert_eq!(id(IdentifierKind::Phone, "+1 (713) 853-6000").normalized(), "+17138536000");
    }

    #[test]
    fn only_active_subjects_accept_ingest() {
        assert!(!SubjectState::Active.suppresses_ingest());
        assert!(SubjectState::PendingErasure.suppresses_ingest());
        assert!(SubjectState::Erased.suppresses_ingest());
    }
}
