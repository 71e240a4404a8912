//! Validated names: parse, don't validate.

use std::fmt;

/// A request field that failed validation: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Checks a required text field of a request: not blank, at most `max`
/// bytes, no NUL character.
///
/// # Errors
/// `InvalidInput` naming `field`.
/// Whether a character is one of Unicode's default-ignorable code points
/// (soft hyphen, zero-width space and joiners, word joiner, bidirectional
/// marks, variation selectors, BOM, tags …): invisible, so a text made of
/// them is blank, and `ps1\u{200B}` reads as `ps1`. The ranges are
/// DerivedCoreProperties.txt's `Default_Ignorable_Code_Point` (Unicode 15).
#[must_use]
pub fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

pub fn bounded_text<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, InvalidInput> {
    // Blank: only white space and invisible characters (`\u{200B}` is no id).
    if value.chars().all(|c| c.is_whitespace() || invisible(c)) {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Checks an optional text field of a request: empty, or at most `max` bytes
/// without a NUL character.
///
/// This and [`bounded_text`] are the one check every string field of every
/// request goes through (directly, or through `ExternalId`, `Identifier`,
/// `CollectionName` and the UUID parser, which admit a subset): a bound per
/// field, because a string is stored, hashed, matched or embedded; no NUL,
/// because Postgres `text` cannot hold one (the insert would fail as an
/// internal error). Valid UTF-8 is checked before, when the request is
/// decoded (`grpc::codec`).
///
/// # Errors
/// `InvalidInput` naming `field`.
pub fn optional_text<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, InvalidInput> {
    if value.len() > max {
        return Err(InvalidInput::new(field, format!("must be at most {max} bytes, got {}", value.len())));
    }
    if value.contains('\0') {
        return Err(InvalidInput::new(field, "must not contain NUL characters"));
    }
    Ok(value)
}

/// A collection's name in Lethe: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectionName(String);

impl CollectionName {
    /// # Errors
    /// When the name is empty, too long or has other characters.
    pub fn parse(field: &str, s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty() || s.len() > 64 {
            return Err(InvalidInput::new(field, "must be 1 to 64 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(InvalidInput::new(field, "may contain only A-Z, a-z, 0-9, '_' and '-'"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A caller's id (of a subject or a source): 1–256 bytes, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    pub const MAX_LEN: usize = 256;

    /// # Errors
    /// When empty, blank or longer than 256 bytes.
    pub fn parse(field: &str, s: &str) -> Result<Self, InvalidInput> {
        bounded_text(field, s, Self::MAX_LEN).map(|v| Self(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_accept_identifiers_and_reject_the_rest() {
        assert!(CollectionName::parse("n", "mail_2024-v1").is_ok());
        for bad in ["", "has space", "semi;colon", "ü", &"x".repeat(65)] {
            assert!(CollectionName::parse("n", bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn external_ids_are_bounded_and_not_blank() {
        assert!(ExternalId::parse("id", "user 42").is_ok());
        assert!(ExternalId::parse("id", "   ").is_err());
        for blank in ["\u{200B}", "\u{FEFF}", " \u{00AD}\u{2060} "] {
            assert!(ExternalId::parse("id", blank).is_err(), "{blank:?} is blank");
        }
        assert!(ExternalId::parse("id", "ps1\u{200B}").is_ok(), "kept as given; read as `ps1` where it is matched");
        assert!(ExternalId::parse("id", &"a".repeat(257)).is_err());
        assert!(ExternalId::parse("id", "a\0b").is_err());
        let err = ExternalId::parse("subject.id", "").unwrap_err();
        assert_eq!(err.field, "subject.id");
    }

    #[test]
    fn optional_texts_may_be_empty_but_are_bounded_and_nul_free() {
        assert_eq!(optional_text("uri", "", 8), Ok(""));
        assert_eq!(optional_text("uri", "  ", 8), Ok("  "));
        assert!(optional_text("uri", "a\0", 8).is_err());
        assert!(optional_text("uri", "123456789", 8).is_err());
        assert!(bounded_text("text", "", 8).is_err());
    }
}
