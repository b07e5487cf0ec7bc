//! The UDP doorbell (heartbeat) service wired to storage: heartbeat keys come from the device
//! registry (derived from each printer's enrolment secret), replay windows are persisted in the
//! database, and pending work comes from the outbox.
//!
//! The doorbell keeps keys and windows in memory and calls the batch methods here: a batch of
//! cache misses is one query (plus decrypting each printer's secrets), a batch of accepted
//! heartbeats is one write transaction (group commit), and the work check of a batch of answers
//! is one indexed query.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use printfleet_domain::clock::Clock;
use printfleet_domain::DeviceId;
use printfleet_doorbell::{
    BackendError, BoxFuture, HeartbeatKeys, PrinterKeys, ReplayStore, WindowUpdate, WorkQueue,
};
use printfleet_protocol::heartbeat::{derive_heartbeat_key, HeartbeatKeyId};
use printfleet_storage::enrolment::DeviceSecrets;
use printfleet_storage::window_log::WindowLog;
use printfleet_storage::{resolver, Store};

/// The doorbell crate, for callers of this server's library (the benchmark runs the doorbell
/// in-process through it).
pub use printfleet_doorbell as service;

pub struct StoreKeys(pub Store);
/// Replay windows through the store's window log (group commits appended, folded behind).
pub struct StoreWindows(pub WindowLog);
/// Pending work from the outbox.
pub struct StoreWork(pub Store);

/// The doorbell's backends over `store`. Opening the window log first folds what a previous
/// run left in it, so the windows the doorbell loads are the newest persisted.
pub async fn store_backends(
    store: &Store,
    clock: Arc<dyn Clock>,
) -> Result<printfleet_doorbell::Backends, printfleet_storage::StoreError> {
    Ok(printfleet_doorbell::Backends {
        keys: Arc::new(StoreKeys(store.clone())),
        replay: Arc::new(StoreWindows(WindowLog::open(store).await?)),
        work: Arc::new(StoreWork(store.clone())),
        clock,
    })
}

fn printer_keys(device: DeviceId, secrets: &DeviceSecrets) -> Result<PrinterKeys, BackendError> {
    let secret = hex::decode(&secrets.enrolment_secret).map_err(BackendError::new)?;
    let keys = derive_heartbeat_key(&secret, device.as_uuid().as_bytes()).keys();
    Ok(PrinterKeys {
        printer: device,
        keys,
    })
}

impl HeartbeatKeys for StoreKeys {
    fn lookup(
        &self,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<PrinterKeys>, BackendError>> {
        Box::pin(async move {
            let Some((_, device, secrets)) = resolver::device_by_heartbeat_key(&self.0, &key_id.0)
                .await
                .map_err(BackendError::new)?
            else {
                return Ok(None);
            };
            printer_keys(device, &secrets).map(Some)
        })
    }

    fn lookup_many<'a>(
        &'a self,
        key_ids: &'a [HeartbeatKeyId],
    ) -> BoxFuture<'a, Result<Vec<Option<PrinterKeys>>, BackendError>> {
        Box::pin(async move {
            let raw: Vec<[u8; 8]> = key_ids.iter().map(|k| k.0).collect();
            let found = resolver::devices_by_heartbeat_keys(&self.0, &raw)
                .await
                .map_err(BackendError::new)?;
            let mut by_id = HashMap::with_capacity(found.len());
            for (key_id, _, device, secrets) in found {
                by_id.insert(key_id, printer_keys(device, &secrets)?);
            }
            Ok(key_ids.iter().map(|k| by_id.remove(&k.0)).collect())
        })
    }
}

impl ReplayStore for StoreWindows {
    fn load(
        &self,
        _printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            let found = self
                .0
                .load_many(&[key_id.0])
                .await
                .map_err(BackendError::new)?;
            Ok(found.into_iter().next().map(|(_, window)| window))
        })
    }

    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.0
                .save_many(&[(printer, key_id.0, window)])
                .await
                .map_err(BackendError::new)
        })
    }

    fn load_many<'a>(
        &'a self,
        keys: &'a [(DeviceId, HeartbeatKeyId)],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, BackendError>> {
        Box::pin(async move {
            let raw: Vec<[u8; 8]> = keys.iter().map(|(_, k)| k.0).collect();
            let mut found: HashMap<[u8; 8], Vec<u8>> = self
                .0
                .load_many(&raw)
                .await
                .map_err(BackendError::new)?
                .into_iter()
                .collect();
            Ok(keys.iter().map(|(_, k)| found.remove(&k.0)).collect())
        })
    }

    /// One log row, one transaction, for the whole batch (`storage::window_log`).
    fn save_many<'a>(
        &'a self,
        windows: &'a [WindowUpdate<'a>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let rows: Vec<(DeviceId, [u8; 8], &[u8])> = windows
                .iter()
                .map(|w| (w.printer, w.key_id.0, w.window))
                .collect();
            self.0.save_many(&rows).await.map_err(BackendError::new)
        })
    }
}

impl WorkQueue for StoreWork {
    fn has_work(&self, printer: DeviceId) -> BoxFuture<'_, Result<bool, BackendError>> {
        Box::pin(async move {
            resolver::work_pending(&self.0, printer)
                .await
                .map_err(BackendError::new)
        })
    }

    fn pending_among<'a>(
        &'a self,
        printers: &'a [DeviceId],
    ) -> BoxFuture<'a, Result<HashSet<DeviceId>, BackendError>> {
        Box::pin(async move {
            resolver::work_pending_among(&self.0, printers)
                .await
                .map_err(BackendError::new)
        })
    }
}
