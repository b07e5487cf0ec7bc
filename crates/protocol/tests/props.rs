//! Property tests: sealed bodies round-trip and any change to them fails; heartbeat decoding
//! never panics; the replay window and cache accept each counter / id at most once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use printfleet_protocol::heartbeat::{
    self, derive_heartbeat_key, Answer, AnswerType, HeartbeatError, ReplayWindow, Request,
    RequestType,
};
use printfleet_protocol::{
    open, seal, Header, KeyPair, MessageId, MessageType, OpenLimits, ReplayCache, ReplayGuard,
};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_767_225_600_000;

struct Keys {
    server: KeyPair,
    printer: KeyPair,
}

fn keys() -> Keys {
    Keys {
        server: KeyPair::derive(b"props server key material 32 byt"),
        printer: KeyPair::derive(b"props printer key material 32 by"),
    }
}

fn sealed(k: &Keys, seed: u64, ts: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let h = Header::new(
        MessageType::SealedToDevice,
        &k.server.public,
        &k.printer.public,
        ts,
        &mut rng,
    );
    seal(
        &k.printer.public,
        &k.server.private,
        &k.server.public,
        &h,
        plaintext,
        &mut rng,
    )
    .unwrap()
    .into_bytes()
}

fn open_now(k: &Keys, body: &[u8]) -> Result<Vec<u8>, printfleet_protocol::OpenError> {
    open(
        &k.printer.private,
        &k.server.public,
        body,
        &OpenLimits::new(NOW),
        &mut ReplayCache::new(16),
    )
    .map(|(_, p)| p)
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        seed in any::<u64>(),
        skew in -300_000i64..=300_000,
    ) {
        let k = keys();
        let ts = NOW.checked_add_signed(skew).unwrap();
        let body = sealed(&k, seed, ts, &plaintext);
        prop_assert_eq!(body.len(), 94 + plaintext.len());
        let (h, p) = open(&k.printer.private, &k.server.public, &body, &OpenLimits::new(NOW), &mut ReplayCache::new(4)).unwrap();
        prop_assert_eq!(p, plaintext);
        prop_assert_eq!(h.timestamp_ms, ts);
    }

    #[test]
    fn any_single_bit_flip_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        seed in any::<u64>(),
        bit in any::<proptest::sample::Index>(),
    ) {
        let k = keys();
        let mut body = sealed(&k, seed, NOW, &plaintext);
        let i = bit.index(body.len() * 8);
        body[i / 8] ^= 1 << (i % 8);
        prop_assert!(open_now(&k, &body).is_err());
    }

    #[test]
    fn truncation_and_extension_fail(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        seed in any::<u64>(),
        cut in any::<proptest::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let k = keys();
        let body = sealed(&k, seed, NOW, &plaintext);
        let n = cut.index(body.len());
        prop_assert!(open_now(&k, &body[..n]).is_err());
        let mut longer = body.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(open_now(&k, &longer).is_err());
    }

    #[test]
    fn open_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let k = keys();
        prop_assert!(open_now(&k, &bytes).is_err());
    }

    #[test]
    fn replay_cache_accepts_each_id_at_most_once(
        ops in proptest::collection::vec((0u8..32, 0u64..2_000), 1..400),
        capacity in 1usize..16,
    ) {
        // A message id always comes with the same (authenticated) timestamp, so the same expiry.
        let mut cache = ReplayCache::new(capacity);
        let mut accepted = HashSet::new();
        for (id, now) in ops {
            let expiry = 100 + 60 * u64::from(id);
            if cache.check_and_record(&MessageId([id; 16]), expiry, now) {
                prop_assert!(accepted.insert(id), "id {} accepted twice", id);
                prop_assert!(expiry >= now);
            }
            prop_assert!(cache.len() <= capacity);
        }
    }

    #[test]
    fn window_accepts_every_counter_once_in_any_order_within_the_window(
        base in 1u64..u64::MAX - 1024,
        offsets in proptest::collection::vec(0u64..1024, 1..2000),
    ) {
        let mut w = ReplayWindow::new();
        let mut seen = HashSet::new();
        for off in offsets {
            let c = base + off;
            let r = w.accept(c);
            if seen.insert(c) {
                prop_assert_eq!(r, Ok(()));
            } else {
                prop_assert_eq!(r, Err(HeartbeatError::Replayed));
            }
        }
    }

    #[test]
    fn window_matches_a_model_and_survives_persistence(
        counters in proptest::collection::vec(
            prop_oneof![0u64..3000, any::<u64>(), (u64::MAX - 3000)..=u64::MAX], 1..600),
        persist_every in 1usize..50,
    ) {
        let mut w = ReplayWindow::new();
        let mut accepted: HashSet<u64> = HashSet::new();
        let mut highest = 0u64;
        for (i, c) in counters.into_iter().enumerate() {
            let model_ok = c != 0 && !accepted.contains(&c) && (c > highest || highest - c < 1024);
            let r = w.accept(c);
            prop_assert_eq!(r.is_ok(), model_ok, "counter {}", c);
            if model_ok {
                accepted.insert(c);
                highest = highest.max(c);
            }
            prop_assert_eq!(w.highest(), highest);
            if i % persist_every == 0 {
                let restored = ReplayWindow::from_bytes(&w.to_bytes()).unwrap();
                prop_assert_eq!(&restored, &w);
                w = restored;
            }
        }
    }

    #[test]
    fn heartbeat_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), counter in any::<u64>()) {
        let k = derive_heartbeat_key(&[1u8; 32], &[2u8; 16]).keys();
        let _ = heartbeat::peek(&bytes);
        prop_assert!(heartbeat::open_request(&k, &bytes, &mut ReplayWindow::new()).is_err());
        prop_assert!(heartbeat::open_answer(&k, counter, &bytes).is_err());
        let _ = ReplayWindow::from_bytes(&bytes);
    }

    #[test]
    fn heartbeat_bit_flips_fail(counter in 1u64.., bit in 0usize..heartbeat::DATAGRAM_LEN * 8) {
        let k = derive_heartbeat_key(&[1u8; 32], &[2u8; 16]).keys();
        let req = Request { kind: RequestType::Heartbeat, flags: 0 };
        let mut d = heartbeat::seal_request(&k, counter, req).unwrap();
        let good = d.clone();
        d[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(heartbeat::open_request(&k, &d, &mut ReplayWindow::new()).is_err());
        let acc = heartbeat::open_request(&k, &good, &mut ReplayWindow::new()).unwrap();
        let mut a = heartbeat::seal_answer(&k, acc, Answer { kind: AnswerType::Nothing, flags: 0 }).unwrap();
        prop_assert!(a.len() <= good.len());
        a[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(heartbeat::open_answer(&k, counter, &a).is_err());
    }
}
