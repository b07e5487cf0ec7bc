//! The `sessions` section of the vectors (docs/protocol.md §2.8): a sealed `check_in` that opens
//! a session, the five values both ends export from its HPKE context, one exchange of session
//! bodies (an up `check_in` and its down `check_in_ack`), up bodies the server refuses with
//! their codes, and the steps of the sequence window.

use printfleet_protocol::messages::{message_id_hex, AckStatus, CheckIn, CheckInAck, Meters};
use printfleet_protocol::sealed::DEFAULT_MAX_SKEW_MS;
use printfleet_protocol::session::{
    open_in_session, seal_in_session, Direction, SeqWindow, SessionHeader, SessionKeys,
    MAX_SESSION_AGE_MS, MAX_SESSION_SEQ, MIN_SESSION_BODY_LEN, SEQ_WINDOW, SESSION_HEADER_LEN,
    SESSION_ID_LEN, SESSION_SUITE,
};
use printfleet_protocol::{
    open_opening, seal_opening, Header, KeyPair, MessageId, MessageType, OpenError, OpenLimits,
    ReplayCache,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::{message_vector, sample_check_in, seq, MessageVector, TS};

/// The up body's timestamp (printer clock) and the down body's (server clock).
const TS_UP: u64 = TS + 30_000;
const TS_DOWN: u64 = TS_UP + 120;

#[derive(Serialize)]
pub struct Sessions {
    suite: u8,
    header_len: usize,
    min_body_len: usize,
    seq_window: u64,
    max_seq: u64,
    max_age_ms: u64,
    /// The sealed body (suite 0x01, printer → server) whose HPKE context opens the session.
    opening: MessageVector,
    /// `Export(label, length)` of the opening's HPKE context (RFC 9180 §5.3), same at both ends.
    exported: Vec<ExportVector>,
    /// An up `check_in` (seq 1) and the down `check_in_ack` answering it.
    valid: Vec<SessionBodyVector>,
    /// Up bodies the server refuses, in a session it holds (the one opened above).
    invalid: Vec<InvalidSessionBody>,
    /// Up sequence numbers offered to a fresh window in order, and whether each is taken.
    window: Vec<WindowStep>,
}

#[derive(Serialize)]
struct ExportVector {
    name: &'static str,
    label: &'static str,
    label_hex: String,
    length: usize,
    value_hex: String,
}

#[derive(Serialize)]
struct SessionHeaderVector {
    magic_hex: String,
    version: u8,
    suite: u8,
    message_type: u8,
    session_id_hex: String,
    seq: u64,
    timestamp_ms: u64,
}

#[derive(Serialize)]
struct SessionBodyVector {
    name: &'static str,
    /// `up` (printer → server, up key and nonce) or `down` (server → printer).
    direction: &'static str,
    sender: &'static str,
    recipient: &'static str,
    header: SessionHeaderVector,
    header_hex: String,
    /// First 8 bytes of the session id, then seq (big-endian): what `reply_to` names.
    message_id_hex: String,
    /// The direction's nonce base with seq (big-endian) XORed into its last 8 bytes.
    nonce_hex: String,
    plaintext_json: serde_json::Value,
    plaintext_hex: String,
    ciphertext_hex: String,
    body_hex: String,
    now_ms: u64,
}

#[derive(Serialize)]
struct InvalidSessionBody {
    name: &'static str,
    direction: &'static str,
    body_hex: String,
    now_ms: u64,
    /// Up sequence numbers the server took in this session before this body arrives.
    accepted_before: Vec<u64>,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct WindowStep {
    seq: u64,
    accepted: bool,
}

fn session_header(
    message_type: MessageType,
    keys: &SessionKeys,
    seq: u64,
    ts: u64,
) -> SessionHeader {
    SessionHeader {
        message_type,
        session_id: keys.id,
        seq,
        timestamp_ms: ts,
    }
}

fn nonce_hex(base_hex: &str, seq: u64) -> String {
    let mut n = hex::decode(base_hex).unwrap();
    assert_eq!(n.len(), 12);
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    hex::encode(n)
}

/// Seals `plaintext` in direction `dir` with the sender's keys, opens it with the receiver's and
/// returns the vector.
#[allow(clippy::too_many_arguments)]
fn session_body(
    name: &'static str,
    dir: Direction,
    sender_keys: &SessionKeys,
    receiver_keys: &SessionKeys,
    message_type: MessageType,
    seq: u64,
    ts: u64,
    plaintext: &[u8],
) -> (SessionBodyVector, Vec<u8>) {
    let header = session_header(message_type, sender_keys, seq, ts);
    let body = seal_in_session(sender_keys, dir, &header, plaintext).unwrap();
    let limits = OpenLimits::new(ts);
    let (h, p) = open_in_session(receiver_keys, dir, &body, &limits).unwrap();
    assert_eq!((h, p.as_slice()), (header, plaintext), "{name}");
    // The other direction's key does not open it.
    let other = match dir {
        Direction::Up => Direction::Down,
        Direction::Down => Direction::Up,
    };
    assert_eq!(
        open_in_session(receiver_keys, other, &body, &limits),
        Err(OpenError::Tampered),
        "{name}"
    );
    let b = header.encode();
    assert_eq!(&body[..SESSION_HEADER_LEN], &b[..]);
    let [_, up_nonce, _, down_nonce] = sender_keys.secrets_hex_for_vectors();
    let (direction, sender, recipient, base) = match dir {
        Direction::Up => ("up", "printer", "server", up_nonce),
        Direction::Down => ("down", "server", "printer", down_nonce),
    };
    let v = SessionBodyVector {
        name,
        direction,
        sender,
        recipient,
        header: SessionHeaderVector {
            magic_hex: hex::encode(&b[0..3]),
            version: b[3],
            suite: b[4],
            message_type: b[5],
            session_id_hex: hex::encode(header.session_id.0),
            seq: header.seq,
            timestamp_ms: header.timestamp_ms,
        },
        header_hex: hex::encode(b),
        message_id_hex: hex::encode(header.message_id().0),
        nonce_hex: nonce_hex(&base, seq),
        plaintext_json: serde_json::from_slice(plaintext).unwrap(),
        plaintext_hex: hex::encode(plaintext),
        ciphertext_hex: hex::encode(&body[SESSION_HEADER_LEN..]),
        body_hex: hex::encode(&body),
        now_ms: ts,
    };
    (v, body)
}

/// What the server does with an up body in the session `keys` whose window already took
/// `accepted_before`: §2.8 checks 1–10, then the window (check 11).
fn server_opens(
    keys: &SessionKeys,
    body: &[u8],
    now_ms: u64,
    accepted_before: &[u64],
) -> Result<(), OpenError> {
    let mut window = SeqWindow::default();
    for &s in accepted_before {
        assert!(window.accept(s), "seq {s} taken before");
    }
    let (h, _) = open_in_session(keys, Direction::Up, body, &OpenLimits::new(now_ms))?;
    if window.accept(h.seq) {
        Ok(())
    } else {
        Err(OpenError::Replayed)
    }
}

pub fn session_vectors() -> Sessions {
    let server = KeyPair::derive(&seq(0x00));
    let printer = KeyPair::derive(&seq(0x20));
    let opening_seed = seq(0x1a);
    let opening_id: [u8; 16] = std::array::from_fn(|i| 0xd0 + i as u8);
    let first = sample_check_in();
    let plaintext = first.encode();

    // The opening is an ordinary sealed body: the same bytes `seal` makes with the same rng.
    let opening = message_vector(
        "session_opening_check_in",
        MessageType::CheckIn,
        ("printer", &printer),
        ("server", &server),
        opening_seed,
        opening_id,
        &plaintext,
    );
    let header = Header {
        message_type: MessageType::CheckIn,
        sender_key_id: printer.key_id(),
        recipient_key_id: server.key_id(),
        timestamp_ms: TS,
        message_id: MessageId(opening_id),
    };
    let (body, printer_keys) = seal_opening(
        &server.public,
        &printer.private,
        &printer.public,
        &header,
        &plaintext,
        &mut ChaCha20Rng::from_seed(opening_seed),
    )
    .unwrap();
    assert_eq!(hex::encode(body.as_bytes()), opening.body_hex);
    let (_, opened, server_keys) = open_opening(
        &server.private,
        &printer.public,
        body.as_bytes(),
        &OpenLimits::new(TS),
        &mut ReplayCache::new(4),
    )
    .unwrap();
    assert_eq!(opened, plaintext);
    assert_eq!(printer_keys.id, server_keys.id);
    let secrets = server_keys.secrets_hex_for_vectors();
    assert_eq!(printer_keys.secrets_hex_for_vectors(), secrets);

    let [up_key, up_nonce, down_key, down_nonce] = secrets;
    let export = |name, label: &'static str, length, value_hex: String| {
        assert_eq!(value_hex.len(), 2 * length, "{name}");
        ExportVector {
            name,
            label,
            label_hex: hex::encode(label),
            length,
            value_hex,
        }
    };
    let exported = vec![
        export(
            "session_id",
            "printfleet session v1 id",
            SESSION_ID_LEN,
            hex::encode(server_keys.id.0),
        ),
        export("up_key", "printfleet session v1 up key", 32, up_key),
        export("up_nonce", "printfleet session v1 up nonce", 12, up_nonce),
        export("down_key", "printfleet session v1 down key", 32, down_key),
        export(
            "down_nonce",
            "printfleet session v1 down nonce",
            12,
            down_nonce,
        ),
    ];

    // One exchange: the next report in the session, and its acknowledgement.
    let report = CheckIn {
        seq: first.seq + 1,
        taken_at_ms: TS_UP - 1_000,
        info: None,
        meters: Some(Meters {
            total_impressions: 48_230,
            mono_impressions: Some(48_230),
            ..Meters::default()
        }),
        supplies: None,
        events: Vec::new(),
        settings: Default::default(),
    };
    assert_eq!(CheckIn::decode(&report.encode()), Ok(report.clone()));
    let (up, up_body) = session_body(
        "up_check_in",
        Direction::Up,
        &printer_keys,
        &server_keys,
        MessageType::CheckIn,
        1,
        TS_UP,
        &report.encode(),
    );
    let up_header = session_header(MessageType::CheckIn, &printer_keys, 1, TS_UP);
    let ack = CheckInAck {
        reply_to: message_id_hex(&up_header.message_id()),
        seq: report.seq,
        status: AckStatus::Stored,
        code: None,
        field: None,
        message: None,
    };
    assert_eq!(CheckInAck::decode(&ack.encode()), Ok(ack.clone()));
    let (down, down_body) = session_body(
        "down_check_in_ack",
        Direction::Down,
        &server_keys,
        &printer_keys,
        MessageType::CheckInAck,
        1,
        TS_DOWN,
        &ack.encode(),
    );
    assert_eq!(server_opens(&server_keys, &up_body, TS_UP, &[]), Ok(()));

    // Up bodies of the same session sealed for the window and freshness cases.
    let sealed_up = |seq: u64, ts: u64| {
        let h = session_header(MessageType::CheckIn, &printer_keys, seq, ts);
        seal_in_session(&printer_keys, Direction::Up, &h, &report.encode()).unwrap()
    };
    let skew = DEFAULT_MAX_SKEW_MS;
    let changed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = up_body.clone();
        f(&mut b);
        b
    };
    let last = up_body.len() - 1;
    type Case = (&'static str, Vec<u8>, u64, Vec<u64>, OpenError);
    let c = |name, b: Vec<u8>, err| -> Case { (name, b, TS_UP, Vec::new(), err) };
    let cases: Vec<Case> = vec![
        c(
            "truncated_to_4_bytes",
            up_body[..4].to_vec(),
            OpenError::Truncated,
        ),
        c(
            "truncated_below_minimum",
            up_body[..MIN_SESSION_BODY_LEN - 1].to_vec(),
            OpenError::Truncated,
        ),
        c("bad_magic", changed(&|b| b[0] = b'X'), OpenError::BadMagic),
        c("bad_version", changed(&|b| b[3] = 2), OpenError::BadVersion),
        c(
            "unknown_suite",
            changed(&|b| b[4] = 0x03),
            OpenError::UnknownSuite,
        ),
        c(
            "unknown_type",
            changed(&|b| b[5] = 0x7f),
            OpenError::UnknownType,
        ),
        // A session id the server does not hold (and no longer authentic): session before
        // authentication.
        c(
            "unknown_session",
            changed(&|b| b[6] ^= 0x01),
            OpenError::UnknownSession,
        ),
        (
            "stale_past",
            up_body.clone(),
            TS_UP + skew + 1,
            Vec::new(),
            OpenError::Stale,
        ),
        (
            "stale_future",
            up_body.clone(),
            TS_UP - skew - 1,
            Vec::new(),
            OpenError::Stale,
        ),
        (
            "stale_timestamp_sealed",
            sealed_up(2, TS_UP - skew - 1),
            TS_UP,
            vec![1],
            OpenError::Stale,
        ),
        // Edited to a stale timestamp (so no longer authentic either): freshness before
        // authentication.
        (
            "stale_edited_timestamp",
            changed(&|b| b[30..38].copy_from_slice(&(TS_UP - skew - 1).to_be_bytes())),
            TS_UP,
            Vec::new(),
            OpenError::Stale,
        ),
        c(
            "tampered_ciphertext",
            changed(&|b| b[SESSION_HEADER_LEN] ^= 0x01),
            OpenError::Tampered,
        ),
        c(
            "tampered_tag",
            changed(&|b| b[last] ^= 0x01),
            OpenError::Tampered,
        ),
        c(
            "truncated_ciphertext",
            up_body[..last].to_vec(),
            OpenError::Tampered,
        ),
        c(
            "tampered_type",
            changed(&|b| b[5] = MessageType::Fetch as u8),
            OpenError::Tampered,
        ),
        c(
            "tampered_seq",
            changed(&|b| b[29] ^= 0x02),
            OpenError::Tampered,
        ),
        c(
            "tampered_timestamp",
            changed(&|b| b[37] ^= 0x01),
            OpenError::Tampered,
        ),
        // The server's own answer sent back up: the down key, not the up key.
        c("reflected_answer", down_body.clone(), OpenError::Tampered),
        // Authentication before the window: a forged body with a taken seq is `tampered`.
        (
            "tampered_with_taken_seq",
            changed(&|b| b[last] ^= 0x80),
            TS_UP,
            vec![1],
            OpenError::Tampered,
        ),
        (
            "replayed",
            up_body.clone(),
            TS_UP,
            vec![1],
            OpenError::Replayed,
        ),
        (
            "seq_below_window",
            sealed_up(2, TS_UP),
            TS_UP,
            vec![1, 2 + SEQ_WINDOW],
            OpenError::Replayed,
        ),
        (
            "seq_zero",
            sealed_up(0, TS_UP),
            TS_UP,
            Vec::new(),
            OpenError::Replayed,
        ),
        (
            "seq_above_maximum",
            sealed_up(MAX_SESSION_SEQ + 1, TS_UP),
            TS_UP,
            Vec::new(),
            OpenError::Replayed,
        ),
    ];
    let invalid = cases
        .into_iter()
        .map(|(name, b, now, before, err)| {
            assert_eq!(
                server_opens(&server_keys, &b, now, &before),
                Err(err),
                "{name}"
            );
            InvalidSessionBody {
                name,
                direction: "up",
                body_hex: hex::encode(&b),
                now_ms: now,
                accepted_before: before,
                expected_error: err.code(),
            }
        })
        .collect();
    // A body one seq inside the window is still taken.
    assert_eq!(
        server_opens(
            &server_keys,
            &sealed_up(3, TS_UP),
            TS_UP,
            &[1, 2 + SEQ_WINDOW]
        ),
        Ok(())
    );

    let mut w = SeqWindow::default();
    let window = [
        2u64,
        1,
        1,
        2,
        3,
        100,
        36,
        37,
        37,
        99,
        0,
        164,
        100,
        101,
        MAX_SESSION_SEQ,
        MAX_SESSION_SEQ - SEQ_WINDOW + 1,
        MAX_SESSION_SEQ - SEQ_WINDOW,
        MAX_SESSION_SEQ + 1,
    ]
    .into_iter()
    .map(|seq| WindowStep {
        seq,
        accepted: w.accept(seq),
    })
    .collect();

    Sessions {
        suite: SESSION_SUITE,
        header_len: SESSION_HEADER_LEN,
        min_body_len: MIN_SESSION_BODY_LEN,
        seq_window: SEQ_WINDOW,
        max_seq: MAX_SESSION_SEQ,
        max_age_ms: MAX_SESSION_AGE_MS,
        opening,
        exported,
        valid: vec![up, down],
        invalid,
        window,
    }
}
