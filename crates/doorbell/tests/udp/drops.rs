//! Everything that is not a new, authentic request is dropped silently and counted by reason,
//! and never moves the printer's address.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use printfleet_domain::DeviceId;
use printfleet_doorbell::{
    BackendError, BoxFuture, InMemoryReplayStore, PrinterStatus, ReplayStore,
};
use printfleet_protocol::heartbeat::{
    derive_heartbeat_key, seal_request, AnswerType, HeartbeatKeyId, Request, DATAGRAM_LEN,
};
use tokio::net::UdpSocket;

use crate::helpers::{Printer, World, ABSENT, HEARTBEAT, START_MS};

#[tokio::test]
async fn the_same_bytes_sent_twice_are_answered_once() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let first = printer.ask(server.addr, HEARTBEAT).await;
    assert_eq!(first.answer.unwrap().kind, AnswerType::Nothing);

    world.work.set_pending(printer.id, true); // an answer would now even say "come fetch"
    printer.send_raw(server.addr, &first.request).await;
    let c = server.wait_for(|c| c.dropped_replayed == 1).await;
    printer.assert_silence().await;
    assert_eq!((c.received, c.answered), (2, 1));
    server.stop().await;
}

#[tokio::test]
async fn counters_far_below_the_highest_are_refused_as_replays() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let (_, old) = printer.seal(HEARTBEAT); // counter 1, never sent
    printer.skip_to(5_000);
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    printer.send_raw(server.addr, &old).await;
    server.wait_for(|c| c.dropped_replayed == 1).await;
    printer.assert_silence().await;
    server.stop().await;
}

/// A valid datagram's bytes changed by `f`.
fn altered(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = bytes.to_vec();
    f(&mut v);
    v
}

#[tokio::test]
async fn garbage_short_oversized_unknown_key_and_forged_datagrams_get_no_answer() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let answered = printer.ask(server.addr, HEARTBEAT).await;
    assert!(answered.answer.is_some());
    let where_it_was = server.doorbell.status(printer.id);

    // The server's own answer, as it would be captured on the wire.
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let spy = Printer::new(printer.id, &printer.key).await;
    let (_, genuine) = printer.seal(HEARTBEAT);
    spy.send_raw(server.addr, &genuine).await;
    let answer_bytes = {
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(crate::helpers::WAIT, spy.socket.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n <= genuine.len());
        buf[..n].to_vec()
    };
    let (_, fresh) = printer.seal(HEARTBEAT);
    let stranger = derive_heartbeat_key(&[0xee; 32], &[0xee; 16]).keys();
    let stranger_req = seal_request(
        &stranger,
        1,
        Request {
            kind: HEARTBEAT,
            flags: 0,
        },
    )
    .unwrap();

    let malformed: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        fresh[..DATAGRAM_LEN - 1].to_vec(),
        altered(&fresh, |v| v.push(0)),
        altered(&fresh, |v| v.resize(1500, 0xaa)),
        altered(&fresh, |v| v[0] = 2),
        altered(&fresh, |v| v[9..17].fill(0)),
        vec![0xff; DATAGRAM_LEN],
    ];
    let unknown_key: Vec<Vec<u8>> = vec![
        altered(&fresh, |v| v[1..9].copy_from_slice(&[0x55; 8])),
        stranger_req,
    ];
    let bad_auth: Vec<Vec<u8>> = vec![
        altered(&fresh, |v| v[DATAGRAM_LEN - 1] ^= 1),
        altered(&fresh, |v| v[17] ^= 0x80),
    ];
    // Reflection: the server's answer bounced back as a request. Its counter was accepted
    // already, so the window refuses it before decryption would (protocol §3.5 order).
    let replayed = [answer_bytes];
    for d in malformed
        .iter()
        .chain(&unknown_key)
        .chain(&bad_auth)
        .chain(&replayed)
    {
        attacker.send_to(d, server.addr).await.unwrap();
    }
    let c = server.wait_for(|c| c.received == 2 + 8 + 2 + 3).await;
    assert_eq!(c.dropped_malformed, 8);
    assert_eq!(c.dropped_unknown_key, 2);
    assert_eq!(c.dropped_bad_auth, 2);
    assert_eq!(c.dropped_replayed, 1);
    assert_eq!(c.answered, 2);
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(ABSENT, attacker.recv_from(&mut buf))
            .await
            .is_err(),
        "the attacker heard something"
    );
    printer.assert_silence().await;
    // Only the spy's authentic datagram moved the address; nothing the attacker sent did.
    assert_ne!(where_it_was, server.doorbell.status(printer.id));
    assert_eq!(
        server.doorbell.status(printer.id),
        PrinterStatus::Online {
            last_seen_ms: START_MS,
            addr: spy.addr()
        }
    );

    // Forgeries did not burn the counter: the genuine datagram is still accepted.
    printer.send_raw(server.addr, &fresh).await;
    server.wait_for(|c| c.answered == 3).await;
    server.stop().await;
}

#[tokio::test]
async fn an_authentic_unknown_payload_type_is_unanswered_but_its_counter_is_spent() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let (up, _) = printer.key.direction_key_bytes();
    let cipher = ChaCha20Poly1305::new(up.as_ref().into());
    let counter: u64 = 7;
    let mut clear = vec![1u8];
    clear.extend_from_slice(&printer.key_id().0);
    clear.extend_from_slice(&counter.to_be_bytes());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    let ct = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &[0x7f, 0],
                aad: &clear,
            },
        )
        .unwrap();
    let datagram = [clear, ct].concat();
    assert_eq!(datagram.len(), DATAGRAM_LEN);
    printer.send_raw(server.addr, &datagram).await;
    server.wait_for(|c| c.dropped_unknown_type == 1).await;
    printer.assert_silence().await;
    assert_eq!(server.doorbell.status(printer.id), PrinterStatus::Offline);

    // The counter stays recorded: a valid heartbeat reusing it is a replay.
    printer.skip_to(counter);
    printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_replayed == 1).await;
    printer.assert_silence().await;
    server.stop().await;
}

/// A replay store whose saves fail (a database that stopped accepting writes).
struct SaveFails(InMemoryReplayStore);

impl ReplayStore for SaveFails {
    fn load(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>> {
        self.0.load(printer, key_id)
    }

    fn save<'a>(
        &'a self,
        _: DeviceId,
        _: HeartbeatKeyId,
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Err(BackendError::new("disk full")) })
    }
}

#[tokio::test]
async fn an_unpersisted_window_means_no_answer() {
    let world = World::with_replay(Arc::new(SaveFails(InMemoryReplayStore::new())));
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.send(server.addr, HEARTBEAT).await;
    let c = server.wait_for(|c| c.dropped_backend == 1).await;
    printer.assert_silence().await;
    assert_eq!(c.answered, 0);
    assert_eq!(server.doorbell.status(printer.id), PrinterStatus::Offline);
    server.stop().await;
}
