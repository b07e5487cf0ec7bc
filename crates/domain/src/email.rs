//! E-mail addresses: parsed once, normalised, and redacted in `Debug`.

use crate::validation::ValidationError;
use std::fmt;

/// A syntactically plausible e-mail address, trimmed and lower-cased (so that the blind index
/// finds it whatever case the person types).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let v = raw.trim().to_lowercase();
        if v.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if v.len() > Self::MAX_LEN {
            return Err(ValidationError::new(field, "must be at most 254 bytes"));
        }
        let Some((local, domain)) = v.rsplit_once('@') else {
            return Err(ValidationError::new(field, "must contain '@'"));
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
        if local.is_empty()
            || domain.is_empty()
            || local.contains('@')
            || v.chars().any(bad)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(ValidationError::new(field, "is not a valid e-mail address"));
        }
        Ok(Self(v))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let e = Email::parse("email", "  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(e.expose(), "alice.smith@example.com");
        assert_eq!(format!("{e:?}"), "Email([redacted])");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "a@localhost",
            "a@@b.c",
            "a@.b",
            "a@b.",
        ] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
            assert!(
                !err.message.contains(bad) || bad.is_empty(),
                "the value must not echo: {bad}"
            );
        }
    }
}
