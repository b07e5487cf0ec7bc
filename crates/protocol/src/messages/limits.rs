//! The limits on strings, lists and numbers (docs/protocol.md §7.2).

use super::*;

// ------------------------------------------------------------------------------------------------
// Limits
// ------------------------------------------------------------------------------------------------

/// A string's length, then its characters.
pub(super) fn text(field: &str, value: &str, max: usize) -> Result<(), MessageError> {
    if value.chars().count() > max {
        return Err(MessageError::new(
            "too_long",
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(MessageError::bad(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A string that names something: not empty, then as [`text`].
pub(super) fn name(field: &str, value: &str, max: usize) -> Result<(), MessageError> {
    if value.is_empty() {
        return Err(MessageError::bad(field, "must not be empty"));
    }
    text(field, value, max)
}

pub(super) fn opt_text(
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Result<(), MessageError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, max))
}

pub(super) fn count(field: &str, len: usize, max: usize) -> Result<(), MessageError> {
    if len > max {
        return Err(MessageError::new(
            "too_many",
            field,
            format!("at most {max} entries"),
        ));
    }
    Ok(())
}

/// A counter or time: at most [`MAX_JSON_SAFE_INTEGER`].
pub(super) fn safe(field: &str, value: Option<u64>) -> Result<(), MessageError> {
    if value.is_some_and(|v| v > MAX_JSON_SAFE_INTEGER) {
        return Err(MessageError::new(
            "out_of_range",
            field,
            "must be at most 9007199254740991 (2^53 - 1)",
        ));
    }
    Ok(())
}

pub(super) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A UUID in its 36-character hyphenated lowercase form, `8-4-4-4-12` hex digits.
pub(super) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(n, b)| match n {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// A string value of a setting to apply: text of at most [`MAX_SETTING_TEXT_LEN`] characters,
/// or PEM text (it starts with `-----BEGIN `) of at most [`MAX_PEM_LEN`] characters whose only
/// control characters are line ends (CR, LF).
pub(super) fn setting_string(field: &str, value: &str) -> Result<(), MessageError> {
    if !value.starts_with(PEM_START) {
        return text(field, value, MAX_SETTING_TEXT_LEN);
    }
    if value.chars().count() > MAX_PEM_LEN {
        return Err(MessageError::new(
            "too_long",
            field,
            format!("PEM text must be at most {MAX_PEM_LEN} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        return Err(MessageError::bad(
            field,
            "PEM text must not contain control characters other than CR and LF",
        ));
    }
    Ok(())
}
