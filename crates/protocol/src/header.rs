//! The fixed 46-byte header of a sealed body. It travels in clear and is the HPKE `aad`, so every
//! byte of it is authenticated. See `docs/protocol.md` for the byte layout.

use crate::error::OpenError;
use crate::keys::{KeyId, PublicKey, KEY_ID_LEN, KEY_LEN};
use crate::CryptoRng;

/// First three bytes of every sealed body: ASCII "PFS" (Printfleet Sealed).
pub const MAGIC: [u8; 3] = *b"PFS";
/// The only format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Length of the clear header.
pub const HEADER_LEN: usize = 46;
/// Length of the HPKE encapsulated key (X25519 ephemeral public key).
pub const ENC_LEN: usize = KEY_LEN;
/// Length of the ChaCha20-Poly1305 tag at the end of the ciphertext.
pub const TAG_LEN: usize = 16;
/// The smallest well-formed body: header, encapsulated key and the tag of an empty plaintext.
pub const MIN_BODY_LEN: usize = HEADER_LEN + ENC_LEN + TAG_LEN;
/// The largest body anybody accepts or produces (64 KiB), header included.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// The largest plaintext that fits in [`MAX_BODY_LEN`].
pub const MAX_PLAINTEXT_LEN: usize = MAX_BODY_LEN - MIN_BODY_LEN;
/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 16;

/// A cipher suite: the HPKE mode and algorithms behind a suite id byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Suite {
    /// HPKE auth mode (0x02), DHKEM(X25519, HKDF-SHA256) (0x0020), HKDF-SHA256 (0x0001),
    /// ChaCha20-Poly1305 (0x0003).
    X25519Sha256ChaCha20Poly1305 = 1,
}

impl Suite {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::X25519Sha256ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// What a sealed body carries. New types get new numbers; numbers are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Server → device: a [`crate::SealedToDevice`] payload.
    SealedToDevice = 0x01,
    /// Printer → server: a [`crate::messages::CheckIn`] (telemetry).
    CheckIn = 0x02,
    /// Server → printer: a [`crate::messages::CheckInAck`].
    CheckInAck = 0x03,
    /// Printer → server: a [`crate::messages::Fetch`].
    Fetch = 0x04,
    /// Server → printer: a [`crate::messages::Work`].
    Work = 0x05,
    /// Printer → server, inside an enrolment request: a [`crate::messages::ReEnrol`] proof.
    ReEnrol = 0x06,
}

impl MessageType {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(Self::SealedToDevice),
            0x02 => Some(Self::CheckIn),
            0x03 => Some(Self::CheckInAck),
            0x04 => Some(Self::Fetch),
            0x05 => Some(Self::Work),
            0x06 => Some(Self::ReEnrol),
            _ => None,
        }
    }
}

/// 16 random bytes naming one sealed body; the replay cache remembers them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; MESSAGE_ID_LEN];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

/// The clear, authenticated header of a sealed body (version and suite are implied: this crate
/// writes version 1, suite 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub message_type: MessageType,
    pub sender_key_id: KeyId,
    pub recipient_key_id: KeyId,
    /// Milliseconds since the Unix epoch, by the sender's clock.
    pub timestamp_ms: u64,
    pub message_id: MessageId,
}

impl Header {
    /// A header for a new message from `sender` to `recipient`, with a random message id.
    pub fn new(
        message_type: MessageType,
        sender: &PublicKey,
        recipient: &PublicKey,
        timestamp_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Self {
        Self {
            message_type,
            sender_key_id: sender.key_id(),
            recipient_key_id: recipient.key_id(),
            timestamp_ms,
            message_id: MessageId::random(rng),
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..3].copy_from_slice(&MAGIC);
        out[3] = VERSION;
        out[4] = Suite::X25519Sha256ChaCha20Poly1305 as u8;
        out[5] = self.message_type as u8;
        out[6..14].copy_from_slice(&self.sender_key_id.0);
        out[14..22].copy_from_slice(&self.recipient_key_id.0);
        out[22..30].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[30..46].copy_from_slice(&self.message_id.0);
        out
    }

    /// Reads the header of a whole sealed body, checking only its structure (steps 1–7 of the
    /// opening procedure in `docs/protocol.md`). Nothing in it is authenticated yet.
    pub fn parse(body: &[u8], max_body_len: usize) -> Result<Self, OpenError> {
        let message_type = check_structure(body, max_body_len, MIN_BODY_LEN, |s| {
            Suite::from_u8(s).is_some()
        })?;
        Ok(Self {
            message_type,
            sender_key_id: KeyId(array(body, 6)?),
            recipient_key_id: KeyId(array(body, 14)?),
            timestamp_ms: u64::from_be_bytes(array(body, 22)?),
            message_id: MessageId(array(body, 30)?),
        })
    }
}

/// Checks 1–7 of the opening procedure, shared by sealed and session bodies: size, magic,
/// version, suite (`suite_ok`), the format's minimum length, message type.
pub(crate) fn check_structure(
    body: &[u8],
    max_body_len: usize,
    min_len: usize,
    suite_ok: impl Fn(u8) -> bool,
) -> Result<MessageType, OpenError> {
    if body.len() > max_body_len.min(MAX_BODY_LEN) {
        return Err(OpenError::Oversized);
    }
    let (Some(magic), Some(&version), Some(&suite)) = (body.get(0..3), body.get(3), body.get(4))
    else {
        return Err(OpenError::Truncated);
    };
    if magic != MAGIC {
        return Err(OpenError::BadMagic);
    }
    if version != VERSION {
        return Err(OpenError::BadVersion);
    }
    if !suite_ok(suite) {
        return Err(OpenError::UnknownSuite);
    }
    if body.len() < min_len {
        return Err(OpenError::Truncated);
    }
    body.get(5)
        .and_then(|b| MessageType::from_u8(*b))
        .ok_or(OpenError::UnknownType)
}

/// `N` bytes at `at`, or `Truncated` (never reached after the length check, but no indexing).
pub(crate) fn array<const N: usize>(body: &[u8], at: usize) -> Result<[u8; N], OpenError> {
    body.get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(OpenError::Truncated)
}

const _: () = assert!(HEADER_LEN == 3 + 1 + 1 + 1 + 2 * KEY_ID_LEN + 8 + MESSAGE_ID_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            message_type: MessageType::SealedToDevice,
            sender_key_id: KeyId([1; 8]),
            recipient_key_id: KeyId([2; 8]),
            timestamp_ms: 0x0102_0304_0506_0708,
            message_id: MessageId([3; 16]),
        }
    }

    fn body() -> Vec<u8> {
        let mut b = header().encode().to_vec();
        b.resize(MIN_BODY_LEN, 0);
        b
    }

    #[test]
    fn encode_parse_round_trip() {
        let b = body();
        assert_eq!(&b[0..6], b"PFS\x01\x01\x01");
        assert_eq!(&b[22..30], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Header::parse(&b, MAX_BODY_LEN), Ok(header()));
    }

    #[test]
    fn structural_errors_in_documented_order() {
        let b = body();
        assert_eq!(
            Header::parse(&b[..4], MAX_BODY_LEN),
            Err(OpenError::Truncated)
        );
        assert_eq!(
            Header::parse(&b[..5], MAX_BODY_LEN),
            Err(OpenError::Truncated)
        );
        assert_eq!(
            Header::parse(&b[..MIN_BODY_LEN - 1], MAX_BODY_LEN),
            Err(OpenError::Truncated)
        );
        let mut x = b.clone();
        x[0] = b'X';
        assert_eq!(
            Header::parse(&x[..5], MAX_BODY_LEN),
            Err(OpenError::BadMagic)
        );
        let mut x = b.clone();
        x[3] = 2;
        assert_eq!(
            Header::parse(&x[..5], MAX_BODY_LEN),
            Err(OpenError::BadVersion)
        );
        let mut x = b.clone();
        x[4] = 9;
        assert_eq!(
            Header::parse(&x, MAX_BODY_LEN),
            Err(OpenError::UnknownSuite)
        );
        let mut x = b.clone();
        x[5] = 0;
        assert_eq!(Header::parse(&x, MAX_BODY_LEN), Err(OpenError::UnknownType));
        assert_eq!(
            Header::parse(&b, MIN_BODY_LEN - 1),
            Err(OpenError::Oversized)
        );
        let big = vec![0u8; MAX_BODY_LEN + 1];
        assert_eq!(Header::parse(&big, usize::MAX), Err(OpenError::Oversized));
    }
}
