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
pub const TARGETS: [(&str, Harness); 7] = [
    ("sealed_open", sealed_open),
    ("heartbeat_request", heartbeat_request),
    ("heartbeat_answer", heartbeat_answer),
    ("window_restore", window_restore),
    ("sealed_to_device", sealed_to_device),
    ("messages", messages),
    ("session_open", session_open),
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

/// The session of `docs/protocol-vectors.json` (`sessions.opening`): the server opens the
/// vector's opening body and exports the same keys as the vector, so its valid bodies (the seed
/// corpus) reach the AEAD.
fn session_keys() -> &'static printfleet_protocol::session::SessionKeys {
    static KEYS: OnceLock<printfleet_protocol::session::SessionKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let k = sealed_keys();
        let body: Vec<u8> = (0..OPENING_HEX.len() / 2)
            .filter_map(|i| OPENING_HEX.get(2 * i..2 * i + 2))
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        match printfleet_protocol::sealed::open_opening(
            &k.server.private,
            &k.printer.public,
            &body,
            &OpenLimits::new(NOW_MS),
            &mut ReplayCache::new(1),
        ) {
            Ok((_, _, keys)) => keys,
            Err(e) => panic!("the vectors' opening body does not open: {e:?}"),
        }
    })
}

/// `sessions.opening.body_hex` of `docs/protocol-vectors.json`.
const OPENING_HEX: &str = "50465301010282a1f42751f39e2995f414fae78a4e410000019b76daa800d0d1d2d3d4d5d6d7d8d9dadbdcdddedf9dacb93b9b11679b05ff3e4e99cfddd584fe8b37c91d3c2983e5dd6d7f326d5d95a90ad89fb05930cbd2414677128838b9dd343939a4777b01cfbfd3d80748509264eb83206ffefb663ccfe1f050bdb2855d349526f7b8c208742d5549ed124459868415796c003e678a30c768e8061bf5a72b9db88d339852e03a7153139e18b571d87113e478ee76b9330878ba0f5f596f76b4a345a6c5ced532fc529eccd621287456f595130980c8c1822bd6127de5304775bb41493f60375e43cc35492ca1e2a6c7441a0c32c8c5daefc519c23383a2405c6e1992fcad8b6c916c34c4fb9ea4db75d874387be1d3d4458ba89035af8897300d586e28da1fdf756bec8ee3da4771c6e7de99b45d55acf97a102fb103e0bcb59f66870c1c83d342147ed22e89b43c34ad59f288d7ec612b163e9304f9b23d72c2845e1a6996a45f22ef35da40f0fc42e1e2f52008bf2251bba265dc8221511679315cbfd3f217f69955597bb220579d24b60f97497f3879659fd7c102c6699ead6f50f6dfc3d2f292b4e2b0f79136eb01047c130d9f96c68e8e019c692b2d846d209b61590f36d15967dd2604b38c77592657c313a0f99227db5d0c566fc64cc84f9d98dd7513a44c2f3a75a59afd76f8f2720bb029ca5d0cf34d103da4073501d68650cc836bcf60d4f0222287f22e668e808174d676c48d43fe13f890062690f5994d685a616442ebd2b55394c56a01d6943a7f30609c19bbf2b0a657a6aba621e26837dd539ab2f4ffbdaf3213cf1bd5e90ce16d331a166c1bce7096bccd383dbdc2fda84748beb187dfbccc9add06e1363507312eeae69b5c687891f05b850097b6bedc187961305be79e7aa7a6d1184765ed5394b861aab09b4483c4848e8370a7c714887dad9ad340ee3b6a900496a2c984ea94a84e6ed1ccd0a58526e0f9a3a4105e8a78a050ceb56635f77ea3cbc88d6cbbc9a2d1d8e8f969f05e40d9383370cbce0d33ebaac6dfe49a330009fd84dd40e4a87ef5c8f60c72108aee0b87fdf5a0d578299efa329d5464a705a895411ae599b6957804bde36d2d029b162bdcca8444196c66bfd77ca6e50cd31c53760023c433a96f4e0951f59ed076eeac7bd994db1818dca314a664f23dfee029d7fb893ade24f9639878b2fa3d66e1cfb4da5c025d5a4379f323651227a0fdced4f8f69096f05d1c8b37c959d475f0a984496ae22d13783b71c341f982e22837d18a5d5a98327024c1bf0b5fd5a60738bbd44fa26995b427ab3d2adfc7c126e0d50f40bf5a2ec68bfece0b8bb05f6d631d8a2ae47af5fbb97ca2a2c848f671b8fc724471a693bf7f7afc1a3aff4e2850dc01cda002ce2824f9a522ca1ebac4c2b94ce2c4a9a839ce128e4c973fe7ad560b958f46cebfed8a896f19dd580e3ee8453d78e6f7e52c0cf827ee3de432fae4746e67dd5f7588eda9578cd549c6d2958976d834de6644008f0a6ca8e2cd121e5bb9eefe337b32cc1e3e1221021ec26e911099cf8af560ad0177bf";

/// Session body → `SessionHeader::parse` under several limits, then `open_in_session` in both
/// directions at the vectors' time and at the ends of the clock. An opened body must seal back
/// to exactly the same bytes (same keys, seq, header), its seq is accepted once by a window,
/// and its plaintext goes to the decoder of its type.
pub fn session_open(data: &[u8]) {
    use printfleet_protocol::session::{
        self, Direction, SeqWindow, SessionHeader, SESSION_HEADER_LEN,
    };
    let keys = session_keys();
    for max in [0, 5, SESSION_HEADER_LEN, MAX_BODY_LEN - 1, usize::MAX] {
        let _ = SessionHeader::parse(data, max);
    }
    let parsed = SessionHeader::parse(data, MAX_BODY_LEN);
    if let Ok(h) = &parsed {
        assert_eq!(
            Some(&h.encode()[..]),
            data.get(..SESSION_HEADER_LEN),
            "session header round trip"
        );
    }
    assert!(
        parsed.is_err() || session::is_session_body(data),
        "a parsed session header is not a session body"
    );
    for now in [NOW_MS + 30_000, NOW_MS, 0, u64::MAX] {
        let limits = OpenLimits::new(now);
        for dir in [Direction::Up, Direction::Down] {
            match session::open_in_session(keys, dir, data, &limits) {
                Ok((h, plaintext)) => {
                    assert_eq!(Ok(h), parsed, "opened header != parsed header");
                    let again = session::seal_in_session(keys, dir, &h, &plaintext);
                    assert_eq!(again.as_deref(), Ok(data), "reseal differs");
                    // Seq 0 and seqs beyond the limit authenticate but the window refuses them
                    // (check 11 is the receiver's window, after opening).
                    let mut window = SeqWindow::default();
                    let usable = h.seq != 0 && h.seq <= session::MAX_SESSION_SEQ;
                    assert_eq!(window.accept(h.seq), usable, "window on a fresh seq");
                    assert!(!window.accept(h.seq), "a seq accepted twice");
                    decode_plaintext(h.message_type, &plaintext);
                }
                Err(e) => {
                    assert!(!e.code().is_empty());
                    if let Err(pe) = &parsed {
                        assert_eq!(&e, pe, "open and parse disagree");
                    }
                }
            }
        }
    }
}
