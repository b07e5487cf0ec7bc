//! A wrapper for personal data and secrets that never shows its content in `Debug` output, and so
//! never in logs or error messages built from `Debug`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Holds personal data or a secret. `Debug` prints `[redacted]`. Reading the value is explicit
/// (`expose`), so that every place that handles the content is easy to find.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_content() {
        let r = Redacted::new("alice@example.com".to_string());
        assert_eq!(format!("{r:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(r)), "Some([redacted])");
    }
}
