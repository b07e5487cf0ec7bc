//! Sessions (`docs/protocol.md` §2.8): after one sealed body (suite `0x01`, HPKE auth mode) both
//! ends export the same session secrets from that body's HPKE context, and the following
//! exchanges travel as **session bodies** (suite `0x02`): ChaCha20-Poly1305 under the exported
//! keys, a nonce made from a per-direction base and the body's sequence number, the clear
//! header as associated data. No public-key operation per message.
//!
//! Everything cryptographic is the `hpke` crate's exporter and ChaCha20-Poly1305 from `ring`
//! ([`crate::aead`]); this
//! module only derives labels, frames bodies and keeps the sequence window.

use crate::aead;
use zeroize::Zeroizing;

use crate::error::{OpenError, SealError};
use crate::header::{
    array, check_structure, MessageId, MessageType, MAGIC, MAX_BODY_LEN, TAG_LEN, VERSION,
};
use crate::sealed::OpenLimits;

/// The suite byte of a session body.
pub const SESSION_SUITE: u8 = 0x02;
/// Length of a session id.
pub const SESSION_ID_LEN: usize = 16;
/// Length of a session body's clear header.
pub const SESSION_HEADER_LEN: usize = 3 + 1 + 1 + 1 + SESSION_ID_LEN + 8 + 8;
/// The smallest session body: header and the tag of an empty plaintext.
pub const MIN_SESSION_BODY_LEN: usize = SESSION_HEADER_LEN + TAG_LEN;
/// The largest plaintext of a session body (the body limit is that of sealed bodies).
pub const MAX_SESSION_PLAINTEXT_LEN: usize = MAX_BODY_LEN - MIN_SESSION_BODY_LEN;
/// A session is used for at most this many bodies from the printer (then a new one is opened),
/// so no key protects an unbounded amount of data.
pub const MAX_SESSION_SEQ: u64 = 1 << 20;
/// A session is used for at most this long after its opening body (milliseconds).
pub const MAX_SESSION_AGE_MS: u64 = 60 * 60 * 1000;
/// Sequence numbers remembered below the highest accepted (a printer may have a few requests
/// in flight; anything older is refused as `replayed`).
pub const SEQ_WINDOW: u64 = 64;

const LABEL_ID: &[u8] = b"printfleet session v1 id";
const LABEL_UP_KEY: &[u8] = b"printfleet session v1 up key";
const LABEL_UP_NONCE: &[u8] = b"printfleet session v1 up nonce";
const LABEL_DOWN_KEY: &[u8] = b"printfleet session v1 down key";
const LABEL_DOWN_NONCE: &[u8] = b"printfleet session v1 down nonce";

/// Names a session in the clear header of its bodies (exported, not secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SessionId(pub [u8; SESSION_ID_LEN]);

/// Which way a session body travels: each direction has its own key and nonce base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Printer → server.
    Up,
    /// Server → printer: the answer to the up body with the same sequence number.
    Down,
}

/// The secrets of one session. `Debug` shows only the id.
pub struct SessionKeys {
    pub id: SessionId,
    up_key: Zeroizing<[u8; 32]>,
    up_nonce: [u8; 12],
    down_key: Zeroizing<[u8; 32]>,
    down_nonce: [u8; 12],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives the session from an HPKE context's exporter (`export(label, out)`), which the
    /// sender and the receiver of the opening body share.
    pub(crate) fn export<E>(
        mut export: impl FnMut(&[u8], &mut [u8]) -> Result<(), E>,
    ) -> Option<Self> {
        let mut id = [0u8; SESSION_ID_LEN];
        let mut up_key = Zeroizing::new([0u8; 32]);
        let mut up_nonce = [0u8; 12];
        let mut down_key = Zeroizing::new([0u8; 32]);
        let mut down_nonce = [0u8; 12];
        export(LABEL_ID, &mut id).ok()?;
        export(LABEL_UP_KEY, up_key.as_mut()).ok()?;
        export(LABEL_UP_NONCE, &mut up_nonce).ok()?;
        export(LABEL_DOWN_KEY, down_key.as_mut()).ok()?;
        export(LABEL_DOWN_NONCE, &mut down_nonce).ok()?;
        Some(Self {
            id: SessionId(id),
            up_key,
            up_nonce,
            down_key,
            down_nonce,
        })
    }

    fn cipher(&self, dir: Direction, seq: u64) -> (&[u8; aead::KEY_LEN], [u8; aead::NONCE_LEN]) {
        let (key, base) = match dir {
            Direction::Up => (&self.up_key, &self.up_nonce),
            Direction::Down => (&self.down_key, &self.down_nonce),
        };
        let mut nonce = *base;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        (key, nonce)
    }

    /// Hex of the exported secrets, for test vectors only.
    #[doc(hidden)]
    pub fn secrets_hex_for_vectors(&self) -> [String; 4] {
        [
            hex_of(self.up_key.as_ref()),
            hex_of(&self.up_nonce),
            hex_of(self.down_key.as_ref()),
            hex_of(&self.down_nonce),
        ]
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The clear, authenticated header of a session body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionHeader {
    pub message_type: MessageType,
    pub session_id: SessionId,
    /// Up: the printer's sequence number (1, 2, …). Down: that of the body it answers.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, by the sender's clock.
    pub timestamp_ms: u64,
}

impl SessionHeader {
    pub fn encode(&self) -> [u8; SESSION_HEADER_LEN] {
        let mut out = [0u8; SESSION_HEADER_LEN];
        out[0..3].copy_from_slice(&MAGIC);
        out[3] = VERSION;
        out[4] = SESSION_SUITE;
        out[5] = self.message_type as u8;
        out[6..22].copy_from_slice(&self.session_id.0);
        out[22..30].copy_from_slice(&self.seq.to_be_bytes());
        out[30..38].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out
    }

    /// The message id a session body stands for where the protocol names one (`reply_to`):
    /// the first 8 bytes of the session id, then the sequence number.
    pub fn message_id(&self) -> MessageId {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.session_id.0[..8]);
        id[8..].copy_from_slice(&self.seq.to_be_bytes());
        MessageId(id)
    }

    /// Reads the header of a whole session body, checking only its structure (§2.8 checks
    /// 1–7). Nothing in it is authenticated yet.
    pub fn parse(body: &[u8], max_body_len: usize) -> Result<Self, OpenError> {
        let message_type = check_structure(body, max_body_len, MIN_SESSION_BODY_LEN, |s| {
            s == SESSION_SUITE
        })?;
        Ok(Self {
            message_type,
            session_id: SessionId(array(body, 6)?),
            seq: u64::from_be_bytes(array(body, 22)?),
            timestamp_ms: u64::from_be_bytes(array(body, 30)?),
        })
    }
}

/// Whether `body` claims to be a session body (magic, version 1, suite `0x02`): the receiver
/// then reads it with [`SessionHeader::parse`] and [`open_in_session`], else as a sealed body.
pub fn is_session_body(body: &[u8]) -> bool {
    body.get(0..3) == Some(&MAGIC[..])
        && body.get(3) == Some(&VERSION)
        && body.get(4) == Some(&SESSION_SUITE)
}

/// Seals `plaintext` in the session, in direction `dir`. The header must name the session;
/// its `seq` must never repeat in that direction (up: the printer's counter; down: the seq of
/// the up body being answered, answered once).
pub fn seal_in_session(
    keys: &SessionKeys,
    dir: Direction,
    header: &SessionHeader,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_SESSION_PLAINTEXT_LEN {
        return Err(SealError::TooLarge);
    }
    if header.session_id != keys.id {
        return Err(SealError::SessionMismatch);
    }
    let aad = header.encode();
    let (cipher, nonce) = keys.cipher(dir, header.seq);
    let mut out = Vec::with_capacity(SESSION_HEADER_LEN + plaintext.len() + aead::TAG_LEN);
    out.extend_from_slice(&aad);
    aead::seal_into(cipher, nonce, &aad, plaintext, &mut out).map_err(|_| SealError::Hpke)?;
    Ok(out)
}

/// Opens a session body travelling in direction `dir` (§2.8 checks 8–10: session, freshness,
/// authentication). Replay (check 11) is the receiver's [`SeqWindow`], updated only after
/// this succeeded.
pub fn open_in_session(
    keys: &SessionKeys,
    dir: Direction,
    body: &[u8],
    limits: &OpenLimits,
) -> Result<(SessionHeader, Vec<u8>), OpenError> {
    let header = SessionHeader::parse(body, limits.max_body_len)?;
    if header.session_id != keys.id {
        return Err(OpenError::UnknownSession);
    }
    if !limits.is_fresh(header.timestamp_ms) {
        return Err(OpenError::Stale);
    }
    let (Some(aad), Some(ct)) = (
        body.get(..SESSION_HEADER_LEN),
        body.get(SESSION_HEADER_LEN..),
    ) else {
        return Err(OpenError::Truncated);
    };
    let (cipher, nonce) = keys.cipher(dir, header.seq);
    let plaintext = aead::open(cipher, nonce, aad, ct).map_err(|_| OpenError::Tampered)?;
    Ok((header, plaintext))
}

/// A printer stops using a session this long after opening it (the server's limit,
/// [`MAX_SESSION_AGE_MS`], less a margin for clock skew).
pub const PRINTER_SESSION_USE_MS: u64 = MAX_SESSION_AGE_MS - 5 * 60 * 1000;

/// The printer's side of a session it opened: the keys and the next seq to use.
#[derive(Debug)]
pub struct PrinterSession {
    pub keys: std::sync::Arc<SessionKeys>,
    next_seq: u64,
    opened_ms: u64,
}

impl PrinterSession {
    pub fn new(keys: SessionKeys, opened_ms: u64) -> Self {
        Self {
            keys: std::sync::Arc::new(keys),
            next_seq: 1,
            opened_ms,
        }
    }

    /// The seq for the next body, or `None` when the session is used up (too many bodies, or
    /// too old): the printer then opens a new one.
    pub fn next_seq(&mut self, now_ms: u64) -> Option<u64> {
        let usable = self.next_seq <= MAX_SESSION_SEQ
            && now_ms < self.opened_ms.saturating_add(PRINTER_SESSION_USE_MS);
        if !usable {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(seq)
    }

    /// The keys and seq to seal the next body with ([`Self::next_seq`]).
    pub fn next_body(&mut self, now_ms: u64) -> Option<(std::sync::Arc<SessionKeys>, u64)> {
        let seq = self.next_seq(now_ms)?;
        Some((self.keys.clone(), seq))
    }
}

/// The receiver's record of the up sequence numbers accepted in one session: the highest, and
/// one bit for each of the [`SEQ_WINDOW`] below it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqWindow {
    highest: u64,
    bits: u64,
}

impl SeqWindow {
    /// Accepts `seq` once: false for 0, for a seq beyond [`MAX_SESSION_SEQ`], for one accepted
    /// before and for one too far below the highest.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 || seq > MAX_SESSION_SEQ {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.bits = if shift >= SEQ_WINDOW {
                0
            } else {
                self.bits << shift
            } | 1;
            self.highest = seq;
            return true;
        }
        let back = self.highest - seq;
        if back >= SEQ_WINDOW {
            return false;
        }
        let bit = 1u64 << back;
        if self.bits & bit != 0 {
            return false;
        }
        self.bits |= bit;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> SessionKeys {
        SessionKeys::export(|label: &[u8], out: &mut [u8]| -> Result<(), ()> {
            for (i, b) in out.iter_mut().enumerate() {
                *b = seed ^ label.len() as u8 ^ i as u8;
            }
            Ok(())
        })
        .unwrap()
    }

    const NOW: u64 = 1_767_225_600_000;

    fn header(k: &SessionKeys, seq: u64) -> SessionHeader {
        SessionHeader {
            message_type: MessageType::CheckIn,
            session_id: k.id,
            seq,
            timestamp_ms: NOW,
        }
    }

    #[test]
    fn round_trip_each_direction_and_directions_do_not_mix() {
        let k = keys(1);
        let up = seal_in_session(&k, Direction::Up, &header(&k, 1), b"report").unwrap();
        assert_eq!(up.len(), MIN_SESSION_BODY_LEN + 6);
        assert!(is_session_body(&up));
        let l = OpenLimits::new(NOW);
        let (h, pt) = open_in_session(&k, Direction::Up, &up, &l).unwrap();
        assert_eq!((h.seq, pt.as_slice()), (1, &b"report"[..]));
        assert_eq!(
            open_in_session(&k, Direction::Down, &up, &l),
            Err(OpenError::Tampered)
        );
        let other = keys(2);
        assert_eq!(
            open_in_session(&other, Direction::Up, &up, &l),
            Err(OpenError::UnknownSession)
        );
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let k = keys(3);
        let body = seal_in_session(&k, Direction::Down, &header(&k, 7), b"ack").unwrap();
        let l = OpenLimits::new(NOW);
        for i in 0..body.len() {
            let mut b = body.clone();
            b[i] ^= 0x01;
            assert!(
                open_in_session(&k, Direction::Down, &b, &l).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn stale_bodies_are_refused_before_decrypting() {
        let k = keys(4);
        let body = seal_in_session(&k, Direction::Up, &header(&k, 1), b"").unwrap();
        let late = OpenLimits::new(NOW + crate::sealed::DEFAULT_MAX_SKEW_MS + 1);
        assert_eq!(
            open_in_session(&k, Direction::Up, &body, &late),
            Err(OpenError::Stale)
        );
    }

    #[test]
    fn window_accepts_each_seq_once_within_reach() {
        let mut w = SeqWindow::default();
        assert!(!w.accept(0));
        assert!(w.accept(2));
        assert!(w.accept(1));
        assert!(!w.accept(1));
        assert!(!w.accept(2));
        assert!(w.accept(100));
        assert!(!w.accept(100 - SEQ_WINDOW));
        assert!(w.accept(100 - SEQ_WINDOW + 1));
        assert!(!w.accept(MAX_SESSION_SEQ + 1));
    }

    #[test]
    fn a_printer_numbers_its_bodies_until_the_session_is_used_up() {
        let mut p = PrinterSession::new(keys(6), NOW);
        assert_eq!(p.next_seq(NOW), Some(1));
        assert_eq!(p.next_seq(NOW), Some(2));
        assert_eq!(p.next_seq(NOW + PRINTER_SESSION_USE_MS), None);
    }

    #[test]
    fn structure_errors_in_order() {
        let k = keys(5);
        let body = seal_in_session(&k, Direction::Up, &header(&k, 1), b"x").unwrap();
        assert_eq!(
            SessionHeader::parse(&body[..4], MAX_BODY_LEN),
            Err(OpenError::Truncated)
        );
        assert_eq!(
            SessionHeader::parse(&body[..MIN_SESSION_BODY_LEN - 1], MAX_BODY_LEN),
            Err(OpenError::Truncated)
        );
        let mut x = body.clone();
        x[5] = 0x7f;
        assert_eq!(
            SessionHeader::parse(&x, MAX_BODY_LEN),
            Err(OpenError::UnknownType)
        );
        assert_eq!(SessionHeader::parse(&body, 10), Err(OpenError::Oversized));
        assert!(format!("{k:?}").contains("SessionKeys"));
        assert!(!format!("{k:?}").contains("up_key"));
    }
}
