//! Printfleet's cryptography, built only from RustCrypto crates: master and data keys, field
//! encryption at rest, the blind index for e-mail look-up, Argon2id password hashing, identifiable
//! random tokens, audit-log MACs, and the checking of uploaded X.509 certificates and their keys.
//!
//! Randomness is passed in (`rand::CryptoRng`), so tests can be deterministic where they need to be.

pub mod audit_mac;
pub mod blind;
pub mod certificate;
pub mod field;
pub mod keys;
pub mod password;
pub mod token;

pub use audit_mac::AuditKey;
pub use blind::BlindIndexKey;
pub use certificate::{
    fingerprint_of_pem, parse_ca, parse_id, CertificateError, CertificateInfo, CertificateInput,
    IdCertificate,
};
pub use field::{open_field, seal_field, FieldError};
pub use keys::{DataKey, KeyError, MasterKey};
pub use password::{PasswordHasher, PasswordParams};

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
