//! Random secrets with recognisable prefixes (so secret scanners spot a leak) and their hashes.
//! Secrets are 256-bit random, so a plain SHA-256 is the right stored form: nothing to brute-force.

use base64::Engine;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// API tokens.
pub const API_TOKEN_PREFIX: &str = "pf_";
/// Session cookies.
pub const SESSION_PREFIX: &str = "pfs_";
/// Invitation links.
pub const INVITATION_PREFIX: &str = "pfi_";
/// CSRF tokens.
pub const CSRF_PREFIX: &str = "pfc_";
/// Printer enrolment tokens.
pub const ENROLMENT_PREFIX: &str = "pfe_";

/// `prefix` followed by 32 random bytes in URL-safe base64 (43 characters).
pub fn generate(prefix: &str, rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// Checks the shape of a presented secret before it is hashed and looked up.
pub fn well_formed(prefix: &str, presented: &str) -> bool {
    presented.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}

/// The stored form of a secret: hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two secrets.
pub fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn generate_and_check() {
        let t = generate(API_TOKEN_PREFIX, &mut OsRng);
        assert!(well_formed(API_TOKEN_PREFIX, &t));
        assert!(!well_formed(SESSION_PREFIX, &t));
        assert!(!well_formed(API_TOKEN_PREFIX, "pf_short"));
        assert_ne!(t, generate(API_TOKEN_PREFIX, &mut OsRng));
        assert_eq!(hash(&t).len(), 64);
        assert!(equal(&t, &t.clone()));
        assert!(!equal(&t, "pf_x"));
    }
}
