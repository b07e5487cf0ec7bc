//! Field-level encryption at rest with XChaCha20-Poly1305 (random 192-bit nonces are safe).
//!
//! Layout: `0x01 | key version (u32 BE) | nonce (24) | ciphertext+tag`. The caller binds the
//! field's place (table, column, row id) as associated data, so a ciphertext copied to another
//! row or column does not open.

use crate::keys::DataKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, RngCore};

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("encrypted field is malformed")]
    Malformed,
    #[error("encrypted field did not authenticate (wrong key, wrong place, or tampered)")]
    Tampered,
}

/// Encrypts `plaintext` under `key` (whose version is `version`), binding `aad`.
pub fn seal_field(
    key: &DataKey,
    version: u32,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose_bytes().into());
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER + plaintext.len() + 16);
    out.push(FORMAT);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    let full_aad = [&out[..5], aad].concat();
    // Encryption with a valid key and nonce cannot fail for in-memory buffers.
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &full_aad,
            },
        )
        .unwrap_or_default();
    out.extend_from_slice(&ct);
    out
}

/// The key version a sealed field names, so the caller can fetch the right key.
pub fn field_key_version(sealed: &[u8]) -> Result<u32, FieldError> {
    if sealed.len() < HEADER + 16 || sealed[0] != FORMAT {
        return Err(FieldError::Malformed);
    }
    Ok(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

pub fn open_field(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FieldError> {
    field_key_version(sealed)?;
    let cipher = XChaCha20Poly1305::new(key.expose_bytes().into());
    let full_aad = [&sealed[..5], aad].concat();
    cipher
        .decrypt(
            XNonce::from_slice(&sealed[5..HEADER]),
            Payload {
                msg: &sealed[HEADER..],
                aad: &full_aad,
            },
        )
        .map_err(|_| FieldError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn round_trip_and_binding() {
        let k = DataKey::generate(&mut OsRng);
        let s = seal_field(&k, 7, b"users.email:1", b"ann@example.com", &mut OsRng);
        assert_eq!(field_key_version(&s), Ok(7));
        assert_eq!(
            open_field(&k, b"users.email:1", &s).unwrap(),
            b"ann@example.com"
        );
        assert_eq!(
            open_field(&k, b"users.email:2", &s),
            Err(FieldError::Tampered)
        );
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(
            open_field(&k, b"users.email:1", &t),
            Err(FieldError::Tampered)
        );
        // The version is authenticated too.
        let mut v = s.clone();
        v[4] ^= 1;
        assert_eq!(
            open_field(&k, b"users.email:1", &v),
            Err(FieldError::Tampered)
        );
        assert_eq!(open_field(&k, b"x", &s[..10]), Err(FieldError::Malformed));
        assert!(!s.windows(3).any(|w| w == b"ann"));
    }
}
