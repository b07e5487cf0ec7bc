//! People: one identity across tenants. Names and e-mail are personal data.

use crate::email::Email;
use crate::ids::UserId;
use crate::redact::Redacted;
use crate::validation::{self, ValidationError};

/// A BCP 47-like locale tag such as `en`, `de-CH`, `zh-Hant-TW`.
pub fn validate_locale(raw: &str) -> Result<String, ValidationError> {
    let v = raw.trim();
    let mut parts = v.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if first_ok && rest_ok && v.len() <= 35 {
        Ok(v.to_string())
    } else {
        Err(ValidationError::new(
            "locale",
            "must be a language tag such as en or de-CH",
        ))
    }
}

/// A new password: 12 to 1024 characters. Length is what matters; no composition rules
/// (NIST SP 800-63B).
pub fn validate_new_password(raw: &str) -> Result<Redacted<String>, ValidationError> {
    let n = raw.chars().count();
    if n < 12 {
        return Err(ValidationError::new(
            "password",
            "must be at least 12 characters",
        ));
    }
    if raw.len() > 1024 {
        return Err(ValidationError::new(
            "password",
            "must be at most 1024 bytes",
        ));
    }
    Ok(Redacted::new(raw.to_string()))
}

/// What a person tells us about themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub email: Email,
    pub first_name: Redacted<String>,
    pub last_name: Redacted<String>,
    pub locale: String,
}

impl Profile {
    pub fn parse(
        email: &str,
        first_name: &str,
        last_name: &str,
        locale: &str,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            email: Email::parse("email", email)?,
            first_name: Redacted::new(validation::text("first_name", first_name, 100)?),
            last_name: Redacted::new(validation::text("last_name", last_name, 100)?),
            locale: validate_locale(locale)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub profile: Profile,
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales() {
        for ok in ["en", "de-CH", "zh-Hant-TW", "fil"] {
            assert!(validate_locale(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english-language-tag-way-too-long-for-us",
            "en_US",
            "en-",
        ] {
            assert!(validate_locale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("correct horse battery").is_ok());
        assert!(validate_new_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn profile_debug_shows_no_personal_data() {
        let p = Profile::parse("ann@example.com", "Ann", "Example", "en").unwrap();
        let d = format!("{p:?}");
        assert!(!d.contains("Ann") && !d.contains("ann@") && !d.contains("Example"));
    }
}
