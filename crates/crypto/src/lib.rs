//! Printfleet's cryptography, built only from RustCrypto crates: master and data keys, field
//! encryption at rest, the blind index for e-mail look-up, Argon2id password hashing, identifiable
//! random tokens and audit-log MACs.
//!
//! Randomness is passed in (`rand::CryptoRng`), so tests can be deterministic where they need to be.

pub mod audit_mac;
pub mod blind;
pub mod field;
pub mod keys;
pub mod password;
pub mod token;

pub use audit_mac::AuditKey;
pub use blind::BlindIndexKey;
pub use field::{open_field, seal_field, FieldError};
pub use keys::{DataKey, KeyError, MasterKey};
pub use password::{PasswordHasher, PasswordParams};

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
