//! Heartbeat datagrams (version 1), both directions 35 bytes:
//!
//! ```text
//! 0      1          9           17                      19        35
//! | ver  | key id   | counter   | encrypted payload (2) | tag (16) |
//! ```
//!
//! ChaCha20-Poly1305 (RFC 8439) under the up key (requests) or the down key (answers); nonce =
//! `00 00 00 00 || counter (u64 BE)`; aad = the 17 clear bytes. An answer repeats the counter of
//! the request it answers.

use crate::aead;

use super::keys::{HeartbeatKeyId, HeartbeatKeys};
use super::window::ReplayWindow;
use super::HeartbeatError;

pub const DATAGRAM_VERSION: u8 = 1;
/// Clear part: version, key id, counter.
pub const CLEAR_LEN: usize = 1 + 8 + 8;
/// Plaintext payload: type, flags.
pub const PAYLOAD_LEN: usize = 2;
pub const TAG_LEN: usize = aead::TAG_LEN;
/// Length of every version-1 datagram, request or answer.
pub const DATAGRAM_LEN: usize = CLEAR_LEN + PAYLOAD_LEN + TAG_LEN;

/// What a printer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RequestType {
    /// "I am alive; anything for me?" — the server answers.
    Heartbeat = 0x01,
    /// Keeps a NAT mapping open; the server answers too (the answer keeps the mapping's return
    /// path open) but need not look for work.
    Keepalive = 0x02,
}

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AnswerType {
    /// Nothing to do.
    Nothing = 0x81,
    /// Work is waiting: fetch it over HTTPS.
    ComeFetch = 0x82,
}

/// A decrypted request. `flags`: version 1 defines no bits; senders send 0, receivers ignore
/// bits they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestType,
    pub flags: u8,
}

/// A decrypted answer; `flags` as for [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub kind: AnswerType,
    pub flags: u8,
}

/// An authenticated request whose counter the window has accepted. Only [`open_request`] makes
/// one and [`seal_answer`] consumes it, so the server answers each counter at most once and the
/// down key never sees a nonce twice.
#[derive(Debug, PartialEq, Eq)]
pub struct AcceptedRequest {
    counter: u64,
    request: Request,
    request_len: usize,
}

impl AcceptedRequest {
    pub fn counter(&self) -> u64 {
        self.counter
    }
    pub fn request(&self) -> Request {
        self.request
    }
}

fn nonce(counter: u64) -> [u8; aead::NONCE_LEN] {
    let mut n = [0u8; aead::NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn clear(key_id: HeartbeatKeyId, counter: u64) -> [u8; CLEAR_LEN] {
    let mut c = [0u8; CLEAR_LEN];
    c[0] = DATAGRAM_VERSION;
    c[1..9].copy_from_slice(&key_id.0);
    c[9..17].copy_from_slice(&counter.to_be_bytes());
    c
}

fn seal(
    key: &[u8; aead::KEY_LEN],
    clear: [u8; CLEAR_LEN],
    counter: u64,
    payload: [u8; PAYLOAD_LEN],
) -> Result<Vec<u8>, HeartbeatError> {
    let mut out = Vec::with_capacity(DATAGRAM_LEN);
    out.extend_from_slice(&clear);
    // Only fails for messages beyond ChaCha20's 256 GiB limit; 2 bytes never do.
    aead::seal_into(key, nonce(counter), &clear, &payload, &mut out)
        .map_err(|_| HeartbeatError::BadLength)?;
    Ok(out)
}

/// The clear fields of a datagram, checked for shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clear {
    pub key_id: HeartbeatKeyId,
    pub counter: u64,
}

/// Reads the clear fields (version, length, counter ≠ 0), e.g. to find the key by its id.
pub fn peek(datagram: &[u8]) -> Result<Clear, HeartbeatError> {
    match datagram.first() {
        None => return Err(HeartbeatError::BadLength),
        Some(&DATAGRAM_VERSION) => {}
        Some(_) => return Err(HeartbeatError::BadVersion),
    }
    if datagram.len() != DATAGRAM_LEN {
        return Err(HeartbeatError::BadLength);
    }
    let key_id = datagram
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or(HeartbeatError::BadLength)?;
    let counter = datagram
        .get(9..17)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or(HeartbeatError::BadLength)?;
    if counter == 0 {
        return Err(HeartbeatError::BadCounter);
    }
    Ok(Clear {
        key_id: HeartbeatKeyId(key_id),
        counter,
    })
}

/// Steps 1–4 of the opening procedures: shape, then the key id.
fn peek_for(keys: &HeartbeatKeys, datagram: &[u8]) -> Result<Clear, HeartbeatError> {
    let c = peek(datagram)?;
    if c.key_id != keys.key_id {
        return Err(HeartbeatError::WrongKey);
    }
    Ok(c)
}

fn decrypt(
    key: &[u8; aead::KEY_LEN],
    counter: u64,
    datagram: &[u8],
) -> Result<[u8; PAYLOAD_LEN], HeartbeatError> {
    let (Some(aad), Some(ct)) = (datagram.get(..CLEAR_LEN), datagram.get(CLEAR_LEN..)) else {
        return Err(HeartbeatError::BadLength);
    };
    let pt = aead::open(key, nonce(counter), aad, ct).map_err(|_| HeartbeatError::Tampered)?;
    <[u8; PAYLOAD_LEN]>::try_from(pt.as_slice()).map_err(|_| HeartbeatError::BadLength)
}

/// Printer: seals a request. `counter` must be greater than every counter this key sealed
/// before (see the counter rules in `docs/protocol.md`); 0 is refused.
pub fn seal_request(
    keys: &HeartbeatKeys,
    counter: u64,
    request: Request,
) -> Result<Vec<u8>, HeartbeatError> {
    if counter == 0 {
        return Err(HeartbeatError::BadCounter);
    }
    seal(
        &keys.up,
        clear(keys.key_id, counter),
        counter,
        [request.kind as u8, request.flags],
    )
}

/// Server: authenticates a request and records its counter in `window` (only if authentic).
/// Persist the window before sending the answer.
pub fn open_request(
    keys: &HeartbeatKeys,
    datagram: &[u8],
    window: &mut ReplayWindow,
) -> Result<AcceptedRequest, HeartbeatError> {
    let c = peek_for(keys, datagram)?;
    window.check(c.counter)?;
    let [kind, flags] = decrypt(&keys.up, c.counter, datagram)?;
    window.accept(c.counter)?;
    let counter = c.counter;
    let kind = match kind {
        0x01 => RequestType::Heartbeat,
        0x02 => RequestType::Keepalive,
        _ => return Err(HeartbeatError::UnknownType),
    };
    Ok(AcceptedRequest {
        counter,
        request: Request { kind, flags },
        request_len: datagram.len(),
    })
}

/// Server: seals the answer to an accepted request. Refuses (`answer_too_large`) an answer
/// longer than the request, so the heartbeat port can never amplify traffic.
pub fn seal_answer(
    keys: &HeartbeatKeys,
    accepted: AcceptedRequest,
    answer: Answer,
) -> Result<Vec<u8>, HeartbeatError> {
    let out = seal(
        &keys.down,
        clear(keys.key_id, accepted.counter),
        accepted.counter,
        [answer.kind as u8, answer.flags],
    )?;
    if out.len() > accepted.request_len {
        return Err(HeartbeatError::AnswerTooLarge);
    }
    Ok(out)
}

/// Printer: authenticates the answer to the request it sent with `expected_counter`.
pub fn open_answer(
    keys: &HeartbeatKeys,
    expected_counter: u64,
    datagram: &[u8],
) -> Result<Answer, HeartbeatError> {
    let c = peek_for(keys, datagram)?;
    if c.counter != expected_counter {
        return Err(HeartbeatError::UnexpectedCounter);
    }
    let [kind, flags] = decrypt(&keys.down, c.counter, datagram)?;
    let kind = match kind {
        0x81 => AnswerType::Nothing,
        0x82 => AnswerType::ComeFetch,
        _ => return Err(HeartbeatError::UnknownType),
    };
    Ok(Answer { kind, flags })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::derive_heartbeat_key;

    fn keys() -> HeartbeatKeys {
        derive_heartbeat_key(&[9u8; 32], &[4u8; 16]).keys()
    }

    const HB: Request = Request {
        kind: RequestType::Heartbeat,
        flags: 0,
    };
    const FETCH: Answer = Answer {
        kind: AnswerType::ComeFetch,
        flags: 0,
    };

    #[test]
    fn request_answer_round_trip() {
        let k = keys();
        let mut w = ReplayWindow::new();
        let req = seal_request(&k, 42, HB).unwrap();
        assert_eq!(req.len(), DATAGRAM_LEN);
        assert_eq!(req[0], 1);
        assert_eq!(&req[9..17], &42u64.to_be_bytes());
        let acc = open_request(&k, &req, &mut w).unwrap();
        assert_eq!((acc.counter(), acc.request()), (42, HB));
        let ans = seal_answer(&k, acc, FETCH).unwrap();
        assert!(ans.len() <= req.len());
        assert_eq!(open_answer(&k, 42, &ans), Ok(FETCH));
        assert_eq!(
            open_answer(&k, 43, &ans),
            Err(HeartbeatError::UnexpectedCounter)
        );
        assert_eq!(
            open_request(&k, &req, &mut w),
            Err(HeartbeatError::Replayed)
        );
    }

    #[test]
    fn directions_do_not_reflect() {
        let k = keys();
        let req = seal_request(&k, 7, HB).unwrap();
        // A request bounced back to the printer as if it were an answer.
        assert_eq!(open_answer(&k, 7, &req), Err(HeartbeatError::Tampered));
        let acc = open_request(&k, &req, &mut ReplayWindow::new()).unwrap();
        let ans = seal_answer(&k, acc, FETCH).unwrap();
        // An answer bounced to the server as if it were a request.
        assert_eq!(
            open_request(&k, &ans, &mut ReplayWindow::new()),
            Err(HeartbeatError::Tampered)
        );
    }

    #[test]
    fn answer_never_larger_than_request() {
        let k = keys();
        let req = seal_request(&k, 1, HB).unwrap();
        let mut acc = open_request(&k, &req, &mut ReplayWindow::new()).unwrap();
        acc.request_len = DATAGRAM_LEN - 1;
        assert_eq!(
            seal_answer(&k, acc, FETCH),
            Err(HeartbeatError::AnswerTooLarge)
        );
    }

    #[test]
    fn forged_datagrams_do_not_move_the_window() {
        let k = keys();
        let mut req = seal_request(&k, 1000, HB).unwrap();
        req[20] ^= 1;
        let mut w = ReplayWindow::new();
        assert_eq!(
            open_request(&k, &req, &mut w),
            Err(HeartbeatError::Tampered)
        );
        assert_eq!(w.highest(), 0);
    }

    #[test]
    fn clear_field_errors() {
        let k = keys();
        let mut w = ReplayWindow::new();
        let req = seal_request(&k, 3, HB).unwrap();
        assert_eq!(
            open_request(&k, &[], &mut w),
            Err(HeartbeatError::BadLength)
        );
        assert_eq!(
            open_request(&k, &req[..34], &mut w),
            Err(HeartbeatError::BadLength)
        );
        let mut long = req.clone();
        long.push(0);
        assert_eq!(
            open_request(&k, &long, &mut w),
            Err(HeartbeatError::BadLength)
        );
        let mut v2 = req.clone();
        v2[0] = 2;
        assert_eq!(
            open_request(&k, &v2, &mut w),
            Err(HeartbeatError::BadVersion)
        );
        let mut zero = req.clone();
        zero[9..17].fill(0);
        assert_eq!(
            open_request(&k, &zero, &mut w),
            Err(HeartbeatError::BadCounter)
        );
        let other = derive_heartbeat_key(&[9u8; 32], &[5u8; 16]).keys();
        assert_eq!(
            open_request(&other, &req, &mut w),
            Err(HeartbeatError::WrongKey)
        );
        assert_eq!(seal_request(&k, 0, HB), Err(HeartbeatError::BadCounter));
    }

    #[test]
    fn unknown_payload_type_is_refused_after_authentication() {
        let k = keys();
        let bad = seal(&k.up, clear(k.key_id, 5), 5, [0x7f, 0]).unwrap();
        let mut w = ReplayWindow::new();
        assert_eq!(
            open_request(&k, &bad, &mut w),
            Err(HeartbeatError::UnknownType)
        );
        assert_eq!(w.highest(), 5);
        let bad = seal(&k.down, clear(k.key_id, 5), 5, [0x01, 0]).unwrap();
        assert_eq!(open_answer(&k, 5, &bad), Err(HeartbeatError::UnknownType));
    }
}
