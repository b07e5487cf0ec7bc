//! Regenerates `docs/protocol-vectors.json` from fixed keys and inputs and checks it equals the
//! committed file byte for byte, so any change to the wire format is noticed. After an
//! intended format change: `PRINTFLEET_UPDATE_VECTORS=1 cargo test -p printfleet-protocol
//! --test vectors`, review the diff, then run `tools/check_protocol_vectors.py`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use printfleet_protocol::header::{ENC_LEN, HEADER_LEN};
use printfleet_protocol::heartbeat::{
    self, derive_heartbeat_key, Answer, AnswerType, HeartbeatKeys, ReplayWindow, Request,
    RequestType,
};
use printfleet_protocol::keys::KEY_ID_LABEL;
use printfleet_protocol::messages::{
    message_id_hex, AckStatus, Capabilities, CheckIn, CheckInAck, DeviceInfo, Event, EventKind,
    Fetch, MessageError, Meters, Outcome, ReEnrol, ReportedValue, Supply, SupplyKind, SupplyState,
    Work, WorkAck, WorkItem,
};
use printfleet_protocol::sealed::{DEFAULT_MAX_SKEW_MS, INFO};
use printfleet_protocol::{
    open, seal, Header, KeyPair, MessageId, MessageType, OpenError, OpenLimits, ReplayCache,
    SealedToDevice, MAX_BODY_LEN,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

#[path = "vectors/policy.rs"]
mod policy;
#[path = "vectors/sessions.rs"]
mod sessions;

const TS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn seq(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

#[derive(Serialize)]
struct Vectors {
    description: &'static str,
    sealed: Sealed,
    heartbeat: Heartbeat,
    messages: Messages,
    policy: policy::Policy,
    sessions: sessions::Sessions,
}

#[derive(Serialize)]
struct Suite {
    id: u8,
    hpke_mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
}

#[derive(Serialize)]
struct Sealed {
    suite: Suite,
    info_hex: String,
    key_id_label_hex: String,
    max_skew_ms: u64,
    max_body_len: usize,
    keys: Keys,
    valid: Vec<ValidBody>,
    invalid: Vec<InvalidBody>,
}

#[derive(Serialize)]
struct Keys {
    server: KeyVector,
    printer: KeyVector,
}

#[derive(Serialize)]
struct KeyVector {
    ikm_hex: String,
    private_key_hex: String,
    public_key_hex: String,
    key_id_hex: String,
}

#[derive(Serialize)]
struct HeaderVector {
    magic_hex: String,
    version: u8,
    suite: u8,
    message_type: u8,
    sender_key_id_hex: String,
    recipient_key_id_hex: String,
    timestamp_ms: u64,
    message_id_hex: String,
}

#[derive(Serialize)]
struct PayloadVector {
    purpose: String,
    content_hex: String,
}

#[derive(Serialize)]
struct ValidBody {
    name: &'static str,
    sender: &'static str,
    recipient: &'static str,
    rng_seed_hex: String,
    header: HeaderVector,
    header_hex: String,
    payload: PayloadVector,
    plaintext_hex: String,
    enc_hex: String,
    ciphertext_hex: String,
    body_hex: String,
    now_ms: u64,
}

#[derive(Serialize)]
struct InvalidBody {
    name: &'static str,
    sender: &'static str,
    recipient: &'static str,
    body_hex: String,
    now_ms: u64,
    /// Open the body once successfully first, then again: the second open fails.
    open_twice: bool,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct Heartbeat {
    enrolment_secret_hex: String,
    printer_id_hex: String,
    salt_hex: String,
    heartbeat_key_info_hex: String,
    heartbeat_key_hex: String,
    up_key_info_hex: String,
    up_key_hex: String,
    down_key_info_hex: String,
    down_key_hex: String,
    key_id_info_hex: String,
    key_id_hex: String,
    exchanges: Vec<Exchange>,
    invalid_requests: Vec<InvalidDatagram>,
    window: WindowVector,
}

#[derive(Serialize)]
struct Exchange {
    counter: u64,
    request_type: u8,
    request_flags: u8,
    request_hex: String,
    answer_type: u8,
    answer_flags: u8,
    answer_hex: String,
}

#[derive(Serialize)]
struct InvalidDatagram {
    name: &'static str,
    datagram_hex: String,
    /// Open the datagram once successfully first (fresh window), then again.
    open_twice: bool,
    expected_error: &'static str,
}

#[derive(Serialize)]
struct WindowStep {
    counter: u64,
    expected: &'static str,
}

#[derive(Serialize)]
struct WindowVector {
    steps: Vec<WindowStep>,
    final_state_hex: String,
}

fn key_vector(ikm: &[u8; 32]) -> (KeyPair, KeyVector) {
    let kp = KeyPair::derive(ikm);
    let v = KeyVector {
        ikm_hex: hex::encode(ikm),
        private_key_hex: hex::encode(*kp.private.to_bytes()),
        public_key_hex: hex::encode(kp.public.to_bytes()),
        key_id_hex: hex::encode(kp.key_id().0),
    };
    (kp, v)
}

fn valid_body(
    name: &'static str,
    server: &KeyPair,
    printer: &KeyPair,
    seed: [u8; 32],
    message_id: [u8; 16],
    payload: &SealedToDevice,
) -> ValidBody {
    let header = Header {
        message_type: MessageType::SealedToDevice,
        sender_key_id: server.key_id(),
        recipient_key_id: printer.key_id(),
        timestamp_ms: TS,
        message_id: MessageId(message_id),
    };
    let plaintext = payload.encode().unwrap();
    let mut rng = ChaCha20Rng::from_seed(seed);
    let body = seal(
        &printer.public,
        &server.private,
        &server.public,
        &header,
        &plaintext,
        &mut rng,
    )
    .unwrap()
    .into_bytes();
    // The vector must open with this crate, and yield the payload.
    let (h, p) = open(
        &printer.private,
        &server.public,
        &body,
        &OpenLimits::new(TS),
        &mut ReplayCache::new(4),
    )
    .unwrap();
    assert_eq!(
        (h, SealedToDevice::decode(&p).unwrap()),
        (header, payload.clone())
    );
    let b = header.encode();
    ValidBody {
        name,
        sender: "server",
        recipient: "printer",
        rng_seed_hex: hex::encode(seed),
        header: HeaderVector {
            magic_hex: hex::encode(&b[0..3]),
            version: b[3],
            suite: b[4],
            message_type: b[5],
            sender_key_id_hex: hex::encode(header.sender_key_id.0),
            recipient_key_id_hex: hex::encode(header.recipient_key_id.0),
            timestamp_ms: header.timestamp_ms,
            message_id_hex: hex::encode(header.message_id.0),
        },
        header_hex: hex::encode(b),
        payload: PayloadVector {
            purpose: payload.purpose.clone(),
            content_hex: hex::encode(&payload.content),
        },
        plaintext_hex: hex::encode(&plaintext),
        enc_hex: hex::encode(&body[HEADER_LEN..HEADER_LEN + ENC_LEN]),
        ciphertext_hex: hex::encode(&body[HEADER_LEN + ENC_LEN..]),
        body_hex: hex::encode(&body),
        now_ms: TS,
    }
}

/// name, sender, recipient, body, now_ms, open twice, expected error.
type BodyCase = (
    &'static str,
    &'static str,
    &'static str,
    Vec<u8>,
    u64,
    bool,
    OpenError,
);

fn invalid_bodies(body: &[u8], server: &KeyPair, printer: &KeyPair) -> Vec<InvalidBody> {
    let changed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = body.to_vec();
        f(&mut b);
        b
    };
    let last = body.len() - 1;
    let skew = DEFAULT_MAX_SKEW_MS;
    let c = |name, b: Vec<u8>, err| -> BodyCase { (name, "server", "printer", b, TS, false, err) };
    let cases: Vec<BodyCase> = vec![
        c(
            "truncated_to_4_bytes",
            body[..4].to_vec(),
            OpenError::Truncated,
        ),
        c(
            "truncated_below_minimum",
            body[..93].to_vec(),
            OpenError::Truncated,
        ),
        c(
            "truncated_ciphertext",
            body[..last].to_vec(),
            OpenError::Tampered,
        ),
        c("bad_magic", changed(&|b| b[0] = b'X'), OpenError::BadMagic),
        c("bad_version", changed(&|b| b[3] = 2), OpenError::BadVersion),
        c(
            "unknown_suite",
            changed(&|b| b[4] = 2),
            OpenError::UnknownSuite,
        ),
        c(
            "unknown_type",
            changed(&|b| b[5] = 0xff),
            OpenError::UnknownType,
        ),
        (
            "wrong_recipient",
            "server",
            "server",
            body.to_vec(),
            TS,
            false,
            OpenError::WrongRecipient,
        ),
        (
            "wrong_sender",
            "printer",
            "printer",
            body.to_vec(),
            TS,
            false,
            OpenError::WrongSender,
        ),
        (
            "stale_past",
            "server",
            "printer",
            body.to_vec(),
            TS + skew + 1,
            false,
            OpenError::Stale,
        ),
        (
            "stale_future",
            "server",
            "printer",
            body.to_vec(),
            TS - skew - 1,
            false,
            OpenError::Stale,
        ),
        c(
            "tampered_timestamp",
            changed(&|b| b[29] ^= 1),
            OpenError::Tampered,
        ),
        c(
            "tampered_message_id",
            changed(&|b| b[30] ^= 0x80),
            OpenError::Tampered,
        ),
        c(
            "tampered_enc",
            changed(&|b| b[HEADER_LEN] ^= 1),
            OpenError::Tampered,
        ),
        c(
            "tampered_tag",
            changed(&|b| b[last] ^= 1),
            OpenError::Tampered,
        ),
        (
            "replayed",
            "server",
            "printer",
            body.to_vec(),
            TS,
            true,
            OpenError::Replayed,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, sender, recipient, b, now, twice, err)| {
            let key = |who: &str| if who == "server" { server } else { printer };
            let mut cache = ReplayCache::new(4);
            let limits = OpenLimits::new(now);
            let mut r = open(
                &key(recipient).private,
                &key(sender).public,
                &b,
                &limits,
                &mut cache,
            );
            if twice {
                assert!(r.is_ok(), "{name}: first open");
                r = open(
                    &key(recipient).private,
                    &key(sender).public,
                    &b,
                    &limits,
                    &mut cache,
                );
            }
            assert_eq!(r.map(|_| ()), Err(err), "{name}");
            InvalidBody {
                name,
                sender,
                recipient,
                body_hex: hex::encode(&b),
                now_ms: now,
                open_twice: twice,
                expected_error: err.code(),
            }
        })
        .collect()
}

fn sealed_vectors() -> Sealed {
    let (server, server_v) = key_vector(&seq(0x00));
    let (printer, printer_v) = key_vector(&seq(0x20));
    let wifi = SealedToDevice {
        purpose: "wifi.psk".into(),
        content: b"correct horse battery staple".to_vec(),
    };
    let empty = SealedToDevice {
        purpose: "test.empty".into(),
        content: Vec::new(),
    };
    let valid = vec![
        valid_body(
            "sealed_to_device_wifi",
            &server,
            &printer,
            seq(0x40),
            std::array::from_fn(|i| i as u8),
            &wifi,
        ),
        valid_body(
            "sealed_to_device_empty_content",
            &server,
            &printer,
            seq(0x60),
            std::array::from_fn(|i| 0x10 + i as u8),
            &empty,
        ),
    ];
    let first = hex::decode(&valid[0].body_hex).unwrap();
    Sealed {
        suite: Suite {
            id: 1,
            hpke_mode: 2,
            kem_id: 0x0020,
            kdf_id: 0x0001,
            aead_id: 0x0003,
        },
        info_hex: hex::encode(INFO),
        key_id_label_hex: hex::encode(KEY_ID_LABEL),
        max_skew_ms: DEFAULT_MAX_SKEW_MS,
        max_body_len: MAX_BODY_LEN,
        keys: Keys {
            server: server_v,
            printer: printer_v,
        },
        invalid: invalid_bodies(&first, &server, &printer),
        valid,
    }
}

fn exchange(
    k: &HeartbeatKeys,
    window: &mut ReplayWindow,
    counter: u64,
    req: Request,
    ans: Answer,
) -> Exchange {
    let request = heartbeat::seal_request(k, counter, req).unwrap();
    let accepted = heartbeat::open_request(k, &request, window).unwrap();
    let answer = heartbeat::seal_answer(k, accepted, ans).unwrap();
    assert!(answer.len() <= request.len());
    assert_eq!(heartbeat::open_answer(k, counter, &answer), Ok(ans));
    Exchange {
        counter,
        request_type: req.kind as u8,
        request_flags: req.flags,
        request_hex: hex::encode(&request),
        answer_type: ans.kind as u8,
        answer_flags: ans.flags,
        answer_hex: hex::encode(&answer),
    }
}

fn heartbeat_vectors() -> Heartbeat {
    let secret = seq(0x80);
    let printer_id: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    let key = derive_heartbeat_key(&secret, &printer_id);
    let k = key.keys();
    let (up, down) = key.direction_key_bytes();
    let hb = Request {
        kind: RequestType::Heartbeat,
        flags: 0,
    };
    let ka = Request {
        kind: RequestType::Keepalive,
        flags: 0,
    };
    let fetch = Answer {
        kind: AnswerType::ComeFetch,
        flags: 0,
    };
    let nothing = Answer {
        kind: AnswerType::Nothing,
        flags: 0,
    };
    let mut window = ReplayWindow::new();
    let exchanges = vec![
        exchange(&k, &mut window, 1, hb, fetch),
        exchange(&k, &mut window, 2, ka, nothing),
        exchange(&k, &mut window, 0x0102_0304_0506_0708, hb, nothing),
    ];
    let req = hex::decode(&exchanges[0].request_hex).unwrap();
    let ans = hex::decode(&exchanges[0].answer_hex).unwrap();
    let changed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = req.clone();
        f(&mut b);
        b
    };
    let other = derive_heartbeat_key(&secret, &[0u8; 16]).keys();
    let cases: Vec<(&'static str, Vec<u8>, bool)> = vec![
        ("empty", Vec::new(), false),
        ("bad_version", changed(&|b| b[0] = 2), false),
        ("short", req[..34].to_vec(), false),
        ("long", changed(&|b| b.push(0)), false),
        ("counter_zero", changed(&|b| b[9..17].fill(0)), false),
        (
            "wrong_key_id",
            changed(&|b| b[1..9].copy_from_slice(&other.key_id().0)),
            false,
        ),
        ("tampered_counter", changed(&|b| b[16] ^= 2), false),
        ("tampered_tag", changed(&|b| b[34] ^= 1), false),
        ("reflected_answer", ans.clone(), false),
        ("replayed", req.clone(), true),
    ];
    let invalid_requests = cases
        .into_iter()
        .map(|(name, d, twice)| {
            let mut w = ReplayWindow::new();
            let mut r = heartbeat::open_request(&k, &d, &mut w).map(|_| ());
            if twice {
                assert!(r.is_ok());
                r = heartbeat::open_request(&k, &d, &mut w).map(|_| ());
            }
            let err = r.unwrap_err();
            InvalidDatagram {
                name,
                datagram_hex: hex::encode(&d),
                open_twice: twice,
                expected_error: err.code(),
            }
        })
        .collect();
    let mut w = ReplayWindow::new();
    let steps = [
        5u64, 3, 5, 1028, 4, 6, 1029, 10_000, 8_977, 8_976, 8_977, 0, 20_000,
    ]
    .into_iter()
    .map(|c| WindowStep {
        counter: c,
        expected: w.accept(c).map_or_else(|e| e.code(), |()| "accepted"),
    })
    .collect();
    Heartbeat {
        enrolment_secret_hex: hex::encode(secret),
        printer_id_hex: hex::encode(printer_id),
        salt_hex: hex::encode(heartbeat::HEARTBEAT_SALT),
        heartbeat_key_info_hex: hex::encode(heartbeat::HEARTBEAT_KEY_INFO),
        heartbeat_key_hex: hex::encode(*key.to_bytes()),
        up_key_info_hex: hex::encode(heartbeat::UP_KEY_INFO),
        up_key_hex: hex::encode(*up),
        down_key_info_hex: hex::encode(heartbeat::DOWN_KEY_INFO),
        down_key_hex: hex::encode(*down),
        key_id_info_hex: hex::encode(heartbeat::KEY_ID_INFO),
        key_id_hex: hex::encode(k.key_id().0),
        exchanges,
        invalid_requests,
        window: WindowVector {
            steps,
            final_state_hex: hex::encode(w.to_bytes()),
        },
    }
}

#[derive(Serialize)]
struct Messages {
    /// The key pair a `re_enrol` proof moves the printer to.
    new_printer_key: KeyVector,
    valid: Vec<MessageVector>,
    invalid_payloads: Vec<InvalidPayload>,
}

#[derive(Serialize)]
struct MessageVector {
    name: &'static str,
    sender: &'static str,
    recipient: &'static str,
    rng_seed_hex: String,
    header: HeaderVector,
    header_hex: String,
    /// The plaintext as JSON (compare as JSON: member order and spacing are the encoder's).
    plaintext_json: serde_json::Value,
    plaintext_hex: String,
    enc_hex: String,
    ciphertext_hex: String,
    body_hex: String,
    now_ms: u64,
}

#[derive(Serialize)]
struct InvalidPayload {
    name: &'static str,
    message_type: u8,
    /// The plaintext as text, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<String>,
    plaintext_hex: String,
    expected_code: &'static str,
    expected_field: String,
}

/// Seals `plaintext` as a body of `message_type` from one vector key pair to the other, opens it
/// again with this crate and returns the vector.
#[allow(clippy::too_many_arguments)]
fn message_vector(
    name: &'static str,
    message_type: MessageType,
    (sender_name, sender): (&'static str, &KeyPair),
    (recipient_name, recipient): (&'static str, &KeyPair),
    seed: [u8; 32],
    message_id: [u8; 16],
    plaintext: &[u8],
) -> MessageVector {
    let header = Header {
        message_type,
        sender_key_id: sender.key_id(),
        recipient_key_id: recipient.key_id(),
        timestamp_ms: TS,
        message_id: MessageId(message_id),
    };
    let mut rng = ChaCha20Rng::from_seed(seed);
    let body = seal(
        &recipient.public,
        &sender.private,
        &sender.public,
        &header,
        plaintext,
        &mut rng,
    )
    .unwrap()
    .into_bytes();
    let (h, p) = open(
        &recipient.private,
        &sender.public,
        &body,
        &OpenLimits::new(TS),
        &mut ReplayCache::new(4),
    )
    .unwrap();
    assert_eq!((h, p.as_slice()), (header, plaintext), "{name}");
    let b = header.encode();
    MessageVector {
        name,
        sender: sender_name,
        recipient: recipient_name,
        rng_seed_hex: hex::encode(seed),
        header: HeaderVector {
            magic_hex: hex::encode(&b[0..3]),
            version: b[3],
            suite: b[4],
            message_type: b[5],
            sender_key_id_hex: hex::encode(header.sender_key_id.0),
            recipient_key_id_hex: hex::encode(header.recipient_key_id.0),
            timestamp_ms: header.timestamp_ms,
            message_id_hex: hex::encode(header.message_id.0),
        },
        header_hex: hex::encode(b),
        plaintext_json: serde_json::from_slice(plaintext).unwrap(),
        plaintext_hex: hex::encode(plaintext),
        enc_hex: hex::encode(&body[HEADER_LEN..HEADER_LEN + ENC_LEN]),
        ciphertext_hex: hex::encode(&body[HEADER_LEN + ENC_LEN..]),
        body_hex: hex::encode(&body),
        now_ms: TS,
    }
}

/// The printer id of the heartbeat vectors (`a0 a1 … af`) as the UUID string of the API.
const PRINTER_ID: &str = "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf";

/// A realistic report: device facts, meters, two supplies, a jam, and settings of every form
/// (bool, enum, integer, secret, certificate).
fn sample_check_in() -> CheckIn {
    CheckIn {
        seq: 42,
        taken_at_ms: TS - 2_000,
        info: Some(DeviceInfo {
            name: "Drucker 2. OG Süd".into(),
            model: "LaserJet M507".into(),
            serial: "CNB1234567".into(),
            firmware: "2506.1".into(),
            region: Some("DE".into()),
            language: Some("de".into()),
            capabilities: Capabilities {
                colour: false,
                duplex: true,
                scan: false,
                fax: false,
            },
        }),
        meters: Some(Meters {
            total_impressions: 48_213,
            mono_impressions: Some(48_213),
            simplex_sheets: Some(20_117),
            duplex_sheets: Some(14_048),
            jams: Some(37),
            ..Meters::default()
        }),
        supplies: Some(vec![
            Supply {
                id: "toner-black".into(),
                kind: SupplyKind::Toner,
                colour: Some("black".into()),
                level_percent: Some(12),
                capacity_pages: Some(9_000),
                pages: Some(7_920),
                part_number: Some("CF287A".into()),
                state: SupplyState::Low,
            },
            Supply {
                id: "fuser".into(),
                kind: SupplyKind::Fuser,
                colour: None,
                level_percent: Some(85),
                capacity_pages: Some(150_000),
                pages: Some(22_500),
                part_number: Some("RM2-1256".into()),
                state: SupplyState::Ok,
            },
        ]),
        events: vec![Event {
            at_ms: TS - 600_000,
            kind: EventKind::Jam,
            code: Some("13.B2.D1".into()),
            detail: Some("Jam in tray 2".into()),
        }],
        settings: [
            ("network.telnet.enabled", ReportedValue::Bool(false)),
            (
                "security.tls.min_version",
                ReportedValue::Text("1.2".into()),
            ),
            (
                "security.control_panel.inactivity_timeout",
                ReportedValue::Integer(60),
            ),
            ("security.ews.admin_password", ReportedValue::secret(true)),
            (
                "security.cert.id",
                ReportedValue::Certificate {
                    sha256: hex::encode(seq(0xe0)),
                    not_after_ms: 1_798_761_600_000, // 2027-01-01T00:00:00Z
                },
            ),
        ]
        .into_iter()
        .map(|(id, v)| (id.to_string(), v))
        .collect(),
    }
}

fn message_vectors() -> Messages {
    let server = KeyPair::derive(&seq(0x00));
    let printer = KeyPair::derive(&seq(0x20));
    let (new_key, new_key_v) = key_vector(&seq(0xc0));
    let ids: [[u8; 16]; 5] =
        std::array::from_fn(|n| std::array::from_fn(|i| 0x20 + 0x10 * n as u8 + i as u8));

    let check_in = sample_check_in();
    let ack = CheckInAck {
        reply_to: message_id_hex(&MessageId(ids[0])),
        seq: check_in.seq,
        status: AckStatus::Stored,
        code: None,
        field: None,
        message: None,
    };
    let fetch = Fetch {
        acks: vec![WorkAck {
            id: "3f2b8c1e-5d4a-4b6c-9e7f-0a1b2c3d4e5f".into(),
            outcome: Outcome::Done,
            reason: None,
            results: Default::default(),
        }],
        wait_ms: 25_000,
    };
    let work = Work {
        reply_to: message_id_hex(&MessageId(ids[2])),
        items: vec![WorkItem {
            id: "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b".into(),
            kind: "report_now".into(),
            data: serde_json::Value::Null,
        }],
    };
    let re_enrol = ReEnrol {
        printer_id: PRINTER_ID.into(),
        new_public_key: hex::encode(new_key.public.to_bytes()),
    };
    // Every plaintext decodes to what was encoded.
    assert_eq!(CheckIn::decode(&check_in.encode()), Ok(check_in.clone()));
    assert_eq!(CheckInAck::decode(&ack.encode()), Ok(ack.clone()));
    assert_eq!(Fetch::decode(&fetch.encode()), Ok(fetch.clone()));
    assert_eq!(Work::decode(&work.encode()), Ok(work.clone()));
    assert_eq!(ReEnrol::decode(&re_enrol.encode()), Ok(re_enrol.clone()));

    let p = ("printer", &printer);
    let s = ("server", &server);
    let valid = vec![
        message_vector(
            "check_in",
            MessageType::CheckIn,
            p,
            s,
            seq(0x11),
            ids[0],
            &check_in.encode(),
        ),
        message_vector(
            "check_in_ack",
            MessageType::CheckInAck,
            s,
            p,
            seq(0x12),
            ids[1],
            &ack.encode(),
        ),
        message_vector(
            "fetch",
            MessageType::Fetch,
            p,
            s,
            seq(0x13),
            ids[2],
            &fetch.encode(),
        ),
        message_vector(
            "work",
            MessageType::Work,
            s,
            p,
            seq(0x14),
            ids[3],
            &work.encode(),
        ),
        message_vector(
            "re_enrol",
            MessageType::ReEnrol,
            p,
            s,
            seq(0x15),
            ids[4],
            &re_enrol.encode(),
        ),
    ];
    Messages {
        new_printer_key: new_key_v,
        valid,
        invalid_payloads: invalid_payloads(&check_in),
    }
}

/// The decoder of a plaintext of `message_type`.
fn decode(message_type: MessageType, plaintext: &[u8]) -> Result<(), MessageError> {
    match message_type {
        MessageType::CheckIn => CheckIn::decode(plaintext).map(drop),
        MessageType::CheckInAck => CheckInAck::decode(plaintext).map(drop),
        MessageType::Fetch => Fetch::decode(plaintext).map(drop),
        MessageType::Work => Work::decode(plaintext).map(drop),
        MessageType::ReEnrol => ReEnrol::decode(plaintext).map(drop),
        MessageType::SealedToDevice => panic!("not a JSON plaintext"),
    }
}

/// Plaintexts the shape checks (docs/protocol.md §7.2) refuse, with the code and field.
fn invalid_payloads(sample: &CheckIn) -> Vec<InvalidPayload> {
    let changed = |f: &dyn Fn(&mut CheckIn)| {
        let mut c = sample.clone();
        f(&mut c);
        c.encode()
    };
    let supply = |n: usize| Supply {
        id: format!("staples-{n}"),
        kind: SupplyKind::Staples,
        colour: None,
        level_percent: None,
        capacity_pages: None,
        pages: None,
        part_number: None,
        state: SupplyState::Ok,
    };
    let ci = MessageType::CheckIn;
    // A check-in plaintext written by hand: seq 1, `taken_at_ms` then `extra` members.
    let raw_at = |taken_at_ms: &str, extra: &str| {
        format!(r#"{{"seq":1,"taken_at_ms":{taken_at_ms}{extra}}}"#).into_bytes()
    };
    let raw = |extra: &str| raw_at("1767225598000", extra);
    // The sample's encoding with one piece of text replaced.
    let edited = |from: &str, to: &str| {
        let text = String::from_utf8(sample.encode()).unwrap();
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1).into_bytes()
    };
    let re_enrol = |id: &str, key: &str| {
        format!(r#"{{"printer_id":"{id}","new_public_key":"{key}"}}"#).into_bytes()
    };
    let cases: Vec<(&'static str, MessageType, Vec<u8>, &'static str, &str)> = vec![
        (
            "supply_level_101",
            ci,
            changed(&|c| c.supplies.as_mut().unwrap()[1].level_percent = Some(101)),
            "out_of_range",
            "supplies[1].level_percent",
        ),
        (
            "part_number_65_characters",
            ci,
            changed(&|c| {
                c.supplies.as_mut().unwrap()[0].part_number = Some("C".repeat(65));
            }),
            "too_long",
            "supplies[0].part_number",
        ),
        (
            "name_201_characters_402_bytes",
            ci,
            changed(&|c| c.info.as_mut().unwrap().name = "ü".repeat(201)),
            "too_long",
            "info.name",
        ),
        (
            "33_supplies",
            ci,
            changed(&|c| c.supplies = Some((0..33).map(supply).collect())),
            "too_many",
            "supplies",
        ),
        (
            "repeated_supply_id",
            ci,
            changed(&|c| {
                let s = c.supplies.as_mut().unwrap();
                s[1].id = s[0].id.clone();
            }),
            "bad_payload",
            "supplies[1].id",
        ),
        (
            "control_character_in_event_detail",
            ci,
            changed(&|c| c.events[0].detail = Some("Jam\nin tray 2".into())),
            "bad_payload",
            "events[0].detail",
        ),
        (
            "certificate_sha256_not_hex",
            ci,
            changed(&|c| {
                c.settings.insert(
                    "security.cert.id".into(),
                    ReportedValue::Certificate {
                        sha256: "not a fingerprint".into(),
                        not_after_ms: 0,
                    },
                );
            }),
            "bad_payload",
            "settings.security.cert.id.sha256",
        ),
        (
            "negative_seq",
            ci,
            br#"{"seq":-1,"taken_at_ms":1767225598000}"#.to_vec(),
            "bad_payload",
            "seq",
        ),
        (
            "seq_missing",
            ci,
            br#"{"taken_at_ms":1767225598000}"#.to_vec(),
            "bad_payload",
            "seq",
        ),
        (
            "unknown_supply_kind",
            ci,
            br#"{"seq":1,"taken_at_ms":1767225598000,"supplies":[{"id":"x","kind":"Toner","state":"ok"}]}"#
                .to_vec(),
            "bad_payload",
            "supplies[0].kind",
        ),
        (
            "setting_value_fraction",
            ci,
            br#"{"seq":1,"taken_at_ms":1767225598000,"settings":{"security.control_panel.inactivity_timeout":60.5}}"#
                .to_vec(),
            "bad_payload",
            "settings.security.control_panel.inactivity_timeout",
        ),
        (
            "not_utf8",
            ci,
            b"{\"seq\":1,\"taken_at_ms\":\xff}".to_vec(),
            "bad_payload",
            "",
        ),
        (
            "fetch_wait_ms_25001",
            MessageType::Fetch,
            br#"{"wait_ms":25001}"#.to_vec(),
            "out_of_range",
            "wait_ms",
        ),
        (
            "fetch_33_acks",
            MessageType::Fetch,
            Fetch {
                acks: (0..33)
                    .map(|n| WorkAck {
                        id: format!("item-{n}"),
                        outcome: Outcome::Done,
                        reason: None,
                        results: Default::default(),
                    })
                    .collect(),
                wait_ms: 0,
            }
            .encode(),
            "too_many",
            "acks",
        ),
        (
            "work_33_items",
            MessageType::Work,
            Work {
                reply_to: "404142434445464748494a4b4c4d4e4f".into(),
                items: (0..33)
                    .map(|n| WorkItem {
                        id: format!("item-{n}"),
                        kind: "report_now".into(),
                        data: serde_json::Value::Null,
                    })
                    .collect(),
            }
            .encode(),
            "too_many",
            "items",
        ),
        (
            "check_in_ack_unknown_status",
            MessageType::CheckInAck,
            br#"{"reply_to":"202122232425262728292a2b2c2d2e2f","seq":42,"status":"lost"}"#.to_vec(),
            "bad_payload",
            "status",
        ),
        (
            "re_enrol_key_66_digits",
            MessageType::ReEnrol,
            re_enrol(PRINTER_ID, &"0".repeat(66)),
            "bad_payload",
            "new_public_key",
        ),
        (
            "re_enrol_key_63_digits",
            MessageType::ReEnrol,
            re_enrol(PRINTER_ID, &"0".repeat(63)),
            "bad_payload",
            "new_public_key",
        ),
        (
            "re_enrol_key_uppercase",
            MessageType::ReEnrol,
            re_enrol(PRINTER_ID, &"AB".repeat(32)),
            "bad_payload",
            "new_public_key",
        ),
        (
            "re_enrol_printer_id_uppercase",
            MessageType::ReEnrol,
            re_enrol(&PRINTER_ID.to_uppercase(), &"ab".repeat(32)),
            "bad_payload",
            "printer_id",
        ),
        (
            "re_enrol_printer_id_without_hyphens",
            MessageType::ReEnrol,
            re_enrol(&PRINTER_ID.replace('-', ""), &"ab".repeat(32)),
            "bad_payload",
            "printer_id",
        ),
        (
            "re_enrol_printer_id_braces",
            MessageType::ReEnrol,
            re_enrol(&format!("{{{}}}", &PRINTER_ID[..34]), &"ab".repeat(32)),
            "bad_payload",
            "printer_id",
        ),
        // The top level and every struct are JSON objects (serde would read lists as structs).
        (
            "top_level_list",
            ci,
            b"[42,1767225598000]".to_vec(),
            "bad_payload",
            "",
        ),
        (
            "top_level_string",
            MessageType::Fetch,
            br#""wait_ms""#.to_vec(),
            "bad_payload",
            "",
        ),
        (
            "supply_as_list",
            ci,
            raw(r#","supplies":[["toner-black","toner",null,12,9000,7920,"CF287A","low"]]"#),
            "bad_payload",
            "supplies[0]",
        ),
        (
            "capabilities_as_list",
            ci,
            raw(r#","info":{"name":"n","model":"m","serial":"s","firmware":"f","capabilities":[true,true,false,false]}"#),
            "bad_payload",
            "info.capabilities",
        ),
        (
            "setting_value_list",
            ci,
            raw(r#","settings":{"scan.email.smtp.password":[true]}"#),
            "bad_payload",
            "settings.scan.email.smtp.password",
        ),
        (
            "supply_kind_object",
            ci,
            raw(r#","supplies":[{"id":"x","kind":{"toner":null},"state":"ok"}]"#),
            "bad_payload",
            "supplies[0].kind",
        ),
        (
            "supply_state_missing",
            ci,
            raw(r#","supplies":[{"id":"x","kind":"toner"}]"#),
            "bad_payload",
            "supplies[0].state",
        ),
        (
            "supply_colour_null",
            ci,
            raw(r#","supplies":[{"id":"x","kind":"toner","colour":null,"state":"ok"}]"#),
            "bad_payload",
            "supplies[0].colour",
        ),
        (
            "work_item_data_null",
            MessageType::Work,
            br#"{"reply_to":"404142434445464748494a4b4c4d4e4f","items":[{"id":"1","kind":"report_now","data":null}]}"#.to_vec(),
            "bad_payload",
            "items[0].data",
        ),
        // Type errors name their path.
        (
            "supply_level_256",
            ci,
            edited(r#""kind":"fuser","level_percent":85"#, r#""kind":"fuser","level_percent":256"#),
            "bad_payload",
            "supplies[1].level_percent",
        ),
        (
            "supply_level_negative",
            ci,
            edited(r#""level_percent":12"#, r#""level_percent":-1"#),
            "bad_payload",
            "supplies[0].level_percent",
        ),
        (
            "capability_not_boolean",
            ci,
            edited(r#""duplex":true"#, r#""duplex":"yes""#),
            "bad_payload",
            "info.capabilities.duplex",
        ),
        (
            "meter_fraction",
            ci,
            edited(r#""jams":37"#, r#""jams":37.0"#),
            "bad_payload",
            "meters.jams",
        ),
        (
            "taken_at_ms_minus_zero",
            ci,
            raw_at("-0", ""),
            "bad_payload",
            "taken_at_ms",
        ),
        (
            "first_type_error_in_document_order",
            ci,
            br#"{"taken_at_ms":"now","seq":"first"}"#.to_vec(),
            "bad_payload",
            "taken_at_ms",
        ),
        (
            "check_in_ack_code_null",
            MessageType::CheckInAck,
            br#"{"reply_to":"202122232425262728292a2b2c2d2e2f","seq":0,"status":"refused","code":null}"#.to_vec(),
            "bad_payload",
            "code",
        ),
        // Syntax: the whole plaintext.
        (
            "byte_order_mark",
            ci,
            [&b"\xef\xbb\xbf"[..], &raw("")].concat(),
            "bad_payload",
            "",
        ),
        (
            "number_too_large_for_a_double",
            ci,
            raw(r#","future":1e400"#),
            "bad_payload",
            "",
        ),
        (
            "integer_too_large_for_a_double",
            ci,
            raw(&format!(r#","future":{}"#, "9".repeat(400))),
            "bad_payload",
            "",
        ),
        (
            "lone_surrogate",
            ci,
            raw(r#","future":"\ud800""#),
            "bad_payload",
            "",
        ),
        (
            "nesting_128_levels",
            ci,
            raw(&format!(r#","future":{}1{}"#, "[".repeat(127), "]".repeat(127))),
            "bad_payload",
            "",
        ),
        // Repeated member names, in any object.
        (
            "repeated_setting_id",
            ci,
            raw(r#","settings":{"network.telnet.enabled":false,"copier.color.access":"enabled","network.telnet.enabled":true}"#),
            "bad_payload",
            "settings.network.telnet.enabled",
        ),
        (
            "repeated_seq",
            ci,
            br#"{"seq":2,"taken_at_ms":1767225598000,"seq":1}"#.to_vec(),
            "bad_payload",
            "seq",
        ),
        (
            "repeated_name_in_unknown_member",
            ci,
            raw(r#","future":[{"a":1,"a":1}]"#),
            "bad_payload",
            "future[0].a",
        ),
        // Counters and times: at most 2^53 - 1; seq at least 1.
        (
            "seq_zero",
            ci,
            edited(r#""seq":42"#, r#""seq":0"#),
            "out_of_range",
            "seq",
        ),
        (
            "seq_2_pow_53",
            ci,
            edited(r#""seq":42"#, r#""seq":9007199254740992"#),
            "out_of_range",
            "seq",
        ),
        (
            "taken_at_ms_2_pow_53",
            ci,
            raw_at("9007199254740992", ""),
            "out_of_range",
            "taken_at_ms",
        ),
        (
            "meter_2_pow_53",
            ci,
            edited(r#""jams":37"#, r#""jams":9007199254740992"#),
            "out_of_range",
            "meters.jams",
        ),
        (
            "supply_pages_2_pow_53",
            ci,
            edited(r#""pages":22500"#, r#""pages":9007199254740992"#),
            "out_of_range",
            "supplies[1].pages",
        ),
        (
            "supply_capacity_u64_max",
            ci,
            edited(r#""capacity_pages":9000"#, r#""capacity_pages":18446744073709551615"#),
            "out_of_range",
            "supplies[0].capacity_pages",
        ),
        (
            "event_at_ms_2_pow_53",
            ci,
            changed(&|c| c.events[0].at_ms = 1 << 53),
            "out_of_range",
            "events[0].at_ms",
        ),
        (
            "certificate_not_after_2_pow_53",
            ci,
            changed(&|c| {
                c.settings.insert(
                    "security.cert.id".into(),
                    ReportedValue::Certificate {
                        sha256: "ab".repeat(32),
                        not_after_ms: 1 << 53,
                    },
                );
            }),
            "out_of_range",
            "settings.security.cert.id.not_after_ms",
        ),
        // Identifiers are not empty; setting ids and string values follow the catalogue.
        (
            "empty_supply_id",
            ci,
            edited(r#""id":"toner-black""#, r#""id":"""#),
            "bad_payload",
            "supplies[0].id",
        ),
        (
            "empty_serial",
            ci,
            changed(&|c| c.info.as_mut().unwrap().serial.clear()),
            "bad_payload",
            "info.serial",
        ),
        (
            "empty_setting_id",
            ci,
            raw(r#","settings":{"":true}"#),
            "bad_payload",
            "settings",
        ),
        (
            "setting_id_129_characters",
            ci,
            raw(&format!(r#","settings":{{"{}":true}}"#, "x".repeat(129))),
            "too_long",
            "settings",
        ),
        (
            "setting_text_256_characters",
            ci,
            changed(&|c| {
                c.settings.insert(
                    "security.tls.min_version".into(),
                    ReportedValue::Text("ü".repeat(256)),
                );
            }),
            "too_long",
            "settings.security.tls.min_version",
        ),
        (
            "certificate_sha256_uppercase",
            ci,
            changed(&|c| {
                c.settings.insert(
                    "security.cert.id".into(),
                    ReportedValue::Certificate {
                        sha256: "AB".repeat(32),
                        not_after_ms: 1,
                    },
                );
            }),
            "bad_payload",
            "settings.security.cert.id.sha256",
        ),
        (
            "fetch_empty_ack_id",
            MessageType::Fetch,
            br#"{"acks":[{"id":"","outcome":"done"}]}"#.to_vec(),
            "bad_payload",
            "acks[0].id",
        ),
        (
            "work_item_empty_kind",
            MessageType::Work,
            br#"{"reply_to":"404142434445464748494a4b4c4d4e4f","items":[{"id":"1","kind":""}]}"#.to_vec(),
            "bad_payload",
            "items[0].kind",
        ),
        (
            "work_item_id_65_characters",
            MessageType::Work,
            format!(
                r#"{{"reply_to":"404142434445464748494a4b4c4d4e4f","items":[{{"id":"{}","kind":"report_now"}}]}}"#,
                "7".repeat(65)
            )
            .into_bytes(),
            "too_long",
            "items[0].id",
        ),
        (
            "work_item_kind_control_character",
            MessageType::Work,
            br#"{"reply_to":"404142434445464748494a4b4c4d4e4f","items":[{"id":"1","kind":"report_now\u0007"}]}"#.to_vec(),
            "bad_payload",
            "items[0].kind",
        ),
        // Secret verifiers (§7.3): 64 lowercase hex digits, only with "set": true.
        (
            "secret_verifier_with_set_false",
            ci,
            raw(&format!(r#","settings":{{"security.ews.admin_password":{{"set":false,"verifier":"{}"}}}}"#, "ab".repeat(32))),
            "bad_payload",
            "settings.security.ews.admin_password.verifier",
        ),
        (
            "secret_verifier_63_digits",
            ci,
            raw(&format!(r#","settings":{{"security.ews.admin_password":{{"set":true,"verifier":"{}"}}}}"#, "a".repeat(63))),
            "bad_payload",
            "settings.security.ews.admin_password.verifier",
        ),
        (
            "secret_verifier_uppercase",
            ci,
            raw(&format!(r#","settings":{{"security.ews.admin_password":{{"set":true,"verifier":"{}"}}}}"#, "AB".repeat(32))),
            "bad_payload",
            "settings.security.ews.admin_password.verifier",
        ),
        (
            "secret_verifier_not_a_string",
            ci,
            raw(r#","settings":{"security.ews.admin_password":{"set":true,"verifier":7,"sha256":"x","not_after_ms":1}}"#),
            "bad_payload",
            "settings.security.ews.admin_password",
        ),
        // Per-setting results of an acknowledgement (§7.4).
        (
            "fetch_result_outcome_done",
            MessageType::Fetch,
            br#"{"acks":[{"id":"1","outcome":"failed","results":{"a.b":{"outcome":"done","reason":""}}}]}"#.to_vec(),
            "bad_payload",
            "acks[0].results.a.b.outcome",
        ),
        (
            "fetch_result_reason_missing",
            MessageType::Fetch,
            br#"{"acks":[{"id":"1","outcome":"failed","results":{"a.b":{"outcome":"failed"}}}]}"#.to_vec(),
            "bad_payload",
            "acks[0].results.a.b.reason",
        ),
        (
            "fetch_result_reason_201_characters",
            MessageType::Fetch,
            format!(r#"{{"acks":[{{"id":"1","outcome":"failed","results":{{"a.b":{{"outcome":"failed","reason":"{}"}}}}}}]}}"#, "x".repeat(201)).into_bytes(),
            "too_long",
            "acks[0].results.a.b.reason",
        ),
        (
            "fetch_257_results",
            MessageType::Fetch,
            format!(
                r#"{{"acks":[{{"id":"1","outcome":"failed","results":{{{}}}}}]}}"#,
                (0..257).map(|n| format!(r#""s{n}":{{"outcome":"failed","reason":""}}"#)).collect::<Vec<_>>().join(",")
            )
            .into_bytes(),
            "too_many",
            "acks[0].results",
        ),
        (
            "fetch_results_with_outcome_done",
            MessageType::Fetch,
            br#"{"acks":[{"id":"1","outcome":"done","results":{"a.b":{"outcome":"refused","reason":"unsupported"}}}]}"#.to_vec(),
            "bad_payload",
            "acks[0].results",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, message_type, plaintext, code, field)| {
            let e = decode(message_type, &plaintext).unwrap_err();
            assert_eq!((e.code, e.field.as_str()), (code, field), "{name}");
            InvalidPayload {
                name,
                message_type: message_type as u8,
                plaintext: String::from_utf8(plaintext.clone()).ok(),
                plaintext_hex: hex::encode(&plaintext),
                expected_code: e.code,
                expected_field: e.field,
            }
        })
        .collect()
}

fn vectors_json() -> String {
    let v = Vectors {
        description: "Printfleet device protocol test vectors (docs/protocol.md). Generated by \
                      crates/protocol/tests/vectors.rs from fixed keys and inputs; checked \
                      independently by tools/check_protocol_vectors.py. Hex is lowercase.",
        sealed: sealed_vectors(),
        heartbeat: heartbeat_vectors(),
        messages: message_vectors(),
        policy: policy::policy_vectors(),
        sessions: sessions::session_vectors(),
    };
    let mut s = serde_json::to_string_pretty(&v).unwrap();
    s.push('\n');
    s
}

#[test]
fn committed_vectors_match_the_implementation() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol-vectors.json");
    let fresh = vectors_json();
    assert_eq!(
        fresh,
        vectors_json(),
        "vector generation is not deterministic"
    );
    if std::env::var_os("PRINTFLEET_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/protocol-vectors.json differs from what the code produces: the wire format changed. \
         If intended, regenerate with PRINTFLEET_UPDATE_VECTORS=1 and bump the version rules in \
         docs/protocol.md"
    );
}
