//! X25519 key pairs for sealed bodies (the KEM of suite 1) and their 8-byte key ids.
//!
//! Keys are thin wrappers over the `hpke` crate's DHKEM(X25519, HKDF-SHA256) types, so the rest
//! of the code base never names `hpke` generics. Private keys print `[redacted]` in `Debug` and
//! are zeroized on drop by `hpke`.

use std::fmt;

use hpke::{Deserializable, Kem as _, Serializable};
use sha2::{Digest, Sha256};

use crate::CryptoRng;

/// The KEM of suite 1: DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1, KEM id 0x0020.
pub(crate) type Kem = hpke::kem::X25519HkdfSha256;

/// Length of a serialized public key, private key and encapsulated key.
pub const KEY_LEN: usize = 32;
/// Length of a key id.
pub const KEY_ID_LEN: usize = 8;
/// Prefix hashed in front of a public key to make its key id.
pub const KEY_ID_LABEL: &[u8] = b"printfleet/key-id/v1";

/// The first 8 bytes of `SHA-256("printfleet/key-id/v1" || public key)`: names a public key in a
/// header so the receiver knows which key to use, without sending the key itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// An X25519 public key (32 bytes, RFC 7748 u-coordinate).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(pub(crate) <Kem as hpke::Kem>::PublicKey);

impl PublicKey {
    /// Any 32 bytes are accepted here (X25519 has no invalid encodings); a low-order key makes
    /// sealing and opening fail later.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
            .ok()
            .map(Self)
    }

    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        self.0.write_exact(&mut out);
        out
    }

    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(self.to_bytes())
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?})", self.key_id())
    }
}

/// An X25519 private key. Serialized clamped (RFC 9180 §7.1.2), as `hpke` ≥ 0.15 does.
#[derive(Clone)]
pub struct PrivateKey(pub(crate) <Kem as hpke::Kem>::PrivateKey);

impl PrivateKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .ok()
            .map(Self)
    }

    /// The secret bytes, clamped. Store them only encrypted (or on the device's secure storage).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; KEY_LEN]> {
        let mut out = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        self.0.write_exact(out.as_mut());
        out
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(Kem::sk_to_pk(&self.0))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

/// A private key with its public key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub private: PrivateKey,
    pub public: PublicKey,
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let (sk, pk) = Kem::gen_keypair_with_rng(rng);
        Self {
            private: PrivateKey(sk),
            public: PublicKey(pk),
        }
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` for DHKEM(X25519, HKDF-SHA256). `ikm` should hold 32 bytes
    /// of entropy; used for test vectors and for devices that derive their key from a seed.
    pub fn derive(ikm: &[u8]) -> Self {
        let (sk, pk) = Kem::derive_keypair(ikm);
        Self {
            private: PrivateKey(sk),
            public: PublicKey(pk),
        }
    }

    pub fn from_private(private: PrivateKey) -> Self {
        let public = private.public_key();
        Self { private, public }
    }

    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_round_trip_and_debug_is_redacted() {
        let kp = KeyPair::derive(&[7u8; 32]);
        let sk = PrivateKey::from_bytes(kp.private.to_bytes().as_ref());
        assert!(sk.is_some_and(|sk| sk.public_key() == kp.public));
        let pk = PublicKey::from_bytes(&kp.public.to_bytes());
        assert_eq!(pk, Some(kp.public.clone()));
        assert_eq!(format!("{:?}", kp.private), "PrivateKey([redacted])");
        assert!(PublicKey::from_bytes(&[0u8; 31]).is_none());
        assert!(PrivateKey::from_bytes(&[0u8; 33]).is_none());
    }

    #[test]
    fn key_id_is_a_truncated_labelled_hash() {
        let kp = KeyPair::derive(&[1u8; 32]);
        let mut h = Sha256::new();
        h.update(b"printfleet/key-id/v1");
        h.update(kp.public.to_bytes());
        let d = h.finalize();
        assert_eq!(kp.key_id().0[..], d[..8]);
        assert_ne!(kp.key_id(), KeyPair::derive(&[2u8; 32]).key_id());
    }
}
