//! Cache misses: one task looks key ids up in the backend, a batch at a time (the keys with one
//! call, then their persisted windows with one call), and hands the results back to the receive
//! loop, which installs them and handles the datagrams that waited.
//!
//! One task, at most [`IN_FLIGHT`] batches at a time: however many unknown key ids arrive, the
//! database sees at most that many look-up batches of [`LOOKUP_BATCH`] ids from the doorbell.
//! Two, not one: a batch is a database read and then CPU (decrypting each printer's secrets),
//! so with one batch the other core idled while a fleet's first heartbeats waited.

use std::sync::Arc;

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{HeartbeatKeyId, ReplayWindow};
use tokio::sync::mpsc;

use crate::backend::{BackendError, PrinterKeys};
use crate::server::Shared;

/// The most key ids looked up in one backend call.
pub const LOOKUP_BATCH: usize = 512;
/// The most look-up batches running at once.
pub const IN_FLIGHT: usize = 2;

/// What a look-up found for one key id.
// Short-lived (one batch of look-ups), and nearly always the large variant.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Resolution {
    Found(PrinterKeys, ReplayWindow),
    Unknown,
    /// The backend failed, or the stored window does not decode: drop (fail closed), and do
    /// not remember anything.
    Failed,
}

pub(crate) struct Resolved {
    /// The cache epoch read before the look-up started: if the cache forgot anything since,
    /// these results may predate a revocation and are looked up again.
    pub epoch: u64,
    pub results: Vec<(HeartbeatKeyId, Resolution)>,
}

pub(crate) async fn resolver(
    s: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<HeartbeatKeyId>,
    tx: mpsc::Sender<Resolved>,
) {
    let mut running = tokio::task::JoinSet::new();
    loop {
        let mut ids = Vec::with_capacity(LOOKUP_BATCH);
        tokio::select! {
            n = rx.recv_many(&mut ids, LOOKUP_BATCH), if running.len() < IN_FLIGHT => {
                if n == 0 {
                    break;
                }
                // Read before the look-up starts (see `Resolved::epoch`).
                let epoch = s.cache.epoch();
                s.counters.key_lookups(ids.len());
                let (s, tx) = (s.clone(), tx.clone());
                running.spawn(async move {
                    let results = resolve(&s, &ids).await;
                    // The receive loop gone: the doorbell is stopping.
                    let _ = tx.send(Resolved { epoch, results }).await;
                });
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

async fn resolve(s: &Shared, ids: &[HeartbeatKeyId]) -> Vec<(HeartbeatKeyId, Resolution)> {
    let failed = |what: &str, e: &BackendError| {
        tracing::warn!(error = %e, keys = ids.len(), "doorbell: {what} failed; datagrams dropped");
        ids.iter().map(|id| (*id, Resolution::Failed)).collect()
    };
    let found = match s.backends.keys.lookup_many(ids).await {
        Ok(f) if f.len() == ids.len() => f,
        Ok(_) => return failed("key look-up", &BackendError::new("wrong number of answers")),
        Err(e) => return failed("key look-up", &e),
    };
    let wanted: Vec<(DeviceId, HeartbeatKeyId)> = ids
        .iter()
        .zip(&found)
        .filter_map(|(id, f)| f.as_ref().map(|k| (k.printer, *id)))
        .collect();
    let windows = if wanted.is_empty() {
        Vec::new()
    } else {
        match s.backends.replay.load_many(&wanted).await {
            Ok(w) if w.len() == wanted.len() => w,
            Ok(_) => {
                return failed(
                    "replay window load",
                    &BackendError::new("wrong number of answers"),
                )
            }
            Err(e) => return failed("replay window load", &e),
        }
    };
    let mut windows = windows.into_iter();
    ids.iter()
        .zip(found)
        .map(|(id, f)| {
            let Some(keys) = f else {
                return (*id, Resolution::Unknown);
            };
            let window = windows.next().flatten();
            if keys.keys.key_id() != *id {
                tracing::warn!(key = ?id, "doorbell: the backend returned another key; dropped");
                return (*id, Resolution::Failed);
            }
            let window = match window {
                None => ReplayWindow::new(),
                // Corrupt state fails closed: starting over empty would re-open old counters.
                Some(bytes) => match ReplayWindow::from_bytes(&bytes) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(error = %e, key = ?id,
                            "doorbell: persisted replay window does not decode; dropped");
                        return (*id, Resolution::Failed);
                    }
                },
            };
            (*id, Resolution::Found(keys, window))
        })
        .collect()
}
