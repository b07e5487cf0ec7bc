//! Sealing and opening bodies with HPKE (RFC 9180) in auth mode, suite 1:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
//!
//! Wire format: `header (46) || enc (32) || ciphertext (plaintext + 16-byte tag)`. The header is
//! the HPKE `aad`, `info` is the fixed [`INFO`] label, so changing any byte of the body makes
//! opening fail. All cryptography is the `hpke` crate's; this module only frames it.

use hpke::{aead::ChaCha20Poly1305, kdf::HkdfSha256, Deserializable, OpModeR, OpModeS};

use crate::error::{OpenError, SealError};
use crate::header::{Header, ENC_LEN, HEADER_LEN, MAX_BODY_LEN, MAX_PLAINTEXT_LEN, MIN_BODY_LEN};
use crate::keys::{Kem, PrivateKey, PublicKey};
use crate::replay_cache::ReplayGuard;
use crate::session::SessionKeys;
use crate::CryptoRng;

/// The HPKE `info` of every sealed body of format version 1.
pub const INFO: &[u8] = b"printfleet sealed body v1";
/// Default freshness window: a body is accepted while its timestamp is within ±5 minutes of the
/// receiver's clock.
pub const DEFAULT_MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// What the receiver accepts: its clock, the freshness window and the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenLimits {
    /// The receiver's current time, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Accepted distance between the sender's timestamp and `now_ms`, either way.
    pub max_skew_ms: u64,
    /// Largest accepted body; never above [`MAX_BODY_LEN`].
    pub max_body_len: usize,
}

impl OpenLimits {
    /// The defaults: ±5 minutes, 64 KiB.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
            max_body_len: MAX_BODY_LEN,
        }
    }

    pub(crate) fn is_fresh(&self, timestamp_ms: u64) -> bool {
        timestamp_ms.saturating_add(self.max_skew_ms) >= self.now_ms
            && timestamp_ms <= self.now_ms.saturating_add(self.max_skew_ms)
    }
}

/// A sealed body, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBody {
    header: Header,
    bytes: Vec<u8>,
}

impl SealedBody {
    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Seals `plaintext` from the sender (whose key pair authenticates it) to the recipient.
/// `header` must name both keys (see [`Header::new`]).
pub fn seal(
    recipient_pk: &PublicKey,
    sender_sk: &PrivateKey,
    sender_pk: &PublicKey,
    header: &Header,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<SealedBody, SealError> {
    seal_ctx(recipient_pk, sender_sk, sender_pk, header, plaintext, rng).map(|(body, _)| body)
}

/// [`seal`], also deriving the session this body opens (`docs/protocol.md` §2.8) from its HPKE
/// context: the same bytes on the wire, plus the session's secrets for the sender.
pub fn seal_opening(
    recipient_pk: &PublicKey,
    sender_sk: &PrivateKey,
    sender_pk: &PublicKey,
    header: &Header,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(SealedBody, SessionKeys), SealError> {
    let (body, ctx) = seal_ctx(recipient_pk, sender_sk, sender_pk, header, plaintext, rng)?;
    let keys = SessionKeys::export(|label, out| ctx.export(label, out)).ok_or(SealError::Hpke)?;
    Ok((body, keys))
}

type SenderCtx = hpke::aead::AeadCtxS<ChaCha20Poly1305, HkdfSha256, Kem>;
type ReceiverCtx = hpke::aead::AeadCtxR<ChaCha20Poly1305, HkdfSha256, Kem>;

fn seal_ctx(
    recipient_pk: &PublicKey,
    sender_sk: &PrivateKey,
    sender_pk: &PublicKey,
    header: &Header,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(SealedBody, SenderCtx), SealError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLarge);
    }
    if header.sender_key_id != sender_pk.key_id() {
        return Err(SealError::SenderKeyIdMismatch);
    }
    if header.recipient_key_id != recipient_pk.key_id() {
        return Err(SealError::RecipientKeyIdMismatch);
    }
    if sender_sk.public_key() != *sender_pk {
        return Err(SealError::SenderKeyPairMismatch);
    }
    let aad = header.encode();
    let mode = OpModeS::<Kem>::Auth((sender_sk.0.clone(), sender_pk.0.clone()));
    // The single-shot API is exactly this setup followed by one seal (RFC 9180 §6.1); the
    // context is kept for the exporter.
    let (enc, mut ctx) = hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &mode,
        &recipient_pk.0,
        INFO,
        rng,
    )
    .map_err(|_| SealError::Hpke)?;
    let ciphertext = ctx.seal(plaintext, &aad).map_err(|_| SealError::Hpke)?;
    let mut bytes = Vec::with_capacity(MIN_BODY_LEN + plaintext.len());
    bytes.extend_from_slice(&aad);
    bytes.extend_from_slice(&hpke::Serializable::to_bytes(&enc));
    bytes.extend_from_slice(&ciphertext);
    Ok((
        SealedBody {
            header: *header,
            bytes,
        },
        ctx,
    ))
}

/// Reads the clear header without opening anything, e.g. to find the sender's public key by its
/// key id before calling [`open`]. Nothing returned is authenticated.
pub fn peek_header(sealed: &[u8], limits: &OpenLimits) -> Result<Header, OpenError> {
    Header::parse(sealed, limits.max_body_len)
}

/// Opens a body sealed to `recipient_sk` by the holder of `sender_pk`, following the checks of
/// `docs/protocol.md` in order. The message id is recorded in `replay` only once the body has
/// been authenticated, so forged bodies cannot fill the cache.
pub fn open(
    recipient_sk: &PrivateKey,
    sender_pk: &PublicKey,
    sealed: &[u8],
    limits: &OpenLimits,
    replay: &mut impl ReplayGuard,
) -> Result<(Header, Vec<u8>), OpenError> {
    open_ctx(recipient_sk, sender_pk, sealed, limits, replay).map(|(h, p, _)| (h, p))
}

/// [`open`], also deriving the session this body opens (`docs/protocol.md` §2.8).
pub fn open_opening(
    recipient_sk: &PrivateKey,
    sender_pk: &PublicKey,
    sealed: &[u8],
    limits: &OpenLimits,
    replay: &mut impl ReplayGuard,
) -> Result<(Header, Vec<u8>, SessionKeys), OpenError> {
    let (header, plaintext, ctx) = open_ctx(recipient_sk, sender_pk, sealed, limits, replay)?;
    let keys =
        SessionKeys::export(|label, out| ctx.export(label, out)).ok_or(OpenError::Tampered)?;
    Ok((header, plaintext, keys))
}

fn open_ctx(
    recipient_sk: &PrivateKey,
    sender_pk: &PublicKey,
    sealed: &[u8],
    limits: &OpenLimits,
    replay: &mut impl ReplayGuard,
) -> Result<(Header, Vec<u8>, ReceiverCtx), OpenError> {
    let header = Header::parse(sealed, limits.max_body_len)?;
    if header.recipient_key_id != recipient_sk.public_key().key_id() {
        return Err(OpenError::WrongRecipient);
    }
    if header.sender_key_id != sender_pk.key_id() {
        return Err(OpenError::WrongSender);
    }
    if !limits.is_fresh(header.timestamp_ms) {
        return Err(OpenError::Stale);
    }
    let (Some(aad), Some(enc), Some(ciphertext)) = (
        sealed.get(..HEADER_LEN),
        sealed.get(HEADER_LEN..HEADER_LEN + ENC_LEN),
        sealed.get(HEADER_LEN + ENC_LEN..),
    ) else {
        return Err(OpenError::Truncated);
    };
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError::Tampered)?;
    let mode = OpModeR::<Kem>::Auth(sender_pk.0.clone());
    let mut ctx = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &mode,
        &recipient_sk.0,
        &enc,
        INFO,
    )
    .map_err(|_| OpenError::Tampered)?;
    let plaintext = ctx.open(ciphertext, aad).map_err(|_| OpenError::Tampered)?;
    let expires_at_ms = header.timestamp_ms.saturating_add(limits.max_skew_ms);
    if !replay.check_and_record(&header.message_id, expires_at_ms, limits.now_ms) {
        return Err(OpenError::Replayed);
    }
    Ok((header, plaintext, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::MessageType;
    use crate::keys::KeyPair;
    use crate::replay_cache::ReplayCache;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const NOW: u64 = 1_767_225_600_000;

    struct Fixture {
        server: KeyPair,
        printer: KeyPair,
        rng: ChaCha20Rng,
    }

    fn fixture() -> Fixture {
        Fixture {
            server: KeyPair::derive(&[1u8; 32]),
            printer: KeyPair::derive(&[2u8; 32]),
            rng: ChaCha20Rng::seed_from_u64(9),
        }
    }

    fn sealed(f: &mut Fixture, ts: u64, plaintext: &[u8]) -> SealedBody {
        let h = Header::new(
            MessageType::SealedToDevice,
            &f.server.public,
            &f.printer.public,
            ts,
            &mut f.rng,
        );
        let r = seal(
            &f.printer.public,
            &f.server.private,
            &f.server.public,
            &h,
            plaintext,
            &mut f.rng,
        );
        assert!(r.is_ok(), "{r:?}");
        r.unwrap()
    }

    fn open_at(
        f: &Fixture,
        body: &[u8],
        now: u64,
        cache: &mut ReplayCache,
    ) -> Result<Vec<u8>, OpenError> {
        open(
            &f.printer.private,
            &f.server.public,
            body,
            &OpenLimits::new(now),
            cache,
        )
        .map(|(_, p)| p)
    }

    #[test]
    fn round_trip_then_replay_refused() {
        let mut f = fixture();
        let body = sealed(&mut f, NOW, b"hello printer");
        assert_eq!(body.as_bytes().len(), MIN_BODY_LEN + 13);
        let mut cache = ReplayCache::default();
        assert_eq!(
            open_at(&f, body.as_bytes(), NOW, &mut cache),
            Ok(b"hello printer".to_vec())
        );
        assert_eq!(
            open_at(&f, body.as_bytes(), NOW, &mut cache),
            Err(OpenError::Replayed)
        );
    }

    #[test]
    fn freshness_window_is_inclusive_both_ways() {
        let mut f = fixture();
        let body = sealed(&mut f, NOW, b"");
        let skew = DEFAULT_MAX_SKEW_MS;
        for (now, ok) in [
            (NOW + skew, true),
            (NOW - skew, true),
            (NOW + skew + 1, false),
            (NOW - skew - 1, false),
        ] {
            let r = open_at(&f, body.as_bytes(), now, &mut ReplayCache::default());
            assert_eq!(r.is_ok(), ok, "now={now}");
            if !ok {
                assert_eq!(r, Err(OpenError::Stale));
            }
        }
    }

    #[test]
    fn wrong_keys_are_named() {
        let mut f = fixture();
        let body = sealed(&mut f, NOW, b"x");
        let other = KeyPair::derive(&[3u8; 32]);
        let limits = OpenLimits::new(NOW);
        let mut cache = ReplayCache::default();
        let r = open(
            &other.private,
            &f.server.public,
            body.as_bytes(),
            &limits,
            &mut cache,
        );
        assert_eq!(r, Err(OpenError::WrongRecipient));
        let r = open(
            &f.printer.private,
            &other.public,
            body.as_bytes(),
            &limits,
            &mut cache,
        );
        assert_eq!(r, Err(OpenError::WrongSender));
        assert!(cache.is_empty());
    }

    #[test]
    fn header_and_ciphertext_changes_are_tampered() {
        let mut f = fixture();
        let body = sealed(&mut f, NOW, b"payload").into_bytes();
        // Message id (30..46), enc (46..78) and ciphertext bytes carry no structural meaning.
        for i in [30, 45, 46, 77, 78, body.len() - 1] {
            let mut b = body.clone();
            b[i] ^= 0x01;
            assert_eq!(
                open_at(&f, &b, NOW, &mut ReplayCache::default()),
                Err(OpenError::Tampered),
                "byte {i}"
            );
        }
        // A body claiming another sender (itself, by key id) but sealed by the server.
        let mut b = body.clone();
        b[6..14].copy_from_slice(&f.printer.key_id().0);
        let r = open(
            &f.printer.private,
            &f.printer.public,
            &b,
            &OpenLimits::new(NOW),
            &mut ReplayCache::default(),
        );
        assert_eq!(r, Err(OpenError::Tampered));
    }

    #[test]
    fn forged_bodies_do_not_enter_the_replay_cache() {
        let mut f = fixture();
        let mut body = sealed(&mut f, NOW, b"p").into_bytes();
        let last = body.len() - 1;
        body[last] ^= 0x80;
        let mut cache = ReplayCache::default();
        assert_eq!(
            open_at(&f, &body, NOW, &mut cache),
            Err(OpenError::Tampered)
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn seal_checks_its_inputs() {
        let mut f = fixture();
        let h = Header::new(
            MessageType::SealedToDevice,
            &f.server.public,
            &f.printer.public,
            NOW,
            &mut f.rng,
        );
        let s = &f.server;
        let p = &f.printer;
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(
            seal(&s.public, &s.private, &s.public, &h, b"", &mut rng),
            Err(SealError::RecipientKeyIdMismatch)
        );
        assert_eq!(
            seal(&p.public, &p.private, &p.public, &h, b"", &mut rng),
            Err(SealError::SenderKeyIdMismatch)
        );
        assert_eq!(
            seal(&p.public, &p.private, &s.public, &h, b"", &mut rng),
            Err(SealError::SenderKeyPairMismatch)
        );
        let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
        assert_eq!(
            seal(&p.public, &s.private, &s.public, &h, &big, &mut rng),
            Err(SealError::TooLarge)
        );
        let max = vec![0u8; MAX_PLAINTEXT_LEN];
        let body = seal(&p.public, &s.private, &s.public, &h, &max, &mut rng);
        assert_eq!(body.map(|b| b.as_bytes().len()), Ok(MAX_BODY_LEN));
    }

    #[test]
    fn an_opening_gives_both_ends_the_same_session() {
        use crate::session::{open_in_session, seal_in_session, Direction, SessionHeader};
        let mut f = fixture();
        let h = Header::new(
            MessageType::CheckIn,
            &f.printer.public,
            &f.server.public,
            NOW,
            &mut f.rng,
        );
        let (body, printer_side) = seal_opening(
            &f.server.public,
            &f.printer.private,
            &f.printer.public,
            &h,
            b"first",
            &mut f.rng,
        )
        .unwrap();
        // Same bytes as a plain seal would make: an opening is an ordinary sealed body.
        let plain = open(
            &f.server.private,
            &f.printer.public,
            body.as_bytes(),
            &OpenLimits::new(NOW),
            &mut ReplayCache::default(),
        );
        assert_eq!(plain.map(|(_, p)| p), Ok(b"first".to_vec()));
        let (_, pt, server_side) = open_opening(
            &f.server.private,
            &f.printer.public,
            body.as_bytes(),
            &OpenLimits::new(NOW),
            &mut ReplayCache::default(),
        )
        .unwrap();
        assert_eq!(pt, b"first");
        assert_eq!(printer_side.id, server_side.id);
        let sh = SessionHeader {
            message_type: MessageType::CheckIn,
            session_id: printer_side.id,
            seq: 1,
            timestamp_ms: NOW,
        };
        let up = seal_in_session(&printer_side, Direction::Up, &sh, b"second").unwrap();
        let opened = open_in_session(&server_side, Direction::Up, &up, &OpenLimits::new(NOW));
        assert_eq!(opened.map(|(_, p)| p), Ok(b"second".to_vec()));
        // Another opening gives another session.
        let h2 = Header::new(
            MessageType::CheckIn,
            &f.printer.public,
            &f.server.public,
            NOW,
            &mut f.rng,
        );
        let (_, again) = seal_opening(
            &f.server.public,
            &f.printer.private,
            &f.printer.public,
            &h2,
            b"first",
            &mut f.rng,
        )
        .unwrap();
        assert_ne!(again.id, printer_side.id);
    }

    #[test]
    fn low_order_encapsulated_key_is_tampered_not_a_panic() {
        let mut f = fixture();
        let mut body = sealed(&mut f, NOW, b"p").into_bytes();
        body[HEADER_LEN..HEADER_LEN + ENC_LEN].fill(0);
        assert_eq!(
            open_at(&f, &body, NOW, &mut ReplayCache::default()),
            Err(OpenError::Tampered)
        );
    }
}
