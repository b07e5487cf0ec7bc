//! Keys and windows in memory, group commit of the windows, forgetting at once, eviction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use printfleet_domain::DeviceId;
use printfleet_doorbell::{
    BackendError, BoxFuture, DoorbellConfig, InMemoryReplayStore, ReplayStore, WindowUpdate,
};
use printfleet_protocol::heartbeat::{AnswerType, HeartbeatKeyId};
use tokio::sync::Semaphore;

use crate::helpers::{World, HEARTBEAT, WAIT};

/// A replay store whose saves wait for a permit (a slow disk the test controls), counting the
/// batches it was given.
struct Gated {
    inner: InMemoryReplayStore,
    gate: Arc<Semaphore>,
    batches: AtomicUsize,
}

impl Gated {
    fn new(permits: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: InMemoryReplayStore::new(),
            gate: Arc::new(Semaphore::new(permits)),
            batches: AtomicUsize::new(0),
        })
    }
}

impl ReplayStore for Gated {
    fn load(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>> {
        self.inner.load(printer, key_id)
    }

    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.inner.save(printer, key_id, window)
    }

    fn save_many<'a>(
        &'a self,
        windows: &'a [WindowUpdate<'a>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.gate
                .acquire()
                .await
                .map_err(BackendError::new)?
                .forget();
            self.batches.fetch_add(1, Ordering::SeqCst);
            for w in windows {
                self.inner.save(w.printer, w.key_id, w.window).await?;
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn nothing_is_answered_before_its_window_is_committed() {
    let store = Gated::new(0);
    let world = World::with_replay(store.clone());
    let server = world.start().await;
    let mut printer = world.printer().await;
    let (counter, request) = printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.received == 1).await;
    printer.assert_silence().await;
    assert_eq!(server.counters().answered, 0);

    store.gate.add_permits(1);
    let answer = printer
        .answer_for(server.addr, counter, request.len(), WAIT)
        .await
        .expect("answered once committed");
    assert_eq!(answer.kind, AnswerType::Nothing);
    server.stop().await;
}

#[tokio::test]
async fn windows_accepted_meanwhile_share_one_commit() {
    let store = Gated::new(0);
    let world = World::with_replay(store.clone());
    let server = world.start().await;
    let mut printers = Vec::new();
    for _ in 0..30 {
        printers.push(world.printer().await);
    }
    let mut sent = Vec::new();
    for p in printers.iter_mut() {
        sent.push(p.send(server.addr, HEARTBEAT).await);
    }
    // The first commit waits at the gate while the others are accepted behind it.
    server.wait_for(|c| c.received == 30).await;
    store.gate.add_permits(1000);
    for (p, (counter, request)) in printers.iter().zip(&sent) {
        let a = p
            .answer_for(server.addr, *counter, request.len(), WAIT)
            .await
            .expect("answered");
        assert_eq!(a.kind, AnswerType::Nothing);
    }
    let c = server.counters();
    assert_eq!(c.answered, 30);
    assert_eq!(c.windows_saved, 30);
    let batches = store.batches.load(Ordering::SeqCst);
    assert!(batches <= 3, "30 windows took {batches} commits");
    assert_eq!(c.window_commits as usize, batches);
    server.stop().await;
}

#[tokio::test]
async fn keys_are_looked_up_once_and_unknown_ids_are_remembered() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    for _ in 0..5 {
        printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    }
    assert_eq!(server.counters().key_lookups, 1);

    // Datagrams of a key nobody knows: one look-up, then answered from memory.
    let stranger = crate::helpers::Printer::new(
        DeviceId::new_random(),
        &printfleet_protocol::heartbeat::derive_heartbeat_key(&[7; 32], &[7; 16]),
    )
    .await;
    let mut stranger = stranger;
    stranger.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_unknown_key == 1).await;
    for _ in 0..20 {
        stranger.send(server.addr, HEARTBEAT).await;
    }
    let c = server.wait_for(|c| c.dropped_unknown_key == 21).await;
    assert_eq!(c.key_lookups, 2);
    stranger.assert_silence().await;
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_as_soon_as_the_doorbell_is_told() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();

    // Revoked in the registry: the cached key would still answer, which is why the server
    // tells the doorbell right after committing a removal or revocation.
    world.keys.revoke(printer.key_id());
    server.doorbell.forget_key(printer.key_id());
    printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_unknown_key == 1).await;
    printer.assert_silence().await;
    assert_eq!(
        server.doorbell.status(printer.id),
        printfleet_doorbell::PrinterStatus::Offline
    );
    server.stop().await;
}

#[tokio::test]
async fn a_forgotten_printer_is_reloaded_with_its_persisted_window() {
    let world = World::new();
    let server = world.start().await;
    let mut printer = world.printer().await;
    let first = printer.ask(server.addr, HEARTBEAT).await;
    first.answer.unwrap();
    // Forgotten (e.g. re-enrolled): its key, if still live, is looked up again — with the
    // window from the store, so the captured datagram is still a replay.
    server.doorbell.forget_printer(printer.id);
    printer.send_raw(server.addr, &first.request).await;
    let c = server.wait_for(|c| c.dropped_replayed == 1).await;
    assert_eq!(c.key_lookups, 2);
    printer.assert_silence().await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn idle_printers_are_evicted_and_reloaded_from_the_store() {
    let world = World::new();
    let server = world
        .start_with(DoorbellConfig {
            evict_after: Duration::from_secs(120),
            ..World::test_config()
        })
        .await;
    let mut printer = world.printer().await;
    let first = printer.ask(server.addr, HEARTBEAT).await;
    first.answer.unwrap();
    assert_eq!(server.doorbell.memory().cached_keys, 1);

    world.clock.advance_ms(200_000);
    // The loop looks at its clock at least once a second.
    tokio::time::timeout(WAIT, async {
        while server.doorbell.memory().cached_keys != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("evicted");
    assert_eq!(server.doorbell.memory().present_printers, 0);

    printer.send_raw(server.addr, &first.request).await;
    let c = server.wait_for(|c| c.dropped_replayed == 1).await;
    assert_eq!(c.key_lookups, 2);
    printer.assert_silence().await;
    let next = printer.ask(server.addr, HEARTBEAT).await;
    assert_eq!(next.answer.unwrap().kind, AnswerType::Nothing);
    server.stop().await;
}
