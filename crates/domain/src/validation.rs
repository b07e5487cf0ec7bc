//! The one error type for input that does not make a valid domain value. It names the field, so
//! that the API can answer with the offending field.

/// Invalid input, naming the field and saying what is wrong. Never carries the value itself, which
/// may be personal data or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Trims `value` and checks it is non-empty, at most `max` characters and free of control
/// characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ValidationError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}

/// Like [`text`] but an empty or absent value is allowed and becomes `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text("f", "  a ", 3).as_deref(), Ok("a"));
        assert_eq!(text("f", " ", 3).unwrap_err().message, "must not be empty");
        assert!(text("f", "abcd", 3).is_err());
        assert!(text("f", "a\u{7}", 3).is_err());
        assert_eq!(optional_text("f", Some(""), 3), Ok(None));
        assert_eq!(optional_text("f", None, 3), Ok(None));
    }
}
