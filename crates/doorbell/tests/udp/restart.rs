//! The replay window survives a restart: bytes captured before it are refused after it.

use std::sync::Arc;

use printfleet_doorbell::{FileReplayStore, InMemoryReplayStore};
use printfleet_protocol::heartbeat::AnswerType;

use crate::helpers::{World, HEARTBEAT};

#[tokio::test]
async fn a_replay_captured_before_a_restart_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::with_replay(Arc::new(FileReplayStore::new(dir.path())));
    let mut printer = world.printer().await;

    let before = world.start().await;
    let captured = printer.ask(before.addr, HEARTBEAT).await;
    assert_eq!(captured.answer.unwrap().kind, AnswerType::Nothing);
    before.stop().await;

    // A new server process: new socket, new in-memory state, a new store on the same files.
    let after_world = World {
        replay: Arc::new(FileReplayStore::new(dir.path())),
        ..world.clone()
    };
    let after = after_world.start().await;
    printer.send_raw(after.addr, &captured.request).await;
    let c = after.wait_for(|c| c.dropped_replayed == 1).await;
    printer.assert_silence().await;
    assert_eq!(c.answered, 0);

    // The restarted server does answer the printer's next (new) heartbeat.
    world.work.set_pending(printer.id, true);
    let next = printer.ask(after.addr, HEARTBEAT).await;
    assert_eq!(next.answer.unwrap().kind, AnswerType::ComeFetch);
    after.stop().await;

    // Control: without the persisted window the captured bytes would have been answered.
    let amnesiac = World {
        replay: Arc::new(InMemoryReplayStore::new()),
        ..world.clone()
    }
    .start()
    .await;
    printer.send_raw(amnesiac.addr, &captured.request).await;
    amnesiac.wait_for(|c| c.answered == 1).await;
    amnesiac.stop().await;
}

#[tokio::test]
async fn a_corrupt_persisted_window_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::with_replay(Arc::new(FileReplayStore::new(dir.path())));
    let mut printer = world.printer().await;
    let server = world.start().await;
    printer.ask(server.addr, HEARTBEAT).await.answer.unwrap();
    // The window is read from the store when the key is not in memory: after a restart.
    server.stop().await;

    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    std::fs::write(&files[0], b"not a window").unwrap();

    let server = world.start().await;
    printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_backend == 1).await;
    printer.assert_silence().await;
    // Nothing is remembered from a failed load: the next datagram reads the store again.
    printer.send(server.addr, HEARTBEAT).await;
    server.wait_for(|c| c.dropped_backend == 2).await;
    printer.assert_silence().await;
    server.stop().await;
}
