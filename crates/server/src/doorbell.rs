//! The UDP doorbell (heartbeat) service wired to storage: heartbeat keys come from the device
//! registry (derived from each printer's enrolment secret), replay windows are persisted in the
//! database, and pending work comes from the outbox.

use printfleet_domain::DeviceId;
use printfleet_doorbell::{
    BackendError, BoxFuture, HeartbeatKeys, PrinterKeys, ReplayStore, WorkQueue,
};
use printfleet_protocol::heartbeat::{derive_heartbeat_key, HeartbeatKeyId};
use printfleet_storage::{resolver, Store};

pub struct StoreKeys(pub Store);
pub struct StoreWindows(pub Store);
/// Pending work from the outbox.
pub struct StoreWork(pub Store);

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
            let secret = hex::decode(&secrets.enrolment_secret).map_err(BackendError::new)?;
            let keys = derive_heartbeat_key(&secret, device.as_uuid().as_bytes()).keys();
            Ok(Some(PrinterKeys {
                printer: device,
                keys,
            }))
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
            resolver::heartbeat_window_load(&self.0, &key_id.0)
                .await
                .map_err(BackendError::new)
        })
    }

    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            resolver::heartbeat_window_save(&self.0, printer, &key_id.0, window)
                .await
                .map_err(BackendError::new)
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
}
