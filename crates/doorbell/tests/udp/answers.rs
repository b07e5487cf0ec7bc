//! Accepted heartbeats are answered "nothing" or "come fetch", to the source address, never
//! larger than the request; presence follows the latest datagram.

use printfleet_doorbell::{DoorbellConfig, PrinterStatus};
use printfleet_protocol::heartbeat::AnswerType;

use crate::helpers::{World, HEARTBEAT, KEEPALIVE, START_MS};

#[tokio::test]
async fn heartbeat_gets_nothing_then_come_fetch_once_work_is_queued() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;

    let first = printer.ask(server.addr, HEARTBEAT).await;
    assert_eq!(first.answer.unwrap().kind, AnswerType::Nothing);

    world.work.set_pending(printer.id, true);
    let second = printer.ask(server.addr, HEARTBEAT).await;
    assert_eq!(second.answer.unwrap().kind, AnswerType::ComeFetch);
    assert_eq!(second.counter, first.counter + 1);

    world.work.set_pending(printer.id, false);
    let third = printer.ask(server.addr, HEARTBEAT).await;
    assert_eq!(third.answer.unwrap().kind, AnswerType::Nothing);

    let c = server.counters();
    assert_eq!((c.received, c.answered, c.dropped()), (3, 3, 0));
    server.stop().await;
}

#[tokio::test]
async fn status_is_online_at_the_exact_source_address_until_the_bound_passes() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let bell = &server.doorbell;
    assert_eq!(bell.status(printer.id), PrinterStatus::Offline);

    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    assert_eq!(
        bell.status(printer.id),
        PrinterStatus::Online {
            last_seen_ms: START_MS,
            addr: printer.addr()
        }
    );

    // A keepalive 50 s later refreshes it (and is held: no answer needed here).
    world.clock.advance_ms(50_000);
    printer.send(server.addr, KEEPALIVE).await;
    server.wait_for(|c| c.held == 1).await;
    world.clock.advance_ms(59_000);
    assert_eq!(
        bell.status(printer.id),
        PrinterStatus::Online {
            last_seen_ms: START_MS + 50_000,
            addr: printer.addr()
        }
    );
    world.clock.advance_ms(1_001);
    assert_eq!(bell.status(printer.id), PrinterStatus::Offline);

    // A printer behind a new NAT mapping: the new address replaces the old one.
    printer.rebind().await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    assert_eq!(
        bell.status(printer.id),
        PrinterStatus::Online {
            last_seen_ms: START_MS + 110_001,
            addr: printer.addr()
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn keepalive_with_pending_work_is_answered_come_fetch_at_once() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    world.work.set_pending(printer.id, true);
    let ex = printer.ask(server.addr, KEEPALIVE).await;
    assert_eq!(ex.answer.unwrap().kind, AnswerType::ComeFetch);
    let c = server.counters();
    assert_eq!((c.answered, c.held), (1, 0));
    server.stop().await;
}

#[tokio::test]
async fn keepalives_are_answered_at_once_when_holding_is_off() {
    let world = World::new();
    let server = world
        .start_with(DoorbellConfig {
            hold_keepalives: false,
            ..World::test_config()
        })
        .await;
    let mut printer = world.printer().await;
    let ex = printer.ask(server.addr, KEEPALIVE).await;
    assert_eq!(ex.answer.unwrap().kind, AnswerType::Nothing);
    assert_eq!(server.counters().held, 0);
    server.stop().await;
}

#[tokio::test]
async fn many_printers_each_get_their_own_answer() {
    let world = World::new();
    let server = world.start().await;
    let mut printers = Vec::new();
    for i in 0..20 {
        let p = world.printer().await;
        world.work.set_pending(p.id, i % 2 == 0);
        printers.push(p);
    }
    for (i, p) in printers.iter_mut().enumerate() {
        let want = if i % 2 == 0 {
            AnswerType::ComeFetch
        } else {
            AnswerType::Nothing
        };
        assert_eq!(
            p.ask(server.addr, HEARTBEAT).await.answer.unwrap().kind,
            want
        );
    }
    assert_eq!(server.counters().answered, 20);
    server.stop().await;
}
