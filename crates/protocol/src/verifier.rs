//! Secret verifiers (docs/protocol.md §7.3): a printer proves *which* secret it holds without
//! sending it. The key is the printer's 32-byte verifier key from enrolment (§6), which only
//! the printer and the server know, so a verifier reveals nothing to anyone else and cannot be
//! brute-forced offline from a leaked report alone.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The label that starts every verifier's message (domain separation from other HMAC uses).
pub const SECRET_VERIFIER_LABEL: &[u8] = b"printfleet secret verifier v1";

/// `HMAC-SHA256(verifier_key, LABEL || 0x00 || setting_id || 0x00 || value)`, both strings as
/// UTF-8. Neither may contain U+0000 (setting ids are catalogue ids, secrets have an alphabet),
/// so the zero bytes separate the parts unambiguously.
pub fn secret_verifier(verifier_key: &[u8; 32], setting_id: &str, value: &str) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(verifier_key) else {
        // HMAC accepts keys of any length; a 32-byte key cannot be refused.
        return [0; 32];
    };
    mac.update(SECRET_VERIFIER_LABEL);
    mac.update(&[0]);
    mac.update(setting_id.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The verifier as it is reported: 64 lowercase hex digits.
pub fn secret_verifier_hex(verifier_key: &[u8; 32], setting_id: &str, value: &str) -> String {
    secret_verifier(verifier_key, setting_id, value)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a reported verifier (hex) proves that the printer holds `value`; constant time in
/// the value, so a server comparing many candidates leaks nothing through timing.
pub fn verifier_matches(
    verifier_key: &[u8; 32],
    setting_id: &str,
    value: &str,
    reported_hex: &str,
) -> bool {
    let expected = secret_verifier_hex(verifier_key, setting_id, value);
    expected.as_bytes().ct_eq(reported_hex.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_separation() {
        let key = [7u8; 32];
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"printfleet secret verifier v1\0security.ews.admin_password\0Hunter2!");
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(
            secret_verifier(&key, "security.ews.admin_password", "Hunter2!"),
            want
        );
        // Moving a byte between the id and the value changes the verifier.
        assert_ne!(
            secret_verifier(&key, "a.b", "c"),
            secret_verifier(&key, "a", "b.c")
        );
        assert_ne!(
            secret_verifier(&key, "a", "x"),
            secret_verifier(&[8; 32], "a", "x")
        );
        let hex = secret_verifier_hex(&key, "a", "x");
        assert_eq!(hex.len(), 64);
        assert!(verifier_matches(&key, "a", "x", &hex));
        assert!(!verifier_matches(&key, "a", "y", &hex));
        assert!(!verifier_matches(&key, "a", "x", &hex.to_uppercase()));
    }
}
