//! The audit log's MAC key, kept outside the database, and the chained MAC of each entry.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuditKey([u8; 32]);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

impl AuditKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// MAC over the previous entry's MAC and this entry's fields, each length-prefixed so no two
    /// different entries encode the same bytes.
    pub fn mac(&self, prev_mac: &[u8], fields: &[&[u8]]) -> [u8; 32] {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        m.update(b"printfleet-audit-v1");
        for part in std::iter::once(prev_mac).chain(fields.iter().copied()) {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part);
        }
        m.finalize().into_bytes().into()
    }

    pub fn verify(&self, prev_mac: &[u8], fields: &[&[u8]], expected: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let got = self.mac(prev_mac, fields);
        expected.len() == 32 && bool::from(got.ct_eq(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_and_unambiguous() {
        let k = AuditKey::from_bytes([9; 32]);
        let a = k.mac(&[], &[b"ab", b"c"]);
        let b = k.mac(&[], &[b"a", b"bc"]);
        assert_ne!(a, b);
        assert!(k.verify(&[], &[b"ab", b"c"], &a));
        assert!(!k.verify(&[1], &[b"ab", b"c"], &a));
        assert!(!AuditKey::from_bytes([8; 32]).verify(&[], &[b"ab", b"c"], &a));
    }
}
