//! Heartbeat keys, all HKDF-SHA256 (RFC 5869):
//!
//! - heartbeat key = HKDF(salt = "printfleet/heartbeat/v1", ikm = enrolment secret,
//!   info = "printfleet/heartbeat/key" || printer id (16 bytes)), 32 bytes. Stored by both ends.
//! - up key (printer → server) = HKDF(salt = empty, ikm = heartbeat key,
//!   info = "printfleet/heartbeat/up"), 32 bytes.
//! - down key (server → printer) = the same with info "printfleet/heartbeat/down".
//! - key id = the first 8 bytes of HKDF(salt = empty, ikm = heartbeat key,
//!   info = "printfleet/heartbeat/key-id"); it travels in clear and names the key.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Salt of the heartbeat key derivation.
pub const HEARTBEAT_SALT: &[u8] = b"printfleet/heartbeat/v1";
/// Info prefix of the heartbeat key derivation (the printer id follows).
pub const HEARTBEAT_KEY_INFO: &[u8] = b"printfleet/heartbeat/key";
pub const UP_KEY_INFO: &[u8] = b"printfleet/heartbeat/up";
pub const DOWN_KEY_INFO: &[u8] = b"printfleet/heartbeat/down";
pub const KEY_ID_INFO: &[u8] = b"printfleet/heartbeat/key-id";

/// The 32-byte secret a printer shares with the server for heartbeats.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct HeartbeatKey([u8; 32]);

impl fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeartbeatKey([redacted])")
    }
}

/// Derives the heartbeat key from a secret both ends hold after enrolment (intended: an HPKE
/// exporter secret of the enrolment exchange, at least 32 bytes) and the printer's id (the 16
/// bytes of its UUID), so two printers never share a key even from the same secret.
pub fn derive_heartbeat_key(enrolment_secret: &[u8], printer_id: &[u8; 16]) -> HeartbeatKey {
    let hk = Hkdf::<Sha256>::new(Some(HEARTBEAT_SALT), enrolment_secret);
    let mut out = [0u8; 32];
    // 32 bytes is below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    let _ = hk.expand_multi_info(&[HEARTBEAT_KEY_INFO, printer_id], &mut out);
    HeartbeatKey(out)
}

impl HeartbeatKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, to store (encrypted) next to the printer.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0)
    }

    fn expand(&self, info: &[u8], out: &mut [u8]) {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        // At most 32 bytes: cannot fail.
        let _ = hk.expand(info, out);
    }

    /// The key id and the two direction keys, ready to use.
    pub fn keys(&self) -> HeartbeatKeys {
        let mut key_id = [0u8; 8];
        self.expand(KEY_ID_INFO, &mut key_id);
        let mut up = zeroize::Zeroizing::new([0u8; 32]);
        self.expand(UP_KEY_INFO, up.as_mut());
        let mut down = zeroize::Zeroizing::new([0u8; 32]);
        self.expand(DOWN_KEY_INFO, down.as_mut());
        HeartbeatKeys {
            key_id: HeartbeatKeyId(key_id),
            up,
            down,
        }
    }

    /// The raw direction keys (for test vectors and firmware cross-checks).
    pub fn direction_key_bytes(
        &self,
    ) -> (zeroize::Zeroizing<[u8; 32]>, zeroize::Zeroizing<[u8; 32]>) {
        let mut up = zeroize::Zeroizing::new([0u8; 32]);
        self.expand(UP_KEY_INFO, up.as_mut());
        let mut down = zeroize::Zeroizing::new([0u8; 32]);
        self.expand(DOWN_KEY_INFO, down.as_mut());
        (up, down)
    }
}

/// Names a heartbeat key in clear in every datagram; the server finds the printer by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct HeartbeatKeyId(pub [u8; 8]);

/// A heartbeat key's id and direction ciphers. `up` seals requests, `down` seals answers, so a
/// datagram of one direction never verifies in the other.
#[derive(Clone)]
pub struct HeartbeatKeys {
    pub(crate) key_id: HeartbeatKeyId,
    pub(crate) up: zeroize::Zeroizing<[u8; crate::aead::KEY_LEN]>,
    pub(crate) down: zeroize::Zeroizing<[u8; crate::aead::KEY_LEN]>,
}

impl HeartbeatKeys {
    pub fn key_id(&self) -> HeartbeatKeyId {
        self.key_id
    }
}

impl fmt::Debug for HeartbeatKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeartbeatKeys({:?}, [redacted])", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_separates_printers_and_directions() {
        let a = derive_heartbeat_key(&[5u8; 32], &[1u8; 16]);
        let b = derive_heartbeat_key(&[5u8; 32], &[2u8; 16]);
        assert_ne!(a, b);
        let (up, down) = a.direction_key_bytes();
        assert_ne!(*up, *down);
        assert_ne!(*up, *a.to_bytes());
        assert_ne!(a.keys().key_id(), b.keys().key_id());
        assert_eq!(format!("{a:?}"), "HeartbeatKey([redacted])");
    }
}
