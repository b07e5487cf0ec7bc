//! A [`ReplayStore`] that keeps one small file per heartbeat key in a directory. It exists so the
//! restart behaviour (a datagram captured before a restart is refused after it) can be tested
//! without a database; a single-node deployment could use it too.
//!
//! Each save writes a temporary file, syncs it, renames it over the old one and syncs the
//! directory, so a crash leaves either the old or the new window, never a torn one — and a
//! window that was saved (and therefore answered) is on disk.

use std::io;
use std::path::{Path, PathBuf};

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::HeartbeatKeyId;
use tokio::io::AsyncWriteExt;

use crate::backend::{BackendError, BoxFuture, ReplayStore};

/// Replay windows as files `<printer uuid>-<key id hex>.window` under one directory.
#[derive(Clone, Debug)]
pub struct FileReplayStore {
    dir: PathBuf,
}

impl FileReplayStore {
    /// Uses `dir`, which must exist. Nothing is read until the first look-up, so two stores on
    /// the same directory (an old and a new server) see each other's saves.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, printer: DeviceId, key_id: HeartbeatKeyId, ext: &str) -> PathBuf {
        let hex: String = key_id.0.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{}-{hex}.{ext}", printer.as_uuid()))
    }
}

async fn write_durably(dir: &Path, tmp: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = tokio::fs::File::create(tmp).await?;
    f.write_all(bytes).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(tmp, dest).await?;
    sync_dir(dir).await
}

#[cfg(unix)]
async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// Directories cannot be opened (and need no sync for a rename to be durable) elsewhere.
#[cfg(not(unix))]
async fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

impl ReplayStore for FileReplayStore {
    fn load(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>> {
        let path = self.path(printer, key_id, "window");
        Box::pin(async move {
            match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BackendError::new(e)),
            }
        })
    }

    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let dest = self.path(printer, key_id, "window");
        let tmp = self.path(printer, key_id, "window.tmp");
        Box::pin(async move {
            write_durably(&self.dir, &tmp, &dest, window)
                .await
                .map_err(BackendError::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_domain::DeviceId;

    #[tokio::test]
    async fn saves_survive_a_new_store_on_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let printer = DeviceId::new_random();
        let key = HeartbeatKeyId([7; 8]);
        let a = FileReplayStore::new(dir.path());
        assert!(a.load(printer, key).await.unwrap().is_none());
        a.save(printer, key, &[1, 2, 3]).await.unwrap();
        a.save(printer, key, &[4, 5]).await.unwrap();
        let b = FileReplayStore::new(dir.path());
        assert_eq!(b.load(printer, key).await.unwrap(), Some(vec![4, 5]));
        // Another key of the same printer has its own window.
        assert!(b
            .load(printer, HeartbeatKeyId([8; 8]))
            .await
            .unwrap()
            .is_none());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{}-0707070707070707.window", printer)]);
    }

    #[tokio::test]
    async fn an_unreadable_directory_is_an_error_not_an_empty_window() {
        let dir = tempfile::tempdir().unwrap();
        let missing = FileReplayStore::new(dir.path().join("absent"));
        let printer = DeviceId::new_random();
        let key = HeartbeatKeyId([1; 8]);
        assert!(missing.save(printer, key, &[1]).await.is_err());
        // A window path that is a directory cannot be read: an error, not "nothing stored".
        std::fs::create_dir(
            missing
                .dir
                .parent()
                .unwrap()
                .join(format!("{}-0101010101010101.window", printer)),
        )
        .unwrap();
        let store = FileReplayStore::new(dir.path());
        assert!(store.load(printer, key).await.is_err());
    }
}
