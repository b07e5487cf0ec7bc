//! The fuzz harnesses of `printfleet-protocol`: one function per decoder of bytes that come from
//! the network (or from storage, for the replay window). Each feeds arbitrary bytes to the real
//! public API with fixed keys (those of `docs/protocol-vectors.json`, so the seed corpus reaches
//! the cryptography) and asserts properties `docs/protocol.md` promises. The crate itself must
//! never panic; a panic here is either a crate panic or a broken property, both real bugs.
//!
//! The same file is compiled into `crates/protocol/tests/fuzz_regressions.rs` (by `#[path]`), so
//! the regression test replays the corpus and `regressions/` through exactly this code. It must
//! therefore only use `printfleet_protocol` and `std`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use printfleet_protocol::header::{HEADER_LEN, MIN_BODY_LEN};
use printfleet_protocol::heartbeat::{
    self, derive_heartbeat_key, Answer, AnswerType, HeartbeatError, HeartbeatKeys, ReplayWindow,
    WINDOW_BYTES_LEN, WINDOW_SIZE,
};
use printfleet_protocol::messages::{
    CheckIn, CheckInAck, Fetch, MessageError, ReEnrol, Work, MAX_EVENTS, MAX_SETTINGS,
    MAX_SUPPLIES, MAX_WAIT_MS, MAX_WORK_ITEMS,
};
use printfleet_protocol::{
    open, peek_header, Header, KeyPair, MessageType, OpenError, OpenLimits, ReplayCache,
    SealedToDevice, MAX_BODY_LEN,
};

/// A fuzz harness: takes the fuzzer's bytes, panics only on a bug.
pub type Harness = fn(&[u8]);

/// Every harness, by fuzz target name (`fuzz_targets/<name>.rs`).
pub const TARGETS: [(&str, Harness); 6] = [
    ("sealed_open", sealed_open),
    ("heartbeat_request", heartbeat_request),
    ("heartbeat_answer", heartbeat_answer),
    ("window_restore", window_restore),
    ("sealed_to_device", sealed_to_device),
    ("messages", messages),
];

/// `now_ms` of the test vectors (2026-01-01T00:00:00Z): the valid vector bodies are fresh.
const NOW_MS: u64 = 1_767_225_600_000;

fn seq(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

struct SealedKeys {
    server: KeyPair,
    printer: KeyPair,
}

/// The key pairs of the vectors (IKM `00..1f` for the server, `20..3f` for the printer).
fn sealed_keys() -> &'static SealedKeys {
    static KEYS: OnceLock<SealedKeys> = OnceLock::new();
    KEYS.get_or_init(|| SealedKeys {
        server: KeyPair::derive(&seq(0x00)),
        printer: KeyPair::derive(&seq(0x20)),
    })
}

/// The heartbeat keys of the vectors (enrolment secret `80..9f`, printer id `a0..af`).
fn heartbeat_keys() -> &'static HeartbeatKeys {
    static KEYS: OnceLock<HeartbeatKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let printer_id: [u8; 16] = std::array::from_fn(|i| 0xa0u8.wrapping_add(i as u8));
        derive_heartbeat_key(&seq(0x80), &printer_id).keys()
    })
}

/// Sealed body → `Header::parse` / `peek_header` under several limits, then `open` by the printer
/// (server → printer) with a fresh replay cache, then by the server (printer → server), then,
/// for stale bodies, with limits at the ends of the clock. An opened plaintext goes on to the
/// decoder of its message type, as the receiver would use it.
pub fn sealed_open(data: &[u8]) {
    let k = sealed_keys();
    let limits = OpenLimits::new(NOW_MS);

    let parsed = Header::parse(data, MAX_BODY_LEN);
    for max in [0, 5, MIN_BODY_LEN, MAX_BODY_LEN - 1, usize::MAX] {
        let _ = Header::parse(data, max);
    }
    assert_eq!(peek_header(data, &limits), parsed, "peek_header != parse");
    if let Ok(h) = &parsed {
        // Only the 46 clear bytes are read, and they are all meaningful: encoding gives them back.
        assert_eq!(
            Some(&h.encode()[..]),
            data.get(..HEADER_LEN),
            "header round trip"
        );
        assert!(data.len() >= MIN_BODY_LEN && data.len() <= MAX_BODY_LEN);
    }

    let mut cache = ReplayCache::new(4);
    let opened = open(
        &k.printer.private,
        &k.server.public,
        data,
        &limits,
        &mut cache,
    );
    match &opened {
        Ok((h, plaintext)) => {
            assert_eq!(Ok(*h), parsed, "opened header != parsed header");
            assert_eq!(
                plaintext.len() + MIN_BODY_LEN,
                data.len(),
                "plaintext length"
            );
            assert_eq!(cache.len(), 1, "an opened body is recorded");
            let again = open(
                &k.printer.private,
                &k.server.public,
                data,
                &limits,
                &mut cache,
            );
            assert_eq!(again, Err(OpenError::Replayed), "second open");
            // What the printer does next with the plaintext.
            decode_plaintext(h.message_type, plaintext);
        }
        Err(e) => {
            // Checks 1-7 are those of the header alone, in the same order.
            if let Err(pe) = &parsed {
                assert_eq!(e, pe, "open and parse disagree");
            }
            // Refused bodies (forged ones included) never enter the replay guard.
            assert!(cache.is_empty(), "refused body recorded: {e:?}");
            assert!(!e.code().is_empty());
        }
    }

    // The server's side (a body for the printer names the wrong recipient here).
    let mut cache = ReplayCache::new(4);
    let by_server = open(
        &k.server.private,
        &k.printer.public,
        data,
        &limits,
        &mut cache,
    );
    match by_server {
        Ok((h, plaintext)) => {
            assert_eq!(Ok(h), parsed, "opened header != parsed header");
            assert_eq!(cache.len(), 1, "an opened body is recorded");
            decode_plaintext(h.message_type, &plaintext);
        }
        Err(e) => assert!(cache.is_empty(), "refused body recorded: {e:?}"),
    }

    // Saturating freshness and expiry arithmetic at the ends of the clock, for bodies refused
    // as stale above (only those: this open costs the HPKE operations again).
    if opened == Err(OpenError::Stale) {
        let extreme = OpenLimits {
            now_ms: u64::MAX,
            max_skew_ms: u64::MAX,
            max_body_len: usize::MAX,
        };
        let r = open(
            &k.printer.private,
            &k.server.public,
            data,
            &extreme,
            &mut ReplayCache::new(1),
        );
        assert!(r != Err(OpenError::Stale), "stale under an unbounded skew");
    }
}

/// The decoder a receiver applies to an opened plaintext of `message_type` (never panics).
fn decode_plaintext(message_type: MessageType, plaintext: &[u8]) {
    match message_type {
        MessageType::SealedToDevice => {
            let _ = SealedToDevice::decode(plaintext);
        }
        MessageType::CheckIn => {
            let _ = CheckIn::decode(plaintext);
        }
        MessageType::CheckInAck => {
            let _ = CheckInAck::decode(plaintext);
        }
        MessageType::Fetch => {
            let _ = Fetch::decode(plaintext);
        }
        MessageType::Work => {
            let _ = Work::decode(plaintext);
        }
        MessageType::ReEnrol => {
            let _ = ReEnrol::decode(plaintext);
        }
    }
}

/// Server side: a datagram → `peek` and `open_request` against a fresh window and a window that
/// already accepted counters 2 and 1025 (so `too_old` and `replayed` are reachable from the
/// seeds); an accepted request is answered and the answer opened as the printer would.
pub fn heartbeat_request(data: &[u8]) {
    let k = heartbeat_keys();
    let peeked = heartbeat::peek(data);

    let mut busy = ReplayWindow::new();
    for c in [2, WINDOW_SIZE + 1] {
        assert_eq!(busy.accept(c), Ok(()));
    }
    for mut window in [ReplayWindow::new(), busy] {
        let before = window.clone();
        match heartbeat::open_request(k, data, &mut window) {
            Ok(accepted) => {
                let c = accepted.counter();
                assert_eq!(peeked.map(|p| p.counter), Ok(c), "peek disagrees");
                assert_eq!(window.highest(), before.highest().max(c));
                assert_eq!(
                    window.check(c),
                    Err(HeartbeatError::Replayed),
                    "accepted counter still open"
                );
                assert_eq!(
                    heartbeat::open_request(k, data, &mut window.clone()),
                    Err(HeartbeatError::Replayed),
                    "request accepted twice"
                );
                assert_eq!(
                    ReplayWindow::from_bytes(&window.to_bytes()),
                    Ok(window.clone()),
                    "window does not survive persisting"
                );
                let request = accepted.request();
                let answer = Answer {
                    kind: if request.flags & 1 == 0 {
                        AnswerType::Nothing
                    } else {
                        AnswerType::ComeFetch
                    },
                    flags: request.flags,
                };
                let sealed = heartbeat::seal_answer(k, accepted, answer);
                let Ok(sealed) = sealed else {
                    panic!("seal_answer refused an accepted request: {sealed:?}");
                };
                assert!(sealed.len() <= data.len(), "answer larger than request");
                assert_eq!(heartbeat::open_answer(k, c, &sealed), Ok(answer));
                // No reflection: the answer never verifies as a request.
                assert_eq!(
                    heartbeat::open_request(k, &sealed, &mut ReplayWindow::new()),
                    Err(HeartbeatError::Tampered)
                );
            }
            Err(e) => {
                if let Err(pe) = peeked {
                    assert_eq!(e, pe, "open_request and peek disagree");
                }
                if e == HeartbeatError::UnknownType {
                    // Authenticated, so the counter stays recorded (docs/protocol.md §3.5 step 6).
                    let c = peeked.map(|p| p.counter).unwrap_or_default();
                    assert_eq!(window.check(c), Err(HeartbeatError::Replayed));
                } else {
                    assert_eq!(window, before, "refused datagram moved the window: {e:?}");
                }
                assert!(!e.code().is_empty());
            }
        }
    }
}

/// Printer side: a datagram → `open_answer`, expecting the counter the datagram carries (so the
/// fuzzer reaches the decryption), then another counter (must be refused).
pub fn heartbeat_answer(data: &[u8]) {
    let k = heartbeat_keys();
    let peeked = heartbeat::peek(data);
    let expected = peeked.map_or(1, |p| p.counter);
    match heartbeat::open_answer(k, expected, data) {
        Ok(answer) => {
            assert!(peeked.is_ok(), "answer opened but peek refused it");
            assert!(matches!(
                answer.kind,
                AnswerType::Nothing | AnswerType::ComeFetch
            ));
            // No reflection: an answer never verifies as a request.
            assert_eq!(
                heartbeat::open_request(k, data, &mut ReplayWindow::new()),
                Err(HeartbeatError::Tampered)
            );
        }
        Err(e) => {
            if let Err(pe) = peeked {
                assert_eq!(e, pe, "open_answer and peek disagree");
            }
            assert!(!e.code().is_empty());
        }
    }
    if let Ok(p) = peeked {
        let other = p.counter.wrapping_add(1);
        let want = if p.key_id == k.key_id() {
            HeartbeatError::UnexpectedCounter
        } else {
            HeartbeatError::WrongKey
        };
        assert_eq!(heartbeat::open_answer(k, other, data), Err(want));
    }
    let _ = heartbeat::open_answer(k, 0, data);
    let _ = heartbeat::open_answer(k, u64::MAX, data);
}

/// Persisted window → `ReplayWindow::from_bytes` on the whole input, then on its first 137 bytes;
/// if that restores, the rest of the input is a list of counters (each 8 bytes, a big-endian
/// signed distance from the highest counter) to `accept`, followed by counters around the edges
/// of the window. Each step is checked against the rules of `docs/protocol.md` §3.5.
pub fn window_restore(data: &[u8]) {
    if let Ok(w) = ReplayWindow::from_bytes(data) {
        assert_eq!(
            &w.to_bytes()[..],
            data,
            "restored window re-encodes differently"
        );
    }
    let (state, rest) = data.split_at(data.len().min(WINDOW_BYTES_LEN));
    let Ok(mut window) = ReplayWindow::from_bytes(state) else {
        return;
    };
    assert_eq!(&window.to_bytes()[..], state);

    let h = window.highest();
    let from_input = rest
        .chunks_exact(8)
        .take(256)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok())
        .map(|c| h.wrapping_add(i64::from_be_bytes(c) as u64));
    let edges = [
        0,
        1,
        h.wrapping_sub(WINDOW_SIZE),
        h.wrapping_sub(WINDOW_SIZE - 1),
        h.wrapping_sub(1),
        h,
        h.wrapping_add(1),
        h.wrapping_add(WINDOW_SIZE),
        u64::MAX,
    ];
    let mut accepted = BTreeSet::new();
    for c in from_input.chain(edges) {
        let before = window.clone();
        let checked = window.check(c);
        let r = window.accept(c);
        assert_eq!(r, checked, "accept({c}) disagrees with check");
        match r {
            Ok(()) => {
                assert!(accepted.insert(c), "counter {c} accepted twice");
                assert_eq!(window.highest(), before.highest().max(c));
                assert_eq!(window.check(c), Err(HeartbeatError::Replayed));
            }
            Err(e) => {
                assert_eq!(
                    window, before,
                    "refused counter {c} ({e:?}) moved the window"
                );
                match e {
                    HeartbeatError::BadCounter => assert_eq!(c, 0),
                    HeartbeatError::TooOld => assert!(before.highest() - c >= WINDOW_SIZE),
                    HeartbeatError::Replayed => {
                        assert!(c <= before.highest() && before.highest() - c < WINDOW_SIZE);
                    }
                    other => panic!("accept({c}) gave {other:?}"),
                }
            }
        }
        assert_eq!(
            ReplayWindow::from_bytes(&window.to_bytes()),
            Ok(window.clone()),
            "window does not survive persisting"
        );
    }
}

/// A `sealed_to_device` plaintext → `SealedToDevice::decode`; what decodes re-encodes to the same
/// bytes (the purpose is validated ASCII, so nothing is lost).
pub fn sealed_to_device(data: &[u8]) {
    match SealedToDevice::decode(data) {
        Ok(p) => {
            assert!((1..=64).contains(&p.purpose.len()), "purpose length");
            assert_eq!(p.encode().as_deref(), Ok(data), "payload round trip");
            let _ = format!("{p:?}");
        }
        Err(e) => assert!(!e.code().is_empty()),
    }
}

/// A refusal of a JSON plaintext has one of the codes of `docs/protocol.md` §7.2, and names the
/// member unless it is a `bad_payload` of the whole plaintext.
fn assert_message_error(what: &str, e: &MessageError) {
    assert!(
        ["bad_payload", "too_long", "too_many", "out_of_range"].contains(&e.code),
        "{what}: undocumented code {e:?}"
    );
    assert!(
        e.code == "bad_payload" || !e.field.is_empty(),
        "{what}: {} without a field",
        e.code
    );
}

/// A JSON plaintext of types `0x02`–`0x06` → every decoder: `CheckIn`, `CheckInAck`, `Fetch`,
/// `Work`, `ReEnrol`. What decodes is within the limits of §7.2, and re-encodes to bytes that
/// decode to the same value (for `Work` only to the same number of items: its `data` is any
/// JSON, whose floats need not survive a round trip exactly); encoding is stable.
pub fn messages(data: &[u8]) {
    match CheckIn::decode(data) {
        Ok(c) => {
            assert_eq!(c.check(), Ok(()), "decoded check-in fails its own check");
            assert!(c.supplies.as_ref().map_or(0, Vec::len) <= MAX_SUPPLIES);
            assert!(c.events.len() <= MAX_EVENTS && c.settings.len() <= MAX_SETTINGS);
            assert!(c
                .supplies
                .iter()
                .flatten()
                .all(|s| s.level_percent.is_none_or(|l| l <= 100)));
            let bytes = c.encode();
            let again = CheckIn::decode(&bytes);
            assert_eq!(again.as_ref(), Ok(&c), "check-in round trip");
            assert_eq!(again.map(|x| x.encode()), Ok(bytes), "check-in encoding");
        }
        Err(e) => assert_message_error("check_in", &e),
    }
    match CheckInAck::decode(data) {
        Ok(a) => assert_eq!(CheckInAck::decode(&a.encode()), Ok(a), "ack round trip"),
        Err(e) => assert_message_error("check_in_ack", &e),
    }
    match Fetch::decode(data) {
        Ok(f) => {
            assert!(f.wait_ms <= MAX_WAIT_MS && f.acks.len() <= MAX_WORK_ITEMS);
            assert_eq!(Fetch::decode(&f.encode()), Ok(f), "fetch round trip");
        }
        Err(e) => assert_message_error("fetch", &e),
    }
    match Work::decode(data) {
        Ok(w) => {
            assert!(w.items.len() <= MAX_WORK_ITEMS);
            let again = Work::decode(&w.encode());
            assert_eq!(
                again.map(|x| x.items.len()),
                Ok(w.items.len()),
                "work round trip"
            );
        }
        Err(e) => assert_message_error("work", &e),
    }
    match ReEnrol::decode(data) {
        Ok(r) => assert_eq!(ReEnrol::decode(&r.encode()), Ok(r), "re_enrol round trip"),
        Err(e) => assert_message_error("re_enrol", &e),
    }
}
