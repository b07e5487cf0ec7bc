//! Tenants: customer accounts with a region and contact data (personal data, encrypted at rest).

use crate::email::Email;
use crate::ids::TenantId;
use crate::redact::Redacted;
use crate::validation::{self, ValidationError};

/// A deployment region code such as `us`, `eu-west` (lower-case letters, digits and dashes).
pub fn validate_region(raw: &str) -> Result<String, ValidationError> {
    let v = raw.trim();
    let ok = (2..=32).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValidationError::new(
            "region",
            "must be 2-32 lower-case letters, digits or dashes",
        ))
    }
}

/// A phone number: digits, spaces and `+-()./`, 4–32 characters.
pub fn validate_phone(field: &str, raw: &str) -> Result<String, ValidationError> {
    let v = raw.trim();
    let ok = (4..=32).contains(&v.chars().count())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
    if ok {
        Ok(v.to_string())
    } else {
        Err(ValidationError::new(
            field,
            "must be 4-32 characters of digits, spaces and +-()./",
        ))
    }
}

/// The tenant's contact person and address. All of it is personal data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub name: Option<Redacted<String>>,
    pub email: Option<Redacted<String>>,
    pub phone: Option<Redacted<String>>,
    pub postal_address: Option<Redacted<String>>,
}

impl Contact {
    /// Validates raw contact fields; each is optional.
    pub fn parse(
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        postal_address: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => Some(Email::parse("contact.email", e)?.expose().to_string()),
            None => None,
        };
        let phone = match phone.map(str::trim).filter(|e| !e.is_empty()) {
            Some(p) => Some(validate_phone("contact.phone", p)?),
            None => None,
        };
        Ok(Self {
            name: validation::optional_text("contact.name", name, 200)?.map(Redacted::new),
            email: email.map(Redacted::new),
            phone: phone.map(Redacted::new),
            postal_address: validation::optional_text(
                "contact.postal_address",
                postal_address,
                500,
            )?
            .map(Redacted::new),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub region: String,
    pub contact: Contact,
    pub created_at_ms: i64,
}

pub fn validate_tenant_name(raw: &str) -> Result<String, ValidationError> {
    validation::text("name", raw, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_phones() {
        assert_eq!(validate_region("eu-west").as_deref(), Ok("eu-west"));
        assert!(validate_region("EU").is_err());
        assert!(validate_region("-eu").is_err());
        assert!(validate_phone("p", "+49 (30) 1234-567").is_ok());
        assert!(validate_phone("p", "call me").is_err());
    }

    #[test]
    fn contact_names_the_bad_field() {
        let err = Contact::parse(None, Some("nope"), None, None).unwrap_err();
        assert_eq!(err.field, "contact.email");
        let err = Contact::parse(None, None, Some("x"), None).unwrap_err();
        assert_eq!(err.field, "contact.phone");
        let c = Contact::parse(Some("Ann"), Some(""), None, None).unwrap();
        assert!(c.email.is_none());
        assert!(!format!("{c:?}").contains("Ann"));
    }
}
