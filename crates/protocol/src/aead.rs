//! ChaCha20-Poly1305 (RFC 8439) for heartbeat datagrams and session bodies, from `ring` (the
//! crypto provider rustls already uses here, BoringSSL's assembly). The RustCrypto
//! `chacha20poly1305` crate gives the same bytes but spent ~2.5 µs per tiny message on set-up
//! (measured: seal + open of a 2-byte heartbeat payload 5.1 µs vs 0.6 µs with `ring`), which was
//! the largest single item in the heartbeat profile. HPKE keeps its own AEAD (the `hpke` crate).
//!
//! Keys stay in the callers' zeroizing buffers; a `ring` key is made per operation (~50 ns), so
//! no key copy outlives the call.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

fn key(key: &[u8; KEY_LEN]) -> Result<LessSafeKey, AeadError> {
    // Fails only on a wrong key length, which the array type excludes.
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| AeadError)
}

/// `aad`-authenticated encryption of `msg`: ciphertext followed by the 16-byte tag, appended to
/// `out`. The caller guarantees `nonce` is never used twice under `k`.
pub fn seal_into(
    k: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    msg: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AeadError> {
    let start = out.len();
    out.extend_from_slice(msg);
    let tag = key(k)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            out.get_mut(start..).ok_or(AeadError)?,
        )
        .map_err(|_| AeadError)?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Opens `ct` (ciphertext and tag); `AeadError` when it was not sealed under `k`, `nonce` and
/// `aad` unchanged.
pub fn open(
    k: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, AeadError> {
    let mut buf = ct.to_vec();
    let len = key(k)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| AeadError)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Authentication failed (or a message beyond ChaCha20's limit); deliberately says nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 §2.8.2 test vector: `ring` computes exactly ChaCha20-Poly1305.
    #[test]
    fn rfc8439_aead_vector() {
        let k: [u8; 32] = std::array::from_fn(|i| 0x80 + i as u8);
        let nonce = [
            0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        ];
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut out = Vec::new();
        seal_into(&k, nonce, &aad, msg, &mut out).unwrap();
        let tag: Vec<u8> = out[msg.len()..].to_vec();
        assert_eq!(
            tag,
            [
                0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a, 0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60,
                0x06, 0x91
            ]
        );
        assert_eq!(&out[..4], &[0xd3, 0x1a, 0x8d, 0x34]);
        assert_eq!(open(&k, nonce, &aad, &out).unwrap(), msg);
        let mut bad = out.clone();
        bad[0] ^= 1;
        assert_eq!(open(&k, nonce, &aad, &bad), Err(AeadError));
        assert_eq!(open(&k, nonce, &aad[1..], &out), Err(AeadError));
        assert_eq!(open(&k, nonce, &aad, &out[..10]), Err(AeadError));
    }
}
