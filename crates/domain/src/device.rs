//! Printer identity attributes as reported at enrolment: parsed once, valid if they exist.

use crate::validation::ValidationError;

/// What a printer says about itself when it enrols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFacts {
    /// 1–64 characters of letters, digits, `-`, `_`, `.`.
    pub serial: String,
    pub model: String,
    pub firmware: String,
}

fn printable(field: &str, v: &str, max: usize) -> Result<String, ValidationError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("must be 1-{max} printable characters"),
        ));
    }
    Ok(v.to_string())
}

impl DeviceFacts {
    pub fn parse(serial: &str, model: &str, firmware: &str) -> Result<Self, ValidationError> {
        let s = serial.trim();
        let serial_ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !serial_ok {
            return Err(ValidationError::new(
                "serial",
                "must be 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self {
            serial: s.to_string(),
            model: printable("model", model, 100)?,
            firmware: printable("firmware", firmware, 64)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_checked() {
        assert!(DeviceFacts::parse("CNB1234567", "LaserJet M507", "2506.1").is_ok());
        assert_eq!(
            DeviceFacts::parse("", "m", "f").unwrap_err().field,
            "serial"
        );
        assert_eq!(
            DeviceFacts::parse("a b", "m", "f").unwrap_err().field,
            "serial"
        );
        assert_eq!(DeviceFacts::parse("s", "", "f").unwrap_err().field, "model");
        assert_eq!(
            DeviceFacts::parse("s", "m", &"f".repeat(65))
                .unwrap_err()
                .field,
            "firmware"
        );
    }
}
