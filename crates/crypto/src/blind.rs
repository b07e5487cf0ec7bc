//! The blind index: a keyed hash of a normalised e-mail address, so sign-in can find a person
//! without the address being stored in plaintext or searchable without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindIndexKey([u8; 32]);

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey([redacted])")
    }
}

impl BlindIndexKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// Hex of HMAC-SHA256(key, purpose || 0 || value).
    pub fn index(&self, purpose: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_keyed() {
        let a = BlindIndexKey::from_bytes([1; 32]);
        let b = BlindIndexKey::from_bytes([2; 32]);
        assert_eq!(a.index("email", "x@y.z"), a.index("email", "x@y.z"));
        assert_ne!(a.index("email", "x@y.z"), b.index("email", "x@y.z"));
        assert_ne!(a.index("email", "x@y.z"), a.index("other", "x@y.z"));
        assert_eq!(a.index("email", "x@y.z").len(), 64);
    }
}
