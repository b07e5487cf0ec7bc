//! The doorbell proper: "come fetch" without waiting for the next heartbeat, only to a fresh
//! address, only the printer's latest one, only as the answer to a held request.

use std::time::Duration;

use printfleet_domain::DeviceId;
use printfleet_doorbell::{PrinterStatus, RingOutcome};
use printfleet_protocol::heartbeat::AnswerType;

use crate::helpers::{World, HEARTBEAT, KEEPALIVE};

#[tokio::test]
async fn ring_delivers_come_fetch_to_a_fresh_printer_within_a_second() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;

    let (counter, request) = printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    printer.assert_silence().await; // held, not answered

    world.work.set_pending(printer.id, true);
    assert!(server.doorbell.ring(printer.id).await);
    let answer = printer
        .answer_for(server.addr, counter, request.len(), Duration::from_secs(1))
        .await
        .expect("come fetch within 1 s");
    assert_eq!(answer.kind, AnswerType::ComeFetch);

    // The held request was answered once; a second ring has nothing to answer.
    assert_eq!(
        server.doorbell.try_ring(printer.id).await,
        RingOutcome::NothingHeld
    );
    printer.assert_silence().await;
    let c = server.counters();
    assert_eq!((c.rung, c.ring_missed, c.answered), (1, 1, 0));

    // The next keepalive makes the printer ringable again.
    let (counter, request) = printer.send(server.addr, KEEPALIVE).await;
    // Work is still pending, so that keepalive is answered at once.
    let answer = printer
        .answer_for(server.addr, counter, request.len(), crate::helpers::WAIT)
        .await
        .unwrap();
    assert_eq!(answer.kind, AnswerType::ComeFetch);
    server.stop().await;
}

#[tokio::test]
async fn ring_after_the_freshness_bound_sends_nothing() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;

    world.clock.advance_ms(60_001);
    assert_eq!(server.doorbell.status(printer.id), PrinterStatus::Offline);
    assert_eq!(
        server.doorbell.try_ring(printer.id).await,
        RingOutcome::Offline
    );
    assert!(!server.doorbell.ring(printer.id).await);
    printer.assert_silence().await;
    assert_eq!(server.counters().rung, 0);
    server.stop().await;
}

#[tokio::test]
async fn ring_at_the_bound_itself_still_sends() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let (counter, request) = printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    world.clock.advance_ms(60_000);
    assert!(server.doorbell.ring(printer.id).await);
    let answer = printer
        .answer_for(server.addr, counter, request.len(), crate::helpers::WAIT)
        .await
        .unwrap();
    assert_eq!(answer.kind, AnswerType::ComeFetch);
    server.stop().await;
}

#[tokio::test]
async fn ring_goes_only_to_the_latest_source_address() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    let old_socket = std::mem::replace(
        &mut printer.socket,
        tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let (counter, request) = printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 2).await;

    assert!(server.doorbell.ring(printer.id).await);
    let answer = printer
        .answer_for(server.addr, counter, request.len(), crate::helpers::WAIT)
        .await
        .unwrap();
    assert_eq!(answer.kind, AnswerType::ComeFetch);
    // The address the printer used before gets nothing.
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(crate::helpers::ABSENT, old_socket.recv_from(&mut buf))
            .await
            .is_err()
    );
    server.stop().await;
}

#[tokio::test]
async fn ring_cannot_answer_a_heartbeat_that_was_already_answered() {
    // The protocol gap, pinned down: after an answered heartbeat there is no unanswered
    // counter, and the protocol crate has no way to seal an unsolicited datagram.
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    assert!(matches!(
        server.doorbell.status(printer.id),
        PrinterStatus::Online { .. }
    ));
    assert_eq!(
        server.doorbell.try_ring(printer.id).await,
        RingOutcome::NothingHeld
    );
    printer.assert_silence().await;
    server.stop().await;
}

#[tokio::test]
async fn a_heartbeat_after_a_held_keepalive_replaces_it() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    assert_eq!(
        server.doorbell.try_ring(printer.id).await,
        RingOutcome::NothingHeld
    );
    printer.assert_silence().await;
    server.stop().await;
}

#[tokio::test]
async fn ring_of_an_unknown_or_revoked_printer_sends_nothing() {
    let world = World::new();
    let server = world.start().await;
    assert_eq!(
        server.doorbell.try_ring(DeviceId::new_random()).await,
        RingOutcome::Offline
    );

    let mut printer = world.printer().await;
    printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    world.keys.revoke(printer.key_id());
    assert_eq!(
        server.doorbell.try_ring(printer.id).await,
        RingOutcome::KeyRevoked
    );
    printer.assert_silence().await;

    // Its datagrams are now from an unknown key: dropped, unanswered.
    printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_unknown_key == 1).await;
    printer.assert_silence().await;
    server.stop().await;
}

/// Many printers rung at once (keys looked up in batches): the live ones get "come fetch", a
/// revoked one and an unknown one get nothing, and each outcome says so, in order.
#[tokio::test]
async fn ring_many_rings_the_live_and_refuses_the_revoked() {
    let world = World::new();
    let server = world.start().await;
    let mut printers = Vec::new();
    for _ in 0..3 {
        printers.push(world.printer().await);
    }
    let mut sent = Vec::new();
    for p in printers.iter_mut() {
        sent.push(p.send(server.addr, KEEPALIVE).await);
    }
    server.wait_for(|c| c.held == 3).await;
    world.keys.revoke(printers[1].key_id());
    let ids = [
        printers[0].id,
        printers[1].id,
        printers[2].id,
        DeviceId::new_random(),
    ];
    assert_eq!(
        server.doorbell.ring_many(&ids).await,
        [
            RingOutcome::Sent,
            RingOutcome::KeyRevoked,
            RingOutcome::Sent,
            RingOutcome::Offline
        ]
    );
    for i in [0, 2] {
        let (counter, request) = &sent[i];
        let answer = printers[i]
            .answer_for(server.addr, *counter, request.len(), Duration::from_secs(1))
            .await
            .expect("come fetch within 1 s");
        assert_eq!(answer.kind, AnswerType::ComeFetch);
    }
    printers[1].assert_silence().await;
    let c = server.counters();
    assert_eq!((c.rung, c.ring_missed), (2, 2));
    server.stop().await;
}
